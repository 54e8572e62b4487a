/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: received datagrams, from the UDP socket to the connection, and the
 * connection-level reactions (ACK processing, loss detection, close).
 */

#ifndef __NET_QUIC_INPUT_H
#define __NET_QUIC_INPUT_H

#include <linux/types.h>

#include "pnspace.h"

struct sock;
struct sk_buff;
struct quic_udp_sock;

bool quic_udp_hdr_valid(const struct sk_buff *skb, unsigned int off);
int quic_input_encap_rcv(struct quic_udp_sock *us, struct sock *usk,
			 struct sk_buff *skb);
int quic_backlog_rcv(struct sock *sk, struct sk_buff *skb);

void quic_ack_process(struct sock *sk, u8 space, u64 largest, u64 delay,
		      const struct quic_pn_range *ranges, int n,
		      const u64 *ecn);
void quic_loss_timeout(struct sock *sk);
void quic_loss_set_timer(struct sock *sk);
void quic_input_deliver(struct sock *sk, struct sk_buff *skb, bool nested);
void quic_space_discard(struct sock *sk, u8 space);
void quic_space_restart(struct sock *sk, u8 space);
void quic_space_zrtt_end(struct sock *sk);
void quic_conn_error(struct sock *sk, u32 errcode, u8 frame);
void quic_conn_closed(struct sock *sk, u32 errcode, u8 frame,
		      const u8 *phrase, u32 len);

#endif /* __NET_QUIC_INPUT_H */
