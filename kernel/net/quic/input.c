// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: from the UDP socket to the connection, and the connection's
 * reactions to what it receives: acknowledgments, loss detection and
 * probe timeouts (RFC 9002 Sections 5 and 6, Appendix A), key discard
 * (RFC 9001 Section 4.9), closing (RFC 9000 Section 10).
 *
 * quic_input_encap_rcv() runs in softirq context: it finds the socket by
 * the Destination Connection ID (a new Initial goes to the listener of
 * the UDP socket), then processes the datagram under the socket spinlock,
 * or leaves it in the socket backlog when a process owns the socket.
 */

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <net/inet_ecn.h>
#include <net/ipv6.h>

#include "quic.h"
#include "packet.h"
#include "input.h"
#include "output.h"

/*
 * Both ends of the datagram, from its IP and UDP headers, into its control
 * block: the only moment they are read.  inet6_iif() reads IP6CB(), which
 * the control block overwrites, so it comes first.
 */
static void quic_input_addrs(struct sk_buff *skb)
{
	struct quic_rcv_cb *cb = QUIC_RCV_CB(skb);
	const struct udphdr *uh = udp_hdr(skb);
	__be16 sport = uh->source, dport = uh->dest;
	struct in6_addr saddr = {}, daddr = {};
	int iif = 0;
	u8 family, ecn;

	BUILD_BUG_ON(sizeof(struct quic_rcv_cb) > sizeof(skb->cb));
	if (ip_hdr(skb)->version == 4) {
		family = AF_INET;
		saddr.s6_addr32[0] = ip_hdr(skb)->saddr;
		daddr.s6_addr32[0] = ip_hdr(skb)->daddr;
		ecn = ip_hdr(skb)->tos;
	} else {
		family = AF_INET6;
		iif = inet6_iif(skb);
		saddr = ipv6_hdr(skb)->saddr;
		daddr = ipv6_hdr(skb)->daddr;
		ecn = ipv6_get_dsfield(ipv6_hdr(skb));
	}
	memset(cb, 0, sizeof(*cb));
	cb->ecn = ecn & INET_ECN_MASK;
	cb->saddr = saddr;
	cb->daddr = daddr;
	cb->iif = iif;
	cb->sport = sport;
	cb->dport = dport;
	cb->family = family;
}

static void quic_rcv_addr(const struct quic_rcv_cb *cb,
			  const struct in6_addr *addr, __be16 port,
			  union quic_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (cb->family == AF_INET) {
		a->v4.sin_family = AF_INET;
		a->v4.sin_addr.s_addr = addr->s6_addr32[0];
		a->v4.sin_port = port;
		return;
	}
	a->v6.sin6_family = AF_INET6;
	a->v6.sin6_addr = *addr;
	a->v6.sin6_port = port;
	a->v6.sin6_scope_id = ipv6_iface_scope_id(addr, cb->iif);
}

/* The address a received datagram came from. */
void quic_rcv_peer(const struct sk_buff *skb, union quic_addr *a)
{
	const struct quic_rcv_cb *cb = QUIC_RCV_CB(skb);

	quic_rcv_addr(cb, &cb->saddr, cb->sport, a);
}

/* The address a received datagram was sent to. */
void quic_rcv_local(const struct sk_buff *skb, union quic_addr *a)
{
	const struct quic_rcv_cb *cb = QUIC_RCV_CB(skb);

	quic_rcv_addr(cb, &cb->daddr, cb->dport, a);
}

/*
 * RFC 9000 Sections 17.2 and 17.3: where the Destination ID is.  The bytes
 * read here are pulled into the linear area first: a datagram segmented by
 * UDP from a GSO packet (a peer sending with UDP_SEGMENT over veth, say)
 * keeps its payload in page fragments.
 */
static bool quic_input_dcid(struct sk_buff *skb, const u8 **dcid,
			    u8 *len, bool *initial)
{
	const u8 *p;
	u32 version;

	*initial = false;
	if (!pskb_may_pull(skb, 1))
		return false;
	if (!(skb->data[0] & QUIC_HDR_LONG)) {
		if (skb->len <= 1 + QUIC_CONN_ID_DEF_LEN ||
		    !pskb_may_pull(skb, 1 + QUIC_CONN_ID_DEF_LEN))
			return false;
		*dcid = skb->data + 1;
		*len = QUIC_CONN_ID_DEF_LEN;
		return true;
	}
	/* quic_udp_hdr_valid() checked the length against the DCID length */
	if (!pskb_may_pull(skb, 6) || !pskb_may_pull(skb, 6 + skb->data[5]))
		return false;
	p = skb->data;
	version = (p[1] << 24) | (p[2] << 16) | (p[3] << 8) | p[4];
	*dcid = p + 6;
	*len = p[5];
	/* New connections, and unknown versions for Version Negotiation. */
	if (version == QUIC_VERSION_V1 || version == QUIC_VERSION_V2)
		*initial = quic_pkt_type_of(version, p[0]) == QUIC_PKT_INITIAL;
	else
		*initial = version != 0;
	return true;
}

static int quic_input_dispatch(struct sock *sk, struct sk_buff *skb)
{
	if (quic_is_listen(sk))
		return quic_listen_rcv(sk, skb);
	return quic_packet_rcv(sk, skb);
}

/* proto->backlog_rcv: what arrived while a process owned the socket. */
int quic_backlog_rcv(struct sock *sk, struct sk_buff *skb)
{
	return quic_input_dispatch(sk, skb);
}

/*
 * A process sleeps in recvmsg() for data (quic_recv_wait()): the datagram
 * goes to the backlog and the woken reader processes it on taking the
 * socket, as TCP's prequeue did.  The softirq that received it, often on
 * the CPU of a local sender, is spared the decryption.  The reader holds
 * the socket again before it leaves, so release_sock() runs the backlog.
 */
static bool quic_input_to_reader(struct sock *sk)
{
	return READ_ONCE(quic_sk(sk)->rcv_waiters) && quic_is_established(sk);
}

/**
 * quic_input_deliver - process a datagram on a socket or queue it
 * @sk: the socket, held by the caller
 * @skb: the datagram, skb->data at the QUIC packet; consumed
 * @nested: the caller holds another socket's spinlock (a listener's)
 *
 * Also called from a listener's backlog, in process context: bottom
 * halves are disabled around the spinlock as in softirq context.
 */
void quic_input_deliver(struct sock *sk, struct sk_buff *skb, bool nested)
{
	local_bh_disable();
	if (nested)
		bh_lock_sock_nested(sk);
	else
		bh_lock_sock(sk);
	if (!sock_owned_by_user(sk) && !quic_input_to_reader(sk)) {
		quic_input_dispatch(sk, skb);
	} else if (sk_add_backlog(sk, skb, READ_ONCE(sk->sk_rcvbuf))) {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVDROP);
		kfree_skb(skb);
	} else {
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_PKT_RCVBACKLOGS);
		if (!sock_owned_by_user(sk))
			sk->sk_data_ready(sk);	/* the reader takes it */
	}
	bh_unlock_sock(sk);
	local_bh_enable();
}

/*
 * RFC 9000 Section 10.3: the shortest Stateless Reset (5 bytes that look
 * like a short header, then the token), and the trigger size up to which
 * the reset is one byte shorter than its trigger (Section 10.3, "43 bytes
 * or shorter").
 */
#define QUIC_RESET_MIN_LEN	21
#define QUIC_RESET_SHORT_LEN	43
/*
 * A short-header datagram whose Destination Connection ID we do not know.
 * It may be a Stateless Reset for one of our connections, which carries
 * none of our IDs (Section 10.3.1): the token table finds the connection,
 * whose own check then decides.  Otherwise it belongs to a connection we
 * no longer have (closed, or a module reloaded since): answer with a
 * Stateless Reset under the token of its ID, so that its sender learns at
 * once instead of at its idle timeout (Section 10.3).  The reset is always
 * shorter than the datagram, so two endpoints cannot loop on each other's
 * resets (Section 10.3.3), and a datagram too short for that gets none.
 *
 * Return: true if @skb went to a connection (consumed).
 */
static bool quic_input_unknown_short(struct sock *usk, struct sk_buff *skb)
{
	u32 len = QUIC_RCV_CB(skb)->seg ?: skb->len, n;
	u8 token[QUIC_CONN_ID_TOKEN_LEN];
	struct net *net = sock_net(usk);
	union quic_addr local, peer;
	struct quic_conn_id id;
	struct sk_buff *nskb;
	struct sock *sk;
	u8 *p;

	if (len < QUIC_RESET_MIN_LEN)
		return false;
	if (!QUIC_RCV_CB(skb)->seg &&
	    !skb_copy_bits(skb, len - sizeof(token), token, sizeof(token))) {
		sk = quic_token_lookup(net, token);
		if (sk) {
			quic_input_deliver(sk, skb, false);
			sock_put(sk);
			return true;
		}
	}
	if (len <= QUIC_RESET_MIN_LEN || len <= 1 + QUIC_CONN_ID_DEF_LEN ||
	    !__ratelimit(&quic_net(net)->reset_rs))
		return false;
	n = len - 1;
	if (n > QUIC_RESET_SHORT_LEN)	/* not always the same size */
		n = QUIC_RESET_SHORT_LEN +
		    get_random_u32_below(min(n - QUIC_RESET_SHORT_LEN, 8U) + 1);
	nskb = quic_path_skb_alloc(n);
	if (!nskb)
		return false;
	p = skb_put(nskb, n);
	get_random_bytes(p, n - QUIC_CONN_ID_TOKEN_LEN);
	p[0] = QUIC_HDR_FIXED | (p[0] & 0x3f);
	id.len = QUIC_CONN_ID_DEF_LEN;
	memcpy(id.data, skb->data + 1, QUIC_CONN_ID_DEF_LEN);
	quic_conn_id_token(&id, p + n - QUIC_CONN_ID_TOKEN_LEN);
	quic_rcv_local(skb, &local);
	quic_rcv_peer(skb, &peer);
	quic_path_send_to(usk, nskb, &local, &peer);
	return false;
}

/*
 * A datagram (or a train of them, QUIC_RCV_CB()->seg) at skb->data, its
 * control block filled in: to the socket of its Destination Connection ID,
 * a new Initial to the listener.  A datagram that does not start with a
 * valid QUIC header is dropped (RFC 9000 Section 12.2 lets the receiver
 * discard the rest of a datagram, and Section 5.2.2 allows dropping what
 * cannot be answered).
 */
static int quic_input_one(struct quic_udp_sock *us, struct sock *usk,
			  struct sk_buff *skb)
{
	struct net *net = sock_net(usk);
	struct sock *sk = NULL;
	const u8 *dcid;
	bool initial;
	u8 len;

	if (!quic_udp_hdr_valid(skb, 0)) {
		QUIC_INC_STATS(net, QUIC_MIB_PKT_INVHDRDROP);
		net_dbg_ratelimited("%s: invalid header, len %u\n", __func__,
				    skb->len);
		kfree_skb(skb);
		return 0;
	}
	if (quic_input_dcid(skb, &dcid, &len, &initial))
		sk = quic_cid_lookup(net, dcid, len);
	if (!sk && initial) {
		/* a new client: its listener, maybe by ALPN (demux.c) */
		sk = quic_demux_input(us, skb, dcid, len);
		if (!sk)
			return 0;
	}
	if (!sk && !(skb->data[0] & QUIC_HDR_LONG) &&
	    quic_input_unknown_short(usk, skb))
		return 0;
	if (!sk) {
		QUIC_INC_STATS(net, QUIC_MIB_PKT_RCVDROP);
		kfree_skb(skb);
		return 0;
	}
	quic_input_deliver(sk, skb, false);
	sock_put(sk);
	return 0;
}

/*
 * Datagrams of one GRO train or UDP GSO skb, each gso_size bytes but the
 * last, skb->data at the first.  When all are short-header packets for the
 * same Destination Connection ID, which is what a bulk transfer brings,
 * they go to their socket as one skb (QUIC_RCV_CB()->seg), processed in
 * place by quic_packet_rcv(); otherwise each is copied out and goes alone.
 */
static int quic_input_train(struct quic_udp_sock *us, struct sock *usk,
			    struct sk_buff *skb)
{
	u32 seg = skb_shinfo(skb)->gso_size, off, n;
	struct sk_buff *one;
	bool same = true;

	quic_input_addrs(skb);
	__skb_pull(skb, skb_transport_offset(skb) + sizeof(struct udphdr));
	skb_gso_reset(skb);
	if (!seg || skb_linearize_cow(skb)) {
		QUIC_INC_STATS(sock_net(usk), QUIC_MIB_PKT_RCVDROP);
		kfree_skb(skb);
		return 0;
	}
	for (off = 0; off < skb->len && same; off += seg) {
		n = min(seg, skb->len - off);
		same = n > 1 + QUIC_CONN_ID_DEF_LEN &&
		       !(skb->data[off] & QUIC_HDR_LONG) &&
		       !memcmp(skb->data + off + 1, skb->data + 1,
			       QUIC_CONN_ID_DEF_LEN);
	}
	if (same && skb->len > seg) {
		QUIC_RCV_CB(skb)->seg = seg;
		return quic_input_one(us, usk, skb);
	}
	/* Rare: a train of long headers (Initials of equal size) or of
	 * several connections.  UDP would have copied them apart as well.
	 */
	for (off = 0; off < skb->len; off += seg) {
		n = min(seg, skb->len - off);
		one = alloc_skb(n, GFP_ATOMIC);
		if (!one) {
			QUIC_INC_STATS(sock_net(usk), QUIC_MIB_PKT_RCVDROP);
			continue;
		}
		skb_put_data(one, skb->data + off, n);
		*QUIC_RCV_CB(one) = *QUIC_RCV_CB(skb);
		quic_input_one(us, usk, one);
	}
	consume_skb(skb);
	return 0;
}

/**
 * quic_input_encap_rcv - a datagram from the UDP socket
 * @us: the QUIC side of the UDP socket
 * @usk: the UDP socket
 * @skb: the datagram, or a GRO/GSO train of them; the UDP header pulled
 *	(skb->data at the payload) or not
 *
 * Softirq context, under rcu_read_lock().  Return: 0 (consumed).
 */
int quic_input_encap_rcv(struct quic_udp_sock *us, struct sock *usk,
			 struct sk_buff *skb)
{
	if (skb_is_gso(skb))
		return quic_input_train(us, usk, skb);
	quic_input_addrs(skb);
	__skb_pull(skb, skb_transport_offset(skb) + sizeof(struct udphdr));
	return quic_input_one(us, usk, skb);
}

/* A frame the peer acknowledged (RFC 9002 Section 6.1 onwards). */
static void quic_frame_acked(struct sock *sk, struct quic_frame *f)
{
	struct quic_sock *qs = quic_sk(sk);

	switch (f->type) {
	case QUIC_FRAME_STREAM:
		quic_stream_acked(sk, f->stream_id, f->data_len, f->fin);
		break;
	case QUIC_FRAME_NEW_TOKEN:
		qs->token_sent = 0;
		break;
	case QUIC_FRAME_RESET_STREAM:
		quic_stream_reset_acked(sk, f->stream_id);
		break;
	case QUIC_FRAME_RETIRE_CONNECTION_ID:
		quic_conn_id_dest_retire_acked(&qs->dest, f->offset);
		break;
	}
}

static void quic_sent_pkt_acked(struct sock *sk, struct quic_sent_pkt *pkt)
{
	struct quic_frame *f, *n;

	list_for_each_entry_safe(f, n, &pkt->frames, list) {
		list_del(&f->list);
		quic_frame_acked(sk, f);
		quic_frame_free(sk, f);
	}
	quic_sent_pkt_free(pkt);
}

static bool quic_ranges_has(const struct quic_pn_range *r, int n, s64 pn)
{
	int i;

	for (i = 0; i < n; i++)
		if (pn >= r[i].start && pn <= r[i].end)
			return true;
	return false;
}

/* The packet number the congestion controller sees: 1-RTT only. */
static s64 quic_cong_pn(u8 space, s64 pn)
{
	return space == QUIC_SPACE_APP ? pn : -1;
}

/* RFC 9002 Section 6.1: acknowledged packets that had been declared lost. */
static void quic_loss_spurious(struct sock *sk, struct quic_pnspace *s,
			       const struct quic_pn_range *ranges, int n)
{
	struct quic_cong *c = &quic_sk(sk)->cong;
	struct quic_sent_pkt *pkt, *tmp;

	list_for_each_entry_safe(pkt, tmp, &s->lost, list) {
		if (!quic_ranges_has(ranges, n, pkt->pn))
			continue;
		quic_cong_spurious(c, pkt->episode, pkt->reorder, pkt->by_time);
		quic_pnspace_lost_del(s, pkt);
	}
}

/* Frames of a lost packet go back to the front of their queue. */
static void quic_frames_requeue(struct sock *sk, struct list_head *frames,
				struct list_head *lost)
{
	struct quic_frame *f, *n;
	struct quic_stream *s;

	list_for_each_entry_safe(f, n, frames, list) {
		list_del(&f->list);
		if (f->type == QUIC_FRAME_STREAM) {
			s = quic_stream_find(sk, f->stream_id);
			if (!s || s->send.state >= QUIC_STREAM_SEND_STATE_RESET_SENT) {
				quic_frame_free(sk, f);
				continue;
			}
		}
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_FRM_RETRANS);
		list_add_tail(&f->list, lost);
	}
}

/* Lost packets remembered per space, to recognise reordering. */
#define QUIC_LOST_MAX	64

/**
 * quic_loss_detect - declare packets lost (RFC 9002 Section 6.1)
 * @sk: the socket
 * @space: packet number space
 * @now: current time (us)
 *
 * Packet threshold (kPacketThreshold, 3) or time threshold (9/8 RTT),
 * both raised when reordering shows (quic_cong_spurious(), Appendix A.10).
 * The lost frames, not the packets, are queued again; the packets are
 * kept a while on the lost list, in case they arrived after all.  Then
 * one congestion event for the last lost packet (Appendix B.8), and
 * persistent congestion when lost packets with no acknowledgment between
 * them span its duration (Section 7.6).  Lost packets are always a prefix
 * of the sent list: later packets were sent later and are nearer to the
 * largest acknowledged.
 */
static void quic_loss_detect(struct sock *sk, u8 space, u64 now)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[space];
	u64 delay = quic_cong_loss_delay(&qs->cong);
	u64 last = 0, run_first = 0, run_last = 0;
	u32 thresh = qs->cong.reorder_pkts, n = 0;
	struct quic_sent_pkt *pkt, *tmp;
	bool persistent = false, by_pn;
	LIST_HEAD(lost);
	LIST_HEAD(gone);

	s->loss_time = 0;
	list_for_each_entry_safe(pkt, tmp, &s->sent, list) {
		if (pkt->pn > s->largest_acked)
			break;
		by_pn = s->largest_acked >= pkt->pn + thresh;
		if ((by_pn || pkt->time + delay <= now) &&
		    space == QUIC_SPACE_APP && quic_pl_lost(sk, pkt->pn)) {
			trace_quic_packet_lost(sk, space, pkt->pn,
					       QUIC_TRACE_LOST_PROBE);
			quic_cong_on_probe_lost(&qs->cong, pkt->size);
			quic_frames_requeue(sk, &pkt->frames, &lost);
			list_del(&pkt->list);
			quic_sent_pkt_free(pkt);
			continue;
		}
		if (by_pn || pkt->time + delay <= now) {
			trace_quic_packet_lost(sk, space, pkt->pn,
					       by_pn ? QUIC_TRACE_LOST_PN :
						       QUIC_TRACE_LOST_TIME);
			quic_cong_on_lost(&qs->cong, pkt->size);
			if (pkt->ecn)
				quic_ecn_lost(sk);
			last = pkt->time;
			if (!run_first || pkt->ack_gap)
				run_first = pkt->time;
			run_last = pkt->time;
			if (quic_cong_persistent(&qs->cong, run_first, run_last))
				persistent = true;
			quic_frames_requeue(sk, &pkt->frames, &lost);
			pkt->reorder = min_t(s64, s->largest_acked - pkt->pn, U8_MAX);
			pkt->by_time = !by_pn;
			list_move_tail(&pkt->list, &gone);
			n++;
			continue;
		}
		if (!s->loss_time || pkt->time + delay < s->loss_time)
			s->loss_time = pkt->time + delay;
	}
	list_splice(&lost, &s->outq);
	if (!n)
		return;
	quic_cong_event(&qs->cong, last, now, n);
	if (persistent)
		quic_cong_collapse(&qs->cong);
	trace_quic_metrics(sk);
	list_for_each_entry(pkt, &gone, list)
		pkt->episode = qs->cong.episode;
	list_splice_tail(&gone, &s->lost);
	s->nlost += n;
	quic_pnspace_lost_trim(s, QUIC_LOST_MAX);
}

/*
 * RFC 9000 Section 13.4.2 and RFC 9002 Appendix B.7: the ECN counts of an
 * ACK frame that raised the largest acknowledged packet number and newly
 * acknowledged @ect packets sent with ECT(0) (@ecn NULL: a plain ACK).
 * Counts that do not add up turn ECN off on the path; counts that do
 * make it capable, and more CE marks than before are a congestion event
 * for the packet acknowledged last, sent at @sent_time.
 */
static void quic_ecn_ack(struct sock *sk, struct quic_pnspace *s,
			 const u64 *ecn, u32 ect, u64 sent_time, u64 now)
{
	struct quic_sock *qs = quic_sk(sk);
	bool ce;

	if (qs->path.ecn_state == QUIC_ECN_FAILED)
		return;
	if (!ecn) {
		if (ect)	/* the marks, or the peer's counts, went missing */
			quic_ecn_fail(sk);
		return;
	}
	if (!quic_ecn_check(s->ecn_peer, ecn, ect, s->ecn_sent)) {
		quic_ecn_fail(sk);
		return;
	}
	ce = ecn[QUIC_ECN_CE] > s->ecn_peer[QUIC_ECN_CE];
	memcpy(s->ecn_peer, ecn, sizeof(s->ecn_peer));
	if (ect)
		quic_ecn_capable(sk);
	if (ce && quic_cong_ecn_event(&qs->cong, sent_time, now))
		QUIC_INC_STATS(sock_net(sk), QUIC_MIB_ECN_CONGEVENTS);
}

/**
 * quic_ack_process - an ACK frame (RFC 9002 Appendix A.7)
 * @sk: the socket
 * @space: packet number space of the packet that carried it
 * @largest: Largest Acknowledged
 * @delay: ACK Delay field, still scaled by the peer's exponent
 * @ranges: acknowledged ranges, highest first
 * @n: number of @ranges
 * @ecn: the ECN counts of an ACK_ECN frame (QUIC_ECN_*), or NULL
 *
 * In the order of Appendix A.7: the newly acknowledged packets leave the
 * sent list, the RTT is sampled when the largest of them is the Largest
 * Acknowledged (Section 5.1), the ECN counts are checked and may signal
 * congestion (Appendix B.7), losses are detected, and only then does the
 * congestion controller see the acknowledged packets, so that those sent
 * before a recovery period that starts now do not grow the window.
 */
void quic_ack_process(struct sock *sk, u8 space, u64 largest, u64 delay,
		      const struct quic_pn_range *ranges, int n,
		      const u64 *ecn)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[space];
	bool rtt = false, prev_acked = false, newer = false;
	u64 now = quic_now(), sent_time = 0;
	struct quic_sent_pkt *pkt, *tmp;
	u32 ect = 0;
	LIST_HEAD(acked);

	if ((s64)largest > s->largest_acked) {
		s->largest_acked = largest;
		newer = true;
	}
	list_for_each_entry_safe(pkt, tmp, &s->sent, list) {
		if (pkt->pn > (s64)largest || !quic_ranges_has(ranges, n, pkt->pn)) {
			/* Section 7.6.2: no persistent congestion across it. */
			if (prev_acked)
				pkt->ack_gap = 1;
			prev_acked = false;
			if (pkt->pn > (s64)largest)
				break;
			continue;
		}
		list_move_tail(&pkt->list, &acked);
		prev_acked = true;
		ect += pkt->ecn;
		sent_time = pkt->time;	/* the largest acknowledged at the end */
		if (pkt->pn == (s64)largest)
			rtt = true;
	}
	quic_loss_spurious(sk, s, ranges, n);
	trace_quic_ack_received(sk, space, largest, delay, &acked);
	if (list_empty(&acked))
		return;
	if (rtt) {
		u32 sample = min_t(u64, now - sent_time, U32_MAX);

		delay = space == QUIC_SPACE_APP ?
			delay << qs->ack_delay_exponent : 0;
		quic_cong_rtt_sample(&qs->cong, sample,
				     (u32)min_t(u64, delay, U32_MAX),
				     qs->handshake_confirmed, now);
	}
	/* RFC 9000 Section 13.4.2.1: only an ACK that raises the largest
	 * acknowledged is checked, so that reordered ACKs never fail ECN.
	 */
	if (newer)
		quic_ecn_ack(sk, s, ecn, ect, sent_time, now);
	quic_loss_detect(sk, space, now);
	list_for_each_entry_safe(pkt, tmp, &acked, list) {
		list_del(&pkt->list);
		if (space == QUIC_SPACE_APP)
			quic_pl_acked(sk, pkt->pn);
		quic_cong_on_acked(&qs->cong, pkt->size,
				   quic_cong_pn(space, pkt->pn), pkt->time, now);
		quic_sent_pkt_acked(sk, pkt);
	}
	/* RFC 9002 Section 6.2.1: a client keeps backing off until the
	 * server has validated its address.
	 */
	if (qs->is_serv || space != QUIC_SPACE_INITIAL)
		qs->cong.pto_count = 0;
	quic_loss_set_timer(sk);
	trace_quic_metrics(sk);
	sk->sk_write_space(sk);
}

static bool quic_space_in_flight(struct quic_sock *qs, u8 space)
{
	return !qs->space[space].discarded &&
	       !list_empty(&qs->space[space].sent);
}

/* Probes before the idle timeout, at the least, however far backed off. */
#define QUIC_PTO_PER_IDLE	16

/*
 * RFC 9002 Section 6.2.1: the PTO period, doubled for each consecutive PTO.
 * The doubling stops at 1/16 of the idle timeout: a probe that comes later
 * than the peer's idle timer (RFC 9000 Section 10.1) cannot save the
 * connection, while one a second or two apart costs the path nothing.  So
 * a path that comes back for a moment (5 s black, 2 s open) hears from us
 * before the connection is lost.
 */
static u64 quic_loss_pto_period(struct quic_sock *qs, bool app)
{
	u64 pto = quic_cong_pto(&qs->cong, app);
	u64 period = pto << min_t(u8, qs->cong.pto_count, 16);

	if (!qs->idle_timeout)
		return period;
	return min(period, max(pto, qs->idle_timeout / QUIC_PTO_PER_IDLE));
}

/* RFC 9002 Appendix A.8: earliest loss time, or the PTO. */
static u64 quic_loss_deadline(struct sock *sk, u8 *space, bool *pto)
{
	struct quic_sock *qs = quic_sk(sk);
	u64 t, best = 0;
	int i;

	*pto = false;
	for (i = 0; i < QUIC_SPACE_MAX; i++) {
		t = qs->space[i].loss_time;
		if (t && (!best || t < best)) {
			best = t;
			*space = i;
		}
	}
	if (best)
		return best;
	*pto = true;
	for (i = QUIC_SPACE_INITIAL; i != QUIC_SPACE_MAX + 1; i++) {
		u8 sp = i % QUIC_SPACE_MAX;	/* Initial, Handshake, then App */

		if (!quic_space_in_flight(qs, sp))
			continue;
		if (sp == QUIC_SPACE_APP && !qs->handshake_confirmed)
			continue;
		t = qs->space[sp].last_sent_time +
		    quic_loss_pto_period(qs, sp == QUIC_SPACE_APP);
		if (!best || t < best) {
			best = t;
			*space = sp;
		}
	}
	return best;
}

/* The client must keep probing until the handshake is confirmed. */
static bool quic_loss_anti_deadlock(struct sock *sk, u8 *space)
{
	struct quic_sock *qs = quic_sk(sk);

	if (qs->is_serv || qs->handshake_confirmed || !quic_is_connected(sk))
		return false;
	if (!qs->space[QUIC_SPACE_INITIAL].crypto_send)
		return false;	/* nothing sent yet: connect() sends nothing */
	*space = qs->space[QUIC_SPACE_HANDSHAKE].discarded ||
		 !quic_crypto_send_ready(&qs->crypto[QUIC_CRYPTO_HANDSHAKE]) ?
		 QUIC_SPACE_INITIAL : QUIC_SPACE_HANDSHAKE;
	if (qs->space[*space].discarded)
		return false;
	return true;
}

/* RFC 9002 Appendix A.8: SetLossDetectionTimer. */
void quic_loss_set_timer(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	u64 deadline, now = quic_now();
	bool pto;
	u8 space;

	if (quic_is_closed(sk))
		return;
	/* A server blocked by the anti-amplification limit could not send
	 * a probe: the client's next datagram re-arms the timer.
	 */
	if (qs->is_serv && !quic_path_room(sk)) {
		quic_timer_stop(sk, QUIC_TIMER_LOSS);
		return;
	}
	deadline = quic_loss_deadline(sk, &space, &pto);
	if (!deadline && quic_loss_anti_deadlock(sk, &space))
		deadline = now + quic_loss_pto_period(qs, false);
	if (!deadline) {
		quic_timer_stop(sk, QUIC_TIMER_LOSS);
		return;
	}
	quic_timer_reset(sk, QUIC_TIMER_LOSS,
			 deadline > now ? deadline - now : 0);
}

/* RFC 9002 Appendix A.9: OnLossDetectionTimeout. */
void quic_loss_timeout(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	u64 deadline, now = quic_now();
	bool pto;
	u8 space;

	if (!quic_is_connected(sk))
		return;
	deadline = quic_loss_deadline(sk, &space, &pto);
	if (deadline && !pto) {
		quic_loss_detect(sk, space, now);
		quic_output_flush(sk);
		quic_loss_set_timer(sk);
		return;
	}
	if (!deadline && !quic_loss_anti_deadlock(sk, &space)) {
		quic_loss_set_timer(sk);
		return;
	}
	if (deadline > now + QUIC_GRANULARITY) {
		quic_loss_set_timer(sk);	/* fired early */
		return;
	}
	if (qs->cong.pto_count < U8_MAX)
		qs->cong.pto_count++;
	quic_ecn_pto(sk);
	if (space == QUIC_SPACE_APP && qs->cong.pto_count >= QUIC_PL_BLACKHOLE_PTOS)
		quic_pl_blackhole(sk);
	quic_output_probe(sk, space);
	quic_loss_set_timer(sk);
}

/**
 * quic_space_discard - drop a packet number space's keys and state
 * @sk: the socket
 * @space: QUIC_SPACE_INITIAL or QUIC_SPACE_HANDSHAKE
 *
 * RFC 9001 Section 4.9 and RFC 9002 Section 6.4: its packets leave the
 * bytes in flight and are not retransmitted.  The transforms are freed
 * later, in process context (quic_sock.keys_discard).
 */
void quic_space_discard(struct sock *sk, u8 space)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[space];
	struct quic_sent_pkt *pkt, *tmp;

	if (s->discarded)
		return;
	s->discarded = 1;
	list_for_each_entry_safe(pkt, tmp, &s->sent, list) {
		list_del(&pkt->list);
		quic_cong_on_discard(&qs->cong, pkt->size);
		if (pkt->ecn)	/* never acknowledged: no sign the marks pass */
			quic_ecn_lost(sk);
		quic_frame_list_free(sk, &pkt->frames);
		quic_sent_pkt_free(pkt);
	}
	quic_frame_list_free(sk, &s->outq);
	quic_pnspace_free(s);
	s->loss_time = 0;
	qs->keys_discard = 1;
	quic_conn_defer(sk);
	qs->cong.pto_count = 0;
	quic_loss_set_timer(sk);
}

/**
 * quic_space_restart - send a space's frames again as if never sent
 * @sk: the socket
 * @space: packet number space
 *
 * RFC 9002 Section 6.3: after a Retry the client's Initial packets are
 * neither lost nor acknowledged; they leave the bytes in flight, their
 * frames are sent again (packet numbers go on, RFC 9000 Section 17.2.5.3),
 * and the probe count starts over.
 */
void quic_space_restart(struct sock *sk, u8 space)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[space];
	struct quic_sent_pkt *pkt, *tmp;
	LIST_HEAD(again);

	list_for_each_entry_safe(pkt, tmp, &s->sent, list) {
		list_del(&pkt->list);
		quic_cong_on_discard(&qs->cong, pkt->size);
		if (pkt->ecn)	/* never acknowledged: no sign the marks pass */
			quic_ecn_lost(sk);
		list_splice_tail_init(&pkt->frames, &again);
		quic_sent_pkt_free(pkt);
	}
	list_splice(&again, &s->outq);
	s->loss_time = 0;
	qs->cong.pto_count = 0;
}

/**
 * quic_space_zrtt_end - 1-RTT keys take over from 0-RTT keys
 * @sk: the socket, in process context
 *
 * RFC 9001 Sections 4.6.2 and 4.9.3, RFC 9002 Section 6.3: once both 1-RTT
 * keys are installed (and the 1-RTT packets that waited for them, with any
 * ACK of 0-RTT packets, were processed), a client's 0-RTT packets still
 * unacknowledged leave the bytes in flight and their frames go again in
 * 1-RTT packets: a server that rejected 0-RTT never acknowledges them, one
 * that accepted them takes a repeated STREAM range as a duplicate.  The
 * 0-RTT keys go at both ends; 0-RTT packets that arrive later are dropped.
 */
void quic_space_zrtt_end(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_pnspace *s = &qs->space[QUIC_SPACE_APP];
	struct quic_sent_pkt *pkt, *tmp;
	LIST_HEAD(again);

	if (qs->zrtt_done)
		return;
	qs->zrtt_done = 1;
	list_for_each_entry_safe(pkt, tmp, &s->sent, list) {
		if (!pkt->zrtt)
			continue;
		list_del(&pkt->list);
		quic_cong_on_discard(&qs->cong, pkt->size);
		if (!list_empty(&pkt->frames))
			QUIC_INC_STATS(sock_net(sk), QUIC_MIB_FRM_RETRANS);
		list_splice_tail_init(&pkt->frames, &again);
		quic_sent_pkt_free(pkt);
	}
	list_splice(&again, &s->outq);
	quic_crypto_destroy(&qs->crypto[QUIC_CRYPTO_EARLY]);
	quic_loss_set_timer(sk);
}

static void quic_conn_set_closed(struct sock *sk)
{
	int i;

	quic_state_store(sk, QUIC_SS_CLOSED);
	for (i = 0; i < QUIC_TIMER_MAX; i++)
		quic_timer_stop(sk, i);
	sk->sk_state_change(sk);
	sk->sk_write_space(sk);
}

static void quic_conn_close_event(struct sock *sk)
{
	quic_event_queue(sk, QUIC_EVENT_CONNECTION_CLOSE, &quic_sk(sk)->close,
			 sizeof(struct quic_connection_close));
}

/**
 * quic_conn_closed - the connection ended without us sending anything
 * @sk: the socket
 * @errcode: error code (0 for an idle timeout)
 * @frame: offending frame type of a transport close
 * @phrase: reason phrase, or NULL
 * @len: its length; only 63 bytes are kept
 *
 * RFC 9000 Section 10: peer's CONNECTION_CLOSE (draining), idle timeout,
 * stateless reset, version negotiation failure.
 */
void quic_conn_closed(struct sock *sk, u32 errcode, u8 frame,
		      const u8 *phrase, u32 len)
{
	struct quic_connection_close *c = &quic_sk(sk)->close;

	if (quic_is_closed(sk))
		return;
	memset(c, 0, sizeof(*c));
	c->errcode = errcode;
	c->frame = frame;
	if (phrase)
		memcpy(c->phrase, phrase, min_t(u32, len, sizeof(c->phrase) - 1));
	quic_conn_close_event(sk);
	quic_conn_set_closed(sk);
}

/* The highest space whose send keys we have, for a transport close. */
static u8 quic_conn_close_space(struct quic_sock *qs)
{
	if (quic_crypto_send_ready(&qs->crypto[QUIC_CRYPTO_APP]) &&
	    qs->handshake_confirmed)
		return QUIC_SPACE_APP;
	if (!qs->space[QUIC_SPACE_HANDSHAKE].discarded &&
	    quic_crypto_send_ready(&qs->crypto[QUIC_CRYPTO_HANDSHAKE]))
		return QUIC_SPACE_HANDSHAKE;
	if (!qs->space[QUIC_SPACE_INITIAL].discarded)
		return QUIC_SPACE_INITIAL;
	return QUIC_SPACE_APP;
}

/**
 * quic_conn_error - close the connection for an error we detected
 * @sk: the socket
 * @errcode: transport error code (RFC 9000 Section 20.1)
 * @frame: type of the frame that caused it, 0 if none
 *
 * RFC 9000 Section 10.2: CONNECTION_CLOSE (0x1c) goes out once, then the
 * socket is CLOSED and the application gets the CONNECTION_CLOSE event.
 */
void quic_conn_error(struct sock *sk, u32 errcode, u8 frame)
{
	struct quic_sock *qs = quic_sk(sk);
	struct quic_connection_close *c = &qs->close;

	if (quic_is_closed(sk))
		return;
	net_dbg_ratelimited("quic: sk %p closing: error 0x%x frame 0x%x\n",
			    sk, errcode, frame);
	memset(c, 0, sizeof(*c));
	c->errcode = errcode;
	c->frame = frame;
	quic_output_close(sk, quic_conn_close_space(qs), false);
	quic_conn_close_event(sk);
	quic_conn_set_closed(sk);
}
