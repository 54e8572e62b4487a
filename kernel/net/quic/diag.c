// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC socket monitoring through sock_diag (quic_diag.ko), as
 * net/mptcp/mptcp_diag.c does for MPTCP: inet_diag requests for
 * IPPROTO_QUIC, which comes in the INET_DIAG_REQ_PROTOCOL attribute (261
 * does not fit sdiag_protocol).  The reply format is in diag.h.
 *
 * Sockets come from quic.ko in held batches (quic_diag_socks()), so that
 * each is locked (lock_sock()) while its reply is written, without
 * quic_net.lock held: the socket lock comes first in this module.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/inet_diag.h>
#include <linux/module.h>
#include <linux/sock_diag.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "quic.h"
#include "diag.h"

#define QUIC_DIAG_BATCH	16

/* An address in the form of the reply's family (IPv4 as v4-mapped IPv6). */
static void quic_diag_addr(const union quic_addr *a, int family, __be32 *out)
{
	if (a->sa.sa_family == AF_INET6) {
		memcpy(out, &a->v6.sin6_addr, sizeof(a->v6.sin6_addr));
	} else if (a->sa.sa_family == AF_INET) {
		if (family == AF_INET6) {
			out[2] = htonl(0xffff);
			out[3] = a->v4.sin_addr.s_addr;
		} else {
			out[0] = a->v4.sin_addr.s_addr;
		}
	}
}

/* The inet_diag_msg of a socket but its uid and inode. */
static void quic_diag_msg_fill(struct sock *sk, struct inet_diag_msg *r)
{
	struct quic_sock *qs = quic_sk(sk);

	r->idiag_family = sk->sk_family;
	r->idiag_state = quic_state(sk);
	r->id.idiag_sport = quic_addr_port(&qs->local);
	r->id.idiag_dport = quic_addr_port(&qs->peer);
	quic_diag_addr(&qs->local, sk->sk_family, r->id.idiag_src);
	quic_diag_addr(&qs->peer, sk->sk_family, r->id.idiag_dst);
	r->id.idiag_if = sk->sk_bound_dev_if;
	sock_diag_save_cookie(sk, r->id.idiag_cookie);
	if (quic_is_listen(sk)) {
		r->idiag_rqueue = READ_ONCE(sk->sk_ack_backlog);
		r->idiag_wqueue = READ_ONCE(sk->sk_max_ack_backlog);
	} else {
		r->idiag_rqueue = sk_rmem_alloc_get(sk);
		r->idiag_wqueue = READ_ONCE(sk->sk_wmem_queued);
	}
}

/*
 * For the SKNLGRP_INET*_DESTROY broadcast of a socket being freed, which
 * inet_diag fills itself: no INET_DIAG_INFO (idiag_info_size is 0).
 */
static void quic_diag_get_info(struct sock *sk, struct inet_diag_msg *r,
			       void *info)
{
	quic_diag_msg_fill(sk, r);
}

static int quic_diag_fill(struct sock *sk, struct sk_buff *skb,
			  struct netlink_callback *cb,
			  const struct inet_diag_req_v2 *req, u16 flags,
			  bool net_admin)
{
	struct user_namespace *user_ns = sk_user_ns(NETLINK_CB(cb->skb).sk);
	struct inet_diag_msg *r;
	struct nlmsghdr *nlh;

	nlh = nlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			cb->nlh->nlmsg_type, sizeof(*r), flags);
	if (!nlh)
		return -EMSGSIZE;

	r = nlmsg_data(nlh);
	memset(r, 0, sizeof(*r));
	quic_diag_msg_fill(sk, r);

	if (inet_diag_msg_attrs_fill(sk, skb, r, req->idiag_ext, user_ns,
				     net_admin))
		goto cancel;
	if ((req->idiag_ext & (1 << (INET_DIAG_SKMEMINFO - 1))) &&
	    sock_diag_put_meminfo(sk, skb, INET_DIAG_SKMEMINFO))
		goto cancel;
	if ((req->idiag_ext & (1 << (INET_DIAG_INFO - 1))) &&
	    quic_diag_info_fill(sk, skb))
		goto cancel;

	nlmsg_end(skb, nlh);
	return 0;

cancel:
	nlmsg_cancel(skb, nlh);
	return -EMSGSIZE;
}

static bool quic_diag_match(struct sock *sk,
			    const struct inet_diag_req_v2 *req)
{
	struct quic_sock *qs = quic_sk(sk);

	if (!(req->idiag_states & (1 << quic_state(sk))))
		return false;
	if (req->sdiag_family != AF_UNSPEC &&
	    sk->sk_family != req->sdiag_family)
		return false;
	if (req->id.idiag_sport &&
	    req->id.idiag_sport != quic_addr_port(&qs->local))
		return false;
	if (req->id.idiag_dport &&
	    req->id.idiag_dport != quic_addr_port(&qs->peer))
		return false;
	return true;
}

/*
 * cb->args[0]: sockets of the list consumed by earlier replies.  A socket
 * that did not fit is given again at the start of the next one.
 */
static void quic_diag_dump(struct sk_buff *skb, struct netlink_callback *cb,
			   const struct inet_diag_req_v2 *req)
{
	bool net_admin = netlink_net_capable(cb->skb, CAP_NET_ADMIN);
	struct sock *sks[QUIC_DIAG_BATCH];
	struct net *net = sock_net(skb->sk);
	unsigned long pos = cb->args[0];
	int i, n, err = 0;

	while (!err && (n = quic_diag_socks(net, &pos, sks, ARRAY_SIZE(sks)))) {
		for (i = 0; i < n; i++) {
			struct sock *sk = sks[i];

			if (!err) {
				lock_sock(sk);
				if (quic_diag_match(sk, req))
					err = quic_diag_fill(sk, skb, cb, req,
							     NLM_F_MULTI,
							     net_admin);
				release_sock(sk);
				if (err)
					pos -= n - i;
			}
			sock_put(sk);
		}
		cond_resched();
	}
	cb->args[0] = pos;
}

static bool quic_diag_same(struct sock *sk,
			   const struct inet_diag_req_v2 *req)
{
	struct quic_sock *qs = quic_sk(sk);

	return sk->sk_family == req->sdiag_family &&
	       req->id.idiag_sport == quic_addr_port(&qs->local) &&
	       req->id.idiag_dport == quic_addr_port(&qs->peer) &&
	       !sock_diag_check_cookie(sk, req->id.idiag_cookie);
}

/* One socket, by its ports and the cookie of an earlier reply. */
static int quic_diag_dump_one(struct netlink_callback *cb,
			      const struct inet_diag_req_v2 *req)
{
	struct sk_buff *in_skb = cb->skb;
	struct net *net = sock_net(in_skb->sk);
	struct sock *sks[QUIC_DIAG_BATCH], *found = NULL;
	unsigned long pos = 0;
	struct sk_buff *rep;
	int i, n, err;

	while (!found && (n = quic_diag_socks(net, &pos, sks, ARRAY_SIZE(sks)))) {
		for (i = 0; i < n; i++) {
			if (!found && quic_diag_same(sks[i], req)) {
				found = sks[i];
				continue;
			}
			sock_put(sks[i]);
		}
	}
	if (!found)
		return -ENOENT;

	err = -ENOMEM;
	rep = nlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!rep)
		goto out;
	lock_sock(found);
	err = quic_diag_fill(found, rep, cb, req, 0,
			     netlink_net_capable(in_skb, CAP_NET_ADMIN));
	release_sock(found);
	if (err) {
		kfree_skb(rep);
		goto out;
	}
	err = nlmsg_unicast(net->diag_nlsk, rep, NETLINK_CB(in_skb).portid);
out:
	sock_put(found);
	return err;
}

static const struct inet_diag_handler quic_diag_handler = {
#ifdef QUIC_HAVE_INET_DIAG_OWNER	/* the table is RCU-protected (6.9) */
	.owner		= THIS_MODULE,
#endif
	.dump		= quic_diag_dump,
	.dump_one	= quic_diag_dump_one,
	.idiag_get_info	= quic_diag_get_info,
	.idiag_type	= IPPROTO_QUIC,
};

static int __init quic_diag_init(void)
{
	return inet_diag_register(&quic_diag_handler);
}

static void __exit quic_diag_exit(void)
{
	inet_diag_unregister(&quic_diag_handler);
}

module_init(quic_diag_init);
module_exit(quic_diag_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("QUIC socket monitoring via SOCK_DIAG");
/* What sock_load_diag_module(AF_INET, IPPROTO_QUIC) asks for. */
MODULE_ALIAS_NET_PF_PROTO_NAME(PF_NETLINK, NETLINK_SOCK_DIAG, "-type-2-261");
