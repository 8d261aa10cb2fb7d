/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Logging to stderr with levels; quiet (warnings and errors) by default. */
#ifndef LS_LOG_H
#define LS_LOG_H

#include <stddef.h>

enum ls_log_level {
	LS_LOG_ERROR,
	LS_LOG_WARN,
	LS_LOG_INFO,
	LS_LOG_DEBUG,
};

extern enum ls_log_level ls_log_level;

/* Routes libbpf's messages through ls_log: its debug lines only at -vv. */
void ls_log_init(enum ls_log_level level);
void ls_log(enum ls_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes a sentence into err (errlen bytes) and returns code, a negative errno. */
int ls_errf(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define pr_err(...)   ls_log(LS_LOG_ERROR, __VA_ARGS__)
#define pr_warn(...)  ls_log(LS_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  ls_log(LS_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) ls_log(LS_LOG_DEBUG, __VA_ARGS__)

#endif
