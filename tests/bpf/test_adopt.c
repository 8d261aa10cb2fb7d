// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Adoption (issue 9): a connection established before attach, or whose
 * handshake loadshed never saw, is tracked at its next client payload,
 * once the kernel confirms (bpf_skc_lookup_tcp) that it holds the tuple
 * ESTABLISHED; it is counted like an admission but without a decision, and
 * its payload starts a request (decided under admit = requests). A tuple
 * the kernel does not hold established (no socket, a listener only, a
 * connection in TIME_WAIT) is not adopted: its segment passes untracked.
 *
 * The sockets are real: the test process has its own network namespace
 * with its loopback up, holds a listener on PORT and a connection to it,
 * and crafts frames with that connection's 4-tuple. BPF_PROG_TEST_RUN of
 * XDP looks sockets up in the caller's namespace. Needs root.
 */
#define _GNU_SOURCE /* unshare */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/tcp.h>
#include "lib/fixture.h"

/* ---- real sockets, in a namespace of our own --------------------------------- */

static int netns_err = -EAGAIN; /* 0 once the process has its own namespace */

/* The loopback address of the family, as socket address and as text. */
static socklen_t loopback(int ipv6, __u16 port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ipv6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		return sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
}

static const char *loopback_text(int ipv6)
{
	return ipv6 ? "::1" : "127.0.0.1";
}

/* One test's sockets: a listener on PORT and a connection to it, both ends. */
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

static void close_sockets(void)
{
	close_fd(&sk.cfd);
	close_fd(&sk.sfd);
	close_fd(&sk.lfd);
}

static void listen_on_port(int ipv6)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(ipv6, PORT, &ss);
	int one = 1;

	sk.lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sk.lfd >= 0);
	assert_int_equal(setsockopt(sk.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(sk.lfd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(listen(sk.lfd, 8), 0);
}

/* A listener on PORT and an established connection to it over the loopback. */
static void open_connection(int ipv6)
{
	struct sockaddr_storage ss, local;
	socklen_t len = loopback(ipv6, PORT, &ss), llen = sizeof(local);

	listen_on_port(ipv6);
	sk.cfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sk.cfd >= 0);
	assert_int_equal(connect(sk.cfd, (struct sockaddr *)&ss, len), 0);
	sk.sfd = accept4(sk.lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(sk.sfd >= 0);
	assert_int_equal(getsockname(sk.cfd, (struct sockaddr *)&local, &llen), 0);
	sk.cport = ntohs(ipv6 ? ((struct sockaddr_in6 *)&local)->sin6_port
			      : ((struct sockaddr_in *)&local)->sin_port);
}

/* The TCP state (/proc/net/tcp "st") of the socket local PORT, remote cport; -1: none. */
static int tcp_state(int ipv6, __u16 cport)
{
	char line[512];
	int state = -1;
	FILE *f = fopen(ipv6 ? "/proc/net/tcp6" : "/proc/net/tcp", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char local[64], remote[64];
		unsigned int st;
		char *lp, *rp;

		if (sscanf(line, "%*d: %63s %63s %x", local, remote, &st) != 3)
			continue;
		lp = strchr(local, ':');
		rp = strchr(remote, ':');
		if (lp && rp && strtoul(lp + 1, NULL, 16) == PORT &&
		    strtoul(rp + 1, NULL, 16) == cport)
			state = (int)st;
	}
	fclose(f);
	return state;
}

/* The tuple of the test's connection (or of client port cport), as a conn. */
static void real_conn(struct t *t, __u16 cport, struct conn *c)
{
	struct pkt_spec syn;

	pkt_tcp(&syn, t->v->ipv6, loopback_text(t->v->ipv6), cport, loopback_text(t->v->ipv6), PORT,
		PKT_SYN);
	tag(t->v, &syn);
	syn.seq = 0x10000000;
	conn_of_syn(&syn, 0x70000000, c);
	if (sk.sfd < 0 || sk.cport != cport)
		return;
	/*
	 * The server socket's own sequence numbers (TCP_REPAIR lets them be
	 * read): adoption takes a segment only at the kernel's next byte.
	 */
	{
		int on = 1, off = -1 /* TCP_REPAIR_OFF_NO_WP */, q;
		__u32 rcv_nxt, snd_nxt;
		socklen_t len = sizeof(__u32);

		assert_int_equal(setsockopt(sk.sfd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)), 0);
		q = TCP_RECV_QUEUE;
		assert_int_equal(setsockopt(sk.sfd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)),
				 0);
		assert_int_equal(getsockopt(sk.sfd, IPPROTO_TCP, TCP_QUEUE_SEQ, &rcv_nxt, &len), 0);
		q = TCP_SEND_QUEUE;
		assert_int_equal(setsockopt(sk.sfd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)),
				 0);
		assert_int_equal(getsockopt(sk.sfd, IPPROTO_TCP, TCP_QUEUE_SEQ, &snd_nxt, &len), 0);
		assert_int_equal(setsockopt(sk.sfd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)), 0);
		c->syn.seq = rcv_nxt - 1;
		c->cli_seq = rcv_nxt;
		c->isn = snd_nxt - 1;
		c->srv_seq = snd_nxt;
	}
}

/* One byte each way through the real sockets: the connection's work is under way. */
static void exchange_a_byte(void)
{
	char b = 'x';

	assert_int_equal(write(sk.cfd, &b, 1), 1);
	assert_int_equal(read(sk.sfd, &b, 1), 1);
	assert_int_equal(write(sk.sfd, &b, 1), 1);
	assert_int_equal(read(sk.cfd, &b, 1), 1);
}

static int setup_adopt(void **state)
{
	if (netns_err) {
		printf("# cannot have a network namespace of our own: %s\n", strerror(-netns_err));
		return -1;
	}
	return setup(state);
}

static int setup_adopt_small_table(void **state)
{
	if (netns_err) {
		printf("# cannot have a network namespace of our own: %s\n", strerror(-netns_err));
		return -1;
	}
	return setup_small_table(state);
}

static int teardown_adopt(void **state)
{
	close_sockets();
	return teardown(state);
}

/* ---- the tests ------------------------------------------------------------------ */

static void request_on_a_connection_the_kernel_holds_is_adopted(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct ls_flow f;
	struct conn c;
	__u32 seq;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	open_connection(t->v->ipv6);
	exchange_a_byte();
	real_conn(t, sk.cport, &c);
	seq = c.cli_seq;
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);

	assert_true(tracked(t, &c, &f));
	assert_true(f.flags & LS_FLOW_ADOPTED);
	assert_false(f.flags & LS_FLOW_REQUESTS);
	assert_int_equal(f.state, LS_FLOW_REQUEST);
	assert_int_equal(f.cli_next, seq + 100);
	assert_int_equal(f.cli_acked, seq);
	assert_int_equal(f.srv_next, c.srv_seq);
	assert_true(f.slot & LS_SLOT_COUNTED);
	assert_int_equal(f.cls, CLS_DEFAULT);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_conns(t, 1);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.adopted, 1);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.packets, 1);
	assert_int_equal(st.admitted + st.handshakes + st.syns, 0);
	assert_int_equal(iface(t).untracked_packets, 0);

	/* Tracked from now on: its next segments are the flow's. */
	respond(t, &c, 300);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_int_equal(stats(t, CLS_DEFAULT).adopted, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 2);
	srv_send(t, &c, PKT_FIN | PKT_ACK, 0);
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, 1);
}

/* Attached during an incident: the work is under way, it is counted even past L. */
static void adopted_connection_is_counted_past_the_limit(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	open_connection(t->v->ipv6);
	exchange_a_byte();
	real_conn(t, sk.cport, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_true(tracked(t, &c, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_reset, 0);
	/* ... and the limit, full, sheds the next connection. */
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_TX);
}

/* Under admit = requests, the adopted connection's request is decided at once. */
static void adopted_connection_has_its_request_decided(void **state)
{
	struct t *t = *state;
	struct ls_flow f;
	struct conn c;
	__u32 seq;

	request_service(t, 0, LS_REQ_DEFER, 0);
	open_connection(t->v->ipv6);
	exchange_a_byte();
	real_conn(t, sk.cport, &c);
	seq = c.cli_seq;
	assert_int_equal(request(t, &c, 100, NULL), XDP_DROP);
	assert_true(tracked(t, &c, &f));
	assert_true(f.flags & LS_FLOW_ADOPTED);
	assert_true(f.flags & LS_FLOW_REQUESTS);
	assert_int_equal(f.state, LS_FLOW_DEFERRED);
	assert_int_equal(f.defer_end, seq + 100);
	assert_conns(t, 1);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).adopted, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).deferred, 1);

	set_limits(t, 1, 0, 0);
	assert_int_equal(cli_data_at(t, &c, seq, 100, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	respond(t, &c, 10);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).adopted, 1);
}

/* The listener holds the port, but no connection of that tuple: nothing to adopt. */
static void segment_to_a_listener_without_that_connection_is_not_adopted(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	listen_on_port(t->v->ipv6);
	real_conn(t, 45678, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).adopted, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 0);
	assert_int_equal(iface(t).untracked_packets, 1);
}

static void segment_of_no_socket_at_all_is_not_adopted(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	real_conn(t, 45678, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).adopted, 0);
	assert_int_equal(iface(t).untracked_packets, 1);
}

/* The connection is gone (the server closed first): its tuple sits in TIME_WAIT. */
static void connection_in_time_wait_is_not_adopted(void **state)
{
	struct t *t = *state;
	struct conn c;
	int i, st = -1;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	open_connection(t->v->ipv6);
	close_fd(&sk.sfd);
	close_fd(&sk.cfd);
	for (i = 0; i < 200 && st != 6; i++) { /* TCP_TIME_WAIT */
		st = tcp_state(t->v->ipv6, sk.cport);
		if (st != 6)
			sleep_ns(5 * NS_PER_MS);
	}
	assert_int_equal(st, 6);
	real_conn(t, sk.cport, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).adopted, 0);
	assert_int_equal(iface(t).untracked_packets, 1);
}

/* Adoption starts with work: a bare ACK of an established connection adopts nothing. */
static void ack_without_payload_adopts_nothing(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	open_connection(t->v->ipv6);
	real_conn(t, sk.cport, &c);
	assert_int_equal(cli_send(t, &c, PKT_ACK, 0, NULL), XDP_PASS);
	assert_int_equal(cli_send(t, &c, PKT_FIN | PKT_ACK, 0, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).adopted, 0);
	assert_int_equal(iface(t).untracked_packets, 2);
}

/* With no room in the flow table, the adopted connection is passed untracked, holding nothing. */
static void adoption_into_a_full_flow_table_gives_the_slot_back(void **state)
{
	struct t *t = *state;
	struct conn c;
	int i;

	one_class_service(t, 100, LS_ACT_DROP, 0);
	for (i = 0; i < 4; i++) {
		conn_n(t, i, &c);
		connect_ok(t, &c);
	}
	open_connection(t->v->ipv6);
	exchange_a_byte();
	real_conn(t, sk.cport, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_false(tracked(t, &c, NULL));
	assert_int_equal(flows(t), 4);
	assert_inflight(t, 4, CLS_DEFAULT, 4);
	assert_conns(t, 4);
	assert_int_equal(stats(t, CLS_DEFAULT).adopted, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).untracked, 1);
}

#define TEST_ADOPT(fn, v)                                                                          \
	{                                                                                          \
#fn "/" #v, fn, setup_adopt, teardown_adopt, (void *)&v                            \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ADOPT(request_on_a_connection_the_kernel_holds_is_adopted, V4),
		TEST_ADOPT(request_on_a_connection_the_kernel_holds_is_adopted, V4_VLAN),
		TEST_ADOPT(request_on_a_connection_the_kernel_holds_is_adopted, V6),
		TEST_ADOPT(request_on_a_connection_the_kernel_holds_is_adopted, V6_QINQ),
		TEST_ADOPT(adopted_connection_is_counted_past_the_limit, V4),
		TEST_ADOPT(adopted_connection_has_its_request_decided, V4),
		TEST_ADOPT(adopted_connection_has_its_request_decided, V6_VLAN),
		TEST_ADOPT(segment_to_a_listener_without_that_connection_is_not_adopted, V4),
		TEST_ADOPT(segment_to_a_listener_without_that_connection_is_not_adopted, V6),
		TEST_ADOPT(segment_of_no_socket_at_all_is_not_adopted, V4),
		TEST_ADOPT(connection_in_time_wait_is_not_adopted, V4),
		TEST_ADOPT(connection_in_time_wait_is_not_adopted, V6),
		TEST_ADOPT(ack_without_payload_adopts_nothing, V4),
		{"adoption_into_a_full_flow_table_gives_the_slot_back/V4",
		 adoption_into_a_full_flow_table_gives_the_slot_back, setup_adopt_small_table,
		 teardown_adopt, (void *)&V4},
	};

	/* Where BPF cannot load, the tests are skipped before any setup runs. */
	netns_err = geteuid() ? -EPERM : private_netns();
	return DP_TESTS_MAIN(tests);
}
