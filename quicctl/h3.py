"""HTTP/3 (RFC 9114) over the kernel's QUIC connections: `quicctl server`/`client` with ALPN h3.

Framing, SETTINGS and QPACK (RFC 9204) are aioquic's :class:`aioquic.h3.connection.H3Connection`
with pylsqpack; this module only gives it the few things it asks of a QUIC connection, through
:class:`KernelQuic` over a :class:`quicctl.connection.QuicConnection`:

* ``get_next_available_stream_id(is_unidirectional)`` opens the stream in the kernel
  (STREAM_OPEN), so the control and QPACK encoder/decoder streams that each side must open
  (RFC 9114 Section 6.2, RFC 9204 Section 4.2) are real kernel uni streams;
* ``send_stream_data(stream_id, data, end_stream)`` is a send with the QUIC_STREAM_INFO cmsg;
* ``reset_stream``/``close`` map to STREAM_RESET and CONNECTION_CLOSE; ``configuration.is_client``
  and the peer's ``max_datagram_frame_size`` (TRANSPORT_PARAM remote) complete the picture.

Received stream data and the kernel's STREAM_UPDATE events (peer RESET_STREAM, our reset after a
STOP_SENDING) become aioquic's QUIC events for :meth:`H3Connection.handle_event`.

The server answers ``GET`` for files under its root (404 otherwise), reading each file in chunks
as the streams take them, round-robin over the open requests; the client requests every path on
its own stream of one connection and returns :class:`quicctl.hq.Download` objects with the HTTP
status.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import IO

from aioquic.h3 import events as h3e
from aioquic.h3.connection import H3Connection
from aioquic.quic import events as qe

from quicctl import abi
from quicctl.connection import CloseInfo, QuicConnection
from quicctl.errors import PeerClosedError, QuicctlError
from quicctl.hq import H3, H3_NO_ERROR, Download, resolve

ALPN = H3

# RFC 9114 Section 8.1
H3_INTERNAL_ERROR = 0x102

CHUNK = 64 << 10  # file bytes per DATA frame: one round-robin turn of a response
_RECV = 1 << 20
_STREAM_INFO = struct.Struct("=qI4x")  # struct quic_stream_info
_STREAM_UPDATE = struct.Struct("=qB3xIQ")  # struct quic_stream_update
_RECV_STATE_RESET_RECVD = 10  # QUIC_STREAM_RECV_STATE_RESET_RECVD
_SEND_STATE_RESET_SENT = 4  # QUIC_STREAM_SEND_STATE_RESET_SENT (the peer's STOP_SENDING)

Log = Callable[[str], None]


class H3Closed(Exception):
    """The HTTP/3 layer closed the connection (a protocol error of the peer)."""

    def __init__(self, code: int, phrase: str) -> None:
        super().__init__(f"HTTP/3 error 0x{code:x}" + (f" ({phrase})" if phrase else ""))
        self.code = code
        self.phrase = phrase


def clean_close(exc: PeerClosedError) -> bool:
    """The peer ended the connection without an error (QUIC NO_ERROR or H3_NO_ERROR)."""
    return exc.error_code in (0, H3_NO_ERROR)


class KernelQuic:
    """The part of aioquic's ``QuicConnection`` that ``H3Connection`` uses, over quic.ko."""

    def __init__(self, conn: QuicConnection, *, is_client: bool) -> None:
        self.conn = conn
        self.configuration = SimpleNamespace(is_client=is_client)
        self._quic_logger = None
        peer = abi.getsockopt(conn.sock, "TRANSPORT_PARAM", remote=1)
        self._remote_max_datagram_frame_size = peer["max_datagram_frame_size"] or None
        self.closed: H3Closed | None = None
        for event in (abi.QUIC_EVENT_STREAM_UPDATE, abi.QUIC_EVENT_STREAM_MAX_STREAM):
            abi.setsockopt(conn.sock, "EVENT", type=event, on=1)

    # -- what H3Connection calls ----------------------------------------------------------
    def get_next_available_stream_id(self, is_unidirectional: bool = False) -> int:
        return self.conn.open_stream(uni=is_unidirectional)

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        if data or end_stream:
            self.conn.sendall(data, stream_id, fin=end_stream)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        abi.setsockopt(self.conn.sock, "STREAM_RESET", stream_id=stream_id, errcode=error_code)

    def send_datagram_frame(self, data: bytes) -> None:
        self.conn.sock.send(data, abi.MSG_QUIC_DATAGRAM)

    def close(self, error_code: int = H3_NO_ERROR, frame_type: int | None = None,
              reason_phrase: str = "") -> None:  # fmt: skip
        """H3Connection closes on a protocol error: remembered, acted on by the caller."""
        if self.closed is None:
            self.closed = H3Closed(error_code, reason_phrase)

    # -- what the kernel delivers ---------------------------------------------------------
    def try_open(self) -> int | None:
        """The next bidi stream, or None while the peer's MAX_STREAMS forbids it (no wait)."""
        try:
            info = abi.getsockopt(
                self.conn.sock, "STREAM_OPEN", stream_id=-1,
                stream_flags=abi.MSG_QUIC_STREAM_DONTWAIT,
            )  # fmt: skip
        except BlockingIOError:
            return None
        return info["stream_id"]

    def receive(self, block: bool = True) -> list[qe.QuicEvent]:
        """QUIC events from one read of the socket ([] when nothing is queued and not block).

        Raises PeerClosedError when the connection ended, TimeoutError after the socket's
        timeout."""
        flags = 0 if block else socket.MSG_DONTWAIT
        try:
            data, anc, mflags, _ = self.conn.sock.recvmsg(_RECV, socket.CMSG_SPACE(16), flags)
        except BlockingIOError:
            return []
        if mflags & abi.MSG_QUIC_NOTIFICATION:
            return self._notification(data)
        for lvl, typ, payload in anc:
            if lvl == abi.SOL_QUIC and typ == abi.QUIC_STREAM_INFO:
                sid, sflags = _STREAM_INFO.unpack(payload.ljust(16, b"\0")[:16])
                fin = bool(sflags & abi.MSG_QUIC_STREAM_FIN)
                return [qe.StreamDataReceived(data=data, end_stream=fin, stream_id=sid)]
        if mflags & abi.MSG_QUIC_DATAGRAM:
            return [qe.DatagramFrameReceived(data=data)]
        return []

    def _notification(self, data: bytes) -> list[qe.QuicEvent]:
        kind = data[0] if data else -1
        if kind == abi.QUIC_EVENT_CONNECTION_CLOSE:
            raise CloseInfo.from_bytes(data[1:]).error()
        if kind != abi.QUIC_EVENT_STREAM_UPDATE:
            return []  # STREAM_MAX_STREAM: only wakes us to open more requests
        sid, state, code, _ = _STREAM_UPDATE.unpack(data[1:].ljust(_STREAM_UPDATE.size, b"\0"))
        if state == _RECV_STATE_RESET_RECVD:
            return [qe.StreamReset(error_code=code, stream_id=sid)]
        if state == _SEND_STATE_RESET_SENT:
            return [qe.StopSendingReceived(error_code=code, stream_id=sid)]
        return []


class _Endpoint:
    """One HTTP/3 connection: the H3Connection, its kernel adapter and the event pump."""

    def __init__(self, conn: QuicConnection, *, is_client: bool) -> None:
        self.conn = conn
        self.quic = KernelQuic(conn, is_client=is_client)
        self.h3 = H3Connection(self.quic)  # opens and fills our control/QPACK streams

    def events(self, block: bool = True) -> list[h3e.H3Event]:
        out: list[h3e.H3Event] = []
        for ev in self.quic.receive(block):
            out += self.h3.handle_event(ev)
            if self.quic.closed is not None:
                raise self.quic.closed
        return out


# -- server -------------------------------------------------------------------------------


@dataclass
class _Response:
    file: IO[bytes]
    left: int


class H3ServerConnection(_Endpoint):
    """Answers the GET requests of one connection with the files under ``root``."""

    def __init__(self, conn: QuicConnection, root: Path, log: Log) -> None:
        super().__init__(conn, is_client=False)
        self.root = root
        self.log = log
        self.responses: dict[int, _Response] = {}

    def serve(self) -> None:
        """Until the client closes the connection or breaks HTTP/3 (then we close it)."""
        try:
            while True:
                for ev in self.events(block=not self.responses):
                    self._on_event(ev)
                self._send_round()
        except PeerClosedError as exc:
            if not clean_close(exc):
                self.log(str(exc))
        except H3Closed as exc:
            self.log(f"closing: {exc}")
            self.conn.close(exc.code, exc.phrase)
        finally:
            for resp in self.responses.values():
                resp.file.close()
            self.responses.clear()

    def _on_event(self, ev: h3e.H3Event) -> None:
        if isinstance(ev, h3e.HeadersReceived) and ev.push_id is None:
            self._answer(ev.stream_id, dict(ev.headers))

    def _answer(self, sid: int, headers: dict[bytes, bytes]) -> None:
        method = headers.get(b":method", b"")
        path = headers.get(b":path", b"").decode("utf-8", "replace").split("?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            self._status(sid, 405)
            return
        target = resolve(self.root, path) if path.startswith("/") else None
        if target is None:
            self._status(sid, 404)
            return
        try:
            f = open(target, "rb")  # noqa: SIM115 - closed when sent or in serve()
            size = os.fstat(f.fileno()).st_size
        except OSError as exc:
            self.log(f"stream {sid}: cannot read {target}: {exc.strerror or exc}")
            self._status(sid, 500)
            return
        head = method == b"HEAD" or size == 0
        self.h3.send_headers(
            sid, [(b":status", b"200"), (b"content-length", str(size).encode())], end_stream=head
        )
        if head:
            f.close()
        else:
            self.responses[sid] = _Response(f, size)

    def _status(self, sid: int, status: int) -> None:
        self.h3.send_headers(
            sid, [(b":status", str(status).encode()), (b"content-length", b"0")], end_stream=True
        )

    def _send_round(self) -> None:
        """One chunk of every pending response (blocking while flow control holds it back)."""
        for sid, resp in list(self.responses.items()):
            chunk = resp.file.read(min(CHUNK, resp.left))
            resp.left -= len(chunk)
            try:
                if not chunk:  # the file shrank under us: the answer cannot be completed
                    self.quic.reset_stream(sid, H3_INTERNAL_ERROR)
                else:
                    self.h3.send_data(sid, chunk, end_stream=resp.left == 0)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSTR):
                    raise
                resp.left = 0  # the stream was reset (the client's STOP_SENDING)
            if resp.left == 0 or not chunk:
                resp.file.close()
                del self.responses[sid]


def serve_connection(conn: QuicConnection, root: Path, log: Log) -> None:
    """Serve one handshaken h3 connection until the client closes it."""
    H3ServerConnection(conn, root, log).serve()


# -- client -------------------------------------------------------------------------------


def request_headers(authority: str, path: str) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", authority.encode()),
        (b":path", path.encode()),
        (b"user-agent", b"quicctl"),
    ]


def out_path(outdir: Path | None, path: str) -> Path | None:
    return outdir / (path.strip("/").replace("/", "_") or "index") if outdir else None


class Downloads:
    """The answers of one client connection, as they arrive (shared with the aioquic client)."""

    def __init__(self, progress: Callable[[Download, int], None] | None = None) -> None:
        self.by_stream: dict[int, Download] = {}
        self.files: dict[int, IO[bytes]] = {}
        self.progress = progress
        self.left = 0

    def add(self, sid: int, path: str, outdir: Path | None) -> None:
        out = out_path(outdir, path)
        self.by_stream[sid] = Download(path, sid, out)
        self.left += 1
        if out:
            self.files[sid] = open(out, "wb")  # noqa: SIM115 - closed by close()

    def on_event(self, ev: h3e.H3Event) -> None:
        """Headers and body of an answer; QuicctlError on an answer to no request."""
        if not isinstance(ev, (h3e.HeadersReceived, h3e.DataReceived)) or ev.push_id is not None:
            return
        d = self.by_stream.get(ev.stream_id)
        if d is None:
            raise QuicctlError(f"an answer on stream {ev.stream_id}, which no request opened")
        if isinstance(ev, h3e.HeadersReceived):
            if d.status is None:
                status = dict(ev.headers).get(b":status", b"")
                d.status = int(status) if status.isdigit() else 0
        else:
            d.size += len(ev.data)
            d.sha256.update(ev.data)
            f = self.files.get(ev.stream_id)
            if f is not None:
                f.write(ev.data)
            if self.progress:
                self.progress(d, len(ev.data))
        if ev.stream_ended and not d.done:
            d.done, d.finished = True, time.monotonic()
            self.left -= 1

    def reset(self, sid: int, code: int) -> None:
        d = self.by_stream.get(sid)
        what = d.path if d else f"stream {sid}"
        raise QuicctlError(f"the server reset the answer to {what} (error 0x{code:x})")

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


def fetch(
    conn: QuicConnection,
    paths: list[str],
    outdir: Path | None,
    *,
    authority: str,
    timeout: float | None = 60.0,
    progress: Callable[[Download, int], None] | None = None,
) -> list[Download]:
    """GET every path on its own request stream of ``conn`` (all at once, as far as the
    server's stream limit allows) and read the answers; results in request order.

    ``timeout`` bounds any pause of the transfer.  Raises QuicctlError (a reset answer, an
    HTTP/3 protocol error, a stall) or PeerClosedError.  The connection stays open."""
    ep = _Endpoint(conn, is_client=True)
    got = Downloads(progress)
    todo = list(paths)
    conn.settimeout(timeout)
    try:
        while todo or got.left:
            while todo:
                sid = ep.quic.try_open()
                if sid is None:
                    break
                path = todo.pop(0)
                got.add(sid, path, outdir)
                ep.h3.send_headers(sid, request_headers(authority, path), end_stream=True)
            for raw in ep.quic.receive():
                if isinstance(raw, qe.StreamReset) and raw.stream_id in got.by_stream:
                    got.reset(raw.stream_id, raw.error_code)
                for ev in ep.h3.handle_event(raw):
                    got.on_event(ev)
                if ep.quic.closed is not None:
                    conn.close(ep.quic.closed.code, ep.quic.closed.phrase)
                    raise QuicctlError(f"the server broke HTTP/3: {ep.quic.closed}")
    except TimeoutError:
        done = sum(d.done for d in got.by_stream.values())
        raise QuicctlError(
            f"no data for {timeout:g} s ({done} of {len(paths)} answers complete)"
        ) from None
    finally:
        got.close()
        conn.settimeout(None)
    return list(got.by_stream.values())


def close(conn: QuicConnection) -> None:
    """End an h3 connection the way RFC 9114 Section 8.1 asks: H3_NO_ERROR."""
    conn.close(H3_NO_ERROR)
