/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: RTT estimation (RFC 9002 Section 5), congestion control (RFC 9002
 * Section 7: NewReno; RFC 9438: CUBIC), HyStart++ in slow start (RFC 9406)
 * and pacing (RFC 9002 Section 7.7).  Times are in microseconds, windows
 * in bytes.  All of it runs under the socket lock; cong.c has no other
 * dependency, so that the KUnit tests drive it directly.
 */

#ifndef __NET_QUIC_CONG_H
#define __NET_QUIC_CONG_H

#include <linux/types.h>

#define QUIC_MIN_CWND_PKTS	2	/* RFC 9002 Section 7.2 */
#define QUIC_INIT_CWND_PKTS	10	/* RFC 9002 Section 7.2 */
#define QUIC_GRANULARITY	1000	/* kGranularity, us */
#define QUIC_PERSISTENT_CONG	3	/* kPersistentCongestionThreshold */
#define QUIC_PACKET_THRESHOLD	3	/* kPacketThreshold, RFC 9002 6.1.1 */
#define QUIC_PACKET_THRESHOLD_MAX 32	/* adapted to reordering, at most */
#define QUIC_TIME_SHIFT		3	/* kTimeThreshold 9/8 = 1 + 2^-3 */
#define QUIC_TIME_SHIFT_MIN	1	/* adapted to reordering: 3/2 at most */

/* enum quic_cong_algo of the ABI (config congestion_control_algo). */
#define QUIC_CONG_RENO		0
#define QUIC_CONG_CUBIC		1

/* RFC 9406 Section 4.3 constants. */
#define QUIC_HS_MIN_RTT_THRESH	4000	/* us */
#define QUIC_HS_MAX_RTT_THRESH	16000	/* us */
#define QUIC_HS_MIN_RTT_DIVISOR	8
#define QUIC_HS_N_RTT_SAMPLE	8
#define QUIC_HS_CSS_GROWTH_DIV	4
#define QUIC_HS_CSS_ROUNDS	5

/**
 * struct quic_hystart - HyStart++ state (RFC 9406 Section 4.2)
 * @window_end: packet number that ends the current round, -1 before one
 * @last_round_min: lastRoundMinRTT, U32_MAX if none
 * @cur_round_min: currentRoundMinRTT, U32_MAX if none
 * @css_baseline: cssBaselineMinRtt, U32_MAX if none
 * @samples: rttSampleCount of the round
 * @css_rounds: rounds spent in Conservative Slow Start
 * @in_css: in Conservative Slow Start
 * @done: slow start was left once: later slow starts are standard
 */
struct quic_hystart {
	s64 window_end;
	u32 last_round_min;
	u32 cur_round_min;
	u32 css_baseline;
	u16 samples;
	u8 css_rounds;
	u8 in_css:1;
	u8 done:1;
};

/**
 * struct quic_cubic - CUBIC state (RFC 9438 Section 4), in bytes
 * @epoch_start: start of the congestion avoidance stage, 0 if not begun
 * @w_max: W_max, the window before the last reduction
 * @cwnd_prior: the window when ssthresh was last set
 * @k: K, time for W_cubic to come back to @w_max (us)
 * @w_est: W_est, the Reno-friendly estimate
 * @est_frac: fraction of a byte of @w_est (numerator over 17 * cwnd)
 */
struct quic_cubic {
	u64 epoch_start;
	u32 w_max;
	u32 cwnd_prior;
	u32 k;
	u32 w_est;
	u64 est_frac;
};

/**
 * struct quic_cong - RTT and congestion state of the path
 * @latest_rtt: latest RTT sample
 * @min_rtt: minimum RTT seen, U32_MAX before a sample
 * @smoothed_rtt: smoothed RTT
 * @rttvar: RTT variation
 * @max_ack_delay: peer's max_ack_delay
 * @first_rtt_time: when the first RTT sample was taken (RFC 9002 7.6.2)
 * @cwnd: congestion window, bytes
 * @ssthresh: slow start threshold, bytes
 * @in_flight: bytes in flight
 * @mss: max datagram size
 * @acked_acc: bytes acknowledged toward the next NewReno increase
 * @recovery_start: start of the current recovery period, 0 if none
 * @lost_pkts: packets declared lost
 * @last_sent_pn: highest 1-RTT packet number sent (HyStart++ rounds)
 * @pace_time: when @pace_tokens was last refilled
 * @pace_tokens: bytes that may be sent now (RFC 9002 Section 7.7)
 * @hs: HyStart++ state
 * @cubic: CUBIC state
 * @spurious_pkts: packets declared lost and then acknowledged
 * @undone: congestion events undone as spurious
 * @reorder_pkts: packet threshold of loss detection (RFC 9002 6.1.1)
 * @episode: number of the current congestion event
 * @undo_pending: packets declared lost in event @episode and not yet
 *	acknowledged; when the last is, the event was spurious
 * @prior_cwnd: the window before event @episode: what undo restores,
 *	and RecoverFS of Proportional Rate Reduction (RFC 6937)
 * @prr_delivered: bytes acknowledged since the recovery period began
 * @prr_out: bytes sent since then
 * @bytes_sent: bytes of ack-eliciting packets sent, a counter (quic_diag)
 * @bytes_acked: bytes of those acknowledged, a counter (quic_diag)
 * @undo_ssthresh: the slow start threshold before it
 * @undo_cubic: the CUBIC state before it
 * @pto_count: consecutive PTOs (RFC 9002 Section 6.2.1)
 * @algo: QUIC_CONG_RENO or QUIC_CONG_CUBIC
 * @reorder_shift: time threshold of loss detection is
 *	RTT * (1 + 2^-@reorder_shift) (RFC 9002 Section 6.1.2)
 * @undo_hs_done: HyStart++ done before event @episode
 * @in_recovery: no packet sent since @recovery_start was acknowledged yet
 * @has_sample: an RTT sample was taken
 * @app_limited: the sender did not fill the window (RFC 9002 Section 7.8)
 */
struct quic_cong {
	u32 latest_rtt;
	u32 min_rtt;
	u32 smoothed_rtt;
	u32 rttvar;
	u32 max_ack_delay;
	u64 first_rtt_time;
	u32 cwnd;
	u32 ssthresh;
	u32 in_flight;
	u32 mss;
	u32 acked_acc;
	u64 recovery_start;
	u64 lost_pkts;
	s64 last_sent_pn;
	u64 pace_time;
	s64 pace_tokens;
	struct quic_hystart hs;
	struct quic_cubic cubic;
	u64 spurious_pkts;
	u32 undone;
	u32 reorder_pkts;
	u32 episode;
	u32 undo_pending;
	u32 prior_cwnd;
	u64 prr_delivered;
	u64 prr_out;
	u64 bytes_sent;
	u64 bytes_acked;
	u32 undo_ssthresh;
	struct quic_cubic undo_cubic;
	u8 pto_count;
	u8 algo;
	u8 reorder_shift;
	u8 has_sample:1;
	u8 app_limited:1;
	u8 undo_hs_done:1;
	u8 in_recovery:1;
};

void quic_cong_init(struct quic_cong *c, u32 mss, u32 init_rtt, u8 algo);
void quic_cong_reset(struct quic_cong *c, u32 init_rtt);
void quic_cong_rtt_sample(struct quic_cong *c, u32 rtt, u32 ack_delay,
			  bool confirmed, u64 now);
u32 quic_cong_pto(const struct quic_cong *c, bool app);
u32 quic_cong_loss_delay(const struct quic_cong *c);
void quic_cong_on_sent(struct quic_cong *c, u32 bytes, s64 pn, u64 now);
void quic_cong_on_acked(struct quic_cong *c, u32 bytes, s64 pn,
			u64 sent_time, u64 now);
void quic_cong_on_lost(struct quic_cong *c, u32 bytes);

/* A PMTU probe was lost: it leaves the flight, and its loss is not
 * counted, as it says nothing about congestion (RFC 9000 Section 14.4).
 */
static inline void quic_cong_on_probe_lost(struct quic_cong *c, u32 bytes)
{
	c->in_flight -= min(c->in_flight, bytes);
}

void quic_cong_event(struct quic_cong *c, u64 sent_time, u64 now, u32 lost);
bool quic_cong_ecn_event(struct quic_cong *c, u64 sent_time, u64 now);
bool quic_cong_spurious(struct quic_cong *c, u32 episode, u32 reorder,
			bool by_time);
bool quic_cong_persistent(const struct quic_cong *c, u64 first_time,
			  u64 last_time);
void quic_cong_collapse(struct quic_cong *c);
void quic_cong_on_discard(struct quic_cong *c, u32 bytes);
bool quic_cong_can_send(const struct quic_cong *c, u32 bytes);
u64 quic_cong_pace_rate(const struct quic_cong *c);
u32 quic_cong_pace_wait(struct quic_cong *c, u32 bytes, u64 now,
			u32 tick);
const char *quic_cong_name(u8 algo);

/* ECN counts of ACK_ECN frames (RFC 9000 Section 19.3.2), in wire order. */
enum {
	QUIC_ECN_ECT0,
	QUIC_ECN_ECT1,
	QUIC_ECN_CE,
	QUIC_ECN_COUNTS
};

bool quic_ecn_check(const u64 *prev, const u64 *cur, u64 acked, u64 sent);

#if IS_ENABLED(CONFIG_KUNIT)
/* Visible to the KUnit tests only (static otherwise). */
u32 quic_cong_cubic_k(u32 w_max, u32 cwnd, u32 mss);
u32 quic_cong_cubic_w(const struct quic_cong *c, u64 t);
#endif

#endif /* __NET_QUIC_CONG_H */
