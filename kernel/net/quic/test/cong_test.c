// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * KUnit tests of cong.c: the RTT estimator of RFC 9002 Section 5, the PTO
 * and time threshold of Section 6, NewReno (Section 7 and Appendix B),
 * CUBIC (RFC 9438: W_cubic(t), K, fast convergence, the Reno-friendly
 * region, the 1.5 x cwnd cap), HyStart++ rounds (RFC 9406), persistent
 * congestion (RFC 9002 Section 7.6), pacing (Section 7.7), Proportional
 * Rate Reduction (RFC 6937), and reordering: adapted loss thresholds and
 * the undo of spurious congestion events (RFC 9438 Section 4.9), and ECN:
 * the validation of ACK_ECN counts (RFC 9000 Section 13.4.2.1) and CE
 * marks as congestion events (RFC 9002 Section 7.1, Appendix B.7).
 *
 * Expected values are worked out by hand from the RFC formulas in the
 * comments, in microseconds and bytes; the window arithmetic is in bytes,
 * so a few bytes of rounding are allowed where the RFC works in segments.
 *
 * Built into quic_unit_test.ko; it needs quic.ko for the quic_cong_*
 * symbols.
 */

#include <kunit/test.h>
#include <linux/kernel.h>

#include "../cong.h"

#define MSS		1200
#define INIT_RTT	333000
#define T0		1000000ULL	/* an arbitrary start time, us */

static void quic_test_init(struct quic_cong *c, u8 algo)
{
	quic_cong_init(c, MSS, INIT_RTT, algo);
}

/* RFC 9002 Sections 5.2 and 5.3, step by step. */
static void quic_test_rtt_estimator(struct kunit *test)
{
	struct quic_cong c;

	quic_test_init(&c, QUIC_CONG_RENO);
	/* Before a sample: kInitialRtt and half of it. */
	KUNIT_EXPECT_EQ(test, c.smoothed_rtt, INIT_RTT);
	KUNIT_EXPECT_EQ(test, c.rttvar, INIT_RTT / 2);

	/* First sample: smoothed = latest, rttvar = latest / 2; the ACK
	 * Delay is not used.
	 */
	quic_cong_rtt_sample(&c, 100000, 7000, true, T0);
	KUNIT_EXPECT_EQ(test, c.min_rtt, 100000);
	KUNIT_EXPECT_EQ(test, c.smoothed_rtt, 100000);
	KUNIT_EXPECT_EQ(test, c.rttvar, 50000);
	KUNIT_EXPECT_EQ(test, c.first_rtt_time, T0);

	/* 120000 >= min_rtt + 10000: adjusted = 110000;
	 * rttvar = 3/4 * 50000 + 1/4 * |100000 - 110000| = 40000;
	 * smoothed = 7/8 * 100000 + 1/8 * 110000 = 101250.
	 */
	quic_cong_rtt_sample(&c, 120000, 10000, true, T0 + 1);
	KUNIT_EXPECT_EQ(test, c.latest_rtt, 120000);
	KUNIT_EXPECT_EQ(test, c.rttvar, 40000);
	KUNIT_EXPECT_EQ(test, c.smoothed_rtt, 101250);

	/* 105000 < min_rtt + 10000: the delay is not subtracted;
	 * rttvar = (3 * 40000 + 3750) / 4 = 30937;
	 * smoothed = (7 * 101250 + 105000) / 8 = 101718.
	 */
	quic_cong_rtt_sample(&c, 105000, 10000, true, T0 + 2);
	KUNIT_EXPECT_EQ(test, c.rttvar, 30937);
	KUNIT_EXPECT_EQ(test, c.smoothed_rtt, 101718);
	KUNIT_EXPECT_EQ(test, c.min_rtt, 100000);

	/* A lower sample lowers min_rtt, before the delay is considered. */
	quic_cong_rtt_sample(&c, 80000, 50000, true, T0 + 3);
	KUNIT_EXPECT_EQ(test, c.min_rtt, 80000);
	/* adjusted = 80000: rttvar = (3 * 30937 + 21718) / 4 = 28632;
	 * smoothed = (7 * 101718 + 80000) / 8 = 99003.
	 */
	KUNIT_EXPECT_EQ(test, c.rttvar, 28632);
	KUNIT_EXPECT_EQ(test, c.smoothed_rtt, 99003);
}

/* Section 5.3: max_ack_delay caps the ACK Delay once confirmed only. */
static void quic_test_rtt_ack_delay_cap(struct kunit *test)
{
	struct quic_cong c;

	quic_test_init(&c, QUIC_CONG_RENO);
	quic_cong_rtt_sample(&c, 100000, 0, true, T0);
	/* Confirmed: min(50000, 25000) = 25000, adjusted = 175000;
	 * smoothed = (7 * 100000 + 175000) / 8 = 109375.
	 */
	quic_cong_rtt_sample(&c, 200000, 50000, true, T0 + 1);
	KUNIT_EXPECT_EQ(test, c.smoothed_rtt, 109375);

	quic_test_init(&c, QUIC_CONG_RENO);
	quic_cong_rtt_sample(&c, 100000, 0, false, T0);
	/* Not confirmed: the full 50000, adjusted = 150000;
	 * smoothed = (700000 + 150000) / 8 = 106250.
	 */
	quic_cong_rtt_sample(&c, 200000, 50000, false, T0 + 1);
	KUNIT_EXPECT_EQ(test, c.smoothed_rtt, 106250);
}

/* Sections 6.1.2 and 6.2.1. */
static void quic_test_pto_and_loss_delay(struct kunit *test)
{
	struct quic_cong c;

	quic_test_init(&c, QUIC_CONG_RENO);
	quic_cong_rtt_sample(&c, 100000, 0, true, T0);
	/* 100000 + 4 * 50000, plus max_ack_delay (25000) in 1-RTT. */
	KUNIT_EXPECT_EQ(test, quic_cong_pto(&c, false), 300000);
	KUNIT_EXPECT_EQ(test, quic_cong_pto(&c, true), 325000);
	/* 9/8 * max(latest, smoothed). */
	KUNIT_EXPECT_EQ(test, quic_cong_loss_delay(&c), 112500);
	c.latest_rtt = 160000;
	KUNIT_EXPECT_EQ(test, quic_cong_loss_delay(&c), 180000);

	/* kGranularity floors both. */
	quic_test_init(&c, QUIC_CONG_RENO);
	quic_cong_rtt_sample(&c, 200, 0, true, T0);
	KUNIT_EXPECT_EQ(test, quic_cong_pto(&c, false), 200 + 1000);
	KUNIT_EXPECT_EQ(test, quic_cong_loss_delay(&c), 1000);
}

/* Section 7.2 and Appendix B: slow start, recovery, avoidance. */
static void quic_test_reno(struct kunit *test)
{
	struct quic_cong c;
	int i;

	quic_test_init(&c, QUIC_CONG_RENO);
	/* min(10 * 1200, max(14720, 2400)) */
	KUNIT_EXPECT_EQ(test, c.cwnd, 12000);
	KUNIT_EXPECT_TRUE(test, quic_cong_can_send(&c, 12000));
	for (i = 0; i < 10; i++)
		quic_cong_on_sent(&c, MSS, i, T0);
	KUNIT_EXPECT_EQ(test, c.in_flight, 12000);
	KUNIT_EXPECT_FALSE(test, quic_cong_can_send(&c, 1));

	/* Slow start: + bytes acknowledged. */
	quic_cong_on_acked(&c, MSS, 0, T0, T0 + 100);
	KUNIT_EXPECT_EQ(test, c.cwnd, 13200);
	KUNIT_EXPECT_EQ(test, c.in_flight, 10800);

	/* A loss halves the window, once per recovery period. */
	quic_cong_on_lost(&c, MSS);
	quic_cong_event(&c, T0, T0 + 200, 1);
	KUNIT_EXPECT_EQ(test, c.ssthresh, 6600);
	KUNIT_EXPECT_EQ(test, c.cwnd, 6600);
	KUNIT_EXPECT_EQ(test, c.lost_pkts, 1);
	quic_cong_on_lost(&c, MSS);
	quic_cong_event(&c, T0 + 150, T0 + 300, 1);
	KUNIT_EXPECT_EQ(test, c.cwnd, 6600);

	/* Packets sent before the recovery started do not grow it: each
	 * acknowledgment releases ssthresh/RecoverFS of its bytes (RFC 6937):
	 * 7200 left in flight, ceil(1200 * 6600 / 13200) = 600 to send.
	 */
	quic_cong_on_acked(&c, MSS, 3, T0, T0 + 400);
	KUNIT_EXPECT_EQ(test, c.cwnd, 7800);

	/* Congestion avoidance: one datagram per window acknowledged. */
	for (i = 0; i < 5; i++)
		quic_cong_on_acked(&c, 1100, 20 + i, T0 + 500, T0 + 600);
	KUNIT_EXPECT_EQ(test, c.cwnd, 6600);
	quic_cong_on_acked(&c, 1100, 25, T0 + 500, T0 + 600);
	KUNIT_EXPECT_EQ(test, c.cwnd, 7800);

	/* A later loss starts a new period; never below 2 datagrams. */
	for (i = 0; i < 10; i++)
		quic_cong_event(&c, T0 + 1000 + i * 1000, T0 + 1500 + i * 1000, 1);
	KUNIT_EXPECT_EQ(test, c.cwnd, 2 * MSS);
	KUNIT_EXPECT_EQ(test, c.ssthresh, 2 * MSS);
}

/* Section 7.8: no growth while the window is not used. */
static void quic_test_app_limited(struct kunit *test)
{
	struct quic_cong c;

	quic_test_init(&c, QUIC_CONG_RENO);
	c.app_limited = 1;
	quic_cong_on_sent(&c, MSS, 0, T0);
	quic_cong_on_acked(&c, MSS, 0, T0, T0 + 100);
	KUNIT_EXPECT_EQ(test, c.cwnd, 12000);
	KUNIT_EXPECT_EQ(test, c.in_flight, 0);
}

/* RFC 9438 Section 4.2: K and W_cubic(t). */
static void quic_test_cubic_function(struct kunit *test)
{
	struct quic_cong c;
	u32 w;

	quic_test_init(&c, QUIC_CONG_CUBIC);
	/* W_max 100 segments, cwnd_epoch 70: K = cbrt(30 / 0.4) = 4.2172 s. */
	c.cubic.k = quic_cong_cubic_k(100 * MSS, 70 * MSS, MSS);
	KUNIT_EXPECT_EQ(test, c.cubic.k, 4217000);
	KUNIT_EXPECT_EQ(test, quic_cong_cubic_k(100 * MSS, 100 * MSS, MSS), 0);
	KUNIT_EXPECT_EQ(test, quic_cong_cubic_k(90 * MSS, 100 * MSS, MSS), 0);
	/* 27 segments below: K = cbrt(67.5) = 4.0716 s */
	KUNIT_EXPECT_EQ(test, quic_cong_cubic_k(100 * MSS, 73 * MSS, MSS),
			4071000);

	c.cubic.w_max = 100 * MSS;
	/* W_cubic(0) = W_max - C * K^3 = cwnd_epoch, to a few bytes. */
	w = quic_cong_cubic_w(&c, 0);
	KUNIT_EXPECT_LE(test, abs((int)w - 70 * MSS), 12);
	/* W_cubic(K) = W_max. */
	KUNIT_EXPECT_EQ(test, quic_cong_cubic_w(&c, c.cubic.k), 100 * MSS);
	/* K + 1 s: W_max + 0.4 segments; K + 2 s: + 3.2 segments. */
	KUNIT_EXPECT_EQ(test, quic_cong_cubic_w(&c, c.cubic.k + 1000000),
			100 * MSS + 480);
	KUNIT_EXPECT_EQ(test, quic_cong_cubic_w(&c, c.cubic.k + 2000000),
			100 * MSS + 3840);
	/* Symmetric below K: K - 2 s is 3.2 segments below W_max. */
	KUNIT_EXPECT_EQ(test, quic_cong_cubic_w(&c, c.cubic.k - 2000000),
			100 * MSS - 3840);
}

/* RFC 9438 Sections 4.6 and 4.7: beta_cubic and fast convergence. */
static void quic_test_cubic_reduction(struct kunit *test)
{
	struct quic_cong c;

	quic_test_init(&c, QUIC_CONG_CUBIC);
	c.cwnd = 100000;
	c.cubic.w_max = 0;
	quic_cong_event(&c, T0, T0 + 1, 1);
	/* Window at or above W_max: W_max = cwnd; cwnd = 0.7 * cwnd. */
	KUNIT_EXPECT_EQ(test, c.cubic.w_max, 100000);
	KUNIT_EXPECT_EQ(test, c.cubic.cwnd_prior, 100000);
	KUNIT_EXPECT_EQ(test, c.ssthresh, 70000);
	KUNIT_EXPECT_EQ(test, c.cwnd, 70000);
	KUNIT_EXPECT_TRUE(test, c.hs.done);

	/* Fast convergence: a loss below W_max releases bandwidth,
	 * W_max = cwnd * (1 + 0.7) / 2.
	 */
	c.cwnd = 80000;
	quic_cong_event(&c, T0 + 10, T0 + 11, 1);
	KUNIT_EXPECT_EQ(test, c.cubic.w_max, 68000);
	KUNIT_EXPECT_EQ(test, c.cwnd, 56000);

	/* The minimum window holds for CUBIC too. */
	c.cwnd = 3000;
	quic_cong_event(&c, T0 + 20, T0 + 21, 1);
	KUNIT_EXPECT_EQ(test, c.cwnd, 2 * MSS);
}

/* RFC 9438 Section 4.3: the Reno-friendly region, and alpha. */
static void quic_test_cubic_reno_friendly(struct kunit *test)
{
	struct quic_cong c;
	int i;

	quic_test_init(&c, QUIC_CONG_CUBIC);
	quic_cong_rtt_sample(&c, 10000, 0, true, T0);
	c.cwnd = 100000;
	quic_cong_event(&c, T0, T0 + 1, 1);	/* cwnd 70000, W_max 100000 */
	/* Ten windows acknowledged at the start of the epoch: W_cubic has
	 * not moved, W_est grew by 10 * 9/17 segments: cwnd follows W_est.
	 */
	for (i = 0; i < 700; i++)
		quic_cong_on_acked(&c, 1000, 100 + i, T0 + 2, T0 + 2);
	KUNIT_EXPECT_EQ(test, c.cwnd, c.cubic.w_est);
	/* 10 * 9/17 * 1200 = 6352 at a constant window; a little less as
	 * the window grows with W_est.
	 */
	KUNIT_EXPECT_GT(test, c.cwnd, 70000 + 5900);
	KUNIT_EXPECT_LE(test, c.cwnd, 70000 + 6352);
	KUNIT_EXPECT_LT(test, quic_cong_cubic_w(&c, 0), c.cubic.w_est);

	/* Once W_est reached cwnd_prior, alpha is 1: one segment per
	 * window acknowledged (a little less as the window follows).
	 */
	c.cubic.w_est = 100000;
	c.cwnd = 100000;
	c.cubic.est_frac = 0;
	for (i = 0; i < 100; i++)
		quic_cong_on_acked(&c, 1000, 1000 + i, T0 + 2, T0 + 2);
	KUNIT_EXPECT_GE(test, c.cubic.w_est, 100000 + MSS - 12);
	KUNIT_EXPECT_LE(test, c.cubic.w_est, 100000 + MSS);
	KUNIT_EXPECT_EQ(test, c.cwnd, c.cubic.w_est);
}

/* RFC 9438 Section 4.2: the target is capped at 1.5 x cwnd. */
static void quic_test_cubic_convex_cap(struct kunit *test)
{
	struct quic_cong c;
	int i;

	quic_test_init(&c, QUIC_CONG_CUBIC);
	quic_cong_rtt_sample(&c, 10000, 0, true, T0);
	c.cwnd = 100000;
	quic_cong_event(&c, T0, T0 + 1, 1);	/* cwnd 70000 */
	quic_cong_on_acked(&c, 0, 10, T0 + 2, T0 + 2);	/* epoch starts */
	KUNIT_EXPECT_EQ(test, c.cubic.epoch_start, T0 + 2);
	KUNIT_EXPECT_EQ(test, c.cubic.k, quic_cong_cubic_k(100000, 70000, MSS));
	/* 60 s later W_cubic is far above: each acknowledged byte adds at
	 * most half a byte, so one window acknowledged gives 1.5 x cwnd.
	 */
	for (i = 0; i < 70; i++)
		quic_cong_on_acked(&c, 1000, 20 + i, T0 + 2, T0 + 60000000);
	KUNIT_EXPECT_GT(test, c.cwnd, 100000);
	KUNIT_EXPECT_LE(test, c.cwnd, 70000 + 35000);
}

/* RFC 9406 Section 4.2: rounds, entering and leaving CSS. */
static void quic_test_hystart(struct kunit *test)
{
	struct quic_cong c;
	u64 now = T0;
	s64 pn = 0;
	int i, r;

	quic_test_init(&c, QUIC_CONG_CUBIC);
	for (i = 0; i < 10; i++)
		quic_cong_on_sent(&c, 100, pn++, now);
	/* The first ACK starts round 1, which ends at pn 9. */
	quic_cong_on_acked(&c, 100, 0, now, now);
	KUNIT_EXPECT_EQ(test, c.hs.window_end, 9);
	for (i = 0; i < QUIC_HS_N_RTT_SAMPLE; i++)
		quic_cong_rtt_sample(&c, 100000 + i * 1000, 0, false, now);
	KUNIT_EXPECT_EQ(test, c.hs.cur_round_min, 100000);
	KUNIT_EXPECT_FALSE(test, c.hs.in_css);

	/* Round 2: RTT up by 12 ms < max(4, min(100 / 8, 16)) = 12.5 ms:
	 * still slow start.
	 */
	for (i = 0; i < 10; i++)
		quic_cong_on_sent(&c, 100, pn++, now);
	quic_cong_on_acked(&c, 100, 9, now, now);
	KUNIT_EXPECT_EQ(test, c.hs.last_round_min, 100000);
	KUNIT_EXPECT_EQ(test, c.hs.window_end, 19);
	for (i = 0; i < QUIC_HS_N_RTT_SAMPLE; i++)
		quic_cong_rtt_sample(&c, 112000, 0, false, now);
	KUNIT_EXPECT_FALSE(test, c.hs.in_css);

	/* Round 3: the threshold is now 112 / 8 = 14 ms over round 2's
	 * minimum; 126 ms reaches it once N_RTT_SAMPLE samples were seen.
	 */
	for (i = 0; i < 10; i++)
		quic_cong_on_sent(&c, 100, pn++, now);
	quic_cong_on_acked(&c, 100, 19, now, now);
	for (i = 0; i < QUIC_HS_N_RTT_SAMPLE - 1; i++)
		quic_cong_rtt_sample(&c, 126000, 0, false, now);
	KUNIT_EXPECT_FALSE(test, c.hs.in_css);	/* only 7 samples */
	quic_cong_rtt_sample(&c, 126000, 0, false, now);
	KUNIT_EXPECT_TRUE(test, c.hs.in_css);
	KUNIT_EXPECT_EQ(test, c.hs.css_baseline, 126000);

	/* In CSS the window grows by a quarter of the bytes acknowledged. */
	i = c.cwnd;
	quic_cong_on_acked(&c, 1000, 25, now, now);
	KUNIT_EXPECT_EQ(test, c.cwnd, i + 250);

	/* A round whose minimum falls below the baseline: spurious, back
	 * to slow start.
	 */
	for (i = 0; i < 10; i++)
		quic_cong_on_sent(&c, 100, pn++, now);
	quic_cong_on_acked(&c, 100, 29, now, now);
	for (i = 0; i < QUIC_HS_N_RTT_SAMPLE; i++)
		quic_cong_rtt_sample(&c, 120000, 0, false, now);
	KUNIT_EXPECT_FALSE(test, c.hs.in_css);
	KUNIT_EXPECT_EQ(test, c.ssthresh, U32_MAX);

	/* Enter CSS again, then CSS_ROUNDS rounds end slow start with
	 * ssthresh = cwnd, without a loss.
	 */
	for (i = 0; i < 10; i++)
		quic_cong_on_sent(&c, 100, pn++, now);
	quic_cong_on_acked(&c, 100, pn - 11, now, now);
	for (i = 0; i < QUIC_HS_N_RTT_SAMPLE; i++)
		quic_cong_rtt_sample(&c, 120000, 0, false, now);
	quic_cong_on_acked(&c, 100, pn - 1, now, now);	/* next round */
	KUNIT_EXPECT_EQ(test, c.hs.last_round_min, 120000);
	/* 150 ms >= 120 ms + 15 ms */
	for (i = 0; i < QUIC_HS_N_RTT_SAMPLE; i++)
		quic_cong_rtt_sample(&c, 150000, 0, false, now);
	KUNIT_EXPECT_TRUE(test, c.hs.in_css);
	for (r = 0; r < QUIC_HS_CSS_ROUNDS; r++) {
		KUNIT_EXPECT_EQ(test, c.ssthresh, U32_MAX);
		for (i = 0; i < 10; i++)
			quic_cong_on_sent(&c, 100, pn++, now);
		quic_cong_on_acked(&c, 100, pn - 1, now, now);
	}
	KUNIT_EXPECT_TRUE(test, c.hs.done);
	KUNIT_EXPECT_FALSE(test, c.hs.in_css);
	/* ssthresh is the window when CSS ended; the ACK that ended it
	 * then counted in congestion avoidance.
	 */
	KUNIT_EXPECT_NE(test, c.ssthresh, U32_MAX);
	KUNIT_EXPECT_EQ(test, c.cubic.cwnd_prior, c.ssthresh);
	KUNIT_EXPECT_GE(test, c.cwnd, c.ssthresh);
	KUNIT_EXPECT_LT(test, c.cwnd, c.ssthresh + MSS);
}

/* RFC 9406 Section 4.2: a loss in slow start ends HyStart++. */
static void quic_test_hystart_loss(struct kunit *test)
{
	struct quic_cong c;

	quic_test_init(&c, QUIC_CONG_RENO);
	quic_cong_on_sent(&c, MSS, 0, T0);
	quic_cong_event(&c, T0, T0 + 1, 1);
	KUNIT_EXPECT_TRUE(test, c.hs.done);
	/* Later slow starts (after persistent congestion) are standard. */
	quic_cong_collapse(&c);
	quic_cong_on_acked(&c, MSS, 5, T0 + 2, T0 + 3);
	KUNIT_EXPECT_EQ(test, c.cwnd, 3 * MSS);
	KUNIT_EXPECT_EQ(test, c.hs.samples, 0);
}

/* RFC 9002 Section 7.6 and its example (Section 7.6.3, durations). */
static void quic_test_persistent_congestion(struct kunit *test)
{
	struct quic_cong c;
	u64 d;

	quic_test_init(&c, QUIC_CONG_RENO);
	/* No RTT sample yet: never (Section 7.6.2). */
	KUNIT_EXPECT_FALSE(test, quic_cong_persistent(&c, T0, T0 + 100000000));

	quic_cong_rtt_sample(&c, 100000, 0, true, T0);
	/* (100000 + 4 * 50000 + 25000) * 3 */
	d = 975000;
	KUNIT_EXPECT_FALSE(test, quic_cong_persistent(&c, T0 + 10, T0 + 10 + d));
	KUNIT_EXPECT_TRUE(test, quic_cong_persistent(&c, T0 + 10, T0 + 11 + d));
	/* The first packet was sent before the first sample. */
	KUNIT_EXPECT_FALSE(test, quic_cong_persistent(&c, T0 - 1, T0 + 2 * d));

	/* The response: ssthresh from the event, then the minimum window. */
	c.cwnd = 50000;
	quic_cong_event(&c, T0 + 11 + d, T0 + 2 * d, 1);
	quic_cong_collapse(&c);
	KUNIT_EXPECT_EQ(test, c.cwnd, 2 * MSS);
	KUNIT_EXPECT_EQ(test, c.ssthresh, 25000);
	KUNIT_EXPECT_EQ(test, c.recovery_start, 0);
	/* Slow start again from there. */
	quic_cong_on_acked(&c, MSS, 50, T0 + 3 * d, T0 + 3 * d);
	KUNIT_EXPECT_EQ(test, c.cwnd, 3 * MSS);
}

/* RFC 9002 Section 7.7: the rate and the token bucket. */
static void quic_test_pacing(struct kunit *test)
{
	struct quic_cong c;
	u64 now = T0;

	quic_test_init(&c, QUIC_CONG_RENO);
	quic_cong_rtt_sample(&c, 100000, 0, true, now);
	/* Slow start: 2 * 12000 / 0.1 s; avoidance: 1.25 * 12000 / 0.1 s. */
	KUNIT_EXPECT_EQ(test, quic_cong_pace_rate(&c), 240000);
	c.ssthresh = c.cwnd;
	KUNIT_EXPECT_EQ(test, quic_cong_pace_rate(&c), 150000);
	c.ssthresh = U32_MAX;

	/* A full bucket (the initial window) goes at once, then one
	 * datagram per 1200 / 240000 s = 5 ms.
	 */
	KUNIT_EXPECT_EQ(test, quic_cong_pace_wait(&c, MSS, now, 4000), 0);
	quic_cong_on_sent(&c, 12000, 9, now);
	KUNIT_EXPECT_EQ(test, quic_cong_pace_wait(&c, MSS, now, 4000), 5001);
	KUNIT_EXPECT_NE(test, quic_cong_pace_wait(&c, MSS, now + 4000, 4000), 0);
	KUNIT_EXPECT_EQ(test, quic_cong_pace_wait(&c, MSS, now + 5000, 4000), 0);
	/* An idle sender gets no more than the burst back. */
	KUNIT_EXPECT_EQ(test, quic_cong_pace_wait(&c, MSS, now + 10000000, 4000),
			0);
	KUNIT_EXPECT_EQ(test, c.pace_tokens, 12000);
	/* A fast path: the burst is two timer ticks of data when larger. */
	c.smoothed_rtt = 100;	/* 240 MB/s: 4 ms is 960000 bytes */
	quic_cong_pace_wait(&c, MSS, now + 20000000, 4000);
	KUNIT_EXPECT_EQ(test, c.pace_tokens, 1920000);
}

/* RFC 6937: after a large loss, sending comes back in step with deliveries. */
static void quic_test_prr(struct kunit *test)
{
	struct quic_cong c;
	int i;

	quic_test_init(&c, QUIC_CONG_RENO);
	quic_cong_rtt_sample(&c, 10000, 0, true, T0);
	c.cwnd = 120000;
	for (i = 0; i < 100; i++)
		quic_cong_on_sent(&c, MSS, i, T0);
	/* 80 of the 100 lost at once: 24000 left in flight. */
	for (i = 0; i < 80; i++)
		quic_cong_on_lost(&c, MSS);
	quic_cong_event(&c, T0, T0 + 10, 80);
	KUNIT_EXPECT_EQ(test, c.ssthresh, 60000);
	KUNIT_EXPECT_TRUE(test, c.in_recovery);
	/* Below ssthresh: what was delivered and one segment more, not the
	 * 37200 up to ssthresh at once.
	 */
	quic_cong_on_acked(&c, MSS, 80, T0, T0 + 20);
	KUNIT_EXPECT_EQ(test, c.in_flight, 22800);
	KUNIT_EXPECT_EQ(test, c.cwnd, 25200);
	quic_cong_on_sent(&c, MSS, 100, T0 + 21);
	quic_cong_on_sent(&c, MSS, 101, T0 + 21);
	KUNIT_EXPECT_EQ(test, c.prr_out, 2400);
	KUNIT_EXPECT_FALSE(test, quic_cong_can_send(&c, MSS));
	quic_cong_on_acked(&c, MSS, 81, T0, T0 + 22);
	KUNIT_EXPECT_EQ(test, c.cwnd, 26400);
	/* A packet sent in the recovery period is acknowledged: it ends,
	 * at ssthresh.
	 */
	quic_cong_on_acked(&c, MSS, 100, T0 + 21, T0 + 40);
	KUNIT_EXPECT_FALSE(test, c.in_recovery);
	KUNIT_EXPECT_EQ(test, c.cwnd, 60000);
}

/* RFC 9002 Section 6.1: reordering raises the thresholds, not beyond caps. */
static void quic_test_reorder_thresholds(struct kunit *test)
{
	struct quic_cong c;
	int i;

	quic_test_init(&c, QUIC_CONG_RENO);
	quic_cong_rtt_sample(&c, 100000, 0, true, T0);
	KUNIT_EXPECT_EQ(test, c.reorder_pkts, QUIC_PACKET_THRESHOLD);
	KUNIT_EXPECT_EQ(test, quic_cong_loss_delay(&c), 112500);

	/* Declared lost 5 behind the largest acknowledged: threshold 6. */
	quic_cong_spurious(&c, 0, 5, false);
	KUNIT_EXPECT_EQ(test, c.reorder_pkts, 6);
	/* A smaller distance does not lower it. */
	quic_cong_spurious(&c, 0, 4, false);
	KUNIT_EXPECT_EQ(test, c.reorder_pkts, 6);
	quic_cong_spurious(&c, 0, 255, false);
	KUNIT_EXPECT_EQ(test, c.reorder_pkts, QUIC_PACKET_THRESHOLD_MAX);

	/* By the time threshold: 9/8, then 5/4, then 3/2 of the RTT. */
	quic_cong_spurious(&c, 0, 0, true);
	KUNIT_EXPECT_EQ(test, quic_cong_loss_delay(&c), 125000);
	for (i = 0; i < 4; i++)
		quic_cong_spurious(&c, 0, 0, true);
	KUNIT_EXPECT_EQ(test, quic_cong_loss_delay(&c), 150000);
	KUNIT_EXPECT_EQ(test, c.spurious_pkts, 8);
	KUNIT_EXPECT_EQ(test, c.undone, 0);
}

/* A congestion event whose every lost packet arrives is undone. */
static void quic_test_undo_reno(struct kunit *test)
{
	struct quic_cong c;
	u32 ep;

	quic_test_init(&c, QUIC_CONG_RENO);
	quic_cong_rtt_sample(&c, 10000, 0, true, T0);
	c.cwnd = 100000;
	c.ssthresh = 80000;
	quic_cong_on_lost(&c, MSS);
	quic_cong_on_lost(&c, MSS);
	quic_cong_event(&c, T0, T0 + 10, 2);
	ep = c.episode;
	/* A third loss in the same recovery period joins the event. */
	quic_cong_on_lost(&c, MSS);
	quic_cong_event(&c, T0 + 5, T0 + 20, 1);
	KUNIT_EXPECT_EQ(test, c.cwnd, 50000);
	KUNIT_EXPECT_EQ(test, c.episode, ep);

	KUNIT_EXPECT_FALSE(test, quic_cong_spurious(&c, ep, 3, false));
	KUNIT_EXPECT_FALSE(test, quic_cong_spurious(&c, ep, 3, false));
	KUNIT_EXPECT_EQ(test, c.cwnd, 50000);
	KUNIT_EXPECT_TRUE(test, quic_cong_spurious(&c, ep, 3, false));
	KUNIT_EXPECT_EQ(test, c.cwnd, 100000);
	KUNIT_EXPECT_EQ(test, c.ssthresh, 80000);
	KUNIT_EXPECT_EQ(test, c.recovery_start, 0);
	KUNIT_EXPECT_EQ(test, c.undone, 1);
	/* Acknowledgments grow the window again at once. */
	quic_cong_on_acked(&c, MSS, 50, T0 + 5, T0 + 30);
	KUNIT_EXPECT_EQ(test, c.acked_acc, MSS);

	/* An event with a real loss among its packets stays. */
	quic_cong_event(&c, T0 + 40, T0 + 50, 2);
	ep = c.episode;
	KUNIT_EXPECT_FALSE(test, quic_cong_spurious(&c, ep, 3, false));
	KUNIT_EXPECT_EQ(test, c.cwnd, 50000);

	/* A late arrival from an earlier event undoes nothing. */
	quic_cong_event(&c, T0 + 60, T0 + 70, 1);
	KUNIT_EXPECT_FALSE(test, quic_cong_spurious(&c, ep, 3, false));
	KUNIT_EXPECT_EQ(test, c.cwnd, 25000);
	/* In slow start, undo returns to slow start. */
	quic_test_init(&c, QUIC_CONG_RENO);
	c.cwnd = 64000;
	quic_cong_event(&c, T0, T0 + 1, 1);
	KUNIT_EXPECT_EQ(test, c.ssthresh, 32000);
	KUNIT_EXPECT_TRUE(test, c.hs.done);
	KUNIT_EXPECT_TRUE(test, quic_cong_spurious(&c, c.episode, 3, false));
	KUNIT_EXPECT_EQ(test, c.ssthresh, U32_MAX);
	KUNIT_EXPECT_EQ(test, c.cwnd, 64000);
	KUNIT_EXPECT_FALSE(test, c.hs.done);
}

/* RFC 9438 Section 4.9: CUBIC's W_max and epoch come back too. */
static void quic_test_undo_cubic(struct kunit *test)
{
	struct quic_cong c;
	int i;

	quic_test_init(&c, QUIC_CONG_CUBIC);
	quic_cong_rtt_sample(&c, 10000, 0, true, T0);
	c.cwnd = 100000;
	quic_cong_event(&c, T0, T0 + 1, 1);	/* cwnd 70000, W_max 100000 */
	for (i = 0; i < 100; i++)
		quic_cong_on_acked(&c, 1000, 100 + i, T0 + 2, T0 + 1000);
	KUNIT_EXPECT_NE(test, c.cubic.epoch_start, 0);
	c.cwnd = 90000;
	/* Fast convergence: W_max 90000 * 1.7 / 2 = 76500. */
	quic_cong_event(&c, T0 + 2000, T0 + 2001, 1);
	KUNIT_EXPECT_EQ(test, c.cubic.w_max, 76500);
	KUNIT_EXPECT_EQ(test, c.cwnd, 63000);
	KUNIT_EXPECT_TRUE(test, quic_cong_spurious(&c, c.episode, 3, false));
	KUNIT_EXPECT_EQ(test, c.cwnd, 90000);
	KUNIT_EXPECT_EQ(test, c.cubic.w_max, 100000);
	KUNIT_EXPECT_EQ(test, c.cubic.epoch_start, T0 + 1000);
	KUNIT_EXPECT_EQ(test, c.ssthresh, 70000);
}

/* RFC 9000 Section 13.4.2.1: ECN counts that pass and those that fail. */
static void quic_test_ecn_check(struct kunit *test)
{
	static const u64 zero[QUIC_ECN_COUNTS];
	const u64 prev[QUIC_ECN_COUNTS] = { 5, 0, 1 };

	/* Every marked packet arrived ECT(0), or some CE instead. */
	KUNIT_EXPECT_TRUE(test, quic_ecn_check(zero, (u64[]){ 5, 0, 0 }, 5, 10));
	KUNIT_EXPECT_TRUE(test, quic_ecn_check(zero, (u64[]){ 3, 0, 2 }, 5, 10));
	/* More than acknowledged now: ACK-only packets are counted too. */
	KUNIT_EXPECT_TRUE(test, quic_ecn_check(zero, (u64[]){ 8, 0, 0 }, 5, 10));
	/* Cleared on the path: no counts for the marked packets. */
	KUNIT_EXPECT_FALSE(test, quic_ecn_check(zero, zero, 3, 10));
	KUNIT_EXPECT_FALSE(test, quic_ecn_check(zero, (u64[]){ 4, 0, 0 }, 5, 10));
	KUNIT_EXPECT_FALSE(test, quic_ecn_check(prev, (u64[]){ 6, 0, 1 }, 2, 10));
	/* A count went down. */
	KUNIT_EXPECT_FALSE(test, quic_ecn_check(prev, (u64[]){ 4, 0, 3 }, 0, 10));
	KUNIT_EXPECT_FALSE(test, quic_ecn_check(prev, (u64[]){ 7, 0, 0 }, 0, 10));
	/* ECT(1) reported, though only ECT(0) was sent. */
	KUNIT_EXPECT_FALSE(test, quic_ecn_check(zero, (u64[]){ 5, 1, 0 }, 5, 10));
	/* More marked packets reported than were ever sent marked. */
	KUNIT_EXPECT_FALSE(test, quic_ecn_check(zero, (u64[]){ 10, 0, 1 }, 1, 10));
	KUNIT_EXPECT_TRUE(test, quic_ecn_check(zero, (u64[]){ 9, 0, 1 }, 1, 10));
	/* Unchanged counts with nothing marked newly acknowledged pass. */
	KUNIT_EXPECT_TRUE(test, quic_ecn_check(prev, prev, 0, 10));
}

/* RFC 9002 Section 7.1 and Appendix B.7: CE as a congestion event. */
static void quic_test_ecn_event(struct kunit *test)
{
	struct quic_cong c;

	quic_test_init(&c, QUIC_CONG_RENO);
	c.cwnd = 100000;
	KUNIT_EXPECT_TRUE(test, quic_cong_ecn_event(&c, T0, T0 + 10));
	KUNIT_EXPECT_EQ(test, c.cwnd, 50000);
	KUNIT_EXPECT_EQ(test, c.ssthresh, 50000);
	KUNIT_EXPECT_EQ(test, c.lost_pkts, 0);
	KUNIT_EXPECT_TRUE(test, c.hs.done);
	/* Once per recovery period: a packet sent before it began. */
	KUNIT_EXPECT_FALSE(test, quic_cong_ecn_event(&c, T0 + 5, T0 + 20));
	KUNIT_EXPECT_EQ(test, c.cwnd, 50000);
	/* Nothing to undo: no packet of it was declared lost. */
	KUNIT_EXPECT_FALSE(test, quic_cong_spurious(&c, c.episode, 3, false));
	KUNIT_EXPECT_EQ(test, c.cwnd, 50000);
	/* A packet sent after it began: a new one. */
	KUNIT_EXPECT_TRUE(test, quic_cong_ecn_event(&c, T0 + 11, T0 + 30));
	KUNIT_EXPECT_EQ(test, c.cwnd, 25000);

	/* CUBIC: beta_cubic, W_max remembered. */
	quic_test_init(&c, QUIC_CONG_CUBIC);
	c.cwnd = 100000;
	KUNIT_EXPECT_TRUE(test, quic_cong_ecn_event(&c, T0, T0 + 10));
	KUNIT_EXPECT_EQ(test, c.cwnd, 70000);
	KUNIT_EXPECT_EQ(test, c.cubic.w_max, 100000);
	KUNIT_EXPECT_EQ(test, c.lost_pkts, 0);
}

static struct kunit_case quic_cong_test_cases[] = {
	KUNIT_CASE(quic_test_rtt_estimator),
	KUNIT_CASE(quic_test_rtt_ack_delay_cap),
	KUNIT_CASE(quic_test_pto_and_loss_delay),
	KUNIT_CASE(quic_test_reno),
	KUNIT_CASE(quic_test_app_limited),
	KUNIT_CASE(quic_test_cubic_function),
	KUNIT_CASE(quic_test_cubic_reduction),
	KUNIT_CASE(quic_test_cubic_reno_friendly),
	KUNIT_CASE(quic_test_cubic_convex_cap),
	KUNIT_CASE(quic_test_hystart),
	KUNIT_CASE(quic_test_hystart_loss),
	KUNIT_CASE(quic_test_persistent_congestion),
	KUNIT_CASE(quic_test_pacing),
	KUNIT_CASE(quic_test_prr),
	KUNIT_CASE(quic_test_reorder_thresholds),
	KUNIT_CASE(quic_test_undo_reno),
	KUNIT_CASE(quic_test_undo_cubic),
	KUNIT_CASE(quic_test_ecn_check),
	KUNIT_CASE(quic_test_ecn_event),
	{}
};

static struct kunit_suite quic_cong_test_suite = {
	.name = "quic_cong",
	.test_cases = quic_cong_test_cases,
};

kunit_test_suite(quic_cong_test_suite);
