// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Traffic that is not a service's TCP passes untouched, uncounted and
 * untracked, in both directions: a whole connection to another port (no
 * handshake noted at TC, nothing adopted at XDP), UDP to the service port,
 * ARP, an IPv6 extension chain that ends in UDP. A limit of 0 with the
 * reset or drop action would shed any of them taken for a SYN to the
 * service. Needs root.
 */
#include "lib/fixture.h"

static void non_service_port_passes_untouched(void **state)
{
	struct t *t = *state;
	static const struct ls_iface_stats zero;
	struct ls_iface_stats is;
	struct pkt_spec s;
	struct frame f;
	struct conn c;
	char client[64];

	one_class_service(t, 0, LS_ACT_RESET, 0);
	client_addr(t->v, 0, client, sizeof(client));
	syn_from(t->v, &s, client, 40000, 9999);
	conn_of_syn(&s, 5000, &c);
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	send_synack(t, &c);
	cli_seg(&c, PKT_ACK, 0, &s);
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	cli_seg(&c, PKT_PSH | PKT_ACK, 100, &s);
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	respond(t, &c, 100);
	cli_seg(&c, PKT_FIN | PKT_ACK, 0, &s);
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	srv_send(t, &c, PKT_FIN | PKT_ACK, 0);

	assert_int_equal(flows(t), 0);
	assert_int_equal(handshakes(t), 0);
	assert_no_class_counted(t);
	is = iface(t);
	assert_memory_equal(&is, &zero, sizeof(zero));
}

static void udp_to_service_port_passes_without_parse_error(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct frame f;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	syn_n(t, 0, &s);
	s.l4proto = IPPROTO_UDP;
	s.payload = some_bytes;
	s.payload_len = 32;
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	assert_int_equal(run_frame(t, 0, &f, NULL), TC_ACT_OK);
	assert_int_equal(iface(t).parse_errors, 0);
	assert_int_equal(flows(t), 0);
	assert_no_class_counted(t);
}

static void arp_passes_without_parse_error(void **state)
{
	struct t *t = *state;
	struct frame f;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	f.len = pkt_arp(f.buf, sizeof(f.buf));
	assert_true(f.len > 0);
	xdp_passes_untouched(t, &f);
	assert_int_equal(iface(t).parse_errors, 0);
	assert_no_class_counted(t);
}

static void ipv6_chain_ending_in_udp_passes_without_parse_error(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct frame f;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	syn_n(t, 0, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	s.l4proto = IPPROTO_UDP;
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	assert_int_equal(iface(t).parse_errors, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_V(non_service_port_passes_untouched, V4),
		TEST_V(non_service_port_passes_untouched, V6_QINQ),
		TEST_V(udp_to_service_port_passes_without_parse_error, V4_VLAN),
		TEST_V(udp_to_service_port_passes_without_parse_error, V6),
		TEST(arp_passes_without_parse_error),
		TEST_V(ipv6_chain_ending_in_udp_passes_without_parse_error, V6),
	};

	return DP_TESTS_MAIN(tests);
}
