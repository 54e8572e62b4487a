"""aioquic endpoints of the benchmark, one process each (the GIL would couple two stacks in one).

    python -m quicctl.bench.aioq server ADDR PORT          prints "listening", serves until killed
    python -m quicctl.bench.aioq client ADDR PORT BYTES WSIZE[,WSIZE...] HANDSHAKES RR_COUNT

The client runs every measurement (bulk at each write size, handshakes, request/response: one
process, as Python starts slowly in the guest) and prints one JSON object.  aioquic is driven
sans-I/O over a plain UDP socket.  A stream starts with a 9-byte header: ``B`` + total (bulk:
the server verifies the pattern and answers ``K`` once it has all the bytes) or ``R`` + size
(request/response: the server echoes every SIZE-byte request).  In bulk, each
``send_stream_data`` call carries WSIZE bytes, and the client keeps at most WRITE_AHEAD bytes
queued beyond what went on the wire.
"""

from __future__ import annotations

import json
import select
import socket
import statistics
import struct
import sys
import time
from dataclasses import dataclass, field

from aioquic.buffer import Buffer
from aioquic.quic import events
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import PACKET_TYPE_INITIAL, pull_quic_header

from quicctl.bench import ALPN, SERVER_NAME, cpu_seconds, matches, pattern

HEADER = struct.Struct("!cQ")
WRITE_AHEAD = 256 << 10
TIMEOUT = 120.0


def _config(is_client: bool):
    from quicctl.paths import KEYS
    from quicctl.userspace import _configuration, _load_cert_chain

    cfg = _configuration(
        is_client=is_client, alpn=ALPN, ciphers=["TLS_AES_128_GCM_SHA256"], keylog_file=None
    )
    if is_client:
        cfg.load_verify_locations(str(KEYS / "ca.crt"))
        cfg.server_name = SERVER_NAME
    else:
        _load_cert_chain(cfg, str(KEYS / "cert.crt"), str(KEYS / "pkey.key"))
    return cfg


def _flush(sock: socket.socket, conn: QuicConnection) -> None:
    for data, addr in conn.datagrams_to_send(now=time.monotonic()):
        try:
            sock.sendto(data, addr)
        except BlockingIOError:
            pass  # a full socket buffer: like loss, recovered by the stack


# -- server -----------------------------------------------------------------------------------


@dataclass
class _Stream:
    buf: bytearray = field(default_factory=bytearray)
    kind: bytes = b""
    arg: int = 0
    off: int = 0


class _Peer:
    def __init__(self, conn: QuicConnection):
        self.conn = conn
        self.streams: dict[int, _Stream] = {}
        self.ended = False

    def events(self) -> None:
        while (ev := self.conn.next_event()) is not None:
            if isinstance(ev, events.StreamDataReceived):
                self.data(ev.stream_id, ev.data)
            elif isinstance(ev, events.ConnectionTerminated):
                self.ended = True

    def data(self, sid: int, data: bytes) -> None:
        st = self.streams.setdefault(sid, _Stream())
        if not st.kind:
            st.buf += data
            if len(st.buf) < HEADER.size:
                return
            kind, st.arg = HEADER.unpack_from(st.buf)
            st.kind, data = kind, bytes(st.buf[HEADER.size :])
            st.buf = bytearray()
        if st.kind == b"B":
            self.bulk(sid, st, data)
        else:
            self.echo(sid, st, data)

    def bulk(self, sid: int, st: _Stream, data: bytes) -> None:
        if not matches(st.off, data) or st.off + len(data) > st.arg:
            self.conn.close(error_code=1, reason_phrase="corrupt data")
            return
        st.off += len(data)
        if st.off == st.arg:
            self.conn.send_stream_data(sid, b"K")

    def echo(self, sid: int, st: _Stream, data: bytes) -> None:
        st.buf += data
        while len(st.buf) >= st.arg:
            req = bytes(st.buf[: st.arg])
            del st.buf[: st.arg]
            if not matches(st.off, req):
                self.conn.close(error_code=1, reason_phrase="corrupt request")
                return
            st.off += len(req)
            self.conn.send_stream_data(sid, req)


def serve(host: str, port: int) -> None:
    cfg = _config(False)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.setblocking(False)
    peers: dict[tuple, _Peer] = {}
    print("listening", flush=True)
    while True:
        timers = [t for p in peers.values() if (t := p.conn.get_timer()) is not None]
        wait = max(0.0, min(timers) - time.monotonic()) if timers else 1.0
        select.select([sock], [], [], wait)
        while True:
            try:
                data, addr = sock.recvfrom(65536)
            except BlockingIOError:
                break
            peer = peers.get(addr)
            if peer is None:
                try:
                    hdr = pull_quic_header(Buffer(data=data), host_cid_length=8)
                except ValueError:
                    continue
                if hdr.packet_type != PACKET_TYPE_INITIAL:
                    continue
                conn = QuicConnection(
                    configuration=cfg, original_destination_connection_id=hdr.destination_cid
                )
                peer = peers[addr] = _Peer(conn)
            peer.conn.receive_datagram(data, addr, time.monotonic())
        now = time.monotonic()
        for addr, peer in list(peers.items()):
            timer = peer.conn.get_timer()
            if timer is not None and timer <= now:
                peer.conn.handle_timer(now)
            peer.events()
            _flush(sock, peer.conn)
            if peer.ended:
                del peers[addr]


# -- clients ----------------------------------------------------------------------------------


class _Client:
    def __init__(self, host: str, port: int, cfg):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.connect((host, port))
        self.sock.setblocking(False)
        self.addr = (host, port)
        self.conn = QuicConnection(configuration=cfg)
        self.conn.connect(self.addr, now=time.monotonic())
        self.received = bytearray()
        self.established = False
        self.deadline = time.monotonic() + TIMEOUT

    def step(self) -> None:
        """Send what is due, wait for a datagram or the timer, feed it, collect events."""
        _flush(self.sock, self.conn)
        timer = self.conn.get_timer()
        now = time.monotonic()
        if now > self.deadline:
            raise SystemExit(_fail("timed out"))
        wait = 1.0 if timer is None else max(0.0, timer - now)
        select.select([self.sock], [], [], min(wait, 1.0))
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            self.conn.receive_datagram(data, self.addr, time.monotonic())
        timer = self.conn.get_timer()
        if timer is not None and timer <= time.monotonic():
            self.conn.handle_timer(time.monotonic())
        while (ev := self.conn.next_event()) is not None:
            if isinstance(ev, events.HandshakeCompleted):
                self.established = True
            elif isinstance(ev, events.StreamDataReceived):
                self.received += ev.data
            elif isinstance(ev, events.ConnectionTerminated):
                raise SystemExit(_fail(f"connection closed: {ev.reason_phrase or ev.error_code}"))

    def handshake(self) -> None:
        while not self.established:
            self.step()

    def close(self) -> None:
        self.conn.close()
        _flush(self.sock, self.conn)
        self.sock.close()

    def sent(self, sid: int) -> int:
        """Stream bytes that went on the wire at least once (aioquic keeps no public level)."""
        return self.conn._streams[sid].sender.highest_offset  # noqa: SLF001


def _fail(msg: str) -> int:
    print(json.dumps({"ok": False, "error": msg}), flush=True)
    return 1


def bulk(host: str, port: int, total: int, wsize: int) -> dict:
    cl = _Client(host, port, _config(True))
    cl.handshake()
    sid = cl.conn.get_next_available_stream_id()
    t0, c0 = time.monotonic(), cpu_seconds()
    cl.conn.send_stream_data(sid, HEADER.pack(b"B", total))
    queued = 0
    while not cl.received:
        while queued < total and queued + HEADER.size - cl.sent(sid) < WRITE_AHEAD:
            n = min(wsize, total - queued)
            cl.conn.send_stream_data(sid, pattern(queued, n).tobytes())
            queued += n
        cl.step()
    t1, c1 = time.monotonic(), cpu_seconds()
    cl.close()
    if bytes(cl.received) != b"K":
        return {"ok": False, "error": f"unexpected answer {bytes(cl.received)[:16]!r}"}
    return {"ok": True, "bytes": total, "seconds": t1 - t0, "cpu_seconds": c1 - c0}


def rr(host: str, port: int, count: int, size: int) -> dict:
    cl = _Client(host, port, _config(True))
    cl.handshake()
    sid = cl.conn.get_next_available_stream_id()
    cl.conn.send_stream_data(sid, HEADER.pack(b"R", size))
    rtts = []
    for i in range(count):
        req = pattern(i * size, size).tobytes()
        t = time.monotonic()
        cl.conn.send_stream_data(sid, req)
        while len(cl.received) < size:
            cl.step()
        rtts.append(time.monotonic() - t)
        if bytes(cl.received) != req:
            return {"ok": False, "error": "corrupt echo"}
        cl.received.clear()
    cl.close()
    return {
        "ok": True,
        "count": count,
        "median_us": statistics.median(rtts) * 1e6,
        "mean_us": statistics.fmean(rtts) * 1e6,
    }


def handshakes(host: str, port: int, count: int) -> dict:
    cfg = _config(True)
    t0 = time.monotonic()
    for _ in range(count):
        cl = _Client(host, port, cfg)
        cl.handshake()
        cl.close()
    return {"ok": True, "count": count, "seconds": time.monotonic() - t0}


def client(host: str, port: int, total: int, sizes: str, nhs: int, nrr: int) -> dict:
    out = []
    for size in map(int, sizes.split(",")):
        res = bulk(host, port, total, size)
        if not res["ok"]:
            return {"ok": False, "error": f"bulk, {size}-byte writes: {res['error']}"}
        out.append(dict(res, write_size=size))
    return {
        "ok": True,
        "bulk": out,
        "handshakes": handshakes(host, port, nhs),
        "rr": rr(host, port, nrr, 64),
    }


def main(argv: list[str]) -> int:
    mode, host, port, *rest = argv
    if mode == "server":
        serve(host, int(port))
        return 0
    total, sizes, nhs, nrr = rest
    out = client(host, int(port), int(total), sizes, int(nhs), int(nrr))
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
