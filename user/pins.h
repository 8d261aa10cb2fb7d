/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pin directory of an attachment, /sys/fs/bpf/loadshed/netN/IFACE
 * (0700), and the flock on it that serialises every command touching it.
 * N is the network namespace's cookie (SO_NETNS_COOKIE, unique for the
 * boot): an interface name means something only inside its namespace, so
 * an attachment is reached only from there (design.md §9.1).
 */
#ifndef LS_PINS_H
#define LS_PINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#include "maps.h"

#define LS_BPFFS    "/sys/fs/bpf"
#define LS_PIN_ROOT LS_BPFFS "/loadshed"
/* What an agent keeps outside bpffs: its log and its lock, per namespace. */
#define LS_RUN_ROOT "/run/loadshed"

/* Mounts bpffs at /sys/fs/bpf when it is not there. */
int ls_bpffs_ensure(void);

/* Whether ifname can be an interface's name (and so a directory's). */
bool ls_ifname_ok(const char *ifname);

/* The cookie of the calling thread's network namespace. 0 or -errno. */
int ls_netns_cookie(uint64_t *cookie);

/* Checks ifname and writes the attachment's pin directory into buf. */
int ls_pin_dir(const char *ifname, char *buf, size_t len);

/*
 * The path of ifname's file named suffix ("IFACE.log", "IFACE.agent") in
 * this namespace's run directory, /run/loadshed/netN (made, 0700).
 */
int ls_run_path(const char *ifname, const char *suffix, char *buf, size_t len);

/*
 * Opens and flocks the pin directory of ifname. With create, makes it
 * (and the root) first. Returns the locked fd, -ENOENT when ifname has no
 * attachment (and create is false), or another negative errno.
 */
int ls_lock(const char *ifname, bool create);
void ls_unlock(int *lock_fd);

/* An attachment found under the pin root. */
struct ls_listed {
	char ifname[IF_NAMESIZE];
	uint64_t netns; /* its namespace's cookie */
	bool here;	/* in the caller's namespace */
};

/* Every attachment, of every namespace, sorted; returns how many (≤ max). */
int ls_list(struct ls_listed *out, int max);

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
