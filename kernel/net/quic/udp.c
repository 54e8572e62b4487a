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
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/udp.h>
#include <net/udp.h>
#include <net/udp_tunnel.h>

#include "quic.h"
#include "input.h"

/* Any non-zero value turns on encap_rcv; the type is not interpreted by UDP. */
#define QUIC_UDP_ENCAP_TYPE	1

/* RFC 9000 Section 17.2: the header form and fixed bits of the first byte. */
#define QUIC_HDR_FORM_LONG	0x80
#define QUIC_HDR_FIXED_BIT	0x40

/* First byte, version, DCID length (RFC 9000 Section 17.2). */
#define QUIC_LONG_HDR_MIN_LEN	6
#define QUIC_MAX_CID_LEN	20	/* RFC 9000 Section 17.2, v1 and v2 */

/*
 * RFC 9001 Section 5.4.2: a short header packet carries at least 4 bytes of
 * packet number and payload plus a 16-byte sample after the DCID, which is
 * QUIC_LOCAL_CID_LEN bytes long for the CIDs this module issues.
 */
#define QUIC_LOCAL_CID_LEN	8
#define QUIC_SHORT_HDR_MIN_LEN	(1 + QUIC_LOCAL_CID_LEN + 4 + 16)

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

static bool quic_udp_hdr_valid(const struct sk_buff *skb, unsigned int off)
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
 * encap_rcv of the UDP socket, in softirq with the UDP checksum verified and
 * skb->data at the UDP header.  A datagram that does not start with a valid
 * QUIC header is dropped (RFC 9000 Section 12.2 lets the receiver discard
 * the rest of a datagram, and Section 5.2.2 allows dropping what cannot be
 * answered); a valid one goes to its connection (input.c).  Returning 0
 * tells UDP the skb is consumed.
 */
static int quic_udp_encap_rcv(struct sock *sk, struct sk_buff *skb)
{
	unsigned int off = skb_transport_offset(skb) + sizeof(struct udphdr);
	struct quic_udp_sock *us = rcu_dereference_sk_user_data(sk);
	struct net *net = sock_net(sk);

	if (!us || !quic_udp_hdr_valid(skb, off)) {
		QUIC_INC_STATS(net, QUIC_MIB_PKT_INVHDRDROP);
		net_dbg_ratelimited("%s: invalid header, len %u\n", __func__,
				    skb->len);
		kfree_skb(skb);
		return 0;
	}
	return quic_input_encap_rcv(us, sk, skb);
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
	struct udp_tunnel_sock_cfg tcfg = {
		.encap_type = QUIC_UDP_ENCAP_TYPE,
		.encap_rcv = quic_udp_encap_rcv,
	};
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
	us->sock = sock;
	us->addr = *a;
	us->ifindex = ifindex;
	us->v6only = v6only;
	/* Port 0 asked for an ephemeral port: record the one UDP picked. */
	if (a->sa.sa_family == AF_INET6)
		us->addr.v6.sin6_port = inet_sk(sock->sk)->inet_sport;
	else
		us->addr.v4.sin_port = inet_sk(sock->sk)->inet_sport;

	tcfg.sk_user_data = us;
	setup_udp_tunnel_sock(net, sock, &tcfg);
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
	kfree(us);
}
