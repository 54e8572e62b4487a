// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: connection IDs (RFC 9000 Section 5.1), their sets and the global
 * connection ID hash.  See connid.h for the locking and error conventions.
 *
 * Stateless reset tokens (RFC 9000 Section 10.3.2) are a keyed function of
 * the connection ID: two SipHash-2-4 outputs under two random 128-bit keys
 * drawn when the module loads.  Nobody without the keys can compute a token
 * for a given ID, and a reloaded module has new keys, so tokens seen on the
 * wire before a reload say nothing about those issued after it.
 *
 * The hash holds a reference on the socket of each entry and drops it after
 * an RCU grace period, once the entry is unlinked.  quic_cid_lookup() can
 * therefore read the socket pointer under rcu_read_lock() and take its own
 * reference with refcount_inc_not_zero(), as __inet_lookup_established()
 * does.  The owner must free its source set (quic_conn_id_set_free()) when
 * the connection is closed, not from sk_destruct: the hash's references
 * keep the socket alive until then.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/algapi.h>
#include <linux/err.h>
#include <linux/export.h>
#include <linux/jhash.h>
#include <linux/random.h>
#include <linux/rhashtable.h>
#include <linux/siphash.h>
#include <linux/slab.h>
#include <net/netns/hash.h>
#include <net/sock.h>
#include <uapi/linux/quic.h>

#include "compat.h"
#include "connid.h"

/* Attempts to draw an ID that is not hashed yet (64 random bits). */
#define QUIC_CONN_ID_GEN_TRIES	4

static siphash_key_t quic_cid_secret[2];
static struct rhashtable quic_cid_table;
/* The peers' stateless reset tokens (RFC 9000 Section 10.3.1): a reset
 * need not carry any of our connection IDs, so a datagram that matches no
 * ID is looked up by its last 16 bytes here.  A list table: two peers may
 * hand out the same token.
 */
static struct rhltable quic_token_table;

/**
 * quic_conn_id_generate - draw a new connection ID
 * @id: set to QUIC_CONN_ID_DEF_LEN random bytes (RFC 9000 Section 5.1: IDs
 *	must not be linkable; these carry no information at all)
 */
void quic_conn_id_generate(struct quic_conn_id *id)
{
	id->len = QUIC_CONN_ID_DEF_LEN;
	get_random_bytes(id->data, QUIC_CONN_ID_DEF_LEN);
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_generate);

/**
 * quic_conn_id_token - stateless reset token of one of our IDs
 * @id: the connection ID
 * @token: set to its QUIC_CONN_ID_TOKEN_LEN-byte token, a keyed function
 *	of @id only (RFC 9000 Section 10.3.2)
 */
void quic_conn_id_token(const struct quic_conn_id *id, u8 *token)
{
	u64 half[2];

	half[0] = siphash(id->data, id->len, &quic_cid_secret[0]);
	half[1] = siphash(id->data, id->len, &quic_cid_secret[1]);
	BUILD_BUG_ON(sizeof(half) != QUIC_CONN_ID_TOKEN_LEN);
	memcpy(token, half, QUIC_CONN_ID_TOKEN_LEN);
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_token);

/**
 * quic_conn_id_errcode - QUIC transport error for an error of this file
 * @err: negative errno returned by a quic_conn_id_* function
 *
 * Return: the error code for the CONNECTION_CLOSE frame.
 */
u32 quic_conn_id_errcode(int err)
{
	switch (err) {
	case -EPROTO:
		return QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION;
	case -EUSERS:
		return QUIC_TRANSPORT_ERROR_CONNECTION_ID_LIMIT;
	case -EINVAL:
		return QUIC_TRANSPORT_ERROR_FRAME_ENCODING;
	default:
		return QUIC_TRANSPORT_ERROR_INTERNAL;
	}
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_errcode);

/* The hash */

static u32 quic_cid_hashfn(const void *data, u32 len, u32 seed)
{
	const struct quic_cid_key *key = data;

	return jhash(key->id.data, key->id.len, seed ^ net_hash_mix(key->net));
}

static u32 quic_cid_obj_hashfn(const void *data, u32 len, u32 seed)
{
	const struct quic_conn_id_entry *e = data;

	return quic_cid_hashfn(&e->key, len, seed);
}

/* Return: 0 if the entry matches the key, as rhashtable expects. */
static int quic_cid_obj_cmpfn(struct rhashtable_compare_arg *arg,
			      const void *obj)
{
	const struct quic_conn_id_entry *e = obj;
	const struct quic_cid_key *key = arg->key;

	return !(net_eq(key->net, e->key.net) &&
		 quic_conn_id_equal(&key->id, &e->key.id));
}

static const struct rhashtable_params quic_cid_params = {
	.head_offset		= offsetof(struct quic_conn_id_entry, node),
	.key_offset		= offsetof(struct quic_conn_id_entry, key),
	.key_len		= sizeof(struct quic_cid_key),
	.hashfn			= quic_cid_hashfn,
	.obj_hashfn		= quic_cid_obj_hashfn,
	.obj_cmpfn		= quic_cid_obj_cmpfn,
	.automatic_shrinking	= true,
};

static const struct rhashtable_params quic_token_params = {
	.head_offset		= offsetof(struct quic_conn_id_entry, tnode),
	.key_offset		= offsetof(struct quic_conn_id_entry, token),
	.key_len		= QUIC_CONN_ID_TOKEN_LEN,
	.automatic_shrinking	= true,
};

static void quic_conn_id_entry_free_rcu(struct rcu_head *head)
{
	struct quic_conn_id_entry *e;

	e = container_of(head, struct quic_conn_id_entry, rcu);
	sock_put(e->sk);
	kfree_sensitive(e);
}

/* Unlink from the hash if hashed, then free (after a grace period if so). */
static void quic_conn_id_entry_free(struct quic_conn_id_entry *e)
{
	if (!e->hashed && !e->token_hashed) {
		kfree_sensitive(e);
		return;
	}
	if (e->hashed)
		rhashtable_remove_fast(&quic_cid_table, &e->node,
				       quic_cid_params);
	if (e->token_hashed)
		rhltable_remove(&quic_token_table, &e->tnode,
				quic_token_params);
	call_rcu(&e->rcu, quic_conn_id_entry_free_rcu);
}

/*
 * Hash a destination ID's token to the set's owner, holding a reference
 * as the ID hash does.  Without memory the token is only not hashed: the
 * connection then learns of a reset that carries none of its IDs by its
 * idle timeout, as without this table.
 */
static void quic_token_hash(struct quic_conn_id_set *set,
			    struct quic_conn_id_entry *e)
{
	if (!set->owner || !e->has_token || e->token_hashed)
		return;
	sock_hold(set->owner);
	e->sk = set->owner;
	if (rhltable_insert(&quic_token_table, &e->tnode, quic_token_params)) {
		e->sk = NULL;
		sock_put(set->owner);
		return;
	}
	e->token_hashed = 1;
}

/**
 * quic_conn_id_dest_own - hash the peer's reset tokens to their socket
 * @set: the destination set
 * @sk: its socket; the tokens of @set, now and later, find it through
 *	quic_token_lookup() until quic_conn_id_set_free()
 */
void quic_conn_id_dest_own(struct quic_conn_id_set *set, struct sock *sk)
{
	struct quic_conn_id_entry *e;

	set->owner = sk;
	quic_conn_id_for_each(e, set)
		quic_token_hash(set, e);
}

/**
 * quic_token_lookup - the socket a stateless reset token was given to
 * @net: namespace the datagram arrived in
 * @token: its last QUIC_CONN_ID_TOKEN_LEN bytes
 *
 * A first sieve only: the socket compares the token with its own, in
 * constant time, before it believes it (quic_conn_id_dest_token_match()).
 * Softirq context.
 *
 * Return: the socket, held; NULL if no connection in @net has @token.
 */
struct sock *quic_token_lookup(const struct net *net, const u8 *token)
{
	struct quic_conn_id_entry *e;
	struct rhlist_head *list, *pos;
	struct sock *sk = NULL;

	rcu_read_lock();
	list = rhltable_lookup(&quic_token_table, token, quic_token_params);
	rhl_for_each_entry_rcu(e, pos, list, tnode) {
		if (net_eq(sock_net(e->sk), net) &&
		    refcount_inc_not_zero(&e->sk->sk_refcnt)) {
			sk = e->sk;
			break;
		}
	}
	rcu_read_unlock();
	return sk;
}

/* Return: 0, or -EEXIST if the ID is already in use in this namespace. */
static int quic_cid_hash_insert(struct quic_conn_id_entry *e, struct net *net,
				struct sock *sk)
{
	int err;

	e->key.net = net;
	e->sk = sk;
	sock_hold(sk);
	err = rhashtable_lookup_insert_key(&quic_cid_table, &e->key, &e->node,
					   quic_cid_params);
	if (err) {
		e->sk = NULL;
		sock_put(sk);
		return err;
	}
	e->hashed = 1;
	return 0;
}

/**
 * quic_cid_hash_add - hash a connection ID that belongs to no set
 * @net: namespace of @sk
 * @id: the ID, e.g. the Destination Connection ID a client chose for its
 *	first Initial, which a server accepts until the handshake is done
 * @sk: the socket that packets to @id belong to
 * @gfp: allocation flags
 *
 * Return: the entry, to pass to quic_cid_hash_del(); ERR_PTR(-EEXIST) if
 * the ID is in use in @net, ERR_PTR(-ENOMEM).
 */
struct quic_conn_id_entry *quic_cid_hash_add(struct net *net,
					     const struct quic_conn_id *id,
					     struct sock *sk, gfp_t gfp)
{
	struct quic_conn_id_entry *e;
	int err;

	if (id->len > QUIC_CONN_ID_MAX_LEN)
		return ERR_PTR(-EINVAL);
	e = kzalloc(sizeof(*e), gfp);
	if (!e)
		return ERR_PTR(-ENOMEM);
	INIT_LIST_HEAD(&e->list);
	e->key.id = *id;
	err = quic_cid_hash_insert(e, net, sk);
	if (err) {
		kfree(e);
		return ERR_PTR(err);
	}
	return e;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cid_hash_add);

/**
 * quic_cid_hash_del - unhash and free an entry of quic_cid_hash_add()
 * @e: the entry; NULL is ignored
 */
void quic_cid_hash_del(struct quic_conn_id_entry *e)
{
	if (e)
		quic_conn_id_entry_free(e);
}
EXPORT_SYMBOL_IF_KUNIT(quic_cid_hash_del);

/**
 * quic_cid_lookup - find the socket an incoming packet is addressed to
 * @net: namespace the packet arrived in
 * @dcid: its Destination Connection ID
 * @len: length of @dcid; QUIC_CONN_ID_DEF_LEN for short header packets,
 *	which carry no length (RFC 9000 Section 17.3): all our IDs have it
 *
 * Lockless (RCU), no allocation; callable from softirq.
 *
 * Return: the socket with a reference taken (release it with sock_put()),
 * or NULL.  The socket may be closing: the caller checks its state.
 */
struct sock *quic_cid_lookup(const struct net *net, const u8 *dcid, u8 len)
{
	struct quic_conn_id_entry *e;
	struct quic_cid_key key;
	struct sock *sk = NULL;

	if (len > QUIC_CONN_ID_MAX_LEN)
		return NULL;
	key.net = net;
	key.id.len = len;
	memcpy(key.id.data, dcid, len);

	rcu_read_lock();
	e = rhashtable_lookup(&quic_cid_table, &key, quic_cid_params);
	if (e && refcount_inc_not_zero(&e->sk->sk_refcnt))
		sk = e->sk;
	rcu_read_unlock();
	return sk;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cid_lookup);

/* Sets */

/**
 * quic_conn_id_set_init - initialise an empty set
 * @set: the set
 * @sk: for a source set, the socket its IDs are hashed to; NULL for a
 *	destination set
 * @limit: for a source set, the peer's active_connection_id_limit (2, the
 *	RFC 9000 Section 18.2 default, until its transport parameters are
 *	known); for a destination set, our own
 */
void quic_conn_id_set_init(struct quic_conn_id_set *set, struct sock *sk,
			   u8 limit)
{
	memset(set, 0, sizeof(*set));
	INIT_LIST_HEAD(&set->head);
	set->sk = sk;
	set->limit = limit;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_set_init);

static void quic_conn_id_unlink(struct quic_conn_id_set *set,
				struct quic_conn_id_entry *e)
{
	list_del(&e->list);
	set->count--;
	if (set->active == e)
		set->active = NULL;
	quic_conn_id_entry_free(e);
}

/* After a removal: the peer or we moved on to the lowest remaining ID. */
static void quic_conn_id_fix_active(struct quic_conn_id_set *set)
{
	if (!set->active)
		set->active = list_first_entry_or_null(&set->head,
						       struct quic_conn_id_entry,
						       list);
}

/**
 * quic_conn_id_set_free - free every entry (and unhash source IDs)
 * @set: the set; it is empty and reusable afterwards
 */
void quic_conn_id_set_free(struct quic_conn_id_set *set)
{
	struct quic_conn_id_entry *e, *tmp;

	list_for_each_entry_safe(e, tmp, &set->head, list)
		quic_conn_id_unlink(set, e);
	set->retire_count = 0;
	set->retire_queued = 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_set_free);

/**
 * quic_conn_id_find - look an ID up by sequence number
 * @set: the set
 * @seq: the sequence number
 *
 * Return: the entry, or NULL.
 */
struct quic_conn_id_entry *quic_conn_id_find(const struct quic_conn_id_set *set,
					     u32 seq)
{
	struct quic_conn_id_entry *e;

	quic_conn_id_for_each(e, set)
		if (e->seq == seq)
			return e;
	return NULL;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_find);

/**
 * quic_conn_id_find_id - look an ID up by value
 * @set: the set
 * @id: the connection ID
 *
 * Return: the entry, or NULL.
 */
static struct quic_conn_id_entry *
quic_conn_id_find_id(const struct quic_conn_id_set *set,
		     const struct quic_conn_id *id)
{
	struct quic_conn_id_entry *e;

	quic_conn_id_for_each(e, set)
		if (quic_conn_id_equal(&e->key.id, id))
			return e;
	return NULL;
}

/**
 * quic_conn_id_set_active - choose the ID in use
 * @set: the set
 * @seq: sequence number of a held ID
 *
 * The socket option adds its own rules (ABI reference Section 3: only a
 * higher number than the current one).
 *
 * Return: 0, or -EINVAL if no ID has that number.
 */
int quic_conn_id_set_active(struct quic_conn_id_set *set, u32 seq)
{
	struct quic_conn_id_entry *e = quic_conn_id_find(set, seq);

	if (!e)
		return -EINVAL;
	set->active = e;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_set_active);

/* Return: the held ID with the lowest number >= @seq, or NULL. */
static struct quic_conn_id_entry *
quic_conn_id_find_from(const struct quic_conn_id_set *set, u32 seq)
{
	struct quic_conn_id_entry *e;

	quic_conn_id_for_each(e, set)
		if (e->seq >= seq)
			return e;
	return NULL;
}

/**
 * quic_conn_id_first_seq - lowest sequence number held
 * @set: the set
 *
 * Return: the number, 0 if the set is empty.
 */
u32 quic_conn_id_first_seq(const struct quic_conn_id_set *set)
{
	if (list_empty(&set->head))
		return 0;
	return list_first_entry(&set->head, struct quic_conn_id_entry,
				list)->seq;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_first_seq);

/**
 * quic_conn_id_last_seq - highest sequence number held
 * @set: the set
 *
 * Return: the number, 0 if the set is empty.
 */
VISIBLE_IF_KUNIT u32 quic_conn_id_last_seq(const struct quic_conn_id_set *set)
{
	if (list_empty(&set->head))
		return 0;
	return list_last_entry(&set->head, struct quic_conn_id_entry,
			       list)->seq;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_last_seq);

/* Keep the list ordered by sequence number; new numbers are usually last. */
static void quic_conn_id_insert(struct quic_conn_id_set *set,
				struct quic_conn_id_entry *e)
{
	struct quic_conn_id_entry *pos;

	list_for_each_entry_reverse(pos, &set->head, list) {
		if (pos->seq < e->seq) {
			list_add(&e->list, &pos->list);
			goto out;
		}
	}
	list_add(&e->list, &set->head);
out:
	set->count++;
	if (!set->active)
		set->active = e;
}

/* Source set */

/* IDs the peer has not been asked to retire (RFC 9000 Section 5.1.1). */
static u8 quic_conn_id_source_unretired(const struct quic_conn_id_set *set)
{
	struct quic_conn_id_entry *e;
	u8 n = 0;

	quic_conn_id_for_each(e, set)
		if (e->seq >= set->prior_to)
			n++;
	return n;
}

/**
 * quic_conn_id_source_room - how many more IDs may be issued now
 * @set: the source set
 *
 * RFC 9000 Section 5.1.1: an endpoint must not provide more IDs than the
 * peer's active_connection_id_limit; IDs below the Retire Prior To we sent
 * do not count.  Those wait for the peer's RETIRE_CONNECTION_ID; the number
 * held in all is bounded too.
 *
 * Return: the number of quic_conn_id_source_add() calls that will succeed.
 */
u8 quic_conn_id_source_room(const struct quic_conn_id_set *set)
{
	u8 limit = min_t(u8, set->limit, QUIC_CONN_ID_LIMIT_MAX);
	u8 unretired = quic_conn_id_source_unretired(set);
	u8 held_room;

	if (unretired >= limit || set->count >= QUIC_CONN_ID_RETIRE_MAX ||
	    set->next_seq == U32_MAX)
		return 0;
	held_room = QUIC_CONN_ID_RETIRE_MAX - set->count;
	return min_t(u8, limit - unretired, held_room);
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_source_room);

static int quic_conn_id_source_hash(struct quic_conn_id_set *set,
				    struct quic_conn_id_entry *e,
				    const struct quic_conn_id *id)
{
	struct net *net = sock_net(set->sk);
	int i, err;

	if (id) {
		e->key.id = *id;
		return quic_cid_hash_insert(e, net, set->sk);
	}
	for (i = 0; i < QUIC_CONN_ID_GEN_TRIES; i++) {
		quic_conn_id_generate(&e->key.id);
		err = quic_cid_hash_insert(e, net, set->sk);
		if (err != -EEXIST)
			return err;
	}
	return -EEXIST;
}

/**
 * quic_conn_id_source_add - issue a new ID
 * @set: the source set
 * @id: the ID to use (a server's ID for its preferred address, say), or
 *	NULL to draw a random QUIC_CONN_ID_DEF_LEN-byte one
 * @gfp: allocation flags
 *
 * The ID gets the next sequence number and its stateless reset token, and
 * is hashed to the set's socket.  The caller then sends it in a
 * NEW_CONNECTION_ID frame (RFC 9000 Section 19.15) with @set->prior_to as
 * Retire Prior To, except sequence number 0 (the handshake's Source
 * Connection ID) and a server's number 1 when it is the preferred
 * address's.
 *
 * Return: the entry, ERR_PTR(-EUSERS) if quic_conn_id_source_room() is 0,
 * ERR_PTR(-EEXIST) if @id (or every ID drawn) is in use, ERR_PTR(-ENOMEM),
 * ERR_PTR(-EINVAL) for a destination set or a bad @id.
 */
struct quic_conn_id_entry *
quic_conn_id_source_add(struct quic_conn_id_set *set,
			const struct quic_conn_id *id, gfp_t gfp)
{
	struct quic_conn_id_entry *e;
	int err;

	if (!set->sk || (id && id->len > QUIC_CONN_ID_MAX_LEN))
		return ERR_PTR(-EINVAL);
	if (!quic_conn_id_source_room(set))
		return ERR_PTR(-EUSERS);
	e = kzalloc(sizeof(*e), gfp);
	if (!e)
		return ERR_PTR(-ENOMEM);

	err = quic_conn_id_source_hash(set, e, id);
	if (err) {
		kfree(e);
		return ERR_PTR(err);
	}
	e->seq = set->next_seq++;
	if (!e->seq)
		set->sent_next = 1;	/* the handshake's Source ID */
	quic_conn_id_token(&e->key.id, e->token);
	e->has_token = 1;
	quic_conn_id_insert(set, e);
	return e;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_source_add);

/**
 * quic_conn_id_source_retire - handle a RETIRE_CONNECTION_ID frame
 * @set: the source set
 * @seq: its Sequence Number
 * @pkt_dcid: Destination Connection ID of the packet that carried it
 *
 * RFC 9000 Section 19.16.  A number already retired is ignored (the frame
 * was repeated).  The caller then issues replacements while
 * quic_conn_id_source_room() allows (Section 5.1.1).  A number above any
 * the peer was sent is a PROTOCOL_VIOLATION, even if the ID is issued and
 * its NEW_CONNECTION_ID frame waits to be sent: a peer that guesses the
 * next numbers must not make us issue and queue IDs without bound.
 *
 * Return: 0; -EPROTO if @seq was never sent (quic_conn_id_source_sent())
 * or names the ID the frame arrived on.
 */
int quic_conn_id_source_retire(struct quic_conn_id_set *set, u32 seq,
			       const struct quic_conn_id *pkt_dcid)
{
	struct quic_conn_id_entry *e;

	if (seq >= set->sent_next)
		return -EPROTO;
	e = quic_conn_id_find(set, seq);
	if (!e)
		return 0;
	if (pkt_dcid && quic_conn_id_equal(&e->key.id, pkt_dcid))
		return -EPROTO;
	quic_conn_id_unlink(set, e);
	quic_conn_id_fix_active(set);
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_source_retire);

/*
 * ABI reference Section 3 (CONNECTION_ID set): at least one held ID stays,
 * at least one is retired, and the new IDs still have sequence numbers.
 */
static int quic_conn_id_check_prior(const struct quic_conn_id_set *set,
				    u32 prior_to)
{
	if (list_empty(&set->head) ||
	    prior_to <= quic_conn_id_first_seq(set) ||
	    prior_to > quic_conn_id_last_seq(set) ||
	    (u64)prior_to + set->limit > U32_MAX)
		return -EINVAL;
	return 0;
}

/**
 * quic_conn_id_source_retire_prior - ask the peer to retire our old IDs
 * @set: the source set
 * @prior_to: retire every ID numbered below this
 *
 * The IDs stay hashed until the peer retires them (RFC 9000 Section
 * 5.1.2); the caller issues new ones (quic_conn_id_source_room() counts
 * only those not asked to be retired), each NEW_CONNECTION_ID frame with
 * Retire Prior To @prior_to.
 *
 * Return: 0 or -EINVAL (see quic_conn_id_check_prior()).
 */
int quic_conn_id_source_retire_prior(struct quic_conn_id_set *set,
				     u32 prior_to)
{
	int err;

	if (prior_to <= set->prior_to)
		return -EINVAL;
	err = quic_conn_id_check_prior(set, prior_to);
	if (err)
		return err;
	set->prior_to = prior_to;
	if (set->active && set->active->seq < prior_to)
		set->active = quic_conn_id_find_from(set, prior_to);
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_source_retire_prior);

/**
 * quic_conn_id_source_sent - a NEW_CONNECTION_ID frame was sent
 * @set: the source set
 * @seq: its Sequence Number; the peer may retire it from now on
 */
void quic_conn_id_source_sent(struct quic_conn_id_set *set, u32 seq)
{
	if (seq >= set->sent_next && seq < set->next_seq)
		set->sent_next = seq + 1;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_source_sent);

/* Destination set */

/**
 * quic_conn_id_dest_init - record the peer's first ID (sequence number 0)
 * @set: an empty destination set
 * @id: the Source Connection ID of the peer's first packet (a client
 *	starts with the random Destination Connection ID it chose and then
 *	calls quic_conn_id_dest_update())
 * @gfp: allocation flags
 *
 * Return: 0, -EINVAL (set not empty, bad @id), -ENOMEM.
 */
int quic_conn_id_dest_init(struct quic_conn_id_set *set,
			   const struct quic_conn_id *id, gfp_t gfp)
{
	struct quic_conn_id_entry *e;

	if (!list_empty(&set->head) || id->len > QUIC_CONN_ID_MAX_LEN)
		return -EINVAL;
	e = kzalloc(sizeof(*e), gfp);
	if (!e)
		return -ENOMEM;
	e->key.id = *id;
	quic_conn_id_insert(set, e);
	set->next_seq = 1;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_dest_init);

/**
 * quic_conn_id_dest_update - replace the ID of sequence number 0
 * @set: the destination set
 * @id: the new ID: a client's DCID after a Retry (RFC 9000 Section 17.2.5)
 *	or after the server's first Initial (Section 7.2)
 *
 * Return: 0, -ENOENT if sequence number 0 is gone, -EINVAL for a bad @id.
 */
int quic_conn_id_dest_update(struct quic_conn_id_set *set,
			     const struct quic_conn_id *id)
{
	struct quic_conn_id_entry *e = quic_conn_id_find(set, 0);

	if (id->len > QUIC_CONN_ID_MAX_LEN)
		return -EINVAL;
	if (!e)
		return -ENOENT;
	e->key.id = *id;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_dest_update);

/**
 * quic_conn_id_dest_set_token - attach a stateless reset token
 * @set: the destination set
 * @seq: sequence number; 0 for the server's stateless_reset_token
 *	transport parameter (RFC 9000 Section 18.2)
 * @token: QUIC_CONN_ID_TOKEN_LEN bytes
 *
 * Return: 0 or -ENOENT.
 */
int quic_conn_id_dest_set_token(struct quic_conn_id_set *set, u32 seq,
				const u8 *token)
{
	struct quic_conn_id_entry *e = quic_conn_id_find(set, seq);

	if (!e)
		return -ENOENT;
	if (e->token_hashed)	/* hashed under its token: keep it */
		return memcmp(e->token, token, QUIC_CONN_ID_TOKEN_LEN) ?
		       -EEXIST : 0;
	memcpy(e->token, token, QUIC_CONN_ID_TOKEN_LEN);
	e->has_token = 1;
	quic_token_hash(set, e);
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_dest_set_token);

/*
 * RFC 9000 Section 5.1.2: a retired ID is announced in RETIRE_CONNECTION_ID
 * and remembered until that frame is acknowledged, so a number is never
 * queued twice (Section 19.15: "unless it has already done so for that
 * sequence number"); more than QUIC_CONN_ID_RETIRE_MAX of them is
 * CONNECTION_ID_LIMIT_ERROR.
 */
static int quic_conn_id_retire_queue(struct quic_conn_id_set *set, u32 seq)
{
	u8 i;

	for (i = 0; i < set->retire_count; i++)
		if (set->retire[i] == seq)
			return 0;
	if (set->retire_count >= QUIC_CONN_ID_RETIRE_MAX)
		return -EUSERS;
	set->retire[set->retire_count++] = seq;
	return 0;
}

/* Retire every held ID numbered below @prior_to. */
static int quic_conn_id_dest_retire_below(struct quic_conn_id_set *set,
					  u32 prior_to)
{
	struct quic_conn_id_entry *e, *tmp;
	int err;

	list_for_each_entry_safe(e, tmp, &set->head, list) {
		if (e->seq >= prior_to)
			break;
		err = quic_conn_id_retire_queue(set, e->seq);
		if (err)
			return err;
		quic_conn_id_unlink(set, e);
	}
	return 0;
}

/*
 * RFC 9000 Section 19.15: a repeated frame is ignored; an ID or a sequence
 * number used twice with different contents is a PROTOCOL_VIOLATION.
 *
 * Return: 1 if the frame repeats a held ID, 0 if it is new, -EPROTO.
 */
static int quic_conn_id_dest_dup(const struct quic_conn_id_set *set, u32 seq,
				 const struct quic_conn_id *id, const u8 *token)
{
	struct quic_conn_id_entry *e = quic_conn_id_find(set, seq);

	if (e) {
		if (quic_conn_id_equal(&e->key.id, id) && e->has_token &&
		    !crypto_memneq(e->token, token, QUIC_CONN_ID_TOKEN_LEN))
			return 1;
		return -EPROTO;
	}
	return quic_conn_id_find_id(set, id) ? -EPROTO : 0;
}

static int quic_conn_id_dest_check(const struct quic_conn_id_set *set,
				   u64 seq, u64 prior_to,
				   const struct quic_conn_id *id)
{
	/* Section 19.15: Length 1..20, Retire Prior To <= Sequence Number. */
	if (id->len < 1 || id->len > QUIC_CONN_ID_MAX_LEN || prior_to > seq)
		return -EINVAL;
	/* A peer that uses a zero-length ID cannot issue others. */
	if (set->active && !set->active->key.id.len)
		return -EPROTO;
	/* We count sequence numbers in 32 bits (the socket options do). */
	if (seq >= U32_MAX)
		return -EUSERS;
	return 0;
}

/* Held IDs numbered below @prior_to. */
static u8 quic_conn_id_count_below(const struct quic_conn_id_set *set,
				   u32 prior_to)
{
	struct quic_conn_id_entry *e;
	u8 n = 0;

	quic_conn_id_for_each(e, set)
		if (e->seq < prior_to)
			n++;
	return n;
}

/*
 * A new ID, and the retirement of those below a new Retire Prior To.  All
 * checks and the allocation come first: the set never loses the ID in use
 * without gaining its replacement, so @set->active is never left NULL.
 */
static int quic_conn_id_dest_new(struct quic_conn_id_set *set, u32 seq,
				 u32 prior_to, const struct quic_conn_id *id,
				 const u8 *token, gfp_t gfp)
{
	struct quic_conn_id_entry *e;
	u8 n = 0;

	if (prior_to > set->prior_to)
		n = quic_conn_id_count_below(set, prior_to);
	/* Sections 5.1.1 and 5.1.2: our active_connection_id_limit, and
	 * the retirements we track.
	 */
	if (set->count - n >= set->limit ||
	    set->retire_count + n > QUIC_CONN_ID_RETIRE_MAX)
		return -EUSERS;
	e = kzalloc(sizeof(*e), gfp);
	if (!e)
		return -ENOMEM;
	e->key.id = *id;
	e->seq = seq;
	memcpy(e->token, token, QUIC_CONN_ID_TOKEN_LEN);
	e->has_token = 1;
	if (prior_to > set->prior_to) {
		/* Cannot fail: there is room for @n. */
		quic_conn_id_dest_retire_below(set, prior_to);
		set->prior_to = prior_to;
		quic_conn_id_fix_active(set);
	}
	quic_conn_id_insert(set, e);
	quic_token_hash(set, e);
	if (seq >= set->next_seq)
		set->next_seq = seq + 1;
	return 0;
}

/**
 * quic_conn_id_dest_add - handle a NEW_CONNECTION_ID frame
 * @set: the destination set
 * @seq: Sequence Number
 * @prior_to: Retire Prior To
 * @id: Connection ID
 * @token: Stateless Reset Token (QUIC_CONN_ID_TOKEN_LEN bytes)
 * @gfp: allocation flags
 *
 * RFC 9000 Section 19.15.  IDs below the largest Retire Prior To received
 * are retired: the sequence numbers to put in RETIRE_CONNECTION_ID frames
 * come from quic_conn_id_dest_next_retire().  If the ID in use is retired,
 * @set->active moves to the lowest remaining one (Section 5.1.2).
 *
 * Return: 0; -EINVAL (FRAME_ENCODING_ERROR), -EPROTO (PROTOCOL_VIOLATION),
 * -EUSERS (CONNECTION_ID_LIMIT_ERROR), -ENOMEM.
 */
int quic_conn_id_dest_add(struct quic_conn_id_set *set, u64 seq,
			  u64 prior_to, const struct quic_conn_id *id,
			  const u8 *token, gfp_t gfp)
{
	int err;

	err = quic_conn_id_dest_check(set, seq, prior_to, id);
	if (err)
		return err;
	err = quic_conn_id_dest_dup(set, seq, id, token);
	if (err)
		return err < 0 ? err : 0;

	/* Already covered by an earlier Retire Prior To: retire at once. */
	if (seq < set->prior_to)
		return quic_conn_id_retire_queue(set, seq);
	return quic_conn_id_dest_new(set, seq, prior_to, id, token, gfp);
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_dest_add);

/**
 * quic_conn_id_dest_retire_prior - retire the peer's IDs below a number
 * @set: the destination set
 * @prior_to: retire every ID numbered below this
 *
 * For the CONNECTION_ID socket option (dest = 1).  The retired numbers come
 * out of quic_conn_id_dest_next_retire(); IDs the peer issues later with a
 * lower number are retired as they arrive.
 *
 * Return: 0; -EINVAL (see quic_conn_id_check_prior()); -EAGAIN if too many
 * retirements are still unannounced.
 */
int quic_conn_id_dest_retire_prior(struct quic_conn_id_set *set,
				   u32 prior_to)
{
	int err;

	err = quic_conn_id_check_prior(set, prior_to);
	if (err)
		return err;
	if (set->retire_count + quic_conn_id_count_below(set, prior_to) >
	    QUIC_CONN_ID_RETIRE_MAX)
		return -EAGAIN;

	err = quic_conn_id_dest_retire_below(set, prior_to);
	if (err)
		return err;
	set->prior_to = max(set->prior_to, prior_to);
	quic_conn_id_fix_active(set);
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_dest_retire_prior);

/**
 * quic_conn_id_prior_check - would retiring the IDs below @prior_to be taken?
 * @set: the source or destination set
 * @prior_to: retire every ID numbered below this
 * @dest: @set is the destination set
 *
 * The checks of quic_conn_id_source_retire_prior() and
 * quic_conn_id_dest_retire_prior(), without a change: a caller that does
 * something else first (CONNECTION_ID switching the active ID) checks here
 * so that an error leaves everything as it was.
 *
 * Return: 0, -EINVAL, or -EAGAIN (destination: too many retirements pending).
 */
int quic_conn_id_prior_check(const struct quic_conn_id_set *set, u32 prior_to,
			     bool dest)
{
	int err;

	if (!dest && prior_to <= set->prior_to)
		return -EINVAL;
	err = quic_conn_id_check_prior(set, prior_to);
	if (err)
		return err;
	if (dest && set->retire_count + quic_conn_id_count_below(set, prior_to) >
		    QUIC_CONN_ID_RETIRE_MAX)
		return -EAGAIN;
	return 0;
}

/**
 * quic_conn_id_dest_next_retire - next RETIRE_CONNECTION_ID to send
 * @set: the destination set
 * @seq: its Sequence Number
 *
 * The number counts as queued from now on, and is kept until
 * quic_conn_id_dest_retire_acked(): a lost frame is the caller's to
 * retransmit, and a caller that cannot queue the frame gives the number
 * back with quic_conn_id_dest_retire_unqueue().
 *
 * Return: true if @seq was set, false if nothing is left to announce.
 */
bool quic_conn_id_dest_next_retire(struct quic_conn_id_set *set, u32 *seq)
{
	if (set->retire_queued >= set->retire_count)
		return false;
	*seq = set->retire[set->retire_queued++];
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_dest_next_retire);

/**
 * quic_conn_id_dest_retire_unqueue - the last number could not be queued
 * @set: the destination set
 */
void quic_conn_id_dest_retire_unqueue(struct quic_conn_id_set *set)
{
	if (set->retire_queued)
		set->retire_queued--;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_dest_retire_unqueue);

/**
 * quic_conn_id_dest_retire_acked - a RETIRE_CONNECTION_ID was acknowledged
 * @set: the destination set
 * @seq: its Sequence Number, forgotten now
 */
void quic_conn_id_dest_retire_acked(struct quic_conn_id_set *set, u32 seq)
{
	u8 i;

	for (i = 0; i < set->retire_queued; i++) {
		if (set->retire[i] != seq)
			continue;
		set->retire_count--;
		set->retire_queued--;
		memmove(&set->retire[i], &set->retire[i + 1],
			(set->retire_count - i) * sizeof(set->retire[0]));
		return;
	}
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_dest_retire_acked);

/**
 * quic_conn_id_dest_token_match - is this a stateless reset?
 * @set: the destination set
 * @token: the last QUIC_CONN_ID_TOKEN_LEN bytes of a datagram that could
 *	not be processed (RFC 9000 Section 10.3.1)
 *
 * Compares in constant time against every token the peer gave us.
 *
 * Return: true if @token is one of them.
 */
bool quic_conn_id_dest_token_match(const struct quic_conn_id_set *set,
				   const u8 *token)
{
	struct quic_conn_id_entry *e;

	quic_conn_id_for_each(e, set)
		if (e->has_token &&
		    !crypto_memneq(e->token, token, QUIC_CONN_ID_TOKEN_LEN))
			return true;
	return false;
}
EXPORT_SYMBOL_IF_KUNIT(quic_conn_id_dest_token_match);

/* Module init and exit */

/* Only reachable if an owner leaked a set: entries hold a socket each. */
static void quic_cid_free_leftover(void *ptr, void *arg)
{
	struct quic_conn_id_entry *e = ptr;

	pr_warn("connection ID still hashed at exit\n");
	sock_put(e->sk);
	kfree_sensitive(e);
}

/**
 * quic_connid_init - draw the token keys and create the hash
 *
 * Return: 0 or a negative errno.
 */
int quic_connid_init(void)
{
	int err;

	get_random_bytes(quic_cid_secret, sizeof(quic_cid_secret));
	err = rhashtable_init(&quic_cid_table, &quic_cid_params);
	if (err)
		return err;
	err = rhltable_init(&quic_token_table, &quic_token_params);
	if (err)
		rhashtable_destroy(&quic_cid_table);
	return err;
}

/* Every socket is gone: free the table, wait for pending frees, wipe keys. */
void quic_connid_exit(void)
{
	rhashtable_free_and_destroy(&quic_cid_table, quic_cid_free_leftover,
				    NULL);
	rhltable_free_and_destroy(&quic_token_table, quic_cid_free_leftover,
				  NULL);
	rcu_barrier();
	memzero_explicit(quic_cid_secret, sizeof(quic_cid_secret));
}
