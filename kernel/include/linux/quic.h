/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: API for in-kernel consumers (SMB, NFS, ...).
 *
 * A consumer creates a socket with sock_create_kern(net, AF_INET or AF_INET6,
 * SOCK_STREAM or SOCK_DGRAM, IPPROTO_QUIC, &sock) and drives the SOL_QUIC
 * options described in <uapi/linux/quic.h> through the two calls below, with
 * KERNEL_SOCKPTR() buffers.  They run the same code as setsockopt(2) and
 * getsockopt(2) and take the socket lock themselves.
 */

#ifndef _LINUX_QUIC_H
#define _LINUX_QUIC_H

#include <linux/sockptr.h>
#include <uapi/linux/quic.h>

struct sock;

int quic_do_setsockopt(struct sock *sk, int optname, sockptr_t optval,
		       unsigned int optlen);
int quic_do_getsockopt(struct sock *sk, int optname, sockptr_t optval,
		       sockptr_t optlen);

#endif /* _LINUX_QUIC_H */
