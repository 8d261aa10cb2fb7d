/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Loading the dataplane, pinning its maps and links, attaching it to an
 * interface, and taking all of it away again.
 */
#ifndef LS_ATTACH_H
#define LS_ATTACH_H

#include <stddef.h>
#include <stdint.h>
#include "loadshed.h"
#include "maps.h"

struct ls_attach_req {
	const char *ifname;
	int ifindex;
	int xdp_mode;	    /* 0: native, falling back to generic; or enum ls_xdp_mode */
	uint32_t max_flows; /* flow table size */
};

struct loadshed_bpf;

/*
 * Loads the programs with every map pinned in dir (which must exist and be
 * empty) and returns the map fds in m and the skeleton in *skel; nothing
 * is attached yet, so the caller can fill the maps first.
 */
int ls_dataplane_load(const char *dir, const struct ls_attach_req *r, struct loadshed_bpf **skel,
		      struct ls_maps *m);

/*
 * Attaches the loaded programs: XDP through a bpf_link (native, else
 * generic), egress through a TCX link where the kernel has it, else a
 * clsact filter. Links are pinned in dir. Records the modes in *am.
 * On failure nothing it made is left attached, and errbuf says what failed.
 */
int ls_dataplane_attach(const char *dir, const struct ls_attach_req *r, struct loadshed_bpf *skel,
			struct ls_agent_meta *am, char *errbuf, size_t errlen);

/* Detaches whatever ls_dataplane_attach made, from the pins and *am. Idempotent. */
void ls_dataplane_detach(const char *dir, const struct ls_agent_meta *am);

/*
 * Whether the attachment in dir is still on the device named ifname: 1 yes,
 * 0 no (the name has another ifindex, or the device was deleted and its
 * pinned XDP link detached, also when a new device took the old ifindex),
 * -errno when it cannot be told.
 */
int ls_dataplane_on(const char *dir, const struct ls_agent_meta *am, const char *ifname);

/* Removes every pin in dir, whoever made it, and dir itself. */
void ls_dataplane_unpin(const char *dir);

/*
 * Takes down an attachment whose pins this build cannot read (another
 * layout): detaches the pinned links and removes every file in dir.
 */
void ls_dataplane_teardown(const char *dir);

/* The pinned tick program of the attachment in dir: its fd, or a negative errno. */
int ls_tick_prog_open(const char *dir);

/*
 * Runs the tick program prog_fd on *t (BPF_PROG_RUN; the kernel writes its
 * outputs back into *t): 0, the program's nonzero return, or a negative
 * errno.
 */
int ls_tick_run(int prog_fd, struct ls_tick *t);

/* The dataplane's clock, bpf_ktime_get_ns(), read through the tick program. */
int ls_kernel_now(const char *dir, uint64_t *now_ns);

const char *ls_xdp_mode_name(int mode);
const char *ls_tc_mode_name(int mode);

#endif
