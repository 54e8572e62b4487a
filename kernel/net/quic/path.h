/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: the network path of a connection (RFC 9000 Sections 8 and 9):
 * addresses, the cached route, address validation and the
 * anti-amplification limit, and transmission through the UDP socket.
 */

#ifndef __NET_QUIC_PATH_H
#define __NET_QUIC_PATH_H

#include <linux/types.h>

struct sock;
struct sk_buff;

#define QUIC_PATH_MIN_MTU	1200	/* RFC 9000 Section 14 */
#define QUIC_AMPLIFICATION	3	/* RFC 9000 Section 8.1 */
#define QUIC_PATH_CHALLENGE_LEN	8
/* RFC 8899 Section 5.1.2: MAX_PROBES of one size before it counts as too big */
#define QUIC_PL_MAX_PROBES	3
/* PTOs in a row after which datagrams above QUIC_PATH_MIN_MTU are suspect */
#define QUIC_PL_BLACKHOLE_PTOS	3
/* The search ends when the bounds are this close (bytes). */
#define QUIC_PL_STEP		16

/*
 * ECN on the path (RFC 9000 Section 13.4.2 and Appendix A.4): the first
 * QUIC_ECN_TESTING_PKTS ack-eliciting packets go out with ECT(0) (fewer
 * if a PTO fires first); then none until an ACK shows the marks arrived
 * (CAPABLE, every packet marked again), or all of them were lost, or an
 * ACK's counts do not add up (FAILED, no more marks on this path).  A new
 * path starts at TESTING.
 */
enum quic_ecn_state {
	QUIC_ECN_TESTING,
	QUIC_ECN_UNKNOWN,
	QUIC_ECN_CAPABLE,
	QUIC_ECN_FAILED,
};

#define QUIC_ECN_TESTING_PKTS	10

/* RFC 8899 Section 5.2, the states this implementation keeps. */
enum quic_pl_state {
	QUIC_PL_OFF,		/* plpmtud_probe_interval 0, or not started */
	QUIC_PL_SEARCH,		/* probing between @low and @high */
	QUIC_PL_DONE,		/* SEARCH_COMPLETE until the raise timer */
};

/**
 * struct quic_pl - Datagram Packetization Layer PMTU Discovery
 *	(RFC 8899, RFC 9000 Section 14.3)
 * @next: when the next probe may go (us)
 * @probe_pn: packet number of the probe in flight
 * @low: largest datagram the peer acknowledged; the path MSS
 * @high: smallest datagram known not to get through, or the most the
 *	route and the peer take plus one
 * @probe: size of the probe in flight, 0 if none
 * @lost: probes of the size @probe would have that were lost
 * @state: enum quic_pl_state
 */
struct quic_pl {
	u64 next;
	s64 probe_pn;
	u16 low;
	u16 high;
	u16 probe;
	u8 lost;
	u8 state;
};

/**
 * struct quic_path - the path in use
 * @bytes_recv: bytes received before validation (RFC 9000 Section 8.1)
 * @bytes_sent: bytes sent before validation
 * @dst_cookie: IPv6 route cookie for sk_dst_check()
 * @mss: largest UDP payload we send
 * @pl: PMTU discovery, which raises @mss above QUIC_PATH_MIN_MTU
 * @response: Data of the last PATH_CHALLENGE received, to echo
 * @ecn_state: enum quic_ecn_state
 * @ecn_probes: ack-eliciting packets sent marked while TESTING
 * @ecn_lost: of those, declared lost
 * @validated: the peer address is validated
 * @response_pending: @response is to be sent in a PATH_RESPONSE frame
 */
struct quic_path {
	u64 bytes_recv;
	u64 bytes_sent;
	u32 dst_cookie;
	u32 mss;
	struct quic_pl pl;
	u8 response[QUIC_PATH_CHALLENGE_LEN];
	u8 ecn_state;
	u8 ecn_probes;
	u8 ecn_lost;
	u8 validated:1;
	u8 response_pending:1;
};

union quic_addr;

int quic_path_route(struct sock *sk);
struct sk_buff *quic_path_skb_alloc(u32 len);
void quic_path_send_to(struct sock *usk, struct sk_buff *skb,
		       const union quic_addr *local, const union quic_addr *peer);
bool quic_path_gso(struct sock *sk);
int quic_path_xmit(struct sock *sk, struct sk_buff *skb, u32 gso_size, u8 ecn);
u32 quic_path_room(struct sock *sk);
void quic_path_on_recv(struct sock *sk, const struct sk_buff *skb,
		       u32 bytes);
u16 quic_pl_want(struct sock *sk, u64 now);
void quic_pl_sent(struct sock *sk, s64 pn, u16 size);
void quic_pl_acked(struct sock *sk, s64 pn);
bool quic_pl_lost(struct sock *sk, s64 pn);
void quic_pl_blackhole(struct sock *sk);
void quic_path_peer_check(struct sock *sk, const struct sk_buff *skb, u32 len,
			  bool newest);
void quic_path_challenge_recv(struct sock *sk, const struct sk_buff *skb,
			      u32 len, const u8 *data);
void quic_path_alt_flush(struct sock *sk);
u32 quic_path_challenge_build(struct sock *sk, u8 *p, u32 room);
void quic_path_response_recv(struct sock *sk, const u8 *data);
void quic_path_move_timeout(struct sock *sk);
int quic_path_migrate(struct sock *sk, const union quic_addr *a);
int quic_path_pref_set(struct sock *sk, const union quic_addr *a);
struct quic_tp_pref_addr;
bool quic_path_pref_build(struct sock *sk, struct quic_tp_pref_addr *pa);
int quic_path_pref_recv(struct sock *sk, const struct quic_tp_pref_addr *pa);
void quic_path_pref_start(struct sock *sk);
void quic_path_free(struct sock *sk);
bool quic_ecn_marking(const struct sock *sk);
void quic_ecn_sent(struct sock *sk, bool ack_eliciting);
void quic_ecn_pto(struct sock *sk);
void quic_ecn_lost(struct sock *sk);
void quic_ecn_fail(struct sock *sk);
void quic_ecn_capable(struct sock *sk);

#endif /* __NET_QUIC_PATH_H */
