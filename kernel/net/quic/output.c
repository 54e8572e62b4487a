// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: building and sending datagrams (RFC 9000 Sections 12.2, 14.1,
 * 17; RFC 9001 Section 5; RFC 9002 Sections 6.2.4 and 7).
 *
 * A datagram holds one packet per space with something to send, Initial,
 * then Handshake, then 1-RTT (RFC 9000 Section 12.2).  Packets are
 * written in plain text into one linear skb, padded as RFC 9000 Section
 * 14.1 requires, then protected in place by crypto.c and sent through the
 * path.  Ack-eliciting packets are recorded with the frames they carry.
 * Runs under the socket lock, in process or softirq context.
 */

#include <linux/ipv6.h>
#include <linux/udp.h>
#include <net/inet_ecn.h>

#include "quic.h"
#include "packet.h"
#include "input.h"
#include "output.h"

#define QUIC_DGRAM_PKTS		QUIC_SPACE_MAX
#define QUIC_FLUSH_MAX		256	/* datagrams per flush */
/* A train of full-size datagrams, sent as one UDP GSO skb, is linear and at
 * most an order-2 allocation (12 or 13 datagrams of 1200 bytes).
 */
#define QUIC_GSO_ORDER		2
/* Bytes of PADDING that make a nearly full 1-RTT datagram full-size. */
#define QUIC_TRAIN_PAD		32
#define QUIC_OUT_HROOM	(MAX_HEADER + sizeof(struct ipv6hdr) + \
			 sizeof(struct udphdr))
/* Smallest payload worth starting a packet for. */
#define QUIC_PKT_MIN_PAYLOAD	32

struct quic_out_pkt {
	u32 off;
	u32 pn_offset;
	u32 len;
	s64 pn;
	struct quic_sent_pkt *sent;
	u8 space;
	u8 ack_eliciting:1;
	u8 is_long:1;
	u8 zrtt:1;
};

/*
 * The datagram being built, at @start in @skb.  @skb holds @segs datagrams
 * before it, full-size ones of @room bytes each, sent together with UDP
 * GSO (quic_out_send()).  @path_frame: it holds a PATH_CHALLENGE or
 * PATH_RESPONSE, so it is padded (RFC 9000 Section 8.2).
 */
struct quic_dgram {
	struct sk_buff *skb;
	u32 start;
	u32 room;
	u8 segs;
	u16 pl_size;
	struct quic_out_pkt pkts[QUIC_DGRAM_PKTS];
	u32 pace_wait;
	u8 n;
	u8 blocked:1;
	u8 close:1;
	u8 close_app:1;
	u8 discard_initial:1;
	u8 path_frame:1;
	u8 ecn:1;
	u8 close_space;
};

static u8 quic_space_pkt_type(u8 space)
{
	return space == QUIC_SPACE_INITIAL ? QUIC_PKT_INITIAL :
					     QUIC_PKT_HANDSHAKE;
}

/*
 * RFC 9001 Section 4.6.1: a client with the EARLY send key and no 1-RTT
 * one sends Application Data space packets as 0-RTT packets (long header,
 * EARLY keys, same packet numbers); a server never does (Section 5.6).
 */
static bool quic_out_zrtt(struct quic_sock *qs)
{
	return !qs->is_serv && !qs->zrtt_done &&
	       !quic_crypto_send_ready(&qs->crypto[QUIC_CRYPTO_APP]) &&
	       quic_crypto_send_ready(&qs->crypto[QUIC_CRYPTO_EARLY]);
}

static const struct quic_conn_id *quic_out_dcid(struct quic_sock *qs)
{
	return &qs->dest.active->key.id;
}

static const struct quic_conn_id *quic_out_scid(struct quic_sock *qs)
{
	return &qs->source.active->key.id;
}

static u8 *quic_put_cid(u8 *p, const struct quic_conn_id *id)
{
	*p++ = id->len;
	return quic_put_data(p, id->data, id->len);
}

static u8 *quic_put_pn(u8 *p, s64 pn, u8 pn_len)
{
	int i;

	for (i = pn_len - 1; i >= 0; i--)
		*p++ = (u8)(pn >> (8 * i));
	return p;
}

/* RFC 9000 Section 17.2: long header up to the packet number. */
static u8 *quic_out_long_hdr(struct quic_sock *qs, u8 *p, u8 space,
			     u8 pn_len, struct quic_out_pkt *op)
{
	u8 type = op->zrtt ? QUIC_PKT_0RTT : quic_space_pkt_type(space);
	u8 *start = p;

	*p++ = quic_pkt_first_byte(qs->version, type) | (pn_len - 1);
	p = quic_put_u32(p, qs->version);
	p = quic_put_cid(p, quic_out_dcid(qs));
	p = quic_put_cid(p, quic_out_scid(qs));
	if (space == QUIC_SPACE_INITIAL) {
		u32 tlen = qs->is_serv ? 0 : qs->token.len;

		p = quic_put_var(p, tlen);
		if (tlen)
			p = quic_put_data(p, qs->token.data, tlen);
	}
	p = quic_put_var2(p, 0);	/* Length, set by quic_out_finish() */
	op->pn_offset = p - start;
	op->is_long = 1;
	return p;
}

/* RFC 9000 Section 17.3.1: short header up to the packet number. */
static u8 *quic_out_short_hdr(struct quic_sock *qs, u8 *p, u8 pn_len,
			      struct quic_out_pkt *op)
{
	u8 *start = p;

	*p++ = QUIC_HDR_FIXED | (pn_len - 1);
	p = quic_put_data(p, quic_out_dcid(qs)->data, quic_out_dcid(qs)->len);
	op->pn_offset = p - start;
	return p;
}

static u32 quic_out_hdr_max(struct quic_sock *qs, u8 space)
{
	if (space == QUIC_SPACE_APP && quic_out_zrtt(qs))
		return 7 + 2 * QUIC_CONN_ID_MAX_LEN + 2 + 4;
	if (space == QUIC_SPACE_APP)
		return 1 + QUIC_CONN_ID_MAX_LEN + 4;
	return 7 + 2 * QUIC_CONN_ID_MAX_LEN + 2 + qs->token.len + 2 + 4;
}

/* Frames that are not sent again when lost. */
static bool quic_frame_once(const struct quic_frame *f)
{
	return f->type == QUIC_FRAME_PING;
}

/* A queued frame @f gives way to @nf, charged to the send buffer alike. */
static void quic_out_frame_add(struct sock *sk, struct quic_frame *f,
			       struct quic_frame *nf)
{
	nf->wmem = f->wmem;
	if (nf->wmem)
		sk_wmem_queued_add(sk, nf->len);
	list_add_tail(&nf->list, &f->list);
}

/*
 * A frame larger than a 1-RTT packet of the path MSS can hold was queued
 * before the MSS fell back (quic_pl_blackhole()), or (@any) a STREAM frame
 * sized for a 1-RTT packet goes in a 0-RTT one, whose long header leaves
 * less room.  A STREAM frame is cut in two, the head sized to @room; a
 * DATAGRAM frame, which is never cut nor resent (RFC 9221 Section 5), is
 * dropped.  Return: true if the front of the queue changed.
 */
static bool quic_out_cut(struct sock *sk, struct quic_frame *f, u32 room,
			 bool any)
{
	u32 max = quic_sk(sk)->path.mss - QUIC_CRYPTO_TAG_LEN -
		  (1 + QUIC_CONN_ID_MAX_LEN + 4);
	u32 hlen = f->len - f->data_len, n;
	struct quic_frame *head, *rest;

	if (f->len <= max && !any)
		return false;
	if (f->type == QUIC_FRAME_PING && !any) {
		list_del(&f->list);
		quic_frame_free(sk, f);
		return true;
	}
	if (f->type != QUIC_FRAME_STREAM || room <= hlen + 1)
		return false;
	n = min(room - hlen, f->data_len - 1);
	head = quic_frame_stream_new(f->stream_id, f->offset, n, false,
				     GFP_ATOMIC);
	rest = quic_frame_stream_new(f->stream_id, f->offset + n,
				     f->data_len - n, f->fin, GFP_ATOMIC);
	if (!head || !rest) {
		kfree(head);
		kfree(rest);
		return false;
	}
	memcpy(head->data + head->len - n, f->data + hlen, n);
	memcpy(rest->data + rest->len - rest->data_len, f->data + hlen + n,
	       rest->data_len);
	quic_out_frame_add(sk, f, head);
	quic_out_frame_add(sk, f, rest);
	list_del(&f->list);
	quic_frame_free(sk, f);
	return true;
}

/* Move the frames of @q that fit into the packet. */
static u8 *quic_out_frames(struct sock *sk, struct list_head *q, u8 *p,
			   u8 *limit, struct quic_sent_pkt *sent, bool *any)
{
	struct quic_frame *f;
	bool cut = sent->zrtt;

	while (!list_empty(q)) {
		f = list_first_entry(q, struct quic_frame, list);
		if (f->len > limit - p) {
			if (quic_out_cut(sk, f, limit - p, cut))
				continue;
			break;
		}
		p = quic_put_data(p, f->data, f->len);
		list_del(&f->list);
		*any = true;
		if (quic_frame_once(f)) {
			quic_frame_free(sk, f);
			continue;
		}
		if (f->type == QUIC_FRAME_NEW_CONNECTION_ID)
			quic_conn_id_source_sent(&quic_sk(sk)->source,
						 f->offset);
		list_add_tail(&f->list, &sent->frames);
	}
	return p;
}

static void quic_out_ack_sent(struct sock *sk, struct quic_pnspace *s)
{
	s->ack_pending = 0;
	s->ack_immediate = 0;
	s->ack_eliciting = 0;
	s->ack_deadline = 0;
}

/*
 * May frames go out in @space now?  The congestion window first; then, in
 * the Application Data space, pacing (RFC 9002 Section 7.7).  Initial and
 * Handshake packets, probes and ACK-only packets are never paced, so the
 * handshake and acknowledgments are not held back.
 */
static bool quic_out_allowed(struct sock *sk, struct quic_dgram *d, u8 space)
{
	struct quic_sock *qs = quic_sk(sk);
	u32 wait;

	if (!quic_cong_can_send(&qs->cong, qs->path.mss)) {
		d->blocked = 1;
		return false;
	}
	if (space != QUIC_SPACE_APP)
		return true;
	/* The timer waits whole jiffies, and one more (quic_timer_reset()). */
	wait = quic_cong_pace_wait(&qs->cong, qs->path.mss, quic_now(),
				   jiffies_to_usecs(2));
	if (!wait)
		return true;
	d->blocked = 1;
	d->pace_wait = wait;
	return false;
}

/* What the packet of @space would carry; false if nothing. */
static bool quic_out_wanted(struct sock *sk, struct quic_dgram *d, u8 space,
			    bool *ack, bool *frames)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[space];

	if (s->discarded)
		return false;
	if (space == QUIC_SPACE_APP && quic_out_zrtt(qs)) {
		/* RFC 9000 Section 12.4: only STREAM frames (and a probe's
		 * PING) go in 0-RTT packets; the rest waits for 1-RTT keys.
		 */
		if (d->close || d->pl_size)
			return false;
		*frames = !list_empty(&qs->stream_outq);
		if (*frames && !s->probe && !quic_out_allowed(sk, d, space))
			*frames = false;
		return *frames || s->probe;
	}
	if (!quic_crypto_send_ready(&qs->crypto[space]))
		return false;
	if (d->close)
		return space == d->close_space;
	if (d->pl_size)
		return space == QUIC_SPACE_APP;
	*frames = !list_empty(&s->outq) ||
		  (space == QUIC_SPACE_APP &&
		   (!list_empty(&qs->stream_outq) || qs->path.response_pending ||
		    qs->move.challenge_pending));
	/* A PATH_CHALLENGE goes out as a probe does, past the window: the
	 * new path may have only the anti-amplification budget of a few
	 * ACKs, and no more of them come if nothing reaches the peer.
	 */
	if (*frames && !s->probe && !quic_out_allowed(sk, d, space) &&
	    !(space == QUIC_SPACE_APP && qs->move.challenge_pending))
		*frames = false;
	*ack = s->ack_pending && (s->ack_immediate || *frames || s->probe);
	return *ack || *frames || s->probe;
}

/* The payload of a packet; returns its end. */
static u8 *quic_out_payload(struct sock *sk, struct quic_dgram *d,
			    struct quic_out_pkt *op, u8 *p, u8 *limit,
			    bool ack, bool frames)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[op->space];
	bool any = false;
	u32 n;

	if (d->close)
		return p + quic_frame_close_build(sk, p, limit - p, d->close_app);
	if (d->pl_size) {
		*p++ = QUIC_FRAME_PING;	/* padded by quic_out_pad() */
		op->ack_eliciting = 1;
		return p;
	}
	if (op->zrtt) {
		p = quic_out_frames(sk, &qs->stream_outq, p, limit, op->sent,
				    &any);
		goto probe;
	}
	if (ack) {
		n = quic_frame_ack_build(sk, op->space, p, limit - p);
		if (n)
			quic_out_ack_sent(sk, s);
		p += n;
	}
	/* Within the window only: an ACK-only packet it made ack-eliciting
	 * would add a sent record per ACK for a peer that never acknowledges.
	 */
	if (op->space == QUIC_SPACE_APP && (frames || s->probe)) {
		n = quic_frame_path_response_build(sk, p, limit - p);
		n += quic_path_challenge_build(sk, p + n, limit - p - n);
		any |= n > 0;
		d->path_frame |= n > 0;
		p += n;
	}
	p = quic_out_frames(sk, &s->outq, p, limit, op->sent, &any);
	if (op->space == QUIC_SPACE_APP && list_empty(&s->outq))
		p = quic_out_frames(sk, &qs->stream_outq, p, limit, op->sent,
				    &any);
probe:
	if (s->probe) {
		if (!any && p < limit) {
			*p++ = QUIC_FRAME_PING;
			any = true;
		}
		s->probe--;
	}
	op->ack_eliciting = any;
	return p;
}

static bool quic_out_packet(struct sock *sk, struct quic_dgram *d, u8 space)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[space];
	struct quic_out_pkt *op = &d->pkts[d->n];
	bool ack = false, frames = false;
	struct sk_buff *skb = d->skb;
	u8 *start, *p, *limit, pn_len;
	u32 avail = d->room - (skb->len - d->start);

	if (!quic_out_wanted(sk, d, space, &ack, &frames))
		return false;
	if (avail < quic_out_hdr_max(qs, space) + QUIC_CRYPTO_TAG_LEN +
		    QUIC_PKT_MIN_PAYLOAD)
		return false;
	memset(op, 0, sizeof(*op));
	op->sent = quic_sent_pkt_new(s->next_pn, 0, 0);
	if (!op->sent)
		return false;
	op->space = space;
	op->pn = s->next_pn;
	op->off = skb->len;
	op->zrtt = space == QUIC_SPACE_APP && quic_out_zrtt(qs);
	op->sent->zrtt = op->zrtt;
	pn_len = quic_pn_encode_len(op->pn, s->largest_acked);

	start = skb_tail_pointer(skb);
	if (space == QUIC_SPACE_APP && !op->zrtt)
		p = quic_out_short_hdr(qs, start, pn_len, op);
	else
		p = quic_out_long_hdr(qs, start, space, pn_len, op);
	p = quic_put_pn(p, op->pn, pn_len);
	limit = start + avail - QUIC_CRYPTO_TAG_LEN;
	p = quic_out_payload(sk, d, op, p, limit, ack, frames);
	/* RFC 9001 Section 5.4.2: room for the header protection sample. */
	while (p - (start + op->pn_offset) < QUIC_CRYPTO_SAMPLE_OFFSET)
		*p++ = QUIC_FRAME_PADDING;
	op->len = p - start + QUIC_CRYPTO_TAG_LEN;
	skb_put(skb, op->len);
	s->next_pn++;
	if (!op->ack_eliciting) {
		quic_sent_pkt_free(op->sent);
		op->sent = NULL;
	}
	if (space == QUIC_SPACE_HANDSHAKE && !qs->is_serv)
		d->discard_initial = 1;	/* RFC 9001 Section 4.9.1 */
	d->n++;
	return true;
}

/*
 * RFC 9000 Section 14.1: a client pads every datagram with an Initial
 * packet, a server those with an ack-eliciting Initial, to 1200 bytes.
 * The padding goes into the last packet.
 */
static void quic_out_pad(struct sock *sk, struct quic_dgram *d)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_out_pkt *last = &d->pkts[d->n - 1];
	u32 target, extra, len = d->skb->len - d->start;
	bool pad = false;
	int i;

	for (i = 0; i < d->n; i++)
		if (d->pkts[i].space == QUIC_SPACE_INITIAL &&
		    (!qs->is_serv || d->pkts[i].ack_eliciting))
			pad = true;
	/* RFC 9000 Section 8.2.1: a path probe is 1200 bytes unless the
	 * anti-amplification limit (@room) allows less.
	 */
	pad |= d->path_frame;
	target = min_t(u32, QUIC_MIN_INITIAL_SIZE, d->room);
	if (d->pl_size)
		target = d->pl_size;
	/* A 1-RTT datagram a few bytes short of full is padded to it: only
	 * full-size ones make a UDP GSO train (quic_out_train()), and stream
	 * frames are sized to fill a packet but for those few bytes.
	 */
	if (!pad && last->space == QUIC_SPACE_APP && qs->path.validated &&
	    d->room == qs->path.mss && d->room - len <= QUIC_TRAIN_PAD &&
	    quic_path_gso(sk))
		target = d->room;
	else if (!pad && !d->pl_size)
		return;
	if (len >= target)
		return;
	extra = target - len;
	/* Zeros before the tag: PADDING frames in the payload. */
	memmove(d->skb->data + last->off + last->len - QUIC_CRYPTO_TAG_LEN +
		extra, d->skb->data + last->off + last->len -
		QUIC_CRYPTO_TAG_LEN, QUIC_CRYPTO_TAG_LEN);
	memset(d->skb->data + last->off + last->len - QUIC_CRYPTO_TAG_LEN, 0,
	       extra);
	skb_put(d->skb, extra);
	last->len += extra;
}

/* Length fields, the sent records, then protection (RFC 9001 5.3, 5.4). */
static int quic_out_finish(struct sock *sk, struct quic_dgram *d)
{
	struct quic_sock *qs = quic_sk(sk);
	u64 now = quic_now();
	int i, err;

	for (i = 0; i < d->n; i++) {
		struct quic_out_pkt *op = &d->pkts[i];
		struct quic_pnspace *s = &qs->space[op->space];
		u8 *pkt = d->skb->data + op->off;

		if (op->is_long)
			quic_put_var2(pkt + op->pn_offset - 2,
				      op->len - op->pn_offset);
		if (d->ecn) {
			s->ecn_sent++;
			quic_ecn_sent(sk, !!op->sent);
		}
		if (op->sent) {
			op->sent->ecn = d->ecn;
			op->sent->time = now;
			op->sent->size = op->len;
			list_add_tail(&op->sent->list, &s->sent);
			quic_cong_on_sent(&qs->cong, op->len,
					  op->space == QUIC_SPACE_APP ? op->pn : -1,
					  now);
			s->last_sent_time = now;
		}
		trace_quic_packet_sent(sk, pkt, op->pn_offset, op->len,
				       op->space, op->pn);
		if (!op->is_long && qs->plain_1rtt) {
			/* 1-RTT in clear: no header protection, tag zeroed */
			memset(pkt + op->len - QUIC_CRYPTO_TAG_LEN, 0,
			       QUIC_CRYPTO_TAG_LEN);
			QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_ENCFASTPATHS);
			continue;
		}
		err = quic_crypto_encrypt(&qs->crypto[op->zrtt ?
						      QUIC_CRYPTO_EARLY :
						      op->space],
					  pkt, op->len, op->pn_offset, op->pn);
		if (err) {
			QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_ENCDROP);
			return err;
		}
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_ENCFASTPATHS);
	}
	return 0;
}

static struct sk_buff *quic_out_skb(struct sock *sk, u32 size)
{
	struct sk_buff *skb;

	skb = alloc_skb(QUIC_OUT_HROOM + size, GFP_ATOMIC | __GFP_NOWARN);
	if (skb)
		skb_reserve(skb, QUIC_OUT_HROOM);
	return skb;
}

/* Send the datagrams in d->skb, as one GSO skb when there are several. */
static void quic_out_send(struct sock *sk, struct quic_dgram *d)
{
	struct sk_buff *skb = d->skb;

	if (!skb)
		return;
	d->skb = NULL;
	if (!skb->len) {
		kfree_skb(skb);
		return;
	}
	net_dbg_ratelimited("quic: sk %p xmit %u bytes in %u datagrams\n",
			    sk, skb->len, d->segs);
	quic_path_xmit(sk, skb, d->segs > 1 ? d->room : 0,
		       d->ecn ? INET_ECN_ECT_0 : INET_ECN_NOT_ECT);
	d->segs = 0;
}

/*
 * Room for the next datagram: after the full-size ones of a train in its
 * skb (quic_out_train()), or in a new skb of one datagram.
 */
static int quic_out_dgram_skb(struct sock *sk, struct quic_dgram *d)
{
	u32 room = d->pl_size ?: quic_path_room(sk);

	if (d->skb && (d->room != room || skb_tailroom(d->skb) < room))
		quic_out_send(sk, d);
	d->room = room;
	if (d->room < QUIC_CRYPTO_TAG_LEN + QUIC_PKT_MIN_PAYLOAD + 30)
		return 0;
	if (!d->skb)
		d->skb = quic_out_skb(sk, d->room);
	if (!d->skb)
		return -ENOMEM;
	d->start = d->skb->len;
	return 1;
}

/*
 * A full-size datagram is alone in its skb and the window has room for
 * more: move it into an skb with room for a train of them, sent with UDP
 * GSO.  Only then, and sized to the window: the receiver's backlog counts
 * truesize, and a train skb holding one datagram would count 16 KB for
 * 1.2.  Before address validation every datagram goes alone, so that the
 * anti-amplification limit (RFC 9000 Section 8.1) sees each one.
 */
static void quic_out_train(struct sock *sk, struct quic_dgram *d)
{
	u32 most = (SKB_WITH_OVERHEAD(PAGE_SIZE << QUIC_GSO_ORDER) -
		    QUIC_OUT_HROOM) / d->room;
	struct quic_sock *qs = quic_sk(sk);
	struct quic_cong *c = &qs->cong;
	struct sk_buff *skb;
	u32 n = 1;

	if (d->segs != 1 || d->skb->len != d->room ||
	    d->room != qs->path.mss || !qs->path.validated ||
	    !quic_path_gso(sk))
		return;
	if (c->cwnd > c->in_flight)
		n += (c->cwnd - c->in_flight) / d->room;
	n = min(n, most);
	if (n < 2)
		return;
	skb = quic_out_skb(sk, n * d->room);
	if (!skb)
		return;
	skb_put_data(skb, d->skb->data, d->skb->len);
	consume_skb(d->skb);
	d->skb = skb;
}

/* One datagram.  Return: 1 if sent, 0 if nothing to send, or an error. */
static int quic_out_dgram(struct sock *sk, struct quic_dgram *d)
{
	static const u8 order[] = {
		QUIC_SPACE_INITIAL, QUIC_SPACE_HANDSHAKE, QUIC_SPACE_APP
	};
	bool eliciting = false;
	int i, err;

	d->n = 0;
	d->discard_initial = 0;
	d->path_frame = 0;
	/* One IP header for the datagrams of an skb: a change of ECN
	 * marking (RFC 9000 Section 13.4.2) sends those before.
	 */
	if (d->skb && d->ecn != quic_ecn_marking(sk))
		quic_out_send(sk, d);
	d->ecn = quic_ecn_marking(sk);
	err = quic_out_dgram_skb(sk, d);
	if (err <= 0)
		return err;
	for (i = 0; i < ARRAY_SIZE(order); i++)
		quic_out_packet(sk, d, order[i]);
	if (!d->n)
		return 0;
	quic_out_pad(sk, d);
	err = quic_out_finish(sk, d);
	if (err) {
		skb_trim(d->skb, d->start);
		return err;
	}
	for (i = 0; i < d->n; i++)
		eliciting |= d->pkts[i].ack_eliciting;
	/* UDP GSO (RFC 9000 Section 14 sizes each datagram): only the last
	 * segment may be shorter, so a short one ends the skb.
	 */
	d->segs++;
	quic_out_train(sk, d);
	if (d->skb->len - d->start != d->room ||
	    skb_tailroom(d->skb) < d->room || !quic_sk(sk)->path.validated)
		quic_out_send(sk, d);
	/* RFC 9000 Section 10.1: only the first ack-eliciting packet sent
	 * after a packet was received restarts the idle timer.
	 */
	if (eliciting && !quic_sk(sk)->idle_sent) {
		quic_sk(sk)->idle_sent = 1;
		quic_timer_idle_reset(sk);
	}
	if (d->discard_initial)
		quic_space_discard(sk, QUIC_SPACE_INITIAL);
	return 1;
}

/*
 * ABI reference Section 6.2: sk_sndbuf follows the congestion window
 * (4 x cwnd), within quic_wmem like TCP's autotuning.
 */
static void quic_out_sndbuf(struct sock *sk)
{
	u64 buf = 4ULL * quic_sk(sk)->cong.cwnd;

	if (sk->sk_userlocks & SOCK_SNDBUF_LOCK)
		return;
	buf = clamp_t(u64, buf, READ_ONCE(sysctl_quic_wmem[0]),
		      READ_ONCE(sysctl_quic_wmem[2]));
	WRITE_ONCE(sk->sk_sndbuf, (int)buf);
}

/*
 * After a flush: when pacing held frames back, the pace timer sends them;
 * when the flush stopped at its datagram limit, it continues in a tick.
 * RFC 9002 Section 7.8: the window does not grow while the sender leaves
 * it mostly unused; it is not application limited while the window or
 * pacing holds data back.
 */
static void quic_out_pace_timer(struct sock *sk, struct quic_dgram *d,
				bool more)
{
	struct quic_cong *c = &quic_sk(sk)->cong;

	if (d->blocked)
		c->app_limited = 0;
	else if (!more)
		c->app_limited = c->in_flight < c->cwnd / 2;
	if (d->pace_wait || more)
		quic_timer_reset(sk, QUIC_TIMER_PACE, d->pace_wait);
}

/*
 * RFC 9000 Section 14.4: a PMTU probe is a 1-RTT packet of a PING padded
 * to the size probed, alone in its datagram, so that its loss costs no
 * data.  It waits for room in the window, like any packet.
 */
static void quic_out_pl_probe(struct sock *sk)
{
	u16 size = quic_pl_want(sk, quic_now());
	struct quic_dgram d = { .pl_size = size };

	if (!size || !quic_cong_can_send(&quic_sk(sk)->cong, size))
		return;
	if (quic_out_dgram(sk, &d) > 0 && d.n == 1)
		quic_pl_sent(sk, d.pkts[0].pn, size);
	quic_out_send(sk, &d);
}

/* Smallest datagram worth sending on another path: header, frames, tag. */
#define QUIC_PATH_FRAMES_MIN	(1 + QUIC_CONN_ID_MAX_LEN + 4 + \
				 2 * (1 + QUIC_PATH_CHALLENGE_LEN) + \
				 QUIC_CRYPTO_TAG_LEN)

/**
 * quic_output_path_frames - path validation frames on another path
 * @sk: the socket, locked
 * @a: the path: UDP socket, addresses and Destination Connection ID
 * @response: Data of a PATH_RESPONSE to send, or NULL
 * @challenge: Data of a PATH_CHALLENGE to send, or NULL
 * @room: the most the datagram may hold (the anti-amplification limit)
 *
 * RFC 9000 Sections 8.2 and 9: one 1-RTT packet, padded to 1200 bytes
 * unless @room allows less (Sections 8.2.1 and 8.2.2), sent from @a's
 * local address to its peer address.  It is not recorded for loss
 * recovery: a lost challenge is sent again by the path timer, a lost
 * response is answered by the peer's next challenge, and neither counts
 * against the window of the path in use.
 *
 * Return: the datagram's length, 0 if nothing was sent.
 */
u32 quic_output_path_frames(struct sock *sk, const struct quic_path_alt *a,
			    const u8 *response, const u8 *challenge, u32 room)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[QUIC_SPACE_APP];
	struct quic_crypto *c = &qs->crypto[QUIC_CRYPTO_APP];
	u32 len = min_t(u32, room, QUIC_MIN_INITIAL_SIZE), pn_offset;
	struct sk_buff *skb;
	u8 *start, *p, pn_len;
	s64 pn = s->next_pn;

	if (!a->udp || !quic_crypto_send_ready(c) || s->discarded ||
	    len < QUIC_PATH_FRAMES_MIN)
		return 0;
	skb = quic_out_skb(sk, len);
	if (!skb)
		return 0;
	start = skb_put(skb, len);
	pn_len = quic_pn_encode_len(pn, s->largest_acked);
	p = start;
	*p++ = QUIC_HDR_FIXED | (pn_len - 1);
	p = quic_put_data(p, a->dcid.data, a->dcid.len);
	pn_offset = p - start;
	p = quic_put_pn(p, pn, pn_len);
	if (response)
		p += quic_frame_path_put(p, QUIC_PATH_FRAMES_MIN,
					 QUIC_FRAME_PATH_RESPONSE, response);
	if (challenge)
		p += quic_frame_path_put(p, QUIC_PATH_FRAMES_MIN,
					 QUIC_FRAME_PATH_CHALLENGE, challenge);
	memset(p, QUIC_FRAME_PADDING, start + len - QUIC_CRYPTO_TAG_LEN - p);
	trace_quic_packet_sent(sk, start, pn_offset, len, QUIC_SPACE_APP, pn);
	if (quic_crypto_encrypt(c, start, len, pn_offset, pn)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_ENCDROP);
		kfree_skb(skb);
		return 0;
	}
	s->next_pn++;
	QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_ENCFASTPATHS);
	quic_path_send_to(a->udp->sock->sk, skb, &a->local, &a->peer);
	return len;
}

/**
 * quic_output_flush - send what is queued, as far as limits allow
 * @sk: the socket, locked
 */
void quic_output_flush(struct sock *sk)
{
	struct quic_dgram d = {};
	int i;

	if (!quic_is_connected(sk))
		return;
	quic_path_alt_flush(sk);
	/* The probe first: a bulk transfer leaves no room after its data. */
	quic_out_pl_probe(sk);
	for (i = 0; i < QUIC_FLUSH_MAX; i++)
		if (quic_out_dgram(sk, &d) <= 0)
			break;
	quic_out_send(sk, &d);
	quic_out_pace_timer(sk, &d, i == QUIC_FLUSH_MAX);
	quic_out_sndbuf(sk);
	quic_loss_set_timer(sk);
}

/*
 * The frames a probe carries again: those of the oldest sent packet that
 * still has any.  Not simply the oldest packet: once a probe took its
 * frames, it stays in the sent list without any until it is acknowledged
 * or declared lost, and every later probe would be a bare PING.  Under
 * heavy loss (RFC 9002 Section 6.2.4) a lost ServerHello was then only
 * sent again after a PING, its acknowledgment and loss detection all got
 * through, not by the probes themselves.
 */
static void quic_output_probe_load(struct sock *sk, u8 space)
{
	struct quic_pnspace *s = &quic_sk(sk)->space[space];
	struct quic_sent_pkt *pkt;

	s->probe = space == QUIC_SPACE_APP ? 2 : 1;
	if (!list_empty(&s->outq))
		return;
	list_for_each_entry(pkt, &s->sent, list) {
		if (list_empty(&pkt->frames))
			continue;
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_FRM_RETRANS);
		list_splice_init(&pkt->frames, &s->outq);
		return;
	}
}

/*
 * RFC 9002 Section 6.2.4: a probe packet in @space, ignoring the window,
 * with the oldest unacknowledged frames again, or a PING.  Two probes in
 * 1-RTT, where one lost probe would cost another backoff; Initial and
 * Handshake keep to one for the server's anti-amplification limit.  A
 * probe in Initial or Handshake also probes the other of the two when it
 * has packets in flight ("SHOULD send ack-eliciting packets from other
 * packet number spaces with in-flight data, coalescing packets if
 * possible"): a server's ServerHello and the rest of its flight go out
 * together, in one datagram when they fit.
 */
void quic_output_probe(struct sock *sk, u8 space)
{
	struct quic_sock *qs = quic_sk(sk);
	u8 other = space == QUIC_SPACE_INITIAL ? QUIC_SPACE_HANDSHAKE :
						 QUIC_SPACE_INITIAL;
	struct quic_pnspace *o = &qs->space[other];
	int i;

	if (!quic_is_connected(sk) || qs->space[space].discarded)
		return;
	quic_output_probe_load(sk, space);
	if (space != QUIC_SPACE_APP && !o->discarded && !list_empty(&o->sent) &&
	    quic_crypto_send_ready(&qs->crypto[other]))
		quic_output_probe_load(sk, other);
	quic_output_flush(sk);
	for (i = 0; i < QUIC_SPACE_MAX; i++)
		qs->space[i].probe = 0;
}

/**
 * quic_output_close - send CONNECTION_CLOSE now
 * @sk: the socket
 * @space: packet number space to send it in
 * @app: the application variant (0x1d) with quic_sock.close
 *
 * RFC 9000 Section 10.2: sent once, without waiting for the window.
 */
void quic_output_close(struct sock *sk, u8 space, bool app)
{
	struct quic_dgram d = {
		.close = 1,
		.close_app = app,
		.close_space = space,
	};

	if (quic_out_dgram(sk, &d) > 0)
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_FRM_OUTCLOSES);
	quic_out_send(sk, &d);
}
