// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: ALPN demultiplexing of new connections (ABI reference Sections 3
 * and 5.2).  Listeners on one address and port have disjoint ALPN sets
 * (socket.c refuses overlaps), and a new client goes to the one whose set
 * holds the protocol the client asks for.
 *
 * When every listener of a UDP socket has the same set (one listener, or
 * an SO_REUSEPORT group), nothing is read: the client's first Destination
 * Connection ID picks one of them by hash, the same one for every Initial
 * of the connection.  Otherwise the client's Initials are opened here with
 * the keys of their Destination ID, before any connection exists, and the
 * CRYPTO stream is put together up to the end of the ClientHello (which
 * may span several Initials: large key shares).  This is the only TLS the
 * kernel reads (ABI reference Section 5): the ClientHello's extensions, for
 * the ALPN extension (RFC 7301 Section 3.1), every length checked.
 *
 * The choice: the client's protocols in its order, the first that a
 * listener offers selects that listener (its SO_REUSEPORT group, by
 * hash).  RFC 7301 Section 3.2 lets the server prefer; with disjoint sets
 * no single server order exists across listeners, and the chosen
 * listener's TLS library still applies its own preference within its set.
 * A ClientHello without ALPN, or with none a listener offers, goes to a
 * listener without an ALPN set if there is one (its TLS library decides);
 * otherwise the client gets CONNECTION_CLOSE with CRYPTO_ERROR 0x178
 * (no_application_protocol, RFC 9001 Sections 4.8 and 8.1) in an Initial,
 * and nothing is kept.  A malformed ClientHello, one bigger than
 * QUIC_DEMUX_CH_MAX or an ALPN extension over QUIC_DEMUX_ALPN_MAX bytes is
 * dropped (counted as QuicPktInvFrmDrop): the client times out, as it
 * would with a server that cannot parse it.
 *
 * While a ClientHello is incomplete, its datagrams (at most
 * QUIC_DEMUX_SKBS_MAX) and the buffer are charged to the receive memory of
 * the port's first listener; at most QUIC_DEMUX_ENTRIES_MAX clients are
 * followed per UDP socket, each for QUIC_DEMUX_LIFE at most.  Once the
 * listener is chosen, the held datagrams go to it, and a small record
 * sends it the client's later Initials until the connection exists (its
 * Destination ID is then in the hash) or the record expires.
 */

#include <linux/jhash.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <net/sock.h>

#include "quic.h"
#include "packet.h"
#include "input.h"
#include "demux.h"

#define QUIC_DEMUX_ENTRIES_MAX	256	/* clients followed per UDP socket */
#define QUIC_DEMUX_SKBS_MAX	8	/* datagrams held for one ClientHello */
#define QUIC_DEMUX_RANGES	8	/* pieces of CRYPTO data apart */
#define QUIC_DEMUX_LIFE		(10 * HZ)
#define QUIC_MIN_ODCID_LEN	8	/* RFC 9000 Section 7.2 */

/* TLS 1.3 (RFC 8446 Section 4): handshake type and extension number. */
#define QUIC_TLS_CLIENT_HELLO	1
#define QUIC_TLS_EXT_ALPN	16
/* RFC 8446 Section 6: no_application_protocol, as CRYPTO_ERROR. */
#define QUIC_TLS_ALERT_NO_APP	120

struct quic_demux_range {
	u32 start;
	u32 end;
};

struct quic_demux {
	struct list_head list;		/* quic_demux_table.list */
	union quic_addr peer;
	struct quic_conn_id dcid;	/* the client's first Destination ID */
	unsigned long expires;		/* jiffies */
	struct sock *owner;		/* listener charged (held) */
	struct sock *target;		/* chosen listener (held), or NULL */
	struct sk_buff_head skbs;	/* held until the choice */
	u8 *ch;				/* CRYPTO stream from offset 0 */
	u32 mem;			/* bytes charged to @owner */
	u8 nr;				/* ranges of @ch received */
	struct quic_demux_range r[QUIC_DEMUX_RANGES];
};

/* ALPN lists (RFC 7301 Section 3.1): 1-byte length, then the protocol name. */

bool quic_alpn_has(const struct quic_data *alpn, const u8 *name, u8 len)
{
	u32 i = 0;

	while (i < alpn->len) {
		if (alpn->data[i] == len && !memcmp(&alpn->data[i + 1], name, len))
			return true;
		i += alpn->data[i] + 1;
	}
	return false;
}

bool quic_alpn_overlap(const struct quic_data *a, const struct quic_data *b)
{
	u32 i = 0;

	while (i < a->len) {
		if (quic_alpn_has(b, &a->data[i + 1], a->data[i]))
			return true;
		i += a->data[i] + 1;
	}
	return false;
}

bool quic_alpn_equal(const struct quic_data *a, const struct quic_data *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

/* A big-endian number of @n bytes. */
static bool quic_ch_get(const u8 **pp, const u8 *end, u32 n, u32 *v)
{
	const u8 *p = *pp;

	if (end - p < n)
		return false;
	*v = 0;
	while (n--)
		*v = (*v << 8) | *p++;
	*pp = p;
	return true;
}

/* A vector with an @n-byte length of @min..@max bytes: its body. */
static bool quic_ch_vec(const u8 **pp, const u8 *end, u32 n, u32 min, u32 max,
			const u8 **body, u32 *len)
{
	if (!quic_ch_get(pp, end, n, len) || *len < min || *len > max ||
	    end - *pp < *len)
		return false;
	*body = *pp;
	*pp += *len;
	return true;
}

/* RFC 7301 Section 3.1: a non-empty ProtocolNameList of non-empty names. */
static bool quic_ch_alpn_valid(const u8 *p, u32 len)
{
	u32 i = 0;

	while (i < len) {
		if (!p[i] || p[i] > len - i - 1)
			return false;
		i += p[i] + 1;
	}
	return len > 0;
}

/**
 * quic_client_hello_alpn - the ALPN extension of a TLS 1.3 ClientHello
 * @ch: the ClientHello from its handshake header (type, 24-bit length)
 * @len: bytes of it at hand
 * @alpn: set to the ProtocolNameList (1-byte length-prefixed names)
 * @alpn_len: its length
 *
 * RFC 8446 Section 4.1.2: legacy_version, random, legacy_session_id,
 * cipher_suites, legacy_compression_methods, extensions; every length is
 * checked against what encloses it, and the extensions must fill the
 * message exactly.  Any context.
 *
 * Return: 0 and the list; -EAGAIN if @len is short of the whole message;
 * -ENOENT if it has no ALPN extension; -EMSGSIZE if the message exceeds
 * QUIC_DEMUX_CH_MAX or the list QUIC_DEMUX_ALPN_MAX; -EINVAL if it is not
 * a well-formed ClientHello (a second ALPN extension included).
 */
int quic_client_hello_alpn(const u8 *ch, u32 len, const u8 **alpn,
			   u32 *alpn_len)
{
	const u8 *p, *end, *body, *list = NULL;
	u32 mlen, v, type, n = 0;

	if (len < 4)
		return -EAGAIN;
	if (ch[0] != QUIC_TLS_CLIENT_HELLO)
		return -EINVAL;
	mlen = (ch[1] << 16) | (ch[2] << 8) | ch[3];
	if (mlen > QUIC_DEMUX_CH_MAX - 4)
		return -EMSGSIZE;
	if (len - 4 < mlen)
		return -EAGAIN;
	p = ch + 4;
	end = p + mlen;
	if (end - p < 2 + 32)		/* legacy_version, random */
		return -EINVAL;
	p += 2 + 32;
	if (!quic_ch_vec(&p, end, 1, 0, 32, &body, &v) ||	/* session ID */
	    !quic_ch_vec(&p, end, 2, 2, 0xfffe, &body, &v) || (v & 1) ||
	    !quic_ch_vec(&p, end, 1, 1, 0xff, &body, &v))	/* compression */
		return -EINVAL;
	if (p == end)
		return -ENOENT;		/* no extensions at all */
	if (!quic_ch_get(&p, end, 2, &v) || v != end - p)
		return -EINVAL;
	while (p < end) {
		if (!quic_ch_get(&p, end, 2, &type) ||
		    !quic_ch_vec(&p, end, 2, 0, 0xffff, &body, &v))
			return -EINVAL;
		if (type != QUIC_TLS_EXT_ALPN)
			continue;
		if (list)	/* RFC 8446 Section 4.2: one of each type */
			return -EINVAL;
		if (!quic_ch_vec(&body, body + v, 2, 2, 0xffff, &list, &n) ||
		    n != v - 2 || !quic_ch_alpn_valid(list, n))
			return -EINVAL;
	}
	if (!list)
		return -ENOENT;
	if (n > QUIC_DEMUX_ALPN_MAX)
		return -EMSGSIZE;
	*alpn = list;
	*alpn_len = n;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_client_hello_alpn);

void quic_demux_init(struct quic_demux_table *t)
{
	spin_lock_init(&t->lock);
	INIT_LIST_HEAD(&t->list);
	t->count = 0;
}

static bool quic_demux_charge(struct quic_demux *d, u32 n)
{
	struct sock *sk = d->owner;

	if (atomic_read(&sk->sk_rmem_alloc) + n > READ_ONCE(sk->sk_rcvbuf))
		return false;
	atomic_add(n, &sk->sk_rmem_alloc);
	d->mem += n;
	return true;
}

/* Give up what @d holds but the record of its choice. */
static void quic_demux_release(struct quic_demux *d)
{
	skb_queue_purge(&d->skbs);
	kfree(d->ch);
	d->ch = NULL;
	atomic_sub(d->mem, &d->owner->sk_rmem_alloc);
	d->mem = 0;
}

static void quic_demux_free(struct quic_demux_table *t, struct quic_demux *d)
{
	quic_demux_release(d);
	list_del(&d->list);
	t->count--;
	sock_put(d->owner);
	if (d->target)
		sock_put(d->target);
	kfree(d);
}

/* Expired entries go (oldest first: the list is in creation order). */
static void quic_demux_gc(struct quic_demux_table *t)
{
	struct quic_demux *d, *n;

	list_for_each_entry_safe(d, n, &t->list, list) {
		if (time_before(jiffies, d->expires))
			break;
		quic_demux_free(t, d);
	}
}

static struct quic_demux *quic_demux_find(struct quic_demux_table *t,
					  const struct quic_pkt *pkt,
					  const union quic_addr *peer)
{
	struct quic_demux *d;

	list_for_each_entry(d, &t->list, list) {
		if (quic_conn_id_equal_raw(&d->dcid, pkt->dcid, pkt->dcid_len) &&
		    quic_addr_equal(&d->peer, peer))
			return d;
	}
	return NULL;
}

static struct quic_demux *quic_demux_new(struct quic_demux_table *t,
					 struct sock *owner,
					 const struct quic_pkt *pkt,
					 const union quic_addr *peer)
{
	struct quic_demux *d, *old;

	if (t->count >= QUIC_DEMUX_ENTRIES_MAX) {
		/* Make room by the oldest record of a choice made, if any. */
		old = list_first_entry(&t->list, struct quic_demux, list);
		if (!old->target)
			return NULL;
		quic_demux_free(t, old);
	}
	d = kzalloc(sizeof(*d), GFP_ATOMIC);
	if (!d)
		return NULL;
	d->ch = kmalloc(QUIC_DEMUX_CH_MAX, GFP_ATOMIC | __GFP_NOWARN);
	d->owner = owner;
	skb_queue_head_init(&d->skbs);
	if (!d->ch || !quic_demux_charge(d, sizeof(*d) + QUIC_DEMUX_CH_MAX)) {
		kfree(d->ch);
		kfree(d);
		return NULL;
	}
	sock_hold(owner);
	d->peer = *peer;
	quic_conn_id_set_raw(&d->dcid, pkt->dcid, pkt->dcid_len);
	d->expires = jiffies + QUIC_DEMUX_LIFE;
	list_add_tail(&d->list, &t->list);
	t->count++;
	return d;
}

/* CRYPTO bytes [@off, @off + @len) into @d, the ranges merged. */
static int quic_demux_crypto(struct quic_demux *d, u64 off, const u8 *data,
			     u64 len)
{
	struct quic_demux_range r[QUIC_DEMUX_RANGES + 1];
	u32 start, end, i, n = 0;
	bool placed = false;

	if (!len)
		return 0;
	if (off > QUIC_DEMUX_CH_MAX || len > QUIC_DEMUX_CH_MAX - off)
		return -EMSGSIZE;
	start = off;
	end = off + len;
	memcpy(d->ch + start, data, len);
	/* d->nr ranges and the new one fit in r[] whatever overlaps */
	for (i = 0; i < d->nr; i++) {
		if (d->r[i].end < start || placed) {
			r[n++] = d->r[i];
		} else if (d->r[i].start > end) {
			r[n].start = start;
			r[n++].end = end;
			r[n++] = d->r[i];
			placed = true;
		} else {
			start = min(start, d->r[i].start);
			end = max(end, d->r[i].end);
		}
	}
	if (!placed) {
		r[n].start = start;
		r[n++].end = end;
	}
	if (n > QUIC_DEMUX_RANGES)
		return -ENOSPC;
	memcpy(d->r, r, n * sizeof(r[0]));
	d->nr = n;
	return 0;
}

/*
 * The frames of a client Initial before any answer: CRYPTO, PADDING and
 * PING (RFC 9000 Section 17.2.2 allows also ACK and CONNECTION_CLOSE,
 * which carry nothing for us: the rest of the packet is skipped).
 */
static int quic_demux_frames(struct quic_demux *d, const u8 *p, u32 len)
{
	const u8 *end = p + len;
	u64 off, n;
	int err;

	while (p < end) {
		switch (*p) {
		case QUIC_FRAME_PADDING:
		case QUIC_FRAME_PING:
			p++;
			break;
		case QUIC_FRAME_CRYPTO:
			p++;
			if (!quic_varint_get(&p, end, &off) ||
			    !quic_varint_get(&p, end, &n) || n > end - p)
				return -EINVAL;
			err = quic_demux_crypto(d, off, p, n);
			if (err)
				return err;
			p += n;
			break;
		default:
			return 0;
		}
	}
	return 0;
}

static u32 quic_demux_hash(const u8 *dcid, u8 len)
{
	static u32 seed __read_mostly;

	net_get_random_once(&seed, sizeof(seed));
	return jhash(dcid, len, seed);
}

/*
 * The listener for @set, held: one of those with exactly that ALPN set (an
 * SO_REUSEPORT group), by @hash.  Under rcu_read_lock().
 */
static struct sock *quic_demux_pick(struct quic_udp_sock *us,
				    const struct quic_data *set, u32 hash)
{
	struct quic_sock *qs;
	u32 n = 0, i;

	hlist_for_each_entry_rcu(qs, &us->listeners, lnode)
		n += quic_alpn_equal(&qs->alpn, set);
	if (!n)
		return NULL;
	i = reciprocal_scale(hash, n);
	hlist_for_each_entry_rcu(qs, &us->listeners, lnode) {
		if (!quic_alpn_equal(&qs->alpn, set) || i--)
			continue;
		if (!refcount_inc_not_zero(&qs->inet.sk.sk_refcnt))
			return NULL;
		return &qs->inet.sk;
	}
	return NULL;
}

/* The listener for the client's ALPN list (NULL: none given), held. */
static struct sock *quic_demux_choose(struct quic_udp_sock *us,
				      const u8 *alpn, u32 len, u32 hash)
{
	static const struct quic_data none;
	struct quic_sock *qs;
	u32 i;

	for (i = 0; i < len; i += alpn[i] + 1) {
		hlist_for_each_entry_rcu(qs, &us->listeners, lnode) {
			if (quic_alpn_has(&qs->alpn, &alpn[i + 1], alpn[i]))
				return quic_demux_pick(us, &qs->alpn, hash);
		}
	}
	return quic_demux_pick(us, &none, hash);
}

/* Whether the listeners of @us have different ALPN sets; @first the first. */
static bool quic_demux_needed(struct quic_udp_sock *us,
			      struct quic_sock **first)
{
	struct quic_sock *qs;

	*first = NULL;
	hlist_for_each_entry_rcu(qs, &us->listeners, lnode) {
		if (!*first)
			*first = qs;
		else if (!quic_alpn_equal(&(*first)->alpn, &qs->alpn))
			return true;
	}
	return false;
}

/* After the choice: the held datagrams go to @sk; the record stays. */
static void quic_demux_decided(struct quic_demux *d, struct sock *sk,
			       struct sk_buff_head *out)
{
	sock_hold(sk);
	d->target = sk;
	skb_queue_splice_init(&d->skbs, out);
	quic_demux_release(d);
	d->expires = jiffies + QUIC_DEMUX_LIFE;
}

static bool quic_version_ok(u32 version)
{
	return version == QUIC_VERSION_V1 || version == QUIC_VERSION_V2;
}

/*
 * A record of a choice: its listener, held, if it still listens; otherwise
 * the record goes.  Called with the table locked.
 */
static struct sock *quic_demux_record(struct quic_demux_table *t,
				      struct quic_demux **dp)
{
	struct sock *sk = (*dp)->target;

	if (!sk)
		return NULL;
	if (quic_is_listen(sk)) {
		sock_hold(sk);
		return sk;
	}
	quic_demux_free(t, *dp);
	*dp = NULL;
	return NULL;
}

/*
 * Where a client's Initial goes when the listeners differ by ALPN.
 * Return: the listener (held), or NULL with @skb consumed.
 */
static struct sock *quic_demux_hello(struct quic_udp_sock *us,
				     struct sk_buff *skb, u32 hash)
{
	struct quic_demux_table *t = &us->demux;
	struct sock *sk = NULL, *owner;
	const u8 *alpn = NULL;
	struct sk_buff_head held;
	struct quic_demux *d;
	union quic_addr peer;
	struct sk_buff *h;
	struct quic_pkt pkt;
	u32 plen, alen = 0;
	int err = 0;
	u8 *buf;

	if (skb->len < QUIC_MIN_INITIAL_SIZE || skb_linearize(skb) ||
	    quic_pkt_parse_long(skb->data, skb->len, &pkt) ||
	    !quic_version_ok(pkt.version) || pkt.type != QUIC_PKT_INITIAL ||
	    pkt.dcid_len < QUIC_MIN_ODCID_LEN)
		goto first;	/* the first listener drops it, or answers VN */
	quic_rcv_peer(skb, &peer);

	spin_lock_bh(&t->lock);
	quic_demux_gc(t);
	d = quic_demux_find(t, &pkt, &peer);
	if (d)
		sk = quic_demux_record(t, &d);
	spin_unlock_bh(&t->lock);
	if (sk)
		return sk;

	owner = quic_udp_listener(us);	/* charged with what is held */
	buf = kmalloc(pkt.len, GFP_ATOMIC | __GFP_NOWARN);
	if (!owner || !buf) {
		QUIC_INC_STATS(sock_net(us->sock->sk), QUIC_MIB_PKT_RCVDROP);
		goto out;
	}
	if (quic_crypto_initial_open(pkt.version, pkt.dcid, pkt.dcid_len,
				     skb->data, pkt.len, pkt.pn_offset, buf,
				     &plen)) {
		QUIC_INC_STATS(sock_net(owner), QUIC_MIB_PKT_DECDROP);
		goto out;
	}
	__skb_queue_head_init(&held);
	spin_lock_bh(&t->lock);
	d = quic_demux_find(t, &pkt, &peer);
	if (d)
		sk = quic_demux_record(t, &d);
	if (sk)
		goto unlock;
	if (!d)
		d = quic_demux_new(t, owner, &pkt, &peer);
	err = d ? quic_demux_frames(d, buf, plen) : -ENOBUFS;
	if (!err)
		err = d->nr && !d->r[0].start ?
		      quic_client_hello_alpn(d->ch, d->r[0].end, &alpn, &alen) :
		      -EAGAIN;
	if (err == -EAGAIN) {
		err = -ENOBUFS;
		if (skb_queue_len(&d->skbs) < QUIC_DEMUX_SKBS_MAX &&
		    quic_demux_charge(d, skb->truesize)) {
			skb_orphan(skb);
			__skb_queue_tail(&d->skbs, skb);
			skb = NULL;
			goto unlock;
		}
	}
	if (err == -ENOENT)	/* no ALPN: a listener without a set */
		err = 0;
	if (!err) {
		sk = quic_demux_choose(us, alpn, alen, hash);
		if (sk)
			quic_demux_decided(d, sk, &held);
		else
			err = -ENOPROTOOPT;
	}
	if (err) {
		QUIC_INC_STATS(sock_net(owner), err == -ENOBUFS ?
			       QUIC_MIB_PKT_RCVDROP : QUIC_MIB_PKT_INVFRMDROP);
		if (d)
			quic_demux_free(t, d);
	}
unlock:
	spin_unlock_bh(&t->lock);
	if (err == -ENOPROTOOPT)
		quic_listen_close(us->sock->sk, skb, &pkt, &peer,
				  QUIC_TRANSPORT_ERROR_CRYPTO +
				  QUIC_TLS_ALERT_NO_APP);
	while ((h = __skb_dequeue(&held)))
		quic_input_deliver(sk, h, false);
out:
	if (owner)
		sock_put(owner);
	kfree(buf);
	if (!sk && skb)
		kfree_skb(skb);
	return sk;
first:
	sk = quic_udp_listener(us);
	if (!sk) {
		QUIC_INC_STATS(sock_net(us->sock->sk), QUIC_MIB_PKT_RCVDROP);
		kfree_skb(skb);
	}
	return sk;
}

/**
 * quic_demux_input - the listener for a new client's Initial
 * @us: the UDP socket it came in on
 * @skb: the datagram, its Destination ID known to no connection
 * @dcid: its Destination Connection ID
 * @dcid_len: the ID's length
 *
 * Softirq context, under rcu_read_lock().
 *
 * Return: the listener to deliver @skb to, held; or NULL, @skb consumed
 * (held until its ClientHello is complete, or dropped).
 */
struct sock *quic_demux_input(struct quic_udp_sock *us, struct sk_buff *skb,
			      const u8 *dcid, u8 dcid_len)
{
	u32 hash = quic_demux_hash(dcid, dcid_len);
	struct quic_sock *first;
	struct sock *sk = NULL;

	if (quic_demux_needed(us, &first))
		return quic_demux_hello(us, skb, hash);
	if (first)
		sk = quic_demux_pick(us, &first->alpn, hash);
	if (!sk) {
		QUIC_INC_STATS(sock_net(us->sock->sk), QUIC_MIB_PKT_RCVDROP);
		kfree_skb(skb);
	}
	return sk;
}

/**
 * quic_demux_purge - forget what involves a listener
 * @us: its UDP socket
 * @sk: the listener, or NULL for everything
 *
 * Process context.
 */
void quic_demux_purge(struct quic_udp_sock *us, const struct sock *sk)
{
	struct quic_demux_table *t = &us->demux;
	struct quic_demux *d, *n;

	spin_lock_bh(&t->lock);
	list_for_each_entry_safe(d, n, &t->list, list) {
		if (!sk || d->owner == sk || d->target == sk)
			quic_demux_free(t, d);
	}
	spin_unlock_bh(&t->lock);
}
