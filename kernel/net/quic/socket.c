// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: the socket API.
 *
 * Socket init and release, bind, listen, accept, connect, getsockname and
 * getpeername, poll, sendmsg and recvmsg (ABI reference Section 4) and the
 * handshake plumbing (Section 5).  The SOL_QUIC options (Sections 3 and 6.5)
 * are in sockopt.c.
 *
 * connect() and accept() enter ESTABLISHING; installing both 1-RTT keys
 * with CRYPTO_SECRET enters ESTABLISHED; the peer, an error, the idle timer,
 * close() or shutdown() end in CLOSED.
 *
 * Locking: quic_foo() takes the socket lock, __quic_foo() expects it held.
 * quic_net.lock nests inside the socket lock.  A listener's lock nests
 * outside the lock of the socket accept() creates (SINGLE_DEPTH_NESTING).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/algapi.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sockios.h>
#include <asm/ioctls.h>
#include <linux/string.h>
#include <net/inet_common.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/sock.h>

#include "quic.h"
#include "packet.h"
#include "input.h"
#include "output.h"

/* Defaults of a new socket (ABI reference Section 1.14). */
#define QUIC_DEF_ACK_DELAY_EXPONENT	3	/* RFC 9000 Section 18.2 */
#define QUIC_DEF_ACK_DELAY		25000	/* us, RFC 9000 Section 18.2 */
#define QUIC_DEF_CONN_ID_LIMIT		7
#define QUIC_DEF_IDLE_TIMEOUT		30000000	/* us */
#define QUIC_DEF_MAX_DATA		(65535U * 32)
#define QUIC_DEF_MAX_STREAM_DATA	(65535U * 16)
#define QUIC_DEF_MAX_STREAMS		100
#define QUIC_DEF_RTT			333000	/* us, RFC 9002 Section 6.2.2 */

bool quic_is_connected(const struct sock *sk)
{
	return quic_is_establishing(sk) || quic_is_established(sk);
}

u64 quic_now(void)
{
	return div_u64(ktime_get_ns(), NSEC_PER_USEC);
}

/*
 * Hashed sockets change state under quic_net.lock, so /proc sees one view.
 * Process context; the softirq paths only ever close a socket, with
 * quic_state_store() alone.
 */
void __quic_set_state(struct sock *sk, int state)
{
	struct quic_net *qn = quic_net(sock_net(sk));
	struct quic_sock *qs = quic_sk(sk);

	mutex_lock(&qn->lock);
	quic_state_store(sk, state);
	if (state == QUIC_SS_CLOSED && !hlist_unhashed(&qs->node))
		hlist_del_init(&qs->node);
	mutex_unlock(&qn->lock);
}

/* /proc/net/quic/conns lists connected sockets (ABI Section 6.1). */
static void __quic_hash_conn(struct sock *sk, int state)
{
	struct quic_net *qn = quic_net(sock_net(sk));
	struct quic_sock *qs = quic_sk(sk);

	mutex_lock(&qn->lock);
	quic_state_store(sk, state);
	if (hlist_unhashed(&qs->node))
		hlist_add_head(&qs->node, &qn->socks);
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
void quic_data_free(struct quic_data *d)
{
	kfree_sensitive(d->data);
	d->data = NULL;
	d->len = 0;
}

int quic_data_set(struct quic_data *d, const void *src, u32 len)
{
	u8 *p = kmemdup(src, len, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	quic_data_free(d);
	d->data = p;
	d->len = len;
	return 0;
}

/* RFC 9000 Section 7.4 via the ABI: sk_rcvbuf follows the local max_data. */
void __quic_update_rcvbuf(struct sock *sk)
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

/* Connection state: what connect() and accept() set up. */

static void quic_requests_purge(struct sock *sk)
{
	struct quic_request *req, *n;

	list_for_each_entry_safe(req, n, &quic_sk(sk)->requests, list) {
		list_del(&req->list);
		skb_queue_purge(&req->skbs);
		kfree(req);
		sk_acceptq_removed(sk);
	}
}

/* Drop the connection IDs from the global hash (it holds references). */
static void quic_conn_ids_release(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	quic_conn_id_set_free(&qs->source);
	quic_conn_id_set_free(&qs->dest);
	if (qs->odcid_entry) {
		quic_cid_hash_del(qs->odcid_entry);
		qs->odcid_entry = NULL;
	}
}

static void quic_initial_alt_free(struct quic_sock *qs)
{
	if (!qs->initial_alt)
		return;
	quic_crypto_destroy(qs->initial_alt);
	kfree(qs->initial_alt);
	qs->initial_alt = NULL;
}

/* Everything a connection holds, wiping keys (process context). */
static void quic_conn_free(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_sent_pkt *pkt, *tmp;
	int i;

	quic_conn_ids_release(sk);
	quic_initial_alt_free(qs);
	for (i = 0; i < QUIC_CRYPTO_MAX; i++)
		quic_crypto_destroy(&qs->crypto[i]);
	for (i = 0; i < QUIC_SPACE_MAX; i++) {
		struct quic_pnspace *s = &qs->space[i];

		list_for_each_entry_safe(pkt, tmp, &s->sent, list) {
			list_del(&pkt->list);
			quic_frame_list_free(sk, &pkt->frames);
			quic_sent_pkt_free(pkt);
		}
		quic_frame_list_free(sk, &s->outq);
		quic_pnspace_free(s);
	}
	quic_frame_list_free(sk, &qs->stream_outq);
	quic_stream_table_free(sk);
	quic_packet_buffer_purge(sk);
	quic_requests_purge(sk);
	quic_data_free(&qs->nst);
}

/*
 * Work that may sleep, left by the softirq paths: free the transforms of
 * discarded keys (RFC 9001 Section 4.9), derive the next 1-RTT keys after
 * a key update (RFC 9001 Section 6).  Called with the socket owned.
 */
/*
 * RFC 9000 Section 17.2.5.2 and RFC 9001 Section 5.2: after a Retry
 * (quic_packet_retry()) the client's Initial keys come from the Retry's
 * Source ID, now its Destination ID, and its Initial packets go again.
 */
static void quic_conn_retry(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	const struct quic_conn_id *cid = &qs->retry_cid;
	int err;

	if (!quic_is_establishing(sk))
		return;
	err = quic_crypto_initial_keys_install(&qs->crypto[QUIC_CRYPTO_INITIAL],
					       cid->data, cid->len,
					       qs->version, false);
	if (!err && qs->initial_alt)
		err = quic_crypto_initial_keys_install(qs->initial_alt,
						       cid->data, cid->len,
						       qs->initial_alt->rx.version,
						       false);
	if (err) {
		quic_conn_error(sk, QUIC_TRANSPORT_ERROR_INTERNAL, 0);
		return;
	}
	quic_space_restart(sk, QUIC_SPACE_INITIAL);
	quic_output_flush(sk);
	quic_loss_set_timer(sk);
}

/*
 * RFC 9368 Section 2.1: after a Version Negotiation packet
 * (quic_packet_vn()) the client sends its first flight again in
 * @vn_version, as a new connection attempt: a new Destination ID (the
 * original one of the attempt, RFC 9000 Section 7.3), Initial keys from it
 * for that version and for its compatible one.  The Source ID stays: the
 * ClientHello names it (initial_source_connection_id).
 */
static void quic_conn_vn_retry(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	u32 other = qs->vn_version == QUIC_VERSION_V2 ? QUIC_VERSION_V1 :
							QUIC_VERSION_V2;
	struct quic_conn_id dcid;
	int err;

	if (!quic_is_establishing(sk))
		return;
	quic_conn_id_generate(&dcid);
	err = quic_conn_id_dest_update(&qs->dest, &dcid);
	if (!err)
		err = quic_crypto_initial_keys_install(&qs->crypto[QUIC_CRYPTO_INITIAL],
						       dcid.data, dcid.len,
						       qs->vn_version, false);
	if (!err && qs->initial_alt)
		err = quic_crypto_initial_keys_install(qs->initial_alt,
						       dcid.data, dcid.len,
						       other, false);
	if (err) {
		quic_conn_error(sk, QUIC_TRANSPORT_ERROR_INTERNAL, 0);
		return;
	}
	qs->odcid = dcid;
	qs->version = qs->vn_version;
	quic_space_restart(sk, QUIC_SPACE_INITIAL);
	quic_output_flush(sk);
	quic_loss_set_timer(sk);
}

void quic_conn_deferred(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	if (qs->vn_pending) {
		qs->vn_pending = 0;
		quic_conn_vn_retry(sk);
	}
	if (qs->retry_pending) {
		qs->retry_pending = 0;
		quic_conn_retry(sk);
	}

	/* The version is settled: the other version's keys go. */
	if (qs->initial_alt && qs->version_fixed)
		quic_initial_alt_free(qs);
	if (qs->keys_discard) {
		qs->keys_discard = 0;
		if (qs->space[QUIC_SPACE_INITIAL].discarded)
			quic_crypto_destroy(&qs->crypto[QUIC_CRYPTO_INITIAL]);
		if (qs->space[QUIC_SPACE_HANDSHAKE].discarded)
			quic_crypto_destroy(&qs->crypto[QUIC_CRYPTO_HANDSHAKE]);
	}
	if (qs->crypto_key_prepare) {
		int err;

		qs->crypto_key_prepare = 0;
		err = quic_crypto_key_update_prepare(&qs->crypto[QUIC_CRYPTO_APP]);
		pr_debug("%s: sk %p next 1-RTT keys: %d\n", __func__, sk, err);
	}
}

static void quic_lock(struct sock *sk)
{
	lock_sock(sk);
	quic_conn_deferred(sk);
}

static void quic_conn_work(struct work_struct *work)
{
	struct quic_sock *qs = container_of(work, struct quic_sock, work);
	struct sock *sk = &qs->inet.sk;

	quic_lock(sk);
	release_sock(sk);
	sock_put(sk);
}

/**
 * quic_conn_defer - run quic_conn_deferred() soon in process context
 * @sk: the socket, locked (any context)
 *
 * The packet path finds work that may sleep (new 1-RTT keys after a key
 * update, freeing discarded keys); a work item does it even when no
 * process calls into the socket.
 */
void quic_conn_defer(struct sock *sk)
{
	sock_hold(sk);
	if (!schedule_work(&quic_sk(sk)->work))
		__sock_put(sk);
}

/*
 * ABI reference Section 6.5: close() and shutdown(SHUT_WR) send
 * CONNECTION_CLOSE: the application variant with the stored code and
 * phrase when ESTABLISHED, a transport close with APPLICATION_ERROR at
 * the Initial level (Handshake once Initial keys are gone) before, or
 * with the stored code if it is a CRYPTO_ERROR (a TLS alert).
 */
static void __quic_send_close(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	u8 space = QUIC_SPACE_INITIAL;

	if (quic_is_established(sk)) {
		quic_output_close(sk, QUIC_SPACE_APP, true);
		return;
	}
	if (!quic_is_establishing(sk))
		return;
	/* A TLS alert stored by the handshake agent (CRYPTO_ERROR, RFC 9001
	 * Section 4.8) is a transport error code and goes out as is.
	 */
	if (qs->close.errcode < QUIC_TRANSPORT_ERROR_CRYPTO ||
	    qs->close.errcode > QUIC_TRANSPORT_ERROR_CRYPTO + 0xff)
		qs->close.errcode = QUIC_TRANSPORT_ERROR_APPLICATION;
	qs->close.frame = 0;
	if (qs->space[space].discarded ||
	    !quic_crypto_send_ready(&qs->crypto[space]))
		space = QUIC_SPACE_HANDSHAKE;
	quic_output_close(sk, space, false);
}

/*
 * New connections on the port go to another listener of it, if any
 * (SO_REUSEPORT), once this one stops.
 */
static void __quic_listen_stop(struct sock *sk)
{
	struct quic_net *qn = quic_net(sock_net(sk));
	struct quic_udp_sock *us = quic_sk(sk)->udp;
	struct quic_sock *qs2;
	bool listed;

	mutex_lock(&qn->lock);
	listed = !hlist_unhashed(&quic_sk(sk)->lnode);
	if (listed)
		hlist_del_init_rcu(&quic_sk(sk)->lnode);
	if (us && rcu_access_pointer(us->listener) == sk) {
		RCU_INIT_POINTER(us->listener, NULL);
		hlist_for_each_entry(qs2, &qn->socks, node) {
			if (&qs2->inet.sk != sk && qs2->udp == us &&
			    quic_is_listen(&qs2->inet.sk)) {
				rcu_assign_pointer(us->listener, &qs2->inet.sk);
				break;
			}
		}
	}
	mutex_unlock(&qn->lock);
	quic_requests_purge(sk);
	if (us)
		quic_demux_purge(us, sk);
	/* Softirqs choosing a listener read its ALPN list under RCU only. */
	if (listed)
		synchronize_rcu();
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

	int i;

	quic_sock_set_lockdep_class(sk);
	INIT_HLIST_NODE(&qs->node);
	INIT_HLIST_NODE(&qs->lnode);
	quic_default_local_tp(&qs->local_tp);
	qs->config.initial_smoothed_rtt = QUIC_DEF_RTT;
	sk->sk_state = QUIC_SS_CLOSED;
	/* Lookups (CID hash, UDP listener) find sockets under RCU. */
	sock_set_flag(sk, SOCK_RCU_FREE);
	sk->sk_backlog_rcv = quic_backlog_rcv;

	for (i = 0; i < QUIC_SPACE_MAX; i++)
		quic_pnspace_init(&qs->space[i]);
	quic_conn_id_set_init(&qs->source, sk, QUIC_CONN_ID_LIMIT_MIN);
	quic_conn_id_set_init(&qs->dest, NULL, QUIC_DEF_CONN_ID_LIMIT);
	quic_conn_id_dest_own(&qs->dest, sk);
	quic_stream_table_init(&qs->streams);
	INIT_LIST_HEAD(&qs->stream_outq);
	INIT_LIST_HEAD(&qs->requests);
	skb_queue_head_init(&qs->pending);
	quic_timers_init(sk);
	INIT_WORK(&qs->work, quic_conn_work);
	qs->path.mss = QUIC_PATH_MIN_MTU;
	qs->ack_delay_exponent = QUIC_DEF_ACK_DELAY_EXPONENT;

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
	quic_conn_free(sk);
	quic_data_free(&qs->alpn);
	quic_data_free(&qs->token);
	quic_data_free(&qs->ticket);
	quic_path_free(sk);
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
	quic_lock(sk);
	__quic_send_close(sk);
	if (quic_is_listen(sk))
		__quic_listen_stop(sk);
	__quic_set_state(sk, QUIC_SS_CLOSED);
	quic_conn_ids_release(sk);
	release_sock(sk);
	quic_timers_stop(sk);
	if (cancel_work_sync(&quic_sk(sk)->work))
		sock_put(sk);

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
	if (how & SEND_SHUTDOWN)
		__quic_send_close(sk);
	__quic_set_state(sk, QUIC_SS_CLOSED);
	sk->sk_state_change(sk);
}

/* Stream bytes queued by sendmsg and never sent. */
static int quic_unsent_bytes(struct sock *sk)
{
	struct quic_frame *f;
	u64 n = 0;

	list_for_each_entry(f, &quic_sk(sk)->stream_outq, list)
		n += f->data_len;
	return (int)min_t(u64, n, INT_MAX);
}

/*
 * proto->ioctl (ABI reference Section 6.5): SIOCINQ is receive memory in
 * use, SIOCOUTQ write memory in use, SIOCOUTQNSD bytes never sent.  Other
 * commands go to the generic inet handler.
 */
int quic_ioctl(struct sock *sk, int cmd, int *karg)
{
	int err = 0;

	lock_sock(sk);
	if (quic_is_listen(sk)) {
		err = -EINVAL;
		goto out;
	}
	switch (cmd) {
	case SIOCINQ:
		*karg = sk_rmem_alloc_get(sk);
		break;
	case SIOCOUTQ:
		*karg = READ_ONCE(sk->sk_wmem_queued);
		break;
	case SIOCOUTQNSD:
		*karg = quic_unsent_bytes(sk);
		break;
	default:
		err = -ENOIOCTLCMD;
	}
out:
	release_sock(sk);
	return err;
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

int quic_addr_from_user(struct sock *sk, union quic_addr *a,
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
	/* A connection the peer closed (the softirq only sets its state) is
	 * CLOSED but still listed: it was connected, and cannot listen.
	 */
	if (!hlist_unhashed(&qs->node)) {
		err = -EINVAL;
		goto out;
	}
	hlist_for_each_entry(qs2, &qn->socks, node) {
		if (quic_listen_conflict(sk, &qs2->inet.sk)) {
			err = -EADDRINUSE;
			goto out;
		}
	}
	hlist_add_head(&qs->node, &qn->socks);
	inet_sk_set_state(sk, QUIC_SS_LISTENING);
	get_random_bytes(qs->ticket_secret, sizeof(qs->ticket_secret));
	/* The port's first listener is charged for ClientHellos being read
	 * (demux.c); each new client goes to a listener of the list.
	 */
	if (!rcu_access_pointer(qs->udp->listener))
		rcu_assign_pointer(qs->udp->listener, sk);
	hlist_add_tail_rcu(&qs->lnode, &qs->udp->listeners);
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
			__quic_listen_stop(sk);
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
 * A listener's receive path (ABI reference Section 5.2 step 3): a client
 * Initial with a Destination ID we do not know becomes a request that
 * accept() turns into a connection.  Datagrams for a request already
 * queued are kept with it; those for a connection accept() has already
 * created are passed on to it.  Only Initials that open with the keys of
 * their Destination ID are kept, at most QUIC_REQUEST_SKBS_MAX a request,
 * all of them charged to the listener's receive memory (sk_rcvbuf): with
 * the accept queue's length, that bounds what a listener holds.
 */
#define QUIC_REQUEST_SKBS_MAX	16
#define QUIC_MIN_ODCID_LEN	8	/* RFC 9000 Section 7.2 */

static struct quic_request *quic_request_find(struct sock *sk,
					      const struct quic_pkt *pkt,
					      const union quic_addr *peer)
{
	struct quic_request *req;

	list_for_each_entry(req, &quic_sk(sk)->requests, list) {
		if (quic_conn_id_equal_raw(&req->dcid, pkt->dcid,
					   pkt->dcid_len) &&
		    quic_addr_equal(&req->peer, peer))
			return req;
	}
	return NULL;
}

static int quic_request_new(struct sock *sk, struct sk_buff *skb,
			    const struct quic_pkt *pkt,
			    const struct quic_conn_id *retry_odcid)
{
	struct quic_request *req;

	if (sk_acceptq_is_full(sk))
		return -ENOBUFS;
	req = kzalloc(sizeof(*req), GFP_ATOMIC);
	if (!req)
		return -ENOMEM;
	quic_rcv_peer(skb, &req->peer);
	quic_rcv_local(skb, &req->local);
	quic_conn_id_set_raw(&req->dcid, pkt->dcid, pkt->dcid_len);
	quic_conn_id_set_raw(&req->scid, pkt->scid, pkt->scid_len);
	req->retry_odcid = *retry_odcid;
	req->version = pkt->version;
	skb_queue_head_init(&req->skbs);
	__skb_queue_tail(&req->skbs, skb);
	list_add_tail(&req->list, &quic_sk(sk)->requests);
	sk_acceptq_added(sk);
	sk->sk_data_ready(sk);
	return 0;
}

/* Room for a datagram a listener sends on its own (Version Negotiation,
 * Retry, a close): @len payload bytes, with headroom for IP and UDP.
 */
/*
 * RFC 9000 Section 6.1: a client Initial of a version we do not speak is
 * answered with Version Negotiation listing ours (ABI Section 1.7: V2, V1).
 */
static void quic_listen_vn(struct sock *sk, struct sk_buff *skb,
			   const struct quic_pkt *pkt)
{
	u32 len = 7 + pkt->dcid_len + pkt->scid_len + 8;
	union quic_addr local, peer;
	struct sk_buff *nskb;
	u8 *p;

	nskb = quic_path_skb_alloc(len);
	if (!nskb)
		return;
	p = skb_put(nskb, len);
	/* Section 17.2.1: the Unused bits with 0x40 set, like a fixed bit. */
	*p++ = QUIC_HDR_LONG | QUIC_HDR_FIXED | (get_random_u8() & 0x3f);
	p = quic_put_u32(p, 0);
	*p++ = pkt->scid_len;
	p = quic_put_data(p, pkt->scid, pkt->scid_len);
	*p++ = pkt->dcid_len;
	p = quic_put_data(p, pkt->dcid, pkt->dcid_len);
	p = quic_put_u32(p, QUIC_VERSION_V2);
	quic_put_u32(p, QUIC_VERSION_V1);
	quic_rcv_local(skb, &local);
	quic_rcv_peer(skb, &peer);
	quic_path_send_to(quic_sk(sk)->udp->sock->sk, nskb, &local, &peer);
}

/*
 * RFC 9000 Sections 8.1.2 and 17.2.5: with validate_peer_address, a new
 * client's first Initial is answered with a Retry carrying a token; only an
 * Initial that returns it, from the same address within
 * QUIC_RETRY_TOKEN_LIFE (ABI reference: 3 s), makes a request.  The token:
 * type, issue time (ms), the client's first Destination ID, and a MAC
 * (quic_crypto_token_mac()) over those, the Retry's Source ID (the client's
 * Destination ID from then on) and the client's IP address.
 */
#define QUIC_RETRY_TOKEN_TYPE	0x52
#define QUIC_RETRY_TOKEN_LIFE	3000	/* ms */
#define QUIC_RETRY_TOKEN_HDR	(1 + 8 + 1)

static u64 quic_token_now(void)
{
	return div_u64(ktime_get_boottime_ns(), NSEC_PER_MSEC);
}

/* MAC of token @t (@len bytes before its MAC), for @cid and @peer. */
static void quic_retry_token_mac(const u8 *t, u32 len,
				 const struct quic_conn_id *cid,
				 const union quic_addr *peer, u8 *mac)
{
	u8 buf[QUIC_RETRY_TOKEN_HDR + QUIC_CONN_ID_MAX_LEN + 1 +
	       QUIC_CONN_ID_MAX_LEN + 1 + sizeof(struct in6_addr)];
	u8 *p = quic_put_data(buf, t, len);

	*p++ = cid->len;
	p = quic_put_data(p, cid->data, cid->len);
	if (peer->sa.sa_family == AF_INET6) {
		*p++ = 6;
		p = quic_put_data(p, &peer->v6.sin6_addr, 16);
	} else {
		*p++ = 4;
		p = quic_put_data(p, &peer->v4.sin_addr, 4);
	}
	quic_crypto_token_mac(buf, p - buf, mac);
}

static u32 quic_retry_token_build(u8 *t, const struct quic_pkt *pkt,
				  const struct quic_conn_id *scid,
				  const union quic_addr *peer)
{
	u64 now = quic_token_now();
	u8 *p = t;
	int i;

	*p++ = QUIC_RETRY_TOKEN_TYPE;
	for (i = 7; i >= 0; i--)
		*p++ = (u8)(now >> (8 * i));
	*p++ = pkt->dcid_len;
	p = quic_put_data(p, pkt->dcid, pkt->dcid_len);
	quic_retry_token_mac(t, p - t, scid, peer, p);
	return p - t + QUIC_CRYPTO_TOKEN_MAC_LEN;
}

/*
 * The token of an Initial: 1 a valid Retry token (@odcid set from it),
 * 0 none of ours (no token, or one from NEW_TOKEN), -1 a Retry token that
 * is forged, expired or from another address.
 */
static int quic_retry_token_check(const struct quic_pkt *pkt,
				  const union quic_addr *peer,
				  struct quic_conn_id *odcid)
{
	const u8 *t = pkt->token;
	u8 mac[QUIC_CRYPTO_TOKEN_MAC_LEN];
	struct quic_conn_id cid;
	u64 issued = 0, now;
	u32 len;
	int i;

	if (!pkt->token_len || t[0] != QUIC_RETRY_TOKEN_TYPE)
		return 0;
	if (pkt->token_len < QUIC_RETRY_TOKEN_HDR ||
	    t[9] < QUIC_MIN_ODCID_LEN || t[9] > QUIC_CONN_ID_MAX_LEN)
		return -1;
	len = QUIC_RETRY_TOKEN_HDR + t[9];
	if (pkt->token_len != len + QUIC_CRYPTO_TOKEN_MAC_LEN)
		return -1;
	quic_conn_id_set_raw(&cid, pkt->dcid, pkt->dcid_len);
	quic_retry_token_mac(t, len, &cid, peer, mac);
	if (crypto_memneq(mac, t + len, sizeof(mac)))
		return -1;
	for (i = 1; i <= 8; i++)
		issued = (issued << 8) | t[i];
	now = quic_token_now();
	if (issued > now || now - issued > QUIC_RETRY_TOKEN_LIFE)
		return -1;
	quic_conn_id_set_raw(odcid, t + QUIC_RETRY_TOKEN_HDR, t[9]);
	return 1;
}

static void quic_listen_retry(struct sock *sk, struct sk_buff *skb,
			      const struct quic_pkt *pkt,
			      const union quic_addr *peer)
{
	u32 len, tlen, max = 7 + 2 * QUIC_CONN_ID_MAX_LEN +
			     QUIC_RETRY_TOKEN_HDR + QUIC_CONN_ID_MAX_LEN +
			     QUIC_CRYPTO_TOKEN_MAC_LEN + QUIC_CRYPTO_RETRY_TAG_LEN;
	struct quic_conn_id scid;
	union quic_addr local;
	struct sk_buff *nskb;
	u8 *start, *p;

	nskb = quic_path_skb_alloc(max);
	if (!nskb)
		return;
	quic_conn_id_generate(&scid);
	start = skb_tail_pointer(nskb);
	p = start;
	*p++ = quic_pkt_first_byte(pkt->version, QUIC_PKT_RETRY) |
	       (get_random_u8() & 0x0f);
	p = quic_put_u32(p, pkt->version);
	*p++ = pkt->scid_len;
	p = quic_put_data(p, pkt->scid, pkt->scid_len);
	*p++ = scid.len;
	p = quic_put_data(p, scid.data, scid.len);
	tlen = quic_retry_token_build(p, pkt, &scid, peer);
	p += tlen;
	len = p - start;
	if (quic_crypto_retry_tag(pkt->version, pkt->dcid, pkt->dcid_len,
				  start, len, p)) {
		kfree_skb(nskb);
		return;
	}
	skb_put(nskb, len + QUIC_CRYPTO_RETRY_TAG_LEN);
	quic_rcv_local(skb, &local);
	quic_path_send_to(quic_sk(sk)->udp->sock->sk, nskb, &local, peer);
}

/**
 * quic_listen_close - close a client's attempt before any connection exists
 * @usk: the UDP socket it came in on
 * @skb: the client's Initial
 * @pkt: its parsed header
 * @peer: the address it came from
 * @errcode: the transport error code (RFC 9000 Section 20.1)
 *
 * A small Initial with just the CONNECTION_CLOSE, protected with the
 * server Initial keys of the packet's Destination Connection ID; nothing is
 * kept.  Any context.
 */
void quic_listen_close(struct sock *usk, struct sk_buff *skb,
		       const struct quic_pkt *pkt, const union quic_addr *peer,
		       u64 errcode)
{
	u8 close[1 + 8 + 2], *c = close;
	u32 len, pn_offset, plen;
	union quic_addr local;
	struct sk_buff *nskb;
	u8 *start, *p;

	*c++ = QUIC_FRAME_CONNECTION_CLOSE;
	c = quic_varint_put(c, close + sizeof(close), errcode);
	if (!c)
		return;
	*c++ = 0;	/* frame type */
	*c++ = 0;	/* reason length */
	plen = 1 + (c - close) + QUIC_CRYPTO_TAG_LEN;
	len = 7 + pkt->scid_len + pkt->dcid_len + 1 + 2 + plen;
	nskb = quic_path_skb_alloc(len);
	if (!nskb)
		return;
	start = skb_put(nskb, len);
	p = start;
	*p++ = quic_pkt_first_byte(pkt->version, QUIC_PKT_INITIAL); /* 1-byte PN */
	p = quic_put_u32(p, pkt->version);
	*p++ = pkt->scid_len;
	p = quic_put_data(p, pkt->scid, pkt->scid_len);
	*p++ = pkt->dcid_len;
	p = quic_put_data(p, pkt->dcid, pkt->dcid_len);
	*p++ = 0;			/* no token */
	*p++ = 0x40 | (plen >> 8);	/* two-byte Length */
	*p++ = plen & 0xff;
	pn_offset = p - start;
	*p++ = 0;			/* packet number 0 */
	memcpy(p, close, c - close);
	if (quic_crypto_initial_seal(pkt->version, pkt->dcid, pkt->dcid_len,
				     start, len, pn_offset)) {
		kfree_skb(nskb);
		return;
	}
	quic_rcv_local(skb, &local);
	quic_path_send_to(usk, nskb, &local, peer);
	QUIC_INC_STATS(sock_net(usk), QUIC_MIB_FRM_OUTCLOSES);
}

/*
 * RFC 9000 Section 8.1.3: an Initial with a Retry token that is not valid
 * comes from a client that will take no second Retry; close at once with
 * INVALID_TOKEN rather than let it time out.
 */
static void quic_listen_invalid_token(struct sock *sk, struct sk_buff *skb,
				      const struct quic_pkt *pkt,
				      const union quic_addr *peer)
{
	quic_listen_close(quic_sk(sk)->udp->sock->sk, skb, pkt, peer,
			  QUIC_TRANSPORT_ERROR_INVALID_TOKEN);
}

static bool quic_version_known(u32 version)
{
	return version == QUIC_VERSION_V1 || version == QUIC_VERSION_V2;
}

int quic_listen_rcv(struct sock *sk, struct sk_buff *skb)
{
	struct quic_conn_id odcid;
	struct quic_request *req;
	union quic_addr peer;
	int retry;
	struct quic_pkt pkt;
	struct sock *child;

	if (skb->len < QUIC_MIN_INITIAL_SIZE || skb_linearize(skb) ||
	    quic_pkt_parse_long(skb->data, skb->len, &pkt))
		goto drop;
	if (!quic_version_known(pkt.version)) {
		if (pkt.version)
			quic_listen_vn(sk, skb, &pkt);
		goto drop;
	}
	if (pkt.type != QUIC_PKT_INITIAL || pkt.dcid_len < QUIC_MIN_ODCID_LEN)
		goto drop;
	child = quic_cid_lookup(sock_net(sk), pkt.dcid, pkt.dcid_len);
	if (child) {
		quic_input_deliver(child, skb, !sock_owned_by_user(sk));
		sock_put(child);
		return 0;
	}
	/* Nothing is kept for a packet that does not open:
	 * anyone can send 1200 bytes that look like an Initial.
	 */
	if (quic_crypto_initial_check(pkt.version, pkt.dcid, pkt.dcid_len,
				      skb->data, pkt.len, pkt.pn_offset)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_DECDROP);
		kfree_skb(skb);
		return 0;
	}
	quic_rcv_peer(skb, &peer);
	req = quic_request_find(sk, &pkt, &peer);
	if (req && skb_queue_len(&req->skbs) >= QUIC_REQUEST_SKBS_MAX)
		goto drop;
	if (!req) {
		memset(&odcid, 0, sizeof(odcid));
		retry = quic_retry_token_check(&pkt, &peer, &odcid);
		if (retry < 0) {
			quic_listen_invalid_token(sk, skb, &pkt, &peer);
			goto drop;
		}
		if (!retry && quic_sk(sk)->config.validate_peer_address) {
			quic_listen_retry(sk, skb, &pkt, &peer);
			consume_skb(skb);
			return 0;
		}
	}
	/* What requests hold is the listener's receive memory. */
	skb_orphan(skb);
	if (!quic_rcv_charge(sk, skb))
		goto drop;
	if (req) {
		__skb_queue_tail(&req->skbs, skb);
		return 0;
	}
	if (!quic_request_new(sk, skb, &pkt, &odcid))
		return 0;
drop:
	QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
	kfree_skb(skb);
	return 0;
}

/*
 * Wait for a connection request.  accept() ends when one is queued, when
 * the socket stops listening, on a signal or at the timeout.
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
		err = 0;
		if (!list_empty(&quic_sk(sk)->requests))
			break;
		err = -EAGAIN;
		if (!timeo)
			break;
		err = sock_intr_errno(timeo);
		if (signal_pending(current))
			break;
		sk_wait_event(sk, &timeo, !quic_is_listen(sk) ||
			      !list_empty(&quic_sk(sk)->requests), &wait);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	return err;
}

/* Limits of a new connection from our local parameters. */
static void quic_conn_limits_init(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	quic_stream_set_limits(sk);
	qs->idle_timeout = qs->local_tp.max_idle_timeout;
	quic_cong_init(&qs->cong, qs->path.mss,
		       qs->config.initial_smoothed_rtt,
		       qs->config.congestion_control_algo);
	quic_conn_id_set_limit(&qs->dest, qs->local_tp.active_connection_id_limit);
}

/* Timers of a connection that starts (ABI reference Section 5.1 step 3). */
static void quic_conn_timers_start(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	quic_timer_idle_reset(sk);
	if (qs->config.keepalive_probe_interval)
		quic_timer_reset(sk, QUIC_TIMER_PING,
				 qs->config.keepalive_probe_interval);
}

/* Our first connection ID, in the global hash for incoming packets. */
static int quic_conn_scid_init(struct sock *sk)
{
	struct quic_conn_id_entry *e;
	struct quic_conn_id id;

	quic_conn_id_generate(&id);
	e = quic_conn_id_source_add(&quic_sk(sk)->source, &id, GFP_KERNEL);
	if (IS_ERR_OR_NULL(e))
		return e ? PTR_ERR(e) : -ENOMEM;
	return 0;
}

/* What a connection takes from its listener (ABI reference 5.2 step 4). */
static int quic_accept_inherit(struct sock *sk, struct sock *lsk)
{
	struct quic_sock *qs = quic_sk(sk), *lqs = quic_sk(lsk);

	qs->local_tp = lqs->local_tp;
	qs->config = lqs->config;
	qs->events = lqs->events;
	qs->is_serv = 1;
	memcpy(qs->ticket_secret, lqs->ticket_secret, sizeof(qs->ticket_secret));
	sk->sk_rcvbuf = lsk->sk_rcvbuf;
	sk->sk_sndbuf = lsk->sk_sndbuf;
	sk->sk_userlocks = lsk->sk_userlocks;
	sk->sk_rcvtimeo = lsk->sk_rcvtimeo;
	sk->sk_sndtimeo = lsk->sk_sndtimeo;
	sk->sk_bound_dev_if = lsk->sk_bound_dev_if;
	if (lqs->alpn.len)
		return quic_data_set(&qs->alpn, lqs->alpn.data, lqs->alpn.len);
	return 0;
}

static void quic_accept_bind(struct sock *sk, struct sock *lsk,
			     const struct quic_request *req)
{
	struct quic_sock *qs = quic_sk(sk);

	refcount_inc(&quic_sk(lsk)->udp->refcnt);	/* lsk holds one */
	qs->udp = quic_sk(lsk)->udp;
	qs->local = req->local;
	qs->peer = req->peer;
	inet_sk(sk)->inet_sport = quic_addr_port(&qs->local);
	inet_sk(sk)->inet_num = ntohs(inet_sk(sk)->inet_sport);
	inet_sk(sk)->inet_dport = quic_addr_port(&qs->peer);
}

/*
 * RFC 9000 Section 7.2 and RFC 9001 Section 5.2: the server answers to the
 * client's original Destination ID until the client switches to ours, and
 * takes its Initial keys from it.
 */
static int quic_accept_conn_ids(struct sock *sk, const struct quic_request *req)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id_entry *e;
	int err;

	qs->odcid = req->dcid;
	qs->retry_cid = req->retry_odcid;
	qs->peer_scid = req->scid;
	qs->version = req->version;
	err = quic_conn_scid_init(sk);
	if (err)
		return err;
	err = quic_conn_id_dest_init(&qs->dest, &req->scid, GFP_KERNEL);
	if (err)
		return err;
	e = quic_cid_hash_add(sock_net(sk), &qs->odcid, sk, GFP_KERNEL);
	if (IS_ERR_OR_NULL(e))
		return e ? PTR_ERR(e) : -ENOMEM;
	qs->odcid_entry = e;
	return quic_crypto_initial_keys_install(&qs->crypto[QUIC_CRYPTO_INITIAL],
						qs->odcid.data, qs->odcid.len,
						qs->version, true);
}

/* Set up the accepted connection and run the datagrams queued for it. */
static int quic_accept_setup(struct sock *sk, struct sock *lsk,
			     struct quic_request *req)
{
	struct sk_buff *skb;
	int err;

	err = quic_accept_inherit(sk, lsk);
	if (err)
		return err;
	quic_accept_bind(sk, lsk, req);
	err = quic_accept_conn_ids(sk, req);
	if (!err)
		err = quic_path_route(sk);
	if (err)
		return err;
	/* RFC 9000 Section 8.1.2: a Retry token validated the address. */
	if (req->retry_odcid.len)
		quic_sk(sk)->path.validated = 1;
	quic_conn_limits_init(sk);
	__quic_update_rcvbuf(sk);
	__quic_hash_conn(sk, QUIC_SS_ESTABLISHING);
	quic_conn_timers_start(sk);
	while ((skb = __skb_dequeue(&req->skbs))) {
		skb_orphan(skb);	/* charged to the listener so far */
		quic_packet_rcv(sk, skb);
	}
	return 0;
}

/*
 * The new socket is made like any other (so that all of inet_create()
 * and inet6_create() applies), then grafted on the socket accept() gave.
 */
static int quic_accept_sock(struct sock *lsk, struct socket *newsock,
			    bool kern, struct sock **skp)
{
	struct socket *tmp;
	int err;

	err = __sock_create(sock_net(lsk), lsk->sk_family, lsk->sk_type,
			    IPPROTO_QUIC, &tmp, kern);
	if (err)
		return err;
	*skp = tmp->sk;
	sock_graft(*skp, newsock);
	tmp->sk = NULL;
	sock_release(tmp);
	return 0;
}

static struct quic_request *quic_request_pop(struct sock *sk)
{
	struct quic_request *req;

	req = list_first_entry(&quic_sk(sk)->requests, struct quic_request,
			       list);
	list_del(&req->list);
	sk_acceptq_removed(sk);
	return req;
}

static void quic_request_free(struct quic_request *req)
{
	skb_queue_purge(&req->skbs);
	kfree(req);
}

/* ABI reference Section 5.2 step 4: accept() on a non-listener is EINVAL. */
int quic_inet_accept(struct socket *sock, struct socket *newsock, int flags,
		     bool kern)
{
	struct sock *sk = sock->sk, *nsk;
	struct quic_request *req;
	int err = -EINVAL;

	lock_sock(sk);
	if (quic_is_listen(sk))
		err = __quic_wait_for_accept(sk, sock_rcvtimeo(sk, flags & O_NONBLOCK));
	if (err)
		goto out;
	err = quic_accept_sock(sk, newsock, kern, &nsk);
	if (err)
		goto out;
	req = quic_request_pop(sk);
	/* The listener stays locked, so its backlog waits until the
	 * connection IDs of the new socket are hashed.
	 */
	lock_sock_nested(nsk, SINGLE_DEPTH_NESTING);
	err = quic_accept_setup(nsk, sk, req);
	release_sock(nsk);
	quic_request_free(req);
	if (err) {
		newsock->sk = NULL;
		nsk->sk_socket = NULL;
		quic_close(nsk, 0);
		goto out;
	}
	newsock->state = SS_CONNECTED;
	pr_debug("%s: sk %p accepted %p from %pISpc\n", __func__, sk, nsk,
		 &quic_sk(nsk)->peer.sa);
out:
	release_sock(sk);
	return err;
}

/* An AF_INET6 socket bound to :: talks IPv4 to an IPv4 peer. */
static void quic_connect_local(struct quic_sock *qs)
{
	__be16 port = quic_addr_port(&qs->local);

	if (qs->peer.sa.sa_family == qs->local.sa.sa_family)
		return;
	memset(&qs->local, 0, sizeof(qs->local));
	qs->local.sa.sa_family = qs->peer.sa.sa_family;
	if (qs->peer.sa.sa_family == AF_INET)
		qs->local.v4.sin_port = port;
	else
		qs->local.v6.sin6_port = port;
}

/*
 * RFC 9368 Section 2.3: our version_information lets the server answer in
 * the other compatible version (V1 <-> V2, RFC 9369).  Its Initial keys
 * are derived now, as the receive path cannot sleep to derive them.
 */
static int quic_connect_initial_alt(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	u32 other = qs->version == QUIC_VERSION_V2 ? QUIC_VERSION_V1 :
						     QUIC_VERSION_V2;
	int err;

	if (qs->local_tp.disable_compatible_version)
		return 0;
	qs->initial_alt = kzalloc(sizeof(*qs->initial_alt), GFP_KERNEL);
	if (!qs->initial_alt)
		return -ENOMEM;
	err = quic_crypto_initial_keys_install(qs->initial_alt, qs->odcid.data,
					       qs->odcid.len, other, false);
	if (err) {
		kfree(qs->initial_alt);
		qs->initial_alt = NULL;
	}
	return err;
}

/*
 * ABI reference Section 5.1 step 3: random 8-byte Destination (the
 * original DCID, RFC 9000 Section 7.2) and Source IDs, Initial keys from
 * the former (RFC 9001 Section 5.2).
 */
static int quic_connect_conn_ids(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	int err;

	quic_conn_id_generate(&qs->odcid);
	err = quic_conn_scid_init(sk);
	if (!err)
		err = quic_conn_id_dest_init(&qs->dest, &qs->odcid, GFP_KERNEL);
	if (err)
		return err;
	err = quic_crypto_initial_keys_install(&qs->crypto[QUIC_CRYPTO_INITIAL],
					       qs->odcid.data, qs->odcid.len,
					       qs->version, false);
	if (err)
		return err;
	return quic_connect_initial_alt(sk);
}

/*
 * ABI reference Section 6.5: connect() on a connected or listening socket,
 * or to a wildcard or multicast address, is EINVAL.  Otherwise it starts
 * the handshake: it sends nothing until the ClientHello is written.
 */
static int __quic_connect(struct sock *sk, struct sockaddr *addr, int addr_len)
{
	struct quic_sock *qs = quic_sk(sk);
	union quic_addr a;
	int err;

	if (!quic_is_closed(sk) || qs->is_serv)
		return -EINVAL;
	err = quic_addr_from_user(sk, &a, addr, addr_len, false);
	if (err)
		return err;
	if (!qs->udp) {
		err = __quic_autobind(sk);
		if (err)
			return err;
	}
	qs->peer = a;
	/* RFC 9000 Section 8.1: only servers wait for address validation. */
	qs->path.validated = 1;
	quic_connect_local(qs);
	err = quic_path_route(sk);
	if (err)
		goto err;
	qs->version = qs->config.version ?: QUIC_VERSION_V1;
	err = quic_connect_conn_ids(sk);
	if (err)
		goto err;
	quic_conn_limits_init(sk);
	inet_sk(sk)->inet_dport = quic_addr_port(&a);
	__quic_hash_conn(sk, QUIC_SS_ESTABLISHING);
	quic_conn_timers_start(sk);
	pr_debug("%s: sk %p to %pISpc\n", __func__, sk, &a.sa);
	return 0;
err:
	quic_conn_ids_release(sk);
	quic_initial_alt_free(qs);
	quic_crypto_destroy(&qs->crypto[QUIC_CRYPTO_INITIAL]);
	memset(&qs->peer, 0, sizeof(qs->peer));
	qs->local = qs->udp->addr;
	return err;
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
 * Send space: socket buffer and the connection's flow control window, and
 * the window of the stream that stopped the last sendmsg, if any.
 */
static bool quic_send_space(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_flow *f = &qs->flow;

	return READ_ONCE(sk->sk_wmem_queued) < READ_ONCE(sk->sk_sndbuf) &&
	       READ_ONCE(f->send_max) > READ_ONCE(f->send_queued) &&
	       READ_ONCE(qs->streams.send_blocked) < 0;
}

/*
 * ABI reference Section 6.5: a listener is readable when its accept queue
 * is not empty; a connection when its receive queue is not, and writable
 * with buffer space and connection send window; a CLOSED socket reports
 * everything so that pollers wake up.
 */
/*
 * ABI reference Section 5.2 steps 8 and 11: stream data and datagrams that
 * came before the handshake completed (in 0-RTT or 0.5-RTT packets) stay
 * hidden from recvmsg and poll until the socket is ESTABLISHED.  Handshake
 * chunks and events are queued ahead of them (quic_rcv_queue()).
 */
static bool quic_recv_visible(struct sock *sk)
{
	struct sk_buff_head *q = &sk->sk_receive_queue;
	unsigned long flags;
	struct sk_buff *skb;
	bool ret;

	spin_lock_irqsave(&q->lock, flags);
	skb = skb_peek(q);
	ret = skb && (!quic_is_establishing(sk) ||
		      QUIC_ITEM_CB(skb)->kind < QUIC_ITEM_STREAM);
	spin_unlock_irqrestore(&q->lock, flags);
	return ret;
}

__poll_t quic_inet_poll(struct file *file, struct socket *sock,
			struct poll_table_struct *wait)
{
	struct sock *sk = sock->sk;
	__poll_t mask = 0;

	sock_poll_wait(file, sock, wait);
	if (quic_is_listen(sk))
		return list_empty(&quic_sk(sk)->requests) ? 0 :
		       EPOLLIN | EPOLLRDNORM;
	if (quic_is_closed(sk))
		return EPOLLHUP | EPOLLERR | EPOLLIN | EPOLLRDNORM |
		       EPOLLRDHUP | EPOLLOUT | EPOLLWRNORM;
	if (quic_recv_visible(sk))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (quic_send_space(sk))
		mask |= EPOLLOUT | EPOLLWRNORM;
	return mask;
}

/*
 * Receive queue (ABI reference Section 4.5): handshake chunks first, then
 * events, then stream data and datagrams in arrival order.
 */
void quic_rcv_queue(struct sock *sk, struct sk_buff *skb)
{
	struct sk_buff_head *q = &sk->sk_receive_queue;
	u8 kind = QUIC_ITEM_CB(skb)->kind;
	unsigned long flags;
	struct sk_buff *p;

	spin_lock_irqsave(&q->lock, flags);
	if (kind < QUIC_ITEM_STREAM) {
		skb_queue_walk(q, p) {
			if (QUIC_ITEM_CB(p)->kind > kind) {
				__skb_queue_before(q, p, skb);
				goto out;
			}
		}
	}
	__skb_queue_tail(q, skb);
out:
	spin_unlock_irqrestore(&q->lock, flags);
	sk->sk_data_ready(sk);
}

/*
 * Charge a received item to the socket (sk_rmem_alloc), within sk_rcvbuf
 * and the protocol's memory limits (quic_mem, quic_rmem).
 */
bool quic_rcv_charge(struct sock *sk, struct sk_buff *skb)
{
	unsigned int rmem = atomic_read(&sk->sk_rmem_alloc);

	/* One item always fits, so that a small SO_RCVBUF cannot stall. */
	if (rmem && rmem + skb->truesize > (unsigned int)READ_ONCE(sk->sk_rcvbuf))
		return false;
	if (!sk_rmem_schedule(sk, skb, skb->truesize))
		return false;
	skb_set_owner_r(skb, sk);
	return true;
}

/*
 * ABI reference Section 4.5: an event is queued only if subscribed, and
 * dropped when the receive buffer is full.  Byte 0 is the type.
 */
void quic_event_queue(struct sock *sk, u8 type, const void *data, u32 len)
{
	struct sk_buff *skb;

	if (!(quic_sk(sk)->events & BIT(type)))
		return;
	if (atomic_read(&sk->sk_rmem_alloc) >= READ_ONCE(sk->sk_rcvbuf))
		return;
	skb = alloc_skb(1 + len, GFP_ATOMIC);
	if (!skb)
		return;
	skb_put_u8(skb, type);
	skb_put_data(skb, data, len);
	if (!quic_rcv_charge(sk, skb)) {
		kfree_skb(skb);
		return;
	}
	memset(QUIC_ITEM_CB(skb), 0, sizeof(struct quic_item_cb));
	QUIC_ITEM_CB(skb)->kind = QUIC_ITEM_EVENT;
	quic_rcv_queue(sk, skb);
}

/* A wait on the socket for @ready, as sk_stream_wait_memory() does. */
static int quic_wait(struct sock *sk, long *timeo,
		     bool (*ready)(struct sock *sk, void *arg), void *arg)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	int err = 0;

	add_wait_queue(sk_sleep(sk), &wait);
	for (;;) {
		if (!quic_is_connected(sk)) {
			err = -EPIPE;
			break;
		}
		if (ready(sk, arg))
			break;
		if (!*timeo) {
			err = -EAGAIN;
			break;
		}
		if (signal_pending(current)) {
			err = sock_intr_errno(*timeo);
			break;
		}
		sk_wait_event(sk, timeo,
			      !quic_is_connected(sk) || ready(sk, arg), &wait);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	return err;
}

/* sendmsg control messages (ABI reference Section 4.1). */
struct quic_send_info {
	struct quic_stream_info stream;
	u8 level;
	u8 has_stream:1;
	u8 has_handshake:1;
};

static int quic_send_cmsgs(struct msghdr *msg, struct quic_send_info *si)
{
	struct cmsghdr *cmsg;

	si->stream.stream_id = -1;
	for_each_cmsghdr(cmsg, msg) {
		if (!CMSG_OK(msg, cmsg))
			return -EINVAL;
		if (cmsg->cmsg_level != SOL_QUIC)
			continue;
		switch (cmsg->cmsg_type) {
		case QUIC_STREAM_INFO:
			if (cmsg->cmsg_len < CMSG_LEN(sizeof(si->stream)))
				return -EINVAL;
			memcpy(&si->stream, CMSG_DATA(cmsg), sizeof(si->stream));
			if (si->stream.stream_flags & ~QUIC_MSG_STREAM_FLAGS)
				return -EINVAL;
			si->has_stream = 1;
			break;
		case QUIC_HANDSHAKE_INFO:
			if (cmsg->cmsg_len < CMSG_LEN(1))
				return -EINVAL;
			si->level = *(u8 *)CMSG_DATA(cmsg);
			si->has_handshake = 1;
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * ABI reference Section 4.4: CRYPTO data at INITIAL, HANDSHAKE or APP,
 * once that level's send key is installed.
 */
static int __quic_send_handshake(struct sock *sk, struct msghdr *msg,
				 size_t len, u8 level)
{
	struct quic_sock *qs = quic_sk(sk);
	int err;

	if (level >= QUIC_CRYPTO_EARLY || qs->space[level].discarded ||
	    !quic_crypto_send_ready(&qs->crypto[level]))
		return -EINVAL;
	if (!len)
		return -EMSGSIZE;
	err = quic_frame_crypto_queue(sk, level, &msg->msg_iter, len);
	if (err)
		return err;
	if (!(msg->msg_flags & MSG_MORE))
		quic_output_flush(sk);
	return len;
}

/* ABI reference Section 4.3 (RFC 9221): one DATAGRAM frame, never resent. */
static int __quic_send_datagram(struct sock *sk, struct msghdr *msg,
				size_t len)
{
	struct quic_sock *qs = quic_sk(sk);
	u32 max = qs->remote_tp.max_datagram_frame_size;
	struct quic_frame *f;
	u32 hlen;

	if (!max)
		return -EINVAL;
	hlen = 1 + quic_varint_len(len);
	if (!len || len > (size_t)READ_ONCE(sk->sk_sndbuf) || hlen + len > max ||
	    hlen + len > qs->path.mss - 64)
		return -EMSGSIZE;
	f = quic_frame_alloc(hlen + len, QUIC_FRAME_PING, GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->data[0] = QUIC_FRAME_DATAGRAM_LEN;
	quic_put_var(f->data + 1, len);
	if (!copy_from_iter_full(f->data + hlen, len, &msg->msg_iter)) {
		kfree(f);
		return -EFAULT;
	}
	/* Typed PING so that it is not retransmitted when lost. */
	list_add_tail(&f->list, &qs->space[QUIC_SPACE_APP].outq);
	if (!(msg->msg_flags & MSG_MORE))
		quic_output_flush(sk);
	return len;
}

/*
 * Data per STREAM frame at stream offset @off: the frame fills a 1-RTT
 * packet of path.mss bytes, whatever the peer's connection ID length (up
 * to 20) and the packet number length (up to 4), so that datagrams are
 * full and go out as UDP GSO trains (output.c pads the few bytes left).
 */
static u32 quic_stream_frame_data(struct quic_sock *qs, s64 id, u64 off)
{
	u32 over = 1 + QUIC_CONN_ID_MAX_LEN + 4 + QUIC_CRYPTO_TAG_LEN +
		   1 + quic_varint_len(id) + quic_varint_len(off) + 2;

	return qs->path.mss - over;
}

/* Frames queued by one sendmsg between flushes: about a train's worth. */
#define QUIC_SEND_FLUSH_FRAMES	12

/* Bytes the stream may take now: flow control and buffer space. */
static u64 quic_send_window(struct sock *sk, struct quic_stream *s)
{
	struct quic_flow *f = &quic_sk(sk)->flow;
	u64 win;

	if (READ_ONCE(sk->sk_wmem_queued) >= READ_ONCE(sk->sk_sndbuf))
		return 0;
	win = s->send.max - s->send.offset;
	return min(win, f->send_max - f->send_queued);
}

/* Flow control, not the buffer, stops us: tell the peer (RFC 9000 4.1). */
static void quic_send_blocked(struct sock *sk, struct quic_stream *s)
{
	if (READ_ONCE(sk->sk_wmem_queued) >= READ_ONCE(sk->sk_sndbuf))
		return;
	quic_stream_send_blocked(sk, s);
	quic_output_flush(sk);
}

/*
 * The wait releases the socket lock, and the stream may be reset and freed
 * meanwhile: it is looked up again by ID.
 */
static bool quic_send_ready(struct sock *sk, void *arg)
{
	struct quic_send_ctx *ctx = arg;

	ctx->stream = quic_stream_find(sk, ctx->id);
	if (!ctx->stream ||
	    ctx->stream->send.state >= QUIC_STREAM_SEND_STATE_SENT)
		return true;	/* reset meanwhile: sendmsg fails */
	return quic_send_window(sk, ctx->stream) > 0;
}

static bool quic_stream_open_ready(struct sock *sk, void *arg)
{
	struct quic_send_ctx *ctx = arg;

	ctx->stream = quic_stream_send_get(sk, ctx->id, ctx->flags, &ctx->err);
	return ctx->err != -EAGAIN;
}

/*
 * The stream to write to; waits for stream credit (MAX_STREAMS) unless
 * MSG_QUIC_STREAM_DONTWAIT (ABI reference Section 4.2).
 */
int quic_send_stream_get(struct sock *sk, struct quic_send_ctx *ctx,
			 long *timeo)
{
	int err;

	ctx->stream = quic_stream_send_get(sk, ctx->id, ctx->flags, &err);
	if (err != -EAGAIN)
		return err;
	quic_output_flush(sk);	/* STREAMS_BLOCKED */
	if (ctx->flags & MSG_QUIC_STREAM_DONTWAIT)
		return -EAGAIN;
	err = quic_wait(sk, timeo, quic_stream_open_ready, ctx);
	return err ?: ctx->err;
}

/* One STREAM frame of @n bytes from @msg. */
static int quic_send_frame(struct sock *sk, struct quic_stream *s,
			   struct msghdr *msg, u32 n, bool fin)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_frame *f;

	f = quic_frame_stream_new(s->id, s->send.offset, n, fin, GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	if (n && !copy_from_iter_full(f->data + f->len - n, n,
				      &msg->msg_iter)) {
		kfree(f);
		return -EFAULT;
	}
	f->wmem = 1;
	sk_wmem_queued_add(sk, f->len);
	list_add_tail(&f->list, &qs->stream_outq);
	if (qs->streams.send_blocked >= 0)
		WRITE_ONCE(qs->streams.send_blocked, -1);
	s->send.offset += n;
	qs->flow.send_queued += n;
	if (s->send.state == QUIC_STREAM_SEND_STATE_READY)
		s->send.state = QUIC_STREAM_SEND_STATE_SEND;
	if (fin)
		quic_stream_send_fin(sk, s);
	return 0;
}

/*
 * ABI reference Section 4.2: data within the peer's limits is queued and
 * sent as the congestion window allows.  Blocked by flow control, a
 * non-blocking send fails with ENOSPC when a stream was named, else EAGAIN.
 */
static int __quic_send_stream(struct sock *sk, struct msghdr *msg,
			      size_t len, struct quic_send_info *si)
{
	struct quic_send_ctx ctx = {
		.id = si->stream.stream_id,
		.flags = si->stream.stream_flags,
	};
	long timeo = sock_sndtimeo(sk, msg->msg_flags & MSG_DONTWAIT);
	bool fin = ctx.flags & MSG_QUIC_STREAM_FIN;
	u32 n, frames = 0;
	size_t copied = 0;
	u64 win;
	int err;

	if (!len && !fin)
		return -EMSGSIZE;
	err = quic_send_stream_get(sk, &ctx, &timeo);
	if (err)
		return err;
	ctx.id = ctx.stream->id;
	for (;;) {
		win = quic_send_window(sk, ctx.stream);
		if (!win && len - copied) {
			quic_send_blocked(sk, ctx.stream);
			quic_output_flush(sk);
			err = quic_wait(sk, &timeo, quic_send_ready, &ctx);
			ctx.stream = quic_stream_find(sk, ctx.id);
			if (!err && (!ctx.stream || ctx.stream->send.state >=
						    QUIC_STREAM_SEND_STATE_SENT))
				err = -EINVAL;
			if (err == -EAGAIN && si->has_stream &&
			    READ_ONCE(sk->sk_wmem_queued) < sk->sk_sndbuf)
				err = -ENOSPC;
			if (err)
				break;
			continue;
		}
		n = quic_stream_frame_data(quic_sk(sk), ctx.id,
					   ctx.stream->send.offset);
		n = min_t(u64, len - copied, min_t(u64, win, n));
		err = quic_send_frame(sk, ctx.stream, msg, n,
				      fin && copied + n == len);
		if (err)
			break;
		copied += n;
		if (!(msg->msg_flags & MSG_MORE) &&
		    !(++frames % QUIC_SEND_FLUSH_FRAMES))
			quic_output_flush(sk);
		if (copied == len)
			break;
	}
	if (msg->msg_flags & MSG_MORE)
		return copied ?: err;
	quic_output_flush(sk);
	return copied ?: err;
}

/*
 * ABI reference Section 4.1: unknown flags are EINVAL, a socket that is not
 * connected is EPIPE (with SIGPIPE unless MSG_NOSIGNAL or a datagram).
 */
int quic_sendmsg(struct sock *sk, struct msghdr *msg, size_t len)
{
	struct quic_send_info si = {};
	int flags = msg->msg_flags;
	int err;

	if (flags & ~QUIC_MSG_SENDMSG_FLAGS)
		return -EINVAL;

	quic_lock(sk);
	err = -EPIPE;
	if (!quic_is_connected(sk))
		goto out;
	err = quic_send_cmsgs(msg, &si);
	if (err)
		goto out;
	if (si.has_handshake) {
		err = __quic_send_handshake(sk, msg, len, si.level);
		goto out;
	}
	if (flags & MSG_QUIC_DATAGRAM) {
		err = __quic_send_datagram(sk, msg, len);
		goto out;
	}
	if (!si.has_stream)
		si.stream.stream_flags = flags & QUIC_MSG_STREAM_FLAGS;
	err = __quic_send_stream(sk, msg, len, &si);
	if (err == -EPIPE && (flags & MSG_QUIC_DATAGRAM))
		flags |= MSG_NOSIGNAL;
out:
	release_sock(sk);
	if (err == -EPIPE && !(flags & (MSG_NOSIGNAL | MSG_QUIC_DATAGRAM)))
		send_sig(SIGPIPE, current, 0);
	return err;
}

/* recvmsg (ABI reference Section 4.5). */

static bool quic_recv_ready(struct sock *sk, void *arg)
{
	return quic_recv_visible(sk);
}

/* Like quic_wait(), but a CLOSED socket with data queued is readable. */
static int quic_recv_wait(struct sock *sk, long *timeo)
{
	struct quic_sock *qs = quic_sk(sk);
	int err;

	if (quic_recv_visible(sk))
		return 0;
	if (!quic_is_connected(sk))
		return -ENOTCONN;
	/* While a reader sleeps here, arriving packets wait in the backlog
	 * for it (quic_input_deliver()): it decrypts them on its own CPU.
	 */
	qs->rcv_waiters++;
	err = quic_wait(sk, timeo, quic_recv_ready, NULL);
	qs->rcv_waiters--;
	if (err == -EPIPE)
		return skb_queue_empty(&sk->sk_receive_queue) ? -ENOTCONN : 0;
	return err;
}

static void quic_recv_consume(struct sock *sk, struct sk_buff *skb, u32 n)
{
	if (n < skb->len) {
		skb_pull(skb, n);
		return;
	}
	skb_unlink(skb, &sk->sk_receive_queue);
	kfree_skb(skb);
}

/* A handshake chunk, an event or a datagram: one item per call. */
static int quic_recv_item(struct sock *sk, struct msghdr *msg, size_t len,
			  int flags, struct sk_buff *skb)
{
	struct quic_item_cb *cb = QUIC_ITEM_CB(skb);
	struct quic_handshake_info hi;
	u32 n = min_t(size_t, len, skb->len);
	int err;

	err = skb_copy_datagram_msg(skb, 0, msg, n);
	if (err)
		return err;
	if (cb->kind == QUIC_ITEM_HANDSHAKE) {
		hi.crypto_level = cb->level;
		put_cmsg(msg, SOL_QUIC, QUIC_HANDSHAKE_INFO, sizeof(hi), &hi);
	} else if (cb->kind == QUIC_ITEM_EVENT) {
		msg->msg_flags |= MSG_QUIC_NOTIFICATION;
	} else {
		msg->msg_flags |= MSG_QUIC_DATAGRAM;
	}
	if (n == skb->len)
		msg->msg_flags |= MSG_EOR;
	if (!(flags & MSG_PEEK))
		quic_recv_consume(sk, skb, n);
	return n;
}

/* Consecutive data of one stream, up to its FIN (ABI Section 4.5). */
static int quic_recv_stream(struct sock *sk, struct msghdr *msg, size_t len,
			    int flags, struct sk_buff *skb)
{
	struct quic_stream_info info;
	struct quic_stream *s;
	struct sk_buff *next;
	size_t copied = 0;
	bool fin = false;
	u32 n;
	int err;

	/* Its 4 bytes of tail padding reach userspace too. */
	memset(&info, 0, sizeof(info));
	info.stream_id = QUIC_ITEM_CB(skb)->stream_id;
	s = quic_stream_find(sk, info.stream_id);
	while (skb) {
		n = min_t(size_t, len - copied, skb->len);
		err = skb_copy_datagram_msg(skb, 0, msg, n);
		if (err)
			return copied ?: err;
		copied += n;
		fin = n == skb->len && QUIC_ITEM_CB(skb)->fin;
		next = skb_peek_next(skb, &sk->sk_receive_queue);
		if (!(flags & MSG_PEEK)) {
			if (s)
				quic_stream_read(sk, s, n);
			quic_recv_consume(sk, skb, n);
		}
		if (fin || copied == len || !next ||
		    QUIC_ITEM_CB(next)->kind != QUIC_ITEM_STREAM ||
		    QUIC_ITEM_CB(next)->stream_id != info.stream_id)
			break;
		skb = next;
	}
	if (fin) {
		info.stream_flags = MSG_QUIC_STREAM_FIN;
		if (s && !(flags & MSG_PEEK))
			quic_stream_fin_read(sk, s);
	}
	put_cmsg(msg, SOL_QUIC, QUIC_STREAM_INFO, sizeof(info), &info);
	if (msg->msg_flags & MSG_CTRUNC)
		msg->msg_flags |= info.stream_flags;
	return copied;
}

/* ABI reference Section 4.6: a listener, or CLOSED with nothing queued. */
int quic_recvmsg(struct sock *sk, struct msghdr *msg, size_t len, int flags,
		 int *addr_len)
{
	struct sk_buff *skb;
	long timeo;
	int err;

	quic_lock(sk);
	err = -ENOTCONN;
	if (quic_is_listen(sk))
		goto out;
	timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);
	err = quic_recv_wait(sk, &timeo);
	if (err)
		goto out;
	skb = skb_peek(&sk->sk_receive_queue);
	if (QUIC_ITEM_CB(skb)->kind == QUIC_ITEM_STREAM)
		err = quic_recv_stream(sk, msg, len, flags, skb);
	else
		err = quic_recv_item(sk, msg, len, flags, skb);
	if (!(flags & MSG_PEEK)) {
		sk_mem_reclaim(sk);
		quic_output_flush(sk);
	}
out:
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
