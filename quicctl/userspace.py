"""hq-interop and HTTP/3 over a userspace QUIC stack (aioquic), for hosts without quic.ko.

The same protocol as :mod:`quicctl.hq` (``GET /path\\r\\n`` + FIN on each client-initiated
bidirectional stream, answered by the file's bytes + FIN, an empty answer when there is no such
file) with the same results: :func:`fetch` returns :class:`quicctl.hq.Download` objects.  It
backs ``quicctl server/client --userspace`` and is the independent peer of the interop tests
(aioquic client -> kernel server, kernel client -> aioquic server)::

    srv = ServerThread("127.0.0.1", 0, root=Path("www"), certfile="keys/cert.crt",
                       keyfile="keys/pkey.key")
    downloads = fetch("127.0.0.1", srv.port, ["/a", "/b"], cafile="keys/ca.crt")
    srv.close()

With ALPN ``h3`` the same files go over HTTP/3 (aioquic's H3Connection): GET, 200 or 404, the
status in each Download.  The server offers whatever ALPNs it is given and serves each connection
by the one negotiated.

Each call runs its own asyncio loop, so both are plain blocking functions.  Answers are read
from disk in chunks as the connection drains them (flow control and congestion control decide
the pace), and downloads are written to disk as they arrive.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode
from aioquic.tls import AlertDescription, CipherSuite

from quicctl.errors import (
    AddressError,
    HandshakeError,
    HandshakeTimeoutError,
    PeerClosedError,
    QuicctlError,
    QuicError,
    QuicTimeoutError,
)
from quicctl.hq import ALPN, H3, H3_NO_ERROR, MAX_REQUEST, Download, parse_request, resolve

# IANA name -> aioquic suite; the kernel's short names (quicctl.tls.CIPHERS) are aliases.
CIPHERS = {
    "TLS_AES_128_GCM_SHA256": CipherSuite.AES_128_GCM_SHA256,
    "TLS_AES_256_GCM_SHA384": CipherSuite.AES_256_GCM_SHA384,
    "TLS_CHACHA20_POLY1305_SHA256": CipherSuite.CHACHA20_POLY1305_SHA256,
}
_CIPHER_ALIASES = {
    "AES-128-GCM": "TLS_AES_128_GCM_SHA256",
    "AES-256-GCM": "TLS_AES_256_GCM_SHA384",
    "CHACHA20-POLY1305": "TLS_CHACHA20_POLY1305_SHA256",
}

# Receive windows we grant (aioquic's defaults, 1 MiB, throttle a 10 MB transfer).
MAX_DATA = 16 << 20
MAX_STREAM_DATA = 8 << 20
# Server: file bytes read per read(), and how far a stream's queued data may run ahead of what
# has gone on the wire at least once.
CHUNK = 64 << 10
WRITE_AHEAD = 512 << 10
_PUMP_ROUNDS = 16
_POLL = 0.05  # seconds between looks at `stop`
_ICMP_GRACE = 0.1  # seconds an ICMP error waits for queued datagrams to be read
_CLOSE_WAIT = 1.0  # seconds the client lingers for its CONNECTION_CLOSE to be handled

_CERT_ALERTS = {
    AlertDescription.bad_certificate,
    AlertDescription.unsupported_certificate,
    AlertDescription.certificate_revoked,
    AlertDescription.certificate_expired,
    AlertDescription.certificate_unknown,
    AlertDescription.unknown_ca,
}

Log = Callable[[str], None]

# aioquic logs every failed handshake as a warning; our errors say it already, so keep Python's
# last-resort handler from printing them (an application's own logging setup still gets them).
logging.getLogger("quic").addHandler(logging.NullHandler())


# -- configuration ------------------------------------------------------------------------


def cipher_suites(names: Iterable[str] | None) -> list[CipherSuite] | None:
    """aioquic suites for cipher names (``TLS_AES_128_GCM_SHA256`` or ``AES-128-GCM``; a list
    or one comma-separated string), in preference order; None (aioquic's default) for None."""
    if names is None:
        return None
    if isinstance(names, str):
        names = names.split(",")
    suites = []
    for name in names:
        key = name.strip().upper()
        key = _CIPHER_ALIASES.get(key.replace("_", "-"), key)
        if key not in CIPHERS:
            raise QuicctlError(
                f"unknown or unsupported TLS cipher {name!r} for the userspace stack "
                f"(aioquic implements: {', '.join(CIPHERS)})"
            )
        suites.append(CIPHERS[key])
    if not suites:
        raise QuicctlError("no TLS cipher given")
    return suites


def _alpns(alpn: str | Iterable[str]) -> list[str]:
    return [alpn] if isinstance(alpn, str) else list(alpn)


def _open_keylog(keylog: str | os.PathLike | None) -> IO[str] | None:
    """The NSS key log file to append to (default: $SSLKEYLOGFILE), line-buffered and, when
    created here, readable by its owner only (it holds the traffic secrets)."""
    path = os.environ.get("SSLKEYLOGFILE") if keylog is None else keylog
    if not path:
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", buffering=1)
    except OSError as exc:
        raise QuicctlError(f"cannot open key log file {path}: {exc.strerror or exc}") from exc


def _configuration(
    *,
    is_client: bool,
    alpn: str | Iterable[str],
    ciphers,
    keylog_file: IO[str] | None,
    max_data: int = MAX_DATA,
    max_stream_data: int = MAX_STREAM_DATA,
) -> QuicConfiguration:
    config = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=_alpns(alpn),
        max_data=max_data,
        max_stream_data=max_stream_data,
        secrets_log_file=keylog_file,
    )
    config.cipher_suites = cipher_suites(ciphers)
    return config


# -- describing failures ------------------------------------------------------------------


def describe_close(event: events.ConnectionTerminated) -> str:
    """``TLS alert unknown_ca (reason)``, ``transport error PROTOCOL_VIOLATION``, ..."""
    code = event.error_code
    if event.frame_type is None:
        what = f"application error 0x{code:x}" if code else "application close"
    elif QuicErrorCode.CRYPTO_ERROR <= code < QuicErrorCode.CRYPTO_ERROR + 0x100:
        alert = code - QuicErrorCode.CRYPTO_ERROR
        try:
            what = f"TLS alert {AlertDescription(alert).name}"
        except ValueError:
            what = f"TLS alert {alert}"
    else:
        try:
            what = f"transport error {QuicErrorCode(code).name}"
        except ValueError:
            what = f"transport error 0x{code:x}"
    return what + (f" ({event.reason_phrase})" if event.reason_phrase else "")


def _clean_codes(h3: bool) -> tuple[int, ...]:
    """Close codes of a normal end: NO_ERROR, and for HTTP/3 H3_NO_ERROR (RFC 9114 8.1),
    the one to send last."""
    return (QuicErrorCode.NO_ERROR, H3_NO_ERROR) if h3 else (QuicErrorCode.NO_ERROR,)


def _idle(event: events.ConnectionTerminated) -> bool:
    """aioquic's own end of a connection that heard nothing for its idle timeout."""
    return (
        event.error_code == QuicErrorCode.INTERNAL_ERROR and event.reason_phrase == "Idle timeout"
    )


def _alert(event: events.ConnectionTerminated) -> int | None:
    code = event.error_code
    if event.frame_type is not None and 0x100 <= code < 0x200:
        return code - 0x100
    return None


# -- server -------------------------------------------------------------------------------


@dataclass
class _Response:
    file: IO[bytes]
    written: int = 0  # stream bytes queued (file bytes, plus HTTP/3 framing for h3)


class _CountingQuic:
    """The aioquic connection as H3Connection sees it, counting the bytes queued per stream
    (the server's write-ahead compares them with what went on the wire)."""

    def __init__(self, quic: QuicConnection) -> None:
        self._inner = quic
        self.queued: dict[int, int] = {}

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self._inner.send_stream_data(stream_id, data, end_stream)
        self.queued[stream_id] = self.queued.get(stream_id, 0) + len(data)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


class _ServerProtocol(QuicConnectionProtocol):
    """One connection: answers requests, pumping files into the streams as they drain."""

    def __init__(self, quic: QuicConnection, stream_handler=None, *, hub: _Hub) -> None:
        super().__init__(quic, stream_handler)
        self._hub = hub
        self._peer: tuple | None = None
        self._ended = False
        self._requests: dict[int, bytearray] = {}
        self._responses: dict[int, _Response] = {}
        self._h3 = None  # H3Connection once the handshake chose h3
        self._h3_quic: _CountingQuic | None = None
        hub.protocols.add(self)

    # -- events ---------------------------------------------------------------------------
    def datagram_received(self, data, addr) -> None:
        if self._peer is None:
            self._peer = addr
        super().datagram_received(data, addr)
        # the reason is known now; aioquic's ConnectionTerminated only comes 3 PTO later
        close = getattr(self._quic, "_close_event", None)
        if close is not None:
            self._end(close)

    def _end(self, close: events.ConnectionTerminated) -> None:
        if self._ended:
            return
        self._ended = True
        if close.error_code not in _clean_codes(self._h3 is not None):
            self._log(f"connection failed: {describe_close(close)}")

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if self._h3 is not None and isinstance(
            event, (events.StreamDataReceived, events.StreamReset, events.StopSendingReceived)
        ):
            self._on_h3(event)
        elif isinstance(event, events.StreamDataReceived):
            self._on_data(event)
        elif isinstance(event, events.HandshakeCompleted):
            self._hub.versions.append(self._quic._version)
            if event.alpn_protocol == H3:
                from aioquic.h3.connection import H3Connection

                self._h3_quic = _CountingQuic(self._quic)
                self._h3 = H3Connection(self._h3_quic)
        elif isinstance(event, events.StopSendingReceived):
            self._drop(event.stream_id)  # aioquic has reset the stream already
        elif isinstance(event, events.StreamReset):
            self._requests.pop(event.stream_id, None)
        elif isinstance(event, events.ConnectionTerminated):
            self._end(event)
            self.release()

    def _log(self, msg: str) -> None:
        where = f"client {self._peer[0]} port {self._peer[1]}" if self._peer else "a client"
        self._hub.log(f"{where}: {msg}")

    def _on_data(self, event: events.StreamDataReceived) -> None:
        sid = event.stream_id
        if sid & 0x3:  # requests come on client-initiated bidirectional streams only
            return
        buf = self._requests.setdefault(sid, bytearray())
        buf += event.data
        if len(buf) > MAX_REQUEST:
            self._log(f"request on stream {sid} longer than {MAX_REQUEST} bytes: closing")
            self.release()
            self._quic.close(error_code=0x1, reason_phrase="request too long")
            return
        if event.end_stream:
            del self._requests[sid]
            self._answer(sid, bytes(buf))

    def _answer(self, sid: int, request: bytes) -> None:
        target = None
        try:
            target = resolve(self._hub.root, parse_request(request))
        except ValueError as exc:
            self._log(f"stream {sid}: {exc}")
        if target is not None:
            try:
                self._responses[sid] = _Response(open(target, "rb"))  # noqa: SIM115
                return
            except OSError as exc:
                self._log(f"stream {sid}: cannot read {target}: {exc.strerror or exc}")
        self._quic.send_stream_data(sid, b"", end_stream=True)  # hq-interop: empty answer

    def _on_h3(self, event: events.QuicEvent) -> None:
        from aioquic.h3.events import HeadersReceived

        if isinstance(event, events.StopSendingReceived):
            self._drop(event.stream_id)
        for ev in self._h3.handle_event(event):
            if isinstance(ev, HeadersReceived) and ev.push_id is None:
                self._answer_h3(ev.stream_id, dict(ev.headers))

    def _answer_h3(self, sid: int, headers: dict[bytes, bytes]) -> None:
        path = headers.get(b":path", b"").decode("utf-8", "replace").split("?", 1)[0]
        status, target = b"404", None
        if headers.get(b":method") != b"GET":
            status = b"405"
        elif path.startswith("/"):
            target = resolve(self._hub.root, path)
        if target is not None:
            try:
                f = open(target, "rb")  # noqa: SIM115 - closed by _drop()
            except OSError as exc:
                self._log(f"stream {sid}: cannot read {target}: {exc.strerror or exc}")
                status, target = b"500", None
        if target is None:
            self._h3.send_headers(
                sid, [(b":status", status), (b"content-length", b"0")], end_stream=True
            )
            return
        size = os.fstat(f.fileno()).st_size
        self._h3.send_headers(sid, [(b":status", b"200"), (b"content-length", str(size).encode())])
        self._responses[sid] = _Response(f, self._h3_quic.queued.get(sid, 0))

    def _send_body(self, sid: int, resp: _Response, chunk: bytes, fin: bool) -> None:
        if self._h3 is None:
            self._quic.send_stream_data(sid, chunk, end_stream=fin)
            resp.written += len(chunk)
        else:
            self._h3.send_data(sid, chunk, end_stream=fin)
            resp.written = self._h3_quic.queued[sid]

    def _drop(self, sid: int) -> None:
        resp = self._responses.pop(sid, None)
        if resp is not None:
            resp.file.close()

    def release(self) -> None:
        """Close every file still being sent (the connection is over)."""
        for sid in list(self._responses):
            self._drop(sid)
        self._requests.clear()
        self._hub.protocols.discard(self)

    # -- sending --------------------------------------------------------------------------
    def transmit(self) -> None:
        for _ in range(_PUMP_ROUNDS):
            self._pump()
            super().transmit()
            if not self._starved():
                break

    def _sent(self, sid: int) -> int | None:
        """Bytes of the stream that went on the wire at least once (None: unknown).

        aioquic has no public send-buffer level; its stream sender keeps ``highest_offset``.
        """
        stream = getattr(self._quic, "_streams", {}).get(sid)
        return getattr(getattr(stream, "sender", None), "highest_offset", None)

    def _starved(self) -> bool:
        """True when some stream sent everything queued: the connection could take more."""
        return any(self._sent(sid) == r.written for sid, r in self._responses.items())

    def _pump(self) -> None:
        for sid, resp in list(self._responses.items()):
            while True:
                sent = self._sent(sid)
                if sent is not None and resp.written - sent >= WRITE_AHEAD:
                    break
                chunk = resp.file.read(CHUNK)
                fin = len(chunk) < CHUNK  # a short read of a regular file is its end
                self._send_body(sid, resp, chunk, fin)
                if fin:
                    self._drop(sid)
                    break


class _Hub:
    """What every connection of one server shares."""

    def __init__(self, root: Path, log: Log) -> None:
        self.root = root
        self.log = log
        self.protocols: set[_ServerProtocol] = set()
        self.versions: list[int] = []  # QUIC version of each completed handshake

    def protocol(self, quic: QuicConnection, stream_handler=None) -> _ServerProtocol:
        return _ServerProtocol(quic, stream_handler, hub=self)


def _load_cert_chain(config: QuicConfiguration, certfile, keyfile) -> None:
    try:
        config.load_cert_chain(certfile, keyfile)
        return
    except (ValueError, TypeError) as exc:
        error = exc
    # certtool can write a P-256 private key as 33 bytes (a leading zero, as for an INTEGER;
    # RFC 5915 wants exactly 32: keys/pkey.key is one), which OpenSSL reads and recent
    # `cryptography` refuses: load such a key through OpenSSL (pyOpenSSL, an aioquic dependency).
    from OpenSSL import crypto

    try:
        with open(keyfile, "rb") as f:
            key = crypto.load_privatekey(crypto.FILETYPE_PEM, f.read())
        config.load_cert_chain(certfile)
        config.private_key = key.to_cryptography_key()
    except (OSError, ValueError, TypeError, crypto.Error):
        raise QuicctlError(
            f"cannot serve: cannot load certificate {certfile} with key {keyfile}: "
            + str(error).splitlines()[0]
        ) from error


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


async def _serve(
    host: str,
    port: int,
    config: QuicConfiguration,
    hub: _Hub,
    on_listening: Callable[[int], None] | None,
    stop: threading.Event | None,
    retry: bool = False,
    session_tickets: bool = False,
) -> None:
    loop = asyncio.get_running_loop()
    tickets: dict[bytes, object] = {}  # single use: a ticket is taken out when it is used
    ticket_kw = (
        {"session_ticket_handler": lambda t: tickets.__setitem__(t.ticket, t),
         "session_ticket_fetcher": lambda label: tickets.pop(label, None)}
        if session_tickets else {}
    )  # fmt: skip
    try:
        transport, server = await loop.create_datagram_endpoint(
            lambda: QuicServer(
                configuration=config, create_protocol=hub.protocol, retry=retry, **ticket_kw
            ),
            local_addr=(host, port),
        )
    except OSError as exc:
        hint = " (another server on that UDP port?)" if exc.errno == errno.EADDRINUSE else ""
        raise QuicctlError(
            f"cannot listen on {host} port {port}: {exc.strerror or exc}{hint}"
        ) from exc
    try:
        if on_listening is not None:
            on_listening(transport.get_extra_info("sockname")[1])
        while not _stopped(stop):
            await asyncio.sleep(_POLL)
    finally:
        protocols = list(hub.protocols)
        for proto in protocols:
            proto.close(reason_phrase="server stopped")  # CONNECTION_CLOSE to every client
        server.close()  # then the socket
        for proto in protocols:
            proto.release()


def serve(
    host: str,
    port: int,
    *,
    root: Path,
    certfile: str | os.PathLike,
    keyfile: str | os.PathLike,
    alpn: str | Iterable[str] = ALPN,
    ciphers: Iterable[str] | None = None,
    keylog: str | os.PathLike | None = None,
    on_listening: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    log: Log | None = None,
    versions: list[int] | None = None,
    retry: bool = False,
    session_tickets: bool = False,
) -> None:
    """Serve the files under ``root`` over hq-interop and/or h3 (``alpn``: each connection by
    the one it negotiated) on UDP ``host``:``port`` (0: any port) until ``stop`` is set or
    Ctrl-C; many connections at once, each request on its stream.

    ``on_listening(port)`` is called once the socket is bound.  ``keylog``: append TLS secrets
    in NSS key log format to this file (default: $SSLKEYLOGFILE).  ``log`` gets one line per
    failed connection or refused request (default: stderr).  ``versions``, if given, gets the
    QUIC version of each connection once its handshake completes.  ``retry``: validate each
    client's address with a Retry first (RFC 9000 Section 8.1.2).  ``session_tickets``: issue
    session tickets (kept in memory, each usable once) so that clients can resume, with 0-RTT.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise QuicctlError(f"cannot serve {root}: not a directory")
    for path in (certfile, keyfile):
        if not os.path.isfile(path):
            raise QuicctlError(f"cannot serve: {path} does not exist")
    if log is None:

        def log(msg: str) -> None:
            print(f"quicctl server: {msg}", file=sys.stderr, flush=True)

    keylog_file = _open_keylog(keylog)
    try:
        config = _configuration(
            is_client=False, alpn=alpn, ciphers=ciphers, keylog_file=keylog_file
        )
        _load_cert_chain(config, certfile, keyfile)
        try:
            hub = _Hub(root, log)
            if versions is not None:
                hub.versions = versions
            asyncio.run(_serve(host, port, config, hub, on_listening, stop, retry, session_tickets))
        except KeyboardInterrupt:
            pass
    finally:
        if keylog_file is not None:
            keylog_file.close()


class ServerThread:
    """:func:`serve` in a background thread: ``.port`` once listening, ``.close()`` to stop.

    ``host``/``port`` and keywords as for :func:`serve`; an error while starting (port in use,
    bad certificate) is raised here.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 10.0, **serve_kw
    ) -> None:
        self.host = host
        self.port: int | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(host, port),
            kwargs=serve_kw,
            name="quicctl-userspace-server",
            daemon=True,
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.close()
            raise QuicctlError(
                f"userspace server on {host} port {port}: not listening after {timeout:g} s"
            )
        if self.error is not None:
            raise self.error

    def _run(self, host: str, port: int, **serve_kw) -> None:
        try:
            serve(host, port, on_listening=self._listening, stop=self._stop, **serve_kw)
        except BaseException as exc:  # handed to the thread that started us
            self.error = exc
        finally:
            self._ready.set()

    def _listening(self, port: int) -> None:
        self.port = port
        self._ready.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving (clients get a CONNECTION_CLOSE) and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- client -------------------------------------------------------------------------------


class _ClientProtocol(QuicConnectionProtocol):
    """Requests paths and collects the answers into :class:`Download` objects."""

    def __init__(self, quic: QuicConnection, progress=None) -> None:
        super().__init__(quic)
        self.downloads: dict[int, Download] = {}
        self.files: dict[int, IO[bytes]] = {}
        self.progress = progress
        self.connected = False
        self.left = 0
        self.terminated: events.ConnectionTerminated | None = None
        self.closing: events.ConnectionTerminated | None = None
        self.failure: QuicctlError | OSError | None = None
        self.changed = asyncio.Event()
        self._h3 = None  # H3Connection once the handshake chose h3

    def request(self, path: str, outdir: Path | None) -> None:
        sid = self._quic.get_next_available_stream_id()
        out = outdir / (path.strip("/").replace("/", "_") or "index") if outdir else None
        self.downloads[sid] = Download(path, sid, out)
        self.left += 1
        if out:
            self.files[sid] = open(out, "wb")  # noqa: SIM115 - closed by close_files()
        if self._h3 is not None:
            from quicctl.h3 import request_headers

            authority = self._quic.configuration.server_name or ""
            self._h3.send_headers(sid, request_headers(authority, path), end_stream=True)
        else:
            self._quic.send_stream_data(sid, f"GET {path}\r\n".encode(), end_stream=True)

    def close_files(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()

    @property
    def is_h3(self) -> bool:
        return self._h3 is not None

    @property
    def ended(self) -> events.ConnectionTerminated | None:
        """Why the connection is over or closing (either side's CONNECTION_CLOSE)."""
        return self.terminated or self.closing

    def datagram_received(self, data, addr) -> None:
        super().datagram_received(data, addr)
        # aioquic reports a close only when the closing/draining period (3 PTO) is over; its
        # reason is known as soon as the CONNECTION_CLOSE went or came, so act on it now.
        if self.closing is None and self.terminated is None:
            self.closing = getattr(self._quic, "_close_event", None)
            if self.closing is not None:
                self.changed.set()

    def error_received(self, exc: OSError) -> None:
        """ICMP errors on the connected socket (port unreachable: ECONNREFUSED).

        Linux reports one ahead of the datagrams already queued, among them perhaps the
        peer's CONNECTION_CLOSE that says why it went away: it counts only if nothing ended
        the connection in the meantime."""
        self._loop.call_later(_ICMP_GRACE, self._icmp_error, exc)

    def _icmp_error(self, exc: OSError) -> None:
        if self.failure is None and self.ended is None:
            self.failure = exc
            self.changed.set()

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            self.connected = True
            if event.alpn_protocol == H3:
                from aioquic.h3.connection import H3Connection

                self._h3 = H3Connection(self._quic)
        elif self._h3 is not None and isinstance(
            event, (events.StreamDataReceived, events.StreamReset)
        ):
            self._on_h3(event)
        elif isinstance(event, events.StreamDataReceived):
            self._on_data(event)
        elif isinstance(event, events.StreamReset):
            d = self.downloads.get(event.stream_id)
            what = d.path if d else f"stream {event.stream_id}"
            self._fail(f"the server reset the answer to {what} (error 0x{event.error_code:x})")
        elif isinstance(event, events.ConnectionTerminated):
            self.terminated = event
        else:
            return
        self.changed.set()

    def _fail(self, msg: str) -> None:
        if self.failure is None:
            self.failure = QuicctlError(msg)

    def _on_data(self, event: events.StreamDataReceived) -> None:
        self._body(event.stream_id, event.data, event.end_stream)

    def _body(self, sid: int, data: bytes, end: bool) -> None:
        d = self.downloads.get(sid)
        if d is None:
            self._fail(f"data on stream {sid}, which no request opened")
            return
        d.size += len(data)
        d.sha256.update(data)
        f = self.files.get(sid)
        if f is not None:
            f.write(data)
        if self.progress:
            self.progress(d, len(data))
        if end and not d.done:
            d.done, d.finished = True, time.monotonic()
            self.left -= 1

    def _on_h3(self, event: events.QuicEvent) -> None:
        from aioquic.h3.events import DataReceived, HeadersReceived

        if isinstance(event, events.StreamReset) and event.stream_id in self.downloads:
            path = self.downloads[event.stream_id].path
            self._fail(f"the server reset the answer to {path} (error 0x{event.error_code:x})")
        for ev in self._h3.handle_event(event):
            if isinstance(ev, DataReceived) and ev.push_id is None:
                self._body(ev.stream_id, ev.data, ev.stream_ended)
            elif isinstance(ev, HeadersReceived) and ev.push_id is None:
                d = self.downloads.get(ev.stream_id)
                if d is not None and d.status is None:
                    status = dict(ev.headers).get(b":status", b"")
                    d.status = int(status) if status.isdigit() else 0
                self._body(ev.stream_id, b"", ev.stream_ended)

    async def until(self, cond: Callable[[], bool], timeout: float) -> bool:
        """Wait for ``cond()`` or a failure; False when ``timeout`` passed with no change."""
        while not cond():
            if self.failure is not None or self.ended is not None:
                return True
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout)
            except asyncio.TimeoutError:
                return False
        return True


class _Client:
    """One :func:`fetch`: the host, port and settings its error messages name."""

    def __init__(self, host: str, port: int, config: QuicConfiguration, cafile, timeout) -> None:
        self.host, self.port = host, port
        self.config = config
        self.cafile = cafile
        self.timeout = timeout

    def where(self) -> str:
        return f"{self.host} port {self.port}"

    def handshake_error(self, proto: _ClientProtocol) -> QuicError:
        """HandshakeError (with the peer's alert and close code), or HandshakeTimeoutError."""
        head = f"handshake with {self.where()} failed: "
        ev = proto.ended
        if isinstance(proto.failure, QuicctlError):
            return HandshakeError(head + str(proto.failure))
        if ev is not None and not _idle(ev):
            return HandshakeError(
                head + describe_close(ev) + self._hint(ev), alert=_alert(ev),
                error_code=ev.error_code,
            )  # fmt: skip
        if isinstance(proto.failure, ConnectionRefusedError):
            return HandshakeError(
                head + f"connection refused (nothing listens on UDP port {self.port}?)",
                errno=proto.failure.errno,
            )
        if proto.failure is not None:
            return HandshakeError(head + (proto.failure.strerror or str(proto.failure)),
                                  errno=getattr(proto.failure, "errno", None))  # fmt: skip
        return HandshakeTimeoutError(
            head + f"no answer within {self.timeout:g} s (is a QUIC server listening there? "
            "UDP filtered?)"
        )

    def _hint(self, ev: events.ConnectionTerminated) -> str:
        alert = _alert(ev)
        if alert in _CERT_ALERTS:
            ca = self.cafile or "the system CAs"
            return (
                f": the server certificate does not verify with {ca} for the name "
                f"{self.config.server_name!r} (wrong CA file or server name?)"
            )
        if alert == AlertDescription.no_application_protocol:
            offered = ", ".join(self.config.alpn_protocols or [])
            return f": no common ALPN (we offer {offered}; the server accepts none of it)"
        if alert == AlertDescription.handshake_failure and self.config.cipher_suites:
            names = ", ".join(s.name for s in self.config.cipher_suites)
            return f": no common TLS cipher? (we offer {names})"
        return ""

    def transfer_error(self, proto: _ClientProtocol) -> QuicctlError:
        """PeerClosedError (code, frame, reason), QuicTimeoutError or QuicError."""
        head = f"{self.where()}: "
        done = len(proto.downloads) - proto.left
        progress = f" ({done} of {len(proto.downloads)} answers complete)"
        if isinstance(proto.failure, QuicctlError):
            return QuicctlError(head + str(proto.failure) + progress)
        ev = proto.ended
        if ev is not None:
            return PeerClosedError(
                head + "connection closed before all answers arrived: " + describe_close(ev)
                + progress, error_code=ev.error_code, frame=ev.frame_type or 0,
                reason=ev.reason_phrase,
            )  # fmt: skip
        if isinstance(proto.failure, ConnectionRefusedError):
            return QuicError(head + "the server went away (connection refused)" + progress,
                             errno=proto.failure.errno)  # fmt: skip
        if proto.failure is not None:
            return QuicError(head + (proto.failure.strerror or str(proto.failure)) + progress,
                             errno=getattr(proto.failure, "errno", None))  # fmt: skip
        return QuicTimeoutError(head + f"no data for {self.timeout:g} s" + progress)

    async def run(self, paths: list[str], outdir: Path | None, progress) -> list[Download]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise AddressError(f"cannot resolve {self.host!r}: {exc.strerror}") from exc
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.connect(addr)  # connected: ICMP port unreachable comes back as ECONNREFUSED
        except OSError as exc:
            sock.close()
            raise HandshakeError(f"cannot reach {self.where()}: {exc.strerror or exc}") from exc
        quic = QuicConnection(configuration=self.config)
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _ClientProtocol(quic, progress), sock=sock
        )
        try:
            proto.connect(addr)
            await proto.until(lambda: proto.connected, self.timeout)
            if not proto.connected:
                raise self.handshake_error(proto)
            for path in paths:
                proto.request(path, outdir)
            proto.transmit()
            while proto.left:
                if not await proto.until(lambda: not proto.left, self.timeout):
                    raise self.transfer_error(proto)
                if proto.left and (proto.failure or proto.ended):
                    raise self.transfer_error(proto)
            if proto.failure is not None:
                raise self.transfer_error(proto)
            return list(proto.downloads.values())
        finally:
            proto.close_files()
            proto.close(error_code=_clean_codes(proto.is_h3)[-1])
            if proto.connected and proto.ended is None and proto.failure is None:
                # linger while the CONNECTION_CLOSE may need sending again (RFC 9000 10.2.1)
                try:
                    await asyncio.wait_for(proto.wait_closed(), _CLOSE_WAIT)
                except asyncio.TimeoutError:
                    pass
            transport.close()


def fetch(
    host: str,
    port: int,
    paths: Iterable[str],
    *,
    outdir: Path | None = None,
    cafile: str | os.PathLike | None = None,
    insecure: bool = False,
    server_name: str | None = None,
    alpn: str | Iterable[str] = ALPN,
    ciphers: Iterable[str] | None = None,
    keylog: str | os.PathLike | None = None,
    timeout: float = 60,
    progress: Callable[[Download, int], None] | None = None,
    max_data: int = MAX_DATA,
    max_stream_data: int = MAX_STREAM_DATA,
) -> list[Download]:
    """Download every path on its own stream of one connection to ``host``:``port``.

    Results as :func:`quicctl.hq.fetch`, in request order; an unknown path is a Download of
    size 0.  The server certificate is verified against ``cafile`` (system CAs when None) for
    ``server_name`` (default ``host``) unless ``insecure``.  ``timeout`` bounds the handshake
    and any pause of the transfer.  ``keylog``: append TLS secrets in NSS key log format to
    this file (default: $SSLKEYLOGFILE).  ``max_data``/``max_stream_data``: the receive windows
    advertised (initial_max_data, initial_max_stream_data_*).  Raises QuicError kinds or
    QuicctlError.
    """
    paths = list(paths)
    if cafile is not None and not os.path.isfile(cafile):
        raise QuicctlError(f"CA file {cafile} does not exist")
    if outdir is not None:
        outdir = Path(outdir)
    keylog_file = _open_keylog(keylog)
    try:
        config = _configuration(
            is_client=True,
            alpn=alpn,
            ciphers=ciphers,
            keylog_file=keylog_file,
            max_data=max_data,
            max_stream_data=max_stream_data,
        )
        config.server_name = server_name or host
        config.verify_mode = ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED
        if cafile is not None:
            config.load_verify_locations(cafile=os.fspath(cafile))
        client = _Client(host, port, config, cafile, timeout)
        return asyncio.run(client.run(paths, outdir, progress))
    finally:
        if keylog_file is not None:
            keylog_file.close()
