/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pin directory of an attachment, /sys/fs/bpf/loadshed/IFACE (0700),
 * and the flock on it that serialises every command touching it.
 */
#ifndef LS_PINS_H
#define LS_PINS_H

#include <stdbool.h>
#include <stddef.h>
#include <net/if.h>

#include "maps.h"

#define LS_BPFFS    "/sys/fs/bpf"
#define LS_PIN_ROOT LS_BPFFS "/loadshed"

/* Mounts bpffs at /sys/fs/bpf when it is not there. */
int ls_bpffs_ensure(void);

/* Checks ifname and writes the attachment's pin directory into buf. */
int ls_pin_dir(const char *ifname, char *buf, size_t len);

/*
 * Opens and flocks the pin directory of ifname. With create, makes it
 * (and the root) first. Returns the locked fd, -ENOENT when ifname has no
 * attachment (and create is false), or another negative errno.
 */
int ls_lock(const char *ifname, bool create);
void ls_unlock(int *lock_fd);

/* Interfaces with a pin directory, sorted; returns how many (≤ max). */
int ls_list(char (*names)[IF_NAMESIZE], int max);

/* An attachment opened by a command: its pin directory, locked, and its maps. */
struct ls_attachment {
	char dir[128];
	int lock;
	struct ls_maps maps;
};

/*
 * Locks ifname's pin directory and opens its maps. -ENOENT: not attached;
 * -EPROTO: pinned by a build of another layout; err says what in a
 * sentence that names the interface.
 */
int ls_attachment_open(const char *ifname, struct ls_attachment *a, char *err, size_t errlen);
void ls_attachment_close(struct ls_attachment *a);

#endif
