"""Peers that flood control frames or break the rules of connection IDs, key updates and
datagrams (RFC 9000 Sections 5.1, 8.2, 19.15-19.18 and 21.9; RFC 9001 Section 6; RFC 9221
Section 3).

The peer is aioquic driven sans-I/O (peer.py) with frames of our choosing added to its 1-RTT
packets; here it can also stop acknowledging, so that nothing the kernel queues is ever freed by
an acknowledgment, which is what made the control-frame queue grow without bound (the class of
quic-go's CVE-2023-49295).  Memory is measured as the kmalloc-64 objects in use (where each
queued PATH_RESPONSE or RETIRE_CONNECTION_ID frame lived) and as the connection's charged send
memory (TX_QUEUE of /proc/net/quic/conns).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import peer as peer_mod
import pytest
from peer import AioPeer, KernelAccept, KernelReader, conns_row, frame, until

# Flood sizes: each frame once cost one kmalloc-64 object that stayed until acknowledged.
FLOOD = 30000
# What the flood may leave behind: the kernel's own sent-packet records and the like, not one
# object per frame.  The unfixed module grew by about FLOOD.
SLAB_SLACK = 3000
# Charged send memory of the connection under the flood (control frames are charged whole).
TX_BOUND = 16384
BATCH = 600  # frames handed to aioquic at a time (it packs about 130 per packet)

PROTOCOL_VIOLATION = 0x0A
KEY_UPDATE_ERROR = 0x0E
RETIRE_CONNECTION_ID = 0x19
NEW_CONNECTION_ID = 0x18
PATH_CHALLENGE = 0x1A
DATAGRAM_LEN = 0x31

_KMALLOC64 = re.compile(r"^kmalloc-(?:rnd-\d+-)?64\s+(\d+)\s")


def kmalloc64() -> int:
    """Active kmalloc-64 objects, over the random kmalloc caches if the kernel has them."""
    total = 0
    for line in Path("/proc/slabinfo").read_text().splitlines():
        m = _KMALLOC64.match(line)
        if m:
            total += int(m.group(1))
    assert total, "no kmalloc-64 cache in /proc/slabinfo"
    return total


@pytest.fixture
def hostile(monkeypatch):
    """AioPeer builds this peer: it can stop acknowledging (``mute_acks``), ignore the
    kernel's RETIRE_CONNECTION_ID frames (``ignore_retire``, so that it issues no replacement
    IDs), and it records the PATH_RESPONSE data it receives."""
    base = peer_mod.peer_class()

    class Hostile(base):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.mute_acks = False
            self.ignore_retire = False
            self.path_responses: list[bytes] = []

        def _write_ack_frame(self, builder, space, now) -> None:
            if not self.mute_acks:
                super()._write_ack_frame(builder=builder, space=space, now=now)

        def _handle_retire_connection_id_frame(self, context, frame_type, buf) -> None:
            if self.ignore_retire:
                buf.pull_uint_var()
                return
            super()._handle_retire_connection_id_frame(context, frame_type, buf)

        def _handle_path_response_frame(self, context, frame_type, buf) -> None:
            self.path_responses.append(buf.pull_bytes(8))

    monkeypatch.setattr(peer_mod, "peer_class", lambda: Hostile)
    return Hostile


def _connect(topo, tp=None, **config_kw):
    acc = KernelAccept(topo, transport_params=tp)
    p = AioPeer(topo, acc.port, **config_kw)
    p.until(lambda: p.connected and not acc.thread.is_alive(), "the handshake")
    s = acc.wait()
    return acc, p, s, KernelReader(s.sock)


def _quiet(p: AioPeer, seconds: float) -> None:
    """Pump for a while: the handshake's NEW_CONNECTION_ID, NEW_TOKEN... acknowledged."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        p.pump(0.02)


def _flood(p: AioPeer, sr: KernelReader, frames: list[tuple[int, bytes]]) -> None:
    """Hand ``frames`` to aioquic in batches and send them all."""
    for i in range(0, len(frames), BATCH):
        p.quic.inject.extend(frames[i : i + BATCH])
        until(lambda: not p.quic.inject, "the frames sent", 60, step=p.pump)
        sr.poll()
        assert sr.close is None, f"the kernel closed the connection: {sr.close}"
    _quiet(p, 1.0)


def _check_flood(topo, s, sr: KernelReader, before: int, what: str) -> int:
    grown = kmalloc64() - before
    row = conns_row(s.sock, topo.server)
    print(f"{what}: kmalloc-64 +{grown} objects after {FLOOD} frames, conns row {row}")
    sr.poll()
    assert sr.close is None and row is not None and row["STATE"] == 1, (sr.close, row)
    assert grown < SLAB_SLACK, f"kmalloc-64 grew by {grown} objects for {FLOOD} frames"
    assert row["TX_QUEUE"] <= TX_BOUND, row
    return grown


def _freed(before: int) -> None:
    """Everything the connection held is freed once it is closed."""
    time.sleep(1.0)
    grown = kmalloc64() - before
    print(f"after close: kmalloc-64 {grown:+d} objects")
    assert grown < SLAB_SLACK, grown


def test_path_challenge_flood_keeps_one_response(quic_module, clean_path, topo, hostile):
    """30,000 PATH_CHALLENGE frames from a peer that never acknowledges: the kernel keeps
    only the latest challenge to answer (RFC 9000 Section 8.2.2), so its memory stays flat;
    once the peer acknowledges again, the answer it gets is the last challenge's Data."""
    acc, p, s, sr = _connect(topo)
    try:
        _quiet(p, 1.0)
        before = kmalloc64()
        p.quic.mute_acks = True
        frames = [(PATH_CHALLENGE, os.urandom(8)) for _ in range(FLOOD)]
        _flood(p, sr, frames)
        _check_flood(topo, s, sr, before, "PATH_CHALLENGE flood")
        sent = len(p.quic.path_responses)
        p.quic.mute_acks = False
        p.until(
            lambda: p.quic.path_responses and p.quic.path_responses[-1] == frames[-1][1],
            "the answer to the last challenge",
        )
        print(f"PATH_RESPONSE frames received: {len(p.quic.path_responses)} ({sent} muted)")
        # One per packet the kernel could send (its window, then probes), not one per
        # challenge: the unfixed module answered every one of them.
        assert len(p.quic.path_responses) < FLOOD // 20, len(p.quic.path_responses)
    finally:
        p.close()
        acc.close()
    _freed(before)


def test_new_connection_id_below_retire_prior_to_flood(quic_module, clean_path, topo, hostile):
    """NEW_CONNECTION_ID for a sequence number below Retire Prior To, 30,000 times, from a
    peer that never acknowledges: one RETIRE_CONNECTION_ID is queued for it, not one per
    frame (RFC 9000 Section 19.15: "unless it has already done so for that sequence
    number")."""
    acc, p, s, sr = _connect(topo)
    try:
        _quiet(p, 1.0)
        before = kmalloc64()
        p.quic.mute_acks = True
        p.quic.ignore_retire = True
        # Retire Prior To 1: the kernel retires aioquic's sequence number 0 and moves to 1.
        cid, token = os.urandom(8), os.urandom(16)
        first = frame(NEW_CONNECTION_ID, 100, 1, data=bytes([8]) + cid + token)
        cid, token = os.urandom(8), os.urandom(16)
        again = frame(NEW_CONNECTION_ID, 0, 0, data=bytes([8]) + cid + token)
        _flood(p, sr, [first] + [again] * FLOOD)
        _check_flood(topo, s, sr, before, "NEW_CONNECTION_ID flood")
    finally:
        p.close()
        acc.close()
    _freed(before)


def test_retire_connection_id_not_sent_yet(quic_module, clean_path, topo, hostile):
    """RETIRE_CONNECTION_ID of a number the peer was never sent closes the connection with
    PROTOCOL_VIOLATION (RFC 9000 Section 19.16), also when that ID is issued already and its
    NEW_CONNECTION_ID waits to be sent: a peer guessing the next numbers cannot make the
    kernel issue and queue IDs without bound."""
    acc, p, s, sr = _connect(topo)
    try:
        _quiet(p, 1.0)

        def step() -> None:
            p.pump()
            sr.poll()

        # aioquic moves to sequence number 1 and retires 0, which was sent in the
        # handshake: the kernel issues 8 in its place.
        p.quic.change_connection_id()
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            step()
        assert sr.close is None and p.closed is None, (sr.close, p.closed)
        # Retiring 2 issues the next number, 9; retiring that one in the same packet,
        # before it could be sent, is the violation.
        p.quic.inject = [frame(RETIRE_CONNECTION_ID, 2), frame(RETIRE_CONNECTION_ID, 9)]
        until(lambda: p.closed is not None and sr.close, "the close", 30, step=step)
        assert (p.closed.error_code, p.closed.frame_type) == (
            PROTOCOL_VIOLATION,
            RETIRE_CONNECTION_ID,
        )
        assert sr.close == (PROTOCOL_VIOLATION, RETIRE_CONNECTION_ID)
        info = s.close_info()
        assert (info.errcode, info.frame) == (PROTOCOL_VIOLATION, RETIRE_CONNECTION_ID)
    finally:
        p.close()
        acc.close()


def test_datagram_larger_than_advertised(quic_module, clean_path, topo, hostile):
    """A DATAGRAM frame of exactly max_datagram_frame_size (type, length and data) is taken;
    one byte more is a PROTOCOL_VIOLATION (RFC 9221 Section 3)."""
    acc, p, s, sr = _connect(topo, {"max_datagram_frame_size": 1200}, max_datagram_size=1452)
    try:

        def step() -> None:
            p.pump()
            sr.poll()

        p.quic.inject = [frame(DATAGRAM_LEN, 1197, data=b"d" * 1197)]  # 1 + 2 + 1197
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            step()
        assert sr.close is None and p.closed is None, (sr.close, p.closed)
        p.quic.inject = [frame(DATAGRAM_LEN, 1198, data=b"d" * 1198)]
        until(lambda: p.closed is not None and sr.close, "the close", 30, step=step)
        assert (p.closed.error_code, p.closed.frame_type) == (PROTOCOL_VIOLATION, DATAGRAM_LEN)
        assert sr.close == (PROTOCOL_VIOLATION, DATAGRAM_LEN)
    finally:
        p.close()
        acc.close()


def test_second_key_update_before_ack_is_key_update_error(quic_module, clean_path, topo, hostile):
    """The peer updates its keys, then again before the kernel acknowledged a packet of the
    new phase (a 2 s ACK delay keeps that acknowledgment back): KEY_UPDATE_ERROR (RFC 9001
    Sections 6.1 and 6.2), so a peer cannot make the kernel derive keys at its own pace."""
    acc, p, s, sr = _connect(topo, {"max_ack_delay": 2000000})
    try:
        _quiet(p, 3.0)  # everything acknowledged, the handshake confirmed
        p.quic.request_key_update()
        p.quic.send_ping(1)
        _quiet(p, 0.5)  # the kernel derives its next keys meanwhile
        sr.poll()
        assert sr.close is None, sr.close
        p.quic.request_key_update()
        p.quic.send_ping(2)

        def step() -> None:
            p.pump()
            sr.poll()

        until(lambda: sr.close, "the kernel's close", 30, step=step)
        assert sr.close == (KEY_UPDATE_ERROR, 0)
        info = s.close_info()
        assert info.errcode == KEY_UPDATE_ERROR
    finally:
        p.close()
        acc.close()
