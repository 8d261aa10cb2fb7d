// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Concurrency (DESIGN.md sections 3 and 4): SYNs from several CPUs at once
 * never admit past the limit (the check and the increment are one atomic
 * step), and two CPUs ending the same flow at once end it exactly once.
 * Threads pinned to different CPUs run frames through the same programs.
 * Needs root.
 */
#define _GNU_SOURCE /* CPU_SET, pthread_setaffinity_np */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include "lib/fixture.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(concurrent_syns_never_admit_past_the_limit),
		TEST(concurrent_syns_for_the_last_slot_admit_exactly_one),
		TEST(concurrent_duplicate_fins_end_each_flow_once),
		TEST(concurrent_fins_from_both_sides_end_each_flow_once),
	};

	return DP_TESTS_MAIN(tests);
}
