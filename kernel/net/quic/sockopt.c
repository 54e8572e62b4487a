// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: socket options.
 *
 * The SOL_QUIC options (ABI reference Sections 3 and 6.5): their handlers,
 * the table that maps an option to them, setsockopt() and getsockopt(), and
 * quic_do_setsockopt()/quic_do_getsockopt() for kernel users.  The socket
 * lifecycle is in socket.c.
 *
 * Locking: quic_foo() takes the socket lock, __quic_foo() expects it held.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/export.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/sock.h>
#include <uapi/linux/tls.h>

#include "quic.h"
#include "packet.h"
#include "input.h"
#include "output.h"

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

/* Owned byte strings (ALPN, token, ticket). */
static int quic_data_get(const struct quic_data *d, void *buf, unsigned int len)
{
	if (len < d->len)
		return -EINVAL;
	if (d->len)
		memcpy(buf, d->data, d->len);
	return d->len;
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
	struct quic_send_ctx ctx = {};
	long timeo;
	int err;

	if (!quic_is_connected(sk))
		return -EPIPE;
	if (info->stream_flags & ~QUIC_MSG_STREAM_FLAGS)
		return -EINVAL;
	/* -1 always opens a new stream here, never the active one. */
	ctx.id = info->stream_id;
	if (ctx.id == -1)
		ctx.id = quic_stream_next_id(sk, info->stream_flags &
					     MSG_QUIC_STREAM_UNI);
	ctx.flags = info->stream_flags | MSG_QUIC_STREAM_NEW;
	timeo = sock_sndtimeo(sk, 0);
	err = quic_send_stream_get(sk, &ctx, &timeo);
	if (err)
		return err;
	info->stream_id = ctx.stream->id;
	info->stream_flags = ctx.flags;
	return sizeof(*info);
}

/* STREAM_RESET (RFC 9000 Section 19.4), STOP_SENDING (Section 19.5). */
static int __quic_set_stream_reset(struct sock *sk, void *kopt,
				   unsigned int len)
{
	struct quic_errinfo *info = kopt;
	int err;

	if (!quic_is_established(sk))
		return -EINVAL;
	err = quic_stream_reset(sk, info->stream_id, info->errcode);
	if (!err)
		quic_output_flush(sk);
	return err;
}

static int __quic_set_stop_sending(struct sock *sk, void *kopt,
				   unsigned int len)
{
	struct quic_errinfo *info = kopt;
	int err;

	if (!quic_is_established(sk))
		return -EINVAL;
	err = quic_stream_stop_sending(sk, info->stream_id, info->errcode);
	if (!err)
		quic_output_flush(sk);
	return err;
}

/*
 * CONNECTION_ID: RFC 9000 Sections 5.1.1 and 5.1.2.  @active switches to a
 * higher-numbered ID; @prior_to retires the lower ones: RETIRE_CONNECTION_ID
 * for the peer's, NEW_CONNECTION_ID with Retire Prior To for ours.
 */
static int __quic_set_connection_id(struct sock *sk, void *kopt,
				    unsigned int len)
{
	struct quic_connection_id_info *info = kopt;
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id_set *set = info->dest ? &qs->dest : &qs->source;
	int err;

	if (!quic_is_established(sk))
		return -EINVAL;
	/* Every check first: an error must change nothing. */
	if (info->prior_to) {
		err = quic_conn_id_prior_check(set, info->prior_to, info->dest);
		if (err)
			return err;
	}
	if (info->active) {
		if (!set->active || info->active <= set->active->seq)
			return -EINVAL;
		err = quic_conn_id_set_active(set, info->active);
		if (err)
			return err;
	}
	if (!info->prior_to)
		return 0;
	if (info->dest) {
		err = quic_conn_id_dest_retire_prior(set, info->prior_to);
		if (!err)
			err = quic_frame_retire_pending(sk);
		if (!err)
			quic_conn_id_event(sk, true);
	} else {
		err = quic_conn_id_source_retire_prior(set, info->prior_to);
		if (!err)
			err = quic_frame_issue_conn_ids(sk);
	}
	if (!err)
		quic_output_flush(sk);
	return err;
}

static int __quic_get_connection_id(struct sock *sk, void *kopt,
				    unsigned int len)
{
	struct quic_connection_id_info *info = kopt;
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id_set *set = info->dest ? &qs->dest : &qs->source;

	if (!quic_is_established(sk))
		return -EINVAL;
	info->active = set->active ? set->active->seq : 0;
	info->prior_to = quic_conn_id_first_seq(set);
	return sizeof(*info);
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
	if (quic_is_established(sk))
		return quic_path_migrate(sk, &a);
	return quic_path_pref_set(sk, &a);
}

/*
 * RFC 9001 Section 6.1: "An endpoint MUST NOT initiate a subsequent key
 * update unless it has received an acknowledgment for a packet that was sent
 * protected with keys from the current key phase."  The first update needs
 * only the confirmed handshake.  An idle connection may have sent nothing
 * the peer acknowledges (acknowledgments are not acknowledged): then elicit
 * one, so that the caller's retry after a round trip succeeds.
 */
static bool quic_key_update_acked(struct sock *sk, struct quic_crypto *c)
{
	struct quic_pnspace *s = &quic_sk(sk)->space[QUIC_SPACE_APP];
	s64 first = quic_crypto_tx_first_pn(c);
	struct quic_sent_pkt *last;

	if (!quic_crypto_tx_updated(c))
		return true;
	if (first >= 0 && s->largest_acked >= first)
		return true;
	last = list_empty(&s->sent) ? NULL :
	       list_last_entry(&s->sent, struct quic_sent_pkt, list);
	if (!last || first < 0 || last->pn < first)
		quic_output_probe(sk, QUIC_SPACE_APP);
	return false;
}

/* KEY_UPDATE: RFC 9001 Section 6, once the handshake is confirmed. */
static int __quic_set_key_update(struct sock *sk, void *kopt, unsigned int len)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_crypto *c = &qs->crypto[QUIC_CRYPTO_APP];
	int err;

	if (!quic_is_established(sk))
		return -EPIPE;
	if (!quic_crypto_recv_ready(c) || !qs->handshake_confirmed ||
	    !quic_key_update_acked(sk, c))
		return -EINVAL;
	err = quic_crypto_key_update(c);
	if (err == -EAGAIN)
		return -EINVAL;
	if (!err)
		trace_quic_key_update(sk, QUIC_CRYPTO_APP, true, c->tx.phase,
				      QUIC_TRACE_KEY_LOCAL);
	return err;
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
	if (local) {
		__quic_update_rcvbuf(sk);
		return 0;
	}
	/* ABI reference Section 4.2: the remembered stream and flow limits
	 * let a client queue 0-RTT data before the handshake.
	 */
	if (!qs->is_serv)
		qs->zrtt_tp = 1;
	quic_stream_set_limits(sk);
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
	/* Also for a connection that already started (accept()ed). */
	quic_sk(sk)->cong.algo = dst->congestion_control_algo;
	quic_set_flag(&dst->validate_peer_address, c->validate_peer_address);
	quic_set_flag(&dst->stream_data_nodelay, c->stream_data_nodelay);
	quic_set_u8(&dst->receive_session_ticket, c->receive_session_ticket);
	quic_set_u8(&dst->certificate_request, c->certificate_request);
	quic_set_u32(&dst->keepalive_probe_interval,
		     c->keepalive_probe_interval);
	return 0;
}

/*
 * The configuration; from connect() or accept() on, @version is the one the
 * connection runs in: after Version Negotiation or compatible version
 * negotiation (RFC 9368) it is the negotiated one.
 */
static int __quic_get_config(struct sock *sk, void *kopt, unsigned int len)
{
	struct quic_config *c = kopt;

	memcpy(c, &quic_sk(sk)->config, sizeof(*c));
	if (quic_sk(sk)->version)
		c->version = quic_sk(sk)->version;
	return sizeof(*c);
}

/*
 * RFC 9000 Section 8.1.3: a token for the client's next connection.  The
 * module does not validate addresses with tokens yet, so it is random.
 */
static int __quic_send_new_token(struct sock *sk)
{
	u8 token[QUIC_CONN_ID_TOKEN_LEN + 1];
	u64 len = sizeof(token);
	int err;

	get_random_bytes(token, sizeof(token));
	err = __quic_frame_ctrl(sk, QUIC_SPACE_APP, QUIC_FRAME_NEW_TOKEN, &len,
				1, token, sizeof(token));
	if (!err)
		quic_sk(sk)->token_sent = 1;
	return err;
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
		if (qs->token_sent)
			return -EAGAIN;
		return __quic_send_new_token(sk);
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

#define QUIC_TLS_NEW_SESSION_TICKET	4	/* RFC 8446 Section 4 */

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
 * A server that set no ticket key gets one derived from its listener's
 * random secret and the peer's IP address (quic_crypto_ticket_key()): the
 * same for every connection from that address to that listener, so that a
 * ticket issued on one opens on the next.
 */
static int quic_default_ticket_key(struct sock *sk, void *kopt,
				   unsigned int len)
{
	struct quic_sock *qs = quic_sk(sk);
	const union quic_addr *a = &qs->peer;
	const u8 *ip = (const u8 *)&a->v4.sin_addr;
	u32 iplen = sizeof(a->v4.sin_addr);
	int err;

	if (len < QUIC_TICKET_KEY_LEN)
		return -EINVAL;
	if (a->sa.sa_family == AF_INET6) {
		ip = a->v6.sin6_addr.s6_addr;
		iplen = sizeof(a->v6.sin6_addr);
	}
	err = quic_crypto_ticket_key(qs->ticket_secret,
				     sizeof(qs->ticket_secret), ip, iplen,
				     kopt, QUIC_TICKET_KEY_LEN);
	return err ?: QUIC_TICKET_KEY_LEN;
}

/*
 * A client reads back its session data while ESTABLISHING, afterwards the
 * first NewSessionTicket received (none until the data path exists).  A
 * server reads its ticket key, the one it set or the default one.
 */
static int __quic_get_session_ticket(struct sock *sk, void *kopt,
				     unsigned int len)
{
	struct quic_sock *qs = quic_sk(sk);

	if (quic_is_listen(sk) || (qs->is_serv && quic_is_closed(sk)))
		return -EPIPE;
	if (!qs->is_serv && !quic_is_establishing(sk)) {
		if (!qs->nst_done || !qs->nst.len ||
		    qs->nst.data[0] != QUIC_TLS_NEW_SESSION_TICKET)
			return 0;
		return quic_data_get(&qs->nst, kopt, len);
	}
	if (qs->is_serv && !qs->ticket.len)
		return quic_default_ticket_key(sk, kopt, len);
	return quic_data_get(&qs->ticket, kopt, len);
}

/*
 * ABI reference Section 5.1 step 10 and 5.2 step 11: with both 1-RTT keys
 * the handshake is complete.  A server then confirms it (RFC 9001 Section
 * 4.1.2): HANDSHAKE_DONE, Handshake keys dropped (Section 4.9.2), a
 * NEW_TOKEN; both ends issue connection IDs (RFC 9000 Section 5.1.1).
 */
static int quic_conn_established(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	int err = 0;

	quic_space_zrtt_end(sk);
	__quic_set_state(sk, QUIC_SS_ESTABLISHED);
	QUIC_INC_STATS(sock_net(sk), qs->is_serv ?
		       QUIC_MIB_CONN_PASSIVEESTABS : QUIC_MIB_CONN_ACTIVEESTABS);
	if (qs->is_serv) {
		qs->handshake_confirmed = 1;
		qs->path.validated = 1;
		quic_space_discard(sk, QUIC_SPACE_HANDSHAKE);
		err = __quic_frame_ctrl(sk, QUIC_SPACE_APP,
					QUIC_FRAME_HANDSHAKE_DONE, NULL, 0,
					NULL, 0);
		if (!err)
			err = __quic_send_new_token(sk);
	}
	if (!err)
		err = quic_frame_issue_conn_ids(sk);
	if (err) {
		quic_conn_error(sk, QUIC_TRANSPORT_ERROR_INTERNAL, 0);
		return err;
	}
	quic_conn_deferred(sk);
	quic_output_flush(sk);
	sk->sk_state_change(sk);
	pr_debug("%s: sk %p established\n", __func__, sk);
	return 0;
}

static bool quic_app_keys_ready(struct quic_sock *qs)
{
	return quic_crypto_send_ready(&qs->crypto[QUIC_CRYPTO_APP]) &&
	       quic_crypto_recv_ready(&qs->crypto[QUIC_CRYPTO_APP]);
}

/* What installing a receive key unlocks (ABI reference Section 5.1). */
static int quic_secret_recv_installed(struct sock *sk, u8 level)
{
	struct quic_sock *qs = quic_sk(sk);

	if (level == QUIC_CRYPTO_APP && !qs->is_serv) {
		quic_data_free(&qs->token);
		quic_data_free(&qs->ticket);
	}
	return quic_packet_process_buffered(sk);
}

/*
 * ABI reference Sections 5.1 step 5 and 5.2 step 8.  Client: queued stream
 * data leaves in 0-RTT packets, coalesced after the ClientHello's Initial
 * when that is sent next (its sendmsg flushes), else now.  Server: the
 * 0-RTT packets that waited for the key are opened; their stream data stays
 * hidden from recvmsg until ESTABLISHED.
 */
static int quic_secret_early_installed(struct sock *sk, bool send)
{
	struct quic_sock *qs = quic_sk(sk);

	if (send) {
		if (qs->space[QUIC_SPACE_INITIAL].crypto_send)
			quic_output_flush(sk);
		return 0;
	}
	return quic_packet_process_buffered(sk);
}

/* CRYPTO_SECRET: RFC 9001 Section 5.1; APP, HANDSHAKE or EARLY only. */
static int __quic_set_crypto_secret(struct sock *sk, void *kopt,
				    unsigned int len)
{
	struct quic_crypto_secret *secret = kopt;
	struct quic_sock *qs = quic_sk(sk);
	int err;

	if (!quic_is_establishing(sk))
		return -EINVAL;
	if (secret->level != QUIC_CRYPTO_APP &&
	    secret->level != QUIC_CRYPTO_HANDSHAKE &&
	    secret->level != QUIC_CRYPTO_EARLY)
		return -EINVAL;
	/* RFC 9001 Section 5.6: a client only sends 0-RTT packets, a server
	 * only receives them, and neither once 1-RTT keys took over.
	 */
	if (secret->level == QUIC_CRYPTO_EARLY &&
	    (!!secret->send == qs->is_serv || qs->zrtt_done))
		return -EINVAL;
	err = quic_crypto_set_secret(&qs->crypto[secret->level], secret->secret,
				     secret->type, secret->level,
				     !!secret->send, qs->version);
	memzero_explicit(secret->secret, sizeof(secret->secret));
	if (err)
		return err;
	trace_quic_key_update(sk, secret->level, !!secret->send, 0,
			      QUIC_TRACE_KEY_INSTALL);
	if (secret->level == QUIC_CRYPTO_EARLY)
		return quic_secret_early_installed(sk, !!secret->send);
	if (secret->send)
		quic_output_flush(sk);
	else
		err = quic_secret_recv_installed(sk, secret->level);
	if (err)
		return err;
	if (!quic_is_establishing(sk))
		return -EPIPE;
	if (secret->level == QUIC_CRYPTO_APP && quic_app_keys_ready(qs))
		return quic_conn_established(sk);
	return 0;
}

/*
 * RFC 9368 Section 2.3: the server may switch to a compatible version.  It
 * sends in it from now on (RFC 9369 Section 4.1), and keeps the keys of the
 * client's version in @initial_alt for the Initials the client sends until
 * it follows (quic_packet_version_orig()).
 */
static int quic_tp_version(struct sock *sk, u32 version)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_crypto *alt;
	int err;

	if (!qs->is_serv || !version || version == qs->version)
		return 0;
	alt = kzalloc(sizeof(*alt), GFP_KERNEL);
	if (!alt)
		return -ENOMEM;
	err = quic_crypto_initial_keys_install(alt, qs->odcid.data,
					       qs->odcid.len, version, true);
	if (err) {
		kfree(alt);
		return err;
	}
	swap(qs->crypto[QUIC_CRYPTO_INITIAL], *alt);
	if (qs->initial_alt) {
		quic_crypto_destroy(qs->initial_alt);
		kfree(qs->initial_alt);
	}
	qs->initial_alt = alt;
	qs->version = version;
	return 0;
}

/* Apply the peer's transport parameters (RFC 9000 Section 18.2). */
static void quic_tp_apply_peer(struct sock *sk, const struct quic_tp_extra *x)
{
	struct quic_sock *qs = quic_sk(sk);
	const struct quic_transport_param *p = &qs->remote_tp;

	qs->cong.max_ack_delay = p->max_ack_delay;
	qs->ack_delay_exponent = p->ack_delay_exponent;
	/* RFC 9000 Section 10.1: the smaller of the two idle timeouts. */
	if (p->max_idle_timeout &&
	    (!qs->idle_timeout || p->max_idle_timeout < qs->idle_timeout))
		qs->idle_timeout = p->max_idle_timeout;
	quic_conn_id_set_limit(&qs->source, p->active_connection_id_limit);
	if (!qs->is_serv && p->stateless_reset)
		quic_conn_id_dest_set_token(&qs->dest, 0, x->reset_token);
	qs->peer_version_info = x->has_version_info;
	if (p->max_udp_payload_size >= QUIC_PATH_MIN_MTU)
		qs->path.mss = min_t(u32, qs->path.mss, p->max_udp_payload_size);
	quic_stream_set_limits(sk);
	quic_timer_idle_reset(sk);
	sk->sk_write_space(sk);
}

/* TRANSPORT_PARAM_EXT: the TLS extension (RFC 9001 Section 8.2). */
static int __quic_set_transport_param_ext(struct sock *sk, void *kopt,
					  unsigned int len)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_tp_parse_ctx ctx = {
		.odcid = qs->is_serv ? NULL : &qs->odcid,
		.retry_scid = !qs->is_serv && qs->retry_cid.len ?
			      &qs->retry_cid : NULL,
		.peer_scid = &qs->peer_scid,
		.version = qs->version,
		.pref_version = qs->config.version,
		.vn_version = qs->is_serv ? 0 : qs->vn_version,
		.is_serv = qs->is_serv,
	};
	struct quic_transport_param p;
	struct quic_tp_extra *x;
	int err;

	if (!quic_is_establishing(sk) || len > QUIC_TP_EXT_MAX_LEN)
		return -EINVAL;
	x = kzalloc(sizeof(*x), GFP_KERNEL);
	if (!x)
		return -ENOMEM;
	err = quic_tp_parse(kopt, len, &ctx, &p, x);
	if (!err && !qs->is_serv && x->has_pref_addr)
		err = quic_path_pref_recv(sk, &x->pref_addr);
	if (!err) {
		qs->remote_tp = p;
		/* draft-banks-quic-disable-encryption: only when both offer it */
		qs->plain_1rtt = qs->local_tp.disable_1rtt_encryption &&
				 p.disable_1rtt_encryption;
		err = quic_tp_version(sk, x->version);
	}
	if (!err)
		quic_tp_apply_peer(sk, x);
	else
		quic_conn_error(sk, quic_tp_errcode(err), 0);
	kfree(x);
	if (!err && qs->zrtt_tp) {
		/* RFC 9000 Section 7.4.1: the new limits replace the
		 * remembered ones, and may not be below what 0-RTT used.
		 */
		err = quic_stream_zrtt_limits(sk);
		if (err) {
			quic_conn_error(sk, err, 0);
			err = -EINVAL;
		}
	}
	return err;
}

static int __quic_get_transport_param_ext(struct sock *sk, void *kopt,
					  unsigned int len)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id_entry *e = quic_conn_id_find(&qs->source, 0);
	bool retry = qs->is_serv && qs->retry_cid.len;
	struct quic_tp_build_ctx ctx = {
		.odcid = retry ? &qs->retry_cid : &qs->odcid,
		.retry_scid = retry ? &qs->odcid : NULL,
		.scid = e ? &e->key.id : NULL,
		.reset_token = qs->is_serv && e ? e->token : NULL,
		.version = qs->version,
		.is_serv = qs->is_serv,
		.peer_version_info = qs->peer_version_info,
	};
	struct quic_tp_pref_addr pa;

	if (!quic_is_establishing(sk) || !e)
		return -EINVAL;
	if (quic_path_pref_build(sk, &pa))
		ctx.pref_addr = &pa;
	return quic_tp_build(&qs->local_tp, &ctx, kopt, len);
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
