/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC packet protection: key derivation, AEAD payload protection, header
 * protection, key update and Retry integrity (RFC 9001, RFC 9369).
 *
 * Context rules:
 *  - Functions that install or derive keys allocate crypto transforms and
 *    call setkey, which may sleep: process context only (might_sleep()).
 *  - quic_crypto_encrypt() and quic_crypto_decrypt() never sleep and may
 *    run in softirq context.  They use preallocated requests, so all calls
 *    on one struct quic_crypto must be serialized by the caller (socket
 *    lock).
 *  - quic_crypto_retry_tag() and quic_crypto_retry_verify() use module-wide
 *    transforms set up by quic_crypto_init(); they may run in any context,
 *    concurrently.
 *
 * A zeroed struct quic_crypto is a valid "no keys" object, and
 * quic_crypto_destroy() may be called on it at any time.
 */

#ifndef __NET_QUIC_CRYPTO_H
#define __NET_QUIC_CRYPTO_H

#include <linux/types.h>

struct crypto_aead;
struct aead_request;
struct crypto_sync_skcipher;

#define QUIC_CRYPTO_TAG_LEN		16	/* AEAD expansion, RFC 9001 Section 5.3 */
#define QUIC_CRYPTO_IV_LEN		12	/* AEAD nonce length */
#define QUIC_CRYPTO_SAMPLE_LEN		16	/* RFC 9001 Section 5.4.2 */
#define QUIC_CRYPTO_SAMPLE_OFFSET	4	/* sample starts at pn_offset + 4 */
#define QUIC_CRYPTO_SECRET_MAX_LEN	48	/* SHA-384 traffic secret */
#define QUIC_CRYPTO_KEY_MAX_LEN		32	/* AES-256 / ChaCha20 key */
#define QUIC_CRYPTO_CID_MAX_LEN		20	/* RFC 9000 Section 17.2 */
#define QUIC_CRYPTO_RETRY_TAG_LEN	16	/* RFC 9001 Section 5.8 */
#define QUIC_CRYPTO_TOKEN_MAC_LEN	16	/* address validation tokens */
/* Shortest packet that holds a full header protection sample. */
#define QUIC_CRYPTO_MIN_PKT_LEN(pn_offset)	\
	((pn_offset) + QUIC_CRYPTO_SAMPLE_OFFSET + QUIC_CRYPTO_SAMPLE_LEN)

#define QUIC_PN_MAX		((1LL << 62) - 1)	/* RFC 9000 Section 12.3 */

/* Key slots of one direction; only 1-RTT uses more than one. */
#define QUIC_CRYPTO_KM_MAX	3

/**
 * struct quic_crypto_keys - material derived from one traffic secret
 * @key: AEAD key (RFC 9001 Section 5.1, "quic key")
 * @iv: AEAD IV ("quic iv")
 * @hp: header protection key ("quic hp")
 * @ku: next generation traffic secret ("quic ku", RFC 9001 Section 6.1)
 *
 * Labels are "quicv2 ..." for QUIC version 2 (RFC 9369 Section 3.3.2).
 * Holders must memzero_explicit() it when done.
 */
struct quic_crypto_keys {
	u8 key[QUIC_CRYPTO_KEY_MAX_LEN];
	u8 iv[QUIC_CRYPTO_IV_LEN];
	u8 hp[QUIC_CRYPTO_KEY_MAX_LEN];
	u8 ku[QUIC_CRYPTO_SECRET_MAX_LEN];
};

/**
 * struct quic_crypto_km - one generation of AEAD packet protection keys
 * @tfm: AEAD transform holding the key: the kernel's best implementation,
 *	which may be an asynchronous SIMD wrapper (x86 AES-GCM is one)
 * @req: request bound to @tfm, allocated once and reused for every packet
 * @tfm_sync: when @tfm is asynchronous, a synchronous transform holding the
 *	same key, used where SIMD registers cannot be (NULL otherwise)
 * @req_sync: request bound to @tfm_sync
 * @secret: traffic secret of this generation (source of the next one)
 * @iv: AEAD IV of this generation
 * @ready: @tfm and @iv hold the generation this slot stands for; a slot
 *	that is allocated but not ready holds a stale or random key, so that
 *	trying it takes the same time as trying a real key and always fails
 *	(RFC 9001 Section 6.3)
 */
struct quic_crypto_km {
	struct crypto_aead *tfm;
	struct aead_request *req;
	struct crypto_aead *tfm_sync;
	struct aead_request *req_sync;
	u8 secret[QUIC_CRYPTO_SECRET_MAX_LEN];
	u8 iv[QUIC_CRYPTO_IV_LEN];
	bool ready;
};

struct quic_cipher;
struct quic_crypto_scratch;

/**
 * struct quic_crypto_dir - keys of one direction at one encryption level
 * @km: key slots; @cur is current, (@cur + 1) % @nkm the next generation
 *	and, for receive at 1-RTT, (@cur + 2) % @nkm the previous one
 * @hp: header protection transform (not updated by key updates)
 * @cipher: cipher suite, NULL when no keys are installed
 * @scratch: per direction buffers handed to the crypto API as scatterlists
 * @version: QUIC version the keys were derived for (selects HKDF labels)
 * @first_pn: send: first packet number protected with the current keys;
 *	receive: lowest packet number opened with them; -1 when none yet
 * @count: send: packets protected with the current keys; receive: packets
 *	that failed authentication over the connection (RFC 9001 Section 6.6)
 * @nkm: number of key slots in use (1, or 2 send / 3 receive at 1-RTT)
 * @cur: index of the current key slot
 * @phase: Key Phase bit of the current keys (RFC 9001 Section 6)
 * @updated: the keys moved to a later generation since they were installed
 */
struct quic_crypto_dir {
	struct quic_crypto_km km[QUIC_CRYPTO_KM_MAX];
	struct crypto_sync_skcipher *hp;
	const struct quic_cipher *cipher;
	struct quic_crypto_scratch *scratch;
	u32 version;
	s64 first_pn;
	u64 count;
	u8 nkm;
	u8 cur;
	u8 phase;
	bool updated;
};

/**
 * struct quic_crypto - packet protection state of one encryption level
 * @tx: keys protecting packets we send
 * @rx: keys removing protection from packets we receive
 * @key_update: 1-RTT level: Key Phase bit and key updates are in use
 */
struct quic_crypto {
	struct quic_crypto_dir tx;
	struct quic_crypto_dir rx;
	bool key_update;
};

/**
 * enum quic_crypto_key_event - key phase change seen while decrypting
 * @QUIC_CRYPTO_KEY_NONE: no change
 * @QUIC_CRYPTO_KEY_PEER_UPDATE: the peer initiated a key update; receive
 *	and send keys both moved to the next generation (RFC 9001 Section 6.2)
 * @QUIC_CRYPTO_KEY_CONFIRMED: the peer answered our key update; receive
 *	keys caught up with send keys
 *
 * For either change, call quic_crypto_key_update_prepare() from process
 * context soon, so that the next generation is ready for the next update.
 */
enum quic_crypto_key_event {
	QUIC_CRYPTO_KEY_NONE,
	QUIC_CRYPTO_KEY_PEER_UPDATE,
	QUIC_CRYPTO_KEY_CONFIRMED,
};

/**
 * struct quic_crypto_rx_info - what decryption learnt about a packet
 * @pn: full packet number (RFC 9000 Appendix A.3)
 * @pn_len: length of the Packet Number field, 1..4; the payload starts at
 *	pn_offset + @pn_len and ends QUIC_CRYPTO_TAG_LEN before the packet end
 * @key_event: enum quic_crypto_key_event
 */
struct quic_crypto_rx_info {
	s64 pn;
	u8 pn_len;
	u8 key_event;
};

int quic_crypto_init(void);
void quic_crypto_exit(void);

int quic_crypto_initial_keys_install(struct quic_crypto *c, const u8 *dcid,
				     u8 dcid_len, u32 version, bool is_server);
int quic_crypto_set_secret(struct quic_crypto *c, const u8 *secret,
			   u32 cipher_type, u8 level, bool send, u32 version);
void quic_crypto_destroy(struct quic_crypto *c);

int quic_crypto_encrypt(struct quic_crypto *c, u8 *pkt, u32 len,
			u32 pn_offset, s64 pn);
int quic_crypto_decrypt(struct quic_crypto *c, u8 *pkt, u32 len,
			u32 pn_offset, s64 largest_pn,
			struct quic_crypto_rx_info *info);

int quic_crypto_open_plain(struct quic_crypto *c, const u8 *pkt, u32 len,
			   u32 pn_offset, s64 largest_pn,
			   struct quic_crypto_rx_info *info);
int quic_crypto_key_update(struct quic_crypto *c);
int quic_crypto_key_update_prepare(struct quic_crypto *c);
void quic_crypto_discard_old_keys(struct quic_crypto *c);

int quic_crypto_retry_tag(u32 version, const u8 *odcid, u8 odcid_len,
			  const u8 *pkt, u32 len, u8 *tag);
int quic_crypto_retry_verify(u32 version, const u8 *odcid, u8 odcid_len,
			     const u8 *pkt, u32 len);
int quic_crypto_initial_check(u32 version, const u8 *dcid, u8 dcid_len,
			      const u8 *pkt, u32 len, u32 pn_offset);
int quic_crypto_initial_open(u32 version, const u8 *dcid, u8 dcid_len,
			     const u8 *pkt, u32 len, u32 pn_offset, u8 *out,
			     u32 *out_len);
int quic_crypto_initial_seal(u32 version, const u8 *dcid, u8 dcid_len, u8 *pkt,
			     u32 len, u32 pn_offset);
void quic_crypto_token_mac(const u8 *data, u32 len, u8 *mac);
int quic_crypto_ticket_key(const u8 *secret, u32 secret_len, const u8 *peer,
			   u32 peer_len, u8 *key, u32 key_len);

u32 quic_crypto_cipher_type(const struct quic_crypto_dir *d);

u8 quic_pn_encode_len(s64 pn, s64 largest_acked);

#if IS_ENABLED(CONFIG_KUNIT)
/* Visible to the KUnit tests only (static otherwise). */
s64 quic_pn_decode(s64 largest_pn, u32 truncated_pn, u8 pn_nbits);
/* Built for the KUnit tests only: the key schedule against RFC vectors. */
int quic_crypto_initial_secrets(u32 version, const u8 *dcid, u8 dcid_len,
				u8 *client_secret, u8 *server_secret);
int quic_crypto_derive_keys(u32 cipher_type, u32 version, const u8 *secret,
			    struct quic_crypto_keys *keys);
#endif

/**
 * quic_crypto_send_ready() - can packets be protected at this level?
 * @c: crypto state
 */
static inline bool quic_crypto_send_ready(const struct quic_crypto *c)
{
	return c->tx.cipher && c->tx.km[c->tx.cur].ready;
}

/**
 * quic_crypto_recv_ready() - can packets be opened at this level?
 * @c: crypto state
 */
static inline bool quic_crypto_recv_ready(const struct quic_crypto *c)
{
	return c->rx.cipher && c->rx.km[c->rx.cur].ready;
}

/**
 * quic_crypto_tx_first_pn() - first packet number sent with current keys
 * @c: crypto state
 *
 * RFC 9001 Section 6.1: a further key update may be initiated only once a
 * packet sent with the current keys is acknowledged, i.e. when the largest
 * acknowledged 1-RTT packet number is >= this value (and it is not -1).
 */
static inline s64 quic_crypto_tx_first_pn(const struct quic_crypto *c)
{
	return c->tx.first_pn;
}

/**
 * quic_crypto_tx_updated() - whether a key update changed the send keys
 * @c: crypto state of the 1-RTT level
 *
 * Return: true once either end started a key update after installation.
 */
static inline bool quic_crypto_tx_updated(const struct quic_crypto *c)
{
	return c->tx.updated;
}

#endif /* __NET_QUIC_CRYPTO_H */
