"""Out-of-order data and stream limits against a hostile peer: what it may make the kernel hold
and how much work it may make it do.

- CRYPTO (RFC 9000 Section 7.5): before any handshake, anyone who can compute Initial keys
  sends tens of thousands of 1-byte CRYPTO frames at gapped offsets.  The kernel holds a
  bounded amount of memory for them, closes with CRYPTO_BUFFER_EXCEEDED, and each batch costs
  about what the first did (no list walk per frame).
- STREAM (RFC 9000 Section 2.2): 1-byte and overlapping pieces at gapped offsets stay within
  the receive buffer, cost no more per batch as they pile up, and the stream reads back
  exactly as sent once the gaps are filled.
- MAX_STREAMS (RFC 9000 Sections 4.6, 19.11): a peer's limit of 2^41 streams does not make
  opening a stream far above the next one allocate every lower stream; above 2^60 it is
  FRAME_ENCODING_ERROR.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import time
from pathlib import Path

import pytest
from peer import AioPeer, KernelAccept, KernelReader, conns_row, frame, inq, until
from test_wire import _client_initial, _close_code, _pull_varint

CRYPTO_BUFFER_EXCEEDED = 0x0D
FRAME_ENCODING_ERROR = 0x07
MAX_STREAMS_BIDI = 0x12
STREAM_OFF_LEN = 0x0E


def _slab_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Slab:"):
            return int(line.split()[1])
    raise AssertionError("no Slab line in /proc/meminfo")


def _server_initials(dgrams: list[bytes], odcid: bytes) -> list[bytes]:
    """The plain payloads of the server Initials in ``dgrams`` (first packet of each)."""
    from aioquic.quic.crypto import CryptoPair

    pair = CryptoPair()
    pair.setup_initial(cid=odcid, is_client=True, version=1)
    out = []
    for pn, d in enumerate(dgrams):
        if not d[0] & 0x80 or (d[0] >> 4) & 0x3:
            continue
        i = 5
        i += 1 + d[i]
        i += 1 + d[i]
        token_len, i = _pull_varint(d, i)
        i += token_len
        length, i = _pull_varint(d, i)
        try:
            _, payload, _ = pair.decrypt_packet(d[: i + length], i, pn)
        except Exception:  # noqa: BLE001 - not one of ours (or not decodable): skip it
            continue
        out.append(payload)
    return out


def _crypto_frames(offsets: list[int], room: int = 1150) -> list[bytes]:
    """1-byte CRYPTO frames at ``offsets``, packed into Initial payloads of at most ``room``."""
    from test_wire import _varint

    payloads, cur = [], b""
    for off in offsets:
        f = b"\x06" + _varint(off) + b"\x01" + bytes([off & 0xFF])
        if len(cur) + len(f) > room:
            payloads.append(cur)
            cur = b""
        cur += f
    if cur:
        payloads.append(cur)
    return payloads


@pytest.fixture
def wire_listener(quic_module):
    lst = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 261)
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    yield lst, udp
    udp.close()
    lst.close()


def test_crypto_flood_before_handshake_is_bounded(wire_listener):
    """30,000 1-byte CRYPTO frames at gapped offsets (every other byte of the first 60 KB,
    within the 64 KB a peer may run ahead) in client Initials, no ClientHello ever complete.
    Bounds: kernel slab grows by less than 8 MB (the frames would take about 25-40 MB if each
    were held), the server closes with CRYPTO_BUFFER_EXCEEDED on the wire and on the socket,
    and the last batch of packets takes at most 3x the first plus 50 ms."""
    from quicctl import abi

    lst, udp = wire_listener
    dcid, scid = os.urandom(8), os.urandom(8)
    nframes = 30000
    payloads = _crypto_frames([2 + 2 * k for k in range(nframes)])
    addr = lst.getsockname()
    before = _slab_kb()
    udp.sendto(_client_initial(dcid, scid, payloads[0], pn=0), addr)
    lst.settimeout(10)
    conn, _ = lst.accept()
    try:
        batch, times = 20, []
        pn = 1
        for start in range(1, len(payloads), batch):
            t0 = time.monotonic()
            for p in payloads[start : start + batch]:
                udp.sendto(_client_initial(dcid, scid, p, pn=pn), addr)
                pn += 1
            times.append(time.monotonic() - t0)
        during = _slab_kb()
        udp.settimeout(2)
        dgrams = []
        try:
            while True:
                dgrams.append(udp.recv(65536))
        except TimeoutError:
            pass
        codes = [_close_code(p) for p in _server_initials(dgrams, dcid)]
        print(
            f"{len(payloads)} Initials, {nframes} frames; slab {before} -> {during} kB; "
            f"batch times first {times[0]:.3f} s, last {times[-1]:.3f} s, max {max(times):.3f} s; "
            f"server close codes {codes}"
        )
        assert during - before < 8 * 1024, f"slab grew {during - before} kB during the flood"
        assert times[-1] <= 3 * times[0] + 0.05, f"batches got slower: {times}"
        assert CRYPTO_BUFFER_EXCEEDED in codes, f"no CRYPTO_BUFFER_EXCEEDED close: {codes}"
        info = abi.getsockopt(conn, "CONNECTION_CLOSE")
        assert info["errcode"] == CRYPTO_BUFFER_EXCEEDED, info
    finally:
        conn.close()


def test_stream_gapped_and_overlapping_pieces(quic_module, clean_path, topo):
    """aioquic sends 20,000 1-byte STREAM frames at every other offset (ascending, the worst
    order for a sorted list), then 3,000 overlapping pieces of 1-64 bytes at random offsets,
    then the whole stream.  The receive memory stays within the receive buffer, slab growth
    within the receive buffer plus 8 MB, the last batch costs at most 3x the first plus 50 ms,
    and the kernel reads exactly the bytes sent."""
    tp = {"max_data": 16 << 20, "max_stream_data_bidi_remote": 8 << 20}
    acc = KernelAccept(topo, transport_params=tp)
    peer = AioPeer(topo, acc.port)
    try:
        peer.until(lambda: peer.connected and not acc.thread.is_alive(), "the handshake")
        s = acc.wait()
        sr = KernelReader(s.sock)
        sid = peer.quic.get_next_available_stream_id()
        rng = random.Random(13)
        size = 64000
        data = rng.randbytes(size)
        row = conns_row(s.sock, topo.server)
        before = _slab_kb()

        def piece(off: int, n: int) -> tuple[int, bytes]:
            return frame(STREAM_OFF_LEN, sid, off, n, data=data[off : off + n])

        def flush(frames) -> float:
            t0 = time.monotonic()
            peer.quic.inject = list(frames)
            peer.until(lambda: not peer.quic.inject, "the frames sent", 120)
            for _ in range(5):
                peer.pump(0.01)
            return time.monotonic() - t0

        gapped = [piece(1 + 2 * k, 1) for k in range(20000)]
        times = [flush(gapped[i : i + 2000]) for i in range(0, len(gapped), 2000)]
        held, during = inq(s.sock), _slab_kb()
        pieces = []
        for _ in range(3000):
            off = rng.randrange(1, size - 64)
            pieces.append(piece(off, rng.randrange(1, 65)))
        flush(pieces)
        held = max(held, inq(s.sock))
        print(
            f"held {held} bytes (rcvbuf {row['RCVBUF']}); slab {before} -> {during} kB; "
            f"batch times {[round(t, 3) for t in times]}"
        )
        assert held <= row["RCVBUF"], f"{held} bytes held, beyond the receive buffer"
        assert (during - before) * 1024 < row["RCVBUF"] + 8 * 1024 * 1024
        assert times[-1] <= 3 * times[0] + 0.05, f"batches got slower: {times}"
        peer.quic.send_stream_data(sid, data, end_stream=True)

        def step() -> None:
            peer.pump()
            sr.poll()

        until(lambda: sid in sr.fin, "the whole stream", 120, step=step)
        assert bytes(sr.data[sid]) == data
        assert peer.closed is None
    finally:
        peer.close()
        acc.close()


def _max_streams_conn(topo):
    acc = KernelAccept(topo)
    peer = AioPeer(topo, acc.port)
    peer.until(lambda: peer.connected and not acc.thread.is_alive(), "the handshake")
    return acc, peer, acc.wait()


@pytest.mark.parametrize("n", [1 << 40, 1 << 20])
def test_huge_max_streams_then_high_stream(quic_module, clean_path, topo, n):
    """The peer allows 2^41 bidirectional streams; the kernel server then opens stream
    number ``n`` (ID 4n+1), which would implicitly open every lower one.  It fails at once
    with EINVAL (far beyond the 4096 streams a type may hold), allocates nothing, and the
    connection works: stream 120 opens (the lower ones with it; aioquic itself takes no more
    than its own 128) and its data arrives, and so does a lower stream's opened after it."""
    acc, peer, s = _max_streams_conn(topo)
    try:
        peer.quic.inject = [frame(MAX_STREAMS_BIDI, 1 << 41)]
        peer.until(lambda: not peer.quic.inject, "MAX_STREAMS sent")
        for _ in range(20):
            peer.pump(0.02)
        before = _slab_kb()
        t0 = time.monotonic()
        with pytest.raises(OSError) as exc:
            s.send(b"x", (n << 2) | 1, new=True)
        took = time.monotonic() - t0
        print(f"open of stream {n}: {exc.value!r} after {took:.3f} s; slab {before} kB")
        assert exc.value.errno == errno.EINVAL
        assert took < 1.0
        assert _slab_kb() - before < 4 * 1024
        hi, lo = (120 << 2) | 1, (7 << 2) | 1
        s.send(b"high", hi, new=True, fin=True)
        s.send(b"low", lo, new=True, fin=True)
        peer.until(lambda: {hi, lo} <= peer.fin, "the data on both streams")
        assert bytes(peer.data[hi]) == b"high" and bytes(peer.data[lo]) == b"low"
        assert peer.closed is None
    finally:
        peer.close()
        acc.close()


def test_max_streams_above_2_60_is_frame_encoding_error(quic_module, clean_path, topo):
    """RFC 9000 Section 19.11: a MAX_STREAMS above 2^60 closes with FRAME_ENCODING_ERROR."""
    acc, peer, s = _max_streams_conn(topo)
    sr = KernelReader(s.sock)
    try:
        peer.quic.inject = [frame(MAX_STREAMS_BIDI, (1 << 60) + 1)]

        def step() -> None:
            peer.pump()
            sr.poll()

        until(lambda: peer.closed is not None, "the close", step=step)
        assert peer.closed.error_code == FRAME_ENCODING_ERROR
        assert s.close_info().errcode == FRAME_ENCODING_ERROR
    finally:
        peer.close()
        acc.close()
