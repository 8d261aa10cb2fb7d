/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Closing a local TCP socket by its tuple, with sock_diag's SOCK_DESTROY. */
#ifndef LS_SOCKDIAG_H
#define LS_SOCKDIAG_H

#include "loadshed.h"

/*
 * Destroys the server's socket of the connection key names, in the
 * calling thread's network namespace (the kernel resets it: the peer, if
 * still there, gets a RST). It is looked up first and destroyed by its
 * cookie: a listener, which the kernel's lookup falls back to when the
 * connection is gone, is never touched. 0, -ENOENT when there is no such
 * socket, or another negative errno (-EOPNOTSUPP: a kernel without
 * CONFIG_INET_DIAG_DESTROY; -EPERM: no CAP_NET_ADMIN).
 */
int ls_sock_destroy(const struct ls_flow_key *key);

/*
 * Whether the server still has the connection key names: 1, 0 (no
 * socket, or only its TIME_WAIT or CLOSE remains), or a negative errno.
 */
int ls_sock_alive(const struct ls_flow_key *key);

#endif /* LS_SOCKDIAG_H */
