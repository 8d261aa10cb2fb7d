/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the dataplane test files share, in the manner of the kernel's
 * tools/testing/selftests/bpf/prog_tests: one file per feature, each a
 * cmocka group whose every test loads a fresh, unpinned copy of the
 * programs and maps (setup/teardown here), writes the policy it needs and
 * checks verdicts, emitted frames, in-flight counts, the flow and handshake
 * tables and the counters. Crafted frames come from pkt.h; the programs run
 * through harness.h. Connections are played segment by segment (struct
 * conn): the client's SYN at XDP, the server's SYN-ACK at TC with a chosen
 * ISN, the ACK that completes the handshake at XDP, then data either way.
 * dp_tests_run() reports every test as skipped, not failed, where BPF
 * programs cannot be loaded (not root).
 */
#ifndef LS_TEST_FIXTURE_H
#define LS_TEST_FIXTURE_H

/* cmocka.h wants these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
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

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Address family and tagging a test runs with. */
struct variant {
	int ipv6;
	int nr_vlans;
};

extern const struct variant V4, V4_VLAN, V4_QINQ, V6, V6_VLAN, V6_QINQ;

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

/* One test's dataplane, the variant or table row it runs with, its policy. */
struct t {
	struct dp dp;
	const struct variant *v;
	const void *param;
	struct ls_service_policy pol; /* SVC's, as last written by the helpers below */
};

/* *state in: a struct variant (NULL: V4). Out: a struct t. */
int setup(void **state);
/* The same with a flow table of four entries, to fill it. */
int setup_small_table(void **state);
/* *state in: a table row, kept in t->param; the variant is V4. */
int setup_param(void **state);
int teardown(void **state);

/* ---- frames --------------------------------------------------------------- */

extern const __u8 some_bytes[1400];

const char *server_addr(const struct variant *v);
/* Client number n in 10.1/16 or 2001:db8:1::/64. */
void client_addr(const struct variant *v, int n, char *buf, size_t len);
/* Adds the variant's VLAN tags. */
void tag(const struct variant *v, struct pkt_spec *s);
/* A SYN from client to the service address on dport. */
void syn_from(const struct variant *v, struct pkt_spec *s, const char *client, __u16 cport,
	      __u16 dport);
/* The SYN of client n: its own address and port, ISN 1000 + n. */
void syn_n(const struct t *t, int n, struct pkt_spec *s);
/* The SYN of client n marked with a DSCP. */
void syn_dscp(const struct t *t, int n, __u8 dscp, struct pkt_spec *s);

struct frame {
	__u8 buf[PKT_MAX_LEN];
	size_t len;
	struct pkt_layout lay;
};

void build(const struct pkt_spec *s, struct frame *f);
/* Runs f through XDP (xdp != 0) or TC; returns the verdict. r may be NULL. */
__u32 run_frame(struct t *t, int xdp, const struct frame *f, struct dp_run *r);
/* Runs s through XDP; returns the verdict. r may be NULL. */
__u32 xdp(struct t *t, const struct pkt_spec *s, struct dp_run *r);
/* Runs s through TC; returns the verdict. */
__u32 tc(struct t *t, const struct pkt_spec *s);
/* Runs f through XDP, expects XDP_PASS with the frame unchanged. */
void xdp_passes_untouched(struct t *t, const struct frame *f);

/* ---- connections ---------------------------------------------------------- */

/*
 * One TCP connection as a test plays it: the client's SYN (addresses,
 * ports, tags, DSCP, the client's ISN), the server's ISN, and where each
 * side's next sequence number stands. Segments are built from it.
 */
struct conn {
	struct pkt_spec syn;
	__u32 isn;     /* the server's ISN, sent in its SYN-ACK */
	__u32 cli_seq; /* the client's next sequence number */
	__u32 srv_seq; /* the server's next sequence number */
};

/* Server ISN of connection n: high bit set, so that signed arithmetic shows. */
#define SRV_ISN(n) (0x9e370000u + (__u32)(n)*100003u)

/* Connection n of the test's variant: client n's SYN, server ISN SRV_ISN(n). */
void conn_n(const struct t *t, int n, struct conn *c);
/* The same with a DSCP on every client segment. */
void conn_dscp(const struct t *t, int n, __u8 dscp, struct conn *c);
/* The connection of an existing SYN. */
void conn_of_syn(const struct pkt_spec *syn, __u32 isn, struct conn *c);
/* The flow key the dataplane files c under. */
void conn_key(const struct conn *c, struct ls_flow_key *key);
/*
 * b: a's client on another port (and last address byte), whose tuple
 * shares a's handshake set; each call finds another tuple.
 */
void conn_in_same_set(const struct t *t, const struct conn *a, __u32 isn, struct conn *b);
/* Moves the process into a new network namespace and brings its loopback up: 0 or -errno. */
int private_netns(void);

/* Client to server (seen by XDP) at cli_seq, acknowledging srv_seq. */
void cli_seg(const struct conn *c, __u8 flags, int payload_len, struct pkt_spec *out);
/* Server to client (seen by TC) at srv_seq, acknowledging cli_seq. */
void srv_seg(const struct conn *c, __u8 flags, int payload_len, struct pkt_spec *out);
/* The server's SYN-ACK: seq = its ISN, ack = the client's ISN + 1. */
void synack_of(const struct conn *c, struct pkt_spec *out);

/* The client's SYN through XDP: its verdict. */
__u32 send_syn(struct t *t, const struct conn *c, struct dp_run *r);
/* The server's SYN-ACK through TC (must be TC_ACT_OK); srv_seq is then ISN + 1. */
void send_synack(struct t *t, struct conn *c);
/*
 * The ACK that completes the handshake (ack = ISN + 1) through XDP, with
 * payload_len bytes of request; cli_seq moves past them (the client sent
 * them, whatever became of them). Returns the verdict.
 */
__u32 send_ack(struct t *t, struct conn *c, int payload_len, struct dp_run *r);
/* SYN (must pass), SYN-ACK, ACK: the ACK's verdict. */
__u32 handshake(struct t *t, struct conn *c, struct dp_run *r);
/* A handshake that must be admitted: the ACK passes and the flow is tracked. */
void connect_ok(struct t *t, struct conn *c);

/*
 * A client segment at cli_seq through XDP; cli_seq moves past its payload
 * (and a FIN), whatever the verdict. Returns the verdict.
 */
__u32 cli_send(struct t *t, struct conn *c, __u8 flags, int payload_len, struct dp_run *r);
/* A request: PSH|ACK with payload_len bytes, as cli_send. */
__u32 request(struct t *t, struct conn *c, int payload_len, struct dp_run *r);
/* Client data at seq (a retransmission, or a forgery): cli_seq does not move. */
__u32 cli_data_at(struct t *t, const struct conn *c, __u32 seq, int payload_len, struct dp_run *r);
/* A client RST (no ACK) at seq through XDP: its verdict. */
__u32 cli_rst_at(struct t *t, const struct conn *c, __u32 seq);

/* A server segment at srv_seq through TC (must be TC_ACT_OK); srv_seq moves on. */
void srv_send(struct t *t, struct conn *c, __u8 flags, int payload_len);
/* A response: PSH|ACK with payload_len bytes, acknowledging all the client sent. */
void respond(struct t *t, struct conn *c, int payload_len);
/* A pure ACK of all the client sent. */
void srv_ack(struct t *t, struct conn *c);

/* ---- policy --------------------------------------------------------------- */

void set_limits(struct t *t, __u32 limit, __u32 g_hi, __u32 g_lo);
/* State of an agent that keeps no heartbeat: limits enforced as written. */
void no_agent(struct t *t);
/* A heartbeat written an hour ago, with a fail-open after 1 s. */
void stale_heartbeat(struct t *t);
/* A heartbeat an hour ahead of the dataplane's clock, with a fail-open after 1 s. */
void future_heartbeat(struct t *t);
/* Writes t->pol as SVC's policy of generation 0 (after a test changed it). */
void write_policy(struct t *t);
/* One service on PORT (any address), admit = connections: every SYN in the default class. */
void one_class_service(struct t *t, __u32 limit, __u8 action, __u32 flags);
/* The same with admit = requests and the default class's request action. */
void request_service(struct t *t, __u32 limit, __u8 req_action, __u32 flags);
/*
 * hi (DSCP EF), lo (AF11), bypass (CS6), else the default class; all drop
 * (connections) and defer (requests); admit = connections.
 */
void dscp_classes_service(struct t *t, __u32 limit, __u32 g_hi, __u32 g_lo);

/* ---- the tick ------------------------------------------------------------- */

/* Runs the tick with a sweep (no heartbeat) and the timeouts given; its outputs. */
struct ls_tick sweep(struct t *t, __u64 idle_ns, __u64 stall_ns, __u64 suspect_ns);
/* Sleeps ns (CLOCK_MONOTONIC, the dataplane's clock). */
void sleep_ns(__u64 ns);

/* ---- reading the maps ----------------------------------------------------- */

struct ls_inflight inflight(struct t *t);
struct ls_class_stats stats(struct t *t, __u32 cls);
struct ls_iface_stats iface(struct t *t);
long flows(struct t *t);
long handshakes(struct t *t);
/* c's flow is in the table (its entry in out, if not NULL). */
int tracked(struct t *t, const struct conn *c, struct ls_flow *out);
/* The flow of c, which must be tracked. */
struct ls_flow flow_of(struct t *t, const struct conn *c);
/* c's handshake is in the table (its entry in out, if not NULL). */
int hs_entry(struct t *t, const struct conn *c, struct ls_handshake *out);
/* total, cls[cls] and conns are exactly these. */
void assert_inflight(struct t *t, int total, int cls, int in_cls);
void assert_conns(struct t *t, int conns);
/* Nothing in flight, in no class, and no connection. */
void assert_nothing_in_flight(struct t *t);
/* Every class counter of the service is zero. */
void assert_no_class_counted(struct t *t);
/* The frame in r is the RST|ACK answering seg (a SYN when it carries one). */
void assert_rst_answers(const struct pkt_spec *seg, const struct dp_run *r);

/* ---- registration --------------------------------------------------------- */

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

/*
 * Runs the tests as one cmocka group and returns main's exit status. Where
 * no BPF program can be loaded (not root, no bpf()), every test is
 * reported as "ok N - NAME # SKIP why" instead, and the status is 0: the
 * runner counts skips apart. Any other load failure is left to the tests
 * to report as failures.
 */
int dp_tests_run(const char *group, const struct CMUnitTest *tests, size_t n);

#define DP_TESTS_MAIN(tests) dp_tests_run(__FILE__, tests, ARRAY_LEN(tests))

#endif /* LS_TEST_FIXTURE_H */
