// SPDX-License-Identifier: GPL-2.0
/*
 * ls-synflood: sends TCP SYNs from a raw socket, bounded in rate, count and
 * time. Source ports are random, and source addresses too when --src names a
 * prefix. IPv4 and IPv6, with correct IP and TCP checksums.
 *
 * Also the tool for half-open flows: send K SYNs and never complete them.
 * For a flow to stay half-open, the server's SYN-ACK must reach no socket
 * that would answer it with a RST: use a source address that no host owns
 * (the SYN-ACK is then dropped on the way back).
 */
#define _GNU_SOURCE
#include "net.h"
#include "opts.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DURATION_S 300
#define BATCH	       64
#define PKT_MAX	       64
#define TCP_HDR_LEN    24 /* 20 bytes and an MSS option */
#define IP4_HDR_LEN    20
#define IP6_HDR_LEN    40

static struct {
	struct sockaddr_storage src, dst;
	unsigned int src_prefix;
	socklen_t dst_len;
	uint16_t dport;
	uint64_t rate;
	uint64_t duration_s;
	uint64_t count;
	uint64_t src_port;
	uint64_t seed;
	const char *dev;
	bool has_count;
} opt = {
	.duration_s = 10,
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

/* Replaces the host bits of addr (len bytes) beyond prefix with random ones. */
static void randomize_host(uint8_t *addr, size_t len, unsigned int prefix, struct rng *r)
{
	for (size_t i = 0; i < len; i++) {
		unsigned int bit = i * 8;
		uint8_t keep;

		if (bit + 8 <= prefix)
			continue;
		keep = bit >= prefix ? 0 : (uint8_t)(0xff << (8 - (prefix - bit)));
		addr[i] = (addr[i] & keep) | ((uint8_t)rng_next(r) & ~keep);
	}
}

static void build_tcp(uint8_t *tcp, uint16_t sport, uint32_t seq)
{
	memset(tcp, 0, TCP_HDR_LEN);
	put16(tcp, sport);
	put16(tcp + 2, opt.dport);
	put32(tcp + 4, seq);
	tcp[12] = (TCP_HDR_LEN / 4) << 4;
	tcp[13] = 0x02; /* SYN */
	put16(tcp + 14, 64240);
	/* MSS 1460 */
	tcp[20] = 2;
	tcp[21] = 4;
	put16(tcp + 22, 1460);
}

/* Builds one SYN into pkt; returns its length. */
static size_t build_packet(uint8_t *pkt, struct rng *r)
{
	uint16_t sport = opt.src_port ? opt.src_port : 1024 + rng_next(r) % (65536 - 1024);
	uint32_t seq = (uint32_t)rng_next(r), sum;
	uint8_t *tcp;

	if (opt.src.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&opt.src;
		const struct sockaddr_in *d = (const struct sockaddr_in *)&opt.dst;
		uint8_t proto_len[4] = {0, IPPROTO_TCP, 0, TCP_HDR_LEN};

		memset(pkt, 0, IP4_HDR_LEN);
		pkt[0] = 0x45;
		put16(pkt + 2, IP4_HDR_LEN + TCP_HDR_LEN);
		put16(pkt + 4, (uint16_t)rng_next(r));
		pkt[6] = 0x40; /* DF */
		pkt[8] = 64;
		pkt[9] = IPPROTO_TCP;
		memcpy(pkt + 12, &s->sin_addr, 4);
		memcpy(pkt + 16, &d->sin_addr, 4);
		if (opt.src_prefix < 32)
			randomize_host(pkt + 12, 4, opt.src_prefix, r);
		memcpy(pkt + 10, (uint16_t[]){csum_fold(csum_add(0, pkt, IP4_HDR_LEN))}, 2);

		tcp = pkt + IP4_HDR_LEN;
		build_tcp(tcp, sport, seq);
		sum = csum_add(0, pkt + 12, 8);
		sum = csum_add(sum, proto_len, 4);
		sum = csum_add(sum, tcp, TCP_HDR_LEN);
		memcpy(tcp + 16, (uint16_t[]){csum_fold(sum)}, 2);
		return IP4_HDR_LEN + TCP_HDR_LEN;
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&opt.src;
		const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)&opt.dst;
		uint8_t pseudo[8] = {0, 0, 0, TCP_HDR_LEN, 0, 0, 0, IPPROTO_TCP};

		memset(pkt, 0, IP6_HDR_LEN);
		pkt[0] = 0x60;
		put16(pkt + 4, TCP_HDR_LEN);
		pkt[6] = IPPROTO_TCP;
		pkt[7] = 64;
		memcpy(pkt + 8, &s->sin6_addr, 16);
		memcpy(pkt + 24, &d->sin6_addr, 16);
		if (opt.src_prefix < 128)
			randomize_host(pkt + 8, 16, opt.src_prefix, r);

		tcp = pkt + IP6_HDR_LEN;
		build_tcp(tcp, sport, seq);
		sum = csum_add(0, pkt + 8, 32);
		sum = csum_add(sum, pseudo, 8);
		sum = csum_add(sum, tcp, TCP_HDR_LEN);
		memcpy(tcp + 16, (uint16_t[]){csum_fold(sum)}, 2);
		return IP6_HDR_LEN + TCP_HDR_LEN;
	}
}

/* A warning when the source is local: its own kernel would RST the SYN-ACKs. */
static void warn_if_local(void)
{
	struct sockaddr_storage ss = opt.src;
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	char buf[ADDR_STRLEN];

	if (fd < 0)
		return;
	if (opt.src_prefix == (ss.ss_family == AF_INET ? 32U : 128U) &&
	    !bind(fd, (struct sockaddr *)&ss,
		  ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					  : sizeof(struct sockaddr_in6)))
		fprintf(stderr,
			"ls-synflood: note: %s is a local address: its SYN-ACKs are answered with "
			"RST, so flows do not stay half-open\n",
			addr_format((struct sockaddr *)&ss, buf, sizeof(buf)));
	close(fd);
}

static int parse_src(const char *value, void *dest)
{
	(void)dest;
	return prefix_parse(value, &opt.src, &opt.src_prefix);
}

static int parse_dst(const char *value, void *dest)
{
	(void)dest;
	if (addr_parse(value, &opt.dst, &opt.dst_len) || !addr_port((struct sockaddr *)&opt.dst))
		return -EINVAL;
	opt.dport = addr_port((struct sockaddr *)&opt.dst);
	return 0;
}

static int parse_args(int argc, char **argv)
{
	/* clang-format off */
	static const struct opt opts[] = {
		{.name = "src", .short_name = 's', .arg = "ADDR[/PREFIX]", .flags = OPT_REQUIRED,
		 .type = OPT_CALL, .parse = parse_src,
		 .help = "source address; with a prefix, a random address in it\n"
			 "per packet (host bits random)"},
		{.name = "dst", .short_name = 'd', .arg = "ADDR:PORT", .flags = OPT_REQUIRED,
		 .type = OPT_CALL, .parse = parse_dst,
		 .help = "destination, IPv4 or [IPv6]:PORT"},
		{.name = "rate", .short_name = 'r', .arg = "PPS",
		 .type = OPT_U64, .dest = &opt.rate, .min = 0, .max = 100000000,
		 .help = "packets per second (default 0: as fast as possible)"},
		{.name = "duration", .short_name = 't', .arg = "S",
		 .type = OPT_U64, .dest = &opt.duration_s, .min = 1, .max = MAX_DURATION_S,
		 .help = "at most S seconds (default 10, at most " OPT_STR(MAX_DURATION_S) ")"},
		{.name = "count", .short_name = 'n', .arg = "N", .seen = &opt.has_count,
		 .type = OPT_U64, .dest = &opt.count, .min = 1, .max = UINT64_MAX,
		 .help = "at most N packets"},
		{.name = "src-port", .short_name = 'p', .arg = "P",
		 .type = OPT_U64, .dest = &opt.src_port, .min = 1, .max = 65535,
		 .help = "fixed source port (default random 1024..65535)"},
		{.name = "dev", .short_name = 'i', .arg = "IFACE",
		 .type = OPT_STRING, .dest = &opt.dev,
		 .help = "send through IFACE (SO_BINDTODEVICE)"},
		{.name = "seed", .arg = "N",
		 .type = OPT_U64, .dest = &opt.seed, .min = 0, .max = UINT64_MAX,
		 .help = "PRNG seed (default: from the clock)"},
		{},
	};
	/* clang-format on */
	static const struct opt_tool tool = {
		.name = "ls-synflood",
		.synopsis = "--src ADDR[/PREFIX] --dst ADDR:PORT [options]",
		.about = "Sends TCP SYNs from a raw socket (needs CAP_NET_RAW). Stops at whichever "
			 "of\n"
			 "--count and --duration comes first.",
		.epilog = "Prints 'sent=N errors=E duration_s=X rate_pps=Y' at the end.\n",
		.opts = opts,
	};

	opt.seed = now_ns() ^ ((uint64_t)getpid() << 32);
	if (opts_parse(&tool, argc, argv))
		return -1;
	if (opt.src.ss_family != opt.dst.ss_family) {
		fprintf(stderr, "ls-synflood: --src and --dst differ in family\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t pkts[BATCH][PKT_MAX];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage to;
	uint64_t sent = 0, errors = 0, start, end, elapsed;
	struct rng rng;
	int fd;

	if (parse_args(argc, argv))
		return EXIT_USAGE;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rng_seed(&rng, opt.seed);
	warn_if_local();

	/* IPPROTO_RAW implies IP_HDRINCL (and its IPv6 counterpart). */
	fd = socket(opt.dst.ss_family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (fd < 0) {
		perror("ls-synflood: raw socket");
		return EXIT_RUNTIME;
	}
	if (opt.dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, opt.dev, strlen(opt.dev))) {
		fprintf(stderr, "ls-synflood: %s: %s\n", opt.dev, strerror(errno));
		return EXIT_RUNTIME;
	}
	/* The raw socket takes no port: the TCP header carries it. */
	to = opt.dst;
	if (to.ss_family == AF_INET)
		((struct sockaddr_in *)&to)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&to)->sin6_port = 0;

	start = now_ns();
	end = start + opt.duration_s * NSEC_PER_SEC;
	while (!got_signal && (!opt.has_count || sent < opt.count)) {
		uint64_t now = now_ns(), want = BATCH;
		int n;

		if (now >= end)
			break;
		if (opt.rate) {
			uint64_t due =
				(uint64_t)((double)(now - start) / 1e9 * (double)opt.rate) + 1;

			if (due <= sent + errors) {
				/* Ahead of schedule: sleep until the next packet is due. */
				uint64_t next = start + (uint64_t)((double)(sent + errors) * 1e9 /
								   (double)opt.rate);

				if (next > now)
					sleep_ns(next - now < NSEC_PER_MSEC ? next - now
									    : NSEC_PER_MSEC);
				continue;
			}
			want = due - sent - errors;
		}
		if (opt.has_count && want > opt.count - sent)
			want = opt.count - sent;
		if (want > BATCH)
			want = BATCH;
		for (uint64_t i = 0; i < want; i++) {
			iov[i] = (struct iovec){.iov_base = pkts[i],
						.iov_len = build_packet(pkts[i], &rng)};
			msgs[i] = (struct mmsghdr){.msg_hdr = {
							   .msg_name = &to,
							   .msg_namelen = opt.dst_len,
							   .msg_iov = &iov[i],
							   .msg_iovlen = 1,
						   }};
		}
		n = sendmmsg(fd, msgs, want, 0);
		if (n < 0) {
			if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
				perror("ls-synflood: sendmmsg");
				close(fd);
				return EXIT_RUNTIME;
			}
			/* A full queue: count the packet as lost and go on. */
			errors++;
			continue;
		}
		sent += n;
	}
	elapsed = now_ns() - start;
	close(fd);
	printf("sent=%llu errors=%llu duration_s=%.3f rate_pps=%.0f\n", (unsigned long long)sent,
	       (unsigned long long)errors, (double)elapsed / 1e9,
	       elapsed ? (double)sent * 1e9 / (double)elapsed : 0);
	return EXIT_OK;
}
