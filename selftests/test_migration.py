"""The peer moves (RFC 9000 Section 9): a kernel server follows an aioquic client that changes
its port (a NAT rebinding) or its address mid-transfer, validates the new path with
PATH_CHALLENGE, reports the move with the CONNECTION_MIGRATION event (local_migration 0),
and goes back to the old address when the new one never answers.

The client is aioquic driven sans-I/O from the test's thread (peer.AioPeer): moving it is
giving it another UDP socket to send from.  As behind the interop runner's NAT, what the server
still sends to the old port reaches the client too until the server has moved: the client
keeps acknowledging, which is how the server learns of the new address.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

from peer import AioPeer, KernelAccept, conns_row, until

SIZE = 2 * 1000 * 1000
SECOND_CLIENT_V4 = "10.99.0.3"


def _move(peer: AioPeer, topo, host: str = "") -> socket.socket:
    """The client's datagrams leave from a new socket (``host``: its address, any port);
    returns the old one, still open."""
    from quicctl.netns import enter

    with enter(topo.client):
        new = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    new.bind((host, 0))
    new.connect(peer.addr)
    old, peer.sock = peer.sock, new
    return old


def _remote(s, topo) -> str:
    row = conns_row(s.sock, topo.server)
    assert row is not None, "the server's connection is not listed"
    return row["REMOTE_ADDRESS"]


class _Transfer:
    """The kernel server answers the client's request on stream 0 with SIZE random bytes
    (in a thread: sendall blocks on the window)."""

    def __init__(self, s, peer: AioPeer):
        self.data = os.urandom(SIZE)
        self.error: BaseException | None = None
        self.sid = peer.quic.get_next_available_stream_id()
        peer.quic.send_stream_data(self.sid, b"GET", end_stream=True)
        self.thread = threading.Thread(target=self._send, args=(s,), daemon=True)
        self.thread.start()

    def _send(self, s) -> None:
        try:
            sid, _, _ = s.recv()
            s.sendall(self.data, sid, fin=True)
        except BaseException as exc:  # reported by check()
            self.error = exc

    def received(self, peer: AioPeer) -> int:
        return len(peer.data.get(self.sid, b""))

    def check(self, peer: AioPeer) -> None:
        peer.until(lambda: self.sid in peer.fin, "the whole transfer", 120)
        self.thread.join(30)
        assert self.error is None, self.error
        got = bytes(peer.data[self.sid])
        assert hashlib.sha256(got).digest() == hashlib.sha256(self.data).digest(), "corrupted"


def _migrations(sr) -> list[bytes]:
    from quicctl import abi

    return [data for ev, data in sr.events if ev == abi.QUIC_EVENT_CONNECTION_MIGRATION]


def _drain(sock: socket.socket) -> int:
    """Reads what waits on ``sock`` without giving it to anyone; returns how many."""
    n = 0
    sock.setblocking(False)
    while True:
        try:
            sock.recv(65536)
        except BlockingIOError:
            return n
        n += 1


def _follows(topo, host: str) -> None:
    from quicctl import abi

    acc = KernelAccept(topo, events=[abi.QUIC_EVENT_CONNECTION_MIGRATION])
    peer = AioPeer(topo, acc.port)
    try:
        s, sr, step = peer.accepted(acc)
        before = _remote(s, topo)
        xfer = _Transfer(s, peer)
        peer.until(lambda: xfer.received(peer) >= SIZE // 4, "a quarter of the data")
        old = _move(peer, topo, host)
        peer.also_from.append(old)
        moved_to = "%s:%d" % peer.sock.getsockname()  # noqa: UP031
        until(lambda: _migrations(sr), "the CONNECTION_MIGRATION event", 30, step)
        peer.also_from.remove(old)
        xfer.check(peer)
        assert _migrations(sr) == [b"\0"], sr.events  # the peer moved, not us
        assert _remote(s, topo) == moved_to, (before, moved_to)
        assert peer.quic.challenges, "the server sent no PATH_CHALLENGE to the new address"
        # Nothing more goes to the old socket: a new request is answered on the new path.
        _drain(old)
        sid = peer.quic.get_next_available_stream_id()
        peer.quic.send_stream_data(sid, b"again", end_stream=True)
        until(lambda: sid in sr.fin, "the second request", 30, step)
        s.send(b"answer", sid, fin=True)
        peer.until(lambda: sid in peer.fin, "the second answer", 30)
        assert _drain(old) == 0, "the server still sends to the old address"
        assert peer.closed is None and sr.close is None
        old.close()
    finally:
        peer.close()
        acc.close()


def test_nat_rebinding(quic_module, clean_path, topo):
    """The client's port changes mid-transfer (interop runner rebind-port): the server follows
    it, validates the new port, the transfer completes intact and the old port hears nothing
    more."""
    _follows(topo, "")


def test_peer_moves_to_another_address(quic_module, clean_path, topo):
    """The client moves to a second address mid-transfer (rebind-addr): the same, on a path
    whose congestion state starts again."""
    dev = topo.dev(topo.client)
    add = ["ip", "addr", "add", f"{SECOND_CLIENT_V4}/24", "dev", dev]
    topo.run(topo.client, add, check=True)
    try:
        _follows(topo, SECOND_CLIENT_V4)
    finally:
        topo.run(topo.client, ["ip", "addr", "del", f"{SECOND_CLIENT_V4}/24", "dev", dev])


def test_unanswered_move_goes_back(quic_module, clean_path, topo):
    """One packet comes from a new port, then the client goes quiet (what a spoofed copy of a
    packet looks like): the server challenges the new port within three times what it got
    from it, and when no answer comes back within the validation time it returns to the old
    address by itself; the connection goes on there, with no CONNECTION_MIGRATION event."""
    from quicctl import abi

    acc = KernelAccept(topo, events=[abi.QUIC_EVENT_CONNECTION_MIGRATION])
    peer = AioPeer(topo, acc.port)
    q = peer.quic
    try:
        s, sr, step = peer.accepted(acc)
        sid = q.get_next_available_stream_id()
        q.send_stream_data(sid, b"first", end_stream=True)
        until(lambda: sid in sr.fin, "the first request", 30, step)
        s.send(b"ok", sid, fin=True)
        peer.until(lambda: sid in peer.fin, "the first answer", 30)
        home = _remote(s, topo)

        old = _move(peer, topo)
        with_new, peer.sock = peer.sock, old  # back home, without pumping
        away = "%s:%d" % with_new.getsockname()  # noqa: UP031
        q.send_ping(7)
        sent = 0
        for data, _ in q.datagrams_to_send(now=time.monotonic()):
            with_new.send(data)
            sent += len(data)
        until(lambda: _remote(s, topo) == away, "the server to follow the new port", 10)
        start, got, at_new = time.monotonic(), 0, []
        while _remote(s, topo) != home:
            assert time.monotonic() - start < 20, "the server never went back"
            time.sleep(0.05)
            for _ in range(_drain(with_new)):
                at_new.append(time.monotonic() - start)
        took = time.monotonic() - start
        got = _drain(with_new)
        print(f"went back after {took:.2f} s; {len(at_new) + got} datagrams to the new port "
              f"for the {sent} bytes it sent")  # fmt: skip
        assert at_new, "no PATH_CHALLENGE to the new port"
        assert took >= 0.5, f"went back after {took:.2f} s: that is no validation time"

        sid = q.get_next_available_stream_id()
        q.send_stream_data(sid, b"second", end_stream=True)
        until(lambda: sid in sr.fin, "the second request", 30, step)
        s.send(b"ok", sid, fin=True)
        peer.until(lambda: sid in peer.fin, "the second answer", 30)
        assert _remote(s, topo) == home
        assert not _migrations(sr), sr.events
        assert peer.closed is None and sr.close is None
        with_new.close()
    finally:
        peer.close()
        acc.close()
