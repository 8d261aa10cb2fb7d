// SPDX-License-Identifier: GPL-2.0
/*
 * ls-server: an HTTP/1.1 test server that behaves like a real thread-pool
 * server under overload. One acceptor thread puts every accepted connection
 * into an unbounded FIFO; W worker threads take connections from it and serve
 * their requests, each taking S ms of "work". Offered load above W/S requests
 * per second therefore turns into a growing queue and growing latency.
 *
 * The service time can be changed at run time without queueing behind the
 * load: on a separate admin listener (GET /admin/service-ms?value=MS) or with
 * SIGUSR1 (double) / SIGUSR2 (halve).
 *
 * --hold mode serves connection-count tests instead: every connection is held
 * open by one poll loop until the client closes it; no worker is involved.
 */
#define _GNU_SOURCE
#include "jsonw.h"
#include "net.h"
#include "opts.h"
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_LISTEN	 16
#define MAX_WORKERS	 4096
#define MAX_SERVICE_MS	 60000.0
#define REQ_BUF		 8192
#define POLL_SLICE_MS	 200
#define ADMIN_TIMEOUT_MS 1000
#define HOLD_MAX_EVENTS	 256

enum service_dist {
	DIST_FIXED,
	DIST_EXP,
};

static struct {
	struct sockaddr_storage listen[MAX_LISTEN];
	socklen_t listen_len[MAX_LISTEN];
	int nlisten;
	unsigned int workers;
	double service_ms;
	const char *admin;
	int dist; /* enum service_dist */
	bool hold;
	unsigned int backlog;
	unsigned int idle_s;
} opt = {
	.workers = 4,
	.service_ms = 10,
	.backlog = 4096,
	.idle_s = 60,
};

/* Service time in microseconds; read by every worker for every request. */
static _Atomic uint64_t service_us = 10000;
static atomic_bool stopping;
static int stop_efd = -1;

static int listen_fd[MAX_LISTEN];
static int admin_fd = -1;

static struct {
	_Atomic uint64_t accepted;
	_Atomic uint64_t requests;
	_Atomic uint64_t busy;
	_Atomic uint64_t open_conns;
	_Atomic uint64_t max_open;
	_Atomic uint64_t accept_errors;
} stats;

/* The accept-to-worker queue: unbounded on purpose. */
struct queued_conn {
	struct list_head node;
	int fd;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list_head head;
	uint64_t len;
	uint64_t max_len;
} queue = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static void bump_max(_Atomic uint64_t *max, uint64_t v)
{
	uint64_t cur = atomic_load(max);

	while (v > cur && !atomic_compare_exchange_weak(max, &cur, v))
		;
}

static uint64_t service_time_us(unsigned int *seed)
{
	uint64_t mean = atomic_load(&service_us);
	double u;

	if (opt.dist == DIST_FIXED)
		return mean;
	u = (double)rand_r(seed) / ((double)RAND_MAX + 1.0);
	return (uint64_t)(-log(1.0 - u) * (double)mean);
}

static void set_service_us(uint64_t us)
{
	if (us > (uint64_t)(MAX_SERVICE_MS * 1000))
		us = (uint64_t)(MAX_SERVICE_MS * 1000);
	atomic_store(&service_us, us);
}

static void stats_json(FILE *f)
{
	struct jsonw w;

	jsonw_init(&w, f);
	jsonw_obj_open(&w, NULL);
	jsonw_str(&w, "mode", opt.hold ? "hold" : "queue");
	jsonw_double(&w, "service_ms", (double)atomic_load(&service_us) / 1000.0);
	jsonw_u64(&w, "workers", opt.hold ? 0 : opt.workers);
	jsonw_u64(&w, "accepted", atomic_load(&stats.accepted));
	jsonw_u64(&w, "requests", atomic_load(&stats.requests));
	jsonw_u64(&w, "open_conns", atomic_load(&stats.open_conns));
	jsonw_u64(&w, "max_open_conns", atomic_load(&stats.max_open));
	jsonw_u64(&w, "busy_workers", atomic_load(&stats.busy));
	pthread_mutex_lock(&queue.lock);
	jsonw_u64(&w, "queue_len", queue.len);
	jsonw_u64(&w, "queue_max", queue.max_len);
	pthread_mutex_unlock(&queue.lock);
	jsonw_obj_close(&w);
}

/*
 * Answers /admin/... into body. Returns the HTTP status. Shared by the admin
 * thread and the workers (an admin request on a service port works too, but
 * then waits in the queue like any other).
 */
static int admin_handle(const char *target, char *body, size_t len)
{
	const char *q = strchr(target, '?');
	size_t plen = q ? (size_t)(q - target) : strlen(target);
	double ms;

	if (plen == strlen("/admin/service-ms") && !strncmp(target, "/admin/service-ms", plen)) {
		if (q && !strncmp(q, "?value=", 7)) {
			if (parse_double(q + 7, 0, MAX_SERVICE_MS, &ms)) {
				snprintf(body, len, "bad value, want 0..%g ms\n", MAX_SERVICE_MS);
				return 400;
			}
			set_service_us((uint64_t)llround(ms * 1000.0));
		}
		snprintf(body, len, "service_ms=%.3f\n", (double)atomic_load(&service_us) / 1000.0);
		return 200;
	}
	if (plen == strlen("/admin/stats") && !strncmp(target, "/admin/stats", plen)) {
		FILE *f = fmemopen(body, len, "w");

		if (!f)
			return 500;
		stats_json(f);
		fclose(f);
		return 200;
	}
	snprintf(body, len, "not found\n");
	return 404;
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 431:
		return "Request Header Fields Too Large";
	default:
		return "Internal Server Error";
	}
}

static int send_response(int fd, int status, const char *body, bool keep)
{
	char hdr[256];
	size_t blen = strlen(body);
	int n;

	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "Connection: %s\r\n\r\n",
		     status, reason(status), blen, keep ? "keep-alive" : "close");
	/* One write for the head and a small body: one packet, one first byte. */
	if (blen < sizeof(hdr) - (size_t)n) {
		memcpy(hdr + n, body, blen);
		return write_all(fd, hdr, n + blen, 5000);
	}
	if (write_all(fd, hdr, n, 5000))
		return -1;
	return write_all(fd, body, blen, 5000);
}

struct request {
	char target[512];
	bool keep_alive;
	uint64_t content_length;
	size_t head_len;
};

/* Case-insensitive search for a token in a comma-separated header value. */
static bool header_has(const char *val, size_t len, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i + tl <= len; i++)
		if (!strncasecmp(val + i, tok, tl))
			return true;
	return false;
}

/* Parses a complete request head in buf[0..head_len). 0 or -EINVAL. */
static int parse_request(const char *buf, size_t head_len, struct request *r)
{
	const char *line_end = memmem(buf, head_len, "\r\n", 2);
	const char *sp1, *sp2, *p;
	bool http11;
	size_t tl;

	if (!line_end)
		return -EINVAL;
	sp1 = memchr(buf, ' ', line_end - buf);
	if (!sp1)
		return -EINVAL;
	sp2 = memchr(sp1 + 1, ' ', line_end - sp1 - 1);
	if (!sp2)
		return -EINVAL;
	tl = sp2 - sp1 - 1;
	if (tl >= sizeof(r->target))
		tl = sizeof(r->target) - 1;
	memcpy(r->target, sp1 + 1, tl);
	r->target[tl] = '\0';
	http11 = (size_t)(line_end - sp2 - 1) == 8 && !strncmp(sp2 + 1, "HTTP/1.1", 8);
	r->keep_alive = http11;
	r->content_length = 0;
	r->head_len = head_len;

	for (p = line_end + 2; p < buf + head_len - 2;) {
		const char *eol = memmem(p, buf + head_len - p, "\r\n", 2);
		const char *colon;

		if (!eol || eol == p)
			break;
		colon = memchr(p, ':', eol - p);
		if (colon) {
			const char *v = colon + 1;
			size_t nl = colon - p;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			if (nl == 10 && !strncasecmp(p, "connection", 10)) {
				if (header_has(v, eol - v, "close"))
					r->keep_alive = false;
				else if (header_has(v, eol - v, "keep-alive"))
					r->keep_alive = true;
			} else if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
				r->content_length = strtoull(v, NULL, 10);
			}
		}
		p = eol + 2;
	}
	return 0;
}

/*
 * Waits until fd is readable, in slices so that a stop is noticed. Returns 1
 * when readable, 0 when idle_ms passed, -1 when stopping.
 */
static int wait_readable(int fd, uint64_t idle_ms)
{
	uint64_t end = now_ns() + idle_ms * NSEC_PER_MSEC;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	while (!atomic_load(&stopping)) {
		uint64_t now = now_ns();

		if (now >= end)
			return 0;
		if (poll(&pfd, 1, POLL_SLICE_MS) > 0)
			return 1;
	}
	return -1;
}

static void park(int fd);

/*
 * Serves the requests of one connection that are already on their way. A
 * keep-alive connection with nothing more to read is parked with the acceptor
 * until its next request arrives, so that an idle connection holds no worker
 * (workers are busy per request, as in an event-driven server).
 */
static void serve_conn(int fd, unsigned int *seed)
{
	char buf[REQ_BUF], body[1024];
	size_t len = 0;

	for (;;) {
		const char *end = memmem(buf, len, "\r\n\r\n", 4);
		struct request r;
		uint64_t skip;
		ssize_t n;
		int status;

		if (!end) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};

			/* Nothing to serve yet: wait without holding a worker. */
			if (!len && poll(&pfd, 1, 0) == 0) {
				park(fd);
				return;
			}
			if (len == sizeof(buf)) {
				send_response(fd, 431, "request head too large\n", false);
				break;
			}
			if (wait_readable(fd, (uint64_t)opt.idle_s * 1000) <= 0)
				break;
			n = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0)
				break;
			len += n;
			continue;
		}
		if (parse_request(buf, end + 4 - buf, &r)) {
			send_response(fd, 400, "bad request\n", false);
			break;
		}
		/* Drop the head and any body (read and discarded). */
		skip = r.head_len + r.content_length;
		while (skip > len) {
			skip -= len;
			len = 0;
			if (wait_readable(fd, 5000) <= 0)
				goto out;
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
				goto out;
			if (n > 0)
				len = n;
		}
		memmove(buf, buf + skip, len - skip);
		len -= skip;

		if (!strncmp(r.target, "/admin/", 7)) {
			status = admin_handle(r.target, body, sizeof(body));
		} else {
			sleep_ns(service_time_us(seed) * NSEC_PER_USEC);
			status = 200;
			snprintf(body, sizeof(body), "ok\n");
		}
		atomic_fetch_add(&stats.requests, 1);
		if (send_response(fd, status, body, r.keep_alive) || !r.keep_alive)
			break;
		if (!len) {
			park(fd);
			return;
		}
	}
out:
	close(fd);
	atomic_fetch_sub(&stats.open_conns, 1);
}

static void *worker_main(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg * 2654435761U;

	for (;;) {
		struct queued_conn *qc;
		int fd;

		pthread_mutex_lock(&queue.lock);
		while (list_empty(&queue.head) && !atomic_load(&stopping))
			pthread_cond_wait(&queue.cond, &queue.lock);
		if (atomic_load(&stopping)) {
			pthread_mutex_unlock(&queue.lock);
			return NULL;
		}
		qc = list_first_entry(&queue.head, struct queued_conn, node);
		list_del(&qc->node);
		queue.len--;
		pthread_mutex_unlock(&queue.lock);

		fd = qc->fd;
		free(qc);
		atomic_fetch_add(&stats.busy, 1);
		serve_conn(fd, &seed);
		atomic_fetch_sub(&stats.busy, 1);
	}
}

static void enqueue(int fd)
{
	struct queued_conn *qc = malloc(sizeof(*qc));

	if (!qc) {
		close(fd);
		atomic_fetch_sub(&stats.open_conns, 1);
		return;
	}
	qc->fd = fd;
	pthread_mutex_lock(&queue.lock);
	list_add_tail(&qc->node, &queue.head);
	if (++queue.len > queue.max_len)
		queue.max_len = queue.len;
	pthread_cond_signal(&queue.cond);
	pthread_mutex_unlock(&queue.lock);
}

/* Accepts every pending connection of lfd; calls take(fd) for each. */
static void accept_all(int lfd, void (*take)(int fd))
{
	for (int i = 0; i < 1024; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				atomic_fetch_add(&stats.accept_errors, 1);
				/* Let workers free descriptors before trying again. */
				sleep_ns(10 * NSEC_PER_MSEC);
			}
			return;
		}
		atomic_fetch_add(&stats.accepted, 1);
		bump_max(&stats.max_open, atomic_fetch_add(&stats.open_conns, 1) + 1);
		take(fd);
	}
}

/*
 * The acceptor's epoll set holds the listeners and the parked keep-alive
 * connections; a parked connection that becomes readable joins the queue.
 */
static int acceptor_epfd = -1;

#define TAG_LISTEN (1ULL << 62)
#define TAG_STOP   (1ULL << 61)

static void park(int fd)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT,
		.data.u64 = (uint64_t)fd,
	};

	if (epoll_ctl(acceptor_epfd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		atomic_fetch_sub(&stats.open_conns, 1);
	}
}

static void *acceptor_main(void *arg)
{
	struct epoll_event ev, events[HOLD_MAX_EVENTS];

	(void)arg;
	for (int i = 0; i < opt.nlisten; i++) {
		ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = TAG_LISTEN | i};
		epoll_ctl(acceptor_epfd, EPOLL_CTL_ADD, listen_fd[i], &ev);
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = TAG_STOP};
	epoll_ctl(acceptor_epfd, EPOLL_CTL_ADD, stop_efd, &ev);

	while (!atomic_load(&stopping)) {
		int n = epoll_wait(acceptor_epfd, events, HOLD_MAX_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			uint64_t tag = events[i].data.u64;

			if (tag == TAG_STOP)
				continue;
			if (tag & TAG_LISTEN) {
				accept_all(listen_fd[tag & 0xffff], enqueue);
				continue;
			}
			epoll_ctl(acceptor_epfd, EPOLL_CTL_DEL, (int)tag, NULL);
			enqueue((int)tag);
		}
	}
	return NULL;
}

/* --hold: one epoll loop holds every connection and answers requests at once. */
static int hold_epfd = -1;

static void hold_take(int fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};

	set_nonblock(fd, 1);
	if (epoll_ctl(hold_epfd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		atomic_fetch_sub(&stats.open_conns, 1);
	}
}

static void hold_readable(int fd)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				   "Content-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n";
	char buf[4096];

	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			epoll_ctl(hold_epfd, EPOLL_CTL_DEL, fd, NULL);
			close(fd);
			atomic_fetch_sub(&stats.open_conns, 1);
			return;
		}
		/* Each complete request head in this chunk gets one answer. */
		for (char *p = buf; (p = memmem(p, buf + n - p, "\r\n\r\n", 4)); p += 4) {
			atomic_fetch_add(&stats.requests, 1);
			send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
	}
}

static void *hold_main(void *arg)
{
	struct epoll_event ev, events[HOLD_MAX_EVENTS];

	(void)arg;
	for (int i = 0; i < opt.nlisten; i++) {
		ev = (struct epoll_event){.events = EPOLLIN, .data.fd = listen_fd[i]};
		epoll_ctl(hold_epfd, EPOLL_CTL_ADD, listen_fd[i], &ev);
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.fd = stop_efd};
	epoll_ctl(hold_epfd, EPOLL_CTL_ADD, stop_efd, &ev);

	while (!atomic_load(&stopping)) {
		int n = epoll_wait(hold_epfd, events, HOLD_MAX_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			bool is_listen = false;

			if (fd == stop_efd)
				continue;
			for (int j = 0; j < opt.nlisten; j++)
				if (fd == listen_fd[j])
					is_listen = true;
			if (is_listen)
				accept_all(fd, hold_take);
			else
				hold_readable(fd);
		}
	}
	return NULL;
}

/* The admin listener: one request per connection, answered at once. */
static void admin_serve(int fd)
{
	char buf[2048], body[1024];
	struct request r;
	size_t len = 0;
	char *end;
	int status;

	while (len < sizeof(buf) - 1) {
		ssize_t n;

		if (wait_readable(fd, ADMIN_TIMEOUT_MS) <= 0)
			goto out;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
		if (n <= 0)
			goto out;
		len += n;
		end = memmem(buf, len, "\r\n\r\n", 4);
		if (end)
			break;
	}
	end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end || parse_request(buf, end + 4 - buf, &r)) {
		send_response(fd, 400, "bad request\n", false);
		goto out;
	}
	status = admin_handle(r.target, body, sizeof(body));
	send_response(fd, status, body, false);
out:
	close(fd);
}

static void *admin_main(void *arg)
{
	struct pollfd pfd[2] = {
		{.fd = admin_fd, .events = POLLIN},
		{.fd = stop_efd, .events = POLLIN},
	};

	(void)arg;
	while (!atomic_load(&stopping)) {
		if (poll(pfd, 2, -1) <= 0 || !(pfd[0].revents & POLLIN))
			continue;
		int fd = accept4(admin_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0)
			admin_serve(fd);
	}
	return NULL;
}

/* --admin / --control: ADDR:PORT, a bare port on 127.0.0.1, or a Unix socket path. */
static int open_admin(const char *spec, char *desc, size_t dlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t port;
	int fd;

	if (strchr(spec, '/')) {
		fd = unix_listen(spec, 64);
		snprintf(desc, dlen, "%s", spec);
		return fd;
	}
	if (!parse_u64(spec, 1, 65535, &port)) {
		char buf[32];

		snprintf(buf, sizeof(buf), "127.0.0.1:%llu", (unsigned long long)port);
		addr_parse(buf, &ss, &len);
	} else if (addr_parse(spec, &ss, &len)) {
		return -EINVAL;
	}
	fd = tcp_listen((struct sockaddr *)&ss, len, 64);
	if (fd >= 0)
		sock_local_str(fd, desc, dlen);
	return fd;
}

static int parse_listen(const char *value, void *dest)
{
	(void)dest;
	if (opt.nlisten == MAX_LISTEN) {
		fprintf(stderr, "ls-server: at most %d --listen\n", MAX_LISTEN);
		return -E2BIG;
	}
	if (addr_parse(value, &opt.listen[opt.nlisten], &opt.listen_len[opt.nlisten]))
		return -EINVAL;
	opt.nlisten++;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const char *const dists[] = {[DIST_FIXED] = "fixed", [DIST_EXP] = "exp", NULL};
	/* clang-format off */
	static const struct opt opts[] = {
		{.name = "listen", .short_name = 'l', .arg = "ADDR:PORT", .flags = OPT_REQUIRED,
		 .type = OPT_CALL, .parse = parse_listen,
		 .help = "IPv4 ADDR:PORT or [IPv6]:PORT (repeatable;\n"
			 "port 0 picks one, shown on the listening line)"},
		{.name = "workers", .short_name = 'w', .arg = "W",
		 .type = OPT_UINT, .dest = &opt.workers, .min = 1, .max = MAX_WORKERS,
		 .help = "worker threads (default 4)"},
		{.name = "service-ms", .short_name = 's', .arg = "S",
		 .type = OPT_DOUBLE, .dest = &opt.service_ms, .dmin = 0, .dmax = MAX_SERVICE_MS,
		 .help = "work per request in ms, fractional ok (default 10)"},
		{.name = "service-dist", .arg = "D",
		 .type = OPT_CHOICE, .dest = &opt.dist, .choices = dists,
		 .help = "fixed (default) or exp (exponential, mean S)"},
		{.name = "admin", .short_name = 'a', .arg = "ADDR:PORT",
		 .type = OPT_STRING, .dest = &opt.admin,
		 .help = "admin listener with its own thread (no queueing):\n"
			 "  GET /admin/service-ms[?value=MS]  read or set S\n"
			 "  GET /admin/stats                  JSON counters"},
		{.name = "control", .arg = "X",
		 .type = OPT_STRING, .dest = &opt.admin,
		 .help = "the same; X is ADDR:PORT, a port on 127.0.0.1\n"
			 "or a Unix socket path"},
		{.name = "hold",
		 .type = OPT_FLAG, .dest = &opt.hold,
		 .help = "hold every connection until the client closes it\n"
			 "(no workers; each request is answered at once)"},
		{.name = "backlog", .arg = "N",
		 .type = OPT_UINT, .dest = &opt.backlog, .min = 1, .max = 1 << 20,
		 .help = "listen backlog (default 4096)"},
		{.name = "idle-s", .arg = "N",
		 .type = OPT_UINT, .dest = &opt.idle_s, .min = 1, .max = 86400,
		 .help = "drop a request head still incomplete after N s\n"
			 "(default 60)"},
		{},
	};
	static const struct opt_tool tool = {
		.name = "ls-server",
		.synopsis = "--listen ADDR:PORT [--listen ...] [options]",
		.about = "HTTP/1.1 test server: W workers behind an unbounded accept queue.",
		.epilog = "A worker is busy per request: idle keep-alive connections wait "
			  "in the\n"
			  "acceptor's epoll set, not in a worker, until the client sends or "
			  "closes.\n"
			  "Prints 'listening ADDR:PORT... [admin=X] workers=W service_ms=S\n"
			  "mode=queue|hold' when ready. SIGUSR1 doubles S, SIGUSR2 halves it.\n"
			  "SIGTERM/SIGINT stop it; it prints 'stats ...' (or 'hold current=N "
			  "total=N\n"
			  "max=N requests=N') and exits 0.\n",
		.opts = opts,
	};
	/* clang-format on */

	if (opts_parse(&tool, argc, argv))
		return -1;
	set_service_us((uint64_t)llround(opt.service_ms * 1000.0));
	return 0;
}

/* Waits for signals in the main thread; returns when asked to stop. */
static void signal_loop(const sigset_t *set)
{
	for (;;) {
		int sig = sigwaitinfo(set, NULL);
		uint64_t us = atomic_load(&service_us);

		if (sig == SIGUSR1) {
			set_service_us(us ? us * 2 : 1000);
		} else if (sig == SIGUSR2) {
			set_service_us(us / 2);
		} else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			return;
		} else {
			continue;
		}
		fprintf(stderr, "ls-server: service_ms=%.3f\n",
			(double)atomic_load(&service_us) / 1000.0);
	}
}

int main(int argc, char **argv)
{
	pthread_t *workers = NULL, acceptor, admin;
	char line[1024], addr[ADDR_STRLEN];
	uint64_t one = 1, unserved = 0;
	bool admin_started = false;
	size_t off = 0;
	pthread_attr_t attr;
	sigset_t set;
	int ret = EXIT_RUNTIME;

	if (parse_args(argc, argv))
		return EXIT_USAGE;

	list_init(&queue.head);
	raise_nofile(1 << 20);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	/* Every thread inherits the mask; only the main thread takes signals. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stop_efd < 0) {
		perror("ls-server: eventfd");
		return EXIT_RUNTIME;
	}
	for (int i = 0; i < opt.nlisten; i++) {
		listen_fd[i] = tcp_listen((struct sockaddr *)&opt.listen[i], opt.listen_len[i],
					  opt.backlog);
		if (listen_fd[i] < 0) {
			fprintf(stderr, "ls-server: listen on %s: %s\n",
				addr_format((struct sockaddr *)&opt.listen[i], addr, sizeof(addr)),
				strerror(-listen_fd[i]));
			return EXIT_RUNTIME;
		}
		off += snprintf(line + off, sizeof(line) - off, " %s",
				sock_local_str(listen_fd[i], addr, sizeof(addr)));
	}
	if (opt.admin) {
		char desc[256];

		admin_fd = open_admin(opt.admin, desc, sizeof(desc));
		if (admin_fd < 0) {
			fprintf(stderr, "ls-server: admin listener '%s': %s\n", opt.admin,
				strerror(-admin_fd));
			return admin_fd == -EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
		}
		off += snprintf(line + off, sizeof(line) - off, " admin=%s", desc);
	}

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (opt.hold) {
		hold_epfd = epoll_create1(EPOLL_CLOEXEC);
		if (hold_epfd < 0 || pthread_create(&acceptor, &attr, hold_main, NULL)) {
			perror("ls-server: hold loop");
			return EXIT_RUNTIME;
		}
	} else {
		workers = calloc(opt.workers, sizeof(*workers));
		acceptor_epfd = epoll_create1(EPOLL_CLOEXEC);
		if (!workers || acceptor_epfd < 0)
			return EXIT_RUNTIME;
		for (unsigned int i = 0; i < opt.workers; i++) {
			if (pthread_create(&workers[i], &attr, worker_main,
					   (void *)(uintptr_t)(i + 1))) {
				perror("ls-server: worker");
				return EXIT_RUNTIME;
			}
		}
		if (pthread_create(&acceptor, &attr, acceptor_main, NULL)) {
			perror("ls-server: acceptor");
			return EXIT_RUNTIME;
		}
	}
	if (admin_fd >= 0) {
		if (pthread_create(&admin, &attr, admin_main, NULL)) {
			perror("ls-server: admin");
			return EXIT_RUNTIME;
		}
		admin_started = true;
	}

	printf("listening%s workers=%u service_ms=%.3f mode=%s\n", line, opt.hold ? 0 : opt.workers,
	       (double)atomic_load(&service_us) / 1000.0, opt.hold ? "hold" : "queue");
	fflush(stdout);

	signal_loop(&set);

	atomic_store(&stopping, true);
	if (write(stop_efd, &one, sizeof(one)) < 0)
		perror("ls-server: eventfd write");
	pthread_mutex_lock(&queue.lock);
	pthread_cond_broadcast(&queue.cond);
	pthread_mutex_unlock(&queue.lock);

	pthread_join(acceptor, NULL);
	if (admin_started)
		pthread_join(admin, NULL);
	for (unsigned int i = 0; workers && i < opt.workers; i++)
		pthread_join(workers[i], NULL);
	while (!list_empty(&queue.head)) {
		struct queued_conn *qc = list_first_entry(&queue.head, struct queued_conn, node);

		list_del(&qc->node);
		close(qc->fd);
		free(qc);
		unserved++;
	}

	if (opt.hold)
		printf("hold current=%llu total=%llu max=%llu requests=%llu\n",
		       (unsigned long long)atomic_load(&stats.open_conns),
		       (unsigned long long)atomic_load(&stats.accepted),
		       (unsigned long long)atomic_load(&stats.max_open),
		       (unsigned long long)atomic_load(&stats.requests));
	else
		printf("stats accepted=%llu requests=%llu queue_max=%llu unserved=%llu "
		       "accept_errors=%llu\n",
		       (unsigned long long)atomic_load(&stats.accepted),
		       (unsigned long long)atomic_load(&stats.requests),
		       (unsigned long long)queue.max_len, (unsigned long long)unserved,
		       (unsigned long long)atomic_load(&stats.accept_errors));
	fflush(stdout);
	ret = EXIT_OK;
	if (opt.admin && strchr(opt.admin, '/'))
		unlink(opt.admin);
	free(workers);
	return ret;
}
