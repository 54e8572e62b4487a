/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC tracepoints: /sys/kernel/tracing/events/quic/.
 *
 * Every event carries @cookie, the socket cookie (sock_gen_cookie(), as
 * "ss -e" and the tcp events show it): one connection is one cookie, so a
 * filter "cookie == N" selects it.  quic_state also carries the addresses
 * and ports, to find the cookie of a connection.  Times are left to the
 * trace clock.  The arguments are plain values or pointers: the work of
 * decoding them (frame types, metrics) is done in TP_fast_assign, only
 * when the event is enabled.
 */

#undef TRACE_SYSTEM
#define TRACE_SYSTEM quic

#if !defined(_NET_QUIC_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _NET_QUIC_TRACE_H

#include <linux/in6.h>
#include <linux/tracepoint.h>
#include <net/tcp_states.h>

struct sock;
struct list_head;

/* Why a packet was declared lost (RFC 9002 Section 6.1). */
#define QUIC_TRACE_LOST_PN	0	/* packet threshold */
#define QUIC_TRACE_LOST_TIME	1	/* time threshold */
#define QUIC_TRACE_LOST_PROBE	2	/* a PMTU probe (RFC 8899) */

/* What a key event is. */
#define QUIC_TRACE_KEY_INSTALL	0	/* secret set by the handshake */
#define QUIC_TRACE_KEY_LOCAL	1	/* key update we started */
#define QUIC_TRACE_KEY_PEER	2	/* key update the peer started */

/* Stream events. */
#define QUIC_TRACE_STREAM_OPEN		0
#define QUIC_TRACE_STREAM_FIN_SENT	1
#define QUIC_TRACE_STREAM_FIN_RECVD	2	/* all data received */
#define QUIC_TRACE_STREAM_RESET_SENT	3
#define QUIC_TRACE_STREAM_RESET_RECVD	4
#define QUIC_TRACE_STREAM_CLOSED	5	/* both directions done */

/* Path events (RFC 9000 Sections 8.2 and 9). */
#define QUIC_TRACE_PATH_MOVED		0	/* peer seen at a new address */
#define QUIC_TRACE_PATH_CHALLENGE	1	/* PATH_CHALLENGE sent */
#define QUIC_TRACE_PATH_VALIDATED	2	/* its PATH_RESPONSE came */
#define QUIC_TRACE_PATH_BACK		3	/* back to the old address */

TRACE_DEFINE_ENUM(TCP_CLOSE);
TRACE_DEFINE_ENUM(TCP_SYN_RECV);
TRACE_DEFINE_ENUM(TCP_ESTABLISHED);
TRACE_DEFINE_ENUM(TCP_LISTEN);

/* enum quic_state */
#define quic_trace_state_name(state)				\
	__print_symbolic(state,					\
			 { TCP_CLOSE, "closed" },		\
			 { TCP_SYN_RECV, "establishing" },	\
			 { TCP_ESTABLISHED, "established" },	\
			 { TCP_LISTEN, "listening" })

/*
 * TP_fast_assign is compiled in trace.c only, which has the helpers it
 * calls (quic_trace_*()) and quic.h.
 */

DECLARE_EVENT_CLASS(quic_packet_class,

	TP_PROTO(struct sock *sk, const u8 *hdr, u32 pn_offset, u32 len,
		 u8 space, s64 pn),

	TP_ARGS(sk, hdr, pn_offset, len, space, pn),

	TP_STRUCT__entry(
		__field(u64, cookie)
		__field(s64, pn)
		__field(u64, frames)
		__field(u32, len)
		__field(u8, space)
		__field(u8, type)
		__field(u8, key_phase)
	),

	TP_fast_assign(
		u32 hlen = pn_offset + (hdr[0] & 0x03) + 1;

		__entry->cookie = quic_trace_cookie(sk);
		__entry->pn = pn;
		__entry->len = len;
		__entry->space = space;
		__entry->type = quic_trace_pkt_type(sk, hdr[0]);
		__entry->key_phase = !(hdr[0] & QUIC_HDR_LONG) &&
				     (hdr[0] & QUIC_HDR_KEY_PHASE);
		__entry->frames = len > hlen + QUIC_CRYPTO_TAG_LEN ?
			quic_trace_frames(hdr + hlen,
					  len - hlen - QUIC_CRYPTO_TAG_LEN) : 0;
	),

	TP_printk("cookie=%llu type=%u space=%u pn=%lld len=%u frames=%#llx key_phase=%u",
		  __entry->cookie, __entry->type, __entry->space, __entry->pn,
		  __entry->len, __entry->frames, __entry->key_phase)
);

/* A packet built, before protection: @hdr is its plain text. */
DEFINE_EVENT(quic_packet_class, quic_packet_sent,
	TP_PROTO(struct sock *sk, const u8 *hdr, u32 pn_offset, u32 len,
		 u8 space, s64 pn),
	TP_ARGS(sk, hdr, pn_offset, len, space, pn)
);

/* A packet decrypted, before its frames are handled. */
DEFINE_EVENT(quic_packet_class, quic_packet_received,
	TP_PROTO(struct sock *sk, const u8 *hdr, u32 pn_offset, u32 len,
		 u8 space, s64 pn),
	TP_ARGS(sk, hdr, pn_offset, len, space, pn)
);

/* An ACK frame: @acked lists the packets it newly acknowledged. */
TRACE_EVENT(quic_ack_received,

	TP_PROTO(struct sock *sk, u8 space, u64 largest, u64 delay,
		 const struct list_head *acked),

	TP_ARGS(sk, space, largest, delay, acked),

	TP_STRUCT__entry(
		__field(u64, cookie)
		__field(u64, largest)
		__field(u64, ack_delay)
		__field(u32, newly_acked)
		__field(u8, space)
	),

	TP_fast_assign(
		__entry->cookie = quic_trace_cookie(sk);
		__entry->largest = largest;
		__entry->ack_delay = quic_trace_ack_delay(sk, space, delay);
		__entry->newly_acked = quic_trace_list_len(acked);
		__entry->space = space;
	),

	TP_printk("cookie=%llu space=%u largest=%llu ack_delay=%lluus newly_acked=%u",
		  __entry->cookie, __entry->space, __entry->largest,
		  __entry->ack_delay, __entry->newly_acked)
);

TRACE_EVENT(quic_packet_lost,

	TP_PROTO(struct sock *sk, u8 space, s64 pn, u8 reason),

	TP_ARGS(sk, space, pn, reason),

	TP_STRUCT__entry(
		__field(u64, cookie)
		__field(s64, pn)
		__field(u8, space)
		__field(u8, reason)
	),

	TP_fast_assign(
		__entry->cookie = quic_trace_cookie(sk);
		__entry->pn = pn;
		__entry->space = space;
		__entry->reason = reason;
	),

	TP_printk("cookie=%llu space=%u pn=%lld reason=%s",
		  __entry->cookie, __entry->space, __entry->pn,
		  __print_symbolic(__entry->reason,
				   { QUIC_TRACE_LOST_PN, "packet_threshold" },
				   { QUIC_TRACE_LOST_TIME, "time_threshold" },
				   { QUIC_TRACE_LOST_PROBE, "pmtu_probe" }))
);

/* Recovery and congestion state (RFC 9002), after an ACK or a loss. */
TRACE_EVENT(quic_metrics,

	TP_PROTO(struct sock *sk),

	TP_ARGS(sk),

	TP_STRUCT__entry(
		__field(u64, cookie)
		__field(u64, pacing_rate)
		__field(u32, cwnd)
		__field(u32, in_flight)
		__field(u32, ssthresh)
		__field(u32, srtt)
		__field(u32, rttvar)
		__field(u32, min_rtt)
		__field(u32, latest_rtt)
		__field(u8, pto_count)
	),

	TP_fast_assign(
		const struct quic_cong *c = &quic_sk(sk)->cong;

		__entry->cookie = quic_trace_cookie(sk);
		__entry->pacing_rate = quic_cong_pace_rate(c);
		__entry->cwnd = c->cwnd;
		__entry->in_flight = c->in_flight;
		__entry->ssthresh = c->ssthresh;
		__entry->srtt = c->smoothed_rtt;
		__entry->rttvar = c->rttvar;
		__entry->min_rtt = c->min_rtt;
		__entry->latest_rtt = c->latest_rtt;
		__entry->pto_count = c->pto_count;
	),

	TP_printk("cookie=%llu cwnd=%u in_flight=%u ssthresh=%u srtt=%uus rttvar=%uus min_rtt=%uus latest_rtt=%uus pacing_rate=%llu pto_count=%u",
		  __entry->cookie, __entry->cwnd, __entry->in_flight,
		  __entry->ssthresh, __entry->srtt, __entry->rttvar,
		  __entry->min_rtt, __entry->latest_rtt, __entry->pacing_rate,
		  __entry->pto_count)
);

/* Keys of @level installed or updated; @phase: 1-RTT key phase. */
TRACE_EVENT(quic_key_update,

	TP_PROTO(struct sock *sk, u8 level, bool send, u8 phase, u8 event),

	TP_ARGS(sk, level, send, phase, event),

	TP_STRUCT__entry(
		__field(u64, cookie)
		__field(u8, level)
		__field(u8, send)
		__field(u8, phase)
		__field(u8, event)
	),

	TP_fast_assign(
		__entry->cookie = quic_trace_cookie(sk);
		__entry->level = level;
		__entry->send = send;
		__entry->phase = phase;
		__entry->event = event;
	),

	TP_printk("cookie=%llu level=%u send=%u phase=%u event=%s",
		  __entry->cookie, __entry->level, __entry->send,
		  __entry->phase,
		  __print_symbolic(__entry->event,
				   { QUIC_TRACE_KEY_INSTALL, "install" },
				   { QUIC_TRACE_KEY_LOCAL, "local_update" },
				   { QUIC_TRACE_KEY_PEER, "remote_update" }))
);

/* The connection changed state (enum quic_state: TCP's numbers). */
TRACE_EVENT(quic_state,

	TP_PROTO(struct sock *sk, int old, int state),

	TP_ARGS(sk, old, state),

	TP_STRUCT__entry(
		__field(u64, cookie)
		__field(u16, sport)
		__field(u16, dport)
		__field(u8, old)
		__field(u8, state)
		__field(u8, is_serv)
		__array(u8, saddr, sizeof(struct sockaddr_in6))
		__array(u8, daddr, sizeof(struct sockaddr_in6))
	),

	TP_fast_assign(
		const struct quic_sock *qs = quic_sk(sk);

		__entry->cookie = quic_trace_cookie(sk);
		__entry->old = old;
		__entry->state = state;
		__entry->is_serv = qs->is_serv;
		__entry->sport = ntohs(quic_addr_port(&qs->local));
		__entry->dport = ntohs(quic_addr_port(&qs->peer));
		memset(__entry->saddr, 0, sizeof(__entry->saddr));
		memset(__entry->daddr, 0, sizeof(__entry->daddr));
		memcpy(__entry->saddr, &qs->local, quic_addr_len(&qs->local));
		memcpy(__entry->daddr, &qs->peer, quic_addr_len(&qs->peer));
	),

	TP_printk("cookie=%llu %pISpc -> %pISpc server=%u state=%s -> %s",
		  __entry->cookie, __entry->saddr, __entry->daddr,
		  __entry->is_serv,
		  quic_trace_state_name(__entry->old),
		  quic_trace_state_name(__entry->state))
);

TRACE_EVENT(quic_stream,

	TP_PROTO(struct sock *sk, s64 id, u8 event, u64 errcode),

	TP_ARGS(sk, id, event, errcode),

	TP_STRUCT__entry(
		__field(u64, cookie)
		__field(s64, id)
		__field(u64, errcode)
		__field(u8, event)
	),

	TP_fast_assign(
		__entry->cookie = quic_trace_cookie(sk);
		__entry->id = id;
		__entry->errcode = errcode;
		__entry->event = event;
	),

	TP_printk("cookie=%llu id=%lld event=%s errcode=%llu",
		  __entry->cookie, __entry->id,
		  __print_symbolic(__entry->event,
				   { QUIC_TRACE_STREAM_OPEN, "open" },
				   { QUIC_TRACE_STREAM_FIN_SENT, "fin_sent" },
				   { QUIC_TRACE_STREAM_FIN_RECVD, "fin_recvd" },
				   { QUIC_TRACE_STREAM_RESET_SENT, "reset_sent" },
				   { QUIC_TRACE_STREAM_RESET_RECVD, "reset_recvd" },
				   { QUIC_TRACE_STREAM_CLOSED, "closed" }),
		  __entry->errcode)
);

/* The peer's path: @addr is the address concerned. */
TRACE_EVENT(quic_path,

	TP_PROTO(struct sock *sk, u8 event, const void *addr),

	TP_ARGS(sk, event, addr),

	TP_STRUCT__entry(
		__field(u64, cookie)
		__field(u8, event)
		__array(u8, addr, sizeof(struct sockaddr_in6))
	),

	TP_fast_assign(
		__entry->cookie = quic_trace_cookie(sk);
		__entry->event = event;
		memcpy(__entry->addr, addr, sizeof(__entry->addr));
	),

	TP_printk("cookie=%llu event=%s addr=%pISpc",
		  __entry->cookie,
		  __print_symbolic(__entry->event,
				   { QUIC_TRACE_PATH_MOVED, "moved" },
				   { QUIC_TRACE_PATH_CHALLENGE, "challenge_sent" },
				   { QUIC_TRACE_PATH_VALIDATED, "validated" },
				   { QUIC_TRACE_PATH_BACK, "back" }),
		  __entry->addr)
);

#endif /* _NET_QUIC_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
