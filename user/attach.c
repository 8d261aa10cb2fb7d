// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/random.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "attach.h"
#include "loadshed.skel.h"
#include "log.h"
#include "pins.h"

/* Not in Debian's 6.1 UAPI headers nor in libbpf 1.1; values from later kernels. */
#ifndef BPF_TCX_EGRESS
#define BPF_TCX_EGRESS 47
#endif

#define LINK_XDP "link_xdp"
#define LINK_TC	 "link_tc"
/* The agent's tick program, pinned so that an agent started later runs it. */
#define PROG_TICK "prog_tick"

int ls_tick_prog_open(const char *dir)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, PROG_TICK);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int ls_tick_run(int prog_fd, struct ls_tick *t)
{
	LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = t, .ctx_size_in = sizeof(*t));

	return bpf_prog_test_run_opts(prog_fd, &run) ? -errno : (int)run.retval;
}

int ls_kernel_now(const char *dir, uint64_t *now_ns)
{
	struct ls_tick t = {.beat = 0, .sweep = 0};
	int fd = ls_tick_prog_open(dir), err;

	if (fd < 0)
		return fd;
	err = ls_tick_run(fd, &t);
	close(fd);
	*now_ns = t.now_ns;
	return err;
}

const char *ls_xdp_mode_name(int mode)
{
	return mode == LS_XDP_NATIVE ? "native" : mode == LS_XDP_GENERIC ? "generic" : "none";
}

const char *ls_tc_mode_name(int mode)
{
	return mode == LS_TC_TCX ? "tcx" : mode == LS_TC_CLSACT ? "clsact" : "none";
}

static int pin_obj(int fd, const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return bpf_obj_pin(fd, path) ? -errno : 0;
}

int ls_dataplane_load(const char *dir, const struct ls_attach_req *r, struct loadshed_bpf **skel,
		      struct ls_maps *m)
{
	struct loadshed_bpf *s;
	ssize_t n;
	int err;

	s = loadshed_bpf__open();
	if (!s)
		return -errno;
	/* The handshake table's key: no sender may know which tuples share a slot. */
	n = getrandom(&s->rodata->ls_hs_seed, sizeof(s->rodata->ls_hs_seed), 0);
	if (n != (ssize_t)sizeof(s->rodata->ls_hs_seed)) {
		err = n < 0 ? -errno : -EIO;
		loadshed_bpf__destroy(s);
		return err;
	}
	err = bpf_map__set_max_entries(s->maps.ls_flows, r->max_flows);
	if (!err)
		err = ls_maps_set_pins(s, dir);
	if (!err)
		err = loadshed_bpf__load(s);
	if (!err)
		err = ls_maps_from_skel(s, m);
	if (!err) {
		err = ls_maps_write_layout(m);
		if (!err)
			err = pin_obj(bpf_program__fd(s->progs.ls_tick), dir, PROG_TICK);
		if (err)
			ls_maps_close(m);
	}
	if (err) {
		loadshed_bpf__destroy(s);
		ls_maps_unpin(dir);
		return err;
	}
	*skel = s;
	return 0;
}

static int attach_xdp(const char *dir, const struct ls_attach_req *r, int prog_fd,
		      struct ls_agent_meta *am)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	int fd = -1, err;

	if (r->xdp_mode != LS_XDP_GENERIC) {
		opts.flags = XDP_FLAGS_DRV_MODE;
		fd = bpf_link_create(prog_fd, r->ifindex, BPF_XDP, &opts);
		if (fd >= 0)
			am->xdp_mode = LS_XDP_NATIVE;
		else if (r->xdp_mode == LS_XDP_NATIVE || (errno != EOPNOTSUPP && errno != EINVAL))
			return -errno;
		else
			pr_info("%s: no native XDP (%s): using generic mode", r->ifname,
				strerror(errno));
	}
	if (fd < 0) {
		opts.flags = XDP_FLAGS_SKB_MODE;
		fd = bpf_link_create(prog_fd, r->ifindex, BPF_XDP, &opts);
		if (fd < 0)
			return -errno;
		am->xdp_mode = LS_XDP_GENERIC;
	}
	err = pin_obj(fd, dir, LINK_XDP);
	if (err)
		bpf_link_detach(fd);
	close(fd);
	return err;
}

static int attach_tc(const char *dir, const struct ls_attach_req *r, int prog_fd,
		     struct ls_agent_meta *am)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = r->ifindex,
			    .attach_point = BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, tc, .prog_fd = prog_fd);
	int fd, err;

	fd = bpf_link_create(prog_fd, r->ifindex, BPF_TCX_EGRESS, NULL);
	if (fd >= 0) {
		err = pin_obj(fd, dir, LINK_TC);
		if (err)
			bpf_link_detach(fd);
		close(fd);
		if (!err)
			am->tc_mode = LS_TC_TCX;
		return err;
	}
	pr_info("%s: no TCX (%s): using a clsact qdisc", r->ifname, strerror(errno));
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	am->qdisc_created = !err;
	err = bpf_tc_attach(&hook, &tc);
	if (err) {
		if (am->qdisc_created) {
			hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&hook);
		}
		am->qdisc_created = 0;
		return err;
	}
	am->tc_mode = LS_TC_CLSACT;
	am->tc_handle = tc.handle;
	am->tc_priority = tc.priority;
	return 0;
}

int ls_dataplane_attach(const char *dir, const struct ls_attach_req *r, struct loadshed_bpf *skel,
			struct ls_agent_meta *am, char *errbuf, size_t errlen)
{
	int err;

	am->ifindex = r->ifindex;
	err = attach_xdp(dir, r, bpf_program__fd(skel->progs.ls_xdp_ingress), am);
	if (err) {
		snprintf(errbuf, errlen, "attaching XDP: %s", strerror(-err));
		return err;
	}
	err = attach_tc(dir, r, bpf_program__fd(skel->progs.ls_tc_egress), am);
	if (err) {
		snprintf(errbuf, errlen, "attaching the egress program: %s", strerror(-err));
		ls_dataplane_detach(dir, am);
		return err;
	}
	return 0;
}

static void detach_link(const char *dir, const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		/* Detach explicitly: another holder of the link fd would keep it alive. */
		bpf_link_detach(fd);
		close(fd);
	}
	unlink(path);
}

int ls_dataplane_on(const char *dir, const struct ls_agent_meta *am, const char *ifname)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[256];
	int fd, err;

	if (!am->ifindex)
		return -ENOENT;
	if (if_nametoindex(ifname) != am->ifindex)
		return 0;
	/* The kernel detaches a device's XDP link when it deletes the device. */
	snprintf(path, sizeof(path), "%s/%s", dir, LINK_XDP);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = bpf_obj_get_info_by_fd(fd, &info, &len) ? -errno : 0;
	close(fd);
	if (err)
		return err;
	return info.xdp.ifindex == am->ifindex;
}

void ls_dataplane_detach(const char *dir, const struct ls_agent_meta *am)
{
	detach_link(dir, LINK_XDP);
	detach_link(dir, LINK_TC);
	if (am->tc_mode == LS_TC_CLSACT && am->ifindex) {
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = am->ifindex,
				    .attach_point = BPF_TC_EGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, tc, .handle = am->tc_handle,
				    .priority = am->tc_priority);

		bpf_tc_detach(&hook, &tc);
		if (am->qdisc_created) {
			hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&hook);
		}
	}
}

/*
 * Removes every file in dir, not only the pins this build makes (a pin
 * left there would keep the directory, and attach refuses a directory
 * that holds any), then dir itself.
 */
static void remove_dir(const char *dir)
{
	struct dirent *de;
	char path[512];
	DIR *d;

	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	/* The namespace's directory and the root, when no other attachment is left. */
	snprintf(path, sizeof(path), "%s", dir);
	if (strrchr(path, '/'))
		*strrchr(path, '/') = 0;
	rmdir(path);
	rmdir(LS_PIN_ROOT);
}

void ls_dataplane_teardown(const char *dir)
{
	detach_link(dir, LINK_XDP);
	detach_link(dir, LINK_TC);
	remove_dir(dir);
}

void ls_dataplane_unpin(const char *dir)
{
	remove_dir(dir);
}
