"""hq-interop (the QUIC interop runner's HTTP/0.9): the `quicctl server`/`client` protocol.

On each bidirectional stream the client sends ``GET /path\\r\\n`` and FIN; the server answers
with the file's bytes and FIN.  The kernel carries the connection (:mod:`quicctl.connection`).
:class:`HqServer` serves each connection by its negotiated ALPN: hq-interop here, h3 through
:mod:`quicctl.h3`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from quicctl.connection import QuicConnection, QuicServer, connect
from quicctl.errors import HandshakeError, PeerClosedError, QuicctlError

ALPN = "hq-interop"
H3 = "h3"
H3_NO_ERROR = 0x100  # RFC 9114 Section 8.1: the close code of a normal HTTP/3 end
MAX_REQUEST = 4096


def parse_request(data: bytes) -> str:
    """The path of a ``GET /path`` request; ValueError when it is not one."""
    line = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode("ascii", "strict")
    method, _, path = line.partition(" ")
    if method != "GET" or not path.startswith("/"):
        raise ValueError(f"not an hq-interop request: {line[:60]!r}")
    return path.strip()


def resolve(root: Path, path: str) -> Path | None:
    """The file under ``root`` for a request path, or None (outside root or missing)."""
    target = (root / path.lstrip("/")).resolve()
    if target != root and root not in target.parents:
        return None
    return target if target.is_file() else None


class HqServer:
    """Serves files under ``root`` to every connection, one thread per connection."""

    def __init__(
        self,
        server: QuicServer,
        root: Path,
        log: Callable[[str], None] = print,
        handshake_timeout: float = 30.0,
    ):
        self.server = server
        self.handshake_timeout = handshake_timeout
        self.root = root.resolve()
        self.log = log
        self._stop = threading.Event()
        if H3 in server.alpns:
            # aioquic's h3 layer is slow to import where Python is slow: not while a client's
            # new connection waits for its first answer
            from quicctl import h3  # noqa: F401

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                sock, addr = self.server.accept_socket()
            except OSError:
                if self._stop.is_set():
                    return
                raise
            threading.Thread(target=self._connection, args=(sock, addr), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.server.close()

    def _connection(self, sock, addr) -> None:
        try:
            conn = self.server.handshake(sock, self.handshake_timeout)
        except HandshakeError as exc:
            self.log(f"client {addr[0]} port {addr[1]}: {exc}")
            return
        with conn:
            try:
                if conn.alpn == H3:
                    from quicctl import h3

                    h3.serve_connection(conn, self.root, self._client_log(addr))
                else:
                    self._requests(conn)
            except PeerClosedError as exc:
                if not exc.clean:
                    self.log(f"client {addr[0]} port {addr[1]}: {exc}")
            except OSError as exc:
                self.log(f"client {addr[0]} port {addr[1]}: {exc}")

    def _client_log(self, addr) -> Callable[[str], None]:
        return lambda msg: self.log(f"client {addr[0]} port {addr[1]}: {msg}")

    def _requests(self, conn: QuicConnection) -> None:
        pending: dict[int, bytearray] = {}
        while True:
            sid, data, fin = conn.recv()
            if sid < 0:
                continue
            buf = pending.setdefault(sid, bytearray())
            buf += data
            if len(buf) > MAX_REQUEST:
                conn.close(0x1, "request too long")
                return
            if fin:
                del pending[sid]
                self._answer(conn, sid, bytes(buf))

    def _answer(self, conn: QuicConnection, sid: int, request: bytes) -> None:
        try:
            path = parse_request(request)
        except ValueError:
            conn.sendall(b"", sid)
            return
        target = resolve(self.root, path)
        if target is None:
            conn.sendall(b"", sid)  # hq-interop has no status codes: an empty answer
            return
        conn.sendall(target.read_bytes(), sid)


@dataclass
class Download:
    path: str
    stream_id: int
    out: Path | None
    size: int = 0
    done: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0
    status: int | None = None  # HTTP status (h3); hq-interop has none
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)

    @property
    def mbps(self) -> float:
        secs = max(self.finished - self.started, 1e-6)
        return self.size * 8 / secs / 1e6


def request(path: str) -> bytes:
    """The hq-interop request for ``path``."""
    return f"GET {path}\r\n".encode()


def fetch(
    conn: QuicConnection,
    paths: list[str],
    outdir: Path | None,
    progress: Callable[[Download, int], None] | None = None,
    sent: dict[str, int] | None = None,
) -> list[Download]:
    """Request every path on its own stream of ``conn`` and read all answers.  ``sent``: the
    stream of each path whose request already went (as 0-RTT early data)."""
    downloads: dict[int, Download] = {}
    files = {}
    for path in paths:
        sid = sent[path] if sent and path in sent else conn.open_stream()
        out = outdir / (path.strip("/").replace("/", "_") or "index") if outdir else None
        d = Download(path, sid, out)
        downloads[sid] = d
        if out:
            files[sid] = open(out, "wb")  # noqa: SIM115 - closed below
        if not sent or path not in sent:
            conn.send(request(path), sid, fin=True)
    try:
        left = len(downloads)
        while left:
            sid, data, fin = conn.recv(1 << 20)
            d = downloads.get(sid)
            if d is None:
                raise QuicctlError(f"data on stream {sid}, which no request opened")
            d.size += len(data)
            d.sha256.update(data)
            if sid in files:
                files[sid].write(data)
            if progress:
                progress(d, len(data))
            if fin and not d.done:
                d.done, d.finished = True, time.monotonic()
                left -= 1
    finally:
        for f in files.values():
            f.close()
    return list(downloads.values())


def client(host: str, port: int, paths: list[str], *, outdir: Path | None, **connect_kw):
    conn = connect(host, port, **connect_kw)
    with conn:
        return fetch(conn, paths, outdir)


def make_file(path: Path, size: int, seed: int = 0) -> str:
    """A file of ``size`` pseudo-random bytes; returns its SHA-256."""
    h = hashlib.sha256()
    rnd = __import__("random").Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            chunk = rnd.randbytes(n) if hasattr(rnd, "randbytes") else os.urandom(n)
            f.write(chunk)
            h.update(chunk)
            left -= n
    return h.hexdigest()
