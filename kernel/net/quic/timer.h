/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: connection timers.
 *
 * As TCP does it (net/ipv4/tcp_timer.c): a timer holds a socket reference
 * while pending; it fires in softirq context, takes the socket spinlock
 * and, if a process owns the socket, leaves its work to release_cb
 * through a bit in quic_sock.deferred.
 */

#ifndef __NET_QUIC_TIMER_H
#define __NET_QUIC_TIMER_H

struct sock;

enum quic_timer_id {
	QUIC_TIMER_LOSS,	/* loss detection and PTO (RFC 9002 Section 6) */
	QUIC_TIMER_ACK,		/* delayed ACK (RFC 9000 Section 13.2.1) */
	QUIC_TIMER_IDLE,	/* idle timeout (RFC 9000 Section 10.1) */
	QUIC_TIMER_PING,	/* keep-alive (RFC 9000 Section 10.1.2) */
	QUIC_TIMER_PACE,	/* pacing (RFC 9002 Section 7.7) */
	QUIC_TIMER_PATH,	/* path validation (RFC 9000 Section 8.2.4) */
	QUIC_TIMER_MAX
};

/* quic_sock.deferred: bit QUIC_DEFER_TIMER_BASE + id for each timer. */
enum {
	QUIC_DEFER_TIMER_BASE = 0,
};

void quic_timers_init(struct sock *sk);
void quic_timers_stop(struct sock *sk);
void quic_timer_reset(struct sock *sk, u8 id, u64 timeout_us);
void quic_timer_stop(struct sock *sk, u8 id);
void quic_release_cb(struct sock *sk);
void quic_timer_idle_reset(struct sock *sk);

#endif /* __NET_QUIC_TIMER_H */
