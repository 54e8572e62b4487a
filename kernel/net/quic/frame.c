// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: frames (RFC 9000 Section 19).
 *
 * Receive: quic_frame_process() walks the payload of a decrypted packet
 * and calls one handler per frame type from quic_frame_ops[], after the
 * packet type check of RFC 9000 Section 12.4 (Table 3).  A handler returns
 * 0 or a transport error code; the connection is then closed with it.
 *
 * Send: frames are encoded when queued (control frames, CRYPTO data,
 * STREAM data from sendmsg) and kept until acknowledged; only ACK and
 * CONNECTION_CLOSE are written directly into the packet being built.
 */

#include <linux/jhash.h>
#include <linux/slab.h>

#include "quic.h"
#include "packet.h"
#include "input.h"

/* Data per CRYPTO frame: fits an Initial packet with the longest header. */
#define QUIC_CRYPTO_FRAME_DATA	900

struct quic_frame *quic_frame_alloc(u32 len, u8 type, gfp_t gfp)
{
	struct quic_frame *f = kmalloc(struct_size(f, data, len), gfp);

	if (!f)
		return NULL;
	memset(f, 0, sizeof(*f));
	INIT_LIST_HEAD(&f->list);
	f->len = len;
	f->type = type;
	return f;
}

void quic_frame_free(struct sock *sk, struct quic_frame *f)
{
	if (f->wmem)
		sk_wmem_queued_add(sk, -(int)f->len);
	if (f->ctrl) {
		quic_sk(sk)->ctrl_mem -= quic_frame_truesize(f);
		sk_wmem_queued_add(sk, -(int)quic_frame_truesize(f));
	}
	kfree(f);
}

void quic_frame_list_free(struct sock *sk, struct list_head *head)
{
	struct quic_frame *f, *n;

	list_for_each_entry_safe(f, n, head, list) {
		list_del(&f->list);
		quic_frame_free(sk, f);
	}
}

/**
 * __quic_frame_ctrl - queue a control frame
 * @sk: the socket
 * @space: packet number space to send it in
 * @type: frame type
 * @vals: varint fields following the type
 * @n: number of @vals
 * @data: raw bytes following them, or NULL
 * @dlen: length of @data
 *
 * The frame is charged to the socket (quic_frame_truesize()) until it is
 * acknowledged, dropped or the connection freed; what a connection holds
 * of them is bounded by QUIC_CTRL_MEM_MAX.  A frame handler that fails
 * here drops its packet unacknowledged.
 *
 * Return: 0, -ENOBUFS past the bound, or -ENOMEM.
 */
int __quic_frame_ctrl(struct sock *sk, u8 space, u8 type, const u64 *vals,
		      int n, const void *data, u32 dlen)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_frame *f;
	u32 len = 1 + dlen;
	u8 *p;
	int i;

	for (i = 0; i < n; i++)
		len += quic_varint_len(vals[i]);
	if (qs->ctrl_mem + struct_size(f, data, len) > QUIC_CTRL_MEM_MAX) {
		net_dbg_ratelimited("quic: sk %p control frames over %u bytes\n",
				    sk, QUIC_CTRL_MEM_MAX);
		return -ENOBUFS;
	}
	f = quic_frame_alloc(len, type, GFP_ATOMIC);
	if (!f)
		return -ENOMEM;
	f->ctrl = 1;
	qs->ctrl_mem += quic_frame_truesize(f);
	sk_wmem_queued_add(sk, quic_frame_truesize(f));
	p = f->data;
	*p++ = type;
	for (i = 0; i < n; i++)
		p = quic_put_var(p, vals[i]);
	if (dlen)
		quic_put_data(p, data, dlen);
	if (type == QUIC_FRAME_RESET_STREAM)
		f->stream_id = vals[0];
	if (type == QUIC_FRAME_NEW_CONNECTION_ID ||
	    type == QUIC_FRAME_RETIRE_CONNECTION_ID)
		f->offset = vals[0];
	list_add_tail(&f->list, &quic_sk(sk)->space[space].outq);
	return 0;
}

/* RFC 9000 Section 19.6: CRYPTO frames carrying sendmsg data. */
int quic_frame_crypto_queue(struct sock *sk, u8 space, struct iov_iter *from,
			    u32 len)
{
	struct quic_pnspace *s = &quic_sk(sk)->space[space];
	struct quic_frame *f;
	u32 n, hlen;
	u8 *p;

	while (len) {
		n = min_t(u32, len, QUIC_CRYPTO_FRAME_DATA);
		hlen = 1 + quic_varint_len(s->crypto_send) + quic_varint_len(n);
		f = quic_frame_alloc(hlen + n, QUIC_FRAME_CRYPTO, GFP_KERNEL);
		if (!f)
			return -ENOMEM;
		p = f->data;
		*p++ = QUIC_FRAME_CRYPTO;
		p = quic_put_var(p, s->crypto_send);
		p = quic_put_var(p, n);
		if (!copy_from_iter_full(p, n, from)) {
			kfree(f);
			return -EFAULT;
		}
		f->offset = s->crypto_send;
		f->data_len = n;
		s->crypto_send += n;
		list_add_tail(&f->list, &s->outq);
		len -= n;
	}
	return 0;
}

/*
 * RFC 9000 Section 19.8: a STREAM frame, always with Offset (when not 0)
 * and Length so that more frames may follow it.  The caller copies the
 * data to quic_frame_stream_data().
 */
struct quic_frame *quic_frame_stream_new(s64 id, u64 off, u32 len, bool fin,
					 gfp_t gfp)
{
	u8 type = QUIC_FRAME_STREAM | QUIC_STREAM_BIT_LEN;
	struct quic_frame *f;
	u32 hlen;
	u8 *p;

	if (off)
		type |= QUIC_STREAM_BIT_OFF;
	if (fin)
		type |= QUIC_STREAM_BIT_FIN;
	hlen = 1 + quic_varint_len(id) + quic_varint_len(len) +
	       (off ? quic_varint_len(off) : 0);
	f = quic_frame_alloc(hlen + len, QUIC_FRAME_STREAM, gfp);
	if (!f)
		return NULL;
	p = f->data;
	*p++ = type;
	p = quic_put_var(p, id);
	if (off)
		p = quic_put_var(p, off);
	quic_put_var(p, len);
	f->stream_id = id;
	f->offset = off;
	f->data_len = len;
	f->fin = fin;
	return f;
}

/*
 * RFC 9000 Section 19.3: an ACK frame of the ranges received in @space,
 * as many as fit in @room; ACK_ECN with the counts of Section 13.4.1 once
 * any packet of the space arrived with an ECN mark.  Return: bytes
 * written, 0 if none fit.
 */
u32 quic_frame_ack_build(struct sock *sk, u8 space, u8 *p, u32 room)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[space];
	const struct quic_pn_range *r = s->ranges;
	u8 *start = p, *end = p + room, *count_p;
	u32 ecn_len = 0;
	u64 delay = 0;
	int i, n = 0;

	if (!s->nranges)
		return 0;
	if (space == QUIC_SPACE_APP)
		delay = (quic_now() - s->max_pn_time) >>
			qs->local_tp.ack_delay_exponent;
	for (i = 0; i < QUIC_ECN_COUNTS; i++)
		if (s->ecn_recv[i])
			ecn_len = 1;
	if (ecn_len)
		ecn_len = quic_varint_len(s->ecn_recv[QUIC_ECN_ECT0]) +
			  quic_varint_len(s->ecn_recv[QUIC_ECN_ECT1]) +
			  quic_varint_len(s->ecn_recv[QUIC_ECN_CE]);
	if (room < 1 + ecn_len)
		return 0;
	end -= ecn_len;		/* the counts go after the ranges */
	*p++ = ecn_len ? QUIC_FRAME_ACK_ECN : QUIC_FRAME_ACK;
	p = quic_varint_put(p, end, r[0].end);
	p = quic_varint_put(p, end, delay);
	count_p = p;
	p = quic_varint_put(p, end, 0);	/* range count, patched below */
	p = quic_varint_put(p, end, r[0].end - r[0].start);
	if (!p)
		return 0;
	for (i = 1; i < s->nranges && n < 63; i++) {
		u8 *q = quic_varint_put(p, end, r[i - 1].start - r[i].end - 2);

		q = quic_varint_put(q, end, r[i].end - r[i].start);
		if (!q)
			break;
		p = q;
		n++;
	}
	*count_p = n;		/* n < 64: one byte */
	if (ecn_len) {
		end += ecn_len;
		for (i = 0; i < QUIC_ECN_COUNTS; i++)
			p = quic_varint_put(p, end, s->ecn_recv[i]);
	}
	/* RFC 9001 Section 6.2: the peer's key phase is acknowledged. */
	if (space == QUIC_SPACE_APP && qs->key_phase_unacked &&
	    r[0].end >= qs->key_phase_pn)
		qs->key_phase_unacked = 0;
	return p - start;
}

/*
 * RFC 9000 Section 19.19: CONNECTION_CLOSE with the socket's close info;
 * the application variant (0x1d) or the transport one (0x1c).
 */
int quic_frame_close_build(struct sock *sk, u8 *p, u32 room, bool app)
{
	const struct quic_connection_close *c = &quic_sk(sk)->close;
	u32 plen = strnlen((const char *)c->phrase, sizeof(c->phrase) - 1);
	u8 *start = p, *end = p + room;

	if (room < 1)
		return 0;
	*p++ = app ? QUIC_FRAME_CONNECTION_CLOSE_APP :
		     QUIC_FRAME_CONNECTION_CLOSE;
	p = quic_varint_put(p, end, c->errcode);
	if (!app)
		p = quic_varint_put(p, end, c->frame);
	p = quic_varint_put(p, end, plen);
	if (!p || end - p < plen)
		return 0;
	p = quic_put_data(p, c->phrase, plen);
	return p - start;
}

/* Receive side: one handler per frame type. */

struct quic_frame_rx {
	struct sock *sk;
	struct quic_pkt *pkt;
	const u8 *start;	/* of the frame being handled */
	const u8 *p;
	const u8 *end;
	u8 type;
};

typedef int (*quic_frame_rx_fn)(struct quic_frame_rx *rx);

static bool quic_rx_var(struct quic_frame_rx *rx, u64 *v)
{
	return quic_varint_get(&rx->p, rx->end, v);
}

static bool quic_rx_bytes(struct quic_frame_rx *rx, const u8 **data, u64 len)
{
	if ((u64)(rx->end - rx->p) < len)
		return false;
	*data = rx->p;
	rx->p += len;
	return true;
}

/* RFC 9000 Section 19.1: PADDING, all zero bytes to the next frame. */
static int quic_frame_padding(struct quic_frame_rx *rx)
{
	while (rx->p < rx->end && !*rx->p)
		rx->p++;
	return 0;
}

/* RFC 9000 Section 19.2: PING only elicits an ACK. */
static int quic_frame_ping(struct quic_frame_rx *rx)
{
	return 0;
}

/* RFC 9000 Section 19.3.2: ECT(0), ECT(1) and CE counts. */
static bool quic_frame_ack_ecn(struct quic_frame_rx *rx, u64 *ecn)
{
	int i;

	for (i = 0; i < QUIC_ECN_COUNTS; i++)
		if (!quic_rx_var(rx, &ecn[i]))
			return false;
	return true;
}

/*
 * RFC 9000 Section 19.3.1: the ranges go down from Largest Acknowledged;
 * each Gap and ACK Range Length must stay above zero.
 */
static int quic_frame_ack(struct quic_frame_rx *rx)
{
	struct quic_pn_range ranges[QUIC_ACK_RANGES_MAX];
	u64 largest, delay, count, first, gap, len, smallest, i;
	struct quic_pnspace *s = &quic_sk(rx->sk)->space[rx->pkt->space];
	u64 ecn[QUIC_ECN_COUNTS];
	int n = 1;
	u32 hash;

	if (!quic_rx_var(rx, &largest) || !quic_rx_var(rx, &delay) ||
	    !quic_rx_var(rx, &count) || !quic_rx_var(rx, &first) ||
	    first > largest)
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	smallest = largest - first;
	ranges[0].start = smallest;
	ranges[0].end = largest;
	for (i = 0; i < count; i++) {
		if (!quic_rx_var(rx, &gap) || !quic_rx_var(rx, &len) ||
		    smallest < gap + 2 || smallest - gap - 2 < len)
			return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
		largest = smallest - gap - 2;
		smallest = largest - len;
		if (n < QUIC_ACK_RANGES_MAX) {
			ranges[n].start = smallest;
			ranges[n].end = largest;
			n++;
		}
	}
	if (rx->type == QUIC_FRAME_ACK_ECN && !quic_frame_ack_ecn(rx, ecn))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	/* RFC 9000 Section 13.1: acknowledging a packet never sent. */
	if (ranges[0].end >= s->next_pn)
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	/* The ranges of the last ACK again: all they cover left @sent and
	 * @lost then, and later packets are above them.  A peer repeating
	 * one ACK frame must not make each copy walk those lists.
	 */
	hash = jhash2((const u32 *)ranges, n * sizeof(ranges[0]) / sizeof(u32),
		      n) | 1;
	if (hash == s->ack_hash)
		return 0;
	quic_ack_process(rx->sk, rx->pkt->space, ranges[0].end, delay,
			 ranges, n, rx->type == QUIC_FRAME_ACK_ECN ? ecn : NULL);
	s->ack_hash = hash;
	return 0;
}

/* RFC 9000 Section 19.4: RESET_STREAM. */
static int quic_frame_reset_stream(struct quic_frame_rx *rx)
{
	u64 id, errcode, finalsz;

	if (!quic_rx_var(rx, &id) || !quic_rx_var(rx, &errcode) ||
	    !quic_rx_var(rx, &finalsz))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	return quic_stream_reset_recv(rx->sk, id, (u32)errcode, finalsz);
}

/* RFC 9000 Section 19.5: STOP_SENDING. */
static int quic_frame_stop_sending(struct quic_frame_rx *rx)
{
	u64 id, errcode;

	if (!quic_rx_var(rx, &id) || !quic_rx_var(rx, &errcode))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	return quic_stream_stop_recv(rx->sk, id, (u32)errcode);
}

/* A complete TLS message (1-byte type, 3-byte length) in @d? */
static bool quic_tls_msg_complete(const struct quic_data *d)
{
	return d->len >= 4 &&
	       d->len >= 4 + ((d->data[1] << 16) | (d->data[2] << 8) |
			      d->data[3]);
}

/*
 * ABI reference Section 5.1 step 12: 1-RTT CRYPTO data is a post-handshake
 * TLS message.  A client keeps the first NewSessionTicket (up to 4096
 * bytes) for SESSION_TICKET and the NEW_SESSION_TICKET event.
 */
static void quic_frame_crypto_app(struct sock *sk, const u8 *data, u32 len)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_data *d = &qs->nst;
	u8 *buf;

	if (qs->is_serv || qs->nst_done)
		return;
	if (d->len + len > QUIC_TICKET_MAX_LEN) {
		qs->nst_done = 1;
		return;
	}
	buf = krealloc(d->data, d->len + len, GFP_ATOMIC);
	if (!buf)
		return;
	memcpy(buf + d->len, data, len);
	d->data = buf;
	d->len += len;
	if (quic_tls_msg_complete(d)) {
		qs->nst_done = 1;
		quic_event_queue(sk, QUIC_EVENT_NEW_SESSION_TICKET, d->data,
				 d->len);
	}
}

static int quic_frame_crypto_item(struct sock *sk, u8 space, const u8 *data,
				  u32 len)
{
	struct sk_buff *skb;

	if (space == QUIC_SPACE_APP) {
		quic_frame_crypto_app(sk, data, len);
		return 0;
	}
	skb = alloc_skb(len, GFP_ATOMIC);
	if (!skb)
		return -ENOMEM;
	skb_put_data(skb, data, len);
	if (!quic_rcv_charge(sk, skb)) {
		kfree_skb(skb);
		return -ENOMEM;
	}
	memset(QUIC_ITEM_CB(skb), 0, sizeof(struct quic_item_cb));
	QUIC_ITEM_CB(skb)->kind = QUIC_ITEM_HANDSHAKE;
	QUIC_ITEM_CB(skb)->level = space;
	quic_rcv_queue(sk, skb);
	return 0;
}

/*
 * Out-of-order CRYPTO data waits, by offset, in its space (RFC 9000
 * Section 7.5): up to QUIC_CRYPTO_OOO_SPAN bytes beyond the next byte
 * expected, in at most QUIC_CRYPTO_OOO_MEM of memory (truesize, charged to
 * the socket), so that tiny pieces at gapped offsets cannot hold much more
 * than full-size ones would.  Beyond either: CRYPTO_BUFFER_EXCEEDED.
 */
#define QUIC_CRYPTO_OOO_SPAN	65536
#define QUIC_CRYPTO_OOO_MEM	(4 * QUIC_CRYPTO_OOO_SPAN)

static int quic_frame_crypto_ooo(struct sock *sk, struct quic_pnspace *s,
				 u64 off, const u8 *data, u32 len)
{
	struct sk_buff *skb;

	if (off + len - s->crypto_recv > QUIC_CRYPTO_OOO_SPAN)
		return QUIC_TRANSPORT_ERROR_CRYPTO_BUF_EXCEEDED;
	if (quic_ooo_covered(&s->crypto_ooo, off, off + len))
		return 0;	/* retransmitted: held once */
	skb = alloc_skb(len, GFP_ATOMIC);
	if (!skb)
		return -ENOMEM;
	skb_put_data(skb, data, len);
	if (s->crypto_ooo.mem + skb->truesize > QUIC_CRYPTO_OOO_MEM) {
		kfree_skb(skb);
		return QUIC_TRANSPORT_ERROR_CRYPTO_BUF_EXCEEDED;
	}
	if (!quic_rcv_charge(sk, skb)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_FRM_RCVBUFDROP);
		kfree_skb(skb);
		return -ENOMEM;
	}
	quic_ooo_insert(&s->crypto_ooo, skb, off);
	return 0;
}

/*
 * Out-of-order data that is now in order goes to the socket.  A piece that
 * cannot be queued stays, and the offset with it: the bytes are not lost,
 * and the next CRYPTO frame of the space (a retransmission, as the packet
 * is dropped) tries again.
 */
static int quic_frame_crypto_drain(struct sock *sk, u8 space)
{
	struct quic_pnspace *s = &quic_sk(sk)->space[space];
	struct sk_buff *skb;
	int err;

	while ((skb = quic_ooo_pop(&s->crypto_ooo, s->crypto_recv))) {
		u64 off = QUIC_OOO_OFF(skb), end = off + skb->len;

		if (end > s->crypto_recv) {
			u32 skip = s->crypto_recv - off;

			err = quic_frame_crypto_item(sk, space, skb->data + skip,
						     skb->len - skip);
			if (err) {
				quic_ooo_insert(&s->crypto_ooo, skb, off);
				return err;
			}
			s->crypto_recv = end;
		}
		kfree_skb(skb);
	}
	return 0;
}

/* RFC 9000 Section 19.6: CRYPTO, an ordered byte stream per space. */
static int quic_frame_crypto(struct quic_frame_rx *rx)
{
	struct sock *sk = rx->sk;
	u8 space = rx->pkt->space;
	struct quic_pnspace *s = &quic_sk(sk)->space[space];
	u64 off, len;
	const u8 *data;
	int err;

	if (!quic_rx_var(rx, &off) || !quic_rx_var(rx, &len) ||
	    !quic_rx_bytes(rx, &data, len))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (off + len > QUIC_VARINT_MAX)
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (!len || off + len <= s->crypto_recv)
		return quic_frame_crypto_drain(sk, space);
	if (off > s->crypto_recv)
		return quic_frame_crypto_ooo(sk, s, off, data, len);
	data += s->crypto_recv - off;
	len -= s->crypto_recv - off;
	err = quic_frame_crypto_item(sk, space, data, len);
	if (err)
		return err;
	s->crypto_recv += len;
	return quic_frame_crypto_drain(sk, space);
}

/* RFC 9000 Section 19.7: NEW_TOKEN, only a server sends it. */
static int quic_frame_new_token(struct quic_frame_rx *rx)
{
	struct quic_sock *qs = quic_sk(rx->sk);
	const u8 *token;
	u64 len;
	u8 *p;

	if (!quic_rx_var(rx, &len) || !len || len > QUIC_TOKEN_MAX_LEN ||
	    !quic_rx_bytes(rx, &token, len))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (qs->is_serv)
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	p = kmemdup(token, len, GFP_ATOMIC);
	if (!p)
		return -ENOMEM;
	kfree_sensitive(qs->token.data);
	qs->token.data = p;
	qs->token.len = len;
	quic_event_queue(rx->sk, QUIC_EVENT_NEW_TOKEN, token, len);
	return 0;
}

/* RFC 9000 Section 19.8: STREAM, with its OFF, LEN and FIN bits. */
static int quic_frame_stream(struct quic_frame_rx *rx)
{
	u64 id, off = 0, len;
	const u8 *data;

	if (!quic_rx_var(rx, &id))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if ((rx->type & QUIC_STREAM_BIT_OFF) && !quic_rx_var(rx, &off))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (rx->type & QUIC_STREAM_BIT_LEN) {
		if (!quic_rx_var(rx, &len))
			return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	} else {
		len = rx->end - rx->p;
	}
	if (!quic_rx_bytes(rx, &data, len) || off + len > QUIC_VARINT_MAX)
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	return quic_stream_frame_recv(rx->sk, id, off, data, len,
				      rx->type & QUIC_STREAM_BIT_FIN,
				      rx->pkt->skb);
}

/* RFC 9000 Section 19.9: MAX_DATA. */
static int quic_frame_max_data(struct quic_frame_rx *rx)
{
	struct quic_flow *f = &quic_sk(rx->sk)->flow;
	u64 max;

	if (!quic_rx_var(rx, &max))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (max > f->send_max) {
		f->send_max = max;
		rx->sk->sk_write_space(rx->sk);
	}
	return 0;
}

/* RFC 9000 Section 19.10: MAX_STREAM_DATA. */
static int quic_frame_max_stream_data(struct quic_frame_rx *rx)
{
	u64 id, max;

	if (!quic_rx_var(rx, &id) || !quic_rx_var(rx, &max))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	return quic_stream_max_data_recv(rx->sk, id, max);
}

/* RFC 9000 Section 19.11: MAX_STREAMS. */
static int quic_frame_max_streams(struct quic_frame_rx *rx)
{
	u64 max;

	if (!quic_rx_var(rx, &max))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	return quic_stream_max_streams_recv(rx->sk,
					    rx->type == QUIC_FRAME_MAX_STREAMS_UNI,
					    max);
}

/* RFC 9000 Sections 19.12 and 19.14: DATA_BLOCKED, STREAMS_BLOCKED. */
static int quic_frame_blocked(struct quic_frame_rx *rx)
{
	u64 v;

	if (!quic_rx_var(rx, &v))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (rx->type != QUIC_FRAME_DATA_BLOCKED && v > QUIC_TP_MAX_STREAMS_WIRE)
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	quic_stream_limit_blocked_recv(rx->sk, rx->type, v);
	return 0;
}

/* RFC 9000 Section 19.13: STREAM_DATA_BLOCKED. */
static int quic_frame_stream_data_blocked(struct quic_frame_rx *rx)
{
	u64 id, v;

	if (!quic_rx_var(rx, &id) || !quic_rx_var(rx, &v))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	return quic_stream_blocked_recv(rx->sk, id, v);
}

/* Send RETIRE_CONNECTION_ID for the peer IDs we stopped using. */
int quic_frame_retire_pending(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	u32 seq;
	u64 v;

	while (quic_conn_id_dest_next_retire(&qs->dest, &seq)) {
		v = seq;
		if (__quic_frame_ctrl(sk, QUIC_SPACE_APP,
				      QUIC_FRAME_RETIRE_CONNECTION_ID, &v, 1,
				      NULL, 0)) {
			quic_conn_id_dest_retire_unqueue(&qs->dest);
			return -ENOMEM;
		}
	}
	return 0;
}

/* RFC 9000 Section 19.15: NEW_CONNECTION_ID. */
static int quic_frame_new_conn_id(struct quic_frame_rx *rx)
{
	struct quic_sock *qs = quic_sk(rx->sk);
	const u8 *token, *cid;
	struct quic_conn_id id;
	u64 seq, prior, len;
	int err;

	if (!quic_rx_var(rx, &seq) || !quic_rx_var(rx, &prior) ||
	    rx->p >= rx->end)
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	len = *rx->p++;
	if (!len || len > QUIC_CONN_ID_MAX_LEN || prior > seq ||
	    seq > U32_MAX || !quic_rx_bytes(rx, &cid, len) ||
	    !quic_rx_bytes(rx, &token, QUIC_CONN_ID_TOKEN_LEN))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	/* RFC 9000 Section 19.15: not with a zero-length Destination ID. */
	if (!qs->dest.active || !qs->dest.active->key.id.len)
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	quic_conn_id_set_raw(&id, cid, len);
	err = quic_conn_id_dest_add(&qs->dest, seq, prior, &id, token,
				    GFP_ATOMIC);
	if (err)
		return quic_conn_id_errcode(err);
	return quic_frame_retire_pending(rx->sk);
}

/* ABI reference Section 4.5: the CONNECTION_ID event. */
void quic_conn_id_event(struct sock *sk, bool dest)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id_set *set = dest ? &qs->dest : &qs->source;
	struct quic_connection_id_info info = {
		.dest = dest,
		.active = set->active ? set->active->seq : 0,
		.prior_to = quic_conn_id_first_seq(set),
	};

	quic_event_queue(sk, QUIC_EVENT_CONNECTION_ID, &info, sizeof(info));
}

/* Issue connection IDs up to the peer's limit (RFC 9000 Section 5.1.1). */
int quic_frame_issue_conn_ids(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id_entry *e;
	struct quic_conn_id id;
	u8 buf[1 + QUIC_CONN_ID_MAX_LEN + QUIC_CONN_ID_TOKEN_LEN];
	u64 v[2];

	while (quic_conn_id_source_room(&qs->source)) {
		quic_conn_id_generate(&id);
		e = quic_conn_id_source_add(&qs->source, &id, GFP_ATOMIC);
		if (IS_ERR_OR_NULL(e))
			return -ENOMEM;
		v[0] = e->seq;
		v[1] = qs->source.prior_to;
		buf[0] = id.len;
		memcpy(buf + 1, id.data, id.len);
		memcpy(buf + 1 + id.len, e->token, QUIC_CONN_ID_TOKEN_LEN);
		if (__quic_frame_ctrl(sk, QUIC_SPACE_APP,
				      QUIC_FRAME_NEW_CONNECTION_ID, v, 2, buf,
				      1 + id.len + QUIC_CONN_ID_TOKEN_LEN))
			return -ENOMEM;
	}
	return 0;
}

/*
 * RFC 9000 Section 19.16: RETIRE_CONNECTION_ID, then issue a new one.  A
 * number greater than any we sent is a PROTOCOL_VIOLATION.
 */
static int quic_frame_retire_conn_id(struct quic_frame_rx *rx)
{
	struct quic_sock *qs = quic_sk(rx->sk);
	struct quic_conn_id dcid;
	u64 seq;
	int err;

	if (!quic_rx_var(rx, &seq))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (seq > U32_MAX)
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	quic_conn_id_set_raw(&dcid, rx->pkt->dcid, rx->pkt->dcid_len);
	err = quic_conn_id_source_retire(&qs->source, seq, &dcid);
	if (err)
		return quic_conn_id_errcode(err);
	quic_conn_id_event(rx->sk, false);
	if (quic_frame_issue_conn_ids(rx->sk))
		return QUIC_TRANSPORT_ERROR_INTERNAL;
	return 0;
}

/*
 * RFC 9000 Section 19.17: PATH_CHALLENGE is echoed in PATH_RESPONSE, on the
 * path it came on (quic_path_challenge_recv()).
 */
static int quic_frame_path_challenge(struct quic_frame_rx *rx)
{
	const u8 *data;

	if (!quic_rx_bytes(rx, &data, QUIC_PATH_CHALLENGE_LEN))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	quic_path_challenge_recv(rx->sk, rx->pkt->skb, rx->pkt->dgram_len,
				 data);
	return 0;
}

/* A PATH_CHALLENGE or PATH_RESPONSE frame with @data, if it fits. */
u32 quic_frame_path_put(u8 *p, u32 room, u8 type, const u8 *data)
{
	if (room < 1 + QUIC_PATH_CHALLENGE_LEN)
		return 0;
	*p++ = type;
	memcpy(p, data, QUIC_PATH_CHALLENGE_LEN);
	return 1 + QUIC_PATH_CHALLENGE_LEN;
}

/* The pending PATH_RESPONSE (RFC 9000 Section 19.18), if it fits. */
u32 quic_frame_path_response_build(struct sock *sk, u8 *p, u32 room)
{
	struct quic_path *path = &quic_sk(sk)->path;
	u32 n;

	if (!path->response_pending)
		return 0;
	n = quic_frame_path_put(p, room, QUIC_FRAME_PATH_RESPONSE,
				path->response);
	if (n)
		path->response_pending = 0;
	return n;
}

/* RFC 9000 Section 19.18: PATH_RESPONSE, to our challenge or ignored. */
static int quic_frame_path_response(struct quic_frame_rx *rx)
{
	const u8 *data;

	if (!quic_rx_bytes(rx, &data, QUIC_PATH_CHALLENGE_LEN))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	quic_path_response_recv(rx->sk, data);
	return 0;
}

/* RFC 9000 Section 19.19: CONNECTION_CLOSE, transport or application. */
static int quic_frame_conn_close(struct quic_frame_rx *rx)
{
	u64 errcode, frame = 0, len;
	const u8 *phrase;

	if (!quic_rx_var(rx, &errcode))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (rx->type == QUIC_FRAME_CONNECTION_CLOSE &&
	    !quic_rx_var(rx, &frame))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (!quic_rx_var(rx, &len) || !quic_rx_bytes(rx, &phrase, len))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	QUIC_INC_STATS(sock_net(rx->sk), QUIC_MIB_FRM_INCLOSES);
	quic_conn_closed(rx->sk, (u32)errcode, (u8)frame, phrase, len);
	return 0;
}

/* RFC 9000 Section 19.20: HANDSHAKE_DONE confirms the handshake. */
static int quic_frame_handshake_done(struct quic_frame_rx *rx)
{
	struct quic_sock *qs = quic_sk(rx->sk);

	if (qs->is_serv)
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	if (!qs->handshake_confirmed) {
		qs->handshake_confirmed = 1;
		/* RFC 9001 Section 4.9.2 */
		quic_space_discard(rx->sk, QUIC_SPACE_HANDSHAKE);
		/* RFC 9000 Section 9.6.1: the server's preferred address */
		quic_path_pref_start(rx->sk);
	}
	return 0;
}

/* Packet types a frame may appear in (RFC 9000 Section 12.4, Table 3). */
#define QUIC_IH01	0xf
#define QUIC_IH_1	0xb	/* not 0-RTT */
#define QUIC___01	0xc
#define QUIC____1	0x8

static u8 quic_pkt_type_bit(u8 type)
{
	switch (type) {
	case QUIC_PKT_INITIAL:
		return 0x1;
	case QUIC_PKT_HANDSHAKE:
		return 0x2;
	case QUIC_PKT_0RTT:
		return 0x4;
	default:
		return 0x8;
	}
}

/**
 * struct quic_frame_ops - how a received frame type is handled
 * @fn: the handler
 * @pkts: packet types it may appear in (QUIC_IH01 ...)
 * @non_eliciting: does not elicit an ACK (ACK, PADDING, CONNECTION_CLOSE)
 * @probing: a probing frame (RFC 9000 Section 9.1)
 */
struct quic_frame_ops {
	quic_frame_rx_fn fn;
	u8 pkts;
	u8 non_eliciting:1;
	u8 probing:1;
};

static const struct quic_frame_ops quic_frame_ops[QUIC_FRAME_TYPE_MAX] = {
	[QUIC_FRAME_PADDING] = {
		.fn = quic_frame_padding, .pkts = QUIC_IH01, .non_eliciting = 1,
		.probing = 1,
	},
	[QUIC_FRAME_PING] = { .fn = quic_frame_ping, .pkts = QUIC_IH01 },
	[QUIC_FRAME_ACK] = {
		.fn = quic_frame_ack, .pkts = QUIC_IH_1, .non_eliciting = 1,
	},
	[QUIC_FRAME_ACK_ECN] = {
		.fn = quic_frame_ack, .pkts = QUIC_IH_1, .non_eliciting = 1,
	},
	[QUIC_FRAME_RESET_STREAM] = {
		.fn = quic_frame_reset_stream, .pkts = QUIC___01,
	},
	[QUIC_FRAME_STOP_SENDING] = {
		.fn = quic_frame_stop_sending, .pkts = QUIC___01,
	},
	[QUIC_FRAME_CRYPTO] = { .fn = quic_frame_crypto, .pkts = QUIC_IH_1 },
	[QUIC_FRAME_NEW_TOKEN] = {
		.fn = quic_frame_new_token, .pkts = QUIC____1,
	},
	[QUIC_FRAME_STREAM ... QUIC_FRAME_STREAM + 7] = {
		.fn = quic_frame_stream, .pkts = QUIC___01,
	},
	[QUIC_FRAME_MAX_DATA] = {
		.fn = quic_frame_max_data, .pkts = QUIC___01,
	},
	[QUIC_FRAME_MAX_STREAM_DATA] = {
		.fn = quic_frame_max_stream_data, .pkts = QUIC___01,
	},
	[QUIC_FRAME_MAX_STREAMS_BIDI] = {
		.fn = quic_frame_max_streams, .pkts = QUIC___01,
	},
	[QUIC_FRAME_MAX_STREAMS_UNI] = {
		.fn = quic_frame_max_streams, .pkts = QUIC___01,
	},
	[QUIC_FRAME_DATA_BLOCKED] = {
		.fn = quic_frame_blocked, .pkts = QUIC___01,
	},
	[QUIC_FRAME_STREAM_DATA_BLOCKED] = {
		.fn = quic_frame_stream_data_blocked, .pkts = QUIC___01,
	},
	[QUIC_FRAME_STREAMS_BLOCKED_BIDI] = {
		.fn = quic_frame_blocked, .pkts = QUIC___01,
	},
	[QUIC_FRAME_STREAMS_BLOCKED_UNI] = {
		.fn = quic_frame_blocked, .pkts = QUIC___01,
	},
	[QUIC_FRAME_NEW_CONNECTION_ID] = {
		.fn = quic_frame_new_conn_id, .pkts = QUIC___01, .probing = 1,
	},
	[QUIC_FRAME_RETIRE_CONNECTION_ID] = {
		.fn = quic_frame_retire_conn_id, .pkts = QUIC____1,
	},
	[QUIC_FRAME_PATH_CHALLENGE] = {
		.fn = quic_frame_path_challenge, .pkts = QUIC___01,
		.probing = 1,
	},
	[QUIC_FRAME_PATH_RESPONSE] = {
		.fn = quic_frame_path_response, .pkts = QUIC____1, .probing = 1,
	},
	[QUIC_FRAME_CONNECTION_CLOSE] = {
		.fn = quic_frame_conn_close, .pkts = QUIC_IH01,
		.non_eliciting = 1,
	},
	[QUIC_FRAME_CONNECTION_CLOSE_APP] = {
		.fn = quic_frame_conn_close, .pkts = QUIC___01,
		.non_eliciting = 1,
	},
	[QUIC_FRAME_HANDSHAKE_DONE] = {
		.fn = quic_frame_handshake_done, .pkts = QUIC____1,
	},
};

/*
 * RFC 9221 Sections 3 and 4: DATAGRAM, only if we advertised support, and
 * no larger (type, length and data) than the max_datagram_frame_size we
 * advertised: either is a PROTOCOL_VIOLATION.
 */
static int quic_frame_datagram(struct quic_frame_rx *rx)
{
	u32 max = quic_sk(rx->sk)->local_tp.max_datagram_frame_size;
	struct sock *sk = rx->sk;
	struct sk_buff *skb;
	const u8 *data;
	u64 len;

	if (!max)
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	if (rx->type == QUIC_FRAME_DATAGRAM_LEN) {
		if (!quic_rx_var(rx, &len))
			return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	} else {
		len = rx->end - rx->p;
	}
	if (!quic_rx_bytes(rx, &data, len))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	if (rx->p - rx->start > max)
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	skb = alloc_skb(len, GFP_ATOMIC);
	if (!skb)
		return 0;	/* unreliable: may be dropped */
	skb_put_data(skb, data, len);
	if (!quic_rcv_charge(sk, skb)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_FRM_RCVBUFDROP);
		kfree_skb(skb);
		return 0;
	}
	memset(QUIC_ITEM_CB(skb), 0, sizeof(struct quic_item_cb));
	QUIC_ITEM_CB(skb)->kind = QUIC_ITEM_DATAGRAM;
	quic_rcv_queue(sk, skb);
	return 0;
}

static int quic_frame_one(struct quic_frame_rx *rx)
{
	struct quic_pkt *pkt = rx->pkt;
	const struct quic_frame_ops *ops;
	u64 type;

	rx->start = rx->p;
	if (!quic_rx_var(rx, &type))
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	rx->type = (u8)type;
	pkt->frame = (u8)type;
	if (type == QUIC_FRAME_DATAGRAM || type == QUIC_FRAME_DATAGRAM_LEN) {
		if (!(quic_pkt_type_bit(pkt->type) & QUIC___01))
			return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
		pkt->ack_eliciting = 1;
		pkt->non_probing = 1;
		return quic_frame_datagram(rx);
	}
	/* RFC 9000 Section 12.4: unknown types are FRAME_ENCODING_ERROR. */
	if (type >= QUIC_FRAME_TYPE_MAX)
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	ops = &quic_frame_ops[type];
	if (!(quic_pkt_type_bit(pkt->type) & ops->pkts))
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	if (!ops->non_eliciting)
		pkt->ack_eliciting = 1;
	if (!ops->probing)
		pkt->non_probing = 1;
	return ops->fn(rx);
}

/**
 * quic_frame_process - handle the frames of a decrypted packet
 * @sk: the socket
 * @pkt: the packet
 * @p: its payload
 * @len: payload length
 *
 * RFC 9000 Section 12.4: a packet holds at least one frame.
 *
 * Return: 0; a transport error code (close the connection with it); or a
 * negative errno (drop the packet unacknowledged).
 */
int quic_frame_process(struct sock *sk, struct quic_pkt *pkt, const u8 *p,
		       u32 len)
{
	struct quic_frame_rx rx = {
		.sk = sk,
		.pkt = pkt,
		.p = p,
		.end = p + len,
	};
	int err;

	if (!len)
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	while (rx.p < rx.end) {
		err = quic_frame_one(&rx);
		if (err)
			return err;
		if (quic_is_closed(sk))
			break;
	}
	return 0;
}
