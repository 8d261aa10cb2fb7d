// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Log lines: each one whole, whichever thread writes it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

#define LINES 2000

/* Redirects stderr into a temporary file; returns the saved descriptor. */
static int capture(FILE **f)
{
	int saved;

	fflush(stderr);
	saved = dup(2);
	*f = tmpfile();
	assert_non_null(*f);
	assert_int_equal(dup2(fileno(*f), 2), 2);
	return saved;
}

static void restore(int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

static void *writer(void *arg)
{
	const char *who = arg;

	for (int i = 0; i < LINES; i++)
		pr_warn("%s line %d of %d", who, i, LINES);
	return NULL;
}

static void concurrent_lines_do_not_interleave(void **state)
{
	char line[256], who[32];
	pthread_t a, b;
	int saved, n = 0, i, of;
	FILE *f;

	(void)state;
	ls_log_level = LS_LOG_WARN;
	saved = capture(&f);
	pthread_create(&a, NULL, writer, "metrics");
	pthread_create(&b, NULL, writer, "loop");
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	restore(saved);
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "loadshed: warning: %31s line %d of %d\n", who, &i, &of) != 3 ||
		    of != LINES || (strcmp(who, "metrics") && strcmp(who, "loop")))
			fail_msg("line %d is not whole: %s", n + 1, line);
		n++;
	}
	fclose(f);
	assert_int_equal(n, 2 * LINES);
}

static void format_is_prefix_message_newline(void **state)
{
	char buf[8192], want[8192];
	size_t len;
	int saved;
	FILE *f;

	(void)state;
	ls_log_level = LS_LOG_INFO;
	saved = capture(&f);
	pr_err("a %s %d", "b", 1);
	pr_info("c");
	pr_debug("not shown");
	/* Longer than one line's buffer: still whole, still the same format. */
	memset(want, 'x', 5000);
	want[5000] = 0;
	pr_warn("%s", want);
	restore(saved);
	rewind(f);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = 0;
	fclose(f);
	snprintf(want + 5000, sizeof(want) - 5000, "\n");
	assert_true(!strncmp(buf,
			     "loadshed: error: a b 1\nloadshed: info: c\nloadshed: warning: ", 60));
	assert_string_equal(buf + 60, want);
	ls_log_level = LS_LOG_WARN;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(concurrent_lines_do_not_interleave),
		cmocka_unit_test(format_is_prefix_message_newline),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
