// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

static const uint8_t v4_mapped_head[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void ls_addr_v4_mapped(uint8_t out[16], uint32_t ipv4_be)
{
	memcpy(out, v4_mapped_head, sizeof(v4_mapped_head));
	memcpy(out + 12, &ipv4_be, sizeof(ipv4_be));
}

bool ls_addr_is_v4_mapped(const uint8_t addr[16])
{
	return !memcmp(addr, v4_mapped_head, sizeof(v4_mapped_head));
}

int ls_parse_addr(const char *text, uint8_t out[16], bool *is_v4)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, text, &a4) == 1) {
		ls_addr_v4_mapped(out, a4.s_addr);
		*is_v4 = true;
		return 0;
	}
	if (inet_pton(AF_INET6, text, out) == 1) {
		*is_v4 = false;
		return 0;
	}
	return -EINVAL;
}

/* Clears every bit of addr past len_bits; true if any was set. */
static bool clear_host_bits(uint8_t addr[16], unsigned int len_bits)
{
	bool had = false;

	for (unsigned int i = 0; i < 16; i++) {
		unsigned int first = i * 8;
		uint8_t keep;

		if (first + 8 <= len_bits)
			continue;
		keep = first >= len_bits ? 0 : (uint8_t)(0xff00u >> (len_bits - first));
		had |= (addr[i] & ~keep) != 0;
		addr[i] &= keep;
	}
	return had;
}

/* A prefix length: 1 to 3 digits, nothing else. */
static int parse_len(const char *text, unsigned int max, unsigned int *out)
{
	unsigned int v = 0;
	size_t n = strlen(text);

	if (n == 0 || n > 3)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned int)(text[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int ls_parse_prefix(const char *text, struct ls_prefix *out, bool *masked)
{
	char buf[INET6_ADDRSTRLEN + 8];
	unsigned int len;
	char *slash;
	bool v4;

	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (ls_parse_addr(buf, out->addr, &v4))
		return -EINVAL;
	if (!slash)
		len = v4 ? 32 : 128;
	else if (parse_len(slash + 1, v4 ? 32 : 128, &len))
		return -EINVAL;
	out->len_bits = (uint8_t)(v4 ? 96 + len : len);
	*masked = clear_host_bits(out->addr, out->len_bits);
	return 0;
}

bool ls_prefix_contains(const struct ls_prefix *outer, const struct ls_prefix *inner)
{
	uint8_t a[16];

	if (outer->len_bits > inner->len_bits)
		return false;
	memcpy(a, inner->addr, sizeof(a));
	clear_host_bits(a, outer->len_bits);
	return !memcmp(a, outer->addr, sizeof(a));
}

void ls_prefix_format(const struct ls_prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (ls_addr_is_v4_mapped(p->addr) && p->len_bits >= 96) {
		inet_ntop(AF_INET, p->addr + 12, addr, sizeof(addr));
		snprintf(buf, len, "%s/%u", addr, p->len_bits - 96u);
		return;
	}
	inet_ntop(AF_INET6, p->addr, addr, sizeof(addr));
	snprintf(buf, len, "%s/%u", addr, (unsigned int)p->len_bits);
}

void ls_metrics_addr_format(const struct ls_metrics_addr *m, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "";

	if (!m->port) {
		snprintf(buf, len, "off");
		return;
	}
	if (m->family == LS_METRICS_DUAL) {
		snprintf(buf, len, "*:%u", m->port);
	} else if (m->family == LS_METRICS_V4) {
		inet_ntop(AF_INET, m->addr + 12, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, m->port);
	} else {
		inet_ntop(AF_INET6, m->addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, m->port);
	}
}
