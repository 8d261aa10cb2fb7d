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

/*
 * The length of the UTF-8 sequence at s (1..4), or 0 when it is not one
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
 * Stops at the first byte that does not fit, so never reads past a NUL.
 */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo, hi;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		lo = s[0] == 0xe0 ? 0xa0 : 0x80;
		hi = s[0] == 0xed ? 0x9f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		lo = s[0] == 0xf0 ? 0x90 : 0x80;
		hi = s[0] == 0xf4 ? 0x8f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80
			       ? 4
			       : 0;
	}
	return 0;
}

void ls_json_print(json_object *obj)
{
	int flags = ls_pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
			      : JSON_C_TO_STRING_PLAIN;
	const unsigned char *p = (const unsigned char *)json_object_to_json_string_ext(
				    obj, flags | JSON_C_TO_STRING_NOSLASHESCAPE),
			    *run = p;

	/*
	 * JSON is UTF-8 (RFC 8259), but json-c passes any byte through: a name
	 * or a path of the user's that is not UTF-8, or a message cut inside a
	 * character, would make the document invalid. Such a byte becomes U+FFFD.
	 */
	while (*p) {
		size_t n = utf8_len(p);

		if (n) {
			p += n;
			continue;
		}
		fwrite(run, 1, (size_t)(p - run), stdout);
		fputs("\xef\xbf\xbd", stdout);
		run = ++p;
	}
	fwrite(run, 1, (size_t)(p - run), stdout);
	putchar('\n');
	json_object_put(obj);
}
