// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The CLI's one-line class form (`--class NAME=SHARE,ACTION,src=...`),
 * as attach builds a config from it: a service on *:8080, then each line
 * of the input as one --class spec, then validation. A spec that fails
 * changes nothing in the config (config.h: all or nothing); errors follow
 * the error contract; a config that validates compiles (lib/check_policy.c).
 */
#include <string.h>

#include "config.h"
#include "lib/fuzz.h"

/* attach takes as many --class options as a shell gives; a service holds 18 classes. */
#define MAX_SPECS 24
#define MAX_TEXT  4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ls_config *c = NULL, *before = NULL;
	char err[1024], *text, *line, *rest;
	int rc, n = 0;

	if (size > MAX_TEXT)
		return -1;
	text = malloc(size + 1);
	if (!text)
		return -1;
	memcpy(text, data, size);
	text[size] = '\0';

	FUZZ_CHECK(!ls_config_new(&c) && !ls_config_new(&before), "out of memory");
	err[0] = '\0';
	rc = ls_config_set(c, "service web", "listen", "*:8080", 0, err, sizeof(err));
	FUZZ_CHECK(!rc, "the service of the CLI form is refused: %s", err);

	for (rest = text; n < MAX_SPECS && (line = strsep(&rest, "\n")); n++) {
		memcpy(before, c, sizeof(*c));
		err[0] = '\0';
		rc = ls_config_add_class_spec(c, "web", line, err, sizeof(err));
		fuzz_check_error_contract("ls_config_add_class_spec", rc, err);
		FUZZ_CHECK(!rc || !memcmp(before, c, sizeof(*c)),
			   "--class '%s' failed (%s) but changed the config", line, err);
	}
	err[0] = '\0';
	rc = ls_config_validate(c, err, sizeof(err));
	fuzz_check_error_contract("ls_config_validate", rc, err);
	if (!rc)
		fuzz_check_config_compiles(c);

	ls_config_free(&before);
	ls_config_free(&c);
	free(text);
	return 0;
}
