/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Loading a config from a string in the unit tests: it must load, or fail with a message. */
#ifndef LS_TEST_CONFIG_FIXTURE_H
#define LS_TEST_CONFIG_FIXTURE_H

#include <errno.h>
#include <string.h>

#include "config.h"

/* The last load's error. */
static char err[1024];

/* Loads text that must be valid; fails the test with the error otherwise. */
static inline struct ls_config *load_ok(const char *text)
{
	struct ls_config *c = NULL;
	int rc = ls_config_load_string(text, "t.conf", &c, err, sizeof(err));

	if (rc)
		fail_msg("unexpected error %d: %s", rc, err);
	assert_non_null(c);
	return c;
}

/* Loads text that must be refused with an error starting with want. */
static inline void load_fails_with(const char *text, const char *want)
{
	struct ls_config *c = NULL;
	int rc = ls_config_load_string(text, "t.conf", &c, err, sizeof(err));

	assert_int_equal(rc, -EINVAL);
	assert_null(c);
	if (strncmp(err, want, strlen(want)))
		fail_msg("error '%s' does not start with '%s'", err, want);
}

/* Loads text that must be refused with exactly the message want. */
static inline void load_fails(const char *text, const char *want)
{
	load_fails_with(text, want);
	assert_string_equal(err, want);
}

#endif
