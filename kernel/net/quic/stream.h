/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: streams (RFC 9000 Sections 2, 3 and 4).
 *
 * Streams are kept in a small hash table by ID.  Send side: data is cut
 * into STREAM frames by sendmsg, within the peer's flow control limits,
 * so everything queued may be sent.  Receive side: in-order data goes to
 * the socket receive queue, the rest waits in a per-stream struct quic_ooo,
 * which also holds out-of-order CRYPTO data.
 */

#ifndef __NET_QUIC_STREAM_H
#define __NET_QUIC_STREAM_H

#include <linux/rbtree.h>
#include <linux/skbuff.h>
#include <linux/types.h>
#include <uapi/linux/quic.h>

struct sock;

/**
 * struct quic_ooo - out-of-order data of a byte stream (STREAM or CRYPTO)
 * @root: skbs by offset (skb->rbnode), as TCP's out-of-order queue: no
 *	two overlap, so that a byte is held once however often it is sent
 * @mem: truesize of the skbs held (each is charged to the socket)
 * @count: skbs held
 *
 * The offset of each skb's first byte is in its cb (QUIC_OOO_OFF()).
 * Lookup and insertion are O(log n) in the number of pieces.
 */
struct quic_ooo {
	struct rb_root root;
	u32 mem;
	u32 count;
};

#define QUIC_OOO_OFF(skb)	(*(u64 *)(skb)->cb)

void quic_ooo_init(struct quic_ooo *q);
void quic_ooo_purge(struct quic_ooo *q);
bool quic_ooo_covered(struct quic_ooo *q, u64 off, u64 end);
bool quic_ooo_insert(struct quic_ooo *q, struct sk_buff *skb, u64 off);
struct sk_buff *quic_ooo_pop(struct quic_ooo *q, u64 limit);

#define QUIC_STREAM_HT_BITS	6

/*
 * Receive memory per byte of window: sk_rcvbuf is 4 x max_data (ABI
 * reference Section 1.14), which covers the skb overhead of MSS-sized
 * frames (truesize about twice the data) with room for events.
 */
#define QUIC_RMEM_PER_WINDOW	4

/**
 * struct quic_rwnd - a receive window and its auto-tuning
 * @window: credit granted beyond the bytes read (grows, never shrinks)
 * @epoch_time: start of the current measurement, us (0: none yet)
 * @epoch_read: bytes read when it started
 */
struct quic_rwnd {
	u64 window;
	u64 epoch_time;
	u64 epoch_read;
};

/* RFC 9000 Section 2.1: the two low bits of a stream ID. */
static inline bool quic_stream_is_uni(s64 id)
{
	return id & QUIC_STREAM_TYPE_UNI_MASK;
}

static inline bool quic_stream_is_server(s64 id)
{
	return id & QUIC_STREAM_TYPE_SERVER_MASK;
}

/**
 * struct quic_stream - one stream
 * @node: quic_stream_table.head[]
 * @id: stream ID
 * @send: send side: @offset bytes queued, @max the peer's limit,
 *	@acked bytes acknowledged, @blocked 1 + the limit a
 *	STREAM_DATA_BLOCKED was sent for (0: none), @state
 *	(QUIC_STREAM_SEND_STATE_*), @errcode of the RESET_STREAM we sent,
 *	@stop_sent STOP_SENDING sent, @fin_acked the frame with the FIN was
 *	acknowledged
 * @recv: receive side: @offset bytes queued for reading in order,
 *	@highest offset seen (flow control), @read bytes read, @max our
 *	limit, @rwnd its window, @finalsz once known, @ooo out of order data,
 *	@state (QUIC_STREAM_RECV_STATE_*), @fin FIN is known, @highest_seen
 *	data was seen (RECV event sent), @blocked the peer said @max stopped
 *	it (STREAM_DATA_BLOCKED): credit goes with the next read
 * @done: a peer stream whose closing was credited (MAX_STREAMS)
 */
struct quic_stream {
	struct hlist_node node;
	s64 id;
	struct {
		u64 offset;
		u64 max;
		u64 acked;
		u64 blocked;
		u32 errcode;
		u8 state;
		u8 stop_sent:1;
		u8 fin_acked:1;
	} send;
	struct {
		u64 offset;
		u64 highest;
		u64 read;
		u64 max;
		struct quic_rwnd rwnd;
		u64 finalsz;
		struct quic_ooo ooo;
		u8 state;
		u8 fin:1;
		u8 highest_seen:1;
		u8 blocked:1;
	} recv;
	u8 done:1;
};

/**
 * struct quic_stream_table - the streams of a connection
 * @head: hash table
 * @next_local: next local stream ID to open, [0] bidi, [1] uni
 * @max_local: peer's limit as a stream count (MAX_STREAMS), [0] bidi, [1] uni
 * @freed_local: local streams gone, [0] bidi, [1] uni: next_local minus
 *	these is what the local streams hold (at most QUIC_TP_MAX_STREAMS)
 * @next_peer: number of peer streams opened, [0] bidi, [1] uni
 * @max_peer: our limit as a stream count, [0] bidi, [1] uni
 * @done_peer: peer streams finished (credit for MAX_STREAMS)
 * @blocked: 1 + the limit a STREAMS_BLOCKED was sent for (0: none)
 * @peer_blocked: the peer said @max_peer stopped it (STREAMS_BLOCKED):
 *	credit goes with the next stream to finish
 * @active: stream used by sendmsg with stream_id -1, or -1
 * @send_blocked: stream whose own window stopped the last sendmsg, or -1;
 *	poll() reports no EPOLLOUT meanwhile
 * @clone_train: the train the last clone was taken from (compared only)
 * @clone_stream: the stream of that clone
 */
struct quic_stream_table {
	struct hlist_head head[1 << QUIC_STREAM_HT_BITS];
	u64 next_local[2];
	u64 max_local[2];
	u64 freed_local[2];
	u64 next_peer[2];
	u64 max_peer[2];
	u64 done_peer[2];
	u64 blocked[2];
	u8 peer_blocked[2];
	s64 active;
	s64 send_blocked;
	const struct sk_buff *clone_train;
	s64 clone_stream;
};

void quic_stream_table_init(struct quic_stream_table *t);
void quic_stream_table_free(struct sock *sk);
struct quic_stream *quic_stream_find(struct sock *sk, s64 id);
struct quic_stream *quic_stream_send_get(struct sock *sk, s64 id, u32 flags,
					 int *err);
s64 quic_stream_next_id(struct sock *sk, bool uni);
void quic_stream_set_limits(struct sock *sk);
int quic_stream_zrtt_limits(struct sock *sk);

#if IS_ENABLED(CONFIG_KUNIT)
/* Visible to the KUnit tests only (static otherwise). */
struct sk_buff *quic_stream_clone(struct sk_buff *from, const u8 *data,
				  u32 len);
#endif
void quic_stream_read(struct sock *sk, struct quic_stream *s, u32 len);
void quic_stream_fin_read(struct sock *sk, struct quic_stream *s);
void quic_stream_send_fin(struct sock *sk, struct quic_stream *s);
void quic_stream_send_blocked(struct sock *sk, struct quic_stream *s);
int quic_stream_frame_recv(struct sock *sk, s64 id, u64 off, const u8 *data,
			   u32 len, bool fin, struct sk_buff *from);
int quic_stream_blocked_recv(struct sock *sk, s64 id, u64 max);
void quic_stream_limit_blocked_recv(struct sock *sk, u8 type, u64 max);
void quic_stream_acked(struct sock *sk, s64 id, u32 len, bool fin);
void quic_stream_reset_acked(struct sock *sk, s64 id);
int quic_stream_reset_recv(struct sock *sk, s64 id, u32 errcode, u64 finalsz);
int quic_stream_stop_recv(struct sock *sk, s64 id, u32 errcode);
int quic_stream_max_data_recv(struct sock *sk, s64 id, u64 max);
int quic_stream_max_streams_recv(struct sock *sk, bool uni, u64 max);
int quic_stream_reset(struct sock *sk, s64 id, u32 errcode);
int quic_stream_stop_sending(struct sock *sk, s64 id, u32 errcode);

#endif /* __NET_QUIC_STREAM_H */
