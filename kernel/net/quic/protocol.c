// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: module init and exit, protocol registration.
 *
 * IPPROTO_QUIC (261) is registered for AF_INET and AF_INET6, each with
 * SOCK_STREAM and SOCK_DGRAM; the four combinations behave the same.  The
 * module also owns the per-netns state, the memory accounting of struct
 * proto and the sysctls of /proc/sys/net/quic (initial namespace only, ABI
 * reference Section 6.2).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/module.h>
#include <linux/percpu_counter.h>
#include <linux/swap.h>
#include <net/inet_common.h>
#include <net/protocol.h>
#include <net/sock.h>
#include <net/transp_v6.h>

#include "quic.h"
#include "input.h"

#if !IS_ENABLED(CONFIG_IPV6)
#error "QUIC needs CONFIG_IPV6 (like IP_QUIC in the reference Kconfig)"
#endif

unsigned int quic_net_id __read_mostly;

static long sysctl_quic_mem[3];
int sysctl_quic_rmem[3];
int sysctl_quic_wmem[3];

static atomic_long_t quic_memory_allocated;
static DEFINE_PER_CPU(int, quic_memory_per_cpu_fw_alloc);
static struct percpu_counter quic_sockets_allocated;
static unsigned long quic_memory_pressure;

static void quic_enter_memory_pressure(struct sock *sk)
{
	WRITE_ONCE(quic_memory_pressure, 1);
}

QUIC_DEFINE_IOCTL(quic_ioctl)

static struct proto quic_prot = {
	.name			= "QUIC",
	.owner			= THIS_MODULE,
	.init			= quic_init_sock,
	.destroy		= quic_destroy_sock,
	.close			= quic_close,
	.disconnect		= quic_disconnect,
	.shutdown		= quic_shutdown,
	.ioctl			= quic_ioctl_compat,
	.setsockopt		= quic_setsockopt,
	.getsockopt		= quic_getsockopt,
	.sendmsg		= quic_sendmsg,
	.recvmsg		= quic_recvmsg,
	.bind			= quic_bind,
	.unhash			= quic_unhash,
	.backlog_rcv		= quic_backlog_rcv,
	.release_cb		= quic_release_cb,
	.no_autobind		= true,
	.memory_allocated	= &quic_memory_allocated,
	.per_cpu_fw_alloc	= &quic_memory_per_cpu_fw_alloc,
	.memory_pressure	= &quic_memory_pressure,
	.enter_memory_pressure	= quic_enter_memory_pressure,
	.sockets_allocated	= &quic_sockets_allocated,
	.sysctl_mem		= sysctl_quic_mem,
	.sysctl_rmem		= sysctl_quic_rmem,
	.sysctl_wmem		= sysctl_quic_wmem,
	.obj_size		= sizeof(struct quic_sock),
};

/* quic_init() sets ipv6_pinfo_offset where the kernel has it (compat.h). */
static struct proto quicv6_prot = {
	.name			= "QUICv6",
	.owner			= THIS_MODULE,
	.init			= quic_init_sock,
	.destroy		= quic_destroy_sock,
	.close			= quic_close,
	.disconnect		= quic_disconnect,
	.shutdown		= quic_shutdown,
	.ioctl			= quic_ioctl_compat,
	.setsockopt		= quic_setsockopt,
	.getsockopt		= quic_getsockopt,
	.sendmsg		= quic_sendmsg,
	.recvmsg		= quic_recvmsg,
	.bind			= quic_bind,
	.unhash			= quic_unhash,
	.backlog_rcv		= quic_backlog_rcv,
	.release_cb		= quic_release_cb,
	.no_autobind		= true,
	.memory_allocated	= &quic_memory_allocated,
	.per_cpu_fw_alloc	= &quic_memory_per_cpu_fw_alloc,
	.memory_pressure	= &quic_memory_pressure,
	.enter_memory_pressure	= quic_enter_memory_pressure,
	.sockets_allocated	= &quic_sockets_allocated,
	.sysctl_mem		= sysctl_quic_mem,
	.sysctl_rmem		= sysctl_quic_rmem,
	.sysctl_wmem		= sysctl_quic_wmem,
	.obj_size		= sizeof(struct quic6_sock),
};

QUIC_DEFINE_ACCEPT(quic_inet_accept)

static const struct proto_ops quic_proto_ops = {
	.family		= PF_INET,
	.owner		= THIS_MODULE,
	.release	= inet_release,
	.bind		= inet_bind,
	.connect	= quic_inet_connect,
	.socketpair	= sock_no_socketpair,
	.accept		= quic_inet_accept_compat,
	.getname	= quic_inet_getname,
	.poll		= quic_inet_poll,
	.ioctl		= inet_ioctl,
	.listen		= quic_inet_listen,
	.shutdown	= inet_shutdown,
	.setsockopt	= sock_common_setsockopt,
	.getsockopt	= sock_common_getsockopt,
	.sendmsg	= quic_inet_sendmsg,
	.recvmsg	= quic_inet_recvmsg,
	.mmap		= sock_no_mmap,
};

static const struct proto_ops quicv6_proto_ops = {
	.family		= PF_INET6,
	.owner		= THIS_MODULE,
	.release	= inet6_release,
	.bind		= inet6_bind,
	.connect	= quic_inet_connect,
	.socketpair	= sock_no_socketpair,
	.accept		= quic_inet_accept_compat,
	.getname	= quic_inet_getname,
	.poll		= quic_inet_poll,
	.ioctl		= inet6_ioctl,
	.listen		= quic_inet_listen,
	.shutdown	= inet_shutdown,
	.setsockopt	= sock_common_setsockopt,
	.getsockopt	= sock_common_getsockopt,
	.sendmsg	= quic_inet_sendmsg,
	.recvmsg	= quic_inet_recvmsg,
	.mmap		= sock_no_mmap,
};

static struct inet_protosw quic_stream_protosw = {
	.type		= SOCK_STREAM,
	.protocol	= IPPROTO_QUIC,
	.prot		= &quic_prot,
	.ops		= &quic_proto_ops,
};

static struct inet_protosw quic_dgram_protosw = {
	.type		= SOCK_DGRAM,
	.protocol	= IPPROTO_QUIC,
	.prot		= &quic_prot,
	.ops		= &quic_proto_ops,
};

static struct inet_protosw quicv6_stream_protosw = {
	.type		= SOCK_STREAM,
	.protocol	= IPPROTO_QUIC,
	.prot		= &quicv6_prot,
	.ops		= &quicv6_proto_ops,
};

static struct inet_protosw quicv6_dgram_protosw = {
	.type		= SOCK_DGRAM,
	.protocol	= IPPROTO_QUIC,
	.prot		= &quicv6_prot,
	.ops		= &quicv6_proto_ops,
};

/* The protosw entries go last: once they exist, sockets can be created. */
static int quic_protosw_init(void)
{
	int err;

	inet_register_protosw(&quic_stream_protosw);
	inet_register_protosw(&quic_dgram_protosw);
	err = inet6_register_protosw(&quicv6_stream_protosw);
	if (err)
		goto err_v6_stream;
	err = inet6_register_protosw(&quicv6_dgram_protosw);
	if (err)
		goto err_v6_dgram;
	return 0;

err_v6_dgram:
	inet6_unregister_protosw(&quicv6_stream_protosw);
err_v6_stream:
	inet_unregister_protosw(&quic_dgram_protosw);
	inet_unregister_protosw(&quic_stream_protosw);
	return err;
}

static void quic_protosw_exit(void)
{
	inet6_unregister_protosw(&quicv6_dgram_protosw);
	inet6_unregister_protosw(&quicv6_stream_protosw);
	inet_unregister_protosw(&quic_dgram_protosw);
	inet_unregister_protosw(&quic_stream_protosw);
}

static int quic_proto_init(void)
{
	int err;

	err = proto_register(&quic_prot, 1);
	if (err)
		return err;
	quic_compat_set_ipv6_pinfo_offset(&quicv6_prot,
					  offsetof(struct quic6_sock, inet6));
	err = proto_register(&quicv6_prot, 1);
	if (err)
		proto_unregister(&quic_prot);
	return err;
}

static void quic_proto_exit(void)
{
	proto_unregister(&quicv6_prot);
	proto_unregister(&quic_prot);
}

/* Per network namespace state. */

static int __net_init quic_net_init(struct net *net)
{
	struct quic_net *qn = quic_net(net);
	int err;

	mutex_init(&qn->lock);
	INIT_HLIST_HEAD(&qn->udp_socks);
	INIT_HLIST_HEAD(&qn->socks);
	/* Quiet: a flood of triggers is not worth a line in the log. */
	ratelimit_state_init(&qn->reset_rs, HZ, QUIC_RESET_RATE);
	ratelimit_set_flags(&qn->reset_rs, RATELIMIT_MSG_ON_RELEASE);

	qn->mib = alloc_percpu(struct quic_mib);
	if (!qn->mib)
		return -ENOMEM;
	err = quic_proc_init(net);
	if (err) {
		free_percpu(qn->mib);
		return err;
	}
	return 0;
}

/* User sockets pin their namespace; kernel consumers close theirs first. */
static void __net_exit quic_net_exit(struct net *net)
{
	struct quic_net *qn = quic_net(net);

	WARN_ON_ONCE(!hlist_empty(&qn->socks));
	WARN_ON_ONCE(!hlist_empty(&qn->udp_socks));
	quic_proc_exit(net);
	free_percpu(qn->mib);
	mutex_destroy(&qn->lock);
}

static struct pernet_operations quic_net_ops = {
	.init	= quic_net_init,
	.exit	= quic_net_exit,
	.id	= &quic_net_id,
	.size	= sizeof(struct quic_net),
};

/* Sysctls and memory accounting (ABI reference Section 6.2). */

static struct ctl_table quic_sysctl_table[] = {
	{
		.procname	= "quic_mem",
		.data		= &sysctl_quic_mem,
		.maxlen		= sizeof(sysctl_quic_mem),
		.mode		= 0644,
		.proc_handler	= proc_doulongvec_minmax,
	},
	{
		.procname	= "quic_rmem",
		.data		= &sysctl_quic_rmem,
		.maxlen		= sizeof(sysctl_quic_rmem),
		.mode		= 0644,
		.proc_handler	= proc_dointvec_minmax,
		.extra1		= SYSCTL_ONE,
	},
	{
		.procname	= "quic_wmem",
		.data		= &sysctl_quic_wmem,
		.maxlen		= sizeof(sysctl_quic_wmem),
		.mode		= 0644,
		.proc_handler	= proc_dointvec_minmax,
		.extra1		= SYSCTL_ONE,
	},
	{ }	/* sentinel for kernels before 6.6, not registered on newer ones */
};

static struct ctl_table_header *quic_sysctl_header;

static int quic_sysctl_init(void)
{
	quic_sysctl_header =
		quic_compat_register_sysctl(&init_net, "net/quic",
					    quic_sysctl_table,
					    ARRAY_SIZE(quic_sysctl_table) - 1);
	return quic_sysctl_header ? 0 : -ENOMEM;
}

static void quic_sysctl_exit(void)
{
	unregister_net_sysctl_table(quic_sysctl_header);
}

/*
 * Boot defaults as SCTP and TCP compute them: the pressure thresholds scale
 * with free memory (L = max(free buffer pages / 8, 128)), and the largest
 * per-socket buffer is S = min(4 MiB, quic_mem[1] << (PAGE_SHIFT - 7)).
 */
static void quic_mem_defaults(void)
{
	unsigned long limit;
	int max_share;

	limit = max(nr_free_buffer_pages() / 8, 128UL);
	sysctl_quic_mem[0] = limit / 4 * 3;
	sysctl_quic_mem[1] = limit;
	sysctl_quic_mem[2] = sysctl_quic_mem[0] * 2;

	limit = sysctl_quic_mem[1] << (PAGE_SHIFT - 7);
	max_share = min(4UL * 1024 * 1024, limit);

	sysctl_quic_rmem[0] = PAGE_SIZE;
	sysctl_quic_rmem[1] = 1024 * 1024;
	sysctl_quic_rmem[2] = max(1024 * 1024, max_share);

	sysctl_quic_wmem[0] = PAGE_SIZE;
	sysctl_quic_wmem[1] = 16 * 1024;
	sysctl_quic_wmem[2] = max(64 * 1024, max_share);
}

static int __init quic_init(void)
{
	int err;

	/* The module aliases below spell the protocol number out. */
	BUILD_BUG_ON(IPPROTO_QUIC != 261);
	BUILD_BUG_ON((int)IPPROTO_QUIC >= (int)IPPROTO_MAX);
	/* 6.1 finds the ipv6_pinfo at obj_size - sizeof(struct ipv6_pinfo). */
	BUILD_BUG_ON(offsetof(struct quic6_sock, inet6) +
		     sizeof(struct ipv6_pinfo) != sizeof(struct quic6_sock));

	quic_mem_defaults();
	err = percpu_counter_init(&quic_sockets_allocated, 0, GFP_KERNEL);
	if (err)
		return err;
	err = quic_crypto_init();
	if (err)
		goto err_crypto;
	err = quic_connid_init();
	if (err)
		goto err_connid;
	err = quic_proto_init();
	if (err)
		goto err_proto;
	err = register_pernet_subsys(&quic_net_ops);
	if (err)
		goto err_pernet;
	err = quic_sysctl_init();
	if (err)
		goto err_sysctl;
	err = quic_protosw_init();
	if (err)
		goto err_protosw;

	pr_debug("%s: registered protocol %d\n", __func__, IPPROTO_QUIC);
	return 0;

err_protosw:
	quic_sysctl_exit();
err_sysctl:
	unregister_pernet_subsys(&quic_net_ops);
err_pernet:
	quic_proto_exit();
err_proto:
	quic_connid_exit();
err_connid:
	quic_crypto_exit();
err_crypto:
	percpu_counter_destroy(&quic_sockets_allocated);
	return err;
}

static void __exit quic_exit(void)
{
	quic_protosw_exit();
	quic_sysctl_exit();
	unregister_pernet_subsys(&quic_net_ops);
	quic_proto_exit();
	quic_connid_exit();
	quic_crypto_exit();
	percpu_counter_destroy(&quic_sockets_allocated);
	pr_debug("%s: unregistered protocol %d\n", __func__, IPPROTO_QUIC);
}

module_init(quic_init);
module_exit(quic_exit);

MODULE_ALIAS_NET_PF_PROTO(PF_INET, 261);
MODULE_ALIAS_NET_PF_PROTO(PF_INET6, 261);
MODULE_DESCRIPTION("Support for the QUIC protocol (RFC9000)");
MODULE_LICENSE("GPL");
/* Out of tree only (from dkms.conf); in a kernel tree the release is it. */
#ifdef QUIC_VERSION
MODULE_VERSION(QUIC_VERSION);
#endif
