"""The handshake agent (``quicctl agent``): kernel services hand their QUIC sockets to it through
net/handshake (the ``handshake`` generic netlink family, as they would to tlshd), it runs the
TLS 1.3 handshake on each as the ABI reference's Section 5 prescribes, and reports the outcome.

Per request: ACCEPT installs the socket here as a descriptor; the agent checks it is QUIC (it
declines anything else with EOPNOTSUPP), reads the ALPN list and transport parameters the service
set on it, runs the client or server side with the credentials of its configuration, and sends
DONE with the status.  The socket stays the service's: the agent only drops its descriptor.
Several handshakes run at once, one thread each.  x509 credentials come from a tlshd-style
file (:class:`Config`), or by key serial when the service names a certificate and private key
(their payloads PEM or DER; they take precedence over the file).  A PSK comes by key
serial (net/handshake's PSK mode): the key's description is the identity, its payload the key;
the client offers the first the service named, the server accepts the one it named, and DONE
names the PSK used.
"""

from __future__ import annotations

import base64
import configparser
import errno
import os
import select
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from quicctl.agent import genl, handshake
from quicctl.agent.genl import NetlinkError
from quicctl.errors import QuicctlError

IPPROTO_QUIC = 261
SO_PROTOCOL = 38

Log = Callable[[str], None]


@dataclass
class Side:
    """Credentials of one side (``[authenticate.client]`` or ``[authenticate.server]``)."""

    truststore: str | None = None  # CA file to verify the peer with
    certificate: str | None = None
    private_key: str | None = None
    scratch: str | None = None  # a private directory holding the two above, removed after use


@dataclass
class Config:
    client: Side
    server: Side

    @classmethod
    def load(cls, path: str | None, **override: str | None) -> Config:
        """tlshd.conf's keys (``x509.truststore``, ``x509.certificate``, ``x509.private_key``
        in ``[authenticate.client]`` and ``[authenticate.server]``), then ``override``
        (``client_truststore=...``) on top."""
        cp = configparser.ConfigParser()
        if path:
            try:
                with open(path) as f:
                    cp.read_file(f)
            except (OSError, configparser.Error) as exc:
                raise QuicctlError(f"agent configuration {path}: {exc}") from None
        sides = {}
        for role in ("client", "server"):
            sec = cp[f"authenticate.{role}"] if cp.has_section(f"authenticate.{role}") else {}
            side = Side(*(override.get(f"{role}_{k}") or sec.get(f"x509.{k}")
                          for k in ("truststore", "certificate", "private_key")))  # fmt: skip
            for what in ("truststore", "certificate", "private_key"):
                p = getattr(side, what)
                if p and not os.path.exists(p):
                    raise QuicctlError(f"agent configuration: {role} x509.{what} {p} does not "
                                       "exist")  # fmt: skip
            sides[role] = side
        return cls(sides["client"], sides["server"])


class Agent:
    """Serves handshake requests until :meth:`stop` (or SIGTERM in the CLI)."""

    def __init__(self, config: Config, log: Log = print, verbose: bool = False):
        self.config, self.log, self.verbose = config, log, verbose
        self._stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.handled = 0
        self.nl: genl.GenlSocket | None = None
        self.family: genl.Family | None = None
        self.lock = threading.Lock()

    def stop(self) -> None:
        self._stop.set()

    def open(self) -> None:
        """Find the family and join its tlshd group (root: ACCEPT needs CAP_NET_ADMIN)."""
        self.nl = genl.GenlSocket()
        try:
            self.family = self.nl.resolve(handshake.FAMILY)
        except OSError as exc:
            self.nl.close()
            raise QuicctlError(
                "cannot start the agent: this kernel has no 'handshake' netlink family "
                f"(CONFIG_NET_HANDSHAKE): {exc.strerror}"
            ) from None
        group = self.family.groups.get(handshake.GROUP)
        if group is None:
            raise QuicctlError("cannot start the agent: the handshake family has no tlshd group")
        self.nl.join(group)
        # What each handshake needs, loaded now: where Python is slow (a TCG guest importing
        # over 9p) the first request would otherwise spend seconds of its timeout on imports.
        from quicctl import abi, connection, keyring, tls  # noqa: F401

        tls.gnutls_version()
        abi.load()

    def run(self) -> None:
        """Accept what is queued, then each time READY is announced, until stopped."""
        if self.nl is None:
            self.open()
        assert self.nl is not None
        self.log(f"quicctl agent: serving handshake requests (family id {self.family.id})")
        self.drain()
        while not self._stop.is_set():
            # READY notifications read while waiting for an ACCEPT reply count too.
            if any(m.cmd == handshake.CMD_READY for m in self._take_pending()):
                self.drain()
                continue
            ready, _, _ = select.select([self.nl], [], [], 0.5)
            if not ready:
                continue
            try:
                msgs = self.nl.recv(0)
            except NetlinkError as exc:
                self.log(f"quicctl agent: malformed netlink message ignored: {exc}")
                continue
            except (TimeoutError, BlockingIOError):
                continue
            if any(m.cmd == handshake.CMD_READY for m in msgs):
                if self.verbose:
                    self.log("quicctl agent: READY")
                self.drain()
        for t in self.threads:
            t.join(30)
        self.nl.close()

    def _take_pending(self) -> list[genl.Message]:
        out, self.nl.pending = self.nl.pending, []
        return out

    def drain(self) -> None:
        """ACCEPT until the kernel has nothing queued for us."""
        while not self._stop.is_set():
            try:
                replies = self.nl.request(self.family.id, handshake.CMD_ACCEPT,
                                          handshake.accept_request())  # fmt: skip
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ENOENT):
                    self.log(f"quicctl agent: ACCEPT failed: {exc.strerror}")
                return
            except NetlinkError as exc:
                self.log(f"quicctl agent: malformed ACCEPT reply ignored: {exc}")
                continue
            if not replies:
                return
            try:
                req = handshake.parse_accept(replies[0].attrs)
            except NetlinkError as exc:
                self.log(f"quicctl agent: malformed ACCEPT reply ignored: {exc}")
                fd = replies[0].attrs.get(handshake.A_ACCEPT_SOCKFD)
                if fd is not None and len(fd) == 4:
                    _close_fd(genl.as_s32(fd))
                continue
            if self.verbose:
                certs = (
                    ", certificate serials " + " ".join(f"({c}, {k})" for c, k in req.certificates)
                    if req.certificates
                    else ""
                )
                self.log(f"quicctl agent: ACCEPT fd {req.sockfd}: {req.describe()}, timeout "
                         f"{req.timeout_ms} ms, key serials "
                         f"{req.peer_identities or '-'}{certs}")  # fmt: skip
            t = threading.Thread(target=self._serve, args=(req,), daemon=True)
            t.start()
            self.threads = [x for x in self.threads if x.is_alive()] + [t]

    def _serve(self, req: handshake.Request) -> None:
        t0 = time.monotonic()
        status, what, peer, detail = 0, "", "?", ""
        try:
            sock = socket.socket(fileno=req.sockfd)
        except OSError as exc:
            self.log(f"quicctl agent: fd {req.sockfd} is not a socket: {exc}")
            self._done(errno.EBADF, req.sockfd)
            _close_fd(req.sockfd)
            return
        remote: list[int] = []
        try:
            peer = _peer(sock)
            status, what, detail, remote = self._handshake(sock, req)
        except Exception as exc:  # noqa: BLE001 -- reported to the kernel as EIO and logged
            status, detail = errno.EIO, f"{type(exc).__name__}: {exc}"
        took = (time.monotonic() - t0) * 1000
        outcome = "ok" if not status else f"failed ({errno.errorcode.get(status, status)})"
        with self.lock:
            self.handled += 1
        # Logged before DONE: once the service hears, its caller may stop us.
        self.log(f"quicctl agent: {req.describe()} {peer}: {what or '-'} {outcome} "
                 f"{took:.0f} ms" + (f": {detail}" if detail and status else ""))  # fmt: skip
        try:
            self._done(status, req.sockfd, remote if not status else [])
        finally:
            sock.close()  # our descriptor only: the service's file keeps the socket

    def _done(self, status: int, fd: int, remote: list[int] = ()) -> None:
        """DONE on a netlink socket of this thread's own: the main one is ACCEPT's."""
        nl = genl.GenlSocket()
        try:
            nl.request(self.family.id, handshake.CMD_DONE,
                       handshake.done_request(status, fd, remote))  # fmt: skip
            if self.verbose:
                self.log(f"quicctl agent: DONE fd {fd} status {status} remote auth "
                         f"{remote or '-'}")  # fmt: skip
        except (OSError, NetlinkError) as exc:
            self.log(f"quicctl agent: DONE for fd {fd} failed: {exc}")
        finally:
            nl.close()

    def _handshake(self, sock: socket.socket,
                   req: handshake.Request) -> tuple[int, str, str, list[int]]:  # fmt: skip
        """(status, 'ALPN cipher', detail, DONE's remote auth serials): the handshake on the
        service's socket."""
        from quicctl import abi, keyring
        from quicctl.connection import HandshakeError, QuicTls, _handshake

        if sock.getsockopt(socket.SOL_SOCKET, SO_PROTOCOL) != IPPROTO_QUIC:
            return errno.EOPNOTSUPP, "", "not a QUIC socket", []
        psk, remote = None, []
        if req.auth_mode == handshake.AUTH_PSK:
            if not req.peer_identities:
                return errno.ENOKEY, "", "PSK mode without a key serial", []
            serial = req.peer_identities[0]
            try:
                psk = keyring.read_psk(serial)
            except OSError as exc:
                return errno.ENOKEY, "", f"cannot read the PSK: {exc.strerror}", []
            remote = [serial]
        alpns = [a.strip() for a in abi.getsockopt(sock, "ALPN").decode().split(",") if a.strip()]
        side = self.config.client if req.is_client else self.config.server
        if psk is None and req.certificates:
            try:
                side = _side_from_keys(side, *req.certificates[0])
            except OSError as exc:
                return errno.ENOKEY, "", f"cannot read the certificate or key: {exc}", []
        timeout = req.timeout_ms / 1000 if req.timeout_ms else 30.0
        if psk is None and not req.is_client and not (side.certificate and side.private_key):
            return errno.ENOKEY, "", "no server certificate and key configured", []

        def peer_params(data: bytes) -> bytes:
            abi.setsockopt(sock, "TRANSPORT_PARAM_EXT", data)
            return abi.getsockopt(sock, "TRANSPORT_PARAM_EXT")

        def start() -> QuicTls:
            if psk is not None:
                return QuicTls(server=not req.is_client, alpns=alpns, psk=psk,
                               on_peer_transport_params=None if req.is_client
                               else peer_params)  # fmt: skip
            if req.is_client:
                return QuicTls(server=False, alpns=alpns, server_name=req.peername,
                               cafile=side.truststore, certfile=side.certificate,
                               keyfile=side.private_key, insecure=side.truststore is None
                               and req.auth_mode == handshake.AUTH_UNAUTH)  # fmt: skip
            return QuicTls(server=True, alpns=alpns, certfile=side.certificate,
                           keyfile=side.private_key, cafile=side.truststore,
                           verify_client=side.truststore is not None,
                           on_peer_transport_params=peer_params)  # fmt: skip

        # On a copy of the descriptor: a failed handshake closes what it was given, and DONE
        # must still name the socket.
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        try:
            conn = _handshake(dup, start, timeout, req.peername or "the peer")
        except HandshakeError as exc:
            return errno.EACCES, "", str(exc), []
        finally:
            if side.scratch:
                shutil.rmtree(side.scratch, ignore_errors=True)
        conn._tls.close()
        dup.close()  # the connection itself stays: the service holds the socket
        how = f" psk {psk[0]}" if psk is not None else ""
        return 0, f"{conn.alpn or '-'} cipher {conn.cipher_type:#x}{how}", "", remote


def _pem(data: bytes, label: str) -> bytes:
    """A key payload as PEM: as it is if it is PEM already, else DER wrapped in ``label``."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return data
    b64 = base64.encodebytes(data).replace(b"\n", b"")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return b"".join([f"-----BEGIN {label}-----\n".encode(), *(ln + b"\n" for ln in lines),
                     f"-----END {label}-----\n".encode()])  # fmt: skip


def _side_from_keys(side: Side, cert_serial: int, key_serial: int) -> Side:
    """``side`` with the certificate and private key the service named by key serial, written
    to a private directory for gnutls (the caller removes it)."""
    from quicctl import keyring

    cert, key = keyring.read(cert_serial), keyring.read(key_serial)
    scratch = tempfile.mkdtemp(prefix="quicctl-agent-")  # mode 0700
    certfile, keyfile = os.path.join(scratch, "cert.pem"), os.path.join(scratch, "key.pem")
    for path, data in ((certfile, _pem(cert, "CERTIFICATE")), (keyfile, _pem(key, "PRIVATE KEY"))):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return Side(side.truststore, certfile, keyfile, scratch)


def _peer(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    except OSError:
        return "-"


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
