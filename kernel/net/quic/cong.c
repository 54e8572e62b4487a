// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QUIC: RTT estimation (RFC 9002 Section 5) and congestion control:
 * NewReno (RFC 9002 Section 7 and Appendix B) or CUBIC (RFC 9438), chosen
 * by the config option congestion_control_algo, both with HyStart++
 * (RFC 9406) in the first slow start, Proportional Rate Reduction (RFC
 * 6937) in recovery, undo of spurious congestion events (RFC 9438
 * Section 4.9) and pacing (RFC 9002 Section 7.7).
 *
 * The caller (input.c, output.c) tells what was sent, acknowledged and
 * lost; this file only keeps numbers, so the KUnit tests drive it alone.
 */

#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/string.h>
#include <linux/time64.h>

#include "compat.h"
#include "cong.h"

/* RFC 9438 Section 5: C = 0.4, beta_cubic = 0.7, alpha = 3(1-b)/(1+b). */
#define QUIC_CUBIC_C_NUM	4
#define QUIC_CUBIC_C_DEN	10
#define QUIC_CUBIC_BETA_NUM	7
#define QUIC_CUBIC_BETA_DEN	10
#define QUIC_CUBIC_ALPHA_NUM	9	/* 0.9 / 1.7 = 9/17 */
#define QUIC_CUBIC_ALPHA_DEN	17
#define QUIC_CUBIC_MAX_T_MS	100000	/* |t - K| kept below 100 s */

static u32 quic_cong_min_wnd(const struct quic_cong *c)
{
	return QUIC_MIN_CWND_PKTS * c->mss;
}

static void quic_hystart_init(struct quic_hystart *hs)
{
	memset(hs, 0, sizeof(*hs));
	hs->window_end = -1;
	hs->last_round_min = U32_MAX;
	hs->cur_round_min = U32_MAX;
	hs->css_baseline = U32_MAX;
}

/**
 * quic_cong_init - state of a new connection
 * @c: the state
 * @mss: max datagram size
 * @init_rtt: RTT assumed before the first sample (kInitialRtt)
 * @algo: QUIC_CONG_RENO or QUIC_CONG_CUBIC
 */
void quic_cong_init(struct quic_cong *c, u32 mss, u32 init_rtt, u8 algo)
{
	memset(c, 0, sizeof(*c));
	c->mss = mss;
	c->algo = algo == QUIC_CONG_CUBIC ? QUIC_CONG_CUBIC : QUIC_CONG_RENO;
	/* RFC 9002 Section 7.2: min(10 * mss, max(14720, 2 * mss)). */
	c->cwnd = min(QUIC_INIT_CWND_PKTS * mss, max(14720U, 2 * mss));
	c->ssthresh = U32_MAX;
	c->reorder_pkts = QUIC_PACKET_THRESHOLD;
	c->reorder_shift = QUIC_TIME_SHIFT;
	/* RFC 9002 Section 5.3: before the first sample. */
	c->smoothed_rtt = init_rtt;
	c->rttvar = init_rtt / 2;
	c->min_rtt = U32_MAX;
	c->max_ack_delay = 25000;
	c->last_sent_pn = -1;
	quic_hystart_init(&c->hs);
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_init);

/**
 * quic_cong_reset - a new path: the window and RTT estimates start again
 * @c: the state
 * @init_rtt: RTT assumed before the first sample
 *
 * RFC 9000 Section 9.4.  What is in flight stays counted: its
 * acknowledgments and losses still come.
 */
void quic_cong_reset(struct quic_cong *c, u32 init_rtt)
{
	u32 in_flight = c->in_flight, max_ack_delay = c->max_ack_delay;
	u64 lost = c->lost_pkts, spurious = c->spurious_pkts;
	u64 sent = c->bytes_sent, acked = c->bytes_acked;
	s64 last_sent_pn = c->last_sent_pn;

	quic_cong_init(c, c->mss, init_rtt, c->algo);
	c->in_flight = in_flight;
	c->max_ack_delay = max_ack_delay;
	c->last_sent_pn = last_sent_pn;
	c->lost_pkts = lost;		/* counters, for /proc */
	c->spurious_pkts = spurious;
	c->bytes_sent = sent;
	c->bytes_acked = acked;
}

const char *quic_cong_name(u8 algo)
{
	return algo == QUIC_CONG_CUBIC ? "cubic" : "reno";
}

/*
 * RFC 9406 Section 4.2: a round ends when the packet sent last at its
 * start is acknowledged; Conservative Slow Start ends after CSS_ROUNDS.
 */
static void quic_hystart_round(struct quic_cong *c, s64 pn)
{
	struct quic_hystart *hs = &c->hs;

	if (hs->done || c->cwnd >= c->ssthresh || pn < 0 ||
	    (hs->window_end >= 0 && pn < hs->window_end))
		return;
	hs->last_round_min = hs->cur_round_min;
	hs->cur_round_min = U32_MAX;
	hs->samples = 0;
	hs->window_end = c->last_sent_pn;
	if (hs->in_css && ++hs->css_rounds >= QUIC_HS_CSS_ROUNDS) {
		/* Enter congestion avoidance without a loss. */
		c->ssthresh = c->cwnd;
		c->cubic.cwnd_prior = c->cwnd;
		c->cubic.w_max = 0;
		c->cubic.epoch_start = 0;
		hs->in_css = 0;
		hs->done = 1;
	}
}

/* RFC 9406 Section 4.2: every RTT sample during slow start. */
static void quic_hystart_sample(struct quic_cong *c, u32 rtt)
{
	struct quic_hystart *hs = &c->hs;
	u32 thresh;

	if (hs->done || c->cwnd >= c->ssthresh)
		return;
	hs->cur_round_min = min(hs->cur_round_min, rtt);
	if (hs->samples < U16_MAX)
		hs->samples++;
	if (hs->samples < QUIC_HS_N_RTT_SAMPLE)
		return;
	if (hs->in_css) {
		/* Spurious: the RTT went back down, resume slow start. */
		if (hs->cur_round_min < hs->css_baseline) {
			hs->css_baseline = U32_MAX;
			hs->in_css = 0;
		}
		return;
	}
	if (hs->cur_round_min == U32_MAX || hs->last_round_min == U32_MAX)
		return;
	thresh = clamp(hs->last_round_min / QUIC_HS_MIN_RTT_DIVISOR,
		       (u32)QUIC_HS_MIN_RTT_THRESH, (u32)QUIC_HS_MAX_RTT_THRESH);
	if (hs->cur_round_min >= hs->last_round_min + thresh) {
		hs->css_baseline = hs->cur_round_min;
		hs->in_css = 1;
		hs->css_rounds = 0;
	}
}

/**
 * quic_cong_rtt_sample - a new RTT sample (RFC 9002 Section 5)
 * @c: the state
 * @rtt: latest_rtt, from the send time of the largest newly acknowledged
 *	packet to the receipt of its ACK
 * @ack_delay: the ACK Delay of the frame, decoded (0 outside 1-RTT)
 * @confirmed: the handshake is confirmed
 * @now: current time
 *
 * The ACK Delay is ignored for the minimum, limited to max_ack_delay once
 * the handshake is confirmed, and subtracted only when the result stays
 * at or above min_rtt (Section 5.3).
 */
void quic_cong_rtt_sample(struct quic_cong *c, u32 rtt, u32 ack_delay,
			  bool confirmed, u64 now)
{
	u32 adjusted = rtt, diff;

	/* min_rtt is stored before latest_rtt, so a lockless reader that
	 * loads latest_rtt first never sees a minimum above it (proc.c).
	 */
	quic_hystart_sample(c, rtt);
	if (!c->has_sample) {
		c->has_sample = 1;
		c->first_rtt_time = now;
		WRITE_ONCE(c->min_rtt, rtt);
		smp_wmb(); /* min_rtt before latest_rtt, see above */
		WRITE_ONCE(c->latest_rtt, rtt);
		c->smoothed_rtt = rtt;
		c->rttvar = rtt / 2;
		return;
	}
	WRITE_ONCE(c->min_rtt, min(c->min_rtt, rtt));
	smp_wmb(); /* min_rtt before latest_rtt, see above */
	WRITE_ONCE(c->latest_rtt, rtt);
	if (confirmed)
		ack_delay = min(ack_delay, c->max_ack_delay);
	if (rtt >= c->min_rtt + ack_delay)
		adjusted = rtt - ack_delay;
	diff = c->smoothed_rtt > adjusted ? c->smoothed_rtt - adjusted :
					    adjusted - c->smoothed_rtt;
	c->rttvar = (3 * c->rttvar + diff) / 4;
	c->smoothed_rtt = (7 * c->smoothed_rtt + adjusted) / 8;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_rtt_sample);

/**
 * quic_cong_pto - the probe timeout period, without the backoff
 * @c: the state
 * @app: for the Application Data space (adds max_ack_delay)
 *
 * RFC 9002 Section 6.2.1.  Return: microseconds.
 */
u32 quic_cong_pto(const struct quic_cong *c, bool app)
{
	u32 pto = c->smoothed_rtt + max(4 * c->rttvar, (u32)QUIC_GRANULARITY);

	return app ? pto + c->max_ack_delay : pto;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_pto);

/**
 * quic_cong_loss_delay - the time threshold of loss detection
 * @c: the state
 *
 * RFC 9002 Section 6.1.2: kTimeThreshold (9/8, more once reordering was
 * seen) times the larger of the latest and smoothed RTTs, at least
 * kGranularity.  Return: microseconds.
 */
u32 quic_cong_loss_delay(const struct quic_cong *c)
{
	u32 rtt = max(c->latest_rtt, c->smoothed_rtt);

	return max(rtt + (rtt >> c->reorder_shift), (u32)QUIC_GRANULARITY);
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_loss_delay);

/**
 * quic_cong_on_sent - an ack-eliciting packet left
 * @c: the state
 * @bytes: its size
 * @pn: its 1-RTT packet number, or -1 for other spaces
 * @now: current time
 */
void quic_cong_on_sent(struct quic_cong *c, u32 bytes, s64 pn, u64 now)
{
	c->in_flight += bytes;
	c->bytes_sent += bytes;
	if (c->in_recovery)
		c->prr_out += bytes;
	if (pn > c->last_sent_pn)
		c->last_sent_pn = pn;
	c->pace_tokens -= bytes;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_on_sent);

/**
 * quic_cong_can_send - does the congestion window allow @bytes more
 * @c: the state
 * @bytes: the size of the next packet
 *
 * Return: true if so.
 */
bool quic_cong_can_send(const struct quic_cong *c, u32 bytes)
{
	return c->in_flight + bytes <= c->cwnd;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_can_send);

/* Integer cube root, rounded down. */
static u32 quic_cbrt(u64 x)
{
	u32 lo = 0, hi = 2642245;	/* cbrt(2^64 - 1), rounded down */

	while (lo < hi) {
		u32 mid = lo + (hi - lo + 1) / 2;

		if ((u64)mid * mid * mid <= x)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/**
 * quic_cong_cubic_k - K of RFC 9438 Section 4.2
 * @w_max: W_max, bytes
 * @cwnd: the window at the start of the epoch, bytes
 * @mss: segment size
 *
 * K = cbrt((W_max - cwnd_epoch) / C), with windows in segments and K in
 * seconds; here K = cbrt(diff * 2.5e9 / mss) milliseconds.
 *
 * Return: K in microseconds.
 */
VISIBLE_IF_KUNIT u32 quic_cong_cubic_k(u32 w_max, u32 cwnd, u32 mss)
{
	u64 x;

	if (w_max <= cwnd || !mss)
		return 0;
	x = (u64)(w_max - cwnd) * (MSEC_PER_SEC * MSEC_PER_SEC * MSEC_PER_SEC *
				   QUIC_CUBIC_C_DEN / QUIC_CUBIC_C_NUM);
	return quic_cbrt(div_u64(x, mss)) * USEC_PER_MSEC;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_cubic_k);

/**
 * quic_cong_cubic_w - W_cubic(t) of RFC 9438 Section 4.2, in bytes
 * @c: the state (W_max, K, mss)
 * @t: time since the start of the epoch, microseconds
 *
 * W_cubic(t) = C * (t - K)^3 + W_max, segments and seconds.
 *
 * Return: bytes, within [0, U32_MAX].
 */
VISIBLE_IF_KUNIT u32 quic_cong_cubic_w(const struct quic_cong *c, u64 t)
{
	s64 d = div_s64((s64)t - c->cubic.k, USEC_PER_MSEC);
	u64 ad = min_t(u64, abs(d), QUIC_CUBIC_MAX_T_MS), delta;
	s64 w;

	/* (d ms)^3 / 1e9 s^3 * C * mss: ms^3 / 1000 first, for the range. */
	delta = div_u64(ad * ad * ad, MSEC_PER_SEC) * QUIC_CUBIC_C_NUM * c->mss;
	delta = div_u64(delta, QUIC_CUBIC_C_DEN * MSEC_PER_SEC * MSEC_PER_SEC);
	w = d < 0 ? (s64)c->cubic.w_max - (s64)delta :
		    (s64)c->cubic.w_max + (s64)delta;
	return clamp_t(s64, w, 0, U32_MAX);
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_cubic_w);

/* RFC 9438 Sections 4.2 to 4.5: congestion avoidance, per ACK. */
static void quic_cubic_avoid(struct quic_cong *c, u32 bytes, u64 now)
{
	struct quic_cubic *cu = &c->cubic;
	u32 target, w_t, alpha;
	u64 t, den, inc;

	if (!cu->epoch_start) {
		cu->epoch_start = now;
		if (cu->w_max < c->cwnd) {
			/* Section 4.10: slow start left without a loss. */
			cu->w_max = c->cwnd;
			cu->k = 0;
		} else {
			cu->k = quic_cong_cubic_k(cu->w_max, c->cwnd, c->mss);
		}
		cu->w_est = c->cwnd;
		cu->est_frac = 0;
	}
	t = now - cu->epoch_start;
	/* Section 4.2: the target is W_cubic one RTT ahead, in
	 * [cwnd, 1.5 * cwnd].
	 */
	target = quic_cong_cubic_w(c, t + c->smoothed_rtt);
	target = clamp(target, c->cwnd, c->cwnd + c->cwnd / 2);

	/* Section 4.3: W_est grows by alpha segments per window acked;
	 * alpha is 1 once W_est reached the window before the reduction.
	 */
	alpha = cu->w_est >= cu->cwnd_prior ? QUIC_CUBIC_ALPHA_DEN :
					      QUIC_CUBIC_ALPHA_NUM;
	den = (u64)QUIC_CUBIC_ALPHA_DEN * c->cwnd;
	cu->est_frac += (u64)alpha * c->mss * bytes;
	inc = div64_u64(cu->est_frac, den);
	cu->est_frac -= inc * den;
	cu->w_est = min_t(u64, (u64)cu->w_est + inc, U32_MAX);

	w_t = quic_cong_cubic_w(c, t);
	if (w_t < cu->w_est) {
		/* Section 4.3: the Reno-friendly region. */
		c->cwnd = max(c->cwnd, cu->w_est);
		return;
	}
	/* Section 4.4 and 4.5: concave and convex regions. */
	inc = div_u64((u64)(target - c->cwnd) * bytes, c->cwnd);
	c->cwnd = min_t(u64, (u64)c->cwnd + inc, U32_MAX);
}

/* RFC 9002 Section 7.3.3 (Appendix B.5): one datagram per window. */
static void quic_reno_avoid(struct quic_cong *c, u32 bytes)
{
	c->acked_acc += bytes;
	while (c->acked_acc >= c->cwnd) {
		c->acked_acc -= c->cwnd;
		c->cwnd += c->mss;
	}
}

/*
 * RFC 6937 (Proportional Rate Reduction, as RFC 9002 Section 7.3.2
 * allows): in a recovery period the window is what is in flight plus what
 * may be sent in answer to the bytes now acknowledged, so that sending
 * falls to ssthresh in step with the deliveries, rather than stopping and
 * then bursting.  The bytes declared lost have left the flight at once:
 * with the window set to ssthresh, a large loss (the end of slow start)
 * would let a window's worth go into the queue that just overflowed.
 * Above ssthresh, ssthresh/RecoverFS of what was delivered; at or below,
 * the slow start reduction bound: up to one segment more than delivered.
 */
static void quic_cong_prr(struct quic_cong *c, u32 delivered)
{
	u64 sndcnt, limit;

	c->prr_delivered += delivered;
	if (c->in_flight > c->ssthresh) {
		sndcnt = div64_u64(c->prr_delivered * c->ssthresh +
				   c->prior_cwnd - 1, max(c->prior_cwnd, 1U));
		sndcnt = sndcnt > c->prr_out ? sndcnt - c->prr_out : 0;
	} else {
		limit = c->prr_delivered > c->prr_out ?
			c->prr_delivered - c->prr_out : 0;
		limit = max_t(u64, limit, delivered) + c->mss;
		sndcnt = min_t(u64, c->ssthresh - c->in_flight, limit);
	}
	c->cwnd = max_t(u64, c->in_flight + sndcnt, quic_cong_min_wnd(c));
}

/**
 * quic_cong_on_acked - an ack-eliciting packet was acknowledged
 * @c: the state
 * @bytes: its size
 * @pn: its 1-RTT packet number, or -1 for other spaces
 * @sent_time: when it was sent
 * @now: current time
 *
 * RFC 9002 Section 7.3 and Appendix B.5: no growth for packets sent
 * before the recovery period started (they pace the reduction instead,
 * quic_cong_prr()), nor while the sender does not use the window (Section
 * 7.8); slow start (with HyStart++), then congestion avoidance.
 */
void quic_cong_on_acked(struct quic_cong *c, u32 bytes, s64 pn,
			u64 sent_time, u64 now)
{
	c->in_flight -= min(c->in_flight, bytes);
	c->bytes_acked += bytes;
	quic_hystart_round(c, pn);
	if (c->in_recovery) {
		if (sent_time <= c->recovery_start) {
			quic_cong_prr(c, bytes);
			return;
		}
		/* RFC 6937: the recovery period ends at ssthresh. */
		c->in_recovery = 0;
		c->cwnd = c->ssthresh;
	}
	if (c->recovery_start && sent_time <= c->recovery_start)
		return;
	if (c->app_limited)
		return;
	if (c->cwnd < c->ssthresh) {
		/* RFC 9406 Section 4.2: a quarter of the growth in CSS;
		 * no per-ACK limit L as the sender is paced.
		 */
		c->cwnd += c->hs.in_css ? bytes / QUIC_HS_CSS_GROWTH_DIV : bytes;
		return;
	}
	if (c->algo == QUIC_CONG_CUBIC)
		quic_cubic_avoid(c, bytes, now);
	else
		quic_reno_avoid(c, bytes);
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_on_acked);

/**
 * quic_cong_on_lost - a packet was declared lost: it leaves the flight
 * @c: the state
 * @bytes: its size
 */
void quic_cong_on_lost(struct quic_cong *c, u32 bytes)
{
	c->in_flight -= min(c->in_flight, bytes);
	c->lost_pkts++;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_on_lost);

/**
 * quic_cong_event - a congestion event: packets were lost
 * @c: the state
 * @sent_time: send time of the last packet declared lost
 * @now: current time
 * @lost: packets declared lost with it
 *
 * RFC 9002 Section 7.3.2 (Appendix B.6): one reduction per recovery
 * period.  NewReno halves the window (kLossReductionFactor); CUBIC
 * multiplies it by beta_cubic and remembers W_max, lowered further by
 * fast convergence (RFC 9438 Sections 4.6 and 4.7).  A loss ends slow
 * start and HyStart++ (RFC 9406 Section 4.2).
 *
 * What the event changes is kept, to be undone if every packet it
 * declared lost turns out to have arrived (quic_cong_spurious()).
 */
void quic_cong_event(struct quic_cong *c, u64 sent_time, u64 now, u32 lost)
{
	struct quic_cubic *cu = &c->cubic;

	if (c->recovery_start && sent_time <= c->recovery_start) {
		c->undo_pending += lost;
		return;
	}
	c->episode++;
	c->undo_pending = lost;
	c->prior_cwnd = c->cwnd;
	c->prr_delivered = 0;
	c->prr_out = 0;
	c->in_recovery = 1;
	c->undo_ssthresh = c->ssthresh;
	c->undo_cubic = c->cubic;
	c->undo_hs_done = c->hs.done;
	c->recovery_start = now;
	c->hs.done = 1;
	c->hs.in_css = 0;
	c->acked_acc = 0;
	if (c->algo == QUIC_CONG_CUBIC) {
		if (c->cwnd < cu->w_max)
			cu->w_max = div_u64((u64)c->cwnd * (QUIC_CUBIC_BETA_DEN +
					    QUIC_CUBIC_BETA_NUM),
					    2 * QUIC_CUBIC_BETA_DEN);
		else
			cu->w_max = c->cwnd;
		cu->cwnd_prior = c->cwnd;
		cu->epoch_start = 0;
		c->ssthresh = div_u64((u64)c->cwnd * QUIC_CUBIC_BETA_NUM,
				      QUIC_CUBIC_BETA_DEN);
	} else {
		c->ssthresh = c->cwnd / 2;
	}
	c->ssthresh = max(c->ssthresh, quic_cong_min_wnd(c));
	c->cwnd = c->ssthresh;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_event);

/**
 * quic_cong_ecn_event - the peer reported more CE marks (RFC 9002 7.1)
 * @c: the state
 * @sent_time: send time of the largest packet the ACK acknowledges
 * @now: current time
 *
 * Appendix B.7: OnCongestionEvent() with no packet lost, at most once per
 * recovery period (as for a loss, quic_cong_event()).  Nothing is to be
 * undone later: no packet declared lost can turn out to have arrived.
 *
 * Return: true if the window was reduced (a new recovery period began).
 */
bool quic_cong_ecn_event(struct quic_cong *c, u64 sent_time, u64 now)
{
	u32 episode = c->episode;

	quic_cong_event(c, sent_time, now, 0);
	return c->episode != episode;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_ecn_event);

/**
 * quic_ecn_check - do the ECN counts of an ACK frame pass validation
 * @prev: the counts of the last ACK frame that passed (QUIC_ECN_*)
 * @cur: the counts of this one
 * @acked: packets sent with ECT(0) that this ACK newly acknowledges
 * @sent: packets sent with ECT(0) in the space so far
 *
 * RFC 9000 Section 13.4.2.1: validation fails when a count goes down,
 * when the ECT(0) and CE counts together grew by less than the ECT(0)
 * packets newly acknowledged (the marks were cleared on the path), when
 * they exceed what was ever sent marked, or when ECT(1) is reported
 * although only ECT(0) was sent (the marks were changed).  Only ACK frames
 * that raise the largest acknowledged packet number are checked (the
 * caller), so a reordered older ACK never fails it.
 *
 * Return: true if the counts are consistent.
 */
bool quic_ecn_check(const u64 *prev, const u64 *cur, u64 acked, u64 sent)
{
	u64 inc;
	int i;

	for (i = 0; i < QUIC_ECN_COUNTS; i++)
		if (cur[i] < prev[i])
			return false;
	if (cur[QUIC_ECN_ECT1])
		return false;
	/* Varints are below 2^62: the sums do not overflow. */
	inc = cur[QUIC_ECN_ECT0] - prev[QUIC_ECN_ECT0] +
	      cur[QUIC_ECN_CE] - prev[QUIC_ECN_CE];
	if (inc < acked)
		return false;
	return cur[QUIC_ECN_ECT0] + cur[QUIC_ECN_CE] <= sent;
}
EXPORT_SYMBOL_IF_KUNIT(quic_ecn_check);

/**
 * quic_cong_spurious - a packet declared lost was acknowledged after all
 * @c: the state
 * @episode: the congestion event it was declared lost in
 * @reorder: how far the largest acknowledged packet was ahead of it then
 * @by_time: it was declared lost by the time threshold alone
 *
 * RFC 9002 Section 6.1: the packet was reordered, not lost, so the
 * threshold that declared it grows: the packet threshold past @reorder,
 * or the time threshold from 9/8 toward 3/2 of the RTT.  When this was
 * the last packet of the current event still unaccounted for, the whole
 * event was spurious and its reduction is undone (RFC 9438 Section 4.9;
 * TCP's undo on DSACK, RFC 3708): the window, the slow start threshold
 * and the CUBIC state return to their values before it, and recovery ends.
 *
 * Return: true if the event was undone.
 */
bool quic_cong_spurious(struct quic_cong *c, u32 episode, u32 reorder,
			bool by_time)
{
	c->spurious_pkts++;
	if (by_time) {
		if (c->reorder_shift > QUIC_TIME_SHIFT_MIN)
			c->reorder_shift--;
	} else if (reorder >= c->reorder_pkts) {
		c->reorder_pkts = min_t(u32, reorder + 1,
					QUIC_PACKET_THRESHOLD_MAX);
	}
	if (episode != c->episode || !c->undo_pending || --c->undo_pending)
		return false;
	c->cwnd = max(c->cwnd, c->prior_cwnd);
	c->ssthresh = max(c->ssthresh, c->undo_ssthresh);
	c->cubic = c->undo_cubic;
	c->hs.done = c->undo_hs_done;
	c->hs.in_css = 0;
	c->recovery_start = 0;
	c->in_recovery = 0;
	c->acked_acc = 0;
	c->undone++;
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_spurious);

/**
 * quic_cong_persistent - do two lost packets establish persistent congestion
 * @c: the state
 * @first_time: send time of the earliest lost ack-eliciting packet
 * @last_time: send time of the latest one, no packet sent between them
 *	having been acknowledged
 *
 * RFC 9002 Section 7.6: they were sent more than (PTO with max_ack_delay)
 * x kPersistentCongestionThreshold apart, both after the first RTT sample
 * (Section 7.6.2).
 *
 * Return: true if so.
 */
bool quic_cong_persistent(const struct quic_cong *c, u64 first_time,
			  u64 last_time)
{
	u64 duration = (u64)quic_cong_pto(c, true) * QUIC_PERSISTENT_CONG;

	if (!c->has_sample || first_time < c->first_rtt_time ||
	    last_time < first_time)
		return false;
	return last_time - first_time > duration;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_persistent);

/**
 * quic_cong_collapse - persistent congestion: back to the minimum window
 * @c: the state
 *
 * RFC 9002 Section 7.6.2 (Appendix B.8) and Section 5.2: the window is the
 * minimum, recovery ends, min_rtt restarts from the latest sample.  CUBIC
 * starts a new epoch (RFC 9438 Section 4.8).
 */
void quic_cong_collapse(struct quic_cong *c)
{
	c->cwnd = quic_cong_min_wnd(c);
	c->recovery_start = 0;
	c->in_recovery = 0;
	c->acked_acc = 0;
	c->cubic.epoch_start = 0;
	if (c->has_sample)
		WRITE_ONCE(c->min_rtt, c->latest_rtt);
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_collapse);

/**
 * quic_cong_on_discard - packets of discarded keys leave the flight
 * @c: the state
 * @bytes: their size
 *
 * RFC 9002 Section 6.4.
 */
void quic_cong_on_discard(struct quic_cong *c, u32 bytes)
{
	c->in_flight -= min(c->in_flight, bytes);
}

/**
 * quic_cong_pace_rate - the pacing rate, bytes per second
 * @c: the state
 *
 * RFC 9002 Section 7.7: N * cwnd / smoothed_rtt with N = 1.25; twice the
 * window per RTT in slow start, so that pacing does not slow its growth
 * (as TCP's sysctl_tcp_pacing_ss_ratio).
 *
 * Return: bytes per second.
 */
u64 quic_cong_pace_rate(const struct quic_cong *c)
{
	u64 rate = div_u64((u64)c->cwnd * USEC_PER_SEC,
			   max(c->smoothed_rtt, 1U));

	return c->cwnd < c->ssthresh ? 2 * rate : rate + rate / 4;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_pace_rate);

/**
 * quic_cong_pace_wait - may @bytes be sent now, as the pacing rate allows
 * @c: the state
 * @bytes: size of the next packet
 * @now: current time
 * @tick: granularity of the timer that waits, microseconds
 *
 * A token bucket filled at quic_cong_pace_rate(); it holds at most the
 * initial window (RFC 9002 Section 7.7), or two timer ticks of data when
 * that is more, so that a coarse timer does not cap the rate.
 *
 * Return: 0 if so, else the microseconds to wait.
 */
u32 quic_cong_pace_wait(struct quic_cong *c, u32 bytes, u64 now, u32 tick)
{
	u64 rate = quic_cong_pace_rate(c), burst, fill;

	burst = max_t(u64, QUIC_INIT_CWND_PKTS * c->mss,
		      mul_u64_u64_div_u64(rate, 2 * tick, USEC_PER_SEC));
	if (!c->pace_time || now < c->pace_time) {
		c->pace_tokens = burst;
	} else {
		fill = mul_u64_u64_div_u64(min_t(u64, now - c->pace_time,
						 USEC_PER_SEC), rate,
					   USEC_PER_SEC);
		c->pace_tokens = min_t(s64, c->pace_tokens + (s64)min(fill, burst),
				       burst);
	}
	c->pace_time = now;
	if (c->pace_tokens >= (s64)bytes || !rate)
		return 0;
	return div64_u64(((u64)bytes - c->pace_tokens) * USEC_PER_SEC, rate) + 1;
}
EXPORT_SYMBOL_IF_KUNIT(quic_cong_pace_wait);
