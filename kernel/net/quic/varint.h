/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: variable-length integers (RFC 9000 Section 16).
 *
 * The two most significant bits of the first byte give the length of the
 * encoding (1, 2, 4 or 8 bytes); the rest is the value in network byte
 * order, so a varint holds at most 2^62 - 1.  Every helper is bounded by
 * the end of the buffer it reads or writes and never touches a byte past it.
 * Bytes are shifted one at a time: no unaligned access helpers are needed,
 * whose header moved between the supported kernels.
 */

#ifndef __NET_QUIC_VARINT_H
#define __NET_QUIC_VARINT_H

#include <linux/types.h>

#define QUIC_VARINT_MAX		((1ULL << 62) - 1)
#define QUIC_VARINT_MAX_LEN	8

/**
 * quic_varint_len - length of the shortest encoding of a value
 * @val: the value
 *
 * Return: 1, 2, 4 or 8; 0 if @val exceeds QUIC_VARINT_MAX.
 */
static inline u8 quic_varint_len(u64 val)
{
	if (val < (1ULL << 6))
		return 1;
	if (val < (1ULL << 14))
		return 2;
	if (val < (1ULL << 30))
		return 4;
	if (val <= QUIC_VARINT_MAX)
		return 8;
	return 0;
}

/**
 * quic_varint_put_len - encode a value in exactly @len bytes
 * @p: where to write
 * @end: end of the buffer
 * @val: the value
 * @len: 1, 2, 4 or 8, large enough for @val (e.g. a 2-byte Length field
 *	 written before its value is known, RFC 9000 Section 17.2)
 *
 * Return: the byte after the encoding, or NULL if @len is not a valid
 * length for @val or the buffer is too short (nothing is written then).
 */
static inline u8 *quic_varint_put_len(u8 *p, const u8 *end, u64 val, u8 len)
{
	u8 i, prefix;

	switch (len) {
	case 1:
		prefix = 0x00;
		break;
	case 2:
		prefix = 0x40;
		break;
	case 4:
		prefix = 0x80;
		break;
	case 8:
		prefix = 0xc0;
		break;
	default:
		return NULL;
	}
	if (!p || end - p < len || val > QUIC_VARINT_MAX ||
	    quic_varint_len(val) > len)
		return NULL;

	for (i = len; i > 0; i--) {
		p[i - 1] = (u8)val;
		val >>= 8;
	}
	p[0] |= prefix;
	return p + len;
}

/**
 * quic_varint_put - encode a value in its shortest form
 * @p: where to write; NULL is passed through, so calls can be chained
 * @end: end of the buffer
 * @val: the value
 *
 * Return: the byte after the encoding, or NULL if it does not fit or @val
 * exceeds QUIC_VARINT_MAX.
 */
static inline u8 *quic_varint_put(u8 *p, const u8 *end, u64 val)
{
	return quic_varint_put_len(p, end, val, quic_varint_len(val));
}

/**
 * quic_varint_get - decode a value
 * @pp: cursor, advanced past the encoding on success
 * @end: end of the input
 * @val: the value decoded
 *
 * Return: true on success; false if the input ends inside the encoding
 * (then neither @pp nor @val is changed).
 */
static inline bool quic_varint_get(const u8 **pp, const u8 *end, u64 *val)
{
	const u8 *p = *pp;
	u8 len, i;
	u64 v;

	if (p >= end)
		return false;
	len = 1 << (*p >> 6);
	if (end - p < len)
		return false;

	v = *p & 0x3f;
	for (i = 1; i < len; i++)
		v = (v << 8) | p[i];
	*val = v;
	*pp = p + len;
	return true;
}

#endif /* __NET_QUIC_VARINT_H */
