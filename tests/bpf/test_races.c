// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Concurrency (issue 9): handshake ACKs from several CPUs at once never
 * admit past the limit (the partition rule is checked and counted under
 * the service's lock), a handshake completed on two CPUs at once is
 * admitted once (its entry is used up atomically), and whoever exchanges
 * a slot word for 0 gives the slot back, exactly once, whichever parties
 * race: the client's in-sequence RST at XDP, the server's FIN at TC, the
 * agent's sweep, a request start against its flow's end, a response
 * against a stall release. Threads pinned to different CPUs run frames
 * through the same programs; counts must come out exact and in-flight back
 * at exactly 0. Threads never call cmocka's asserts (they longjmp): they
 * record errors, the test's thread checks. Needs root.
 */
#define _GNU_SOURCE /* CPU_SET, pthread_setaffinity_np */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/fixture.h"

#define MAX_THREADS 8

static int nr_cpus_online(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (int)n;
}

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % nr_cpus_online(), &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/*
 * A spinning barrier: each caller adds one and waits for the count to
 * reach target. Cheap enough that threads leave it within a few hundred
 * ns of each other, so their packets meet inside the dataplane.
 */
static void lockstep(int *arrived, int target)
{
	__atomic_fetch_add(arrived, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(arrived, __ATOMIC_SEQ_CST) < target)
		if (nr_cpus_online() < 2)
			sched_yield();
}

/* Runs s through XDP or TC from a racing thread: the verdict, or ~0u with *err set. */
static __u32 run_spec(struct t *t, int at_xdp, const struct pkt_spec *s, struct dp_run *r, int *err)
{
	__u8 buf[PKT_MAX_LEN];
	size_t len = pkt_build(s, buf, sizeof(buf), NULL);
	int e;

	if (!len) {
		*err = -EINVAL;
		return ~0u;
	}
	e = at_xdp ? dp_xdp(&t->dp, buf, len, r) : dp_tc(&t->dp, buf, len, r);
	if (e) {
		*err = e;
		return ~0u;
	}
	return r->retval;
}

/* Connection i of racer k in round rd: its own address, so every tuple is new. */
static void race_conn(int k, int rd, int i, struct conn *c)
{
	struct pkt_spec syn;
	char client[64];

	snprintf(client, sizeof(client), "10.%d.%d.%d", 100 + 10 * k + rd, i / 250, i % 250 + 1);
	pkt_tcp(&syn, 0, client, (__u16)(1024 + i), "192.0.2.1", PORT, PKT_SYN);
	syn.seq = 1000u + (__u32)i * 7u;
	conn_of_syn(&syn, SRV_ISN(i) + (__u32)k, c);
}

/* SYN and SYN-ACK from a racing thread; 0, or an error (the SYN must pass). */
static int race_open(struct t *t, struct conn *c, struct dp_run *r)
{
	struct pkt_spec s;
	int err = 0;

	if (run_spec(t, 1, &c->syn, r, &err) != XDP_PASS)
		return err ? err : -EAGAIN;
	synack_of(c, &s);
	if (run_spec(t, 0, &s, r, &err) != TC_ACT_OK)
		return err ? err : -EIO;
	return 0;
}

/* ---- the limit, from several CPUs -------------------------------------------- */

#define BURST_L	     64
#define BURST_N	     (10 * BURST_L)
#define BURST_ROUNDS 4

struct acker {
	struct t *t;
	int id, nthr;
	struct frame *acks;
	pthread_barrier_t *go;
	long passed, dropped;
	int err;
};

static void *acker_main(void *arg)
{
	struct acker *a = arg;
	struct dp_run *r = malloc(sizeof(*r));
	int j;

	pin_to(a->id);
	pthread_barrier_wait(a->go);
	for (j = a->id; j < BURST_N && r && !a->err; j += a->nthr) {
		a->err = dp_xdp(&a->t->dp, a->acks[j].buf, a->acks[j].len, r);
		if (a->err)
			break;
		if (r->retval == XDP_PASS)
			a->passed++;
		else if (r->retval == XDP_DROP)
			a->dropped++;
		else
			a->err = -EPROTO;
	}
	if (!r)
		a->err = -ENOMEM;
	free(r);
	return NULL;
}

/*
 * Ten times L handshakes, their SYNs all passed and their SYN-ACKs noted;
 * the ACKs run from one thread per CPU at once. Exactly L are admitted,
 * every round, with zero overshoot.
 */
static void concurrent_handshakes_admit_exactly_the_limit(void **state)
{
	struct t *t = *state;
	int nthr = nr_cpus_online() < 2 ? 2 : nr_cpus_online();
	struct acker ackers[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	pthread_barrier_t go;
	struct conn *c = calloc(BURST_N, sizeof(*c));
	struct frame *acks = calloc(BURST_N, sizeof(*acks));
	int rd, i;

	if (nthr > MAX_THREADS)
		nthr = MAX_THREADS;
	assert_non_null(c);
	assert_non_null(acks);
	one_class_service(t, BURST_L, LS_ACT_DROP, 0);
	for (rd = 0; rd < BURST_ROUNDS; rd++) {
		struct ls_class_stats st;
		long passed = 0, dropped = 0;

		for (i = 0; i < BURST_N; i++) {
			struct pkt_spec ack;

			race_conn(0, rd, i, &c[i]);
			assert_int_equal(send_syn(t, &c[i], NULL), XDP_PASS);
			send_synack(t, &c[i]);
			cli_seg(&c[i], PKT_ACK, 0, &ack);
			build(&ack, &acks[i]);
		}
		assert_int_equal(pthread_barrier_init(&go, NULL, (unsigned)nthr), 0);
		for (i = 0; i < nthr; i++) {
			ackers[i] = (struct acker){
				.t = t, .id = i, .nthr = nthr, .acks = acks, .go = &go};
			assert_int_equal(pthread_create(&tid[i], NULL, acker_main, &ackers[i]), 0);
		}
		for (i = 0; i < nthr; i++) {
			pthread_join(tid[i], NULL);
			assert_int_equal(ackers[i].err, 0);
			passed += ackers[i].passed;
			dropped += ackers[i].dropped;
		}
		pthread_barrier_destroy(&go);

		if (passed != BURST_L)
			fail_because("round %d: %ld handshakes admitted at limit %d", rd, passed,
				     BURST_L);
		assert_int_equal(dropped, BURST_N - BURST_L);
		assert_inflight(t, BURST_L, CLS_DEFAULT, BURST_L);
		assert_conns(t, BURST_L);
		assert_int_equal(flows(t), BURST_L);
		st = stats(t, CLS_DEFAULT);
		assert_int_equal(st.admitted, (__u64)(rd + 1) * BURST_L);
		assert_int_equal(st.shed_drop, (__u64)(rd + 1) * (BURST_N - BURST_L));
		assert_int_equal(st.handshakes, (__u64)(rd + 1) * BURST_N);

		/* The server closes every connection it got, so the next round starts empty. */
		for (i = 0; i < BURST_N; i++)
			srv_send(t, &c[i], PKT_FIN | PKT_ACK, 0);
		assert_nothing_in_flight(t);
		assert_int_equal(flows(t), 0);
	}
	free(c);
	free(acks);
}

#define SLOT_RACES 10000

struct slot_racer {
	struct t *t;
	int id;
	int *arrived;
	__u8 *won;
	int err;
};

static void *slot_racer_main(void *arg)
{
	struct slot_racer *s = arg;
	struct dp_run *r = malloc(sizeof(*r));
	int i;

	pin_to(s->id);
	for (i = 0; i < SLOT_RACES; i++) {
		struct pkt_spec seg;
		struct conn c;

		race_conn(s->id, 0, i, &c);
		if (r && !s->err)
			s->err = race_open(s->t, &c, r);
		lockstep(s->arrived, 2 * (3 * i + 1));
		cli_seg(&c, PKT_ACK, 0, &seg);
		s->won[i] = r && !s->err && run_spec(s->t, 1, &seg, r, &s->err) == XDP_PASS;
		lockstep(s->arrived, 2 * (3 * i + 2));
		/* The winner's connection ends before the next race starts. */
		if (s->won[i]) {
			srv_seg(&c, PKT_RST | PKT_ACK, 0, &seg);
			run_spec(s->t, 0, &seg, r, &s->err);
		}
		lockstep(s->arrived, 2 * (3 * i + 3));
	}
	if (!r)
		s->err = -ENOMEM;
	free(r);
	return NULL;
}

/*
 * Two CPUs race handshake ACKs, in lockstep, for the one free slot of a
 * limit of 1, thousands of times: every race has exactly one winner. A
 * check and an increment that were two steps would let both in.
 */
static void concurrent_handshakes_for_the_last_slot_admit_exactly_one(void **state)
{
	struct t *t = *state;
	struct slot_racer s[2];
	pthread_t tid[2];
	int arrived = 0, both = 0, none = 0, i;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	for (i = 0; i < 2; i++) {
		s[i] = (struct slot_racer){
			.t = t, .id = i, .arrived = &arrived, .won = calloc(SLOT_RACES, 1)};
		assert_non_null(s[i].won);
	}
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, slot_racer_main, &s[i]), 0);
	for (i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	for (i = 0; i < SLOT_RACES; i++) {
		both += s[0].won[i] && s[1].won[i];
		none += !s[0].won[i] && !s[1].won[i];
	}
	free(s[0].won);
	free(s[1].won);
	assert_int_equal(s[0].err, 0);
	assert_int_equal(s[1].err, 0);
	if (both || none)
		fail_because("%d of %d races admitted both handshakes, %d admitted neither", both,
			     SLOT_RACES, none);
	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, SLOT_RACES);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, SLOT_RACES);
}

/* ---- one handshake, completed twice at once ------------------------------------ */

#define DUP_RACES 50000

struct dup_racer {
	struct t *t;
	int id;
	int *arrived;
	int err;
};

static void *dup_racer_main(void *arg)
{
	struct dup_racer *d = arg;
	struct dp_run *r = malloc(sizeof(*r));
	int i;

	pin_to(d->id);
	for (i = 0; i < DUP_RACES; i++) {
		struct pkt_spec ack;
		struct conn c;

		race_conn(0, 0, i, &c);
		if (d->id == 0 && r && !d->err)
			d->err = race_open(d->t, &c, r);
		lockstep(d->arrived, 2 * (2 * i + 1));
		cli_seg(&c, PKT_ACK, 0, &ack);
		/* Passed, or dropped while the other CPU decides it (the client sends again). */
		if (r && !d->err) {
			__u32 v = run_spec(d->t, 1, &ack, r, &d->err);

			if (v != XDP_PASS && v != XDP_DROP && !d->err)
				d->err = -EPROTO;
		}
		lockstep(d->arrived, 2 * (2 * i + 2));
	}
	if (!r)
		d->err = -ENOMEM;
	free(r);
	return NULL;
}

/*
 * The same ACK on two CPUs (two RX queues) at once: the handshake is
 * admitted once; the loser of the claim is dropped, never passed ahead of
 * the decision.
 */
static void concurrent_duplicate_acks_complete_a_handshake_once(void **state)
{
	struct t *t = *state;
	struct dup_racer d[2];
	struct ls_class_stats st;
	pthread_t tid[2];
	int arrived = 0, i;

	one_class_service(t, DUP_RACES + 1, LS_ACT_DROP, 0);
	for (i = 0; i < 2; i++) {
		d[i] = (struct dup_racer){.t = t, .id = i, .arrived = &arrived};
		assert_int_equal(pthread_create(&tid[i], NULL, dup_racer_main, &d[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	assert_int_equal(d[0].err, 0);
	assert_int_equal(d[1].err, 0);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.handshakes, DUP_RACES);
	assert_int_equal(st.admitted, DUP_RACES);
	assert_inflight(t, DUP_RACES, CLS_DEFAULT, DUP_RACES);
	assert_conns(t, DUP_RACES);
	assert_int_equal(flows(t), DUP_RACES);
}

/* ---- endings ----------------------------------------------------------------- */

enum ender_kind {
	END_CLIENT_RST, /* at XDP, in sequence */
	END_SERVER_FIN, /* at TC */
	END_REQUEST,	/* not an end: a request start at XDP, racing one */
};

struct ender {
	struct t *t;
	int id;
	enum ender_kind kind;
	int n;
	const struct conn *conns;
	int *arrived;
	int err;
};

static void *ender_main(void *arg)
{
	struct ender *e = arg;
	struct dp_run *r = malloc(sizeof(*r));
	int i;

	pin_to(e->id);
	for (i = 0; i < e->n; i++) {
		struct pkt_spec s;

		if (e->kind == END_SERVER_FIN)
			srv_seg(&e->conns[i], PKT_FIN | PKT_ACK, 0, &s);
		else if (e->kind == END_CLIENT_RST)
			cli_seg(&e->conns[i], PKT_RST, 0, &s);
		else
			cli_seg(&e->conns[i], PKT_PSH | PKT_ACK, 100, &s);
		lockstep(e->arrived, 2 * (i + 1));
		if (r && !e->err)
			run_spec(e->t, e->kind != END_SERVER_FIN, &s, r, &e->err);
	}
	if (!r)
		e->err = -ENOMEM;
	free(r);
	return NULL;
}

/* Opens n connections, has two threads send a and b on each at once. */
static void race_pairs(struct t *t, enum ender_kind a, enum ender_kind b, int n)
{
	struct conn *c = calloc(n, sizeof(*c));
	struct ender e[2];
	pthread_t tid[2];
	int arrived = 0, i;

	assert_non_null(c);
	for (i = 0; i < n; i++) {
		race_conn(0, 0, i, &c[i]);
		connect_ok(t, &c[i]);
	}
	assert_conns(t, n);
	for (i = 0; i < 2; i++) {
		e[i] = (struct ender){.t = t,
				      .id = i,
				      .kind = i ? b : a,
				      .n = n,
				      .conns = c,
				      .arrived = &arrived};
		assert_int_equal(pthread_create(&tid[i], NULL, ender_main, &e[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	free(c);
	assert_int_equal(e[0].err, 0);
	assert_int_equal(e[1].err, 0);
}

#define ENDINGS 3000

/* The server's FIN seen twice at once (a retransmission on another CPU). */
static void concurrent_server_fins_end_each_flow_once(void **state)
{
	struct t *t = *state;

	one_class_service(t, ENDINGS, LS_ACT_DROP, 0);
	race_pairs(t, END_SERVER_FIN, END_SERVER_FIN, ENDINGS);
	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, ENDINGS);
}

/* The client's RST at XDP and the server's FIN at TC, at once on two CPUs. */
static void concurrent_client_rst_and_server_fin_end_each_flow_once(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;

	one_class_service(t, ENDINGS, LS_ACT_DROP, 0);
	race_pairs(t, END_CLIENT_RST, END_SERVER_FIN, ENDINGS);
	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.ended_fin + st.ended_rst, ENDINGS);
}

/*
 * admit = requests: a request starts (its slot taken, then recorded in the
 * flow) while the server's FIN ends the flow. Whichever wins, the
 * request's slot is given back once: nothing stays in flight.
 */
static void concurrent_request_starts_and_flow_ends_release_each_slot_once(void **state)
{
	struct t *t = *state;

	request_service(t, ENDINGS + 1, LS_REQ_DEFER, 0);
	race_pairs(t, END_REQUEST, END_SERVER_FIN, ENDINGS);
	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, ENDINGS);
}

/* ---- the sweep against the dataplane ----------------------------------------------- */

#define SWEEP_ROUNDS 60
#define SWEEP_FLOWS  200

struct sweeper {
	struct t *t;
	int id;
	int responder; /* 0: sweeps; 1: answers or closes each connection */
	int close;     /* the responder sends FINs, not responses */
	const struct conn *conns;
	pthread_barrier_t *go;
	__u64 idle_ns, stall_ns;
	__u64 ended, stalled;
	int err;
};

static void *sweeper_main(void *arg)
{
	struct sweeper *w = arg;
	struct dp_run *r = malloc(sizeof(*r));
	int i;

	pin_to(w->id);
	pthread_barrier_wait(w->go);
	if (!w->responder) {
		struct ls_tick k;

		memset(&k, 0, sizeof(k));
		k.sweep = 1;
		k.idle_timeout_ns = w->idle_ns;
		k.stall_timeout_ns = w->stall_ns;
		k.suspect_ns = 3600 * NS_PER_S;
		w->err = dp_tick(&w->t->dp, &k);
		w->ended = k.ended;
		w->stalled = k.stalled;
	} else {
		for (i = 0; i < SWEEP_FLOWS && r && !w->err; i++) {
			struct pkt_spec s;

			srv_seg(&w->conns[i], w->close ? PKT_FIN | PKT_ACK : PKT_PSH | PKT_ACK,
				w->close ? 0 : 100, &s);
			run_spec(w->t, 0, &s, r, &w->err);
		}
	}
	if (!r)
		w->err = -ENOMEM;
	free(r);
	return NULL;
}

/* One round: the sweep walks the flows while the other thread answers or closes them. */
static void sweep_round(struct t *t, const struct conn *c, int close, __u64 idle_ns, __u64 stall_ns,
			__u64 *ended, __u64 *stalled)
{
	struct sweeper w[2];
	pthread_barrier_t go;
	pthread_t tid[2];
	int i;

	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	for (i = 0; i < 2; i++) {
		w[i] = (struct sweeper){.t = t,
					.id = i,
					.responder = i,
					.close = close,
					.conns = c,
					.go = &go,
					.idle_ns = idle_ns,
					.stall_ns = stall_ns};
		assert_int_equal(pthread_create(&tid[i], NULL, sweeper_main, &w[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&go);
	assert_int_equal(w[0].err, 0);
	assert_int_equal(w[1].err, 0);
	*ended += w[0].ended;
	*stalled += w[0].stalled;
}

/* The sweep ends idle flows while the server closes them: each ends once. */
static void concurrent_sweep_and_server_fins_end_each_flow_once(void **state)
{
	struct t *t = *state;
	struct conn c[SWEEP_FLOWS];
	struct ls_class_stats st;
	__u64 ended = 0, stalled = 0;
	int rd, i;

	one_class_service(t, SWEEP_FLOWS, LS_ACT_DROP, 0);
	for (rd = 0; rd < SWEEP_ROUNDS; rd++) {
		for (i = 0; i < SWEEP_FLOWS; i++) {
			race_conn(0, rd, i, &c[i]);
			connect_ok(t, &c[i]);
		}
		/* Idle timeout 0: every flow is past it. */
		sweep_round(t, c, 1, 0, 0, &ended, &stalled);
		assert_nothing_in_flight(t);
		assert_int_equal(flows(t), 0);
	}
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.ended_idle, ended);
	assert_int_equal(st.ended_idle + st.ended_fin, SWEEP_ROUNDS * SWEEP_FLOWS);
}

/*
 * admit = requests: the sweep releases stalled requests while the server
 * answers them. Each request's slot goes back once, by a stall or by its
 * answer (which then records a sample).
 */
static void concurrent_stall_release_and_responses_release_each_request_once(void **state)
{
	struct t *t = *state;
	struct conn c[SWEEP_FLOWS];
	struct ls_latency_hist h;
	__u64 ended = 0, stalled = 0;
	int rd, i;

	request_service(t, SWEEP_FLOWS, LS_REQ_DEFER, 0);
	for (rd = 0; rd < SWEEP_ROUNDS; rd++) {
		for (i = 0; i < SWEEP_FLOWS; i++) {
			race_conn(0, rd, i, &c[i]);
			connect_ok(t, &c[i]);
			assert_int_equal(request(t, &c[i], 10, NULL), XDP_PASS);
		}
		assert_inflight(t, SWEEP_FLOWS, CLS_DEFAULT, SWEEP_FLOWS);
		sleep_ns(NS_PER_MS);
		/* Stall timeout 1 ns: every request is past it. */
		sweep_round(t, c, 0, 3600 * NS_PER_S, 1, &ended, &stalled);
		assert_inflight(t, 0, CLS_DEFAULT, 0);
		for (i = 0; i < SWEEP_FLOWS; i++)
			srv_send(t, &c[i], PKT_RST | PKT_ACK, 0);
		assert_nothing_in_flight(t);
	}
	assert_int_equal(ended, 0);
	assert_int_equal(dp_latency(&t->dp, SVC, CLS_DEFAULT, &h), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).stalled, stalled);
	assert_int_equal(stalled + h.count, SWEEP_ROUNDS * SWEEP_FLOWS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(concurrent_handshakes_admit_exactly_the_limit),
		TEST(concurrent_handshakes_for_the_last_slot_admit_exactly_one),
		TEST(concurrent_duplicate_acks_complete_a_handshake_once),
		TEST(concurrent_server_fins_end_each_flow_once),
		TEST(concurrent_client_rst_and_server_fin_end_each_flow_once),
		TEST(concurrent_request_starts_and_flow_ends_release_each_slot_once),
		TEST(concurrent_sweep_and_server_fins_end_each_flow_once),
		TEST(concurrent_stall_release_and_responses_release_each_request_once),
	};

	return DP_TESTS_MAIN(tests);
}
