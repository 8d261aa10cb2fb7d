// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The shared fixtures of the dataplane tests: see fixture.h.
 */
#define _GNU_SOURCE /* unshare */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include "lib/fixture.h"

const struct variant V4 = {0, 0}, V4_VLAN = {0, 1}, V4_QINQ = {0, 2};
const struct variant V6 = {1, 0}, V6_VLAN = {1, 1}, V6_QINQ = {1, 2};

static int setup_with(void **state, const struct variant *v, const void *param, __u32 max_flows)
{
	struct t *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return -1;
	t->v = v;
	t->param = param;
	err = dp_open(&t->dp, max_flows);
	if (err) {
		printf("# cannot load the dataplane: %s\n", strerror(-err));
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

int setup(void **state)
{
	return setup_with(state, *state ? *state : &V4, NULL, 0);
}

int setup_small_table(void **state)
{
	return setup_with(state, *state ? *state : &V4, NULL, 4);
}

int setup_param(void **state)
{
	return setup_with(state, &V4, *state, 0);
}

int teardown(void **state)
{
	struct t *t = *state;

	dp_close(&t->dp);
	free(t);
	return 0;
}

/* ---- frames --------------------------------------------------------------- */

const __u8 some_bytes[1400] = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P'};

const char *server_addr(const struct variant *v)
{
	return v->ipv6 ? "2001:db8:ffff::1" : "192.0.2.1";
}

void client_addr(const struct variant *v, int n, char *buf, size_t len)
{
	if (v->ipv6)
		snprintf(buf, len, "2001:db8:1::%x", n + 1);
	else
		snprintf(buf, len, "10.1.%d.%d", (n + 1) / 250, (n + 1) % 250 + 1);
}

void tag(const struct variant *v, struct pkt_spec *s)
{
	if (v->nr_vlans >= 2)
		pkt_add_vlan(s, 0x88a8, 200);
	if (v->nr_vlans >= 1)
		pkt_add_vlan(s, 0x8100, 100);
}

void syn_from(const struct variant *v, struct pkt_spec *s, const char *client, __u16 cport,
	      __u16 dport)
{
	pkt_tcp(s, v->ipv6, client, cport, server_addr(v), dport, PKT_SYN);
	tag(v, s);
}

void syn_n(const struct t *t, int n, struct pkt_spec *s)
{
	char client[64];

	client_addr(t->v, n, client, sizeof(client));
	syn_from(t->v, s, client, (__u16)(40000 + n), PORT);
	s->seq = 1000 + (__u32)n;
}

void syn_dscp(const struct t *t, int n, __u8 dscp, struct pkt_spec *s)
{
	syn_n(t, n, s);
	s->tos = (__u8)(dscp << 2);
}

void build(const struct pkt_spec *s, struct frame *f)
{
	f->len = pkt_build(s, f->buf, sizeof(f->buf), &f->lay);
	assert_true(f->len > 0);
}

__u32 run_frame(struct t *t, int xdp, const struct frame *f, struct dp_run *r)
{
	static struct dp_run scratch;
	int err;

	if (!r)
		r = &scratch;
	err = xdp ? dp_xdp(&t->dp, f->buf, f->len, r) : dp_tc(&t->dp, f->buf, f->len, r);
	assert_int_equal(err, 0);
	return r->retval;
}

__u32 xdp(struct t *t, const struct pkt_spec *s, struct dp_run *r)
{
	struct frame f;

	build(s, &f);
	return run_frame(t, 1, &f, r);
}

__u32 tc(struct t *t, const struct pkt_spec *s)
{
	struct frame f;

	build(s, &f);
	return run_frame(t, 0, &f, NULL);
}

void xdp_passes_untouched(struct t *t, const struct frame *f)
{
	static struct dp_run r;

	assert_int_equal(run_frame(t, 1, f, &r), XDP_PASS);
	assert_int_equal(r.len, f->len);
	assert_memory_equal(r.out, f->buf, f->len);
}

/* ---- connections ---------------------------------------------------------- */

void conn_of_syn(const struct pkt_spec *syn, __u32 isn, struct conn *c)
{
	c->syn = *syn;
	c->isn = isn;
	c->cli_seq = syn->seq + 1;
	c->srv_seq = isn + 1;
}

void conn_n(const struct t *t, int n, struct conn *c)
{
	struct pkt_spec syn;

	syn_n(t, n, &syn);
	conn_of_syn(&syn, SRV_ISN(n), c);
}

void conn_dscp(const struct t *t, int n, __u8 dscp, struct conn *c)
{
	struct pkt_spec syn;

	syn_dscp(t, n, dscp, &syn);
	conn_of_syn(&syn, SRV_ISN(n), c);
}

void conn_key(const struct conn *c, struct ls_flow_key *key)
{
	pkt_flow_key(&c->syn, 1, key);
}

static int clamp_len(int len)
{
	return len < 0 ? 0 : len > (int)sizeof(some_bytes) ? (int)sizeof(some_bytes) : len;
}

void cli_seg(const struct conn *c, __u8 flags, int payload_len, struct pkt_spec *out)
{
	*out = c->syn;
	out->flags = flags;
	out->seq = c->cli_seq;
	out->ack = c->srv_seq;
	out->tcp_opts_len = 0;
	out->payload = some_bytes;
	out->payload_len = clamp_len(payload_len);
}

void srv_seg(const struct conn *c, __u8 flags, int payload_len, struct pkt_spec *out)
{
	*out = c->syn;
	pkt_reverse(out);
	out->tos = 0;
	out->flags = flags;
	out->seq = c->srv_seq;
	out->ack = c->cli_seq;
	out->tcp_opts_len = 0;
	out->payload = some_bytes;
	out->payload_len = clamp_len(payload_len);
}

void synack_of(const struct conn *c, struct pkt_spec *out)
{
	struct conn at_isn = *c;

	at_isn.srv_seq = c->isn;
	at_isn.cli_seq = c->syn.seq + 1;
	srv_seg(&at_isn, PKT_SYN | PKT_ACK, 0, out);
}

__u32 send_syn(struct t *t, const struct conn *c, struct dp_run *r)
{
	return xdp(t, &c->syn, r);
}

void send_synack(struct t *t, struct conn *c)
{
	struct pkt_spec s;

	synack_of(c, &s);
	assert_int_equal(tc(t, &s), TC_ACT_OK);
	c->srv_seq = c->isn + 1;
}

__u32 send_ack(struct t *t, struct conn *c, int payload_len, struct dp_run *r)
{
	struct pkt_spec s;

	cli_seg(c, payload_len ? PKT_PSH | PKT_ACK : PKT_ACK, payload_len, &s);
	s.ack = c->isn + 1;
	c->cli_seq += (__u32)s.payload_len;
	return xdp(t, &s, r);
}

__u32 handshake(struct t *t, struct conn *c, struct dp_run *r)
{
	assert_int_equal(send_syn(t, c, NULL), XDP_PASS);
	send_synack(t, c);
	return send_ack(t, c, 0, r);
}

void connect_ok(struct t *t, struct conn *c)
{
	assert_int_equal(handshake(t, c, NULL), XDP_PASS);
	assert_true(tracked(t, c, NULL));
}

__u32 cli_send(struct t *t, struct conn *c, __u8 flags, int payload_len, struct dp_run *r)
{
	struct pkt_spec s;

	cli_seg(c, flags, payload_len, &s);
	c->cli_seq += (__u32)s.payload_len + (flags & PKT_FIN ? 1 : 0);
	return xdp(t, &s, r);
}

__u32 request(struct t *t, struct conn *c, int payload_len, struct dp_run *r)
{
	return cli_send(t, c, PKT_PSH | PKT_ACK, payload_len, r);
}

__u32 cli_data_at(struct t *t, const struct conn *c, __u32 seq, int payload_len, struct dp_run *r)
{
	struct pkt_spec s;

	cli_seg(c, PKT_PSH | PKT_ACK, payload_len, &s);
	s.seq = seq;
	return xdp(t, &s, r);
}

__u32 cli_rst_at(struct t *t, const struct conn *c, __u32 seq)
{
	struct pkt_spec s;

	cli_seg(c, PKT_RST, 0, &s);
	s.seq = seq;
	s.ack = 0;
	return xdp(t, &s, NULL);
}

void srv_send(struct t *t, struct conn *c, __u8 flags, int payload_len)
{
	struct pkt_spec s;

	srv_seg(c, flags, payload_len, &s);
	assert_int_equal(tc(t, &s), TC_ACT_OK);
	c->srv_seq += (__u32)s.payload_len + (flags & PKT_FIN ? 1 : 0);
}

void respond(struct t *t, struct conn *c, int payload_len)
{
	srv_send(t, c, PKT_PSH | PKT_ACK, payload_len);
}

void srv_ack(struct t *t, struct conn *c)
{
	srv_send(t, c, PKT_ACK, 0);
}

/* ---- policy --------------------------------------------------------------- */

void set_limits(struct t *t, __u32 limit, __u32 g_hi, __u32 g_lo)
{
	struct ls_limits lim;

	memset(&lim, 0, sizeof(lim));
	lim.limit = limit;
	lim.guarantee[CLS_HI] = g_hi;
	lim.guarantee[CLS_LO] = g_lo;
	assert_int_equal(dp_limits(&t->dp, SVC, &lim), 0);
}

void no_agent(struct t *t)
{
	assert_int_equal(dp_state(&t->dp, 0, 0, 0), 0);
}

void stale_heartbeat(struct t *t)
{
	__u64 now = dp_now_ns();

	assert_int_equal(
		dp_state(&t->dp, 0, now > 60 * NS_PER_S ? now - 60 * NS_PER_S : 0, NS_PER_S), 0);
}

void future_heartbeat(struct t *t)
{
	assert_int_equal(dp_state(&t->dp, 0, dp_now_ns() + 3600 * NS_PER_S, NS_PER_S), 0);
}

void write_policy(struct t *t)
{
	assert_int_equal(dp_policy(&t->dp, 0, SVC, &t->pol), 0);
}

void one_class_service(struct t *t, __u32 limit, __u8 action, __u32 flags)
{
	dp_policy_init(&t->pol, LS_SVC_ACTIVE | flags, CLS_DEFAULT);
	dp_policy_class(&t->pol, CLS_DEFAULT, action);
	assert_int_equal(dp_port_any(&t->dp, 0, PORT, SVC), 0);
	write_policy(t);
	set_limits(t, limit, 0, 0);
	no_agent(t);
}

void request_service(struct t *t, __u32 limit, __u8 req_action, __u32 flags)
{
	one_class_service(t, limit, LS_ACT_DROP, flags);
	t->pol.admit = LS_ADMIT_REQUESTS;
	dp_policy_req_action(&t->pol, CLS_DEFAULT, req_action);
	write_policy(t);
}

void dscp_classes_service(struct t *t, __u32 limit, __u32 g_hi, __u32 g_lo)
{
	dp_policy_init(&t->pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_class(&t->pol, CLS_HI, LS_ACT_DROP);
	dp_policy_class(&t->pol, CLS_LO, LS_ACT_DROP);
	dp_policy_class(&t->pol, CLS_BYPASS, LS_ACT_BYPASS);
	dp_policy_rule(&t->pol, CLS_HI, 0, 0, 0, DSCP_EF);
	dp_policy_rule(&t->pol, CLS_LO, 0, 0, 0, DSCP_AF11);
	dp_policy_rule(&t->pol, CLS_BYPASS, 0, 0, 0, DSCP_CS6);
	assert_int_equal(dp_port_any(&t->dp, 0, PORT, SVC), 0);
	write_policy(t);
	set_limits(t, limit, g_hi, g_lo);
	no_agent(t);
}

/* ---- the tick ------------------------------------------------------------- */

struct ls_tick sweep(struct t *t, __u64 idle_ns, __u64 stall_ns, __u64 suspect_ns)
{
	struct ls_tick k;

	memset(&k, 0, sizeof(k));
	k.idle_timeout_ns = idle_ns;
	k.stall_timeout_ns = stall_ns;
	k.suspect_ns = suspect_ns;
	k.sweep = 1;
	assert_int_equal(dp_tick(&t->dp, &k), 0);
	return k;
}

void sleep_ns(__u64 ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S)};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- reading the maps ----------------------------------------------------- */

struct ls_inflight inflight(struct t *t)
{
	struct ls_inflight in;

	assert_int_equal(dp_inflight(&t->dp, SVC, &in), 0);
	return in;
}

struct ls_class_stats stats(struct t *t, __u32 cls)
{
	struct ls_class_stats st;

	assert_int_equal(dp_class_stats(&t->dp, SVC, cls, &st), 0);
	return st;
}

struct ls_iface_stats iface(struct t *t)
{
	struct ls_iface_stats st;

	assert_int_equal(dp_iface_stats(&t->dp, &st), 0);
	return st;
}

long flows(struct t *t)
{
	long n = dp_count_flows(&t->dp);

	assert_true(n >= 0);
	return n;
}

long handshakes(struct t *t)
{
	long n = dp_count_handshakes(&t->dp);

	assert_true(n >= 0);
	return n;
}

int tracked(struct t *t, const struct conn *c, struct ls_flow *out)
{
	struct ls_flow_key key;
	struct ls_flow f;

	conn_key(c, &key);
	return dp_flow(&t->dp, &key, out ? out : &f) == 0;
}

struct ls_flow flow_of(struct t *t, const struct conn *c)
{
	struct ls_flow f;

	assert_true(tracked(t, c, &f));
	return f;
}

int hs_entry(struct t *t, const struct conn *c, struct ls_handshake *out)
{
	struct ls_flow_key key;
	struct ls_handshake h;

	conn_key(c, &key);
	return dp_handshake(&t->dp, &key, out ? out : &h) == 0;
}

void assert_inflight(struct t *t, int total, int cls, int in_cls)
{
	struct ls_inflight in = inflight(t);

	assert_int_equal(in.total, total);
	assert_int_equal(in.cls[cls], in_cls);
}

void assert_conns(struct t *t, int conns)
{
	assert_int_equal(inflight(t).conns, conns);
}

void assert_nothing_in_flight(struct t *t)
{
	static const struct ls_inflight zero;
	struct ls_inflight in = inflight(t);

	if (memcmp(&in, &zero, sizeof(zero))) {
		__u32 c;

		printf("# in flight: total %d, conns %d\n", in.total, in.conns);
		for (c = 0; c < LS_MAX_CLASSES; c++)
			if (in.cls[c])
				printf("# in flight: class %u: %d\n", c, in.cls[c]);
		fail_because("something is still in flight");
	}
}

void assert_no_class_counted(struct t *t)
{
	static const struct ls_class_stats zero;
	__u32 c;

	for (c = 0; c < LS_MAX_CLASSES; c++) {
		struct ls_class_stats st = stats(t, c);

		assert_memory_equal(&st, &zero, sizeof(zero));
	}
}

void assert_rst_answers(const struct pkt_spec *seg, const struct dp_run *r)
{
	char why[160] = "";
	int bad = seg->flags & PKT_SYN
			  ? pkt_check_rst(seg, r->out, r->len, why, sizeof(why))
			  : pkt_check_rst_of_segment(seg, r->out, r->len, why, sizeof(why));

	if (bad)
		fail_because("not the RST answering the segment: %s", why);
}

/* ---- running ------------------------------------------------------------ */

/*
 * Why no test of this file can run here, or NULL when they can: loading
 * the dataplane once tells. Only a missing privilege or a kernel without
 * bpf() is a reason to skip; a load that fails otherwise (the verifier
 * refusing a program, say) is loadshed's failure and the tests report it.
 */
static const char *cannot_run_here(void)
{
	struct dp probe;
	int err = dp_open(&probe, 0);

	if (!err) {
		dp_close(&probe);
		return NULL;
	}
	if (err == -EPERM || err == -EACCES)
		return geteuid() ? "needs root to load BPF programs"
				 : "not allowed to load BPF programs here";
	if (err == -ENOSYS)
		return "this kernel has no bpf()";
	return NULL;
}

int dp_tests_run(const char *group, const struct CMUnitTest *tests, size_t n)
{
	const char *why = cannot_run_here();
	size_t i;

	if (!why)
		return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
	printf("1..%zu\n", n);
	for (i = 0; i < n; i++)
		printf("ok %zu - %s # SKIP %s\n", i + 1, tests[i].name, why);
	return 0;
}

void conn_in_same_set(const struct t *t, const struct conn *a, __u32 isn, struct conn *b)
{
	int last = a->syn.ipv6 ? 15 : 3;
	static __u32 i; /* where the last search stopped: each finds another tuple */
	struct ls_flow_key ka, kb;
	__u32 set;

	conn_key(a, &ka);
	set = dp_hs_set(&t->dp, &ka);
	*b = *a;
	b->isn = isn;
	b->srv_seq = isn + 1;
	while (++i < (1u << 24)) {
		b->syn.sport = (__u16)(a->syn.sport + i);
		b->syn.saddr[last] = (__u8)(a->syn.saddr[last] + (i >> 16));
		if (!b->syn.sport)
			continue;
		conn_key(b, &kb);
		if (dp_hs_set(&t->dp, &kb) == set)
			return;
	}
	fail_msg("no more tuples found in the set of connection a");
}

int private_netns(void)
{
	struct ifreq ifr;
	int fd, err = 0;

	if (unshare(CLONE_NEWNET))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		err = -errno;
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr))
			err = -errno;
	}
	close(fd);
	return err;
}
