"""Flow control and streams (RFC 9000 Sections 2-4), modelled on the QUIC interop runner.

Each case runs against the kernel itself and against aioquic: transfers with small initial
windows (receive-window auto-tuning), 2,000 streams on one connection under a stream limit,
RESET_STREAM / STOP_SENDING both ways, hostile peers (aioquic driven sans-I/O from this thread,
with frames of our choosing added to its 1-RTT packets) that must be closed with the RFC's
error code, and bounded memory when a peer or the local application does not read.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SERVER_NAME, KernelHqServer, hq_server, kernel_connect
from peer import (
    ALPN,
    AioPeer,
    KernelAccept,
    KernelReader,
    conns_row,
    established,
    frame,
    inq,
    subscribe,
    until,
)

from quicctl.paths import KEYS

MB = 1000 * 1000
SIZES = {"two": 2 * MB, "three": 3 * MB, "five": 5 * MB}
MANY = 2000
# The client starts small (interop runner "transfer"): 64 KB connection, 16 KB per stream.
SMALL_TP = {
    "max_data": 65536,
    "max_stream_data_bidi_local": 16384,
    "max_stream_data_bidi_remote": 16384,
    "max_stream_data_uni": 16384,
}


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    from quicctl.hq import make_file

    root = tmp_path_factory.mktemp("www")
    digests = {name: make_file(root / name, size, seed=size) for name, size in SIZES.items()}
    many = root / "m"
    many.mkdir()
    for i in range(MANY):
        digests[f"m/{i}"] = make_file(many / str(i), 100 + i % 200, seed=i)
    return root, digests


def _check(downloads, digests, names) -> None:
    got = {d.path.strip("/"): d for d in downloads}
    assert len(got) == len(names)
    for name in names:
        assert got[name].done, f"/{name} not finished"
        assert got[name].sha256.hexdigest() == digests[name], f"/{name} hash differs"


# -- transfer with small windows ----------------------------------------------------------


@pytest.mark.parametrize("server", ["kernel", "aioquic"])
def test_transfer_small_windows_kernel_client(quic_module, clean_path, topo, www, server):
    """2, 3 and 5 MB from a client advertising 64 KB / 16 KB: the windows grow as the client
    reads (auto-tuning, visible as a larger receive buffer) and the hashes match."""
    from quicctl import hq

    root, digests = www
    srv = hq_server(topo, server, root)
    try:
        with kernel_connect(topo, topo.server_v4, srv.port, transport_params=SMALL_TP) as conn:
            start = conns_row(conn.sock, topo.client)
            assert start is not None and start["RCVBUF"] == 4 * SMALL_TP["max_data"]
            downloads = hq.fetch(conn, ["/two", "/three", "/five"], None)
            end = conns_row(conn.sock, topo.client)
        _check(downloads, digests, ["two", "three", "five"])
        print(f"receive buffer {start['RCVBUF']} -> {end['RCVBUF']} bytes")
        assert end["RCVBUF"] > start["RCVBUF"], "the receive window never grew"
    finally:
        srv.close()


def test_transfer_small_windows_aioquic_client(quic_module, clean_path, topo, www):
    """aioquic starting with 64 KB / 16 KB windows downloads from the kernel server."""
    from quicctl import userspace
    from quicctl.netns import enter

    root, digests = www
    srv = KernelHqServer(topo, root)
    try:
        with enter(topo.client):
            downloads = userspace.fetch(
                topo.server_v4, srv.port, ["/two", "/three", "/five"],
                cafile=str(KEYS / "ca.crt"), server_name=SERVER_NAME, timeout=120,
                max_data=SMALL_TP["max_data"], max_stream_data=SMALL_TP["max_stream_data_uni"],
            )  # fmt: skip
        _check(downloads, digests, ["two", "three", "five"])
    finally:
        srv.close()
    assert not srv.log, srv.log


# -- multiplexing -------------------------------------------------------------------------


@pytest.mark.parametrize("pair", ["kernel-kernel", "kernel-aioquic", "aioquic-kernel"])
def test_multiplexing_2000_streams(quic_module, clean_path, topo, www, pair):
    """2,000 files on one connection; the server allows 100 (kernel) or 128 (aioquic)
    concurrent streams, so the client waits for MAX_STREAMS many times."""
    from quicctl import hq, userspace
    from quicctl.netns import enter

    root, digests = www
    names = [f"m/{i}" for i in range(MANY)]
    paths = ["/" + n for n in names]
    client, server = pair.split("-")
    srv = hq_server(topo, server, root, transport_params={"max_streams_bidi": 100})
    port = srv.port
    try:
        if client == "kernel":
            with kernel_connect(topo, topo.server_v4, port) as conn:
                assert 0 < _peer_max_streams(conn) <= 1000
                downloads = hq.fetch(conn, paths, None)
        else:
            with enter(topo.client):
                downloads = userspace.fetch(
                    topo.server_v4, port, paths, cafile=str(KEYS / "ca.crt"),
                    server_name=SERVER_NAME, timeout=120,
                )  # fmt: skip
        _check(downloads, digests, names)
    finally:
        srv.close()


def _peer_max_streams(conn) -> int:
    from quicctl import abi

    return abi.getsockopt(conn.sock, "TRANSPORT_PARAM", remote=1)["max_streams_bidi"]


# -- RESET_STREAM and STOP_SENDING --------------------------------------------------------


def test_reset_and_stop_sending_kernel_to_kernel(quic_module, clean_path, topo):
    from quicctl import abi

    ev = abi.QUIC_EVENT_STREAM_UPDATE
    acc = KernelAccept(topo, events=[ev])
    try:
        c = kernel_connect(topo, topo.server_v4, acc.port, alpn=ALPN)
        s = acc.wait()
        subscribe(c.sock, ev)
        cr, sr = KernelReader(c.sock), KernelReader(s.sock)

        # RESET_STREAM: the server learns code and final size, the client the ack.
        sid = c.open_stream()
        c.send(b"a" * 1000, sid)
        until(lambda: sr.poll() or len(sr.data.get(sid, b"")) == 1000, "1000 bytes")
        abi.setsockopt(c.sock, "STREAM_RESET", stream_id=sid, errcode=0x42)
        state = abi.QUIC_STREAM_RECV_STATE_RESET_RECVD
        until(lambda: sr.poll() or sr.update(sid, state), "RESET_RECVD on the server")
        assert sr.update(sid, state)[2:] == (0x42, 1000)
        state = abi.QUIC_STREAM_SEND_STATE_RESET_RECVD
        until(lambda: cr.poll() or cr.update(sid, state), "our reset acknowledged")
        assert cr.update(sid, state)[2:] == (0x42, 1000)
        with pytest.raises(OSError) as e:  # send state RESET_RECVD >= RECVD
            abi.setsockopt(c.sock, "STREAM_RESET", stream_id=sid, errcode=1)
        assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:  # the stream is reset
            c.send(b"more", sid)
        assert e.value.errno == errno.EINVAL

        # STOP_SENDING: the server's kernel answers with RESET_STREAM.
        sid = c.open_stream()
        c.send(b"req", sid)
        until(lambda: sr.poll() or sr.data.get(sid) == b"req", "the request")
        s.send(b"b" * 100, sid)
        until(lambda: cr.poll() or len(cr.data.get(sid, b"")) == 100, "100 bytes")
        # A second STOP_SENDING is EAGAIN until the peer's RESET_STREAM arrives (then it is
        # EINVAL): a path delay keeps the answer away meanwhile.
        topo.netem(topo.client, "delay 1s")
        abi.setsockopt(c.sock, "STREAM_STOP_SENDING", stream_id=sid, errcode=0x77)
        with pytest.raises(OSError) as e:
            abi.setsockopt(c.sock, "STREAM_STOP_SENDING", stream_id=sid, errcode=0x77)
        topo.clear_qdisc(topo.client)
        assert e.value.errno == errno.EAGAIN
        state = abi.QUIC_STREAM_SEND_STATE_RESET_SENT
        until(lambda: sr.poll() or sr.update(sid, state), "RESET_SENT on the server")
        assert sr.update(sid, state)[2:] == (0x77, 100)
        state = abi.QUIC_STREAM_RECV_STATE_RESET_RECVD
        until(lambda: cr.poll() or cr.update(sid, state), "the server's RESET_STREAM")
        assert cr.update(sid, state)[2:] == (0x77, 100)

        # errnos: a stream not opened yet is EINVAL, one closed and freed is ENOSTR.
        with pytest.raises(OSError) as e:
            abi.setsockopt(c.sock, "STREAM_RESET", stream_id=sid + 400, errcode=1)
        assert e.value.errno == errno.EINVAL
        sid = c.open_stream()
        c.send(b"x", sid, fin=True)
        until(lambda: sr.poll() or sid in sr.fin, "the FIN")
        s.send(b"y", sid, fin=True)
        until(lambda: cr.poll() or sid in cr.fin, "the answer")

        def gone() -> bool:
            try:
                abi.setsockopt(c.sock, "STREAM_STOP_SENDING", stream_id=sid, errcode=1)
            except OSError as exc:
                assert exc.errno in (errno.EINVAL, errno.ENOSTR), exc
                return exc.errno == errno.ENOSTR
            raise AssertionError("STOP_SENDING accepted on a finished stream")

        until(gone, "the stream to be freed (ENOSTR)")
        assert cr.close is None and sr.close is None
        c.close()
    finally:
        acc.close()


def _aio_send(peer: AioPeer, reader: KernelReader, data: bytes, step) -> int:
    """aioquic opens a stream and sends ``data`` (no FIN); returns once the kernel read it."""
    sid = peer.quic.get_next_available_stream_id()
    peer.quic.send_stream_data(sid, data)
    until(lambda: reader.data.get(sid) == data, "the data on the kernel side", step=step)
    return sid


def test_reset_and_stop_sending_kernel_and_aioquic(quic_module, clean_path, topo):
    """aioquic client <-> kernel server: each side's RESET_STREAM and STOP_SENDING reach the
    other (aioquic reports StreamReset / StopSendingReceived, the kernel STREAM_UPDATE)."""
    from aioquic.quic import events

    from quicctl import abi

    acc = KernelAccept(topo, events=[abi.QUIC_EVENT_STREAM_UPDATE])
    peer = AioPeer(topo, acc.port)
    try:
        s, sr, step = peer.accepted(acc)
        # aioquic resets: the kernel reports RESET_RECVD with code and final size.
        sid = _aio_send(peer, sr, b"a" * 1000, step)
        peer.quic.reset_stream(sid, 0x42)
        state = abi.QUIC_STREAM_RECV_STATE_RESET_RECVD
        until(lambda: sr.update(sid, state), "RESET_RECVD", step=step)
        assert sr.update(sid, state)[2:] == (0x42, 1000)

        # aioquic stops our sending: the kernel resets, aioquic sees StreamReset.
        sid = _aio_send(peer, sr, b"req", step)
        s.send(b"b" * 100, sid)
        until(lambda: len(peer.data.get(sid, b"")) == 100, "100 bytes", step=step)
        peer.quic.stop_stream(sid, 0x77)
        until(lambda: peer.event(events.StreamReset, sid), "StreamReset", step=step)
        assert peer.event(events.StreamReset, sid).error_code == 0x77
        state = abi.QUIC_STREAM_SEND_STATE_RESET_SENT
        until(lambda: sr.update(sid, state), "RESET_SENT", step=step)
        assert sr.update(sid, state)[2:] == (0x77, 100)

        # The kernel's socket options: aioquic sees StreamReset and StopSendingReceived.
        sid = _aio_send(peer, sr, b"req", step)
        abi.setsockopt(s.sock, "STREAM_RESET", stream_id=sid, errcode=0x55)
        abi.setsockopt(s.sock, "STREAM_STOP_SENDING", stream_id=sid, errcode=0x66)
        until(lambda: peer.event(events.StreamReset, sid), "StreamReset", step=step)
        until(lambda: peer.event(events.StopSendingReceived, sid), "STOP_SENDING", step=step)
        assert peer.event(events.StreamReset, sid).error_code == 0x55
        assert peer.event(events.StopSendingReceived, sid).error_code == 0x66
        assert peer.closed is None and sr.close is None
    finally:
        peer.close()
        acc.close()


# -- hostile peers ------------------------------------------------------------------------

QUIC_FRAME_STREAM = 0x08
OFF, LEN, FIN = 0x04, 0x02, 0x01
HOSTILE = {
    # data beyond the stream's credit (16 KB)
    "stream_flow_control": (
        {"max_stream_data_bidi_remote": 16384},
        [frame(QUIC_FRAME_STREAM | OFF | LEN, 0, 16380, 10, data=b"x" * 10)],
        0x03,
        QUIC_FRAME_STREAM | OFF | LEN,
    ),
    # within the stream's credit, beyond the connection's (64 KB)
    "connection_flow_control": (
        {"max_data": 65536, "max_stream_data_bidi_remote": 1 << 20},
        [
            frame(QUIC_FRAME_STREAM | OFF | LEN, 0, 40000, 10, data=b"x" * 10),
            frame(QUIC_FRAME_STREAM | OFF | LEN, 4, 30000, 10, data=b"x" * 10),
        ],
        0x03,
        QUIC_FRAME_STREAM | OFF | LEN,
    ),
    # a bidi stream beyond MAX_STREAMS (10 allowed: IDs 0..36)
    "stream_limit_bidi": (
        {"max_streams_bidi": 10},
        [frame(QUIC_FRAME_STREAM | LEN, 40, 1, data=b"x")],
        0x04,
        QUIC_FRAME_STREAM | LEN,
    ),
    "stream_limit_uni": (
        {"max_streams_uni": 10},
        [frame(QUIC_FRAME_STREAM | LEN, 42, 1, data=b"x")],
        0x04,
        QUIC_FRAME_STREAM | LEN,
    ),
    # data on the server's unidirectional stream 3, which only the server sends on
    "stream_state": (
        {},
        [frame(QUIC_FRAME_STREAM | LEN, 3, 1, data=b"x")],
        0x05,
        QUIC_FRAME_STREAM | LEN,
    ),
    # MAX_STREAM_DATA for the client's unidirectional stream 2: receive-only for the server
    "stream_state_max_stream_data": ({}, [frame(0x11, 2, 1000)], 0x05, 0x11),
    # FIN at 5, then data up to 8
    "final_size_data": (
        {},
        [
            frame(QUIC_FRAME_STREAM | LEN | FIN, 0, 5, data=b"hello"),
            frame(QUIC_FRAME_STREAM | OFF | LEN, 0, 5, 3, data=b"abc"),
        ],
        0x06,
        QUIC_FRAME_STREAM | OFF | LEN,
    ),
    # FIN at 5, then RESET_STREAM with final size 3
    "final_size_reset": (
        {},
        [frame(QUIC_FRAME_STREAM | LEN | FIN, 0, 5, data=b"hello"), frame(0x04, 0, 0, 3)],
        0x06,
        0x04,
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_peer_closed_with_rfc_error(quic_module, clean_path, topo, case):
    """Frames that break RFC 9000's stream and flow-control rules close the connection with
    the error code of Section 20.1 and the offending frame type; both ends learn it."""
    tp, frames, code, ftype = HOSTILE[case]
    acc = KernelAccept(topo, transport_params=tp or None)
    peer = AioPeer(topo, acc.port)
    try:
        peer.until(lambda: peer.connected and not acc.thread.is_alive(), "the handshake")
        s = acc.wait()
        sr = KernelReader(s.sock)
        peer.quic.inject = list(frames)

        def step() -> None:
            peer.pump()
            sr.poll()

        until(lambda: peer.closed is not None and sr.close, "the close", step=step)
        assert (peer.closed.error_code, peer.closed.frame_type) == (code, ftype)
        assert sr.close == (code, ftype)
        info = s.close_info()
        assert (info.errcode, info.frame) == (code, ftype)
    finally:
        peer.close()
        acc.close()


# -- bounded resources --------------------------------------------------------------------


def _settle(measure: Callable[[], int], timeout: float = 90) -> int:
    """The value once it stopped changing for 2 s (the sender blocked), within timeout."""
    deadline = time.monotonic() + timeout
    last, since = measure(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = measure()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 2:
            return now
    raise AssertionError(f"still changing after {timeout:g} s: {last}")


def test_local_reader_that_never_reads_is_bounded(quic_module, clean_path, topo, www):
    """A kernel client requests 4 x 2 MB and does not read: what it holds stays within its
    window and receive buffer, the server's queue within its send buffer, and once it reads
    everything arrives intact."""
    root, digests = www
    tp = {"max_data": 262144, "max_stream_data_bidi_local": 131072}
    srv = KernelHqServer(topo, root)
    try:
        with kernel_connect(topo, topo.server_v4, srv.port, transport_params=tp) as conn:
            sids = []
            for _ in range(4):
                sid = conn.open_stream()
                conn.send(b"GET /two\r\n", sid, fin=True)
                sids.append(sid)
            held = _settle(lambda: inq(conn.sock))
            row = conns_row(conn.sock, topo.client)
            print(f"client holds {held} bytes, conns row {row}")
            assert 0 < held <= row["RCVBUF"] == 4 * tp["max_data"]
            assert row["STATE"] == 1
            srows = established(topo.server)
            assert srows and all(r["TX_QUEUE"] <= _wmem_bound() for r in srows), srows
            got: dict[int, bytearray] = {}
            done: set[int] = set()
            while done != set(sids):
                sid, data, fin = conn.recv(1 << 20)
                got.setdefault(sid, bytearray()).extend(data)
                if fin:
                    done.add(sid)
        import hashlib

        for sid in sids:
            assert hashlib.sha256(got[sid]).hexdigest() == digests["two"]
    finally:
        srv.close()


def _wmem_bound() -> int:
    """What a connection may queue for sending: sk_sndbuf is at most quic_wmem[2], and a
    sendmsg may pass it by one frame."""
    return int(Path("/proc/sys/net/quic/quic_wmem").read_text().split()[2]) + 2048


def test_peer_opening_streams_and_never_reading_is_bounded(quic_module, clean_path, topo, www):
    """aioquic opens 50 streams, asks for 5 MB on each and never grants more credit: the
    kernel server blocks (and says so with DATA_BLOCKED / STREAM_DATA_BLOCKED), its queue
    stays within its send buffer, and the connection stays up and closes cleanly."""
    root, _ = www
    srv = KernelHqServer(topo, root, alpn=ALPN)
    peer = AioPeer(topo, srv.port, max_data=65536, max_stream_data=65536)
    try:
        peer.until(lambda: peer.connected, "the handshake")
        peer.quic.withhold_credit = True
        for _ in range(50):
            sid = peer.quic.get_next_available_stream_id()
            peer.quic.send_stream_data(sid, b"GET /five\r\n", end_stream=True)
        peer.until(
            lambda: {0x14, 0x15} <= set(peer.quic.blocked_frames),
            "DATA_BLOCKED and STREAM_DATA_BLOCKED from the kernel",
            120,
        )

        def received() -> int:
            return sum(len(d) for d in peer.data.values())

        # The *_BLOCKED frames go ahead of STREAM frames still waiting for the congestion
        # window: wait for all the credit, then make sure not a byte more comes.
        peer.until(lambda: received() >= 65536, "the 64 KB of connection credit", 120)
        for _ in range(20):
            peer.pump(0.02)
        assert received() == 65536
        rows = established(topo.server)
        assert len(rows) == 1, rows
        assert rows[0]["TX_QUEUE"] <= _wmem_bound(), rows
        for _ in range(50):
            peer.pump(0.02)
        assert peer.closed is None, "the kernel closed a connection that was only slow"
        assert len(established(topo.server)) == 1
        print(f"blocked frames seen: {peer.quic.blocked_frames}, server row {rows[0]}")
    finally:
        peer.close()
        srv.close()
    until(lambda: not established(topo.server), "the server close")


# -- credit as a window -------------------------------------------------------------------

MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS_BIDI = 0x10, 0x11, 0x12
DATA_BLOCKED, STREAM_DATA_BLOCKED = 0x14, 0x15
CREDIT_TP = {"max_streams_bidi": 16, "max_data": 65536, "max_stream_data_bidi_remote": 65536}


def test_credit_is_a_window_and_blocked_frames_are_answered(quic_module, clean_path, topo):
    """RFC 9000 Sections 4.1-4.6 against an aioquic client.  A kernel server with a limit of
    16 streams gives MAX_STREAMS as its application finishes streams, at most 2 (an eighth of
    the limit) behind, never in batches of half the limit; a client blocked by the stream
    limit (aioquic's own STREAMS_BLOCKED) gets the credit with the next stream to finish.
    DATA_BLOCKED and STREAM_DATA_BLOCKED get the credit the application's reads made at once,
    though less than half the 64 KB window was read; without them none comes."""
    from aioquic.quic import events

    acc = KernelAccept(topo, transport_params=CREDIT_TP)
    peer = AioPeer(topo, acc.port)
    q = peer.quic
    try:
        s, sr, step = peer.accepted(acc)

        def credit(ftype: int) -> list[int]:
            return [v for t, _, v in q.credit if t == ftype]

        def quiet(seconds: float = 1.0) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                peer.pump(0.02)

        # Connection and stream windows: the client fills both (64 KB), the server reads
        # 10,000 bytes, a quarter of half the window: no credit yet.
        sid = q.get_next_available_stream_id()
        q.send_stream_data(sid, b"d" * 100000)
        until(lambda: q._remote_max_data_used == 65536, "the client blocked", step=peer.pump)
        got = 0
        while got < 10000:
            rsid, data, _ = s.recv(10000 - got)
            assert rsid == sid
            got += len(data)
        quiet()
        assert not credit(MAX_DATA) and not credit(MAX_STREAM_DATA), q.credit
        q.inject = [frame(DATA_BLOCKED, 65536)]
        q.send_ping(1)
        until(lambda: credit(MAX_DATA), "MAX_DATA in answer to DATA_BLOCKED", 10, peer.pump)
        assert credit(MAX_DATA) == [10000 + 65536], q.credit
        assert not credit(MAX_STREAM_DATA), "the stream's window was not asked for"
        q.inject = [frame(STREAM_DATA_BLOCKED, sid, 65536)]
        q.send_ping(2)
        until(lambda: credit(MAX_STREAM_DATA), "MAX_STREAM_DATA", 10, peer.pump)
        assert credit(MAX_STREAM_DATA) == [10000 + 65536], q.credit
        until(lambda: q._remote_max_data_used == 75536, "the next 10,000 bytes", step=peer.pump)

        # Streams one after another: the credit follows each.
        def finish(fsid: int) -> None:
            until(lambda: fsid in sr.fin, f"the request on stream {fsid}", step=step)
            s.send(b"ok", fsid, fin=True)
            until(lambda: fsid in peer.fin, f"the answer on stream {fsid}", step=step)

        for done in range(1, 41):
            fsid = q.get_next_available_stream_id()
            q.send_stream_data(fsid, b"x", end_stream=True)
            finish(fsid)
            until(lambda d=done: max(credit(MAX_STREAMS_BIDI), default=16) >= d + 15,
                  f"MAX_STREAMS after {done} streams", 10, step)  # fmt: skip
        values = credit(MAX_STREAMS_BIDI)
        steps = [b - a for a, b in zip([16, *values], values, strict=False)]
        assert max(steps) <= 2, f"MAX_STREAMS in steps {steps}"

        # Every stream the limit allows, and one more: aioquic says STREAMS_BLOCKED.
        limit = max(values)
        opened = []
        while len(opened) < limit - 41:  # 41 opened so far: 40 done, the first still open
            fsid = q.get_next_available_stream_id()
            q.send_stream_data(fsid, b"y", end_stream=True)
            opened.append(fsid)
        blocked_sid = q.get_next_available_stream_id()
        q.send_stream_data(blocked_sid, b"z", end_stream=True)
        until(lambda: all(x in sr.fin for x in opened), "the requests", step=step)
        quiet()
        sr.poll()
        assert limit == 56 and blocked_sid not in sr.data, (limit, q.credit)
        before = len(credit(MAX_STREAMS_BIDI))
        finish(opened[0])
        until(lambda: blocked_sid in sr.fin, "the blocked stream, with the next credit", 10, step)
        assert len(credit(MAX_STREAMS_BIDI)) == before + 1, q.credit
        assert max(credit(MAX_STREAMS_BIDI)) == limit + 1, q.credit
        assert peer.closed is None and sr.close is None
        assert not [e for e in peer.events if isinstance(e, events.ConnectionTerminated)]
    finally:
        peer.close()
        acc.close()
