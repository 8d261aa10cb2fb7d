// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The dataplane's semantics (doc/design.md §3 to §6), proven with crafted
 * frames run through ls_xdp_ingress and ls_tc_egress by BPF_PROG_TEST_RUN.
 * Each test loads a fresh, unpinned copy of the programs and maps, writes
 * the policy it needs, and checks verdicts, emitted frames, in-flight
 * counts, the flow table and the counters. Needs root.
 */
#define _GNU_SOURCE /* CPU_SET, pthread_setaffinity_np */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <cmocka.h>
#include "lib/harness.h"
#include "lib/pkt.h"

#define SVC	    0
#define PORT	    8080
#define OTHER_PORT  8443
#define CLS_DEFAULT 0
#define CLS_HI	    1
#define CLS_LO	    2
#define CLS_BYPASS  3
#define CLS_MID	    4

#define DSCP_EF	  46 /* rules in these tests: EF -> hi */
#define DSCP_AF11 10 /* AF11 -> lo */
#define DSCP_CS6  48 /* CS6 -> bypass */

/* Address family and tagging a test runs with. */
struct variant {
	int ipv6;
	int nr_vlans;
};

static const struct variant V4 = {0, 0}, V4_VLAN = {0, 1}, V4_QINQ = {0, 2};
static const struct variant V6 = {1, 0}, V6_VLAN = {1, 1}, V6_QINQ = {1, 2};

/*
 * cmocka's TAP output drops fail_because()'s text: say why as a TAP comment,
 * then fail.
 */
#define fail_because(...)                                                                          \
	do {                                                                                       \
		printf("# ");                                                                      \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		fflush(stdout);                                                                    \
		fail();                                                                            \
	} while (0)

struct t {
	struct dp dp;
	const struct variant *v;
};

static int setup_with(void **state, __u32 max_flows)
{
	const struct variant *v = *state ? *state : &V4;
	struct t *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return -1;
	t->v = v;
	err = dp_open(&t->dp, max_flows);
	if (err) {
		fprintf(stderr, "# cannot load the dataplane: %s (root needed)\n", strerror(-err));
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 0);
}

/* A flow table of four entries, to fill it. */
static int setup_small_table(void **state)
{
	return setup_with(state, 4);
}

static int teardown(void **state)
{
	struct t *t = *state;

	dp_close(&t->dp);
	free(t);
	return 0;
}

/* ---- traffic ------------------------------------------------------------ */

static const char *server_addr(const struct variant *v)
{
	return v->ipv6 ? "2001:db8:ffff::1" : "192.0.2.1";
}

/* Client number n in 10.1/16 or 2001:db8:1::/64. */
static void client_addr(const struct variant *v, int n, char *buf, size_t len)
{
	if (v->ipv6)
		snprintf(buf, len, "2001:db8:1::%x", n + 1);
	else
		snprintf(buf, len, "10.1.%d.%d", (n + 1) / 250, (n + 1) % 250 + 1);
}

static void tag(const struct variant *v, struct pkt_spec *s)
{
	if (v->nr_vlans >= 2)
		pkt_add_vlan(s, 0x88a8, 200);
	if (v->nr_vlans >= 1)
		pkt_add_vlan(s, 0x8100, 100);
}

/* A SYN from client to the service address on dport. */
static void syn_from(const struct variant *v, struct pkt_spec *s, const char *client, __u16 cport,
		     __u16 dport)
{
	pkt_tcp(s, v->ipv6, client, cport, server_addr(v), dport, PKT_SYN);
	tag(v, s);
}

/* The SYN of client n: its own address and port, ISN 1000 + n. */
static void syn_n(const struct t *t, int n, struct pkt_spec *s)
{
	char client[64];

	client_addr(t->v, n, client, sizeof(client));
	syn_from(t->v, s, client, (__u16)(40000 + n), PORT);
	s->seq = 1000 + (__u32)n;
}

static const __u8 some_bytes[1400] = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P'};

/* A later segment of syn's connection, client to server (seen by XDP). */
static void client_seg(const struct pkt_spec *syn, __u8 flags, int payload_len,
		       struct pkt_spec *out)
{
	*out = *syn;
	out->flags = flags;
	out->seq = syn->seq + 1;
	out->ack = 5001;
	out->tcp_opts_len = 0;
	out->payload = some_bytes;
	out->payload_len = payload_len;
}

/* A segment of syn's connection, server to client (seen by TC). */
static void server_seg(const struct pkt_spec *syn, __u8 flags, int payload_len,
		       struct pkt_spec *out)
{
	*out = *syn;
	pkt_reverse(out);
	out->flags = flags;
	out->seq = 5001;
	out->ack = syn->seq + 1;
	out->tcp_opts_len = 0;
	out->payload = some_bytes;
	out->payload_len = payload_len;
}

struct frame {
	__u8 buf[PKT_MAX_LEN];
	size_t len;
	struct pkt_layout lay;
};

static void build(const struct pkt_spec *s, struct frame *f)
{
	f->len = pkt_build(s, f->buf, sizeof(f->buf), &f->lay);
	assert_true(f->len > 0);
}

static __u32 run_frame(struct t *t, int xdp, const struct frame *f, struct dp_run *r)
{
	static struct dp_run scratch;
	int err;

	if (!r)
		r = &scratch;
	err = xdp ? dp_xdp(&t->dp, f->buf, f->len, r) : dp_tc(&t->dp, f->buf, f->len, r);
	assert_int_equal(err, 0);
	return r->retval;
}

/* Runs s through XDP; returns the verdict. */
static __u32 xdp(struct t *t, const struct pkt_spec *s, struct dp_run *r)
{
	struct frame f;

	build(s, &f);
	return run_frame(t, 1, &f, r);
}

/* Runs s through TC; returns the verdict. */
static __u32 tc(struct t *t, const struct pkt_spec *s)
{
	struct frame f;

	build(s, &f);
	return run_frame(t, 0, &f, NULL);
}

/* Runs s through XDP, expects XDP_PASS with the frame unchanged. */
static void xdp_passes_untouched(struct t *t, const struct frame *f)
{
	static struct dp_run r;

	assert_int_equal(run_frame(t, 1, f, &r), XDP_PASS);
	assert_int_equal(r.len, f->len);
	assert_memory_equal(r.out, f->buf, f->len);
}

static void admit(struct t *t, const struct pkt_spec *syn)
{
	assert_int_equal(xdp(t, syn, NULL), XDP_PASS);
}

/* ---- policy ------------------------------------------------------------- */

static void set_limits(struct t *t, __u32 limit, __u32 g_hi, __u32 g_lo)
{
	struct ls_limits lim;

	memset(&lim, 0, sizeof(lim));
	lim.limit = limit;
	lim.guarantee[CLS_HI] = g_hi;
	lim.guarantee[CLS_LO] = g_lo;
	assert_int_equal(dp_limits(&t->dp, SVC, &lim), 0);
}

/* State of an agent that keeps no heartbeat: limits enforced as written. */
static void no_agent(struct t *t)
{
	assert_int_equal(dp_state(&t->dp, 0, 0, 0), 0);
}

/* One service on PORT (any address): every SYN in the default class. */
static void one_class_service(struct t *t, __u32 limit, __u8 action, __u32 flags)
{
	struct ls_service_policy pol;

	dp_policy_init(&pol, LS_SVC_ACTIVE | flags, CLS_DEFAULT);
	dp_policy_class(&pol, CLS_DEFAULT, action);
	assert_int_equal(dp_port_any(&t->dp, 0, PORT, SVC), 0);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, &pol), 0);
	set_limits(t, limit, 0, 0);
	no_agent(t);
}

/* hi (DSCP EF), lo (AF11), bypass (CS6), else the default class; all drop. */
static void dscp_classes_service(struct t *t, __u32 limit, __u32 g_hi, __u32 g_lo)
{
	struct ls_service_policy pol;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_class(&pol, CLS_HI, LS_ACT_DROP);
	dp_policy_class(&pol, CLS_LO, LS_ACT_DROP);
	dp_policy_class(&pol, CLS_BYPASS, LS_ACT_BYPASS);
	dp_policy_rule(&pol, CLS_HI, 0, 0, 0, DSCP_EF);
	dp_policy_rule(&pol, CLS_LO, 0, 0, 0, DSCP_AF11);
	dp_policy_rule(&pol, CLS_BYPASS, 0, 0, 0, DSCP_CS6);
	assert_int_equal(dp_port_any(&t->dp, 0, PORT, SVC), 0);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, &pol), 0);
	set_limits(t, limit, g_hi, g_lo);
	no_agent(t);
}

/* The SYN of client n marked with a DSCP. */
static void syn_dscp(struct t *t, int n, __u8 dscp, struct pkt_spec *s)
{
	syn_n(t, n, s);
	s->tos = (__u8)(dscp << 2);
}

/* ---- reading the maps --------------------------------------------------- */

static struct ls_inflight inflight(struct t *t)
{
	struct ls_inflight in;

	assert_int_equal(dp_inflight(&t->dp, SVC, &in), 0);
	return in;
}

static struct ls_class_stats stats(struct t *t, __u32 cls)
{
	struct ls_class_stats st;

	assert_int_equal(dp_class_stats(&t->dp, SVC, cls, &st), 0);
	return st;
}

static struct ls_iface_stats iface(struct t *t)
{
	struct ls_iface_stats st;

	assert_int_equal(dp_iface_stats(&t->dp, &st), 0);
	return st;
}

static long flows(struct t *t)
{
	long n = dp_count_flows(&t->dp);

	assert_true(n >= 0);
	return n;
}

static int tracked(struct t *t, const struct pkt_spec *syn, struct ls_flow *out)
{
	struct ls_flow_key key;
	struct ls_flow f;

	pkt_flow_key(syn, 1, &key);
	return dp_flow(&t->dp, &key, out ? out : &f) == 0;
}

static void assert_inflight(struct t *t, int total, int cls, int in_cls)
{
	struct ls_inflight in = inflight(t);

	assert_int_equal(in.total, total);
	assert_int_equal(in.cls[cls], in_cls);
}

/* Every class counter of the service is zero. */
static void assert_no_class_counted(struct t *t)
{
	static const struct ls_class_stats zero;
	__u32 c;

	for (c = 0; c < LS_MAX_CLASSES; c++) {
		struct ls_class_stats st = stats(t, c);

		assert_memory_equal(&st, &zero, sizeof(zero));
	}
}

/* ---- admission ---------------------------------------------------------- */

static void syn_under_limit_is_admitted_and_tracked(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn;
	struct ls_flow f;
	struct frame fr;
	__u64 before = dp_now_ns();

	one_class_service(t, 2, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	build(&syn, &fr);
	xdp_passes_untouched(t, &fr);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_true(tracked(t, &syn, &f));
	assert_int_equal(f.svc, SVC);
	assert_int_equal(f.cls, CLS_DEFAULT);
	assert_int_equal(f.syn_seq, syn.seq);
	assert_int_equal(f.state, LS_FLOW_HALF_OPEN);
	assert_int_equal(f.req_start_ns, 0);
	assert_true(f.admitted_ns >= before && f.admitted_ns <= dp_now_ns());

	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.packets, 1);
	assert_int_equal(st.syns, 1);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.shed_drop + st.shed_reset + st.would_shed + st.untracked, 0);
}

static void syn_at_limit_minus_one_is_admitted_and_fills_the_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	int i;

	one_class_service(t, 3, LS_ACT_DROP, 0);
	for (i = 0; i < 3; i++) {
		syn_n(t, i, &syn);
		assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	}
	syn_n(t, 3, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_DROP);
	assert_inflight(t, 3, CLS_DEFAULT, 3);
	assert_int_equal(flows(t), 3);
}

static void syn_over_limit_is_shed_with_drop(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	syn_n(t, 0, &a);
	syn_n(t, 1, &b);
	admit(t, &a);
	assert_int_equal(xdp(t, &b, NULL), XDP_DROP);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_false(tracked(t, &b, NULL));
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.syns, 2);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.shed_drop, 1);
	assert_int_equal(st.shed_reset, 0);
}

/* MSS 1460, SACK permitted, window scale 7: options the RST must not copy. */
static void add_syn_options(struct pkt_spec *s)
{
	static const __u8 opts[12] = {2, 4, 0x05, 0xb4, 4, 2, 1, 1, 3, 3, 7, 0};

	memcpy(s->tcp_opts, opts, sizeof(opts));
	s->tcp_opts_len = sizeof(opts);
}

static void assert_is_rst_for(const struct pkt_spec *syn, const struct dp_run *r)
{
	char why[160] = "";

	if (pkt_check_rst(syn, r->out, r->len, why, sizeof(why)))
		fail_because("not a valid RST for the SYN: %s", why);
}

static void syn_over_limit_is_shed_with_reset(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec a, b;
	struct dp_run r;

	one_class_service(t, 1, LS_ACT_RESET, 0);
	syn_n(t, 0, &a);
	syn_n(t, 1, &b);
	add_syn_options(&b);
	b.seq = 0x89abcdef;
	admit(t, &a);
	assert_int_equal(xdp(t, &b, &r), XDP_TX);
	assert_is_rst_for(&b, &r);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_false(tracked(t, &b, NULL));
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.shed_reset, 1);
	assert_int_equal(st.shed_drop, 0);
	assert_int_equal(iface(t).tx_errors, 0);
}

/* A SYN carrying data (TCP Fast Open) and IPv4 options, ISN about to wrap. */
static void reset_acks_syn_data_and_drops_ip_options(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	syn.ip_opts[0] = 1; /* NOP, NOP, NOP, end of list */
	syn.ip_opts[1] = 1;
	syn.ip_opts[2] = 1;
	syn.ip_opts_len = 4;
	add_syn_options(&syn);
	syn.payload = some_bytes;
	syn.payload_len = 7;
	syn.seq = 0xfffffffe;
	assert_int_equal(xdp(t, &syn, &r), XDP_TX);
	/* ack = 0xfffffffe + 1 + 7, modulo 2^32 */
	assert_is_rst_for(&syn, &r);
}

static void reset_drops_ipv6_extension_headers(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	pkt_add_ext(&syn, IPPROTO_HOPOPTS, 0);
	pkt_add_ext(&syn, IPPROTO_DSTOPTS, 1);
	assert_int_equal(xdp(t, &syn, &r), XDP_TX);
	assert_is_rst_for(&syn, &r);
}

/* Ethernet pads frames to 60 bytes: the padding must not stay on the RST. */
static void reset_of_padded_frame_is_trimmed(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;
	struct frame f;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	build(&syn, &f);
	memset(f.buf + f.len, 0, 6);
	f.len += 6;
	assert_int_equal(run_frame(t, 1, &f, &r), XDP_TX);
	assert_is_rst_for(&syn, &r);
}

static void ecn_setup_syn_is_a_syn(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	syn.flags = PKT_SYN | PKT_ECE | PKT_CWR;
	assert_int_equal(xdp(t, &syn, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 1);
}

static void only_syn_without_ack_starts_a_flow(void **state)
{
	static const __u8 not_new[] = {PKT_SYN | PKT_ACK, PKT_ACK, PKT_SYN | PKT_FIN,
				       PKT_SYN | PKT_RST, PKT_PSH | PKT_ACK};
	struct t *t = *state;
	struct pkt_spec s;
	size_t i;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	for (i = 0; i < sizeof(not_new); i++) {
		syn_n(t, (int)i, &s);
		s.flags = not_new[i];
		assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 0);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(iface(t).untracked_packets, sizeof(not_new));
	assert_int_equal(stats(t, CLS_DEFAULT).syns, 0);
}

static void inactive_service_is_not_enforced(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec syn;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	dp_policy_init(&pol, 0, CLS_DEFAULT);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, &pol), 0);
	syn_n(t, 0, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
}

/* ---- the partition rule ------------------------------------------------- */

static void class_under_guarantee_is_admitted_at_the_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	int i;

	dscp_classes_service(t, 4, 2, 1);
	for (i = 0; i < 4; i++) {
		syn_dscp(t, i, DSCP_AF11, &s);
		admit(t, &s);
	}
	assert_inflight(t, 4, CLS_LO, 4);

	/* total == L, but hi holds fewer than its guarantee of 2 */
	syn_dscp(t, 10, DSCP_EF, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	syn_dscp(t, 11, DSCP_EF, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_inflight(t, 6, CLS_HI, 2);
	assert_int_equal(flows(t), 6);
	assert_int_equal(stats(t, CLS_HI).admitted, 2);
	assert_int_equal(stats(t, CLS_HI).shed_drop, 0);
}

static void class_over_guarantee_is_shed_at_the_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	int i;

	dscp_classes_service(t, 4, 2, 1);
	for (i = 0; i < 4; i++) {
		syn_dscp(t, i, DSCP_AF11, &s);
		admit(t, &s);
	}
	for (i = 10; i < 12; i++) {
		syn_dscp(t, i, DSCP_EF, &s);
		admit(t, &s);
	}
	/* hi at its guarantee, lo (4) far over its guarantee of 1 */
	syn_dscp(t, 12, DSCP_EF, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	syn_dscp(t, 13, DSCP_AF11, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);

	assert_inflight(t, 6, CLS_HI, 2);
	assert_int_equal(inflight(t).cls[CLS_LO], 4);
	assert_int_equal(flows(t), 6);
	assert_int_equal(stats(t, CLS_HI).shed_drop, 1);
	assert_int_equal(stats(t, CLS_LO).shed_drop, 1);
}

static void default_class_only_gets_spare_capacity(void **state)
{
	struct t *t = *state;
	struct pkt_spec d0, d1, d2, h, fin;

	dscp_classes_service(t, 2, 1, 0);
	syn_dscp(t, 0, 0, &d0);
	syn_dscp(t, 1, 0, &d1);
	syn_dscp(t, 2, 0, &d2);
	admit(t, &d0);
	admit(t, &d1);
	assert_int_equal(xdp(t, &d2, NULL), XDP_DROP);

	/* hi still gets its guarantee past the limit */
	syn_dscp(t, 3, DSCP_EF, &h);
	assert_int_equal(xdp(t, &h, NULL), XDP_PASS);
	assert_inflight(t, 3, CLS_DEFAULT, 2);

	/* Two flows end: one slot is spare again, and default may take it. */
	client_seg(&d0, PKT_FIN | PKT_ACK, 0, &fin);
	assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	client_seg(&h, PKT_FIN | PKT_ACK, 0, &fin);
	assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(xdp(t, &d2, NULL), XDP_PASS);
	syn_dscp(t, 4, 0, &d2);
	assert_int_equal(xdp(t, &d2, NULL), XDP_DROP);
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 2);
}

static void default_class_is_shed_at_the_limit_even_with_no_flows(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;

	dscp_classes_service(t, 2, 2, 0);
	syn_dscp(t, 0, DSCP_EF, &s);
	admit(t, &s);
	syn_dscp(t, 1, DSCP_EF, &s);
	admit(t, &s);
	syn_dscp(t, 2, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	assert_inflight(t, 2, CLS_DEFAULT, 0);
}

static void bypass_class_is_never_shed_nor_counted(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec s, fin;
	int i;

	dscp_classes_service(t, 0, 0, 0);
	for (i = 0; i < 3; i++) {
		syn_dscp(t, i, DSCP_CS6, &s);
		assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
		client_seg(&s, PKT_FIN | PKT_ACK, 0, &fin);
		assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	}
	/* The same limit sheds the default class. */
	syn_dscp(t, 9, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);

	assert_inflight(t, 0, CLS_BYPASS, 0);
	assert_int_equal(flows(t), 0);
	st = stats(t, CLS_BYPASS);
	assert_int_equal(st.syns, 3);
	assert_int_equal(st.admitted, 3);
	assert_int_equal(st.shed_drop + st.shed_reset + st.would_shed, 0);
	assert_int_equal(st.ended_fin + st.ended_rst, 0);
}

/* ---- ending flows ------------------------------------------------------- */

struct ending {
	int from_server;
	__u8 flags;
};

/* Sends the ending segment; the XDP verdict must be pass, TC's OK. */
static void send_end(struct t *t, const struct pkt_spec *syn, const struct ending *e)
{
	struct pkt_spec s;

	if (e->from_server) {
		server_seg(syn, e->flags, 0, &s);
		assert_int_equal(tc(t, &s), TC_ACT_OK);
	} else {
		client_seg(syn, e->flags, 0, &s);
		assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	}
}

static void assert_ended_once(struct t *t, __u64 fin, __u64 rst)
{
	struct ls_class_stats st = stats(t, CLS_DEFAULT);

	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(flows(t), 0);
	assert_int_equal(st.ended_fin, fin);
	assert_int_equal(st.ended_rst, rst);
	assert_int_equal(st.ended_reused, 0);
}

/* Opens one flow, sends the endings in order, three times over. */
static void end_flow(void **state, const struct ending *ends, int n, __u64 fin, __u64 rst)
{
	struct t *t = *state;
	struct pkt_spec syn;
	int round, i;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	admit(t, &syn);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	for (round = 0; round < 3; round++)
		for (i = 0; i < n; i++)
			send_end(t, &syn, &ends[i]);
	assert_ended_once(t, fin, rst);
}

static void client_fin_ends_flow_once(void **state)
{
	static const struct ending e[] = {{0, PKT_FIN | PKT_ACK}};

	end_flow(state, e, 1, 1, 0);
}

static void server_fin_ends_flow_once(void **state)
{
	static const struct ending e[] = {{1, PKT_FIN | PKT_ACK}};

	end_flow(state, e, 1, 1, 0);
}

static void client_rst_ends_flow_once(void **state)
{
	static const struct ending e[] = {{0, PKT_RST}};

	end_flow(state, e, 1, 0, 1);
}

static void server_rst_ends_flow_once(void **state)
{
	static const struct ending e[] = {{1, PKT_RST | PKT_ACK}};

	end_flow(state, e, 1, 0, 1);
}

static void fins_from_both_sides_end_flow_once(void **state)
{
	static const struct ending e[] = {
		{0, PKT_FIN | PKT_ACK}, {1, PKT_FIN | PKT_ACK}, {0, PKT_ACK}};

	end_flow(state, e, 3, 1, 0);
}

static void server_fin_then_client_fin_end_flow_once(void **state)
{
	static const struct ending e[] = {
		{1, PKT_FIN | PKT_ACK}, {0, PKT_FIN | PKT_ACK}, {1, PKT_ACK}};

	end_flow(state, e, 3, 1, 0);
}

static void rst_after_fin_does_not_end_flow_again(void **state)
{
	static const struct ending e[] = {{0, PKT_FIN | PKT_ACK}, {1, PKT_RST}, {0, PKT_RST}};

	end_flow(state, e, 3, 1, 0);
}

static void ended_flow_frees_its_slot(void **state)
{
	struct t *t = *state;
	struct pkt_spec a, b, fin;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	syn_n(t, 0, &a);
	syn_n(t, 1, &b);
	admit(t, &a);
	assert_int_equal(xdp(t, &b, NULL), XDP_DROP);
	server_seg(&a, PKT_RST | PKT_ACK, 0, &fin);
	assert_int_equal(tc(t, &fin), TC_ACT_OK);
	assert_int_equal(xdp(t, &b, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_true(tracked(t, &b, NULL));
}

/* ---- SYN retransmits and tuple reuse ------------------------------------ */

static void syn_retransmit_passes_at_the_limit_and_is_counted_once(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	admit(t, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.syn_retransmits, 2);
	assert_int_equal(st.syns, 3);
	assert_int_equal(st.shed_drop, 0);
}

static void syn_with_new_isn_ends_old_flow_and_is_admitted_anew(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn;
	struct ls_flow f;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	admit(t, &syn);
	syn.seq += 1000000;
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_true(tracked(t, &syn, &f));
	assert_int_equal(f.syn_seq, syn.seq);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.ended_reused, 1);
	assert_int_equal(st.admitted, 2);
	assert_int_equal(st.syn_retransmits, 0);
}

/* ---- latency ------------------------------------------------------------ */

#define SLEEP_NS 5000000ull

static void sleep_ns(__u64 ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Opens a hi flow and completes the handshake. */
static void open_hi_flow(struct t *t, struct pkt_spec *syn)
{
	struct pkt_spec s;

	dscp_classes_service(t, 10, 1, 0);
	syn_dscp(t, 0, DSCP_EF, syn);
	admit(t, syn);
	server_seg(syn, PKT_SYN | PKT_ACK, 0, &s);
	s.seq = 5000;
	assert_int_equal(tc(t, &s), TC_ACT_OK);
	client_seg(syn, PKT_ACK, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
}

static void request(struct t *t, const struct pkt_spec *syn)
{
	struct pkt_spec s;

	client_seg(syn, PKT_PSH | PKT_ACK, 100, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
}

static void response(struct t *t, const struct pkt_spec *syn)
{
	struct pkt_spec s;

	server_seg(syn, PKT_PSH | PKT_ACK, 1000, &s);
	assert_int_equal(tc(t, &s), TC_ACT_OK);
}

static struct ls_latency_hist *latency(struct t *t, __u32 cls)
{
	static struct ls_latency_hist h;

	assert_int_equal(dp_latency(&t->dp, SVC, cls, &h), 0);
	return &h;
}

static __u64 bucket_total(const struct ls_latency_hist *h)
{
	__u64 n = 0;
	__u32 b;

	for (b = 0; b < LS_HIST_BUCKETS; b++)
		n += h->buckets[b];
	return n;
}

static void request_response_records_one_latency_sample(void **state)
{
	struct t *t = *state;
	struct ls_latency_hist *h;
	struct pkt_spec syn;
	struct ls_flow f;
	__u32 b;

	open_hi_flow(t, &syn);
	request(t, &syn);
	assert_true(tracked(t, &syn, &f));
	assert_int_not_equal(f.req_start_ns, 0);
	assert_int_equal(f.state, LS_FLOW_ESTABLISHED);
	assert_int_equal(stats(t, CLS_HI).requests, 1);
	sleep_ns(SLEEP_NS);
	response(t, &syn);

	h = latency(t, CLS_HI);
	assert_int_equal(h->count, 1);
	assert_true(h->sum_ns >= SLEEP_NS);
	assert_true(h->sum_ns < 10 * 1000000000ull);
	assert_int_equal(h->min_ns, h->sum_ns);
	assert_int_equal(h->max_ns, h->sum_ns);
	b = ls_hist_bucket(h->sum_ns);
	assert_true(b >= ls_hist_bucket(SLEEP_NS));
	assert_int_equal(h->buckets[b], 1);
	assert_int_equal(bucket_total(h), 1);
	assert_int_equal(latency(t, CLS_DEFAULT)->count, 0);
	assert_true(tracked(t, &syn, &f));
	assert_int_equal(f.req_start_ns, 0);
}

static void server_payload_without_request_adds_no_sample(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	open_hi_flow(t, &syn);
	response(t, &syn); /* server speaks first: no request to end */
	assert_int_equal(latency(t, CLS_HI)->count, 0);
	request(t, &syn);
	response(t, &syn);
	response(t, &syn); /* second chunk of the same response */
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_int_equal(bucket_total(latency(t, CLS_HI)), 1);
}

static void request_while_one_is_outstanding_keeps_the_first_start(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	open_hi_flow(t, &syn);
	request(t, &syn);
	sleep_ns(SLEEP_NS);
	request(t, &syn); /* pipelined: the clock keeps running from the first */
	response(t, &syn);
	assert_int_equal(stats(t, CLS_HI).requests, 1);
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_true(latency(t, CLS_HI)->min_ns >= SLEEP_NS);
}

static void each_request_after_a_response_gets_its_own_sample(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	int i;

	open_hi_flow(t, &syn);
	for (i = 0; i < 3; i++) {
		request(t, &syn);
		response(t, &syn);
	}
	assert_int_equal(stats(t, CLS_HI).requests, 3);
	assert_int_equal(latency(t, CLS_HI)->count, 3);
	assert_int_equal(bucket_total(latency(t, CLS_HI)), 3);
}

/*
 * A small response often leaves in one segment with the FIN (the server
 * writes and closes at once, the typical one-request connection): it is the
 * response's first byte and the flow's end, and both must count.
 */
static void server_response_with_fin_records_sample_and_ends_flow(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn, s;

	open_hi_flow(t, &syn);
	request(t, &syn);
	sleep_ns(SLEEP_NS);
	server_seg(&syn, PKT_FIN | PKT_PSH | PKT_ACK, 300, &s);
	assert_int_equal(tc(t, &s), TC_ACT_OK);
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_true(latency(t, CLS_HI)->min_ns >= SLEEP_NS);
	assert_int_equal(stats(t, CLS_HI).ended_fin, 1);
	assert_int_equal(inflight(t).total, 0);
	assert_int_equal(flows(t), 0);
}

static void client_ack_without_payload_starts_no_request(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn, s;

	open_hi_flow(t, &syn);
	client_seg(&syn, PKT_ACK, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	response(t, &syn);
	assert_int_equal(stats(t, CLS_HI).requests, 0);
	assert_int_equal(latency(t, CLS_HI)->count, 0);
}

/* ---- shadow mode and fail-open ------------------------------------------ */

static void shadow_mode_admits_and_counts_would_shed(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec a, b;
	struct frame f;

	one_class_service(t, 1, LS_ACT_RESET, LS_SVC_SHADOW);
	syn_n(t, 0, &a);
	syn_n(t, 1, &b);
	admit(t, &a);
	build(&b, &f);
	xdp_passes_untouched(t, &f);

	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_int_equal(flows(t), 2);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.would_shed, 1);
	assert_int_equal(st.admitted, 2);
	assert_int_equal(st.shed_drop + st.shed_reset, 0);
}

static void stale_heartbeat_fails_open_and_counts_fail_open(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn, fin;
	__u64 now = dp_now_ns();

	one_class_service(t, 0, LS_ACT_DROP, 0);
	assert_int_equal(
		dp_state(&t->dp, 0, now > 10000000000ull ? now - 10000000000ull : 0, 1000000000ull),
		0);
	syn_n(t, 0, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.fail_open, 1);
	assert_int_equal(st.shed_drop, 0);
	/* Still tracked, so its end still balances the count. */
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_true(tracked(t, &syn, NULL));
	client_seg(&syn, PKT_FIN | PKT_ACK, 0, &fin);
	assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
}

static void fresh_heartbeat_enforces_the_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	assert_int_equal(dp_state(&t->dp, 0, dp_now_ns(), 10000000000ull), 0);
	syn_n(t, 0, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).fail_open, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 1);
}

static void zero_failopen_timeout_enforces_regardless_of_heartbeat(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	assert_int_equal(dp_state(&t->dp, 0, 1, 0), 0);
	syn_n(t, 0, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).fail_open, 0);
}

/* ---- classification ----------------------------------------------------- */

/* The flow of syn was admitted into class cls. */
static void assert_classified(struct t *t, const struct pkt_spec *syn, __u32 cls)
{
	struct ls_flow f;

	assert_int_equal(xdp(t, syn, NULL), XDP_PASS);
	assert_true(tracked(t, syn, &f));
	assert_int_equal(f.cls, cls);
}

static void write_rules(struct t *t, const struct ls_service_policy *pol)
{
	assert_int_equal(dp_port_any(&t->dp, 0, PORT, SVC), 0);
	assert_int_equal(dp_port_any(&t->dp, 0, OTHER_PORT, SVC), 0);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, pol), 0);
	set_limits(t, 100, 0, 0);
	no_agent(t);
}

static void source_prefix_rule_classifies(void **state)
{
	struct t *t = *state;
	const int v6 = t->v->ipv6;
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, LS_DSCP_ANY);
	write_rules(t, &pol);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, v6 ? "2001:db8:20::/48" : "10.20.0.0/16", 1), 0);

	syn_from(t->v, &s, v6 ? "2001:db8:20:ffff::9" : "10.20.255.9", 40000, PORT);
	assert_classified(t, &s, CLS_HI);
	syn_from(t->v, &s, v6 ? "2001:db8:21::9" : "10.21.0.9", 40000, PORT);
	assert_classified(t, &s, CLS_DEFAULT);
	assert_int_equal(stats(t, CLS_HI).syns, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).syns, 1);
}

static void port_rule_classifies(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;
	char client[64];

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_LO, 0, OTHER_PORT, OTHER_PORT, LS_DSCP_ANY);
	write_rules(t, &pol);
	client_addr(t->v, 0, client, sizeof(client));
	syn_from(t->v, &s, client, 40000, OTHER_PORT);
	assert_classified(t, &s, CLS_LO);
	syn_from(t->v, &s, client, 40000, PORT);
	assert_classified(t, &s, CLS_DEFAULT);
}

static void dscp_rule_classifies_ignoring_ecn(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 0, 0, 0, DSCP_EF);
	write_rules(t, &pol);
	syn_n(t, 0, &s);
	s.tos = DSCP_EF << 2 | 1; /* ECT(1) */
	assert_classified(t, &s, CLS_HI);
	syn_n(t, 1, &s);
	s.tos = DSCP_EF << 2 | 3; /* CE */
	assert_classified(t, &s, CLS_HI);
	syn_n(t, 2, &s);
	s.tos = DSCP_AF11 << 2;
	assert_classified(t, &s, CLS_DEFAULT);
}

/* Conditions of one rule all hold; the first rule that matches wins. */
static void first_matching_rule_wins(void **state)
{
	struct t *t = *state;
	const int v6 = t->v->ipv6;
	const char *in = v6 ? "2001:db8:20::5" : "10.20.0.5";
	const char *out = v6 ? "2001:db8:99::5" : "10.99.0.5";
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, DSCP_EF);			      /* prefix and EF */
	dp_policy_rule(&pol, CLS_LO, 0, 0, 0, DSCP_EF);			      /* EF */
	dp_policy_rule(&pol, CLS_MID, 1, 0, 0, LS_DSCP_ANY);		      /* prefix */
	dp_policy_rule(&pol, CLS_BYPASS, 0, OTHER_PORT, OTHER_PORT, DSCP_EF); /* shadowed */
	write_rules(t, &pol);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, v6 ? "2001:db8:20::/48" : "10.20.0.0/16",
				   1u << 0 | 1u << 2),
			 0);

	syn_from(t->v, &s, in, 40001, PORT);
	s.tos = DSCP_EF << 2;
	assert_classified(t, &s, CLS_HI);
	syn_from(t->v, &s, in, 40002, PORT);
	assert_classified(t, &s, CLS_MID);
	syn_from(t->v, &s, out, 40003, OTHER_PORT);
	s.tos = DSCP_EF << 2;
	assert_classified(t, &s, CLS_LO);
	syn_from(t->v, &s, out, 40004, PORT);
	assert_classified(t, &s, CLS_DEFAULT);
}

/*
 * Nested prefixes: the LPM entry of the inner prefix carries the rules of
 * every prefix that contains it (see struct ls_prefix_key), so the longest
 * match yields all rules that hold the source and rule order decides.
 */
static void nested_prefixes_match_every_enclosing_rule_in_order(void **state)
{
	struct t *t = *state;
	const int v6 = t->v->ipv6;
	const char *inner = v6 ? "2001:db8:20:30::/64" : "10.20.30.0/24";
	const char *outer = v6 ? "2001:db8:20::/48" : "10.20.0.0/16";
	const char *in_inner = v6 ? "2001:db8:20:30::5" : "10.20.30.5";
	const char *in_outer = v6 ? "2001:db8:20:31::5" : "10.20.31.5";
	const char *outside = v6 ? "2001:db8:21::5" : "10.21.0.5";
	struct ls_service_policy pol;
	struct pkt_spec s;

	/* Inner first: the inner prefix wins where it holds. */
	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, LS_DSCP_ANY);
	dp_policy_rule(&pol, CLS_LO, 1, 0, 0, LS_DSCP_ANY);
	write_rules(t, &pol);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, inner, 0x3), 0);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, outer, 0x2), 0);
	syn_from(t->v, &s, in_inner, 40001, PORT);
	assert_classified(t, &s, CLS_HI);
	syn_from(t->v, &s, in_outer, 40002, PORT);
	assert_classified(t, &s, CLS_LO);
	syn_from(t->v, &s, outside, 40003, PORT);
	assert_classified(t, &s, CLS_DEFAULT);

	/* Outer first: it shadows the inner rule. */
	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_LO, 1, 0, 0, LS_DSCP_ANY);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, LS_DSCP_ANY);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, &pol), 0);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, inner, 0x3), 0);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, outer, 0x1), 0);
	syn_from(t->v, &s, in_inner, 40011, PORT);
	assert_classified(t, &s, CLS_LO);
}

static void prefix_of_another_generation_or_service_does_not_match(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, LS_DSCP_ANY);
	write_rules(t, &pol);
	assert_int_equal(dp_prefix(&t->dp, 1, SVC, "10.0.0.0/8", 1), 0);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC + 1, "10.0.0.0/8", 1), 0);
	syn_n(t, 0, &s);
	assert_classified(t, &s, CLS_DEFAULT);
}

static void policy_generation_flip_takes_effect_at_once(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	write_rules(t, &pol);
	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_LO);
	assert_int_equal(dp_policy(&t->dp, 1, SVC, &pol), 0);
	assert_int_equal(dp_port_any(&t->dp, 1, PORT, SVC), 0);

	syn_n(t, 0, &s);
	assert_classified(t, &s, CLS_DEFAULT);
	assert_int_equal(dp_state(&t->dp, 1, 0, 0), 0);
	syn_n(t, 1, &s);
	assert_classified(t, &s, CLS_LO);
}

static void address_bound_service_ignores_other_addresses(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;
	struct frame f;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	assert_int_equal(dp_port_addr(&t->dp, 0, PORT, server_addr(t->v), SVC), 0);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, &pol), 0);
	set_limits(t, 0, 0, 0);
	no_agent(t);

	syn_n(t, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	pkt_tcp(&s, t->v->ipv6, t->v->ipv6 ? "2001:db8:1::1" : "10.1.0.2", 40000,
		t->v->ipv6 ? "2001:db8:ffff::2" : "192.0.2.2", PORT, PKT_SYN);
	tag(t->v, &s);
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	assert_int_equal(stats(t, CLS_DEFAULT).syns, 1);
}

/* ---- traffic that is not ours, and malformed frames --------------------- */

static void non_service_port_passes_untouched(void **state)
{
	struct t *t = *state;
	static const struct ls_iface_stats zero;
	struct ls_iface_stats is;
	struct pkt_spec s;
	struct frame f;
	char client[64];

	one_class_service(t, 0, LS_ACT_RESET, 0);
	client_addr(t->v, 0, client, sizeof(client));
	syn_from(t->v, &s, client, 40000, 9999);
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	s.flags = PKT_FIN | PKT_ACK;
	build(&s, &f);
	xdp_passes_untouched(t, &f);

	assert_int_equal(flows(t), 0);
	assert_no_class_counted(t);
	is = iface(t);
	assert_memory_equal(&is, &zero, sizeof(zero));
}

static void udp_to_service_port_passes_without_parse_error(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct frame f;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	syn_n(t, 0, &s);
	s.l4proto = IPPROTO_UDP;
	s.payload = some_bytes;
	s.payload_len = 32;
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	assert_int_equal(run_frame(t, 0, &f, NULL), TC_ACT_OK);
	assert_int_equal(iface(t).parse_errors, 0);
	assert_int_equal(flows(t), 0);
	assert_no_class_counted(t);
}

static void arp_passes_without_parse_error(void **state)
{
	struct t *t = *state;
	struct frame f;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	f.len = pkt_arp(f.buf, sizeof(f.buf));
	assert_true(f.len > 0);
	xdp_passes_untouched(t, &f);
	assert_int_equal(iface(t).parse_errors, 0);
	assert_no_class_counted(t);
}

static void ipv6_chain_ending_in_udp_passes_without_parse_error(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct frame f;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	syn_n(t, 0, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	s.l4proto = IPPROTO_UDP;
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	assert_int_equal(iface(t).parse_errors, 0);
}

/* What the parser must still accept: the limits of the bounded parsing. */
/* The parser follows six extension headers; what follows them may be UDP. */
static void six_extension_headers_then_udp_is_not_a_parse_error(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct frame f;
	int i;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	syn_n(t, 0, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	for (i = 0; i < 5; i++)
		pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	s.l4proto = IPPROTO_UDP;
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	assert_int_equal(iface(t).parse_errors, 0);
}

static void longest_headers_within_bounds_are_parsed(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;

	one_class_service(t, 0, LS_ACT_DROP, 0);

	/* IPv4 in QinQ: 40 bytes of IP options (IHL 15), 40 of TCP options (doff 15). */
	pkt_tcp(&s, 0, "10.1.0.1", 40000, "192.0.2.1", PORT, PKT_SYN);
	memset(s.ip_opts, 1, sizeof(s.ip_opts));
	s.ip_opts_len = 40;
	memset(s.tcp_opts, 1, sizeof(s.tcp_opts));
	s.tcp_opts_len = 40;
	pkt_add_vlan(&s, 0x88a8, 1);
	pkt_add_vlan(&s, 0x8100, 2);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);

	/* IPv6: six extension headers, an atomic fragment among them. */
	pkt_tcp(&s, 1, "2001:db8:1::1", 40000, "2001:db8:ffff::1", PORT, PKT_SYN);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	pkt_add_ext(&s, IPPROTO_DSTOPTS, 2);
	pkt_add_ext(&s, IPPROTO_ROUTING, 1);
	pkt_add_ext(&s, IPPROTO_FRAGMENT, 0);
	pkt_add_ext(&s, IPPROTO_AH, 4);
	pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);

	assert_int_equal(iface(t).parse_errors, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 2);
}

struct bad_frame {
	const char *what;
	/* Builds the frame from a good SYN of the variant. */
	void (*make)(struct t *t, struct frame *f);
};

static void good_syn(struct t *t, int ipv6, struct pkt_spec *s)
{
	if (ipv6)
		pkt_tcp(s, 1, "2001:db8:1::1", 40000, "2001:db8:ffff::1", PORT, PKT_SYN);
	else
		pkt_tcp(s, 0, "10.1.0.1", 40000, "192.0.2.1", PORT, PKT_SYN);
	(void)t;
}

static void make_vlan_tag_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	pkt_add_vlan(&s, 0x8100, 100);
	s.truncate = 16; /* ends inside the tag */
	build(&s, f);
}

static void make_qinq_inner_tag_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	pkt_add_vlan(&s, 0x88a8, 200);
	pkt_add_vlan(&s, 0x8100, 100);
	s.truncate = 20;
	build(&s, f);
}

static void make_ethernet_header_only(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.truncate = 14;
	build(&s, f);
}

static void make_ipv4_header_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.truncate = 14 + 12;
	build(&s, f);
}

static void make_ipv4_ihl_4(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.ihl = 4;
	build(&s, f);
}

static void make_ipv4_ihl_past_tot_len(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.ihl = 15; /* 60 bytes in a 40-byte datagram */
	build(&s, f);
}

static void make_ipv4_ihl_past_frame(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.ihl = 15;
	s.tot_len = 60 + 20;
	s.truncate = 14 + 60; /* consistent lengths, frame too short */
	build(&s, f);
}

static void make_ipv4_tot_len_past_frame(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.tot_len = 1000;
	build(&s, f);
}

static void make_ipv4_tot_len_inside_tcp_header(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.tot_len = 20 + 12;
	build(&s, f);
}

static void make_ipv4_more_fragments(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.frag_off = 0x2000;
	build(&s, f);
}

static void make_ipv4_fragment_offset(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.frag_off = 0x4000 | 0x0010; /* DF, and an offset: a non-first fragment */
	build(&s, f);
}

static void make_ipv4_ethertype_ipv6_header(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	s.ethertype = 0x0800;
	build(&s, f);
}

static void make_tcp_doff_4(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.doff = 4;
	build(&s, f);
}

static void make_tcp_doff_0_ipv6(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	build(&s, f);
	f->buf[f->lay.l4_off + 12] = 0;
}

static void make_tcp_doff_past_end(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.doff = 15;
	build(&s, f);
}

static void make_tcp_header_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	s.truncate = 14 + 40 + 10;
	build(&s, f);
}

static void make_ipv6_header_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	s.truncate = 14 + 30;
	build(&s, f);
}

static void make_ipv6_payload_len_past_frame(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	s.payload_len6 = 500;
	build(&s, f);
}

static void make_ipv6_ext_chain_too_long(struct t *t, struct frame *f)
{
	struct pkt_spec s;
	int i;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	for (i = 0; i < 6; i++)
		pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	build(&s, f);
}

static void make_ipv6_ext_header_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	s.truncate = 14 + 40 + 4;
	build(&s, f);
}

static void make_ipv6_ext_len_past_payload(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	build(&s, f);
	f->buf[f->lay.l3_off + 40 + 1] = 40; /* claims 328 bytes */
}

static void make_ipv6_ext_len_past_parse_bound(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 60); /* 488 bytes: TCP starts past 512 */
	build(&s, f);
}

static void make_ipv6_fragment_not_first(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_FRAGMENT, 0);
	s.ext[0].frag = 185 << 3;
	build(&s, f);
}

static void make_ipv6_fragment_more_follow(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_FRAGMENT, 0);
	s.ext[0].frag = 1; /* M */
	build(&s, f);
}

static void make_ipv6_version_4(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	build(&s, f);
	f->buf[f->lay.l3_off] = 0x40 | (f->buf[f->lay.l3_off] & 0x0f);
}

static void make_three_vlan_tags(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	pkt_add_vlan(&s, 0x88a8, 300);
	pkt_add_vlan(&s, 0x8100, 200);
	pkt_add_vlan(&s, 0x8100, 100);
	build(&s, f);
}

static const struct bad_frame bad_frames[] = {
	{"vlan_tag_cut", make_vlan_tag_cut},
	{"qinq_inner_tag_cut", make_qinq_inner_tag_cut},
	{"ethernet_header_only", make_ethernet_header_only},
	{"ipv4_header_cut", make_ipv4_header_cut},
	{"ipv4_ihl_4", make_ipv4_ihl_4},
	{"ipv4_ihl_past_tot_len", make_ipv4_ihl_past_tot_len},
	{"ipv4_ihl_past_frame", make_ipv4_ihl_past_frame},
	{"ipv4_tot_len_past_frame", make_ipv4_tot_len_past_frame},
	{"ipv4_tot_len_inside_tcp_header", make_ipv4_tot_len_inside_tcp_header},
	{"ipv4_more_fragments", make_ipv4_more_fragments},
	{"ipv4_fragment_offset", make_ipv4_fragment_offset},
	{"ipv4_ethertype_ipv6_header", make_ipv4_ethertype_ipv6_header},
	{"tcp_doff_4", make_tcp_doff_4},
	{"tcp_doff_0_ipv6", make_tcp_doff_0_ipv6},
	{"tcp_doff_past_end", make_tcp_doff_past_end},
	{"tcp_header_cut", make_tcp_header_cut},
	{"ipv6_header_cut", make_ipv6_header_cut},
	{"ipv6_payload_len_past_frame", make_ipv6_payload_len_past_frame},
	{"ipv6_ext_chain_too_long", make_ipv6_ext_chain_too_long},
	{"ipv6_ext_header_cut", make_ipv6_ext_header_cut},
	{"ipv6_ext_len_past_payload", make_ipv6_ext_len_past_payload},
	{"ipv6_ext_len_past_parse_bound", make_ipv6_ext_len_past_parse_bound},
	{"ipv6_fragment_not_first", make_ipv6_fragment_not_first},
	{"ipv6_fragment_more_follow", make_ipv6_fragment_more_follow},
	{"ipv6_version_4", make_ipv6_version_4},
	{"three_vlan_tags", make_three_vlan_tags},
};

/*
 * Every malformed frame passes unchanged through both programs, with a
 * limit of 0 that would drop any SYN it mistook for well formed, is
 * counted once as a parse error and leaves no trace in the flow table or
 * the class counters.
 */
static void malformed_frame_passes_uncounted_and_is_a_parse_error(void **state)
{
	static struct dp_run r;
	struct t *t = *state;
	size_t i;
	int err;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	for (i = 0; i < sizeof(bad_frames) / sizeof(bad_frames[0]); i++) {
		struct ls_iface_stats before = iface(t), after;
		struct frame f;

		bad_frames[i].make(t, &f);
		xdp_passes_untouched(t, &f);
		after = iface(t);
		if (after.parse_errors != before.parse_errors + 1)
			fail_because("%s: parse_errors %llu -> %llu", bad_frames[i].what,
				     (unsigned long long)before.parse_errors,
				     (unsigned long long)after.parse_errors);
		/*
		 * An skb test run refuses a frame whose IP header is cut (the
		 * kernel checks it before any program runs); XDP covered those.
		 */
		err = dp_tc(&t->dp, f.buf, f.len, &r);
		if (err == -EINVAL && f.len < 14 + 40)
			continue;
		if (err || r.retval != TC_ACT_OK)
			fail_because("%s: TC run %d, verdict %u", bad_frames[i].what, err,
				     r.retval);
		if (flows(t) || inflight(t).total)
			fail_because("%s: tracked", bad_frames[i].what);
	}
	assert_int_equal(iface(t).untracked_packets, 0);
	assert_int_equal(iface(t).tx_errors, 0);
	assert_no_class_counted(t);
}

/* BPF_PROG_TEST_RUN itself refuses frames shorter than an Ethernet header. */
static void frame_shorter_than_ethernet_is_refused_by_test_run(void **state)
{
	struct t *t = *state;
	static struct dp_run r;
	__u8 frame[13] = {0};

	assert_int_equal(dp_xdp(&t->dp, frame, sizeof(frame), &r), -EINVAL);
}

/* A FIN of a malformed frame must not end the tracked flow it resembles. */
static void malformed_fin_does_not_end_a_flow(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn, fin;
	struct frame f;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	admit(t, &syn);
	client_seg(&syn, PKT_FIN | PKT_ACK, 0, &fin);
	fin.doff = 4;
	build(&fin, &f);
	xdp_passes_untouched(t, &f);
	server_seg(&syn, PKT_FIN | PKT_ACK, 0, &fin);
	fin.doff = 4;
	build(&fin, &f);
	assert_int_equal(run_frame(t, 0, &f, NULL), TC_ACT_OK);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
}

/* ---- a full flow table -------------------------------------------------- */

static void full_flow_table_admits_untracked_without_leaking(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn[6], fin;
	int i;

	one_class_service(t, 100, LS_ACT_DROP, 0);
	for (i = 0; i < 6; i++) {
		syn_n(t, i, &syn[i]);
		assert_int_equal(xdp(t, &syn[i], NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 4);
	assert_inflight(t, 4, CLS_DEFAULT, 4);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.admitted, 6);
	assert_int_equal(st.untracked, 2);

	for (i = 0; i < 6; i++) {
		client_seg(&syn[i], PKT_FIN | PKT_ACK, 0, &fin);
		assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	}
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, 4);
	assert_int_equal(iface(t).untracked_packets, 2);
}

/* ---- concurrency -------------------------------------------------------- */

/*
 * A spinning barrier: each caller adds one and waits for the count to
 * reach target. Cheap enough that threads leave it within a few hundred
 * ns of each other, so their packets meet inside the dataplane.
 */
static void lockstep(int *arrived, int target)
{
	__atomic_fetch_add(arrived, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(arrived, __ATOMIC_SEQ_CST) < target)
		if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
			sched_yield();
}

#define RACE_LIMIT    64
#define RACE_ATTEMPTS 1500 /* per thread and round */
#define RACE_ROUNDS   4
#define RACE_MAX_THR  8

struct racer {
	struct t *t;
	int id;
	int cpu;
	int round;
	pthread_barrier_t *go;
	int err;
	long admitted;
	__u8 (*frames)[128];
	size_t *lens;
};

static void race_syn(int thread, int round, int i, struct pkt_spec *s)
{
	char client[64];

	snprintf(client, sizeof(client), "10.%d.%d.%d", 100 + thread, round, i / 250 + 1);
	pkt_tcp(s, 0, client, (__u16)(1024 + i), "192.0.2.1", PORT, PKT_SYN);
}

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct dp_run *run = malloc(sizeof(*run));
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	CPU_SET(r->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(r->go);
	for (i = 0; i < RACE_ATTEMPTS && run; i++) {
		r->err = dp_xdp(&r->t->dp, r->frames[i], r->lens[i], run);
		if (r->err)
			break;
		if (run->retval == XDP_PASS)
			r->admitted++;
	}
	free(run);
	return NULL;
}

/*
 * Threads on different CPUs race distinct SYNs against one limit: the
 * atomic check-and-increment must never admit past it, and with far more
 * attempts than slots it must fill it exactly.
 */
static void concurrent_syns_never_admit_past_the_limit(void **state)
{
	struct t *t = *state;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int nthr = cpus < 2 ? 2 : cpus > RACE_MAX_THR ? RACE_MAX_THR : (int)cpus;
	struct racer racers[RACE_MAX_THR];
	pthread_t tid[RACE_MAX_THR];
	pthread_barrier_t go;
	__u64 admitted_before = 0, shed_before = 0;
	int round, i, j;

	one_class_service(t, RACE_LIMIT, LS_ACT_DROP, 0);
	for (i = 0; i < nthr; i++) {
		racers[i].frames = malloc(RACE_ATTEMPTS * sizeof(*racers[i].frames));
		racers[i].lens = malloc(RACE_ATTEMPTS * sizeof(*racers[i].lens));
		assert_non_null(racers[i].frames);
		assert_non_null(racers[i].lens);
	}
	for (round = 0; round < RACE_ROUNDS; round++) {
		struct ls_class_stats st;
		struct ls_inflight in;
		long admitted = 0;

		assert_int_equal(pthread_barrier_init(&go, NULL, (unsigned)nthr), 0);
		for (i = 0; i < nthr; i++) {
			racers[i].t = t;
			racers[i].id = i;
			racers[i].cpu = (int)(i % (cpus > 0 ? cpus : 1));
			racers[i].round = round;
			racers[i].go = &go;
			racers[i].err = 0;
			racers[i].admitted = 0;
			for (j = 0; j < RACE_ATTEMPTS; j++) {
				struct pkt_spec s;

				race_syn(i, round, j, &s);
				racers[i].lens[j] = pkt_build(&s, racers[i].frames[j], 128, NULL);
				assert_true(racers[i].lens[j] > 0);
			}
		}
		for (i = 0; i < nthr; i++)
			assert_int_equal(pthread_create(&tid[i], NULL, racer_main, &racers[i]), 0);
		for (i = 0; i < nthr; i++) {
			pthread_join(tid[i], NULL);
			assert_int_equal(racers[i].err, 0);
			admitted += racers[i].admitted;
		}
		pthread_barrier_destroy(&go);

		in = inflight(t);
		st = stats(t, CLS_DEFAULT);
		assert_true(in.total <= RACE_LIMIT);
		assert_int_equal(in.total, RACE_LIMIT);
		assert_int_equal(in.cls[CLS_DEFAULT], RACE_LIMIT);
		assert_int_equal(flows(t), in.total);
		assert_int_equal(admitted, RACE_LIMIT);
		assert_int_equal(st.admitted - admitted_before, RACE_LIMIT);
		assert_int_equal(st.shed_drop - shed_before,
				 (__u64)nthr * RACE_ATTEMPTS - RACE_LIMIT);
		admitted_before = st.admitted;
		shed_before = st.shed_drop;

		/* End every flow so the next round races from zero again. */
		for (i = 0; i < nthr; i++)
			for (j = 0; j < RACE_ATTEMPTS; j++) {
				struct pkt_spec s, fin;

				race_syn(i, round, j, &s);
				client_seg(&s, PKT_RST, 0, &fin);
				assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
			}
		assert_inflight(t, 0, CLS_DEFAULT, 0);
		assert_int_equal(flows(t), 0);
	}
	for (i = 0; i < nthr; i++) {
		free(racers[i].frames);
		free(racers[i].lens);
	}
}

#define SLOT_RACES 20000

struct slot_racer {
	struct t *t;
	int id;
	int cpu;
	int *arrived;
	__u8 *won; /* per race: this thread's SYN was admitted */
	int err;
};

static void *slot_racer_main(void *arg)
{
	struct slot_racer *r = arg;
	struct dp_run *run = malloc(sizeof(*run));
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	CPU_SET(r->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	for (i = 0; i < SLOT_RACES; i++) {
		struct pkt_spec syn, rst;
		__u8 buf[128];
		size_t len;

		race_syn(r->id, 0, i, &syn);
		len = pkt_build(&syn, buf, sizeof(buf), NULL);
		lockstep(r->arrived, 2 * (2 * i + 1));
		if (run && !r->err)
			r->err = dp_xdp(&r->t->dp, buf, len, run);
		r->won[i] = run && !r->err && run->retval == XDP_PASS;
		lockstep(r->arrived, 2 * (2 * i + 2));
		/* The winner frees the slot before the next race starts. */
		if (r->won[i]) {
			client_seg(&syn, PKT_RST, 0, &rst);
			len = pkt_build(&rst, buf, sizeof(buf), NULL);
			r->err = dp_xdp(&r->t->dp, buf, len, run);
		}
	}
	if (!run)
		r->err = -ENOMEM;
	free(run);
	return NULL;
}

/*
 * Two CPUs race SYNs, in lockstep, for the one free slot of a limit of 1,
 * thousands of times: every race has exactly one winner. A check and an
 * increment that were two steps would let both through.
 */
static void concurrent_syns_for_the_last_slot_admit_exactly_one(void **state)
{
	struct t *t = *state;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct slot_racer r[2];
	pthread_t tid[2];
	int arrived = 0, both = 0, none = 0;
	int i;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	for (i = 0; i < 2; i++) {
		r[i] = (struct slot_racer){.t = t,
					   .id = i,
					   .cpu = (int)(i % (cpus > 0 ? cpus : 1)),
					   .arrived = &arrived,
					   .won = calloc(SLOT_RACES, 1)};
		assert_non_null(r[i].won);
	}
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, slot_racer_main, &r[i]), 0);
	for (i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	for (i = 0; i < SLOT_RACES; i++) {
		both += r[0].won[i] && r[1].won[i];
		none += !r[0].won[i] && !r[1].won[i];
	}
	free(r[0].won);
	free(r[1].won);
	assert_int_equal(r[0].err, 0);
	assert_int_equal(r[1].err, 0);
	if (both || none)
		fail_because("%d of %d races admitted both SYNs, %d admitted neither", both,
			     SLOT_RACES, none);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, SLOT_RACES);
}

/*
 * Two threads end the same flows: before each flow both wait on a spinning
 * lockstep, so their segments reach the dataplane within the window
 * between a flow's lookup and its delete, where only the delete's result
 * can tell who ended it.
 */
struct ender {
	struct t *t;
	int cpu;
	int from_server;
	int n;
	const struct pkt_spec *syns;
	int *arrived; /* lockstep counter shared by both threads */
	int err;
};

static void *ender_main(void *arg)
{
	struct ender *e = arg;
	struct dp_run *run = malloc(sizeof(*run));
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	CPU_SET(e->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	for (i = 0; i < e->n && run && !e->err; i++) {
		struct pkt_spec s;
		__u8 buf[256];
		size_t len;

		if (e->from_server)
			server_seg(&e->syns[i], PKT_FIN | PKT_ACK, 0, &s);
		else
			client_seg(&e->syns[i], PKT_FIN | PKT_ACK, 0, &s);
		len = pkt_build(&s, buf, sizeof(buf), NULL);
		lockstep(e->arrived, 2 * (i + 1));
		e->err = e->from_server ? dp_tc(&e->t->dp, buf, len, run)
					: dp_xdp(&e->t->dp, buf, len, run);
	}
	if (!run)
		e->err = -ENOMEM;
	free(run);
	/* Never leave the other thread spinning. */
	for (; i < e->n; i++)
		lockstep(e->arrived, 2 * (i + 1));
	return NULL;
}

/* Opens n flows, has two threads end each one, checks each ended once. */
static void race_endings(void **state, int server_a, int server_b)
{
	enum { N = 3000 };
	struct t *t = *state;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct pkt_spec *syns = calloc(N, sizeof(*syns));
	struct ender e[2];
	pthread_t tid[2];
	int arrived = 0;
	int i;

	assert_non_null(syns);
	one_class_service(t, N, LS_ACT_DROP, 0);
	for (i = 0; i < N; i++) {
		race_syn(0, 0, i, &syns[i]);
		admit(t, &syns[i]);
	}
	assert_inflight(t, N, CLS_DEFAULT, N);
	for (i = 0; i < 2; i++) {
		e[i] = (struct ender){.t = t,
				      .cpu = (int)(i % (cpus > 0 ? cpus : 1)),
				      .from_server = i ? server_b : server_a,
				      .n = N,
				      .syns = syns,
				      .arrived = &arrived};
		assert_int_equal(pthread_create(&tid[i], NULL, ender_main, &e[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	free(syns);
	assert_int_equal(e[0].err, 0);
	assert_int_equal(e[1].err, 0);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, N);
}

/* The client's FIN arrives twice at once, on two CPUs (two RX queues). */
static void concurrent_duplicate_fins_end_each_flow_once(void **state)
{
	race_endings(state, 0, 0);
}

/* Client FIN at XDP and server FIN at TC, at once on two CPUs. */
static void concurrent_fins_from_both_sides_end_each_flow_once(void **state)
{
	race_endings(state, 0, 1);
}

/* ---- registration ------------------------------------------------------- */

#define TEST(fn)                                                                                   \
	{                                                                                          \
#fn, fn, setup, teardown, NULL                                                     \
	}
#define TEST_V(fn, v)                                                                              \
	{                                                                                          \
#fn "/" #v, fn, setup, teardown, (void *)&v                                        \
	}
#define TEST_ALL_VARIANTS(fn)                                                                      \
	TEST_V(fn, V4), TEST_V(fn, V4_VLAN), TEST_V(fn, V4_QINQ), TEST_V(fn, V6),                  \
		TEST_V(fn, V6_VLAN), TEST_V(fn, V6_QINQ)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ALL_VARIANTS(syn_under_limit_is_admitted_and_tracked),
		TEST(syn_at_limit_minus_one_is_admitted_and_fills_the_limit),
		TEST_ALL_VARIANTS(syn_over_limit_is_shed_with_drop),
		TEST_ALL_VARIANTS(syn_over_limit_is_shed_with_reset),
		TEST_V(reset_acks_syn_data_and_drops_ip_options, V4_VLAN),
		TEST_V(reset_drops_ipv6_extension_headers, V6_QINQ),
		TEST_V(reset_of_padded_frame_is_trimmed, V4),
		TEST(ecn_setup_syn_is_a_syn),
		TEST(only_syn_without_ack_starts_a_flow),
		TEST(inactive_service_is_not_enforced),

		TEST(class_under_guarantee_is_admitted_at_the_limit),
		TEST(class_over_guarantee_is_shed_at_the_limit),
		TEST(default_class_only_gets_spare_capacity),
		TEST(default_class_is_shed_at_the_limit_even_with_no_flows),
		TEST(bypass_class_is_never_shed_nor_counted),

		TEST_V(client_fin_ends_flow_once, V4),
		TEST_V(client_fin_ends_flow_once, V6_QINQ),
		TEST_V(server_fin_ends_flow_once, V4),
		TEST_V(server_fin_ends_flow_once, V6_QINQ),
		TEST_V(client_rst_ends_flow_once, V4_VLAN),
		TEST_V(server_rst_ends_flow_once, V6),
		TEST_V(fins_from_both_sides_end_flow_once, V4),
		TEST_V(fins_from_both_sides_end_flow_once, V6_VLAN),
		TEST(server_fin_then_client_fin_end_flow_once),
		TEST(rst_after_fin_does_not_end_flow_again),
		TEST(ended_flow_frees_its_slot),

		TEST_V(syn_retransmit_passes_at_the_limit_and_is_counted_once, V4),
		TEST_V(syn_retransmit_passes_at_the_limit_and_is_counted_once, V6_QINQ),
		TEST(syn_with_new_isn_ends_old_flow_and_is_admitted_anew),

		TEST_V(request_response_records_one_latency_sample, V4),
		TEST_V(request_response_records_one_latency_sample, V6_QINQ),
		TEST(server_payload_without_request_adds_no_sample),
		TEST(request_while_one_is_outstanding_keeps_the_first_start),
		TEST(each_request_after_a_response_gets_its_own_sample),
		TEST(client_ack_without_payload_starts_no_request),
		TEST_V(server_response_with_fin_records_sample_and_ends_flow, V4),
		TEST_V(server_response_with_fin_records_sample_and_ends_flow, V6_VLAN),

		TEST(shadow_mode_admits_and_counts_would_shed),
		TEST(stale_heartbeat_fails_open_and_counts_fail_open),
		TEST(fresh_heartbeat_enforces_the_limit),
		TEST(zero_failopen_timeout_enforces_regardless_of_heartbeat),

		TEST_ALL_VARIANTS(source_prefix_rule_classifies),
		TEST_ALL_VARIANTS(port_rule_classifies),
		TEST_ALL_VARIANTS(dscp_rule_classifies_ignoring_ecn),
		TEST_ALL_VARIANTS(first_matching_rule_wins),
		TEST_ALL_VARIANTS(nested_prefixes_match_every_enclosing_rule_in_order),
		TEST(prefix_of_another_generation_or_service_does_not_match),
		TEST(policy_generation_flip_takes_effect_at_once),
		TEST_V(address_bound_service_ignores_other_addresses, V4),
		TEST_V(address_bound_service_ignores_other_addresses, V6_VLAN),

		TEST_V(non_service_port_passes_untouched, V4),
		TEST_V(non_service_port_passes_untouched, V6_QINQ),
		TEST_V(udp_to_service_port_passes_without_parse_error, V4_VLAN),
		TEST_V(udp_to_service_port_passes_without_parse_error, V6),
		TEST(arp_passes_without_parse_error),
		TEST_V(ipv6_chain_ending_in_udp_passes_without_parse_error, V6),
		TEST_V(six_extension_headers_then_udp_is_not_a_parse_error, V6_QINQ),
		TEST(longest_headers_within_bounds_are_parsed),
		TEST(malformed_frame_passes_uncounted_and_is_a_parse_error),
		TEST(frame_shorter_than_ethernet_is_refused_by_test_run),
		TEST(malformed_fin_does_not_end_a_flow),

		{"full_flow_table_admits_untracked_without_leaking",
		 full_flow_table_admits_untracked_without_leaking, setup_small_table, teardown,
		 NULL},

		TEST(concurrent_syns_never_admit_past_the_limit),
		TEST(concurrent_syns_for_the_last_slot_admit_exactly_one),
		TEST(concurrent_duplicate_fins_end_each_flow_once),
		TEST(concurrent_fins_from_both_sides_end_each_flow_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
