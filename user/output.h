/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Output in the style of bpftool and ip: text by default, JSON with -j
 * (pretty with -p). In JSON mode errors are {"error": "..."} on stdout.
 */
#ifndef LS_OUTPUT_H
#define LS_OUTPUT_H

#include <stdbool.h>
#include <json-c/json.h>

extern bool ls_json;
extern bool ls_pretty;

/* Exit codes of every command. */
enum {
	LS_EXIT_OK = 0,
	LS_EXIT_RUNTIME = 1,
	LS_EXIT_USAGE = 2,
};

/* Prints an error (text to stderr, or JSON to stdout) and returns code. */
int ls_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints obj as JSON on stdout and drops the reference. */
void ls_json_print(json_object *obj);

#endif
