/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The skeleton of a thread-pool HTTP/1.1 server that queues under overload,
 * as ls-server and ls-cascade-a are built: one acceptor thread puts every
 * accepted connection into an unbounded FIFO; W worker threads take them
 * from it and serve their requests through the tool's handler. A keep-alive
 * connection with nothing more to read is parked in the acceptor's epoll set
 * until its next request arrives, so an idle connection holds no worker.
 *
 * A tool fills in the configuration part of a struct srv (its listeners, W,
 * the handler), then srv_init(), srv_start(); to stop, srv_stop() (which
 * wakes every thread) and srv_join(). One struct srv per process.
 */
#ifndef LS_TOOLS_SRV_H
#define LS_TOOLS_SRV_H

#include "http.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SRV_MAX_LISTEN 16

/*
 * The answer to one request: writes a NUL-terminated body of at most len
 * bytes and returns the status. seed is the worker's own, for rand_r().
 */
typedef int (*srv_handle_fn)(const struct http_req *req, char *body, size_t len,
			     unsigned int *seed);

struct srv {
	/* Set by the tool before srv_start(). */
	const char *name;	       /* "ls-server", for messages */
	int listen_fd[SRV_MAX_LISTEN]; /* non-blocking listeners */
	int nlisten;
	unsigned int workers;
	uint64_t idle_ms;   /* drop a request head still incomplete after this */
	bool refuse_bodies; /* 400 for a request with a body (else read and dropped) */
	srv_handle_fn handle;

	/* The server's own. */
	atomic_bool stopping;
	int stop_efd; /* readable once stopping: for the tool's own poll loops */
	int epfd;     /* the acceptor's: listeners and parked connections */
	pthread_t acceptor, *threads;
	unsigned int started; /* worker threads running */
	bool acceptor_started;
	struct {
		pthread_mutex_t lock;
		pthread_cond_t cond;
		struct list_head head;
		uint64_t len, max_len;
	} queue;
	struct {
		_Atomic uint64_t accepted;
		_Atomic uint64_t requests; /* answered */
		_Atomic uint64_t busy;	   /* workers serving a connection */
		_Atomic uint64_t open_conns;
		_Atomic uint64_t max_open;
		_Atomic uint64_t accept_errors; /* out of descriptors or memory */
	} stats;
};

/*
 * What every server does first, before any thread: RLIMIT_NOFILE raised,
 * SIGPIPE ignored, and SIGTERM, SIGINT, SIGHUP and the extra signals (a list
 * ending with 0) blocked in every thread and put in set, for sigwaitinfo().
 */
void srv_signals(sigset_t *set, ...);

/* The queue, the stop eventfd and the acceptor's epoll set. 0 or -errno, said on stderr. */
int srv_init(struct srv *s);
/* The workers and the acceptor. 0 or -errno, said on stderr. */
int srv_start(struct srv *s);
/* Marks the server stopping and wakes the acceptor and the idle workers. */
void srv_stop(struct srv *s);
/* Waits for the threads, closes the connections still queued; returns their count. */
uint64_t srv_join(struct srv *s);

static inline bool srv_stopping(struct srv *s)
{
	return atomic_load(&s->stopping);
}

/*
 * Waits for events on fd until deadline (now_ns() clock), in slices so that a
 * stop is noticed. 0, -ETIMEDOUT, or -ECANCELED when stopping.
 */
int srv_wait(struct srv *s, int fd, short events, uint64_t deadline);

/* Accepts every pending connection of lfd, counted; calls take(s, fd) for each. */
void srv_accept_all(struct srv *s, int lfd, void (*take)(struct srv *s, int fd));
/* Closes an accepted connection, counted. */
void srv_conn_close(struct srv *s, int fd);
/* The queue's length now and at most so far. */
void srv_queue_len(struct srv *s, uint64_t *len, uint64_t *max_len);

#endif
