/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: connection IDs (RFC 9000 Section 5.1).
 *
 * Three things live in connid.c:
 *
 *  - struct quic_conn_id, a connection ID of 0..20 bytes, with random
 *    generation and stateless reset tokens derived from it;
 *  - the per-connection sets: the source set holds the IDs we issued (the
 *    peer sends to them), the destination set the IDs the peer issued (we
 *    send to them), with the NEW_CONNECTION_ID and RETIRE_CONNECTION_ID
 *    rules of RFC 9000 Sections 5.1.1, 5.1.2, 19.15 and 19.16;
 *  - one global hash of the source IDs of every connection, keyed by
 *    (netns, ID), that maps the Destination Connection ID of an incoming
 *    packet to its socket.
 *
 * The sets take no lock: the caller serialises all changes to one set (the
 * socket lock, or the socket spinlock on the softirq path).  The hash has its
 * own locking; quic_cid_lookup() is lockless (RCU).
 *
 * Errors that are connection errors on the wire are returned as negative
 * errnos; quic_conn_id_errcode() gives the QUIC transport error for them:
 *   -EPROTO  PROTOCOL_VIOLATION (0x0a)
 *   -EUSERS  CONNECTION_ID_LIMIT_ERROR (0x09)
 *   -EINVAL  FRAME_ENCODING_ERROR (0x07)
 *   other    INTERNAL_ERROR (0x01)
 */

#ifndef __NET_QUIC_CONNID_H
#define __NET_QUIC_CONNID_H

#include <linux/list.h>
#include <linux/rhashtable-types.h>
#include <linux/string.h>
#include <linux/types.h>

struct net;
struct sock;

#define QUIC_CONN_ID_MAX_LEN	20	/* RFC 9000 Section 17.2 */
#define QUIC_CONN_ID_DEF_LEN	8	/* every ID this module generates */
#define QUIC_CONN_ID_TOKEN_LEN	16	/* stateless reset token, Section 10.3 */
#define QUIC_CONN_ID_LIMIT_MIN	2	/* active_connection_id_limit, 18.2 */
#define QUIC_CONN_ID_LIMIT_MAX	8	/* ABI reference Section 1.13 */
/* Retired IDs whose RETIRE_CONNECTION_ID is not sent yet (Section 5.1.2). */
#define QUIC_CONN_ID_RETIRE_MAX	(2 * QUIC_CONN_ID_LIMIT_MAX)

/**
 * struct quic_conn_id - a connection ID
 * @len: number of bytes in @data, 0..QUIC_CONN_ID_MAX_LEN
 * @data: the ID; bytes past @len are not significant
 */
struct quic_conn_id {
	u8 len;
	u8 data[QUIC_CONN_ID_MAX_LEN];
};

/**
 * struct quic_cid_key - key of the connection ID hash
 * @net: network namespace of the socket
 * @id: the connection ID
 */
struct quic_cid_key {
	const struct net *net;
	struct quic_conn_id id;
};

/**
 * struct quic_conn_id_entry - one connection ID of a set, or one hashed ID
 * @node: in the global hash (hashed entries only)
 * @key: namespace and ID; @key.id is the ID
 * @list: in the set, ordered by sequence number
 * @sk: socket of a hashed entry; the hash holds a reference on it
 * @rcu: hashed entries are freed after a grace period
 * @seq: sequence number (RFC 9000 Section 5.1.1)
 * @token: stateless reset token, valid if @has_token
 * @has_token: @token is set (always for source IDs)
 * @hashed: the entry is in the global hash
 * @tnode: in the token hash (destination IDs of an owned set, with a token)
 * @token_hashed: the entry is in the token hash; @sk is then the owner
 */
struct quic_conn_id_entry {
	struct rhash_head node;
	struct quic_cid_key key;
	struct list_head list;
	struct sock *sk;
	struct rcu_head rcu;
	u32 seq;
	u8 token[QUIC_CONN_ID_TOKEN_LEN];
	u8 has_token:1;
	u8 hashed:1;
	u8 token_hashed:1;
	struct rhlist_head tnode;
};

/**
 * struct quic_conn_id_set - the source or destination IDs of a connection
 * @head: entries ordered by sequence number
 * @active: the ID in use: for the destination set, the one we send to; for
 *	the source set, the one the peer sends to, as far as we know
 * @sk: owner of a source set (its entries are hashed to it); NULL for a
 *	destination set
 * @owner: destination set: the socket the peer's stateless reset tokens are
 *	hashed to, so that a reset that carries none of our IDs finds it
 *	(quic_conn_id_dest_own()); NULL: tokens are not hashed
 * @next_seq: source: sequence number of the next ID we issue; destination:
 *	one above the highest sequence number the peer issued
 * @prior_to: Retire Prior To: source: the largest we sent; destination: the
 *	largest we received (Section 19.15)
 * @limit: most IDs the other end accepts: source: the peer's
 *	active_connection_id_limit; destination: ours
 * @count: number of entries in @head
 * @sent_next: source: one above the highest sequence number the peer was
 *	told of (sequence number 0 in the handshake, later ones in the
 *	NEW_CONNECTION_ID frames sent), the most it may retire
 * @retire: destination: sequence numbers retired whose RETIRE_CONNECTION_ID
 *	frame is not acknowledged yet, oldest first
 * @retire_count: number of valid @retire entries
 * @retire_queued: how many of the first @retire entries have their frame
 *	queued or in flight
 */
struct quic_conn_id_set {
	struct list_head head;
	struct quic_conn_id_entry *active;
	struct sock *sk;
	struct sock *owner;
	u32 next_seq;
	u32 prior_to;
	u32 sent_next;
	u8 limit;
	u8 count;
	u8 retire_count;
	u8 retire_queued;
	u32 retire[QUIC_CONN_ID_RETIRE_MAX];
};

#define quic_conn_id_for_each(e, set) \
	list_for_each_entry(e, &(set)->head, list)

/* struct quic_conn_id helpers */

static inline bool quic_conn_id_equal(const struct quic_conn_id *a,
				      const struct quic_conn_id *b)
{
	return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

static inline bool quic_conn_id_equal_raw(const struct quic_conn_id *a,
					  const u8 *data, u32 len)
{
	return a->len == len && !memcmp(a->data, data, len);
}

/* Return: 0, or -EINVAL if @len exceeds QUIC_CONN_ID_MAX_LEN. */
static inline int quic_conn_id_set_raw(struct quic_conn_id *id,
				       const u8 *data, u32 len)
{
	if (len > QUIC_CONN_ID_MAX_LEN)
		return -EINVAL;
	id->len = len;
	memcpy(id->data, data, len);
	return 0;
}

void quic_conn_id_generate(struct quic_conn_id *id);
u32 quic_conn_id_errcode(int err);

/* Sets */

void quic_conn_id_set_init(struct quic_conn_id_set *set, struct sock *sk,
			   u8 limit);
void quic_conn_id_set_free(struct quic_conn_id_set *set);
struct quic_conn_id_entry *quic_conn_id_find(const struct quic_conn_id_set *set,
					     u32 seq);
int quic_conn_id_set_active(struct quic_conn_id_set *set, u32 seq);
u32 quic_conn_id_first_seq(const struct quic_conn_id_set *set);

void quic_conn_id_token(const struct quic_conn_id *id, u8 *token);

#if IS_ENABLED(CONFIG_KUNIT)
/* Visible to the KUnit tests only (static otherwise). */
u32 quic_conn_id_last_seq(const struct quic_conn_id_set *set);
#endif

static inline void quic_conn_id_set_limit(struct quic_conn_id_set *set,
					  u8 limit)
{
	set->limit = limit;
}

/* Source set: the IDs we issue */

u8 quic_conn_id_source_room(const struct quic_conn_id_set *set);
struct quic_conn_id_entry *
quic_conn_id_source_add(struct quic_conn_id_set *set,
			const struct quic_conn_id *id, gfp_t gfp);
int quic_conn_id_source_retire(struct quic_conn_id_set *set, u32 seq,
			       const struct quic_conn_id *pkt_dcid);
int quic_conn_id_prior_check(const struct quic_conn_id_set *set, u32 prior_to,
			     bool dest);
int quic_conn_id_source_retire_prior(struct quic_conn_id_set *set,
				     u32 prior_to);
void quic_conn_id_source_sent(struct quic_conn_id_set *set, u32 seq);

/* Destination set: the IDs the peer issued */

int quic_conn_id_dest_init(struct quic_conn_id_set *set,
			   const struct quic_conn_id *id, gfp_t gfp);
int quic_conn_id_dest_update(struct quic_conn_id_set *set,
			     const struct quic_conn_id *id);
int quic_conn_id_dest_set_token(struct quic_conn_id_set *set, u32 seq,
				const u8 *token);
int quic_conn_id_dest_add(struct quic_conn_id_set *set, u64 seq,
			  u64 prior_to, const struct quic_conn_id *id,
			  const u8 *token, gfp_t gfp);
int quic_conn_id_dest_retire_prior(struct quic_conn_id_set *set,
				   u32 prior_to);
bool quic_conn_id_dest_next_retire(struct quic_conn_id_set *set, u32 *seq);
void quic_conn_id_dest_retire_unqueue(struct quic_conn_id_set *set);
void quic_conn_id_dest_retire_acked(struct quic_conn_id_set *set, u32 seq);
bool quic_conn_id_dest_token_match(const struct quic_conn_id_set *set,
				   const u8 *token);

/* Global hash: destination connection ID of an incoming packet -> socket */

struct quic_conn_id_entry *quic_cid_hash_add(struct net *net,
					     const struct quic_conn_id *id,
					     struct sock *sk, gfp_t gfp);
void quic_cid_hash_del(struct quic_conn_id_entry *e);
struct sock *quic_cid_lookup(const struct net *net, const u8 *dcid, u8 len);
void quic_conn_id_dest_own(struct quic_conn_id_set *set, struct sock *sk);
struct sock *quic_token_lookup(const struct net *net, const u8 *token);

int quic_connid_init(void);
void quic_connid_exit(void);

#endif /* __NET_QUIC_CONNID_H */
