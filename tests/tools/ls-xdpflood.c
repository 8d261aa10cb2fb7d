// SPDX-License-Identifier: GPL-2.0
/*
 * ls-xdpflood: a SYN flood generator that needs no NIC and no raw socket.
 *
 * It loads a six-instruction XDP program that answers XDP_TX and runs it with
 * BPF_PROG_RUN in live-frame mode (BPF_F_TEST_XDP_LIVE_FRAMES) with the
 * context's ingress_ifindex set to a local interface: each repetition sends
 * one real frame out of that interface through its ndo_xdp_xmit. On a veth
 * pair the frames arrive at the peer as if from a wire, at millions of
 * packets per second, so what is measured is the receiver's drop path.
 *
 * Each frame is a fresh SYN: the program writes a random source address
 * (inside --src) and a random source port. Checksums stay valid without
 * recomputing them: every random 16-bit word w is paired with ~w in a field
 * covered by the same checksum (IP ID for the address in the IP header, the
 * ACK field - ignored without the ACK flag - for the address and the port in
 * the TCP pseudo header), and w + ~w is 0xffff whatever w is, so the ones'
 * complement sums, and so the checksums built once in user space, never move.
 *
 * Run it in the namespace that owns --dev (ingress_ifindex is looked up in
 * the caller's namespace). On veth the peer must have an XDP program, or
 * the frames are dropped at transmit (a veth rule).
 *
 * No libbpf: the program is a handful of instructions loaded with bpf(2).
 */
#define _GNU_SOURCE
#include "opts.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FRAME_LEN     60 /* Ethernet minimum; IP total length says 40 */
#define MAX_THREADS   64
#define MAX_DURATION  600
#define CHUNK_MAX     (1U << 16) /* repetitions per BPF_PROG_RUN call */
#define TICK_NS	      (1 * NSEC_PER_MSEC)
#define DEFAULT_BATCH 64

/* Offsets in the frame: Ethernet 14, IPv4 20 (no options), TCP 20. */
#define OFF_IP_ID     18
#define OFF_IP_SADDR2 28 /* the low 16 bits of the source address */
#define OFF_TCP_SPORT 34
#define OFF_TCP_ACK   42 /* 4 bytes: two compensation words */
#define HDRS_LEN      54

static struct {
	const char *dev;
	struct in_addr src;
	unsigned int src_plen;
	struct sockaddr_in dst;
	uint8_t src_mac[6], dst_mac[6];
	bool have_src_mac, have_dst_mac;
	double rate_pps;
	double duration_s;
	uint64_t count;
	unsigned int threads;
	unsigned int batch;
} opt = {
	.threads = 1,
	.batch = DEFAULT_BATCH,
};

static atomic_bool stopping;
static _Atomic uint64_t total_sent;
static _Atomic int first_error;

static int prog_fd = -1;
static int ifindex;
static uint8_t frame[FRAME_LEN];

/* Instruction builders (the kernel's filter.h is not UAPI). */
#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s)	    INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i)	    INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ALU64_IMM(op, d, i) INSN(BPF_ALU64 | (op) | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o)	    INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define STX_H(d, s, o)	    INSN(BPF_STX | BPF_MEM | BPF_H, d, s, o, 0)
#define JGT_REG(d, s, o)    INSN(BPF_JMP | BPF_JGT | BPF_X, d, s, o, 0)
#define CALL(f)		    INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT()		    INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/*
 * Source words as the program stores them: a 16-bit store writes the host's
 * byte order, so base and mask are the network-order words read as host
 * integers (what a 16-bit load from the frame would give).
 */
static uint16_t wire_word(uint32_t addr_host_order)
{
	uint16_t w = htons((uint16_t)addr_host_order);
	uint16_t out;

	memcpy(&out, &w, sizeof(out));
	return out;
}

static int load_prog(void)
{
	uint32_t addr = ntohl(opt.src.s_addr);
	uint32_t host_bits = opt.src_plen >= 32 ? 0 : (1U << (32 - opt.src_plen)) - 1;
	int16_t base = (int16_t)wire_word(addr & ~host_bits);
	int16_t mask = (int16_t)wire_word(host_bits);
	struct bpf_insn insns[] = {
		MOV64_REG(BPF_REG_6, BPF_REG_1),
		CALL(BPF_FUNC_get_prandom_u32),
		MOV64_REG(BPF_REG_7, BPF_REG_0),
		LDX_W(BPF_REG_2, BPF_REG_6, offsetof(struct xdp_md, data)),
		LDX_W(BPF_REG_3, BPF_REG_6, offsetof(struct xdp_md, data_end)),
		MOV64_REG(BPF_REG_4, BPF_REG_2),
		ALU64_IMM(BPF_ADD, BPF_REG_4, HDRS_LEN),
		JGT_REG(BPF_REG_4, BPF_REG_3, 13), /* short frame: send as it is */
		/* source address: w = base | (rnd & mask); IP ID and ACK low = ~w */
		MOV64_REG(BPF_REG_5, BPF_REG_7),
		ALU64_IMM(BPF_AND, BPF_REG_5, (uint16_t)mask),
		ALU64_IMM(BPF_OR, BPF_REG_5, (uint16_t)base),
		STX_H(BPF_REG_2, BPF_REG_5, OFF_IP_SADDR2),
		ALU64_IMM(BPF_XOR, BPF_REG_5, 0xffff),
		STX_H(BPF_REG_2, BPF_REG_5, OFF_IP_ID),
		STX_H(BPF_REG_2, BPF_REG_5, OFF_TCP_ACK),
		/* source port: the high 16 random bits, at least 1024; ACK high = ~port */
		MOV64_REG(BPF_REG_5, BPF_REG_7),
		ALU64_IMM(BPF_RSH, BPF_REG_5, 16),
		ALU64_IMM(BPF_OR, BPF_REG_5, (uint16_t)wire_word(0x0400)),
		STX_H(BPF_REG_2, BPF_REG_5, OFF_TCP_SPORT),
		ALU64_IMM(BPF_XOR, BPF_REG_5, 0xffff),
		STX_H(BPF_REG_2, BPF_REG_5, OFF_TCP_ACK + 2),
		MOV64_IMM(BPF_REG_0, XDP_TX),
		EXIT(),
	};
	static char log[8192];
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_XDP;
	attr.insns = (uintptr_t)insns;
	attr.insn_cnt = ARRAY_SIZE(insns);
	attr.license = (uintptr_t) "GPL";
	attr.log_buf = (uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	strncpy(attr.prog_name, "ls_xdpflood", sizeof(attr.prog_name) - 1);
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd < 0) {
		int err = errno;

		fprintf(stderr, "ls-xdpflood: loading the XDP program: %s\n%s", strerror(err), log);
		return -err;
	}
	return fd;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

/*
 * The template SYN. The random fields start at values whose pairing
 * invariant already holds (address word w with ~w in IP ID and ACK low,
 * port p with ~p in ACK high), so the checksums computed here stay valid
 * for every frame the program writes.
 */
static void build_frame(void)
{
	uint8_t *eth = frame, *ip = frame + 14, *tcp = frame + 34;
	uint16_t w, p = htons(40000), nw, np;
	uint8_t pseudo[12];
	uint32_t sum;

	memset(frame, 0, sizeof(frame));
	memcpy(eth, opt.dst_mac, 6);
	memcpy(eth + 6, opt.src_mac, 6);
	eth[12] = 0x08;
	eth[13] = 0x00;

	ip[0] = 0x45;
	ip[2] = 0;
	ip[3] = 40;   /* total length */
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, &opt.src.s_addr, 4);
	memcpy(ip + 16, &opt.dst.sin_addr.s_addr, 4);
	memcpy(&w, frame + OFF_IP_SADDR2, 2);
	nw = (uint16_t)~w;
	np = (uint16_t)~p;
	memcpy(frame + OFF_IP_ID, &nw, 2);

	memcpy(tcp, &p, 2);
	memcpy(tcp + 2, &opt.dst.sin_port, 2);
	tcp[4] = 0x12; /* sequence number: any */
	tcp[5] = 0x34;
	memcpy(frame + OFF_TCP_ACK, &nw, 2);
	memcpy(frame + OFF_TCP_ACK + 2, &np, 2);
	tcp[12] = 5 << 4; /* data offset: 20 bytes */
	tcp[13] = 0x02;	  /* SYN */
	tcp[14] = 0xfa;	  /* window 64240 */
	tcp[15] = 0xf0;

	sum = csum_add(0, ip, 20);
	sum = csum_fold(sum);
	ip[10] = sum >> 8;
	ip[11] = sum & 0xff;

	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = 0;
	pseudo[11] = 20;
	sum = csum_add(0, pseudo, sizeof(pseudo));
	sum = csum_add(sum, tcp, 20);
	sum = csum_fold(sum);
	tcp[16] = sum >> 8;
	tcp[17] = sum & 0xff;
}

/* Sends n frames in one BPF_PROG_RUN. 0 or -errno. */
static int send_frames(uint32_t n)
{
	struct xdp_md ctx = {
		.data_end = FRAME_LEN,
		.ingress_ifindex = ifindex,
	};
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = prog_fd;
	attr.test.data_in = (uintptr_t)frame;
	attr.test.data_size_in = FRAME_LEN;
	attr.test.ctx_in = (uintptr_t)&ctx;
	attr.test.ctx_size_in = sizeof(ctx);
	attr.test.repeat = n;
	attr.test.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
	attr.test.batch_size = opt.batch;
	if (sys_bpf(BPF_PROG_TEST_RUN, &attr))
		return -errno;
	return 0;
}

static void *flood_main(void *arg)
{
	unsigned int id = (unsigned int)(uintptr_t)arg;
	double rate = opt.rate_pps / opt.threads;
	uint64_t quota = opt.count ? opt.count / opt.threads + (id < opt.count % opt.threads) : 0;
	uint64_t start = now_ns(), end = start + (uint64_t)(opt.duration_s * NSEC_PER_SEC);
	uint64_t sent = 0;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(id % (unsigned int)sysconf(_SC_NPROCESSORS_ONLN), &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);

	while (!atomic_load(&stopping)) {
		uint64_t now = now_ns(), want = CHUNK_MAX;
		int err;

		if (now >= end || (quota && sent >= quota))
			break;
		if (rate > 0) {
			uint64_t due = (uint64_t)((double)(now - start) / NSEC_PER_SEC * rate) + 1;

			if (due <= sent) {
				sleep_ns(TICK_NS);
				continue;
			}
			want = due - sent;
			if (want > CHUNK_MAX)
				want = CHUNK_MAX;
		}
		if (quota && want > quota - sent)
			want = quota - sent;
		err = send_frames((uint32_t)want);
		if (err) {
			int none = 0;

			atomic_compare_exchange_strong(&first_error, &none, err);
			atomic_store(&stopping, true);
			break;
		}
		sent += want;
		atomic_fetch_add(&total_sent, want);
	}
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stopping, true);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

static int dev_mac(const char *dev, uint8_t mac[6])
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int err = 0;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

static int parse_dst_mac(const char *value, void *dest)
{
	(void)dest;
	return parse_mac(value, opt.dst_mac);
}

static int parse_src_mac(const char *value, void *dest)
{
	(void)dest;
	return parse_mac(value, opt.src_mac);
}

/* IPv4 only, and a prefix of at least 16 bits: the frame varies the low 16. */
static int parse_src(const char *value, void *dest)
{
	struct sockaddr_storage ss;

	(void)dest;
	if (prefix_parse(value, &ss, &opt.src_plen) || ss.ss_family != AF_INET || opt.src_plen < 16)
		return -EINVAL;
	opt.src = ((struct sockaddr_in *)&ss)->sin_addr;
	return 0;
}

static int parse_dst(const char *value, void *dest)
{
	struct sockaddr_storage ss;
	socklen_t len;

	(void)dest;
	if (addr_parse(value, &ss, &len) || ss.ss_family != AF_INET)
		return -EINVAL;
	memcpy(&opt.dst, &ss, sizeof(opt.dst));
	return 0;
}

static int parse_args(int argc, char **argv)
{
	/* clang-format off */
	static const struct opt opts[] = {
		{.name = "dev", .short_name = 'i', .arg = "IFACE", .flags = OPT_REQUIRED,
		 .type = OPT_STRING, .dest = &opt.dev,
		 .help = "interface the frames leave through"},
		{.name = "dst-mac", .arg = "MAC", .flags = OPT_REQUIRED, .seen = &opt.have_dst_mac,
		 .type = OPT_CALL, .parse = parse_dst_mac,
		 .help = "destination MAC (the receiving interface's address)"},
		{.name = "src-mac", .arg = "MAC", .seen = &opt.have_src_mac,
		 .type = OPT_CALL, .parse = parse_src_mac,
		 .help = "source MAC (default: IFACE's)"},
		{.name = "src", .short_name = 's', .arg = "ADDR[/P]", .flags = OPT_REQUIRED,
		 .type = OPT_CALL, .parse = parse_src,
		 .help = "source addresses; P from 16 to 32 (default 32)"},
		{.name = "dst", .short_name = 'd', .arg = "ADDR:PORT", .flags = OPT_REQUIRED,
		 .type = OPT_CALL, .parse = parse_dst,
		 .help = "destination"},
		{.name = "duration", .short_name = 't', .arg = "S", .flags = OPT_REQUIRED,
		 .type = OPT_DOUBLE, .dest = &opt.duration_s, .dmin = 0.001, .dmax = MAX_DURATION,
		 .help = "stop after S seconds (1.." OPT_STR(MAX_DURATION) ", required; may be "
			 "fractional)"},
		{.name = "count", .short_name = 'n', .arg = "N",
		 .type = OPT_U64, .dest = &opt.count, .min = 1, .max = UINT64_MAX,
		 .help = "stop after N frames as well"},
		{.name = "rate", .short_name = 'r', .arg = "PPS",
		 .type = OPT_DOUBLE, .dest = &opt.rate_pps, .dmin = 0, .dmax = 1e9,
		 .help = "frames per second in total (default 0: as fast as possible)"},
		{.name = "threads", .short_name = 'T', .arg = "N",
		 .type = OPT_UINT, .dest = &opt.threads, .min = 1, .max = MAX_THREADS,
		 .help = "sending threads, one per CPU (default 1)"},
		{.name = "batch", .short_name = 'b', .arg = "N",
		 .type = OPT_UINT, .dest = &opt.batch, .min = 1, .max = 256,
		 .help = "frames per XDP batch inside the kernel (1..256, default "
			 OPT_STR(DEFAULT_BATCH) ")"},
		{},
	};
	static const struct opt_tool tool = {
		.name = "ls-xdpflood",
		.synopsis = "--dev IFACE --dst-mac MAC --src ADDR[/PREFIX] --dst ADDR:PORT\n"
			    "                   --duration S [options]",
		.about = "Sends TCP SYNs out of IFACE with BPF_PROG_RUN live frames "
			 "(an XDP_TX program),\n"
			 "each with a random source port and a random source address "
			 "inside the prefix.\n"
			 "IPv4 only. Run it in IFACE's network namespace; on veth the peer "
			 "needs an XDP\n"
			 "program or the frames are lost.",
		.epilog = "Prints 'sent=N seconds=S pps=R' at the end.\n",
		.opts = opts,
	};
	/* clang-format on */

	return opts_parse(&tool, argc, argv);
}

int main(int argc, char **argv)
{
	struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
	pthread_t tids[MAX_THREADS];
	struct sigaction sa = {.sa_handler = on_signal};
	uint64_t start, elapsed;
	double secs;
	int err;

	if (parse_args(argc, argv))
		return EXIT_USAGE;
	ifindex = (int)if_nametoindex(opt.dev);
	if (!ifindex) {
		fprintf(stderr, "ls-xdpflood: no interface '%s' in this namespace\n", opt.dev);
		return EXIT_RUNTIME;
	}
	if (!opt.have_src_mac && dev_mac(opt.dev, opt.src_mac)) {
		fprintf(stderr, "ls-xdpflood: cannot read the MAC address of %s\n", opt.dev);
		return EXIT_RUNTIME;
	}
	setrlimit(RLIMIT_MEMLOCK, &rl);
	build_frame();
	prog_fd = load_prog();
	if (prog_fd < 0)
		return EXIT_RUNTIME;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	start = now_ns();
	for (unsigned int i = 0; i < opt.threads; i++) {
		err = pthread_create(&tids[i], NULL, flood_main, (void *)(uintptr_t)i);
		if (err) {
			fprintf(stderr, "ls-xdpflood: pthread_create: %s\n", strerror(err));
			atomic_store(&stopping, true);
			opt.threads = i;
			break;
		}
	}
	for (unsigned int i = 0; i < opt.threads; i++)
		pthread_join(tids[i], NULL);
	elapsed = now_ns() - start;
	secs = (double)elapsed / NSEC_PER_SEC;
	close(prog_fd);

	err = atomic_load(&first_error);
	if (err) {
		fprintf(stderr, "ls-xdpflood: BPF_PROG_RUN (live frames): %s\n", strerror(-err));
		return EXIT_RUNTIME;
	}
	printf("sent=%llu seconds=%.3f pps=%.0f\n", (unsigned long long)atomic_load(&total_sent),
	       secs, secs > 0 ? (double)atomic_load(&total_sent) / secs : 0.0);
	return EXIT_OK;
}
