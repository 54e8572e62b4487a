// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: /proc/net/quic/{snmp,conns,eps} (ABI reference Section 6.1) and
 * /proc/net/quic/cong, the RTT and congestion state of each connection.
 *
 * The files are per network namespace.  conns and eps walk quic_net.socks
 * under quic_net.lock; a socket is unhashed under that lock before it is
 * freed, so every socket seen there is alive.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/seq_file_net.h>
#include <net/ip.h>
#include <net/sock.h>

#include "quic.h"

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
