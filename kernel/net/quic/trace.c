// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC tracepoints (trace.h): the one file that creates them, and the
 * helpers their TP_fast_assign calls.  None of this runs unless an event
 * is enabled.
 */

#include <linux/list.h>
#include <linux/sock_diag.h>

#include "quic.h"
#include "packet.h"

/* The socket cookie, as inet_diag reports it. */
static u64 quic_trace_cookie(struct sock *sk)
{
	u32 c[2];

	sock_diag_save_cookie(sk, c);
	return (u64)c[1] << 32 | c[0];
}

static u8 quic_trace_pkt_type(struct sock *sk, u8 first)
{
	if (!(first & QUIC_HDR_LONG))
		return QUIC_PKT_SHORT;
	return quic_pkt_type_of(quic_sk(sk)->version, first);
}

/* ACK Delay in microseconds: scaled in the 1-RTT space only (RFC 9000 19.3). */
static u64 quic_trace_ack_delay(struct sock *sk, u8 space, u64 delay)
{
	if (space != QUIC_SPACE_APP)
		return 0;
	if (delay > (U64_MAX >> quic_sk(sk)->ack_delay_exponent))
		return U64_MAX;
	return delay << quic_sk(sk)->ack_delay_exponent;
}

static u32 quic_trace_list_len(const struct list_head *head)
{
	const struct list_head *pos;
	u32 n = 0;

	list_for_each(pos, head)
		n++;
	return n;
}

static bool quic_trace_skip(const u8 **p, const u8 *end, int vars, u64 bytes)
{
	u64 v;

	while (vars--)
		if (!quic_varint_get(p, end, &v))
			return false;
	if ((u64)(end - *p) < bytes)
		return false;
	*p += bytes;
	return true;
}

/* Skip one varint length and that many bytes. */
static bool quic_trace_skip_len(const u8 **p, const u8 *end)
{
	u64 len;

	return quic_varint_get(p, end, &len) && quic_trace_skip(p, end, 0, len);
}

/* An ACK frame after its type (RFC 9000 Section 19.3). */
static bool quic_trace_skip_ack(const u8 **p, const u8 *end, bool ecn)
{
	u64 count;

	if (!quic_trace_skip(p, end, 2, 0) ||
	    !quic_varint_get(p, end, &count) || count > end - *p)
		return false;
	if (!quic_trace_skip(p, end, 1 + 2 * count, 0))
		return false;
	return !ecn || quic_trace_skip(p, end, 3, 0);
}

/* One frame after its type byte @type; false where it does not parse. */
static bool quic_trace_skip_frame(const u8 **p, const u8 *end, u8 type)
{
	switch (type) {
	case QUIC_FRAME_PADDING:
		while (*p < end && !**p)
			(*p)++;
		return true;
	case QUIC_FRAME_PING:
	case QUIC_FRAME_HANDSHAKE_DONE:
		return true;
	case QUIC_FRAME_ACK:
	case QUIC_FRAME_ACK_ECN:
		return quic_trace_skip_ack(p, end, type == QUIC_FRAME_ACK_ECN);
	case QUIC_FRAME_RESET_STREAM:
		return quic_trace_skip(p, end, 3, 0);
	case QUIC_FRAME_STOP_SENDING:
	case QUIC_FRAME_MAX_STREAM_DATA:
	case QUIC_FRAME_STREAM_DATA_BLOCKED:
		return quic_trace_skip(p, end, 2, 0);
	case QUIC_FRAME_CRYPTO:
		return quic_trace_skip(p, end, 1, 0) &&
		       quic_trace_skip_len(p, end);
	case QUIC_FRAME_NEW_TOKEN:
		return quic_trace_skip_len(p, end);
	case QUIC_FRAME_MAX_DATA:
	case QUIC_FRAME_MAX_STREAMS_BIDI:
	case QUIC_FRAME_MAX_STREAMS_UNI:
	case QUIC_FRAME_DATA_BLOCKED:
	case QUIC_FRAME_STREAMS_BLOCKED_BIDI:
	case QUIC_FRAME_STREAMS_BLOCKED_UNI:
	case QUIC_FRAME_RETIRE_CONNECTION_ID:
		return quic_trace_skip(p, end, 1, 0);
	case QUIC_FRAME_NEW_CONNECTION_ID:
		if (!quic_trace_skip(p, end, 2, 0) || *p >= end)
			return false;
		return quic_trace_skip(p, end, 0,
				       1 + **p + QUIC_CONN_ID_TOKEN_LEN);
	case QUIC_FRAME_PATH_CHALLENGE:
	case QUIC_FRAME_PATH_RESPONSE:
		return quic_trace_skip(p, end, 0, QUIC_PATH_CHALLENGE_LEN);
	case QUIC_FRAME_CONNECTION_CLOSE:
		return quic_trace_skip(p, end, 2, 0) &&
		       quic_trace_skip_len(p, end);
	case QUIC_FRAME_CONNECTION_CLOSE_APP:
		return quic_trace_skip(p, end, 1, 0) &&
		       quic_trace_skip_len(p, end);
	case QUIC_FRAME_DATAGRAM:
		*p = end;
		return true;
	case QUIC_FRAME_DATAGRAM_LEN:
		return quic_trace_skip_len(p, end);
	}
	if (type < QUIC_FRAME_STREAM || type > (QUIC_FRAME_STREAM | 0x07))
		return false;
	if (!quic_trace_skip(p, end, 1, 0))	/* Stream ID */
		return false;
	if ((type & QUIC_STREAM_BIT_OFF) && !quic_trace_skip(p, end, 1, 0))
		return false;
	if (type & QUIC_STREAM_BIT_LEN)
		return quic_trace_skip_len(p, end);
	*p = end;
	return true;
}

/*
 * The frame types in a plain-text payload: bit N for type N; the STREAM
 * types 0x08..0x0f all as bit 8.  A frame that does not parse ends the
 * walk.
 */
static u64 quic_trace_frames(const u8 *p, u32 len)
{
	const u8 *end = p + len;
	u64 type, bits = 0;

	while (p < end) {
		if (!quic_varint_get(&p, end, &type) || type >= 64)
			break;
		if (type >= QUIC_FRAME_STREAM && type <= (QUIC_FRAME_STREAM | 0x07))
			bits |= BIT_ULL(QUIC_FRAME_STREAM);
		else
			bits |= BIT_ULL(type);
		if (!quic_trace_skip_frame(&p, end, type))
			break;
	}
	return bits;
}

#define CREATE_TRACE_POINTS
#include "trace.h"
