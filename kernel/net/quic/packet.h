/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: packets (RFC 9000 Section 17): header parsing and building,
 * protection through crypto.c, and the processing of a received datagram.
 */

#ifndef __NET_QUIC_PACKET_H
#define __NET_QUIC_PACKET_H

#include <linux/types.h>

struct sock;
struct sk_buff;

#define QUIC_MIN_INITIAL_SIZE	1200	/* RFC 9000 Section 14.1 */
#define QUIC_PKT_BUFFERED_MAX	128	/* waiting for keys, per socket */

/* RFC 9000 Section 17.2 first byte bits. */
#define QUIC_HDR_LONG		0x80
#define QUIC_HDR_FIXED		0x40
#define QUIC_HDR_KEY_PHASE	0x04
#define QUIC_HDR_RESERVED_LONG	0x0c
#define QUIC_HDR_RESERVED_SHORT	0x18

/* Long header packet types, numbered as in version 1. */
enum quic_pkt_type {
	QUIC_PKT_INITIAL,
	QUIC_PKT_0RTT,
	QUIC_PKT_HANDSHAKE,
	QUIC_PKT_RETRY,
	QUIC_PKT_SHORT,		/* 1-RTT */
	QUIC_PKT_VERSION_NEG,
	QUIC_PKT_UNKNOWN,	/* a version we do not know: only the IDs parsed */
};

/**
 * struct quic_pkt - what a received packet's header and frames said
 * @dcid: destination connection ID (points into the packet)
 * @scid: source connection ID (long header)
 * @token: Initial token
 * @version: long header version
 * @pn: packet number
 * @len: packet length, header to end of tag
 * @pn_offset: offset of the Packet Number field
 * @token_len: length of @token
 * @type: enum quic_pkt_type
 * @space: packet number space
 * @dcid_len: length of @dcid
 * @scid_len: length of @scid
 * @ack_eliciting: a frame other than ACK, PADDING, CONNECTION_CLOSE seen
 * @non_probing: a frame other than PATH_*, NEW_CONNECTION_ID, PADDING
 * @frame: type of the frame being processed (for CONNECTION_CLOSE)
 * @dgram_len: length of the datagram it came in
 */
struct quic_pkt {
	const u8 *dcid;
	const u8 *scid;
	const u8 *token;
	u32 version;
	s64 pn;
	u32 len;
	u32 pn_offset;
	u32 token_len;
	u8 type;
	u8 space;
	u8 dcid_len;
	u8 scid_len;
	u8 ack_eliciting:1;
	u8 non_probing:1;
	u8 frame;
	u32 dgram_len;
	struct sk_buff *skb;	/* the datagram(s) it came in, or NULL */
};

/*
 * Control block of a received datagram while it is processed: both ends of
 * its path, taken from the IP and UDP headers on arrival (input.c), since
 * a datagram copied out of a GRO/GSO train has no headers, and the listener
 * needs the local address after skb->cb and the headers are gone.
 * skb->data points at the QUIC packet.  Read through quic_rcv_peer() and
 * quic_rcv_local().
 */
struct quic_rcv_cb {
	struct in6_addr saddr;	/* IPv4: s6_addr32[0] */
	struct in6_addr daddr;
	int iif;		/* interface it came in on (IPv6 scope) */
	__be16 sport;
	__be16 dport;
	u16 seg;	/* a train of datagrams of this size (input.c), or 0 */
	u8 family;	/* AF_INET or AF_INET6 */
	u8 buffered:1;	/* kept for keys: already counted on the path */
	u8 ecn:2;	/* ECN codepoint of the IP header (RFC 3168) */
};

#define QUIC_RCV_CB(skb)	((struct quic_rcv_cb *)&((skb)->cb[0]))

union quic_addr;

void quic_rcv_peer(const struct sk_buff *skb, union quic_addr *a);
void quic_rcv_local(const struct sk_buff *skb, union quic_addr *a);
u8 quic_pkt_type_of(u32 version, u8 first);
u8 quic_pkt_first_byte(u32 version, u8 type);
int quic_pkt_parse_long(const u8 *p, u32 len, struct quic_pkt *pkt);
int quic_packet_rcv(struct sock *sk, struct sk_buff *skb);
int quic_packet_process_buffered(struct sock *sk);
void quic_packet_buffer_purge(struct sock *sk);

#endif /* __NET_QUIC_PACKET_H */
