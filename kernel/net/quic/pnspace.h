/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: packet number spaces (RFC 9000 Section 12.3).
 *
 * Each space keeps what it received (ranges to acknowledge, RFC 9000
 * Section 13.2) and what it sent (one record per ack-eliciting packet with
 * the frames it carried, RFC 9002 Appendix A.1), so that lost frames, not
 * packets, are retransmitted.  All of it is protected by the socket lock.
 */

#ifndef __NET_QUIC_PNSPACE_H
#define __NET_QUIC_PNSPACE_H

#include <linux/list.h>
#include <linux/skbuff.h>
#include <linux/types.h>

#include "stream.h"

/* Spaces are numbered like the crypto levels that use them. */
enum quic_space_id {
	QUIC_SPACE_APP = 0,		/* QUIC_CRYPTO_APP (and EARLY) */
	QUIC_SPACE_INITIAL = 1,		/* QUIC_CRYPTO_INITIAL */
	QUIC_SPACE_HANDSHAKE = 2,	/* QUIC_CRYPTO_HANDSHAKE */
	QUIC_SPACE_MAX
};

#define QUIC_ACK_RANGES_MAX	32	/* received ranges remembered per space */

/* A range of received packet numbers, [start, end]. */
struct quic_pn_range {
	s64 start;
	s64 end;
};

/**
 * struct quic_sent_pkt - an ack-eliciting packet we sent
 * @list: quic_pnspace.sent, in packet number order, or quic_pnspace.lost
 * @frames: struct quic_frame.list, the retransmittable frames it carried
 * @pn: packet number
 * @time: when it was sent (us)
 * @episode: on the lost list, the congestion event it was declared in
 * @size: bytes counted in flight (RFC 9002 Section 2)
 * @reorder: on the lost list, the largest acknowledged packet number
 *	minus @pn when it was declared lost, at most 255
 * @ack_gap: an ack-eliciting packet sent between this one and the one
 *	before it in @list was acknowledged (RFC 9002 Section 7.6.2)
 * @by_time: on the lost list, declared lost by the time threshold alone
 * @ecn: it left with ECT(0) (RFC 9000 Section 13.4.2)
 * @zrtt: a client's 0-RTT packet (sent with the EARLY keys)
 */
struct quic_sent_pkt {
	struct list_head list;
	struct list_head frames;
	s64 pn;
	u64 time;
	u32 episode;
	u16 size;
	u8 reorder;
	u8 ack_gap:1;
	u8 by_time:1;
	u8 ecn:1;
	u8 zrtt:1;
};

/**
 * struct quic_pnspace - one packet number space
 * @ranges: received packet numbers, highest range first
 * @nranges: ranges in use
 * @max_pn_time: when @ranges[0].end arrived (us), for ACK Delay
 * @ack_deadline: time an ACK must be sent by (us), 0 if none pending
 * @ack_eliciting: ack-eliciting packets received since our last ACK
 * @ack_pending: received packets not yet acknowledged
 * @ack_immediate: send an ACK with the next packet, do not delay
 * @next_pn: packet number of the next packet we send
 * @largest_acked: largest packet number the peer acknowledged, -1 if none
 * @sent: struct quic_sent_pkt.list, unacknowledged ack-eliciting packets
 * @lost: struct quic_sent_pkt.list, packets declared lost lately, their
 *	frames queued again: an acknowledgment of one shows reordering
 * @nlost: entries in @lost
 * @loss_time: time threshold loss timer (us), 0 if not armed
 * @last_sent_time: when the last ack-eliciting packet was sent (us)
 * @ack_hash: hash of the ranges of the last ACK frame processed (0: none),
 *	so that the same ACK again, which can acknowledge nothing new, costs
 *	no walk of @sent and @lost
 * @outq: struct quic_frame.list, frames waiting to be sent in this space
 * @crypto_send: CRYPTO stream offset of the next byte queued
 * @crypto_recv: CRYPTO stream offset of the next byte delivered
 * @crypto_ooo: out-of-order CRYPTO data, by offset
 * @probe: probe packets to send now, ignoring the congestion window
 *	(RFC 9002 Section 6.2.4)
 * @discarded: keys were discarded (RFC 9001 Section 4.9): nothing more
 *	is sent or accepted in this space
 * @ecn_recv: packets processed that arrived ECT(0), ECT(1), CE (the
 *	counts of our ACK_ECN frames, RFC 9000 Section 13.4.1)
 * @ecn_peer: the counts of the peer's last ACK_ECN frame that passed
 *	validation
 * @ecn_sent: packets sent with ECT(0)
 */
struct quic_pnspace {
	struct quic_pn_range ranges[QUIC_ACK_RANGES_MAX];
	u8 nranges;
	u64 max_pn_time;
	u64 ack_deadline;
	u16 ack_eliciting;
	u8 ack_pending:1;
	u8 ack_immediate:1;
	u8 discarded:1;
	u8 probe;

	s64 next_pn;
	s64 largest_acked;
	struct list_head sent;
	struct list_head lost;
	u16 nlost;
	u64 loss_time;
	u64 last_sent_time;
	u32 ack_hash;

	struct list_head outq;
	u64 crypto_send;
	u64 crypto_recv;
	struct quic_ooo crypto_ooo;

	u64 ecn_recv[3];
	u64 ecn_peer[3];
	u64 ecn_sent;
};

void quic_pnspace_init(struct quic_pnspace *space);
void quic_pnspace_free(struct quic_pnspace *space);
s64 quic_pnspace_largest_recv(const struct quic_pnspace *space);
bool quic_pnspace_is_dup(const struct quic_pnspace *space, s64 pn);
void quic_pnspace_record(struct quic_pnspace *space, s64 pn, u64 now);
struct quic_sent_pkt *quic_sent_pkt_new(s64 pn, u64 now, u16 size);
void quic_sent_pkt_free(struct quic_sent_pkt *pkt);
void quic_pnspace_lost_trim(struct quic_pnspace *space, u16 max);
void quic_pnspace_lost_del(struct quic_pnspace *space,
			   struct quic_sent_pkt *pkt);

#endif /* __NET_QUIC_PNSPACE_H */
