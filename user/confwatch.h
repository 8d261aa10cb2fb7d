/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Following a config file by its content (see confwatch.c): the agent
 * reloads the policy when the file a path names has new bytes, however they
 * got there — an edit in place, an editor's rename, a symlink swapped, as
 * Kubernetes swaps a ConfigMap's ..data.
 */
#ifndef LS_CONFWATCH_H
#define LS_CONFWATCH_H

#include <stdint.h>

/* How often the file is read even when no event came (a directory we could not watch). */
#define LS_CONFWATCH_PERIOD_NS (10ull * 1000 * 1000 * 1000)

struct ls_confwatch;

/*
 * Starts following path (absolute, kept as given: never resolved once for
 * good). What the file holds now is the content seen; only a later change
 * counts. 0 or a negative errno.
 */
int ls_confwatch_open(struct ls_confwatch **out, const char *path);

/* The path it follows. */
const char *ls_confwatch_path(const struct ls_confwatch *w);

/*
 * Non-blocking, called every agent round at now_ns (CLOCK_MONOTONIC):
 * returns 1 when the file's content differs from the last content seen
 * (which it now is), 0 when not or not yet. The file is read once its
 * directories have had no event for one call and no writer holds it
 * modified and not closed, and every LS_CONFWATCH_PERIOD_NS regardless; new
 * bytes count once two reads a call apart found them. A file that cannot be
 * read is a content of its own: its going away is a change, and so is its
 * return.
 */
int ls_confwatch_check(struct ls_confwatch *w, uint64_t now_ns);

void ls_confwatch_close(struct ls_confwatch **w);

#endif
