// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: the socket API.
 *
 * Socket init and release, bind, listen, accept, connect, getsockname and
 * getpeername, poll, sendmsg/recvmsg entry checks, and the SOL_QUIC options
 * (ABI reference Sections 3 and 6.5).
 *
 * The connected states (ESTABLISHING, ESTABLISHED) are entered by connect()
 * and accept() once the packet, stream and crypto layers exist.  Until then a
 * socket is only ever CLOSED or LISTENING; every operation checks the state
 * exactly as the reference does, and the work that needs a connection ends in
 * quic_conn_unsupported(), which no socket can reach yet.
 *
 * Locking: quic_foo() takes the socket lock, __quic_foo() expects it held.
 * quic_net.lock nests inside the socket lock.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/export.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/inet_common.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/sock.h>
#include <uapi/linux/tls.h>

#include "quic.h"

/* Defaults of a new socket (ABI reference Section 1.14). */
#define QUIC_DEF_UDP_PAYLOAD		65527	/* RFC 9000 Section 18.2 */
#define QUIC_DEF_ACK_DELAY_EXPONENT	3	/* RFC 9000 Section 18.2 */
#define QUIC_DEF_ACK_DELAY		25000	/* us, RFC 9000 Section 18.2 */
#define QUIC_DEF_CONN_ID_LIMIT		7
#define QUIC_DEF_IDLE_TIMEOUT		30000000	/* us */
#define QUIC_DEF_MAX_DATA		(65535U * 32)
#define QUIC_DEF_MAX_STREAM_DATA	(65535U * 16)
#define QUIC_DEF_MAX_STREAMS		100
#define QUIC_DEF_RTT			333000	/* us, RFC 9002 Section 6.2.2 */

/* Transport parameter limits (ABI reference Section 3). */
#define QUIC_MIN_UDP_PAYLOAD		1200	/* RFC 9000 Section 18.2 */
#define QUIC_MAX_ACK_DELAY_EXPONENT	20	/* RFC 9000 Section 18.2 */
#define QUIC_MAX_ACK_DELAY		16384000	/* us: 2^14 ms */
#define QUIC_MIN_CONN_ID_LIMIT		2	/* RFC 9000 Section 18.2 */
#define QUIC_MAX_CONN_ID_LIMIT		8
#define QUIC_MIN_IDLE_TIMEOUT		1000000	/* us */
#define QUIC_MIN_DATA			1200
#define QUIC_MAX_LOCAL_DATA		(S32_MAX / 4)	/* sk_rcvbuf = 4 x */
#define QUIC_MAX_LOCAL_STREAM_DATA	(S32_MAX / 8)
#define QUIC_MAX_STREAMS		4096

/* Config limits (ABI reference Section 1.14). */
#define QUIC_MIN_RTT			1000
#define QUIC_MAX_RTT			6000000
#define QUIC_MIN_PLPMTUD_INTERVAL	5000000
#define QUIC_MAX_PLPMTUD_INTERVAL	(U32_MAX / 30)
#define QUIC_MIN_KEEPALIVE_INTERVAL	1500000

static int quic_conn_unsupported(void)
{
	return -EOPNOTSUPP;
}

static bool quic_is_connected(const struct sock *sk)
{
	return quic_is_establishing(sk) || quic_is_established(sk);
}

/* Hashed sockets change state under quic_net.lock, so /proc sees one view. */
static void __quic_set_state(struct sock *sk, int state)
{
	struct quic_net *qn = quic_net(sock_net(sk));
	struct quic_sock *qs = quic_sk(sk);

	mutex_lock(&qn->lock);
	if (sk->sk_state != state)
		inet_sk_set_state(sk, state);
	if (state == QUIC_SS_CLOSED && !hlist_unhashed(&qs->node))
		hlist_del_init(&qs->node);
	mutex_unlock(&qn->lock);
}

void quic_unhash(struct sock *sk)
{
	struct quic_net *qn = quic_net(sock_net(sk));
	struct quic_sock *qs = quic_sk(sk);

	mutex_lock(&qn->lock);
	if (!hlist_unhashed(&qs->node))
		hlist_del_init(&qs->node);
	mutex_unlock(&qn->lock);
}

/* Owned byte strings (ALPN, token, ticket).  Tickets may be keys: wipe. */
static void quic_data_free(struct quic_data *d)
{
	kfree_sensitive(d->data);
	d->data = NULL;
	d->len = 0;
}

static int quic_data_set(struct quic_data *d, const void *src, u32 len)
{
	u8 *p = kmemdup(src, len, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	quic_data_free(d);
	d->data = p;
	d->len = len;
	return 0;
}

static int quic_data_get(const struct quic_data *d, void *buf, unsigned int len)
{
	if (len < d->len)
		return -EINVAL;
	if (d->len)
		memcpy(buf, d->data, d->len);
	return d->len;
}

/* RFC 9000 Section 7.4 via the ABI: sk_rcvbuf follows the local max_data. */
static void __quic_update_rcvbuf(struct sock *sk)
{
	u64 max_data = quic_sk(sk)->local_tp.max_data;

	if (!(sk->sk_userlocks & SOCK_RCVBUF_LOCK))
		WRITE_ONCE(sk->sk_rcvbuf, (int)(max_data * 4));
}

static void quic_default_local_tp(struct quic_transport_param *p)
{
	memset(p, 0, sizeof(*p));
	p->max_udp_payload_size = QUIC_DEF_UDP_PAYLOAD;
	p->ack_delay_exponent = QUIC_DEF_ACK_DELAY_EXPONENT;
	p->max_ack_delay = QUIC_DEF_ACK_DELAY;
	p->active_connection_id_limit = QUIC_DEF_CONN_ID_LIMIT;
	p->max_idle_timeout = QUIC_DEF_IDLE_TIMEOUT;
	p->max_data = QUIC_DEF_MAX_DATA;
	p->max_stream_data_bidi_local = QUIC_DEF_MAX_STREAM_DATA;
	p->max_stream_data_bidi_remote = QUIC_DEF_MAX_STREAM_DATA;
	p->max_stream_data_uni = QUIC_DEF_MAX_STREAM_DATA;
	p->max_streams_bidi = QUIC_DEF_MAX_STREAMS;
	p->max_streams_uni = QUIC_DEF_MAX_STREAMS;
}

#ifdef CONFIG_DEBUG_LOCK_ALLOC
/*
 * bind() creates the UDP tunnel socket, of the same address family, with
 * the QUIC socket lock held, and the UDP bind locks that socket too.  QUIC
 * sockets get lock classes of their own so that lockdep does not take this
 * nesting for recursive locking of one class (as mptcp and nvme-tcp do).
 */
static struct lock_class_key quic_slock_keys[2];
static struct lock_class_key quic_keys[2];

static void quic_sock_set_lockdep_class(struct sock *sk)
{
	if (sk->sk_family == AF_INET6)
		sock_lock_init_class_and_name(sk, "slock-AF_INET6-QUIC",
					      &quic_slock_keys[1],
					      "sk_lock-AF_INET6-QUIC",
					      &quic_keys[1]);
	else
		sock_lock_init_class_and_name(sk, "slock-AF_INET-QUIC",
					      &quic_slock_keys[0],
					      "sk_lock-AF_INET-QUIC",
					      &quic_keys[0]);
}
#else
static void quic_sock_set_lockdep_class(struct sock *sk)
{
}
#endif

/* proto->init: called by inet_create() and inet6_create(), unlocked. */
int quic_init_sock(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	quic_sock_set_lockdep_class(sk);
	INIT_HLIST_NODE(&qs->node);
	quic_default_local_tp(&qs->local_tp);
	qs->config.initial_smoothed_rtt = QUIC_DEF_RTT;
	sk->sk_state = QUIC_SS_CLOSED;

	__quic_update_rcvbuf(sk);
	WRITE_ONCE(sk->sk_sndbuf, READ_ONCE(sysctl_quic_wmem[1]));

	sk_sockets_allocated_inc(sk);
	sock_prot_inuse_add(sock_net(sk), sk->sk_prot, 1);
	pr_debug("%s: sk %p family %u type %u\n", __func__, sk,
		 sk->sk_family, sk->sk_type);
	return 0;
}

void quic_destroy_sock(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	quic_unhash(sk);
	quic_data_free(&qs->alpn);
	quic_data_free(&qs->token);
	quic_data_free(&qs->ticket);
	if (qs->udp) {
		quic_udp_sock_put(sock_net(sk), qs->udp);
		qs->udp = NULL;
	}
	sk_sockets_allocated_dec(sk);
	sock_prot_inuse_add(sock_net(sk), sk->sk_prot, -1);
	pr_debug("%s: sk %p\n", __func__, sk);
}

/*
 * ABI reference Section 6.5: close() sends CONNECTION_CLOSE from a connected
 * state (with the packet layer), then unhashes; there is no lingering.
 */
void quic_close(struct sock *sk, long timeout)
{
	lock_sock(sk);
	__quic_set_state(sk, QUIC_SS_CLOSED);
	release_sock(sk);

	pr_debug("%s: sk %p\n", __func__, sk);
	sk_common_release(sk);
}

/*
 * A QUIC connection cannot go back to unconnected: shutdown(SHUT_RD) on a
 * listener ends up here through inet_shutdown() (ABI reference Section 6.5).
 */
int quic_disconnect(struct sock *sk, int flags)
{
	return -EOPNOTSUPP;
}

/*
 * Called by inet_shutdown() with the lock held for every state but LISTEN.
 * A shutdown that includes write sends CONNECTION_CLOSE first (with the
 * packet layer); in every case the connection ends CLOSED.
 */
void quic_shutdown(struct sock *sk, int how)
{
	if (quic_is_closed(sk))
		return;
	__quic_set_state(sk, QUIC_SS_CLOSED);
}

/*
 * Addresses (ABI reference Section 2.13): AF_INET, or on an AF_INET6 socket
 * also AF_INET6; a v4-mapped address is IPv4 unless IPV6_V6ONLY is set; no
 * multicast; the wildcard only where @wild (bind).
 */
static int quic_addr_set_v4(union quic_addr *a, __be32 addr, __be16 port,
			    bool wild)
{
	if (ipv4_is_multicast(addr))
		return -EINVAL;
	if (!wild && addr == htonl(INADDR_ANY))
		return -EINVAL;

	memset(a, 0, sizeof(*a));
	a->v4.sin_family = AF_INET;
	a->v4.sin_addr.s_addr = addr;
	a->v4.sin_port = port;
	return 0;
}

static int quic_addr_from_v4(struct sock *sk, union quic_addr *a,
			     const struct sockaddr *sa, int len, bool wild)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

	if (len < (int)sizeof(*sin))
		return -EINVAL;
	if (sk->sk_family == AF_INET6 && sk->sk_ipv6only)
		return -EINVAL;
	return quic_addr_set_v4(a, sin->sin_addr.s_addr, sin->sin_port, wild);
}

/* A link-local address needs an existing interface (RFC 4007 Section 6). */
static int quic_addr_scope(struct sock *sk, const struct sockaddr_in6 *sin6,
			   int type, u32 *scope)
{
	int bound = READ_ONCE(sk->sk_bound_dev_if);
	u32 ifindex = sin6->sin6_scope_id;
	bool exists;

	*scope = 0;
	if (!(type & IPV6_ADDR_LINKLOCAL))
		return 0;
	if (ifindex && bound && ifindex != (u32)bound)
		return -EINVAL;
	if (!ifindex)
		ifindex = bound;
	if (!ifindex)
		return -EINVAL;

	rcu_read_lock();
	exists = !!dev_get_by_index_rcu(sock_net(sk), ifindex);
	rcu_read_unlock();
	if (!exists)
		return -EINVAL;
	*scope = ifindex;
	return 0;
}

static int quic_addr_from_v6(struct sock *sk, union quic_addr *a,
			     const struct sockaddr *sa, int len, bool wild)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	int type, err;
	u32 scope;

	if (len < (int)sizeof(*sin6))
		return -EINVAL;
	if (ipv6_addr_v4mapped(&sin6->sin6_addr)) {
		if (sk->sk_ipv6only)
			return -EINVAL;
		return quic_addr_set_v4(a, sin6->sin6_addr.s6_addr32[3],
					sin6->sin6_port, wild);
	}

	type = ipv6_addr_type(&sin6->sin6_addr);
	if (type & IPV6_ADDR_MULTICAST)
		return -EINVAL;
	if (!wild && type == IPV6_ADDR_ANY)
		return -EINVAL;
	err = quic_addr_scope(sk, sin6, type, &scope);
	if (err)
		return err;

	memset(a, 0, sizeof(*a));
	a->v6.sin6_family = AF_INET6;
	a->v6.sin6_addr = sin6->sin6_addr;
	a->v6.sin6_port = sin6->sin6_port;
	a->v6.sin6_scope_id = scope;
	return 0;
}

static int quic_addr_from_user(struct sock *sk, union quic_addr *a,
			       const struct sockaddr *sa, int len, bool wild)
{
	if (len < (int)sizeof(sa->sa_family))
		return -EINVAL;
	if (sa->sa_family == AF_INET)
		return quic_addr_from_v4(sk, a, sa, len, wild);
	if (sa->sa_family == AF_INET6 && sk->sk_family == AF_INET6)
		return quic_addr_from_v6(sk, a, sa, len, wild);
	return -EINVAL;
}

static int __quic_bind(struct sock *sk, const union quic_addr *a)
{
	bool v6only = a->sa.sa_family == AF_INET6 && sk->sk_ipv6only;
	int ifindex = READ_ONCE(sk->sk_bound_dev_if);
	struct quic_sock *qs = quic_sk(sk);
	struct quic_udp_sock *us;
	int err;

	if (qs->udp)
		return -EINVAL;
	if (a->sa.sa_family == AF_INET6 && a->v6.sin6_scope_id)
		ifindex = a->v6.sin6_scope_id;

	err = quic_udp_sock_get(sock_net(sk), a, ifindex, v6only, &us);
	if (err)
		return err;

	qs->udp = us;
	qs->local = us->addr;
	inet_sk(sk)->inet_sport = quic_addr_port(&us->addr);
	inet_sk(sk)->inet_num = ntohs(inet_sk(sk)->inet_sport);
	pr_debug("%s: sk %p bound to %pISpc\n", __func__, sk, &qs->local.sa);
	return 0;
}

/* proto->bind, reached through inet_bind() and inet6_bind(). */
int quic_bind(struct sock *sk, struct sockaddr *addr, int addr_len)
{
	union quic_addr a;
	int err;

	lock_sock(sk);
	err = quic_addr_from_user(sk, &a, addr, addr_len, true);
	if (!err)
		err = __quic_bind(sk, &a);
	release_sock(sk);
	return err;
}

/* listen() and connect() bind the wildcard address with an ephemeral port. */
static int __quic_autobind(struct sock *sk)
{
	union quic_addr a;

	memset(&a, 0, sizeof(a));
	a.sa.sa_family = sk->sk_family;
	return __quic_bind(sk, &a);
}

/* ALPN lists (RFC 7301 Section 3.1): 1-byte length, then the protocol name. */

static int quic_alpn_encode(struct quic_data *alpn, const u8 *s, u32 len)
{
	u8 *out, *p;
	u32 i, n;

	out = kmalloc(len + 1, GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	p = out;
	for (i = 0; i <= len; i++) {
		while (i < len && s[i] == ' ')
			i++;
		for (n = 0; i + n < len && s[i + n] != ','; n++)
			;
		if (!n) {	/* empty protocol names are not allowed */
			kfree(out);
			return -EINVAL;
		}
		*p++ = n;
		memcpy(p, &s[i], n);
		p += n;
		i += n;
	}
	alpn->data = out;
	alpn->len = p - out;
	return 0;
}

/* Writes the list as "a,b,c" and returns its length (alpn->len - 1). */
static u32 quic_alpn_decode(const struct quic_data *alpn, u8 *buf)
{
	u32 i = 0, n;
	u8 *p = buf;

	while (i < alpn->len) {
		n = alpn->data[i++];
		if (p != buf)
			*p++ = ',';
		memcpy(p, &alpn->data[i], n);
		p += n;
		i += n;
	}
	return p - buf;
}

static bool quic_alpn_has(const struct quic_data *alpn, const u8 *name, u8 len)
{
	u32 i = 0;

	while (i < alpn->len) {
		if (alpn->data[i] == len && !memcmp(&alpn->data[i + 1], name, len))
			return true;
		i += alpn->data[i] + 1;
	}
	return false;
}

static bool quic_alpn_overlap(const struct quic_data *a,
			      const struct quic_data *b)
{
	u32 i = 0;

	while (i < a->len) {
		if (quic_alpn_has(b, &a->data[i + 1], a->data[i]))
			return true;
		i += a->data[i] + 1;
	}
	return false;
}

static bool quic_alpn_equal(const struct quic_data *a,
			    const struct quic_data *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

/*
 * ABI reference Section 5.2: listeners on one address and port are told apart
 * by the ALPN of the ClientHello, so their ALPN sets must be disjoint.
 * Identical sets are allowed when both sockets set SO_REUSEPORT (and belong
 * to the same user, as for UDP and TCP).
 */
static bool quic_listen_conflict(const struct sock *sk, const struct sock *sk2)
{
	const struct quic_sock *qs = quic_sk(sk), *qs2 = quic_sk(sk2);

	if (sk2 == sk || !quic_is_listen(sk2) || qs2->udp != qs->udp)
		return false;
	if (quic_alpn_equal(&qs->alpn, &qs2->alpn))
		return !(sk->sk_reuseport && sk2->sk_reuseport &&
			 uid_eq(sk->sk_uid, sk2->sk_uid));
	return quic_alpn_overlap(&qs->alpn, &qs2->alpn);
}

static int __quic_listen_start(struct sock *sk)
{
	struct quic_net *qn = quic_net(sock_net(sk));
	struct quic_sock *qs = quic_sk(sk), *qs2;
	int err = 0;

	mutex_lock(&qn->lock);
	hlist_for_each_entry(qs2, &qn->socks, node) {
		if (quic_listen_conflict(sk, &qs2->inet.sk)) {
			err = -EADDRINUSE;
			goto out;
		}
	}
	hlist_add_head(&qs->node, &qn->socks);
	inet_sk_set_state(sk, QUIC_SS_LISTENING);
out:
	mutex_unlock(&qn->lock);
	return err;
}

/*
 * ABI reference Section 5.2: listen(backlog > 0) autobinds if needed and
 * moves to LISTENING; listen(0) on a listener stops listening; a connected
 * socket cannot listen.  listen(0) on any other socket does nothing.
 */
static int __quic_listen(struct sock *sk, int backlog)
{
	int err;

	if (quic_is_listen(sk)) {
		if (!backlog) {
			__quic_set_state(sk, QUIC_SS_CLOSED);
			sk->sk_state_change(sk);	/* wake accept() */
			return 0;
		}
		WRITE_ONCE(sk->sk_max_ack_backlog, backlog);
		return 0;
	}
	if (!quic_is_closed(sk))
		return -EINVAL;
	if (!backlog)
		return 0;

	if (!quic_sk(sk)->udp) {
		err = __quic_autobind(sk);
		if (err)
			return err;
	}
	err = __quic_listen_start(sk);
	if (err)
		return err;
	quic_sk(sk)->is_serv = 1;
	WRITE_ONCE(sk->sk_max_ack_backlog, backlog);
	pr_debug("%s: sk %p listening on %pISpc\n", __func__, sk,
		 &quic_sk(sk)->local.sa);
	return 0;
}

int quic_inet_listen(struct socket *sock, int backlog)
{
	struct sock *sk = sock->sk;
	int err;

	lock_sock(sk);
	err = __quic_listen(sk, backlog);
	release_sock(sk);
	return err;
}

/*
 * Wait for a connection request.  Requests are queued by the receive path
 * of a listener (the next layer); until then accept() only ever ends because
 * the socket stops listening, a signal or the timeout.
 */
static int __quic_wait_for_accept(struct sock *sk, long timeo)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	int err;

	add_wait_queue(sk_sleep(sk), &wait);
	for (;;) {
		err = -EINVAL;
		if (!quic_is_listen(sk))
			break;
		err = -EAGAIN;
		if (!timeo)
			break;
		err = sock_intr_errno(timeo);
		if (signal_pending(current))
			break;
		sk_wait_event(sk, &timeo, !quic_is_listen(sk), &wait);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	return err;
}

/* ABI reference Section 5.2: accept() on a non-listener is EINVAL. */
int quic_inet_accept(struct socket *sock, struct socket *newsock, int flags,
		     bool kern)
{
	struct sock *sk = sock->sk;
	int err = -EINVAL;

	lock_sock(sk);
	if (quic_is_listen(sk))
		err = __quic_wait_for_accept(sk, sock_rcvtimeo(sk, flags & O_NONBLOCK));
	release_sock(sk);
	return err;
}

/*
 * ABI reference Section 6.5: connect() on a connected or listening socket,
 * or to a wildcard or multicast address, is EINVAL.  Otherwise it starts
 * the handshake, which needs the packet and crypto layers.
 */
static int __quic_connect(struct sock *sk, struct sockaddr *addr, int addr_len)
{
	union quic_addr a;
	int err;

	if (!quic_is_closed(sk))
		return -EINVAL;
	err = quic_addr_from_user(sk, &a, addr, addr_len, false);
	if (err)
		return err;

	pr_debug("%s: sk %p to %pISpc: no handshake support yet\n", __func__,
		 sk, &a.sa);
	return quic_conn_unsupported();
}

int quic_inet_connect(struct socket *sock, struct sockaddr *addr,
		      int addr_len, int flags)
{
	struct sock *sk = sock->sk;
	int err;

	lock_sock(sk);
	err = __quic_connect(sk, addr, addr_len);
	release_sock(sk);
	return err;
}

/*
 * ABI reference Section 6.5: an IPv4 address of an AF_INET6 socket is
 * returned as a sockaddr_in.  An unbound socket reports the wildcard address
 * of its family with port 0; only a connected socket has a peer.
 */
static int __quic_getname(struct sock *sk, union quic_addr *a, int peer)
{
	struct quic_sock *qs = quic_sk(sk);

	memset(a, 0, sizeof(*a));
	if (peer) {
		if (!quic_is_connected(sk))
			return -ENOTCONN;
		*a = qs->peer;
	} else if (qs->udp) {
		*a = qs->local;
	} else {
		a->sa.sa_family = sk->sk_family;
	}
	return quic_addr_len(a);
}

int quic_inet_getname(struct socket *sock, struct sockaddr *uaddr, int peer)
{
	struct sock *sk = sock->sk;
	union quic_addr a;
	int len;

	lock_sock(sk);
	len = __quic_getname(sk, &a, peer);
	release_sock(sk);
	if (len > 0)
		memcpy(uaddr, &a, len);
	return len;
}

/*
 * ABI reference Section 6.5: a listener is readable when its accept queue is
 * not empty; a CLOSED socket reports everything so that pollers wake up.
 */
__poll_t quic_inet_poll(struct file *file, struct socket *sock,
			struct poll_table_struct *wait)
{
	struct sock *sk = sock->sk;

	sock_poll_wait(file, sock, wait);
	if (quic_is_closed(sk))
		return EPOLLHUP | EPOLLERR | EPOLLIN | EPOLLRDNORM |
		       EPOLLRDHUP | EPOLLOUT | EPOLLWRNORM;
	return 0;
}

/*
 * ABI reference Section 4.1: unknown flags are EINVAL, a socket that is not
 * connected is EPIPE (with SIGPIPE unless MSG_NOSIGNAL or a datagram).
 */
int quic_sendmsg(struct sock *sk, struct msghdr *msg, size_t len)
{
	int flags = msg->msg_flags;
	int err;

	if (flags & ~QUIC_MSG_SENDMSG_FLAGS)
		return -EINVAL;

	lock_sock(sk);
	err = quic_is_connected(sk) ? quic_conn_unsupported() : -EPIPE;
	release_sock(sk);

	if (err == -EPIPE && !(flags & (MSG_NOSIGNAL | MSG_QUIC_DATAGRAM)))
		send_sig(SIGPIPE, current, 0);
	return err;
}

/* ABI reference Section 4.6: a listener, or CLOSED with nothing queued. */
int quic_recvmsg(struct sock *sk, struct msghdr *msg, size_t len, int flags,
		 int *addr_len)
{
	int err = -ENOTCONN;

	lock_sock(sk);
	if (quic_is_connected(sk) ||
	    (quic_is_closed(sk) && !skb_queue_empty(&sk->sk_receive_queue)))
		err = quic_conn_unsupported();
	release_sock(sk);
	return err;
}

int quic_inet_sendmsg(struct socket *sock, struct msghdr *msg, size_t len)
{
	return quic_sendmsg(sock->sk, msg, len);
}

int quic_inet_recvmsg(struct socket *sock, struct msghdr *msg, size_t len,
		      int flags)
{
	int addr_len = 0;

	return quic_recvmsg(sock->sk, msg, len, flags, &addr_len);
}

/*
 * SOL_QUIC options (ABI reference Section 3).  The handlers run with the
 * socket lock held and see a kernel copy of the value.  For struct options
 * the copy is at least the struct size (see quic_sockopts[]).
 */

/* EVENT: bit n of the mask enables event n (Section 1.10). */
static int __quic_set_event(struct sock *sk, void *kopt, unsigned int len)
{
	struct quic_event_option *ev = kopt;
	struct quic_sock *qs = quic_sk(sk);

	if (!ev->type || ev->type >= QUIC_EVENT_MAX)
		return -EINVAL;
	if (ev->on)
		qs->events |= BIT(ev->type);
	else
		qs->events &= ~BIT(ev->type);
	return 0;
}

static int __quic_get_event(struct sock *sk, void *kopt, unsigned int len)
{
	struct quic_event_option *ev = kopt;

	if (!ev->type || ev->type >= QUIC_EVENT_MAX)
		return -EINVAL;
	ev->on = !!(quic_sk(sk)->events & BIT(ev->type));
	return sizeof(*ev);
}

/*
 * STREAM_OPEN: open a local stream (RFC 9000 Section 2.1) without sending.
 * Works from ESTABLISHING on (0-RTT).
 */
static int __quic_get_stream_open(struct sock *sk, void *kopt,
				  unsigned int len)
{
	struct quic_stream_info *info = kopt;

	if (!quic_is_connected(sk))
		return -EPIPE;
	if (info->stream_flags & ~QUIC_MSG_STREAM_FLAGS)
		return -EINVAL;
	return quic_conn_unsupported();
}

/* STREAM_RESET (RFC 9000 Section 19.4), STOP_SENDING (Section 19.5). */
static int __quic_set_stream_reset(struct sock *sk, void *kopt,
				   unsigned int len)
{
	if (!quic_is_established(sk))
		return -EINVAL;
	return quic_conn_unsupported();
}

static int __quic_set_stop_sending(struct sock *sk, void *kopt,
				   unsigned int len)
{
	if (!quic_is_established(sk))
		return -EINVAL;
	return quic_conn_unsupported();
}

/* CONNECTION_ID: RFC 9000 Sections 5.1.1 and 5.1.2. */
static int __quic_set_connection_id(struct sock *sk, void *kopt,
				    unsigned int len)
{
	if (!quic_is_established(sk))
		return -EINVAL;
	return quic_conn_unsupported();
}

static int __quic_get_connection_id(struct sock *sk, void *kopt,
				    unsigned int len)
{
	if (!quic_is_established(sk))
		return -EINVAL;
	return quic_conn_unsupported();
}

/*
 * CONNECTION_CLOSE: errcode and phrase for the CONNECTION_CLOSE we send
 * (RFC 9000 Section 19.19).  The frame type is not ours to choose: always 0.
 */
static int __quic_set_close(struct sock *sk, void *kopt, unsigned int len)
{
	struct quic_connection_close *close = &quic_sk(sk)->close;
	const struct quic_connection_close *c = kopt;
	size_t n = strnlen((const char *)c->phrase, sizeof(c->phrase) - 1);

	memset(close, 0, sizeof(*close));
	close->errcode = c->errcode;
	memcpy(close->phrase, c->phrase, n);
	return 0;
}

static int __quic_get_close(struct sock *sk, void *kopt, unsigned int len)
{
	memcpy(kopt, &quic_sk(sk)->close, sizeof(struct quic_connection_close));
	return sizeof(struct quic_connection_close);
}

/*
 * CONNECTION_MIGRATION: a new local address, probed on ESTABLISHED (RFC 9000
 * Section 9), or a server's preferred address while ESTABLISHING
 * (Section 9.6).
 */
static int __quic_set_migration(struct sock *sk, void *kopt, unsigned int len)
{
	union quic_addr a;
	int err;

	if (!quic_is_connected(sk))
		return -EPIPE;
	err = quic_addr_from_user(sk, &a, kopt, len, false);
	if (err)
		return err;
	if (!quic_addr_port(&a))
		return -EINVAL;
	if (quic_is_establishing(sk) && !quic_sk(sk)->is_serv)
		return -EINVAL;
	return quic_conn_unsupported();
}

/* KEY_UPDATE: RFC 9001 Section 6. */
static int __quic_set_key_update(struct sock *sk, void *kopt, unsigned int len)
{
	if (!quic_is_established(sk))
		return -EPIPE;
	return quic_conn_unsupported();
}

/* TRANSPORT_PARAM: RFC 9000 Section 18.2; zero fields mean "no change". */
static int quic_tp_check_data(u64 val, u64 max)
{
	return val && (val < QUIC_MIN_DATA || val > max) ? -EINVAL : 0;
}

static int quic_tp_check_limits(const struct quic_transport_param *p)
{
	if (p->max_udp_payload_size &&
	    (p->max_udp_payload_size < QUIC_MIN_UDP_PAYLOAD ||
	     p->max_udp_payload_size > QUIC_DEF_UDP_PAYLOAD))
		return -EINVAL;
	if (p->ack_delay_exponent > QUIC_MAX_ACK_DELAY_EXPONENT ||
	    p->max_ack_delay >= QUIC_MAX_ACK_DELAY)
		return -EINVAL;
	if (p->active_connection_id_limit &&
	    (p->active_connection_id_limit < QUIC_MIN_CONN_ID_LIMIT ||
	     p->active_connection_id_limit > QUIC_MAX_CONN_ID_LIMIT))
		return -EINVAL;
	if (p->max_idle_timeout && p->max_idle_timeout < QUIC_MIN_IDLE_TIMEOUT)
		return -EINVAL;
	if (p->max_datagram_frame_size &&
	    p->max_datagram_frame_size < QUIC_MIN_UDP_PAYLOAD)
		return -EINVAL;
	return 0;
}

/* The local ceilings keep 4 x max_data within sk_rcvbuf (an int). */
static int quic_tp_check(const struct quic_transport_param *p, bool local)
{
	u64 data_max = local ? QUIC_MAX_LOCAL_DATA : U64_MAX;
	u64 stream_max = local ? QUIC_MAX_LOCAL_STREAM_DATA : U64_MAX;

	if (quic_tp_check_limits(p) ||
	    quic_tp_check_data(p->max_data, data_max) ||
	    quic_tp_check_data(p->max_stream_data_bidi_local, stream_max) ||
	    quic_tp_check_data(p->max_stream_data_bidi_remote, stream_max) ||
	    quic_tp_check_data(p->max_stream_data_uni, stream_max))
		return -EINVAL;
	if (local && (p->max_streams_bidi > QUIC_MAX_STREAMS ||
		      p->max_streams_uni > QUIC_MAX_STREAMS))
		return -EINVAL;
	return 0;
}

static void quic_set_flag(u8 *dst, u8 val)
{
	if (val)
		*dst = 1;
}

static void quic_set_u8(u8 *dst, u8 val)
{
	if (val)
		*dst = val;
}

static void quic_set_u16(u16 *dst, u16 val)
{
	if (val)
		*dst = val;
}

static void quic_set_u32(u32 *dst, u32 val)
{
	if (val)
		*dst = val;
}

static void quic_set_u64(u64 *dst, u64 val)
{
	if (val)
		*dst = val;
}

/* A peer may allow more streams than we track: clamp (Section 1.13). */
static void quic_tp_apply(struct quic_transport_param *dst,
			  const struct quic_transport_param *p)
{
	quic_set_flag(&dst->disable_active_migration, p->disable_active_migration);
	quic_set_flag(&dst->grease_quic_bit, p->grease_quic_bit);
	quic_set_flag(&dst->stateless_reset, p->stateless_reset);
	quic_set_flag(&dst->disable_1rtt_encryption, p->disable_1rtt_encryption);
	quic_set_flag(&dst->disable_compatible_version,
		      p->disable_compatible_version);
	quic_set_u8(&dst->active_connection_id_limit,
		    p->active_connection_id_limit);
	quic_set_u8(&dst->ack_delay_exponent, p->ack_delay_exponent);
	quic_set_u16(&dst->max_datagram_frame_size, p->max_datagram_frame_size);
	quic_set_u16(&dst->max_udp_payload_size, p->max_udp_payload_size);
	quic_set_u32(&dst->max_idle_timeout, p->max_idle_timeout);
	quic_set_u32(&dst->max_ack_delay, p->max_ack_delay);
	quic_set_u16(&dst->max_streams_bidi,
		     min_t(u16, p->max_streams_bidi, QUIC_MAX_STREAMS));
	quic_set_u16(&dst->max_streams_uni,
		     min_t(u16, p->max_streams_uni, QUIC_MAX_STREAMS));
	quic_set_u64(&dst->max_data, p->max_data);
	quic_set_u64(&dst->max_stream_data_bidi_local,
		     p->max_stream_data_bidi_local);
	quic_set_u64(&dst->max_stream_data_bidi_remote,
		     p->max_stream_data_bidi_remote);
	quic_set_u64(&dst->max_stream_data_uni, p->max_stream_data_uni);
}

/*
 * Local parameters can change until the handshake completes; the peer's are
 * set only while ESTABLISHING, to remember them for 0-RTT (RFC 9000
 * Section 7.4.1).
 */
static int __quic_set_transport_param(struct sock *sk, void *kopt,
				      unsigned int len)
{
	struct quic_transport_param *p = kopt;
	struct quic_sock *qs = quic_sk(sk);
	bool local = !p->remote;
	int err;

	if (quic_is_established(sk))
		return -EINVAL;
	if (!local && !quic_is_establishing(sk))
		return -EINVAL;
	err = quic_tp_check(p, local);
	if (err)
		return err;

	quic_tp_apply(local ? &qs->local_tp : &qs->remote_tp, p);
	if (local)
		__quic_update_rcvbuf(sk);
	return 0;
}

static int __quic_get_transport_param(struct sock *sk, void *kopt,
				      unsigned int len)
{
	struct quic_transport_param *p = kopt;
	struct quic_sock *qs = quic_sk(sk);
	u8 remote = p->remote;

	*p = remote ? qs->remote_tp : qs->local_tp;
	p->remote = remote;
	return sizeof(*p);
}

/* CONFIG: zero fields mean "no change" (ABI reference Section 7.1). */
static int quic_config_check(const struct quic_config *c)
{
	if (c->payload_cipher_type &&
	    (c->payload_cipher_type < TLS_CIPHER_AES_GCM_128 ||
	     c->payload_cipher_type > TLS_CIPHER_CHACHA20_POLY1305))
		return -EINVAL;
	if (c->initial_smoothed_rtt &&
	    (c->initial_smoothed_rtt < QUIC_MIN_RTT ||
	     c->initial_smoothed_rtt > QUIC_MAX_RTT))
		return -EINVAL;
	if (c->congestion_control_algo >= QUIC_CONG_ALG_MAX)
		return -EINVAL;
	if (c->plpmtud_probe_interval &&
	    (c->plpmtud_probe_interval < QUIC_MIN_PLPMTUD_INTERVAL ||
	     c->plpmtud_probe_interval > QUIC_MAX_PLPMTUD_INTERVAL))
		return -EINVAL;
	if (c->keepalive_probe_interval &&
	    c->keepalive_probe_interval < QUIC_MIN_KEEPALIVE_INTERVAL)
		return -EINVAL;
	return 0;
}

static int __quic_set_config(struct sock *sk, void *kopt, unsigned int len)
{
	struct quic_config *dst = &quic_sk(sk)->config;
	const struct quic_config *c = kopt;
	int err;

	if (quic_is_established(sk))
		return -EINVAL;
	err = quic_config_check(c);
	if (err)
		return err;

	quic_set_u32(&dst->version, c->version);
	quic_set_u32(&dst->plpmtud_probe_interval, c->plpmtud_probe_interval);
	quic_set_u32(&dst->initial_smoothed_rtt, c->initial_smoothed_rtt);
	quic_set_u32(&dst->payload_cipher_type, c->payload_cipher_type);
	quic_set_u8(&dst->congestion_control_algo, c->congestion_control_algo);
	quic_set_flag(&dst->validate_peer_address, c->validate_peer_address);
	quic_set_flag(&dst->stream_data_nodelay, c->stream_data_nodelay);
	quic_set_u8(&dst->receive_session_ticket, c->receive_session_ticket);
	quic_set_u8(&dst->certificate_request, c->certificate_request);
	quic_set_u32(&dst->keepalive_probe_interval,
		     c->keepalive_probe_interval);
	return 0;
}

static int __quic_get_config(struct sock *sk, void *kopt, unsigned int len)
{
	memcpy(kopt, &quic_sk(sk)->config, sizeof(struct quic_config));
	return sizeof(struct quic_config);
}

/*
 * TOKEN: a client stores the token it puts in its Initial packets (RFC 9000
 * Section 8.1.3); a server sends a NEW_TOKEN frame (Section 19.7), which
 * needs an established connection.
 */
static int __quic_set_token(struct sock *sk, void *kopt, unsigned int len)
{
	struct quic_sock *qs = quic_sk(sk);

	if (qs->is_serv) {
		if (!quic_is_established(sk))
			return -EINVAL;
		return quic_conn_unsupported();
	}
	if (!len || len > QUIC_TOKEN_MAX_LEN)
		return -EINVAL;
	return quic_data_set(&qs->token, kopt, len);
}

static int __quic_get_token(struct sock *sk, void *kopt, unsigned int len)
{
	struct quic_sock *qs = quic_sk(sk);

	if (qs->is_serv)
		return -EINVAL;
	return quic_data_get(&qs->token, kopt, len);
}

/*
 * ALPN: "h3, hq-interop" is stored RFC 7301 encoded.  Leading spaces of an
 * entry are skipped and the string ends at the first NUL, if any.
 */
static int __quic_set_alpn(struct sock *sk, void *kopt, unsigned int len)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_data alpn;
	int err;

	if (quic_is_listen(sk) || !len || len > QUIC_ALPN_MAX_LEN)
		return -EINVAL;
	len = strnlen(kopt, len);
	if (!len)
		return -EINVAL;
	err = quic_alpn_encode(&alpn, kopt, len);
	if (err)
		return err;
	quic_data_free(&qs->alpn);
	qs->alpn = alpn;
	return 0;
}

/* The buffer must hold the encoded list, one byte more than the string. */
static int __quic_get_alpn(struct sock *sk, void *kopt, unsigned int len)
{
	const struct quic_data *alpn = &quic_sk(sk)->alpn;

	if (len < alpn->len)
		return -EINVAL;
	return quic_alpn_decode(alpn, kopt);
}

/*
 * SESSION_TICKET: a server's ticket key, or a client's session data for the
 * handshake agent (ABI reference Section 5.3).
 */
static int __quic_set_session_ticket(struct sock *sk, void *kopt,
				     unsigned int len)
{
	if (len < QUIC_TICKET_MIN_LEN || len > QUIC_TICKET_MAX_LEN)
		return -EINVAL;
	return quic_data_set(&quic_sk(sk)->ticket, kopt, len);
}

/*
 * A client reads back its session data while ESTABLISHING, afterwards the
 * first NewSessionTicket received (none until the data path exists).  A
 * server reads its ticket key; one it did not set is derived from the
 * listener's secret and the peer address, which needs the crypto layer.
 */
static int __quic_get_session_ticket(struct sock *sk, void *kopt,
				     unsigned int len)
{
	struct quic_sock *qs = quic_sk(sk);

	if (quic_is_listen(sk) || (qs->is_serv && quic_is_closed(sk)))
		return -EPIPE;
	if (!qs->is_serv && !quic_is_establishing(sk))
		return 0;
	if (qs->is_serv && !qs->ticket.len)
		return quic_conn_unsupported();
	return quic_data_get(&qs->ticket, kopt, len);
}

/* CRYPTO_SECRET: RFC 9001 Section 5.1; APP, HANDSHAKE or EARLY only. */
static int __quic_set_crypto_secret(struct sock *sk, void *kopt,
				    unsigned int len)
{
	struct quic_crypto_secret *secret = kopt;

	if (!quic_is_establishing(sk))
		return -EINVAL;
	if (secret->level != QUIC_CRYPTO_APP &&
	    secret->level != QUIC_CRYPTO_HANDSHAKE &&
	    secret->level != QUIC_CRYPTO_EARLY)
		return -EINVAL;
	return quic_conn_unsupported();
}

/* TRANSPORT_PARAM_EXT: the TLS extension (RFC 9001 Section 8.2). */
static int __quic_set_transport_param_ext(struct sock *sk, void *kopt,
					  unsigned int len)
{
	if (!quic_is_establishing(sk) || len > QUIC_TP_EXT_MAX_LEN)
		return -EINVAL;
	return quic_conn_unsupported();
}

static int __quic_get_transport_param_ext(struct sock *sk, void *kopt,
					  unsigned int len)
{
	if (!quic_is_establishing(sk))
		return -EINVAL;
	return quic_conn_unsupported();
}

/*
 * One entry per option number (ABI reference Section 1.6).  A missing
 * handler is ENOPROTOOPT.  set_size/get_size: struct options need at least
 * the struct (stricter than the reference, which zero-extends short values;
 * see <uapi/linux/quic.h>); 0 means a variable-length value.  get_in: the
 * value passed to getsockopt carries input fields.
 */
struct quic_sockopt {
	int (*set)(struct sock *sk, void *kopt, unsigned int len);
	int (*get)(struct sock *sk, void *kopt, unsigned int len);
	u16 set_size;
	u16 get_size;
	bool get_in;
};

static const struct quic_sockopt quic_sockopts[] = {
	[QUIC_SOCKOPT_EVENT] = {
		.set = __quic_set_event, .get = __quic_get_event,
		.set_size = sizeof(struct quic_event_option),
		.get_size = sizeof(struct quic_event_option), .get_in = true,
	},
	[QUIC_SOCKOPT_STREAM_OPEN] = {
		.get = __quic_get_stream_open,
		.get_size = sizeof(struct quic_stream_info), .get_in = true,
	},
	[QUIC_SOCKOPT_STREAM_RESET] = {
		.set = __quic_set_stream_reset,
		.set_size = sizeof(struct quic_errinfo),
	},
	[QUIC_SOCKOPT_STREAM_STOP_SENDING] = {
		.set = __quic_set_stop_sending,
		.set_size = sizeof(struct quic_errinfo),
	},
	[QUIC_SOCKOPT_CONNECTION_ID] = {
		.set = __quic_set_connection_id,
		.get = __quic_get_connection_id,
		.set_size = sizeof(struct quic_connection_id_info),
		.get_size = sizeof(struct quic_connection_id_info),
		.get_in = true,
	},
	[QUIC_SOCKOPT_CONNECTION_CLOSE] = {
		.set = __quic_set_close, .get = __quic_get_close,
		.set_size = sizeof(struct quic_connection_close),
		.get_size = sizeof(struct quic_connection_close),
	},
	[QUIC_SOCKOPT_CONNECTION_MIGRATION] = {
		.set = __quic_set_migration,
	},
	[QUIC_SOCKOPT_KEY_UPDATE] = {
		.set = __quic_set_key_update,
	},
	[QUIC_SOCKOPT_TRANSPORT_PARAM] = {
		.set = __quic_set_transport_param,
		.get = __quic_get_transport_param,
		.set_size = sizeof(struct quic_transport_param),
		.get_size = sizeof(struct quic_transport_param),
		.get_in = true,
	},
	[QUIC_SOCKOPT_CONFIG] = {
		.set = __quic_set_config, .get = __quic_get_config,
		.set_size = sizeof(struct quic_config),
		.get_size = sizeof(struct quic_config),
	},
	[QUIC_SOCKOPT_TOKEN] = {
		.set = __quic_set_token, .get = __quic_get_token,
	},
	[QUIC_SOCKOPT_ALPN] = {
		.set = __quic_set_alpn, .get = __quic_get_alpn,
	},
	[QUIC_SOCKOPT_SESSION_TICKET] = {
		.set = __quic_set_session_ticket,
		.get = __quic_get_session_ticket,
	},
	[QUIC_SOCKOPT_CRYPTO_SECRET] = {
		.set = __quic_set_crypto_secret,
		.set_size = sizeof(struct quic_crypto_secret),
	},
	[QUIC_SOCKOPT_TRANSPORT_PARAM_EXT] = {
		.set = __quic_set_transport_param_ext,
		.get = __quic_get_transport_param_ext,
	},
};

static const struct quic_sockopt *quic_sockopt_find(int optname)
{
	BUILD_BUG_ON(ARRAY_SIZE(quic_sockopts) !=
		     QUIC_SOCKOPT_TRANSPORT_PARAM_EXT + 1);

	if (optname < 0 || optname >= (int)ARRAY_SIZE(quic_sockopts))
		return NULL;
	return &quic_sockopts[array_index_nospec(optname,
						 ARRAY_SIZE(quic_sockopts))];
}

/**
 * quic_do_setsockopt - set a SOL_QUIC option
 * @sk: a QUIC socket
 * @optname: QUIC_SOCKOPT_* from <uapi/linux/quic.h>
 * @optval: the value, a user or kernel pointer
 * @optlen: its length in bytes, at most 4096
 *
 * The setsockopt(2) path for level SOL_QUIC, for in-kernel consumers.  Takes
 * the socket lock; must not be called with it held.  The kernel copy of the
 * value is wiped before it is freed (it may hold a secret).
 *
 * Return: 0, or a negative errno as listed in the ABI reference: -EINVAL if
 * @optlen exceeds 4096, -EFAULT if @optval cannot be read, -ENOPROTOOPT for
 * an unknown or get-only option.
 */
int quic_do_setsockopt(struct sock *sk, int optname, sockptr_t optval,
		       unsigned int optlen)
{
	const struct quic_sockopt *opt;
	void *kopt = NULL;
	int err;

	if (optlen > QUIC_OPTLEN_MAX)
		return -EINVAL;
	if (optlen) {
		kopt = memdup_sockptr(optval, optlen);
		if (IS_ERR(kopt))
			return PTR_ERR(kopt);
	}

	opt = quic_sockopt_find(optname);
	if (!opt || !opt->set) {
		err = -ENOPROTOOPT;
	} else if (optlen < opt->set_size) {
		err = -EINVAL;
	} else {
		lock_sock(sk);
		err = opt->set(sk, kopt, optlen);
		release_sock(sk);
	}
	kfree_sensitive(kopt);
	return err;
}
EXPORT_SYMBOL_GPL(quic_do_setsockopt);

static int quic_getsockopt_copy(sockptr_t optval, sockptr_t optlen,
				const void *kopt, unsigned int len)
{
	if (copy_to_sockptr(optlen, &len, sizeof(len)) ||
	    copy_to_sockptr(optval, kopt, len))
		return -EFAULT;
	return 0;
}

/**
 * quic_do_getsockopt - get a SOL_QUIC option
 * @sk: a QUIC socket
 * @optname: QUIC_SOCKOPT_* from <uapi/linux/quic.h>
 * @optval: the buffer, a user or kernel pointer; some options read input
 *	fields from it first (EVENT, STREAM_OPEN, CONNECTION_ID,
 *	TRANSPORT_PARAM)
 * @optlen: in: the buffer size (an unsigned int); out: the value length
 *
 * The getsockopt(2) path for level SOL_QUIC, for in-kernel consumers.  Takes
 * the socket lock; must not be called with it held.
 *
 * Return: 0, or a negative errno as listed in the ABI reference: -EFAULT if
 * @optlen or @optval cannot be accessed, -ENOPROTOOPT for an unknown or
 * set-only option, -EINVAL if the buffer is too small.
 */
int quic_do_getsockopt(struct sock *sk, int optname, sockptr_t optval,
		       sockptr_t optlen)
{
	const struct quic_sockopt *opt;
	unsigned int len, size;
	void *kopt;
	int ret;

	if (copy_from_sockptr(&len, optlen, sizeof(len)))
		return -EFAULT;
	opt = quic_sockopt_find(optname);
	if (!opt || !opt->get)
		return -ENOPROTOOPT;
	if (len < opt->get_size)
		return -EINVAL;

	size = opt->get_size;
	if (!size)
		size = min_t(unsigned int, len, QUIC_OPTLEN_MAX);
	kopt = kzalloc(size, GFP_KERNEL);
	if (!kopt)
		return -ENOMEM;
	if (opt->get_in && copy_from_sockptr(kopt, optval, size)) {
		ret = -EFAULT;
		goto out;
	}

	lock_sock(sk);
	ret = opt->get(sk, kopt, size);
	release_sock(sk);
	if (ret >= 0)
		ret = quic_getsockopt_copy(optval, optlen, kopt, ret);
out:
	kfree_sensitive(kopt);
	return ret;
}
EXPORT_SYMBOL_GPL(quic_do_getsockopt);

/* Other levels go to IPv4 or IPv6 by family; SOL_SOCKET never gets here. */
int quic_setsockopt(struct sock *sk, int level, int optname,
		    sockptr_t optval, unsigned int optlen)
{
	if (level == SOL_QUIC)
		return quic_do_setsockopt(sk, optname, optval, optlen);
	if (sk->sk_family == AF_INET6)
		return ipv6_setsockopt(sk, level, optname, optval, optlen);
	return ip_setsockopt(sk, level, optname, optval, optlen);
}

int quic_getsockopt(struct sock *sk, int level, int optname,
		    char __user *optval, int __user *optlen)
{
	if (level == SOL_QUIC)
		return quic_do_getsockopt(sk, optname, USER_SOCKPTR(optval),
					  USER_SOCKPTR(optlen));
	if (sk->sk_family == AF_INET6)
		return ipv6_getsockopt(sk, level, optname, optval, optlen);
	return ip_getsockopt(sk, level, optname, optval, optlen);
}
