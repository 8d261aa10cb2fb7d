// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "srv.h"
#include "net.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define REQ_BUF	      8192
#define BODY_BUF      1024
#define POLL_SLICE_MS 200
/* How long a request's body may take to arrive, between two reads. */
#define BODY_WAIT_MS 5000
#define MAX_EVENTS   256
#define ACCEPT_BATCH 1024
#define STACK_SIZE   (256 * 1024)

/* What the acceptor's epoll set holds besides parked connections (their fd). */
#define TAG_LISTEN (1ULL << 62)
#define TAG_STOP   (1ULL << 61)

/* A connection waiting in the queue for a worker. */
struct queued_conn {
	struct list_head node;
	int fd;
};

/* A worker thread's argument: the server and a seed of its own. */
struct worker_arg {
	struct srv *s;
	unsigned int seed;
};

void srv_signals(sigset_t *set, ...)
{
	va_list ap;
	int sig;

	raise_nofile(1 << 20);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	va_start(ap, set);
	while ((sig = va_arg(ap, int)))
		sigaddset(set, sig);
	va_end(ap);
	/* Every thread inherits the mask; only the main thread takes signals. */
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

int srv_wait(struct srv *s, int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		uint64_t now = now_ns();
		int left;

		if (srv_stopping(s))
			return -ECANCELED;
		if (now >= deadline)
			return -ETIMEDOUT;
		left = (int)((deadline - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
		if (poll(&pfd, 1, left < POLL_SLICE_MS ? left : POLL_SLICE_MS) > 0)
			return 0;
	}
}

void srv_conn_close(struct srv *s, int fd)
{
	close(fd);
	atomic_fetch_sub(&s->stats.open_conns, 1);
}

void srv_queue_len(struct srv *s, uint64_t *len, uint64_t *max_len)
{
	pthread_mutex_lock(&s->queue.lock);
	*len = s->queue.len;
	*max_len = s->queue.max_len;
	pthread_mutex_unlock(&s->queue.lock);
}

static void enqueue(struct srv *s, int fd)
{
	struct queued_conn *qc = malloc(sizeof(*qc));

	if (!qc) {
		srv_conn_close(s, fd);
		return;
	}
	qc->fd = fd;
	pthread_mutex_lock(&s->queue.lock);
	list_add_tail(&qc->node, &s->queue.head);
	if (++s->queue.len > s->queue.max_len)
		s->queue.max_len = s->queue.len;
	pthread_cond_signal(&s->queue.cond);
	pthread_mutex_unlock(&s->queue.lock);
}

/* An idle keep-alive connection waits in the acceptor's epoll set, not in a worker. */
static void park(struct srv *s, int fd)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT,
		.data.u64 = (uint64_t)fd,
	};

	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev))
		srv_conn_close(s, fd);
}

static void bump_max(_Atomic uint64_t *max, uint64_t v)
{
	uint64_t cur = atomic_load(max);

	while (v > cur && !atomic_compare_exchange_weak(max, &cur, v))
		;
}

void srv_accept_all(struct srv *s, int lfd, void (*take)(struct srv *s, int fd))
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				atomic_fetch_add(&s->stats.accept_errors, 1);
				/* Let workers free descriptors before trying again. */
				sleep_ns(10 * NSEC_PER_MSEC);
			}
			return;
		}
		atomic_fetch_add(&s->stats.accepted, 1);
		bump_max(&s->stats.max_open, atomic_fetch_add(&s->stats.open_conns, 1) + 1);
		take(s, fd);
	}
}

static void *acceptor_main(void *arg)
{
	struct epoll_event ev, events[MAX_EVENTS];
	struct srv *s = arg;

	for (int i = 0; i < s->nlisten; i++) {
		ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = TAG_LISTEN | i};
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd[i], &ev);
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = TAG_STOP};
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stop_efd, &ev);

	while (!srv_stopping(s)) {
		int n = epoll_wait(s->epfd, events, MAX_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			uint64_t tag = events[i].data.u64;

			if (tag == TAG_STOP)
				continue;
			if (tag & TAG_LISTEN) {
				srv_accept_all(s, s->listen_fd[tag & 0xffff], enqueue);
				continue;
			}
			/* A parked connection has its next request (or its end). */
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, (int)tag, NULL);
			enqueue(s, (int)tag);
		}
	}
	return NULL;
}

/*
 * Reads and drops the rest of a body of skip bytes past buf[0..*len). 0, or
 * -1 when the connection ended or stalled.
 */
static int drop_body(struct srv *s, int fd, char *buf, size_t cap, size_t *len, uint64_t skip)
{
	while (skip > *len) {
		ssize_t n;

		skip -= *len;
		*len = 0;
		if (srv_wait(s, fd, POLLIN, now_ns() + BODY_WAIT_MS * NSEC_PER_MSEC))
			return -1;
		n = recv(fd, buf, cap, MSG_DONTWAIT);
		if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
			return -1;
		if (n > 0)
			*len = n;
	}
	memmove(buf, buf + skip, *len - skip);
	*len -= skip;
	return 0;
}

/*
 * Serves the requests of one connection that are already on their way, then
 * parks it (keep-alive, nothing more to read) or closes it.
 */
static void serve_conn(struct srv *s, int fd, unsigned int *seed)
{
	char buf[REQ_BUF], body[BODY_BUF];
	size_t len = 0;

	for (;;) {
		const char *end = memmem(buf, len, "\r\n\r\n", 4);
		struct http_req r;
		ssize_t n;
		int status;

		if (!end) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};

			/* Nothing to serve yet: wait without holding a worker. */
			if (!len && poll(&pfd, 1, 0) == 0) {
				park(s, fd);
				return;
			}
			if (len == sizeof(buf)) {
				http_send_response(fd, 431, "request head too large\n", false);
				break;
			}
			if (srv_wait(s, fd, POLLIN, now_ns() + s->idle_ms * NSEC_PER_MSEC))
				break;
			n = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0)
				break;
			len += n;
			continue;
		}
		if (http_parse_request(buf, end + 4 - buf, &r) ||
		    (s->refuse_bodies && (r.content_length || r.transfer_encoding))) {
			http_send_response(fd, 400, "bad request\n", false);
			break;
		}
		/* Drop the head and any body (read and discarded). */
		if (drop_body(s, fd, buf, sizeof(buf), &len, r.head_len + r.content_length))
			break;
		status = s->handle(&r, body, sizeof(body), seed);
		atomic_fetch_add(&s->stats.requests, 1);
		if (http_send_response(fd, status, body, r.keep_alive) || !r.keep_alive)
			break;
		if (!len) {
			park(s, fd);
			return;
		}
	}
	srv_conn_close(s, fd);
}

static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	struct srv *s = wa->s;

	for (;;) {
		struct queued_conn *qc;
		int fd;

		pthread_mutex_lock(&s->queue.lock);
		while (list_empty(&s->queue.head) && !srv_stopping(s))
			pthread_cond_wait(&s->queue.cond, &s->queue.lock);
		if (srv_stopping(s)) {
			pthread_mutex_unlock(&s->queue.lock);
			break;
		}
		qc = list_first_entry(&s->queue.head, struct queued_conn, node);
		list_del(&qc->node);
		s->queue.len--;
		pthread_mutex_unlock(&s->queue.lock);

		fd = qc->fd;
		free(qc);
		atomic_fetch_add(&s->stats.busy, 1);
		serve_conn(s, fd, &wa->seed);
		atomic_fetch_sub(&s->stats.busy, 1);
	}
	free(wa);
	return NULL;
}

int srv_init(struct srv *s)
{
	int err;

	pthread_mutex_init(&s->queue.lock, NULL);
	pthread_cond_init(&s->queue.cond, NULL);
	list_init(&s->queue.head);
	s->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->stop_efd < 0 || s->epfd < 0) {
		err = -errno;
		fprintf(stderr, "%s: setup: %s\n", s->name, strerror(-err));
		return err;
	}
	return 0;
}

int srv_start(struct srv *s)
{
	pthread_attr_t attr;
	int err = 0;

	s->threads = calloc(s->workers, sizeof(*s->threads));
	if (!s->threads) {
		fprintf(stderr, "%s: workers: %s\n", s->name, strerror(ENOMEM));
		return -ENOMEM;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, STACK_SIZE);
	for (; s->started < s->workers; s->started++) {
		struct worker_arg *wa = malloc(sizeof(*wa));

		if (!wa) {
			err = ENOMEM;
			break;
		}
		wa->s = s;
		wa->seed = (s->started + 1) * 2654435761U;
		err = pthread_create(&s->threads[s->started], &attr, worker_main, wa);
		if (err) {
			free(wa);
			break;
		}
	}
	if (err) {
		fprintf(stderr, "%s: worker: %s\n", s->name, strerror(err));
	} else {
		err = pthread_create(&s->acceptor, &attr, acceptor_main, s);
		if (err)
			fprintf(stderr, "%s: acceptor: %s\n", s->name, strerror(err));
		s->acceptor_started = !err;
	}
	pthread_attr_destroy(&attr);
	return -err;
}

void srv_stop(struct srv *s)
{
	uint64_t one = 1;

	atomic_store(&s->stopping, true);
	if (s->stop_efd >= 0 && write(s->stop_efd, &one, sizeof(one)) < 0)
		fprintf(stderr, "%s: eventfd write: %s\n", s->name, strerror(errno));
	pthread_mutex_lock(&s->queue.lock);
	pthread_cond_broadcast(&s->queue.cond);
	pthread_mutex_unlock(&s->queue.lock);
}

uint64_t srv_join(struct srv *s)
{
	uint64_t unserved = 0;

	if (s->acceptor_started)
		pthread_join(s->acceptor, NULL);
	for (unsigned int i = 0; i < s->started; i++)
		pthread_join(s->threads[i], NULL);
	while (!list_empty(&s->queue.head)) {
		struct queued_conn *qc = list_first_entry(&s->queue.head, struct queued_conn, node);

		list_del(&qc->node);
		close(qc->fd);
		free(qc);
		unserved++;
	}
	free(s->threads);
	s->threads = NULL;
	s->started = 0;
	return unserved;
}
