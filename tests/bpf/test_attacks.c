// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Attacks on the dataplane: what a hostile client (its own TCP stack, raw
 * sockets) or an off-path forger (spoofed sources, guessed ports, no view
 * of the server's packets) can send to make loadshed admit past its limit,
 * free or take slots, drift its counts, or shed and reset legitimate
 * clients.
 *
 * Every test describes its attack and checks the defense that stops it;
 * every test is expected to pass, and a failure is a regression. The
 * first group are a review's findings: attacks that once got through,
 * each comment saying what the attacker sends, what it would gain, and
 * which check of the dataplane now stands in its way (bpf/xdp_ingress.bpf.c,
 * tc_egress.bpf.c, tick.bpf.c; doc/design.md). The second group are
 * attacks the dataplane withstood from the start.
 *
 * The kernel's part is not run here (BPF_PROG_TEST_RUN shows the verdicts
 * and the maps, not what the stack does with a passed segment), so where
 * a test depends on what Linux does with a segment it says so, citing
 * net/ipv4/tcp_input.c and tcp_minisocks.c. The few tests that need the
 * kernel to hold a real connection (adoption) run in a network namespace
 * of their own, made on first use; the racing test pins threads to CPUs.
 * Needs root.
 */
#define _GNU_SOURCE /* unshare, CPU_SET, pthread_setaffinity_np */
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include "lib/fixture.h"

/* ---- helpers ------------------------------------------------------------------- */

/* Spoils the TCP checksum of a built frame: the kernel drops it (tcp_v4_rcv, csum_error). */
static void spoil_tcp_checksum(struct frame *f)
{
	f->buf[f->lay.l4_off + 16] ^= 0x5a;
}

/* Runs spec s through XDP with its TCP checksum spoiled: its verdict. */
static __u32 xdp_bad_checksum(struct t *t, const struct pkt_spec *s)
{
	struct frame f;

	build(s, &f);
	spoil_tcp_checksum(&f);
	return run_frame(t, 1, &f, NULL);
}

/* Abort records waiting in the ring (read, and so consumed). */
static int aborts(struct t *t)
{
	struct ls_flow_key keys[8];
	int n = dp_aborts(&t->dp, keys, 8);

	assert_true(n >= 0);
	return n;
}

static struct ls_latency_hist latency_of(struct t *t, __u32 cls)
{
	struct ls_latency_hist h;

	assert_int_equal(dp_latency(&t->dp, SVC, cls, &h), 0);
	return h;
}

/*
 * Pushes c's handshake out of its set: four newer SYN-ACKs of other tuples
 * land there (handshakes whose SYNs passed: of another service, of a class
 * under its guarantee, or while there was room; TC notes every SYN-ACK).
 */
static void push_out_handshake(struct t *t, const struct conn *c)
{
	struct conn o;
	int i;

	for (i = 0; i < LS_HS_WAYS; i++) {
		usleep(20 * 1000); /* the coarse clock in ms must tell them apart */
		conn_in_same_set(t, c, c->isn + 0x01000193u * (__u32)(i + 1), &o);
		send_synack(t, &o);
	}
	assert_false(hs_entry(t, c, NULL));
}

/* A small deterministic generator for sprays (xorshift32). */
static __u32 next_rand(__u32 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* ---- real sockets, in a network namespace of our own (made on first use) ------ */

static int netns_state = 1; /* 1: not tried yet; 0: ours; < 0: -errno */

static struct {
	int lfd, cfd, sfd;
	__u16 cport;
} sk = {-1, -1, -1, 0};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A listener on 127.0.0.1:PORT and an established connection to it. */
static void open_connection(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)}, local;
	socklen_t llen = sizeof(local);
	int one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sk.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sk.lfd >= 0);
	assert_int_equal(setsockopt(sk.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(sk.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sk.lfd, 8), 0);
	sk.cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sk.cfd >= 0);
	assert_int_equal(connect(sk.cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	sk.sfd = accept4(sk.lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(sk.sfd >= 0);
	assert_int_equal(getsockname(sk.cfd, (struct sockaddr *)&local, &llen), 0);
	sk.cport = ntohs(local.sin_port);
}

/* The tuple of the real connection as a conn (its sequence numbers are the test's). */
static void real_conn(struct t *t, struct conn *c)
{
	struct pkt_spec syn;

	pkt_tcp(&syn, 0, "127.0.0.1", sk.cport, "127.0.0.1", PORT, PKT_SYN);
	syn.seq = 0x10000000;
	conn_of_syn(&syn, 0x70000000, c);
	(void)t;
}

static int setup_netns(void **state)
{
	if (netns_state == 1)
		netns_state = geteuid() ? -EPERM : private_netns();
	if (netns_state) {
		printf("# cannot have a network namespace of our own: %s\n",
		       strerror(-netns_state));
		return -1;
	}
	return setup(state);
}

static int teardown_netns(void **state)
{
	close_fd(&sk.cfd);
	close_fd(&sk.sfd);
	close_fd(&sk.lfd);
	return teardown(state);
}

/* =================================================================================
 * Findings: attacks that once got through, each with the defense it checks.
 * ================================================================================= */

/* ---- request starts out of sequence (xdp_ingress.bpf.c: ls_on_payload) --------- */

/*
 * A hostile client tries to escape request admission for good with one
 * forged segment. Under admit = requests, while the limit is full, it
 * sends one byte 1 GiB ahead of its next byte (the kernel drops the byte
 * itself: it is out of the receive window). Were that byte taken for a
 * request start, shed, and the flow deferred at its far sequence number,
 * every real segment of the client would lie before the deferral and pass
 * at once, with no decision, no slot, no latency sample, and max_defer
 * never looked at: its requests would pass while another holds the one
 * slot, turn after turn.
 * A request starts only with the segment that carries cli_acked, the next
 * byte the server reads; bytes ahead of it pass undecided and leave the
 * flow idle (design §4.4), so each real request of b is still decided.
 */
static void forged_deferral_far_ahead_does_not_let_later_requests_pass(void **state)
{
	struct t *t = *state;
	struct conn a, b;
	int i, passed = 0;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS); /* a holds the one slot */

	/* Ahead of the next byte the server reads: passed untouched (the kernel throws it away). */
	assert_int_equal(cli_data_at(t, &b, b.cli_seq + 0x40000000u, 1, NULL), XDP_PASS);
	assert_int_equal(flow_of(t, &b).state, LS_FLOW_IDLE);
	for (i = 0; i < 5; i++) {
		if (request(t, &b, 100, NULL) == XDP_PASS)
			passed++;
		respond(t, &b, 100);
	}
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	if (passed)
		fail_because("%d of 5 requests of b passed undecided while a held the one slot "
			     "(after a forged byte 1 GiB ahead)",
			     passed);
}

/*
 * An off-path forger who knows the 4-tuple of a pooled, idle connection
 * tries to take a request slot with one segment, no sequence number
 * needed: payload far past cli_acked (here 1 GiB ahead). The kernel drops
 * the bytes (out of window) and answers with a duplicate ACK, never with
 * data, so a slot taken there would be held until the stall timeout
 * (10 s by default), and the next legitimate request deferred.
 * Bytes ahead of cli_acked start no request: they pass undecided, and the
 * server's duplicate ACK does not move cli_acked. Nothing is in flight,
 * and a's request is admitted.
 */
static void forged_payload_out_of_window_takes_no_request_slot(void **state)
{
	struct t *t = *state;
	struct conn a, b;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);

	/* The forger's segment on b: 1 GiB ahead, ACKing nothing the server sent. */
	cli_data_at(t, &b, b.cli_seq + 0x40000000u, 10, NULL);
	/* The server's answer to an out-of-window segment: a duplicate ACK. */
	srv_ack(t, &b);
	if (inflight(t).total)
		fail_because("a forged out-of-window segment holds a request slot (in flight %d); "
			     "a's request is now %s",
			     inflight(t).total,
			     request(t, &a, 100, NULL) == XDP_DROP ? "deferred" : "passed");
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
}

/*
 * Under request_action = abort, the same single forged segment, sent
 * while the service is full, would abort a live connection if it were
 * decided: a RST to the client (XDP_TX) and the tuple in ls_aborts, for
 * the agent to destroy the server's socket with SOCK_DESTROY. An off-path
 * forger who knows the 4-tuple (a pooled database connection, say) would
 * kill it whenever the service is loaded, without guessing any sequence
 * number.
 * Before the hardening, seen end to end on the veth testbed (admit =
 * requests, limit 1, abort, one slow request holding the slot): a raw
 * segment 1 GiB ahead with an arbitrary ACK on an idle keep-alive
 * connection's tuple drew loadshed's RST (ignored by the client: its
 * sequence number is the forger's ACK), then the agent's SOCK_DESTROY
 * made the server send its own RST, in sequence: the client's next
 * request got ECONNRESET.
 * Only the segment that carries cli_acked starts a request, so only bytes
 * the server is about to read are decided, and so aborted: the forged
 * bytes pass undecided, and no abort record is written.
 */
static void forged_payload_out_of_window_aborts_no_live_connection(void **state)
{
	struct t *t = *state;
	struct conn a, b;
	__u32 verdict;
	int n;

	request_service(t, 1, LS_REQ_ABORT, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);

	verdict = cli_data_at(t, &b, b.cli_seq + 0x40000000u, 10, NULL);
	n = aborts(t);
	if (n || flow_of(t, &b).state == LS_FLOW_ABORTED)
		fail_because("one forged out-of-window segment aborted b (verdict %u, %d abort "
			     "record(s) for the agent to destroy the server's socket)",
			     verdict, n);
}

/*
 * An honest client whose request arrives reordered: its second segment
 * comes first. Taken for the request's start, it would be shed and the
 * flow deferred at its sequence number; the first segment, lying before
 * that, would then pass undecided, and the server read the first half of
 * a request loadshed deferred (a worker waiting on the rest) while the
 * limit is full.
 * The second segment, ahead of cli_acked, starts nothing: it passes
 * undecided and waits in the kernel's out-of-order queue. The first one
 * carries cli_acked: the request is decided there, and deferred.
 */
static void reordered_request_is_decided_at_its_first_segment(void **state)
{
	struct t *t = *state;
	struct conn a, b;
	__u32 seq;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);

	seq = b.cli_seq;
	cli_data_at(t, &b, seq + 100, 100, NULL); /* the second segment, first */
	if (cli_data_at(t, &b, seq, 100, NULL) == XDP_PASS)
		fail_because("the first segment of a reordered request passed while a held the "
			     "one slot (in flight %d at L = 1)",
			     inflight(t).total);
}

/* ---- abandonment of a deferred request (ls_on_flow, ls_on_client_rst) ------------- */

/*
 * An off-path forger tries to abort a deferred request with one FIN of
 * any sequence number. A client FIN behind a deferred request stands for
 * the client giving up, and aborts the flow: RST to the client and the
 * tuple in ls_aborts, so the agent destroys the server's socket. If any
 * FIN counted (the kernel would take it only at rcv_nxt, or queue it in
 * window), every deferral, the normal state of a loaded service, would be
 * a kill for whoever knows the tuple.
 * A FIN abandons a deferred request only exactly at defer_end, where the
 * deferred bytes end, and only with a right checksum; a FIN anywhere else
 * past cli_acked is dropped (ls_on_flow, design §4.4). The flow stays
 * deferred, and the request's retransmission is served once the slot
 * frees.
 */
static void forged_fin_does_not_abort_a_deferred_request(void **state)
{
	struct t *t = *state;
	struct pkt_spec fin;
	struct conn a, b;
	__u32 dseq;
	int n;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	dseq = b.cli_seq;
	assert_int_equal(request(t, &b, 100, NULL), XDP_DROP);

	cli_seg(&b, PKT_FIN | PKT_ACK, 0, &fin);
	fin.seq = dseq + 0x40000000u;
	fin.ack = b.srv_seq + 0x40000000u;
	xdp(t, &fin, NULL);
	n = aborts(t);
	if (n || flow_of(t, &b).state != LS_FLOW_DEFERRED)
		fail_because("a forged FIN 1 GiB away aborted the deferred request "
			     "(%d abort record(s), state %u)",
			     n, flow_of(t, &b).state);
	/* The deferred request, retransmitted when the slot frees, is served. */
	respond(t, &a, 100);
	assert_int_equal(cli_data_at(t, &b, dseq, 100, NULL), XDP_PASS);
}

/* ---- the end of a request at TC (tc_egress.bpf.c: ls_tc_egress) ------------------- */

/*
 * A hostile client leaves the tail of each response unacknowledged and
 * sends its next request at once. If any server payload ended the
 * outstanding request, the server's retransmission of that tail (on the
 * client's duplicate ACKs with SACK, on its tail loss probe, or its RTO)
 * would release the new request's slot while the server works on it, with
 * a latency sample of about nothing, and let another client's request in
 * past L = 1. Honest clients would hit it too when an ACK of theirs is
 * lost.
 * Only new server bytes, past srv_next, end a request at TC
 * (tc_egress.bpf.c); a retransmission of an earlier answer ends nothing,
 * and the request keeps its slot.
 */
static void server_retransmission_does_not_end_the_next_request(void **state)
{
	struct t *t = *state;
	struct pkt_spec rtx;
	struct conn a, b;
	__u32 resp;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	resp = a.srv_seq;
	respond(t, &a, 1000);
	assert_inflight(t, 0, CLS_DEFAULT, 0);

	/* The next request, acknowledging only the first half of the response. */
	{
		struct pkt_spec req;

		cli_seg(&a, PKT_PSH | PKT_ACK, 100, &req);
		req.ack = resp + 500;
		a.cli_seq += 100;
		assert_int_equal(xdp(t, &req, NULL), XDP_PASS);
	}
	assert_inflight(t, 1, CLS_DEFAULT, 1);

	/* The server retransmits the unacknowledged half of its previous response. */
	srv_seg(&a, PKT_PSH | PKT_ACK, 500, &rtx);
	rtx.seq = resp + 500;
	assert_int_equal(tc(t, &rtx), TC_ACT_OK);
	if (!inflight(t).total)
		fail_because("a retransmission of the last response released the outstanding "
			     "request (in flight 0); b's request is now %s at L = 1",
			     request(t, &b, 100, NULL) == XDP_PASS ? "admitted" : "deferred");
}

/* ---- a request after its stall (ls_on_payload, LS_FLOW_REQUEST) ----------------- */

/*
 * A hostile client sends the first byte of a request, waits out
 * stall_timeout (the sweep gives the slot back), then sends the rest. Had
 * the rest passed as more of the outstanding request, the server would do
 * the whole request with no slot held: with N connections the client
 * would keep N requests in the server beyond L, at the price of one
 * stall_timeout each.
 * A request whose slot a stall gave back is decided again at its next new
 * bytes, as a start (ls_on_payload, design §4.4): with b holding the one
 * slot, the rest of a's request is deferred.
 */
static void rest_of_a_stalled_request_is_decided_again(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn a, b;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	assert_int_equal(request(t, &a, 1, NULL), XDP_PASS);
	sleep_ns(5 * NS_PER_MS);
	k = sweep(t, 3600 * NS_PER_S, 1 * NS_PER_MS, 3 * NS_PER_S);
	assert_int_equal(k.stalled, 1);
	assert_int_equal(request(t, &b, 100, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);

	if (request(t, &a, 1000, NULL) == XDP_PASS && inflight(t).total < 2)
		fail_because("the rest of a's stalled request passed undecided and uncounted "
			     "while b holds the one slot");
}

/* ---- segments the kernel discards (ls_on_handshake, ls_advance) ----------------- */

/*
 * A hostile client tries to take a slot with a handshake ACK the kernel
 * throws away: an ACK of ISN + 1 with a spoiled TCP checksum. Admitted
 * and tracked, it would hold a slot for a connection the server never has
 * (its request sock dies silently after the SYN-ACK retries, and no FIN or
 * RST ever ends the flow); more spoiled segments would keep the flow fresh
 * for the sweep forever (the client filters its own kernel's RSTs to the
 * SYN-ACK retries). One host would hold all L slots for one packet per
 * slot per idle timeout, and every legitimate SYN would be shed.
 * Before the hardening, seen end to end: a raw SYN, its SYN-ACK, an ACK
 * with a spoiled sum (and the client's own RSTs filtered), one more every
 * 2 s: after 73 s the server held no socket at all (SYN-RECV expired), in
 * flight was still 1 at L = 1, and ls-conn's connect from another address
 * timed out.
 * The ACK that completes a handshake has its TCP checksum verified
 * (design §4.2): a wrong one is counted in bad_checksums and passed for
 * the kernel to drop, and completes nothing.
 */
static void handshake_ack_with_a_bad_checksum_holds_no_slot(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct conn a, b;
	int i;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	assert_int_equal(send_syn(t, &a, NULL), XDP_PASS);
	send_synack(t, &a);
	cli_seg(&a, PKT_ACK, 0, &ack);
	xdp_bad_checksum(t, &ack);
	for (i = 0; i < 3; i++) {
		sleep_ns(30 * NS_PER_MS);
		xdp_bad_checksum(t, &ack); /* keeps it fresh */
		sweep(t, 50 * NS_PER_MS, 0, 3 * NS_PER_S);
	}
	conn_n(t, 1, &b);
	if (tracked(t, &a, NULL))
		fail_because(
			"a handshake ACK with a bad checksum holds the one slot (in flight %d) "
			"past idle sweeps; a legitimate SYN is %s",
			inflight(t).total, send_syn(t, &b, NULL) == XDP_DROP ? "shed" : "passed");
	assert_nothing_in_flight(t);
}

/*
 * The phantoms of the test above, one per flow entry, would fill the flow
 * table (max_flows, 131072 by default: 437 spoiled ACKs a second keep
 * them all fresh). Under admit = requests the SYNs that make them pass
 * (only max_connections sheds a SYN there). A full table that admitted
 * every new connection untracked would leave no request of anyone decided
 * any more.
 * No phantom is tracked (the checksum is verified, as above), and a new
 * connection a full table cannot track is shed, not admitted untracked
 * (design §4.9). With a table of four entries and L = 0, a real
 * connection is tracked after the spoiled ACKs, and its request is
 * deferred.
 */
static void phantom_flows_neither_fill_the_table_nor_turn_admission_off(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct conn c, x;
	int i;

	request_service(t, 0, LS_REQ_DEFER, 0);
	for (i = 0; i < 4; i++) {
		conn_n(t, i, &c);
		assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
		send_synack(t, &c);
		cli_seg(&c, PKT_ACK, 0, &ack);
		xdp_bad_checksum(t, &ack);
	}
	conn_n(t, 10, &x);
	handshake(t, &x, NULL);
	if (request(t, &x, 100, NULL) == XDP_PASS)
		fail_because("after spoiled handshake ACKs into a table of four (%ld flows), a "
			     "request passed undecided at L = 0",
			     flows(t));
}

/*
 * The same phantom without checksum games: an ACK of ISN + 1 whose
 * sequence number is not the client's ISN + 1 (here 1 GiB off). The
 * kernel drops it (tcp_check_req: out of window, "send ACK and drop"; with
 * SYN cookies the cookie check fails), so admitting it would hold a slot
 * for a connection the server never has.
 * TC notes, with the server's ISN, the SYN-ACK's acknowledgment number,
 * the client's next sequence number, and the ACK that completes the
 * handshake must carry exactly it (design §4.2): this one completes
 * nothing.
 */
static void handshake_ack_out_of_the_server_window_holds_no_slot(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct conn a;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	assert_int_equal(send_syn(t, &a, NULL), XDP_PASS);
	send_synack(t, &a);
	cli_seg(&a, PKT_ACK, 0, &ack);
	ack.seq = a.cli_seq + 0x40000000u;
	xdp(t, &ack, NULL);
	if (tracked(t, &a, NULL))
		fail_because("a handshake ACK 1 GiB out of the server's window was admitted "
			     "(in flight %d); the kernel drops it",
			     inflight(t).total);
}

/*
 * IPv6 lets the phantom be a well-formed packet: a Hop-by-Hop header with
 * an option of unknown type 0x41 ("skip" bits 01: discard the packet
 * silently, RFC 8200 4.2). No checksum covers it, and the kernel
 * (ip6_parse_tlv) drops the packet, while a parser that steps over the
 * header would admit it. The same holds for a Routing header with
 * segments left (source routing is off by default) and, in IPv4, for
 * source-route options.
 * A packet to a service port with an IP option the kernel may throw it
 * away for (such an IPv6 option, a Routing header with segments left, an
 * IPv4 source route) is dropped as undecidable (design §3.1): this ACK
 * completes nothing.
 */
static void ipv6_handshake_ack_the_kernel_discards_holds_no_slot(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct frame f;
	struct conn a;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	assert_int_equal(send_syn(t, &a, NULL), XDP_PASS);
	send_synack(t, &a);
	cli_seg(&a, PKT_ACK, 0, &ack);
	pkt_add_ext(&ack, IPPROTO_HOPOPTS, 0);
	build(&ack, &f);
	f.buf[f.lay.l3_off + 40 + 2] = 0x41; /* option type: unknown, discard */
	f.buf[f.lay.l3_off + 40 + 3] = 4;    /* its four bytes of data */
	run_frame(t, 1, &f, NULL);
	if (tracked(t, &a, NULL))
		fail_because("an IPv6 handshake ACK whose Hop-by-Hop option makes the kernel "
			     "discard it was admitted (in flight %d)",
			     inflight(t).total);
}

/*
 * A hostile client tries to free its slot while the server keeps its
 * connection and its work. It sends one byte at its next sequence number
 * with a spoiled checksum: the byte passes XDP, so cli_next moves past it,
 * and the kernel drops it (rcv_nxt stays). A RST at the new cli_next,
 * were it trusted, would end the flow; for the kernel it is one byte past
 * rcv_nxt, in window: a challenge ACK, and the connection lives on,
 * untracked. Under admit = connections the slot would go to another
 * client while this one's request still runs, and its next request would
 * be adopted without a decision. The same works with a byte whose ACK
 * acknowledges data never sent (tcp_ack: dropped), or that PAWS rejects.
 * Before the hardening, seen end to end: the kernel's challenge ACK
 * acknowledged the old rcv_nxt, loadshed's in flight fell to 0 with the
 * connection ESTAB; a second client was admitted and the first one's next
 * request adopted: in flight 2 at L = 1.
 * A client RST ends a flow only at cli_acked, the next byte the server
 * reads by its own ACKs, when cli_acked == cli_next (every byte the client
 * sent acknowledged) and its checksum is right (ls_on_client_rst, design
 * §5.3). The dropped byte moved cli_next but no ACK of the server's: the
 * RST is untrusted, and the flow keeps its slot.
 */
static void data_the_kernel_drops_does_not_move_the_trusted_rst_sequence(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn a, b;
	__u32 rcv_nxt;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	rcv_nxt = a.cli_seq;

	cli_seg(&a, PKT_PSH | PKT_ACK, 1, &s);
	xdp_bad_checksum(t, &s);
	assert_int_equal(cli_rst_at(t, &a, rcv_nxt + 1), XDP_PASS);
	conn_n(t, 1, &b);
	if (!tracked(t, &a, NULL))
		fail_because("a RST one byte past the kernel's rcv_nxt ended the flow (the kernel "
			     "answers it with a challenge ACK and keeps the connection); a second "
			     "connection is %s at L = 1",
			     handshake(t, &b, NULL) == XDP_PASS && tracked(t, &b, NULL) ? "admitted"
											: "shed");
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

/*
 * The off-path form of the same. Forged data that overlaps the client's
 * next byte moves cli_next to the forger's end of it, whatever its
 * acknowledgment number (here 1 GiB past what the server sent: the kernel
 * drops it). A spray of forged segments, each starting where the last
 * ended, across the sequence space (2^32 bytes, about 4.3 GB in 3 million
 * 1400-byte segments) hits the client's next byte once and then carries
 * cli_next along to the spray's end, a number the forger knows. If a RST
 * there ended the flow, the 2^-32 chance of a forger who guessed the ports
 * would become a matter of bandwidth. The test plays the one segment of
 * the spray that overlaps.
 * The rule above stops it: the kernel acknowledges none of the forged
 * bytes, so cli_acked stays behind cli_next, and a RST ends the flow only
 * at cli_acked == cli_next. The blind RST at the spray's end is untrusted.
 */
static void forged_data_overlapping_the_next_byte_lets_no_blind_rst_end_the_flow(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn a;
	__u32 next;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	next = a.cli_seq;

	cli_seg(&a, PKT_PSH | PKT_ACK, 1400, &s);
	s.seq = next - 700;
	s.ack = a.srv_seq + 0x40000000u;
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_int_equal(cli_rst_at(t, &a, next + 700), XDP_PASS);
	if (!tracked(t, &a, NULL))
		fail_because("a blind RST at the end of forged data ended the flow");
}

/* ---- suspects (ls_on_client_rst, tick.bpf.c: ls_sweep_one) ------------------------- */

/*
 * An off-path forger who knows the 4-tuple tries to free the slot of an
 * idle connection with about 2048 RSTs. Any RST within 1 MiB of cli_next
 * makes the flow a suspect, and the kernel's challenge ACK clears the
 * suspicion. But the kernel answers only RSTs inside its receive window:
 * one before rcv_wup, or beyond rcv_nxt + window, is dropped silently
 * (tcp_validate_incoming: "if (!tcp_sequence(...)) { if (!th->rst)
 * ...dupack; goto discard; }"). RSTs spaced 2 MiB apart across the
 * sequence space land one within 1 MiB of cli_next, almost surely outside
 * a window of 64 KiB to a few MiB; here, one 4 KiB before it. If the
 * sweep ended a suspect after 3 s of silence, a keep-alive connection
 * silent that long (an idle pool, a long computation) would lose its slot,
 * and be adopted again without a decision at its next request.
 * Before the hardening, seen end to end (agent sweeping, suspect time
 * 3 s): no packet at all answered the RST 4 KiB below snd_nxt; 7 s later
 * the flow was gone with the connection ESTAB; a second client was
 * admitted, the first one's next request adopted: in flight 2 at L = 1.
 * The server's silence is taken for no proof: the sweep hands a silent
 * suspect to the agent (ring buffer ls_suspects), which asks the kernel
 * over sock_diag whether the socket lives, and has the tick program end
 * the flow only if it is gone (tick.bpf.c, design §5.3). The sweep alone
 * ends nothing.
 */
static void rst_below_the_window_does_not_get_an_idle_flow_swept(void **state)
{
	struct t *t = *state;
	struct conn a;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	respond(t, &a, 100);

	assert_int_equal(cli_rst_at(t, &a, a.cli_seq - 4096), XDP_PASS);
	sleep_ns(20 * NS_PER_MS);
	sweep(t, 3600 * NS_PER_S, 0, 10 * NS_PER_MS);
	if (!tracked(t, &a, NULL))
		fail_because("a RST below the receive window, which the kernel drops without a "
			     "word, got the live connection swept as a suspect");
}

/*
 * Inside the window the challenge ACK does clear the suspicion, but the
 * kernel sends at most one per socket each 500 ms (tcp_send_challenge_ack
 * -> tcp_oow_rate_limited, tcp_invalid_ratelimit). A second RST right
 * after the first gets no answer: were silence proof, two forged RSTs in
 * window would get the flow swept.
 * Before the hardening, seen end to end: one challenge ACK answered the
 * first of two RSTs sent 50 ms apart, none the second; the flow was
 * swept, the connection ESTAB.
 * As above, the sweep hands the silent suspect to the agent to ask the
 * kernel, and ends nothing itself.
 */
static void second_rst_inside_the_challenge_ack_rate_limit_does_not_get_the_flow_swept(void **state)
{
	struct t *t = *state;
	struct conn a;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	respond(t, &a, 100);

	assert_int_equal(cli_rst_at(t, &a, a.cli_seq + 1000), XDP_PASS);
	srv_ack(t, &a); /* the challenge ACK */
	assert_false(flow_of(t, &a).flags & LS_FLOW_RST_SUSPECT);
	assert_int_equal(cli_rst_at(t, &a, a.cli_seq + 2000), XDP_PASS);
	/* No second challenge ACK within 500 ms. */
	sleep_ns(20 * NS_PER_MS);
	sweep(t, 3600 * NS_PER_S, 0, 10 * NS_PER_MS);
	if (!tracked(t, &a, NULL))
		fail_because("two forged RSTs in window got the live connection swept");
}

/* ---- handshakes that would skip the decision (ls_on_synack, ls_on_untracked) --- */

/*
 * With SYN cookies (tcp_syncookies = 2, or any listen queue overflow: a
 * SYN flood), the server's ISN is a function of the tuple, the client's
 * ISN, its MSS and the minute. A hostile client that closed a connection
 * (first, so the server keeps no TIME_WAIT) reconnects on the same tuple
 * with the same ISN within the minute: the SYN-ACK carries the ISN of the
 * handshake way already used. Taken for a retransmission, it would leave
 * the way used, and the new connection's ACK, finding it used, would pass
 * undecided while the service is full.
 * At TC the same ISN on a used way whose flow is gone is a new
 * connection: the way opens again (ls_on_synack, design §4.2), and the ACK
 * is decided: shed here, the one slot taken.
 */
static void reused_tuple_with_the_same_cookie_isn_is_decided_again(void **state)
{
	struct t *t = *state;
	struct conn x, y;
	__u32 verdict;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &x);
	connect_ok(t, &x);
	assert_int_equal(request(t, &x, 100, NULL), XDP_PASS);
	respond(t, &x, 100);
	srv_send(t, &x, PKT_FIN | PKT_ACK, 0);
	assert_int_equal(flows(t), 0);

	conn_n(t, 0, &x); /* the same tuple, the same client ISN */
	assert_int_equal(send_syn(t, &x, NULL), XDP_PASS);
	send_synack(t, &x); /* the same cookie */
	conn_n(t, 1, &y);
	connect_ok(t, &y); /* the one slot goes */

	verdict = send_ack(t, &x, 0, NULL);
	if (verdict == XDP_PASS && !tracked(t, &x, NULL))
		fail_because("the ACK of a reused tuple's handshake passed undecided while the "
			     "service was full");
}

/*
 * A hostile client tries to be adopted instead of admitted. Under admit =
 * connections it sends its SYN while the service has room, then holds its
 * ACK until four newer SYN-ACKs have pushed its handshake out of its set
 * (at 9 k new connections a second, or a modest spoofed SYN flood, within
 * 30 s: between the server's SYN-ACK retransmissions, or at any time with
 * SYN cookies, which are never retransmitted; the table is shared by
 * every service port, so any service whose SYNs pass, a request-mode one
 * say, churns it while this one is full). Its ACK then finds no handshake
 * and passes untracked; its first request finds an ESTABLISHED socket
 * and, adopted without a decision, would be counted past L. The design
 * lists eviction under a flood as a known limit; a client must not be
 * able to choose it to skip the decision.
 * A segment is adopted only at the socket's rcv_nxt, and a connection
 * that has received nothing yet is new work, decided by the partition
 * rule as at its handshake (ls_adopt, design §4.6). Here the test's
 * sequence numbers are not the real socket's, so the request is not
 * adopted at all and passes untracked, holding nothing: either way in
 * flight stays 1 at L = 1.
 */
static void handshake_pushed_out_while_the_client_waits_is_not_adopted_past_the_limit(void **state)
{
	struct t *t = *state;
	struct conn c, other;
	__u32 verdict;

	one_class_service(t, 1, LS_ACT_RESET, 0);
	open_connection();
	real_conn(t, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	send_synack(t, &c);
	conn_n(t, 0, &other);
	connect_ok(t, &other); /* the one slot goes */
	push_out_handshake(t, &c);

	assert_int_equal(send_ack(t, &c, 0, NULL), XDP_PASS);
	verdict = request(t, &c, 100, NULL);
	if (inflight(t).total > 1)
		fail_because("a connection whose client waited out its handshake was adopted "
			     "undecided (verdict %u): in flight %d at L = 1",
			     verdict, inflight(t).total);
}

/*
 * The off-path form at adoption. A connection loadshed does not track
 * (established before attach, or whose handshake was pushed out) is
 * adopted at a payload segment on its tuple, once the kernel says it holds
 * it established (bpf_skc_lookup_tcp). If the segment's sequence number
 * went unchecked, a forger's segment below the client's, while the limit
 * is full, would be adopted and deferred there, and every real segment of
 * the client, reaching past it, dropped for good, even when slots free; a
 * forged sequence number ahead would make the client's requests pass
 * undecided instead.
 * A segment is adopted only at the socket's own rcv_nxt (its tcp_sock,
 * read through CO-RE), and the flow starts from the socket's sequence
 * numbers (ls_adopt, design §4.6): the forged segment passes untracked,
 * and with room again the client's request passes.
 */
static void forged_payload_does_not_adopt_a_connection_at_a_sequence_of_its_choosing(void **state)
{
	struct t *t = *state;
	struct conn c, forged;

	request_service(t, 0, LS_REQ_DEFER, 0);
	open_connection();
	real_conn(t, &c);
	forged = c;
	forged.cli_seq = c.cli_seq - 0x100000u;
	forged.srv_seq = c.srv_seq + 0x40000000u;
	/* Not at the kernel's next byte: not adopted, nothing tracked. */
	assert_int_equal(request(t, &forged, 10, NULL), XDP_PASS);
	assert_false(tracked(t, &c, NULL));

	set_limits(t, 10, 0, 0); /* room again */
	if (request(t, &c, 100, NULL) == XDP_DROP)
		fail_because("one forged segment adopted the connection at its own sequence "
			     "number: the client's requests are dropped with the limit free");
}

/*
 * A race, on two CPUs: two segments of one handshake at once (its ACK and
 * the request right behind it, on two RX queues: veth delivers by the
 * sender's CPU) while the service is full. If the second, seeing the
 * handshake taken by the first, passed at once as "completed on another
 * CPU" before the first had decided, it would reach the server, whose
 * connection would then be established untracked, and whose requests
 * would later be adopted without a decision.
 * The way's tag and state share one word, which a compare-and-swap moves
 * from open to claimed: one segment decides the handshake; another that
 * finds it claimed is dropped (its client sends again), and one that
 * finds it open again after a shed is decided itself (ls_on_untracked,
 * ls_on_handshake, design §4.2). At L = 0 no segment of any round passes.
 */
#define RACE_ROUNDS 3000

struct hs_racer {
	struct t *t;
	int id;
	const struct frame *segs; /* RACE_ROUNDS frames: this racer's segment of each handshake */
	int *arrived;
	__u32 *verdicts;
	int err;
};

static void pin_to(int cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % (n < 1 ? 1 : (int)n), &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void lockstep(int *arrived, int target)
{
	__atomic_fetch_add(arrived, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(arrived, __ATOMIC_SEQ_CST) < target)
		if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
			sched_yield();
}

static void *hs_racer_main(void *arg)
{
	struct hs_racer *h = arg;
	struct dp_run *r = malloc(sizeof(*r));
	int i;

	pin_to(h->id);
	for (i = 0; i < RACE_ROUNDS && r && !h->err; i++) {
		lockstep(h->arrived, 2 * (i + 1));
		h->err = dp_xdp(&h->t->dp, h->segs[i].buf, h->segs[i].len, r);
		h->verdicts[i] = r->retval;
	}
	if (!r)
		h->err = -ENOMEM;
	while (i < RACE_ROUNDS) /* keep the other in lockstep to the end */
		lockstep(h->arrived, 2 * (++i));
	free(r);
	return NULL;
}

static void ack_racing_a_shed_ack_of_its_handshake_does_not_pass(void **state)
{
	struct t *t = *state;
	struct frame *segs[2];
	__u32 *verdicts[2];
	struct hs_racer h[2];
	pthread_t tid[2];
	int arrived = 0, i, k, leaked = 0;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		skip();
	one_class_service(t, 0, LS_ACT_DROP, 0);
	for (k = 0; k < 2; k++) {
		segs[k] = calloc(RACE_ROUNDS, sizeof(struct frame));
		verdicts[k] = calloc(RACE_ROUNDS, sizeof(__u32));
		assert_non_null(segs[k]);
		assert_non_null(verdicts[k]);
	}
	for (i = 0; i < RACE_ROUNDS; i++) {
		struct pkt_spec s;
		struct conn c;

		conn_n(t, i, &c);
		send_synack(t, &c); /* its SYN passed earlier, when there was room */
		cli_seg(&c, PKT_ACK, 0, &s);
		build(&s, &segs[0][i]);
		cli_seg(&c, PKT_PSH | PKT_ACK, 100, &s);
		build(&s, &segs[1][i]);
	}
	for (k = 0; k < 2; k++) {
		h[k] = (struct hs_racer){.t = t,
					 .id = k,
					 .segs = segs[k],
					 .arrived = &arrived,
					 .verdicts = verdicts[k]};
		assert_int_equal(pthread_create(&tid[k], NULL, hs_racer_main, &h[k]), 0);
	}
	for (k = 0; k < 2; k++)
		pthread_join(tid[k], NULL);
	assert_int_equal(h[0].err, 0);
	assert_int_equal(h[1].err, 0);
	for (i = 0; i < RACE_ROUNDS; i++)
		if (verdicts[0][i] == XDP_PASS || verdicts[1][i] == XDP_PASS)
			leaked++;
	for (k = 0; k < 2; k++) {
		free(segs[k]);
		free(verdicts[k]);
	}
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
	if (leaked)
		fail_because("%d of %d handshakes had a segment pass undecided at L = 0 while "
			     "the other CPU shed it",
			     leaked, RACE_ROUNDS);
}

/* ---- TCP Fast Open (ls_on_syn) ----------------------------------------------------- */

/*
 * With TCP Fast Open on the server (nginx `fastopen=`, or
 * net.ipv4.tcp_fastopen & 2 with a listener's TCP_FASTOPEN), a SYN
 * carries its request and the kernel hands it to the application at once.
 * Were a SYN shed only at max_connections under admit = requests, a SYN
 * with data would pass while the request limit is full and its request
 * never be decided (the handshake's ACK carries none; the server's answer
 * counts as server_first). A client with a cookie (one earlier
 * connection) would send every request that way. (Under admit =
 * connections the check at the SYN is read-only, so a burst of such SYNs
 * gets in before any is counted: not covered here.)
 * Before the hardening, seen end to end (tcp_fastopen 0x602 on the
 * server, 5 on the client, one slow request holding the one slot): the
 * SYN-ACK acknowledged the SYN's 30 bytes, the request was served, and
 * loadshed counted no request for it, only a server_first.
 * A SYN with data is shed when a request of its class would be (ls_on_syn,
 * design §4.4): here, the one request slot taken, it does not pass.
 */
static void syn_with_data_is_shed_while_requests_are_full(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;
	struct frame f;
	struct conn a, c;
	__u32 verdict;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);

	conn_n(t, 1, &c);
	syn = c.syn;
	syn.payload = some_bytes;
	syn.payload_len = 200;
	build(&syn, &f);
	verdict = run_frame(t, 1, &f, &r);
	if (verdict == XDP_PASS && r.len >= f.len)
		fail_because("a SYN carrying a request passed whole while the request limit "
			     "was full");
}

/* ---- the latency signal (ls_on_payload, LS_FLOW_REQUEST) ------------------------- */

/*
 * A hostile client tries to make the server look fast. If every client
 * payload during an outstanding request restarted its latency clock
 * (req_last_ns), retransmissions of bytes the server has acknowledged
 * included, a client that resends an old byte just before each answer
 * would make every sample of its requests near zero, and gradient2 or
 * vegas would raise L for everyone. An honest client whose ACK was lost
 * would do the same once.
 * The clock restarts only on new bytes, past cli_next (ls_on_payload,
 * design §4.4): the sample is at least the 50 ms the server took after the
 * request's last new byte.
 */
static void retransmitted_request_bytes_do_not_restart_the_latency_clock(void **state)
{
	struct t *t = *state;
	struct ls_latency_hist h;
	struct conn a;
	__u32 seq;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	seq = a.cli_seq;
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	srv_ack(t, &a);
	sleep_ns(50 * NS_PER_MS);
	assert_int_equal(cli_data_at(t, &a, seq, 1, NULL), XDP_PASS); /* an old byte again */
	respond(t, &a, 100);
	h = latency_of(t, CLS_DEFAULT);
	assert_int_equal(h.count, 1);
	if (h.max_ns < 50 * NS_PER_MS)
		fail_because("latency sample %llu us for a request the server took 50 ms over: "
			     "a retransmitted byte restarted its clock",
			     (unsigned long long)(h.max_ns / 1000));
}

/*
 * A hostile client makes the server look slow. Its request advertises a
 * zero window: the server has its answer at once but cannot send it (its
 * persist timer probes the window: a zero-length segment at snd_una - 1,
 * seen at TC). TC takes the first server byte that leaves for the answer,
 * so the request holds its slot for as long as the client keeps its window
 * shut, and its latency sample would grow as long. Samples the client
 * stretches at will would push the window's RTT up (the outlier filter
 * leaves out at most 1 in 20), and gradient2 or vegas would lower L:
 * legitimate requests would then be deferred.
 * A client segment with a zero window during a request marks the flow
 * LS_FLOW_NO_SAMPLE: the request still ends at the answer, but gives no
 * latency sample (ls_on_flow, tc_egress.bpf.c, design §12).
 */
static void zero_window_does_not_stretch_the_latency_sample(void **state)
{
	struct t *t = *state;
	struct ls_latency_hist h;
	struct pkt_spec s;
	struct conn a;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	cli_seg(&a, PKT_PSH | PKT_ACK, 100, &s);
	s.window = 0;
	a.cli_seq += 100;
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	srv_ack(t, &a);
	srv_seg(&a, PKT_ACK, 0, &s); /* the server's zero-window probe */
	s.seq = a.srv_seq - 1;
	assert_int_equal(tc(t, &s), TC_ACT_OK);
	sleep_ns(50 * NS_PER_MS);
	cli_seg(&a, PKT_ACK, 0, &s); /* the window opens */
	s.window = 65535;
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	respond(t, &a, 100);
	/* The request ends; its sample, stretched by the client, is not taken. */
	assert_int_equal(flow_of(t, &a).req, 0);
	h = latency_of(t, CLS_DEFAULT);
	assert_true(h.count <= 1);
	if (h.count && h.max_ns >= 50 * NS_PER_MS)
		fail_because("latency sample %llu ms: the 50 ms the client kept its window shut "
			     "counted as the server's",
			     (unsigned long long)(h.max_ns / NS_PER_MS));
}

/* =================================================================================
 * Attacks withstood from the start.
 * ================================================================================= */

/* An off-path forger sprays ACKs at a pending handshake: none completes it but its own. */
static void sprayed_acks_complete_no_handshake(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct frame f;
	struct conn a;
	__u32 rnd = 0x9e3779b9u;
	int i;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	assert_int_equal(send_syn(t, &a, NULL), XDP_PASS);
	send_synack(t, &a);
	cli_seg(&a, PKT_ACK, 0, &ack);
	build(&ack, &f);
	for (i = 0; i < 20000; i++) {
		__u32 n = next_rand(&rnd);
		__u32 be;

		if (n == a.isn + 1)
			continue;
		be = htonl(n);
		memcpy(f.buf + f.lay.l4_off + 8, &be, 4); /* XDP checks no sum */
		assert_int_equal(run_frame(t, 1, &f, NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 0);
	assert_int_equal(send_ack(t, &a, 0, NULL), XDP_PASS);
	assert_true(tracked(t, &a, NULL));
}

/*
 * A client who knows its own handshake's ISN sends its ACK from other
 * ports and addresses: the way is the tuple's (its tag), nothing completes.
 */
static void ack_of_one_handshake_from_other_tuples_completes_nothing(void **state)
{
	struct t *t = *state;
	struct conn a, other;
	int i;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	assert_int_equal(send_syn(t, &a, NULL), XDP_PASS);
	send_synack(t, &a);
	for (i = 1; i < 200; i++) {
		other = a;
		other.syn.sport = (__u16)(a.syn.sport + i);
		assert_int_equal(send_ack(t, &other, 0, NULL), XDP_PASS);
		assert_false(tracked(t, &other, NULL));
	}
	conn_in_same_set(t, &a, a.isn, &other);
	assert_int_equal(send_ack(t, &other, 0, NULL), XDP_PASS);
	assert_false(tracked(t, &other, NULL));
	assert_nothing_in_flight(t);
	assert_int_equal(send_ack(t, &a, 0, NULL), XDP_PASS);
	assert_true(tracked(t, &a, NULL));
}

/* A SYN-ACK forged from outside, to the service port: XDP notes nothing, only TC does. */
static void synack_arriving_from_outside_notes_nothing(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn a;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	s = a.syn;
	s.flags = PKT_SYN | PKT_ACK;
	s.ack = 0x12345678;
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_int_equal(handshakes(t), 0);
	cli_seg(&a, PKT_ACK, 0, &s);
	s.ack = a.syn.seq + 1; /* what a reflected SYN-ACK would be acknowledged with */
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
}

/* SYN|FIN, SYN|RST and SYN|ACK segments at a full service write nothing (the kernel drops them). */
static void odd_syn_flag_combinations_write_nothing(void **state)
{
	struct t *t = *state;
	static const __u8 odd[] = {PKT_SYN | PKT_FIN, PKT_SYN | PKT_RST, PKT_SYN | PKT_ACK,
				   PKT_SYN | PKT_FIN | PKT_RST | PKT_ACK | PKT_PSH};
	struct pkt_spec s;
	struct conn a;
	size_t i;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	conn_n(t, 0, &a);
	for (i = 0; i < ARRAY_LEN(odd); i++) {
		s = a.syn;
		s.flags = odd[i];
		assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 0);
	assert_int_equal(handshakes(t), 0);
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_reset, 0);
}

/*
 * RSTs sprayed every 1 MiB across the sequence space (4096 of them, none
 * at the exact next byte) end nothing at once: only the one at cli_next
 * does. (What becomes of the suspicion is checked above.)
 */
static void rst_spray_without_the_exact_byte_ends_nothing_at_once(void **state)
{
	struct t *t = *state;
	struct conn a, b;
	__u32 k;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	for (k = 0; k < 4096; k++) {
		__u32 seq = (k << 20) + 0x5a5a5u;

		if (seq == a.cli_seq)
			continue;
		assert_int_equal(cli_rst_at(t, &a, seq), XDP_PASS);
	}
	assert_true(tracked(t, &a, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_rst, 0);
	conn_n(t, 1, &b);
	assert_int_equal(send_syn(t, &b, NULL), XDP_DROP);
}

/* An IPv6 packet from ::ffff:a.b.c.d cannot act on that IPv4 client's flow: dropped. */
static void v4_mapped_ipv6_rst_cannot_touch_an_ipv4_flow(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn a;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	pkt_tcp(&s, 1, "::ffff:10.1.0.2", a.syn.sport, "::ffff:192.0.2.1", PORT, PKT_RST);
	s.seq = a.cli_seq;
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	assert_true(tracked(t, &a, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(iface(t).undecidable, 1);
}

/*
 * The handshake's ACK (or a request) sent as IP fragments: the first is
 * dropped, the rest pass as parse errors and never reassemble, nothing is
 * admitted or tracked.
 */
static void fragmented_handshake_ack_completes_nothing(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct ls_handshake h;
	struct conn a;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	assert_int_equal(send_syn(t, &a, NULL), XDP_PASS);
	send_synack(t, &a);
	cli_seg(&a, PKT_PSH | PKT_ACK, 100, &s);
	s.ack = a.isn + 1;
	s.frag_off = 0x2000; /* MF, offset 0 */
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	s.frag_off = 0x0010; /* a later fragment */
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_true(hs_entry(t, &a, &h));
	assert_int_equal(ls_hs_state(h.word), LS_HS_OPEN);
	assert_int_equal(iface(t).fragments_dropped, 1);
}

/* Keep-alive and zero-window probes (an old byte, or none, at snd_una - 1) start no request. */
static void keepalive_and_window_probes_start_no_request(void **state)
{
	struct t *t = *state;
	struct pkt_spec probe;
	struct conn a;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	respond(t, &a, 100);
	cli_seg(&a, PKT_ACK, 0, &probe);
	probe.seq = a.cli_seq - 1;
	assert_int_equal(xdp(t, &probe, NULL), XDP_PASS);
	assert_int_equal(cli_data_at(t, &a, a.cli_seq - 1, 1, NULL), XDP_PASS);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 1);
	assert_int_equal(flow_of(t, &a).state, LS_FLOW_RESPONSE);
}

/* A client trickling its request byte by byte holds one slot, not one per segment. */
static void trickled_request_takes_one_slot(void **state)
{
	struct t *t = *state;
	struct conn a;
	int i;

	request_service(t, 5, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	for (i = 0; i < 50; i++)
		assert_int_equal(request(t, &a, 1, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 1);
	respond(t, &a, 10);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
}

/* Requests whose bytes wrap the sequence space start, end and count exactly. */
static void requests_across_the_sequence_wrap_count_exactly(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct conn a;

	request_service(t, 1, LS_REQ_DEFER, 0);
	syn_n(t, 0, &syn);
	syn.seq = 0xffffff00u;
	conn_of_syn(&syn, 0xffffffc0u, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 0x180, NULL), XDP_PASS); /* wraps */
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	respond(t, &a, 0x100); /* wraps too */
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flow_of(t, &a).cli_next, a.cli_seq);
	srv_ack(t, &a);
	assert_int_equal(cli_rst_at(t, &a, a.cli_seq), XDP_PASS);
	assert_false(tracked(t, &a, NULL));
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 2);
}

/* A SYN with data on a live tuple (the kernel answers a challenge ACK) ends nothing. */
static void syn_with_data_on_a_live_tuple_ends_nothing(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn a;

	one_class_service(t, 1, LS_ACT_RESET, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	s = a.syn;
	s.seq = a.cli_seq + 5;
	s.payload = some_bytes;
	s.payload_len = 100;
	xdp(t, &s, NULL);
	assert_true(tracked(t, &a, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flow_of(t, &a).cli_next, a.cli_seq);
}

/* ECN and URG bits on the handshake's ACK change nothing: it completes like any ACK. */
static void handshake_ack_with_urg_and_ecn_bits_completes(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct conn a;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	assert_int_equal(send_syn(t, &a, NULL), XDP_PASS);
	send_synack(t, &a);
	cli_seg(&a, PKT_ACK | 0x20 /* URG */ | PKT_ECE | PKT_CWR, 0, &ack);
	ack.tos = 0x03; /* CE */
	assert_int_equal(xdp(t, &ack, NULL), XDP_PASS);
	assert_true(tracked(t, &a, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

/* Out-of-window RSTs on a deferred flow (far past its request) end nothing. */
static void far_rst_on_a_deferred_flow_ends_nothing(void **state)
{
	struct t *t = *state;
	struct conn a, b;
	__u32 dseq;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	dseq = b.cli_seq;
	assert_int_equal(request(t, &b, 100, NULL), XDP_DROP);
	assert_int_equal(cli_rst_at(t, &b, dseq + 0x40000000u), XDP_PASS);
	assert_int_equal(cli_rst_at(t, &b, dseq - 1), XDP_PASS);
	assert_int_equal(flow_of(t, &b).state, LS_FLOW_DEFERRED);
	assert_conns(t, 2);
	assert_int_equal(aborts(t), 0);
}

/* A server's pure ACKs (and window updates) during a request end nothing at TC. */
static void server_pure_acks_end_no_request(void **state)
{
	struct t *t = *state;
	struct conn a;
	int i;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	for (i = 0; i < 5; i++)
		srv_ack(t, &a);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flow_of(t, &a).state, LS_FLOW_REQUEST);
}

/* A forged segment beyond a gap, then a RST at its end: nothing ends. */
static void rst_at_the_end_of_forged_data_beyond_a_gap_ends_nothing(void **state)
{
	struct t *t = *state;
	struct conn a;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(cli_data_at(t, &a, a.cli_seq + 10, 100, NULL), XDP_PASS);
	assert_int_equal(cli_rst_at(t, &a, a.cli_seq + 110), XDP_PASS);
	assert_true(tracked(t, &a, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

#define TEST_NETNS(fn, v)                                                                          \
	{                                                                                          \
#fn "/" #v, fn, setup_netns, teardown_netns, (void *)&v                            \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* Findings, each with its defense */
		TEST_V(forged_deferral_far_ahead_does_not_let_later_requests_pass, V4),
		TEST_V(forged_deferral_far_ahead_does_not_let_later_requests_pass, V6_VLAN),
		TEST(forged_payload_out_of_window_takes_no_request_slot),
		TEST(forged_payload_out_of_window_aborts_no_live_connection),
		TEST(reordered_request_is_decided_at_its_first_segment),
		TEST_V(forged_fin_does_not_abort_a_deferred_request, V4),
		TEST_V(forged_fin_does_not_abort_a_deferred_request, V6),
		TEST(server_retransmission_does_not_end_the_next_request),
		TEST(rest_of_a_stalled_request_is_decided_again),
		TEST_V(handshake_ack_with_a_bad_checksum_holds_no_slot, V4),
		TEST_V(handshake_ack_with_a_bad_checksum_holds_no_slot, V6_QINQ),
		{"phantom_flows_neither_fill_the_table_nor_turn_admission_off",
		 phantom_flows_neither_fill_the_table_nor_turn_admission_off, setup_small_table,
		 teardown, NULL},
		TEST(handshake_ack_out_of_the_server_window_holds_no_slot),
		TEST_V(ipv6_handshake_ack_the_kernel_discards_holds_no_slot, V6),
		TEST(data_the_kernel_drops_does_not_move_the_trusted_rst_sequence),
		TEST(forged_data_overlapping_the_next_byte_lets_no_blind_rst_end_the_flow),
		TEST(rst_below_the_window_does_not_get_an_idle_flow_swept),
		TEST(second_rst_inside_the_challenge_ack_rate_limit_does_not_get_the_flow_swept),
		TEST(reused_tuple_with_the_same_cookie_isn_is_decided_again),
		TEST_NETNS(
			handshake_pushed_out_while_the_client_waits_is_not_adopted_past_the_limit,
			V4),
		TEST_NETNS(forged_payload_does_not_adopt_a_connection_at_a_sequence_of_its_choosing,
			   V4),
		TEST(ack_racing_a_shed_ack_of_its_handshake_does_not_pass),
		TEST(syn_with_data_is_shed_while_requests_are_full),
		TEST(retransmitted_request_bytes_do_not_restart_the_latency_clock),
		TEST(zero_window_does_not_stretch_the_latency_sample),
		/* Withstood from the start */
		TEST_V(sprayed_acks_complete_no_handshake, V4),
		TEST_V(sprayed_acks_complete_no_handshake, V6),
		TEST(ack_of_one_handshake_from_other_tuples_completes_nothing),
		TEST(synack_arriving_from_outside_notes_nothing),
		TEST(odd_syn_flag_combinations_write_nothing),
		TEST(rst_spray_without_the_exact_byte_ends_nothing_at_once),
		TEST(v4_mapped_ipv6_rst_cannot_touch_an_ipv4_flow),
		TEST(fragmented_handshake_ack_completes_nothing),
		TEST(keepalive_and_window_probes_start_no_request),
		TEST(trickled_request_takes_one_slot),
		TEST(requests_across_the_sequence_wrap_count_exactly),
		TEST(syn_with_data_on_a_live_tuple_ends_nothing),
		TEST_V(handshake_ack_with_urg_and_ecn_bits_completes, V4_QINQ),
		TEST(far_rst_on_a_deferred_flow_ends_nothing),
		TEST(server_pure_acks_end_no_request),
		TEST(rst_at_the_end_of_forged_data_beyond_a_gap_ends_nothing),
	};

	return DP_TESTS_MAIN(tests);
}
