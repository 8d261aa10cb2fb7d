// SPDX-License-Identifier: GPL-2.0-only
/*
 * XDP_PASS, nothing else. On veth a frame sent with XDP_TX is lost unless
 * the peer device has an XDP program: testbeds attach this one to the
 * client side so that loadshed's RSTs reach the clients. Real NICs need
 * nothing of the kind.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int ls_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
