/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: the network path of a connection (RFC 9000 Sections 8 and 9):
 * addresses, the cached route, address validation and the
 * anti-amplification limit, and transmission through the UDP socket.
 */

#ifndef __NET_QUIC_PATH_H
#define __NET_QUIC_PATH_H

#include <linux/types.h>

struct sock;
struct sk_buff;

#define QUIC_PATH_MIN_MTU	1200	/* RFC 9000 Section 14 */
#define QUIC_AMPLIFICATION	3	/* RFC 9000 Section 8.1 */
#define QUIC_PATH_CHALLENGE_LEN	8

/**
 * struct quic_path - the path in use
 * @bytes_recv: bytes received before validation (RFC 9000 Section 8.1)
 * @bytes_sent: bytes sent before validation
 * @dst_cookie: IPv6 route cookie for sk_dst_check()
 * @mss: largest UDP payload we send
 * @validated: the peer address is validated
 */
struct quic_path {
	u64 bytes_recv;
	u64 bytes_sent;
	u32 dst_cookie;
	u32 mss;
	u8 validated:1;
};

union quic_addr;

int quic_path_route(struct sock *sk);
void quic_path_send_to(struct sock *usk, struct sk_buff *skb,
		       const union quic_addr *local, const union quic_addr *peer);
bool quic_path_gso(struct sock *sk);
int quic_path_xmit(struct sock *sk, struct sk_buff *skb, u32 gso_size);
u32 quic_path_room(struct sock *sk);
void quic_path_on_recv(struct sock *sk, u32 bytes);

#endif /* __NET_QUIC_PATH_H */
