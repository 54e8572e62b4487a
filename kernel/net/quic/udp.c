// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: the UDP sockets underneath (RFC 9000 Section 1: QUIC runs over UDP).
 *
 * A bound QUIC port is backed by a kernel UDP tunnel socket.  The QUIC
 * sockets bound to the same address, port, device and IPV6_V6ONLY setting in
 * a network namespace share it; it is refcounted and released with the last
 * of them.  Port 0 always gets a new socket with an ephemeral port.  A port
 * held by another UDP user gives EADDRINUSE from the UDP bind.
 *
 * Get and put run in process context under quic_net.lock; the release waits
 * for an RCU grace period (udp_tunnel_sock_release()), so it must not run in
 * atomic context.
 *
 * Receive: the socket has UDP_GRO on, and its sk_data_ready takes each
 * datagram off the UDP receive queue as soon as it is queued (softirq).
 * Not encap_rcv: UDP segments every GSO skb before an encap_rcv sees it
 * (udp_unexpected_gso()), while a queued one stays whole.  So a GRO train,
 * or a UDP GSO skb from a local sender over veth, reaches input.c as one
 * skb of equal-sized datagrams (gso_size), and is taken apart there without
 * a copy.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/udp.h>
#include <net/udp.h>
#include <net/udp_tunnel.h>

#include "quic.h"
#include "input.h"

/* RFC 9000 Section 17.2: the header form and fixed bits of the first byte. */
#define QUIC_HDR_FORM_LONG	0x80
#define QUIC_HDR_FIXED_BIT	0x40

/* First byte, version, DCID length (RFC 9000 Section 17.2). */
#define QUIC_LONG_HDR_MIN_LEN	6
#define QUIC_MAX_CID_LEN	20	/* RFC 9000 Section 17.2, v1 and v2 */

/*
 * The Destination ID of a short header is QUIC_LOCAL_CID_LEN bytes long for
 * the CIDs this module issues.  A packet that holds a header protection
 * sample is longer (RFC 9001 Section 5.4.2), but a Stateless Reset may be
 * as short as 21 bytes (RFC 9000 Section 10.3): the connection decides.
 */
#define QUIC_LOCAL_CID_LEN	8
#define QUIC_SHORT_HDR_MIN_LEN	max(1 + QUIC_LOCAL_CID_LEN, 21)

/*
 * RFC 9000 Section 17.2: a long header carries version, DCID and SCID with
 * their lengths.  Version Negotiation (version 0, Section 17.2.1) has no
 * fixed bit and other versions may use longer CIDs (Section 17.2); for v1
 * and v2 the fixed bit is set and a CID longer than 20 bytes is invalid.
 */
static bool quic_long_hdr_valid(const struct sk_buff *skb, unsigned int off,
				unsigned int len, u8 first)
{
	bool known;
	u8 hdr[QUIC_LONG_HDR_MIN_LEN], scid_len, *p;
	unsigned int dcid_len;
	__be32 version;
	u32 ver;

	p = skb_header_pointer(skb, off, sizeof(hdr), hdr);
	if (!p)
		return false;
	memcpy(&version, &p[1], sizeof(version));
	ver = ntohl(version);
	dcid_len = p[5];
	known = ver == QUIC_VERSION_V1 || ver == QUIC_VERSION_V2;

	if (ver && !(first & QUIC_HDR_FIXED_BIT))
		return false;
	if (known && dcid_len > QUIC_MAX_CID_LEN)
		return false;
	if (len < QUIC_LONG_HDR_MIN_LEN + dcid_len + 1 ||
	    skb_copy_bits(skb, off + QUIC_LONG_HDR_MIN_LEN + dcid_len,
			  &scid_len, 1))
		return false;
	if (known && scid_len > QUIC_MAX_CID_LEN)
		return false;
	if (len < QUIC_LONG_HDR_MIN_LEN + dcid_len + 1 + scid_len)
		return false;
	/* The 1200-byte minimum of RFC 9000 Section 14.1 binds only what
	 * servers accept: checked on the listener and server paths.
	 */
	return true;
}

/* RFC 9000 Section 17.3.1: the fixed bit of a 1-RTT packet is set. */
static bool quic_short_hdr_valid(unsigned int len, u8 first)
{
	return (first & QUIC_HDR_FIXED_BIT) && len >= QUIC_SHORT_HDR_MIN_LEN;
}

/**
 * quic_udp_hdr_valid - whether a datagram starts with a QUIC header
 * @skb: the datagram
 * @off: where the UDP payload starts in @skb
 *
 * Return: true if the first packet's header is complete and well formed.
 */
bool quic_udp_hdr_valid(const struct sk_buff *skb, unsigned int off)
{
	unsigned int len;
	u8 first;

	if (skb->len <= off || skb_copy_bits(skb, off, &first, 1))
		return false;
	len = skb->len - off;
	if (first & QUIC_HDR_FORM_LONG)
		return quic_long_hdr_valid(skb, off, len, first);
	return quic_short_hdr_valid(len, first);
}

/*
 * sk_data_ready of the UDP socket: called by UDP after queueing a datagram
 * (or a GRO/GSO train of them), in softirq.  Everything queued is taken
 * and processed here, as udp_read_skb() takes it for sockmap.
 */
static void quic_udp_data_ready(struct sock *sk)
{
	struct quic_udp_sock *us;
	struct sk_buff *skb;
	int err;

	rcu_read_lock();
	us = rcu_dereference_sk_user_data(sk);
	for (;;) {
		skb = skb_recv_udp(sk, MSG_DONTWAIT, &err);
		if (!skb) {
			if (err == -EAGAIN)
				break;
			continue;	/* a socket error, now cleared */
		}
		if (udp_lib_checksum_complete(skb)) {
			__UDP_INC_STATS(sock_net(sk), UDP_MIB_CSUMERRORS, 0);
			__UDP_INC_STATS(sock_net(sk), UDP_MIB_INERRORS, 0);
			atomic_inc(&sk->sk_drops);
			kfree_skb(skb);
			continue;
		}
		/* skb->dev aliases UDP's dev_scratch, freed on dequeue */
		skb->dev = NULL;
		if (!us) {	/* being released */
			kfree_skb(skb);
			continue;
		}
		quic_input_encap_rcv(us, sk, skb);
	}
	rcu_read_unlock();
}

/* UDP_GRO (and the UDP GSO skbs it implies) on the kernel socket. */
static int quic_udp_gro_enable(struct socket *sock)
{
	int one = 1;

	return sock->ops->setsockopt(sock, SOL_UDP, UDP_GRO,
				     KERNEL_SOCKPTR(&one), sizeof(one));
}

/**
 * quic_udp_listener - the listener for new connections on a UDP socket
 * @us: the UDP socket
 *
 * Softirq context, under rcu_read_lock().  Sockets are freed after an RCU
 * grace period (SOCK_RCU_FREE), so a reference can be taken safely.
 *
 * Return: the listening socket with a reference held, or NULL.
 */
struct sock *quic_udp_listener(struct quic_udp_sock *us)
{
	struct sock *sk = rcu_dereference(us->listener);

	if (sk && !refcount_inc_not_zero(&sk->sk_refcnt))
		sk = NULL;
	return sk;
}

static void quic_udp_port_cfg(struct udp_port_cfg *cfg,
			      const union quic_addr *a, int ifindex,
			      bool v6only)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->family = a->sa.sa_family;
	cfg->bind_ifindex = ifindex;
	if (cfg->family == AF_INET6) {
		cfg->local_ip6 = a->v6.sin6_addr;
		cfg->local_udp_port = a->v6.sin6_port;
		cfg->ipv6_v6only = v6only;
		/* RFC 8200 Section 8.1: UDP over IPv6 needs checksums. */
		cfg->use_udp6_tx_checksums = 1;
		cfg->use_udp6_rx_checksums = 1;
	} else {
		cfg->local_ip = a->v4.sin_addr;
		cfg->local_udp_port = a->v4.sin_port;
		cfg->use_udp_checksums = 1;
	}
}

static int quic_udp_sock_create(struct net *net, const union quic_addr *a,
				int ifindex, bool v6only,
				struct quic_udp_sock **usp)
{
	struct udp_port_cfg cfg;
	struct quic_udp_sock *us;
	struct socket *sock;
	int err;

	us = kzalloc(sizeof(*us), GFP_KERNEL);
	if (!us)
		return -ENOMEM;

	quic_udp_port_cfg(&cfg, a, ifindex, v6only);
	err = udp_sock_create(net, &cfg, &sock);
	if (err) {
		kfree(us);
		return err;
	}

	refcount_set(&us->refcnt, 1);
	INIT_HLIST_HEAD(&us->listeners);
	quic_demux_init(&us->demux);
	us->sock = sock;
	us->addr = *a;
	us->ifindex = ifindex;
	us->v6only = v6only;
	/* Port 0 asked for an ephemeral port: record the one UDP picked. */
	if (a->sa.sa_family == AF_INET6)
		us->addr.v6.sin6_port = inet_sk(sock->sk)->inet_sport;
	else
		us->addr.v4.sin_port = inet_sk(sock->sk)->inet_sport;

	err = quic_udp_gro_enable(sock);
	if (err) {
		udp_tunnel_sock_release(sock);
		kfree(us);
		return err;
	}
	write_lock_bh(&sock->sk->sk_callback_lock);
	rcu_assign_sk_user_data(sock->sk, us);
	sock->sk->sk_data_ready = quic_udp_data_ready;
	write_unlock_bh(&sock->sk->sk_callback_lock);
	/* What arrived before the callback was set */
	local_bh_disable();
	quic_udp_data_ready(sock->sk);
	local_bh_enable();
	*usp = us;
	pr_debug("%s: udp sock %p for %pISpc dev %d\n", __func__, us,
		 &us->addr.sa, ifindex);
	return 0;
}

static struct quic_udp_sock *quic_udp_sock_lookup(struct quic_net *qn,
						  const union quic_addr *a,
						  int ifindex, bool v6only)
{
	struct quic_udp_sock *us;

	hlist_for_each_entry(us, &qn->udp_socks, node) {
		if (us->ifindex == ifindex && us->v6only == v6only &&
		    quic_addr_equal(&us->addr, a))
			return us;
	}
	return NULL;
}

/**
 * quic_udp_sock_get - find or create the UDP socket for a bind address
 * @net: the network namespace
 * @addr: the local address; port 0 asks for an ephemeral port
 * @ifindex: the device to bind to, 0 for any
 * @v6only: for an AF_INET6 @addr, whether IPv4 is excluded
 * @usp: the socket, with a reference taken for the caller
 *
 * Return: 0, or a negative errno from the UDP socket layer.
 */
int quic_udp_sock_get(struct net *net, const union quic_addr *addr,
		      int ifindex, bool v6only, struct quic_udp_sock **usp)
{
	struct quic_net *qn = quic_net(net);
	struct quic_udp_sock *us = NULL;
	int err = 0;

	mutex_lock(&qn->lock);
	if (quic_addr_port(addr))
		us = quic_udp_sock_lookup(qn, addr, ifindex, v6only);
	if (us) {
		refcount_inc(&us->refcnt);
		*usp = us;
	} else {
		err = quic_udp_sock_create(net, addr, ifindex, v6only, usp);
		if (!err)
			hlist_add_head(&(*usp)->node, &qn->udp_socks);
	}
	mutex_unlock(&qn->lock);
	return err;
}

/**
 * quic_udp_sock_put - drop a reference taken by quic_udp_sock_get()
 * @net: the network namespace it was taken in
 * @us: the UDP socket
 *
 * The last reference releases the UDP socket; this may sleep.
 */
void quic_udp_sock_put(struct net *net, struct quic_udp_sock *us)
{
	struct quic_net *qn = quic_net(net);

	mutex_lock(&qn->lock);
	if (!refcount_dec_and_test(&us->refcnt)) {
		mutex_unlock(&qn->lock);
		return;
	}
	hlist_del(&us->node);
	mutex_unlock(&qn->lock);

	pr_debug("%s: udp sock %p for %pISpc\n", __func__, us, &us->addr.sa);
	udp_tunnel_sock_release(us->sock);
	quic_demux_purge(us, NULL);
	kfree(us);
}
