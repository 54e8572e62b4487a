// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: the network path (RFC 9000 Sections 8, 9 and 14).
 *
 * The route to the peer is cached in sk_dst_cache and checked on every
 * transmission; datagrams leave through the UDP tunnel socket the QUIC
 * socket is bound to.  Before the peer's address is validated a server
 * sends at most three times what it received (RFC 9000 Section 8.1).
 */

#include <net/ip.h>
#include <net/ip6_route.h>
#include <net/route.h>
#include <net/udp_tunnel.h>

#include "quic.h"

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
 * quic_path_xmit - send datagrams to the peer
 * @sk: the socket
 * @skb: skb->data at the UDP payload; consumed
 * @gso_size: 0 for one datagram; else @skb holds datagrams of @gso_size
 *	bytes, the last one possibly shorter, sent with UDP GSO
 *
 * Return: 0, or -EHOSTUNREACH without a route.
 */
int quic_path_xmit(struct sock *sk, struct sk_buff *skb, u32 gso_size)
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
				     &qs->peer.v6.sin6_addr, 0,
				     ip6_dst_hoplimit(dst), 0,
				     qs->local.v6.sin6_port,
				     qs->peer.v6.sin6_port, false);
	else
		udp_tunnel_xmit_skb(container_of(dst, struct rtable, dst), usk,
				    skb, qs->local.v4.sin_addr.s_addr,
				    qs->peer.v4.sin_addr.s_addr, 0,
				    ip4_dst_hoplimit(dst), htons(IP_DF),
				    qs->local.v4.sin_port, qs->peer.v4.sin_port,
				    false, false);
	local_bh_enable();
	return 0;
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

void quic_path_on_recv(struct sock *sk, u32 bytes)
{
	struct quic_path *path = &quic_sk(sk)->path;

	if (!path->validated)
		path->bytes_recv += bytes;
}
