// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: received packets (RFC 9000 Sections 12.2, 17; RFC 9001 Section 5).
 *
 * A datagram may hold several coalesced long header packets and a last
 * short header one.  Each is parsed, its protection removed in place by
 * crypto.c, its packet number checked and its frames handled.  Packets
 * that cannot be opened yet (keys not installed) are kept, up to
 * QUIC_PKT_BUFFERED_MAX per socket and within its receive memory
 * (sk_rcvbuf), and processed when the keys come (ABI reference
 * Section 1.13).  Everything runs under the socket lock.
 */

#include <linux/slab.h>
#include <net/inet_ecn.h>

#include "quic.h"
#include "packet.h"
#include "input.h"
#include "output.h"
#include "tp.h"

/* RFC 9369 Section 3.2: QUIC v2 renumbers the long header packet types. */
u8 quic_pkt_type_of(u32 version, u8 first)
{
	u8 t = (first >> 4) & 0x3;

	return version == QUIC_VERSION_V2 ? (t + 3) & 0x3 : t;
}

u8 quic_pkt_first_byte(u32 version, u8 type)
{
	u8 t = version == QUIC_VERSION_V2 ? (type + 1) & 0x3 : type;

	return QUIC_HDR_LONG | QUIC_HDR_FIXED | (t << 4);
}

static bool quic_pkt_cid(const u8 **pp, const u8 *end, const u8 **cid,
			 u8 *len)
{
	const u8 *p = *pp;

	if (p >= end || *p > QUIC_CONN_ID_MAX_LEN || end - p - 1 < *p)
		return false;
	*len = *p;
	*cid = p + 1;
	*pp = p + 1 + *len;
	return true;
}

/*
 * RFC 9000 Section 17.2: the long header.  Fills @pkt up to the Packet
 * Number offset; @pkt->len is the packet length from its Length field.
 * Return: 0 or -EINVAL.
 */
int quic_pkt_parse_long(const u8 *p, u32 len, struct quic_pkt *pkt)
{
	const u8 *start = p, *end = p + len;
	u64 token_len, plen;

	memset(pkt, 0, sizeof(*pkt));
	if (len < 7)
		return -EINVAL;
	pkt->version = (p[1] << 24) | (p[2] << 16) | (p[3] << 8) | p[4];
	p += 5;
	if (!quic_pkt_cid(&p, end, &pkt->dcid, &pkt->dcid_len) ||
	    !quic_pkt_cid(&p, end, &pkt->scid, &pkt->scid_len))
		return -EINVAL;
	if (!pkt->version) {
		pkt->type = QUIC_PKT_VERSION_NEG;
		pkt->len = len;
		pkt->pn_offset = p - start;
		return 0;
	}
	if (pkt->version != QUIC_VERSION_V1 && pkt->version != QUIC_VERSION_V2) {
		pkt->type = QUIC_PKT_UNKNOWN;	/* RFC 8999 Section 5.1 */
		pkt->len = len;
		pkt->pn_offset = p - start;
		return 0;
	}
	pkt->type = quic_pkt_type_of(pkt->version, start[0]);
	if (pkt->type == QUIC_PKT_RETRY) {
		pkt->len = len;
		pkt->pn_offset = p - start;
		return 0;
	}
	if (pkt->type == QUIC_PKT_INITIAL) {
		if (!quic_varint_get(&p, end, &token_len) ||
		    token_len > (u64)(end - p))
			return -EINVAL;
		pkt->token = p;
		pkt->token_len = token_len;
		p += token_len;
	}
	if (!quic_varint_get(&p, end, &plen) || plen > (u64)(end - p))
		return -EINVAL;
	pkt->pn_offset = p - start;
	pkt->len = pkt->pn_offset + plen;
	return 0;
}

/* Keep what is left of a datagram, up to @end, until its keys are here. */
static void quic_packet_buffer(struct sock *sk, struct sk_buff *skb, u32 off,
			       u32 end)
{
	struct quic_sock *qs = quic_sk(sk);
	struct sk_buff *nskb;

	if (skb_queue_len(&qs->pending) >= QUIC_PKT_BUFFERED_MAX) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
		return;
	}
	nskb = alloc_skb(end - off, GFP_ATOMIC);
	if (!nskb) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
		return;
	}
	skb_put_data(nskb, skb->data + off, end - off);
	/* Nobody has authenticated it: it is receive memory like any. */
	if (!quic_rcv_charge(sk, nskb)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
		kfree_skb(nskb);
		return;
	}
	*QUIC_RCV_CB(nskb) = *QUIC_RCV_CB(skb);
	QUIC_RCV_CB(nskb)->buffered = 1;
	QUIC_RCV_CB(nskb)->seg = 0;
	__skb_queue_tail(&qs->pending, nskb);
}

void quic_packet_buffer_purge(struct sock *sk)
{
	skb_queue_purge(&quic_sk(sk)->pending);
}

/* Call after installing receive keys: retry what waited for them. */
int quic_packet_process_buffered(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct sk_buff_head list;
	struct sk_buff *skb;

	__skb_queue_head_init(&list);
	skb_queue_splice_init(&qs->pending, &list);
	while ((skb = __skb_dequeue(&list)))
		quic_packet_rcv(sk, skb);
	return quic_is_closed(sk) ? -EPIPE : 0;
}

static u8 quic_pkt_space(u8 type)
{
	if (type == QUIC_PKT_INITIAL)
		return QUIC_SPACE_INITIAL;
	if (type == QUIC_PKT_HANDSHAKE)
		return QUIC_SPACE_HANDSHAKE;
	return QUIC_SPACE_APP;
}

static bool quic_vn_lists(const u8 *v, const u8 *end, u32 version)
{
	for (; end - v >= 4; v += 4)
		if (((u32)v[0] << 24 | (u32)v[1] << 16 | (u32)v[2] << 8 | v[3]) ==
		    version)
			return true;
	return false;
}

/*
 * RFC 9000 Section 6.2, RFC 8999 Section 6 and RFC 9368 Sections 2.1 and
 * 4: a client takes a Version Negotiation packet only before anything else
 * came from the server (no Retry, no packet that opened), only one, only
 * addressed to it (both connection IDs echoed), and only if it does not
 * list the version we sent (then it is stale or forged).  It starts again
 * in a version the server lists, with a new Destination ID and the same
 * ClientHello (quic_conn_vn_retry()); that ClientHello names one Chosen
 * Version (quic_tp_chosen_version()), so only that version will do, and
 * only with the version_information that lets the server's answer prove
 * the negotiation genuine.  Otherwise it gives up (VERSION_NEGOTIATION).
 */
static void quic_packet_vn(struct sock *sk, const u8 *p, struct quic_pkt *pkt)
{
	struct quic_sock *qs = quic_sk(sk);
	const u8 *v = p + pkt->pn_offset, *end = p + pkt->len;
	u32 chosen = quic_tp_chosen_version(qs->version);

	if (qs->is_serv || qs->peer_scid.len || qs->retry_cid.len ||
	    qs->vn_version || !quic_is_establishing(sk) || !qs->source.active ||
	    !quic_conn_id_equal_raw(&qs->source.active->key.id, pkt->dcid,
				    pkt->dcid_len) ||
	    !quic_conn_id_equal_raw(&qs->odcid, pkt->scid, pkt->scid_len) ||
	    quic_vn_lists(v, end, qs->version)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
		return;
	}
	if (qs->local_tp.disable_compatible_version ||
	    !quic_vn_lists(v, end, chosen)) {
		quic_conn_closed(sk, QUIC_TRANSPORT_ERROR_VERSION_NEGOTIATION, 0,
				 NULL, 0);
		return;
	}
	pr_debug("%s: sk %p version %#x -> %#x\n", __func__, sk, qs->version,
		 chosen);
	qs->vn_version = chosen;
	qs->vn_pending = 1;
	quic_timer_stop(sk, QUIC_TIMER_LOSS);
	quic_conn_defer(sk);
}

/*
 * Header of one packet at @p, @len bytes to the datagram end.  Short
 * headers carry one of our connection IDs, all QUIC_CONN_ID_DEF_LEN long.
 */
static int quic_packet_header(struct sock *sk, const u8 *p, u32 len,
			      u32 dgram_len, struct quic_pkt *pkt)
{
	if (!(p[0] & QUIC_HDR_LONG)) {
		memset(pkt, 0, sizeof(*pkt));
		if (len < 1 + QUIC_CONN_ID_DEF_LEN || !(p[0] & QUIC_HDR_FIXED))
			return -EINVAL;
		pkt->type = QUIC_PKT_SHORT;
		pkt->dcid = p + 1;
		pkt->dcid_len = QUIC_CONN_ID_DEF_LEN;
		pkt->pn_offset = 1 + QUIC_CONN_ID_DEF_LEN;
		pkt->len = len;
		pkt->space = QUIC_SPACE_APP;
		return 0;
	}
	if (quic_pkt_parse_long(p, len, pkt))
		return -EINVAL;
	if (pkt->type != QUIC_PKT_VERSION_NEG && !(p[0] & QUIC_HDR_FIXED))
		return -EINVAL;
	/* RFC 9000 Section 14.1: servers drop Initials in small datagrams. */
	if (pkt->type == QUIC_PKT_INITIAL && quic_sk(sk)->is_serv &&
	    dgram_len < QUIC_MIN_INITIAL_SIZE)
		return -EINVAL;
	pkt->space = quic_pkt_space(pkt->type);
	return 0;
}

/* RFC 9000 Section 13.2.1: when to acknowledge what was just received. */
static void quic_packet_ack_schedule(struct sock *sk, struct quic_pkt *pkt,
				     s64 largest)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[pkt->space];
	u64 delay;

	if (!pkt->ack_eliciting)
		return;
	s->ack_pending = 1;
	s->ack_eliciting++;
	/* Immediately for Initial and Handshake, every second packet, and
	 * when packets arrive out of order (Section 13.2.1).
	 */
	if (pkt->space != QUIC_SPACE_APP || s->ack_eliciting >= 2 ||
	    pkt->pn != largest + 1) {
		s->ack_immediate = 1;
		return;
	}
	if (!s->ack_deadline) {
		delay = qs->local_tp.max_ack_delay;
		s->ack_deadline = quic_now() + delay;
		quic_timer_reset(sk, QUIC_TIMER_ACK, delay);
	}
}

/* The client learns the server's connection ID from its first packet. */
static int quic_packet_peer_scid(struct sock *sk, struct quic_pkt *pkt)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_conn_id id;

	if (qs->peer_scid.len || pkt->type == QUIC_PKT_SHORT)
		return 0;
	quic_conn_id_set_raw(&id, pkt->scid, pkt->scid_len);
	qs->peer_scid = id;
	if (qs->is_serv)
		return 0;
	return quic_conn_id_dest_update(&qs->dest, &id);
}

/* RFC 9001 Section 4.9.1 and RFC 9000 Section 8.1 for a server. */
static void quic_packet_handshake_rcvd(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	if (!qs->is_serv)
		return;
	qs->path.validated = 1;
	if (!qs->space[QUIC_SPACE_INITIAL].discarded)
		quic_space_discard(sk, QUIC_SPACE_INITIAL);
}

/*
 * The peer's key phase changed with packet @pn.  RFC 9001 Section 6.1: after
 * an update it started, the peer may start another only once a packet of the
 * new phase was acknowledged, which it cannot have before we sent one
 * (quic_frame_ack_build()): a second change before that is a
 * KEY_UPDATE_ERROR (Section 6.2), and so a peer cannot make us derive keys
 * faster than once per round trip.  The answer to an update we started
 * (QUIC_CRYPTO_KEY_CONFIRMED) is not held against the peer: only our
 * application starts those, and a peer that starts the next one early (it
 * should wait for an acknowledgment too, Section 6.1) costs one derivation
 * per update of ours.  The old receive keys go three PTOs later (Section
 * 6.5).
 *
 * Return: 0, or -EKEYREJECTED if the connection was closed.
 */
static int quic_packet_key_event(struct sock *sk, u8 event, s64 pn)
{
	struct quic_sock *qs = quic_sk(sk);
	u8 phase;

	if (event == QUIC_CRYPTO_KEY_NONE)
		return 0;
	if (event == QUIC_CRYPTO_KEY_PEER_UPDATE) {
		if (qs->key_phase_unacked) {
			quic_conn_error(sk, QUIC_TRANSPORT_ERROR_KEY_UPDATE, 0);
			return -EKEYREJECTED;
		}
		qs->key_phase_unacked = 1;
		qs->key_phase_pn = pn;
	}
	qs->key_discard_at = quic_now() + 3ULL * quic_cong_pto(&qs->cong, true);
	qs->crypto_key_prepare = 1;
	quic_conn_defer(sk);
	if (event == QUIC_CRYPTO_KEY_PEER_UPDATE) {
		phase = qs->crypto[QUIC_CRYPTO_APP].rx.phase;
		quic_event_queue(sk, QUIC_EVENT_KEY_UPDATE, &phase, 1);
		trace_quic_key_update(sk, QUIC_CRYPTO_APP, false, phase,
				      QUIC_TRACE_KEY_PEER);
		trace_quic_key_update(sk, QUIC_CRYPTO_APP, true, phase,
				      QUIC_TRACE_KEY_PEER);
	}
	if (event == QUIC_CRYPTO_KEY_CONFIRMED)
		trace_quic_key_update(sk, QUIC_CRYPTO_APP, false,
				      qs->crypto[QUIC_CRYPTO_APP].rx.phase,
				      QUIC_TRACE_KEY_LOCAL);
	return 0;
}

/* RFC 9001 Section 6.5: the previous 1-RTT receive keys, once they expired. */
static void quic_packet_old_keys(struct sock *sk, struct quic_pkt *pkt)
{
	struct quic_sock *qs = quic_sk(sk);

	if (pkt->type != QUIC_PKT_SHORT || !qs->key_discard_at ||
	    quic_now() < qs->key_discard_at)
		return;
	qs->key_discard_at = 0;
	quic_crypto_discard_old_keys(&qs->crypto[QUIC_CRYPTO_APP]);
}

/*
 * RFC 9000 Section 13.4.1: the ECN codepoint of each packet processed is
 * counted in its space, for our ACK_ECN frames; a CE mark is acknowledged
 * at once (Section 13.2.1), so that the sender reacts within an RTT.
 */
static void quic_packet_ecn(struct sock *sk, struct quic_pkt *pkt)
{
	struct quic_pnspace *s = &quic_sk(sk)->space[pkt->space];
	u8 ecn = pkt->skb ? QUIC_RCV_CB(pkt->skb)->ecn : INET_ECN_NOT_ECT;

	switch (ecn) {
	case INET_ECN_ECT_0:
		s->ecn_recv[QUIC_ECN_ECT0]++;
		break;
	case INET_ECN_ECT_1:
		s->ecn_recv[QUIC_ECN_ECT1]++;
		break;
	case INET_ECN_CE:
		s->ecn_recv[QUIC_ECN_CE]++;
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVECNCE);
		if (s->ack_pending)
			s->ack_immediate = 1;
		break;
	}
}

/* Frames of a packet that decrypted fine. */
static int quic_packet_frames(struct sock *sk, struct quic_pkt *pkt, u8 *p,
			      u8 pn_len)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[pkt->space];
	u32 hlen = pkt->pn_offset + pn_len;
	s64 largest = quic_pnspace_largest_recv(s);
	int err;

	/* RFC 9000 Sections 17.2 and 17.3.1: reserved bits must be zero. */
	if (p[0] & ((p[0] & QUIC_HDR_LONG) ? QUIC_HDR_RESERVED_LONG :
					     QUIC_HDR_RESERVED_SHORT)) {
		quic_conn_error(sk, QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION, 0);
		return 0;
	}
	if (quic_pnspace_is_dup(s, pkt->pn)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_INVNUMDROP);
		return 0;
	}
	trace_quic_packet_received(sk, p, pkt->pn_offset, pkt->len, pkt->space,
				   pkt->pn);
	err = quic_frame_process(sk, pkt, p + hlen,
				 pkt->len - hlen - QUIC_CRYPTO_TAG_LEN);
	if (err < 0) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
		return 0;
	}
	if (err > 0) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_INVFRMDROP);
		quic_conn_error(sk, err, pkt->frame);
		return 0;
	}
	if (quic_is_closed(sk))
		return 0;
	quic_pnspace_record(s, pkt->pn, quic_now());
	/* RFC 9000 Sections 9.3 and 9.6: the path it came on, and whether
	 * it is the peer's newest non-probing packet.
	 */
	if (pkt->type == QUIC_PKT_SHORT && pkt->skb)
		quic_path_peer_check(sk, pkt->skb, pkt->dgram_len,
				     pkt->non_probing && pkt->pn > largest);
	quic_packet_ack_schedule(sk, pkt, largest);
	quic_packet_ecn(sk, pkt);
	qs->idle_sent = 0;
	quic_timer_idle_reset(sk);
	if (pkt->type == QUIC_PKT_HANDSHAKE)
		quic_packet_handshake_rcvd(sk);
	return 0;
}

/*
 * RFC 9000 Section 10.3.1: a short packet that does not decrypt may be a
 * Stateless Reset, ending with a token the peer gave us.
 */
static bool quic_packet_stateless_reset(struct sock *sk, const u8 *p, u32 len)
{
	struct quic_sock *qs = quic_sk(sk);

	if (len < 21 || !qs->dest.active)
		return false;
	if (!quic_conn_id_dest_token_match(&qs->dest,
					   p + len - QUIC_CONN_ID_TOKEN_LEN))
		return false;
	quic_conn_closed(sk, QUIC_TRANSPORT_ERROR_CRYPTO, 0, NULL, 0);
	return true;
}

static int quic_packet_decrypt(struct sock *sk, struct quic_pkt *pkt, u8 *p)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_crypto_rx_info info;
	struct quic_pnspace *s = &qs->space[pkt->space];
	int err, level;

	if (pkt->len < QUIC_CRYPTO_MIN_PKT_LEN(pkt->pn_offset)) {
		/* Too short to decrypt, not too short for a Stateless Reset
		 * (21 bytes and up, RFC 9000 Section 10.3).
		 */
		if (pkt->type != QUIC_PKT_SHORT ||
		    !quic_packet_stateless_reset(sk, p, pkt->len))
			QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_INVHDRDROP);
		return -EINVAL;
	}
	quic_packet_old_keys(sk, pkt);
	level = pkt->type == QUIC_PKT_0RTT ? QUIC_CRYPTO_EARLY : pkt->space;
	if (pkt->type == QUIC_PKT_SHORT && qs->plain_1rtt)
		err = quic_crypto_open_plain(&qs->crypto[level], p, pkt->len,
					     pkt->pn_offset,
					     quic_pnspace_largest_recv(s),
					     &info);
	else
		err = quic_crypto_decrypt(&qs->crypto[level], p, pkt->len,
					  pkt->pn_offset,
					  quic_pnspace_largest_recv(s), &info);
	if (err == -ENOKEY)
		return err;
	if (err) {
		net_dbg_ratelimited("quic: sk %p decrypt type %u len %u: %d\n",
				    sk, pkt->type, pkt->len, err);
		if (pkt->type != QUIC_PKT_SHORT ||
		    !quic_packet_stateless_reset(sk, p, pkt->len))
			QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_DECDROP);
		if (err == -EKEYEXPIRED)
			quic_conn_error(sk, QUIC_TRANSPORT_ERROR_AEAD_LIMIT_REACHED,
					0);
		return err;
	}
	QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_DECFASTPATHS);
	pkt->pn = info.pn;
	net_dbg_ratelimited("quic: sk %p rcv type %u pn %lld len %u\n", sk,
			    pkt->type, info.pn, pkt->len);
	err = quic_packet_key_event(sk, info.key_event, info.pn);
	if (err)
		return err;
	err = quic_packet_peer_scid(sk, pkt);
	if (err)
		return err;
	return quic_packet_frames(sk, pkt, p, info.pn_len);
}

/*
 * RFC 9368 Section 2.3 and RFC 9369 Section 4.1: the server may answer in
 * the compatible version our version_information offered, after packets
 * in ours (an ACK sent before it read our transport parameters).  The
 * client follows the first Initial in the other version that opens with
 * the keys derived for it at connect(); one that does not leaves
 * everything as it was.
 */
static int quic_packet_version_switch(struct sock *sk, struct quic_pkt *pkt,
				      u8 *p)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_crypto *alt = qs->initial_alt;
	u32 version = qs->version;
	int err;

	swap(qs->crypto[QUIC_CRYPTO_INITIAL], *alt);
	qs->version = pkt->version;
	err = quic_packet_decrypt(sk, pkt, p);
	if (err) {
		swap(qs->crypto[QUIC_CRYPTO_INITIAL], *alt);
		qs->version = version;
		return err;
	}
	pr_debug("%s: sk %p version %#x -> %#x\n", __func__, sk, version,
		 pkt->version);
	qs->version_fixed = 1;
	quic_conn_defer(sk);	/* the old keys go */
	return 0;
}

/*
 * RFC 9369 Section 4.1: a server that switched keeps the receive keys of
 * the client's original version until a packet in the new one opens: the
 * client sends Initials in its version until it sees ours.  They are
 * handled with those keys, and anything sent from there in the old one.
 */
static int quic_packet_version_orig(struct sock *sk, struct quic_pkt *pkt,
				    u8 *p)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_crypto *alt = qs->initial_alt;
	u32 version = qs->version;
	int err;

	swap(qs->crypto[QUIC_CRYPTO_INITIAL], *alt);
	qs->version = pkt->version;
	err = quic_packet_decrypt(sk, pkt, p);
	swap(qs->crypto[QUIC_CRYPTO_INITIAL], *alt);
	qs->version = version;
	return err;
}

/* An Initial in the version of @initial_alt, while it may still come. */
static bool quic_packet_version_other(struct sock *sk, struct quic_pkt *pkt)
{
	struct quic_sock *qs = quic_sk(sk);

	return pkt->type == QUIC_PKT_INITIAL && qs->initial_alt &&
	       !qs->version_fixed && !qs->space[QUIC_SPACE_INITIAL].discarded &&
	       (qs->is_serv || !pkt->token_len) &&
	       pkt->version == qs->initial_alt->rx.version;
}

/*
 * The version is settled once a Handshake packet opens (both ends use the
 * negotiated version there, RFC 9369 Section 4.1), and for a server that
 * switched, once any packet in the new version does.
 */
static void quic_packet_version_settle(struct sock *sk, struct quic_pkt *pkt)
{
	struct quic_sock *qs = quic_sk(sk);

	if (!qs->initial_alt || qs->version_fixed ||
	    (pkt->type != QUIC_PKT_HANDSHAKE &&
	     (!qs->is_serv || pkt->type != QUIC_PKT_INITIAL)))
		return;
	qs->version_fixed = 1;
	quic_conn_defer(sk);
}

#define QUIC_RETRY_TOKEN_MAX	512	/* a server's Retry token we keep */

/*
 * RFC 9000 Section 17.2.5.2: a client takes one Retry, before anything else
 * from the server, addressed to it and with a valid integrity tag (RFC 9001
 * Section 5.8); anything else is dropped.  It then sends its Initial again
 * to the Retry's Source ID with the token, under Initial keys derived from
 * that ID: quic_conn_retry() does it in process context.
 */
static void quic_packet_retry(struct sock *sk, const u8 *p, u32 len,
			      const struct quic_pkt *pkt)
{
	struct quic_sock *qs = quic_sk(sk);
	const struct quic_conn_id *own;
	u32 tlen;
	u8 *token;

	if (qs->is_serv || qs->retry_cid.len || qs->peer_scid.len ||
	    !quic_is_establishing(sk) || pkt->version != qs->version ||
	    !qs->source.active)
		goto drop;
	own = &qs->source.active->key.id;
	if (pkt->dcid_len != own->len || memcmp(pkt->dcid, own->data, own->len))
		goto drop;
	if (len < pkt->pn_offset + QUIC_CRYPTO_RETRY_TAG_LEN + 1)
		goto drop;
	tlen = len - pkt->pn_offset - QUIC_CRYPTO_RETRY_TAG_LEN;
	if (tlen > QUIC_RETRY_TOKEN_MAX)
		goto drop;
	if (quic_crypto_retry_verify(pkt->version, qs->odcid.data,
				     qs->odcid.len, p, len)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_DECDROP);
		return;
	}
	token = kmemdup(p + pkt->pn_offset, tlen, GFP_ATOMIC);
	if (!token)
		goto drop;
	kfree_sensitive(qs->token.data);
	qs->token.data = token;
	qs->token.len = tlen;
	quic_conn_id_set_raw(&qs->retry_cid, pkt->scid, pkt->scid_len);
	if (quic_conn_id_dest_update(&qs->dest, &qs->retry_cid)) {
		quic_conn_error(sk, QUIC_TRANSPORT_ERROR_INTERNAL, 0);
		return;
	}
	pr_debug("%s: sk %p Retry, token %u bytes\n", __func__, sk, tlen);
	quic_timer_stop(sk, QUIC_TIMER_LOSS);
	qs->retry_pending = 1;
	quic_conn_defer(sk);
	return;
drop:
	QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
}

/*
 * RFC 9001 Section 5.6: only a server opens 0-RTT packets, and only until
 * the 1-RTT keys are here (Section 4.9.3 lets it drop them from then on: the
 * client sends their data again in 1-RTT packets, quic_space_zrtt_end()).
 * Before the EARLY receive key they wait like any packet without its keys
 * (quic_packet_buffer(): bounded, charged to the receive buffer); if TLS
 * rejected 0-RTT the key never comes and the 1-RTT receive key drops them.
 */
static bool quic_packet_zrtt_open(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	return qs->is_serv && !qs->zrtt_done && quic_is_establishing(sk) &&
	       !quic_crypto_recv_ready(&qs->crypto[QUIC_CRYPTO_APP]);
}

/*
 * One packet at @off of the datagram [@start, @end) of @skb.  Return: its
 * length (the next packet follows), or a negative error: -ENOKEY (keep the
 * rest for later) or -EINVAL (drop the rest of the datagram).
 */
static int quic_packet_one(struct sock *sk, struct sk_buff *skb, u32 start,
			   u32 off, u32 end)
{
	struct quic_sock *qs = quic_sk(sk);
	u8 *p = skb->data + off;
	struct quic_pkt pkt;
	int err;

	if (quic_packet_header(sk, p, end - off, end - start, &pkt)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_INVHDRDROP);
		return -EINVAL;
	}
	QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVFASTPATHS);
	pkt.skb = skb;
	pkt.dgram_len = end - start;
	if (pkt.type == QUIC_PKT_VERSION_NEG) {
		quic_packet_vn(sk, p, &pkt);
		return -EINVAL;
	}
	if (quic_packet_version_other(sk, &pkt)) {
		if (qs->is_serv)
			err = quic_packet_version_orig(sk, &pkt, p);
		else
			err = quic_packet_version_switch(sk, &pkt, p);
		return err == -ENOKEY ? err : pkt.len;
	}
	if (pkt.type == QUIC_PKT_RETRY) {
		quic_packet_retry(sk, p, pkt.len, &pkt);
		return -EINVAL;	/* a Retry takes its whole datagram */
	}
	if ((pkt.type == QUIC_PKT_0RTT && !quic_packet_zrtt_open(sk)) ||
	    pkt.type == QUIC_PKT_UNKNOWN ||
	    (pkt.type != QUIC_PKT_SHORT && pkt.version != qs->version) ||
	    (pkt.type == QUIC_PKT_INITIAL && !qs->is_serv && pkt.token_len) ||
	    qs->space[pkt.space].discarded) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
		return pkt.len;
	}
	err = quic_packet_decrypt(sk, &pkt, p);
	if (err == -ENOKEY)
		return err;
	if (!err)
		quic_packet_version_settle(sk, &pkt);
	return pkt.len;
}

/* The packets of the datagram [@start, @end) of @skb. */
static void quic_packet_dgram(struct sock *sk, struct sk_buff *skb, u32 start,
			      u32 end)
{
	u32 off = start;
	int len;

	if (!QUIC_RCV_CB(skb)->buffered)
		quic_path_on_recv(sk, skb, end - start);
	while (off < end && quic_is_connected(sk)) {
		len = quic_packet_one(sk, skb, start, off, end);
		if (len == -ENOKEY) {
			quic_packet_buffer(sk, skb, off, end);
			break;
		}
		if (len < 0)
			break;
		off += len;
	}
}

/**
 * quic_packet_rcv - process a datagram for a connected socket
 * @sk: the socket, locked (by a process or the softirq spinlock)
 * @skb: the datagram, skb->data at the first QUIC packet; or a train of
 *	datagrams QUIC_RCV_CB(skb)->seg bytes each but the last (input.c);
 *	consumed
 *
 * Return: 0.
 */
int quic_packet_rcv(struct sock *sk, struct sk_buff *skb)
{
	u32 seg = QUIC_RCV_CB(skb)->seg ?: skb->len, off;

	if (!quic_is_connected(sk) || skb_linearize_cow(skb)) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
		goto out;
	}
	for (off = 0; off < skb->len && quic_is_connected(sk); off += seg)
		quic_packet_dgram(sk, skb, off, min(off + seg, skb->len));
	quic_output_flush(sk);
out:
	kfree_skb(skb);
	return 0;
}
