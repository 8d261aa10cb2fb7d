// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Per-packet cost of the dataplane's XDP program with BPF_PROG_TEST_RUN,
 * next to reference programs measured in the same run (bpf/bench_ref.bpf.c),
 * printed as a Markdown table of ns/packet and ratios with the targets of
 * doc/design.md §13.
 *
 * BPF_PROG_TEST_RUN repeats one frame R times and reports the mean, which
 * amortises the harness. That is right as it stands for a non-service
 * packet, a packet of a tracked flow and a SYN shed with a drop: the frame
 * means the same thing every time. It is wrong for two cases:
 *  - a SYN that passes should carry a new tuple each time, as the SYNs of
 *    a flood do (one tuple again and again would find warm caches);
 *  - a SYN shed with a reset is rewritten into the RST in place, so the
 *    next repetition would see the RST.
 * For these, a prelude program (ref_prelude) runs first in each repetition
 * and tail-calls ls_xdp_ingress: it bumps the IPv4 source address (a fresh
 * flow every repetition) or copies the SYN back over the frame. The same
 * prelude in front of the trivial XDP_PASS measures what it adds itself:
 *   cost = (prelude -> ls_xdp_ingress) - (prelude -> XDP_PASS) + XDP_PASS.
 * A SYN that passes writes nothing (its admission is at the handshake's
 * ACK): each run checks that its flow table holds only the tracked flow,
 * whose handshake the run completes first.
 *
 * An admitted connection costs three packets: the SYN, the server's SYN-ACK
 * at egress (its ISN noted in the handshake table) and the client's ACK
 * (admitted: a handshake found, the service's lock, a flow inserted). The
 * SYN-ACK runs behind a tc prelude that gives it the next destination each
 * repetition (its control: the prelude in front of a trivial tc program),
 * then the ACK behind the XDP prelude with the next source, so that every
 * ACK finds its own handshake; each run checks that the ACKs admitted
 * every connection whose handshake kept its slot, and nearly all did. The
 * SYN-ACK is measured again with the table churned, as a SYN flood keeps
 * it, next to an LRU hash (the obvious alternative) kept full.
 *
 * As a cross-check, the "one-shot" table times single runs (repeat 1, the
 * kernel's timing of that one run, median over many calls, a new tuple or
 * a restored frame each call): its rows all carry the timer's fixed cost
 * and run with colder caches, so only its ratios are comparable.
 *
 * Usage: bench_bpf [-r REPEAT] [-n RUNS] [-s ONE_SHOT_SAMPLES]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bench_ref.skel.h"
#include "lib/harness.h"
#include "lib/pkt.h"

#define PORT_OPEN  8080 /* limit far above anything the bench admits */
#define PORT_DROP  8081 /* limit 0, drop */
#define PORT_RESET 8082 /* limit 0, reset */
#define PORT_NONE  9999 /* no service */

struct frame {
	__u8 buf[128];
	size_t len;
};

enum ref { REF_PASS, REF_PARSE, REF_LOOKUP, NR_REFS };

static const char *const ref_names[NR_REFS] = {"trivial XDP_PASS", "parse-only", "parse + lookup"};

struct result {
	const char *name;
	double ns;     /* repeat mean, or one-shot median */
	double target; /* max ratio against target_ref; 0: none */
	enum ref target_ref;
	double target_ns; /* max ns; 0: none */
};

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void build(struct pkt_spec *s, struct frame *f)
{
	f->len = pkt_build(s, f->buf, sizeof(f->buf), NULL);
}

/* The SYN number i of a batch: a tuple no other SYN of the bench uses. */
static void fresh_syn(int batch, int i, __u16 port, struct frame *f)
{
	struct pkt_spec s;
	char client[32];

	snprintf(client, sizeof(client), "10.%d.%d.%d", 64 + batch, (i >> 8) & 0xff, i & 0xff);
	pkt_tcp(&s, 0, client, (__u16)(1024 + (i >> 16)), "192.0.2.1", port, PKT_SYN);
	build(&s, f);
}

/* Mean ns per repetition over repeat runs of one frame. */
static double run_repeat(int fd, const struct frame *f, __u32 repeat)
{
	static struct dp_run r;
	int err = dp_run(fd, f->buf, f->len, repeat, &r);

	if (err) {
		fprintf(stderr, "bench_bpf: test run: %s\n", strerror(-err));
		exit(1);
	}
	return r.duration_ns;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median of the kernel's timing of n single runs; frames[i % nframes]. */
static double run_one_shot(int fd, const struct frame *frames, int nframes, int n, __u32 expect)
{
	static struct dp_run r;
	__u32 *ns = calloc(n, sizeof(*ns));
	double m;
	int i;

	if (!ns)
		exit(1);
	for (i = 0; i < n; i++) {
		const struct frame *f = &frames[i % nframes];

		if (dp_run(fd, f->buf, f->len, 1, &r) || r.retval != expect) {
			fprintf(stderr, "bench_bpf: one-shot run %d: verdict %u, expected %u\n", i,
				r.retval, expect);
			exit(1);
		}
		ns[i] = r.duration_ns;
	}
	qsort(ns, n, sizeof(*ns), cmp_u32);
	m = ns[n / 2];
	free(ns);
	return m;
}

static void setup_service(struct dp *dp, __u32 svc, __u16 port, __u32 limit, __u8 action)
{
	struct ls_service_policy pol;
	struct ls_limits lim;

	dp_policy_init(&pol, LS_SVC_ACTIVE, 0);
	dp_policy_class(&pol, 0, action);
	memset(&lim, 0, sizeof(lim));
	lim.limit = limit;
	if (dp_port_any(dp, 0, port, svc) || dp_policy(dp, 0, svc, &pol) ||
	    dp_limits(dp, svc, &lim)) {
		fprintf(stderr, "bench_bpf: cannot write the policy\n");
		exit(1);
	}
}

static void print_row(const struct result *r, const double *ref, const char *method)
{
	double ratio = r->target ? r->ns / ref[r->target_ref] : 0;

	printf("| %-34s | %-8s | %8.1f | %6.2f× | %6.2f× | %6.2f× | ", r->name, method, r->ns,
	       r->ns / ref[REF_PASS], r->ns / ref[REF_PARSE], r->ns / ref[REF_LOOKUP]);
	if (r->target)
		printf("≤ %.1f× %s: %s |\n", r->target, ref_names[r->target_ref],
		       ratio <= r->target ? "met" : "**missed**");
	else if (r->target_ns)
		printf("≤ %.0f ns: %s |\n", r->target_ns,
		       r->ns <= r->target_ns ? "met" : "**missed**");
	else
		printf("— |\n");
}

static void print_header(void)
{
	printf("| case | method | ns/pkt | × XDP_PASS | × parse-only | × parse+lookup | design.md "
	       "§8 "
	       "target |\n");
	printf("|---|---|---:|---:|---:|---:|---|\n");
}

enum {
	R_PASS,
	R_PARSE,
	R_LOOKUP,
	R_INSERT,
	R_LRU,
	R_NONE,
	R_TRACKED,
	R_SHED,
	R_RESET,
	R_ADMIT,
	R_SYNACK,
	R_ACK,
	R_CONN,
	R_LRU_FULL,
	R_SYNACK_FULL,
	NR_R
};
enum { PRELUDE_NEW_SOURCE = 1, PRELUDE_RESTORE = 2 }; /* as in bench_ref.bpf.c */

/*
 * The handshake rows note a SYN-ACK and admit a connection per repetition:
 * this many (outstanding at once, as in a burst of connects). A set of the
 * handshake table that gets more than its ways pushes the oldest out
 * (about 0.4 % of them at one per set on average), so each run checks that
 * the ACKs admitted every handshake noted, and that at least 95 % were.
 */
#define CONN_REPEAT_MAX 65536

struct bench {
	struct bench_ref_bpf *ref;
	int fd_ref[NR_REFS];
	int fd_tc_pass;
	__u32 repeat;
	__u32 conn_repeat;	      /* repetitions of the handshake rows */
	double tc_pass[64];	      /* the trivial tc program, per run */
	long noted[64], admitted[64]; /* handshakes noted, connections admitted, per run */
	int samples;
	struct frame none, tracked, shed_drop, shed_reset, admit, synack, ack;
	struct frame *syns; /* one-shot: a fresh SYN per call */
};

static void die(const char *what)
{
	fprintf(stderr, "bench_bpf: %s\n", what);
	exit(1);
}

/*
 * Mean cost of prog_fd behind a prelude over repeat repetitions, the
 * prelude's own cost removed: the prelude in front of the trivial pass
 * program of the same type is the control.
 */
static double prelude_cost(int prelude, int next_map, int pass_fd, int prog_fd,
			   const struct frame *f, __u32 repeat, __u32 expect)
{
	static struct dp_run r;
	__u32 zero = 0;
	double control;

	if (bpf_map_update_elem(next_map, &zero, &pass_fd, BPF_ANY))
		die("cannot install the tail call");
	control = run_repeat(prelude, f, repeat);
	if (bpf_map_update_elem(next_map, &zero, &prog_fd, BPF_ANY))
		die("cannot install the tail call");
	if (dp_run(prelude, f->buf, f->len, repeat, &r) || r.retval != expect)
		die("the prelude case gave an unexpected verdict");
	return r.duration_ns - control;
}

static double behind_prelude(struct bench *b, int prog_fd, __u32 mode, const struct frame *f,
			     __u32 repeat, __u32 expect)
{
	b->ref->bss->prelude_mode = mode;
	memcpy(b->ref->bss->syn_template, f->buf, sizeof(b->ref->bss->syn_template));
	return prelude_cost(bpf_program__fd(b->ref->progs.ref_prelude),
			    bpf_map__fd(b->ref->maps.next), b->fd_ref[REF_PASS], prog_fd, f, repeat,
			    expect);
}

/* More than the handshake table's slots: enough to fill any table of its size. */
#define CHURN (LS_MAX_HANDSHAKES + LS_MAX_HANDSHAKES / 8)

/* The server's SYN-ACK to n clients from octet.0.0.1 on, behind the tc prelude: its cost. */
static double tc_churn(struct bench *b, int tc_fd, __u8 octet, __u32 n)
{
	struct frame f = b->synack;

	f.buf[sizeof(struct ethhdr) + offsetof(struct iphdr, daddr)] = octet;
	return prelude_cost(bpf_program__fd(b->ref->progs.ref_tc_prelude),
			    bpf_map__fd(b->ref->maps.next_tc), b->fd_tc_pass, tc_fd, &f, n,
			    TC_ACT_OK);
}

/* The client's ACK from n clients from octet.0.0.1 on, behind the XDP prelude: its cost. */
static double xdp_churn(struct bench *b, int prog_fd, __u8 octet, __u32 n)
{
	struct frame f = b->ack;

	f.buf[sizeof(struct ethhdr) + offsetof(struct iphdr, saddr)] = octet;
	return behind_prelude(b, prog_fd, PRELUDE_NEW_SOURCE, &f, n, XDP_PASS);
}

/* Empties a hash map, so that the next run inserts into the same fill. */
static void clear_map(int fd)
{
	struct ls_flow_key key;

	while (!bpf_map_get_next_key(fd, NULL, &key))
		if (bpf_map_delete_elem(fd, &key))
			die("cannot empty a reference map");
}

/* One run of every case on a fresh dataplane; results in rep[][run], one[][run]. */
static void bench_run(struct bench *b, int run, double rep[NR_R][64], double one[NR_R][64])
{
	struct ls_class_stats st;
	struct pkt_spec s;
	struct ls_flow_key key;
	struct ls_flow flow;
	struct ls_handshake hs;
	struct dp dp;
	int i;

	if (dp_open(&dp, b->repeat + (__u32)b->samples + 16))
		die("cannot load the dataplane (root needed)");
	setup_service(&dp, 0, PORT_OPEN, 1u << 30, LS_ACT_DROP);
	setup_service(&dp, 1, PORT_DROP, 0, LS_ACT_DROP);
	setup_service(&dp, 2, PORT_RESET, 0, LS_ACT_RESET);
	dp_state(&dp, 0, 0, 0);

	/*
	 * The tracked flow: its handshake completed (SYN, the server's SYN-ACK
	 * with ISN 5000, the ACK of 5001); the lookup reference has its key too.
	 */
	pkt_tcp(&s, 0, "10.1.0.1", 40000, "192.0.2.1", PORT_OPEN, PKT_SYN);
	build(&s, &b->tracked);
	run_repeat(dp.xdp_fd, &b->tracked, 1);
	pkt_flow_key(&s, 1, &key);
	pkt_reverse(&s);
	s.flags = PKT_SYN | PKT_ACK;
	s.ack = s.seq + 1;
	s.seq = 5000;
	build(&s, &b->tracked);
	run_repeat(dp.tc_fd, &b->tracked, 1);
	pkt_tcp(&s, 0, "10.1.0.1", 40000, "192.0.2.1", PORT_OPEN, PKT_ACK);
	s.seq++;
	s.ack = 5001;
	build(&s, &b->tracked);
	run_repeat(dp.xdp_fd, &b->tracked, 1);
	if (dp_flow(&dp, &key, &flow))
		die("the tracked flow was not admitted");
	bpf_map_update_elem(bpf_map__fd(b->ref->maps.ref_flows), &key, &flow, BPF_ANY);

	rep[R_PASS][run] = run_repeat(b->fd_ref[REF_PASS], &b->tracked, b->repeat);
	rep[R_PARSE][run] = run_repeat(b->fd_ref[REF_PARSE], &b->tracked, b->repeat);
	rep[R_LOOKUP][run] = run_repeat(b->fd_ref[REF_LOOKUP], &b->tracked, b->repeat);
	rep[R_NONE][run] = run_repeat(dp.xdp_fd, &b->none, b->repeat);
	rep[R_TRACKED][run] = run_repeat(dp.xdp_fd, &b->tracked, b->repeat);
	rep[R_SHED][run] = run_repeat(dp.xdp_fd, &b->shed_drop, b->repeat);
	rep[R_RESET][run] = rep[R_PASS][run] + behind_prelude(b, dp.xdp_fd, PRELUDE_RESTORE,
							      &b->shed_reset, b->repeat, XDP_TX);
	/* Sources 10.128.0.1 and up: no other frame of the bench uses them. */
	rep[R_ADMIT][run] = rep[R_PASS][run] + behind_prelude(b, dp.xdp_fd, PRELUDE_NEW_SOURCE,
							      &b->admit, b->repeat, XDP_PASS);
	dp_class_stats(&dp, 0, 0, &st);
	/* A SYN that passes writes nothing: the tracked flow stays the only one. */
	if (st.syns != 1 + b->repeat || st.admitted != 1 || dp_count_flows(&dp) != 1)
		die("the passed-SYN case did not pass a fresh SYN every time, writing nothing");
	if (dp_class_stats(&dp, 2, 0, &st) || st.shed_reset != b->repeat)
		die("the reset case did not shed a SYN every time");

	/*
	 * The rest of an admitted connection, for the first conn_repeat of
	 * those sources: the server's SYN-ACK at egress notes its ISN (a new
	 * destination each repetition), then the client's ACK of ISN + 1 is
	 * admitted (a new source each repetition: a handshake entry found, the
	 * lock taken, a flow inserted).
	 */
	b->tc_pass[run] = run_repeat(b->fd_tc_pass, &b->synack, b->conn_repeat);
	rep[R_SYNACK][run] =
		b->tc_pass[run] + prelude_cost(bpf_program__fd(b->ref->progs.ref_tc_prelude),
					       bpf_map__fd(b->ref->maps.next_tc), b->fd_tc_pass,
					       dp.tc_fd, &b->synack, b->conn_repeat, TC_ACT_OK);
	/*
	 * The ways now held, less the tracked flow's own unless the case pushed
	 * it out of its set (it is the oldest there) or a colliding tuple took
	 * it over.
	 */
	b->noted[run] = dp_count_handshakes(&dp) -
			(!dp_handshake(&dp, &key, &hs) && hs.isn == 5000 ? 1 : 0);
	if (b->noted[run] < (long)b->conn_repeat * 95 / 100)
		die("the SYN-ACK case did not note a handshake nearly every time");
	rep[R_ACK][run] = rep[R_PASS][run] + behind_prelude(b, dp.xdp_fd, PRELUDE_NEW_SOURCE,
							    &b->ack, b->conn_repeat, XDP_PASS);
	dp_class_stats(&dp, 0, 0, &st);
	b->admitted[run] = (long)st.admitted - 1;
	if (b->admitted[run] != b->noted[run] || dp_count_flows(&dp) != 1 + b->admitted[run]) {
		fprintf(stderr, "bench_bpf: %ld handshakes noted, %ld admitted, %ld flows\n",
			b->noted[run], b->admitted[run], dp_count_flows(&dp));
		die("the ACK case did not admit every connection whose handshake was noted");
	}
	rep[R_CONN][run] = rep[R_ADMIT][run] + rep[R_SYNACK][run] + rep[R_ACK][run];
	/* The floors of those inserts: one into a table like the flows', one like the handshakes'.
	 */
	rep[R_INSERT][run] = rep[R_PASS][run] +
			     behind_prelude(b, bpf_program__fd(b->ref->progs.ref_parse_insert),
					    PRELUDE_NEW_SOURCE, &b->ack, b->conn_repeat, XDP_PASS);
	rep[R_LRU][run] = rep[R_PASS][run] +
			  behind_prelude(b, bpf_program__fd(b->ref->progs.ref_parse_lru_insert),
					 PRELUDE_NEW_SOURCE, &b->ack, b->conn_repeat, XDP_PASS);

	/*
	 * Under a SYN flood every SYN-ACK the kernel sends lands in a full
	 * table: churn it with CHURN tuples of 11.0.0.0 and up, then measure
	 * conn_repeat more of 12.0.0.0 and up; the same for the LRU reference,
	 * which then evicts at every insert.
	 */
	b->ref->bss->prelude_mode = PRELUDE_NEW_SOURCE;
	tc_churn(b, dp.tc_fd, 11, CHURN);
	rep[R_SYNACK_FULL][run] = b->tc_pass[run] + tc_churn(b, dp.tc_fd, 12, b->conn_repeat);
	xdp_churn(b, bpf_program__fd(b->ref->progs.ref_parse_lru_insert), 11, CHURN);
	rep[R_LRU_FULL][run] =
		rep[R_PASS][run] + xdp_churn(b, bpf_program__fd(b->ref->progs.ref_parse_lru_insert),
					     12, b->conn_repeat);

	clear_map(bpf_map__fd(b->ref->maps.ref_flows));
	clear_map(bpf_map__fd(b->ref->maps.ref_lru));

	one[R_PASS][run] = run_one_shot(b->fd_ref[REF_PASS], &b->tracked, 1, b->samples, XDP_PASS);
	one[R_PARSE][run] =
		run_one_shot(b->fd_ref[REF_PARSE], &b->tracked, 1, b->samples, XDP_PASS);
	one[R_LOOKUP][run] =
		run_one_shot(b->fd_ref[REF_LOOKUP], &b->tracked, 1, b->samples, XDP_PASS);
	one[R_NONE][run] = run_one_shot(dp.xdp_fd, &b->none, 1, b->samples, XDP_PASS);
	one[R_TRACKED][run] = run_one_shot(dp.xdp_fd, &b->tracked, 1, b->samples, XDP_PASS);
	one[R_SHED][run] = run_one_shot(dp.xdp_fd, &b->shed_drop, 1, b->samples, XDP_DROP);
	one[R_RESET][run] = run_one_shot(dp.xdp_fd, &b->shed_reset, 1, b->samples, XDP_TX);
	for (i = 0; i < b->samples; i++)
		fresh_syn(run, i, PORT_OPEN, &b->syns[i]);
	one[R_ADMIT][run] = run_one_shot(dp.xdp_fd, b->syns, b->samples, b->samples, XDP_PASS);
	dp_close(&dp);
}

int main(int argc, char **argv)
{
	static double rep[NR_R][64], one[NR_R][64];
	static const char *const names[NR_R] = {
		"trivial XDP_PASS (reference)",
		"parse-only (reference)",
		"parse + lookup (reference)",
		"parse + flow insert (reference)",
		"parse + LRU insert (reference)",
		"non-service packet",
		"tracked-flow packet",
		"shed SYN (drop)",
		"shed SYN (reset)",
		"passed SYN (writes nothing)",
		"SYN-ACK at egress (ISN noted)",
		"handshake's ACK (admitted)",
		"admitted connection: the three",
		"parse + LRU insert, full (ref.)",
		"SYN-ACK at egress, table churned",
	};
	/* doc/design.md §13: the largest ratio against a reference. */
	static const double target[NR_R] = {[R_NONE] = 1.2, [R_TRACKED] = 1.3, [R_SHED] = 1.5};
	static const enum ref target_ref[NR_R] = {
		[R_NONE] = REF_PARSE, [R_TRACKED] = REF_LOOKUP, [R_SHED] = REF_LOOKUP};
	static const double target_ns[NR_R] = {[R_CONN] = 300};
	struct bench b = {.repeat = 1000000, .samples = 20000};
	double rep_med[NR_R], one_med[NR_R];
	int runs = 5, opt, i, run;
	struct utsname uts;
	struct pkt_spec s;
	cpu_set_t set;

	while ((opt = getopt(argc, argv, "r:n:s:")) != -1) {
		switch (opt) {
		case 'r':
			b.repeat = (__u32)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			runs = atoi(optarg);
			break;
		case 's':
			b.samples = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-r REPEAT] [-n RUNS] [-s ONE_SHOT_SAMPLES]\n",
				argv[0]);
			return 2;
		}
	}
	/* The prelude's sources stay inside 10.128.0.0/12. */
	if (runs < 1 || runs > 64 || b.samples < 1 || b.samples > (1 << 20) || !b.repeat ||
	    b.repeat > (1u << 20) - 1)
		die("bad arguments: 1 <= RUNS <= 64, 1 <= REPEAT < 2^20, 1 <= SAMPLES <= 2^20");

	/* One CPU for the whole run: every number then sees the same caches and clock. */
	CPU_ZERO(&set);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &set);
	sched_setaffinity(0, sizeof(set), &set);

	b.ref = bench_ref_bpf__open_and_load();
	if (!b.ref)
		die("cannot load the reference programs (root needed)");
	b.fd_ref[REF_PASS] = bpf_program__fd(b.ref->progs.ref_xdp_pass);
	b.fd_ref[REF_PARSE] = bpf_program__fd(b.ref->progs.ref_parse);
	b.fd_ref[REF_LOOKUP] = bpf_program__fd(b.ref->progs.ref_parse_lookup);
	b.fd_tc_pass = bpf_program__fd(b.ref->progs.ref_tc_pass);
	b.conn_repeat = b.repeat < CONN_REPEAT_MAX ? b.repeat : CONN_REPEAT_MAX;
	b.syns = calloc(b.samples, sizeof(*b.syns));
	if (!b.syns)
		die("out of memory");

	pkt_tcp(&s, 0, "10.1.0.2", 40000, "192.0.2.1", PORT_NONE, PKT_ACK);
	build(&s, &b.none);
	pkt_tcp(&s, 0, "10.1.0.3", 40000, "192.0.2.1", PORT_DROP, PKT_SYN);
	build(&s, &b.shed_drop);
	pkt_tcp(&s, 0, "10.1.0.4", 40000, "192.0.2.1", PORT_RESET, PKT_SYN);
	build(&s, &b.shed_reset);
	pkt_tcp(&s, 0, "10.128.0.0", 40000, "192.0.2.1", PORT_OPEN, PKT_SYN);
	build(&s, &b.admit);
	/* The server's SYN-ACK with ISN 7000 and the client's ACK of it, same tuples. */
	pkt_tcp(&s, 0, "10.128.0.0", 40000, "192.0.2.1", PORT_OPEN, PKT_ACK);
	s.seq++;
	s.ack = 7001;
	build(&s, &b.ack);
	pkt_reverse(&s);
	s.flags = PKT_SYN | PKT_ACK;
	s.ack = s.seq;
	s.seq = 7000;
	build(&s, &b.synack);
	if (b.shed_reset.len != 54 || b.admit.len != 54 || b.ack.len != 54 || b.synack.len != 54)
		die("the prelude expects IPv4 SYNs without options");

	for (run = 0; run < runs; run++)
		bench_run(&b, run, rep, one);
	for (i = 0; i < NR_R; i++) {
		rep_med[i] = median(rep[i], runs);
		one_med[i] = median(one[i], runs);
	}

	uname(&uts);
	printf("# loadshed XDP dataplane, BPF_PROG_TEST_RUN\n\n");
	printf("kernel %s, %ld CPUs online, pinned to one. Repeat: %u repetitions, median of %d "
	       "runs. One-shot: median of %d single runs, median of %d runs.\n\n",
	       uts.release, sysconf(_SC_NPROCESSORS_ONLN), b.repeat, runs, b.samples, runs);

	printf("## Repeat method\n\n");
	print_header();
	for (i = 0; i < NR_R; i++) {
		struct result r = {names[i], rep_med[i], target[i], target_ref[i], target_ns[i]};

		print_row(&r, rep_med,
			  i == R_CONN					? "sum"
			  : i >= R_RESET || i == R_INSERT || i == R_LRU ? "prelude"
									: "repeat");
	}
	printf("\n\"prelude\": (prelude -> program) - (prelude -> trivial pass) + trivial pass, "
	       "the trivial XDP_PASS for XDP, the trivial tc program (%.1f ns) for the SYN-ACK at "
	       "egress; see the top of tests/bpf/bench_bpf.c. The handshake rows ran %u "
	       "repetitions, each a new tuple (last run: %ld handshakes noted, %ld connections "
	       "admitted; the rest were pushed out of a full set), as did the insert references "
	       "(the parse and one "
	       "insert of the tuple into a preallocated hash like the flow table, the least any "
	       "per-connection state costs, or into an LRU hash with per-CPU lists, the obvious "
	       "table for handshakes). \"admitted connection\" is every packet the dataplane "
	       "handles for a connection up to its admission: SYN, SYN-ACK and ACK. "
	       "The \"full\" and \"churned\" rows ran as many after %u others had filled the "
	       "table, as a SYN flood's SYN-ACKs keep it: an LRU then evicts at every insert, "
	       "the handshake table overwrites the oldest way of a set.\n\n",
	       median(b.tc_pass, runs), b.conn_repeat, b.noted[runs - 1], b.admitted[runs - 1],
	       CHURN);

	printf("## One-shot cross-check (repeat 1; the timer's fixed cost is in every row)\n\n");
	print_header();
	for (i = 0; i < R_SYNACK; i++) {
		struct result r = {names[i], one_med[i], target[i], target_ref[i], 0};

		if (i == R_INSERT || i == R_LRU)
			continue;
		print_row(&r, one_med, "one-shot");
	}

	free(b.syns);
	bench_ref_bpf__destroy(b.ref);
	return 0;
}
