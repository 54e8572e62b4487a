"""Stateless Reset (RFC 9000 Section 10.3), received and sent.

Received: a datagram that ends with a reset token the peer gave us ends the connection at
once, whatever its length from 21 bytes up, and whether or not it carries one of our
connection IDs (a reset carries none: the kernel finds the connection by the token); one that
ends with any other 16 bytes changes nothing.  The peer is aioquic (selftests/peer.py), which
hands the kernel a reset token with each NEW_CONNECTION_ID frame; the reset is made by hand.

Sent: a short-header packet for a connection ID the kernel no longer knows (the connection was
closed, its CONNECTION_CLOSE lost) is answered with a reset under that ID's token, always
shorter than the packet (so two endpoints cannot loop), none for a packet too short for that,
at most QUIC_RESET_RATE (100) a second per namespace.  Kernel to kernel, the client that keeps
sending to a server that forgot it ends at once, not at its idle timeout.
"""

from __future__ import annotations

import os
import time

import pytest
from conftest import kernel_connect, nft
from peer import AioPeer, KernelAccept, KernelReader, conns, until

from quicctl.errors import PeerClosedError

RESET_RATE = 100  # QUIC_RESET_RATE, per second and namespace


def _reset(dcid: bytes, token: bytes, length: int) -> bytes:
    """A short-header-looking datagram of ``length`` bytes: fixed bit set, the connection's
    Destination ID (so that it is routed to it), unpredictable bytes, the token last."""
    first = 0x40 | (os.urandom(1)[0] & 0x3F)
    rest = length - 1 - len(dcid) - len(token)
    assert rest >= 0
    return bytes([first]) + dcid + os.urandom(rest) + token


CASES = [("dcid", 25), ("dcid", 28), ("dcid", 40), ("dcid", 1200),
         ("token", 21), ("token", 28), ("token", 1200)]  # fmt: skip


@pytest.mark.parametrize("route,length", CASES, ids=[f"{r}-{n}" for r, n in CASES])
def test_stateless_reset_ends_the_connection(quic_module, clean_path, topo, route, length):
    """A reset of ``length`` bytes closes the kernel's connection; a datagram that ends with
    the wrong 16 bytes before it did not.  ``dcid``: it carries the connection's ID (25: the
    shortest that does; 28: still too short to hold a header protection sample; 40 and 1200:
    long enough to be mistaken for a packet).  ``token``: it carries random bytes where the ID
    would be, as a peer that lost its state sends it (21: the shortest reset there is)."""
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
        dcid = peer.quic._peer_cid.cid if route == "dcid" else b""
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


def _raw_datagrams(sock, seconds: float) -> list[bytes]:
    """What reaches the peer's UDP socket in ``seconds``, unprocessed."""
    got, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(65536))
        except TimeoutError:
            break
    return got


def _forgotten(topo):
    """An aioquic client whose kernel server connection is gone: the server closed it, and the
    client never read the CONNECTION_CLOSE.  The listener stays (its UDP port answers).
    Returns the listener, the peer, the kernel's connection ID the client now sends to (one
    from a NEW_CONNECTION_ID frame) and that ID's reset token."""
    acc = KernelAccept(topo)
    peer = AioPeer(topo, acc.port)
    conn, _, _ = peer.accepted(acc)
    peer.until(lambda: peer.quic._peer_cid_available, "the kernel's NEW_CONNECTION_ID")
    peer.quic.change_connection_id()
    cid, token = peer.quic._peer_cid.cid, peer.quic._peer_cid.stateless_reset_token
    conn.close()
    until(lambda: not conns(topo.server), "the server's connection to go", timeout=30)
    _raw_datagrams(peer.sock, 0.2)  # the CONNECTION_CLOSE, unread by aioquic
    return acc, peer, cid, token


def test_a_packet_for_a_forgotten_connection_gets_a_reset(quic_module, clean_path, topo):
    acc, peer, cid, token = _forgotten(topo)
    try:
        sid = peer.quic.get_next_available_stream_id()
        peer.quic.send_stream_data(sid, b"still there?" * 10)
        sent = [d for d, _ in peer.quic.datagrams_to_send(now=time.monotonic())]
        assert sent and sent[0][1:9] == cid
        for d in sent:
            peer.sock.send(d)
        got = _raw_datagrams(peer.sock, 5)
        resets = [d for d in got if d[-16:] == token]
        assert resets, f"no Stateless Reset under the ID's token among {len(got)} datagrams"
        for r in resets:
            assert r[0] & 0xC0 == 0x40, f"first byte {r[0]:#x}: not a short header's"
            assert 21 <= len(r) < min(len(d) for d in sent), (len(r), [len(d) for d in sent])
        # A trigger of 22..43 bytes gets a reset one byte shorter; 21 bytes none at all.
        for n in (43, 30, 22, 21):
            peer.sock.send(b"\x40" + cid + os.urandom(n - 9))
            got = [d for d in _raw_datagrams(peer.sock, 1) if d[-16:] == token]
            assert [len(d) for d in got] == ([n - 1] if n > 21 else []), (n, got)
    finally:
        peer.sock.close()
        acc.close()


def test_resets_sent_are_rate_limited(quic_module, clean_path, topo):
    acc, peer, cid, token = _forgotten(topo)
    try:
        start = time.monotonic()
        for _ in range(1000):
            peer.sock.send(b"\x40" + cid + os.urandom(100))
        sending = time.monotonic() - start
        got = [d for d in _raw_datagrams(peer.sock, 2) if d[-16:] == token]
        # At most RESET_RATE in each 1 s window the sending touched, however fast it went.
        assert 0 < len(got) <= RESET_RATE * (int(sending) + 2), (len(got), sending)
        assert len(got) < 1000
    finally:
        peer.sock.close()
        acc.close()


def test_kernel_client_learns_of_a_forgotten_connection(quic_module, clean_path, topo):
    """The server closes while its packets to the client are dropped, so the client never
    hears of it; the client's next packet draws a reset, and the client ends within seconds
    instead of at its 30 s idle timeout."""
    acc = KernelAccept(topo, transport_params={"stateless_reset": 1})
    client = kernel_connect(topo, topo.server_v4, acc.port, alpn="quicctl-test")
    server = acc.wait()
    try:
        sid = client.open_stream()
        client.sendall(b"hello", sid, fin=False)
        assert server.recv()[1] == b"hello"  # the path works
        port = acc.port
        nft(
            topo,
            topo.server,
            f"""
table inet quicsr {{
    chain out {{ type filter hook output priority 0; udp sport {port} drop; }}
}}
""",
        )
        server.close()  # the listener stays: its UDP port still answers
        until(lambda: not conns(topo.server), "the server's connection to go", timeout=30)
        nft(topo, topo.server, "delete table inet quicsr\n")
        start = time.monotonic()
        client.sock.settimeout(20)
        with pytest.raises(PeerClosedError) as info:
            while True:  # each write sends a packet the server answers with a reset
                client.sendall(b"more", sid, fin=False)
                client.recv(1 << 16)
        took = time.monotonic() - start
        # Reference section 4.5: a stateless reset is reported as errcode 0x100.
        assert info.value.error_code == 0x100, info.value
        assert took < 10, f"the client ended after {took:.1f} s: not by the reset"
    finally:
        client.close()
        acc.close()
