// SPDX-License-Identifier: GPL-2.0
/*
 * ls-conn: opens N TCP connections one after another and holds the ones that
 * succeed, for connection-limit tests: N admitted, the next one refused (a RST
 * answered the SYN) or timed out (the SYN was dropped).
 *
 * Output, one line each, flushed as it happens:
 *   conn I ok|refused|timeout|error:ENAME ms=X.XXX
 *   ok=A refused=B timeout=C error=D          (all connects done; holding)
 *   lost I eof|reset|error:ENAME              (a held connection ended early)
 *   released N                                (closed with a FIN; exit)
 */
#define _GNU_SOURCE
#include "net.h"
#include "opts.h"
#include "util.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_COUNT	100000
#define MAX_HOLD_S	3600
#define DEFAULT_HOLD_S	300
#define DEFAULT_TIMEOUT 1000

static struct {
	struct sockaddr_storage dst, src;
	socklen_t dst_len, src_len;
	bool has_src;
	uint64_t count;
	uint64_t timeout_ms;
	uint64_t hold_s;
	uint64_t interval_ms;
} opt = {
	.count = 1,
	.timeout_ms = DEFAULT_TIMEOUT,
	.hold_s = DEFAULT_HOLD_S,
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

/* Connects one socket within the timeout. Returns the fd, or -errno (-ETIMEDOUT). */
static int connect_one(void)
{
	int one = 1, fd, err = 0;
	struct pollfd pfd;
	socklen_t len = sizeof(err);
	uint64_t end;

	fd = socket(opt.dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (opt.has_src) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&opt.src, opt.src_len))
			goto fail;
	}
	if (!connect(fd, (struct sockaddr *)&opt.dst, opt.dst_len))
		return fd;
	if (errno != EINPROGRESS)
		goto fail;

	end = now_ns() + opt.timeout_ms * NSEC_PER_MSEC;
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	for (;;) {
		uint64_t now = now_ns();
		int n;

		if (now >= end || got_signal) {
			close(fd);
			return -ETIMEDOUT;
		}
		n = poll(&pfd, 1, (int)((end - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC));
		if (n > 0)
			break;
		if (n < 0 && errno != EINTR)
			goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		goto fail;
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

static bool stdin_is_pipe(void)
{
	struct stat st;

	return !fstat(STDIN_FILENO, &st) && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

/* Holds fds[] open until stdin closes, the hold time passes or a signal comes. */
static void hold(int *fds, uint64_t n)
{
	uint64_t end = now_ns() + opt.hold_s * NSEC_PER_SEC, live = 0;
	bool watch_stdin = stdin_is_pipe();
	struct pollfd *pfd = calloc(n + 1, sizeof(*pfd));
	char buf[4096], name[16];

	if (!pfd)
		return;
	for (uint64_t i = 0; i < n; i++) {
		pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN | POLLRDHUP};
		live += fds[i] >= 0;
	}
	pfd[n] = (struct pollfd){.fd = watch_stdin ? STDIN_FILENO : -1, .events = POLLIN};

	while (!got_signal) {
		uint64_t now = now_ns();
		int r;

		if (now >= end)
			break;
		r = poll(pfd, n + 1, (int)((end - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC));
		if (r <= 0)
			continue;
		if (pfd[n].revents) {
			ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));

			if (got <= 0)
				break;
		}
		for (uint64_t i = 0; i < n; i++) {
			ssize_t got;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			got = recv(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (got > 0 || (got < 0 && errno == EAGAIN))
				continue;
			if (got == 0)
				printf("lost %llu eof\n", (unsigned long long)i + 1);
			else if (errno == ECONNRESET)
				printf("lost %llu reset\n", (unsigned long long)i + 1);
			else
				printf("lost %llu error:%s\n", (unsigned long long)i + 1,
				       errno_name(errno, name, sizeof(name)));
			close(pfd[i].fd);
			fds[i] = -1;
			pfd[i].fd = -1;
		}
	}
	free(pfd);
}

static int parse_target(const char *value, void *dest)
{
	(void)dest;
	return addr_parse(value, &opt.dst, &opt.dst_len);
}

static int parse_src(const char *value, void *dest)
{
	(void)dest;
	return addr_parse_host(value, &opt.src, &opt.src_len);
}

static int parse_args(int argc, char **argv)
{
	/* clang-format off */
	static const struct opt opts[] = {
		{.name = "target", .short_name = 't', .arg = "ADDR:PORT", .flags = OPT_REQUIRED,
		 .type = OPT_CALL, .parse = parse_target,
		 .help = "server, IPv4 or [IPv6]:PORT"},
		{.name = "src", .short_name = 's', .arg = "ADDR", .seen = &opt.has_src,
		 .type = OPT_CALL, .parse = parse_src,
		 .help = "source address to bind"},
		{.name = "count", .short_name = 'n', .arg = "N",
		 .type = OPT_U64, .dest = &opt.count, .min = 1, .max = MAX_COUNT,
		 .help = "connections to open (default 1, at most " OPT_STR(MAX_COUNT) ")"},
		{.name = "connect-timeout-ms", .short_name = 'T', .arg = "T",
		 .type = OPT_U64, .dest = &opt.timeout_ms, .min = 1, .max = 600000,
		 .help = "per connect (default " OPT_STR(DEFAULT_TIMEOUT) ")"},
		{.name = "hold-s", .short_name = 'H', .arg = "S",
		 .type = OPT_U64, .dest = &opt.hold_s, .min = 0, .max = MAX_HOLD_S,
		 .help = "hold at most S s (default " OPT_STR(DEFAULT_HOLD_S) ", at most "
			 OPT_STR(MAX_HOLD_S) "); the hold\n"
			 "also ends when stdin (a pipe) closes, or on\n"
			 "SIGTERM/SIGINT"},
		{.name = "interval-ms", .short_name = 'i', .arg = "I",
		 .type = OPT_U64, .dest = &opt.interval_ms, .min = 0, .max = 60000,
		 .help = "pause between connects (default 0)"},
		{},
	};
	/* clang-format on */
	static const struct opt_tool tool = {
		.name = "ls-conn",
		.synopsis = "--target ADDR:PORT [--src ADDR] --count N [options]",
		.about = "Opens N connections sequentially, then holds the successful ones open.",
		.epilog = "Lines: 'conn I ok|refused|timeout|error:ENAME ms=X', then\n"
			  "'ok=A refused=B timeout=C error=D' when all connects are done,\n"
			  "'lost I REASON' if a held connection ends early, and\n"
			  "'released N' before exiting 0.\n",
		.opts = opts,
	};

	if (opts_parse(&tool, argc, argv))
		return -1;
	if (opt.has_src && opt.src.ss_family != opt.dst.ss_family) {
		fprintf(stderr, "ls-conn: --src and --target differ in family\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t ok = 0, refused = 0, timeout = 0, error = 0, released = 0;
	struct sigaction sa = {.sa_handler = on_signal};
	char name[16];
	int *fds;

	if (parse_args(argc, argv))
		return EXIT_USAGE;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* No SA_RESTART: a signal interrupts poll() at once. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (raise_nofile(opt.count + 64) < opt.count + 64) {
		fprintf(stderr, "ls-conn: RLIMIT_NOFILE too low for %llu connections\n",
			(unsigned long long)opt.count);
		return EXIT_RUNTIME;
	}
	fds = calloc(opt.count, sizeof(*fds));
	if (!fds)
		return EXIT_RUNTIME;

	for (uint64_t i = 0; i < opt.count; i++) {
		uint64_t t0 = now_ns();
		int fd = got_signal ? -EINTR : connect_one();
		double ms = (double)(now_ns() - t0) / 1e6;

		fds[i] = fd >= 0 ? fd : -1;
		if (fd >= 0) {
			ok++;
			printf("conn %llu ok ms=%.3f\n", (unsigned long long)i + 1, ms);
		} else if (fd == -ECONNREFUSED) {
			refused++;
			printf("conn %llu refused ms=%.3f\n", (unsigned long long)i + 1, ms);
		} else if (fd == -ETIMEDOUT) {
			timeout++;
			printf("conn %llu timeout ms=%.3f\n", (unsigned long long)i + 1, ms);
		} else {
			error++;
			printf("conn %llu error:%s ms=%.3f\n", (unsigned long long)i + 1,
			       errno_name(-fd, name, sizeof(name)), ms);
		}
		if (opt.interval_ms && i + 1 < opt.count)
			sleep_ns(opt.interval_ms * NSEC_PER_MSEC);
	}
	printf("ok=%llu refused=%llu timeout=%llu error=%llu\n", (unsigned long long)ok,
	       (unsigned long long)refused, (unsigned long long)timeout, (unsigned long long)error);

	if (ok && opt.hold_s)
		hold(fds, opt.count);
	for (uint64_t i = 0; i < opt.count; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
			released++;
		}
	}
	printf("released %llu\n", (unsigned long long)released);
	free(fds);
	return EXIT_OK;
}
