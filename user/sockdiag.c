// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "addr.h"
#include "sockdiag.h"

int ls_sock_destroy(const struct ls_flow_key *key)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh =
			{
				.nlmsg_len = sizeof(msg),
				.nlmsg_type = SOCK_DESTROY,
				.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
				.nlmsg_seq = 1,
			},
		.req =
			{
				.sdiag_protocol = IPPROTO_TCP,
				.idiag_states = ~0u,
			},
	};
	struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
	char buf[512];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t n;
	int fd, err;

	/* The server's socket: its source is our server side. */
	msg.req.id.idiag_sport = key->server_port;
	msg.req.id.idiag_dport = key->client_port;
	msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (ls_addr_is_v4_mapped(key->server) && ls_addr_is_v4_mapped(key->client)) {
		msg.req.sdiag_family = AF_INET;
		memcpy(msg.req.id.idiag_src, key->server + 12, 4);
		memcpy(msg.req.id.idiag_dst, key->client + 12, 4);
	} else {
		msg.req.sdiag_family = AF_INET6;
		memcpy(msg.req.id.idiag_src, key->server, 16);
		memcpy(msg.req.id.idiag_dst, key->client, 16);
	}
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	err = n < 0 ? -errno : -EPROTO;
	if (n >= (ssize_t)sizeof(*h) && h->nlmsg_type == NLMSG_ERROR &&
	    n >= (ssize_t)(NLMSG_LENGTH(sizeof(struct nlmsgerr))))
		err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	close(fd);
	return err;
}
