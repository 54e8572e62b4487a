// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: the network path (RFC 9000 Sections 8, 9 and 14).
 *
 * The route to the peer is cached in sk_dst_cache and checked on every
 * transmission; datagrams leave through the UDP tunnel socket the QUIC
 * socket is bound to.  Before the peer's address is validated a server
 * sends at most three times what it received (RFC 9000 Section 8.1).
 * Datagrams are 1200 bytes until DPLPMTUD (RFC 8899, RFC 9000 Section
 * 14.3), on when plpmtud_probe_interval is set, finds what the path
 * carries.
 */

#include <crypto/algapi.h>
#include <linux/random.h>
#include <net/ip.h>
#include <net/ip6_route.h>
#include <net/route.h>
#include <net/udp_tunnel.h>

#include "quic.h"
#include "output.h"
#include "packet.h"

static struct dst_entry *quic_route4(struct sock *sk, struct flowi4 *fl4)
{
	struct quic_sock *qs = quic_sk(sk);
	struct rtable *rt;

	memset(fl4, 0, sizeof(*fl4));
	fl4->daddr = qs->peer.v4.sin_addr.s_addr;
	fl4->saddr = qs->local.v4.sin_addr.s_addr;
	fl4->fl4_dport = qs->peer.v4.sin_port;
	fl4->fl4_sport = qs->local.v4.sin_port;
	fl4->flowi4_proto = IPPROTO_UDP;
	fl4->flowi4_oif = READ_ONCE(sk->sk_bound_dev_if);
	rt = ip_route_output_key(sock_net(sk), fl4);
	if (IS_ERR(rt))
		return ERR_CAST(rt);
	if (!qs->local.v4.sin_addr.s_addr)
		qs->local.v4.sin_addr.s_addr = fl4->saddr;
	return &rt->dst;
}

static struct dst_entry *quic_route6(struct sock *sk, struct flowi6 *fl6)
{
	struct quic_sock *qs = quic_sk(sk);
	struct dst_entry *dst;

	memset(fl6, 0, sizeof(*fl6));
	fl6->daddr = qs->peer.v6.sin6_addr;
	fl6->saddr = qs->local.v6.sin6_addr;
	fl6->fl6_dport = qs->peer.v6.sin6_port;
	fl6->fl6_sport = qs->local.v6.sin6_port;
	fl6->flowi6_proto = IPPROTO_UDP;
	fl6->flowi6_oif = qs->peer.v6.sin6_scope_id ?:
			  READ_ONCE(sk->sk_bound_dev_if);
	dst = ip6_dst_lookup_flow(sock_net(sk), sk, fl6, NULL);
	if (IS_ERR(dst))
		return dst;
	if (ipv6_addr_any(&qs->local.v6.sin6_addr))
		qs->local.v6.sin6_addr = fl6->saddr;
	qs->path.dst_cookie = rt6_get_cookie(dst_rt6_info(dst));
	return dst;
}

static struct dst_entry *quic_route(struct sock *sk)
{
	union {
		struct flowi4 fl4;
		struct flowi6 fl6;
	} fl;

	if (quic_sk(sk)->peer.sa.sa_family == AF_INET6)
		return quic_route6(sk, &fl.fl6);
	return quic_route4(sk, &fl.fl4);
}

/*
 * Resolve the route to the peer and cache it; fills in the local address
 * when the socket is bound to the wildcard.  Returns a route error such as
 * -ENETUNREACH.
 */
int quic_path_route(struct sock *sk)
{
	struct dst_entry *dst = quic_route(sk);

	if (IS_ERR(dst))
		return PTR_ERR(dst);
	sk_dst_set(sk, dst);
	return 0;
}

static struct dst_entry *quic_path_dst(struct sock *sk)
{
	struct dst_entry *dst = sk_dst_check(sk, quic_sk(sk)->path.dst_cookie);

	if (dst)
		return dst;
	dst = quic_route(sk);
	if (IS_ERR(dst))
		return NULL;
	dst_hold(dst);
	sk_dst_set(sk, dst);
	return dst;
}

/**
 * quic_path_gso - whether datagrams to the peer may leave as one UDP GSO skb
 * @sk: the socket, locked
 *
 * When the route's device segments UDP (ethtool's tx-udp-segmentation) or
 * takes software GSO (gso), as veth and most NICs do.  Not through IPsec:
 * UDP refuses GSO there too (udp_send_skb()).  Turning both features off
 * makes every datagram its own skb, so a qdisc on the device (netem, tbf)
 * sees datagrams as a wire would.
 *
 * Return: true if quic_path_xmit() may be given several datagrams.
 */
bool quic_path_gso(struct sock *sk)
{
	struct dst_entry *dst = __sk_dst_get(sk);

	return dst && !dst_xfrm(dst) &&
	       (dst->dev->features & (NETIF_F_GSO_UDP_L4 | NETIF_F_GSO));
}

/**
 * quic_ecn_marking - do datagrams leave with ECT(0) now
 * @sk: the socket
 *
 * Return: true while ECN is tested or known to work on the path.
 */
bool quic_ecn_marking(const struct sock *sk)
{
	u8 state = quic_sk(sk)->path.ecn_state;

	return state == QUIC_ECN_TESTING || state == QUIC_ECN_CAPABLE;
}

/**
 * quic_ecn_sent - a packet left marked ECT(0)
 * @sk: the socket
 * @ack_eliciting: it was, and is tracked until acknowledged or lost
 *
 * RFC 9000 Appendix A.4: testing ends after QUIC_ECN_TESTING_PKTS; until
 * an acknowledgment says how they arrived, nothing more is marked.
 */
void quic_ecn_sent(struct sock *sk, bool ack_eliciting)
{
	struct quic_path *path = &quic_sk(sk)->path;

	if (ack_eliciting && path->ecn_state == QUIC_ECN_TESTING &&
	    ++path->ecn_probes >= QUIC_ECN_TESTING_PKTS)
		path->ecn_state = QUIC_ECN_UNKNOWN;
}

/**
 * quic_ecn_pto - a probe timeout while ECN is tested
 * @sk: the socket
 *
 * RFC 9000 Section 13.4.2 marks the first ten packets, or those of three
 * PTOs: here testing ends at the first PTO, so that the probes leave
 * unmarked and get through a path that drops ECT packets, at the cost of
 * one PTO.
 */
void quic_ecn_pto(struct sock *sk)
{
	struct quic_path *path = &quic_sk(sk)->path;

	if (path->ecn_state == QUIC_ECN_TESTING && path->ecn_probes)
		path->ecn_state = QUIC_ECN_UNKNOWN;
}

/**
 * quic_ecn_lost - a packet sent marked was declared lost
 * @sk: the socket
 *
 * RFC 9000 Section 13.4.2: when every marked packet of the test is lost
 * (or dropped unacknowledged with its keys), the path may drop ECT
 * packets: ECN is off on it.
 */
void quic_ecn_lost(struct sock *sk)
{
	struct quic_path *path = &quic_sk(sk)->path;

	if (path->ecn_state != QUIC_ECN_TESTING &&
	    path->ecn_state != QUIC_ECN_UNKNOWN)
		return;
	if (path->ecn_lost < U8_MAX)
		path->ecn_lost++;
	if (path->ecn_lost >= path->ecn_probes &&
	    path->ecn_state == QUIC_ECN_UNKNOWN)
		quic_ecn_fail(sk);
}

/**
 * quic_ecn_fail - ECN validation failed: no more marks on this path
 * @sk: the socket
 */
void quic_ecn_fail(struct sock *sk)
{
	struct quic_path *path = &quic_sk(sk)->path;

	if (path->ecn_state == QUIC_ECN_FAILED)
		return;
	path->ecn_state = QUIC_ECN_FAILED;
	QUIC_INC_STATS(sock_net(sk), QUIC_MIB_ECN_FAILED);
	pr_debug("%s: sk %p ECN validation failed for %pISpc\n", __func__,
		 sk, &quic_sk(sk)->peer);
}

/**
 * quic_ecn_capable - an acknowledgment showed marked packets arrive marked
 * @sk: the socket
 */
void quic_ecn_capable(struct sock *sk)
{
	struct quic_path *path = &quic_sk(sk)->path;

	if (path->ecn_state == QUIC_ECN_TESTING ||
	    path->ecn_state == QUIC_ECN_UNKNOWN)
		path->ecn_state = QUIC_ECN_CAPABLE;
}

/* A new path: ECN is tested on it again (RFC 9000 Section 13.4.2). */
static void quic_ecn_reset(struct quic_path *path)
{
	path->ecn_state = QUIC_ECN_TESTING;
	path->ecn_probes = 0;
	path->ecn_lost = 0;
}

/**
 * quic_path_xmit - send datagrams to the peer
 * @sk: the socket
 * @skb: skb->data at the UDP payload; consumed
 * @gso_size: 0 for one datagram; else @skb holds datagrams of @gso_size
 *	bytes, the last one possibly shorter, sent with UDP GSO
 * @ecn: the ECN codepoint of the IP header (RFC 3168), INET_ECN_ECT_0 or
 *	INET_ECN_NOT_ECT
 *
 * Return: 0, or -EHOSTUNREACH without a route.
 */
int quic_path_xmit(struct sock *sk, struct sk_buff *skb, u32 gso_size, u8 ecn)
{
	struct quic_sock *qs = quic_sk(sk);
	struct sock *usk = qs->udp->sock->sk;
	struct dst_entry *dst;

	dst = quic_path_dst(sk);
	if (!dst) {
		kfree_skb(skb);
		return -EHOSTUNREACH;
	}
	if (!qs->path.validated)
		qs->path.bytes_sent += skb->len;

	skb->ignore_df = 0;
	if (gso_size && skb->len > gso_size) {
		/* As udp_send_skb(): the pseudo-header sum is set by
		 * udp_set_csum(), segmentation completes each segment's.
		 */
		skb_shinfo(skb)->gso_size = gso_size;
		skb_shinfo(skb)->gso_type = SKB_GSO_UDP_L4;
		skb_shinfo(skb)->gso_segs = DIV_ROUND_UP(skb->len, gso_size);
		skb->ip_summed = CHECKSUM_PARTIAL;
		skb->csum_start = skb_headroom(skb) - sizeof(struct udphdr);
		skb->csum_offset = offsetof(struct udphdr, check);
	}
	local_bh_disable();
	if (qs->peer.sa.sa_family == AF_INET6)
		udp_tunnel6_xmit_skb(dst, usk, skb, NULL,
				     &qs->local.v6.sin6_addr,
				     &qs->peer.v6.sin6_addr, ecn,
				     ip6_dst_hoplimit(dst), 0,
				     qs->local.v6.sin6_port,
				     qs->peer.v6.sin6_port, false);
	else
		udp_tunnel_xmit_skb(container_of(dst, struct rtable, dst), usk,
				    skb, qs->local.v4.sin_addr.s_addr,
				    qs->peer.v4.sin_addr.s_addr, ecn,
				    ip4_dst_hoplimit(dst), htons(IP_DF),
				    qs->local.v4.sin_port, qs->peer.v4.sin_port,
				    false, false);
	local_bh_enable();
	return 0;
}

/**
 * quic_path_skb_alloc - a datagram for quic_path_send_to()
 * @len: its payload length
 *
 * Room is reserved for the UDP and IP headers.  Any context.
 *
 * Return: the skb, @len bytes of tailroom, or NULL.
 */
struct sk_buff *quic_path_skb_alloc(u32 len)
{
	u32 room = MAX_HEADER + sizeof(struct ipv6hdr) + sizeof(struct udphdr);
	struct sk_buff *skb = alloc_skb(room + len, GFP_ATOMIC);

	if (skb)
		skb_reserve(skb, room);
	return skb;
}

/**
 * quic_path_send_to - send a datagram that belongs to no connection
 * @usk: the UDP tunnel socket it leaves from
 * @skb: the datagram, skb->data at the UDP payload; consumed
 * @local: source address and port
 * @peer: destination address and port
 *
 * For Version Negotiation (RFC 9000 Section 6.1).  Any context.
 */
void quic_path_send_to(struct sock *usk, struct sk_buff *skb,
		       const union quic_addr *local, const union quic_addr *peer)
{
	struct net *net = sock_net(usk);
	struct dst_entry *dst;
	struct flowi6 fl6;
	struct flowi4 fl4;
	struct rtable *rt;

	local_bh_disable();
	if (peer->sa.sa_family == AF_INET6) {
		memset(&fl6, 0, sizeof(fl6));
		fl6.daddr = peer->v6.sin6_addr;
		fl6.saddr = local->v6.sin6_addr;
		fl6.flowi6_oif = peer->v6.sin6_scope_id;
		fl6.flowi6_proto = IPPROTO_UDP;
		dst = ip6_dst_lookup_flow(net, usk, &fl6, NULL);
		if (IS_ERR(dst))
			goto drop;
		udp_tunnel6_xmit_skb(dst, usk, skb, NULL, &fl6.saddr,
				     &fl6.daddr, 0, ip6_dst_hoplimit(dst), 0,
				     local->v6.sin6_port, peer->v6.sin6_port,
				     false);
	} else {
		memset(&fl4, 0, sizeof(fl4));
		fl4.daddr = peer->v4.sin_addr.s_addr;
		fl4.saddr = local->v4.sin_addr.s_addr;
		fl4.flowi4_proto = IPPROTO_UDP;
		rt = ip_route_output_key(net, &fl4);
		if (IS_ERR(rt))
			goto drop;
		udp_tunnel_xmit_skb(rt, usk, skb, fl4.saddr, fl4.daddr, 0,
				    ip4_dst_hoplimit(&rt->dst), htons(IP_DF),
				    local->v4.sin_port, peer->v4.sin_port,
				    false, false);
	}
	local_bh_enable();
	return;
drop:
	local_bh_enable();
	kfree_skb(skb);
}

/*
 * Bytes the next datagram may hold: the path MSS, or less while the
 * anti-amplification limit applies (RFC 9000 Section 8.1).
 */
u32 quic_path_room(struct sock *sk)
{
	struct quic_path *path = &quic_sk(sk)->path;
	u64 limit;

	if (path->validated)
		return path->mss;
	limit = path->bytes_recv * QUIC_AMPLIFICATION;
	if (limit <= path->bytes_sent)
		return 0;
	return min_t(u64, path->mss, limit - path->bytes_sent);
}

/*
 * RFC 9000 Section 8.1: what the peer sent raises what may be sent to it.
 * Only datagrams from the path's peer count: routed by Destination ID,
 * datagrams from any address reach the connection, and one who spoofed a
 * victim's address in the first Initial must not raise the budget toward
 * the victim by sending from its own.  The same holds for the preferred
 * address's path while a server validates it (quic_sock.alt).
 */
void quic_path_on_recv(struct sock *sk, const struct sk_buff *skb, u32 bytes)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_alt *a = &qs->alt;
	union quic_addr from, to;

	if (qs->path.validated && !(a->active && a->limited))
		return;
	quic_rcv_peer(skb, &from);
	if (!qs->path.validated && quic_addr_equal(&from, &qs->peer))
		qs->path.bytes_recv += bytes;
	if (a->active && a->limited && quic_addr_equal(&from, &a->peer)) {
		quic_rcv_local(skb, &to);
		if (quic_addr_equal(&to, &a->local))
			a->bytes_recv += bytes;
	}
}

/* A 9000-byte jumbo frame's UDP payload over IPv4: the largest probed. */
#define QUIC_PL_MAX_SIZE	8972

/* The largest UDP payload the route's MTU and the peer's
 * max_udp_payload_size allow, 0 without a route.
 */
static u32 quic_pl_max(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct dst_entry *dst = __sk_dst_get(sk);
	u32 hdr = sizeof(struct udphdr), mtu, max;

	if (!dst)
		return 0;
	hdr += qs->peer.sa.sa_family == AF_INET6 ? sizeof(struct ipv6hdr) :
						   sizeof(struct iphdr);
	mtu = dst_mtu(dst);
	if (mtu <= hdr)
		return 0;
	max = min_t(u32, mtu - hdr, QUIC_PL_MAX_SIZE);
	if (qs->remote_tp.max_udp_payload_size)
		max = min_t(u32, max, qs->remote_tp.max_udp_payload_size);
	return max;
}

static void quic_pl_done(struct quic_pl *pl, u64 now, u32 interval)
{
	pl->state = QUIC_PL_DONE;
	pl->next = now + interval;
}

/* A new search between the current size and what the route allows. */
static bool quic_pl_search(struct sock *sk, u64 now)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pl *pl = &qs->path.pl;
	u32 max = quic_pl_max(sk);

	if (max <= qs->path.mss)
		return false;
	pl->low = qs->path.mss;
	pl->high = max + 1;
	pl->probe = 0;
	pl->lost = 0;
	pl->state = QUIC_PL_SEARCH;
	pl->next = now;
	return true;
}

/**
 * quic_pl_want - the size of a PMTU probe to send now
 * @sk: the socket, locked
 * @now: the time (us)
 *
 * Once the handshake is confirmed and the peer's address validated, the
 * search probes the largest size the route and the peer allow first, as
 * most paths carry what the first hop does; when that is lost
 * QUIC_PL_MAX_PROBES times, it halves the range between the largest size
 * acknowledged and the smallest lost until they are QUIC_PL_STEP apart.
 * One probe is in flight at a time.  After plpmtud_probe_interval the
 * search starts again above the size found (RFC 8899 Section 5.1.1, the
 * PMTU_RAISE_TIMER), in case the path got wider.
 *
 * Return: the UDP payload size to probe, 0 for none.
 */
u16 quic_pl_want(struct sock *sk, u64 now)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pl *pl = &qs->path.pl;
	u32 interval = qs->config.plpmtud_probe_interval;

	if (!interval || !qs->handshake_confirmed || !qs->path.validated)
		return 0;
	if (pl->state == QUIC_PL_OFF && !quic_pl_search(sk, now))
		return 0;
	if (pl->state == QUIC_PL_DONE) {
		if (now < pl->next)
			return 0;
		if (!quic_pl_search(sk, now)) {
			quic_pl_done(pl, now, interval);
			return 0;
		}
	}
	if (pl->probe || now < pl->next)
		return 0;
	if (pl->high - 1 == quic_pl_max(sk))
		return pl->high - 1;
	return (pl->low + pl->high) / 2;
}

/* The probe of @size bytes left as packet @pn. */
void quic_pl_sent(struct sock *sk, s64 pn, u16 size)
{
	struct quic_pl *pl = &quic_sk(sk)->path.pl;

	pl->probe = size;
	pl->probe_pn = pn;
	pr_debug("quic: sk %p PMTU probe of %u bytes in packet %lld\n", sk,
		 size, pn);
}

static void quic_pl_next(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pl *pl = &qs->path.pl;
	u64 now = quic_now();

	pl->probe = 0;
	if (pl->high - pl->low <= QUIC_PL_STEP)
		quic_pl_done(pl, now, qs->config.plpmtud_probe_interval);
	else
		pl->next = now;
}

/**
 * quic_pl_acked - a 1-RTT packet was acknowledged
 * @sk: the socket, locked
 * @pn: its packet number
 *
 * When it was the probe, the path carries its size: datagrams grow to it.
 */
void quic_pl_acked(struct sock *sk, s64 pn)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pl *pl = &qs->path.pl;

	if (!pl->probe || pn != pl->probe_pn)
		return;
	pl->low = pl->probe;
	pl->lost = 0;
	qs->path.mss = pl->low;
	qs->cong.mss = pl->low;
	pr_debug("quic: sk %p PMTU %u bytes\n", sk, pl->low);
	quic_pl_next(sk);
}

/**
 * quic_pl_lost - a 1-RTT packet was declared lost
 * @sk: the socket, locked
 * @pn: its packet number
 *
 * Return: true if it was the probe, whose loss says nothing about
 * congestion (RFC 9000 Section 14.4).
 */
bool quic_pl_lost(struct sock *sk, s64 pn)
{
	struct quic_pl *pl = &quic_sk(sk)->path.pl;

	if (!pl->probe || pn != pl->probe_pn)
		return false;
	if (++pl->lost >= QUIC_PL_MAX_PROBES) {
		pr_debug("quic: sk %p PMTU below %u bytes\n", sk, pl->probe);
		pl->high = pl->probe;
		pl->lost = 0;
	}
	quic_pl_next(sk);
	return true;
}

/**
 * quic_pl_blackhole - nothing gets through: the path may have narrowed
 * @sk: the socket, locked
 *
 * RFC 8899 Section 4.3, black hole detection: after QUIC_PL_BLACKHOLE_PTOS
 * probe timeouts in a row, datagrams fall back to QUIC_PATH_MIN_MTU, so
 * that the PTO probes that follow (their frames cut to the new size by
 * output.c) may get through, and the search starts again.  On a path that
 * was merely congested or cut off for a while, the search finds the old
 * size again.
 */
void quic_pl_blackhole(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pl *pl = &qs->path.pl;

	if (pl->state == QUIC_PL_OFF || qs->path.mss <= QUIC_PATH_MIN_MTU)
		return;
	pr_debug("quic: sk %p PMTU %u bytes: black hole, back to %u\n", sk,
		 qs->path.mss, QUIC_PATH_MIN_MTU);
	qs->path.mss = QUIC_PATH_MIN_MTU;
	qs->cong.mss = QUIC_PATH_MIN_MTU;
	pl->probe = 0;
	pl->state = QUIC_PL_OFF;
}

/*
 * Peer address changes (RFC 9000 Section 9.3).  A server follows the peer
 * to the address of its highest-numbered non-probing packet at once (so
 * that a NAT rebinding costs no round trip), but sends there no more than
 * three times what it received from it until a PATH_CHALLENGE sent there
 * is answered (Section 8.2).  If no answer comes within three PTOs of the
 * new path, it goes back to the last validated address (Section 9.3.2): an
 * attacker who copies a packet with a spoofed source address moves nothing
 * for long.  Once validated, a new IP address gets a fresh congestion
 * controller and RTT estimate; a new port alone, a NAT rebinding, keeps
 * them (Section 9.4).  A packet with probing frames only (Section 9.1)
 * moves nothing; a PATH_CHALLENGE is answered on the path it came on,
 * from the address it was sent to (Section 8.2.2), within three times
 * the datagram that carried it.
 *
 * A client moves itself with CONNECTION_MIGRATION (Section 9.2): its packets
 * leave from the new local address at once, to a destination connection ID
 * not used before (Section 9.5), with a PATH_CHALLENGE.  The answer makes
 * the move final (the earlier IDs are retired, the congestion controller
 * starts afresh unless only the port changed, and the application gets the
 * MIGRATION event); no answer within three PTOs, and the old address is
 * used again.  The server follows by its own rules above, and reports the
 * move to its application in turn.
 *
 * A server's preferred address (Section 9.6) is bound when it is set, while
 * the connection is established.  Once the handshake is confirmed, the
 * client probes it with a PATH_CHALLENGE from its address in use, to the
 * connection ID of sequence number 1 the transport parameter carried; the
 * answer moves it there (MIGRATION event, local_migration 0), no answer
 * within three PTOs leaves it where it is.  The server answers the probe
 * from the preferred address and probes the path back to the client in
 * turn (Section 9.6.2); it moves (MIGRATION event, local_migration 1) once
 * that path is validated and the client's newest non-probing packet came
 * to the preferred address, and keeps sending from the old address until
 * then.  A client ignores a server that moves otherwise (Section 9).
 */

/* RFC 9000 Section 8.2.4: three times the larger of the two PTOs. */
static u64 quic_path_validation_time(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	u32 init = qs->config.initial_smoothed_rtt;
	u32 fresh = init + max(2 * init, (u32)QUIC_GRANULARITY);

	return 3ULL * max(quic_cong_pto(&qs->cong, true), fresh);
}

static void quic_path_switch(struct sock *sk, const union quic_addr *to)
{
	struct quic_sock *qs = quic_sk(sk);

	qs->peer = *to;
	sk_dst_reset(sk);
	qs->path.dst_cookie = 0;
}

static bool quic_addr_same_host(const union quic_addr *a,
				const union quic_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET6)
		return ipv6_addr_equal(&a->v6.sin6_addr, &b->v6.sin6_addr);
	return a->v4.sin_addr.s_addr == b->v4.sin_addr.s_addr;
}

static bool quic_addr_any(const union quic_addr *a)
{
	if (a->sa.sa_family == AF_INET6)
		return ipv6_addr_any(&a->v6.sin6_addr);
	return !a->v4.sin_addr.s_addr;
}

/* @us, bound to the wildcard or to @local itself, can send from @local. */
static bool quic_udp_sends_from(const struct quic_udp_sock *us,
				const union quic_addr *local)
{
	if (quic_addr_equal(&us->addr, local))
		return true;
	if (!quic_addr_any(&us->addr) ||
	    quic_addr_port(&us->addr) != quic_addr_port(local))
		return false;
	return us->addr.sa.sa_family == local->sa.sa_family ||
	       (us->addr.sa.sa_family == AF_INET6 && !us->v6only);
}

/* A UDP socket the socket holds that sends from @local, NULL if none. */
static struct quic_udp_sock *quic_path_udp_for(struct quic_sock *qs,
					       const union quic_addr *local)
{
	struct quic_udp_sock *held[] = {
		qs->udp, qs->pref_udp, qs->move.prev_udp,
	};
	int i;

	if (quic_addr_equal(local, &qs->local))
		return qs->udp;
	for (i = 0; i < ARRAY_SIZE(held); i++)
		if (held[i] && quic_udp_sends_from(held[i], local))
			return held[i];
	return NULL;
}

/**
 * quic_path_challenge_recv - a PATH_CHALLENGE arrived
 * @sk: the socket, locked
 * @skb: the datagram it came in
 * @len: the datagram's length
 * @data: its Data
 *
 * RFC 9000 Section 8.2.2: the PATH_RESPONSE goes on the path the challenge
 * came on, from the address it was sent to.  On the path in use it waits
 * in quic_sock.path for the next packet; on another one, in quic_sock.resp
 * for a datagram of its own, at most three times @len (Section 8.1).
 * Only the latest challenge is answered (one response per challenge is
 * allowed, not one for each), so that a flood of them costs no memory.
 */
void quic_path_challenge_recv(struct sock *sk, const struct sk_buff *skb,
			      u32 len, const u8 *data)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_alt *r = &qs->resp;
	union quic_addr from, to;
	struct quic_udp_sock *us;

	quic_rcv_peer(skb, &from);
	quic_rcv_local(skb, &to);
	if (quic_addr_equal(&from, &qs->peer) &&
	    quic_addr_equal(&to, &qs->local)) {
		memcpy(qs->path.response, data, QUIC_PATH_CHALLENGE_LEN);
		qs->path.response_pending = 1;
		return;
	}
	us = quic_path_udp_for(qs, &to);
	if (!us || !qs->dest.active)
		return;
	r->local = to;
	r->peer = from;
	r->udp = us;
	r->dcid = qs->dest.active->key.id;
	r->bytes_recv = len;
	r->bytes_sent = 0;
	r->limited = 1;
	memcpy(r->data, data, QUIC_PATH_CHALLENGE_LEN);
	r->pending = 1;
}

/* A datagram on @a's path; true if it was sent. */
static bool quic_path_alt_send(struct sock *sk, struct quic_path_alt *a,
			       const u8 *response, const u8 *challenge)
{
	u32 room = QUIC_PATH_MIN_MTU, n;
	u64 limit;

	if (a->limited) {
		limit = a->bytes_recv * QUIC_AMPLIFICATION;
		if (limit <= a->bytes_sent)
			return false;
		room = min_t(u64, room, limit - a->bytes_sent);
	}
	n = quic_output_path_frames(sk, a, response, challenge, room);
	a->bytes_sent += n;
	return n;
}

static bool quic_path_alt_same(const struct quic_path_alt *a,
			       const struct quic_path_alt *b)
{
	return quic_addr_equal(&a->local, &b->local) &&
	       quic_addr_equal(&a->peer, &b->peer);
}

/**
 * quic_path_alt_flush - send the path frames owed on other paths
 * @sk: the socket, locked
 *
 * The challenge on the path being validated (quic_sock.alt), and the
 * response to a challenge that came on another path than the one in use
 * (quic_sock.resp), in one datagram when both go on the same path.  A
 * response the anti-amplification limit holds back is dropped: the peer
 * challenges again.
 */
void quic_path_alt_flush(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_alt *r = &qs->resp, *a = &qs->alt;
	bool both;

	if (a->active && a->pending) {
		both = r->pending && quic_path_alt_same(a, r);
		if (quic_path_alt_send(sk, a, both ? r->data : NULL, a->data)) {
			a->pending = 0;
			if (both)
				r->pending = 0;
			trace_quic_path(sk, QUIC_TRACE_PATH_CHALLENGE, &a->peer);
		}
	}
	if (r->pending) {
		quic_path_alt_send(sk, r, r->data, NULL);
		r->pending = 0;
	}
}

/* Start validating the path from @local to @peer, not yet used. */
static void quic_path_alt_start(struct sock *sk, struct quic_udp_sock *us,
				const union quic_addr *local,
				const union quic_addr *peer,
				const struct quic_conn_id_entry *dcid,
				bool limited)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_alt *a = &qs->alt;

	memset(a, 0, sizeof(*a));
	a->udp = us;
	a->local = *local;
	a->peer = *peer;
	a->dcid = dcid->key.id;
	a->dcid_seq = dcid->seq;
	a->limited = limited;
	get_random_bytes(a->data, sizeof(a->data));
	a->pending = 1;
	a->active = 1;
	a->deadline = quic_now() + quic_path_validation_time(sk);
	quic_timer_reset(sk, QUIC_TIMER_PATH, quic_cong_pto(&qs->cong, true));
	pr_debug("%s: sk %p probes %pISpc -> %pISpc\n", __func__, sk, local,
		 peer);
}

static void quic_path_move_start(struct sock *sk, const union quic_addr *from,
				 u32 len)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_move *m = &qs->move;
	struct quic_path_alt *r = &qs->resp;

	if (!m->active)
		m->prev = qs->peer;
	m->port_only = quic_addr_same_host(from, &m->prev);
	quic_path_switch(sk, from);
	quic_ecn_reset(&qs->path);
	qs->path.validated = 0;
	qs->path.bytes_recv = len;
	qs->path.bytes_sent = 0;
	/* The answer to a challenge that came with the move: on this path */
	if (r->pending && quic_addr_equal(&r->peer, from) &&
	    quic_addr_equal(&r->local, &qs->local)) {
		memcpy(qs->path.response, r->data, QUIC_PATH_CHALLENGE_LEN);
		qs->path.response_pending = 1;
		r->pending = 0;
	}
	get_random_bytes(m->challenge, sizeof(m->challenge));
	m->challenge_pending = 1;
	m->active = 1;
	m->deadline = quic_now() + quic_path_validation_time(sk);
	quic_timer_reset(sk, QUIC_TIMER_PATH, quic_cong_pto(&qs->cong, true));
	trace_quic_path(sk, QUIC_TRACE_PATH_MOVED, from);
	pr_debug("%s: sk %p peer moved to %pISpc%s\n", __func__, sk, from,
		 m->port_only ? " (port only)" : "");
}

/*
 * Our local move starts or ends: the UDP socket and address in use and the
 * other pair swap places; the one left behind is released later.
 */
static void quic_path_local_swap(struct sock *sk, struct quic_udp_sock **us,
				 union quic_addr *local)
{
	struct quic_sock *qs = quic_sk(sk);

	swap(qs->udp, *us);
	swap(qs->local, *local);
	inet_sk(sk)->inet_sport = quic_addr_port(&qs->local);
	inet_sk(sk)->inet_num = ntohs(inet_sk(sk)->inet_sport);
	sk_dst_reset(sk);
	qs->path.dst_cookie = 0;
}

/* Back to the last validated path, without validation. */
static void quic_path_move_back(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_move *m = &qs->move;

	if (m->local) {
		quic_path_local_swap(sk, &m->prev_udp, &m->prev_local);
		trace_quic_path(sk, QUIC_TRACE_PATH_BACK, &qs->local);
	} else {
		trace_quic_path(sk, QUIC_TRACE_PATH_BACK, &m->prev);
		quic_path_switch(sk, &m->prev);
	}
	quic_ecn_reset(&qs->path);
	qs->path.validated = 1;
	m->active = 0;
	m->local = 0;
	m->challenge_pending = 0;
	quic_timer_stop(sk, QUIC_TIMER_PATH);
}

/*
 * A path is validated and in use: the IDs used on the old one are not used
 * again (Section 9.5), and a new IP address starts the congestion
 * controller, RTT estimate and datagram size afresh (Section 9.4).
 */
static void quic_path_validated(struct sock *sk, bool port_only, bool retire,
				u8 local)
{
	struct quic_sock *qs = quic_sk(sk);

	qs->path.validated = 1;
	if (!port_only) {
		quic_pl_blackhole(sk);	/* the datagram size is searched again */
		quic_cong_reset(&qs->cong, qs->config.initial_smoothed_rtt);
	}
	if (retire &&
	    !quic_conn_id_dest_retire_prior(&qs->dest, qs->dest.active->seq))
		quic_frame_retire_pending(sk);
	quic_event_queue(sk, QUIC_EVENT_CONNECTION_MIGRATION, &local, 1);
}

/*
 * RFC 9000 Section 9.6: to the preferred address's path, validated.  A
 * server sends from the preferred address from now on (the old UDP socket
 * and address stay in quic_sock.pref_udp and .pref until the end); a client
 * sends to it, to the connection ID the transport parameter gave.
 */
static void quic_path_pref_switch(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_alt *a = &qs->alt;
	struct quic_conn_id_entry *e = quic_conn_id_find(&qs->dest, a->dcid_seq);
	bool port_only = quic_addr_same_host(&a->peer, &qs->peer) &&
			 quic_addr_same_host(&a->local, &qs->local);
	bool retire = false;

	if (qs->is_serv)
		quic_path_local_swap(sk, &qs->pref_udp, &qs->pref);
	quic_path_switch(sk, &a->peer);
	qs->pref_done = 1;
	a->active = 0;
	qs->move.active = 0;		/* a peer move it supersedes */
	qs->move.challenge_pending = 0;
	quic_timer_stop(sk, QUIC_TIMER_PATH);
	if (e && e != qs->dest.active) {
		qs->dest.active = e;
		retire = true;
	}
	trace_quic_path(sk, QUIC_TRACE_PATH_VALIDATED,
			qs->is_serv ? &qs->local : &qs->peer);
	pr_debug("%s: sk %p to %pISpc -> %pISpc\n", __func__, sk, &qs->local,
		 &qs->peer);
	quic_path_validated(sk, port_only, retire, qs->is_serv);
}

/* Section 9.5: a destination ID not used yet, for a new path. */
static struct quic_conn_id_entry *quic_path_fresh_dcid(struct quic_sock *qs)
{
	struct quic_conn_id_entry *e;

	quic_conn_id_for_each(e, &qs->dest)
		if (e->seq > qs->dest.active->seq)
			return e;
	return NULL;
}

/* Server: a packet came to the preferred address (Section 9.6.2). */
static void quic_path_pref_rcv(struct sock *sk, const union quic_addr *from,
			       u32 len, bool newest)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_alt *a = &qs->alt;
	struct quic_conn_id_entry *dcid;

	if (!qs->handshake_confirmed || !quic_is_established(sk))
		return;
	if (!a->active || !quic_addr_equal(from, &a->peer)) {
		dcid = quic_path_fresh_dcid(qs) ?: qs->dest.active;
		quic_path_alt_start(sk, qs->pref_udp, &qs->pref, from, dcid,
				    true);
		a->bytes_recv = len;
	}
	if (newest)
		a->nonprobing = 1;
	if (a->validated && a->nonprobing)
		quic_path_pref_switch(sk);
}

/**
 * quic_path_peer_check - where a 1-RTT packet of the peer came from
 * @sk: the socket, locked
 * @skb: the datagram it came in
 * @len: the datagram's length
 * @newest: it is the peer's highest-numbered packet so far, and holds a
 *	non-probing frame (RFC 9000 Section 9.1)
 *
 * Called for each 1-RTT packet, once its frames are processed.
 */
void quic_path_peer_check(struct sock *sk, const struct sk_buff *skb, u32 len,
			  bool newest)
{
	struct quic_sock *qs = quic_sk(sk);
	union quic_addr from, to;

	quic_rcv_peer(skb, &from);
	if (qs->is_serv && qs->pref_udp && !qs->pref_done) {
		quic_rcv_local(skb, &to);
		if (quic_addr_equal(&to, &qs->pref)) {
			quic_path_pref_rcv(sk, &from, len, newest);
			return;
		}
	}
	if (!newest || likely(quic_addr_equal(&from, &qs->peer)))
		return;
	if (!qs->is_serv || !qs->handshake_confirmed ||
	    !quic_is_established(sk) || qs->move.local ||
	    from.sa.sa_family != qs->peer.sa.sa_family)
		return;
	if (qs->move.active && quic_addr_equal(&from, &qs->move.prev)) {
		quic_path_move_back(sk);	/* it was validated before */
		return;
	}
	quic_path_move_start(sk, &from, len);
}

/* The pending PATH_CHALLENGE (RFC 9000 Section 19.17), if it fits. */
u32 quic_path_challenge_build(struct sock *sk, u8 *p, u32 room)
{
	struct quic_path_move *m = &quic_sk(sk)->move;
	u32 n;

	if (!m->challenge_pending)
		return 0;
	n = quic_frame_path_put(p, room, QUIC_FRAME_PATH_CHALLENGE,
				m->challenge);
	if (n) {
		m->challenge_pending = 0;
		trace_quic_path(sk, QUIC_TRACE_PATH_CHALLENGE, &quic_sk(sk)->peer);
	}
	return n;
}

/**
 * quic_path_response_recv - a PATH_RESPONSE arrived
 * @sk: the socket, locked
 * @data: its Data
 *
 * RFC 9000 Section 8.2.3: the answer to our challenge validates the path
 * it was sent on, whatever path the answer came on.  Anything else is
 * ignored.
 */
void quic_path_response_recv(struct sock *sk, const u8 *data)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_move *m = &qs->move;
	struct quic_path_alt *a = &qs->alt;
	u8 local = m->local;

	if (a->active &&
	    !crypto_memneq(data, a->data, QUIC_PATH_CHALLENGE_LEN)) {
		a->validated = 1;
		a->pending = 0;
		if (!qs->is_serv || a->nonprobing)
			quic_path_pref_switch(sk);
		return;
	}
	if (!m->active ||
	    crypto_memneq(data, m->challenge, QUIC_PATH_CHALLENGE_LEN))
		return;
	m->active = 0;
	m->local = 0;
	m->challenge_pending = 0;
	quic_timer_stop(sk, QUIC_TIMER_PATH);
	trace_quic_path(sk, QUIC_TRACE_PATH_VALIDATED,
			local ? &qs->local : &qs->peer);
	pr_debug("%s: sk %p %s address %pISpc validated\n", __func__, sk,
		 local ? "local" : "peer", local ? &qs->local : &qs->peer);
	quic_path_validated(sk, m->port_only, local, local);
}

/**
 * quic_path_move_timeout - the path timer fired
 * @sk: the socket, locked
 *
 * Another PATH_CHALLENGE, one PTO after the last, until the validation
 * time is over; then back to the last validated address, or, for a path
 * probed before use, nothing changes.
 */
void quic_path_move_timeout(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_move *m = &qs->move;
	struct quic_path_alt *a = &qs->alt;
	u64 now = quic_now();

	if (m->active && now >= m->deadline) {
		pr_debug("%s: sk %p %pISpc not validated, back to %pISpc\n",
			 __func__, sk, &qs->peer, &m->prev);
		quic_path_move_back(sk);
	} else if (m->active) {
		m->challenge_pending = 1;
	}
	if (a->active && now >= a->deadline) {
		pr_debug("%s: sk %p %pISpc not validated\n", __func__, sk,
			 &a->peer);
		trace_quic_path(sk, QUIC_TRACE_PATH_BACK, &qs->peer);
		a->active = 0;
		a->pending = 0;
		if (!qs->is_serv)
			qs->pref_done = 1;	/* the client tries once */
	} else if (a->active) {
		a->pending = 1;
	}
	quic_output_flush(sk);
	if (m->active || a->active)
		quic_timer_reset(sk, QUIC_TIMER_PATH,
				 quic_cong_pto(&qs->cong, true));
}

/* Release what an earlier local move of a client kept. */
static void quic_path_prev_put(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_move *m = &qs->move;

	if (!m->prev_udp)
		return;
	if (qs->resp.udp == m->prev_udp) {
		qs->resp.udp = NULL;
		qs->resp.pending = 0;
	}
	quic_udp_sock_put(sock_net(sk), m->prev_udp);
	m->prev_udp = NULL;
}

/**
 * quic_path_migrate - move the connection to a new local address
 * @sk: the socket, locked, an established client
 * @a: the new local address (a specific one, with a port: the caller
 *	refused the wildcard)
 *
 * CONNECTION_MIGRATION on an established connection (RFC 9000 Section
 * 9.2).  Process context: may sleep (binding the new UDP socket).  On an
 * error nothing changed.
 *
 * Return: 0; -EINVAL if the move is not allowed (a server, the handshake
 * not confirmed, the peer's disable_active_migration, another family, the
 * current address, or no route from it); -EAGAIN while a move or the
 * probe of the server's preferred address is under way, or the peer has
 * given no spare connection ID; a bind error.
 */
int quic_path_migrate(struct sock *sk, const union quic_addr *a)
{
	bool v6only = a->sa.sa_family == AF_INET6 && sk->sk_ipv6only;
	struct quic_sock *qs = quic_sk(sk);
	struct quic_path_move *m = &qs->move;
	struct quic_conn_id_entry *dcid;
	struct quic_udp_sock *us;
	int err;

	if (qs->is_serv || !qs->handshake_confirmed ||
	    qs->remote_tp.disable_active_migration ||
	    a->sa.sa_family != qs->local.sa.sa_family ||
	    quic_addr_equal(a, &qs->local))
		return -EINVAL;
	if (m->active || qs->alt.active)
		return -EAGAIN;
	dcid = quic_path_fresh_dcid(qs);
	if (!dcid)
		return -EAGAIN;
	err = quic_udp_sock_get(sock_net(sk), a, READ_ONCE(sk->sk_bound_dev_if),
				v6only, &us);
	if (err)
		return err;
	quic_path_prev_put(sk);	/* what an earlier move left behind */
	m->prev_udp = us;
	m->prev_local = us->addr;
	quic_path_local_swap(sk, &m->prev_udp, &m->prev_local);
	err = quic_path_route(sk);
	if (err) {
		quic_path_local_swap(sk, &m->prev_udp, &m->prev_local);
		quic_udp_sock_put(sock_net(sk), m->prev_udp);
		m->prev_udp = NULL;
		return -EINVAL;
	}
	qs->dest.active = dcid;
	quic_ecn_reset(&qs->path);
	m->port_only = quic_addr_same_host(&qs->local, &m->prev_local);
	get_random_bytes(m->challenge, sizeof(m->challenge));
	m->challenge_pending = 1;
	m->active = 1;
	m->local = 1;
	m->deadline = quic_now() + quic_path_validation_time(sk);
	quic_timer_reset(sk, QUIC_TIMER_PATH, quic_cong_pto(&qs->cong, true));
	trace_quic_path(sk, QUIC_TRACE_PATH_MOVED, &qs->local);
	pr_debug("%s: sk %p moves from %pISpc to %pISpc\n", __func__, sk,
		 &m->prev_local, &qs->local);
	quic_output_flush(sk);
	return 0;
}

/**
 * quic_path_pref_set - record a server's preferred address
 * @sk: the socket, locked, a server while ESTABLISHING
 * @a: the address (a specific one, with a port), of either family
 *
 * CONNECTION_MIGRATION while ESTABLISHING (RFC 9000 Section 9.6, ABI
 * reference Section 5.2 step 5): the address is bound at once, so that a
 * bind error reaches the caller, and gets the connection ID of sequence
 * number 1 that the preferred_address transport parameter carries.  A
 * second call replaces the address and keeps the ID.  Process context.  On
 * an error nothing changed.
 *
 * Return: 0; -EINVAL for the current local address or when the client
 * sent disable_active_migration; a bind error; -ENOMEM.
 */
int quic_path_pref_set(struct sock *sk, const union quic_addr *a)
{
	bool v6only = a->sa.sa_family == AF_INET6 && sk->sk_ipv6only;
	int ifindex = READ_ONCE(sk->sk_bound_dev_if);
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id_entry *e;
	struct quic_udp_sock *us;
	int err;

	if (!qs->is_serv || qs->remote_tp.disable_active_migration ||
	    quic_addr_equal(a, &qs->local))
		return -EINVAL;
	if (a->sa.sa_family == AF_INET6 && a->v6.sin6_scope_id)
		ifindex = a->v6.sin6_scope_id;
	err = quic_udp_sock_get(sock_net(sk), a, ifindex, v6only, &us);
	if (err)
		return err;
	e = quic_conn_id_find(&qs->source, 1);
	if (!e) {
		e = quic_conn_id_source_add(&qs->source, NULL, GFP_KERNEL);
		if (IS_ERR_OR_NULL(e) || e->seq != 1) {
			quic_udp_sock_put(sock_net(sk), us);
			return e && IS_ERR(e) ? PTR_ERR(e) : -EINVAL;
		}
		/* Sent in the transport parameter: the peer may retire it. */
		quic_conn_id_source_sent(&qs->source, e->seq);
	}
	if (qs->pref_udp)
		quic_udp_sock_put(sock_net(sk), qs->pref_udp);
	qs->pref_udp = us;
	qs->pref = *a;
	pr_debug("%s: sk %p preferred address %pISpc\n", __func__, sk, a);
	return 0;
}

/**
 * quic_path_pref_build - the preferred_address transport parameter
 * @sk: the socket, locked
 * @pa: filled in: the address in the entry of its family (the other one
 *	all zero), the connection ID of sequence number 1 and its token
 *
 * Return: true if a server has a preferred address to advertise.
 */
bool quic_path_pref_build(struct sock *sk, struct quic_tp_pref_addr *pa)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id_entry *e;

	if (!qs->is_serv || !qs->pref_udp || qs->pref_done)
		return false;
	e = quic_conn_id_find(&qs->source, 1);
	if (!e)
		return false;
	memset(pa, 0, sizeof(*pa));
	if (qs->pref.sa.sa_family == AF_INET6) {
		pa->v6.sin6_addr = qs->pref.v6.sin6_addr;
		pa->v6.sin6_port = qs->pref.v6.sin6_port;
	} else {
		pa->v4.sin_addr = qs->pref.v4.sin_addr;
		pa->v4.sin_port = qs->pref.v4.sin_port;
	}
	pa->cid = e->key.id;
	memcpy(pa->token, e->token, QUIC_CONN_ID_TOKEN_LEN);
	return true;
}

/**
 * quic_path_pref_recv - a server's preferred_address, on the client
 * @sk: the socket, locked, a client while ESTABLISHING
 * @pa: the transport parameter
 *
 * Its connection ID becomes sequence number 1 of the destination set, with
 * its stateless reset token; the entry of the family in use, unless all
 * zero (absent) or the address in use, is probed once the handshake is
 * confirmed (quic_path_pref_start()).  An entry of the other family is not
 * used: the client would need another local address family.
 *
 * Return: 0, or -EINVAL if the ID cannot be taken (TRANSPORT_PARAMETER_ERROR).
 */
int quic_path_pref_recv(struct sock *sk, const struct quic_tp_pref_addr *pa)
{
	struct quic_sock *qs = quic_sk(sk);
	union quic_addr a;

	if (quic_conn_id_dest_add(&qs->dest, 1, 0, &pa->cid, pa->token,
				  GFP_KERNEL))
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	if (qs->peer.sa.sa_family == AF_INET6) {
		if (!ipv6_addr_any(&pa->v6.sin6_addr) && pa->v6.sin6_port) {
			a.v6.sin6_family = AF_INET6;
			a.v6.sin6_addr = pa->v6.sin6_addr;
			a.v6.sin6_port = pa->v6.sin6_port;
		}
	} else if (pa->v4.sin_addr.s_addr && pa->v4.sin_port) {
		a.v4.sin_family = AF_INET;
		a.v4.sin_addr = pa->v4.sin_addr;
		a.v4.sin_port = pa->v4.sin_port;
	}
	if (a.sa.sa_family && !quic_addr_equal(&a, &qs->peer))
		qs->pref = a;
	return 0;
}

/**
 * quic_path_pref_start - a client's handshake is confirmed
 * @sk: the socket, locked
 *
 * RFC 9000 Section 9.6.1: probe the server's preferred address, if it gave
 * one we use, from the address in use, to its connection ID.
 */
void quic_path_pref_start(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id_entry *e;

	if (qs->is_serv || !qs->pref.sa.sa_family || qs->pref_done ||
	    qs->move.active || qs->alt.active)
		return;
	e = quic_conn_id_find(&qs->dest, 1);
	if (!e)
		return;
	quic_path_alt_start(sk, qs->udp, &qs->local, &qs->pref, e, false);
}

/**
 * quic_path_free - release the UDP sockets a move or a preferred address
 *	kept
 * @sk: the socket, at its end (process context)
 */
void quic_path_free(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	quic_path_prev_put(sk);
	qs->resp.udp = NULL;
	qs->alt.udp = NULL;
	qs->alt.active = 0;
	if (qs->pref_udp) {
		quic_udp_sock_put(sock_net(sk), qs->pref_udp);
		qs->pref_udp = NULL;
	}
}
