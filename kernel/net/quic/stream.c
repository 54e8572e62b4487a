// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: streams (RFC 9000 Sections 2, 3 and 4).
 *
 * All functions run under the socket lock (owner or spinlock).  Functions
 * handling peer frames return 0 or a QUIC transport error code (RFC 9000
 * Section 20.1); the others return 0 or a negative errno.
 */

#include <linux/hash.h>
#include <linux/slab.h>

#include "quic.h"
#include "packet.h"

void quic_ooo_init(struct quic_ooo *q)
{
	q->root = RB_ROOT;
	q->mem = 0;
	q->count = 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_ooo_init);

void quic_ooo_purge(struct quic_ooo *q)
{
	struct rb_node *n = rb_first(&q->root);

	while (n) {
		struct sk_buff *skb = rb_to_skb(n);

		n = rb_next(n);
		rb_erase(&skb->rbnode, &q->root);
		kfree_skb(skb);
	}
	q->mem = 0;
	q->count = 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_ooo_purge);

/* The piece with the highest offset not above @off, or NULL. */
static struct sk_buff *quic_ooo_floor(struct quic_ooo *q, u64 off)
{
	struct rb_node *n = q->root.rb_node;
	struct sk_buff *best = NULL;

	while (n) {
		struct sk_buff *skb = rb_to_skb(n);

		if (QUIC_OOO_OFF(skb) <= off) {
			best = skb;
			n = n->rb_right;
		} else {
			n = n->rb_left;
		}
	}
	return best;
}

static void quic_ooo_erase(struct quic_ooo *q, struct sk_buff *skb)
{
	rb_erase(&skb->rbnode, &q->root);
	q->mem -= skb->truesize;
	q->count--;
}

/* [@off, @end) is held already, in one piece. */
bool quic_ooo_covered(struct quic_ooo *q, u64 off, u64 end)
{
	struct sk_buff *p = quic_ooo_floor(q, off);

	return p && QUIC_OOO_OFF(p) + p->len >= end;
}
EXPORT_SYMBOL_IF_KUNIT(quic_ooo_covered);

/**
 * quic_ooo_insert - hold a piece of out-of-order data
 * @q: the queue
 * @skb: the data, linear
 * @off: its offset in the stream
 *
 * Bytes held already are cut from @skb, and pieces that @skb covers whole
 * are dropped, so that no byte is held twice.
 *
 * Return: true if @skb was queued, false if it held nothing new and was
 * freed.
 */
bool quic_ooo_insert(struct quic_ooo *q, struct sk_buff *skb, u64 off)
{
	struct rb_node **link = &q->root.rb_node, *parent = NULL;
	u64 end = off + skb->len;
	struct sk_buff *p, *n;

	p = quic_ooo_floor(q, off);
	if (p) {
		u64 pend = QUIC_OOO_OFF(p) + p->len;

		if (pend >= end)
			goto dup;
		if (pend > off) {
			skb_pull(skb, pend - off);
			off = pend;
		}
		n = skb_rb_next(p);
	} else {
		n = skb_rb_first(&q->root);
	}
	while (n && QUIC_OOO_OFF(n) < end) {
		p = skb_rb_next(n);
		if (QUIC_OOO_OFF(n) + n->len > end) {
			if (QUIC_OOO_OFF(n) <= off)
				goto dup;
			skb_trim(skb, QUIC_OOO_OFF(n) - off);
			break;
		}
		quic_ooo_erase(q, n);
		kfree_skb(n);
		n = p;
	}
	QUIC_OOO_OFF(skb) = off;
	while (*link) {
		parent = *link;
		if (QUIC_OOO_OFF(rb_to_skb(parent)) < off)
			link = &parent->rb_right;
		else
			link = &parent->rb_left;
	}
	rb_link_node(&skb->rbnode, parent, link);
	rb_insert_color(&skb->rbnode, &q->root);
	q->mem += skb->truesize;
	q->count++;
	return true;
dup:
	kfree_skb(skb);
	return false;
}
EXPORT_SYMBOL_IF_KUNIT(quic_ooo_insert);

/* The first piece, taken out, if it starts at or below @limit. */
struct sk_buff *quic_ooo_pop(struct quic_ooo *q, u64 limit)
{
	struct sk_buff *skb = skb_rb_first(&q->root);

	if (!skb || QUIC_OOO_OFF(skb) > limit)
		return NULL;
	quic_ooo_erase(q, skb);
	return skb;
}
EXPORT_SYMBOL_IF_KUNIT(quic_ooo_pop);

static struct hlist_head *quic_stream_bucket(struct quic_stream_table *t,
					     s64 id)
{
	return &t->head[hash_64((u64)id, QUIC_STREAM_HT_BITS)];
}

void quic_stream_table_init(struct quic_stream_table *t)
{
	int i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < ARRAY_SIZE(t->head); i++)
		INIT_HLIST_HEAD(&t->head[i]);
	t->active = -1;
	t->send_blocked = -1;
}

void quic_stream_table_free(struct sock *sk)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	struct quic_stream *s;
	struct hlist_node *n;
	int i;

	for (i = 0; i < ARRAY_SIZE(t->head); i++) {
		hlist_for_each_entry_safe(s, n, &t->head[i], node) {
			hlist_del(&s->node);
			quic_ooo_purge(&s->recv.ooo);
			kfree(s);
		}
	}
	t->active = -1;
	t->send_blocked = -1;
}

struct quic_stream *quic_stream_find(struct sock *sk, s64 id)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	struct quic_stream *s;

	hlist_for_each_entry(s, quic_stream_bucket(t, id), node) {
		if (s->id == id)
			return s;
	}
	return NULL;
}

/* RFC 9000 Section 2.1: bit 0 tells which end opened the stream. */
static bool quic_stream_local(struct sock *sk, s64 id)
{
	return quic_stream_is_server(id) == !!quic_sk(sk)->is_serv;
}

/* A stream that was opened and is gone already (ABI reference: ENOSTR). */
static bool quic_stream_gone(struct sock *sk, s64 id)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	bool uni = quic_stream_is_uni(id);
	u64 n = (u64)id >> 2;

	if (id < 0)
		return false;
	return n < (quic_stream_local(sk, id) ? t->next_local[uni] :
						t->next_peer[uni]);
}

static void quic_stream_unblock(struct sock *sk, s64 id)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;

	if (t->send_blocked == id)
		WRITE_ONCE(t->send_blocked, -1);
}

/*
 * RFC 9000 Section 3: a stream whose sending part is acknowledged (or
 * reset and the reset acknowledged) and whose receiving part was read to
 * the end is gone.  Frames and queued data refer to streams by ID and
 * cope with a stream that is no longer found.
 */
static void quic_stream_maybe_free(struct sock *sk, struct quic_stream *s)
{
	bool local = quic_stream_local(sk, s->id), uni = quic_stream_is_uni(s->id);
	bool send_done = s->send.state == QUIC_STREAM_SEND_STATE_RECVD ||
			 s->send.state == QUIC_STREAM_SEND_STATE_RESET_RECVD;
	bool recv_done = s->recv.state >= QUIC_STREAM_RECV_STATE_READ;

	if (uni && !local)
		send_done = true;
	if (uni && local)
		recv_done = true;
	if (!send_done || !recv_done)
		return;
	if (quic_sk(sk)->streams.active == s->id)
		quic_sk(sk)->streams.active = -1;
	quic_stream_unblock(sk, s->id);
	trace_quic_stream(sk, s->id, QUIC_TRACE_STREAM_CLOSED, 0);
	hlist_del(&s->node);
	quic_ooo_purge(&s->recv.ooo);
	kfree(s);
	if (local) {
		/* Room for a stream open waiting on QUIC_TP_MAX_STREAMS. */
		quic_sk(sk)->streams.freed_local[uni]++;
		sk->sk_write_space(sk);
	}
}

/* RFC 9000 Section 18.2: initial stream limits by stream type. */
static void quic_stream_limits(struct sock *sk, struct quic_stream *s)
{
	struct quic_sock *qs = quic_sk(sk);
	const struct quic_transport_param *l = &qs->local_tp;
	const struct quic_transport_param *r = &qs->remote_tp;

	if (quic_stream_is_uni(s->id)) {
		s->send.max = r->max_stream_data_uni;
		s->recv.max = l->max_stream_data_uni;
	} else if (quic_stream_local(sk, s->id)) {
		s->send.max = r->max_stream_data_bidi_remote;
		s->recv.max = l->max_stream_data_bidi_local;
	} else {
		s->send.max = r->max_stream_data_bidi_local;
		s->recv.max = l->max_stream_data_bidi_remote;
	}
	s->recv.rwnd.window = s->recv.max;
}

static struct quic_stream *quic_stream_create(struct sock *sk, s64 id)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	struct quic_stream *s;

	s = kzalloc(sizeof(*s), GFP_ATOMIC);
	if (!s)
		return NULL;
	s->id = id;
	quic_ooo_init(&s->recv.ooo);
	s->send.state = QUIC_STREAM_SEND_STATE_READY;
	s->recv.state = QUIC_STREAM_RECV_STATE_RECV;
	quic_stream_limits(sk, s);
	hlist_add_head(&s->node, quic_stream_bucket(t, id));
	trace_quic_stream(sk, id, QUIC_TRACE_STREAM_OPEN, 0);
	return s;
}

/* Opening stream N opens the lower ones of its type too (Section 3.2). */
static struct quic_stream *quic_stream_open_upto(struct sock *sk, s64 id,
						 u64 *next)
{
	struct quic_stream *s = NULL;
	u64 n = (u64)id >> 2;

	while (*next <= n) {
		s = quic_stream_create(sk, (s64)(*next << 2) | (id & 3));
		if (!s)
			return NULL;
		(*next)++;
	}
	return s;
}

s64 quic_stream_next_id(struct sock *sk, bool uni)
{
	struct quic_sock *qs = quic_sk(sk);
	s64 type = (uni ? QUIC_STREAM_TYPE_UNI_MASK : 0) |
		   (qs->is_serv ? QUIC_STREAM_TYPE_SERVER_MASK : 0);

	return (s64)(qs->streams.next_local[uni] << 2) | type;
}

/*
 * RFC 9000 Sections 4.6 and 19.14: STREAMS_BLOCKED when the peer's limit
 * stops us from opening a stream, once per limit.  The reference sends it
 * only with MSG_QUIC_STREAM_SNDBLOCK; RFC 9000 says a sender SHOULD, and
 * it breaks no program, so it goes out always.
 */
static void quic_stream_streams_blocked(struct sock *sk, bool uni)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	u64 max = t->max_local[uni];

	if (t->blocked[uni] == max + 1)
		return;
	if (!__quic_frame_ctrl(sk, QUIC_SPACE_APP,
			       uni ? QUIC_FRAME_STREAMS_BLOCKED_UNI :
				     QUIC_FRAME_STREAMS_BLOCKED_BIDI,
			       &max, 1, NULL, 0))
		t->blocked[uni] = max + 1;
}

static int quic_stream_local_open(struct sock *sk, s64 id, u32 flags,
				  struct quic_stream **sp)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_stream_table *t = &qs->streams;
	bool uni = quic_stream_is_uni(id);
	u64 n = (u64)id >> 2;

	if (!(flags & MSG_QUIC_STREAM_NEW))
		return -EINVAL;
	if (n < t->next_local[uni])
		return -ENOSTR;
	if (n >= t->max_local[uni]) {
		/* ABI Section 4.2: no limits known before 1-RTT keys. */
		if (!t->max_local[uni] &&
		    !quic_crypto_send_ready(&qs->crypto[QUIC_CRYPTO_APP]))
			return -EINVAL;
		quic_stream_streams_blocked(sk, uni);
		return -EAGAIN;
	}
	/*
	 * Opening N opens every lower stream of its type, each held in a
	 * struct quic_stream: however high the peer's MAX_STREAMS, the local
	 * streams of a type hold at most QUIC_TP_MAX_STREAMS (the most this
	 * end grants the peer), and so one open allocates at most that many.
	 * Beyond it, wait for streams to be gone, unless N could never fit.
	 */
	if (n - t->freed_local[uni] >= QUIC_TP_MAX_STREAMS)
		return n - t->next_local[uni] >= QUIC_TP_MAX_STREAMS ? -EINVAL :
								       -EAGAIN;
	*sp = quic_stream_open_upto(sk, id, &t->next_local[uni]);
	if (!*sp)
		return -ENOMEM;
	t->active = id;
	return 0;
}

/**
 * quic_stream_send_get - the stream a sendmsg or STREAM_OPEN writes to
 * @sk: the socket
 * @id: stream ID, or -1 for the active or next stream (ABI Section 4.2)
 * @flags: MSG_QUIC_STREAM_* flags
 * @err: set on failure: -EINVAL, -ENOSTR, -ENOMEM, or -EAGAIN when the
 *	peer's stream limit is reached
 *
 * Return: the stream, or NULL.
 */
struct quic_stream *quic_stream_send_get(struct sock *sk, s64 id, u32 flags,
					 int *err)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	struct quic_stream *s = NULL;

	*err = 0;
	if (id == -1) {
		if (t->active >= 0) {
			if (flags & MSG_QUIC_STREAM_NEW) {
				*err = -EINVAL;
				return NULL;
			}
			id = t->active;
		} else {
			id = quic_stream_next_id(sk,
						 flags & MSG_QUIC_STREAM_UNI);
		}
	}
	if (id < 0 || (u64)id > QUIC_VARINT_MAX) {
		*err = -EINVAL;
		return NULL;
	}
	s = quic_stream_find(sk, id);
	if (!s) {
		if (!quic_stream_local(sk, id)) {
			*err = -EINVAL;
			return NULL;
		}
		*err = quic_stream_local_open(sk, id, flags, &s);
		return *err ? NULL : s;
	}
	if (!quic_stream_local(sk, id) && quic_stream_is_uni(id))
		*err = -EINVAL;		/* receive-only */
	else if ((flags & MSG_QUIC_STREAM_NEW) &&
		 s->send.state != QUIC_STREAM_SEND_STATE_READY)
		*err = -EINVAL;
	else if (s->send.state >= QUIC_STREAM_SEND_STATE_SENT)
		*err = -EINVAL;
	return *err ? NULL : s;
}

/**
 * quic_stream_peer_get - the stream a peer frame is about
 * @sk: the socket
 * @id: stream ID from the frame
 * @send: the frame concerns our sending part (MAX_STREAM_DATA,
 *	STOP_SENDING), not our receiving part
 * @err: set to a transport error code on failure, 0 otherwise
 *
 * RFC 9000 Sections 19.4, 19.5, 19.8, 19.10: frames for a stream that
 * cannot exist in that direction are STREAM_STATE_ERROR; peer streams
 * beyond our limit are STREAM_LIMIT_ERROR (Section 4.6).
 *
 * Return: the stream (opened if new), or NULL.
 */
static struct quic_stream *quic_stream_peer_get(struct sock *sk, s64 id,
						bool send, int *err)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	bool uni = quic_stream_is_uni(id), local = quic_stream_local(sk, id);
	struct quic_stream *s;
	u64 n = (u64)id >> 2;

	*err = 0;
	if (uni && local != send) {
		*err = QUIC_TRANSPORT_ERROR_STREAM_STATE;
		return NULL;
	}
	s = quic_stream_find(sk, id);
	if (s)
		return s;
	if (local) {
		if (n >= t->next_local[uni])
			*err = QUIC_TRANSPORT_ERROR_STREAM_STATE;
		return NULL;
	}
	if (n >= t->max_peer[uni]) {
		*err = QUIC_TRANSPORT_ERROR_STREAM_LIMIT;
		return NULL;
	}
	if (n < t->next_peer[uni])
		return NULL;	/* closed and gone */
	s = quic_stream_open_upto(sk, id, &t->next_peer[uni]);
	if (!s)
		*err = QUIC_TRANSPORT_ERROR_INTERNAL;
	else if (!uni && t->active < 0)
		t->active = id;
	return s;
}

/* RFC 9000 Sections 4.1 and 18.2: limits once the peer's params are known. */
void quic_stream_set_limits(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_stream_table *t = &qs->streams;
	struct quic_stream *s;
	int i;

	t->max_local[0] = max_t(u64, t->max_local[0],
				qs->remote_tp.max_streams_bidi);
	t->max_local[1] = max_t(u64, t->max_local[1],
				qs->remote_tp.max_streams_uni);
	t->max_peer[0] = qs->local_tp.max_streams_bidi;
	t->max_peer[1] = qs->local_tp.max_streams_uni;
	qs->flow.send_max = max(qs->flow.send_max, qs->remote_tp.max_data);
	qs->flow.recv_max = qs->local_tp.max_data;
	qs->flow.rwnd.window = qs->local_tp.max_data;

	for (i = 0; i < ARRAY_SIZE(t->head); i++) {
		hlist_for_each_entry(s, &t->head[i], node) {
			u64 recv_max = s->recv.max, send_max = s->send.max;

			quic_stream_limits(sk, s);
			s->send.max = max(s->send.max, send_max);
			s->recv.max = max(s->recv.max, recv_max);
		}
	}
}

/**
 * quic_stream_zrtt_limits - the server's limits replace the remembered ones
 * @sk: a client socket that had remembered params set (0-RTT)
 *
 * RFC 9000 Section 7.4.1: remembered values apply until the handshake gives
 * the server's new ones.  A server that accepts 0-RTT must not lower them
 * below what the client used, and data already queued cannot be taken
 * back, so less than was used is a PROTOCOL_VIOLATION.
 *
 * Return: 0, or the transport error code.
 */
int quic_stream_zrtt_limits(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_stream_table *t = &qs->streams;
	struct quic_stream *s;
	int i, err = 0;

	t->max_local[0] = 0;
	t->max_local[1] = 0;
	qs->flow.send_max = 0;
	for (i = 0; i < ARRAY_SIZE(t->head); i++)
		hlist_for_each_entry(s, &t->head[i], node)
			s->send.max = 0;
	quic_stream_set_limits(sk);
	if (t->next_local[0] > t->max_local[0] ||
	    t->next_local[1] > t->max_local[1] ||
	    qs->flow.send_queued > qs->flow.send_max)
		err = QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	for (i = 0; i < ARRAY_SIZE(t->head); i++)
		hlist_for_each_entry(s, &t->head[i], node)
			if (s->send.offset > s->send.max)
				err = QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	return err;
}

static void quic_stream_event(struct sock *sk, s64 id, u8 state,
			      u32 errcode, u64 finalsz)
{
	struct quic_stream_update u = {
		.id = id,
		.state = state,
		.errcode = errcode,
		.finalsz = finalsz,
	};

	quic_event_queue(sk, QUIC_EVENT_STREAM_UPDATE, &u, sizeof(u));
}

static int quic_stream_item(struct sock *sk, struct quic_stream *s,
			    struct sk_buff *skb, bool fin)
{
	struct quic_item_cb *cb = QUIC_ITEM_CB(skb);

	memset(cb, 0, sizeof(*cb));
	cb->kind = QUIC_ITEM_STREAM;
	cb->stream_id = s->id;
	cb->fin = fin;
	quic_rcv_queue(sk, skb);
	return 0;
}

static void quic_stream_recvd(struct sock *sk, struct quic_stream *s)
{
	s->recv.state = QUIC_STREAM_RECV_STATE_RECVD;
	quic_stream_event(sk, s->id, s->recv.state, 0, s->recv.finalsz);
	trace_quic_stream(sk, s->id, QUIC_TRACE_STREAM_FIN_RECVD, 0);
}

/* Move in-order data from the out-of-order queue to the receive queue. */
static void quic_stream_deliver(struct sock *sk, struct quic_stream *s)
{
	struct sk_buff *skb;

	while ((skb = quic_ooo_pop(&s->recv.ooo, s->recv.offset))) {
		u64 off = QUIC_OOO_OFF(skb);
		u64 end = off + skb->len;

		if (end <= s->recv.offset) {
			kfree_skb(skb);
			continue;
		}
		skb_pull(skb, s->recv.offset - off);
		s->recv.offset = end;
		quic_stream_item(sk, s, skb,
				 s->recv.fin && end == s->recv.finalsz);
	}
	if (s->recv.fin && s->recv.offset == s->recv.finalsz &&
	    s->recv.state < QUIC_STREAM_RECV_STATE_RECVD)
		quic_stream_recvd(sk, s);
}

/* RFC 9000 Section 4.5: final size rules. */
static int quic_stream_final_check(struct quic_stream *s, u64 end, bool fin)
{
	if (s->recv.fin && (end > s->recv.finalsz ||
			    (fin && end != s->recv.finalsz)))
		return QUIC_TRANSPORT_ERROR_FINAL_SIZE;
	if (fin && !s->recv.fin && end < s->recv.highest)
		return QUIC_TRANSPORT_ERROR_FINAL_SIZE;
	return 0;
}

/* RFC 9000 Section 4.1: stream and connection receive limits. */
static int quic_stream_flow_check(struct sock *sk, struct quic_stream *s,
				  u64 end)
{
	struct quic_flow *f = &quic_sk(sk)->flow;

	if (end > s->recv.max)
		return QUIC_TRANSPORT_ERROR_FLOW_CONTROL;
	if (end > s->recv.highest) {
		if (f->recv_highest + (end - s->recv.highest) > f->recv_max)
			return QUIC_TRANSPORT_ERROR_FLOW_CONTROL;
		f->recv_highest += end - s->recv.highest;
		s->recv.highest = end;
	}
	return 0;
}

/**
 * quic_stream_clone - received stream data as a clone of its datagram
 * @from: the decrypted datagram, or a train of them (QUIC_RCV_CB()->seg)
 * @data: the data, in @from's linear area
 * @len: its length
 *
 * Data that fills most of its datagram is not copied: a clone of @from,
 * cut down to the data, is queued instead.  The clone shares the buffer of
 * the whole skb; in a train each clone is charged its datagram's share of
 * it, and all of a train's clones are for one stream (quic_stream_skb()).
 * Smaller pieces are copied, so that several of them never pin one buffer
 * many times over, and so is out-of-order data, which may wait long while
 * the rest of its train is read (quic_stream_recv_data()).
 *
 * Return: the clone, or NULL if the data is to be copied.
 */
VISIBLE_IF_KUNIT struct sk_buff *
quic_stream_clone(struct sk_buff *from, const u8 *data, u32 len)
{
	u32 seg = QUIC_RCV_CB(from)->seg ?: from->len;
	struct sk_buff *skb;

	if (len < seg / 2 || data < from->data ||
	    data + len > skb_tail_pointer(from))
		return NULL;
	skb = skb_clone(from, GFP_ATOMIC);
	if (!skb)
		return NULL;
	skb_dst_drop(skb);
	nf_reset_ct(skb);
	skb_pull(skb, data - from->data);
	skb_trim(skb, len);
	skb->truesize = max_t(u32, from->truesize / DIV_ROUND_UP(from->len, seg),
			      SKB_TRUESIZE(len));
	return skb;
}
EXPORT_SYMBOL_IF_KUNIT(quic_stream_clone);

/*
 * Clones of a train are charged their shares of its buffer, which is fair
 * while they are read together: then the last one read frees it.  A clone
 * left behind by the reading of its siblings pins the whole buffer on its
 * share alone, so a train's clones are all for one stream (whose data is
 * read in order): data of another stream in the same train is copied.
 * @from is only compared, never followed: a new train at the address of a
 * freed one at worst has one piece copied.
 */
static struct sk_buff *quic_stream_skb(struct sock *sk, struct quic_stream *s,
				       struct sk_buff *from, const u8 *data,
				       u32 len)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	struct sk_buff *skb = NULL;

	if (from && QUIC_RCV_CB(from)->seg) {
		if (t->clone_train != from) {
			t->clone_train = from;
			t->clone_stream = s->id;
		} else if (t->clone_stream != s->id) {
			from = NULL;
		}
	}
	if (from)
		skb = quic_stream_clone(from, data, len);

	if (!skb) {
		skb = alloc_skb(len, GFP_ATOMIC);
		if (!skb)
			return NULL;
		skb_put_data(skb, data, len);
	}
	if (!quic_rcv_charge(sk, skb)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_FRM_RCVBUFDROP);
		kfree_skb(skb);
		return NULL;
	}
	return skb;
}

/* The FIN is known and all data is queued: a FIN-only item if needed. */
static int quic_stream_fin_item(struct sock *sk, struct quic_stream *s)
{
	struct sk_buff *skb = quic_stream_skb(sk, s, NULL, NULL, 0);

	if (!skb)
		return -ENOMEM;
	quic_stream_item(sk, s, skb, true);
	quic_stream_recvd(sk, s);
	return 0;
}

/**
 * quic_stream_recv_data - data of a STREAM frame (RFC 9000 Section 19.8)
 * @sk: the socket
 * @s: its stream
 * @off: offset of @data in the stream
 * @data: the data
 * @len: its length
 * @fin: the frame has the FIN bit
 * @from: the decrypted datagram(s) that hold @data, or NULL
 *
 * Return: 0, a transport error code, or -ENOMEM (drop the packet).
 */
static int quic_stream_recv_data(struct sock *sk, struct quic_stream *s,
				 u64 off, const u8 *data, u32 len, bool fin,
				 struct sk_buff *from)
{
	u64 end = off + len;
	struct sk_buff *skb;
	int err;

	err = quic_stream_final_check(s, end, fin);
	if (!err)
		err = quic_stream_flow_check(sk, s, end);
	if (err)
		return err;
	if (s->recv.state >= QUIC_STREAM_RECV_STATE_RECVD)
		return 0;	/* all queued already, or reset */
	if (!s->recv.offset && !s->recv.highest_seen) {
		s->recv.highest_seen = 1;
		quic_stream_event(sk, s->id, QUIC_STREAM_RECV_STATE_RECV, 0, 0);
	}
	if (fin && !s->recv.fin) {
		s->recv.fin = 1;
		s->recv.finalsz = end;
		if (s->recv.offset < off)
			quic_stream_event(sk, s->id,
					  QUIC_STREAM_RECV_STATE_SIZE_KNOWN,
					  0, end);
	}
	if (end <= s->recv.offset) {
		if (s->recv.fin && s->recv.offset == s->recv.finalsz)
			return quic_stream_fin_item(sk, s);
		return 0;	/* duplicate */
	}
	if (off < s->recv.offset) {
		data += s->recv.offset - off;
		len -= s->recv.offset - off;
		off = s->recv.offset;
	}
	if (off > s->recv.offset && quic_ooo_covered(&s->recv.ooo, off, end))
		return 0;	/* retransmitted: the memory is held once */
	if (off > s->recv.offset)
		from = NULL;	/* may wait long: copied, not pinning a train */
	skb = quic_stream_skb(sk, s, from, data, len);
	if (!skb && off == s->recv.offset && s->recv.ooo.count) {
		/* In-order data goes first: drop what lies beyond, as TCP
		 * prunes its out-of-order queue; it is sent again.
		 */
		quic_ooo_purge(&s->recv.ooo);
		skb = quic_stream_skb(sk, s, from, data, len);
	}
	if (!skb)
		return -ENOMEM;
	if (off > s->recv.offset) {
		quic_ooo_insert(&s->recv.ooo, skb, off);
		return 0;
	}
	s->recv.offset = end;
	quic_stream_item(sk, s, skb, s->recv.fin && end == s->recv.finalsz);
	quic_stream_deliver(sk, s);
	return 0;
}

/*
 * RFC 9000 Section 4.6: the peer may hold as many streams of a type open as
 * our limit, so each one that finishes lets it open another: the credit is a
 * window of the limit over the streams done.  MAX_STREAMS goes out once an
 * eighth of the limit finished since the last one (every stream, for a limit
 * under 9), or with the first stream to finish after the peer said our limit
 * stopped it (STREAMS_BLOCKED).  What the peer can make us hold stays the
 * limit: it grows only as streams finish.
 */
static void quic_stream_credit(struct sock *sk, bool uni)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_stream_table *t = &qs->streams;
	u64 limit, max;

	limit = uni ? qs->local_tp.max_streams_uni : qs->local_tp.max_streams_bidi;
	max = t->done_peer[uni] + limit;
	if (max <= t->max_peer[uni] || max > QUIC_TP_MAX_STREAMS_WIRE)
		return;
	if (!t->peer_blocked[uni] &&
	    max < t->max_peer[uni] + DIV_ROUND_UP(limit, 8))
		return;
	if (__quic_frame_ctrl(sk, QUIC_SPACE_APP, uni ? QUIC_FRAME_MAX_STREAMS_UNI :
			      QUIC_FRAME_MAX_STREAMS_BIDI, &max, 1, NULL, 0))
		return;	/* the next stream to finish tries again */
	t->max_peer[uni] = max;
	t->peer_blocked[uni] = 0;
}

static void quic_stream_peer_done(struct sock *sk, struct quic_stream *s)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	bool uni = quic_stream_is_uni(s->id);

	if (quic_stream_local(sk, s->id) || s->done)
		return;
	if (s->recv.state < QUIC_STREAM_RECV_STATE_READ)
		return;
	if (!uni && s->send.state < QUIC_STREAM_SEND_STATE_SENT)
		return;
	s->done = 1;
	t->done_peer[uni]++;
	quic_stream_credit(sk, uni);
}

/*
 * The most a receive window may grow to: a quarter of the receive buffer
 * (QUIC_RMEM_PER_WINDOW), which may itself grow up to quic_rmem[2] unless
 * SO_RCVBUF fixed it.
 */
static u64 quic_rwnd_limit(struct sock *sk)
{
	int buf = READ_ONCE(sk->sk_rcvbuf);

	if (!(sk->sk_userlocks & SOCK_RCVBUF_LOCK))
		buf = max(buf, READ_ONCE(sysctl_quic_rmem[2]));
	return (u64)buf / QUIC_RMEM_PER_WINDOW;
}

/*
 * Receive-window auto-tuning, after TCP's dynamic right-sizing
 * (tcp_rcv_space_adjust()): once per smoothed RTT, the bytes the
 * application read in that RTT estimate the bandwidth-delay product.  When
 * it read more than half the window, the window grows to twice that, so
 * that flow control does not limit a sender the reader keeps up with
 * (RFC 9000 Section 4.2).  Return: the window grew.
 */
static bool quic_rwnd_adjust(struct sock *sk, struct quic_rwnd *w, u64 read,
			     u64 limit)
{
	u64 now = quic_now(), copied;

	if (!w->epoch_time || read < w->epoch_read) {
		w->epoch_time = now;
		w->epoch_read = read;
		return false;
	}
	if (now - w->epoch_time < quic_sk(sk)->cong.smoothed_rtt)
		return false;
	copied = read - w->epoch_read;
	w->epoch_time = now;
	w->epoch_read = read;
	if (2 * copied <= w->window || w->window >= limit)
		return false;
	w->window = min(2 * copied, limit);
	return true;
}

/* The connection window grew: the receive buffer follows (4 x window). */
static void quic_rwnd_rcvbuf(struct sock *sk, u64 window)
{
	u64 buf = window * QUIC_RMEM_PER_WINDOW;

	if (sk->sk_userlocks & SOCK_RCVBUF_LOCK)
		return;
	if (buf > (u64)READ_ONCE(sk->sk_rcvbuf))
		WRITE_ONCE(sk->sk_rcvbuf, (int)min_t(u64, buf, INT_MAX));
}

/*
 * RFC 9000 Section 4.2: credit goes back as the application reads, once
 * half the window is used, so that the sender is not stalled waiting; or
 * with the first read after the sender said our limit stopped it
 * (DATA_BLOCKED).  Either way the peer can have at most a window of unread
 * data with us.
 */
static void quic_flow_credit(struct sock *sk)
{
	struct quic_flow *f = &quic_sk(sk)->flow;
	u64 max = f->recv_read + f->rwnd.window;

	if (max <= f->recv_max)
		return;
	if (!f->recv_blocked && f->recv_max - f->recv_read >= f->rwnd.window / 2)
		return;
	if (__quic_frame_ctrl(sk, QUIC_SPACE_APP, QUIC_FRAME_MAX_DATA, &max, 1,
			      NULL, 0))
		return;
	f->recv_max = max;
	f->recv_blocked = 0;
}

static void quic_flow_read(struct sock *sk, u64 len)
{
	struct quic_flow *f = &quic_sk(sk)->flow;

	f->recv_read += len;
	if (quic_rwnd_adjust(sk, &f->rwnd, f->recv_read, quic_rwnd_limit(sk)))
		quic_rwnd_rcvbuf(sk, f->rwnd.window);
	quic_flow_credit(sk);
}

/* The same for a stream's own window (MAX_STREAM_DATA, STREAM_DATA_BLOCKED). */
static void quic_stream_recv_credit(struct sock *sk, struct quic_stream *s)
{
	u64 v[2] = { s->id, s->recv.read + s->recv.rwnd.window };

	if (s->recv.fin || v[1] <= s->recv.max)
		return;
	if (!s->recv.blocked &&
	    s->recv.max - s->recv.read >= s->recv.rwnd.window / 2)
		return;
	if (__quic_frame_ctrl(sk, QUIC_SPACE_APP, QUIC_FRAME_MAX_STREAM_DATA, v,
			      2, NULL, 0))
		return;
	s->recv.max = v[1];
	s->recv.blocked = 0;
}

/**
 * quic_stream_read - the application read stream data
 * @sk: the socket
 * @s: the stream
 * @len: bytes read
 *
 * Reading returns flow control credit (RFC 9000 Section 4.2): stream
 * windows grow like the connection's, within the connection window.
 */
void quic_stream_read(struct sock *sk, struct quic_stream *s, u32 len)
{
	struct quic_flow *f = &quic_sk(sk)->flow;

	s->recv.read += len;
	quic_rwnd_adjust(sk, &s->recv.rwnd, s->recv.read,
			 max(f->rwnd.window, s->recv.rwnd.window));
	quic_stream_recv_credit(sk, s);
	quic_flow_read(sk, len);
}

void quic_stream_fin_read(struct sock *sk, struct quic_stream *s)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;

	s->recv.state = QUIC_STREAM_RECV_STATE_READ;
	if (t->active == s->id && quic_stream_is_uni(s->id))
		t->active = -1;
	quic_stream_peer_done(sk, s);
	quic_stream_maybe_free(sk, s);
}

/* The stream's own flow control window is used up (RFC 9000 Section 4.1). */
static bool quic_stream_window_closed(struct quic_stream *s)
{
	return s->send.offset >= s->send.max;
}

/**
 * quic_stream_send_blocked - sendmsg cannot go on for flow control
 * @sk: the socket
 * @s: the stream it writes to
 *
 * RFC 9000 Sections 4.1, 19.12 and 19.13: STREAM_DATA_BLOCKED and
 * DATA_BLOCKED for the limits that stop us, once per limit.  The reference
 * sends them only with MSG_QUIC_STREAM_SNDBLOCK; RFC 9000 says a sender
 * SHOULD, and it breaks no program, so they go out always.
 */
void quic_stream_send_blocked(struct sock *sk, struct quic_stream *s)
{
	struct quic_flow *f = &quic_sk(sk)->flow;
	u64 v[2] = { s->id, s->send.max };

	if (quic_stream_window_closed(s)) {
		WRITE_ONCE(quic_sk(sk)->streams.send_blocked, s->id);
		if (s->send.blocked != s->send.max + 1 &&
		    !__quic_frame_ctrl(sk, QUIC_SPACE_APP,
				       QUIC_FRAME_STREAM_DATA_BLOCKED, v, 2,
				       NULL, 0))
			s->send.blocked = s->send.max + 1;
	}
	if (f->send_queued >= f->send_max && f->send_blocked != f->send_max + 1 &&
	    !__quic_frame_ctrl(sk, QUIC_SPACE_APP, QUIC_FRAME_DATA_BLOCKED,
			       &f->send_max, 1, NULL, 0))
		f->send_blocked = f->send_max + 1;
}

/* The FIN was queued by sendmsg: the sending part is finished. */
void quic_stream_send_fin(struct sock *sk, struct quic_stream *s)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;

	s->send.state = QUIC_STREAM_SEND_STATE_SENT;
	trace_quic_stream(sk, s->id, QUIC_TRACE_STREAM_FIN_SENT, 0);
	if (t->active == s->id)
		t->active = -1;
	quic_stream_unblock(sk, s->id);
	quic_stream_peer_done(sk, s);
}

void quic_stream_acked(struct sock *sk, s64 id, u32 len, bool fin)
{
	struct quic_stream *s = quic_stream_find(sk, id);

	if (!s)
		return;
	s->send.acked += len;
	if (fin)
		s->send.fin_acked = 1;
	if (s->send.state == QUIC_STREAM_SEND_STATE_SENT &&
	    s->send.fin_acked && s->send.acked >= s->send.offset) {
		s->send.state = QUIC_STREAM_SEND_STATE_RECVD;
		quic_stream_event(sk, id, s->send.state, 0, s->send.offset);
		quic_stream_maybe_free(sk, s);
	}
}

/* Our RESET_STREAM was acknowledged (RFC 9000 Section 3.1). */
void quic_stream_reset_acked(struct sock *sk, s64 id)
{
	struct quic_stream *s = quic_stream_find(sk, id);
	struct quic_stream_update u = {
		.id = id,
		.state = QUIC_STREAM_SEND_STATE_RESET_RECVD,
	};

	if (!s || s->send.state != QUIC_STREAM_SEND_STATE_RESET_SENT)
		return;
	s->send.state = u.state;
	u.errcode = s->send.errcode;
	u.finalsz = s->send.offset;
	quic_event_queue(sk, QUIC_EVENT_STREAM_UPDATE, &u, sizeof(u));
	quic_stream_maybe_free(sk, s);
}

/* Stream data of @id waiting in the receive queue is dropped. */
static void quic_stream_rcvq_purge(struct sock *sk, s64 id)
{
	struct sk_buff_head *q = &sk->sk_receive_queue, tmp;
	struct sk_buff *skb, *n;
	unsigned long flags;

	__skb_queue_head_init(&tmp);
	spin_lock_irqsave(&q->lock, flags);
	skb_queue_walk_safe(q, skb, n) {
		if (QUIC_ITEM_CB(skb)->kind == QUIC_ITEM_STREAM &&
		    QUIC_ITEM_CB(skb)->stream_id == id) {
			__skb_unlink(skb, q);
			__skb_queue_tail(&tmp, skb);
		}
	}
	spin_unlock_irqrestore(&q->lock, flags);
	__skb_queue_purge(&tmp);
}

/*
 * RFC 9000 Section 19.4: RESET_STREAM.  Its final size counts against the
 * limits like data (Section 4.5).  Data not yet read is dropped and its
 * credit returned to the connection; the stream then needs nothing more
 * from the application (Section 3.2: "Reset Read").  Once all data is
 * queued ("Data Recvd") the reset is ignored and the data delivered.
 */
int quic_stream_reset_recv(struct sock *sk, s64 id, u32 errcode, u64 finalsz)
{
	struct quic_stream *s;
	int err;

	s = quic_stream_peer_get(sk, id, false, &err);
	if (!s)
		return err;
	err = quic_stream_final_check(s, finalsz, true);
	if (!err)
		err = quic_stream_flow_check(sk, s, finalsz);
	if (err)
		return err;
	if (s->recv.state >= QUIC_STREAM_RECV_STATE_RECVD)
		return 0;
	s->recv.fin = 1;
	s->recv.finalsz = finalsz;
	s->recv.state = QUIC_STREAM_RECV_STATE_RESET_RECVD;
	quic_ooo_purge(&s->recv.ooo);
	quic_stream_rcvq_purge(sk, id);
	quic_flow_read(sk, finalsz - s->recv.read);
	s->recv.read = finalsz;
	s->recv.offset = finalsz;
	quic_stream_event(sk, id, s->recv.state, errcode, finalsz);
	trace_quic_stream(sk, id, QUIC_TRACE_STREAM_RESET_RECVD, errcode);
	if (quic_sk(sk)->streams.active == id && quic_stream_is_uni(id))
		quic_sk(sk)->streams.active = -1;
	quic_stream_peer_done(sk, s);
	quic_stream_maybe_free(sk, s);
	return 0;
}

static void quic_stream_outq_purge(struct sock *sk, s64 id)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_frame *f, *n;

	list_for_each_entry_safe(f, n, &qs->stream_outq, list) {
		if (f->stream_id == id) {
			list_del(&f->list);
			quic_frame_free(sk, f);
		}
	}
}

static int __quic_stream_reset(struct sock *sk, struct quic_stream *s,
			       u32 errcode)
{
	u64 v[3] = { s->id, errcode, s->send.offset };
	int err;

	err = __quic_frame_ctrl(sk, QUIC_SPACE_APP, QUIC_FRAME_RESET_STREAM,
				v, 3, NULL, 0);
	if (err)
		return err;
	quic_stream_outq_purge(sk, s->id);
	s->send.errcode = errcode;
	s->send.state = QUIC_STREAM_SEND_STATE_RESET_SENT;
	trace_quic_stream(sk, s->id, QUIC_TRACE_STREAM_RESET_SENT, errcode);
	if (quic_sk(sk)->streams.active == s->id)
		quic_sk(sk)->streams.active = -1;
	quic_stream_unblock(sk, s->id);
	sk->sk_write_space(sk);	/* a sendmsg waiting on it fails now */
	quic_stream_peer_done(sk, s);
	return 0;
}

/* RFC 9000 Section 3.5: STOP_SENDING is answered with RESET_STREAM. */
int quic_stream_stop_recv(struct sock *sk, s64 id, u32 errcode)
{
	struct quic_stream *s;
	int err;

	s = quic_stream_peer_get(sk, id, true, &err);
	if (!s)
		return err;
	if (s->send.state >= QUIC_STREAM_SEND_STATE_RECVD)
		return 0;
	if (__quic_stream_reset(sk, s, errcode))
		return QUIC_TRANSPORT_ERROR_INTERNAL;
	quic_stream_event(sk, id, QUIC_STREAM_SEND_STATE_RESET_SENT, errcode,
			  s->send.offset);
	return 0;
}

/* RFC 9000 Section 19.10: MAX_STREAM_DATA. */
int quic_stream_max_data_recv(struct sock *sk, s64 id, u64 max)
{
	struct quic_stream_max_data ev = { .id = id, .max_data = max };
	struct quic_stream *s;
	int err;

	s = quic_stream_peer_get(sk, id, true, &err);
	if (!s || max <= s->send.max)
		return err;
	s->send.max = max;
	quic_stream_unblock(sk, id);
	quic_event_queue(sk, QUIC_EVENT_STREAM_MAX_DATA, &ev, sizeof(ev));
	sk->sk_write_space(sk);
	return 0;
}

/* RFC 9000 Section 19.11: MAX_STREAMS, a cumulative count. */
int quic_stream_max_streams_recv(struct sock *sk, bool uni, u64 max)
{
	struct quic_stream_table *t = &quic_sk(sk)->streams;
	s64 id;

	if (max > QUIC_TP_MAX_STREAMS_WIRE)
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (max <= t->max_local[uni])
		return 0;
	t->max_local[uni] = max;
	id = (s64)((max - 1) << 2) | (uni ? QUIC_STREAM_TYPE_UNI_MASK : 0) |
	     (quic_sk(sk)->is_serv ? QUIC_STREAM_TYPE_SERVER_MASK : 0);
	quic_event_queue(sk, QUIC_EVENT_STREAM_MAX_STREAM, &id, sizeof(id));
	sk->sk_write_space(sk);
	return 0;
}

/* STREAM frame: find the stream and take its data (in @from, if set). */
int quic_stream_frame_recv(struct sock *sk, s64 id, u64 off, const u8 *data,
			   u32 len, bool fin, struct sk_buff *from)
{
	struct quic_stream *s;
	int err;

	s = quic_stream_peer_get(sk, id, false, &err);
	if (!s)
		return err;
	return quic_stream_recv_data(sk, s, off, data, len, fin, from);
}

/* STREAM_DATA_BLOCKED: only the direction is checked. */
/*
 * RFC 9000 Section 19.13: STREAM_DATA_BLOCKED.  The peer's stream is stuck
 * at our limit @max: what credit the application's reads made goes out
 * now, or with its next read, rather than at half the window.  A limit
 * below ours is old news (the frame raising it is on its way).
 */
int quic_stream_blocked_recv(struct sock *sk, s64 id, u64 max)
{
	struct quic_stream *s;
	int err;

	s = quic_stream_peer_get(sk, id, false, &err);
	if (s && max >= s->recv.max) {
		s->recv.blocked = 1;
		quic_stream_recv_credit(sk, s);
	}
	return err;
}

/**
 * quic_stream_limit_blocked_recv - the peer says one of our limits stopped it
 * @sk: the socket
 * @type: QUIC_FRAME_DATA_BLOCKED or QUIC_FRAME_STREAMS_BLOCKED_{BIDI,UNI}
 * @max: the limit it names
 *
 * RFC 9000 Sections 19.12 and 19.14: the credit there is goes out at once
 * (MAX_DATA, MAX_STREAMS), or with the next read or finished stream.  None
 * is made up: a flood of these costs at most one frame per read or stream.
 */
void quic_stream_limit_blocked_recv(struct sock *sk, u8 type, u64 max)
{
	struct quic_sock *qs = quic_sk(sk);
	bool uni = type == QUIC_FRAME_STREAMS_BLOCKED_UNI;

	if (type == QUIC_FRAME_DATA_BLOCKED) {
		if (max < qs->flow.recv_max)
			return;
		qs->flow.recv_blocked = 1;
		quic_flow_credit(sk);
		return;
	}
	if (max < qs->streams.max_peer[uni])
		return;
	qs->streams.peer_blocked[uni] = 1;
	quic_stream_credit(sk, uni);
}

/* Socket option STREAM_RESET (ABI reference Section 3). */
int quic_stream_reset(struct sock *sk, s64 id, u32 errcode)
{
	struct quic_stream *s = quic_stream_find(sk, id);

	if (!s)
		return quic_stream_gone(sk, id) ? -ENOSTR : -EINVAL;
	if (!quic_stream_local(sk, id) && quic_stream_is_uni(id))
		return -EINVAL;
	if (s->send.state >= QUIC_STREAM_SEND_STATE_RECVD)
		return -EINVAL;
	return __quic_stream_reset(sk, s, errcode);
}

/* Socket option STREAM_STOP_SENDING (RFC 9000 Section 19.5). */
int quic_stream_stop_sending(struct sock *sk, s64 id, u32 errcode)
{
	struct quic_stream *s = quic_stream_find(sk, id);
	u64 v[2] = { id, errcode };
	int err;

	if (!s)
		return quic_stream_gone(sk, id) ? -ENOSTR : -EINVAL;
	if (quic_stream_local(sk, id) && quic_stream_is_uni(id))
		return -EINVAL;
	if (s->recv.state >= QUIC_STREAM_RECV_STATE_RECVD)
		return -EINVAL;
	if (s->send.stop_sent)
		return -EAGAIN;
	err = __quic_frame_ctrl(sk, QUIC_SPACE_APP, QUIC_FRAME_STOP_SENDING,
				v, 2, NULL, 0);
	if (!err)
		s->send.stop_sent = 1;
	return err;
}
