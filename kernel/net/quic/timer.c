// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: connection timers, in the TCP pattern (net/ipv4/tcp_timer.c).
 *
 * A pending timer holds a socket reference (sk_reset_timer()).  The
 * handler runs in softirq context under the socket spinlock; when a process
 * owns the socket the work is left to quic_release_cb() through a bit in
 * quic_sock.deferred, which then holds the reference instead.
 */

#include <linux/jiffies.h>

#include "quic.h"
#include "input.h"
#include "output.h"

typedef void (*quic_timer_fn)(struct sock *sk);

/* RFC 9002 Section 6: loss detection timer, time threshold or PTO. */
static void quic_timer_loss_work(struct sock *sk)
{
	quic_loss_timeout(sk);
}

/* RFC 9000 Section 13.2.1: the ACK delay is over. */
static void quic_timer_ack_work(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	u64 now = quic_now(), next = 0;
	int i;

	for (i = 0; i < QUIC_SPACE_MAX; i++) {
		struct quic_pnspace *space = &qs->space[i];

		if (!space->ack_deadline)
			continue;
		if (space->ack_deadline <= now + QUIC_GRANULARITY)
			space->ack_immediate = 1;
		else if (!next || space->ack_deadline < next)
			next = space->ack_deadline;
	}
	quic_output_flush(sk);
	if (next && quic_is_connected(sk))	/* fired early */
		quic_timer_reset(sk, QUIC_TIMER_ACK, next - now);
}

/*
 * RFC 9000 Section 10.1: the connection is silently closed when it stays
 * idle; the application sees a CONNECTION_CLOSE event of zeros.
 */
static void quic_timer_idle_work(struct sock *sk)
{
	if (quic_is_connected(sk))
		quic_conn_closed(sk, 0, 0, NULL, 0);
}

/* RFC 9000 Section 10.1.2: a PING keeps the connection alive. */
static void quic_timer_ping_work(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	if (!quic_is_established(sk))
		return;
	quic_output_probe(sk, QUIC_SPACE_APP);
	if (qs->config.keepalive_probe_interval)
		quic_timer_reset(sk, QUIC_TIMER_PING,
				 qs->config.keepalive_probe_interval);
}

/* RFC 9002 Section 7.7: the pacing rate allows more now. */
static void quic_timer_pace_work(struct sock *sk)
{
	quic_output_flush(sk);
}

/* RFC 9000 Section 8.2.4: challenge again, or give the new address up. */
static void quic_timer_path_work(struct sock *sk)
{
	if (quic_is_established(sk))
		quic_path_move_timeout(sk);
}

static const quic_timer_fn quic_timer_fns[QUIC_TIMER_MAX] = {
	[QUIC_TIMER_LOSS] = quic_timer_loss_work,
	[QUIC_TIMER_ACK] = quic_timer_ack_work,
	[QUIC_TIMER_IDLE] = quic_timer_idle_work,
	[QUIC_TIMER_PING] = quic_timer_ping_work,
	[QUIC_TIMER_PACE] = quic_timer_pace_work,
	[QUIC_TIMER_PATH] = quic_timer_path_work,
};

static void quic_timer_fire(struct sock *sk, u8 id)
{
	bh_lock_sock(sk);
	if (!sock_owned_by_user(sk)) {
		quic_timer_fns[id](sk);
	} else if (!test_and_set_bit(QUIC_DEFER_TIMER_BASE + id,
				     &quic_sk(sk)->deferred)) {
		sock_hold(sk);	/* dropped by quic_release_cb() */
	}
	bh_unlock_sock(sk);
	sock_put(sk);		/* the pending timer's reference */
}

static void quic_timer_loss(struct timer_list *t)
{
	struct quic_sock *qs = from_timer(qs, t, timers[QUIC_TIMER_LOSS]);

	quic_timer_fire(&qs->inet.sk, QUIC_TIMER_LOSS);
}

static void quic_timer_ack(struct timer_list *t)
{
	struct quic_sock *qs = from_timer(qs, t, timers[QUIC_TIMER_ACK]);

	quic_timer_fire(&qs->inet.sk, QUIC_TIMER_ACK);
}

static void quic_timer_idle(struct timer_list *t)
{
	struct quic_sock *qs = from_timer(qs, t, timers[QUIC_TIMER_IDLE]);

	quic_timer_fire(&qs->inet.sk, QUIC_TIMER_IDLE);
}

static void quic_timer_ping(struct timer_list *t)
{
	struct quic_sock *qs = from_timer(qs, t, timers[QUIC_TIMER_PING]);

	quic_timer_fire(&qs->inet.sk, QUIC_TIMER_PING);
}

static void quic_timer_pace(struct timer_list *t)
{
	struct quic_sock *qs = from_timer(qs, t, timers[QUIC_TIMER_PACE]);

	quic_timer_fire(&qs->inet.sk, QUIC_TIMER_PACE);
}

static void quic_timer_path(struct timer_list *t)
{
	struct quic_sock *qs = from_timer(qs, t, timers[QUIC_TIMER_PATH]);

	quic_timer_fire(&qs->inet.sk, QUIC_TIMER_PATH);
}

void quic_timers_init(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);

	timer_setup(&qs->timers[QUIC_TIMER_LOSS], quic_timer_loss, 0);
	timer_setup(&qs->timers[QUIC_TIMER_ACK], quic_timer_ack, 0);
	timer_setup(&qs->timers[QUIC_TIMER_IDLE], quic_timer_idle, 0);
	timer_setup(&qs->timers[QUIC_TIMER_PING], quic_timer_ping, 0);
	timer_setup(&qs->timers[QUIC_TIMER_PACE], quic_timer_pace, 0);
	timer_setup(&qs->timers[QUIC_TIMER_PATH], quic_timer_path, 0);
}

/* Process context: waits for running handlers. */
void quic_timers_stop(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	int i;

	for (i = 0; i < QUIC_TIMER_MAX; i++)
		sk_stop_timer_sync(sk, &qs->timers[i]);
}

void quic_timer_reset(struct sock *sk, u8 id, u64 timeout_us)
{
	unsigned long expires = jiffies + usecs_to_jiffies(timeout_us) + 1;

	sk_reset_timer(sk, &quic_sk(sk)->timers[id], expires);
}

void quic_timer_stop(struct sock *sk, u8 id)
{
	sk_stop_timer(sk, &quic_sk(sk)->timers[id]);
}

/* RFC 9000 Section 10.1: restarted by received and ack-eliciting sent packets. */
void quic_timer_idle_reset(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	u64 timeout = qs->idle_timeout;

	if (!timeout || quic_is_closed(sk))
		return;
	/* RFC 9000 Section 10.1: at least three times the current PTO. */
	timeout = max_t(u64, timeout, 3ULL * quic_cong_pto(&qs->cong, true));
	quic_timer_reset(sk, QUIC_TIMER_IDLE, timeout);
}

/*
 * proto->release_cb: the timers that fired while a process owned the
 * socket.  Called by release_sock() with the socket spinlock held.
 */
void quic_release_cb(struct sock *sk)
{
	struct quic_sock *qs = quic_sk(sk);
	int i;

	if (!READ_ONCE(qs->deferred))
		return;
	for (i = 0; i < QUIC_TIMER_MAX; i++) {
		if (test_and_clear_bit(QUIC_DEFER_TIMER_BASE + i,
				       &qs->deferred)) {
			quic_timer_fns[i](sk);
			__sock_put(sk);
		}
	}
}
