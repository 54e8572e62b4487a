/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: internal declarations, grouped by the file that defines them.
 *
 * Nothing here is visible outside net/quic/: the user ABI is
 * <uapi/linux/quic.h> and the in-kernel consumer API is <linux/quic.h>.
 */

#ifndef __NET_QUIC_QUIC_H
#define __NET_QUIC_QUIC_H

#include <linux/in.h>
#include <linux/in6.h>
#include <linux/mutex.h>
#include <linux/quic.h>
#include <linux/ratelimit.h>
#include <linux/refcount.h>
#include <linux/timer.h>
#include <linux/workqueue.h>
#include <net/inet_sock.h>
#include <net/ipv6.h>
#include <net/netns/generic.h>
#include <net/tcp_states.h>

#include "compat.h"
#include "mib.h"
#include "connid.h"
#include "tp.h"
#include "crypto.h"
#include "pnspace.h"
#include "frame.h"
#include "stream.h"
#include "cong.h"
#include "path.h"
#include "timer.h"
#include "trace.h"
#include "demux.h"

/* protocol.c */

/* Per network namespace state. */
/* Stateless Resets sent per second and namespace (RFC 9000 Section 10.3.3
 * wants them limited: they cost nothing to provoke).
 */
#define QUIC_RESET_RATE		100

struct quic_net {
	DEFINE_SNMP_STAT(struct quic_mib, mib);	/* /proc/net/quic/snmp */
	struct proc_dir_entry *proc_dir;	/* /proc/net/quic */
	struct mutex lock;		/* protects udp_socks, socks and the
					 * state of the sockets in socks
					 */
	struct hlist_head udp_socks;	/* struct quic_udp_sock.node */
	struct hlist_head socks;	/* hashed struct quic_sock.node */
	struct ratelimit_state reset_rs;	/* Stateless Resets sent */
};

extern unsigned int quic_net_id;
extern int sysctl_quic_rmem[3];
extern int sysctl_quic_wmem[3];

static inline struct quic_net *quic_net(const struct net *net)
{
	return net_generic(net, quic_net_id);
}

/* socket.c */

/* Limits from the ABI reference (Sections 1.13, 1.14 and 3). */
#define QUIC_OPTLEN_MAX			4096	/* any SOL_QUIC option */

/*
 * The ABI reference's section 1.4 masks.  Not in the UAPI header: the upstream
 * one does not define them, and programs written for it may define these
 * names themselves.
 */
/* Valid stream_flags: NEW | FIN | UNI | DONTWAIT | SNDBLOCK. */
#define QUIC_MSG_STREAM_FLAGS	(MSG_QUIC_STREAM_NEW | MSG_QUIC_STREAM_FIN | \
				 MSG_QUIC_STREAM_UNI | MSG_QUIC_STREAM_DONTWAIT | \
				 MSG_QUIC_STREAM_SNDBLOCK)
/* Valid sendmsg() flags argument. */
#define QUIC_MSG_SENDMSG_FLAGS	(QUIC_MSG_STREAM_FLAGS | MSG_BATCH | MSG_MORE | \
				 MSG_DONTWAIT | MSG_NOSIGNAL | MSG_WAITALL | \
				 MSG_QUIC_DATAGRAM)
/* RFC 9000 Section 18.2: the default and largest max_udp_payload_size. */
#define QUIC_DEF_UDP_PAYLOAD		65527
#define QUIC_ALPN_MAX_LEN		128
#define QUIC_TOKEN_MAX_LEN		120
#define QUIC_TICKET_MIN_LEN		64
#define QUIC_TICKET_MAX_LEN		4096
#define QUIC_TICKET_KEY_LEN		64	/* the default key, ABI reference 3 */
#define QUIC_TICKET_SECRET_LEN		32
#define QUIC_TP_EXT_MAX_LEN		512

/*
 * Socket states: the numeric values are TCP's, and they are visible in
 * /proc/net/quic/conns (ABI reference Section 7.18).
 */
enum quic_state {
	QUIC_SS_CLOSED		= TCP_CLOSE,
	QUIC_SS_ESTABLISHING	= TCP_SYN_RECV,
	QUIC_SS_ESTABLISHED	= TCP_ESTABLISHED,
	QUIC_SS_LISTENING	= TCP_LISTEN,
};

union quic_addr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/**
 * struct quic_path_move - a change of path being validated (RFC 9000 9)
 * @prev: the peer's last validated address: where we go back if the new
 *	one fails
 * @prev_local: our local move: the address we moved from
 * @prev_udp: our local move: the UDP socket we moved from, held until the
 *	next move or the socket's end (process context releases it)
 * @deadline: when the new path has failed validation (quic_now(), us)
 * @challenge: Data of our PATH_CHALLENGE on the new path
 * @active: the new path is being validated
 * @challenge_pending: a PATH_CHALLENGE is to be sent
 * @port_only: only the port changed (a NAT rebinding): the congestion
 *	controller and RTT estimates stay (Section 9.4)
 * @local: we moved (a client's CONNECTION_MIGRATION, Section 9.2), not
 *	the peer (Section 9.3)
 */
struct quic_path_move {
	union quic_addr prev;
	union quic_addr prev_local;
	struct quic_udp_sock *prev_udp;
	u64 deadline;
	u8 challenge[QUIC_PATH_CHALLENGE_LEN];
	u8 active:1;
	u8 challenge_pending:1;
	u8 port_only:1;
	u8 local:1;
};

/**
 * struct quic_path_alt - a path other than the one in use (RFC 9000 8.2, 9)
 * @local: our address on it
 * @peer: the peer's address on it
 * @udp: the UDP socket sent from, one the socket holds (@udp, @pref_udp
 *	or @move.prev_udp of struct quic_sock); NULL: none
 * @dcid: the Destination Connection ID used on it
 * @dcid_seq: its sequence number
 * @bytes_recv: bytes received on it (anti-amplification, Section 8.1)
 * @bytes_sent: bytes sent on it
 * @deadline: when its validation has failed (quic_now(), us)
 * @data: Data of the PATH_CHALLENGE sent or to answer
 * @pending: a frame with @data is to be sent on it
 * @active: the path is being validated (quic_sock.alt)
 * @validated: our PATH_CHALLENGE on it was answered
 * @nonprobing: server: the peer's newest non-probing packet came on it
 * @limited: the anti-amplification limit applies to it
 */
struct quic_path_alt {
	union quic_addr local;
	union quic_addr peer;
	struct quic_udp_sock *udp;
	struct quic_conn_id dcid;
	u32 dcid_seq;
	u64 bytes_recv;
	u64 bytes_sent;
	u64 deadline;
	u8 data[QUIC_PATH_CHALLENGE_LEN];
	u8 pending:1;
	u8 active:1;
	u8 validated:1;
	u8 nonprobing:1;
	u8 limited:1;
};

/* A kmalloc'ed byte string owned by a socket. */
struct quic_data {
	u8 *data;
	u32 len;
};

struct quic_udp_sock;

/**
 * struct quic_flow - connection flow control (RFC 9000 Section 4.1)
 * @send_max: the peer's limit (initial_max_data, MAX_DATA)
 * @send_queued: stream bytes queued by sendmsg (all within @send_max)
 * @send_blocked: 1 + the limit a DATA_BLOCKED was sent for (0: none)
 * @recv_max: our limit as last advertised
 * @recv_highest: sum over streams of the highest offset received
 * @recv_read: stream bytes read by the application, or dropped by a reset
 * @rwnd: our window, from local max_data, auto-tuned
 * @recv_blocked: the peer said @recv_max stopped it (DATA_BLOCKED): credit
 *	goes with the next read
 */
struct quic_flow {
	u64 send_max;
	u64 send_queued;
	u64 send_blocked;
	u64 recv_max;
	u64 recv_highest;
	u64 recv_read;
	struct quic_rwnd rwnd;
	u8 recv_blocked;
};

/**
 * struct quic_request - a new connection waiting for accept()
 * @list: quic_sock.requests of the listener
 * @peer: the client's address
 * @local: the address it was sent to
 * @dcid: Destination ID of the client's first Initial (original DCID)
 * @scid: the client's Source ID
 * @version: version of the client's Initial
 * @retry_odcid: after our Retry, the client's Destination ID before it
 *	(@dcid is then the Retry's Source ID); empty without a Retry
 * @skbs: datagrams received for it so far
 */
struct quic_request {
	struct list_head list;
	union quic_addr peer;
	union quic_addr local;
	struct quic_conn_id dcid;
	struct quic_conn_id scid;
	struct quic_conn_id retry_odcid;
	u32 version;
	struct sk_buff_head skbs;
};

struct quic_sock {
	struct inet_sock inet;		/* must be first */
	struct hlist_node node;		/* quic_net.socks, while hashed */
	struct hlist_node lnode;	/* quic_udp_sock.listeners, listening */
	struct quic_udp_sock *udp;	/* non-NULL once bound */
	union quic_addr local;		/* bound address, actual port */
	union quic_addr peer;

	struct quic_transport_param local_tp;	/* what we advertise */
	struct quic_transport_param remote_tp;	/* what the peer allows */
	struct quic_config config;
	struct quic_connection_close close;	/* for the CONNECTION_CLOSE we send */

	struct quic_data alpn;		/* RFC 7301 encoding: length-prefixed */
	struct quic_data token;		/* client: address validation token */
	struct quic_data ticket;	/* session data or ticket key */
	/* listener, and copied to what it accepts: the default ticket keys' */
	u8 ticket_secret[QUIC_TICKET_SECRET_LEN];

	u32 events;			/* bit n: event n subscribed */
	u8 is_serv:1;			/* listen() was called */

	/* The connection, from connect() or accept() on. */
	struct quic_crypto crypto[QUIC_CRYPTO_MAX];	/* by crypto level */
	/* RFC 9368 Section 2.3, RFC 9369 Section 4.1: the other version's
	 * Initial keys until the version is settled (@version_fixed).  Client:
	 * those of the compatible version, for a server that switches to it.
	 * Server that switched: the client's original version's, for its
	 * Initials sent before it follows.
	 */
	struct quic_crypto *initial_alt;
	struct quic_pnspace space[QUIC_SPACE_MAX];
	struct quic_conn_id_set source;	/* IDs we issued */
	struct quic_conn_id_set dest;	/* IDs the peer issued */
	struct quic_conn_id odcid;	/* client's first Destination ID */
	struct quic_conn_id_entry *odcid_entry;	/* server: @odcid hashed */
	/* Server: the client's first DCID, before our Retry (@odcid is then
	 * the Retry's SCID).  Client: the SCID of the Retry it followed.
	 * Empty without a Retry.
	 */
	struct quic_conn_id retry_cid;
	struct quic_conn_id peer_scid;	/* Source ID of the peer's first packet */
	struct quic_stream_table streams;
	struct list_head stream_outq;	/* STREAM frames never sent */
	struct quic_flow flow;
	struct quic_cong cong;
	struct quic_path path;
	struct quic_path_move move;
	/* A PATH_RESPONSE owed on a path other than the one in use. */
	struct quic_path_alt resp;
	/* The preferred address's path, validated before it is used. */
	struct quic_path_alt alt;
	/* Server: the preferred address set (Section 9.6), and once the
	 * connection moved there, the address it left.  Client: the one
	 * the server offered, of the family in use; family 0: none.
	 */
	union quic_addr pref;
	struct quic_udp_sock *pref_udp;	/* server: bound to @pref */
	u8 pref_done:1;			/* the move to @pref happened */
	struct timer_list timers[QUIC_TIMER_MAX];
	unsigned long deferred;		/* QUIC_DEFER_* bits for release_cb */
	struct work_struct work;	/* process-context work: quic_conn_defer() */
	struct sk_buff_head pending;	/* packets waiting for their keys */
	struct list_head requests;	/* listener: struct quic_request */
	struct quic_data nst;		/* client: NewSessionTicket collected */
	u32 version;			/* version of our long headers */
	u32 vn_version;			/* client: the version a Version
					 * Negotiation packet made us start
					 * again with (RFC 9368 2.1), 0: none
					 */
	u64 idle_timeout;		/* us, negotiated (RFC 9000 10.1) */
	u64 token_sent;			/* server: NEW_TOKEN not acked yet */
	u32 ctrl_mem;			/* control frames held, bytes (frame.h) */
	s64 key_phase_pn;		/* first packet of the peer's key phase */
	u64 key_discard_at;		/* when the old 1-RTT keys go (us), 0: none */
	u8 crypto_key_prepare:1;	/* 1-RTT next keys to derive */
	u8 handshake_confirmed:1;	/* RFC 9001 Section 4.1.2 */
	u8 keys_discard:1;		/* crypto[] of discarded spaces to free */
	u8 nst_done:1;			/* @nst complete or given up */
	u8 idle_sent:1;			/* ack-eliciting sent since last receive */
	u8 peer_version_info:1;		/* server: client sent version_information */
	u8 retry_pending:1;		/* client: Retry taken, Initial to send again */
	u8 vn_pending:1;		/* client: to start again in @vn_version */
	u8 version_fixed:1;		/* no version change ahead: @initial_alt goes */
	u8 key_phase_unacked:1;		/* no ACK of @key_phase_pn sent yet */
	u8 plain_1rtt:1;		/* both offered disable_1rtt_encryption */
	u8 zrtt_tp:1;			/* client: remembered peer params set */
	u8 zrtt_done:1;			/* 0-RTT over, its keys gone */
	u8 ack_delay_exponent;		/* peer's (RFC 9000 Section 18.2) */
	unsigned int rcv_waiters;	/* recvmsg callers asleep for data */
};

/* struct ipv6_pinfo must end the object: 6.1 finds it at obj_size - size. */
struct quic6_sock {
	struct quic_sock quic;
	struct ipv6_pinfo inet6;
};

static inline struct quic_sock *quic_sk(const struct sock *sk)
{
	return (struct quic_sock *)sk;
}

static inline int quic_state(const struct sock *sk)
{
	return inet_sk_state_load(sk);
}

/*
 * The one place a connection changes state: keeps QuicConnCurrentEstabs
 * right.  Callers serialise through the socket lock.
 */
static inline void quic_state_store(struct sock *sk, int state)
{
	int old = sk->sk_state;

	if (old == state)
		return;
	if (old == QUIC_SS_ESTABLISHED)
		SNMP_DEC_STATS(quic_net(sock_net(sk))->mib,
			       QUIC_MIB_CONN_CURRENTESTABS);
	else if (state == QUIC_SS_ESTABLISHED)
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_CONN_CURRENTESTABS);
	trace_quic_state(sk, old, state);
	inet_sk_set_state(sk, state);
}

static inline bool quic_is_closed(const struct sock *sk)
{
	return quic_state(sk) == QUIC_SS_CLOSED;
}

static inline bool quic_is_listen(const struct sock *sk)
{
	return quic_state(sk) == QUIC_SS_LISTENING;
}

static inline bool quic_is_establishing(const struct sock *sk)
{
	return quic_state(sk) == QUIC_SS_ESTABLISHING;
}

static inline bool quic_is_established(const struct sock *sk)
{
	return quic_state(sk) == QUIC_SS_ESTABLISHED;
}

static inline __be16 quic_addr_port(const union quic_addr *a)
{
	return a->sa.sa_family == AF_INET6 ? a->v6.sin6_port : a->v4.sin_port;
}

static inline int quic_addr_len(const union quic_addr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->v6) : sizeof(a->v4);
}

static inline bool quic_addr_equal(const union quic_addr *a,
				   const union quic_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family ||
	    quic_addr_port(a) != quic_addr_port(b))
		return false;
	if (a->sa.sa_family == AF_INET6)
		return ipv6_addr_equal(&a->v6.sin6_addr, &b->v6.sin6_addr);
	return a->v4.sin_addr.s_addr == b->v4.sin_addr.s_addr;
}

int quic_init_sock(struct sock *sk);
void quic_destroy_sock(struct sock *sk);
void quic_close(struct sock *sk, long timeout);
int quic_bind(struct sock *sk, struct sockaddr *addr, int addr_len);
void quic_unhash(struct sock *sk);
int quic_disconnect(struct sock *sk, int flags);
void quic_shutdown(struct sock *sk, int how);
int quic_ioctl(struct sock *sk, int cmd, int *karg);
int quic_setsockopt(struct sock *sk, int level, int optname,
		    sockptr_t optval, unsigned int optlen);
int quic_getsockopt(struct sock *sk, int level, int optname,
		    char __user *optval, int __user *optlen);
int quic_sendmsg(struct sock *sk, struct msghdr *msg, size_t len);
int quic_recvmsg(struct sock *sk, struct msghdr *msg, size_t len, int flags,
		 int *addr_len);

void quic_release_cb(struct sock *sk);
void __quic_set_state(struct sock *sk, int state);
void quic_conn_defer(struct sock *sk);
void quic_event_queue(struct sock *sk, u8 type, const void *data, u32 len);
void quic_rcv_queue(struct sock *sk, struct sk_buff *skb);
bool quic_rcv_charge(struct sock *sk, struct sk_buff *skb);
bool quic_is_connected(const struct sock *sk);
int quic_listen_rcv(struct sock *sk, struct sk_buff *skb);
struct quic_pkt;
void quic_listen_close(struct sock *usk, struct sk_buff *skb,
		       const struct quic_pkt *pkt, const union quic_addr *peer,
		       u64 errcode);
u64 quic_now(void);

/* socket.c helpers that sockopt.c uses too. */
struct quic_send_ctx {
	struct quic_stream *stream;
	s64 id;
	u32 flags;
	int err;
};

void quic_data_free(struct quic_data *d);
int quic_data_set(struct quic_data *d, const void *src, u32 len);
void __quic_update_rcvbuf(struct sock *sk);
int quic_addr_from_user(struct sock *sk, union quic_addr *a,
			const struct sockaddr *sa, int len, bool wild);
void quic_conn_deferred(struct sock *sk);
int quic_send_stream_get(struct sock *sk, struct quic_send_ctx *ctx,
			 long *timeo);

int quic_inet_connect(struct socket *sock, struct sockaddr *addr,
		      int addr_len, int flags);
int quic_inet_listen(struct socket *sock, int backlog);
int quic_inet_accept(struct socket *sock, struct socket *newsock, int flags,
		     bool kern);
int quic_inet_getname(struct socket *sock, struct sockaddr *uaddr, int peer);
__poll_t quic_inet_poll(struct file *file, struct socket *sock,
			struct poll_table_struct *wait);
int quic_inet_sendmsg(struct socket *sock, struct msghdr *msg, size_t len);
int quic_inet_recvmsg(struct socket *sock, struct msghdr *msg, size_t len,
		      int flags);

/*
 * Items of the receive queue (ABI reference Section 4.5), in this order:
 * handshake chunks, then events, then stream data and datagrams.
 */
enum quic_item_kind {
	QUIC_ITEM_HANDSHAKE,
	QUIC_ITEM_EVENT,
	QUIC_ITEM_STREAM,
	QUIC_ITEM_DATAGRAM,
};

struct quic_item_cb {
	s64 stream_id;
	u8 kind;
	u8 level;	/* handshake: crypto level */
	u8 fin;		/* stream: the data ends the stream */
};

#define QUIC_ITEM_CB(skb)	((struct quic_item_cb *)&((skb)->cb[0]))

/* udp.c */

/* A kernel UDP tunnel socket shared by the QUIC sockets bound to it. */
struct quic_udp_sock {
	struct hlist_node node;		/* quic_net.udp_socks */
	refcount_t refcnt;		/* one per bound QUIC socket */
	struct socket *sock;
	union quic_addr addr;		/* bound address, actual port */
	int ifindex;			/* bound device, 0 for any */
	bool v6only;
	struct sock __rcu *listener;	/* LISTENING QUIC socket, if any */
	struct hlist_head listeners;	/* all of them (quic_sock.lnode), RCU */
	struct quic_demux_table demux;	/* ClientHellos being read (demux.c) */
};

/* A listener on @us for a new connection, held; NULL if none. */
struct sock *quic_udp_listener(struct quic_udp_sock *us);

int quic_udp_sock_get(struct net *net, const union quic_addr *addr,
		      int ifindex, bool v6only, struct quic_udp_sock **usp);
void quic_udp_sock_put(struct net *net, struct quic_udp_sock *us);

/* proc.c */

int quic_proc_init(struct net *net);
void quic_proc_exit(struct net *net);

#endif /* __NET_QUIC_QUIC_H */
