/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: API for in-kernel consumers (SMB, NFS, storage and cluster transports).
 */

/**
 * DOC: QUIC sockets owned by the kernel
 *
 * Everything the ABI reference (linux-quic-abi.md) says of user sockets holds
 * for a socket a kernel service creates; this is how each call is made from
 * the kernel, and where a kernel caller differs.
 *
 * Creating: sock_create_kern(net, AF_INET or AF_INET6, SOCK_DGRAM or
 * SOCK_STREAM, IPPROTO_QUIC, &sock).  Nothing counts it against a user's
 * limits; it belongs to @net, which the service must keep alive.  The module
 * cannot be unloaded while such a socket exists.
 *
 * Options: quic_do_setsockopt() and quic_do_getsockopt() below, with
 * KERNEL_SOCKPTR() buffers, are setsockopt(2)/getsockopt(2) at level SOL_QUIC:
 * same options, layouts, checks and errors.  Each takes the socket lock and
 * may sleep (GFP_KERNEL); call them from process context without the lock.
 * Other levels (SOL_SOCKET, SOL_IP, SOL_IPV6) go through sock_setsockopt()
 * or the family's ops as for any kernel socket.
 *
 * Addresses: kernel_bind(), kernel_connect() (as for a user socket, connect()
 * sends nothing: the first flight is the handshake's), kernel_listen() and
 * kernel_accept().  kernel_accept() returns a new socket with no file; give
 * it one with sock_alloc_file() before an up-call (below).
 *
 * The handshake: a kernel service cannot run TLS itself.  It attaches a file
 * to the socket (sock_alloc_file(); net/handshake installs it in the agent as
 * a descriptor), sets ALPN and transport parameters with quic_do_setsockopt(),
 * and calls tls_client_hello_x509() / tls_client_hello_psk() /
 * tls_server_hello_x509() / tls_server_hello_psk() from <net/handshake.h>
 * exactly as on a TCP socket.  The agent (tlshd, or `quicctl agent`) runs the
 * handshake on that descriptor as the ABI reference's section 5 prescribes;
 * the done callback then fires with 0 (the socket is ESTABLISHED) or a
 * negative errno.  A service that gives up first calls tls_handshake_cancel();
 * if that returns false, the done callback is running or has run and the
 * service must wait for it.  Either way the service owns the socket and
 * releases it (fput() of its file) when done.
 *
 * Data and events: kernel_sendmsg() and kernel_recvmsg() with a kvec and the
 * same control messages as sendmsg(2)/recvmsg(2): a QUIC_STREAM_INFO cmsg
 * (struct quic_stream_info) picks or reports the stream and its flags
 * (MSG_QUIC_STREAM_NEW, MSG_QUIC_STREAM_FIN, ...); MSG_QUIC_DATAGRAM and
 * MSG_QUIC_NOTIFICATION mark datagrams and events in msg_flags.  The cmsg
 * buffer is a kernel buffer (msg_control_is_user is false).  Blocking calls
 * sleep at most sk_sndtimeo / sk_rcvtimeo, which a service sets on the sock
 * (they start at MAX_SCHEDULE_TIMEOUT); MSG_DONTWAIT makes one call
 * non-blocking, and a pending signal ends a wait with -ERESTARTSYS or -EINTR.
 * Nothing here may be called from atomic context.
 *
 * Closing: sock_release() (or the last fput() of its file) closes as close(2)
 * does, with the linger and CONNECTION_CLOSE rules of the ABI reference.
 *
 * A complete example is net/quic/sample/sample.c (quic_sample.ko).
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
