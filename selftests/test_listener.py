"""A kernel listener against hand-made client Initials on a plain UDP socket: trains of them
(UDP GSO) are taken apart without losing either end of their path.

Initials are protected with aioquic's RFC 9001 Initial keys (test_wire.py's helpers), so what
the kernel makes of them is checked by an independent key schedule.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from test_wire import _client_initial

IPPROTO_QUIC = 261
SOL_UDP = 17
UDP_SEGMENT = 103
PING = b"\x01"


def _gso_train(udp: socket.socket, dgrams: list[bytes], dest) -> None:
    """One sendmsg() of equal-size datagrams as a UDP GSO train (UDP_SEGMENT): on loopback
    it reaches the listener's UDP socket as one GSO skb."""
    size = len(dgrams[0])
    assert all(len(d) == size for d in dgrams)
    udp.setsockopt(SOL_UDP, UDP_SEGMENT, size)
    assert udp.sendto(b"".join(dgrams), dest) == size * len(dgrams)


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")],
                         ids=["v4", "v6"])  # fmt: skip
def test_gso_train_of_initials_keeps_local_address(quic_module, family, host):
    """Issue 13, defect 1: a GSO train of 1200-byte Initials for three new connections (one
    of them in two Initials, as a ClientHello with post-quantum key shares comes) is copied
    apart datagram by datagram; each request must still know the address and port it was
    sent to.  The accepted sockets' getsockname() is the listener's, and the server's ACKs
    come from the listener's port.  (Before the fix the listener read IP and UDP headers the
    copies did not have: KASAN slab-out-of-bounds, addresses made of packet bytes, replies
    from random ports.)"""
    lst = socket.socket(family, socket.SOCK_DGRAM, IPPROTO_QUIC)
    udp = socket.socket(family, socket.SOCK_DGRAM)
    conns = []
    try:
        lst.bind((host, 0))
        lst.listen(8)
        lst.settimeout(20)
        here = lst.getsockname()
        udp.bind((host, 0))
        dcids = [os.urandom(8) for _ in range(3)]
        scid = os.urandom(8)
        train = [_client_initial(dcids[0], scid, PING, pn=0),
                 _client_initial(dcids[0], scid, PING, pn=1),
                 _client_initial(dcids[1], scid, PING),
                 _client_initial(dcids[2], scid, PING)]  # fmt: skip
        _gso_train(udp, train, here)
        for _ in dcids:
            conn, _ = lst.accept()
            conns.append(conn)
            assert conn.getsockname()[:2] == here[:2], (
                f"accepted socket bound to {conn.getsockname()}, listener is {here}"
            )
        lst.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conns.append(lst.accept()[0])  # the second Initial went with the first
        udp.settimeout(10)
        senders = set()
        deadline = time.monotonic() + 10
        while len(senders) < 2 and time.monotonic() < deadline:
            try:
                _, src = udp.recvfrom(65536)
            except TimeoutError:
                break
            senders.add(src[:2])
            udp.settimeout(1)
        assert senders == {here[:2]}, f"replies from {senders}, listener is {here[:2]}"
    finally:
        for c in conns:
            c.close()
        udp.close()
        lst.close()
