/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: listeners on one address and port told apart by the ALPN of the
 * client's ClientHello (ABI reference Sections 3 and 5.2).
 */

#ifndef __NET_QUIC_DEMUX_H
#define __NET_QUIC_DEMUX_H

#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/types.h>

struct quic_data;
struct quic_udp_sock;
struct sock;

/* The biggest ALPN extension read from a ClientHello (ABI reference 1.13). */
#define QUIC_DEMUX_ALPN_MAX	128
/* The biggest ClientHello read: larger ones are dropped. */
#define QUIC_DEMUX_CH_MAX	8192

/* What a UDP socket keeps for the ClientHellos it is reading. */
struct quic_demux_table {
	spinlock_t lock;		/* protects list and count */
	struct list_head list;		/* struct quic_demux, oldest first */
	u32 count;
};

bool quic_alpn_has(const struct quic_data *alpn, const u8 *name, u8 len);
bool quic_alpn_overlap(const struct quic_data *a, const struct quic_data *b);
bool quic_alpn_equal(const struct quic_data *a, const struct quic_data *b);

int quic_client_hello_alpn(const u8 *ch, u32 len, const u8 **alpn,
			   u32 *alpn_len);

void quic_demux_init(struct quic_demux_table *t);
struct sock *quic_demux_input(struct quic_udp_sock *us, struct sk_buff *skb,
			      const u8 *dcid, u8 dcid_len);
void quic_demux_purge(struct quic_udp_sock *us, const struct sock *sk);

#endif /* __NET_QUIC_DEMUX_H */
