// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: packet number spaces (RFC 9000 Section 12.3).
 *
 * Received packet numbers are kept as a short list of ranges, highest
 * first, which is what an ACK frame carries (RFC 9000 Section 19.3).  When
 * the list is full the lowest range is forgotten: such old packets are
 * either acknowledged already or will be retransmitted by the peer.
 */

#include <linux/slab.h>

#include "quic.h"

void quic_pnspace_init(struct quic_pnspace *space)
{
	memset(space, 0, sizeof(*space));
	space->largest_acked = -1;
	INIT_LIST_HEAD(&space->sent);
	INIT_LIST_HEAD(&space->lost);
	INIT_LIST_HEAD(&space->outq);
	quic_ooo_init(&space->crypto_ooo);
}

void quic_sent_pkt_free(struct quic_sent_pkt *pkt)
{
	kfree(pkt);
}

struct quic_sent_pkt *quic_sent_pkt_new(s64 pn, u64 now, u16 size)
{
	struct quic_sent_pkt *pkt = kzalloc(sizeof(*pkt), GFP_ATOMIC);

	if (!pkt)
		return NULL;
	INIT_LIST_HEAD(&pkt->frames);
	pkt->pn = pn;
	pkt->time = now;
	pkt->size = size;
	return pkt;
}

/**
 * quic_pnspace_lost_trim - forget the oldest packets declared lost
 * @space: the space
 * @max: how many to keep
 *
 * Retransmitted frames go in packets with new numbers, so an
 * acknowledgment of a lost packet's own number means it arrived after
 * all, however late.  A reordered packet's comes within about an RTT of
 * the one that had it declared lost: a short list is enough.
 */
void quic_pnspace_lost_trim(struct quic_pnspace *space, u16 max)
{
	struct quic_sent_pkt *pkt;

	while (space->nlost > max) {
		pkt = list_first_entry(&space->lost, struct quic_sent_pkt, list);
		quic_pnspace_lost_del(space, pkt);
	}
}

/* A packet leaves the lost list: acknowledged after all, or forgotten. */
void quic_pnspace_lost_del(struct quic_pnspace *space,
			   struct quic_sent_pkt *pkt)
{
	list_del(&pkt->list);
	quic_sent_pkt_free(pkt);
	space->nlost--;
}

/* Frames are freed by the caller (they may be charged to the socket). */
void quic_pnspace_free(struct quic_pnspace *space)
{
	quic_pnspace_lost_trim(space, 0);
	quic_ooo_purge(&space->crypto_ooo);
	space->nranges = 0;
	space->ack_pending = 0;
	space->ack_deadline = 0;
}

s64 quic_pnspace_largest_recv(const struct quic_pnspace *space)
{
	return space->nranges ? space->ranges[0].end : -1;
}

/* RFC 9000 Section 12.3: a packet number is never accepted twice. */
bool quic_pnspace_is_dup(const struct quic_pnspace *space, s64 pn)
{
	int i;

	for (i = 0; i < space->nranges; i++) {
		if (pn > space->ranges[i].end)
			return false;
		if (pn >= space->ranges[i].start)
			return true;
	}
	/* Below every range we remember: too old to tell, treat as seen. */
	return space->nranges == QUIC_ACK_RANGES_MAX;
}

static void quic_pnspace_merge(struct quic_pnspace *space, int i)
{
	/* ranges[i] may now touch ranges[i + 1] (the lower one). */
	if (i + 1 < space->nranges &&
	    space->ranges[i + 1].end + 1 >= space->ranges[i].start) {
		space->ranges[i].start = space->ranges[i + 1].start;
		memmove(&space->ranges[i + 1], &space->ranges[i + 2],
			(space->nranges - i - 2) * sizeof(space->ranges[0]));
		space->nranges--;
	}
}

static void quic_pnspace_insert(struct quic_pnspace *space, int i, s64 pn)
{
	int n = space->nranges;

	if (n == QUIC_ACK_RANGES_MAX)
		n--;		/* forget the lowest range */
	memmove(&space->ranges[i + 1], &space->ranges[i],
		(n - i) * sizeof(space->ranges[0]));
	space->ranges[i].start = pn;
	space->ranges[i].end = pn;
	space->nranges = n + 1;
}

/* Record a packet number that was not a duplicate. */
void quic_pnspace_record(struct quic_pnspace *space, s64 pn, u64 now)
{
	int i;

	if (pn > quic_pnspace_largest_recv(space))
		space->max_pn_time = now;
	for (i = 0; i < space->nranges; i++) {
		struct quic_pn_range *r = &space->ranges[i];

		if (pn == r->end + 1) {
			r->end = pn;
			if (i)
				quic_pnspace_merge(space, i - 1);
			return;
		}
		if (pn == r->start - 1) {
			r->start = pn;
			quic_pnspace_merge(space, i);
			return;
		}
		if (pn > r->end)
			break;
	}
	if (i < QUIC_ACK_RANGES_MAX)
		quic_pnspace_insert(space, i, pn);
}
