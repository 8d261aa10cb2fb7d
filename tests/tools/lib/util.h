/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the test tools: clocks, number and address parsing,
 * a small PRNG and an intrusive list. Only libc is used.
 */
#ifndef LS_TOOLS_UTIL_H
#define LS_TOOLS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NSEC_PER_SEC  1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_USEC 1000ULL

/* Exit codes of every tool. */
#define EXIT_OK	     0
#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);
void sleep_ns(uint64_t ns);

/* Strict parsers: the whole string must be a number in [min, max]. 0 or -EINVAL. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int parse_double(const char *s, double min, double max, double *out);

/*
 * "ADDR:PORT" with an IPv4 address, or "[ADDR]:PORT" with an IPv6 one.
 * Returns 0 or -EINVAL.
 */
int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* A bare address without a port ("10.0.0.1", "::1" or "[::1]"); port 0. */
int addr_parse_host(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* "ADDR[/PREFIX]"; prefix defaults to the full address length. */
int prefix_parse(const char *s, struct sockaddr_storage *ss, unsigned int *prefix_len);
/* Formats as addr_parse accepts it. Returns buf. */
char *addr_format(const struct sockaddr *sa, char *buf, size_t len);
uint16_t addr_port(const struct sockaddr *sa);
#define ADDR_STRLEN 64

/* Raises RLIMIT_NOFILE to want (or the hard limit). Returns the new soft limit. */
uint64_t raise_nofile(uint64_t want);

/* xoshiro256** seeded by splitmix64; not for cryptography. */
struct rng {
	uint64_t s[4];
};
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1). */
double rng_unit(struct rng *r);
/* Exponentially distributed with the given mean. */
double rng_exp(struct rng *r, double mean);

/* A doubly linked list in the style of the kernel's list_head. */
struct list_head {
	struct list_head *next, *prev;
};

static inline void list_init(struct list_head *h)
{
	h->next = h;
	h->prev = h;
}

static inline bool list_empty(const struct list_head *h)
{
	return h->next == h;
}

static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void list_add_after(struct list_head *n, struct list_head *pos)
{
	n->prev = pos;
	n->next = pos->next;
	pos->next->prev = n;
	pos->next = n;
}

/* Unlinks n and leaves it pointing at itself, so a second del is harmless. */
static inline void list_del(struct list_head *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

#define list_first_entry(h, type, member) container_of((h)->next, type, member)

#endif
