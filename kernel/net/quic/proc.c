// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: /proc/net/quic/{snmp,conns,eps} (ABI reference Section 6.1) and
 * /proc/net/quic/cong, the RTT and congestion state of each connection.
 *
 * The files are per network namespace.  conns and eps walk quic_net.socks
 * under quic_net.lock; a socket is unhashed under that lock before it is
 * freed, so every socket seen there is alive.
 *
 * Also the two halves of quic_diag.ko's work that need this module's
 * internals: the walk of quic_net.socks and the QUIC_DIAG_* attributes
 * (diag.h).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/inet_diag.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/seq_file_net.h>
#include <net/ip.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "quic.h"
#include "diag.h"

/* Order and spelling are part of the procfs ABI. */
static const char * const quic_mib_names[] = {
	"QuicConnCurrentEstabs",
	"QuicConnPassiveEstabs",
	"QuicConnActiveEstabs",
	"QuicPktRcvFastpaths",
	"QuicPktDecFastpaths",
	"QuicPktEncFastpaths",
	"QuicPktRcvBacklogs",
	"QuicPktDecBacklogs",
	"QuicPktEncBacklogs",
	"QuicPktInvHdrDrop",
	"QuicPktInvNumDrop",
	"QuicPktInvFrmDrop",
	"QuicPktRcvDrop",
	"QuicPktDecDrop",
	"QuicPktEncDrop",
	"QuicFrmRcvBufDrop",
	"QuicFrmRetrans",
	"QuicFrmOutCloses",
	"QuicFrmInCloses",
	"QuicPktRcvEcnCe",
	"QuicEcnCongEvents",
	"QuicEcnFailed",
};

static int quic_snmp_seq_show(struct seq_file *seq, void *v)
{
	struct quic_net *qn = quic_net(seq_file_single_net(seq));
	int i;

	BUILD_BUG_ON(ARRAY_SIZE(quic_mib_names) != QUIC_MIB_MAX);

	for (i = 0; i < QUIC_MIB_MAX; i++)
		seq_printf(seq, "%-32s\t%lu\n", quic_mib_names[i],
			   snmp_fold_field(qn->mib, i));
	return 0;
}

/* "a.b.c.d:port" or compressed IPv6 "addr:port", then a tab. */
static void quic_seq_addr(struct seq_file *seq, const union quic_addr *a)
{
	if (a->sa.sa_family == AF_INET6)
		seq_printf(seq, "%pI6c:%u\t", &a->v6.sin6_addr,
			   ntohs(a->v6.sin6_port));
	else
		seq_printf(seq, "%pI4:%u\t", &a->v4.sin_addr,
			   ntohs(a->v4.sin_port));
}

static void quic_seq_owner(struct seq_file *seq, struct sock *sk)
{
	seq_printf(seq, "%u\t%lu\n",
		   from_kuid_munged(seq_user_ns(seq), sock_i_uid(sk)),
		   sock_i_ino(sk));
}

/*
 * The congestion window, MSS and bytes in flight are read without the
 * socket lock: a snapshot, as for TCP's /proc/net/tcp.
 */
static void quic_conns_show_one(struct seq_file *seq, struct quic_sock *qs)
{
	struct sock *sk = &qs->inet.sk;

	seq_printf(seq, "%pK\t%d\t", sk, quic_state(sk));
	quic_seq_addr(seq, &qs->local);
	quic_seq_addr(seq, &qs->peer);
	quic_seq_addr(seq, &qs->udp->addr);
	seq_printf(seq, "%u\t%u\t%u\t%d\t%d\t%d\t%d\t",
		   READ_ONCE(qs->cong.cwnd), READ_ONCE(qs->path.mss),
		   READ_ONCE(qs->cong.in_flight),
		   READ_ONCE(sk->sk_wmem_queued), sk_rmem_alloc_get(sk),
		   READ_ONCE(sk->sk_sndbuf), READ_ONCE(sk->sk_rcvbuf));
	quic_seq_owner(seq, sk);
}

static int quic_conns_seq_show(struct seq_file *seq, void *v)
{
	struct quic_net *qn = quic_net(seq_file_single_net(seq));
	struct quic_sock *qs;

	seq_puts(seq, "SOCK\tSTATE\tLOCAL_ADDRESS\tREMOTE_ADDRESS\tUDP_ADDRESS\t"
		 "WINDOW\tMSS\tIN_FLIGHT\tTX_QUEUE\tRX_QUEUE\tSNDBUF\tRCVBUF\t"
		 "UID\tINODE\n");
	mutex_lock(&qn->lock);
	hlist_for_each_entry(qs, &qn->socks, node) {
		if (!quic_is_listen(&qs->inet.sk))
			quic_conns_show_one(seq, qs);
	}
	mutex_unlock(&qn->lock);
	return 0;
}

/*
 * One line per connection: RTT estimates (RFC 9002 Section 5) in us, the
 * window, ssthresh and bytes in flight in bytes, packets declared lost,
 * consecutive PTOs, pacing rate in bytes per second and the algorithm;
 * then how many lost packets were acknowledged after all, how many
 * congestion events that undid, and the packet threshold of loss
 * detection they raised.  A snapshot read without the socket lock, as
 * conns.
 */
static void quic_cong_show_one(struct seq_file *seq, struct quic_sock *qs)
{
	const struct quic_cong *c = &qs->cong;
	struct sock *sk = &qs->inet.sk;
	u32 latest_rtt, min_rtt;

	latest_rtt = READ_ONCE(c->latest_rtt);
	smp_rmb(); /* pairs with smp_wmb() in quic_cong_rtt_sample() */
	min_rtt = READ_ONCE(c->min_rtt);

	seq_printf(seq, "%pK\t%d\t", sk, quic_state(sk));
	quic_seq_addr(seq, &qs->local);
	quic_seq_addr(seq, &qs->peer);
	seq_printf(seq, "%s\t%u\t%u\t%u\t%u\t%u\t%d\t%u\t%llu\t%u\t%llu\t%llu\t%u\t%u\n",
		   quic_cong_name(READ_ONCE(c->algo)),
		   READ_ONCE(c->smoothed_rtt),
		   min_rtt == U32_MAX ? 0 : min_rtt, READ_ONCE(c->rttvar),
		   latest_rtt, READ_ONCE(c->cwnd),
		   READ_ONCE(c->ssthresh) == U32_MAX ? -1 :
		   (int)min_t(u32, READ_ONCE(c->ssthresh), INT_MAX),
		   READ_ONCE(c->in_flight), READ_ONCE(c->lost_pkts),
		   READ_ONCE(c->pto_count), quic_cong_pace_rate(c),
		   READ_ONCE(c->spurious_pkts), READ_ONCE(c->undone),
		   READ_ONCE(c->reorder_pkts));
}

static int quic_cong_seq_show(struct seq_file *seq, void *v)
{
	struct quic_net *qn = quic_net(seq_file_single_net(seq));
	struct quic_sock *qs;

	seq_puts(seq, "SOCK\tSTATE\tLOCAL_ADDRESS\tREMOTE_ADDRESS\tALGO\t"
		 "SRTT\tMIN_RTT\tRTTVAR\tLATEST_RTT\tCWND\tSSTHRESH\t"
		 "IN_FLIGHT\tLOST\tPTO_COUNT\tPACING_RATE\tSPURIOUS\t"
		 "UNDONE\tREORDER\n");
	mutex_lock(&qn->lock);
	hlist_for_each_entry(qs, &qn->socks, node) {
		if (!quic_is_listen(&qs->inet.sk))
			quic_cong_show_one(seq, qs);
	}
	mutex_unlock(&qn->lock);
	return 0;
}

static void quic_eps_show_one(struct seq_file *seq, struct quic_sock *qs)
{
	struct sock *sk = &qs->inet.sk;

	seq_printf(seq, "%pK\t%d\t", sk, quic_state(sk));
	quic_seq_addr(seq, &qs->local);
	quic_seq_addr(seq, &qs->udp->addr);
	quic_seq_owner(seq, sk);
}

static int quic_eps_seq_show(struct seq_file *seq, void *v)
{
	struct quic_net *qn = quic_net(seq_file_single_net(seq));
	struct quic_sock *qs;

	seq_puts(seq, "SOCK\tSTATE\tLOCAL_ADDRESS\tUDP_ADDRESS\tUID\tINODE\n");
	mutex_lock(&qn->lock);
	hlist_for_each_entry(qs, &qn->socks, node) {
		if (quic_is_listen(&qs->inet.sk))
			quic_eps_show_one(seq, qs);
	}
	mutex_unlock(&qn->lock);
	return 0;
}

/**
 * quic_diag_socks - the listed sockets of a namespace, a batch at a time
 * @net: the namespace
 * @pos: in: how many to skip; out: advanced past those returned
 * @sks: filled with held sockets (sock_put() each)
 * @max: size of @sks
 *
 * The sockets of /proc/net/quic/conns and eps, in list order.  The list
 * may change between two calls: a socket can then be skipped or given
 * twice, as for any netlink dump that spans several replies.
 *
 * Return: the number of sockets in @sks, 0 at the end.
 */
int quic_diag_socks(struct net *net, unsigned long *pos, struct sock **sks,
		    int max)
{
	struct quic_net *qn = quic_net(net);
	unsigned long i = 0;
	struct quic_sock *qs;
	int n = 0;

	mutex_lock(&qn->lock);
	hlist_for_each_entry(qs, &qn->socks, node) {
		if (i++ < *pos)
			continue;
		if (n == max)
			break;
		sock_hold(&qs->inet.sk);
		sks[n++] = &qs->inet.sk;
	}
	mutex_unlock(&qn->lock);
	*pos += n;
	return n;
}
EXPORT_SYMBOL_GPL(quic_diag_socks);

static int quic_diag_put_cid(struct sk_buff *skb, int type,
			     const struct quic_conn_id_set *set)
{
	const struct quic_conn_id_entry *e = set->active;

	if (!e)
		return 0;
	return nla_put(skb, type, e->key.id.len, e->key.id.data);
}

static int quic_diag_put_cong(struct sk_buff *skb, const struct quic_cong *c)
{
	const char *algo = quic_cong_name(c->algo);

	if (nla_put_string(skb, QUIC_DIAG_CONG_ALGO, algo) ||
	    nla_put_u32(skb, QUIC_DIAG_SRTT, c->smoothed_rtt) ||
	    nla_put_u32(skb, QUIC_DIAG_RTTVAR, c->rttvar) ||
	    nla_put_u32(skb, QUIC_DIAG_MIN_RTT,
			c->min_rtt == U32_MAX ? 0 : c->min_rtt) ||
	    nla_put_u32(skb, QUIC_DIAG_LATEST_RTT, c->latest_rtt) ||
	    nla_put_u32(skb, QUIC_DIAG_CWND, c->cwnd) ||
	    nla_put_u32(skb, QUIC_DIAG_SSTHRESH, c->ssthresh) ||
	    nla_put_u32(skb, QUIC_DIAG_IN_FLIGHT, c->in_flight) ||
	    nla_put_u64_64bit(skb, QUIC_DIAG_LOST, c->lost_pkts,
			      QUIC_DIAG_UNSPEC) ||
	    nla_put_u32(skb, QUIC_DIAG_PTO_COUNT, c->pto_count) ||
	    nla_put_u64_64bit(skb, QUIC_DIAG_PACING_RATE,
			      quic_cong_pace_rate(c), QUIC_DIAG_UNSPEC) ||
	    nla_put_u64_64bit(skb, QUIC_DIAG_BYTES_SENT, c->bytes_sent,
			      QUIC_DIAG_UNSPEC) ||
	    nla_put_u64_64bit(skb, QUIC_DIAG_BYTES_ACKED, c->bytes_acked,
			      QUIC_DIAG_UNSPEC))
		return -EMSGSIZE;
	return 0;
}

static int quic_diag_put_streams(struct sk_buff *skb,
				 const struct quic_stream_table *t)
{
	if (nla_put_u64_64bit(skb, QUIC_DIAG_STREAMS_BIDI_LOCAL,
			      t->next_local[0] - t->freed_local[0],
			      QUIC_DIAG_UNSPEC) ||
	    nla_put_u64_64bit(skb, QUIC_DIAG_STREAMS_UNI_LOCAL,
			      t->next_local[1] - t->freed_local[1],
			      QUIC_DIAG_UNSPEC) ||
	    nla_put_u64_64bit(skb, QUIC_DIAG_STREAMS_BIDI_PEER,
			      t->next_peer[0] - t->done_peer[0],
			      QUIC_DIAG_UNSPEC) ||
	    nla_put_u64_64bit(skb, QUIC_DIAG_STREAMS_UNI_PEER,
			      t->next_peer[1] - t->done_peer[1],
			      QUIC_DIAG_UNSPEC))
		return -EMSGSIZE;
	return 0;
}

/**
 * quic_diag_info_fill - the QUIC_DIAG_* attributes of a socket
 * @sk: a socket from quic_diag_socks(), locked by the caller
 * @skb: the reply, where INET_DIAG_INFO is nested
 *
 * Return: 0, or -EMSGSIZE with @skb as it was.
 */
int quic_diag_info_fill(struct sock *sk, struct sk_buff *skb)
{
	struct quic_sock *qs = quic_sk(sk);
	struct nlattr *nest;
	u32 cipher;

	nest = nla_nest_start(skb, INET_DIAG_INFO);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u8(skb, QUIC_DIAG_SERVER, qs->is_serv) ||
	    (qs->alpn.len &&
	     nla_put(skb, QUIC_DIAG_ALPN, qs->alpn.len, qs->alpn.data)))
		goto cancel;
	if (quic_is_listen(sk))
		goto end;

	cipher = quic_crypto_cipher_type(&qs->crypto[QUIC_CRYPTO_APP].tx);
	if (nla_put_u32(skb, QUIC_DIAG_VERSION, qs->version) ||
	    (cipher && nla_put_u32(skb, QUIC_DIAG_CIPHER, cipher)) ||
	    quic_diag_put_cid(skb, QUIC_DIAG_SCID, &qs->source) ||
	    quic_diag_put_cid(skb, QUIC_DIAG_DCID, &qs->dest) ||
	    quic_diag_put_streams(skb, &qs->streams) ||
	    quic_diag_put_cong(skb, &qs->cong) ||
	    nla_put_u32(skb, QUIC_DIAG_MSS, qs->path.mss) ||
	    nla_put_u64_64bit(skb, QUIC_DIAG_BYTES_RECEIVED,
			      qs->flow.recv_highest, QUIC_DIAG_UNSPEC) ||
	    nla_put_u64_64bit(skb, QUIC_DIAG_IDLE_TIMEOUT, qs->idle_timeout,
			      QUIC_DIAG_UNSPEC))
		goto cancel;
end:
	nla_nest_end(skb, nest);
	return 0;
cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}
EXPORT_SYMBOL_GPL(quic_diag_info_fill);

int quic_proc_init(struct net *net)
{
	struct quic_net *qn = quic_net(net);

	qn->proc_dir = proc_net_mkdir(net, "quic", net->proc_net);
	if (!qn->proc_dir)
		return -ENOMEM;

	if (!proc_create_net_single("snmp", 0444, qn->proc_dir,
				    quic_snmp_seq_show, NULL) ||
	    !proc_create_net_single("conns", 0444, qn->proc_dir,
				    quic_conns_seq_show, NULL) ||
	    !proc_create_net_single("eps", 0444, qn->proc_dir,
				    quic_eps_seq_show, NULL) ||
	    !proc_create_net_single("cong", 0444, qn->proc_dir,
				    quic_cong_seq_show, NULL)) {
		quic_proc_exit(net);
		return -ENOMEM;
	}
	return 0;
}

void quic_proc_exit(struct net *net)
{
	remove_proc_subtree("quic", net->proc_net);
	quic_net(net)->proc_dir = NULL;
}
