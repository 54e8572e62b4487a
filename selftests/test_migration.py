"""Connection migration (RFC 9000 Section 9).  The peer moves: a kernel server follows an
aioquic client that changes its port (a NAT rebinding) or its address mid-transfer, validates
the new path with PATH_CHALLENGE, reports the move with the CONNECTION_MIGRATION event
(local_migration 0), and goes back to the old address when the new one never answers.  We
move: a kernel client given a new local address with the CONNECTION_MIGRATION option moves
to it, with a connection ID it never used, to a kernel server and to aioquic's; the option's
error rows of the reference's table (each errno, and nothing changed).

The client is aioquic driven sans-I/O from the test's thread (peer.AioPeer): moving it is
giving it another UDP socket to send from.  As behind the interop runner's NAT, what the server
still sends to the old port reaches the client too until the server has moved: the client
keeps acknowledging, which is how the server learns of the new address.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import threading
import time

import pytest
from conftest import kernel_connect, nft, nft_counter
from peer import ALPN, AioPeer, KernelAccept, KernelReader, conns_row, until

from quicctl.paths import KEYS

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


# -- the kernel client moves (Section 9.2) --------------------------------------------------


@contextlib.contextmanager
def _second_address(topo):
    dev = topo.dev(topo.client)
    topo.run(topo.client, ["ip", "addr", "add", f"{SECOND_CLIENT_V4}/24", "dev", dev], check=True)
    try:
        yield SECOND_CLIENT_V4
    finally:
        topo.run(topo.client, ["ip", "addr", "del", f"{SECOND_CLIENT_V4}/24", "dev", dev])


def _free_port(topo, host: str) -> int:
    from quicctl.netns import enter

    with enter(topo.client):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _active_dcid(sock) -> int:
    from quicctl import abi

    return abi.getsockopt(sock, "CONNECTION_ID", dest=1)["active"]


def _snapshot(sock) -> tuple:
    from quicctl import abi

    return (sock.getsockname(), sock.getpeername(), abi.getsockopt(sock, "CONNECTION_ID", dest=1),
            abi.getsockopt(sock, "CONNECTION_ID", dest=0))  # fmt: skip


def test_client_migrates_to_kernel_server(quic_module, clean_path, topo):
    """Mid-transfer, CONNECTION_MIGRATION moves a kernel client to a second local address: its
    getsockname() is the new address at once, it sends to a destination ID it had not used, the
    server follows and lists the new address, both ends get the MIGRATION event (the client's
    local_migration 1, the server's 0), and the transfer completes intact."""
    from quicctl import abi

    mig = abi.QUIC_EVENT_CONNECTION_MIGRATION
    with _second_address(topo) as second:
        acc = KernelAccept(topo, events=[mig])
        client = kernel_connect(topo, topo.server_v4, acc.port, alpn=ALPN)
        stack = contextlib.ExitStack()
        try:
            srv = acc.wait()
            abi.setsockopt(client.sock, "EVENT", type=mig, on=1)
            cr, sr = KernelReader(client.sock), KernelReader(srv.sock)

            def step() -> None:
                cr.poll()
                sr.poll()

            data = os.urandom(SIZE)
            sid = client.open_stream()
            client.send(b"GET", sid, fin=True)
            until(lambda: sid in sr.fin, "the request", 60, step)
            errors: list[BaseException] = []

            def send() -> None:
                try:
                    srv.sendall(data, sid, fin=True)
                except BaseException as exc:  # reported below
                    errors.append(exc)

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            until(lambda: len(cr.data.get(sid, b"")) >= SIZE // 4, "a quarter of the data", 60,
                  step)  # fmt: skip
            old_dcid = _active_dcid(client.sock)
            port = _free_port(topo, second)
            stack.enter_context(_dropped_to(topo, client.sock.getsockname()[1]))
            abi.setsockopt(client.sock, "CONNECTION_MIGRATION", (second, port))
            assert client.sock.getsockname() == (second, port)
            assert _active_dcid(client.sock) > old_dcid, "the old destination ID is used still"
            until(lambda: _migrations(cr) and _migrations(sr), "the MIGRATION events", 60, step)
            until(lambda: sid in cr.fin, "the whole transfer", 120, step)
            sender.join(30)
            assert not errors, errors
            got = bytes(cr.data[sid])
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), "corrupted"
            assert _migrations(cr) == [b"\1"], cr.events
            assert _migrations(sr) == [b"\0"], sr.events
            assert _remote(srv, topo) == f"{second}:{port}"
            # The old IDs are retired: the server's source set moved on past them.
            until(lambda: _first_source(srv) > old_dcid, "the old ID's retirement", 30, step)
            # And the connection still works both ways on the new path.
            sid2 = client.open_stream()
            client.send(b"again", sid2, fin=True)
            until(lambda: sid2 in sr.fin, "the second request", 30, step)
            srv.send(b"answer", sid2, fin=True)
            until(lambda: sid2 in cr.fin, "the second answer", 30, step)
            assert cr.close is None and sr.close is None
        finally:
            stack.close()
            client.close()
            acc.close()


def _first_source(conn) -> int:
    """The lowest sequence number of the IDs ``conn`` issued that are still in use."""
    from quicctl import abi

    return abi.getsockopt(conn.sock, "CONNECTION_ID", dest=0, active=0)["prior_to"]


def test_client_migrates_to_aioquic(quic_module, clean_path, topo, tmp_path):
    """The same against aioquic's server: a 2 MB download by a kernel client that moves to a
    second address a quarter of the way through; from then on nothing reaches the old address
    (dropped), so the download completes only if aioquic followed."""
    from quicctl import hq, userspace
    from quicctl.hq import make_file
    from quicctl.netns import enter

    digest = make_file(tmp_path / "big", SIZE, seed=9)
    with _second_address(topo) as second:
        with enter(topo.server):
            server = userspace.ServerThread("0.0.0.0", 0, root=tmp_path,
                                            certfile=str(KEYS / "cert.crt"),
                                            keyfile=str(KEYS / "pkey.key"))  # fmt: skip
        try:
            with kernel_connect(topo, topo.server_v4, server.port) as conn:
                old = conn.sock.getsockname()
                got: list = []
                quarter, moved = threading.Event(), threading.Event()

                def progress(d, n: int) -> None:
                    if d.size >= SIZE // 4 and not quarter.is_set():
                        quarter.set()
                        moved.wait(60)  # reading pauses while the test moves the client

                fetch = threading.Thread(
                    target=lambda: got.extend(hq.fetch(conn, ["/big"], None, progress)),
                    daemon=True,
                )
                fetch.start()
                assert quarter.wait(60), "a quarter of the download did not come"
                port = _free_port(topo, second)
                with _dropped_to(topo, old[1]) as dropped:
                    try:
                        abi_set_migration(conn.sock, (second, port))
                    finally:
                        moved.set()
                    assert conn.sock.getsockname() == (second, port)
                    fetch.join(120)
                    assert not fetch.is_alive(), "the download stalled after the move"
                    print(f"{dropped()} datagrams to the old address dropped after the move")
            assert got and got[0].done, "the download did not finish"
            assert got[0].sha256.hexdigest() == digest, "the download differs"
        finally:
            server.close()


def abi_set_migration(sock, addr) -> None:
    from quicctl import abi

    abi.setsockopt(sock, "CONNECTION_MIGRATION", addr)


@contextlib.contextmanager
def _dropped_to(topo, port: int):
    """Datagrams to ``port`` in the client namespace are dropped while inside; yields a
    function that says how many were."""
    nft(topo, topo.client, f"""table inet quicmig {{
  counter old {{ }}
  chain in {{ type filter hook input priority 0; udp dport {port} counter name old drop; }}
}}
""")  # fmt: skip
    try:
        yield lambda: nft_counter(topo, topo.client, "inet", "quicmig", "old")
    finally:
        nft(topo, topo.client, "delete table inet quicmig\n")


@pytest.mark.parametrize(
    "case",
    ["same address", "wildcard", "port 0", "other family", "short optlen", "server socket"],
)
def test_migration_option_errors(quic_module, clean_path, topo, case):
    """The reference's CONNECTION_MIGRATION rows for an established connection: EINVAL for an
    address that is the current one, a wildcard, port 0, another family, a short option, or a
    server socket (servers do not migrate, Section 9); nothing changed after."""
    from quicctl import abi

    acc = KernelAccept(topo)
    client = kernel_connect(topo, topo.server_v4, acc.port, alpn=ALPN)
    try:
        srv = acc.wait()
        sock = srv.sock if case == "server socket" else client.sock
        host, port = sock.getsockname()[:2]
        value = {
            "same address": (host, port),
            "wildcard": ("0.0.0.0", 4999),
            "port 0": (host, 0),
            "other family": ("::1", 4999),
            "short optlen": socket.inet_aton(host)[:2],
            "server socket": (topo.server_v4, 4999),
        }[case]
        before = _snapshot(sock)
        with pytest.raises(OSError) as e:
            abi.setsockopt(sock, "CONNECTION_MIGRATION", value)
        assert e.value.errno == errno.EINVAL, e.value
        assert _snapshot(sock) == before
    finally:
        client.close()
        acc.close()


def test_migration_option_state_errors(quic_module, clean_path, topo):
    """EPIPE on a fresh (CLOSED) socket and a listener; EINVAL on a connecting client."""
    from quicctl import abi
    from quicctl.netns import enter

    with enter(topo.client):
        fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, abi.IPPROTO_QUIC)
    with fresh:
        with pytest.raises(OSError) as e:
            abi.setsockopt(fresh, "CONNECTION_MIGRATION", (topo.client_v4, 4999))
        assert e.value.errno == errno.EPIPE
    acc = KernelAccept(topo)
    try:
        with pytest.raises(OSError) as e:
            abi.setsockopt(acc.srv.sock, "CONNECTION_MIGRATION", (topo.server_v4, 4999))
        assert e.value.errno == errno.EPIPE
    finally:
        acc.close()
