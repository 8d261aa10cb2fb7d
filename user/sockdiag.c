// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "addr.h"
#include "sockdiag.h"

struct diag_msg {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 req;
};

/* The request for the server's socket of key: its source is our server side. */
static void diag_request(struct diag_msg *msg, __u16 type, const struct ls_flow_key *key,
			 const __u32 cookie[2])
{
	memset(msg, 0, sizeof(*msg));
	msg->nlh.nlmsg_len = sizeof(*msg);
	msg->nlh.nlmsg_type = type;
	msg->nlh.nlmsg_flags = NLM_F_REQUEST | (type == SOCK_DESTROY ? NLM_F_ACK : 0);
	msg->nlh.nlmsg_seq = 1;
	msg->req.sdiag_protocol = IPPROTO_TCP;
	msg->req.idiag_states = ~0u;
	msg->req.id.idiag_sport = key->server_port;
	msg->req.id.idiag_dport = key->client_port;
	msg->req.id.idiag_cookie[0] = cookie ? cookie[0] : INET_DIAG_NOCOOKIE;
	msg->req.id.idiag_cookie[1] = cookie ? cookie[1] : INET_DIAG_NOCOOKIE;
	if (ls_addr_is_v4_mapped(key->server) && ls_addr_is_v4_mapped(key->client)) {
		msg->req.sdiag_family = AF_INET;
		memcpy(msg->req.id.idiag_src, key->server + 12, 4);
		memcpy(msg->req.id.idiag_dst, key->client + 12, 4);
	} else {
		msg->req.sdiag_family = AF_INET6;
		memcpy(msg->req.id.idiag_src, key->server, 16);
		memcpy(msg->req.id.idiag_dst, key->client, 16);
	}
}

/*
 * Sends msg and reads the one answer: its inet_diag_msg into *out when
 * there is one (0), the kernel's error otherwise (negative errno).
 */
static int diag_exchange(const struct diag_msg *msg, struct inet_diag_msg *out)
{
	struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
	char buf[1024] __attribute__((aligned(8)));
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t n;
	int fd, err;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	if (sendto(fd, msg, sizeof(*msg), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	err = n < 0 ? -errno : -EPROTO;
	if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && h->nlmsg_type == NLMSG_ERROR)
		err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	else if (n >= (ssize_t)NLMSG_LENGTH(sizeof(*out)) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		 out) {
		memcpy(out, NLMSG_DATA(h), sizeof(*out));
		err = 0;
	}
	close(fd);
	return err;
}

/*
 * The connection's own socket. An exact lookup in the kernel falls back to
 * the listener of the port when the connection is gone: a listener (or any
 * answer that is not this tuple) is no socket of this connection.
 */
static int sock_lookup(const struct ls_flow_key *key, struct inet_diag_msg *out)
{
	struct diag_msg msg;
	int err;

	diag_request(&msg, SOCK_DIAG_BY_FAMILY, key, NULL);
	err = diag_exchange(&msg, out);
	if (err)
		return err;
	if (out->idiag_state == TCP_LISTEN || out->id.idiag_dport != key->client_port ||
	    out->id.idiag_sport != key->server_port)
		return -ENOENT;
	return 0;
}

int ls_sock_alive(const struct ls_flow_key *key)
{
	struct inet_diag_msg m;
	int err = sock_lookup(key, &m);

	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	return m.idiag_state != TCP_CLOSE && m.idiag_state != TCP_TIME_WAIT;
}

int ls_sock_destroy(const struct ls_flow_key *key)
{
	struct inet_diag_msg m;
	struct diag_msg msg;
	int err = sock_lookup(key, &m);

	if (err)
		return err;
	if (m.idiag_state == TCP_CLOSE || m.idiag_state == TCP_TIME_WAIT)
		return -ENOENT;
	/* By its cookie: the very socket found, never another that took the tuple meanwhile. */
	diag_request(&msg, SOCK_DESTROY, key, m.id.idiag_cookie);
	return diag_exchange(&msg, NULL);
}
