// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: the quic_transport_parameters extension (RFC 9000 Section 18).
 *
 * Each parameter is (varint ID, varint length, value).  quic_tp_build()
 * writes ours in the order of ABI reference Section 3.1, which tlshd and the
 * selftests of the reference implementation expect.  quic_tp_parse() reads
 * the peer's with one handler per known ID (quic_tp_rules[]); unknown IDs,
 * reserved ones included (Section 18.1), are skipped.
 *
 * Where the ABI reference leaves the treatment of a peer's value open, a
 * value RFC 9000 allows is never refused: active_connection_id_limit above
 * 8 is clamped to 8 (we issue no more than that anyway) and
 * max_udp_payload_size above 65527 is clamped to 65527 (no UDP payload is
 * larger), as max_streams_* and max_datagram_frame_size are.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bits.h>
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/time64.h>

#include "compat.h"
#include "tp.h"
#include "varint.h"

/* preferred_address: IPv4 4 + port 2 + IPv6 16 + port 2, then the CID. */
#define QUIC_TP_PREF_ADDR_FIXED		24
#define QUIC_TP_PREF_ADDR_MIN		(QUIC_TP_PREF_ADDR_FIXED + 1 + \
					 QUIC_CONN_ID_TOKEN_LEN)
#define QUIC_TP_VERSION_LEN		4

static u32 quic_tp_version(u32 version)
{
	return version ?: QUIC_VERSION_V1;
}

static void quic_tp_put_be32(u8 *p, u32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static u32 quic_tp_get_be32(const u8 *p)
{
	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

/* RFC 9000 Section 18.2: timeouts travel in milliseconds. */
static u64 quic_tp_us_to_ms(u32 us)
{
	return DIV_ROUND_UP((u64)us, USEC_PER_MSEC);
}

/* Build.  Every writer passes NULL on once the buffer is full. */

static u8 *quic_tp_put_bytes(u8 *p, const u8 *end, u64 id, const void *val,
			     u32 len)
{
	p = quic_varint_put(p, end, id);
	p = quic_varint_put(p, end, len);
	if (!p || end - p < len)
		return NULL;
	memcpy(p, val, len);
	return p + len;
}

static u8 *quic_tp_put_int(u8 *p, const u8 *end, u64 id, u64 val)
{
	p = quic_varint_put(p, end, id);
	p = quic_varint_put(p, end, quic_varint_len(val));
	return quic_varint_put(p, end, val);
}

static u8 *quic_tp_put_empty(u8 *p, const u8 *end, u64 id)
{
	return quic_tp_put_bytes(p, end, id, NULL, 0);
}

static u8 *quic_tp_put_cid(u8 *p, const u8 *end, u64 id,
			   const struct quic_conn_id *cid)
{
	return quic_tp_put_bytes(p, end, id, cid->data, cid->len);
}

/* RFC 9000 Section 18.2 (Figure 22): the preferred_address layout. */
static u8 *quic_tp_put_pref_addr(u8 *p, const u8 *end,
				 const struct quic_tp_pref_addr *a)
{
	u8 v[QUIC_TP_PREF_ADDR_MIN + QUIC_CONN_ID_MAX_LEN], *q = v;

	if (a->cid.len < 1 || a->cid.len > QUIC_CONN_ID_MAX_LEN)
		return NULL;
	memcpy(q, &a->v4.sin_addr, 4);
	memcpy(q + 4, &a->v4.sin_port, 2);
	memcpy(q + 6, &a->v6.sin6_addr, 16);
	memcpy(q + 22, &a->v6.sin6_port, 2);
	q += QUIC_TP_PREF_ADDR_FIXED;
	*q++ = a->cid.len;
	memcpy(q, a->cid.data, a->cid.len);
	q += a->cid.len;
	memcpy(q, a->token, QUIC_CONN_ID_TOKEN_LEN);
	q += QUIC_CONN_ID_TOKEN_LEN;
	return quic_tp_put_bytes(p, end, QUIC_TP_PREFERRED_ADDRESS, v, q - v);
}

static bool quic_tp_version_supported(u32 version)
{
	return version == QUIC_VERSION_V1 || version == QUIC_VERSION_V2;
}

/**
 * quic_tp_chosen_version - the Chosen Version of a connection in @version
 * @version: the version of its long headers; 0 means V1
 *
 * RFC 9368 Sections 2.1 and 2.5: a version we do not speak (quic_config
 * accepts any, ABI reference Section 7 quirk 14) can only draw a Version
 * Negotiation packet; the connection then goes on in V1, the version every
 * server knows, with the ClientHello already sent: its version_information
 * names V1 from the start (Chosen Version need not be the header's, RFC
 * 9368 Section 3), so that the first flight sent again in V1 is valid.
 *
 * Return: @version if it is V1 or V2, else V1.
 */
u32 quic_tp_chosen_version(u32 version)
{
	return quic_tp_version_supported(version) ? version : QUIC_VERSION_V1;
}
EXPORT_SYMBOL_IF_KUNIT(quic_tp_chosen_version);

/* RFC 9368 Section 3: Chosen Version, then the versions compatible with it. */
static u8 *quic_tp_put_version_info(u8 *p, const u8 *end, u32 version)
{
	static const u32 compat[] = { QUIC_VERSION_V2, QUIC_VERSION_V1 };
	u8 v[QUIC_TP_VERSION_LEN * (1 + ARRAY_SIZE(compat))];
	u32 i;

	quic_tp_put_be32(v, quic_tp_chosen_version(quic_tp_version(version)));
	for (i = 0; i < ARRAY_SIZE(compat); i++)
		quic_tp_put_be32(v + QUIC_TP_VERSION_LEN * (i + 1), compat[i]);
	return quic_tp_put_bytes(p, end, QUIC_TP_VERSION_INFORMATION, v,
				 sizeof(v));
}

/* RFC 9000 Section 18.2: parameters only a server sends. */
static u8 *quic_tp_build_server(u8 *p, const u8 *end,
				const struct quic_transport_param *tp,
				const struct quic_tp_build_ctx *ctx)
{
	if (!ctx->odcid || (tp->stateless_reset && !ctx->reset_token))
		return NULL;
	p = quic_tp_put_cid(p, end, QUIC_TP_ORIGINAL_DCID, ctx->odcid);
	if (tp->stateless_reset)
		p = quic_tp_put_bytes(p, end, QUIC_TP_STATELESS_RESET_TOKEN,
				      ctx->reset_token, QUIC_CONN_ID_TOKEN_LEN);
	if (ctx->retry_scid)
		p = quic_tp_put_cid(p, end, QUIC_TP_RETRY_SCID,
				    ctx->retry_scid);
	if (ctx->pref_addr)
		p = quic_tp_put_pref_addr(p, end, ctx->pref_addr);
	return p;
}

static u8 *quic_tp_put_nonzero(u8 *p, const u8 *end, u64 id, u64 val)
{
	return val ? quic_tp_put_int(p, end, id, val) : p;
}

/* Flow control limits, only when non-zero. */
static u8 *quic_tp_build_limits(u8 *p, const u8 *end,
				const struct quic_transport_param *tp)
{
	p = quic_tp_put_nonzero(p, end,
				QUIC_TP_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL,
				tp->max_stream_data_bidi_local);
	p = quic_tp_put_nonzero(p, end,
				QUIC_TP_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE,
				tp->max_stream_data_bidi_remote);
	p = quic_tp_put_nonzero(p, end, QUIC_TP_INITIAL_MAX_STREAM_DATA_UNI,
				tp->max_stream_data_uni);
	p = quic_tp_put_nonzero(p, end, QUIC_TP_INITIAL_MAX_DATA,
				tp->max_data);
	p = quic_tp_put_nonzero(p, end, QUIC_TP_INITIAL_MAX_STREAMS_BIDI,
				tp->max_streams_bidi);
	return quic_tp_put_nonzero(p, end, QUIC_TP_INITIAL_MAX_STREAMS_UNI,
				   tp->max_streams_uni);
}

static bool quic_tp_send_version_info(const struct quic_transport_param *tp,
				      const struct quic_tp_build_ctx *ctx)
{
	if (tp->disable_compatible_version)
		return false;
	return !ctx->is_serv || ctx->peer_version_info;
}

/* The rest, each only when it differs from what the peer would assume. */
static u8 *quic_tp_build_common(u8 *p, const u8 *end,
				const struct quic_transport_param *tp,
				const struct quic_tp_build_ctx *ctx)
{
	if (tp->max_udp_payload_size != QUIC_TP_DEF_UDP_PAYLOAD)
		p = quic_tp_put_int(p, end, QUIC_TP_MAX_UDP_PAYLOAD_SIZE,
				    tp->max_udp_payload_size);
	if (tp->ack_delay_exponent != QUIC_TP_DEF_ACK_DELAY_EXPONENT)
		p = quic_tp_put_int(p, end, QUIC_TP_ACK_DELAY_EXPONENT,
				    tp->ack_delay_exponent);
	if (tp->disable_active_migration)
		p = quic_tp_put_empty(p, end, QUIC_TP_DISABLE_ACTIVE_MIGRATION);
	if (tp->disable_1rtt_encryption)
		p = quic_tp_put_empty(p, end, QUIC_TP_DISABLE_1RTT_ENCRYPTION);
	if (quic_tp_send_version_info(tp, ctx))
		p = quic_tp_put_version_info(p, end, ctx->version);
	if (tp->grease_quic_bit)
		p = quic_tp_put_empty(p, end, QUIC_TP_GREASE_QUIC_BIT);
	if (tp->max_ack_delay != QUIC_TP_DEF_ACK_DELAY)
		p = quic_tp_put_int(p, end, QUIC_TP_MAX_ACK_DELAY,
				    quic_tp_us_to_ms(tp->max_ack_delay));
	p = quic_tp_put_nonzero(p, end, QUIC_TP_MAX_IDLE_TIMEOUT,
				quic_tp_us_to_ms(tp->max_idle_timeout));
	if (tp->active_connection_id_limit != QUIC_TP_DEF_CONN_ID_LIMIT)
		p = quic_tp_put_nonzero(p, end,
					QUIC_TP_ACTIVE_CONNECTION_ID_LIMIT,
					tp->active_connection_id_limit);
	return quic_tp_put_nonzero(p, end, QUIC_TP_MAX_DATAGRAM_FRAME_SIZE,
				   tp->max_datagram_frame_size);
}

/**
 * quic_tp_build - write our quic_transport_parameters extension
 * @tp: our (local) transport parameters
 * @ctx: connection IDs, version and the other context of the handshake
 * @buf: where to write
 * @size: room in @buf; at most QUIC_TP_EXT_LEN_MAX bytes are used
 *
 * ABI reference Section 3.1 gives the order; RFC 9000 Section 18.2 the
 * encodings.
 *
 * Return: the length written; -EINVAL if it does not fit, or a server's
 * @ctx lacks @odcid or (with stateless_reset) @reset_token, or @scid is
 * missing.
 */
int quic_tp_build(const struct quic_transport_param *tp,
		  const struct quic_tp_build_ctx *ctx, u8 *buf, u32 size)
{
	const u8 *end = buf + min_t(u32, size, QUIC_TP_EXT_LEN_MAX);
	u8 *p = buf;

	if (!ctx->scid)
		return -EINVAL;
	if (ctx->is_serv)
		p = quic_tp_build_server(p, end, tp, ctx);
	p = quic_tp_put_cid(p, end, QUIC_TP_INITIAL_SCID, ctx->scid);
	p = quic_tp_build_limits(p, end, tp);
	p = quic_tp_build_common(p, end, tp, ctx);
	if (!p)
		return -EINVAL;
	return p - buf;
}
EXPORT_SYMBOL_IF_KUNIT(quic_tp_build);

/* Parse */

/**
 * struct quic_tp_parser - state of one quic_tp_parse() call
 * @ctx: what the parameters are checked against
 * @p: the peer's parameters, filled in as they are read
 * @x: the rest of them
 * @seen: bit n: quic_tp_rules[n] was read (a second copy is an error)
 */
struct quic_tp_parser {
	const struct quic_tp_parse_ctx *ctx;
	struct quic_transport_param p;
	struct quic_tp_extra x;
	u32 seen;
};

/*
 * A parameter handler gets the value of a known parameter.  Integer
 * parameters have @set_int instead: the value must be exactly one varint
 * (RFC 9000 Section 18.2).
 */
struct quic_tp_rule {
	u64 id;
	int (*parse)(struct quic_tp_parser *ps, const u8 *val, u32 len);
	int (*set_int)(struct quic_tp_parser *ps, u64 val);
	bool server_sent;	/* RFC 9000 Section 18.2: a client-only receive */
};

/* RFC 9000 Section 7.3: connection ID authentication. */
static int quic_tp_check_cid(const struct quic_conn_id *expect, const u8 *val,
			     u32 len)
{
	if (len > QUIC_CONN_ID_MAX_LEN || !expect ||
	    !quic_conn_id_equal_raw(expect, val, len))
		return -EINVAL;
	return 0;
}

static int quic_tp_parse_odcid(struct quic_tp_parser *ps, const u8 *val,
			       u32 len)
{
	return quic_tp_check_cid(ps->ctx->odcid, val, len);
}

static int quic_tp_parse_initial_scid(struct quic_tp_parser *ps,
				      const u8 *val, u32 len)
{
	return quic_tp_check_cid(ps->ctx->peer_scid, val, len);
}

/* A client that saw no Retry fails here too (@retry_scid is NULL). */
static int quic_tp_parse_retry_scid(struct quic_tp_parser *ps, const u8 *val,
				    u32 len)
{
	return quic_tp_check_cid(ps->ctx->retry_scid, val, len);
}

static int quic_tp_parse_reset_token(struct quic_tp_parser *ps,
				     const u8 *val, u32 len)
{
	if (len != QUIC_CONN_ID_TOKEN_LEN)
		return -EINVAL;
	memcpy(ps->x.reset_token, val, len);
	ps->p.stateless_reset = 1;
	return 0;
}

/*
 * RFC 9000 Section 18.2: a server using a zero-length connection ID must
 * not offer a preferred address, nor put a zero-length one in it.
 */
static int quic_tp_parse_pref_addr(struct quic_tp_parser *ps, const u8 *val,
				   u32 len)
{
	struct quic_tp_pref_addr *a = &ps->x.pref_addr;
	const u8 *q = val + QUIC_TP_PREF_ADDR_FIXED;
	u8 cid_len;

	if (len < QUIC_TP_PREF_ADDR_MIN)
		return -EINVAL;
	cid_len = *q++;
	if (cid_len < 1 || cid_len > QUIC_CONN_ID_MAX_LEN ||
	    len != QUIC_TP_PREF_ADDR_MIN + cid_len)
		return -EINVAL;
	if (!ps->ctx->peer_scid || !ps->ctx->peer_scid->len)
		return -EINVAL;

	a->v4.sin_family = AF_INET;
	memcpy(&a->v4.sin_addr, val, 4);
	memcpy(&a->v4.sin_port, val + 4, 2);
	a->v6.sin6_family = AF_INET6;
	memcpy(&a->v6.sin6_addr, val + 6, 16);
	memcpy(&a->v6.sin6_port, val + 22, 2);
	quic_conn_id_set_raw(&a->cid, q, cid_len);
	memcpy(a->token, q + cid_len, QUIC_CONN_ID_TOKEN_LEN);
	ps->x.has_pref_addr = 1;
	return 0;
}

static int quic_tp_parse_empty_flag(const u8 *val, u32 len, u8 *flag)
{
	if (len)
		return -EINVAL;
	*flag = 1;
	return 0;
}

static int quic_tp_parse_migration(struct quic_tp_parser *ps, const u8 *val,
				   u32 len)
{
	return quic_tp_parse_empty_flag(val, len,
					&ps->p.disable_active_migration);
}

static int quic_tp_parse_grease(struct quic_tp_parser *ps, const u8 *val,
				u32 len)
{
	return quic_tp_parse_empty_flag(val, len, &ps->p.grease_quic_bit);
}

/* ABI reference Section 3.1: a server accepts any value, a client none. */
static int quic_tp_parse_disable_1rtt(struct quic_tp_parser *ps,
				      const u8 *val, u32 len)
{
	if (ps->ctx->is_serv)
		len = 0;
	return quic_tp_parse_empty_flag(val, len,
					&ps->p.disable_1rtt_encryption);
}

static bool quic_tp_version_listed(const u8 *list, u32 n, u32 version)
{
	u32 i;

	for (i = 0; i < n; i++)
		if (quic_tp_get_be32(list + i * QUIC_TP_VERSION_LEN) == version)
			return true;
	return false;
}

/*
 * RFC 9368 Sections 2.3 and 4: the client's Chosen Version is the version
 * of its Initial and is among its Available Versions; the server may move
 * to another listed version compatible with it (V1 and V2 are, RFC 9369).
 */
static int quic_tp_negotiate_server(struct quic_tp_parser *ps, u32 chosen,
				    const u8 *avail, u32 n)
{
	u32 pref = ps->ctx->pref_version;

	if (!quic_tp_version_listed(avail, n, chosen))
		return -EINVAL;
	if (chosen != quic_tp_version(ps->ctx->version) ||
	    !quic_tp_version_supported(chosen))
		return -EPROTONOSUPPORT;
	ps->x.version = chosen;
	if (pref && quic_tp_version_supported(pref) &&
	    quic_tp_version_listed(avail, n, pref))
		ps->x.version = pref;
	return 0;
}

/*
 * RFC 9368 Section 4: the server's Chosen Version is the one in use.  After
 * a Version Negotiation packet, the server's Available Versions (with its
 * Chosen Version) must hold the version we started again with: we would
 * have picked the same from a Version Negotiation packet listing them, and
 * a forged one listing fewer versions than the server has is caught.
 */
static int quic_tp_negotiate_client(struct quic_tp_parser *ps, u32 chosen,
				    const u8 *avail, u32 n)
{
	u32 vn = ps->ctx->vn_version;

	if (chosen != quic_tp_version(ps->ctx->version))
		return -EPROTONOSUPPORT;
	if (vn && (!n || (vn != chosen &&
			  !quic_tp_version_listed(avail, n, vn))))
		return -EPROTONOSUPPORT;
	return 0;
}

/* RFC 9368 Section 3: Chosen Version, then Available Versions; no zeros. */
static int quic_tp_parse_version_info(struct quic_tp_parser *ps,
				      const u8 *val, u32 len)
{
	u32 i, n = len / QUIC_TP_VERSION_LEN, chosen;

	if (len < QUIC_TP_VERSION_LEN || len % QUIC_TP_VERSION_LEN ||
	    n > QUIC_TP_VERSIONS_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!quic_tp_get_be32(val + i * QUIC_TP_VERSION_LEN))
			return -EINVAL;

	chosen = quic_tp_get_be32(val);
	ps->x.chosen_version = chosen;
	ps->x.has_version_info = 1;
	ps->p.disable_compatible_version = 0;
	if (ps->ctx->is_serv)
		return quic_tp_negotiate_server(ps, chosen,
						val + QUIC_TP_VERSION_LEN,
						n - 1);
	return quic_tp_negotiate_client(ps, chosen, val + QUIC_TP_VERSION_LEN,
					n - 1);
}

/* Integer parameters: RFC 9000 Section 18.2 and ABI reference Section 3. */

static int quic_tp_set_idle_timeout(struct quic_tp_parser *ps, u64 ms)
{
	if (ms && ms < QUIC_TP_MIN_IDLE_TIMEOUT_MS)
		return -EINVAL;
	ps->p.max_idle_timeout = min_t(u64, ms, U32_MAX / USEC_PER_MSEC) *
				 USEC_PER_MSEC;
	return 0;
}

static int quic_tp_set_udp_payload(struct quic_tp_parser *ps, u64 val)
{
	if (val < QUIC_TP_MIN_UDP_PAYLOAD)
		return -EINVAL;
	ps->p.max_udp_payload_size = min_t(u64, val, QUIC_TP_DEF_UDP_PAYLOAD);
	return 0;
}

static int quic_tp_check_data(u64 val)
{
	return val && val < QUIC_TP_MIN_DATA ? -EINVAL : 0;
}

static int quic_tp_set_max_data(struct quic_tp_parser *ps, u64 val)
{
	ps->p.max_data = val;
	return quic_tp_check_data(val);
}

static int quic_tp_set_data_bidi_local(struct quic_tp_parser *ps, u64 val)
{
	ps->p.max_stream_data_bidi_local = val;
	return quic_tp_check_data(val);
}

static int quic_tp_set_data_bidi_remote(struct quic_tp_parser *ps, u64 val)
{
	ps->p.max_stream_data_bidi_remote = val;
	return quic_tp_check_data(val);
}

static int quic_tp_set_data_uni(struct quic_tp_parser *ps, u64 val)
{
	ps->p.max_stream_data_uni = val;
	return quic_tp_check_data(val);
}

/* RFC 9000 Section 4.6: more than 2^60 streams is an error; clamp the rest. */
static int quic_tp_get_streams(u64 val, u16 *dst)
{
	if (val > QUIC_TP_MAX_STREAMS_WIRE)
		return -EINVAL;
	*dst = min_t(u64, val, QUIC_TP_MAX_STREAMS);
	return 0;
}

static int quic_tp_set_streams_bidi(struct quic_tp_parser *ps, u64 val)
{
	return quic_tp_get_streams(val, &ps->p.max_streams_bidi);
}

static int quic_tp_set_streams_uni(struct quic_tp_parser *ps, u64 val)
{
	return quic_tp_get_streams(val, &ps->p.max_streams_uni);
}

static int quic_tp_set_ack_delay_exponent(struct quic_tp_parser *ps, u64 val)
{
	if (val > QUIC_TP_MAX_ACK_DELAY_EXPONENT)
		return -EINVAL;
	ps->p.ack_delay_exponent = val;
	return 0;
}

static int quic_tp_set_max_ack_delay(struct quic_tp_parser *ps, u64 ms)
{
	if (ms >= QUIC_TP_MAX_ACK_DELAY_MS)
		return -EINVAL;
	ps->p.max_ack_delay = ms * USEC_PER_MSEC;
	return 0;
}

static int quic_tp_set_cid_limit(struct quic_tp_parser *ps, u64 val)
{
	if (val < QUIC_CONN_ID_LIMIT_MIN)
		return -EINVAL;
	ps->p.active_connection_id_limit = min_t(u64, val,
						 QUIC_CONN_ID_LIMIT_MAX);
	return 0;
}

/* RFC 9221 Section 3 and ABI reference Section 3.1. */
static int quic_tp_set_datagram(struct quic_tp_parser *ps, u64 val)
{
	if (val && val < QUIC_TP_MIN_DATAGRAM)
		return -EINVAL;
	ps->p.max_datagram_frame_size = min_t(u64, val, QUIC_TP_MAX_DATAGRAM);
	return 0;
}

static const struct quic_tp_rule quic_tp_rules[] = {
	{ QUIC_TP_ORIGINAL_DCID, .parse = quic_tp_parse_odcid,
	  .server_sent = true },
	{ QUIC_TP_MAX_IDLE_TIMEOUT, .set_int = quic_tp_set_idle_timeout },
	{ QUIC_TP_STATELESS_RESET_TOKEN, .parse = quic_tp_parse_reset_token,
	  .server_sent = true },
	{ QUIC_TP_MAX_UDP_PAYLOAD_SIZE, .set_int = quic_tp_set_udp_payload },
	{ QUIC_TP_INITIAL_MAX_DATA, .set_int = quic_tp_set_max_data },
	{ QUIC_TP_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL,
	  .set_int = quic_tp_set_data_bidi_local },
	{ QUIC_TP_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE,
	  .set_int = quic_tp_set_data_bidi_remote },
	{ QUIC_TP_INITIAL_MAX_STREAM_DATA_UNI,
	  .set_int = quic_tp_set_data_uni },
	{ QUIC_TP_INITIAL_MAX_STREAMS_BIDI,
	  .set_int = quic_tp_set_streams_bidi },
	{ QUIC_TP_INITIAL_MAX_STREAMS_UNI, .set_int = quic_tp_set_streams_uni },
	{ QUIC_TP_ACK_DELAY_EXPONENT,
	  .set_int = quic_tp_set_ack_delay_exponent },
	{ QUIC_TP_MAX_ACK_DELAY, .set_int = quic_tp_set_max_ack_delay },
	{ QUIC_TP_DISABLE_ACTIVE_MIGRATION, .parse = quic_tp_parse_migration },
	{ QUIC_TP_PREFERRED_ADDRESS, .parse = quic_tp_parse_pref_addr,
	  .server_sent = true },
	{ QUIC_TP_ACTIVE_CONNECTION_ID_LIMIT,
	  .set_int = quic_tp_set_cid_limit },
	{ QUIC_TP_INITIAL_SCID, .parse = quic_tp_parse_initial_scid },
	{ QUIC_TP_RETRY_SCID, .parse = quic_tp_parse_retry_scid,
	  .server_sent = true },
	{ QUIC_TP_VERSION_INFORMATION, .parse = quic_tp_parse_version_info },
	{ QUIC_TP_MAX_DATAGRAM_FRAME_SIZE, .set_int = quic_tp_set_datagram },
	{ QUIC_TP_GREASE_QUIC_BIT, .parse = quic_tp_parse_grease },
	{ QUIC_TP_DISABLE_1RTT_ENCRYPTION,
	  .parse = quic_tp_parse_disable_1rtt },
};

/* Return: index in quic_tp_rules[], or -1 for an ID we do not know. */
static int quic_tp_rule_index(u64 id)
{
	int i;

	BUILD_BUG_ON(ARRAY_SIZE(quic_tp_rules) > 32);	/* fits @seen */
	for (i = 0; i < ARRAY_SIZE(quic_tp_rules); i++)
		if (quic_tp_rules[i].id == id)
			return i;
	return -1;
}

static bool quic_tp_seen(const struct quic_tp_parser *ps, u64 id)
{
	int i = quic_tp_rule_index(id);

	return i >= 0 && (ps->seen & BIT(i));
}

static int quic_tp_parse_int(struct quic_tp_parser *ps,
			     const struct quic_tp_rule *rule, const u8 *val,
			     u32 len)
{
	const u8 *end = val + len;
	u64 v;

	if (!quic_varint_get(&val, end, &v) || val != end)
		return -EINVAL;
	return rule->set_int(ps, v);
}

static int quic_tp_parse_one(struct quic_tp_parser *ps, u64 id,
			     const u8 *val, u32 len)
{
	const struct quic_tp_rule *rule;
	int i = quic_tp_rule_index(id);

	if (i < 0)
		return 0;
	/* RFC 9000 Section 7.4: no parameter may appear twice. */
	if (ps->seen & BIT(i))
		return -EINVAL;
	ps->seen |= BIT(i);
	rule = &quic_tp_rules[i];
	if (rule->server_sent && ps->ctx->is_serv)
		return -EINVAL;
	if (rule->set_int)
		return quic_tp_parse_int(ps, rule, val, len);
	return rule->parse(ps, val, len);
}

/*
 * RFC 9000 Section 7.3: both ends send initial_source_connection_id; the
 * server sends original_destination_connection_id, and
 * retry_source_connection_id after a Retry.
 */
static int quic_tp_check_mandatory(const struct quic_tp_parser *ps)
{
	const struct quic_tp_parse_ctx *ctx = ps->ctx;

	if (!quic_tp_seen(ps, QUIC_TP_INITIAL_SCID))
		return -EINVAL;
	if (ctx->is_serv)
		return 0;
	if (!quic_tp_seen(ps, QUIC_TP_ORIGINAL_DCID))
		return -EINVAL;
	if (ctx->retry_scid && !quic_tp_seen(ps, QUIC_TP_RETRY_SCID))
		return -EINVAL;
	/* RFC 9368 Section 4: no version_information, no proof after VN. */
	if (ctx->vn_version && !ps->x.has_version_info)
		return -EPROTONOSUPPORT;
	return 0;
}

/**
 * quic_tp_peer_defaults - the peer's parameters before any was read
 * @p: set to the values assumed for absent parameters (ABI reference
 *	Section 1.14, RFC 9000 Section 18.2), with @p->remote set
 */
static void quic_tp_peer_defaults(struct quic_transport_param *p)
{
	memset(p, 0, sizeof(*p));
	p->remote = 1;
	p->max_udp_payload_size = QUIC_TP_DEF_UDP_PAYLOAD;
	p->ack_delay_exponent = QUIC_TP_DEF_ACK_DELAY_EXPONENT;
	p->max_ack_delay = QUIC_TP_DEF_ACK_DELAY;
	p->active_connection_id_limit = QUIC_TP_DEF_CONN_ID_LIMIT;
	p->disable_compatible_version = 1;
}

/**
 * quic_tp_parse - read and check the peer's quic_transport_parameters
 * @buf: the extension value, as TLS passed it on
 * @len: its length, at most QUIC_TP_EXT_LEN_MAX
 * @ctx: what to check the parameters against
 * @p: the peer's parameters, written only on success; absent ones take the
 *	assumed values of quic_tp_peer_defaults()
 * @x: the rest (reset token, preferred address, versions), written only on
 *	success
 *
 * Return: 0; -EPROTONOSUPPORT if version negotiation fails (the connection
 * closes with VERSION_NEGOTIATION_ERROR), -EINVAL for anything else wrong
 * (TRANSPORT_PARAMETER_ERROR): see quic_tp_errcode().
 */
int quic_tp_parse(const u8 *buf, u32 len, const struct quic_tp_parse_ctx *ctx,
		  struct quic_transport_param *p, struct quic_tp_extra *x)
{
	struct quic_tp_parser ps = { .ctx = ctx };
	const u8 *end = buf + len;
	u64 id, vlen;
	int err;

	if (len > QUIC_TP_EXT_LEN_MAX)
		return -EINVAL;
	quic_tp_peer_defaults(&ps.p);
	ps.x.version = quic_tp_version(ctx->version);

	while (buf < end) {
		if (!quic_varint_get(&buf, end, &id) ||
		    !quic_varint_get(&buf, end, &vlen) || vlen > end - buf)
			return -EINVAL;
		err = quic_tp_parse_one(&ps, id, buf, vlen);
		if (err)
			return err;
		buf += vlen;
	}
	err = quic_tp_check_mandatory(&ps);
	if (err)
		return err;

	*p = ps.p;
	*x = ps.x;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_tp_parse);

/**
 * quic_tp_errcode - transport error for a quic_tp_parse() failure
 * @err: its negative return value
 *
 * Return: QUIC_TRANSPORT_ERROR_VERSION_NEGOTIATION for -EPROTONOSUPPORT,
 * QUIC_TRANSPORT_ERROR_TRANSPORT_PARAM for anything else (ABI reference
 * Section 3).
 */
u32 quic_tp_errcode(int err)
{
	if (err == -EPROTONOSUPPORT)
		return QUIC_TRANSPORT_ERROR_VERSION_NEGOTIATION;
	return QUIC_TRANSPORT_ERROR_TRANSPORT_PARAM;
}
EXPORT_SYMBOL_IF_KUNIT(quic_tp_errcode);
