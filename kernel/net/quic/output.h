/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC: packet assembly and transmission (RFC 9000 Sections 12 and 14,
 * RFC 9002 Section 6 for probes).
 */

#ifndef __NET_QUIC_OUTPUT_H
#define __NET_QUIC_OUTPUT_H

#include <linux/types.h>

struct sock;
struct quic_path_alt;

void quic_output_flush(struct sock *sk);
u32 quic_output_path_frames(struct sock *sk, const struct quic_path_alt *a,
			    const u8 *response, const u8 *challenge, u32 room);
void quic_output_probe(struct sock *sk, u8 space);
void quic_output_close(struct sock *sk, u8 space, bool app);

#endif /* __NET_QUIC_OUTPUT_H */
