// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC packet protection (RFC 9001 Sections 5 and 6, RFC 9369 Section 3.3).
 *
 * Keys come from TLS 1.3 traffic secrets through HKDF-Expand-Label
 * (RFC 8446 Section 7.1) over hmac(sha256) or hmac(sha384).  Payloads are
 * sealed in place with the negotiated AEAD, always completing inline (see
 * quic_km_alloc(): SIMD implementations where usable, a synchronous one
 * elsewhere) so that no completion is waited for, and header protection masks the
 * first byte and the packet number with AES-ECB or raw ChaCha20 applied to a
 * 16-byte sample of the ciphertext.
 *
 * Key setup (allocation and setkey, which may sleep) is kept apart from the
 * per-packet paths: 1-RTT keys of the next generation are derived ahead of
 * time, so a key update found while decrypting in softirq context only
 * rotates slot indices.  See crypto.h for the context rules.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/aead.h>
#include <crypto/aes.h>
#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <crypto/internal/simd.h>
#include <asm/simd.h>
#include <crypto/sha2.h>
#include <crypto/skcipher.h>
#include <linux/export.h>
#include <linux/nospec.h>
#include <linux/quic.h>
#include <linux/random.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <uapi/linux/tls.h>

#include "compat.h"
#include "crypto.h"

/* First byte of a packet (RFC 9000 Sections 17.2 and 17.3). */
#define QUIC_HDR_FORM_LONG	0x80
#define QUIC_HDR_KEY_PHASE	0x04	/* short header only */
#define QUIC_HDR_PN_LEN_MASK	0x03

/* RFC 9001 Section 5.4.1: bits of the first byte covered by the mask. */
#define QUIC_HP_BITS_LONG	0x0f
#define QUIC_HP_BITS_SHORT	0x1f
#define QUIC_HP_MASK_LEN	5

#define QUIC_INITIAL_SALT_LEN	20
#define QUIC_INITIAL_SECRET_LEN	SHA256_DIGEST_SIZE
#define QUIC_LABEL_MAX_LEN	16	/* "tls13 " + label fits in info[] */
#define QUIC_RETRY_KEY_LEN	16	/* AEAD_AES_128_GCM */
#define QUIC_RETRY_MAX_LEN	65535	/* a Retry fits in one datagram */

/* ccm(aes) takes a 16-byte IV: L' (= 15 - nonce length - 1), nonce, counter */
#define QUIC_NONCE_BUF_LEN	16
#define QUIC_CCM_L_PRIME	2

/**
 * struct quic_cipher - one TLS 1.3 cipher suite as used by QUIC
 * @aead: crypto API name of the packet protection AEAD
 * @hp: crypto API name of the ChaCha20 header protection cipher; NULL for
 *	AES-ECB, done by the AES library (one block per packet, where the
 *	crypto API's walk and FPU section cost more than the block)
 * @hmac: crypto API name of the HKDF hash
 * @conf_limit: packets one key may protect (RFC 9001 Section 6.6)
 * @integ_limit: packets failing authentication a connection may see
 * @secret_len: traffic secret length, the hash length
 * @key_len: AEAD and header protection key length
 * @ccm: the AEAD is CCM and takes the 16-byte IV format
 * @chacha_hp: header protection is ChaCha20 (RFC 9001 Section 5.4.4)
 */
struct quic_cipher {
	const char *aead;
	const char *hp;
	const char *hmac;
	u64 conf_limit;
	u64 integ_limit;
	u8 secret_len;
	u8 key_len;
	bool ccm;
	bool chacha_hp;
};

#define QUIC_CIPHER_MIN		TLS_CIPHER_AES_GCM_128
#define QUIC_CIPHER_MAX		TLS_CIPHER_CHACHA20_POLY1305

/* RFC 9001 Section 6.6 and Appendix B; 2^21.5 rounded down for CCM. */
static const struct quic_cipher quic_ciphers[] = {
	[TLS_CIPHER_AES_GCM_128 - QUIC_CIPHER_MIN] = {
		.aead = "gcm(aes)", .hmac = "hmac(sha256)",
		.conf_limit = 1ULL << 23, .integ_limit = 1ULL << 52,
		.secret_len = SHA256_DIGEST_SIZE, .key_len = 16,
	},
	[TLS_CIPHER_AES_GCM_256 - QUIC_CIPHER_MIN] = {
		.aead = "gcm(aes)", .hmac = "hmac(sha384)",
		.conf_limit = 1ULL << 23, .integ_limit = 1ULL << 52,
		.secret_len = SHA384_DIGEST_SIZE, .key_len = 32,
	},
	[TLS_CIPHER_AES_CCM_128 - QUIC_CIPHER_MIN] = {
		.aead = "ccm(aes)", .hmac = "hmac(sha256)",
		.conf_limit = 2965820, .integ_limit = 2965820,
		.secret_len = SHA256_DIGEST_SIZE, .key_len = 16, .ccm = true,
	},
	[TLS_CIPHER_CHACHA20_POLY1305 - QUIC_CIPHER_MIN] = {
		.aead = "rfc7539(chacha20,poly1305)", .hp = "chacha20",
		.hmac = "hmac(sha256)",
		.conf_limit = U64_MAX, .integ_limit = 1ULL << 36,
		.secret_len = SHA256_DIGEST_SIZE, .key_len = 32,
		.chacha_hp = true,
	},
};

/**
 * struct quic_version_info - what differs between QUIC versions
 * @number: version number on the wire
 * @salt: Initial salt (RFC 9001 Section 5.2, RFC 9369 Section 3.3.1)
 * @retry_key: Retry Integrity Tag key (RFC 9001 Section 5.8,
 *	RFC 9369 Section 3.3.3)
 * @retry_nonce: Retry Integrity Tag nonce
 * @key: HKDF label of the AEAD key (RFC 9369 Section 3.3.2)
 * @iv: HKDF label of the AEAD IV
 * @hp: HKDF label of the header protection key
 * @ku: HKDF label of the key update
 */
struct quic_version_info {
	u32 number;
	u8 salt[QUIC_INITIAL_SALT_LEN];
	u8 retry_key[QUIC_RETRY_KEY_LEN];
	u8 retry_nonce[QUIC_CRYPTO_IV_LEN];
	const char *key;
	const char *iv;
	const char *hp;
	const char *ku;
};

static const struct quic_version_info quic_versions[] = {
	{
		.number = QUIC_VERSION_V1,
		.salt = {
			0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3,
			0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
			0xcc, 0xbb, 0x7f, 0x0a,
		},
		.retry_key = {
			0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a,
			0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68, 0xc8, 0x4e,
		},
		.retry_nonce = {
			0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63, 0x2b, 0xf2,
			0x23, 0x98, 0x25, 0xbb,
		},
		.key = "quic key", .iv = "quic iv", .hp = "quic hp",
		.ku = "quic ku",
	},
	{
		.number = QUIC_VERSION_V2,
		.salt = {
			0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb,
			0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
			0xf9, 0xbd, 0x2e, 0xd9,
		},
		.retry_key = {
			0x8f, 0xb4, 0xb0, 0x1b, 0x56, 0xac, 0x48, 0xe2,
			0x60, 0xfb, 0xcb, 0xce, 0xad, 0x7c, 0xcc, 0x92,
		},
		.retry_nonce = {
			0xd8, 0x69, 0x69, 0xbc, 0x2d, 0x7c, 0x6d, 0x99,
			0x90, 0xef, 0xb0, 0x4a,
		},
		.key = "quicv2 key", .iv = "quicv2 iv", .hp = "quicv2 hp",
		.ku = "quicv2 ku",
	},
};

/**
 * struct quic_crypto_scratch - buffers the crypto API reads through
 *	scatterlists, so they must not live on the stack
 * @sample: header protection sample (RFC 9001 Section 5.4.2)
 * @mask: header protection mask
 * @nonce: AEAD nonce of the packet being processed
 * @hp_aes: AES header protection key schedule (wiped with the scratch)
 */
struct quic_crypto_scratch {
	u8 sample[QUIC_CRYPTO_SAMPLE_LEN];
	u8 mask[QUIC_CRYPTO_SAMPLE_LEN];
	u8 nonce[QUIC_NONCE_BUF_LEN];
	struct crypto_aes_ctx hp_aes;
};

/* Module-wide transforms, see quic_crypto_init(). */
static struct crypto_aead *quic_retry_tfm[ARRAY_SIZE(quic_versions)];

static const struct quic_cipher *quic_cipher_get(u32 type)
{
	BUILD_BUG_ON(ARRAY_SIZE(quic_ciphers) !=
		     QUIC_CIPHER_MAX - QUIC_CIPHER_MIN + 1);

	if (type < QUIC_CIPHER_MIN || type > QUIC_CIPHER_MAX)
		return NULL;
	type = array_index_nospec(type - QUIC_CIPHER_MIN,
				  ARRAY_SIZE(quic_ciphers));
	return &quic_ciphers[type];
}

/**
 * quic_crypto_cipher_type - the cipher suite of installed keys
 * @d: one direction of an encryption level
 *
 * Return: TLS_CIPHER_* (51..54), or 0 when no keys are installed.
 */
u32 quic_crypto_cipher_type(const struct quic_crypto_dir *d)
{
	const struct quic_cipher *ci = READ_ONCE(d->cipher);

	return ci ? QUIC_CIPHER_MIN + (u32)(ci - quic_ciphers) : 0;
}

/* Unknown versions use version 1 and rely on version negotiation. */
static u32 quic_version_index(u32 version)
{
	u32 i;

	for (i = 0; i < ARRAY_SIZE(quic_versions); i++)
		if (quic_versions[i].number == version)
			return i;
	return 0;
}

static const struct quic_version_info *quic_version_get(u32 version)
{
	return &quic_versions[quic_version_index(version)];
}

/* HKDF-Extract, RFC 5869 Section 2.2. */
static int quic_hkdf_extract(struct crypto_shash *hmac, const u8 *salt,
			     u32 salt_len, const u8 *ikm, u32 ikm_len, u8 *prk)
{
	int err;

	err = crypto_shash_setkey(hmac, salt, salt_len);
	if (err)
		return err;
	return crypto_shash_tfm_digest(hmac, ikm, ikm_len, prk);
}

/* T(i) = HMAC(PRK, T(i - 1) | info | i), RFC 5869 Section 2.3. */
static int quic_hkdf_expand_block(struct shash_desc *desc, u8 *t, u32 t_len,
				  const u8 *info, u32 info_len, u8 i)
{
	int err;

	err = crypto_shash_init(desc);
	if (!err && t_len)
		err = crypto_shash_update(desc, t, t_len);
	if (!err)
		err = crypto_shash_update(desc, info, info_len);
	if (!err)
		err = crypto_shash_finup(desc, &i, 1, t);
	return err;
}

/*
 * HKDF-Expand-Label(Secret, Label, "", Length), RFC 8446 Section 7.1:
 * info = HkdfLabel { uint16 length; opaque label<7..255> = "tls13 " + Label;
 * opaque context<0..255> = "" }.
 */
static int quic_hkdf_expand_label(struct crypto_shash *hmac, const u8 *secret,
				  u32 secret_len, const char *label, u8 *out,
				  u32 out_len)
{
	static const char prefix[] = "tls13 ";
	u32 plen = sizeof(prefix) - 1, llen = strlen(label), ilen, hlen, n, i;
	u8 info[2 + 1 + sizeof(prefix) - 1 + QUIC_LABEL_MAX_LEN + 1];
	u8 t[HASH_MAX_DIGESTSIZE];
	SHASH_DESC_ON_STACK(desc, hmac);
	int err;

	hlen = crypto_shash_digestsize(hmac);
	if (llen > QUIC_LABEL_MAX_LEN || out_len > 255 * hlen ||
	    hlen > sizeof(t))
		return -EINVAL;
	info[0] = out_len >> 8;
	info[1] = out_len & 0xff;
	info[2] = plen + llen;
	memcpy(&info[3], prefix, plen);
	memcpy(&info[3 + plen], label, llen);
	ilen = 3 + plen + llen;
	info[ilen++] = 0;

	err = crypto_shash_setkey(hmac, secret, secret_len);
	if (err)
		return err;
	desc->tfm = hmac;
	for (i = 0; !err && i * hlen < out_len; i++) {
		err = quic_hkdf_expand_block(desc, t, i ? hlen : 0, info, ilen,
					     i + 1);
		n = min(out_len - i * hlen, hlen);
		if (!err)
			memcpy(out + i * hlen, t, n);
	}
	memzero_explicit(t, sizeof(t));
	shash_desc_zero(desc);
	return err;
}

/* RFC 9001 Sections 5.1 and 6.1: key, iv, hp and ku from one secret. */
static int quic_keys_derive(struct crypto_shash *hmac,
			    const struct quic_cipher *ci,
			    const struct quic_version_info *v,
			    const u8 *secret, struct quic_crypto_keys *k)
{
	u32 slen = ci->secret_len;
	int err;

	err = quic_hkdf_expand_label(hmac, secret, slen, v->key, k->key,
				     ci->key_len);
	if (!err)
		err = quic_hkdf_expand_label(hmac, secret, slen, v->iv, k->iv,
					     QUIC_CRYPTO_IV_LEN);
	if (!err)
		err = quic_hkdf_expand_label(hmac, secret, slen, v->hp, k->hp,
					     ci->key_len);
	if (!err)
		err = quic_hkdf_expand_label(hmac, secret, slen, v->ku, k->ku,
					     slen);
	return err;
}

/* RFC 9001 Section 5.2: client and server Initial secrets from the DCID. */
static int quic_initial_derive(struct crypto_shash *hmac,
			       const struct quic_version_info *v,
			       const u8 *dcid, u8 dcid_len, u8 *client,
			       u8 *server)
{
	u8 prk[QUIC_INITIAL_SECRET_LEN];
	int err;

	err = quic_hkdf_extract(hmac, v->salt, QUIC_INITIAL_SALT_LEN, dcid,
				dcid_len, prk);
	if (!err)
		err = quic_hkdf_expand_label(hmac, prk, sizeof(prk), "client in",
					     client, QUIC_INITIAL_SECRET_LEN);
	if (!err)
		err = quic_hkdf_expand_label(hmac, prk, sizeof(prk), "server in",
					     server, QUIC_INITIAL_SECRET_LEN);
	memzero_explicit(prk, sizeof(prk));
	return err;
}

static struct quic_crypto_km *quic_km_next(struct quic_crypto_dir *d)
{
	return &d->km[(d->cur + 1) % d->nkm];
}

static struct quic_crypto_km *quic_km_prev(struct quic_crypto_dir *d)
{
	return &d->km[(d->cur + d->nkm - 1) % d->nkm];
}

static int quic_aead_alloc(const char *name, u32 mask,
			   struct crypto_aead **tfm, struct aead_request **req)
{
	struct crypto_aead *t;
	int err;

	t = crypto_alloc_aead(name, 0, mask);
	if (IS_ERR(t))
		return PTR_ERR(t);
	*tfm = t;
	err = crypto_aead_setauthsize(t, QUIC_CRYPTO_TAG_LEN);
	if (err)
		return err;
	*req = aead_request_alloc(t, GFP_KERNEL);
	if (!*req)
		return -ENOMEM;
	aead_request_set_callback(*req, 0, NULL, NULL);
	return 0;
}

static bool quic_aead_async(struct crypto_aead *tfm)
{
	return crypto_aead_tfm(tfm)->__crt_alg->cra_flags & CRYPTO_ALG_ASYNC;
}

/*
 * The fastest AEAD implementations (x86 AES-NI/VAES GCM) are registered
 * behind the asynchronous SIMD wrapper of crypto/simd.c: it runs the
 * implementation synchronously when SIMD registers are usable and no
 * request of its own waits in cryptd, and defers to cryptd otherwise.
 * Each request here is handed to it only while crypto_simd_usable(), so
 * nothing ever reaches its cryptd queue and it always completes inline; in
 * the other (rare) contexts the synchronous @tfm_sync does the work.
 */
static int quic_km_alloc(struct quic_crypto_km *km,
			 const struct quic_cipher *ci)
{
	int err;

	err = quic_aead_alloc(ci->aead, 0, &km->tfm, &km->req);
	if (err || !quic_aead_async(km->tfm))
		return err;
	return quic_aead_alloc(ci->aead, CRYPTO_ALG_ASYNC, &km->tfm_sync,
			       &km->req_sync);
}

static int quic_km_setkey(struct quic_crypto_km *km, const u8 *key, u32 len)
{
	int err;

	err = crypto_aead_setkey(km->tfm, key, len);
	if (!err && km->tfm_sync)
		err = crypto_aead_setkey(km->tfm_sync, key, len);
	return err;
}

/* Forget the keys of a slot that can no longer be keyed (atomic context). */
static void quic_km_wipe(struct quic_crypto_km *km)
{
	km->ready = false;
	memzero_explicit(km->secret, sizeof(km->secret));
	memzero_explicit(km->iv, sizeof(km->iv));
}

static void quic_km_free(struct quic_crypto_km *km)
{
	aead_request_free(km->req);
	if (km->tfm)
		crypto_free_aead(km->tfm);
	aead_request_free(km->req_sync);
	if (km->tfm_sync)
		crypto_free_aead(km->tfm_sync);
	memzero_explicit(km, sizeof(*km));
}

static int quic_km_set(struct quic_crypto_km *km, const struct quic_cipher *ci,
		       const u8 *secret, const struct quic_crypto_keys *k)
{
	int err;

	km->ready = false;
	err = quic_km_setkey(km, k->key, ci->key_len);
	if (err)
		return err;
	memcpy(km->iv, k->iv, QUIC_CRYPTO_IV_LEN);
	memcpy(km->secret, secret, ci->secret_len);
	km->ready = true;
	return 0;
}

/* RFC 9001 Section 6.3: a spare slot fails like a real key would. */
static int quic_km_set_random(struct quic_crypto_km *km,
			      const struct quic_cipher *ci)
{
	u8 key[QUIC_CRYPTO_KEY_MAX_LEN];
	int err;

	get_random_bytes(key, ci->key_len);
	err = quic_km_setkey(km, key, ci->key_len);
	memzero_explicit(key, sizeof(key));
	quic_km_wipe(km);
	return err;
}

static int quic_hp_alloc(struct quic_crypto_dir *d,
			 const struct quic_cipher *ci, const u8 *key)
{
	struct crypto_sync_skcipher *tfm;

	if (!ci->chacha_hp)
		return aes_expandkey(&d->scratch->hp_aes, key, ci->key_len);
	tfm = crypto_alloc_sync_skcipher(ci->hp, 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	d->hp = tfm;
	return crypto_sync_skcipher_setkey(tfm, key, ci->key_len);
}

static void quic_dir_free(struct quic_crypto_dir *d)
{
	int i;

	for (i = 0; i < QUIC_CRYPTO_KM_MAX; i++)
		quic_km_free(&d->km[i]);
	if (d->hp)
		crypto_free_sync_skcipher(d->hp);
	kfree_sensitive(d->scratch);
	memzero_explicit(d, sizeof(*d));
}

/*
 * RFC 9001 Section 6.1: secret_<n+1> = HKDF-Expand-Label(secret_<n>,
 * "quic ku", "", Hash.length); its key and IV go to the next slot.  The
 * header protection key is not updated.
 */
static int quic_dir_arm_next(struct quic_crypto_dir *d,
			     struct crypto_shash *hmac)
{
	const struct quic_version_info *v = quic_version_get(d->version);
	struct quic_crypto_km *next = quic_km_next(d);
	const struct quic_cipher *ci = d->cipher;
	u8 secret[QUIC_CRYPTO_SECRET_MAX_LEN];
	struct quic_crypto_keys k;
	int err;

	if (next->ready)
		return 0;
	err = quic_hkdf_expand_label(hmac, d->km[d->cur].secret,
				     ci->secret_len, v->ku, secret,
				     ci->secret_len);
	if (!err)
		err = quic_keys_derive(hmac, ci, v, secret, &k);
	if (!err)
		err = quic_km_set(next, ci, secret, &k);
	memzero_explicit(secret, sizeof(secret));
	memzero_explicit(&k, sizeof(k));
	return err;
}

static int quic_dir_setup(struct quic_crypto_dir *d,
			  const struct quic_cipher *ci,
			  const struct quic_crypto_keys *k, const u8 *secret)
{
	int err, i;

	d->scratch = kzalloc(sizeof(*d->scratch), GFP_KERNEL);
	if (!d->scratch)
		return -ENOMEM;
	err = quic_hp_alloc(d, ci, k->hp);
	for (i = 0; !err && i < d->nkm; i++)
		err = quic_km_alloc(&d->km[i], ci);
	if (!err)
		err = quic_km_set(&d->km[0], ci, secret, k);
	for (i = 1; !err && i < d->nkm; i++)
		err = quic_km_set_random(&d->km[i], ci);
	return err;
}

/* Install the keys of one direction; nkm > 1 for 1-RTT key updates. */
static int quic_dir_install(struct quic_crypto_dir *d,
			    const struct quic_cipher *ci,
			    const struct quic_version_info *v,
			    struct crypto_shash *hmac, const u8 *secret, u8 nkm)
{
	struct quic_crypto_keys k;
	int err;

	quic_dir_free(d);
	d->cipher = ci;
	d->version = v->number;
	d->nkm = nkm;
	d->first_pn = -1;
	d->updated = false;
	err = quic_keys_derive(hmac, ci, v, secret, &k);
	if (!err)
		err = quic_dir_setup(d, ci, &k, secret);
	if (!err && nkm > 1)
		err = quic_dir_arm_next(d, hmac);
	memzero_explicit(&k, sizeof(k));
	if (err)
		quic_dir_free(d);
	return err;
}

/* Move to the next key generation; the slot freed up is re-armed later. */
static void quic_dir_rotate(struct quic_crypto_dir *d)
{
	d->cur = (d->cur + 1) % d->nkm;
	d->phase ^= 1;
	d->first_pn = -1;
	d->updated = true;
	quic_km_wipe(quic_km_next(d));
}

static int quic_dir_prepare(struct quic_crypto_dir *d)
{
	struct crypto_shash *hmac;
	int err;

	if (!d->cipher || d->nkm < 2 || quic_km_next(d)->ready)
		return 0;
	hmac = crypto_alloc_shash(d->cipher->hmac, 0, 0);
	if (IS_ERR(hmac))
		return PTR_ERR(hmac);
	err = quic_dir_arm_next(d, hmac);
	crypto_free_shash(hmac);
	return err;
}

/* RFC 9001 Section 5.3: nonce = iv XOR packet number, left-padded. */
static u8 *quic_nonce(struct quic_crypto_dir *d, const struct quic_crypto_km *km,
		      s64 pn)
{
	u8 *n = d->scratch->nonce;
	int i;

	if (d->cipher->ccm) {
		memset(n, 0, QUIC_NONCE_BUF_LEN);
		*n++ = QUIC_CCM_L_PRIME;
	}
	memcpy(n, km->iv, QUIC_CRYPTO_IV_LEN);
	for (i = 0; i < 8; i++)	/* 62-bit pn, big endian, right-aligned */
		n[QUIC_CRYPTO_IV_LEN - 1 - i] ^= (u8)(pn >> (8 * i));
	return d->scratch->nonce;
}

/* AEAD over sg: associated data is the header, then payload (and tag). */
static int quic_aead_crypt(struct quic_crypto_dir *d, struct quic_crypto_km *km,
			   struct scatterlist *sg, u32 assoclen, u32 cryptlen,
			   s64 pn, bool enc)
{
	struct aead_request *req = km->req;

	if (km->req_sync && !crypto_simd_usable())
		req = km->req_sync;
	aead_request_set_ad(req, assoclen);
	aead_request_set_crypt(req, sg, sg, cryptlen, quic_nonce(d, km, pn));
	return enc ? crypto_aead_encrypt(req) : crypto_aead_decrypt(req);
}

static int quic_hp_crypt(struct crypto_sync_skcipher *tfm,
			 struct scatterlist *src, struct scatterlist *dst,
			 u32 len, u8 *iv)
{
	SYNC_SKCIPHER_REQUEST_ON_STACK(req, tfm);

	skcipher_request_set_sync_tfm(req, tfm);
	skcipher_request_set_callback(req, 0, NULL, NULL);
	skcipher_request_set_crypt(req, src, dst, len, iv);
	return crypto_skcipher_encrypt(req);
}

/*
 * RFC 9001 Section 5.4.3: mask = AES-ECB(hp_key, sample).
 * RFC 9001 Section 5.4.4: mask = ChaCha20(hp_key, counter = sample[0..3],
 * nonce = sample[4..15], {0,0,0,0,0}); the kernel's chacha20 takes exactly
 * that layout as its 16-byte IV.
 */
static int quic_hp_mask(struct quic_crypto_dir *d)
{
	struct quic_crypto_scratch *s = d->scratch;
	struct scatterlist out;

	if (d->cipher->chacha_hp) {
		memset(s->mask, 0, QUIC_HP_MASK_LEN);
		sg_init_one(&out, s->mask, QUIC_HP_MASK_LEN);
		return quic_hp_crypt(d->hp, &out, &out, QUIC_HP_MASK_LEN,
				     s->sample);
	}
	aes_encrypt(&s->hp_aes, s->mask, s->sample);
	return 0;
}

static bool quic_hdr_is_long(u8 first)
{
	return first & QUIC_HDR_FORM_LONG;
}

static u8 quic_hdr_pn_len(u8 first)
{
	return (first & QUIC_HDR_PN_LEN_MASK) + 1;
}

static u8 quic_hp_first_bits(u8 first)
{
	return quic_hdr_is_long(first) ? QUIC_HP_BITS_LONG : QUIC_HP_BITS_SHORT;
}

/* RFC 9001 Section 5.4.1, applied after the payload is sealed. */
static int quic_hp_apply(struct quic_crypto_dir *d, u8 *hdr, u32 pn_offset)
{
	const u8 *mask = d->scratch->mask;
	u8 i, pn_len = quic_hdr_pn_len(hdr[0]);
	int err;

	err = quic_hp_mask(d);
	if (err)
		return err;
	hdr[0] ^= mask[0] & quic_hp_first_bits(hdr[0]);
	for (i = 0; i < pn_len; i++)
		hdr[pn_offset + i] ^= mask[1 + i];
	return 0;
}

/* RFC 9001 Section 5.4.1, removal: the PN length is only known after. */
static int quic_hp_remove(struct quic_crypto_dir *d, u8 *hdr, u32 pn_offset,
			  u8 *pn_len, u32 *truncated)
{
	const u8 *mask = d->scratch->mask;
	int err;
	u8 i;

	err = quic_hp_mask(d);
	if (err)
		return err;
	hdr[0] ^= mask[0] & quic_hp_first_bits(hdr[0]);
	*pn_len = quic_hdr_pn_len(hdr[0]);
	*truncated = 0;
	for (i = 0; i < *pn_len; i++) {
		hdr[pn_offset + i] ^= mask[1 + i];
		*truncated = (*truncated << 8) | hdr[pn_offset + i];
	}
	return 0;
}

/* RFC 9001 Section 5.4.2: the packet must hold a whole sample. */
static int quic_pkt_check(u32 len, u32 pn_offset)
{
	if (!pn_offset || pn_offset > len ||
	    len - pn_offset < QUIC_CRYPTO_SAMPLE_OFFSET + QUIC_CRYPTO_SAMPLE_LEN)
		return -EINVAL;
	return 0;
}

static void quic_tx_rotate(struct quic_crypto *c)
{
	quic_dir_rotate(&c->tx);
	c->tx.count = 0;
}

/* Seal the payload in place and set the Key Phase bit of short headers. */
static int quic_encrypt_payload(struct quic_crypto *c, u8 *hdr,
				struct scatterlist *sg, u32 len, u32 pn_offset,
				s64 pn)
{
	struct quic_crypto_dir *d = &c->tx;
	u32 hdr_len;
	int err;

	if (pn < 0 || pn > QUIC_PN_MAX)
		return -EINVAL;
	/* RFC 9001 Section 6.6: stop using a key at its confidentiality limit */
	if (d->count >= d->cipher->conf_limit)
		return -EKEYEXPIRED;
	if (!quic_hdr_is_long(hdr[0]) && c->key_update) {
		hdr[0] &= ~QUIC_HDR_KEY_PHASE;
		hdr[0] |= d->phase ? QUIC_HDR_KEY_PHASE : 0;
	}
	hdr_len = pn_offset + quic_hdr_pn_len(hdr[0]);
	err = quic_aead_crypt(d, &d->km[d->cur], sg, hdr_len,
			      len - hdr_len - QUIC_CRYPTO_TAG_LEN, pn, true);
	if (err)
		return err;
	d->count++;
	if (d->first_pn < 0)
		d->first_pn = pn;
	return 0;
}

/* RFC 9001 Section 6.6: count forgeries against the integrity limit. */
static int quic_rx_result(struct quic_crypto_dir *d, int err)
{
	if (err != -EBADMSG)
		return err;
	if (++d->count >= d->cipher->integ_limit)
		return -EKEYEXPIRED;
	return err;
}

/*
 * A peer's key update can be followed if our send keys are already ahead
 * (we initiated, this packet confirms) or the next send keys are ready.
 */
static bool quic_tx_can_follow(struct quic_crypto *c)
{
	return c->tx.phase != c->rx.phase || quic_km_next(&c->tx)->ready;
}

/* RFC 9001 Section 6.2: next keys opened a packet, so the phase changed. */
static void quic_rx_key_phase_changed(struct quic_crypto *c,
				      struct quic_crypto_rx_info *info)
{
	quic_dir_rotate(&c->rx);
	c->rx.first_pn = info->pn;
	if (c->tx.phase == c->rx.phase) {
		info->key_event = QUIC_CRYPTO_KEY_CONFIRMED;
		return;
	}
	quic_tx_rotate(c);
	info->key_event = QUIC_CRYPTO_KEY_PEER_UPDATE;
}

/*
 * RFC 9001 Sections 6.3 and 6.5: the Key Phase bit and the packet number
 * select the current, previous or next keys.  Exactly one AEAD open is tried
 * whatever the choice, and a slot that is not ready holds a stale or random
 * key, so a wrong Key Phase bit costs the same time as a forged packet.
 */
static int quic_decrypt_1rtt(struct quic_crypto *c, u8 first,
			     struct scatterlist *sg, u32 hdr_len, u32 cryptlen,
			     struct quic_crypto_rx_info *info)
{
	struct quic_crypto_dir *d = &c->rx;
	struct quic_crypto_km *km;
	bool next = false, usable;
	int err;

	if (!!(first & QUIC_HDR_KEY_PHASE) == d->phase) {
		km = &d->km[d->cur];
	} else if (d->first_pn >= 0 && info->pn < d->first_pn) {
		km = quic_km_prev(d);
	} else {
		km = quic_km_next(d);
		next = true;
	}
	usable = km->ready && (!next || quic_tx_can_follow(c));
	err = quic_aead_crypt(d, km, sg, hdr_len, cryptlen, info->pn, false);
	err = quic_rx_result(d, err);
	if (err)
		return err;
	if (!usable)
		return -EKEYREJECTED;
	if (next)
		quic_rx_key_phase_changed(c, info);
	else if (km == &d->km[d->cur] &&
		 (d->first_pn < 0 || info->pn < d->first_pn))
		d->first_pn = info->pn;
	return 0;
}

/**
 * quic_pn_decode() - full packet number from its truncated encoding
 * @largest_pn: largest packet number processed in the space, -1 if none
 * @truncated_pn: value of the Packet Number field
 * @pn_nbits: its length in bits: 8, 16, 24 or 32
 *
 * RFC 9000 Appendix A.3: the candidate closest to largest_pn + 1.
 *
 * Return: the packet number, or -EINVAL for a bad @pn_nbits.
 */
VISIBLE_IF_KUNIT s64 quic_pn_decode(s64 largest_pn, u32 truncated_pn,
				    u8 pn_nbits)
{
	s64 expected = largest_pn + 1, win, hwin, mask, candidate;

	if (pn_nbits < 8 || pn_nbits > 32 || pn_nbits % 8)
		return -EINVAL;
	win = 1LL << pn_nbits;
	hwin = win / 2;
	mask = win - 1;
	candidate = (expected & ~mask) | (truncated_pn & mask);
	if (candidate <= expected - hwin && candidate < (1LL << 62) - win)
		return candidate + win;
	if (candidate > expected + hwin && candidate >= win)
		return candidate - win;
	return candidate;
}
EXPORT_SYMBOL_IF_KUNIT(quic_pn_decode);

/* Header protection off, packet number recovered, then the AEAD open. */
static int quic_decrypt_sg(struct quic_crypto *c, u8 *hdr,
			   struct scatterlist *sg, u32 len, u32 pn_offset,
			   s64 largest_pn, struct quic_crypto_rx_info *info)
{
	struct quic_crypto_dir *d = &c->rx;
	u32 truncated, hdr_len;
	int err;

	info->key_event = QUIC_CRYPTO_KEY_NONE;
	err = quic_hp_remove(d, hdr, pn_offset, &info->pn_len, &truncated);
	if (err)
		return err;
	info->pn = quic_pn_decode(largest_pn, truncated, info->pn_len * 8);
	if (info->pn < 0 || info->pn > QUIC_PN_MAX)
		return -EINVAL;
	hdr_len = pn_offset + info->pn_len;
	if (!quic_hdr_is_long(hdr[0]) && c->key_update)
		return quic_decrypt_1rtt(c, hdr[0], sg, hdr_len, len - hdr_len,
					 info);
	err = quic_aead_crypt(d, &d->km[d->cur], sg, hdr_len, len - hdr_len,
			      info->pn, false);
	return quic_rx_result(d, err);
}

static int quic_rx_check(struct quic_crypto *c, u32 len, u32 pn_offset,
			 s64 largest_pn)
{
	if (!quic_crypto_recv_ready(c))
		return -ENOKEY;
	if (largest_pn < -1 || largest_pn > QUIC_PN_MAX)
		return -EINVAL;
	return quic_pkt_check(len, pn_offset);
}

/**
 * quic_crypto_encrypt() - protect a packet held in a linear buffer
 * @c: crypto state of the packet's encryption level
 * @pkt: the packet: header with the truncated packet number written in
 *	plain, then the plaintext payload, then QUIC_CRYPTO_TAG_LEN bytes
 *	of room for the tag; must not be on the stack (scatterlist)
 * @len: length of the whole packet, tag included
 * @pn_offset: offset of the Packet Number field; its length is taken from
 *	the low two bits of @pkt[0]
 * @pn: full packet number (RFC 9001 Section 5.3 nonce)
 *
 * Seals the payload in place with the header as associated data, then
 * applies header protection (RFC 9001 Sections 5.3 and 5.4).  For a short
 * header at the 1-RTT level the Key Phase bit is set from the current keys.
 * The caller pads so that @len >= QUIC_CRYPTO_MIN_PKT_LEN(@pn_offset).
 * Never sleeps.
 *
 * Return: 0, -ENOKEY without send keys, -EINVAL for a bad length or packet
 * number, -EKEYEXPIRED at the AEAD confidentiality limit (RFC 9001
 * Section 6.6: update keys), or a crypto API error.
 */
int quic_crypto_encrypt(struct quic_crypto *c, u8 *pkt, u32 len,
			u32 pn_offset, s64 pn)
{
	struct scatterlist sg;
	int err;

	if (!quic_crypto_send_ready(c))
		return -ENOKEY;
	err = quic_pkt_check(len, pn_offset);
	if (err)
		return err;
	sg_init_one(&sg, pkt, len);
	err = quic_encrypt_payload(c, pkt, &sg, len, pn_offset, pn);
	if (err)
		return err;
	memcpy(c->tx.scratch->sample, pkt + pn_offset + QUIC_CRYPTO_SAMPLE_OFFSET,
	       QUIC_CRYPTO_SAMPLE_LEN);
	return quic_hp_apply(&c->tx, pkt, pn_offset);
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_encrypt);

/**
 * quic_crypto_decrypt() - remove protection from a packet in a linear buffer
 * @c: crypto state of the packet's encryption level
 * @pkt: the protected packet; must not be on the stack (scatterlist)
 * @len: length of this packet (for a long header: up to the end of the
 *	Length field's payload, not the rest of the datagram)
 * @pn_offset: offset of the Packet Number field
 * @largest_pn: largest packet number successfully processed in this
 *	packet number space, -1 if none
 * @info: filled with the packet number, its length and key phase changes
 *
 * Removes header protection, recovers the full packet number
 * (RFC 9000 Appendix A.3) and opens the payload in place.  On success the
 * plaintext header is at @pkt[0 .. @pn_offset + @info->pn_len) and the
 * payload follows, QUIC_CRYPTO_TAG_LEN bytes shorter than the ciphertext;
 * the caller still has to check the reserved bits (RFC 9000 Section 17).
 * On any error the packet must be dropped: its bytes may have changed, but
 * the crypto state has not.  Never sleeps.
 *
 * Return: 0; -ENOKEY without receive keys (buffer the packet);
 * -EINVAL for a malformed packet; -EBADMSG when authentication fails;
 * -EKEYREJECTED when the packet authenticated only with keys that may not
 * be used (drop it); -EKEYEXPIRED when the AEAD integrity limit is reached
 * (close with AEAD_LIMIT_REACHED, RFC 9001 Section 6.6).
 */
int quic_crypto_decrypt(struct quic_crypto *c, u8 *pkt, u32 len,
			u32 pn_offset, s64 largest_pn,
			struct quic_crypto_rx_info *info)
{
	struct scatterlist sg;
	int err;

	err = quic_rx_check(c, len, pn_offset, largest_pn);
	if (err)
		return err;
	memcpy(c->rx.scratch->sample, pkt + pn_offset + QUIC_CRYPTO_SAMPLE_OFFSET,
	       QUIC_CRYPTO_SAMPLE_LEN);
	sg_init_one(&sg, pkt, len);
	return quic_decrypt_sg(c, pkt, &sg, len, pn_offset, largest_pn, info);
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_decrypt);

/**
 * quic_crypto_open_plain() - read a 1-RTT packet sent without protection
 * @c: crypto state of the 1-RTT level
 * @pkt: the packet, header in clear
 * @len: its length, the unused tag included
 * @pn_offset: offset of the Packet Number field
 * @largest_pn: largest packet number processed in the space, -1 if none
 * @info: filled as quic_crypto_decrypt() fills it
 *
 * draft-banks-quic-disable-encryption: when both ends offered the
 * disable_1rtt_encryption transport parameter, 1-RTT packets carry neither
 * header protection nor an encrypted payload.  Their last
 * QUIC_CRYPTO_TAG_LEN bytes are kept (zero, never checked), so that the
 * packet layout does not change.  The receive keys must still be installed:
 * before that the handshake is not over and the packet waits.  Never
 * sleeps.
 *
 * Return: 0, -ENOKEY without receive keys, -EINVAL for a short packet.
 */
int quic_crypto_open_plain(struct quic_crypto *c, const u8 *pkt, u32 len,
			   u32 pn_offset, s64 largest_pn,
			   struct quic_crypto_rx_info *info)
{
	u32 i, pn = 0;
	int err;

	err = quic_rx_check(c, len, pn_offset, largest_pn);
	if (err)
		return err;
	info->pn_len = (pkt[0] & 0x03) + 1;
	info->key_event = QUIC_CRYPTO_KEY_NONE;
	if (len < pn_offset + info->pn_len + QUIC_CRYPTO_TAG_LEN)
		return -EINVAL;
	for (i = 0; i < info->pn_len; i++)
		pn = (pn << 8) | pkt[pn_offset + i];
	info->pn = quic_pn_decode(largest_pn, pn, info->pn_len * 8);
	if (info->pn < 0 || info->pn > QUIC_PN_MAX)
		return -EINVAL;
	return 0;
}

/**
 * quic_crypto_key_update_prepare() - derive the next 1-RTT key generation
 * @c: crypto state of the 1-RTT level
 *
 * Arms the next send and receive keys where they are not ready (RFC 9001
 * Section 6.3: next receive keys are kept ready, so packet processing never
 * derives keys).  Call it after every QUIC_CRYPTO_KEY_PEER_UPDATE or
 * QUIC_CRYPTO_KEY_CONFIRMED event.  Does nothing at other levels.
 * Process context: may sleep.
 *
 * Return: 0 or a negative error from the crypto API.
 */
int quic_crypto_key_update_prepare(struct quic_crypto *c)
{
	int err;

	might_sleep();
	if (!c->key_update)
		return 0;
	err = quic_dir_prepare(&c->tx);
	if (!err)
		err = quic_dir_prepare(&c->rx);
	return err;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_key_update_prepare);

/**
 * quic_crypto_key_update() - initiate a 1-RTT key update
 * @c: crypto state of the 1-RTT level
 *
 * RFC 9001 Section 6.1: switches the send keys to the next generation and
 * toggles the Key Phase bit of the packets sent from now on.  The receive
 * keys follow when the peer's first packet in the new phase arrives
 * (QUIC_CRYPTO_KEY_CONFIRMED).  The caller checks the conditions only it
 * knows: the handshake is confirmed and, after an earlier update
 * (quic_crypto_tx_updated()), a packet sent with the current keys was
 * acknowledged (see quic_crypto_tx_first_pn()).
 * Process context: may sleep.
 *
 * Return: 0; -EINVAL if not the 1-RTT level; -ENOKEY without keys in both
 * directions; -EAGAIN while the previous update is not confirmed.
 */
int quic_crypto_key_update(struct quic_crypto *c)
{
	int err;

	might_sleep();
	if (!c->key_update)
		return -EINVAL;
	if (!quic_crypto_send_ready(c) || !quic_crypto_recv_ready(c))
		return -ENOKEY;
	if (c->tx.phase != c->rx.phase)
		return -EAGAIN;
	err = quic_crypto_key_update_prepare(c);
	if (err)
		return err;
	quic_tx_rotate(c);
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_key_update);

/**
 * quic_crypto_discard_old_keys() - drop the previous 1-RTT receive keys
 * @c: crypto state of the 1-RTT level
 *
 * RFC 9001 Section 6.5: old receive keys should go about three PTOs after
 * the first packet with new keys was opened.  Packets still using them are
 * then rejected.  Any context.
 */
void quic_crypto_discard_old_keys(struct quic_crypto *c)
{
	if (c->key_update && c->rx.nkm > 2)
		quic_km_wipe(quic_km_prev(&c->rx));
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_discard_old_keys);

/**
 * quic_crypto_initial_keys_install() - derive and install Initial keys
 * @c: crypto state of the Initial level
 * @dcid: Destination Connection ID of the client's first Initial packet
 *	(or the SCID of a Retry, RFC 9001 Section 5.2)
 * @dcid_len: its length, 0..20
 * @version: QUIC version; unknown versions get the version 1 salt
 * @is_server: install the server's send keys, not the client's
 *
 * RFC 9001 Section 5.2: initial_secret = HKDF-Extract(initial_salt, dcid);
 * the "client in" and "server in" secrets protect the two directions with
 * AEAD_AES_128_GCM.  Replaces keys installed before (after a Retry or a
 * version change).  Process context: may sleep.
 *
 * Return: 0, -EINVAL for a bad length, or a negative error from the crypto
 * API; on error @c holds no Initial keys.
 */
int quic_crypto_initial_keys_install(struct quic_crypto *c, const u8 *dcid,
				     u8 dcid_len, u32 version, bool is_server)
{
	const struct quic_cipher *ci = quic_cipher_get(TLS_CIPHER_AES_GCM_128);
	const struct quic_version_info *v = quic_version_get(version);
	u8 secret[2][QUIC_INITIAL_SECRET_LEN];	/* client, server */
	struct crypto_shash *hmac;
	int err;

	might_sleep();
	if (dcid_len > QUIC_CRYPTO_CID_MAX_LEN)
		return -EINVAL;
	hmac = crypto_alloc_shash(ci->hmac, 0, 0);
	if (IS_ERR(hmac))
		return PTR_ERR(hmac);
	c->key_update = false;
	err = quic_initial_derive(hmac, v, dcid, dcid_len, secret[0],
				  secret[1]);
	if (!err)
		err = quic_dir_install(&c->tx, ci, v, hmac, secret[is_server], 1);
	if (!err)
		err = quic_dir_install(&c->rx, ci, v, hmac, secret[!is_server], 1);
	if (err)
		quic_crypto_destroy(c);
	memzero_explicit(secret, sizeof(secret));
	crypto_free_shash(hmac);
	return err;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_initial_keys_install);

/**
 * quic_crypto_set_secret() - install keys from a TLS traffic secret
 * @c: crypto state of @level
 * @secret: TLS traffic secret, 32 or 48 bytes depending on @cipher_type
 * @cipher_type: TLS_CIPHER_AES_GCM_128, _AES_GCM_256, _AES_CCM_128 or
 *	_CHACHA20_POLY1305 (51..54)
 * @level: enum quic_crypto_level; QUIC_CRYPTO_APP enables the Key Phase
 *	bit and key updates, with the next generation derived at once
 * @send: install the send keys, not the receive keys
 * @version: QUIC version, selects the HKDF labels (RFC 9369 Section 3.3.2)
 *
 * RFC 9001 Section 5.1: derives the AEAD key, IV and header protection key
 * and installs them for one direction, replacing keys installed before.
 * Temporaries are wiped; the caller wipes @secret.
 * Process context: may sleep.
 *
 * Return: 0, -EINVAL for an unknown cipher type or level, or a negative
 * error from the crypto API; on error the direction holds no keys.
 */
int quic_crypto_set_secret(struct quic_crypto *c, const u8 *secret,
			   u32 cipher_type, u8 level, bool send, u32 version)
{
	const struct quic_cipher *ci = quic_cipher_get(cipher_type);
	const struct quic_version_info *v = quic_version_get(version);
	struct quic_crypto_dir *d = send ? &c->tx : &c->rx;
	bool app = level == QUIC_CRYPTO_APP;
	struct crypto_shash *hmac;
	int err;

	might_sleep();
	if (!ci || !secret || level >= QUIC_CRYPTO_MAX)
		return -EINVAL;
	hmac = crypto_alloc_shash(ci->hmac, 0, 0);
	if (IS_ERR(hmac))
		return PTR_ERR(hmac);
	c->key_update = app;
	err = quic_dir_install(d, ci, v, hmac, secret, !app ? 1 : send ? 2 : 3);
	crypto_free_shash(hmac);
	return err;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_set_secret);

/**
 * quic_crypto_destroy() - free transforms and wipe all keys
 * @c: crypto state, possibly zeroed or partially set up
 *
 * Used when a connection goes away and when keys of a level are discarded
 * (RFC 9001 Section 4.9).  @c is left zeroed and may be installed again.
 * Process context (frees transforms).
 */
void quic_crypto_destroy(struct quic_crypto *c)
{
	quic_dir_free(&c->tx);
	quic_dir_free(&c->rx);
	c->key_update = false;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_destroy);

static int quic_retry_crypt(struct crypto_aead *tfm, u8 *buf, u32 alen,
			    u8 *nonce)
{
	struct aead_request *req;
	struct scatterlist sg;
	int err;

	req = aead_request_alloc(tfm, GFP_ATOMIC);
	if (!req)
		return -ENOMEM;
	sg_init_one(&sg, buf, alen + QUIC_CRYPTO_RETRY_TAG_LEN);
	aead_request_set_callback(req, 0, NULL, NULL);
	aead_request_set_ad(req, alen);
	aead_request_set_crypt(req, &sg, &sg, 0, nonce);
	err = crypto_aead_encrypt(req);
	aead_request_free(req);
	return err;
}

/**
 * quic_crypto_retry_tag() - compute a Retry Integrity Tag
 * @version: QUIC version of the Retry packet
 * @odcid: Original Destination Connection ID (the client's first DCID)
 * @odcid_len: its length, 0..20
 * @pkt: the Retry packet without its tag
 * @len: length of @pkt
 * @tag: QUIC_CRYPTO_RETRY_TAG_LEN bytes of output
 *
 * RFC 9001 Section 5.8 (RFC 9369 Section 3.3.3 for version 2): the tag of
 * AEAD_AES_128_GCM with fixed key and nonce over the Retry Pseudo-Packet
 * (ODCID length, ODCID, Retry packet) as associated data and an empty
 * plaintext.  Any context.
 *
 * Return: 0, -EINVAL for bad lengths, -ENOKEY before quic_crypto_init(),
 * -ENOMEM.
 */
int quic_crypto_retry_tag(u32 version, const u8 *odcid, u8 odcid_len,
			  const u8 *pkt, u32 len, u8 *tag)
{
	u32 i = quic_version_index(version), alen = 1 + odcid_len + len;
	struct crypto_aead *tfm = quic_retry_tfm[i];
	u8 *buf, *nonce;
	int err;

	if (odcid_len > QUIC_CRYPTO_CID_MAX_LEN || len > QUIC_RETRY_MAX_LEN)
		return -EINVAL;
	if (!tfm)
		return -ENOKEY;
	buf = kmalloc(alen + QUIC_CRYPTO_RETRY_TAG_LEN + QUIC_CRYPTO_IV_LEN,
		      GFP_ATOMIC);
	if (!buf)
		return -ENOMEM;
	buf[0] = odcid_len;
	memcpy(buf + 1, odcid, odcid_len);
	memcpy(buf + 1 + odcid_len, pkt, len);
	nonce = buf + alen + QUIC_CRYPTO_RETRY_TAG_LEN;
	memcpy(nonce, quic_versions[i].retry_nonce, QUIC_CRYPTO_IV_LEN);
	err = quic_retry_crypt(tfm, buf, alen, nonce);
	if (!err)
		memcpy(tag, buf + alen, QUIC_CRYPTO_RETRY_TAG_LEN);
	kfree(buf);
	return err;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_retry_tag);

/**
 * quic_crypto_ticket_key() - a server's default session ticket key
 * @secret: the listener's random secret, @secret_len bytes
 * @secret_len: its length
 * @peer: the peer's IP address (4 or 16 bytes; the port is not part of it)
 * @peer_len: its length
 * @key: set to @key_len bytes
 * @key_len: length of the key, at most 255 * 32
 *
 * ABI reference Section 3 (SESSION_TICKET): a key that is the same for every
 * connection from one client address to one listener, so that the TLS
 * library of the server can open a ticket it issued on an earlier
 * connection, and different for other addresses and listeners:
 * HKDF-Extract(@secret, @peer) with SHA-256, then HKDF-Expand-Label(PRK,
 * "session_ticket", "", @key_len) (RFC 5869, RFC 8446 Section 7.1).
 * Process context: may sleep.
 *
 * Return: 0, -ENOMEM, or an error of the crypto API.
 */
int quic_crypto_ticket_key(const u8 *secret, u32 secret_len, const u8 *peer,
			   u32 peer_len, u8 *key, u32 key_len)
{
	struct crypto_shash *hmac;
	u8 prk[SHA256_DIGEST_SIZE];
	int err;

	might_sleep();
	hmac = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(hmac))
		return PTR_ERR(hmac);
	err = quic_hkdf_extract(hmac, secret, secret_len, peer, peer_len, prk);
	if (!err)
		err = quic_hkdf_expand_label(hmac, prk, sizeof(prk),
					     "session_ticket", key, key_len);
	memzero_explicit(prk, sizeof(prk));
	crypto_free_shash(hmac);
	return err;
}

/**
 * quic_crypto_retry_verify() - check the Retry Integrity Tag of a packet
 * @version: QUIC version of the Retry packet
 * @odcid: DCID of the Initial packet the client sent
 * @odcid_len: its length, 0..20
 * @pkt: the whole Retry packet, tag included
 * @len: length of @pkt
 *
 * RFC 9001 Section 5.8; the comparison is constant time.  Any context.
 *
 * Return: 0 if the tag is valid, -EBADMSG if not, -EINVAL if @pkt is too
 * short, or an error from quic_crypto_retry_tag().
 */
int quic_crypto_retry_verify(u32 version, const u8 *odcid, u8 odcid_len,
			     const u8 *pkt, u32 len)
{
	u8 tag[QUIC_CRYPTO_RETRY_TAG_LEN];
	int err;

	if (len < QUIC_CRYPTO_RETRY_TAG_LEN)
		return -EINVAL;
	len -= QUIC_CRYPTO_RETRY_TAG_LEN;
	err = quic_crypto_retry_tag(version, odcid, odcid_len, pkt, len, tag);
	if (!err && crypto_memneq(tag, pkt + len, QUIC_CRYPTO_RETRY_TAG_LEN))
		err = -EBADMSG;
	return err;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_retry_verify);

/*
 * A client's Initial opened in any context, before any state is kept for it
 * (a listener's receive path).  Initial keys come from the Destination ID
 * on the wire and protect nothing secret (RFC 9001 Section 5.2), so plain
 * library code does: HMAC-SHA256 over the SHA-256 library, AES-128 from the
 * AES library for header protection and the GCM tag.  The payload itself
 * is not deciphered: the GCM tag covers the ciphertext, so checking it
 * needs only GHASH over the bytes as they are, and the packet is left
 * untouched for the connection that opens it again with its own keys.
 */

struct quic_hmac256 {
	struct sha256_state inner;
	u8 okey[SHA256_BLOCK_SIZE];
};

static void quic_hmac256_init(struct quic_hmac256 *h, const u8 *key, u32 len)
{
	u8 k[SHA256_BLOCK_SIZE] = {};
	int i;

	if (len > SHA256_BLOCK_SIZE)
		sha256(key, len, k);
	else
		memcpy(k, key, len);
	for (i = 0; i < SHA256_BLOCK_SIZE; i++) {
		h->okey[i] = k[i] ^ 0x5c;
		k[i] ^= 0x36;
	}
	sha256_init(&h->inner);
	sha256_update(&h->inner, k, sizeof(k));
	memzero_explicit(k, sizeof(k));
}

static void quic_hmac256_final(struct quic_hmac256 *h, u8 *out)
{
	struct sha256_state outer;
	u8 d[SHA256_DIGEST_SIZE];

	sha256_final(&h->inner, d);
	sha256_init(&outer);
	sha256_update(&outer, h->okey, sizeof(h->okey));
	sha256_update(&outer, d, sizeof(d));
	sha256_final(&outer, out);
	memzero_explicit(d, sizeof(d));
	memzero_explicit(h, sizeof(*h));
}

/* HKDF-Expand-Label for outputs of one hash block (RFC 8446 Section 7.1). */
static void quic_lib_expand_label(const u8 *secret, const char *label,
				  u8 *out, u32 out_len)
{
	static const char prefix[] = "tls13 ";
	u8 info[2 + 1 + sizeof(prefix) - 1 + QUIC_LABEL_MAX_LEN + 2];
	u32 plen = sizeof(prefix) - 1, llen = strlen(label), ilen;
	u8 t[SHA256_DIGEST_SIZE];
	struct quic_hmac256 h;

	info[0] = 0;
	info[1] = out_len;
	info[2] = plen + llen;
	memcpy(&info[3], prefix, plen);
	memcpy(&info[3 + plen], label, llen);
	ilen = 3 + plen + llen;
	info[ilen++] = 0;	/* empty context */
	info[ilen++] = 1;	/* T(1) */
	quic_hmac256_init(&h, secret, SHA256_DIGEST_SIZE);
	sha256_update(&h.inner, info, ilen);
	quic_hmac256_final(&h, t);
	memcpy(out, t, out_len);
	memzero_explicit(t, sizeof(t));
}

static u64 quic_get_be64(const u8 *p)
{
	u64 v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void quic_put_be64(u64 v, u8 *p)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (u8)v;
}

/* GHASH (NIST SP 800-38D Section 6.4), one bit at a time: public keys. */
struct quic_ghash {
	u64 h[2];
	u64 y[2];
	u8 buf[AES_BLOCK_SIZE];
	u32 n;
};

static void quic_ghash_block(struct quic_ghash *g, const u8 *b)
{
	u64 x0 = g->y[0] ^ quic_get_be64(b);
	u64 x1 = g->y[1] ^ quic_get_be64(b + 8);
	u64 v0 = g->h[0], v1 = g->h[1], z0 = 0, z1 = 0, lsb;
	int i;

	for (i = 0; i < 128; i++) {
		if ((i < 64 ? x0 >> (63 - i) : x1 >> (127 - i)) & 1) {
			z0 ^= v0;
			z1 ^= v1;
		}
		lsb = v1 & 1;
		v1 = (v1 >> 1) | (v0 << 63);
		v0 >>= 1;
		if (lsb)
			v0 ^= 0xe100000000000000ULL;
	}
	g->y[0] = z0;
	g->y[1] = z1;
}

static void quic_ghash_update(struct quic_ghash *g, const u8 *p, u32 len)
{
	u32 n;

	while (len) {
		if (!g->n && len >= AES_BLOCK_SIZE) {
			quic_ghash_block(g, p);
			p += AES_BLOCK_SIZE;
			len -= AES_BLOCK_SIZE;
			continue;
		}
		n = min(len, AES_BLOCK_SIZE - g->n);
		memcpy(g->buf + g->n, p, n);
		g->n += n;
		p += n;
		len -= n;
		if (g->n == AES_BLOCK_SIZE) {
			quic_ghash_block(g, g->buf);
			g->n = 0;
		}
	}
}

/* Zero padding to the block boundary, between AAD and ciphertext. */
static void quic_ghash_pad(struct quic_ghash *g)
{
	if (!g->n)
		return;
	memset(g->buf + g->n, 0, AES_BLOCK_SIZE - g->n);
	quic_ghash_block(g, g->buf);
	g->n = 0;
}

/* RFC 9001 Section 5.2: the Initial keys of one side ("client in" or
 * "server in") for a client's first Destination Connection ID.
 */
static void quic_lib_initial_keys(const struct quic_version_info *v,
				  const u8 *dcid, u8 dcid_len, const char *side,
				  u8 *key, u8 *iv, u8 *hp)
{
	u8 secret[SHA256_DIGEST_SIZE];
	struct quic_hmac256 h;

	quic_hmac256_init(&h, v->salt, QUIC_INITIAL_SALT_LEN);
	sha256_update(&h.inner, dcid, dcid_len);
	quic_hmac256_final(&h, secret);
	quic_lib_expand_label(secret, side, secret, sizeof(secret));
	quic_lib_expand_label(secret, v->key, key, 16);
	quic_lib_expand_label(secret, v->iv, iv, QUIC_CRYPTO_IV_LEN);
	quic_lib_expand_label(secret, v->hp, hp, 16);
	memzero_explicit(secret, sizeof(secret));
	memzero_explicit(&h, sizeof(h));
}

/**
 * quic_crypto_initial_check() - does a client Initial open?
 * @version: QUIC version of the packet (1 or 2)
 * @dcid: its Destination Connection ID
 * @dcid_len: the ID's length, 0..20
 * @pkt: the packet, from its first byte to the end of its tag
 * @len: its length
 * @pn_offset: offset of the Packet Number field
 *
 * RFC 9001 Sections 5.2 to 5.4: header protection removed and the AEAD tag
 * checked with the client's Initial keys, on a copy of the few header bytes
 * concerned; @pkt is not written.  Any context.
 *
 * Return: 0 if the packet is authentic, -EBADMSG if not, -EINVAL if it is
 * too short to hold a sample and a tag.
 */
int quic_crypto_initial_check(u32 version, const u8 *dcid, u8 dcid_len,
			      const u8 *pkt, u32 len, u32 pn_offset)
{
	return quic_crypto_initial_open(version, dcid, dcid_len, pkt, len,
					pn_offset, NULL, NULL);
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_initial_check);

/* GCM's counter blocks: J0 with its last 32 bits set to @ctr. */
static void quic_gcm_ctr(u8 *blk, const u8 *iv, u32 ctr)
{
	memcpy(blk, iv, QUIC_CRYPTO_IV_LEN);
	blk[12] = ctr >> 24;
	blk[13] = ctr >> 16;
	blk[14] = ctr >> 8;
	blk[15] = ctr;
}

/**
 * quic_crypto_initial_open() - a client Initial's payload, in clear
 * @version: QUIC version of the packet (1 or 2)
 * @dcid: its Destination Connection ID
 * @dcid_len: the ID's length, 0..20
 * @pkt: the packet, from its first byte to the end of its tag
 * @len: its length
 * @pn_offset: offset of the Packet Number field
 * @out: where the payload goes once the tag is checked (NULL: check only);
 *	room for @len bytes is enough
 * @out_len: the payload's length
 *
 * As quic_crypto_initial_check(), then the payload decrypted into @out
 * (AES-128-CTR from inc32(J0)); @pkt is not written.  For a listener that
 * reads a ClientHello before any connection exists (ALPN demultiplexing).
 * Any context.
 *
 * Return: as quic_crypto_initial_check().
 */
int quic_crypto_initial_open(u32 version, const u8 *dcid, u8 dcid_len,
			     const u8 *pkt, u32 len, u32 pn_offset, u8 *out,
			     u32 *out_len)
{
	const struct quic_version_info *v = quic_version_get(version);
	u8 mask[AES_BLOCK_SIZE], blk[AES_BLOCK_SIZE], first, pnb[4];
	u8 key[16], iv[QUIC_CRYPTO_IV_LEN], hp[16];
	u32 i, n, pn_len, plen, clen, ctr;
	struct crypto_aes_ctx *aes;
	struct quic_ghash g = {};
	s64 pn = 0;
	int err = -EBADMSG;

	if (dcid_len > QUIC_CRYPTO_CID_MAX_LEN || quic_pkt_check(len, pn_offset))
		return -EINVAL;
	aes = kmalloc(sizeof(*aes), GFP_ATOMIC);
	if (!aes)
		return -ENOMEM;
	quic_lib_initial_keys(v, dcid, dcid_len, "client in", key, iv, hp);

	/* Section 5.4: header protection, AES-ECB of the sample. */
	if (aes_expandkey(aes, hp, sizeof(hp)))
		goto out;
	aes_encrypt(aes, mask, pkt + pn_offset + QUIC_CRYPTO_SAMPLE_OFFSET);
	first = pkt[0] ^ (mask[0] & quic_hp_first_bits(pkt[0]));
	pn_len = quic_hdr_pn_len(first);
	plen = pn_offset + pn_len;
	if (len < plen + QUIC_CRYPTO_TAG_LEN)
		goto out;
	for (i = 0; i < pn_len; i++) {
		pnb[i] = pkt[pn_offset + i] ^ mask[1 + i];
		pn = (pn << 8) | pnb[i];
	}
	/* Section 5.3: nonce = iv XOR packet number (nothing received yet) */
	pn = quic_pn_decode(-1, pn, pn_len * 8);
	for (i = 0; i < 8; i++)
		iv[QUIC_CRYPTO_IV_LEN - 1 - i] ^= (u8)(pn >> (8 * i));

	/* AES-GCM tag: GHASH of header and ciphertext, masked by E(K, J0). */
	if (aes_expandkey(aes, key, sizeof(key)))
		goto out;
	memset(blk, 0, sizeof(blk));
	aes_encrypt(aes, blk, blk);
	g.h[0] = quic_get_be64(blk);
	g.h[1] = quic_get_be64(blk + 8);
	quic_ghash_update(&g, &first, 1);
	quic_ghash_update(&g, pkt + 1, pn_offset - 1);
	quic_ghash_update(&g, pnb, pn_len);
	quic_ghash_pad(&g);
	quic_ghash_update(&g, pkt + plen, len - plen - QUIC_CRYPTO_TAG_LEN);
	quic_ghash_pad(&g);
	quic_put_be64((u64)plen * 8, blk);
	quic_put_be64((u64)(len - plen - QUIC_CRYPTO_TAG_LEN) * 8, blk + 8);
	quic_ghash_update(&g, blk, sizeof(blk));
	memcpy(blk, iv, QUIC_CRYPTO_IV_LEN);
	memset(blk + QUIC_CRYPTO_IV_LEN, 0, 3);
	blk[AES_BLOCK_SIZE - 1] = 1;	/* J0 = IV || 0^31 || 1 */
	aes_encrypt(aes, mask, blk);
	quic_put_be64(g.y[0], blk);
	quic_put_be64(g.y[1], blk + 8);
	crypto_xor(blk, mask, sizeof(blk));
	if (crypto_memneq(blk, pkt + len - QUIC_CRYPTO_TAG_LEN,
			  QUIC_CRYPTO_TAG_LEN))
		goto out;
	err = 0;
	if (!out)
		goto out;
	clen = len - plen - QUIC_CRYPTO_TAG_LEN;
	for (i = 0, ctr = 2; i < clen; i += n, ctr++) {
		quic_gcm_ctr(blk, iv, ctr);
		aes_encrypt(aes, mask, blk);
		n = min_t(u32, clen - i, AES_BLOCK_SIZE);
		crypto_xor_cpy(out + i, pkt + plen + i, mask, n);
	}
	*out_len = clen;
out:
	memzero_explicit(key, sizeof(key));
	kfree_sensitive(aes);
	return err;
}

/**
 * quic_crypto_initial_seal() - protect a server Initial without a connection
 * @version: QUIC version (1 or 2)
 * @dcid: Destination Connection ID of the client's Initial (selects the keys)
 * @dcid_len: its length, 0..20
 * @pkt: the packet: header with the packet number in clear, payload, then
 *	QUIC_CRYPTO_TAG_LEN bytes of room for the tag
 * @len: its length, the tag included
 * @pn_offset: offset of the Packet Number field
 *
 * RFC 9001 Sections 5.2 to 5.4 with the server's Initial keys, in place:
 * AES-128-GCM of the payload, then header protection.  For the few packets a
 * listener sends on its own (a CONNECTION_CLOSE for a bad token).  Any
 * context.
 *
 * Return: 0, -EINVAL if the packet is too short for a sample, or -ENOMEM.
 */
int quic_crypto_initial_seal(u32 version, const u8 *dcid, u8 dcid_len, u8 *pkt,
			     u32 len, u32 pn_offset)
{
	const struct quic_version_info *v = quic_version_get(version);
	u8 key[16], iv[QUIC_CRYPTO_IV_LEN], hp[16];
	u8 mask[AES_BLOCK_SIZE], blk[AES_BLOCK_SIZE];
	u32 i, j, n, pn_len, plen, clen, ctr;
	struct crypto_aes_ctx *aes;
	struct quic_ghash g = {};
	u64 pn = 0;

	pn_len = quic_hdr_pn_len(pkt[0]);
	plen = pn_offset + pn_len;
	if (dcid_len > QUIC_CRYPTO_CID_MAX_LEN || quic_pkt_check(len, pn_offset) ||
	    len < plen + QUIC_CRYPTO_TAG_LEN)
		return -EINVAL;
	aes = kmalloc(sizeof(*aes), GFP_ATOMIC);
	if (!aes)
		return -ENOMEM;
	quic_lib_initial_keys(v, dcid, dcid_len, "server in", key, iv, hp);
	for (i = 0; i < pn_len; i++)
		pn = (pn << 8) | pkt[pn_offset + i];
	for (i = 0; i < 8; i++)
		iv[QUIC_CRYPTO_IV_LEN - 1 - i] ^= (u8)(pn >> (8 * i));

	/* NIST SP 800-38D Section 7.1: CTR from inc32(J0), then the tag. */
	clen = len - plen - QUIC_CRYPTO_TAG_LEN;
	aes_expandkey(aes, key, sizeof(key));
	memset(blk, 0, sizeof(blk));
	aes_encrypt(aes, blk, blk);
	g.h[0] = quic_get_be64(blk);
	g.h[1] = quic_get_be64(blk + 8);
	for (i = 0, ctr = 2; i < clen; i += n, ctr++) {
		quic_gcm_ctr(blk, iv, ctr);
		aes_encrypt(aes, mask, blk);
		n = min_t(u32, clen - i, AES_BLOCK_SIZE);
		for (j = 0; j < n; j++)
			pkt[plen + i + j] ^= mask[j];
	}
	quic_ghash_update(&g, pkt, plen);
	quic_ghash_pad(&g);
	quic_ghash_update(&g, pkt + plen, clen);
	quic_ghash_pad(&g);
	quic_put_be64((u64)plen * 8, blk);
	quic_put_be64((u64)clen * 8, blk + 8);
	quic_ghash_update(&g, blk, sizeof(blk));
	quic_gcm_ctr(blk, iv, 1);
	aes_encrypt(aes, mask, blk);
	quic_put_be64(g.y[0], blk);
	quic_put_be64(g.y[1], blk + 8);
	crypto_xor_cpy(pkt + plen + clen, blk, mask, QUIC_CRYPTO_TAG_LEN);

	/* Section 5.4: header protection over the sealed sample. */
	aes_expandkey(aes, hp, sizeof(hp));
	aes_encrypt(aes, mask, pkt + pn_offset + QUIC_CRYPTO_SAMPLE_OFFSET);
	pkt[0] ^= mask[0] & quic_hp_first_bits(pkt[0]);
	for (i = 0; i < pn_len; i++)
		pkt[pn_offset + i] ^= mask[1 + i];
	memzero_explicit(key, sizeof(key));
	kfree_sensitive(aes);
	return 0;
}

/* Key of the address validation tokens this host issues (Retry). */
static u8 quic_token_key[SHA256_DIGEST_SIZE];

/**
 * quic_crypto_token_mac() - authenticate an address validation token
 * @data: what the token binds: its own bytes, the client address and the
 *	connection ID it is valid for
 * @len: length of @data
 * @mac: QUIC_CRYPTO_TOKEN_MAC_LEN bytes of output
 *
 * RFC 9000 Section 8.1.4: tokens must be hard to forge.  HMAC-SHA256 under
 * a random key drawn when the module loads, truncated.  Any context.
 */
void quic_crypto_token_mac(const u8 *data, u32 len, u8 *mac)
{
	u8 d[SHA256_DIGEST_SIZE];
	struct quic_hmac256 h;

	quic_hmac256_init(&h, quic_token_key, sizeof(quic_token_key));
	sha256_update(&h.inner, data, len);
	quic_hmac256_final(&h, d);
	memcpy(mac, d, QUIC_CRYPTO_TOKEN_MAC_LEN);
	memzero_explicit(d, sizeof(d));
}

#if IS_ENABLED(CONFIG_KUNIT)
/**
 * quic_crypto_initial_secrets() - the Initial secrets of a connection
 * @version: QUIC version (selects the salt)
 * @dcid: Destination Connection ID of the client's first Initial packet
 * @dcid_len: its length, 0..20
 * @client_secret: 32 bytes of output, "client in"
 * @server_secret: 32 bytes of output, "server in"
 *
 * RFC 9001 Section 5.2.  For the KUnit tests; the caller wipes the output.
 * Process context: may sleep.
 *
 * Return: 0 or a negative error.
 */
int quic_crypto_initial_secrets(u32 version, const u8 *dcid, u8 dcid_len,
				u8 *client_secret, u8 *server_secret)
{
	struct crypto_shash *hmac;
	int err;

	might_sleep();
	if (dcid_len > QUIC_CRYPTO_CID_MAX_LEN)
		return -EINVAL;
	hmac = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(hmac))
		return PTR_ERR(hmac);
	err = quic_initial_derive(hmac, quic_version_get(version), dcid,
				  dcid_len, client_secret, server_secret);
	crypto_free_shash(hmac);
	return err;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_initial_secrets);

/**
 * quic_crypto_derive_keys() - key, IV, HP key and next secret of a secret
 * @cipher_type: TLS_CIPHER_* (51..54)
 * @version: QUIC version (selects the HKDF labels)
 * @secret: traffic secret, the cipher suite's hash length
 * @keys: output; the caller wipes it
 *
 * RFC 9001 Sections 5.1 and 6.1.  For the KUnit tests.
 * Process context: may sleep.
 *
 * Return: 0, -EINVAL for an unknown cipher type, or a negative error.
 */
int quic_crypto_derive_keys(u32 cipher_type, u32 version, const u8 *secret,
			    struct quic_crypto_keys *keys)
{
	const struct quic_cipher *ci = quic_cipher_get(cipher_type);
	struct crypto_shash *hmac;
	int err;

	might_sleep();
	if (!ci)
		return -EINVAL;
	hmac = crypto_alloc_shash(ci->hmac, 0, 0);
	if (IS_ERR(hmac))
		return PTR_ERR(hmac);
	memset(keys, 0, sizeof(*keys));
	err = quic_keys_derive(hmac, ci, quic_version_get(version), secret,
			       keys);
	crypto_free_shash(hmac);
	return err;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_derive_keys);
#endif

/**
 * quic_pn_encode_len() - bytes needed to send a packet number
 * @pn: full packet number to send
 * @largest_acked: largest packet number acknowledged in the space, -1 if
 *	none
 *
 * RFC 9000 Appendix A.2 and Section 17.1: at least one bit more than
 * log2 of the number of unacknowledged packet numbers, this one included,
 * i.e. the smallest length whose half-window covers them.
 *
 * Return: 1..4.
 */
u8 quic_pn_encode_len(s64 pn, s64 largest_acked)
{
	s64 unacked = largest_acked < 0 ? pn + 1 : pn - largest_acked;
	u8 len;

	for (len = 1; len < 4; len++)
		if (unacked <= 1LL << (8 * len - 1))
			break;
	return len;
}
EXPORT_SYMBOL_IF_KUNIT(quic_pn_encode_len);

static void quic_retry_exit(void)
{
	u32 i;

	for (i = 0; i < ARRAY_SIZE(quic_retry_tfm); i++) {
		if (quic_retry_tfm[i])
			crypto_free_aead(quic_retry_tfm[i]);
		quic_retry_tfm[i] = NULL;
	}
}

static int quic_retry_init(void)
{
	struct crypto_aead *tfm;
	u32 i;
	int err;

	for (i = 0; i < ARRAY_SIZE(quic_retry_tfm); i++) {
		tfm = crypto_alloc_aead("gcm(aes)", 0, CRYPTO_ALG_ASYNC);
		if (IS_ERR(tfm)) {
			err = PTR_ERR(tfm);
			goto err;
		}
		quic_retry_tfm[i] = tfm;
		err = crypto_aead_setauthsize(tfm, QUIC_CRYPTO_RETRY_TAG_LEN);
		if (!err)
			err = crypto_aead_setkey(tfm, quic_versions[i].retry_key,
						 QUIC_RETRY_KEY_LEN);
		if (err)
			goto err;
	}
	return 0;
err:
	quic_retry_exit();
	return err;
}

/**
 * quic_crypto_init() - set up the module-wide transforms
 *
 * Retry Integrity Tag keys for each version and the address validation
 * token key.
 * Called once from module init; undone by quic_crypto_exit().
 *
 * Return: 0 or a negative error (an algorithm is missing).
 */
int quic_crypto_init(void)
{
	int err;

	get_random_bytes(quic_token_key, sizeof(quic_token_key));
	err = quic_retry_init();
	if (err)
		pr_err("cannot set up gcm(aes) for Retry tags: %d\n", err);
	return err;
}
EXPORT_SYMBOL_IF_KUNIT(quic_crypto_init);

/**
 * quic_crypto_exit() - free the module-wide transforms
 */
void quic_crypto_exit(void)
{
	quic_retry_exit();
	memzero_explicit(quic_token_key, sizeof(quic_token_key));
}
