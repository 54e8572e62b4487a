/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: RTT estimation (RFC 9002 Section 5) and congestion control
 * (RFC 9002 Section 7, NewReno).  Times are in microseconds.
 */

#ifndef __NET_QUIC_CONG_H
#define __NET_QUIC_CONG_H

#include <linux/types.h>

#define QUIC_MIN_CWND_PKTS	2	/* RFC 9002 Section 7.2 */
#define QUIC_INIT_CWND_PKTS	10	/* RFC 9002 Section 7.2 */
#define QUIC_GRANULARITY	1000	/* kGranularity, us */

/**
 * struct quic_cong - RTT and congestion state of the path
 * @latest_rtt: latest RTT sample
 * @min_rtt: minimum RTT seen
 * @smoothed_rtt: smoothed RTT
 * @rttvar: RTT variation
 * @max_ack_delay: peer's max_ack_delay
 * @cwnd: congestion window, bytes
 * @ssthresh: slow start threshold, bytes
 * @in_flight: bytes in flight
 * @mss: max datagram size
 * @recovery_start: start of the current recovery period, 0 if none
 * @pto_count: consecutive PTOs (RFC 9002 Section 6.2.1)
 * @has_sample: an RTT sample was taken
 */
struct quic_cong {
	u32 latest_rtt;
	u32 min_rtt;
	u32 smoothed_rtt;
	u32 rttvar;
	u32 max_ack_delay;
	u32 cwnd;
	u32 ssthresh;
	u32 in_flight;
	u32 mss;
	u64 recovery_start;
	u8 pto_count;
	u8 has_sample:1;
};

void quic_cong_init(struct quic_cong *c, u32 mss, u32 init_rtt);
void quic_cong_rtt_sample(struct quic_cong *c, u32 rtt, u32 ack_delay,
			  bool confirmed);
u32 quic_cong_pto(const struct quic_cong *c, bool app);
u32 quic_cong_loss_delay(const struct quic_cong *c);
void quic_cong_on_sent(struct quic_cong *c, u32 bytes);
void quic_cong_on_acked(struct quic_cong *c, u32 bytes, u64 sent_time);
void quic_cong_on_lost(struct quic_cong *c, u32 bytes, u64 sent_time,
		       u64 now);
void quic_cong_on_discard(struct quic_cong *c, u32 bytes);
bool quic_cong_can_send(const struct quic_cong *c, u32 bytes);

#endif /* __NET_QUIC_CONG_H */
