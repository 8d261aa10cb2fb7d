/* SPDX-License-Identifier: GPL-2.0 */
/* Socket helpers shared by the test tools. */
#ifndef LS_TOOLS_NET_H
#define LS_TOOLS_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * A non-blocking listening TCP socket on sa (IPv6 sockets are V6ONLY so an
 * IPv4 and an IPv6 listener can share a port). Returns the fd or -errno.
 */
int tcp_listen(const struct sockaddr *sa, socklen_t len, int backlog);
/* The same on a Unix stream socket path (an existing socket file is replaced). */
int unix_listen(const char *path, int backlog);
/* The bound local address of fd formatted as addr_format does. */
char *sock_local_str(int fd, char *buf, size_t len);
int set_nonblock(int fd, int on);
/* Writes all of buf, waiting with poll() up to timeout_ms in total. 0 or -errno. */
int write_all(int fd, const void *buf, size_t len, int timeout_ms);
/* The symbolic name of an errno value ("ECONNREFUSED"), or its number. */
const char *errno_name(int err, char *buf, size_t len);

#endif
