"""Stateless Reset (RFC 9000 Section 10.3): a datagram that ends with a reset token the peer
gave us ends the connection at once, whatever its length from 21 bytes up; one that ends
with any other 16 bytes changes nothing.

The peer is aioquic (selftests/peer.py), which hands the kernel a reset token with each
NEW_CONNECTION_ID frame; the reset is made by hand and sent from the peer's socket.
"""

from __future__ import annotations

import os

import pytest
from peer import AioPeer, KernelAccept, KernelReader, until


def _reset(dcid: bytes, token: bytes, length: int) -> bytes:
    """A short-header-looking datagram of ``length`` bytes: fixed bit set, the connection's
    Destination ID (so that it is routed to it), unpredictable bytes, the token last."""
    first = 0x40 | (os.urandom(1)[0] & 0x3F)
    rest = length - 1 - len(dcid) - len(token)
    assert rest >= 0
    return bytes([first]) + dcid + os.urandom(rest) + token


@pytest.mark.parametrize("length", [25, 28, 40, 1200])
def test_stateless_reset_ends_the_connection(quic_module, clean_path, topo, length):
    """A reset of ``length`` bytes (25: the shortest that carries the 8-byte ID it is routed
    by; 28: still too short to hold a header protection sample; 40 and 1200: long enough to
    be mistaken for a packet) closes the kernel's connection; a datagram that ends with the
    wrong 16 bytes before it did not."""
    acc = KernelAccept(topo)
    peer = AioPeer(topo, acc.port)
    try:
        peer.until(lambda: peer.connected and not acc.thread.is_alive(), "the handshake")
        s = acc.wait()
        sr = KernelReader(s.sock)
        # aioquic issues its further IDs (and their tokens) once the handshake is done.
        peer.until(lambda: len(peer.quic._host_cids) > 1, "aioquic's NEW_CONNECTION_ID")
        for _ in range(20):
            peer.pump(0.02)
        dcid = peer.quic._peer_cid.cid
        token = peer.quic._host_cids[1].stateless_reset_token
        peer.sock.send(_reset(dcid, os.urandom(16), length))
        for _ in range(20):
            peer.pump(0.02)
            sr.poll()
        assert sr.close is None, "a datagram with a wrong token closed the connection"
        peer.sock.send(_reset(dcid, token, length))
        until(lambda: sr.poll() or sr.close is not None, "the connection to end", timeout=10)
    finally:
        peer.close()
        acc.close()
