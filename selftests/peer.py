"""The hostile-peer harness: kernel endpoints in the test namespaces and an aioquic client
driven sans-I/O from the test's thread, with frames of the test's choosing added to its 1-RTT
packets (``peer.quic.inject``) and credit it can withhold.  Shared by the suites that play a
peer which holds valid keys and misbehaves."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

from conftest import SERVER_NAME, kernel_listener

from quicctl.paths import KEYS

ALPN = "quicctl-test"
UPDATE = struct.Struct("=qB3xIQ")  # struct quic_stream_update (24 bytes)


# -- kernel endpoints ---------------------------------------------------------------------


class KernelAccept:
    """A kernel listener in the server namespace; accept() runs in a thread (the handshake
    needs the client to make progress meanwhile).  ``events`` are subscribed on the listener,
    which accept() copies to the connection."""

    def __init__(self, topo, transport_params=None, events=()):
        from quicctl import abi

        self.srv = kernel_listener(topo, "0.0.0.0", alpn=ALPN, transport_params=transport_params)
        for ev in events:
            abi.setsockopt(self.srv.sock, "EVENT", type=ev, on=1)
        self.port = self.srv.getsockname()[1]
        self.conn = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        try:
            self.conn = self.srv.accept(timeout=120)
        except BaseException as exc:  # reported by wait()
            self.error = exc

    def wait(self):
        self.thread.join(150)
        assert self.error is None, self.error
        assert self.conn is not None, "the server accepted no connection"
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.srv.close()


def inq(sock) -> int:
    """SIOCINQ: receive memory in use (ABI reference Section 6.5)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def conns(ns: str) -> list[dict]:
    """The rows of /proc/net/quic/conns in namespace ``ns``: the numeric columns, and the
    peer's address (REMOTE_ADDRESS, "addr:port")."""
    from quicctl.netns import enter

    with enter(ns):
        lines = Path("/proc/thread-self/net/quic/conns").read_text().splitlines()
    head = lines[0].split("\t")
    rows = [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]
    keys = ("STATE", "TX_QUEUE", "RX_QUEUE", "SNDBUF", "RCVBUF", "INODE")
    return [{**{k: int(r[k]) for k in keys}, "REMOTE_ADDRESS": r["REMOTE_ADDRESS"]} for r in rows]


def conns_row(sock, ns: str) -> dict | None:
    """The socket's /proc/net/quic/conns row."""
    ino = os.fstat(sock.fileno()).st_ino
    return next((r for r in conns(ns) if r["INODE"] == ino), None)


def established(ns: str) -> list[dict]:
    return [r for r in conns(ns) if r["STATE"] == 1]


def subscribe(sock, *events: int) -> None:
    from quicctl import abi

    for ev in events:
        abi.setsockopt(sock, "EVENT", type=ev, on=1)


class KernelReader:
    """Reads a kernel connection without blocking: stream bytes per stream, FINs, and
    STREAM_UPDATE / CONNECTION_CLOSE events."""

    def __init__(self, sock):
        self.sock = sock
        self.data: dict[int, bytearray] = {}
        self.fin: set[int] = set()
        self.updates: list[tuple[int, int, int, int]] = []  # id, state, errcode, finalsz
        self.close: tuple[int, int] | None = None
        self.events: list[tuple[int, bytes]] = []  # every event: type, payload

    def poll(self) -> None:
        from quicctl import abi

        while True:
            try:
                data, anc, flags, _ = self.sock.recvmsg(
                    1 << 20, socket.CMSG_SPACE(16), socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return
            if flags & abi.MSG_QUIC_NOTIFICATION:
                self.events.append((data[0], data[1:]))
                if data[0] == abi.QUIC_EVENT_STREAM_UPDATE:
                    self.updates.append(UPDATE.unpack(data[1 : 1 + UPDATE.size]))
                elif data[0] == abi.QUIC_EVENT_CONNECTION_CLOSE:
                    code, ftype = struct.unpack("=IB", data[1:6])
                    self.close = (code, ftype)
                    return
                continue
            for lvl, typ, payload in anc:
                if lvl == abi.SOL_QUIC and typ == abi.QUIC_STREAM_INFO:
                    sid, sflags = struct.unpack("=qI4x", payload.ljust(16, b"\0")[:16])
                    self.data.setdefault(sid, bytearray()).extend(data)
                    if sflags & abi.MSG_QUIC_STREAM_FIN:
                        self.fin.add(sid)

    def update(self, sid: int, state: int) -> tuple[int, int, int, int] | None:
        for u in self.updates:
            if u[0] == sid and u[1] == state:
                return u
        return None


def until(cond: Callable[[], bool], what: str, timeout: float = 60, step=None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if step is not None:
            step()
        else:
            time.sleep(0.02)


# -- aioquic, driven sans-I/O from the test's thread ------------------------------------


def varint(v: int) -> bytes:
    if v < 1 << 6:
        return bytes([v])
    if v < 1 << 14:
        return (v | 0x4000).to_bytes(2, "big")
    if v < 1 << 30:
        return (v | 0x80000000).to_bytes(4, "big")
    return (v | 0xC000000000000000).to_bytes(8, "big")


def frame(ftype: int, *fields: int, data: bytes = b"") -> tuple[int, bytes]:
    return ftype, b"".join(varint(f) for f in fields) + data


def peer_class():
    """aioquic's QuicConnection with hooks: frames to add to the next 1-RTT packet, credit
    (MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS) that can be withheld, the *_BLOCKED frames
    received counted and the credit frames received logged (``credit``: frame type, stream
    ID or -1, value)."""
    from aioquic.quic.connection import QuicConnection

    class Peer(QuicConnection):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.inject: list[tuple[int, bytes]] = []
            self.withhold_credit = False
            self.blocked_frames: dict[int, int] = {}
            self.credit: list[tuple[int, int, int]] = []
            self.challenges: list[bytes] = []  # PATH_CHALLENGE Data received

        def _write_connection_limits(self, builder, space) -> None:
            while self.inject:
                ftype, payload = self.inject[0]
                buf = builder.start_frame(ftype, capacity=len(payload) + 8)
                buf.push_bytes(payload)
                self.inject.pop(0)
            if not self.withhold_credit:
                super()._write_connection_limits(builder=builder, space=space)

        def _write_stream_limits(self, builder, space, stream) -> None:
            if not self.withhold_credit:
                super()._write_stream_limits(builder=builder, space=space, stream=stream)

        def _count(self, frame_type: int) -> None:
            self.blocked_frames[frame_type] = self.blocked_frames.get(frame_type, 0) + 1

        def _handle_data_blocked_frame(self, context, frame_type, buf) -> None:
            self._count(frame_type)
            super()._handle_data_blocked_frame(context, frame_type, buf)

        def _handle_stream_data_blocked_frame(self, context, frame_type, buf) -> None:
            self._count(frame_type)
            super()._handle_stream_data_blocked_frame(context, frame_type, buf)

        def _handle_streams_blocked_frame(self, context, frame_type, buf) -> None:
            self._count(frame_type)
            super()._handle_streams_blocked_frame(context, frame_type, buf)

        def _handle_path_challenge_frame(self, context, frame_type, buf) -> None:
            self.challenges.append(bytes(buf.data_slice(buf.tell(), buf.tell() + 8)))
            super()._handle_path_challenge_frame(context, frame_type, buf)

        def _log_credit(self, frame_type: int, buf, with_id: bool) -> None:
            pos = buf.tell()
            sid = buf.pull_uint_var() if with_id else -1
            self.credit.append((frame_type, sid, buf.pull_uint_var()))
            buf.seek(pos)

        def _handle_max_data_frame(self, context, frame_type, buf) -> None:
            self._log_credit(frame_type, buf, False)
            super()._handle_max_data_frame(context, frame_type, buf)

        def _handle_max_stream_data_frame(self, context, frame_type, buf) -> None:
            self._log_credit(frame_type, buf, True)
            super()._handle_max_stream_data_frame(context, frame_type, buf)

        def _handle_max_streams_bidi_frame(self, context, frame_type, buf) -> None:
            self._log_credit(frame_type, buf, False)
            super()._handle_max_streams_bidi_frame(context, frame_type, buf)

    return Peer


class AioPeer:
    """An aioquic client in the client namespace, stepped by :meth:`pump`."""

    def __init__(self, topo, port: int, alpn: str = ALPN, **config_kw):
        from aioquic.quic.configuration import QuicConfiguration

        from quicctl.netns import enter

        self.addr = (topo.server_v4, port)
        with enter(topo.client):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)
        config = QuicConfiguration(is_client=True, alpn_protocols=[alpn], **config_kw)
        config.server_name = SERVER_NAME
        config.load_verify_locations(cafile=str(KEYS / "ca.crt"))
        self.quic = peer_class()(configuration=config)
        self.quic.connect(self.addr, now=time.monotonic())
        self.events: list = []
        self.data: dict[int, bytearray] = {}
        self.fin: set[int] = set()
        self.connected = False
        # Other sockets whose datagrams reach this client too (the far side of a NAT).
        self.also_from: list[socket.socket] = []

    def pump(self, wait: float = 0.01) -> None:
        from aioquic.quic import events

        now = time.monotonic()
        for data, _ in self.quic.datagrams_to_send(now=now):
            self.sock.send(data)
        timer = self.quic.get_timer()
        wait = wait if timer is None else max(0.0, min(wait, timer - now))
        self.sock.settimeout(wait or 0.001)
        try:
            while True:
                self.quic.receive_datagram(self.sock.recv(65536), self.addr, time.monotonic())
                self.sock.settimeout(0.001)
        except (TimeoutError, BlockingIOError):
            pass
        for extra in self.also_from:
            extra.setblocking(False)
            try:
                while True:
                    self.quic.receive_datagram(extra.recv(65536), self.addr, time.monotonic())
            except BlockingIOError:
                pass
        if timer is not None and time.monotonic() >= timer:
            self.quic.handle_timer(now=time.monotonic())
        while (ev := self.quic.next_event()) is not None:
            self.events.append(ev)
            if isinstance(ev, events.HandshakeCompleted):
                self.connected = True
            elif isinstance(ev, events.StreamDataReceived):
                self.data.setdefault(ev.stream_id, bytearray()).extend(ev.data)
                if ev.end_stream:
                    self.fin.add(ev.stream_id)
        for data, _ in self.quic.datagrams_to_send(now=time.monotonic()):
            self.sock.send(data)

    def until(self, cond: Callable[[], bool], what: str, timeout: float = 60) -> None:
        until(cond, what, timeout, step=self.pump)

    def accepted(self, acc: KernelAccept):
        """Completes the handshake with ``acc``'s listener: (the kernel connection, a
        KernelReader of it, a step() that pumps both)."""
        self.until(lambda: self.connected and not acc.thread.is_alive(), "the handshake")
        conn = acc.wait()
        reader = KernelReader(conn.sock)

        def step() -> None:
            self.pump()
            reader.poll()

        return conn, reader, step

    @property
    def closed(self):
        """The CONNECTION_CLOSE received (aioquic reports it only after draining)."""
        return getattr(self.quic, "_close_event", None)

    def event(self, cls, stream_id: int):
        for ev in self.events:
            if isinstance(ev, cls) and ev.stream_id == stream_id:
                return ev
        return None

    def close(self) -> None:
        self.quic.close()
        for _ in range(5):
            self.pump(0.01)
        self.sock.close()
