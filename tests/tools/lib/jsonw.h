/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal streaming JSON writer over a FILE: objects, arrays, strings,
 * integers and doubles, with commas and escaping handled in one place.
 */
#ifndef LS_TOOLS_JSONW_H
#define LS_TOOLS_JSONW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSONW_MAX_DEPTH 16

struct jsonw {
	FILE *f;
	int depth;
	bool first[JSONW_MAX_DEPTH];
};

void jsonw_init(struct jsonw *w, FILE *f);
void jsonw_obj_open(struct jsonw *w, const char *key);
void jsonw_obj_close(struct jsonw *w);
void jsonw_arr_open(struct jsonw *w, const char *key);
void jsonw_arr_close(struct jsonw *w);
/* key is NULL inside arrays and at the top level. */
void jsonw_str(struct jsonw *w, const char *key, const char *val);
void jsonw_u64(struct jsonw *w, const char *key, uint64_t val);
/* Non-finite values are written as null. */
void jsonw_double(struct jsonw *w, const char *key, double val);
void jsonw_bool(struct jsonw *w, const char *key, bool val);

#endif
