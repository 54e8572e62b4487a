"""QUIC connections through the kernel module, from Python.

The handshake runs here (gnutls via :mod:`quicctl.tls`), moving CRYPTO bytes, secrets and
transport parameters between TLS and the socket exactly as linux-quic-abi.md section 5 says;
everything else (packets, ACKs, retransmission, streams) is the kernel's.  The result is a
:class:`QuicConnection` around a real socket: its ``fileno()`` works with selectors and asyncio.

    conn = quicctl.connect("127.0.0.1", 4433, alpn="hq-interop", cafile="keys/ca.crt")
    sid = conn.send(b"GET /index.html\\r\\n", fin=True)     # opens the next bidi stream
    sid, data, fin = conn.recv(65536)

    server = quicctl.QuicServer("127.0.0.1", 4433, alpn="hq-interop",
                                certfile="keys/cert.crt", keyfile="keys/pkey.key")
    conn = server.accept()

Every failure is a :class:`quicctl.errors.QuicError` kind: NotLoadedError (no quic.ko),
AddressError, HandshakeError (``.alert``), PeerClosedError (``.error_code``, ``.reason``),
QuicTimeoutError, QuicSocketError (``.errno``); see :mod:`quicctl.errors`.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass

from quicctl import abi
from quicctl import tls as _tls
from quicctl.errors import (
    NOT_LOADED_ERRNOS,
    AddressError,
    HandshakeError,
    HandshakeTimeoutError,
    PeerClosedError,
    QuicError,
    QuicTimeoutError,
    from_oserror,
    not_loaded,
)
from quicctl.tls import HandshakeDone, PeerTransportParams, QuicTls, Secret, Send, TlsError

IPPROTO_QUIC = 261
_STREAM_INFO = struct.Struct("=qI4x")  # struct quic_stream_info (16 bytes)
_CLOSE = struct.Struct("=IB3x64s")  # struct quic_connection_close (72 bytes)
_RECV_CHUNK = 65536


@dataclass
class CloseInfo:
    errcode: int
    frame: int
    phrase: str

    @classmethod
    def from_bytes(cls, data: bytes) -> CloseInfo:
        data = data.ljust(_CLOSE.size, b"\0")[: _CLOSE.size]
        code, frame, phrase = _CLOSE.unpack(data)
        return cls(code, frame, phrase.split(b"\0", 1)[0].decode(errors="replace"))

    def describe(self) -> str:
        if self.errcode >= 0x100 and self.errcode < 0x200:
            from quicctl.tls import alert_name

            what = f"CRYPTO_ERROR {alert_name(self.errcode - 0x100)}"
        elif not self.errcode and not self.frame and not self.phrase:
            # The kernel reports its idle timeout (RFC 9000 Section 10.1) as a close of zeros.
            what = "error 0x0 (NO_ERROR, or the idle timeout: nothing heard from the peer)"
        else:
            what = f"error 0x{self.errcode:x}"
        return what + (f" ({self.phrase})" if self.phrase else "")

    def error(self) -> PeerClosedError:
        """The exception for this close."""
        return PeerClosedError(
            f"connection closed by the peer: {self.describe()}",
            error_code=self.errcode, frame=self.frame, reason=self.phrase,
        )  # fmt: skip


_TP_STRUCT = "struct quic_transport_param"


@dataclass
class Session:
    """What a client keeps to resume a connection, and send 0-RTT data on the next one
    (linux-quic-abi.md 5.3): the TLS session data (from the server's NewSessionTicket), the
    server's transport parameters (``struct quic_transport_param``, getsockopt TRANSPORT_PARAM
    with remote = 1) and its address validation token (NEW_TOKEN), if any."""

    tls: bytes
    transport_params: bytes
    token: bytes = b""

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"tls": self.tls.hex(), "transport_params": self.transport_params.hex(),
             "token": self.token.hex()}
        ).encode()  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> Session:
        try:
            d = json.loads(data)
            tp = bytes.fromhex(d["transport_params"])
            session = cls(bytes.fromhex(d["tls"]), tp, bytes.fromhex(d.get("token", "")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QuicError(f"not a saved QUIC session ({exc.__class__.__name__}: {exc})") from None
        if not session.tls or len(tp) != abi.struct_size(_TP_STRUCT):
            raise QuicError("not a saved QUIC session (TLS data or transport parameters missing)")
        return session

    def save(self, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.to_bytes())

    @classmethod
    def load(cls, path: str) -> Session:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise QuicError(f"cannot read the session file {path}: {exc.strerror}") from None
        try:
            return cls.from_bytes(data)
        except QuicError as exc:
            raise QuicError(f"{path}: {exc}") from None


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _resolve(host: str, port: int, family: int | None) -> tuple[int, tuple]:
    if not 0 <= port <= 65535:
        raise AddressError(f"port {port} is not a UDP port (0..65535)")
    try:
        infos = socket.getaddrinfo(host, port, family or 0, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressError(f"cannot resolve {host!r}: {getattr(exc, 'strerror', None) or exc} "
                           "(an IPv4 or IPv6 address, or a host name)") from None  # fmt: skip
    if not infos:
        raise AddressError(f"cannot resolve {host!r}")
    fam, _, _, _, addr = infos[0]
    return fam, addr


def quic_socket(family: int, sock_type: int = socket.SOCK_DGRAM) -> socket.socket:
    """A kernel QUIC socket; NotLoadedError when the kernel has no QUIC."""
    try:
        return socket.socket(family, sock_type, IPPROTO_QUIC)
    except OSError as exc:
        if exc.errno in NOT_LOADED_ERRNOS:
            raise not_loaded(exc.errno) from None
        raise from_oserror(exc, "cannot create a QUIC socket") from exc


def _cmsg_handshake(level: int) -> list[tuple[int, int, bytes]]:
    return [(abi.SOL_QUIC, abi.QUIC_HANDSHAKE_INFO, bytes([level]))]


def _cmsg_stream(stream_id: int, flags: int) -> list[tuple[int, int, bytes]]:
    return [(abi.SOL_QUIC, abi.QUIC_STREAM_INFO, _STREAM_INFO.pack(stream_id, flags))]


class _Driver:
    """Runs one handshake on a socket (client after connect(), server after accept())."""

    def __init__(self, sock: socket.socket, tls: QuicTls, deadline: float):
        self.sock = sock
        self.tls = tls
        self.deadline = deadline
        self.done: HandshakeDone | None = None

    def apply(self, events: Iterable) -> None:
        # 5.1 steps 5-6: the EARLY send key before the ClientHello, so that the queued early
        # data leaves in 0-RTT packets coalesced with the Initial (gnutls gives it after).
        events = sorted(
            events, key=lambda ev: not (isinstance(ev, Secret) and ev.level == _tls.EARLY)
        )
        sends = [i for i, ev in enumerate(events) if isinstance(ev, Send)]
        for i, ev in enumerate(events):
            if isinstance(ev, Send):
                more = socket.MSG_MORE if sends and i != sends[-1] else 0
                self.sock.sendmsg([ev.data], _cmsg_handshake(ev.level), socket.MSG_NOSIGNAL | more)
            elif isinstance(ev, Secret):
                abi.setsockopt(
                    self.sock, "CRYPTO_SECRET",
                    send=int(ev.send), level=ev.level, type=ev.cipher_type, secret=ev.secret,
                )  # fmt: skip
            elif isinstance(ev, PeerTransportParams):
                if not self.tls.server:  # the server sets them in its callback
                    abi.setsockopt(self.sock, "TRANSPORT_PARAM_EXT", ev.data)
            elif isinstance(ev, HandshakeDone):
                self.done = ev

    def recv_one(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise QuicTimeoutError("timed out")
        self.sock.settimeout(remaining)
        try:
            data, anc, flags, _ = self.sock.recvmsg(_RECV_CHUNK, socket.CMSG_SPACE(16))
        except TimeoutError:
            raise QuicTimeoutError("timed out") from None
        if flags & abi.MSG_QUIC_NOTIFICATION:
            self.notification(data)
            return
        level = None
        for lvl, typ, payload in anc:
            if lvl == abi.SOL_QUIC and typ == abi.QUIC_HANDSHAKE_INFO and payload:
                level = payload[0]
        if level is None:
            return  # 0.5-RTT stream data before the handshake ends: left for the application
        self.tls.feed(level, data)

    def notification(self, data: bytes) -> None:
        if data and data[0] == abi.QUIC_EVENT_CONNECTION_CLOSE:
            info = CloseInfo.from_bytes(data[1:])
            if 0x100 <= info.errcode < 0x200:
                raise self.tls.peer_alert(info.errcode - 0x100)
            raise HandshakeError(
                f"the peer closed the connection: {info.describe()}", error_code=info.errcode
            )

    def run(self) -> HandshakeDone:
        self.apply(self.tls.step())
        while self.done is None:
            self.recv_one()
            self.apply(self.tls.step())
        return self.done


def _subscribe_close(sock: socket.socket) -> None:
    abi.setsockopt(sock, "EVENT", type=abi.QUIC_EVENT_CONNECTION_CLOSE, on=1)


def _fail_close(sock: socket.socket, err: TlsError | None) -> None:
    """Tell the peer why (CRYPTO_ERROR 0x100+alert where TLS failed), then close."""
    if err is not None:
        from quicctl.tls import alert_name

        phrase = alert_name(err.alert) if err.alert is not None else str(err)
        try:
            abi.setsockopt(
                sock, "CONNECTION_CLOSE", errcode=err.error_code, phrase=phrase[:63].encode()
            )
        except OSError:
            pass
    sock.close()


class QuicConnection:
    """An established QUIC connection: stream send/recv over the kernel socket."""

    def __init__(self, sock: socket.socket, tls: QuicTls, done: HandshakeDone):
        self.sock = sock
        self.alpn = done.alpn
        self.cipher_type = done.cipher_type
        self.resumed = done.resumed
        # the server took our 0-RTT data (no TLS: a connection made elsewhere, or a test's)
        self.early_data_accepted = tls is not None and tls.early_data_accepted
        self.early_streams: list[int] = []  # client: the streams the early data went on
        self._tls = tls

    def session(self, timeout: float = 5.0) -> Session | None:
        """Client: the session to resume this connection later (5.3), once the server's
        NewSessionTicket arrived (waits up to ``timeout``); None if the server sends none."""
        if self._tls is None or self._tls.server:
            return None
        deadline = time.monotonic() + timeout
        while True:
            with self._call("cannot read the session ticket"):
                nst = abi.getsockopt(self.sock, "SESSION_TICKET")
            if nst or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if not nst:
            return None
        self._tls.feed(_tls.APP, nst)
        self._tls.step()
        data = self._tls.session_data()
        if data is None:
            return None
        with self._call("cannot read the server's transport parameters"):
            tp = abi.getsockopt(self.sock, "TRANSPORT_PARAM", remote=1)
            token = abi.getsockopt(self.sock, "TOKEN", 120)
        return Session(data, abi.to_bytes(_TP_STRUCT, tp), token)

    # -- plumbing -------------------------------------------------------------------------
    def fileno(self) -> int:
        return self.sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self.sock.setblocking(flag)

    def settimeout(self, value: float | None) -> None:
        self.sock.settimeout(value)

    def getpeername(self):
        return self.sock.getpeername()

    def getsockname(self):
        return self.sock.getsockname()

    def close(self, errcode: int = 0, phrase: str = "") -> None:
        if self.sock.fileno() >= 0 and (errcode or phrase):
            abi.setsockopt(
                self.sock, "CONNECTION_CLOSE", errcode=errcode, phrase=phrase[:63].encode()
            )
        self.sock.close()
        if self._tls is not None:
            self._tls.close()
            self._tls = None

    def __enter__(self) -> QuicConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _call(self, what: str):
        """Socket calls raise QuicError kinds: PeerClosedError once the connection is closed
        (EPIPE, ENOTCONN, with the peer's code and reason), QuicTimeoutError, QuicSocketError.
        BlockingIOError and InterruptedError stay as they are (non-blocking use)."""
        try:
            yield
        except (BlockingIOError, InterruptedError, QuicError):
            raise
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ENOTCONN):
                try:
                    info = self.close_info()
                except OSError:
                    info = None
                if info is not None:
                    closed = info.error()
                    closed.errno = exc.errno
                    raise closed from exc
            raise from_oserror(exc, what) from exc

    # -- streams --------------------------------------------------------------------------
    def open_stream(self, uni: bool = False) -> int:
        """Open the next local stream (STREAM_OPEN) and return its ID."""
        flags = abi.MSG_QUIC_STREAM_UNI if uni else 0
        with self._call("cannot open a stream"):
            info = abi.getsockopt(self.sock, "STREAM_OPEN", stream_id=-1, stream_flags=flags)
        return info["stream_id"]

    def send(self, data: bytes, stream_id: int = -1, *, fin: bool = False, new: bool = False,
             flags: int = 0) -> int:  # fmt: skip
        """Queue ``data`` on a stream (-1: the active stream, else the next bidi one); returns
        the bytes queued.  ``fin`` ends the stream with this data."""
        sflags = (abi.MSG_QUIC_STREAM_FIN if fin else 0) | (abi.MSG_QUIC_STREAM_NEW if new else 0)
        with self._call(f"cannot send on stream {stream_id}"):
            return self.sock.sendmsg([data], _cmsg_stream(stream_id, sflags), flags)

    def sendall(self, data: bytes, stream_id: int, *, fin: bool = True) -> None:
        """Send all of ``data`` on ``stream_id`` (blocking), ending the stream if ``fin``."""
        view = memoryview(data)
        while len(view) > 0:
            last = fin and len(view) <= 1 << 20
            chunk = view[: 1 << 20]
            n = self.send(chunk, stream_id, fin=last)
            view = view[n:]
        if fin and not data:
            self.send(b"", stream_id, fin=True)

    def recv(self, bufsize: int = _RECV_CHUNK, flags: int = 0) -> tuple[int, bytes, bool]:
        """(stream_id, data, fin) of one read; raises PeerClosedError once the peer closed,
        QuicTimeoutError after the socket's timeout (:meth:`settimeout`)."""
        while True:
            with self._call("cannot receive"):
                data, anc, mflags, _ = self.sock.recvmsg(bufsize, socket.CMSG_SPACE(16), flags)
            if mflags & abi.MSG_QUIC_NOTIFICATION:
                if data and data[0] == abi.QUIC_EVENT_CONNECTION_CLOSE:
                    raise CloseInfo.from_bytes(data[1:]).error()
                continue
            for lvl, typ, payload in anc:
                if lvl == abi.SOL_QUIC and typ == abi.QUIC_STREAM_INFO:
                    sid, sflags = _STREAM_INFO.unpack(payload.ljust(16, b"\0")[:16])
                    return sid, data, bool(sflags & abi.MSG_QUIC_STREAM_FIN)
            if mflags & abi.MSG_QUIC_DATAGRAM:
                continue
            return -1, data, False

    def close_info(self) -> CloseInfo:
        d = abi.getsockopt(self.sock, "CONNECTION_CLOSE")
        return CloseInfo(d["errcode"], d["frame"], d["phrase"].decode(errors="replace"))


def _tls_kwargs(ciphers, keylog) -> dict:
    return {"ciphers": list(ciphers) if ciphers else None, "keylog": keylog}


def connect(
    host: str,
    port: int,
    *,
    alpn: str | Iterable[str],
    cafile: str | None = None,
    insecure: bool = False,
    server_name: str | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    ciphers: Iterable[str] | None = None,
    keylog: str | None = None,
    family: int | None = None,
    sock_type: int = socket.SOCK_DGRAM,
    timeout: float = 30.0,
    bind: tuple | None = None,
    transport_params: dict[str, int] | None = None,
    config: dict[str, int] | None = None,
    psk: tuple[str, bytes] | None = None,
    events: Iterable[int] = (),
    session: Session | None = None,
    early_data: bytes | list[bytes] | None = None,
) -> QuicConnection:
    """Connect to a QUIC server through the kernel and run the TLS handshake.

    ``session``: resume it (from :meth:`QuicConnection.session`).  ``early_data``: with a
    session, sent on the first bidirectional stream (with FIN) before the handshake, in 0-RTT
    packets (a list: one stream each); ``.early_streams`` of the result are their streams.
    A server that rejects 0-RTT gets the data again in 1-RTT packets (the kernel resends it).

    ``psk``: (identity, key) of an external pre-shared key, instead of certificates.
    ``transport_params``: fields of ``struct quic_transport_param`` to advertise instead of the
    kernel's defaults (e.g. ``{"max_data": 65536, "max_stream_data_bidi_local": 16384}``).
    ``config``: fields of ``struct quic_config`` (QUIC_SOCKOPT_CONFIG), set before connecting
    (e.g. ``{"congestion_control_algo": 1}`` for CUBIC).  ``events``: QUIC_EVENT_* numbers to
    subscribe to before the handshake (one may come before it returns)."""
    fam, addr = _resolve(host, port, family)
    alpns = [alpn] if isinstance(alpn, str) else list(alpn)
    sock = quic_socket(fam, sock_type)

    def start() -> QuicTls:
        _subscribe_close(sock)
        for ev in events:
            abi.setsockopt(sock, "EVENT", type=ev, on=1)
        abi.setsockopt(sock, "ALPN", ",".join(alpns))
        if transport_params:
            abi.setsockopt(sock, "TRANSPORT_PARAM", **transport_params)
        if config:
            abi.setsockopt(sock, "CONFIG", **config)
        if bind:
            sock.bind(bind)
        sock.connect(addr)
        if session is not None:  # 5.3: after connect(), before the ClientHello
            abi.setsockopt(sock, "TRANSPORT_PARAM", session.transport_params)
            if session.token:
                abi.setsockopt(sock, "TOKEN", session.token)
        for data in [early_data] if isinstance(early_data, bytes) else early_data or []:
            info = abi.getsockopt(sock, "STREAM_OPEN", stream_id=-1, stream_flags=0)
            early.append(info["stream_id"])
            flags = abi.MSG_QUIC_STREAM_FIN
            sock.sendmsg([data], _cmsg_stream(info["stream_id"], flags), socket.MSG_NOSIGNAL)
        return QuicTls(
            server=False, alpns=alpns, server_name=server_name or host, cafile=cafile,
            certfile=certfile, keyfile=keyfile, insecure=insecure, psk=psk,
            session_data=session.tls if session is not None else None,
            early_data=early_data is not None, **_tls_kwargs(ciphers, keylog),
        )  # fmt: skip

    if early_data is not None and session is None:
        sock.close()
        raise QuicError("early data needs a saved session (0-RTT resumes a connection)")
    early: list[int] = []
    conn = _handshake(sock, start, timeout, f"{host} port {port}")
    conn.early_streams = early
    return conn


def _handshake(
    sock: socket.socket, start: Callable[[], QuicTls], timeout: float, peer: str
) -> QuicConnection:
    """Drive the handshake on ``sock`` with the engine ``start()`` makes (after any socket
    set-up of its own).  On failure the peer gets a CONNECTION_CLOSE (with the TLS alert when
    there is one), the socket and the engine are closed, and the error names ``peer``:
    HandshakeError (with the TLS alert, or the peer's close code), or HandshakeTimeoutError."""
    tls = None
    try:
        tls = start()
        tls.set_local_transport_params(abi.getsockopt(sock, "TRANSPORT_PARAM_EXT"))
        done = _Driver(sock, tls, time.monotonic() + timeout).run()
        sock.settimeout(None)
        return QuicConnection(sock, tls, done)
    except BaseException as exc:
        _fail_close(sock, exc if isinstance(exc, TlsError) else None)
        if tls:
            tls.close()
        if isinstance(exc, TlsError):
            raise HandshakeError(
                f"handshake with {peer} failed: {exc}", alert=exc.alert, error_code=exc.error_code
            ) from exc
        if isinstance(exc, QuicTimeoutError):
            raise HandshakeTimeoutError(
                f"handshake with {peer} timed out after {timeout:g} s (no answer from the peer?)"
            ) from None
        if isinstance(exc, HandshakeError):
            raise HandshakeError(
                f"handshake with {peer} failed: {exc}", error_code=exc.error_code
            ) from exc
        if isinstance(exc, OSError):
            raise HandshakeError(
                f"handshake with {peer} failed: {errno.errorcode.get(exc.errno, '?')} "
                f"{exc.strerror or exc}",
                errno=exc.errno,
            ) from exc
        raise


class QuicServer:
    """A listening QUIC socket; :meth:`accept` returns handshaken connections."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        alpn: str | Iterable[str],
        certfile: str,
        keyfile: str,
        cafile: str | None = None,
        verify_client: bool = False,
        ciphers: Iterable[str] | None = None,
        keylog: str | None = None,
        backlog: int = 128,
        sock_type: int = socket.SOCK_DGRAM,
        reuseport: bool = False,
        transport_params: dict[str, int] | None = None,
        config: dict[str, int] | None = None,
        psk: tuple[str, bytes] | None = None,
        tickets: bool = False,
        early_data: bool = False,
        anti_replay: bool | _tls.AntiReplay = True,
        listener_alpn: bool = True,
    ) -> None:
        """``listener_alpn`` False: the socket gets no ALPN list, so that with listeners of
        other lists on the port it takes the clients none of them offers (TLS still offers
        ``alpn``).  ``tickets``: send NewSessionTickets (sealed with the kernel's
        SESSION_TICKET key) so that clients can resume.  ``early_data``: tickets allow 0-RTT
        and 0-RTT data is accepted when TLS accepts it, each ClientHello once
        (``anti_replay``, see :class:`quicctl.tls.AntiReplay`)."""
        self.alpns = [alpn] if isinstance(alpn, str) else list(alpn)
        self.tickets = tickets or early_data
        self.early_data = early_data
        if isinstance(anti_replay, _tls.AntiReplay):
            self.anti_replay: _tls.AntiReplay | None = anti_replay
        else:
            self.anti_replay = _tls.AntiReplay() if early_data and anti_replay else None
        self.certfile, self.keyfile, self.cafile = certfile, keyfile, cafile
        self.verify_client = verify_client
        self.psk = psk
        self._tls_kwargs = _tls_kwargs(ciphers, keylog)
        for path in (certfile, keyfile) if psk is None else ():
            if not os.path.exists(path):
                raise QuicError(f"cannot serve: {path} does not exist")
        fam, addr = _resolve(host, port, None)
        self.sock = quic_socket(fam, sock_type)
        try:
            if reuseport:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            _subscribe_close(self.sock)
            if listener_alpn:
                abi.setsockopt(self.sock, "ALPN", ",".join(self.alpns))
            if transport_params:  # accept() copies them to each connection
                abi.setsockopt(self.sock, "TRANSPORT_PARAM", **transport_params)
            if config:  # and the configuration (congestion control, ...)
                abi.setsockopt(self.sock, "CONFIG", **config)
            self.sock.bind(addr)
            self.sock.listen(backlog)
        except BaseException as exc:
            self.sock.close()
            if isinstance(exc, OSError):
                raise from_oserror(exc, f"cannot listen on {host} port {port}") from exc
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def getsockname(self):
        return self.sock.getsockname()

    def close(self) -> None:
        """Stop listening (listen(0) also wakes a thread blocked in accept()), then close."""
        try:
            self.sock.listen(0)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> QuicServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def accept_socket(self) -> tuple[socket.socket, tuple]:
        """The kernel's accept(): an ESTABLISHING socket holding the ClientHello."""
        try:
            return self.sock.accept()
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            raise from_oserror(exc, "cannot accept a connection") from exc

    def handshake(self, sock: socket.socket, timeout: float = 30.0) -> QuicConnection:
        """Run the server side of the handshake on an accepted socket."""

        def peer_params(data: bytes) -> bytes:
            abi.setsockopt(sock, "TRANSPORT_PARAM_EXT", data)
            return abi.getsockopt(sock, "TRANSPORT_PARAM_EXT")

        def start() -> QuicTls:
            key = abi.getsockopt(sock, "SESSION_TICKET") if self.tickets else None
            return QuicTls(
                server=True, alpns=self.alpns, certfile=self.certfile, keyfile=self.keyfile,
                cafile=self.cafile, verify_client=self.verify_client,
                on_peer_transport_params=peer_params, psk=self.psk, ticket_key=key,
                early_data=self.early_data, anti_replay=self.anti_replay, **self._tls_kwargs,
            )  # fmt: skip

        return _handshake(sock, start, timeout, "a client")

    def accept(self, timeout: float = 30.0) -> QuicConnection:
        sock, _ = self.accept_socket()
        return self.handshake(sock, timeout)
