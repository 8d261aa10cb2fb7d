// SPDX-License-Identifier: GPL-2.0
/*
 * ls-cascade-a: the middle tier of a cascading failure. An HTTP/1.1 server
 * built on lib/srv.c as ls-server is (one acceptor, an unbounded FIFO, W
 * worker threads) with two kinds of request:
 *
 *   GET /local    answered "ok" after the server's own work (--local-ms)
 *   GET /remote   the worker calls the upstream B (one HTTP GET) and answers
 *                 "ok" when B answered 200, else at once "error ENAME" (503)
 *
 * A remote call blocks its worker until B answers, fails, or the per-call
 * timeout passes: when B slows down, the workers pile up on it and the local
 * requests, which never touch B, wait behind them. That is the cascade; a
 * per-call timeout or a circuit breaker on this host is what stops it.
 *
 * Calls to B go over a pool of N keep-alive connections (--pool N, opened on
 * demand; a worker waits for a free one within its timeout) or over a new
 * connection per call (--per-call). Any failure — connect refused, a send
 * refused or reset, an early close, a status other than 200, the timeout —
 * closes the connection and answers "error" with the errno name.
 */
#define _GNU_SOURCE
#include "http.h"
#include "net.h"
#include "opts.h"
#include "srv.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS	4096
#define MAX_POOL	4096
#define MAX_LOCAL_MS	60000.0
#define MAX_TIMEOUT_MS	600000
#define ANSWER_HEAD_MAX 8192
#define ANSWER_BODY_MAX (1U << 20)
#define IDLE_TIMEOUT_MS 60000

static struct {
	struct sockaddr_storage listen, upstream;
	socklen_t listen_len, upstream_len;
	unsigned int workers;
	double local_ms;
	unsigned int timeout_ms;
	unsigned int pool;
	bool per_call;
	bool pool_seen;
	const char *path;
	unsigned int backlog;
} opt = {
	.workers = 16,
	.local_ms = 5,
	.timeout_ms = 10000,
	.pool = 8,
	.path = "/",
	.backlog = 4096,
};

static int handle(const struct http_req *req, char *body, size_t blen, unsigned int *seed);

/* A's own clients: W workers behind an unbounded accept queue, as ls-server. */
static struct srv srv = {
	.name = "ls-cascade-a",
	.idle_ms = IDLE_TIMEOUT_MS,
	.refuse_bodies = true, /* nothing here takes one */
	.handle = handle,
};

/* What the remote calls came to; printed on exit. */
enum call_result {
	CALL_OK,
	CALL_REFUSED, /* ECONNREFUSED at connect */
	CALL_RESET,   /* ECONNRESET, EPIPE, or B closed before a full answer */
	CALL_TIMEOUT, /* the per-call timeout passed */
	CALL_STATUS,  /* B answered, but not 200 */
	CALL_DENIED,  /* EPERM or EACCES: refused on this host (a BPF hook) */
	CALL_OTHER,
	CALL_NR,
};

static const char *const call_name[CALL_NR] = {
	"ok", "refused", "reset", "timeout", "bad_status", "denied", "other",
};

/* A's own counters; the requests are the server's (srv.stats). */
static struct {
	_Atomic uint64_t local;
	_Atomic uint64_t remote[CALL_NR];
	_Atomic uint64_t connects;
} stats;

/* ---- calls to B ---- */

/* Milliseconds left until deadline (ns), at least 0. */
static int ms_left(uint64_t deadline)
{
	uint64_t now = now_ns();

	return now >= deadline ? 0 : (int)((deadline - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
}

/* A new connection to B, established before deadline. The fd or -errno. */
static int upstream_connect(uint64_t deadline)
{
	int fd, err;
	socklen_t elen = sizeof(err);

	fd = socket(opt.upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	atomic_fetch_add(&stats.connects, 1);
	if (connect(fd, (struct sockaddr *)&opt.upstream, opt.upstream_len) &&
	    errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	err = srv_wait(&srv, fd, POLLOUT, deadline);
	if (!err && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen))
		err = errno;
	if (err) {
		close(fd);
		return err < 0 ? err : -err;
	}
	return fd;
}

/* Receives into buf[*len..cap) before deadline. 0, -ECONNRESET on EOF, or -errno. */
static int recv_some(int fd, char *buf, size_t *len, size_t cap, uint64_t deadline)
{
	for (;;) {
		ssize_t n = recv(fd, buf + *len, cap - *len, MSG_DONTWAIT);
		int err;

		if (n > 0) {
			*len += n;
			return 0;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		err = srv_wait(&srv, fd, POLLIN, deadline);
		if (err)
			return err;
	}
}

/*
 * One GET to B on fd, its answer read in full. Sets *reusable when B keeps
 * the connection open. 0 for a 200, -EBADMSG for another status or a
 * malformed answer, else -errno.
 */
static int upstream_get(int fd, bool keep, uint64_t deadline, bool *reusable)
{
	char req[600], buf[ANSWER_HEAD_MAX];
	size_t len = 0, body, have;
	const char *end, *p;
	int n, err, status;
	bool close_hdr = false;

	*reusable = false;
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: upstream\r\nConnection: %s\r\n\r\n", opt.path,
		     keep ? "keep-alive" : "close");
	err = write_all(fd, req, n, ms_left(deadline));
	if (err)
		return err;
	while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
		if (len == sizeof(buf))
			return -EBADMSG;
		err = recv_some(fd, buf, &len, sizeof(buf), deadline);
		if (err)
			return err;
	}
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) || buf[8] != ' ')
		return -EBADMSG;
	status = atoi(buf + 9);
	body = 0;
	for (p = memmem(buf, end - buf, "\r\n", 2); p && p < end;
	     p = memmem(p, end - p, "\r\n", 2)) {
		p += 2;
		if (!strncasecmp(p, "content-length:", 15)) {
			uint64_t v;
			char num[24];
			const char *v0 = p + 15, *eol = memmem(p, end + 2 - p, "\r\n", 2);
			size_t vl;

			while (v0 < eol && (*v0 == ' ' || *v0 == '\t'))
				v0++;
			vl = eol - v0;
			if (vl >= sizeof(num))
				return -EBADMSG;
			memcpy(num, v0, vl);
			num[vl] = '\0';
			if (parse_u64(num, 0, ANSWER_BODY_MAX, &v))
				return -EBADMSG;
			body = v;
		} else if (!strncasecmp(p, "connection:", 11)) {
			const char *eol = memmem(p, end + 2 - p, "\r\n", 2);

			close_hdr = memmem(p, eol - p, "close", 5) != NULL;
		}
	}
	/* Read and drop the body. */
	have = len - (end + 4 - buf);
	while (have < body) {
		len = 0;
		err = recv_some(fd, buf, &len, sizeof(buf), deadline);
		if (err)
			return err;
		have += len;
	}
	if (status != 200)
		return -EBADMSG;
	/* Bytes past the body would belong to no request: do not reuse. */
	*reusable = keep && !close_hdr && have == body;
	return 0;
}

/* The pool of keep-alive connections to B: a slot is free or in one worker's hands. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int *fd; /* -1: not connected */
	bool *busy;
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

/* A free slot taken before deadline: its index, or -ETIMEDOUT. */
static int pool_take(uint64_t deadline)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / NSEC_PER_SEC),
		.tv_nsec = (long)(deadline % NSEC_PER_SEC),
	};
	int slot = -ETIMEDOUT;

	pthread_mutex_lock(&pool.lock);
	for (;;) {
		for (unsigned int i = 0; i < opt.pool; i++) {
			if (!pool.busy[i]) {
				pool.busy[i] = true;
				slot = (int)i;
				goto out;
			}
		}
		if (srv_stopping(&srv) ||
		    pthread_cond_timedwait(&pool.cond, &pool.lock, &ts) == ETIMEDOUT)
			break;
	}
out:
	pthread_mutex_unlock(&pool.lock);
	return slot;
}

static void pool_give(int slot)
{
	pthread_mutex_lock(&pool.lock);
	pool.busy[slot] = false;
	pthread_cond_signal(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
}

static enum call_result result_of(int err)
{
	switch (-err) {
	case 0:
		return CALL_OK;
	case ECONNREFUSED:
		return CALL_REFUSED;
	case ECONNRESET:
	case EPIPE:
	case ECONNABORTED:
		return CALL_RESET;
	case ETIMEDOUT:
		return CALL_TIMEOUT;
	case EBADMSG:
		return CALL_STATUS;
	case EPERM:
	case EACCES:
		return CALL_DENIED;
	default:
		return CALL_OTHER;
	}
}

/* One call to B within the per-call timeout. 0 or -errno. */
static int upstream_call(void)
{
	uint64_t deadline = now_ns() + (uint64_t)opt.timeout_ms * NSEC_PER_MSEC;
	bool reusable;
	int fd, slot, err;

	if (opt.per_call) {
		fd = upstream_connect(deadline);
		if (fd < 0)
			return fd;
		err = upstream_get(fd, false, deadline, &reusable);
		close(fd);
		return err;
	}
	slot = pool_take(deadline);
	if (slot < 0)
		return slot;
	/* pool.fd[slot] is this worker's alone while the slot is busy. */
	if (pool.fd[slot] < 0) {
		fd = upstream_connect(deadline);
		if (fd < 0) {
			pool_give(slot);
			return fd;
		}
		pool.fd[slot] = fd;
	}
	err = upstream_get(pool.fd[slot], true, deadline, &reusable);
	if (err || !reusable) {
		/* A late answer would be read as the next call's: never reuse. */
		close(pool.fd[slot]);
		pool.fd[slot] = -1;
	}
	pool_give(slot);
	return err;
}

/* ---- serving A's own clients ---- */

/* The answer to one request: its status and body. */
static int handle(const struct http_req *req, char *body, size_t blen, unsigned int *seed)
{
	const char *target = req->target;
	char name[32];
	int err;

	(void)seed;
	if (!strcmp(target, "/local")) {
		atomic_fetch_add(&stats.local, 1);
		sleep_ns((uint64_t)llround(opt.local_ms * 1e6));
		snprintf(body, blen, "ok\n");
		return 200;
	}
	if (!strcmp(target, "/remote")) {
		err = upstream_call();
		atomic_fetch_add(&stats.remote[result_of(err)], 1);
		if (!err) {
			snprintf(body, blen, "ok\n");
			return 200;
		}
		snprintf(body, blen, "error %s\n",
			 err == -EBADMSG ? "BAD_STATUS" : errno_name(-err, name, sizeof(name)));
		return 503;
	}
	snprintf(body, blen, "not found\n");
	return 404;
}

/* ---- options and main ---- */

static int parse_addr_opt(const char *value, void *dest)
{
	struct sockaddr_storage *ss = dest;
	socklen_t *len = ss == &opt.listen ? &opt.listen_len : &opt.upstream_len;

	return addr_parse(value, ss, len);
}

static int parse_path(const char *value, void *dest)
{
	(void)dest;
	if (value[0] != '/' || strlen(value) > 256 || strpbrk(value, " \r\n\t"))
		return -EINVAL;
	opt.path = value;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	/* clang-format off */
	static const struct opt opts[] = {
		{.name = "listen", .short_name = 'l', .arg = "ADDR:PORT", .flags = OPT_REQUIRED,
		 .type = OPT_CALL, .parse = parse_addr_opt, .dest = &opt.listen,
		 .help = "IPv4 ADDR:PORT or [IPv6]:PORT (port 0 picks one,\n"
			 "shown on the listening line)"},
		{.name = "upstream", .short_name = 'u', .arg = "ADDR:PORT", .flags = OPT_REQUIRED,
		 .type = OPT_CALL, .parse = parse_addr_opt, .dest = &opt.upstream,
		 .help = "B, called by every /remote request"},
		{.name = "workers", .short_name = 'w', .arg = "W",
		 .type = OPT_UINT, .dest = &opt.workers, .min = 1, .max = MAX_WORKERS,
		 .help = "worker threads (default 16)"},
		{.name = "local-ms", .short_name = 's', .arg = "S",
		 .type = OPT_DOUBLE, .dest = &opt.local_ms, .dmin = 0, .dmax = MAX_LOCAL_MS,
		 .help = "work of a /local request in ms (default 5)"},
		{.name = "timeout-ms", .short_name = 't', .arg = "T",
		 .type = OPT_UINT, .dest = &opt.timeout_ms, .min = 1, .max = MAX_TIMEOUT_MS,
		 .help = "per-call timeout to B, waiting for a pooled connection\n"
			 "included (default 10000)"},
		{.name = "pool", .short_name = 'p', .arg = "N", .seen = &opt.pool_seen,
		 .type = OPT_UINT, .dest = &opt.pool, .min = 1, .max = MAX_POOL,
		 .help = "call B over at most N keep-alive connections, opened\n"
			 "on demand (the default, N = 8)"},
		{.name = "per-call",
		 .type = OPT_FLAG, .dest = &opt.per_call,
		 .help = "call B over a new connection each time"},
		{.name = "path", .arg = "PATH",
		 .type = OPT_CALL, .parse = parse_path,
		 .help = "the target of the GET to B (default /)"},
		{.name = "backlog", .arg = "N",
		 .type = OPT_UINT, .dest = &opt.backlog, .min = 1, .max = 1 << 20,
		 .help = "listen backlog (default 4096)"},
		{},
	};
	static const struct opt_tool tool = {
		.name = "ls-cascade-a",
		.synopsis = "--listen ADDR:PORT --upstream ADDR:PORT [options]",
		.about = "HTTP/1.1 test server in front of an upstream B: GET /local is\n"
			 "answered after S ms, GET /remote after a call to B (200 \"ok\", or\n"
			 "503 \"error ENAME\" at once when the call fails or times out).",
		.epilog = "W workers behind an unbounded accept queue, as ls-server: a worker\n"
			  "blocks on B for the whole call. Prints 'listening ADDR:PORT\n"
			  "upstream=ADDR:PORT workers=W local_ms=S timeout_ms=T pool=N|per-call'\n"
			  "when ready. SIGTERM/SIGINT stop it; it prints 'stats requests=N\n"
			  "local=N remote_ok=N remote_refused=N remote_reset=N remote_timeout=N\n"
			  "remote_bad_status=N remote_denied=N remote_other=N connects=N' and\n"
			  "exits 0.\n",
		.opts = opts,
	};
	/* clang-format on */

	if (opts_parse(&tool, argc, argv))
		return -EINVAL;
	if (opt.per_call && opt.pool_seen) {
		fprintf(stderr, "ls-cascade-a: --pool and --per-call exclude each other\n");
		return -EINVAL;
	}
	return 0;
}

static void print_stats(void)
{
	printf("stats requests=%llu local=%llu",
	       (unsigned long long)atomic_load(&srv.stats.requests),
	       (unsigned long long)atomic_load(&stats.local));
	for (int i = 0; i < CALL_NR; i++)
		printf(" remote_%s=%llu", call_name[i],
		       (unsigned long long)atomic_load(&stats.remote[i]));
	printf(" connects=%llu\n", (unsigned long long)atomic_load(&stats.connects));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char laddr[ADDR_STRLEN], uaddr[ADDR_STRLEN];
	pthread_condattr_t cattr;
	sigset_t set;
	int sig;

	if (parse_args(argc, argv))
		return EXIT_USAGE;

	srv_signals(&set, 0);
	/* The pool's waits run on the monotonic clock, as every deadline here. */
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.cond, &cattr);
	pool.fd = malloc(opt.pool * sizeof(*pool.fd));
	pool.busy = calloc(opt.pool, sizeof(*pool.busy));
	if (!pool.fd || !pool.busy) {
		perror("ls-cascade-a: setup");
		return EXIT_RUNTIME;
	}
	for (unsigned int i = 0; i < opt.pool; i++)
		pool.fd[i] = -1;
	if (srv_init(&srv))
		return EXIT_RUNTIME;

	srv.listen_fd[0] = tcp_listen((struct sockaddr *)&opt.listen, opt.listen_len, opt.backlog);
	if (srv.listen_fd[0] < 0) {
		fprintf(stderr, "ls-cascade-a: listen on %s: %s\n",
			addr_format((struct sockaddr *)&opt.listen, laddr, sizeof(laddr)),
			strerror(-srv.listen_fd[0]));
		return EXIT_RUNTIME;
	}
	srv.nlisten = 1;
	srv.workers = opt.workers;
	if (srv_start(&srv))
		return EXIT_RUNTIME;

	printf("listening %s upstream=%s workers=%u local_ms=%.3f timeout_ms=%u ",
	       sock_local_str(srv.listen_fd[0], laddr, sizeof(laddr)),
	       addr_format((struct sockaddr *)&opt.upstream, uaddr, sizeof(uaddr)), opt.workers,
	       opt.local_ms, opt.timeout_ms);
	if (opt.per_call)
		printf("pool=per-call\n");
	else
		printf("pool=%u\n", opt.pool);
	fflush(stdout);

	do
		sig = sigwaitinfo(&set, NULL);
	while (sig < 0 && errno == EINTR);

	srv_stop(&srv);
	pthread_mutex_lock(&pool.lock);
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);

	/* Workers notice the stop within a poll slice of their current call. */
	srv_join(&srv);
	for (unsigned int i = 0; i < opt.pool; i++)
		if (pool.fd[i] >= 0)
			close(pool.fd[i]);
	print_stats();
	free(pool.fd);
	free(pool.busy);
	return EXIT_OK;
}
