// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>

#include "output.h"

bool ls_json;
bool ls_pretty;

int ls_fail(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ls_json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "error", json_object_new_string(msg));
		ls_json_print(o);
	} else {
		fprintf(stderr, "loadshed: %s\n", msg);
	}
	return code;
}

void ls_json_print(json_object *obj)
{
	int flags = ls_pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
			      : JSON_C_TO_STRING_PLAIN;

	puts(json_object_to_json_string_ext(obj, flags | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
}
