/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: the quic_transport_parameters TLS extension (RFC 9000 Section 18,
 * RFC 9001 Section 8.2), as passed through the TRANSPORT_PARAM_EXT socket
 * option (ABI reference Section 3.1).
 *
 * quic_tp_build() writes our parameters; quic_tp_parse() reads the peer's,
 * validates them (including the connection ID authentication of RFC 9000
 * Section 7.3 and compatible version negotiation, RFC 9368) and returns
 * them as a struct quic_transport_param plus what does not fit in it.  Both
 * work on plain buffers and explicit context: they touch no socket.
 */

#ifndef __NET_QUIC_TP_H
#define __NET_QUIC_TP_H

#include <linux/bits.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/types.h>
#include <uapi/linux/quic.h>

#include "connid.h"

/* Transport parameter IDs */
enum quic_tp_id {
	/* RFC 9000 Section 18.2 */
	QUIC_TP_ORIGINAL_DCID			= 0x00,
	QUIC_TP_MAX_IDLE_TIMEOUT		= 0x01,
	QUIC_TP_STATELESS_RESET_TOKEN		= 0x02,
	QUIC_TP_MAX_UDP_PAYLOAD_SIZE		= 0x03,
	QUIC_TP_INITIAL_MAX_DATA		= 0x04,
	QUIC_TP_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL	= 0x05,
	QUIC_TP_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE	= 0x06,
	QUIC_TP_INITIAL_MAX_STREAM_DATA_UNI	= 0x07,
	QUIC_TP_INITIAL_MAX_STREAMS_BIDI	= 0x08,
	QUIC_TP_INITIAL_MAX_STREAMS_UNI		= 0x09,
	QUIC_TP_ACK_DELAY_EXPONENT		= 0x0a,
	QUIC_TP_MAX_ACK_DELAY			= 0x0b,
	QUIC_TP_DISABLE_ACTIVE_MIGRATION	= 0x0c,
	QUIC_TP_PREFERRED_ADDRESS		= 0x0d,
	QUIC_TP_ACTIVE_CONNECTION_ID_LIMIT	= 0x0e,
	QUIC_TP_INITIAL_SCID			= 0x0f,
	QUIC_TP_RETRY_SCID			= 0x10,
	QUIC_TP_VERSION_INFORMATION		= 0x11,	/* RFC 9368 */
	QUIC_TP_MAX_DATAGRAM_FRAME_SIZE		= 0x20,	/* RFC 9221 */
	QUIC_TP_GREASE_QUIC_BIT			= 0x2ab2, /* RFC 9287 */
	QUIC_TP_DISABLE_1RTT_ENCRYPTION		= 0xbaad, /* draft-banks */
};

/* Longest extension built or accepted (ABI reference Section 1.13). */
#define QUIC_TP_EXT_LEN_MAX		512

/* Values assumed when the peer leaves a parameter out (RFC 9000 18.2). */
#define QUIC_TP_DEF_UDP_PAYLOAD		65527
#define QUIC_TP_DEF_ACK_DELAY_EXPONENT	3
#define QUIC_TP_DEF_ACK_DELAY		25000	/* us */
#define QUIC_TP_DEF_CONN_ID_LIMIT	2

/* Ranges (RFC 9000 Section 18.2, ABI reference Section 3) */
#define QUIC_TP_MIN_UDP_PAYLOAD		1200
#define QUIC_TP_MAX_ACK_DELAY_EXPONENT	20
#define QUIC_TP_MAX_ACK_DELAY_MS	16384	/* 2^14 ms, exclusive */
#define QUIC_TP_MIN_IDLE_TIMEOUT_MS	1000
#define QUIC_TP_MIN_DATA		1200
#define QUIC_TP_MAX_STREAMS		4096	/* a peer's value is clamped */
#define QUIC_TP_MAX_STREAMS_WIRE	BIT_ULL(60)	/* RFC 9000 4.6 */
#define QUIC_TP_MIN_DATAGRAM		1200
#define QUIC_TP_MAX_DATAGRAM		65535	/* a peer's value is clamped */

#define QUIC_TP_VERSIONS_MAX		16	/* version_information entries */

u32 quic_tp_chosen_version(u32 version);

/**
 * struct quic_tp_pref_addr - a server's preferred_address (RFC 9000 18.2)
 * @v4: IPv4 address and port; all zero when not offered
 * @v6: IPv6 address and port; all zero when not offered
 * @cid: the connection ID to use with it (sequence number 1), 1..20 bytes
 * @token: its stateless reset token
 */
struct quic_tp_pref_addr {
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
	struct quic_conn_id cid;
	u8 token[QUIC_CONN_ID_TOKEN_LEN];
};

/**
 * struct quic_tp_build_ctx - what quic_tp_build() needs besides the params
 * @odcid: server: Destination Connection ID of the client's first Initial
 *	(original_destination_connection_id)
 * @scid: our Source Connection ID of the handshake
 *	(initial_source_connection_id)
 * @retry_scid: server: Source Connection ID of the Retry we sent, NULL if
 *	none (retry_source_connection_id)
 * @reset_token: server: stateless reset token of @scid, sent when the
 *	params' stateless_reset is set
 * @pref_addr: server: preferred address to advertise, NULL if none
 * @version: version in use (compatible negotiation done); 0 means V1.
 *	A client's version we do not speak (ABI reference Section 7, quirk
 *	14) only draws a Version Negotiation packet: its Chosen Version is V1
 * @is_serv: we are the server
 * @peer_version_info: server: the client sent version_information
 */
struct quic_tp_build_ctx {
	const struct quic_conn_id *odcid;
	const struct quic_conn_id *scid;
	const struct quic_conn_id *retry_scid;
	const u8 *reset_token;
	const struct quic_tp_pref_addr *pref_addr;
	u32 version;
	bool is_serv;
	bool peer_version_info;
};

/**
 * struct quic_tp_parse_ctx - what quic_tp_parse() checks the params against
 * @odcid: client: Destination Connection ID of our first Initial
 * @retry_scid: client: Source Connection ID of the Retry we received, NULL
 *	if none
 * @peer_scid: Source Connection ID of the peer's first packet
 * @version: version in use: a server gives the version of the client's
 *	Initial, a client the version of the server's packets; 0 means V1
 * @pref_version: server: version to switch to by compatible negotiation
 *	when the client lists it (quic_config.version); 0 keeps the client's
 * @vn_version: client: the version it started again with after a Version
 *	Negotiation packet (RFC 9368 Section 2.1), 0 if it had none
 * @is_serv: we are the server
 */
struct quic_tp_parse_ctx {
	const struct quic_conn_id *odcid;
	const struct quic_conn_id *retry_scid;
	const struct quic_conn_id *peer_scid;
	u32 version;
	u32 pref_version;
	u32 vn_version;
	bool is_serv;
};

/**
 * struct quic_tp_extra - what the peer sent beyond struct quic_transport_param
 * @reset_token: stateless_reset_token, valid if the params' stateless_reset
 * @pref_addr: preferred_address, valid if @has_pref_addr
 * @version: version to use from now on: a server switches to it (compatible
 *	negotiation); for a client it is the version in use
 * @chosen_version: the peer's Chosen Version, 0 without version_information
 * @has_pref_addr: the server offered a preferred address
 * @has_version_info: the peer sent version_information
 */
struct quic_tp_extra {
	u8 reset_token[QUIC_CONN_ID_TOKEN_LEN];
	struct quic_tp_pref_addr pref_addr;
	u32 version;
	u32 chosen_version;
	u8 has_pref_addr:1;
	u8 has_version_info:1;
};

int quic_tp_build(const struct quic_transport_param *p,
		  const struct quic_tp_build_ctx *ctx, u8 *buf, u32 size);
int quic_tp_parse(const u8 *buf, u32 len, const struct quic_tp_parse_ctx *ctx,
		  struct quic_transport_param *p, struct quic_tp_extra *x);
u32 quic_tp_errcode(int err);

#endif /* __NET_QUIC_TP_H */
