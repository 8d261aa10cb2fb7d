// SPDX-License-Identifier: GPL-2.0
/*
 * ls-loadgen: an open-loop HTTP load generator.
 *
 * Requests arrive as a Poisson process at a scheduled rate, whether or not
 * earlier ones were answered: a closed-loop tool slows down with the server
 * and so hides overload. Several classes run at once, each with its own
 * source address (so a shedder can classify by source prefix), target, rate
 * schedule, per-attempt deadline, connection mode and retry policy.
 *
 * One thread runs one epoll loop: non-blocking connect, one request write,
 * read of the response head and body. Latency is measured from the scheduled
 * arrival of the original request, so it includes retries and any lag of
 * this loop (no coordinated omission).
 *
 * Outcome of a request = outcome of its last attempt:
 *   ok        200 within the attempt's deadline
 *   refused   connect answered with a RST (ECONNREFUSED)
 *   reset     connection reset or closed by the peer before a full response
 *   timeout   deadline passed (a connect still pending counts: a dropped SYN)
 *   bad_status  a response other than 200
 *   overflow  no socket was opened: --max-sockets reached
 *   error     any other local error (for example EADDRNOTAVAIL)
 *   left      the client went away on purpose (end=reset or end=abandon)
 */
#define _GNU_SOURCE
#include "jsonw.h"
#include "latency.h"
#include "net.h"
#include "opts.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_CLASSES	  16
#define MAX_STEPS	  64
#define MAX_DURATION_S	  300
#define MAX_DRAIN_S	  60
#define DEFAULT_MAX_SOCKS 20000
#define MAX_RETRIES	  10
#define RESP_BUF	  2048
#define MAX_EVENTS	  512
#define ARRIVALS_PER_SPIN 20000
#define DRAIN_FIN_WAIT_NS (1 * NSEC_PER_SEC)
#define ERRNO_SLOTS	  160
#define POOL_RETRY_NS	  (100 * NSEC_PER_MSEC)

enum outcome {
	OUT_OK,
	OUT_REFUSED,
	OUT_RESET,
	OUT_TIMEOUT,
	OUT_BAD_STATUS,
	OUT_OVERFLOW,
	OUT_ERROR,
	OUT_LEFT,
	OUT_NR,
};

static const char *const outcome_name[OUT_NR] = {
	"ok", "refused", "reset", "timeout", "bad_status", "overflow", "error", "left",
};

enum conn_mode {
	MODE_CLOSE,
	MODE_KEEPALIVE,
};

/*
 * How a connection-per-request client ends its connection (mode=close):
 * as a client that waits for its answer, or as one that goes away.
 */
enum conn_end {
	END_ANSWER,    /* reads the answer (the default) */
	END_RESET,     /* sends the request, then resets the connection at once */
	END_ABANDON,   /* sends the first half of the request, then closes (FIN) */
	END_HALFCLOSE, /* sends the request, shuts down its side, reads the answer */
};

/* How a timed-out connection is closed. */
enum timeout_close {
	CLOSE_FIN,
	CLOSE_RST,
};

enum retry_kind {
	RETRY_NONE,
	RETRY_IMMEDIATE,
	RETRY_BACKOFF,
};

struct retry_policy {
	enum retry_kind kind;
	unsigned int n;
	uint64_t base_ns;
	uint64_t max_ns;
};

struct rate_step {
	double t_s;
	double rate;
};

struct counters {
	uint64_t offered;
	uint64_t retries;
	uint64_t out[OUT_NR];
	struct latency lat;
	struct latency ans_lat; /* every full answer: ok and bad_status */
};

/* A prewarmed keep-alive pool: how its connections fared. */
struct pool_stats {
	uint64_t opens;		  /* connects started by the pool */
	uint64_t connects;	  /* of them, established */
	uint64_t initial_ok;	  /* of the first `conns` opens, established */
	uint64_t ready_ns;	  /* when all the first ones were (0: never) */
	uint64_t failed[OUT_NR];  /* connects that failed, by outcome */
	uint64_t timed_out_busy;  /* requests that timed out on a connection (kept) */
	uint64_t late_answers;	  /* their answers, read and dropped */
	uint64_t lost;		  /* closed or reset by the peer */
	uint64_t min_established; /* fewest established once ready */
};

struct cls {
	char name[64];
	struct sockaddr_storage src, dst;
	socklen_t src_len, dst_len;
	bool has_src;
	struct rate_step steps[MAX_STEPS];
	int nsteps;
	uint64_t deadline_ns;
	enum conn_mode mode;
	enum conn_end end;
	unsigned int pool_max;
	bool prewarm; /* the whole pool opened at start and kept open */
	struct retry_policy retry;
	char path[256];
	char host[128];
	char request[512];
	size_t request_len;
	size_t send_len; /* what is sent of it: all, or the first half (end=abandon) */

	uint64_t next_arrival_ns;
	struct list_head deadlines;  /* requests with an attempt running, by deadline */
	struct list_head pending;    /* keep-alive requests waiting for a connection */
	struct list_head idle;	     /* keep-alive connections ready for a request */
	struct list_head connecting; /* prewarmed pool connections not yet established */
	struct list_head orphans;    /* pooled connections awaiting a timed-out request's answer */
	unsigned int nconns;	     /* keep-alive connections open or opening */
	unsigned int nestab;	     /* connections established and still open */
	uint64_t refill_at_ns;	     /* prewarm: no pool connect before this */
	uint64_t active;	     /* requests not yet finished */
	struct counters sec, total;
	struct pool_stats pool;
};

struct req {
	struct cls *cls;
	uint64_t t_first_ns;  /* scheduled arrival of the original request */
	uint64_t deadline_ns; /* of the running attempt */
	unsigned int tries;   /* attempts started */
	enum outcome last;
	struct conn *conn;
	struct list_head dl;
	struct list_head pend;
};

enum conn_state {
	C_CONNECTING,
	C_WRITING,
	C_READING,
	C_IDLE,
	C_DRAINING,
	C_DEAD,
};

struct conn {
	int fd;
	struct cls *cls;
	enum conn_state state;
	struct req *req;
	size_t sent;
	char buf[RESP_BUF];
	size_t len;
	bool head_done;
	uint64_t body_left;
	int status;
	bool server_close;
	bool established;
	bool pooled;		   /* opened by a prewarmed pool */
	bool initial;		   /* one of the pool's first `conns` connections */
	uint64_t drain_until_ns;   /* C_DRAINING: when to give up on the FIN */
	uint64_t connect_until_ns; /* a pooled C_CONNECTING: its connect timeout */
	struct list_head node;	   /* connecting, idle, orphans, draining or graveyard list */
};

struct timer {
	uint64_t when_ns;
	struct req *req;
};

static struct {
	struct cls cls[MAX_CLASSES];
	int ncls;
	unsigned int duration_s;
	double drain_s;
	bool drain_set;
	const char *csv_path;
	const char *json_path;
	uint64_t max_sockets;
	uint64_t seed;
	int timeout_close; /* enum timeout_close */
	bool progress;
} opt = {
	.max_sockets = DEFAULT_MAX_SOCKS,
};

static struct {
	int epfd;
	struct rng rng;
	uint64_t start_ns;
	uint64_t end_arrivals_ns;
	uint64_t hard_end_ns;
	uint64_t open_sockets;
	uint64_t max_open_sockets;
	uint64_t max_lag_ns;
	struct timer *heap;
	size_t heap_len, heap_cap;
	struct list_head draining;
	struct list_head graveyard;
	uint64_t errnos[ERRNO_SLOTS];
	FILE *csv;
	unsigned int sec;
	bool settling; /* the run is over: connections are closed on purpose */
} g;

static volatile sig_atomic_t got_signal;

/* ---- timers: a binary min-heap of pending retries ---- */

static int heap_push(uint64_t when, struct req *r)
{
	size_t i;

	if (g.heap_len == g.heap_cap) {
		size_t cap = g.heap_cap ? g.heap_cap * 2 : 1024;
		struct timer *h = realloc(g.heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		g.heap = h;
		g.heap_cap = cap;
	}
	i = g.heap_len++;
	while (i > 0 && g.heap[(i - 1) / 2].when_ns > when) {
		g.heap[i] = g.heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	g.heap[i] = (struct timer){.when_ns = when, .req = r};
	return 0;
}

static struct req *heap_pop(void)
{
	struct req *top = g.heap[0].req;
	struct timer last = g.heap[--g.heap_len];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= g.heap_len)
			break;
		if (c + 1 < g.heap_len && g.heap[c + 1].when_ns < g.heap[c].when_ns)
			c++;
		if (g.heap[c].when_ns >= last.when_ns)
			break;
		g.heap[i] = g.heap[c];
		i = c;
	}
	if (g.heap_len)
		g.heap[i] = last;
	return top;
}

/* ---- arrivals ---- */

static double rate_at(const struct cls *c, double t_s, double *seg_end)
{
	double rate = 0;

	*seg_end = INFINITY;
	for (int i = 0; i < c->nsteps; i++) {
		if (c->steps[i].t_s <= t_s) {
			rate = c->steps[i].rate;
		} else {
			*seg_end = c->steps[i].t_s;
			break;
		}
	}
	return rate;
}

/*
 * The next arrival after from_ns of a Poisson process whose rate is constant
 * within each step: draw a gap at the current rate; if it crosses into the
 * next step, restart there (the process is memoryless). UINT64_MAX: none.
 */
static uint64_t next_arrival(const struct cls *c, uint64_t from_ns)
{
	double t = (double)(from_ns - g.start_ns) / 1e9;

	for (int i = 0; i <= c->nsteps + 1; i++) {
		double seg_end, rate = rate_at(c, t, &seg_end), next;

		if (rate > 0) {
			next = t + rng_exp(&g.rng, 1.0 / rate);
			if (next < seg_end)
				return g.start_ns + (uint64_t)(next * 1e9);
		}
		if (isinf(seg_end))
			return UINT64_MAX;
		t = seg_end;
	}
	return UINT64_MAX;
}

/* ---- connections ---- */

static void count_errno(int err)
{
	g.errnos[err > 0 && err < ERRNO_SLOTS ? err : 0]++;
}

static void conn_close(struct conn *cn, bool abort)
{
	if (cn->state == C_DEAD)
		return;
	epoll_ctl(g.epfd, EPOLL_CTL_DEL, cn->fd, NULL);
	if (abort) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(cn->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(cn->fd);
	g.open_sockets--;
	if (cn->cls->mode == MODE_KEEPALIVE)
		cn->cls->nconns--;
	if (cn->established) {
		struct cls *c = cn->cls;

		c->nestab--;
		if (c->prewarm && c->pool.ready_ns && !g.settling &&
		    c->nestab < c->pool.min_established)
			c->pool.min_established = c->nestab;
	}
	list_del(&cn->node);
	cn->state = C_DEAD;
	cn->req = NULL;
	/* Freed after the current batch of events, which may still name it. */
	list_add_tail(&cn->node, &g.graveyard);
}

static int conn_watch(struct conn *cn, uint32_t events, int op)
{
	struct epoll_event ev = {.events = events, .data.ptr = cn};

	return epoll_ctl(g.epfd, op, cn->fd, &ev) ? -errno : 0;
}

/* Opens a connection of class c. Returns it, or NULL with *err = -errno. */
static struct conn *conn_open(struct cls *c, int *err)
{
	int one = 1, fd;
	struct conn *cn;

	if (g.open_sockets >= opt.max_sockets) {
		*err = -EOVERFLOW;
		return NULL;
	}
	fd = socket(c->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno == EMFILE || errno == ENFILE ? -EOVERFLOW : -errno;
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (c->has_src) {
		/* Pick the port at connect time: the 4-tuple, not the port, must be unique. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&c->src, c->src_len)) {
			*err = -errno;
			close(fd);
			return NULL;
		}
	}
	cn = calloc(1, sizeof(*cn));
	if (!cn) {
		*err = -ENOMEM;
		close(fd);
		return NULL;
	}
	cn->fd = fd;
	cn->cls = c;
	list_init(&cn->node);
	if (connect(fd, (struct sockaddr *)&c->dst, c->dst_len) && errno != EINPROGRESS) {
		*err = -errno;
		close(fd);
		free(cn);
		return NULL;
	}
	cn->state = C_CONNECTING;
	*err = conn_watch(cn, EPOLLOUT, EPOLL_CTL_ADD);
	if (*err) {
		close(fd);
		free(cn);
		return NULL;
	}
	g.open_sockets++;
	if (g.open_sockets > g.max_open_sockets)
		g.max_open_sockets = g.open_sockets;
	if (c->mode == MODE_KEEPALIVE)
		c->nconns++;
	return cn;
}

static enum outcome outcome_of_errno(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return OUT_REFUSED;
	case ECONNRESET:
	case EPIPE:
	case ECONNABORTED:
		return OUT_RESET;
	case ETIMEDOUT:
		return OUT_TIMEOUT;
	case EOVERFLOW:
		return OUT_OVERFLOW;
	default:
		count_errno(err);
		return OUT_ERROR;
	}
}

/* ---- requests ---- */

static void start_attempt(struct req *r, uint64_t t_start);
static void ka_dispatch(struct cls *c);

static void finish_req(struct req *r, enum outcome o, uint64_t now)
{
	struct cls *c = r->cls;

	c->sec.out[o]++;
	c->total.out[o]++;
	if (o == OUT_OK) {
		latency_add_ns(&c->sec.lat, now - r->t_first_ns);
		latency_add_ns(&c->total.lat, now - r->t_first_ns);
	}
	if (o == OUT_OK || o == OUT_BAD_STATUS) {
		latency_add_ns(&c->sec.ans_lat, now - r->t_first_ns);
		latency_add_ns(&c->total.ans_lat, now - r->t_first_ns);
	}
	c->active--;
	free(r);
}

static bool retryable(enum outcome o)
{
	return o != OUT_OK && o != OUT_OVERFLOW && o != OUT_LEFT;
}

static uint64_t retry_delay(const struct retry_policy *p, unsigned int tries)
{
	double cap;

	if (p->kind != RETRY_BACKOFF)
		return 0;
	cap = (double)p->base_ns * ldexp(1.0, (int)tries - 1);
	if (cap > (double)p->max_ns)
		cap = (double)p->max_ns;
	return (uint64_t)(rng_unit(&g.rng) * cap);
}

/* The running attempt of r ended with o (the caller has dealt with its connection). */
static void attempt_done(struct req *r, enum outcome o, uint64_t now)
{
	const struct retry_policy *p = &r->cls->retry;

	list_del(&r->dl);
	list_del(&r->pend);
	r->conn = NULL;
	r->last = o;
	if (o == OUT_OK || !retryable(o) || p->kind == RETRY_NONE || r->tries > p->n ||
	    heap_push(now + retry_delay(p, r->tries), r)) {
		finish_req(r, o, now);
	}
}

static void deadline_insert(struct cls *c, struct req *r)
{
	struct list_head *pos = c->deadlines.prev;

	/* Deadlines arrive nearly in order: walk back from the tail. */
	while (pos != &c->deadlines &&
	       container_of(pos, struct req, dl)->deadline_ns > r->deadline_ns)
		pos = pos->prev;
	list_add_after(&r->dl, pos);
}

static void conn_send(struct conn *cn, uint64_t now);

static void assign(struct conn *cn, struct req *r, uint64_t now)
{
	cn->req = r;
	r->conn = cn;
	if (cn->state == C_IDLE) {
		list_del(&cn->node);
		conn_send(cn, now);
	}
}

static void start_attempt(struct req *r, uint64_t t_start)
{
	struct cls *c = r->cls;
	struct conn *cn;
	int err;

	if (r->tries++) {
		c->sec.retries++;
		c->total.retries++;
	}
	r->deadline_ns = t_start + c->deadline_ns;
	deadline_insert(c, r);

	if (c->mode == MODE_KEEPALIVE) {
		list_add_tail(&r->pend, &c->pending);
		ka_dispatch(c);
		return;
	}
	cn = conn_open(c, &err);
	if (!cn) {
		attempt_done(r, outcome_of_errno(-err), now_ns());
		return;
	}
	assign(cn, r, t_start);
}

/*
 * A prewarmed pool keeps `conns` connections open or opening while arrivals
 * last: it replaces a lost connection at once, and after a connect that
 * failed waits POOL_RETRY_NS before the next. Returns true if it tried.
 */
static bool pool_open_one(struct cls *c, uint64_t now)
{
	struct conn *cn;
	int err;

	if (!c->prewarm || now >= g.end_arrivals_ns || c->nconns >= c->pool_max ||
	    now < c->refill_at_ns)
		return false;
	c->pool.opens++;
	cn = conn_open(c, &err);
	if (!cn) {
		c->pool.failed[outcome_of_errno(-err)]++;
		c->refill_at_ns = now + POOL_RETRY_NS;
		return true;
	}
	cn->pooled = true;
	cn->initial = c->pool.opens <= c->pool_max;
	cn->connect_until_ns = now + c->deadline_ns;
	list_add_tail(&cn->node, &c->connecting);
	return true;
}

static void pool_refill(struct cls *c, uint64_t now)
{
	while (pool_open_one(c, now))
		;
}

/* Opens every prewarmed pool at start, one connection per class in turn. */
static void prewarm_all(uint64_t now)
{
	bool more = true;

	while (more) {
		more = false;
		for (int i = 0; i < opt.ncls; i++)
			more |= pool_open_one(&opt.cls[i], now);
	}
}

/* A pooled connect failed with o (the caller closes the connection). */
static void pool_connect_failed(struct cls *c, enum outcome o, uint64_t now)
{
	c->pool.failed[o]++;
	c->refill_at_ns = now + POOL_RETRY_NS;
}

/*
 * Hands waiting keep-alive requests to idle connections, opening new ones
 * within the pool; a prewarmed pool's requests only wait for idle ones.
 */
static void ka_dispatch(struct cls *c)
{
	while (!list_empty(&c->pending)) {
		struct req *r = list_first_entry(&c->pending, struct req, pend);
		struct conn *cn;
		int err;

		if (!list_empty(&c->idle)) {
			cn = list_first_entry(&c->idle, struct conn, node);
		} else if (!c->prewarm && (!c->pool_max || c->nconns < c->pool_max)) {
			cn = conn_open(c, &err);
			if (!cn) {
				attempt_done(r, outcome_of_errno(-err), now_ns());
				continue;
			}
		} else {
			break;
		}
		list_del(&r->pend);
		assign(cn, r, now_ns());
	}
	if (c->prewarm)
		pool_refill(c, now_ns());
}

static void new_request(struct cls *c, uint64_t t_sched)
{
	struct req *r = calloc(1, sizeof(*r));

	c->sec.offered++;
	c->total.offered++;
	if (!r) {
		c->sec.out[OUT_ERROR]++;
		c->total.out[OUT_ERROR]++;
		count_errno(ENOMEM);
		return;
	}
	r->cls = c;
	r->t_first_ns = t_sched;
	list_init(&r->dl);
	list_init(&r->pend);
	c->active++;
	start_attempt(r, t_sched);
}

/* ---- connection events ---- */

/* The attempt on cn failed with o: close the connection and settle the request. */
static void conn_fail(struct conn *cn, enum outcome o, uint64_t now)
{
	struct req *r = cn->req;
	struct cls *c = cn->cls;

	if (cn->pooled && cn->state == C_CONNECTING)
		pool_connect_failed(c, o, now);
	else if (cn->pooled)
		c->pool.lost++;
	conn_close(cn, false);
	if (r)
		attempt_done(r, o, now);
	if (c->mode == MODE_KEEPALIVE)
		ka_dispatch(c);
}

/* All of the request that end= sends is out: the client goes, or shuts its side. */
static bool conn_sent(struct conn *cn, uint64_t now)
{
	const struct cls *c = cn->cls;
	struct req *r = cn->req;

	switch (c->end) {
	case END_RESET:
	case END_ABANDON:
		cn->req = NULL;
		conn_close(cn, c->end == END_RESET);
		if (r)
			attempt_done(r, OUT_LEFT, now);
		return false;
	case END_HALFCLOSE:
		shutdown(cn->fd, SHUT_WR);
		return true;
	case END_ANSWER:
		break;
	}
	return true;
}

static void conn_send(struct conn *cn, uint64_t now)
{
	const struct cls *c = cn->cls;

	while (cn->sent < c->send_len) {
		ssize_t n = send(cn->fd, c->request + cn->sent, c->send_len - cn->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN) {
				cn->state = C_WRITING;
				conn_watch(cn, EPOLLOUT, EPOLL_CTL_MOD);
				return;
			}
			if (errno == EINTR)
				continue;
			conn_fail(cn, outcome_of_errno(errno), now);
			return;
		}
		cn->sent += n;
	}
	if (!conn_sent(cn, now))
		return;
	cn->state = C_READING;
	cn->len = 0;
	cn->head_done = false;
	cn->body_left = 0;
	cn->status = 0;
	cn->server_close = false;
	conn_watch(cn, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
}

/* Parses the response head in cn->buf once it is complete. */
static int parse_head(struct conn *cn)
{
	char *end = memmem(cn->buf, cn->len, "\r\n\r\n", 4);
	size_t head_len;
	char *p;

	if (!end)
		return cn->len == sizeof(cn->buf) ? -EPROTO : -EAGAIN;
	head_len = end + 4 - cn->buf;
	*end = '\0';
	if (strncmp(cn->buf, "HTTP/1.", 7) || cn->len < 12)
		return -EPROTO;
	cn->status = atoi(cn->buf + 9);
	cn->body_left = 0;
	for (p = strstr(cn->buf, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		char *h = p + 2;

		if (!strncasecmp(h, "content-length:", 15))
			cn->body_left = strtoull(h + 15, NULL, 10);
		else if (!strncasecmp(h, "connection:", 11) && strcasestr(h, "close"))
			cn->server_close = true;
	}
	if (!strncmp(cn->buf, "HTTP/1.0", 8))
		cn->server_close = true;
	cn->head_done = true;
	/* Body bytes that came with the head. */
	if (cn->len - head_len >= cn->body_left)
		cn->body_left = 0;
	else
		cn->body_left -= cn->len - head_len;
	cn->len = 0;
	return 0;
}

static void response_complete(struct conn *cn, uint64_t now)
{
	struct req *r = cn->req;
	struct cls *c = cn->cls;

	cn->req = NULL;
	if (r) {
		enum outcome o = cn->status == 200 ? OUT_OK : OUT_BAD_STATUS;

		/* An answer that came after the deadline but before its timer ran is late. */
		attempt_done(r, now > r->deadline_ns ? OUT_TIMEOUT : o, now);
	} else if (cn->pooled) {
		c->pool.late_answers++;
		list_del(&cn->node); /* off the orphans */
	}
	if (c->mode == MODE_CLOSE || cn->server_close) {
		if (c->mode == MODE_KEEPALIVE) {
			if (cn->pooled)
				c->pool.lost++;
			conn_close(cn, false);
			ka_dispatch(c);
			return;
		}
		/* Wait for the server's FIN so that TIME_WAIT stays on its side. */
		cn->state = C_DRAINING;
		cn->drain_until_ns = now + DRAIN_FIN_WAIT_NS;
		list_add_tail(&cn->node, &g.draining);
		return;
	}
	cn->state = C_IDLE;
	cn->sent = 0;
	list_add_tail(&cn->node, &c->idle);
	ka_dispatch(c);
}

static void conn_readable(struct conn *cn, uint64_t now)
{
	for (int i = 0; i < 16 && cn->state != C_DEAD; i++) {
		ssize_t n;

		if (cn->state == C_READING && !cn->head_done)
			n = recv(cn->fd, cn->buf + cn->len, sizeof(cn->buf) - cn->len, 0);
		else
			n = recv(cn->fd, cn->buf, sizeof(cn->buf), 0);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A peer close or reset before a full response fails the attempt. */
			if (cn->state == C_READING)
				conn_fail(cn, n == 0 ? OUT_RESET : outcome_of_errno(errno), now);
			else
				conn_fail(cn, OUT_RESET, now);
			return;
		}
		if (cn->state == C_IDLE) {
			/* Unsolicited data on an idle keep-alive connection. */
			conn_fail(cn, OUT_ERROR, now);
			return;
		}
		if (cn->state != C_READING)
			continue;
		if (!cn->head_done) {
			cn->len += n;
			int err = parse_head(cn);

			if (err == -EAGAIN)
				continue;
			if (err) {
				count_errno(EPROTO);
				conn_fail(cn, OUT_ERROR, now);
				return;
			}
		} else {
			cn->body_left = (uint64_t)n >= cn->body_left ? 0 : cn->body_left - n;
		}
		if (cn->head_done && !cn->body_left)
			response_complete(cn, now);
	}
}

static void conn_established(struct conn *cn, uint64_t now)
{
	struct cls *c = cn->cls;

	cn->established = true;
	c->nestab++;
	if (!cn->pooled)
		return;
	list_del(&cn->node); /* off the connecting list */
	c->pool.connects++;
	if (cn->initial && ++c->pool.initial_ok == c->pool_max) {
		c->pool.ready_ns = now;
		c->pool.min_established = c->nestab;
	}
}

static void conn_event(struct conn *cn, uint32_t events, uint64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);

	switch (cn->state) {
	case C_CONNECTING:
		getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			conn_fail(cn, outcome_of_errno(err), now);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		conn_established(cn, now);
		if (cn->req) {
			conn_send(cn, now);
			return;
		}
		/* A pooled connection, or a keep-alive one whose request went elsewhere. */
		cn->state = C_IDLE;
		list_add_tail(&cn->node, &cn->cls->idle);
		conn_watch(cn, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
		ka_dispatch(cn->cls);
		return;
	case C_WRITING:
		if (events & (EPOLLERR | EPOLLHUP)) {
			getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			conn_fail(cn, err ? outcome_of_errno(err) : OUT_RESET, now);
			return;
		}
		conn_send(cn, now);
		return;
	case C_READING:
	case C_IDLE:
	case C_DRAINING:
		conn_readable(cn, now);
		return;
	case C_DEAD:
		return;
	}
}

/* ---- timers ---- */

static void expire_deadlines(struct cls *c, uint64_t now)
{
	while (!list_empty(&c->deadlines)) {
		struct req *r = list_first_entry(&c->deadlines, struct req, dl);
		struct conn *cn = r->conn;

		if (r->deadline_ns > now)
			return;
		if (cn && cn->pooled) {
			/* Kept open: its answer is awaited, dropped, and it is idle again. */
			cn->req = NULL;
			c->pool.timed_out_busy++;
			list_add_tail(&cn->node, &c->orphans);
		} else if (cn) {
			cn->req = NULL;
			conn_close(cn, opt.timeout_close == CLOSE_RST);
		}
		attempt_done(r, OUT_TIMEOUT, now);
	}
	if (c->mode == MODE_KEEPALIVE)
		ka_dispatch(c);
}

/* Pooled connects still pending after the class's deadline have failed. */
static void expire_connecting(struct cls *c, uint64_t now)
{
	while (!list_empty(&c->connecting)) {
		struct conn *cn = list_first_entry(&c->connecting, struct conn, node);

		if (cn->connect_until_ns > now)
			return;
		pool_connect_failed(c, OUT_TIMEOUT, now);
		conn_close(cn, opt.timeout_close == CLOSE_RST);
	}
}

static void expire_draining(uint64_t now)
{
	while (!list_empty(&g.draining)) {
		struct conn *cn = list_first_entry(&g.draining, struct conn, node);

		if (cn->drain_until_ns > now)
			return;
		conn_close(cn, false);
	}
}

static void free_graveyard(void)
{
	while (!list_empty(&g.graveyard)) {
		struct conn *cn = list_first_entry(&g.graveyard, struct conn, node);

		list_del(&cn->node);
		free(cn);
	}
}

/* ---- output ---- */

static void csv_row(struct cls *c, unsigned int t_s)
{
	const struct counters *s = &c->sec;

	if (!g.csv)
		return;
	fprintf(g.csv,
		"%u,%s,%llu,%llu,%llu,%llu,%llu,%llu,%.3f,%.3f,%.3f,%llu,%llu,%llu,%llu,%u,%.3f,"
		"%.3f\n",
		t_s, c->name, (unsigned long long)s->offered, (unsigned long long)s->out[OUT_OK],
		(unsigned long long)s->out[OUT_REFUSED], (unsigned long long)s->out[OUT_RESET],
		(unsigned long long)s->out[OUT_TIMEOUT], (unsigned long long)s->retries,
		latency_pct_ms(&s->lat, 50), latency_pct_ms(&s->lat, 90),
		latency_pct_ms(&s->lat, 99), (unsigned long long)s->out[OUT_BAD_STATUS],
		(unsigned long long)s->out[OUT_OVERFLOW], (unsigned long long)s->out[OUT_ERROR],
		(unsigned long long)c->active, c->nestab, latency_pct_ms(&s->ans_lat, 50),
		latency_pct_ms(&s->ans_lat, 99));
}

static void tick(unsigned int t_s)
{
	for (int i = 0; i < opt.ncls; i++) {
		struct cls *c = &opt.cls[i];
		const struct counters *s = &c->sec;

		csv_row(c, t_s);
		if (opt.progress)
			fprintf(stderr,
				"t=%u %s offered=%llu ok=%llu refused=%llu reset=%llu "
				"timeout=%llu retries=%llu p99_ms=%.1f active=%llu\n",
				t_s, c->name, (unsigned long long)s->offered,
				(unsigned long long)s->out[OUT_OK],
				(unsigned long long)s->out[OUT_REFUSED],
				(unsigned long long)s->out[OUT_RESET],
				(unsigned long long)s->out[OUT_TIMEOUT],
				(unsigned long long)s->retries, latency_pct_ms(&s->lat, 99),
				(unsigned long long)c->active);
		memset(&c->sec, 0, sizeof(c->sec));
	}
	if (g.csv)
		fflush(g.csv);
}

static double pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0;
}

static void json_pool(struct jsonw *w, const struct cls *c)
{
	const struct pool_stats *p = &c->pool;
	uint64_t failed = 0;

	jsonw_obj_open(w, "pool");
	jsonw_u64(w, "size", c->pool_max);
	jsonw_u64(w, "opened_at_start", p->initial_ok);
	jsonw_bool(w, "all_opened_at_start", p->initial_ok == c->pool_max);
	if (p->ready_ns)
		jsonw_double(w, "ready_ms", (double)(p->ready_ns - g.start_ns) / 1e6);
	else
		jsonw_double(w, "ready_ms", NAN);
	jsonw_u64(w, "opens", p->opens);
	jsonw_u64(w, "connects", p->connects);
	jsonw_u64(w, "reconnects", p->connects - p->initial_ok);
	jsonw_obj_open(w, "connect_failed");
	for (int o = OUT_REFUSED; o < OUT_NR; o++) {
		if (o == OUT_BAD_STATUS || o == OUT_LEFT)
			continue;
		jsonw_u64(w, outcome_name[o], p->failed[o]);
		failed += p->failed[o];
	}
	jsonw_u64(w, "total", failed);
	jsonw_obj_close(w);
	jsonw_u64(w, "timed_out_busy", p->timed_out_busy);
	jsonw_u64(w, "late_answers", p->late_answers);
	jsonw_u64(w, "lost", p->lost);
	if (p->ready_ns)
		jsonw_u64(w, "min_established", p->min_established);
	else
		jsonw_double(w, "min_established", NAN);
	jsonw_obj_close(w);
}

static void json_counters(struct jsonw *w, const char *name, const struct counters *t,
			  const struct cls *c)
{
	jsonw_obj_open(w, name);
	jsonw_str(w, "name", name);
	jsonw_u64(w, "offered", t->offered);
	jsonw_u64(w, "ok", t->out[OUT_OK]);
	jsonw_double(w, "ok_pct", pct(t->out[OUT_OK], t->offered));
	for (int o = OUT_REFUSED; o < OUT_NR; o++)
		jsonw_u64(w, outcome_name[o], t->out[o]);
	jsonw_u64(w, "retries", t->retries);
	jsonw_double(w, "p50_ms", latency_pct_ms(&t->lat, 50));
	jsonw_double(w, "p90_ms", latency_pct_ms(&t->lat, 90));
	jsonw_double(w, "p99_ms", latency_pct_ms(&t->lat, 99));
	jsonw_double(w, "mean_ms", latency_mean_ms(&t->lat));
	jsonw_double(w, "max_ms", (double)t->lat.max_us / 1000.0);
	jsonw_double(w, "ans_p50_ms", latency_pct_ms(&t->ans_lat, 50));
	jsonw_double(w, "ans_p99_ms", latency_pct_ms(&t->ans_lat, 99));
	jsonw_double(w, "goodput_rps", (double)t->out[OUT_OK] / opt.duration_s);
	if (c && c->prewarm)
		json_pool(w, c);
	jsonw_obj_close(w);
}

static void sum_counters(struct counters *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < opt.ncls; i++) {
		const struct counters *t = &opt.cls[i].total;

		sum->offered += t->offered;
		sum->retries += t->retries;
		for (int o = 0; o < OUT_NR; o++)
			sum->out[o] += t->out[o];
		latency_merge(&sum->lat, &t->lat);
		latency_merge(&sum->ans_lat, &t->ans_lat);
	}
}

static int write_json(const char *path, const struct counters *sum)
{
	FILE *f = fopen(path, "w");
	struct jsonw w;

	if (!f)
		return -errno;
	jsonw_init(&w, f);
	jsonw_obj_open(&w, NULL);
	jsonw_u64(&w, "duration_s", opt.duration_s);
	jsonw_u64(&w, "seed", opt.seed);
	jsonw_double(&w, "max_lag_ms", (double)g.max_lag_ns / 1e6);
	jsonw_u64(&w, "max_open_sockets", g.max_open_sockets);
	jsonw_obj_open(&w, "classes");
	for (int i = 0; i < opt.ncls; i++)
		json_counters(&w, opt.cls[i].name, &opt.cls[i].total, &opt.cls[i]);
	jsonw_obj_close(&w);
	json_counters(&w, "total", sum, NULL);
	jsonw_obj_close(&w);
	return fclose(f) ? -errno : 0;
}

static void print_line(const char *name, const struct counters *t)
{
	printf("%-12s %8llu %8llu %7.2f %8llu %8llu %8llu %8llu %8llu %8.1f %8.1f %8.1f %9.1f\n",
	       name, (unsigned long long)t->offered, (unsigned long long)t->out[OUT_OK],
	       pct(t->out[OUT_OK], t->offered), (unsigned long long)t->out[OUT_REFUSED],
	       (unsigned long long)t->out[OUT_RESET], (unsigned long long)t->out[OUT_TIMEOUT],
	       (unsigned long long)(t->out[OUT_BAD_STATUS] + t->out[OUT_OVERFLOW] +
				    t->out[OUT_ERROR]),
	       (unsigned long long)t->retries, latency_pct_ms(&t->lat, 50),
	       latency_pct_ms(&t->lat, 90), latency_pct_ms(&t->lat, 99),
	       (double)t->out[OUT_OK] / opt.duration_s);
}

static void print_pool(const struct cls *c)
{
	const struct pool_stats *p = &c->pool;
	uint64_t failed = 0;

	if (!c->prewarm)
		return;
	for (int o = 0; o < OUT_NR; o++)
		failed += p->failed[o];
	printf("pool %s: %llu of %u opened at start, %llu reconnects, %llu connects failed, "
	       "%llu lost, %llu requests timed out on a connection (%llu late answers)",
	       c->name, (unsigned long long)p->initial_ok, c->pool_max,
	       (unsigned long long)(p->connects - p->initial_ok), (unsigned long long)failed,
	       (unsigned long long)p->lost, (unsigned long long)p->timed_out_busy,
	       (unsigned long long)p->late_answers);
	if (p->ready_ns)
		printf(", fewest established %llu\n", (unsigned long long)p->min_established);
	else
		printf("\n");
}

static void print_summary(const struct counters *sum)
{
	char buf[16];

	printf("%-12s %8s %8s %7s %8s %8s %8s %8s %8s %8s %8s %8s %9s\n", "class", "offered", "ok",
	       "ok_pct", "refused", "reset", "timeout", "other", "retries", "p50_ms", "p90_ms",
	       "p99_ms", "goodput");
	for (int i = 0; i < opt.ncls; i++)
		print_line(opt.cls[i].name, &opt.cls[i].total);
	if (opt.ncls > 1)
		print_line("total", sum);
	if (sum->out[OUT_BAD_STATUS] + sum->out[OUT_OVERFLOW] + sum->out[OUT_ERROR])
		printf("other: bad_status=%llu overflow=%llu error=%llu\n",
		       (unsigned long long)sum->out[OUT_BAD_STATUS],
		       (unsigned long long)sum->out[OUT_OVERFLOW],
		       (unsigned long long)sum->out[OUT_ERROR]);
	if (sum->out[OUT_LEFT])
		printf("left: %llu requests whose client went away on purpose (end=)\n",
		       (unsigned long long)sum->out[OUT_LEFT]);
	for (int e = 0; e < ERRNO_SLOTS; e++)
		if (g.errnos[e])
			printf("errors: %s=%llu\n", errno_name(e, buf, sizeof(buf)),
			       (unsigned long long)g.errnos[e]);
	for (int i = 0; i < opt.ncls; i++)
		print_pool(&opt.cls[i]);
	printf("max_lag_ms=%.1f max_open_sockets=%llu\n", (double)g.max_lag_ns / 1e6,
	       (unsigned long long)g.max_open_sockets);
	if (g.max_lag_ns > 50 * NSEC_PER_MSEC)
		printf("warning: arrivals lagged by up to %.0f ms: the generator was saturated\n",
		       (double)g.max_lag_ns / 1e6);
}

/* ---- the loop ---- */

static void on_signal(int sig)
{
	got_signal = sig;
}

/* Settles every unfinished request when the run ends. */
static void settle_all(uint64_t now)
{
	g.settling = true;
	while (g.heap_len) {
		struct req *r = heap_pop();

		finish_req(r, r->last, now);
	}
	for (int i = 0; i < opt.ncls; i++) {
		struct cls *c = &opt.cls[i];

		while (!list_empty(&c->deadlines)) {
			struct req *r = list_first_entry(&c->deadlines, struct req, dl);

			if (r->conn) {
				r->conn->req = NULL;
				conn_close(r->conn, true);
			}
			list_del(&r->dl);
			list_del(&r->pend);
			finish_req(r, OUT_TIMEOUT, now);
		}
		while (!list_empty(&c->idle))
			conn_close(list_first_entry(&c->idle, struct conn, node), false);
		while (!list_empty(&c->connecting))
			conn_close(list_first_entry(&c->connecting, struct conn, node), true);
		while (!list_empty(&c->orphans))
			conn_close(list_first_entry(&c->orphans, struct conn, node), true);
	}
	while (!list_empty(&g.draining))
		conn_close(list_first_entry(&g.draining, struct conn, node), false);
	free_graveyard();
}

static bool all_done(void)
{
	for (int i = 0; i < opt.ncls; i++)
		if (opt.cls[i].active)
			return false;
	return true;
}

/* The class whose next arrival is due by now and earliest, or NULL. */
static struct cls *earliest_due(uint64_t now)
{
	struct cls *best = NULL;

	for (int i = 0; i < opt.ncls; i++) {
		struct cls *c = &opt.cls[i];

		if (c->next_arrival_ns > now || c->next_arrival_ns >= g.end_arrivals_ns)
			continue;
		if (!best || c->next_arrival_ns < best->next_arrival_ns)
			best = c;
	}
	return best;
}

/*
 * Starts the due arrivals in order of scheduled time across all classes, so
 * that after a late wakeup no class goes first merely by its position on the
 * command line (a first-come limit on the server side would favour it).
 */
static void run_arrivals(uint64_t now)
{
	struct cls *c;

	for (int n = 0; n < ARRIVALS_PER_SPIN && (c = earliest_due(now)); n++) {
		uint64_t t = c->next_arrival_ns;

		if (now - t > g.max_lag_ns)
			g.max_lag_ns = now - t;
		c->next_arrival_ns = next_arrival(c, t);
		new_request(c, t);
	}
}

static uint64_t next_wakeup(void)
{
	uint64_t next = g.start_ns + (uint64_t)(g.sec + 1) * NSEC_PER_SEC;

	if (g.hard_end_ns < next)
		next = g.hard_end_ns;
	if (g.heap_len && g.heap[0].when_ns < next)
		next = g.heap[0].when_ns;
	if (!list_empty(&g.draining)) {
		uint64_t t = list_first_entry(&g.draining, struct conn, node)->drain_until_ns;

		if (t < next)
			next = t;
	}
	for (int i = 0; i < opt.ncls; i++) {
		struct cls *c = &opt.cls[i];

		if (c->next_arrival_ns < next && c->next_arrival_ns < g.end_arrivals_ns)
			next = c->next_arrival_ns;
		if (!list_empty(&c->deadlines)) {
			uint64_t t = list_first_entry(&c->deadlines, struct req, dl)->deadline_ns;

			if (t < next)
				next = t;
		}
		if (!list_empty(&c->connecting)) {
			uint64_t t = list_first_entry(&c->connecting, struct conn, node)
					     ->connect_until_ns;

			if (t < next)
				next = t;
		}
		if (c->prewarm && c->nconns < c->pool_max && c->refill_at_ns < next &&
		    c->refill_at_ns < g.end_arrivals_ns)
			next = c->refill_at_ns;
	}
	return next;
}

static void run(void)
{
	struct epoll_event events[MAX_EVENTS];

	for (;;) {
		uint64_t now = now_ns(), wake;
		int n, timeout_ms;

		if (got_signal && g.end_arrivals_ns > now) {
			g.end_arrivals_ns = now;
			g.hard_end_ns = now + NSEC_PER_SEC;
		}
		run_arrivals(now);
		while (g.heap_len && g.heap[0].when_ns <= now)
			start_attempt(heap_pop(), now);
		for (int i = 0; i < opt.ncls; i++) {
			expire_deadlines(&opt.cls[i], now);
			expire_connecting(&opt.cls[i], now);
			pool_refill(&opt.cls[i], now);
		}
		expire_draining(now);
		while (now >= g.start_ns + (uint64_t)(g.sec + 1) * NSEC_PER_SEC)
			tick(g.sec++);
		free_graveyard();

		if (now >= g.end_arrivals_ns && all_done())
			break;
		if (now >= g.hard_end_ns)
			break;

		wake = next_wakeup();
		timeout_ms =
			wake <= now ? 0 : (int)((wake - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
		n = epoll_wait(g.epfd, events, MAX_EVENTS, timeout_ms);
		now = now_ns();
		for (int i = 0; i < n; i++)
			conn_event(events[i].data.ptr, events[i].events, now);
		free_graveyard();
	}
	settle_all(now_ns());
	/* The last, partial second. */
	tick(g.sec);
}

/* ---- options ---- */

static int parse_rate(struct cls *c, const char *s)
{
	char buf[1024], *save, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	c->nsteps = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *at = strchr(tok, '@');
		struct rate_step *st;

		if (c->nsteps == MAX_STEPS)
			return -EINVAL;
		st = &c->steps[c->nsteps];
		if (at)
			*at = '\0';
		if (parse_double(tok, 0, 1e6, &st->rate))
			return -EINVAL;
		st->t_s = 0;
		if (at && parse_double(at + 1, 0, MAX_DURATION_S, &st->t_s))
			return -EINVAL;
		if (c->nsteps && st->t_s <= c->steps[c->nsteps - 1].t_s)
			return -EINVAL;
		if (!at && c->nsteps)
			return -EINVAL;
		c->nsteps++;
	}
	return c->nsteps ? 0 : -EINVAL;
}

static int parse_retry(struct retry_policy *p, const char *s)
{
	unsigned long n, base, max;
	char tail;

	if (!strcmp(s, "none")) {
		p->kind = RETRY_NONE;
		return 0;
	}
	if (sscanf(s, "immediate:%lu%c", &n, &tail) == 1 && n <= MAX_RETRIES) {
		p->kind = RETRY_IMMEDIATE;
		p->n = n;
		return 0;
	}
	if (sscanf(s, "backoff:%lu:%lu:%lu%c", &n, &base, &max, &tail) == 3 && n <= MAX_RETRIES &&
	    base > 0 && max >= base && max <= 60000) {
		p->kind = RETRY_BACKOFF;
		p->n = n;
		p->base_ns = base * NSEC_PER_MSEC;
		p->max_ns = max * NSEC_PER_MSEC;
		return 0;
	}
	return -EINVAL;
}

static int class_set(struct cls *c, const char *key, const char *val)
{
	uint64_t v;

	if (!strcmp(key, "name"))
		return snprintf(c->name, sizeof(c->name), "%s", val) >= (int)sizeof(c->name) ||
				       strpbrk(val, ", \t\"")
			       ? -EINVAL
			       : 0;
	if (!strcmp(key, "target"))
		return addr_parse(val, &c->dst, &c->dst_len);
	if (!strcmp(key, "src")) {
		c->has_src = true;
		return addr_parse_host(val, &c->src, &c->src_len);
	}
	if (!strcmp(key, "rate"))
		return parse_rate(c, val);
	if (!strcmp(key, "deadline_ms")) {
		if (parse_u64(val, 1, 120000, &v))
			return -EINVAL;
		c->deadline_ns = v * NSEC_PER_MSEC;
		return 0;
	}
	if (!strcmp(key, "retry"))
		return parse_retry(&c->retry, val);
	if (!strcmp(key, "mode")) {
		if (!strcmp(val, "close"))
			c->mode = MODE_CLOSE;
		else if (!strcmp(val, "keepalive") || !strcmp(val, "keep-alive"))
			c->mode = MODE_KEEPALIVE;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(key, "end")) {
		if (!strcmp(val, "answer"))
			c->end = END_ANSWER;
		else if (!strcmp(val, "reset"))
			c->end = END_RESET;
		else if (!strcmp(val, "abandon"))
			c->end = END_ABANDON;
		else if (!strcmp(val, "halfclose"))
			c->end = END_HALFCLOSE;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(key, "conns")) {
		if (parse_u64(val, 0, 1000000, &v))
			return -EINVAL;
		c->pool_max = v;
		return 0;
	}
	if (!strcmp(key, "prewarm")) {
		if (parse_u64(val, 0, 1, &v))
			return -EINVAL;
		c->prewarm = v;
		return 0;
	}
	if (!strcmp(key, "path"))
		return val[0] != '/' || strpbrk(val, " \r\n") ||
				       snprintf(c->path, sizeof(c->path), "%s", val) >=
					       (int)sizeof(c->path)
			       ? -EINVAL
			       : 0;
	if (!strcmp(key, "host"))
		return strpbrk(val, " \r\n") || snprintf(c->host, sizeof(c->host), "%s", val) >=
							(int)sizeof(c->host)
			       ? -EINVAL
			       : 0;
	return -ENOENT;
}

/*
 * KEY=VALUE pairs separated by commas; a piece without '=' continues the
 * previous value, so that rate=100@0,250@10 keeps its commas.
 */
static int parse_class(struct cls *c, const char *spec, int idx)
{
	char buf[2048], key[64] = "", val[1024] = "", *save, *tok;
	int err;

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "c%d", idx);
	snprintf(c->path, sizeof(c->path), "/");
	snprintf(c->host, sizeof(c->host), "x");
	c->deadline_ns = 1000 * NSEC_PER_MSEC;
	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
		return -EINVAL;

	for (tok = strtok_r(buf, ",", &save);; tok = strtok_r(NULL, ",", &save)) {
		char *eq = tok ? strchr(tok, '=') : NULL;

		if (tok && !eq) {
			if (!key[0] || strlen(val) + strlen(tok) + 2 > sizeof(val))
				return -EINVAL;
			strcat(val, ",");
			strcat(val, tok);
			continue;
		}
		if (key[0]) {
			err = class_set(c, key, val);
			if (err) {
				fprintf(stderr, "ls-loadgen: class %d: %s '%s=%s'\n", idx,
					err == -ENOENT ? "unknown key" : "bad value", key, val);
				return -EINVAL;
			}
		}
		if (!tok)
			break;
		*eq = '\0';
		if (snprintf(key, sizeof(key), "%s", tok) >= (int)sizeof(key) ||
		    snprintf(val, sizeof(val), "%s", eq + 1) >= (int)sizeof(val))
			return -EINVAL;
	}
	if (!c->dst_len) {
		fprintf(stderr, "ls-loadgen: class %s: target= is required\n", c->name);
		return -EINVAL;
	}
	if (!c->nsteps) {
		fprintf(stderr, "ls-loadgen: class %s: rate= is required\n", c->name);
		return -EINVAL;
	}
	if (c->has_src && c->src.ss_family != c->dst.ss_family) {
		fprintf(stderr, "ls-loadgen: class %s: src and target differ in family\n", c->name);
		return -EINVAL;
	}
	if (c->prewarm && (c->mode != MODE_KEEPALIVE || !c->pool_max)) {
		fprintf(stderr,
			"ls-loadgen: class %s: prewarm=1 needs mode=keepalive and conns=N\n",
			c->name);
		return -EINVAL;
	}
	if (c->end != END_ANSWER && c->mode != MODE_CLOSE) {
		fprintf(stderr, "ls-loadgen: class %s: end= needs mode=close\n", c->name);
		return -EINVAL;
	}
	{
		char req[sizeof(c->request)];

		c->request_len =
			snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", c->path,
				 c->host, c->mode == MODE_CLOSE ? "Connection: close\r\n" : "");
		memcpy(c->request, req, c->request_len + 1);
	}
	/* Half a request head: the server waits for the rest, which never comes. */
	c->send_len = c->end == END_ABANDON ? c->request_len / 2 : c->request_len;
	list_init(&c->deadlines);
	list_init(&c->pending);
	list_init(&c->idle);
	list_init(&c->connecting);
	list_init(&c->orphans);
	return 0;
}

static int parse_class_opt(const char *value, void *dest)
{
	(void)dest;
	if (opt.ncls == MAX_CLASSES) {
		fprintf(stderr, "ls-loadgen: at most %d classes\n", MAX_CLASSES);
		return -E2BIG;
	}
	if (parse_class(&opt.cls[opt.ncls], value, opt.ncls))
		return -EINVAL;
	for (int i = 0; i < opt.ncls; i++) {
		if (!strcmp(opt.cls[i].name, opt.cls[opt.ncls].name)) {
			fprintf(stderr, "ls-loadgen: duplicate class name '%s'\n", opt.cls[i].name);
			return -EINVAL;
		}
	}
	opt.ncls++;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const char *const closes[] = {[CLOSE_FIN] = "fin", [CLOSE_RST] = "rst", NULL};
	/* clang-format off */
	static const struct opt opts[] = {
		{.name = "class", .short_name = 'c', .arg = "SPEC", .flags = OPT_REQUIRED,
		 .type = OPT_CALL, .parse = parse_class_opt,
		 .help = "a traffic class, comma-separated KEY=VALUE (below);\n"
			 "repeatable"},
		{.name = "duration", .short_name = 'd', .arg = "S", .flags = OPT_REQUIRED,
		 .type = OPT_UINT, .dest = &opt.duration_s, .min = 1, .max = MAX_DURATION_S,
		 .help = "seconds of arrivals (1.." OPT_STR(MAX_DURATION_S) ")"},
		{.name = "drain-s", .arg = "S", .seen = &opt.drain_set,
		 .type = OPT_DOUBLE, .dest = &opt.drain_s, .dmin = 0, .dmax = MAX_DRAIN_S,
		 .help = "after that, wait up to S s for open requests (default:\n"
			 "enough for every deadline and retry, at most " OPT_STR(MAX_DRAIN_S) ")"},
		{.name = "csv", .arg = "FILE",
		 .type = OPT_STRING, .dest = &opt.csv_path,
		 .help = "per-second rows: t_s,class,offered,ok,refused,reset,\n"
			 "timeout,retries,p50_ms,p90_ms,p99_ms,bad_status,overflow,\n"
			 "error,active,conns,ans_p50_ms,ans_p99_ms (outcomes and\n"
			 "latencies in the second they happen; offered in the second\n"
			 "of arrival; conns: connections established at the end of\n"
			 "the second; ans_: latency of every full answer, 200 or not)"},
		{.name = "json", .arg = "FILE",
		 .type = OPT_STRING, .dest = &opt.json_path,
		 .help = "per-class totals"},
		{.name = "max-sockets", .arg = "N",
		 .type = OPT_U64, .dest = &opt.max_sockets, .min = 1, .max = 1000000,
		 .help = "cap on open sockets (default " OPT_STR(DEFAULT_MAX_SOCKS) "; more: "
			 "overflow)"},
		{.name = "timeout-close", .arg = "fin|rst",
		 .type = OPT_CHOICE, .dest = &opt.timeout_close, .choices = closes,
		 .help = "how a timed-out connection is closed (default fin;\n"
			 "prewarmed pools keep theirs)"},
		{.name = "seed", .arg = "N",
		 .type = OPT_U64, .dest = &opt.seed, .min = 0, .max = UINT64_MAX,
		 .help = "PRNG seed (default: from the clock)"},
		{.name = "progress",
		 .type = OPT_FLAG, .dest = &opt.progress,
		 .help = "one line per class per second on stderr"},
		{},
	};
	static const struct opt_tool tool = {
		.name = "ls-loadgen",
		.synopsis = "--class SPEC [--class SPEC ...] --duration S [options]",
		.about = "Open-loop HTTP load: Poisson arrivals at a scheduled rate per class.",
		.epilog =
			"Class keys (--class KEY=VALUE,KEY=VALUE,...):\n"
			"  name=NAME             label in the outputs (default cN)\n"
			"  target=ADDR:PORT      server, IPv4 or [IPv6]:PORT (required)\n"
			"  src=ADDR              source address to bind (same family as target)\n"
			"  rate=R | R@T,R@T...   requests/s; a schedule gives the rate from "
			"T s on\n"
			"                        (rate=100@0,250@10,100@15)\n"
			"  deadline_ms=MS        per-attempt deadline (default 1000)\n"
			"  retry=none | immediate:N | backoff:N:BASE_MS:MAX_MS\n"
			"                        backoff: full jitter, uniform in\n"
			"                        [0, min(MAX, BASE*2^k)]\n"
			"  mode=close | keepalive  a connection per request (default) or a pool\n"
			"  conns=N               keep-alive pool size (default 0: as many as "
			"needed)\n"
			"  prewarm=0|1           1: open the whole pool at start and keep it "
			"open:\n"
			"                        a request that times out leaves its "
			"connection open\n"
			"                        (the late answer is dropped), a lost one is "
			"replaced\n"
			"                        at once (100 ms after a failed connect); "
			"requests\n"
			"                        only wait for idle pooled connections\n"
			"  path=/P               request path (default /)\n"
			"  host=H                Host header (default x)\n"
			"  end=answer | reset | abandon | halfclose\n"
			"                        mode=close: how the client ends a connection:\n"
			"                        reads the answer (default); resets it right\n"
			"                        after its request; sends half the request and\n"
			"                        closes; or shuts down its side after the\n"
			"                        request and reads the answer. reset and\n"
			"                        abandon count as 'left'\n",
		.opts = opts,
	};
	/* clang-format on */

	opt.seed = now_ns() ^ ((uint64_t)getpid() << 32);
	if (opts_parse(&tool, argc, argv))
		return -1;
	if (!opt.drain_set) {
		/* Enough for every attempt of a request that arrives at the very end. */
		double need = 0;

		for (int i = 0; i < opt.ncls; i++) {
			const struct cls *cl = &opt.cls[i];
			double tries = 1 + (cl->retry.kind == RETRY_NONE ? 0 : cl->retry.n);
			double per = (double)(cl->deadline_ns + cl->retry.max_ns) / 1e9;

			if (tries * per > need)
				need = tries * per;
		}
		opt.drain_s = fmin(need + 0.5, MAX_DRAIN_S);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct counters sum;
	uint64_t nofile;
	int err;

	if (parse_args(argc, argv))
		return EXIT_USAGE;

	nofile = raise_nofile(opt.max_sockets + 64);
	if (nofile < opt.max_sockets + 64) {
		if (opt.max_sockets != DEFAULT_MAX_SOCKS)
			fprintf(stderr,
				"ls-loadgen: RLIMIT_NOFILE is %llu: --max-sockets lowered to "
				"%llu\n",
				(unsigned long long)nofile, (unsigned long long)(nofile - 64));
		opt.max_sockets = nofile > 128 ? nofile - 64 : 64;
	}
	if (opt.csv_path) {
		g.csv = fopen(opt.csv_path, "w");
		if (!g.csv) {
			fprintf(stderr, "ls-loadgen: %s: %s\n", opt.csv_path, strerror(errno));
			return EXIT_RUNTIME;
		}
		fprintf(g.csv,
			"t_s,class,offered,ok,refused,reset,timeout,retries,p50_ms,p90_ms,"
			"p99_ms,bad_status,overflow,error,active,conns,ans_p50_ms,ans_p99_ms\n");
	}
	g.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g.epfd < 0) {
		perror("ls-loadgen: epoll_create1");
		return EXIT_RUNTIME;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	list_init(&g.draining);
	list_init(&g.graveyard);
	rng_seed(&g.rng, opt.seed);

	g.start_ns = now_ns();
	g.end_arrivals_ns = g.start_ns + (uint64_t)opt.duration_s * NSEC_PER_SEC;
	g.hard_end_ns = g.end_arrivals_ns + (uint64_t)(opt.drain_s * 1e9);
	for (int i = 0; i < opt.ncls; i++)
		opt.cls[i].next_arrival_ns = next_arrival(&opt.cls[i], g.start_ns);
	prewarm_all(g.start_ns);

	run();

	sum_counters(&sum);
	print_summary(&sum);
	if (g.csv && fclose(g.csv)) {
		fprintf(stderr, "ls-loadgen: %s: %s\n", opt.csv_path, strerror(errno));
		return EXIT_RUNTIME;
	}
	if (opt.json_path) {
		err = write_json(opt.json_path, &sum);
		if (err) {
			fprintf(stderr, "ls-loadgen: %s: %s\n", opt.json_path, strerror(-err));
			return EXIT_RUNTIME;
		}
	}
	free(g.heap);
	return EXIT_OK;
}
