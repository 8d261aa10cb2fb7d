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
#include "util.h"

#include <errno.h>
#include <getopt.h>
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

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ls-conn --target ADDR:PORT [--src ADDR] --count N [options]\n"
		"\n"
		"Opens N connections sequentially, then holds the successful ones open.\n"
		"\n"
		"  -t, --target ADDR:PORT       server, IPv4 or [IPv6]:PORT\n"
		"  -s, --src ADDR               source address to bind\n"
		"  -n, --count N                connections to open (default 1, at most %d)\n"
		"  -T, --connect-timeout-ms T   per connect (default %d)\n"
		"  -H, --hold-s S               hold at most S s (default %d, at most %d); the "
		"hold\n"
		"                               also ends when stdin (a pipe) closes, or on\n"
		"                               SIGTERM/SIGINT\n"
		"  -i, --interval-ms I          pause between connects (default 0)\n"
		"  -h, --help                   this text\n"
		"\n"
		"Lines: 'conn I ok|refused|timeout|error:ENAME ms=X', then\n"
		"'ok=A refused=B timeout=C error=D' when all connects are done, 'lost I REASON'\n"
		"if a held connection ends early, and 'released N' before exiting 0.\n",
		MAX_COUNT, DEFAULT_TIMEOUT, DEFAULT_HOLD_S, MAX_HOLD_S);
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

static int parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"target", required_argument, NULL, 't'},
		{"src", required_argument, NULL, 's'},
		{"count", required_argument, NULL, 'n'},
		{"connect-timeout-ms", required_argument, NULL, 'T'},
		{"hold-s", required_argument, NULL, 'H'},
		{"interval-ms", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	bool has_target = false;
	int c;

	while ((c = getopt_long(argc, argv, "t:s:n:T:H:i:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (addr_parse(optarg, &opt.dst, &opt.dst_len)) {
				fprintf(stderr, "ls-conn: bad --target '%s'\n", optarg);
				return -1;
			}
			has_target = true;
			break;
		case 's':
			if (addr_parse_host(optarg, &opt.src, &opt.src_len)) {
				fprintf(stderr, "ls-conn: bad --src '%s'\n", optarg);
				return -1;
			}
			opt.has_src = true;
			break;
		case 'n':
			if (parse_u64(optarg, 1, MAX_COUNT, &opt.count)) {
				fprintf(stderr, "ls-conn: --count wants 1..%d\n", MAX_COUNT);
				return -1;
			}
			break;
		case 'T':
			if (parse_u64(optarg, 1, 600000, &opt.timeout_ms)) {
				fprintf(stderr, "ls-conn: bad --connect-timeout-ms\n");
				return -1;
			}
			break;
		case 'H':
			if (parse_u64(optarg, 0, MAX_HOLD_S, &opt.hold_s)) {
				fprintf(stderr, "ls-conn: --hold-s wants 0..%d\n", MAX_HOLD_S);
				return -1;
			}
			break;
		case 'i':
			if (parse_u64(optarg, 0, 60000, &opt.interval_ms)) {
				fprintf(stderr, "ls-conn: bad --interval-ms\n");
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ls-conn: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!has_target) {
		fprintf(stderr, "ls-conn: --target is required\n");
		usage(stderr);
		return -1;
	}
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
