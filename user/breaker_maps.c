// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "breaker.h"
#include "breaker.skel.h"
#include "breaker_maps.h"
#include "maps.h"
#include "config.h"
#include "log.h"

/* Pins of the breaker, in the attachment's directory. */
#define PIN_PREFIX "brk_"

int ls_cgroup2_mount(char *buf, size_t len)
{
	char line[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - "), *mnt = line;

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		/* The 5th field is the mount point. */
		for (int i = 0; i < 4 && mnt; i++) {
			mnt = strchr(mnt, ' ');
			if (mnt)
				mnt++;
		}
		if (!mnt)
			continue;
		*strchr(mnt, ' ') = '\0';
		snprintf(buf, len, "%s", mnt);
		fclose(f);
		return 0;
	}
	fclose(f);
	return -ENOENT;
}

static int pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/" PIN_PREFIX "%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The dest trie: each prefix with every (port range, upstream) of a prefix that holds it. */
static int fill_dests(int fd, const struct ls_upstreams *u)
{
	for (uint32_t i = 0; i < u->nr; i++) {
		for (uint32_t d = 0; d < u->up[i].nr_dest; d++) {
			const struct ls_upstream_dest *me = &u->up[i].dest[d];
			struct ls_brk_dest_key k = {.prefixlen = me->pfx.len_bits};
			struct ls_brk_dest v = {};

			memcpy(k.addr, me->pfx.addr, 16);
			/* Most specific prefix first: 128 bits down to 0. */
			for (int len = 128; len >= 0; len--)
				for (uint32_t j = 0; j < u->nr; j++)
					for (uint32_t e = 0; e < u->up[j].nr_dest; e++) {
						const struct ls_upstream_dest *o =
							&u->up[j].dest[e];

						if (o->pfx.len_bits != len ||
						    !ls_prefix_contains(&o->pfx, &me->pfx) ||
						    v.nr == LS_BRK_DEST_WAYS)
							continue;
						v.p[v.nr].lo = o->port_lo;
						v.p[v.nr].hi = o->port_hi;
						v.p[v.nr].up = (uint8_t)j;
						v.nr++;
					}
			if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
				return -errno;
		}
	}
	return 0;
}

/* The level of a cgroup path relative to the mount: its names ("" and "/" are 0). */
static uint32_t cgroup_level(const char *rel)
{
	uint32_t n = 0;

	for (const char *p = rel; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		n++;
		p += strcspn(p, "/");
	}
	return n;
}

/*
 * Whether a is b or a cgroup above it (each written relative to the mount;
 * "." and ".." are refused by the config): then b's processes already run
 * the programs attached to a, which must not run twice for them.
 */
static bool cgroup_holds(const char *a, const char *b)
{
	for (;;) {
		size_t na, nb;

		while (*a == '/')
			a++;
		while (*b == '/')
			b++;
		if (!*a)
			return true;
		na = strcspn(a, "/");
		nb = strcspn(b, "/");
		if (na != nb || strncmp(a, b, na))
			return false;
		a += na;
		b += nb;
	}
}

static int fill_upstreams(struct breaker_bpf *s, const struct ls_upstreams *u, const char *mnt)
{
	int ctl = bpf_map__fd(s->maps.brk_ctl), meta = bpf_map__fd(s->maps.brk_meta);

	for (uint32_t i = 0; i < u->nr; i++) {
		const struct ls_upstream_conf *c = &u->up[i];
		struct ls_brk_ctl v = {
			.state = LS_BRK_CLOSED, .slow_ns = c->brk.slow_ns, .active = 1};
		struct ls_upstream_meta m = {
			.active = 1,
			.mode = LS_BRK_AUTO,
			.window_time_based = c->brk.time_based,
			.window_size = c->brk.window_size,
			.minimum_calls = c->brk.minimum_calls,
			.failure_rate_ppm = c->brk.failure_rate_ppm,
			.slow_rate_ppm = c->brk.slow_rate_ppm,
			.half_open_permits = c->brk.half_open_permits,
			.slow_ns = c->brk.slow_ns,
			.open_wait_ns = c->brk.open_wait_ns,
			.half_open_max_wait_ns = c->brk.half_open_max_wait_ns,
		};
		char path[512];
		struct stat st;

		snprintf(m.name, sizeof(m.name), "%s", c->name);
		snprintf(m.cgroup, sizeof(m.cgroup), "%s", c->cgroup[0] ? c->cgroup : "/");
		snprintf(path, sizeof(path), "%s/%s", mnt, c->cgroup);
		if (stat(path, &st))
			return -errno;
		m.cgroup_id = st.st_ino;
		v.cgroup_id = st.st_ino;
		v.cgroup_level = cgroup_level(c->cgroup);
		if (bpf_map_update_elem(ctl, &i, &v, BPF_ANY) ||
		    bpf_map_update_elem(meta, &i, &m, BPF_ANY))
			return -errno;
	}
	return fill_dests(bpf_map__fd(s->maps.brk_dests), u);
}

static int attach_cgroup(struct breaker_bpf *s, const char *dir, const char *cgpath, uint32_t n)
{
	struct bpf_program *progs[] = {s->progs.ls_brk_connect4, s->progs.ls_brk_connect6,
				       s->progs.ls_brk_sockops, s->progs.ls_brk_ingress,
				       s->progs.ls_brk_release};
	const char *names[] = {"connect4", "connect6", "sockops", "ingress", "release"};
	int cg = open(cgpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (cg < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]) && !err; i++) {
		struct bpf_link *l = bpf_program__attach_cgroup(progs[i], cg);
		char name[64], path[512];

		if (!l) {
			err = -errno;
			break;
		}
		snprintf(name, sizeof(name), "link%u_%s", n, names[i]);
		err = pin_path(path, sizeof(path), dir, name);
		if (!err && bpf_link__pin(l, path))
			err = -errno;
		bpf_link__destroy(l); /* the pin holds it */
	}
	close(cg);
	return err;
}

int ls_breaker_check(const struct ls_config *cfg, char *err, size_t errlen)
{
	const struct ls_upstreams *u = &cfg->upstreams;
	char mnt[256], path[512];
	struct stat st;
	int rc;

	if (!u->nr)
		return 0;
	rc = ls_cgroup2_mount(mnt, sizeof(mnt));
	if (rc) {
		snprintf(err, errlen, "upstreams: no cgroup2 hierarchy is mounted");
		return rc;
	}
	for (uint32_t i = 0; i < u->nr; i++) {
		snprintf(path, sizeof(path), "%s/%s", mnt, u->up[i].cgroup);
		rc = stat(path, &st) ? -errno : !S_ISDIR(st.st_mode) ? -ENOTDIR : 0;
		if (rc) {
			snprintf(err, errlen, "[upstream %s] cgroup: %s: %s", u->up[i].name, path,
				 strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/*
 * What a reload carries over from the breaker it replaces, by upstream
 * name: state, mode, transitions and the per-CPU counters and histogram
 * as they are; a half-open state starts a fresh phase (breaker_restore).
 */
struct brk_saved {
	struct ls_upstream_meta meta[LS_MAX_UPSTREAMS];
	struct ls_brk_ctl ctl[LS_MAX_UPSTREAMS];
	void *stats[LS_MAX_UPSTREAMS], *latency[LS_MAX_UPSTREAMS];
};

static void saved_free(struct brk_saved *sv)
{
	for (int i = 0; i < LS_MAX_UPSTREAMS; i++) {
		free(sv->stats[i]);
		free(sv->latency[i]);
	}
	free(sv);
}

/* The breaker pinned in dir, or NULL without one (or when it cannot be read). */
static struct brk_saved *breaker_save(const char *dir)
{
	int ncpu = libbpf_num_possible_cpus();
	struct brk_saved *sv;
	struct ls_brk_maps m;

	if (ncpu <= 0 || ls_brk_maps_open(dir, &m))
		return NULL;
	sv = calloc(1, sizeof(*sv));
	for (uint32_t i = 0; sv && i < LS_MAX_UPSTREAMS; i++) {
		if (bpf_map_lookup_elem(m.meta, &i, &sv->meta[i]) || !sv->meta[i].active)
			continue;
		sv->stats[i] = calloc((size_t)ncpu, sizeof(struct ls_brk_stats));
		sv->latency[i] = calloc((size_t)ncpu, sizeof(struct ls_latency_hist));
		if (!sv->stats[i] || !sv->latency[i] ||
		    bpf_map_lookup_elem(m.ctl, &i, &sv->ctl[i]) ||
		    bpf_map_lookup_elem(m.stats, &i, sv->stats[i]) ||
		    bpf_map_lookup_elem(m.latency, &i, sv->latency[i]))
			sv->meta[i].active = 0;
	}
	ls_brk_maps_close(&m);
	return sv;
}

/* Puts back into the new maps what sv kept of each upstream that has the same name. */
static int breaker_restore(struct breaker_bpf *s, const struct ls_upstreams *u,
			   const struct brk_saved *sv)
{
	int ctl = bpf_map__fd(s->maps.brk_ctl), meta = bpf_map__fd(s->maps.brk_meta);

	for (uint32_t i = 0; i < u->nr; i++) {
		struct ls_upstream_meta m;
		struct ls_brk_ctl c;
		uint32_t j;

		for (j = 0; j < LS_MAX_UPSTREAMS; j++)
			if (sv->meta[j].active && !strcmp(sv->meta[j].name, u->up[i].name))
				break;
		if (j == LS_MAX_UPSTREAMS)
			continue;
		if (bpf_map_lookup_elem(meta, &i, &m) || bpf_map_lookup_elem(ctl, &i, &c))
			return -errno;
		m.mode = sv->meta[j].mode;
		m.to_open = sv->meta[j].to_open;
		m.to_half_open = sv->meta[j].to_half_open;
		m.to_closed = sv->meta[j].to_closed;
		m.state_since_ns = sv->meta[j].state_since_ns;
		c.state = sv->ctl[j].state;
		/*
		 * Half open: a fresh phase, all its permits. The sockets that held
		 * the others keep the old socket storage, so they can neither give
		 * them back nor end a trial here: the phase would wait for them
		 * forever. A new gen tells the agent its trials start again.
		 */
		c.permits = c.state == LS_BRK_HALF_OPEN ? (int32_t)m.half_open_permits : 0;
		c.gen = sv->ctl[j].gen + 1;
		if (bpf_map_update_elem(meta, &i, &m, BPF_ANY) ||
		    bpf_map_update_elem(ctl, &i, &c, BPF_ANY) ||
		    bpf_map_update_elem(bpf_map__fd(s->maps.brk_stats), &i, sv->stats[j],
					BPF_ANY) ||
		    bpf_map_update_elem(bpf_map__fd(s->maps.brk_latency), &i, sv->latency[j],
					BPF_ANY))
			return -errno;
	}
	return 0;
}

static int breaker_load(const char *dir, const struct ls_config *cfg, const struct brk_saved *sv,
			char *err, size_t errlen)
{
	const struct ls_upstreams *u = &cfg->upstreams;
	struct bpf_map *pinned[7];
	struct breaker_bpf *s;
	char mnt[256], path[512];
	int rc, state_fd = -1;

	if (!u->nr)
		return 0;
	rc = ls_breaker_check(cfg, err, errlen);
	if (rc)
		return rc;
	rc = ls_cgroup2_mount(mnt, sizeof(mnt));
	if (rc) {
		snprintf(err, errlen, "upstreams: no cgroup2 hierarchy is mounted");
		return rc;
	}
	s = breaker_bpf__open();
	if (!s) {
		snprintf(err, errlen, "upstreams: opening the breaker: %s", strerror(errno));
		return -errno;
	}
	pinned[0] = s->maps.brk_dests;
	pinned[1] = s->maps.brk_ctl;
	pinned[2] = s->maps.brk_stats;
	pinned[3] = s->maps.brk_latency;
	pinned[4] = s->maps.brk_meta;
	pinned[5] = s->maps.brk_socks;
	pinned[6] = s->maps.brk_conns;
	snprintf(path, sizeof(path), "%s/state", dir);
	state_fd = bpf_obj_get(path);
	rc = state_fd < 0 ? -errno : 0;
	if (!rc)
		rc = bpf_map__reuse_fd(s->maps.ls_state, state_fd);
	if (!rc)
		rc = breaker_bpf__load(s);
	if (rc) {
		snprintf(err, errlen, "upstreams: loading the breaker: %s", strerror(-rc));
		goto out;
	}
	rc = fill_upstreams(s, u, mnt);
	if (rc) {
		snprintf(err, errlen, "upstreams: the cgroup of an upstream under %s: %s", mnt,
			 strerror(-rc));
		goto out;
	}
	if (sv) {
		rc = breaker_restore(s, u, sv);
		if (rc) {
			snprintf(err, errlen, "upstreams: keeping their states: %s", strerror(-rc));
			goto out;
		}
	}
	/* Pinned once filled: the agent never sees a breaker half made. */
	for (size_t i = 0; i < 7 && !rc; i++) {
		/* brk_dests pinned as .../brk_dests: the map's name already says brk_. */
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(pinned[i]));
		rc = bpf_map__pin(pinned[i], path);
	}
	if (rc) {
		snprintf(err, errlen, "upstreams: pinning the breaker's maps: %s", strerror(-rc));
		goto out;
	}
	if (bpf_prog_attach(bpf_program__fd(s->progs.ls_brk_send), bpf_map__fd(s->maps.brk_conns),
			    BPF_SK_MSG_VERDICT, 0)) {
		rc = -errno;
		snprintf(err, errlen, "upstreams: attaching sk_msg: %s", strerror(-rc));
		goto out;
	}
	/*
	 * One set of links on each topmost cgroup: the programs are inherited
	 * below, and check each upstream's own cgroup at connect.
	 */
	for (uint32_t i = 0; i < u->nr && !rc; i++) {
		bool held = false;

		for (uint32_t j = 0; j < u->nr; j++)
			if (j != i && cgroup_holds(u->up[j].cgroup, u->up[i].cgroup) &&
			    (j < i || !cgroup_holds(u->up[i].cgroup, u->up[j].cgroup)))
				held = true;
		if (held)
			continue;
		snprintf(path, sizeof(path), "%s/%s", mnt, u->up[i].cgroup);
		rc = attach_cgroup(s, dir, path, i);
		if (rc)
			snprintf(err, errlen, "upstreams: attaching to cgroup %s: %s", path,
				 strerror(-rc));
	}
out:
	if (state_fd >= 0)
		close(state_fd);
	breaker_bpf__destroy(s);
	if (rc)
		ls_breaker_detach(dir);
	return rc;
}

void ls_breaker_detach(const char *dir)
{
	struct dirent *de;
	char path[512];
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, PIN_PREFIX, strlen(PIN_PREFIX)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!strncmp(de->d_name, PIN_PREFIX "link", strlen(PIN_PREFIX "link"))) {
			int fd = bpf_obj_get(path);

			if (fd >= 0) {
				bpf_link_detach(fd);
				close(fd);
			}
		}
		unlink(path);
	}
	if (d)
		closedir(d);
}

int ls_breaker_attach(const char *dir, const struct ls_config *cfg, char *err, size_t errlen)
{
	return breaker_load(dir, cfg, NULL, err, errlen);
}

int ls_breaker_apply(const char *dir, const struct ls_config *cfg, char *err, size_t errlen)
{
	struct brk_saved *sv;
	int rc;

	rc = ls_breaker_check(cfg, err, errlen);
	if (rc)
		return rc;
	sv = breaker_save(dir);
	ls_breaker_detach(dir);
	rc = breaker_load(dir, cfg, sv, err, errlen);
	if (sv)
		saved_free(sv);
	return rc;
}

static int open_pin(const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int ls_brk_maps_open(const char *dir, struct ls_brk_maps *m)
{
	int *fds[] = {&m->ctl, &m->stats, &m->latency, &m->meta};
	const char *names[] = {"brk_ctl", "brk_stats", "brk_latency", "brk_meta"};

	for (size_t i = 0; i < 4; i++)
		*fds[i] = -1;
	for (size_t i = 0; i < 4; i++) {
		*fds[i] = open_pin(dir, names[i]);
		if (*fds[i] < 0) {
			int err = *fds[i];

			ls_brk_maps_close(m);
			return err;
		}
	}
	return 0;
}

void ls_brk_maps_close(struct ls_brk_maps *m)
{
	int *fds[] = {&m->ctl, &m->stats, &m->latency, &m->meta};

	for (size_t i = 0; i < 4; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int ls_brk_read_stats(const struct ls_brk_maps *m, uint32_t up, struct ls_brk_stats *out)
{
	return ls_map_sum_percpu(m->stats, up, (__u64 *)out, sizeof(*out) / sizeof(__u64));
}

int ls_brk_read_latency(const struct ls_brk_maps *m, uint32_t up, struct ls_latency_hist *out)
{
	return ls_map_read_hist(m->latency, up, out);
}

int ls_brk_find(const struct ls_brk_maps *m, const char *name, struct ls_upstream_meta *meta)
{
	for (uint32_t i = 0; i < LS_MAX_UPSTREAMS; i++) {
		if (bpf_map_lookup_elem(m->meta, &i, meta))
			return -errno;
		if (meta->active && !strcmp(meta->name, name))
			return (int)i;
	}
	return -ENOENT;
}
