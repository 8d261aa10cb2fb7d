// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Argument helpers every command shares. */
#include <errno.h>
#include <string.h>

#include "commands.h"
#include "output.h"
#include "pins.h"

int ls_is_help(const char *arg)
{
	return !strcmp(arg, "help") || !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int ls_is_prefix(const char *arg, const char *word)
{
	size_t n = strlen(arg);

	return n && n <= strlen(word) && !strncmp(arg, word, n);
}

int ls_attachment_open(const char *ifname, struct ls_attachment *a)
{
	int err;

	a->lock = -1;
	if (ls_pin_dir(ifname, a->dir, sizeof(a->dir)))
		return ls_fail(LS_EXIT_USAGE, "'%s' is not an interface name", ifname);
	a->lock = ls_lock(ifname, false);
	if (a->lock == -ENOENT)
		return ls_fail(LS_EXIT_RUNTIME, "%s: not attached", ifname);
	if (a->lock < 0)
		return ls_fail(LS_EXIT_RUNTIME, "%s: %s", a->dir, strerror(-a->lock));
	err = ls_maps_open(a->dir, &a->maps, NULL);
	if (err) {
		ls_unlock(&a->lock);
		return ls_fail(LS_EXIT_RUNTIME, "%s: opening maps: %s", a->dir,
			       err == -EPROTO
				       ? "pinned by another loadshed build (detach, then attach)"
				       : strerror(-err));
	}
	return LS_EXIT_OK;
}

void ls_attachment_close(struct ls_attachment *a)
{
	ls_maps_close(&a->maps);
	ls_unlock(&a->lock);
}
