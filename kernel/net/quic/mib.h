/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: per-netns SNMP counters, shown in /proc/net/quic/snmp.
 *
 * The order is part of the procfs ABI; proc.c holds the names and checks
 * that there is one per counter.
 */

#ifndef __NET_QUIC_MIB_H
#define __NET_QUIC_MIB_H

#include <net/snmp.h>

enum quic_mib_field {
	QUIC_MIB_CONN_CURRENTESTABS,	/* connections now ESTABLISHED */
	QUIC_MIB_CONN_PASSIVEESTABS,	/* server handshakes completed */
	QUIC_MIB_CONN_ACTIVEESTABS,	/* client handshakes completed */
	QUIC_MIB_PKT_RCVFASTPATHS,	/* packets processed on receive */
	QUIC_MIB_PKT_DECFASTPATHS,	/* packets decrypted synchronously */
	QUIC_MIB_PKT_ENCFASTPATHS,	/* packets encrypted synchronously */
	QUIC_MIB_PKT_RCVBACKLOGS,	/* packets queued to the socket backlog */
	QUIC_MIB_PKT_DECBACKLOGS,	/* packets decrypted asynchronously */
	QUIC_MIB_PKT_ENCBACKLOGS,	/* packets encrypted asynchronously */
	QUIC_MIB_PKT_INVHDRDROP,	/* dropped: header could not be parsed */
	QUIC_MIB_PKT_INVNUMDROP,	/* dropped: bad or duplicate packet number */
	QUIC_MIB_PKT_INVFRMDROP,	/* dropped: bad frame */
	QUIC_MIB_PKT_RCVDROP,		/* dropped on receive (no socket, no memory) */
	QUIC_MIB_PKT_DECDROP,		/* dropped: decryption failed */
	QUIC_MIB_PKT_ENCDROP,		/* dropped: encryption failed */
	QUIC_MIB_FRM_RCVBUFDROP,	/* frames dropped: receive buffer full */
	QUIC_MIB_FRM_RETRANS,		/* frames retransmitted */
	QUIC_MIB_FRM_OUTCLOSES,		/* CONNECTION_CLOSE frames sent */
	QUIC_MIB_FRM_INCLOSES,		/* CONNECTION_CLOSE frames received */
	QUIC_MIB_PKT_RCVECNCE,		/* packets received marked CE */
	QUIC_MIB_ECN_CONGEVENTS,	/* window reductions for the peer's CE counts */
	QUIC_MIB_ECN_FAILED,		/* paths where ECN validation failed */
	QUIC_MIB_MAX
};

struct quic_mib {
	unsigned long mibs[QUIC_MIB_MAX];
};

/* Safe in any context (this_cpu_inc). */
#define QUIC_INC_STATS(net, field)	SNMP_INC_STATS(quic_net(net)->mib, field)

#endif /* __NET_QUIC_MIB_H */
