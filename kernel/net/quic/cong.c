// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: RTT estimation and NewReno congestion control (RFC 9002 Sections 5
 * and 7).  Cubic (config congestion_control_algo 1) is accepted by the
 * socket option and, for now, behaves as NewReno.
 */

#include <linux/kernel.h>
#include <linux/minmax.h>

#include "quic.h"

void quic_cong_init(struct quic_cong *c, u32 mss, u32 init_rtt)
{
	memset(c, 0, sizeof(*c));
	c->mss = mss;
	/* RFC 9002 Section 7.2: min(10 * mss, max(14720, 2 * mss)). */
	c->cwnd = min(QUIC_INIT_CWND_PKTS * mss, max(14720U, 2 * mss));
	c->ssthresh = U32_MAX;
	/* RFC 9002 Section 5.3: before the first sample. */
	c->smoothed_rtt = init_rtt;
	c->rttvar = init_rtt / 2;
	c->min_rtt = U32_MAX;
	c->max_ack_delay = 25000;
}

/*
 * RFC 9002 Section 5.3.  The ACK Delay is ignored for the minimum, and
 * is limited to max_ack_delay once the handshake is confirmed.
 */
void quic_cong_rtt_sample(struct quic_cong *c, u32 rtt, u32 ack_delay,
			  bool confirmed)
{
	u32 adjusted = rtt, diff;

	c->latest_rtt = rtt;
	if (!c->has_sample) {
		c->has_sample = 1;
		c->min_rtt = rtt;
		c->smoothed_rtt = rtt;
		c->rttvar = rtt / 2;
		return;
	}
	c->min_rtt = min(c->min_rtt, rtt);
	if (confirmed)
		ack_delay = min(ack_delay, c->max_ack_delay);
	if (rtt >= c->min_rtt + ack_delay)
		adjusted = rtt - ack_delay;
	diff = c->smoothed_rtt > adjusted ? c->smoothed_rtt - adjusted :
					    adjusted - c->smoothed_rtt;
	c->rttvar = (3 * c->rttvar + diff) / 4;
	c->smoothed_rtt = (7 * c->smoothed_rtt + adjusted) / 8;
}

/* RFC 9002 Section 6.2.1, without the backoff. */
u32 quic_cong_pto(const struct quic_cong *c, bool app)
{
	u32 pto = c->smoothed_rtt + max(4 * c->rttvar, (u32)QUIC_GRANULARITY);

	return app ? pto + c->max_ack_delay : pto;
}

/* RFC 9002 Section 6.1.2: kTimeThreshold is 9/8. */
u32 quic_cong_loss_delay(const struct quic_cong *c)
{
	u32 rtt = max(c->latest_rtt, c->smoothed_rtt);

	return max(rtt + rtt / 8, (u32)QUIC_GRANULARITY);
}

void quic_cong_on_sent(struct quic_cong *c, u32 bytes)
{
	c->in_flight += bytes;
}

bool quic_cong_can_send(const struct quic_cong *c, u32 bytes)
{
	return c->in_flight + bytes <= c->cwnd;
}

/* RFC 9002 Section 7.3: slow start, then congestion avoidance. */
void quic_cong_on_acked(struct quic_cong *c, u32 bytes, u64 sent_time)
{
	c->in_flight -= min(c->in_flight, bytes);
	if (c->recovery_start && sent_time <= c->recovery_start)
		return;		/* RFC 9002 Section 7.3.2: in recovery */
	if (c->cwnd < c->ssthresh)
		c->cwnd += bytes;
	else
		c->cwnd += max(c->mss * bytes / c->cwnd, 1U);
}

/* RFC 9002 Section 7.3.2: one reduction per recovery period. */
void quic_cong_on_lost(struct quic_cong *c, u32 bytes, u64 sent_time,
		       u64 now)
{
	c->in_flight -= min(c->in_flight, bytes);
	if (c->recovery_start && sent_time <= c->recovery_start)
		return;
	c->recovery_start = now;
	c->ssthresh = max(c->cwnd / 2, QUIC_MIN_CWND_PKTS * c->mss);
	c->cwnd = c->ssthresh;
}

/* RFC 9002 Section 6.4: packets of discarded keys leave the flight. */
void quic_cong_on_discard(struct quic_cong *c, u32 bytes)
{
	c->in_flight -= min(c->in_flight, bytes);
}
