// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The dataplane on random and mutated frames, through BPF_PROG_TEST_RUN.
 * One copy of the programs and maps is loaded at start (tests/bpf/lib/
 * harness.c, a flow table of MAX_FLOWS so that it fills), with a policy
 * of three services in two generations:
 *
 *   web  *:8080, admit = connections (requests in generation 1):
 *        high (reset; abort in gen 1) by source, low (drop) by DSCP 10,
 *        health (bypass) by source, default (drop)
 *   pool *:5432, admit = requests (connections in generation 1), max_defer
 *        1 ms: app (defer) by source, batch (reset, abort) by DSCP 10,
 *        default (drop, defer)
 *   addr 192.0.2.10:9000 and [2001:db8::10]:9000 (any address in gen 1),
 *        admit = connections, max_connections 3: high (drop) by source,
 *        default (reset); shadow when the input says so
 *
 * Each input (lib/frames.h) is a batch of frames, raw or built from
 * connections' state and mutated, with ticks, sleeps, limit changes and
 * generation switches between them. Every input starts from an empty
 * flow and handshake table and nothing in flight, so that a crash
 * reproduces from its input alone. After every frame and tick:
 *
 *  - accounting (design.md §5): for each service and class, in-flight
 *    equals the counted slot words of the flows in the table of that
 *    class (the connection's and the request's), total their sum, conns
 *    the flows of the service; none is negative; every flow holds a
 *    connection word that names its own service and class, counted as its
 *    admit mode says, a request word only while a request is outstanding,
 *    and no flow is of a bypass class;
 *  - admission (§4): a SYN writes no flow and takes no slot; a frame is
 *    never both admitted and shed, as a connection or as a request; a shed
 *    frame is not passed, one shed by drop or defer is dropped, and one
 *    sent back is the RST|ACK that answers it, field by field; a passed
 *    frame is unchanged; the action taken is its class's; a shadow service
 *    and a failing-open dataplane shed nothing; while every slot went
 *    through the partition rule, total <= L + the guarantees and the
 *    capped service's conns <= max_connections;
 *  - TC never changes a frame and decides nothing; TC and the tick only
 *    end flows and give slots back;
 *  - a sweep visits every flow, and a sweep with an idle timeout of 0
 *    leaves no flow and nothing in flight (§5.1).
 *
 * libFuzzer sees no coverage inside the kernel: the harness reports what
 * each frame did (verdict, counters moved, flow states) as extra counters,
 * so that inputs reaching new dataplane behaviour are kept. Needs root.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "loadshed.skel.h"
#include "lib/harness.h"
#include "lib/pkt.h"
#include "lib/frames.h"
#include "lib/fuzz.h"
#include "lib/dpparse.h"

#define MAX_FLOWS   16
#define ETH_HLEN_   14
#define NR_SVC_KEYS (FZ_NR_SERVICES * LS_MAX_CLASSES)
#define SVC_WEB	    0
#define SVC_POOL    1
#define SVC_ADDR    2
#define ADDR_CAP    3 /* max_connections of addr */
#define MAX_SLEEPS  1
#define MAX_DIRTY   64 /* handshake sets written by one input, before a full clear */
#define NR_FEATURES (1 << 14)
#define SYNS_FIELD  1 /* of struct ls_class_stats, in __u64s */

/* What this input has done so far, and what the maps said after its last step. */
struct input {
	uint32_t gen;
	int failing_open;
	int shadow;
	int unchecked; /* some slot was taken without the partition rule */
	int sleeps;
	int flows; /* in the table after the last step */
	struct ls_limits lim[FZ_NR_SERVICES];
	uint32_t max_limit[FZ_NR_SERVICES], max_guarantee[FZ_NR_SERVICES]; /* during the input */
	struct ls_class_stats st[NR_SVC_KEYS];
	struct ls_iface_stats is;
	struct fz_conn conns[FZ_NR_CONNS];
	uint8_t conn_used[FZ_NR_CONNS];
};

static struct dp dp;
static int verbose;			 /* FUZZ_VERBOSE=1: every step on stderr */
static struct ls_inflight *inflight_map; /* the mmapped inflight map */
static struct ls_service_policy policy[LS_NR_GENS][FZ_NR_SERVICES];
static uint16_t real_ports[2 * FZ_CONN_INSTANCES];
static void *percpu_buf;
static size_t percpu_stride;
static __u32 dirty_sets[MAX_DIRTY]; /* handshake sets this input's SYN-ACKs may have written */
static int nr_dirty = -1;	    /* -1: any set may hold a way */

/* Kept by libFuzzer as coverage: what the dataplane did. */
__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t features[NR_FEATURES];

static void feature(uint64_t h)
{
	uint8_t *c;

	h = (h ^ (h >> 31)) * 0x9e3779b97f4a7c15ull;
	c = &features[(h >> 32) % NR_FEATURES];
	if (*c < 255)
		(*c)++;
}

/* ---- setup ---------------------------------------------------------------- */

/*
 * A network namespace of the harness's own, so that socket lookups (the
 * adoption of §4.6) see only the loopback connections made here, whose
 * client ports fill real_ports. Without one, nothing is adoptable.
 */
static void real_connections(void)
{
	static const uint16_t ports[2] = {FZ_PORT_POOL, FZ_PORT_WEB};
	struct ifreq ifr = {0};
	int fd, k = 0;

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "fuzz_dataplane: no network namespace (%s): no adoptions\n",
			strerror(errno));
		return;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
	FUZZ_CHECK(fd >= 0 && !ioctl(fd, SIOCSIFFLAGS, &ifr), "lo up: %s", strerror(errno));
	close(fd);
	for (int p = 0; p < 2; p++) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ports[p])};
		int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		FUZZ_CHECK(lfd >= 0 &&
				   !setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) &&
				   !bind(lfd, (struct sockaddr *)&a, sizeof(a)) && !listen(lfd, 16),
			   "listen on %u: %s", ports[p], strerror(errno));
		for (int i = 0; i < FZ_CONN_INSTANCES; i++, k++) {
			struct sockaddr_in local;
			socklen_t len = sizeof(local);
			int cfd = socket(AF_INET, SOCK_STREAM, 0);

			FUZZ_CHECK(cfd >= 0 && !connect(cfd, (struct sockaddr *)&a, sizeof(a)) &&
					   accept(lfd, NULL, NULL) >= 0 &&
					   !getsockname(cfd, (struct sockaddr *)&local, &len),
				   "loopback connection: %s", strerror(errno));
			real_ports[k] = ntohs(local.sin_port);
		}
	}
}

static void class_rules(struct ls_service_policy *p, uint32_t svc, uint32_t gen)
{
	if (svc == SVC_WEB) {
		dp_policy_class(p, 0, LS_ACT_DROP);
		dp_policy_class(p, 1, LS_ACT_RESET);
		dp_policy_class(p, 2, LS_ACT_DROP);
		dp_policy_class(p, 3, LS_ACT_BYPASS);
		if (gen == 1)
			dp_policy_req_action(p, 1, LS_REQ_ABORT);
		dp_policy_rule(p, 1, 1, 0, 0, LS_DSCP_ANY);
		dp_policy_rule(p, 3, 1, 0, 0, LS_DSCP_ANY);
		dp_policy_rule(p, 2, 0, 0, 0, 10);
	} else if (svc == SVC_POOL) {
		dp_policy_class(p, 0, LS_ACT_DROP);
		dp_policy_class(p, 1, LS_ACT_DROP);
		dp_policy_class(p, 2, LS_ACT_RESET);
		dp_policy_req_action(p, 2, LS_REQ_ABORT);
		dp_policy_rule(p, 1, 1, 0, 0, LS_DSCP_ANY);
		dp_policy_rule(p, 2, 0, 0, 0, 10);
		p->max_defer_ms = 1;
	} else {
		dp_policy_class(p, 0, LS_ACT_RESET);
		dp_policy_class(p, 1, LS_ACT_DROP);
		dp_policy_rule(p, 1, 1, 0, 0, LS_DSCP_ANY);
		p->max_connections = ADDR_CAP;
	}
}

static void write_policy(uint32_t gen, uint32_t svc, int shadow)
{
	struct ls_service_policy p = policy[gen][svc];

	if (shadow)
		p.flags |= LS_SVC_SHADOW;
	FUZZ_CHECK(!dp_policy(&dp, gen, svc, &p), "policy write");
}

static void load_policy(void)
{
	for (uint32_t gen = 0; gen < LS_NR_GENS; gen++) {
		for (uint32_t svc = 0; svc < FZ_NR_SERVICES; svc++) {
			struct ls_service_policy *p = &policy[gen][svc];
			int requests = (svc == SVC_POOL) == (gen == 0);

			dp_policy_init(p, LS_SVC_ACTIVE, 0);
			class_rules(p, svc, gen);
			p->admit = svc != SVC_ADDR && requests ? LS_ADMIT_REQUESTS
							       : LS_ADMIT_CONNECTIONS;
			write_policy(gen, svc, 0);
		}
		FUZZ_CHECK(!dp_prefix(&dp, gen, SVC_WEB, "10.1.0.0/16", 1u << 0) &&
				   !dp_prefix(&dp, gen, SVC_WEB, "2001:db8:1::/48", 1u << 0) &&
				   !dp_prefix(&dp, gen, SVC_WEB, "10.9.0.0/16", 1u << 1) &&
				   !dp_prefix(&dp, gen, SVC_POOL, "10.1.0.0/16", 1u << 0) &&
				   !dp_prefix(&dp, gen, SVC_POOL, "2001:db8:1::/48", 1u << 0) &&
				   !dp_prefix(&dp, gen, SVC_ADDR, "10.1.0.0/16", 1u << 0),
			   "prefix writes");
		FUZZ_CHECK(!dp_port_any(&dp, gen, FZ_PORT_WEB, SVC_WEB) &&
				   !dp_port_any(&dp, gen, FZ_PORT_POOL, SVC_POOL),
			   "port writes");
		if (gen == 0)
			FUZZ_CHECK(!dp_port_addr(&dp, 0, FZ_PORT_ADDR, "192.0.2.10", SVC_ADDR) &&
					   !dp_port_addr(&dp, 0, FZ_PORT_ADDR, "2001:db8::10",
							 SVC_ADDR),
				   "address writes");
		else
			FUZZ_CHECK(!dp_port_any(&dp, 1, FZ_PORT_ADDR, SVC_ADDR), "port writes");
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int err, fd;

	(void)argc;
	(void)argv;
	verbose = getenv("FUZZ_VERBOSE") && *getenv("FUZZ_VERBOSE") == '1';
	real_connections();
	err = dp_open(&dp, MAX_FLOWS);
	if (err) {
		fprintf(stderr, "fuzz_dataplane: cannot load the dataplane: %s%s\n", strerror(-err),
			geteuid() ? " (needs root)" : "");
		exit(1);
	}
	fd = bpf_map__fd(dp.skel->maps.ls_inflight);
	inflight_map = mmap(NULL, LS_MAX_SERVICES * sizeof(struct ls_inflight),
			    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	FUZZ_CHECK(inflight_map != MAP_FAILED, "mmap of inflight: %s", strerror(errno));
	percpu_stride = (sizeof(struct ls_class_stats) + 7) & ~(size_t)7;
	percpu_buf = calloc(NR_SVC_KEYS, percpu_stride * (size_t)dp.nr_cpus);
	FUZZ_CHECK(percpu_buf, "out of memory");
	load_policy();
	return 0;
}

/* ---- reading the maps ------------------------------------------------------- */

/* The class counters of the three services, summed over CPUs. */
static void read_class_stats(struct ls_class_stats *out)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int fd = bpf_map__fd(dp.skel->maps.ls_class_stats);
	__u32 keys[NR_SVC_KEYS], out_batch, count = NR_SVC_KEYS;
	int err;

	err = bpf_map_lookup_batch(fd, NULL, &out_batch, keys, percpu_buf, &count, &opts);
	FUZZ_CHECK((!err || errno == ENOENT) && count == NR_SVC_KEYS, "class_stats: %s",
		   strerror(errno));
	memset(out, 0, NR_SVC_KEYS * sizeof(*out));
	for (uint32_t k = 0; k < NR_SVC_KEYS; k++) {
		__u64 *sum = (__u64 *)&out[keys[k]];

		for (int cpu = 0; cpu < dp.nr_cpus; cpu++) {
			const __u64 *v =
				(const __u64 *)((char *)percpu_buf +
						(k * (size_t)dp.nr_cpus + cpu) * percpu_stride);

			for (size_t i = 0; i < sizeof(*out) / sizeof(__u64); i++)
				sum[i] += v[i];
		}
	}
}

static void snapshot(struct input *in)
{
	read_class_stats(in->st);
	FUZZ_CHECK(!dp_iface_stats(&dp, &in->is), "iface_stats");
}

/* Every flow of the table into keys and vals; returns how many. */
static int read_flows(struct ls_flow_key *keys, struct ls_flow *vals, int cap)
{
	int fd = bpf_map__fd(dp.skel->maps.ls_flows), n = 0, err;
	__u32 batch, *in_batch = NULL;

	do {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 count = (__u32)(cap - n);

		err = bpf_map_lookup_batch(fd, in_batch, &batch, keys + n, vals + n, &count, &opts);
		FUZZ_CHECK(!err || errno == ENOENT, "flows: %s", strerror(errno));
		n += (int)count;
		in_batch = &batch;
	} while (!err && n < cap);
	return n;
}

/* ---- the invariants ----------------------------------------------------------- */

static const struct ls_service_policy *pol_of(const struct input *in, uint32_t svc)
{
	return &policy[in->gen][svc];
}

/*
 * §5: in-flight per service and class equals the counted slot words of
 * the flows in the table, conns the flows; nothing is negative.
 */
static int check_accounting(struct input *in)
{
	static struct ls_flow_key keys[2 * MAX_FLOWS];
	static struct ls_flow vals[2 * MAX_FLOWS];
	int32_t cls[FZ_NR_SERVICES][LS_MAX_CLASSES] = {0}, conns[FZ_NR_SERVICES] = {0};
	int n = read_flows(keys, vals, 2 * MAX_FLOWS);

	FUZZ_CHECK(n <= MAX_FLOWS, "%d flows in a table of %d", n, MAX_FLOWS);
	for (int i = 0; i < n; i++) {
		const struct ls_flow *f = &vals[i];
		__u64 s = f->slot, r = f->req;
		int requests = !!(f->flags & LS_FLOW_REQUESTS);

		FUZZ_CHECK(s, "flow %d is in the table without its connection's slot", i);
		FUZZ_CHECK((s & LS_SLOT_PRESENT) && ls_slot_svc(s) == f->svc &&
				   ls_slot_cls(s) == f->cls,
			   "flow %d: slot word %#llx is not of its service %u class %u", i,
			   (unsigned long long)s, f->svc, f->cls);
		FUZZ_CHECK(f->svc < FZ_NR_SERVICES && f->cls < LS_MAX_CLASSES,
			   "flow %d: service %u class %u", i, f->svc, f->cls);
		FUZZ_CHECK(pol_of(in, f->svc)->classes[f->cls].action != LS_ACT_BYPASS,
			   "flow %d is of bypass class %u", i, f->cls);
		FUZZ_CHECK((s & LS_SLOT_COUNTED ? 0 : 1) == requests,
			   "flow %d: connection slot %scounted, flow admitted under %s", i,
			   s & LS_SLOT_COUNTED ? "" : "not ",
			   requests ? "requests" : "connections");
		FUZZ_CHECK(!r || ((r & LS_SLOT_PRESENT) && ls_slot_svc(r) == f->svc &&
				  ls_slot_cls(r) == f->cls &&
				  (r & LS_SLOT_COUNTED ? 1 : 0) == requests),
			   "flow %d: request word %#llx does not fit the flow (%u/%u, flags %#x)",
			   i, (unsigned long long)r, f->svc, f->cls, f->flags);
		FUZZ_CHECK(!r || f->state == LS_FLOW_REQUEST,
			   "flow %d holds a request slot in state %u, not a request's", i,
			   f->state);
		conns[f->svc]++;
		if (s & LS_SLOT_COUNTED)
			cls[f->svc][f->cls]++;
		if (r & LS_SLOT_COUNTED)
			cls[f->svc][f->cls]++;
		feature(0x100000ull | (uint64_t)f->state << 16 | (uint64_t)f->flags << 8 |
			(uint64_t) !!r << 4 | (uint64_t)f->svc << 2 |
			(s & LS_SLOT_COUNTED ? 1 : 0));
	}
	for (uint32_t svc = 0; svc < LS_MAX_SERVICES; svc++) {
		const struct ls_inflight *inf = &inflight_map[svc];
		int32_t total = 0, want_total = 0;

		for (uint32_t c = 0; c < LS_MAX_CLASSES; c++) {
			int32_t want = svc < FZ_NR_SERVICES ? cls[svc][c] : 0;

			FUZZ_CHECK(inf->cls[c] >= 0, "service %u class %u: in-flight %d", svc, c,
				   inf->cls[c]);
			FUZZ_CHECK(inf->cls[c] == want,
				   "service %u class %u: in-flight %d, but %d counted slots in the "
				   "flow table",
				   svc, c, inf->cls[c], want);
			total += inf->cls[c];
			want_total += want;
		}
		FUZZ_CHECK(inf->total >= 0 && inf->total == total && total == want_total,
			   "service %u: in-flight total %d, classes %d, flows %d", svc, inf->total,
			   total, want_total);
		FUZZ_CHECK(inf->conns >= 0 && inf->conns == (svc < FZ_NR_SERVICES ? conns[svc] : 0),
			   "service %u: %d connections, %d flows in the table", svc, inf->conns,
			   svc < FZ_NR_SERVICES ? conns[svc] : 0);
		if (svc >= FZ_NR_SERVICES || in->unchecked)
			continue;
		FUZZ_CHECK((int64_t)inf->total <=
				   (int64_t)in->max_limit[svc] + in->max_guarantee[svc],
			   "service %u: %d in flight, over L %u + guarantees %u, and every slot "
			   "went through the partition rule",
			   svc, inf->total, in->max_limit[svc], in->max_guarantee[svc]);
		FUZZ_CHECK(svc != SVC_ADDR || inf->conns <= ADDR_CAP,
			   "service %u: %d connections over max_connections %d", svc, inf->conns,
			   ADDR_CAP);
	}
	return n;
}

static __u32 csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * What XDP sent back answers the segment in (§4.5): the same L2 header
 * (VLAN tags kept) with the MAC addresses swapped, then an IP header
 * without options or extension headers from the server's address to the
 * client's, and a bare RST|ACK between their ports: for a SYN seq 0 and
 * ack = ISN + 1 + payload, else seq = the segment's acknowledgment and ack
 * = what it sent; good checksums. What the segment says comes from the
 * dataplane's own parser: the RST's making is checked, not the parsing.
 */
static void check_rst(const uint8_t *in, size_t in_len, const uint8_t *f, size_t len)
{
	struct fz_pkt p;
	size_t off, l4;
	uint32_t want_seq, want_ack;
	__u32 sum = 0;

	FUZZ_CHECK(fz_parse(in, in_len, 1, &p) == FZ_PARSE_TCP, "XDP_TX of a frame not TCP");
	off = p.l3_off;
	FUZZ_CHECK(len == off + (p.ipv6 ? 60 : 40), "XDP_TX: %zu bytes, not a bare RST", len);
	FUZZ_CHECK(!memcmp(f, in + 6, 6) && !memcmp(f + 6, in, 6) &&
			   !memcmp(f + 12, in + 12, off - 12),
		   "XDP_TX: the L2 header is not the segment's with its MAC addresses swapped");
	if (!p.ipv6) {
		FUZZ_CHECK(f[off] == 0x45 && f[off + 9] == IPPROTO_TCP &&
				   (f[off + 2] << 8 | f[off + 3]) == 40,
			   "XDP_TX: not a 40-byte IPv4 packet of TCP without options");
		FUZZ_CHECK(!memcmp(f + off + 12, p.key.server + 12, 4) &&
				   !memcmp(f + off + 16, p.key.client + 12, 4),
			   "XDP_TX: IPv4 addresses not the segment's swapped");
		FUZZ_CHECK(pkt_csum(f + off, 20, 0) == 0, "XDP_TX: bad IPv4 header checksum");
		l4 = off + 20;
		for (int i = 0; i < 8; i += 2)
			sum += (__u32)(f[off + 12 + i] << 8 | f[off + 13 + i]);
	} else {
		FUZZ_CHECK(f[off] >> 4 == 6 && f[off + 6] == IPPROTO_TCP &&
				   (f[off + 4] << 8 | f[off + 5]) == 20,
			   "XDP_TX: not an IPv6 packet of 20 bytes of TCP");
		FUZZ_CHECK(!memcmp(f + off + 8, p.key.server, 16) &&
				   !memcmp(f + off + 24, p.key.client, 16),
			   "XDP_TX: IPv6 addresses not the segment's swapped");
		l4 = off + 40;
		for (int i = 0; i < 32; i += 2)
			sum += (__u32)(f[off + 8 + i] << 8 | f[off + 9 + i]);
	}
	sum += IPPROTO_TCP + 20;
	FUZZ_CHECK(!memcmp(f + l4, &p.key.server_port, 2) &&
			   !memcmp(f + l4 + 2, &p.key.client_port, 2),
		   "XDP_TX: ports not the segment's swapped");
	FUZZ_CHECK(f[l4 + 12] == 5 << 4 && f[l4 + 13] == (PKT_RST | PKT_ACK),
		   "XDP_TX: TCP offset %02x flags %02x, not a bare RST|ACK", f[l4 + 12],
		   f[l4 + 13]);
	want_seq = p.tcp_flags & PKT_SYN ? 0 : p.ack_seq;
	want_ack = p.seq + (p.tcp_flags & PKT_SYN ? 1 : 0) + p.payload_len +
		   (p.tcp_flags & PKT_FIN ? 1 : 0);
	FUZZ_CHECK(get32(f + l4 + 4) == want_seq && get32(f + l4 + 8) == want_ack,
		   "XDP_TX: seq %u ack %u, the segment (flags %#x seq %u ack %u, %u bytes) wants "
		   "%u and %u",
		   get32(f + l4 + 4), get32(f + l4 + 8), p.tcp_flags, p.seq, p.ack_seq,
		   p.payload_len, want_seq, want_ack);
	FUZZ_CHECK(pkt_csum(f + l4, 20, csum_fold(sum)) == 0, "XDP_TX: bad TCP checksum");
}

#define D(field) (long long)(b->field - a->field)

/* Sums of what moved in every class between two snapshots, and which fields moved. */
struct moved {
	long long conn_admit, conn_shed, req_admit, req_shed;
	long long decided;   /* any counter only XDP may move */
	long long unchecked; /* slots taken without the partition rule */
	uint32_t fields;     /* bit i: field i of ls_class_stats moved somewhere */
};

static void class_moves(const struct input *in, const struct ls_class_stats *after, __u32 verdict,
			struct moved *m)
{
	memset(m, 0, sizeof(*m));
	for (uint32_t k = 0; k < NR_SVC_KEYS; k++) {
		const struct ls_class_stats *a = &in->st[k], *b = &after[k];
		const struct ls_class_policy *cp =
			&pol_of(in, k / LS_MAX_CLASSES)->classes[k % LS_MAX_CLASSES];
		uint32_t svc = k / LS_MAX_CLASSES, cls = k % LS_MAX_CLASSES, mask = 0;
		long long shed = D(shed_drop) + D(shed_reset) + D(deferred) + D(aborted);

		for (size_t i = 0; i < sizeof(*a) / sizeof(__u64); i++)
			if (((const __u64 *)a)[i] != ((const __u64 *)b)[i])
				mask |= 1u << i;
		if (!mask)
			continue;
		feature((uint64_t)k << 32 | mask);
		m->fields |= mask;
		/* One the full table cannot track: a new connection is shed, one under way passes.
		 */
		m->conn_admit += D(admitted) + D(adopted) +
				 (D(shed_drop) + D(shed_reset) ? 0 : D(untracked));
		m->conn_shed += D(shed_drop) + D(shed_reset);
		m->req_admit += D(requests);
		m->req_shed += D(deferred) + D(aborted) + D(expired);
		m->unchecked += D(would_shed) + D(fail_open) + D(adopted);
		m->decided += D(syns) + D(handshakes) + D(admitted) + D(adopted) + D(shed_drop) +
			      D(shed_reset) + D(would_shed) + D(fail_open) + D(untracked) +
			      D(requests) + D(deferred) + D(aborted) + D(abandoned) + D(expired) +
			      D(pipelined) + D(untrusted);
		FUZZ_CHECK(!D(shed_reset) || cp->action == LS_ACT_RESET,
			   "service %u class %u: shed with a RST, its action is %u", svc, cls,
			   cp->action);
		FUZZ_CHECK(!D(shed_drop) || cp->action == LS_ACT_DROP,
			   "service %u class %u: shed by drop, its action is %u", svc, cls,
			   cp->action);
		FUZZ_CHECK(!D(deferred) || cp->req_action == LS_REQ_DEFER,
			   "service %u class %u: a request deferred, its action is %u", svc, cls,
			   cp->req_action);
		FUZZ_CHECK(!D(aborted) || cp->req_action == LS_REQ_ABORT,
			   "service %u class %u: a request aborted, its action is %u", svc, cls,
			   cp->req_action);
		FUZZ_CHECK(cp->action != LS_ACT_BYPASS || (!shed && !D(admitted) && !D(requests)),
			   "service %u bypass class %u: admitted or shed", svc, cls);
		FUZZ_CHECK(!(in->shadow && svc == SVC_ADDR) || (!shed && !D(expired)),
			   "service %u in shadow mode shed (class %u)", svc, cls);
		FUZZ_CHECK(!in->failing_open || !shed,
			   "service %u class %u shed while the dataplane fails open", svc, cls);
		FUZZ_CHECK(!D(shed_drop) || verdict == XDP_DROP,
			   "service %u class %u: shed by drop, verdict %u", svc, cls, verdict);
		FUZZ_CHECK(!D(deferred) || verdict == XDP_DROP,
			   "service %u class %u: deferred, verdict %u", svc, cls, verdict);
	}
}

/* One frame's verdict and counters, against the frame and the class actions; what moved. */
static uint32_t check_frame(struct input *in, int xdp, const uint8_t *frame, size_t len,
			    const struct dp_run *r, const struct ls_class_stats *after)
{
	int passed = xdp ? r->retval == XDP_PASS : r->retval == TC_ACT_OK;
	struct moved m;

	class_moves(in, after, r->retval, &m);
	if (m.unchecked)
		in->unchecked = 1;
	if (passed)
		FUZZ_CHECK(r->len == len && !memcmp(r->out, frame, len),
			   "%s passed a frame it changed", xdp ? "XDP" : "TC");
	if (!xdp) {
		FUZZ_CHECK(r->retval == TC_ACT_OK, "TC returned %u", r->retval);
		FUZZ_CHECK(!m.decided, "TC moved an admission counter (fields %#x)", m.fields);
		return m.fields;
	}
	FUZZ_CHECK(r->retval == XDP_PASS || r->retval == XDP_DROP || r->retval == XDP_TX,
		   "XDP returned %u", r->retval);
	FUZZ_CHECK(m.conn_admit + m.conn_shed <= 1,
		   "one frame admitted %lld and shed %lld connections", m.conn_admit, m.conn_shed);
	FUZZ_CHECK(m.req_admit + m.req_shed <= 1, "one frame started %lld and shed %lld requests",
		   m.req_admit, m.req_shed);
	FUZZ_CHECK(!(m.conn_shed || m.req_shed) || !passed, "a frame was shed and passed");
	FUZZ_CHECK(!(m.conn_admit || m.req_admit) || m.conn_shed || m.req_shed || passed,
		   "a frame admitted and not shed was not passed (verdict %u)", r->retval);
	if (r->retval == XDP_TX)
		check_rst(frame, len, r->out, r->len);
	return m.fields;
}

/* ---- running an input ------------------------------------------------------- */

/* What a step did as a feature: which step, its verdict, which interface counters moved. */
static void step_feature(uint64_t what, __u32 verdict, const struct ls_iface_stats *before,
			 const struct ls_iface_stats *after)
{
	uint32_t is = 0;

	for (size_t i = 0; i < sizeof(*after) / sizeof(__u64); i++)
		if (((const __u64 *)before)[i] != ((const __u64 *)after)[i])
			is |= 1u << i;
	feature(what << 40 | (uint64_t)verdict << 32 | is);
}

/*
 * Notes the handshake set a frame sent at TC may have written, if it is a
 * SYN-ACK, so that the next input starts with that set empty.
 */
static void note_synack(const uint8_t *frame, size_t len)
{
	struct fz_pkt p;

	if (nr_dirty < 0 || fz_parse(frame, len, 0, &p) != FZ_PARSE_TCP ||
	    (p.tcp_flags & (PKT_SYN | PKT_ACK | PKT_RST)) != (PKT_SYN | PKT_ACK))
		return;
	if (nr_dirty < MAX_DIRTY)
		dirty_sets[nr_dirty++] = dp_hs_set(&dp, &p.key);
	else
		nr_dirty = -1;
}

/*
 * BPF_PROG_TEST_RUN refuses an skb shorter than an Ethernet header, and
 * one whose Ethernet type is IPv4 or IPv6 too short for that IP header.
 */
static int tc_too_short(const uint8_t *frame, size_t len)
{
	uint16_t type = (uint16_t)(frame[12] << 8 | frame[13]);

	return (type == 0x0800 && len < ETH_HLEN_ + 20) || (type == 0x86dd && len < ETH_HLEN_ + 40);
}

/* FUZZ_VERBOSE: one line a frame, to read what an input does. */
static void trace(int xdp, size_t len, uint64_t what, __u32 verdict, uint32_t fields, int flows)
{
	static const char *const names[] = {
		"packets",	"syns",	      "handshakes",   "admitted",  "adopted",
		"shed_drop",	"shed_reset", "would_shed",   "fail_open", "untracked",
		"requests",	"deferred",   "aborted",      "abandoned", "expired",
		"stalled",	"pipelined",  "server_first", "ended_fin", "ended_rst",
		"ended_reused", "ended_idle", "untrusted",
	};
	static const char *const xdp_verdicts[] = {"aborted", "drop", "pass", "tx", "redirect"};

	fprintf(stderr, "%s %zu bytes", xdp ? "XDP" : "TC ", len);
	if (what >> 16 == FZ_SEGMENT || what >> 16 == FZ_MUTATED)
		fprintf(stderr, " (%s kind %u of conn spec %u)",
			what >> 16 == FZ_SEGMENT ? "segment" : "mutated",
			(unsigned int)(what >> 8 & 0xff), (unsigned int)(what & 0xff));
	fprintf(stderr, ": %s,", xdp && verdict < 5 ? xdp_verdicts[verdict] : verdict ? "?" : "ok");
	for (uint32_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (fields >> i & 1)
			fprintf(stderr, " %s", names[i]);
	fprintf(stderr, "; flows %d, in flight", flows);
	for (uint32_t svc = 0; svc < FZ_NR_SERVICES; svc++)
		fprintf(stderr, " %d/%d", inflight_map[svc].total, inflight_map[svc].conns);
	fputc('\n', stderr);
}

/* TC and the tick only end flows and give slots back: nothing grows. */
static void check_only_gives_back(const char *who, int flows_before, int flows,
				  const struct ls_inflight *before)
{
	FUZZ_CHECK(flows <= flows_before, "%s added flows (%d, were %d)", who, flows, flows_before);
	for (uint32_t svc = 0; svc < FZ_NR_SERVICES; svc++) {
		const struct ls_inflight *a = &before[svc], *b = &inflight_map[svc];

		FUZZ_CHECK(b->total <= a->total && b->conns <= a->conns,
			   "%s raised service %u's in-flight (%d to %d) or connections (%d to %d)",
			   who, svc, a->total, b->total, a->conns, b->conns);
		for (uint32_t c = 0; c < LS_MAX_CLASSES; c++)
			FUZZ_CHECK(b->cls[c] <= a->cls[c],
				   "%s raised service %u class %u's in-flight (%d to %d)", who, svc,
				   c, a->cls[c], b->cls[c]);
	}
}

static void run_frame(struct input *in, int xdp, const uint8_t *frame, size_t len, uint64_t what)
{
	static struct ls_class_stats after[NR_SVC_KEYS];
	static struct dp_run r;
	struct ls_iface_stats is_before = in->is;
	struct ls_inflight inf_before[FZ_NR_SERVICES];
	uint32_t fields;
	int err, n;

	if (!xdp)
		note_synack(frame, len);
	memcpy(inf_before, inflight_map, sizeof(inf_before));
	err = xdp ? dp_xdp(&dp, frame, len, &r) : dp_tc(&dp, frame, len, &r);
	if (len < ETH_HLEN_ || (!xdp && tc_too_short(frame, len))) {
		FUZZ_CHECK(err == -EINVAL, "a %zu-byte frame ran (%d)", len, err);
		return;
	}
	FUZZ_CHECK(!err, "BPF_PROG_TEST_RUN of a %zu-byte frame: %s", len, strerror(-err));
	read_class_stats(after);
	fields = check_frame(in, xdp, frame, len, &r, after);
	memcpy(in->st, after, sizeof(after));
	FUZZ_CHECK(!dp_iface_stats(&dp, &in->is), "iface_stats");
	step_feature(what << 1 | (xdp ? 1 : 0), r.retval, &is_before, &in->is);
	n = check_accounting(in);
	if (verbose)
		trace(xdp, len, what, r.retval, fields, n);
	/* §4.1: a SYN writes no flow and takes no slot. */
	FUZZ_CHECK(
		!xdp || !(fields & 1u << SYNS_FIELD) ||
			(n == in->flows && !memcmp(inf_before, inflight_map, sizeof(inf_before))),
		"a SYN changed the flow table (%d flows, were %d) or the in-flight counts", n,
		in->flows);
	if (!xdp)
		check_only_gives_back("TC", in->flows, n, inf_before);
	in->flows = n;
}

static void run_tick(struct input *in, uint8_t f)
{
	static struct ls_class_stats after[NR_SVC_KEYS];
	struct ls_tick t = {0};
	struct ls_inflight inf_before[FZ_NR_SERVICES];
	long long ended = 0, stalled = 0;
	int before = in->flows, left;

	t.idle_timeout_ns = fz_idle_ns[f & 3];
	t.stall_timeout_ns = fz_stall_ns[f >> 2 & 3];
	t.suspect_ns = fz_suspect_ns[f >> 4 & 3];
	t.sweep = f >> 6 & 1;
	t.beat = f >> 7;
	t.failopen_after_ns = 1;
	memcpy(inf_before, inflight_map, sizeof(inf_before));
	FUZZ_CHECK(!dp_tick(&dp, &t), "the tick failed");
	if (t.beat)
		in->failing_open = 1;
	read_class_stats(after);
	for (uint32_t k = 0; k < NR_SVC_KEYS; k++) {
		const struct ls_class_stats *a = &in->st[k], *b = &after[k];

		ended += D(ended_idle) + D(ended_rst);
		stalled += D(stalled);
		FUZZ_CHECK(!D(admitted) && !D(requests) && !D(shed_drop) && !D(deferred),
			   "the tick admitted or shed");
	}
	memcpy(in->st, after, sizeof(after));
	if (t.sweep) {
		FUZZ_CHECK(t.flows == (__u64)before, "the sweep visited %llu flows of %d",
			   (unsigned long long)t.flows, before);
		FUZZ_CHECK(t.ended <= t.flows && (long long)t.ended == ended &&
				   (long long)t.stalled == stalled,
			   "the sweep ended %llu (counted %lld), released %llu (counted %lld)",
			   (unsigned long long)t.ended, ended, (unsigned long long)t.stalled,
			   stalled);
	}
	feature(0x200000ull | (uint64_t)f << 8 | (t.ended ? 1 : 0) | (t.stalled ? 2 : 0));
	left = check_accounting(in);
	check_only_gives_back("the tick", before, left, inf_before);
	in->flows = left;
	if (verbose)
		fprintf(stderr,
			"tick %#x: %llu flows visited, %llu ended, %llu released; %d left\n", f,
			(unsigned long long)t.flows, (unsigned long long)t.ended,
			(unsigned long long)t.stalled, left);
	if (!t.sweep || fz_idle_ns[f & 3])
		return;
	/* §5.1: after an idle timeout, no flow is left and nothing is in flight. */
	FUZZ_CHECK(!left, "%d flows left after a sweep with an idle timeout of 0", left);
	for (uint32_t svc = 0; svc < LS_MAX_SERVICES; svc++) {
		static const struct ls_inflight zero;

		FUZZ_CHECK(!memcmp(&inflight_map[svc], &zero, sizeof(zero)),
			   "service %u: something in flight after the idle sweep", svc);
	}
}

static void set_limits(struct input *in, uint32_t svc, uint32_t limit, uint32_t g1)
{
	struct ls_limits *l = &in->lim[svc];

	memset(l, 0, sizeof(*l));
	l->limit = limit;
	l->guarantee[1] = g1;
	FUZZ_CHECK(!dp_limits(&dp, svc, l), "limits write");
	if (limit > in->max_limit[svc])
		in->max_limit[svc] = limit;
	if (g1 > in->max_guarantee[svc])
		in->max_guarantee[svc] = g1;
}

static void set_state(struct input *in, __u64 heartbeat_ns, __u64 failopen_ns)
{
	FUZZ_CHECK(!dp_state(&dp, in->gen, heartbeat_ns, failopen_ns), "state write");
}

/* Empties the handshake sets the last input may have written (all of them if it wrote many). */
static void clear_handshakes(void)
{
	static struct ls_hs_set vals[4096];
	static const struct ls_hs_set zero;
	static __u32 keys[4096];
	int fd = bpf_map__fd(dp.skel->maps.ls_handshakes);
	__u32 batch, *in_batch = NULL;
	int err;

	for (int i = 0; i < nr_dirty; i++)
		FUZZ_CHECK(!bpf_map_update_elem(fd, &dirty_sets[i], &zero, BPF_ANY),
			   "handshake clear: %s", strerror(errno));
	if (nr_dirty >= 0) {
		nr_dirty = 0;
		return;
	}
	do {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 count = 4096;

		err = bpf_map_lookup_batch(fd, in_batch, &batch, keys, vals, &count, &opts);
		FUZZ_CHECK(!err || errno == ENOENT, "handshakes: %s", strerror(errno));
		for (__u32 i = 0; i < count; i++)
			if (memcmp(&vals[i], &zero, sizeof(zero)))
				FUZZ_CHECK(!bpf_map_update_elem(fd, &keys[i], &zero, BPF_ANY),
					   "handshake clear: %s", strerror(errno));
		in_batch = &batch;
	} while (!err);
	nr_dirty = 0;
}

/* The state every input starts from: nothing tracked, nothing in flight, no agent. */
static void start(struct input *in, uint8_t header)
{
	static struct ls_flow_key keys[2 * MAX_FLOWS];
	static struct ls_flow vals[2 * MAX_FLOWS];
	int n = read_flows(keys, vals, 2 * MAX_FLOWS), fd = bpf_map__fd(dp.skel->maps.ls_flows);
	int shadow = header >> 7;

	for (int i = 0; i < n; i++)
		FUZZ_CHECK(!bpf_map_delete_elem(fd, &keys[i]), "flow delete: %s", strerror(errno));
	memset(inflight_map, 0, LS_MAX_SERVICES * sizeof(*inflight_map));
	clear_handshakes();
	dp_aborts(&dp, NULL, 0);

	memset(in, 0, sizeof(*in));
	in->shadow = shadow;
	set_state(in, 0, 0);
	for (uint32_t svc = 0; svc < FZ_NR_SERVICES; svc++)
		set_limits(in, svc, fz_limits[header >> (2 * svc) & 3], header >> 6 & 1);
	for (uint32_t gen = 0; gen < LS_NR_GENS; gen++)
		write_policy(gen, SVC_ADDR, shadow);
	snapshot(in);
}

static struct fz_conn *conn_of(struct input *in, uint8_t c)
{
	unsigned int i = c % FZ_NR_CONNS;

	if (!in->conn_used[i]) {
		fz_conn_init(&in->conns[i], i, real_ports);
		in->conn_used[i] = 1;
	}
	return &in->conns[i];
}

/* Runs the records of one input, from the state start() makes. */
static void run_input(const uint8_t *data, size_t size)
{
	static struct input in;
	static uint8_t frame[FZ_MAX_FRAME];
	size_t pos = 1;

	start(&in, data[0]);
	while (pos < size) {
		uint8_t op = data[pos++] % FZ_NR_OPS;
		size_t len;
		int xdp;

		switch (op) {
		case FZ_XDP:
		case FZ_TC:
			if (pos + 2 > size)
				return;
			len = (size_t)(data[pos] | data[pos + 1] << 8);
			pos += 2;
			if (len > FZ_MAX_FRAME || pos + len > size)
				return;
			run_frame(&in, op == FZ_XDP, data + pos, len, op);
			pos += len;
			break;
		case FZ_SEGMENT:
		case FZ_MUTATED: {
			uint8_t c, kind, arg, nr = 0;

			if (pos + 3 > size)
				return;
			c = data[pos];
			kind = data[pos + 1];
			arg = data[pos + 2];
			pos += 3;
			if (op == FZ_MUTATED) {
				if (pos + 1 > size)
					return;
				nr = data[pos++] % (FZ_MAX_MUTATIONS + 1);
				if (pos + 3u * nr > size)
					return;
			}
			len = fz_segment(conn_of(&in, c), kind, arg, frame, &xdp);
			FUZZ_CHECK(len, "segment %u did not build", kind);
			for (uint8_t i = 0; i < nr; i++, pos += 3)
				frame[(size_t)(data[pos] | data[pos + 1] << 8) % len] ^=
					data[pos + 2];
			run_frame(&in, xdp, frame, len,
				  (uint64_t)op << 16 | (uint64_t)(kind % FZ_NR_KINDS) << 8 |
					  c % FZ_NR_CONN_SPECS);
			break;
		}
		case FZ_TICK:
			if (pos + 1 > size)
				return;
			run_tick(&in, data[pos++]);
			break;
		case FZ_SLEEP:
			if (pos + 1 > size)
				return;
			if (in.sleeps++ < MAX_SLEEPS) {
				struct timespec ts = {0, (data[pos] % 5 + 1) * 1000000L};

				nanosleep(&ts, NULL);
			}
			pos++;
			break;
		case FZ_GEN: {
			struct ls_state st;

			FUZZ_CHECK(!dp_state_get(&dp, &st), "state read");
			in.gen ^= 1;
			set_state(&in, st.heartbeat_ns, st.failopen_after_ns);
			break;
		}
		case FZ_LIMIT:
			if (pos + 1 > size)
				return;
			set_limits(&in, data[pos] % FZ_NR_SERVICES, fz_limits[data[pos] >> 2 & 3],
				   data[pos] >> 4 & 1);
			pos++;
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return -1;
	run_input(data, size);
	return 0;
}
