// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The two shed actions (DESIGN.md section 3): drop (XDP_DROP, silent) and
 * reset (XDP_TX of a RST|ACK to the client). The RST is checked field by
 * field by pkt_check_rst(), whatever the SYN carried: VLAN tags, IPv4
 * options, IPv6 extension headers, TCP options, data, Ethernet padding.
 * A shed SYN leaves no flow and no in-flight count. Needs root.
 */
#include <string.h>
#include "lib/fixture.h"

/* MSS 1460, SACK permitted, window scale 7: options the RST must not copy. */
static void add_syn_options(struct pkt_spec *s)
{
	static const __u8 opts[12] = {2, 4, 0x05, 0xb4, 4, 2, 1, 1, 3, 3, 7, 0};

	memcpy(s->tcp_opts, opts, sizeof(opts));
	s->tcp_opts_len = sizeof(opts);
}

static void assert_is_rst_for(const struct pkt_spec *syn, const struct dp_run *r)
{
	char why[160] = "";

	if (pkt_check_rst(syn, r->out, r->len, why, sizeof(why)))
		fail_because("not a valid RST for the SYN: %s", why);
}

static void syn_over_limit_is_shed_with_drop(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	syn_n(t, 0, &a);
	syn_n(t, 1, &b);
	admit(t, &a);
	assert_int_equal(xdp(t, &b, NULL), XDP_DROP);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_false(tracked(t, &b, NULL));
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.syns, 2);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.shed_drop, 1);
	assert_int_equal(st.shed_reset, 0);
}

static void syn_over_limit_is_shed_with_reset(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec a, b;
	struct dp_run r;

	one_class_service(t, 1, LS_ACT_RESET, 0);
	syn_n(t, 0, &a);
	syn_n(t, 1, &b);
	add_syn_options(&b);
	b.seq = 0x89abcdef;
	admit(t, &a);
	assert_int_equal(xdp(t, &b, &r), XDP_TX);
	assert_is_rst_for(&b, &r);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_false(tracked(t, &b, NULL));
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.shed_reset, 1);
	assert_int_equal(st.shed_drop, 0);
	assert_int_equal(iface(t).tx_errors, 0);
}

/* A SYN carrying data (TCP Fast Open) and IPv4 options, ISN about to wrap. */
static void reset_acks_syn_data_and_drops_ip_options(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	syn.ip_opts[0] = 1; /* NOP, NOP, NOP, end of list */
	syn.ip_opts[1] = 1;
	syn.ip_opts[2] = 1;
	syn.ip_opts_len = 4;
	add_syn_options(&syn);
	syn.payload = some_bytes;
	syn.payload_len = 7;
	syn.seq = 0xfffffffe;
	assert_int_equal(xdp(t, &syn, &r), XDP_TX);
	/* ack = 0xfffffffe + 1 + 7, modulo 2^32 */
	assert_is_rst_for(&syn, &r);
}

static void reset_drops_ipv6_extension_headers(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	pkt_add_ext(&syn, IPPROTO_HOPOPTS, 0);
	pkt_add_ext(&syn, IPPROTO_DSTOPTS, 1);
	assert_int_equal(xdp(t, &syn, &r), XDP_TX);
	assert_is_rst_for(&syn, &r);
}

/* Ethernet pads frames to 60 bytes: the padding must not stay on the RST. */
static void reset_of_padded_frame_is_trimmed(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;
	struct frame f;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	build(&syn, &f);
	memset(f.buf + f.len, 0, 6);
	f.len += 6;
	assert_int_equal(run_frame(t, 1, &f, &r), XDP_TX);
	assert_is_rst_for(&syn, &r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ALL_VARIANTS(syn_over_limit_is_shed_with_drop),
		TEST_ALL_VARIANTS(syn_over_limit_is_shed_with_reset),
		TEST_V(reset_acks_syn_data_and_drops_ip_options, V4_VLAN),
		TEST_V(reset_drops_ipv6_extension_headers, V6_QINQ),
		TEST_V(reset_of_padded_frame_is_trimmed, V4),
	};

	return DP_TESTS_MAIN(tests);
}
