// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <bpf/libbpf.h>

#include "log.h"

enum ls_log_level ls_log_level = LS_LOG_WARN;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

/*
 * One line is one write: the metrics thread (libmicrohttpd's messages) and
 * the control loop log at once, and stderr is unbuffered, so a line written
 * in pieces could be cut by another. A line longer than the buffer is
 * written in pieces under the stream's lock instead.
 */
void ls_log(enum ls_log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int p, n;

	if (level > ls_log_level)
		return;
	p = snprintf(line, sizeof(line), "loadshed: %s: ", level_names[level]);
	va_start(ap, fmt);
	n = vsnprintf(line + p, sizeof(line) - (size_t)p, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)p + (size_t)n + 1 < sizeof(line)) {
		line[p + n] = '\n';
		line[p + n + 1] = 0;
		fputs(line, stderr);
		return;
	}
	flockfile(stderr);
	fputs("loadshed: ", stderr);
	fputs(level_names[level], stderr);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum ls_log_level l = level == LIBBPF_WARN ? LS_LOG_INFO : LS_LOG_DEBUG;

	/* libbpf warns about probes it then handles; they are noise unless -v. */
	if (l > ls_log_level)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void ls_log_init(enum ls_log_level level)
{
	ls_log_level = level;
	libbpf_set_print(libbpf_print);
}

int ls_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}
