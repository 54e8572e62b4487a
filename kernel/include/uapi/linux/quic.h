/* SPDX-License-Identifier: GPL-2.0+ WITH Linux-syscall-note */
/*
 * QUIC socket API (RFC 9000 transport in the kernel, TLS 1.3 handshake in userspace).
 *
 * Binary compatible with the socket ABI proposed for mainline Linux (draft-lxin-quic-socket-apis):
 * every number, layout and size below is part of the ABI and must not change.  Sizes quoted in
 * the comments are for x86_64 (LP64).
 *
 * Rules for this file, so that it stays usable from C, from the kernel and from Python (cffi
 * reads it after the C preprocessor):
 *   - no function-like macros, no packed/aligned attributes, no bitfields, no zero-length or
 *     flexible arrays;
 *   - natural alignment only; every padding byte that matters is an explicit "reserved" member,
 *     which should be written as zero and is ignored by the kernel;
 *   - TLS_CIPHER_* values (cipher types) come from <linux/tls.h>, not from here.
 *
 * Where this implementation is stricter than the reference behaviour it says so in a
 * "Stricter:" note.  Such checks only reject requests that no correct program makes.
 */

#ifndef _UAPI_LINUX_QUIC_H
#define _UAPI_LINUX_QUIC_H

#include <linux/types.h>
#ifdef __KERNEL__
#include <linux/socket.h>
#else
#include <sys/socket.h>
#endif

/* Protocol number for socket(AF_INET or AF_INET6, SOCK_STREAM or SOCK_DGRAM, IPPROTO_QUIC). */
#ifndef IPPROTO_QUIC
enum {
	IPPROTO_QUIC = 261,
#define IPPROTO_QUIC IPPROTO_QUIC
};
#endif

/* Level for QUIC socket options and control messages. */
#define SOL_QUIC	288

/*
 * Control messages (cmsg_level SOL_QUIC).
 *
 * Stricter: a SOL_QUIC cmsg whose payload is shorter than its struct is rejected with EINVAL
 * (the reference overlays the partial bytes on its defaults).
 */
enum quic_cmsg_type {
	QUIC_STREAM_INFO,	/* struct quic_stream_info (16 bytes); sendmsg and recvmsg */
	QUIC_HANDSHAKE_INFO,	/* struct quic_handshake_info (1 byte); handshake messages */
};

/* Stream ID type bits (RFC 9000 Section 2.1); IDs of one class differ by 4. */
#define QUIC_STREAM_TYPE_SERVER_MASK	0x01	/* set: opened by the server */
#define QUIC_STREAM_TYPE_UNI_MASK	0x02	/* set: unidirectional */
#define QUIC_STREAM_TYPE_MASK		0x03	/* both bits: 0 client bidi ... 3 server uni */

/*
 * Message flags: aliases of generic MSG_* bits (identical on every Linux architecture).
 * "stream_flags" means struct quic_stream_info.stream_flags.
 */
enum quic_msg_flags {
	/* stream_flags (send, STREAM_OPEN): create the stream if it does not exist yet */
	MSG_QUIC_STREAM_NEW		= MSG_SYN,		/* 0x400 */
	/* stream_flags (send and recv): the data ends the stream.  Also ORed into msg_flags on
	 * recvmsg when the stream cmsg was truncated (MSG_CTRUNC).
	 */
	MSG_QUIC_STREAM_FIN		= MSG_FIN,		/* 0x200 */
	/* stream_flags (send, STREAM_OPEN): pick a unidirectional ID when stream_id is -1 */
	MSG_QUIC_STREAM_UNI		= MSG_CONFIRM,		/* 0x800 */
	/* stream_flags (send, STREAM_OPEN): EAGAIN instead of waiting for MAX_STREAMS credit */
	MSG_QUIC_STREAM_DONTWAIT	= MSG_WAITFORONE,	/* 0x10000 */
	/* stream_flags (send, STREAM_OPEN): send *_BLOCKED frames when blocked.  Accepted for
	 * compatibility: this implementation sends STREAMS_BLOCKED, DATA_BLOCKED and
	 * STREAM_DATA_BLOCKED whenever it is blocked (once per limit), as RFC 9000 Section 4.1
	 * recommends, with or without this flag.
	 */
	MSG_QUIC_STREAM_SNDBLOCK	= MSG_ERRQUEUE,		/* 0x2000 */
	/* sendmsg flags argument: send an unreliable DATAGRAM frame; recvmsg msg_flags */
	MSG_QUIC_DATAGRAM		= MSG_RST,		/* 0x1000 */
	/* recvmsg msg_flags only: the data is an event (byte 0 = enum quic_event_type) */
	MSG_QUIC_NOTIFICATION		= MSG_MORE,		/* 0x8000 */
};

/* Encryption levels (struct quic_handshake_info.crypto_level, quic_crypto_secret.level). */
enum quic_crypto_level {
	QUIC_CRYPTO_APP,	/* 1-RTT; also post-handshake TLS messages (NewSessionTicket) */
	QUIC_CRYPTO_INITIAL,
	QUIC_CRYPTO_HANDSHAKE,
	QUIC_CRYPTO_EARLY,	/* 0-RTT */
	QUIC_CRYPTO_MAX,	/* sentinel */
};

/* cmsg QUIC_HANDSHAKE_INFO: 1 byte; CMSG_LEN(1) = 17, CMSG_SPACE(1) = 24 on x86_64. */
struct quic_handshake_info {
	__u8	crypto_level;	/* enum quic_crypto_level of the CRYPTO data sent/received */
};

/* cmsg QUIC_STREAM_INFO and QUIC_SOCKOPT_STREAM_OPEN: 16 bytes (4 bytes tail padding). */
struct quic_stream_info {
	__s64	stream_id;	/* -1: choose for me (sendmsg and STREAM_OPEN) */
	__u32	stream_flags;	/* NEW, FIN, UNI, DONTWAIT, SNDBLOCK; on recv only FIN */
};

/*
 * Socket options (level SOL_QUIC).  Any other number gives ENOPROTOOPT, and so does the
 * direction marked "no".  optlen > 4096 gives EINVAL for every number.
 *
 * Stricter: struct-valued options reject optlen < sizeof(struct) with EINVAL on setsockopt
 * and on getsockopt (the reference zero-extends short input and truncates short output).
 * Longer input is accepted and only sizeof(struct) bytes are read; getsockopt writes back
 * sizeof(struct) as the length.
 */
#define QUIC_SOCKOPT_EVENT			0	/* get/set struct quic_event_option */
#define QUIC_SOCKOPT_STREAM_OPEN		1	/* get only: quic_stream_info, in/out */
#define QUIC_SOCKOPT_STREAM_RESET		2	/* set only: struct quic_errinfo */
#define QUIC_SOCKOPT_STREAM_STOP_SENDING	3	/* set only: struct quic_errinfo */
#define QUIC_SOCKOPT_CONNECTION_ID		4	/* get/set struct quic_connection_id_info */
#define QUIC_SOCKOPT_CONNECTION_CLOSE		5	/* get/set struct quic_connection_close */
#define QUIC_SOCKOPT_CONNECTION_MIGRATION	6	/* set only: sockaddr_in / sockaddr_in6 */
#define QUIC_SOCKOPT_KEY_UPDATE			7	/* set only: no argument */
#define QUIC_SOCKOPT_TRANSPORT_PARAM		8	/* get/set struct quic_transport_param */
#define QUIC_SOCKOPT_CONFIG			9	/* get/set struct quic_config */
#define QUIC_SOCKOPT_TOKEN			10	/* get/set bytes (client: <= 120) */
#define QUIC_SOCKOPT_ALPN			11	/* get/set "h3, hq-interop" (<= 128) */
#define QUIC_SOCKOPT_SESSION_TICKET		12	/* get/set bytes (64..4096) */
#define QUIC_SOCKOPT_CRYPTO_SECRET		13	/* set only: struct quic_crypto_secret */
#define QUIC_SOCKOPT_TRANSPORT_PARAM_EXT	14	/* get/set TLS extension 0x39 (<= 512) */

/* QUIC versions supported (RFC 9000, RFC 9369); both list [V2, V1] as compatible. */
enum quic_version {
	QUIC_VERSION_V1 = 0x1,
	QUIC_VERSION_V2 = 0x6b3343cf,
};

/* Congestion control (struct quic_config.congestion_control_algo). */
enum quic_cong_algo {
	QUIC_CONG_ALG_RENO,	/* default */
	QUIC_CONG_ALG_CUBIC,
	QUIC_CONG_ALG_MAX,	/* sentinel */
};

/* Traffic secret buffer: the first 32 (SHA-256 suites) or 48 (SHA-384) bytes are used. */
#define QUIC_CRYPTO_SECRET_BUFFER_SIZE	48

/* CONNECTION_CLOSE reason phrase: at most 63 characters plus NUL. */
#define QUIC_CLOSE_PHRASE_BUFFER_SIZE	64

/*
 * QUIC_SOCKOPT_TRANSPORT_PARAM: 56 bytes, no padding.  On setsockopt only non-zero fields are
 * applied (zero means "leave unchanged"; a flag cannot be cleared); remote != 0 is allowed only
 * while ESTABLISHING (0-RTT).  On getsockopt "remote" is input.  Times are in microseconds
 * (milliseconds on the wire, rounded up).
 */
struct quic_transport_param {
	__u8	remote;				/* 0: local (advertised) params; else: peer's */
	__u8	disable_active_migration;	/* boolean */
	__u8	grease_quic_bit;		/* boolean (RFC 9287) */
	__u8	stateless_reset;		/* boolean: a stateless_reset_token is advertised */
	__u8	disable_1rtt_encryption;	/* boolean (transport parameter 0xbaad) */
	__u8	disable_compatible_version;	/* boolean: 1 = no version_information */
	__u8	active_connection_id_limit;	/* count, 2..8; default 7 */
	__u8	ack_delay_exponent;		/* 0..20; default 3 */
	__u16	max_datagram_frame_size;	/* bytes; 0 = datagrams disabled, else >= 1200 */
	__u16	max_udp_payload_size;		/* bytes, 1200..65527; default 65527 */
	__u32	max_idle_timeout;		/* us, >= 1000000; default 30000000 */
	__u32	max_ack_delay;			/* us, < 16384000; default 25000 */
	__u16	max_streams_bidi;		/* count, <= 4096; default 100 */
	__u16	max_streams_uni;		/* count, <= 4096; default 100 */
	__u64	max_data;			/* bytes (initial_max_data); default 2097120 */
	__u64	max_stream_data_bidi_local;	/* bytes; default 1048560 */
	__u64	max_stream_data_bidi_remote;	/* bytes; default 1048560 */
	__u64	max_stream_data_uni;		/* bytes; default 1048560 */
};

/*
 * QUIC_SOCKOPT_CONFIG: 28 bytes, no implicit padding.  On setsockopt only non-zero fields are
 * applied.  Times are in microseconds.
 */
struct quic_config {
	__u32	version;			/* preferred version; 0 = default (V1) */
	__u32	plpmtud_probe_interval;		/* us; 0 = PLPMTUD off, else 5000000..143165576 */
	__u32	initial_smoothed_rtt;		/* us, 1000..6000000; default 333000 */
	__u32	payload_cipher_type;		/* TLS_CIPHER_* hint (51..54); stored only */
	__u8	congestion_control_algo;	/* enum quic_cong_algo */
	__u8	validate_peer_address;		/* boolean: server sends Retry first */
	__u8	stream_data_nodelay;		/* boolean: no Nagle-like coalescing */
	__u8	receive_session_ticket;		/* raw, for the handshake agent (seconds to wait) */
	__u8	certificate_request;		/* raw, for the handshake agent (0/1/2) */
	__u8	reserved[3];
	__u32	keepalive_probe_interval;	/* us; 0 = no keep-alive PINGs, else >= 1500000 */
};

/* QUIC_SOCKOPT_CRYPTO_SECRET (set only, while ESTABLISHING): 56 bytes, no implicit padding. */
struct quic_crypto_secret {
	__u8	send;		/* non-zero: transmit direction; 0: receive */
	__u8	level;		/* QUIC_CRYPTO_APP, _HANDSHAKE or _EARLY */
	__u16	reserved;
	__u32	type;		/* TLS_CIPHER_* from <linux/tls.h>: 51..54 */
	__u8	secret[QUIC_CRYPTO_SECRET_BUFFER_SIZE];	/* TLS traffic secret */
};

/* QUIC_SOCKOPT_STREAM_RESET / _STOP_SENDING (set only): 16 bytes (4 bytes tail padding). */
struct quic_errinfo {
	__s64	stream_id;	/* target stream */
	__u32	errcode;	/* application error code in RESET_STREAM / STOP_SENDING */
};

/* QUIC_SOCKOPT_CONNECTION_ID and QUIC_EVENT_CONNECTION_ID: 12 bytes. */
struct quic_connection_id_info {
	__u8	dest;		/* 0: our source CIDs; non-zero: peer-issued destination CIDs */
	__u8	reserved[3];
	__u32	active;		/* sequence number in use (set: 0 = don't change) */
	__u32	prior_to;	/* get/event: lowest held; set: retire below it (0 = none) */
};

/* QUIC_SOCKOPT_EVENT: 2 bytes; on getsockopt "type" is input and "on" output (0 or 1). */
struct quic_event_option {
	__u8	type;		/* enum quic_event_type, 1..9 */
	__u8	on;		/* set: non-zero enables delivery */
};

/*
 * Stream states reported in struct quic_stream_update.state (RFC 9000 Section 3).  The order
 * is part of the ABI: the kernel compares them numerically.
 */
enum {
	QUIC_STREAM_SEND_STATE_READY,
	QUIC_STREAM_SEND_STATE_SEND,
	QUIC_STREAM_SEND_STATE_SENT,
	QUIC_STREAM_SEND_STATE_RECVD,
	QUIC_STREAM_SEND_STATE_RESET_SENT,
	QUIC_STREAM_SEND_STATE_RESET_RECVD,

	QUIC_STREAM_RECV_STATE_RECV,
	QUIC_STREAM_RECV_STATE_SIZE_KNOWN,
	QUIC_STREAM_RECV_STATE_RECVD,
	QUIC_STREAM_RECV_STATE_READ,
	QUIC_STREAM_RECV_STATE_RESET_RECVD,
	QUIC_STREAM_RECV_STATE_RESET_READ,
};

/* QUIC_EVENT_STREAM_UPDATE payload: 24 bytes. */
struct quic_stream_update {
	__s64	id;		/* stream ID */
	__u8	state;		/* new state (QUIC_STREAM_*_STATE_*) */
	__u8	reserved[3];
	__u32	errcode;	/* application error code for reset states, else 0 */
	__u64	finalsz;	/* final size, or bytes sent for send-side resets, else 0 */
};

/* QUIC_EVENT_STREAM_MAX_DATA payload: 16 bytes. */
struct quic_stream_max_data {
	__s64	id;		/* stream ID */
	__u64	max_data;	/* new absolute send limit (byte offset) from MAX_STREAM_DATA */
};

/* QUIC_SOCKOPT_CONNECTION_CLOSE and QUIC_EVENT_CONNECTION_CLOSE: 72 bytes. */
struct quic_connection_close {
	__u32	errcode;	/* transport (QUIC_TRANSPORT_ERROR_*) or application error code */
	__u8	frame;		/* offending frame type (transport closes only), else 0 */
	__u8	reserved[3];
	__u8	phrase[QUIC_CLOSE_PHRASE_BUFFER_SIZE];	/* NUL-terminated reason */
};

/*
 * Payload of an event, following the 1-byte type at the start of a recvmsg() buffer flagged
 * MSG_QUIC_NOTIFICATION.  It starts at offset 1, so it is not aligned: memcpy it out.  Only the
 * bytes of the relevant member are delivered, not sizeof(union quic_event) (72 bytes).
 */
union quic_event {
	struct quic_stream_update	update;		/* QUIC_EVENT_STREAM_UPDATE */
	struct quic_stream_max_data	max_data;	/* QUIC_EVENT_STREAM_MAX_DATA */
	struct quic_connection_close	close;		/* QUIC_EVENT_CONNECTION_CLOSE */
	struct quic_connection_id_info	info;		/* QUIC_EVENT_CONNECTION_ID */
	__u64	max_stream;		/* QUIC_EVENT_STREAM_MAX_STREAM: highest openable stream
					 * ID of that class (written as a signed stream ID)
					 */
	__u8	local_migration;	/* QUIC_EVENT_CONNECTION_MIGRATION: 1 local, 0 peer moved */
	__u8	key_update_phase;	/* QUIC_EVENT_KEY_UPDATE: new key phase, 0 or 1 */
};

/* Event types (bit n of the per-socket subscription mask is event n; all off initially). */
enum quic_event_type {
	QUIC_EVENT_NONE,			/* invalid for QUIC_SOCKOPT_EVENT */
	QUIC_EVENT_STREAM_UPDATE,		/* struct quic_stream_update */
	QUIC_EVENT_STREAM_MAX_DATA,		/* struct quic_stream_max_data */
	QUIC_EVENT_STREAM_MAX_STREAM,		/* 8-byte stream ID */
	QUIC_EVENT_CONNECTION_ID,		/* struct quic_connection_id_info */
	QUIC_EVENT_CONNECTION_CLOSE,		/* struct quic_connection_close */
	QUIC_EVENT_CONNECTION_MIGRATION,	/* 1 byte: local_migration */
	QUIC_EVENT_KEY_UPDATE,			/* 1 byte: key_update_phase */
	QUIC_EVENT_NEW_TOKEN,			/* raw token bytes (1..120) */
	QUIC_EVENT_NEW_SESSION_TICKET,		/* raw NewSessionTicket message (4..4096) */
	QUIC_EVENT_MAX,				/* sentinel */
};

/* Transport error codes (RFC 9000 Section 20.1) for CONNECTION_CLOSE errcode. */
enum {
	QUIC_TRANSPORT_ERROR_NONE			= 0x00,
	QUIC_TRANSPORT_ERROR_INTERNAL			= 0x01,
	QUIC_TRANSPORT_ERROR_CONNECTION_REFUSED		= 0x02,
	QUIC_TRANSPORT_ERROR_FLOW_CONTROL		= 0x03,
	QUIC_TRANSPORT_ERROR_STREAM_LIMIT		= 0x04,
	QUIC_TRANSPORT_ERROR_STREAM_STATE		= 0x05,
	QUIC_TRANSPORT_ERROR_FINAL_SIZE			= 0x06,
	QUIC_TRANSPORT_ERROR_FRAME_ENCODING		= 0x07,
	QUIC_TRANSPORT_ERROR_TRANSPORT_PARAM		= 0x08,
	QUIC_TRANSPORT_ERROR_CONNECTION_ID_LIMIT	= 0x09,
	QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION		= 0x0a,
	QUIC_TRANSPORT_ERROR_INVALID_TOKEN		= 0x0b,
	QUIC_TRANSPORT_ERROR_APPLICATION		= 0x0c,
	QUIC_TRANSPORT_ERROR_CRYPTO_BUF_EXCEEDED	= 0x0d,
	QUIC_TRANSPORT_ERROR_KEY_UPDATE			= 0x0e,
	QUIC_TRANSPORT_ERROR_AEAD_LIMIT_REACHED		= 0x0f,
	QUIC_TRANSPORT_ERROR_NO_VIABLE_PATH		= 0x10,
	QUIC_TRANSPORT_ERROR_VERSION_NEGOTIATION	= 0x11,
	QUIC_TRANSPORT_ERROR_CRYPTO			= 0x0100,	/* + TLS alert (0..255) */
};

#endif /* _UAPI_LINUX_QUIC_H */
