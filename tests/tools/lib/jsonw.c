// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "jsonw.h"

#include <math.h>

void jsonw_init(struct jsonw *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	w->first[0] = true;
}

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Writes the separator, indentation and key of the next member. */
static void member(struct jsonw *w, const char *key)
{
	if (!w->first[w->depth])
		fputc(',', w->f);
	w->first[w->depth] = false;
	if (w->depth > 0) {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	if (key) {
		put_string(w->f, key);
		fputs(": ", w->f);
	}
}

static void jw_open(struct jsonw *w, const char *key, char c)
{
	member(w, key);
	fputc(c, w->f);
	if (w->depth < JSONW_MAX_DEPTH - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct jsonw *w, char c)
{
	bool empty = w->first[w->depth];

	if (w->depth > 0)
		w->depth--;
	if (!empty) {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	fputc(c, w->f);
	if (w->depth == 0)
		fputc('\n', w->f);
}

void jsonw_obj_open(struct jsonw *w, const char *key)
{
	jw_open(w, key, '{');
}

void jsonw_obj_close(struct jsonw *w)
{
	jw_close(w, '}');
}

void jsonw_arr_open(struct jsonw *w, const char *key)
{
	jw_open(w, key, '[');
}

void jsonw_arr_close(struct jsonw *w)
{
	jw_close(w, ']');
}

void jsonw_str(struct jsonw *w, const char *key, const char *val)
{
	member(w, key);
	put_string(w->f, val);
}

void jsonw_u64(struct jsonw *w, const char *key, uint64_t val)
{
	member(w, key);
	fprintf(w->f, "%llu", (unsigned long long)val);
}

void jsonw_double(struct jsonw *w, const char *key, double val)
{
	member(w, key);
	if (isfinite(val))
		fprintf(w->f, "%.3f", val);
	else
		fputs("null", w->f);
}

void jsonw_bool(struct jsonw *w, const char *key, bool val)
{
	member(w, key);
	fputs(val ? "true" : "false", w->f);
}
