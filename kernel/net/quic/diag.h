/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: what quic_diag.ko (diag.c) answers to a sock_diag dump.
 *
 * A request is an inet_diag_req_v2 (SOCK_DIAG_BY_FAMILY, family AF_INET or
 * AF_INET6) with the attribute INET_DIAG_REQ_PROTOCOL = IPPROTO_QUIC (u32),
 * as for MPTCP: 261 does not fit sdiag_protocol.  Each reply is an
 * inet_diag_msg for one listening or connected QUIC socket (idiag_state:
 * TCP_LISTEN, TCP_SYN_RECV while the handshake runs, TCP_ESTABLISHED,
 * TCP_CLOSE for a connection the peer closed but the application holds);
 * idiag_rqueue and idiag_wqueue are the bytes charged to the receive and
 * send buffers.  idiag_states, sdiag_family, id.idiag_sport and
 * id.idiag_dport filter the dump; a bytecode filter is not applied.
 *
 * INET_DIAG_SKMEMINFO is sent when requested (idiag_ext), and so is
 * INET_DIAG_INFO, which here holds the QUIC_DIAG_* attributes below as a
 * nested netlink attribute stream (NLA_F_NESTED).  Their numbers are not
 * user ABI of the upstream QUIC API (uapi/linux/quic.h has none): quicctl
 * mirrors them (quicctl/ssdiag.py) and a test checks the two agree, so
 * each entry's comment starts with its type (u8, u32, u64, string or
 * binary) and a colon.  Append only.  A u64 may be preceded by a
 * QUIC_DIAG_UNSPEC attribute that aligns it (nla_put_u64_64bit()).
 *
 * A listener has QUIC_DIAG_SERVER and QUIC_DIAG_ALPN; a connection the
 * others too, each as soon as it has a value (no cipher before 1-RTT keys).
 */

#ifndef __NET_QUIC_DIAG_H
#define __NET_QUIC_DIAG_H

enum {
	QUIC_DIAG_UNSPEC,
	QUIC_DIAG_SERVER,	/* u8: 1 on the server side (listen, accept) */
	QUIC_DIAG_ALPN,		/* binary: ALPN list, RFC 7301 encoding */
	QUIC_DIAG_VERSION,	/* u32: QUIC version of the connection */
	QUIC_DIAG_CIPHER,	/* u32: TLS_CIPHER_* of the 1-RTT send keys */
	QUIC_DIAG_SCID,		/* binary: our active connection ID */
	QUIC_DIAG_DCID,		/* binary: the peer's ID we send to */
	QUIC_DIAG_STREAMS_BIDI_LOCAL,	/* u64: open bidi streams we began */
	QUIC_DIAG_STREAMS_UNI_LOCAL,	/* u64: open uni streams we began */
	QUIC_DIAG_STREAMS_BIDI_PEER,	/* u64: open bidi streams of the peer */
	QUIC_DIAG_STREAMS_UNI_PEER,	/* u64: open uni streams of the peer */
	QUIC_DIAG_CONG_ALGO,	/* string: congestion control, reno or cubic */
	QUIC_DIAG_SRTT,		/* u32: smoothed RTT, us (RFC 9002 5.3) */
	QUIC_DIAG_RTTVAR,	/* u32: RTT variation, us */
	QUIC_DIAG_MIN_RTT,	/* u32: minimum RTT, us, 0 before a sample */
	QUIC_DIAG_LATEST_RTT,	/* u32: latest RTT sample, us */
	QUIC_DIAG_CWND,		/* u32: congestion window, bytes */
	QUIC_DIAG_SSTHRESH,	/* u32: slow start threshold, bytes, ~0U: none */
	QUIC_DIAG_IN_FLIGHT,	/* u32: bytes in flight */
	QUIC_DIAG_MSS,		/* u32: largest UDP payload of the path, bytes */
	QUIC_DIAG_LOST,		/* u64: packets declared lost */
	QUIC_DIAG_PTO_COUNT,	/* u32: consecutive probe timeouts */
	QUIC_DIAG_PACING_RATE,	/* u64: pacing rate, bytes per second */
	QUIC_DIAG_BYTES_SENT,	/* u64: bytes of ack-eliciting packets sent */
	QUIC_DIAG_BYTES_ACKED,	/* u64: bytes of those packets acknowledged */
	QUIC_DIAG_BYTES_RECEIVED,	/* u64: stream bytes received */
	QUIC_DIAG_IDLE_TIMEOUT,	/* u64: negotiated idle timeout, us */
	__QUIC_DIAG_MAX		/* end of the list, not an attribute */
};

struct sk_buff;
struct sock;
struct net;

int quic_diag_info_fill(struct sock *sk, struct sk_buff *skb);
int quic_diag_socks(struct net *net, unsigned long *pos, struct sock **sks,
		    int max);

#endif /* __NET_QUIC_DIAG_H */
