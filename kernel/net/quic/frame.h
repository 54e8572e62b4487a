/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: frames (RFC 9000 Section 19).
 *
 * Frames we send are built ahead into a struct quic_frame, queued on a
 * packet number space (or the stream queue) and, once sent, held by the
 * struct quic_sent_pkt that carried them until it is acknowledged or lost.
 * Frames we receive are handled by one function per type (frame.c).
 */

#ifndef __NET_QUIC_FRAME_H
#define __NET_QUIC_FRAME_H

#include <linux/list.h>
#include <linux/string.h>
#include <linux/types.h>

#include "varint.h"

struct sock;
struct quic_pkt;

/* Frame types, RFC 9000 Section 12.4 Table 3 (and RFC 9221 DATAGRAM). */
enum quic_frame_type {
	QUIC_FRAME_PADDING		= 0x00,
	QUIC_FRAME_PING			= 0x01,
	QUIC_FRAME_ACK			= 0x02,
	QUIC_FRAME_ACK_ECN		= 0x03,
	QUIC_FRAME_RESET_STREAM		= 0x04,
	QUIC_FRAME_STOP_SENDING		= 0x05,
	QUIC_FRAME_CRYPTO		= 0x06,
	QUIC_FRAME_NEW_TOKEN		= 0x07,
	QUIC_FRAME_STREAM		= 0x08,	/* 0x08..0x0f */
	QUIC_FRAME_MAX_DATA		= 0x10,
	QUIC_FRAME_MAX_STREAM_DATA	= 0x11,
	QUIC_FRAME_MAX_STREAMS_BIDI	= 0x12,
	QUIC_FRAME_MAX_STREAMS_UNI	= 0x13,
	QUIC_FRAME_DATA_BLOCKED		= 0x14,
	QUIC_FRAME_STREAM_DATA_BLOCKED	= 0x15,
	QUIC_FRAME_STREAMS_BLOCKED_BIDI	= 0x16,
	QUIC_FRAME_STREAMS_BLOCKED_UNI	= 0x17,
	QUIC_FRAME_NEW_CONNECTION_ID	= 0x18,
	QUIC_FRAME_RETIRE_CONNECTION_ID	= 0x19,
	QUIC_FRAME_PATH_CHALLENGE	= 0x1a,
	QUIC_FRAME_PATH_RESPONSE	= 0x1b,
	QUIC_FRAME_CONNECTION_CLOSE	= 0x1c,
	QUIC_FRAME_CONNECTION_CLOSE_APP	= 0x1d,
	QUIC_FRAME_HANDSHAKE_DONE	= 0x1e,
	QUIC_FRAME_TYPE_MAX,		/* table size of the handlers */
	QUIC_FRAME_DATAGRAM		= 0x30,
	QUIC_FRAME_DATAGRAM_LEN		= 0x31,
};

/* STREAM frame type bits (RFC 9000 Section 19.8). */
#define QUIC_STREAM_BIT_FIN	0x01
#define QUIC_STREAM_BIT_LEN	0x02
#define QUIC_STREAM_BIT_OFF	0x04

/**
 * struct quic_frame - a frame to send, encoded
 * @list: a queue (quic_pnspace.outq, quic_sock.stream_outq) or
 *	quic_sent_pkt.frames
 * @stream_id: STREAM, RESET_STREAM: the stream
 * @offset: STREAM, CRYPTO: offset of the data
 * @data_len: STREAM, CRYPTO: length of the data
 * @len: encoded length
 * @type: frame type (STREAM without its flag bits)
 * @fin: STREAM: carries the FIN bit
 * @wmem: counted in sk_wmem_queued (stream data)
 * @ctrl: a control frame, counted whole (quic_frame_truesize()) in
 *	quic_sock.ctrl_mem and sk_wmem_queued until freed
 * @data: the encoded frame
 *
 * @offset holds the Sequence Number of NEW_CONNECTION_ID and
 * RETIRE_CONNECTION_ID frames.
 */
struct quic_frame {
	struct list_head list;
	s64 stream_id;
	u64 offset;
	u32 data_len;
	u16 len;
	u8 type;
	u8 fin:1;
	u8 wmem:1;
	u8 ctrl:1;
	u8 data[];
};

/*
 * Control frames queued or in flight, per connection: each is charged its
 * allocation, and queueing one more fails past this (RFC 9000 Section 21.9:
 * a peer must not make us hold state without bound).
 */
#define QUIC_CTRL_MEM_MAX	(256 * 1024)

static inline u32 quic_frame_truesize(const struct quic_frame *f)
{
	return sizeof(*f) + f->len;
}

/*
 * Writers for frames whose size the caller computed beforehand (so the
 * buffer end is not rechecked): RFC 9000 Section 16 varints through
 * varint.h, and fixed-size fields.
 */
static inline u8 *quic_put_var(u8 *p, u64 v)
{
	return quic_varint_put(p, p + QUIC_VARINT_MAX_LEN, v);
}

/* A 2-byte varint, for Length fields written before their value. */
static inline u8 *quic_put_var2(u8 *p, u16 v)
{
	return quic_varint_put_len(p, p + 2, v, 2);
}

static inline u8 *quic_put_u32(u8 *p, u32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
	return p + 4;
}

static inline u8 *quic_put_data(u8 *p, const void *data, u32 len)
{
	memcpy(p, data, len);
	return p + len;
}

struct quic_frame *quic_frame_alloc(u32 len, u8 type, gfp_t gfp);
void quic_frame_free(struct sock *sk, struct quic_frame *f);
void quic_frame_list_free(struct sock *sk, struct list_head *head);

int quic_frame_crypto_queue(struct sock *sk, u8 space, struct iov_iter *from,
			    u32 len);
struct quic_frame *quic_frame_stream_new(s64 id, u64 off, u32 len, bool fin,
					 gfp_t gfp);
int __quic_frame_ctrl(struct sock *sk, u8 space, u8 type, const u64 *vals,
		      int n, const void *data, u32 dlen);
int quic_frame_issue_conn_ids(struct sock *sk);
int quic_frame_retire_pending(struct sock *sk);
void quic_conn_id_event(struct sock *sk, bool dest);
int quic_frame_close_build(struct sock *sk, u8 *p, u32 room, bool app);
u32 quic_frame_ack_build(struct sock *sk, u8 space, u8 *p, u32 room);
u32 quic_frame_path_put(u8 *p, u32 room, u8 type, const u8 *data);
u32 quic_frame_path_response_build(struct sock *sk, u8 *p, u32 room);

int quic_frame_process(struct sock *sk, struct quic_pkt *pkt, const u8 *p,
		       u32 len);

#endif /* __NET_QUIC_FRAME_H */
