// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Argument helpers every command shares. */
#include <string.h>

#include "commands.h"

int ls_is_help(const char *arg)
{
	return !strcmp(arg, "help") || !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int ls_is_prefix(const char *arg, const char *word)
{
	size_t n = strlen(arg);

	return n && n <= strlen(word) && !strncmp(arg, word, n);
}
