// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * KUnit tests of variable-length integers (varint.h), the transport
 * parameters extension (tp.c) and connection IDs (connid.c).
 *
 * The varint examples are those of RFC 9000 Appendix A.1.  Transport
 * parameters are checked by round trips (client -> server and back), by the
 * order of ABI reference Section 3.1, and by one case per rule of its "Parse
 * (set)" list, each made by appending one parameter to an extension that is
 * otherwise valid.  Connection ID sets follow RFC 9000 Sections 5.1, 19.15
 * and 19.16; the hash is tested with a real (UDP) socket, for its reference
 * counting.
 *
 * Built into quic_unit_test.ko with crypto_test.c; it needs quic.ko, which
 * calls quic_connid_init(), for the exported quic_tp_* and quic_conn_id_*.
 */

#include <kunit/test.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/string.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>
#include <net/sock.h>

#include "../connid.h"
#include "../tp.h"
#include "../varint.h"

/* Varints */

struct quic_test_varint {
	u64 val;
	u8 len;
	u8 wire[8];
};

/* RFC 9000 Appendix A.1 (Table 4 and the text after it), then boundaries. */
static const struct quic_test_varint quic_test_varints[] = {
	{ 151288809941952652ULL, 8,
	  { 0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c } },
	{ 494878333, 4, { 0x9d, 0x7f, 0x3e, 0x7d } },
	{ 15293, 2, { 0x7b, 0xbd } },
	{ 37, 1, { 0x25 } },
	{ 0, 1, { 0x00 } },
	{ 63, 1, { 0x3f } },
	{ 64, 2, { 0x40, 0x40 } },
	{ 16383, 2, { 0x7f, 0xff } },
	{ 16384, 4, { 0x80, 0x00, 0x40, 0x00 } },
	{ (1ULL << 30) - 1, 4, { 0xbf, 0xff, 0xff, 0xff } },
	{ 1ULL << 30, 8, { 0xc0, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00 } },
	{ QUIC_VARINT_MAX, 8,
	  { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
};

static void quic_test_varint_encode(struct kunit *test)
{
	const struct quic_test_varint *t;
	u8 buf[8];
	u32 i;

	for (i = 0; i < ARRAY_SIZE(quic_test_varints); i++) {
		t = &quic_test_varints[i];
		KUNIT_EXPECT_EQ(test, quic_varint_len(t->val), t->len);
		KUNIT_EXPECT_PTR_EQ(test, quic_varint_put(buf, buf + 8, t->val),
				    buf + t->len);
		KUNIT_EXPECT_MEMEQ(test, buf, t->wire, t->len);
		/* One byte short: nothing written, NULL. */
		KUNIT_EXPECT_NULL(test, quic_varint_put(buf, buf + t->len - 1,
							t->val));
	}
	KUNIT_EXPECT_EQ(test, quic_varint_len(QUIC_VARINT_MAX + 1), 0);
	KUNIT_EXPECT_NULL(test, quic_varint_put(buf, buf + 8,
						QUIC_VARINT_MAX + 1));
	KUNIT_EXPECT_NULL(test, quic_varint_put(NULL, buf + 8, 1));
}

static void quic_test_varint_decode(struct kunit *test)
{
	const struct quic_test_varint *t;
	const u8 *p;
	u64 val;
	u32 i, n;

	for (i = 0; i < ARRAY_SIZE(quic_test_varints); i++) {
		t = &quic_test_varints[i];
		p = t->wire;
		KUNIT_EXPECT_TRUE(test, quic_varint_get(&p, t->wire + t->len,
							&val));
		KUNIT_EXPECT_EQ(test, val, t->val);
		KUNIT_EXPECT_PTR_EQ(test, p, t->wire + t->len);
		/* Truncated: fails, cursor and value untouched. */
		for (n = 0; n < t->len; n++) {
			p = t->wire;
			val = 0xdead;
			KUNIT_EXPECT_FALSE(test, quic_varint_get(&p,
								 t->wire + n,
								 &val));
			KUNIT_EXPECT_PTR_EQ(test, p, &t->wire[0]);
			KUNIT_EXPECT_EQ(test, val, 0xdead);
		}
	}
}

/* RFC 9000 Section 16: a value need not use its shortest encoding. */
static void quic_test_varint_put_len(struct kunit *test)
{
	static const u8 two[] = { 0x40, 0x25 };
	static const u8 eight[] = { 0xc0, 0, 0, 0, 0, 0, 0, 0x25 };
	const u8 *p;
	u8 buf[8];
	u64 val;

	KUNIT_EXPECT_PTR_EQ(test, quic_varint_put_len(buf, buf + 8, 37, 2),
			    buf + 2);
	KUNIT_EXPECT_MEMEQ(test, buf, two, 2);
	p = buf;
	KUNIT_EXPECT_TRUE(test, quic_varint_get(&p, buf + 2, &val));
	KUNIT_EXPECT_EQ(test, val, 37);

	KUNIT_EXPECT_PTR_EQ(test, quic_varint_put_len(buf, buf + 8, 37, 8),
			    buf + 8);
	KUNIT_EXPECT_MEMEQ(test, buf, eight, 8);

	KUNIT_EXPECT_NULL(test, quic_varint_put_len(buf, buf + 8, 64, 1));
	KUNIT_EXPECT_NULL(test, quic_varint_put_len(buf, buf + 8, 1, 3));
	KUNIT_EXPECT_NULL(test, quic_varint_put_len(buf, buf + 8, 1, 0));
	KUNIT_EXPECT_NULL(test, quic_varint_put_len(buf, buf + 3, 1, 4));
}

/* Transport parameters */

static const struct quic_conn_id quic_test_odcid = {
	8, { 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08 } };
static const struct quic_conn_id quic_test_cscid = {
	8, { 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8 } };
static const struct quic_conn_id quic_test_sscid = {
	8, { 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58 } };
static const struct quic_conn_id quic_test_retry = {
	5, { 0xe1, 0xe2, 0xe3, 0xe4, 0xe5 } };
static const u8 quic_test_token[QUIC_CONN_ID_TOKEN_LEN] = {
	0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
	0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f };

#define QUIC_TEST_BUF	1024

/* Our params as a fresh socket has them (ABI reference Section 1.14). */
static void quic_test_local_tp(struct quic_transport_param *p)
{
	memset(p, 0, sizeof(*p));
	p->max_udp_payload_size = 65527;
	p->ack_delay_exponent = 3;
	p->max_ack_delay = 25000;
	p->active_connection_id_limit = 7;
	p->max_idle_timeout = 30000000;
	p->max_data = 65535U * 32;
	p->max_stream_data_bidi_local = 65535U * 16;
	p->max_stream_data_bidi_remote = 65535U * 16;
	p->max_stream_data_uni = 65535U * 16;
	p->max_streams_bidi = 100;
	p->max_streams_uni = 100;
}

static void quic_test_pref_addr(struct quic_tp_pref_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->v4.sin_family = AF_INET;
	a->v4.sin_addr.s_addr = htonl(0xc0000201);
	a->v4.sin_port = htons(4433);
	a->v6.sin6_family = AF_INET6;
	a->v6.sin6_addr.s6_addr[0] = 0x20;
	a->v6.sin6_addr.s6_addr[1] = 0x01;
	a->v6.sin6_addr.s6_addr[15] = 0x01;
	a->v6.sin6_port = htons(4434);
	a->cid.len = 8;
	memset(a->cid.data, 0xaa, 8);
	memset(a->token, 0xbb, QUIC_CONN_ID_TOKEN_LEN);
}

/**
 * struct quic_test_tp - one extension being assembled
 * @buf: its bytes
 * @len: their number
 * @pref: server's preferred address
 * @bctx: how it was built
 * @pctx: how the other end parses it
 */
struct quic_test_tp {
	u8 buf[QUIC_TEST_BUF];
	u32 len;
	struct quic_tp_pref_addr pref;
	struct quic_tp_build_ctx bctx;
	struct quic_tp_parse_ctx pctx;
};

/* What a client sends and how the server parses it. */
static struct quic_test_tp *quic_test_client_ext(struct kunit *test)
{
	struct quic_test_tp *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	struct quic_transport_param p;
	int len;

	KUNIT_ASSERT_NOT_NULL(test, t);
	quic_test_local_tp(&p);
	t->bctx.scid = &quic_test_cscid;
	t->bctx.version = QUIC_VERSION_V1;
	t->pctx.peer_scid = &quic_test_cscid;
	t->pctx.version = QUIC_VERSION_V1;
	t->pctx.is_serv = true;
	len = quic_tp_build(&p, &t->bctx, t->buf, QUIC_TP_EXT_LEN_MAX);
	KUNIT_ASSERT_GT(test, len, 0);
	t->len = len;
	return t;
}

/* What a server sends (no Retry) and how the client parses it. */
static struct quic_test_tp *quic_test_server_ext(struct kunit *test,
						 bool retry)
{
	struct quic_test_tp *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	struct quic_transport_param p;
	int len;

	KUNIT_ASSERT_NOT_NULL(test, t);
	quic_test_local_tp(&p);
	p.stateless_reset = 1;
	quic_test_pref_addr(&t->pref);
	t->bctx.odcid = &quic_test_odcid;
	t->bctx.scid = &quic_test_sscid;
	t->bctx.retry_scid = retry ? &quic_test_retry : NULL;
	t->bctx.reset_token = quic_test_token;
	t->bctx.pref_addr = &t->pref;
	t->bctx.version = QUIC_VERSION_V1;
	t->bctx.is_serv = true;
	t->bctx.peer_version_info = true;
	t->pctx.odcid = &quic_test_odcid;
	t->pctx.retry_scid = retry ? &quic_test_retry : NULL;
	t->pctx.peer_scid = &quic_test_sscid;
	t->pctx.version = QUIC_VERSION_V1;
	len = quic_tp_build(&p, &t->bctx, t->buf, QUIC_TP_EXT_LEN_MAX);
	KUNIT_ASSERT_GT(test, len, 0);
	t->len = len;
	return t;
}

/* Append one parameter; @val may be NULL for an empty one. */
static void quic_test_add(struct kunit *test, struct quic_test_tp *t, u64 id,
			  const void *val, u32 len)
{
	u8 *end = t->buf + sizeof(t->buf), *p = t->buf + t->len;

	p = quic_varint_put(p, end, id);
	p = quic_varint_put(p, end, len);
	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_ASSERT_LE(test, len, end - p);
	if (len)
		memcpy(p, val, len);
	t->len = p + len - t->buf;
}

static void quic_test_add_int(struct kunit *test, struct quic_test_tp *t,
			      u64 id, u64 val)
{
	u8 v[8];

	KUNIT_ASSERT_NOT_NULL(test, quic_varint_put(v, v + 8, val));
	quic_test_add(test, t, id, v, quic_varint_len(val));
}

static int quic_test_parse(struct quic_test_tp *t,
			   struct quic_transport_param *p,
			   struct quic_tp_extra *x)
{
	return quic_tp_parse(t->buf, t->len, &t->pctx, p, x);
}

static int quic_test_parse_err(struct quic_test_tp *t)
{
	struct quic_transport_param p;
	struct quic_tp_extra x;

	return quic_test_parse(t, &p, &x);
}

/* IDs of an extension, in order; returns their number. */
static u32 quic_test_ids(struct kunit *test, const u8 *buf, u32 len, u64 *ids,
			 u32 max)
{
	const u8 *p = buf, *end = buf + len;
	u64 vlen;
	u32 n = 0;

	while (p < end && n < max) {
		KUNIT_ASSERT_TRUE(test, quic_varint_get(&p, end, &ids[n]));
		KUNIT_ASSERT_TRUE(test, quic_varint_get(&p, end, &vlen));
		KUNIT_ASSERT_LE(test, vlen, end - p);
		p += vlen;
		n++;
	}
	KUNIT_EXPECT_PTR_EQ(test, p, end);
	return n;
}

/* Is @sub in @buf? (The kernel has no memmem().) */
static bool quic_test_contains(const u8 *buf, u32 len, const u8 *sub,
			       u32 sublen)
{
	u32 i;

	for (i = 0; i + sublen <= len; i++)
		if (!memcmp(buf + i, sub, sublen))
			return true;
	return false;
}

/* ABI reference Section 3.1, with a fresh socket's params. */
static void quic_test_tp_build_client_order(struct kunit *test)
{
	static const u64 order[] = { 0x0f, 0x05, 0x06, 0x07, 0x04, 0x08,
				     0x09, 0x11, 0x01, 0x0e };
	struct quic_test_tp *t = quic_test_client_ext(test);
	u64 ids[32];
	u32 n, i;

	n = quic_test_ids(test, t->buf, t->len, ids, ARRAY_SIZE(ids));
	KUNIT_ASSERT_EQ(test, n, ARRAY_SIZE(order));
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_EQ(test, ids[i], order[i]);
}

static void quic_test_tp_build_server_order(struct kunit *test)
{
	static const u64 order[] = { 0x00, 0x02, 0x10, 0x0d, 0x0f, 0x05, 0x06,
				     0x07, 0x04, 0x08, 0x09, 0x03, 0x0a, 0x0c,
				     0xbaad, 0x11, 0x2ab2, 0x0b, 0x01, 0x0e,
				     0x20 };
	struct quic_transport_param p;
	struct quic_tp_pref_addr pref;
	struct quic_tp_build_ctx ctx = {
		.odcid = &quic_test_odcid, .scid = &quic_test_sscid,
		.retry_scid = &quic_test_retry, .reset_token = quic_test_token,
		.pref_addr = &pref, .version = QUIC_VERSION_V2,
		.is_serv = true, .peer_version_info = true,
	};
	u8 *buf = kunit_kzalloc(test, QUIC_TP_EXT_LEN_MAX, GFP_KERNEL);
	u64 ids[32];
	int len;
	u32 n, i;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	quic_test_local_tp(&p);
	quic_test_pref_addr(&pref);
	p.stateless_reset = 1;
	p.max_udp_payload_size = 1500;
	p.ack_delay_exponent = 4;
	p.disable_active_migration = 1;
	p.disable_1rtt_encryption = 1;
	p.grease_quic_bit = 1;
	p.max_ack_delay = 30000;
	p.max_datagram_frame_size = 1500;
	len = quic_tp_build(&p, &ctx, buf, QUIC_TP_EXT_LEN_MAX);
	KUNIT_ASSERT_GT(test, len, 0);
	n = quic_test_ids(test, buf, len, ids, ARRAY_SIZE(ids));
	KUNIT_ASSERT_EQ(test, n, ARRAY_SIZE(order));
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_EQ(test, ids[i], order[i]);

	/* Every buffer shorter than the encoding is refused. */
	for (i = 0; i < len; i++)
		KUNIT_EXPECT_EQ(test, quic_tp_build(&p, &ctx, buf, i), -EINVAL);
	KUNIT_EXPECT_EQ(test, quic_tp_build(&p, &ctx, buf, len), len);

	/* A server needs the original DCID, and a token to advertise one. */
	ctx.reset_token = NULL;
	KUNIT_EXPECT_EQ(test, quic_tp_build(&p, &ctx, buf, 512), -EINVAL);
	ctx.reset_token = quic_test_token;
	ctx.odcid = NULL;
	KUNIT_EXPECT_EQ(test, quic_tp_build(&p, &ctx, buf, 512), -EINVAL);
}

/* version_information: left out when disabled, or when a client sent none. */
static void quic_test_tp_build_version_info(struct kunit *test)
{
	static const u8 v2[] = { 0x11, 12, 0x6b, 0x33, 0x43, 0xcf,
				 0x6b, 0x33, 0x43, 0xcf, 0, 0, 0, 1 };
	static const u8 v1[] = { 0x11, 12, 0, 0, 0, 1,
				 0x6b, 0x33, 0x43, 0xcf, 0, 0, 0, 1 };
	struct quic_tp_build_ctx ctx = { .scid = &quic_test_cscid,
					 .version = QUIC_VERSION_V2 };
	struct quic_transport_param p;
	u8 buf[128];
	u64 ids[32];
	int len;
	u32 n, i;

	quic_test_local_tp(&p);
	len = quic_tp_build(&p, &ctx, buf, sizeof(buf));
	KUNIT_ASSERT_GT(test, len, 0);
	KUNIT_EXPECT_TRUE(test, quic_test_contains(buf, len, v2, sizeof(v2)));

	/* A version we do not speak only draws VN: the Chosen Version is V1. */
	ctx.version = 0x1a2a3a4a;
	len = quic_tp_build(&p, &ctx, buf, sizeof(buf));
	KUNIT_ASSERT_GT(test, len, 0);
	KUNIT_EXPECT_TRUE(test, quic_test_contains(buf, len, v1, sizeof(v1)));
	KUNIT_EXPECT_EQ(test, quic_tp_chosen_version(0x1a2a3a4a), QUIC_VERSION_V1);
	KUNIT_EXPECT_EQ(test, quic_tp_chosen_version(QUIC_VERSION_V2),
			QUIC_VERSION_V2);

	p.disable_compatible_version = 1;
	len = quic_tp_build(&p, &ctx, buf, sizeof(buf));
	n = quic_test_ids(test, buf, len, ids, ARRAY_SIZE(ids));
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_NE(test, ids[i], QUIC_TP_VERSION_INFORMATION);

	p.disable_compatible_version = 0;
	ctx.is_serv = true;
	ctx.odcid = &quic_test_odcid;
	len = quic_tp_build(&p, &ctx, buf, sizeof(buf));
	n = quic_test_ids(test, buf, len, ids, ARRAY_SIZE(ids));
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_NE(test, ids[i], QUIC_TP_VERSION_INFORMATION);
}

/* RFC 9000 Section 18.2: microseconds go out as milliseconds, rounded up. */
static void quic_test_tp_build_units(struct kunit *test)
{
	static const u8 idle[] = { 0x01, 0x02, 0x43, 0xe9 };	/* 1001 ms */
	static const u8 ack[] = { 0x0b, 0x01, 0x1a };		/* 26 ms */
	struct quic_tp_build_ctx ctx = { .scid = &quic_test_cscid };
	struct quic_transport_param p;
	u8 buf[128];
	int len;

	quic_test_local_tp(&p);
	p.max_idle_timeout = 1000001;
	p.max_ack_delay = 25001;
	len = quic_tp_build(&p, &ctx, buf, sizeof(buf));
	KUNIT_ASSERT_GT(test, len, 0);
	KUNIT_EXPECT_TRUE(test, quic_test_contains(buf, len, idle, sizeof(idle)));
	KUNIT_EXPECT_TRUE(test, quic_test_contains(buf, len, ack, sizeof(ack)));
}

static void quic_test_tp_roundtrip_client(struct kunit *test)
{
	struct quic_test_tp *t = quic_test_client_ext(test);
	struct quic_transport_param p, local;
	struct quic_tp_extra x;

	quic_test_local_tp(&local);
	KUNIT_ASSERT_EQ(test, quic_test_parse(t, &p, &x), 0);
	KUNIT_EXPECT_EQ(test, p.remote, 1);
	KUNIT_EXPECT_EQ(test, p.max_udp_payload_size, 65527);
	KUNIT_EXPECT_EQ(test, p.ack_delay_exponent, 3);
	KUNIT_EXPECT_EQ(test, p.max_ack_delay, 25000);
	KUNIT_EXPECT_EQ(test, p.active_connection_id_limit, 7);
	KUNIT_EXPECT_EQ(test, p.max_idle_timeout, local.max_idle_timeout);
	KUNIT_EXPECT_EQ(test, p.max_data, local.max_data);
	KUNIT_EXPECT_EQ(test, p.max_stream_data_bidi_local,
			local.max_stream_data_bidi_local);
	KUNIT_EXPECT_EQ(test, p.max_stream_data_bidi_remote,
			local.max_stream_data_bidi_remote);
	KUNIT_EXPECT_EQ(test, p.max_stream_data_uni, local.max_stream_data_uni);
	KUNIT_EXPECT_EQ(test, p.max_streams_bidi, 100);
	KUNIT_EXPECT_EQ(test, p.max_streams_uni, 100);
	KUNIT_EXPECT_EQ(test, p.max_datagram_frame_size, 0);
	KUNIT_EXPECT_EQ(test, p.stateless_reset, 0);
	KUNIT_EXPECT_EQ(test, p.disable_compatible_version, 0);
	KUNIT_EXPECT_TRUE(test, x.has_version_info);
	KUNIT_EXPECT_FALSE(test, x.has_pref_addr);
	KUNIT_EXPECT_EQ(test, x.chosen_version, QUIC_VERSION_V1);
	KUNIT_EXPECT_EQ(test, x.version, QUIC_VERSION_V1);
}

static void quic_test_tp_roundtrip_server(struct kunit *test)
{
	struct quic_test_tp *t = quic_test_server_ext(test, true);
	struct quic_transport_param p;
	struct quic_tp_extra x;

	KUNIT_ASSERT_EQ(test, quic_test_parse(t, &p, &x), 0);
	KUNIT_EXPECT_EQ(test, p.stateless_reset, 1);
	KUNIT_EXPECT_MEMEQ(test, x.reset_token, quic_test_token,
			   QUIC_CONN_ID_TOKEN_LEN);
	KUNIT_ASSERT_TRUE(test, x.has_pref_addr);
	KUNIT_EXPECT_EQ(test, x.pref_addr.v4.sin_family, AF_INET);
	KUNIT_EXPECT_EQ(test, ntohl(x.pref_addr.v4.sin_addr.s_addr),
			0xc0000201);
	KUNIT_EXPECT_EQ(test, ntohs(x.pref_addr.v4.sin_port), 4433);
	KUNIT_EXPECT_EQ(test, x.pref_addr.v6.sin6_family, AF_INET6);
	KUNIT_EXPECT_TRUE(test, ipv6_addr_equal(&x.pref_addr.v6.sin6_addr,
						&t->pref.v6.sin6_addr));
	KUNIT_EXPECT_EQ(test, ntohs(x.pref_addr.v6.sin6_port), 4434);
	KUNIT_EXPECT_TRUE(test, quic_conn_id_equal(&x.pref_addr.cid,
						   &t->pref.cid));
	KUNIT_EXPECT_MEMEQ(test, x.pref_addr.token, t->pref.token,
			   QUIC_CONN_ID_TOKEN_LEN);
	KUNIT_EXPECT_EQ(test, p.active_connection_id_limit, 7);
	KUNIT_EXPECT_EQ(test, x.version, QUIC_VERSION_V1);
}

/* Absent parameters take the assumed values (ABI reference 1.14). */
static void quic_test_tp_defaults(struct kunit *test)
{
	struct quic_test_tp *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	struct quic_transport_param p;
	struct quic_tp_extra x;

	KUNIT_ASSERT_NOT_NULL(test, t);
	t->pctx.peer_scid = &quic_test_cscid;
	t->pctx.is_serv = true;
	quic_test_add(test, t, QUIC_TP_INITIAL_SCID, quic_test_cscid.data,
		      quic_test_cscid.len);
	KUNIT_ASSERT_EQ(test, quic_test_parse(t, &p, &x), 0);
	KUNIT_EXPECT_EQ(test, p.max_udp_payload_size, 65527);
	KUNIT_EXPECT_EQ(test, p.ack_delay_exponent, 3);
	KUNIT_EXPECT_EQ(test, p.max_ack_delay, 25000);
	KUNIT_EXPECT_EQ(test, p.active_connection_id_limit, 2);
	KUNIT_EXPECT_EQ(test, p.disable_compatible_version, 1);
	KUNIT_EXPECT_EQ(test, p.max_idle_timeout, 0);
	KUNIT_EXPECT_EQ(test, p.max_data, 0);
	KUNIT_EXPECT_EQ(test, p.max_streams_bidi, 0);
	KUNIT_EXPECT_FALSE(test, x.has_version_info);
	KUNIT_EXPECT_EQ(test, x.version, QUIC_VERSION_V1);
}

/* A failed parse leaves the outputs alone. */
static void quic_test_tp_no_partial(struct kunit *test)
{
	struct quic_test_tp *t = quic_test_client_ext(test);
	struct quic_transport_param p;
	struct quic_tp_extra x;

	quic_test_add_int(test, t, QUIC_TP_ACK_DELAY_EXPONENT, 21);
	memset(&p, 0x5a, sizeof(p));
	memset(&x, 0x5a, sizeof(x));
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), -EINVAL);
	KUNIT_EXPECT_EQ(test, p.max_streams_bidi, 0x5a5a);
	KUNIT_EXPECT_EQ(test, x.version, 0x5a5a5a5a);
}

static void quic_test_tp_duplicate(struct kunit *test)
{
	struct quic_test_tp *t = quic_test_client_ext(test);

	quic_test_add_int(test, t, QUIC_TP_INITIAL_MAX_DATA, 5000);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);

	t = quic_test_client_ext(test);
	quic_test_add(test, t, QUIC_TP_INITIAL_SCID, quic_test_cscid.data,
		      quic_test_cscid.len);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);

	t = quic_test_client_ext(test);
	quic_test_add(test, t, QUIC_TP_GREASE_QUIC_BIT, NULL, 0);
	quic_test_add(test, t, QUIC_TP_GREASE_QUIC_BIT, NULL, 0);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
}

/* RFC 9000 Section 18.1: unknown and reserved IDs are skipped, twice too. */
static void quic_test_tp_unknown(struct kunit *test)
{
	static const u8 junk[7] = { 1, 2, 3, 4, 5, 6, 7 };
	struct quic_test_tp *t = quic_test_client_ext(test);
	struct quic_transport_param p;
	struct quic_tp_extra x;

	quic_test_add(test, t, 31 * 5 + 27, junk, sizeof(junk));
	quic_test_add(test, t, 31 * 5 + 27, junk, sizeof(junk));
	quic_test_add(test, t, 0x1234567, NULL, 0);
	quic_test_add(test, t, 0x12, junk, 3);
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), 0);
	KUNIT_EXPECT_EQ(test, p.max_streams_bidi, 100);
}

/* Framing: the ID and length must be whole, the value inside the buffer. */
static void quic_test_tp_truncated(struct kunit *test)
{
	struct quic_test_tp *t = quic_test_client_ext(test);
	struct quic_transport_param p;
	struct quic_tp_extra x;
	u32 len = t->len;

	t->buf[t->len++] = 0x12;		/* ID, then nothing */
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), -EINVAL);
	t->buf[t->len++] = 0x02;		/* length 2, no value */
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), -EINVAL);
	t->buf[t->len++] = 0x44;		/* half of it */
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), -EINVAL);

	t->len = len;
	t->buf[t->len++] = 0x40;		/* ID cut inside its varint */
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), -EINVAL);

	/* An integer value must be exactly one varint. */
	t->len = len;
	quic_test_add(test, t, QUIC_TP_MAX_DATAGRAM_FRAME_SIZE,
		      "\x44\xb0\x00", 3);
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), -EINVAL);
	t->len = len;
	quic_test_add(test, t, QUIC_TP_MAX_DATAGRAM_FRAME_SIZE, "\x44", 1);
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), -EINVAL);
	t->len = len;
	quic_test_add(test, t, QUIC_TP_MAX_DATAGRAM_FRAME_SIZE, NULL, 0);
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), -EINVAL);
	t->len = len;
	quic_test_add(test, t, QUIC_TP_MAX_DATAGRAM_FRAME_SIZE, "\x44\xb0", 2);
	KUNIT_EXPECT_EQ(test, quic_test_parse(t, &p, &x), 0);
	KUNIT_EXPECT_EQ(test, p.max_datagram_frame_size, 1200);

	/* ABI reference Section 1.13: at most 512 bytes. */
	KUNIT_EXPECT_EQ(test, quic_tp_parse(t->buf, QUIC_TP_EXT_LEN_MAX + 1,
					    &t->pctx, &p, &x), -EINVAL);
}

/* RFC 9000 Section 18.2: a server must not receive server-only params. */
static void quic_test_tp_server_only(struct kunit *test)
{
	static const u64 ids[] = { QUIC_TP_ORIGINAL_DCID,
				   QUIC_TP_STATELESS_RESET_TOKEN,
				   QUIC_TP_RETRY_SCID,
				   QUIC_TP_PREFERRED_ADDRESS };
	struct quic_test_tp *t;
	u32 i;

	for (i = 0; i < ARRAY_SIZE(ids); i++) {
		t = quic_test_client_ext(test);
		quic_test_add(test, t, ids[i], quic_test_token,
			      QUIC_CONN_ID_TOKEN_LEN);
		KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	}
}

/* RFC 9000 Section 7.3: connection ID authentication. */
static void quic_test_tp_cid_auth(struct kunit *test)
{
	struct quic_conn_id other = quic_test_sscid;
	struct quic_test_tp *t;

	other.data[7] ^= 1;

	/* Client: original DCID mismatch. */
	t = quic_test_server_ext(test, false);
	t->pctx.odcid = &other;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);

	/* Both: initial SCID must be the peer's first SCID. */
	t = quic_test_server_ext(test, false);
	t->pctx.peer_scid = &other;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	t = quic_test_client_ext(test);
	t->pctx.peer_scid = &other;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);

	/* Same bytes, other length. */
	other = quic_test_cscid;
	other.len = 7;
	t->pctx.peer_scid = &other;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);

	/* Client: retry SCID without a Retry, or a different one. */
	t = quic_test_server_ext(test, true);
	t->pctx.retry_scid = NULL;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	t = quic_test_server_ext(test, true);
	other = quic_test_retry;
	other.data[0] ^= 1;
	t->pctx.retry_scid = &other;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	t->pctx.retry_scid = &quic_test_retry;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), 0);
}

/* RFC 9000 Section 7.3: which parameters must be there. */
static void quic_test_tp_mandatory(struct kunit *test)
{
	struct quic_test_tp *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, t);
	/* Server: initial_source_connection_id. */
	t->pctx.peer_scid = &quic_test_cscid;
	t->pctx.is_serv = true;
	quic_test_add_int(test, t, QUIC_TP_INITIAL_MAX_DATA, 5000);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);

	/* Client: that and original_destination_connection_id ... */
	t->len = 0;
	t->pctx.is_serv = false;
	t->pctx.peer_scid = &quic_test_sscid;
	t->pctx.odcid = &quic_test_odcid;
	quic_test_add(test, t, QUIC_TP_INITIAL_SCID, quic_test_sscid.data,
		      quic_test_sscid.len);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	quic_test_add(test, t, QUIC_TP_ORIGINAL_DCID, quic_test_odcid.data,
		      quic_test_odcid.len);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), 0);

	/* ... and retry_source_connection_id after a Retry. */
	t->pctx.retry_scid = &quic_test_retry;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	quic_test_add(test, t, QUIC_TP_RETRY_SCID, quic_test_retry.data,
		      quic_test_retry.len);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), 0);
}

struct quic_test_range {
	u64 id;
	u64 val;
	int err;
};

/* ABI reference Section 3 ranges, checked on the server side. */
static const struct quic_test_range quic_test_ranges[] = {
	{ QUIC_TP_MAX_IDLE_TIMEOUT, 999, -EINVAL },
	{ QUIC_TP_MAX_IDLE_TIMEOUT, 1000, 0 },
	{ QUIC_TP_MAX_IDLE_TIMEOUT, 0, 0 },
	{ QUIC_TP_MAX_UDP_PAYLOAD_SIZE, 1199, -EINVAL },
	{ QUIC_TP_MAX_UDP_PAYLOAD_SIZE, 1200, 0 },
	{ QUIC_TP_INITIAL_MAX_DATA, 1199, -EINVAL },
	{ QUIC_TP_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL, 1, -EINVAL },
	{ QUIC_TP_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE, 1199, -EINVAL },
	{ QUIC_TP_INITIAL_MAX_STREAM_DATA_UNI, 1199, -EINVAL },
	{ QUIC_TP_INITIAL_MAX_STREAMS_BIDI, (1ULL << 60) + 1, -EINVAL },
	{ QUIC_TP_INITIAL_MAX_STREAMS_UNI, (1ULL << 60) + 1, -EINVAL },
	{ QUIC_TP_ACK_DELAY_EXPONENT, 21, -EINVAL },
	{ QUIC_TP_ACK_DELAY_EXPONENT, 20, 0 },
	{ QUIC_TP_MAX_ACK_DELAY, 16384, -EINVAL },
	{ QUIC_TP_MAX_ACK_DELAY, 16383, 0 },
	{ QUIC_TP_ACTIVE_CONNECTION_ID_LIMIT, 1, -EINVAL },
	{ QUIC_TP_ACTIVE_CONNECTION_ID_LIMIT, 0, -EINVAL },
	{ QUIC_TP_ACTIVE_CONNECTION_ID_LIMIT, 2, 0 },
	{ QUIC_TP_MAX_DATAGRAM_FRAME_SIZE, 1199, -EINVAL },
	{ QUIC_TP_MAX_DATAGRAM_FRAME_SIZE, 1, -EINVAL },
	{ QUIC_TP_MAX_DATAGRAM_FRAME_SIZE, 0, 0 },
};

static void quic_test_tp_ranges(struct kunit *test)
{
	const struct quic_test_range *r;
	struct quic_test_tp *t;
	u32 i;

	for (i = 0; i < ARRAY_SIZE(quic_test_ranges); i++) {
		r = &quic_test_ranges[i];
		t = quic_test_client_ext(test);
		/* Drop the built ones (and their duplicates): rebuild bare. */
		t->len = 0;
		quic_test_add(test, t, QUIC_TP_INITIAL_SCID,
			      quic_test_cscid.data, quic_test_cscid.len);
		quic_test_add_int(test, t, r->id, r->val);
		KUNIT_EXPECT_EQ_MSG(test, quic_test_parse_err(t), r->err,
				    "id %llx value %llu", r->id, r->val);
	}
}

/* Peer values beyond what we track are clamped; units are converted. */
static void quic_test_tp_clamp(struct kunit *test)
{
	struct quic_test_tp *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	struct quic_transport_param p;
	struct quic_tp_extra x;

	KUNIT_ASSERT_NOT_NULL(test, t);
	t->pctx.peer_scid = &quic_test_cscid;
	t->pctx.is_serv = true;
	quic_test_add(test, t, QUIC_TP_INITIAL_SCID, quic_test_cscid.data,
		      quic_test_cscid.len);
	quic_test_add_int(test, t, QUIC_TP_INITIAL_MAX_STREAMS_BIDI, 5000);
	quic_test_add_int(test, t, QUIC_TP_INITIAL_MAX_STREAMS_UNI, 1ULL << 60);
	quic_test_add_int(test, t, QUIC_TP_MAX_DATAGRAM_FRAME_SIZE, 70000);
	quic_test_add_int(test, t, QUIC_TP_MAX_UDP_PAYLOAD_SIZE, 70000);
	quic_test_add_int(test, t, QUIC_TP_ACTIVE_CONNECTION_ID_LIMIT, 100);
	quic_test_add_int(test, t, QUIC_TP_MAX_IDLE_TIMEOUT, 1ULL << 40);
	quic_test_add_int(test, t, QUIC_TP_MAX_ACK_DELAY, 0);
	quic_test_add_int(test, t, QUIC_TP_ACK_DELAY_EXPONENT, 0);
	quic_test_add_int(test, t, QUIC_TP_INITIAL_MAX_DATA, QUIC_VARINT_MAX);
	KUNIT_ASSERT_EQ(test, quic_test_parse(t, &p, &x), 0);
	KUNIT_EXPECT_EQ(test, p.max_streams_bidi, 4096);
	KUNIT_EXPECT_EQ(test, p.max_streams_uni, 4096);
	KUNIT_EXPECT_EQ(test, p.max_datagram_frame_size, 65535);
	KUNIT_EXPECT_EQ(test, p.max_udp_payload_size, 65527);
	KUNIT_EXPECT_EQ(test, p.active_connection_id_limit, 8);
	KUNIT_EXPECT_EQ(test, p.max_idle_timeout, 4294967000U);
	KUNIT_EXPECT_EQ(test, p.max_ack_delay, 0);
	KUNIT_EXPECT_EQ(test, p.ack_delay_exponent, 0);
	KUNIT_EXPECT_EQ(test, p.max_data, QUIC_VARINT_MAX);
}

/* 0x0c and 0x2ab2 are empty; 0xbaad is empty for a client, any for a server. */
static void quic_test_tp_empty_params(struct kunit *test)
{
	struct quic_test_tp *t;
	struct quic_transport_param p;
	struct quic_tp_extra x;

	t = quic_test_client_ext(test);
	quic_test_add(test, t, QUIC_TP_DISABLE_ACTIVE_MIGRATION, "x", 1);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	t = quic_test_client_ext(test);
	quic_test_add(test, t, QUIC_TP_GREASE_QUIC_BIT, "x", 1);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);

	t = quic_test_client_ext(test);
	quic_test_add(test, t, QUIC_TP_DISABLE_1RTT_ENCRYPTION, "xyz", 3);
	quic_test_add(test, t, QUIC_TP_DISABLE_ACTIVE_MIGRATION, NULL, 0);
	quic_test_add(test, t, QUIC_TP_GREASE_QUIC_BIT, NULL, 0);
	KUNIT_ASSERT_EQ(test, quic_test_parse(t, &p, &x), 0);
	KUNIT_EXPECT_EQ(test, p.disable_1rtt_encryption, 1);
	KUNIT_EXPECT_EQ(test, p.disable_active_migration, 1);
	KUNIT_EXPECT_EQ(test, p.grease_quic_bit, 1);

	t = quic_test_server_ext(test, false);
	quic_test_add(test, t, QUIC_TP_DISABLE_1RTT_ENCRYPTION, "xyz", 3);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	t = quic_test_server_ext(test, false);
	quic_test_add(test, t, QUIC_TP_DISABLE_1RTT_ENCRYPTION, NULL, 0);
	KUNIT_ASSERT_EQ(test, quic_test_parse(t, &p, &x), 0);
	KUNIT_EXPECT_EQ(test, p.disable_1rtt_encryption, 1);
}

static void quic_test_tp_reset_token(struct kunit *test)
{
	struct quic_test_tp *t = quic_test_server_ext(test, false);

	/* Drop the 0x02 the server built: rebuild with a short token. */
	t->len = 0;
	quic_test_add(test, t, QUIC_TP_ORIGINAL_DCID, quic_test_odcid.data,
		      quic_test_odcid.len);
	quic_test_add(test, t, QUIC_TP_INITIAL_SCID, quic_test_sscid.data,
		      quic_test_sscid.len);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), 0);
	quic_test_add(test, t, QUIC_TP_STATELESS_RESET_TOKEN, quic_test_token,
		      QUIC_CONN_ID_TOKEN_LEN - 1);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
}

/* A server extension with everything but a preferred address. */
static struct quic_test_tp *quic_test_server_bare(struct kunit *test)
{
	struct quic_test_tp *t = quic_test_server_ext(test, false);

	t->len = 0;
	quic_test_add(test, t, QUIC_TP_ORIGINAL_DCID, quic_test_odcid.data,
		      quic_test_odcid.len);
	quic_test_add(test, t, QUIC_TP_INITIAL_SCID, quic_test_sscid.data,
		      quic_test_sscid.len);
	return t;
}

/* RFC 9000 Section 18.2, Figure 22. */
static void quic_test_tp_pref_addr(struct kunit *test)
{
	u8 v[24 + 1 + 21 + 16] = {};
	struct quic_test_tp *t;

	/* Zero-length CID, 21-byte CID: TRANSPORT_PARAMETER_ERROR. */
	t = quic_test_server_bare(test);
	v[24] = 0;
	quic_test_add(test, t, QUIC_TP_PREFERRED_ADDRESS, v, 24 + 1 + 16);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	t = quic_test_server_bare(test);
	v[24] = 21;
	quic_test_add(test, t, QUIC_TP_PREFERRED_ADDRESS, v, sizeof(v));
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);

	/* Length must match the CID length exactly. */
	v[24] = 4;
	t = quic_test_server_bare(test);
	quic_test_add(test, t, QUIC_TP_PREFERRED_ADDRESS, v, 24 + 1 + 4 + 15);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	t = quic_test_server_bare(test);
	quic_test_add(test, t, QUIC_TP_PREFERRED_ADDRESS, v, 24 + 1 + 4 + 17);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	t = quic_test_server_bare(test);
	quic_test_add(test, t, QUIC_TP_PREFERRED_ADDRESS, v, 20);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
	t = quic_test_server_bare(test);
	quic_test_add(test, t, QUIC_TP_PREFERRED_ADDRESS, v, 24 + 1 + 4 + 16);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), 0);

	/* Not from a server that uses a zero-length connection ID. */
	t = quic_test_server_bare(test);
	t->pctx.peer_scid = &(struct quic_conn_id){ .len = 0 };
	t->len = 0;
	quic_test_add(test, t, QUIC_TP_ORIGINAL_DCID, quic_test_odcid.data,
		      quic_test_odcid.len);
	quic_test_add(test, t, QUIC_TP_INITIAL_SCID, NULL, 0);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), 0);
	quic_test_add(test, t, QUIC_TP_PREFERRED_ADDRESS, v, 24 + 1 + 4 + 16);
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EINVAL);
}

static void quic_test_put_versions(u8 *v, const u32 *vers, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		v[4 * i] = vers[i] >> 24;
		v[4 * i + 1] = vers[i] >> 16;
		v[4 * i + 2] = vers[i] >> 8;
		v[4 * i + 3] = vers[i];
	}
}

/* Server parsing a client's version_information: rebuild without 0x11. */
static int quic_test_vi_server(struct kunit *test, const u32 *vers, u32 n,
			       u32 len, u32 version, u32 pref, u32 *out)
{
	struct quic_test_tp *t = quic_test_client_ext(test);
	struct quic_transport_param p;
	struct quic_tp_extra x;
	u8 v[80] = {};
	int err;

	quic_test_put_versions(v, vers, n);
	t->len = 0;
	quic_test_add(test, t, QUIC_TP_INITIAL_SCID, quic_test_cscid.data,
		      quic_test_cscid.len);
	quic_test_add(test, t, QUIC_TP_VERSION_INFORMATION, v, len);
	t->pctx.version = version;
	t->pctx.pref_version = pref;
	err = quic_test_parse(t, &p, &x);
	if (!err) {
		*out = x.version;
		KUNIT_EXPECT_EQ(test, p.disable_compatible_version, 0);
		KUNIT_EXPECT_EQ(test, x.chosen_version, vers[0]);
	}
	return err;
}

/* RFC 9368 Sections 3 and 4, ABI reference Section 3.1. */
static void quic_test_tp_version_info(struct kunit *test)
{
	const u32 v1 = QUIC_VERSION_V1, v2 = QUIC_VERSION_V2;
	u32 ok[] = { v1, v1, v2 }, up[] = { v1, v2, v1 };
	u32 zero[] = { v1, v1, 0 }, out = 0;
	u32 many[17], odd[] = { 0x1a2a3a4a, 0x1a2a3a4a, v1 }, i;

	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, ok, 3, 12, v1, 0, &out),
			0);
	KUNIT_EXPECT_EQ(test, out, v1);
	/* Compatible negotiation to the server's preferred version. */
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, up, 3, 12, v1, v2, &out),
			0);
	KUNIT_EXPECT_EQ(test, out, v2);
	/* ... only if the client lists it. */
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, ok, 2, 8, v1, v2, &out),
			0);
	KUNIT_EXPECT_EQ(test, out, v1);

	/* Lengths: 4..64, multiple of 4. */
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, ok, 3, 0, v1, 0, &out),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, ok, 3, 3, v1, 0, &out),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, ok, 3, 10, v1, 0, &out),
			-EINVAL);
	for (i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = v1;
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, many, 16, 64, v1, 0,
						  &out), 0);
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, many, 17, 68, v1, 0,
						  &out), -EINVAL);
	/* No zero entries. */
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, zero, 3, 12, v1, 0,
						  &out), -EINVAL);
	zero[0] = 0;
	zero[2] = v1;
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, zero, 3, 12, v1, 0,
						  &out), -EINVAL);
	/* Server: the chosen version must be listed. */
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, ok, 1, 4, v1, 0, &out),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, up, 2, 8, v1, 0, &out),
			-EINVAL);
	/* Chosen version not the one in use, or not one we support. */
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, ok, 3, 12, v2, 0, &out),
			-EPROTONOSUPPORT);
	KUNIT_EXPECT_EQ(test, quic_test_vi_server(test, odd, 3, 12, odd[0], 0,
						  &out), -EPROTONOSUPPORT);
	KUNIT_EXPECT_EQ(test, quic_tp_errcode(-EPROTONOSUPPORT),
			QUIC_TRANSPORT_ERROR_VERSION_NEGOTIATION);
	KUNIT_EXPECT_EQ(test, quic_tp_errcode(-EINVAL),
			QUIC_TRANSPORT_ERROR_TRANSPORT_PARAM);
}

/* Client side: the server's chosen version must be the one in use. */
static void quic_test_tp_version_client(struct kunit *test)
{
	struct quic_test_tp *t = quic_test_server_ext(test, false);

	t->pctx.version = QUIC_VERSION_V2;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), -EPROTONOSUPPORT);
	t = quic_test_server_ext(test, false);
	t->pctx.version = QUIC_VERSION_V1;
	KUNIT_EXPECT_EQ(test, quic_test_parse_err(t), 0);
}

/* A client's parse of a server's version_information, given as @vers. */
static int quic_test_vi_client(struct kunit *test, const u32 *vers, u32 n,
			       u32 version, u32 vn_version)
{
	struct quic_test_tp *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	struct quic_transport_param p;
	u8 v[16];
	int len;

	KUNIT_ASSERT_NOT_NULL(test, t);
	quic_test_local_tp(&p);
	t->bctx.odcid = &quic_test_odcid;
	t->bctx.scid = &quic_test_sscid;
	t->bctx.version = version;
	t->bctx.is_serv = true;	/* no peer_version_info: built without 0x11 */
	len = quic_tp_build(&p, &t->bctx, t->buf, QUIC_TP_EXT_LEN_MAX);
	KUNIT_ASSERT_GT(test, len, 0);
	t->len = len;
	if (n) {
		quic_test_put_versions(v, vers, n);
		quic_test_add(test, t, QUIC_TP_VERSION_INFORMATION, v, 4 * n);
	}
	t->pctx.odcid = &quic_test_odcid;
	t->pctx.peer_scid = &quic_test_sscid;
	t->pctx.version = version;
	t->pctx.vn_version = vn_version;
	return quic_test_parse_err(t);
}

/*
 * RFC 9368 Section 4: after a Version Negotiation packet the client needs
 * the server's version_information, with Available Versions that hold the
 * version it started again in (or that version chosen).
 */
static void quic_test_tp_version_after_vn(struct kunit *test)
{
	const u32 v1 = QUIC_VERSION_V1, v2 = QUIC_VERSION_V2;
	u32 both[] = { v2, v2, v1 }, only2[] = { v2, v2 }, bare[] = { v1 };

	KUNIT_EXPECT_EQ(test, quic_test_vi_client(test, both, 3, v2, v1), 0);
	KUNIT_EXPECT_EQ(test, quic_test_vi_client(test, only2, 2, v2, v1),
			-EPROTONOSUPPORT);
	KUNIT_EXPECT_EQ(test, quic_test_vi_client(test, only2, 2, v2, 0), 0);
	KUNIT_EXPECT_EQ(test, quic_test_vi_client(test, bare, 1, v1, v1),
			-EPROTONOSUPPORT);
	KUNIT_EXPECT_EQ(test, quic_test_vi_client(test, bare, 1, v1, 0), 0);
	KUNIT_EXPECT_EQ(test, quic_test_vi_client(test, NULL, 0, v1, v1),
			-EPROTONOSUPPORT);
	KUNIT_EXPECT_EQ(test, quic_test_vi_client(test, NULL, 0, v1, 0), 0);
}

/* Connection IDs */

static void quic_test_cid_basics(struct kunit *test)
{
	u8 ta[16], tb[16], tc[16], big[21] = { [19] = 0x99 };
	struct quic_conn_id a, b;

	quic_conn_id_generate(&a);
	quic_conn_id_generate(&b);
	KUNIT_EXPECT_EQ(test, a.len, QUIC_CONN_ID_DEF_LEN);
	KUNIT_EXPECT_FALSE(test, quic_conn_id_equal(&a, &b));
	KUNIT_EXPECT_TRUE(test, quic_conn_id_equal_raw(&a, a.data, a.len));
	KUNIT_EXPECT_FALSE(test, quic_conn_id_equal_raw(&a, a.data, 7));

	quic_conn_id_token(&a, ta);
	quic_conn_id_token(&b, tb);
	quic_conn_id_token(&a, tc);
	KUNIT_EXPECT_MEMEQ(test, ta, tc, 16);
	KUNIT_EXPECT_MEMNEQ(test, ta, tb, 16);

	KUNIT_EXPECT_EQ(test, quic_conn_id_set_raw(&a, big, 21), -EINVAL);
	KUNIT_EXPECT_EQ(test, quic_conn_id_set_raw(&a, big, 20), 0);
	KUNIT_EXPECT_EQ(test, a.len, 20);
	KUNIT_EXPECT_MEMEQ(test, a.data, big, 20);
	KUNIT_EXPECT_EQ(test, quic_conn_id_errcode(-EPROTO),
			QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION);
	KUNIT_EXPECT_EQ(test, quic_conn_id_errcode(-EUSERS),
			QUIC_TRANSPORT_ERROR_CONNECTION_ID_LIMIT);
	KUNIT_EXPECT_EQ(test, quic_conn_id_errcode(-EINVAL),
			QUIC_TRANSPORT_ERROR_FRAME_ENCODING);
	KUNIT_EXPECT_EQ(test, quic_conn_id_errcode(-ENOMEM),
			QUIC_TRANSPORT_ERROR_INTERNAL);
}

static struct sock *quic_test_sock(struct kunit *test, struct socket **sockp)
{
	int err = sock_create_kern(&init_net, PF_INET, SOCK_DGRAM, IPPROTO_UDP,
				   sockp);

	KUNIT_ASSERT_EQ(test, err, 0);
	return (*sockp)->sk;
}

/* A lookup takes a reference; check the socket and drop it. */
static void quic_test_expect_lookup(struct kunit *test,
				    const struct quic_conn_id *id,
				    struct sock *expect)
{
	struct sock *sk = quic_cid_lookup(&init_net, id->data, id->len);

	KUNIT_EXPECT_PTR_EQ(test, sk, expect);
	if (sk)
		sock_put(sk);
}

static void quic_test_cid_hash(struct kunit *test)
{
	struct quic_conn_id id, shorter;
	struct quic_conn_id_entry *e;
	struct socket *sock;
	struct sock *sk, *found;
	int ref;

	sk = quic_test_sock(test, &sock);
	quic_conn_id_generate(&id);
	ref = refcount_read(&sk->sk_refcnt);

	e = quic_cid_hash_add(&init_net, &id, sk, GFP_KERNEL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	KUNIT_EXPECT_EQ(test, refcount_read(&sk->sk_refcnt), ref + 1);
	KUNIT_EXPECT_PTR_EQ(test, quic_cid_hash_add(&init_net, &id, sk,
						    GFP_KERNEL),
			    ERR_PTR(-EEXIST));

	found = quic_cid_lookup(&init_net, id.data, id.len);
	KUNIT_EXPECT_PTR_EQ(test, found, sk);
	KUNIT_EXPECT_EQ(test, refcount_read(&sk->sk_refcnt), ref + 2);
	if (found)
		sock_put(found);

	shorter = id;
	shorter.len = 7;
	quic_test_expect_lookup(test, &shorter, NULL);
	KUNIT_EXPECT_NULL(test, quic_cid_lookup(&init_net, id.data, 21));

	quic_cid_hash_del(e);
	quic_test_expect_lookup(test, &id, NULL);
	rcu_barrier();
	KUNIT_EXPECT_EQ(test, refcount_read(&sk->sk_refcnt), ref);
	sock_release(sock);
}

static void quic_test_cid_source(struct kunit *test)
{
	struct quic_conn_id_entry *e0, *e1, *e;
	struct quic_conn_id_set set;
	struct quic_conn_id fixed;
	struct socket *sock;
	struct sock *sk;
	u8 token[16];

	sk = quic_test_sock(test, &sock);
	quic_conn_id_set_init(&set, sk, QUIC_TP_DEF_CONN_ID_LIMIT);

	e0 = quic_conn_id_source_add(&set, NULL, GFP_KERNEL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e0));
	quic_conn_id_generate(&fixed);
	e1 = quic_conn_id_source_add(&set, &fixed, GFP_KERNEL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e1));
	KUNIT_EXPECT_EQ(test, e0->seq, 0);
	KUNIT_EXPECT_EQ(test, e1->seq, 1);
	KUNIT_EXPECT_TRUE(test, quic_conn_id_equal(&e1->key.id, &fixed));
	quic_conn_id_token(&fixed, token);
	KUNIT_EXPECT_MEMEQ(test, e1->token, token, 16);
	KUNIT_EXPECT_PTR_EQ(test, set.active, e0);
	quic_test_expect_lookup(test, &e0->key.id, sk);
	quic_test_expect_lookup(test, &fixed, sk);

	/* RFC 9000 Section 5.1.1: no more than the peer's limit. */
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_room(&set), 0);
	KUNIT_EXPECT_PTR_EQ(test, quic_conn_id_source_add(&set, NULL,
							  GFP_KERNEL),
			    ERR_PTR(-EUSERS));
	quic_conn_id_set_limit(&set, 4);
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_room(&set), 2);
	/* An ID in use elsewhere is refused. */
	KUNIT_EXPECT_PTR_EQ(test, quic_conn_id_source_add(&set, &fixed,
							  GFP_KERNEL),
			    ERR_PTR(-EEXIST));
	e = quic_conn_id_source_add(&set, NULL, GFP_KERNEL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	KUNIT_EXPECT_EQ(test, e->seq, 2);
	KUNIT_EXPECT_EQ(test, quic_conn_id_last_seq(&set), 2);

	/* RFC 9000 Section 19.16: only numbers the peer was sent. */
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_retire(&set, 2, NULL),
			-EPROTO);
	quic_conn_id_source_sent(&set, 2);
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_retire(&set, 3, NULL),
			-EPROTO);
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_retire(&set, 1, &fixed),
			-EPROTO);
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_retire(&set, 0, &fixed), 0);
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_retire(&set, 0, &fixed), 0);
	KUNIT_EXPECT_PTR_EQ(test, set.active, e1);
	KUNIT_EXPECT_EQ(test, quic_conn_id_first_seq(&set), 1);
	KUNIT_EXPECT_EQ(test, set.count, 2);

	/* Retire Prior To: bounds of the CONNECTION_ID socket option. */
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_retire_prior(&set, 1),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_retire_prior(&set, 3),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_retire_prior(&set, 2), 0);
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_retire_prior(&set, 2),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, set.active->seq, 2);
	/* Seq 1 awaits the peer's RETIRE_CONNECTION_ID; it is not counted. */
	KUNIT_EXPECT_EQ(test, quic_conn_id_source_room(&set), 3);
	quic_test_expect_lookup(test, &fixed, sk);

	KUNIT_EXPECT_EQ(test, quic_conn_id_set_active(&set, 7), -EINVAL);
	KUNIT_EXPECT_EQ(test, quic_conn_id_set_active(&set, 1), 0);

	quic_conn_id_set_free(&set);
	KUNIT_EXPECT_EQ(test, set.count, 0);
	KUNIT_EXPECT_NULL(test, set.active);
	quic_test_expect_lookup(test, &fixed, NULL);
	rcu_barrier();
	sock_release(sock);
}

static void quic_test_cid_id(struct quic_conn_id *id, u8 fill)
{
	id->len = 8;
	memset(id->data, fill, 8);
}

static void quic_test_token_of(u8 *token, u8 fill)
{
	memset(token, fill, QUIC_CONN_ID_TOKEN_LEN);
}

static void quic_test_cid_dest(struct kunit *test)
{
	struct quic_conn_id_set set;
	struct quic_conn_id id, id0;
	u8 token[16];
	u32 seq;

	quic_conn_id_set_init(&set, NULL, 3);
	quic_test_cid_id(&id0, 0x10);
	KUNIT_ASSERT_EQ(test, quic_conn_id_dest_init(&set, &id0, GFP_KERNEL),
			0);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_init(&set, &id0, GFP_KERNEL),
			-EINVAL);
	quic_test_cid_id(&id0, 0x00);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_update(&set, &id0), 0);
	KUNIT_EXPECT_TRUE(test,
			  quic_conn_id_equal(&quic_conn_id_find(&set, 0)->key.id,
					     &id0));
	quic_test_token_of(token, 0xf0);
	KUNIT_EXPECT_FALSE(test, quic_conn_id_dest_token_match(&set, token));
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_set_token(&set, 0, token), 0);
	KUNIT_EXPECT_TRUE(test, quic_conn_id_dest_token_match(&set, token));
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_set_token(&set, 5, token),
			-ENOENT);

	/* Seq 1 and 2; then a repeat of 1 is ignored. */
	quic_test_cid_id(&id, 0x01);
	quic_test_token_of(token, 0xf1);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 1, 0, &id, token,
						    GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 1, 0, &id, token,
						    GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, set.count, 2);
	KUNIT_EXPECT_TRUE(test, quic_conn_id_dest_token_match(&set, token));

	/* RFC 9000 Section 19.15: reuse with other contents. */
	quic_test_token_of(token, 0xee);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 1, 0, &id, token,
						    GFP_KERNEL), -EPROTO);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 4, 0, &id, token,
						    GFP_KERNEL), -EPROTO);
	quic_test_cid_id(&id, 0x05);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 1, 0, &id, token,
						    GFP_KERNEL), -EPROTO);
	/* Encoding: Retire Prior To > Sequence Number, bad lengths. */
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 5, 6, &id, token,
						    GFP_KERNEL), -EINVAL);
	id.len = 0;
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 5, 0, &id, token,
						    GFP_KERNEL), -EINVAL);
	id.len = 21;
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 5, 0, &id, token,
						    GFP_KERNEL), -EINVAL);

	quic_test_cid_id(&id, 0x02);
	quic_test_token_of(token, 0xf2);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 2, 0, &id, token,
						    GFP_KERNEL), 0);
	/* Our limit is 3: a fourth is CONNECTION_ID_LIMIT_ERROR. */
	quic_test_cid_id(&id, 0x03);
	quic_test_token_of(token, 0xf3);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 3, 0, &id, token,
						    GFP_KERNEL), -EUSERS);
	KUNIT_EXPECT_FALSE(test, quic_conn_id_dest_next_retire(&set, &seq));

	/* ... unless it retires older ones: 0 and 1 go, 0 was active. */
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 3, 2, &id, token,
						    GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, set.count, 2);
	KUNIT_EXPECT_EQ(test, set.active->seq, 2);
	KUNIT_EXPECT_TRUE(test, quic_conn_id_dest_next_retire(&set, &seq));
	KUNIT_EXPECT_EQ(test, seq, 0);
	KUNIT_EXPECT_TRUE(test, quic_conn_id_dest_next_retire(&set, &seq));
	KUNIT_EXPECT_EQ(test, seq, 1);
	KUNIT_EXPECT_FALSE(test, quic_conn_id_dest_next_retire(&set, &seq));
	quic_test_token_of(token, 0xf0);
	KUNIT_EXPECT_FALSE(test, quic_conn_id_dest_token_match(&set, token));

	/* A late ID below Retire Prior To is retired at once, unless its
	 * number's RETIRE_CONNECTION_ID is still unacknowledged.
	 */
	quic_test_cid_id(&id, 0x07);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 1, 0, &id, token,
						    GFP_KERNEL), 0);
	KUNIT_EXPECT_FALSE(test, quic_conn_id_dest_next_retire(&set, &seq));
	quic_conn_id_dest_retire_acked(&set, 1);
	KUNIT_EXPECT_EQ(test, set.retire_count, 1);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 1, 0, &id, token,
						    GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, set.count, 2);
	KUNIT_EXPECT_TRUE(test, quic_conn_id_dest_next_retire(&set, &seq));
	KUNIT_EXPECT_EQ(test, seq, 1);
	/* A frame that could not be queued gives its number back. */
	quic_conn_id_dest_retire_unqueue(&set);
	KUNIT_EXPECT_TRUE(test, quic_conn_id_dest_next_retire(&set, &seq));
	KUNIT_EXPECT_EQ(test, seq, 1);

	/* Local retirement (CONNECTION_ID option, dest = 1). */
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_retire_prior(&set, 2), -EINVAL);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_retire_prior(&set, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_retire_prior(&set, 3), 0);
	KUNIT_EXPECT_EQ(test, set.active->seq, 3);
	KUNIT_EXPECT_EQ(test, quic_conn_id_first_seq(&set), 3);
	KUNIT_EXPECT_TRUE(test, quic_conn_id_dest_next_retire(&set, &seq));
	KUNIT_EXPECT_EQ(test, seq, 2);

	quic_conn_id_set_free(&set);
	KUNIT_EXPECT_EQ(test, set.count, 0);
}

/* RFC 9000 Section 19.15: a peer using zero-length IDs issues none. */
static void quic_test_cid_dest_zero_len(struct kunit *test)
{
	struct quic_conn_id_set set;
	struct quic_conn_id id = { .len = 0 };
	u8 token[16] = {};

	quic_conn_id_set_init(&set, NULL, 3);
	KUNIT_ASSERT_EQ(test, quic_conn_id_dest_init(&set, &id, GFP_KERNEL),
			0);
	quic_test_cid_id(&id, 0x01);
	KUNIT_EXPECT_EQ(test, quic_conn_id_dest_add(&set, 1, 0, &id, token,
						    GFP_KERNEL), -EPROTO);
	quic_conn_id_set_free(&set);
}

/* RFC 9000 Section 5.1.2: unannounced retirements are bounded. */
static void quic_test_cid_dest_retire_flood(struct kunit *test)
{
	struct quic_conn_id_set set;
	struct quic_conn_id id;
	u8 token[16] = {};
	int err = 0;
	u32 seq;

	quic_conn_id_set_init(&set, NULL, 2);
	quic_test_cid_id(&id, 0xff);
	KUNIT_ASSERT_EQ(test, quic_conn_id_dest_init(&set, &id, GFP_KERNEL),
			0);
	for (seq = 1; seq < 40 && !err; seq++) {
		quic_test_cid_id(&id, seq);
		token[0] = seq;
		err = quic_conn_id_dest_add(&set, seq, seq, &id, token,
					    GFP_KERNEL);
	}
	KUNIT_EXPECT_EQ(test, err, -EUSERS);
	KUNIT_EXPECT_LE(test, set.retire_count, QUIC_CONN_ID_RETIRE_MAX);
	quic_conn_id_set_free(&set);
}

static struct kunit_case quic_tp_test_cases[] = {
	KUNIT_CASE(quic_test_varint_encode),
	KUNIT_CASE(quic_test_varint_decode),
	KUNIT_CASE(quic_test_varint_put_len),
	KUNIT_CASE(quic_test_tp_build_client_order),
	KUNIT_CASE(quic_test_tp_build_server_order),
	KUNIT_CASE(quic_test_tp_build_version_info),
	KUNIT_CASE(quic_test_tp_build_units),
	KUNIT_CASE(quic_test_tp_roundtrip_client),
	KUNIT_CASE(quic_test_tp_roundtrip_server),
	KUNIT_CASE(quic_test_tp_defaults),
	KUNIT_CASE(quic_test_tp_no_partial),
	KUNIT_CASE(quic_test_tp_duplicate),
	KUNIT_CASE(quic_test_tp_unknown),
	KUNIT_CASE(quic_test_tp_truncated),
	KUNIT_CASE(quic_test_tp_server_only),
	KUNIT_CASE(quic_test_tp_cid_auth),
	KUNIT_CASE(quic_test_tp_mandatory),
	KUNIT_CASE(quic_test_tp_ranges),
	KUNIT_CASE(quic_test_tp_clamp),
	KUNIT_CASE(quic_test_tp_empty_params),
	KUNIT_CASE(quic_test_tp_reset_token),
	KUNIT_CASE(quic_test_tp_pref_addr),
	KUNIT_CASE(quic_test_tp_version_info),
	KUNIT_CASE(quic_test_tp_version_client),
	KUNIT_CASE(quic_test_tp_version_after_vn),
	KUNIT_CASE(quic_test_cid_basics),
	KUNIT_CASE(quic_test_cid_hash),
	KUNIT_CASE(quic_test_cid_source),
	KUNIT_CASE(quic_test_cid_dest),
	KUNIT_CASE(quic_test_cid_dest_zero_len),
	KUNIT_CASE(quic_test_cid_dest_retire_flood),
	{}
};

static struct kunit_suite quic_tp_test_suite = {
	.name = "quic_tp",
	.test_cases = quic_tp_test_cases,
};

kunit_test_suite(quic_tp_test_suite);

MODULE_DESCRIPTION("KUnit tests for QUIC transport parameters and connection IDs");
MODULE_LICENSE("GPL");
