// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * KUnit tests of the ClientHello ALPN parser of listener demultiplexing
 * (demux.c, quic_client_hello_alpn()): well-formed ClientHellos (RFC 8446
 * Section 4.1.2) with and without the ALPN extension (RFC 7301 Section
 * 3.1), every prefix of one (incomplete), one case per length field that
 * can lie, and every single-byte change of a valid one, which must give an
 * answer whose list, if any, lies inside the input.
 */

#include <kunit/test.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "../quic.h"

#define QUIC_TEST_CH_MAX	1024

/* An extension: type, length, body. */
static u32 quic_test_ext(u8 *p, u16 type, const u8 *body, u16 len)
{
	p[0] = type >> 8;
	p[1] = type;
	p[2] = len >> 8;
	p[3] = len;
	memcpy(p + 4, body, len);
	return 4 + len;
}

/* The ALPN extension for a ProtocolNameList. */
static u32 quic_test_alpn_ext(u8 *p, const u8 *list, u16 len)
{
	u8 body[300];

	body[0] = len >> 8;
	body[1] = len;
	memcpy(body + 2, list, len);
	return quic_test_ext(p, 16, body, len + 2);
}

/* A ClientHello with handshake header; no extension block if @exts NULL. */
static u32 quic_test_ch(u8 *buf, const u8 *exts, u32 exts_len)
{
	u8 *p = buf + 4;
	u32 len;

	*p++ = 3;			/* legacy_version 0x0303 */
	*p++ = 3;
	memset(p, 0xaa, 32);		/* random */
	p += 32;
	*p++ = 0;			/* legacy_session_id */
	*p++ = 0;			/* cipher_suites: TLS_AES_128_GCM_SHA256 */
	*p++ = 2;
	*p++ = 0x13;
	*p++ = 0x01;
	*p++ = 1;			/* legacy_compression_methods: null */
	*p++ = 0;
	if (exts) {
		*p++ = exts_len >> 8;
		*p++ = exts_len;
		memcpy(p, exts, exts_len);
		p += exts_len;
	}
	len = p - buf - 4;
	buf[0] = 1;
	buf[1] = len >> 16;
	buf[2] = len >> 8;
	buf[3] = len;
	return p - buf;
}

static const u8 quic_test_list[] = { 2, 'h', '3', 1, 'a' };
static const u8 quic_test_sni[] = { 0, 5, 0, 0, 2, 'x', 'y' };

/* SNI, then ALPN, then an unknown extension: a typical order. */
static u32 quic_test_valid(u8 *buf)
{
	u8 exts[64];
	u32 n = 0;

	n += quic_test_ext(exts + n, 0, quic_test_sni, sizeof(quic_test_sni));
	n += quic_test_alpn_ext(exts + n, quic_test_list, sizeof(quic_test_list));
	n += quic_test_ext(exts + n, 0x1234, (const u8 *)"zz", 2);
	return quic_test_ch(buf, exts, n);
}

static void quic_test_ch_valid(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, QUIC_TEST_CH_MAX, GFP_KERNEL);
	const u8 *alpn;
	u32 len, n;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	len = quic_test_valid(buf);
	KUNIT_ASSERT_EQ(test, quic_client_hello_alpn(buf, len, &alpn, &n), 0);
	KUNIT_EXPECT_EQ(test, n, sizeof(quic_test_list));
	KUNIT_EXPECT_MEMEQ(test, alpn, quic_test_list, n);
	/* Bytes after the message (the rest of a CRYPTO stream) are ignored. */
	KUNIT_EXPECT_EQ(test, quic_client_hello_alpn(buf, len + 10, &alpn, &n),
			0);
}

static void quic_test_ch_no_alpn(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, QUIC_TEST_CH_MAX, GFP_KERNEL);
	const u8 *alpn;
	u8 exts[32];
	u32 len, n;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	len = quic_test_ch(buf, NULL, 0);	/* no extension block */
	KUNIT_EXPECT_EQ(test, quic_client_hello_alpn(buf, len, &alpn, &n),
			-ENOENT);
	n = quic_test_ext(exts, 0, quic_test_sni, sizeof(quic_test_sni));
	len = quic_test_ch(buf, exts, n);
	KUNIT_EXPECT_EQ(test, quic_client_hello_alpn(buf, len, &alpn, &n),
			-ENOENT);
}

/* Every prefix of a valid ClientHello is incomplete, never an error. */
static void quic_test_ch_prefixes(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, QUIC_TEST_CH_MAX, GFP_KERNEL);
	const u8 *alpn;
	u32 len, i, n;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	len = quic_test_valid(buf);
	for (i = 0; i < len; i++)
		KUNIT_EXPECT_EQ_MSG(test,
				    quic_client_hello_alpn(buf, i, &alpn, &n),
				    -EAGAIN, "prefix of %u bytes", i);
}

static void quic_test_ch_sizes(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, QUIC_TEST_CH_MAX, GFP_KERNEL);
	u8 list[200], exts[256];
	const u8 *alpn;
	u32 len, i, n;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	/* A message over QUIC_DEMUX_CH_MAX is refused from its header. */
	buf[0] = 1;
	buf[1] = 0;
	buf[2] = QUIC_DEMUX_CH_MAX >> 8;
	buf[3] = 0;
	KUNIT_EXPECT_EQ(test, quic_client_hello_alpn(buf, 4, &alpn, &n),
			-EMSGSIZE);
	/* A list of 129 bytes (43 names of 2) is over QUIC_DEMUX_ALPN_MAX; 128
	 * is not.
	 */
	for (i = 0; i < 43; i++) {
		list[3 * i] = 2;
		list[3 * i + 1] = 'a' + i % 26;
		list[3 * i + 2] = 'A' + i / 26;
	}
	n = quic_test_alpn_ext(exts, list, 129);
	len = quic_test_ch(buf, exts, n);
	KUNIT_EXPECT_EQ(test, quic_client_hello_alpn(buf, len, &alpn, &n),
			-EMSGSIZE);
	list[126] = 1;	/* the last name one byte shorter: 128 in all */
	n = quic_test_alpn_ext(exts, list, 128);
	len = quic_test_ch(buf, exts, n);
	KUNIT_EXPECT_EQ(test, quic_client_hello_alpn(buf, len, &alpn, &n), 0);
	KUNIT_EXPECT_EQ(test, n, 128);
}

struct quic_test_bad {
	const char *what;
	u32 off;	/* byte to change, from the handshake header */
	u8 val;
};

/*
 * Offsets in quic_test_valid()'s message: 4 header, 2 version, 32 random,
 * session ID length at 38, cipher suites length at 39-40 and the suite at
 * 41-42, compression length at 43 and the method at 44, extensions length
 * at 45-46, SNI at 47 (length at 49-50, 7 bytes of body), ALPN at 58:
 * type 58-59, length 60-61, list length 62-63, first name length 64,
 * second name length 67.
 */
static const struct quic_test_bad quic_test_bads[] = {
	{ "handshake type ServerHello", 0, 2 },
	{ "session ID of 33 bytes", 38, 33 },
	{ "odd cipher suites length", 40, 3 },
	{ "no cipher suite", 40, 0 },
	{ "no compression method", 43, 0 },
	{ "extensions length short by one", 46, 0 },	/* set below */
	{ "an extension longer than the block", 49, 0xff },
	{ "ALPN list length one short of the extension", 63, 4 },
	{ "ALPN list length past the extension", 63, 6 },
	{ "empty protocol name", 64, 0 },
	{ "protocol name past the list", 67, 2 },
	{ "ALPN extension empty", 61, 0 },
};

static void quic_test_ch_malformed(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, QUIC_TEST_CH_MAX, GFP_KERNEL);
	const struct quic_test_bad *b;
	const u8 *alpn;
	u32 len, i, n;
	int err;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	for (i = 0; i < ARRAY_SIZE(quic_test_bads); i++) {
		b = &quic_test_bads[i];
		len = quic_test_valid(buf);
		KUNIT_ASSERT_EQ(test, buf[58], 0);	/* the layout above */
		KUNIT_ASSERT_EQ(test, buf[59], 16);
		buf[b->off] = b->off == 46 ? buf[46] - 1 : b->val;
		err = quic_client_hello_alpn(buf, len, &alpn, &n);
		KUNIT_EXPECT_EQ_MSG(test, err, -EINVAL, "%s", b->what);
	}
}

static void quic_test_ch_duplicate(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, QUIC_TEST_CH_MAX, GFP_KERNEL);
	const u8 *alpn;
	u8 exts[64];
	u32 len, n = 0;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	n += quic_test_alpn_ext(exts + n, quic_test_list, sizeof(quic_test_list));
	n += quic_test_alpn_ext(exts + n, quic_test_list, sizeof(quic_test_list));
	len = quic_test_ch(buf, exts, n);
	KUNIT_EXPECT_EQ(test, quic_client_hello_alpn(buf, len, &alpn, &n),
			-EINVAL);
}

/* Every value of every byte: an answer, and a list inside the input. */
static void quic_test_ch_mutations(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, QUIC_TEST_CH_MAX, GFP_KERNEL);
	u8 *ref = kunit_kzalloc(test, QUIC_TEST_CH_MAX, GFP_KERNEL);
	const u8 *alpn;
	u32 len, i, v, n;
	int err;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	KUNIT_ASSERT_NOT_NULL(test, ref);
	len = quic_test_valid(ref);
	for (i = 0; i < len; i++) {
		for (v = 0; v < 256; v++) {
			memcpy(buf, ref, len);
			buf[i] = v;
			alpn = NULL;
			n = 0;
			err = quic_client_hello_alpn(buf, len, &alpn, &n);
			KUNIT_EXPECT_TRUE(test, !err || err == -EAGAIN ||
					  err == -ENOENT || err == -EINVAL ||
					  err == -EMSGSIZE);
			if (err)
				continue;
			KUNIT_EXPECT_TRUE(test, alpn >= buf && n &&
					  alpn + n <= buf + len);
		}
	}
}

static struct kunit_case quic_demux_test_cases[] = {
	KUNIT_CASE(quic_test_ch_valid),
	KUNIT_CASE(quic_test_ch_no_alpn),
	KUNIT_CASE(quic_test_ch_prefixes),
	KUNIT_CASE(quic_test_ch_sizes),
	KUNIT_CASE(quic_test_ch_malformed),
	KUNIT_CASE(quic_test_ch_duplicate),
	KUNIT_CASE(quic_test_ch_mutations),
	{}
};

static struct kunit_suite quic_demux_test_suite = {
	.name = "quic_demux",
	.test_cases = quic_demux_test_cases,
};

kunit_test_suite(quic_demux_test_suite);
