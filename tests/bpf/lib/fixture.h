/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the dataplane test files share, in the manner of the kernel's
 * tools/testing/selftests/bpf/prog_tests: one file per feature, each a
 * cmocka group whose every test loads a fresh, unpinned copy of the
 * programs and maps (setup/teardown here), writes the policy it needs and
 * checks verdicts, emitted frames, in-flight counts, the flow table and the
 * counters. Crafted frames come from pkt.h; the programs run through
 * harness.h. dp_tests_run() reports every test as skipped, not failed,
 * where BPF programs cannot be loaded (not root).
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

/* One test's dataplane, and the variant or table row it runs with. */
struct t {
	struct dp dp;
	const struct variant *v;
	const void *param;
};

/* *state in: a struct variant (NULL: V4). Out: a struct t. */
int setup(void **state);
/* The same with a flow table of four entries, to fill it. */
int setup_small_table(void **state);
/* *state in: a table row, kept in t->param; the variant is V4. */
int setup_param(void **state);
int teardown(void **state);

/* ---- traffic ------------------------------------------------------------ */

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
void syn_dscp(struct t *t, int n, __u8 dscp, struct pkt_spec *s);
/* A later segment of syn's connection, client to server (seen by XDP). */
void client_seg(const struct pkt_spec *syn, __u8 flags, int payload_len, struct pkt_spec *out);
/* A segment of syn's connection, server to client (seen by TC). */
void server_seg(const struct pkt_spec *syn, __u8 flags, int payload_len, struct pkt_spec *out);

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
/* The SYN passes XDP. */
void admit(struct t *t, const struct pkt_spec *syn);

/* ---- policy ------------------------------------------------------------- */

void set_limits(struct t *t, __u32 limit, __u32 g_hi, __u32 g_lo);
/* State of an agent that keeps no heartbeat: limits enforced as written. */
void no_agent(struct t *t);
/* One service on PORT (any address): every SYN in the default class. */
void one_class_service(struct t *t, __u32 limit, __u8 action, __u32 flags);
/* hi (DSCP EF), lo (AF11), bypass (CS6), else the default class; all drop. */
void dscp_classes_service(struct t *t, __u32 limit, __u32 g_hi, __u32 g_lo);

/* ---- reading the maps --------------------------------------------------- */

struct ls_inflight inflight(struct t *t);
struct ls_class_stats stats(struct t *t, __u32 cls);
struct ls_iface_stats iface(struct t *t);
long flows(struct t *t);
/* The flow of syn is in the table (its entry in out, if not NULL). */
int tracked(struct t *t, const struct pkt_spec *syn, struct ls_flow *out);
void assert_inflight(struct t *t, int total, int cls, int in_cls);
/* Every class counter of the service is zero. */
void assert_no_class_counted(struct t *t);

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
