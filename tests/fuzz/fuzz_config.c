// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config file parser, validator and policy compiler on any text.
 * Whatever the text: no crash, leak or undefined behaviour; every error
 * follows the error contract; parse + validate and ls_config_load_string()
 * agree; and a config that validates always compiles, into entries the
 * dataplane can use as they are (lib/check_policy.c).
 */
#include <string.h>

#include "config.h"
#include "lib/fuzz.h"

/* Real files are a few kilobytes; the parser's own cap is 1 MiB. */
#define MAX_TEXT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ls_config *c = NULL, *loaded = NULL;
	char err[1024] = "", err2[1024] = "";
	int rc, rc2;
	char *text;

	if (size > MAX_TEXT)
		return -1;
	text = malloc(size + 1);
	if (!text)
		return -1;
	memcpy(text, data, size);
	text[size] = '\0';

	FUZZ_CHECK(!ls_config_new(&c), "out of memory");
	rc = ls_config_parse_string(c, text, err, sizeof(err));
	fuzz_check_error_contract("ls_config_parse_string", rc, err);
	if (!rc) {
		rc = ls_config_validate(c, err, sizeof(err));
		fuzz_check_error_contract("ls_config_validate", rc, err);
		FUZZ_CHECK(c->validated == !rc, "validated is %d after validation returned %d",
			   c->validated, rc);
	}
	if (!rc)
		fuzz_check_config_compiles(c);

	/* The one-call form says the same, with the same words. */
	rc2 = ls_config_load_string(text, "", &loaded, err2, sizeof(err2));
	fuzz_check_error_contract("ls_config_load_string", rc2, err2);
	FUZZ_CHECK(rc == rc2 && !strcmp(err, err2),
		   "parse and validate gave %d (%s), load_string %d (%s)", rc, err, rc2, err2);
	FUZZ_CHECK(!rc2 == !!loaded, "load_string returned %d with%s a config", rc2,
		   loaded ? "" : "out");

	ls_config_free(&loaded);
	ls_config_free(&c);
	free(text);
	return 0;
}
