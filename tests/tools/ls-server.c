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
#include "http.h"
#include "jsonw.h"
#include "net.h"
#include "opts.h"
#include "srv.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_LISTEN	 SRV_MAX_LISTEN
#define MAX_WORKERS	 4096
#define MAX_SERVICE_MS	 60000.0
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
static int admin_fd = -1;

static int handle(const struct http_req *req, char *body, size_t len, unsigned int *seed);

static struct srv srv = {
	.name = "ls-server",
	.handle = handle,
};

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
	uint64_t queue_len, queue_max;
	struct jsonw w;

	jsonw_init(&w, f);
	jsonw_obj_open(&w, NULL);
	jsonw_str(&w, "mode", opt.hold ? "hold" : "queue");
	jsonw_double(&w, "service_ms", (double)atomic_load(&service_us) / 1000.0);
	jsonw_u64(&w, "workers", opt.hold ? 0 : opt.workers);
	jsonw_u64(&w, "accepted", atomic_load(&srv.stats.accepted));
	jsonw_u64(&w, "requests", atomic_load(&srv.stats.requests));
	jsonw_u64(&w, "open_conns", atomic_load(&srv.stats.open_conns));
	jsonw_u64(&w, "max_open_conns", atomic_load(&srv.stats.max_open));
	jsonw_u64(&w, "busy_workers", atomic_load(&srv.stats.busy));
	srv_queue_len(&srv, &queue_len, &queue_max);
	jsonw_u64(&w, "queue_len", queue_len);
	jsonw_u64(&w, "queue_max", queue_max);
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

/* A request on a service port: S ms of work, or an admin request (queued like any other). */
static int handle(const struct http_req *req, char *body, size_t len, unsigned int *seed)
{
	if (!strncmp(req->target, "/admin/", 7))
		return admin_handle(req->target, body, len);
	sleep_ns(service_time_us(seed) * NSEC_PER_USEC);
	snprintf(body, len, "ok\n");
	return 200;
}

/* --hold: one epoll loop holds every connection and answers requests at once. */
static int hold_epfd = -1;

static void hold_take(struct srv *s, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};

	set_nonblock(fd, 1);
	if (epoll_ctl(hold_epfd, EPOLL_CTL_ADD, fd, &ev))
		srv_conn_close(s, fd);
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
			srv_conn_close(&srv, fd);
			return;
		}
		/* Each complete request head in this chunk gets one answer. */
		for (char *p = buf; (p = memmem(p, buf + n - p, "\r\n\r\n", 4)); p += 4) {
			atomic_fetch_add(&srv.stats.requests, 1);
			send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
	}
}

static void *hold_main(void *arg)
{
	struct epoll_event ev, events[HOLD_MAX_EVENTS];

	(void)arg;
	for (int i = 0; i < srv.nlisten; i++) {
		ev = (struct epoll_event){.events = EPOLLIN, .data.fd = srv.listen_fd[i]};
		epoll_ctl(hold_epfd, EPOLL_CTL_ADD, srv.listen_fd[i], &ev);
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.fd = srv.stop_efd};
	epoll_ctl(hold_epfd, EPOLL_CTL_ADD, srv.stop_efd, &ev);

	while (!srv_stopping(&srv)) {
		int n = epoll_wait(hold_epfd, events, HOLD_MAX_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			bool is_listen = false;

			if (fd == srv.stop_efd)
				continue;
			for (int j = 0; j < srv.nlisten; j++)
				if (fd == srv.listen_fd[j])
					is_listen = true;
			if (is_listen)
				srv_accept_all(&srv, fd, hold_take);
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
	struct http_req r;
	size_t len = 0;
	char *end;
	int status;

	while (len < sizeof(buf) - 1) {
		ssize_t n;

		if (srv_wait(&srv, fd, POLLIN, now_ns() + ADMIN_TIMEOUT_MS * NSEC_PER_MSEC))
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
	if (!end || http_parse_request(buf, end + 4 - buf, &r)) {
		http_send_response(fd, 400, "bad request\n", false);
		goto out;
	}
	status = admin_handle(r.target, body, sizeof(body));
	http_send_response(fd, status, body, false);
out:
	close(fd);
}

static void *admin_main(void *arg)
{
	struct pollfd pfd[2] = {
		{.fd = admin_fd, .events = POLLIN},
		{.fd = srv.stop_efd, .events = POLLIN},
	};

	(void)arg;
	while (!srv_stopping(&srv)) {
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
	char line[1024], addr[ADDR_STRLEN];
	uint64_t unserved = 0;
	bool admin_started = false;
	pthread_t hold, admin;
	size_t off = 0;
	pthread_attr_t attr;
	sigset_t set;

	if (parse_args(argc, argv))
		return EXIT_USAGE;

	srv_signals(&set, SIGUSR1, SIGUSR2, 0);
	if (srv_init(&srv))
		return EXIT_RUNTIME;
	for (int i = 0; i < opt.nlisten; i++) {
		int fd = tcp_listen((struct sockaddr *)&opt.listen[i], opt.listen_len[i],
				    opt.backlog);

		if (fd < 0) {
			fprintf(stderr, "ls-server: listen on %s: %s\n",
				addr_format((struct sockaddr *)&opt.listen[i], addr, sizeof(addr)),
				strerror(-fd));
			return EXIT_RUNTIME;
		}
		srv.listen_fd[srv.nlisten++] = fd;
		off += snprintf(line + off, sizeof(line) - off, " %s",
				sock_local_str(fd, addr, sizeof(addr)));
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
		if (hold_epfd < 0 || pthread_create(&hold, &attr, hold_main, NULL)) {
			perror("ls-server: hold loop");
			return EXIT_RUNTIME;
		}
	} else {
		srv.workers = opt.workers;
		srv.idle_ms = (uint64_t)opt.idle_s * 1000;
		if (srv_start(&srv))
			return EXIT_RUNTIME;
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

	srv_stop(&srv);
	if (opt.hold)
		pthread_join(hold, NULL);
	if (admin_started)
		pthread_join(admin, NULL);
	unserved = srv_join(&srv);

	if (opt.hold)
		printf("hold current=%llu total=%llu max=%llu requests=%llu\n",
		       (unsigned long long)atomic_load(&srv.stats.open_conns),
		       (unsigned long long)atomic_load(&srv.stats.accepted),
		       (unsigned long long)atomic_load(&srv.stats.max_open),
		       (unsigned long long)atomic_load(&srv.stats.requests));
	else
		printf("stats accepted=%llu requests=%llu queue_max=%llu unserved=%llu "
		       "accept_errors=%llu\n",
		       (unsigned long long)atomic_load(&srv.stats.accepted),
		       (unsigned long long)atomic_load(&srv.stats.requests),
		       (unsigned long long)srv.queue.max_len, (unsigned long long)unserved,
		       (unsigned long long)atomic_load(&srv.stats.accept_errors));
	fflush(stdout);
	if (opt.admin && strchr(opt.admin, '/'))
		unlink(opt.admin);
	return EXIT_OK;
}
