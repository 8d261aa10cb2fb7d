/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the libFuzzer harnesses of tests/fuzz/ share. A harness reports a
 * broken invariant by aborting with one line saying which, so that
 * libFuzzer saves the input as a crash (build/fuzz/crashes/HARNESS/) and
 * the line tells what the input proves.
 */
#ifndef LS_FUZZ_H
#define LS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct ls_config;

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz: invariant broken (%s:%d: %s): ", __FILE__,          \
				__LINE__, #cond);                                                  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * The error contract of doc/design.md §14.2: rc is 0, or a negative errno
 * with a sentence in err.
 */
void fuzz_check_error_contract(const char *what, int rc, const char *err);

/*
 * A config that ls_config_validate() accepted: it compiles in both
 * generations to the same entries, every entry is one the dataplane can
 * use as it is (classes in use, services active, ports and prefixes
 * sorted and unique), each source address meets exactly its rules in the
 * longest prefix the trie would return (design.md §3.2), and compiled onto
 * its own records it keeps every slot (§8.2).
 */
void fuzz_check_config_compiles(const struct ls_config *c);

/* The libFuzzer entry points. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* LS_FUZZ_H */
