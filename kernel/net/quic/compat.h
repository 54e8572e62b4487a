/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: kernel API differences between the supported releases (6.1 and newer).
 *
 * The QUIC_HAVE_* symbols are set by Kbuild after grepping the headers of the
 * kernel being built against, so a backport to an older stable kernel is
 * picked up too.  Everything else in the module is version-independent and
 * uses the helpers below; no #ifdef appears inside a function body elsewhere.
 */

#ifndef __NET_QUIC_COMPAT_H
#define __NET_QUIC_COMPAT_H

#include <linux/export.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/sysctl.h>
#include <net/net_namespace.h>
#include <net/sock.h>

/*
 * Where inet6_create() finds struct ipv6_pinfo: 6.5+ reads
 * proto->ipv6_pinfo_offset, older kernels assume it ends the object
 * (obj_size - sizeof(struct ipv6_pinfo)).  struct quic6_sock satisfies both.
 */
#ifdef QUIC_HAVE_IPV6_PINFO_OFFSET
static inline void quic_compat_set_ipv6_pinfo_offset(struct proto *prot,
						     unsigned int offset)
{
	prot->ipv6_pinfo_offset = offset;
}
#else
static inline void quic_compat_set_ipv6_pinfo_offset(struct proto *prot,
						     unsigned int offset)
{
}
#endif

/*
 * proto_ops->accept: 6.10+ passes struct proto_accept_arg, older kernels
 * pass flags and kern.  QUIC_DEFINE_ACCEPT(fn) defines fn_compat() with the
 * signature of the running kernel around
 * int fn(struct socket *sock, struct socket *newsock, int flags, bool kern).
 */
#ifdef QUIC_HAVE_PROTO_ACCEPT_ARG
#define QUIC_DEFINE_ACCEPT(fn)						\
static int fn##_compat(struct socket *sock, struct socket *newsock,	\
		       struct proto_accept_arg *arg)			\
{									\
	arg->err = fn(sock, newsock, arg->flags, arg->kern);		\
	return arg->err;						\
}
#else
#define QUIC_DEFINE_ACCEPT(fn)						\
static int fn##_compat(struct socket *sock, struct socket *newsock,	\
		       int flags, bool kern)				\
{									\
	return fn(sock, newsock, flags, kern);				\
}
#endif

/*
 * proto->ioctl: 6.4+ passes an int the core copies in and out (sk_ioctl()),
 * older kernels pass the user pointer.  QUIC_DEFINE_IOCTL(fn) defines
 * fn_compat() around int fn(struct sock *sk, int cmd, int *karg).
 */
#ifdef QUIC_HAVE_IOCTL_KARG
#define QUIC_DEFINE_IOCTL(fn)						\
static int fn##_compat(struct sock *sk, int cmd, int *karg)		\
{									\
	return fn(sk, cmd, karg);					\
}
#else
#define QUIC_DEFINE_IOCTL(fn)						\
static int fn##_compat(struct sock *sk, int cmd, unsigned long arg)	\
{									\
	int karg = 0, err;						\
									\
	err = fn(sk, cmd, &karg);					\
	if (!err && put_user(karg, (int __user *)arg))			\
		err = -EFAULT;						\
	return err;							\
}
#endif

/*
 * Sysctl tables: 6.6+ registers a table by size (and 6.11+ rejects an empty
 * sentinel entry), older kernels walk the table up to the sentinel.  Callers
 * keep the sentinel and pass the number of real entries.
 */
#ifdef QUIC_HAVE_NET_SYSCTL_SZ
static inline struct ctl_table_header *
quic_compat_register_sysctl(struct net *net, const char *path,
			    struct ctl_table *table, size_t entries)
{
	return register_net_sysctl_sz(net, path, table, entries);
}
#else
static inline struct ctl_table_header *
quic_compat_register_sysctl(struct net *net, const char *path,
			    struct ctl_table *table, size_t entries)
{
	return register_net_sysctl(net, path, table);
}
#endif

/*
 * Symbols that exist only for the KUnit tests (test/): VISIBLE_IF_KUNIT
 * makes a function static unless the kernel has KUnit, and
 * EXPORT_SYMBOL_IF_KUNIT() exports it into the EXPORTED_FOR_KUNIT_TESTING
 * namespace only then.  <kunit/visibility.h> is in 6.2 and later (and in
 * the 6.1 stable kernels that backported it); the fallback defines the same,
 * spelled so that checkpatch does not take the definitions for exports.
 * The namespace became a string in 6.13 (EXPORT_SYMBOL_NS(sym, "NS"),
 * MODULE_IMPORT_NS("NS")); QUIC_KUNIT_IMPORT_NS() imports it either way.
 */
#ifdef QUIC_HAVE_KUNIT_VISIBILITY
#include <kunit/visibility.h>
#else
#define QUIC_EXPORT_NS			EXPORT_SYMBOL_NS
#if IS_ENABLED(CONFIG_KUNIT)
#define VISIBLE_IF_KUNIT
#define QUIC_EXPORT_IF_KUNIT(sym)					\
	QUIC_EXPORT_NS(sym, EXPORTED_FOR_KUNIT_TESTING)
#else
#define VISIBLE_IF_KUNIT		static
#define QUIC_EXPORT_IF_KUNIT(sym)	static_assert(!__same_type(sym, void))
#endif
#define EXPORT_SYMBOL_IF_KUNIT		QUIC_EXPORT_IF_KUNIT
#endif

#ifdef QUIC_HAVE_IMPORT_NS_STRING
#define QUIC_KUNIT_IMPORT_NS() MODULE_IMPORT_NS("EXPORTED_FOR_KUNIT_TESTING")
#else
#define QUIC_KUNIT_IMPORT_NS() MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING)
#endif

#endif /* __NET_QUIC_COMPAT_H */
