"""The library's exception hierarchy (issue 16): QuicError and its kinds.

On the host: what it produces for real (no quic.ko: NotLoadedError; a bad address or port:
AddressError), and the code paths that turn the kernel's answers into the other kinds (a
CONNECTION_CLOSE event during the handshake, EPIPE after the peer closed, socket timeouts)
driven with plain sockets or stand-ins for the kernel socket.  The kernel-to-kernel cases run
in the VM suites (test_robustness: alerts; test_connection: closes).
"""

from __future__ import annotations

import errno
import pickle
import socket
import time
from types import SimpleNamespace

import pytest

import quicctl
from quicctl import abi, connection
from quicctl.errors import (
    AddressError,
    HandshakeError,
    HandshakeTimeoutError,
    NotLoadedError,
    PeerClosedError,
    QuicctlError,
    QuicError,
    QuicSocketError,
    QuicTimeoutError,
)
from quicctl.paths import KEYS
from quicctl.tls import QuicTls, TlsError

pytestmark = pytest.mark.host

KINDS = [NotLoadedError, AddressError, HandshakeError, PeerClosedError, QuicTimeoutError,
         QuicSocketError, TlsError, HandshakeTimeoutError]  # fmt: skip


def test_hierarchy():
    for kind in KINDS:
        assert issubclass(kind, QuicError) and issubclass(kind, QuicctlError), kind
        assert getattr(quicctl, kind.__name__, kind) is kind  # exported by the package
    # The kinds that wrap a system error stay catchable as the built-in one.
    assert issubclass(NotLoadedError, OSError) and issubclass(QuicSocketError, OSError)
    assert issubclass(PeerClosedError, ConnectionError)
    assert issubclass(QuicTimeoutError, TimeoutError)
    assert issubclass(TlsError, HandshakeError)
    # A handshake with no answer is both a failed handshake and a timeout.
    assert issubclass(HandshakeTimeoutError, HandshakeError)
    assert issubclass(HandshakeTimeoutError, QuicTimeoutError)


@pytest.mark.parametrize("exc", [
    NotLoadedError("no quic", errno=errno.EPROTONOSUPPORT),
    QuicSocketError("send: EINVAL", errno=errno.EINVAL),
    PeerClosedError("closed: error 0xa (bye)", error_code=0xA, frame=0x1C, reason="bye"),
    HandshakeError("handshake failed: unknown_ca", alert=48, error_code=0x130),
    QuicTimeoutError("timed out"),
])  # fmt: skip
def test_errors_are_one_line_and_pickle(exc):
    """str() is the message alone (no "[Errno N]"), and the kinds survive pickling with their
    attributes (the fuzzers' workers send errors across processes)."""
    assert "\n" not in str(exc) and not str(exc).startswith("[Errno")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)
    assert vars(back) == vars(exc)
    if isinstance(exc, OSError):
        assert back.errno == exc.errno


def test_connect_without_the_module():
    """This host cannot load quic.ko: socket(IPPROTO_QUIC) fails with EPROTONOSUPPORT."""
    with pytest.raises(NotLoadedError) as exc:
        quicctl.connect("127.0.0.1", 4433, alpn="h3", insecure=True)
    assert exc.value.errno == errno.EPROTONOSUPPORT
    msg = str(exc.value)
    assert "the quic module is not loaded" in msg and "quicctl load" in msg
    assert "modprobe quic" in msg and "--userspace" in msg
    with pytest.raises(NotLoadedError):
        quicctl.QuicServer("127.0.0.1", 4433, alpn="h3", certfile=str(KEYS / "cert.crt"),
                           keyfile=str(KEYS / "pkey.key"))  # fmt: skip


@pytest.mark.parametrize("host, port, needle", [
    ("not-an-address.invalid", 4433, "cannot resolve 'not-an-address.invalid'"),
    ("127.0.0.1", 70000, "port 70000 is not a UDP port (0..65535)"),
    ("127.0.0.1", -1, "port -1 is not a UDP port"),
])  # fmt: skip
def test_bad_address_or_port(host, port, needle):
    with pytest.raises(AddressError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        quicctl.connect(host, port, alpn="h3", insecure=True)
    with pytest.raises(AddressError):
        quicctl.QuicServer(host, port, alpn="h3", certfile=str(KEYS / "cert.crt"),
                           keyfile=str(KEYS / "pkey.key"))  # fmt: skip


# --- the kernel's answers during the handshake ------------------------------------------------


def _close_event(errcode: int, phrase: bytes = b"", frame: int = 0) -> bytes:
    """A QUIC_EVENT_CONNECTION_CLOSE notification as recvmsg() returns it."""
    return bytes([abi.QUIC_EVENT_CONNECTION_CLOSE]) + connection._CLOSE.pack(errcode, frame, phrase)


@pytest.fixture
def client_tls():
    tls = QuicTls(server=False, alpns=["h3"], server_name="localhost",
                  cafile=str(KEYS / "ca.crt"), keylog="")  # fmt: skip
    yield tls
    tls.close()


def test_peer_alert_during_handshake(client_tls):
    """CONNECTION_CLOSE with CRYPTO_ERROR 0x100 + 48: HandshakeError with alert unknown_ca."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        driver = connection._Driver(sock, client_tls, time.monotonic() + 5)
        with pytest.raises(HandshakeError) as exc:
            driver.notification(_close_event(0x100 + 48))
    assert (exc.value.alert, exc.value.alert_name, exc.value.error_code) == (
        48, "unknown_ca", 0x130)  # fmt: skip
    assert "sent unknown_ca (alert 48)" in str(exc.value)


def test_peer_close_during_handshake(client_tls):
    """A transport close during the handshake: HandshakeError with the peer's code and reason."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        driver = connection._Driver(sock, client_tls, time.monotonic() + 5)
        with pytest.raises(HandshakeError) as exc:
            driver.notification(_close_event(0xA, b"no thanks", frame=0x6))
    assert exc.value.alert is None and exc.value.error_code == 0xA
    assert "error 0xa (no thanks)" in str(exc.value)


def test_handshake_errors_name_the_peer(client_tls):
    """_handshake() wraps the engine's failure (alert kept) and the deadline (QuicTimeoutError)
    with the peer's name, and closes the socket."""
    tls_failure = TlsError("TLS client: certificate: unknown_ca (alert 48)", alert=48)
    for raised, kind, needle in [
        (tls_failure, HandshakeError, "handshake with 192.0.2.1 port 4433 failed: TLS client"),
        (QuicTimeoutError("timed out"), HandshakeTimeoutError,
         "handshake with 192.0.2.1 port 4433 timed out after 2 s (no answer from the peer?)"),
    ]:  # fmt: skip
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def start(raised=raised):
            raise raised

        with pytest.raises(kind) as exc:
            connection._handshake(sock, start, 2.0, "192.0.2.1 port 4433")
        assert needle in str(exc.value), str(exc.value)
        assert sock.fileno() == -1, "the socket stayed open"
    with pytest.raises(HandshakeError) as exc:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        connection._handshake(sock, lambda: (_ for _ in ()).throw(tls_failure), 2.0, "x")
    assert exc.value.alert == 48 and exc.value.error_code == 0x130


def test_handshake_deadline(client_tls):
    """No answer from the peer within the deadline: QuicTimeoutError, not a hang."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        t0 = time.monotonic()
        with pytest.raises(QuicTimeoutError):
            connection._Driver(sock, client_tls, time.monotonic() + 0.3).recv_one()
        assert time.monotonic() - t0 < 3
        with pytest.raises(QuicTimeoutError):
            connection._Driver(sock, client_tls, time.monotonic() - 1).recv_one()


# --- an established connection's socket calls -------------------------------------------------


class _Sock:
    """The parts of a kernel QUIC socket QuicConnection uses, answering as told."""

    def __init__(self, *, send_errno: int = 0, recv: tuple | None = None):
        self.send_errno = send_errno
        self.recv = recv

    def sendmsg(self, *args):
        raise OSError(self.send_errno, "")

    def recvmsg(self, *args):
        return self.recv

    def fileno(self):
        return -1

    def close(self):
        pass


def _conn(sock, close_info=None) -> connection.QuicConnection:
    conn = connection.QuicConnection(sock, None, SimpleNamespace(alpn="h3", cipher_type=0,
                                                                 resumed=False))  # fmt: skip
    if close_info is not None:
        conn.close_info = lambda: close_info
    return conn


def test_send_after_the_peer_closed():
    """EPIPE once the peer closed: PeerClosedError with its code and reason (CONNECTION_CLOSE
    getsockopt), errno kept."""
    info = connection.CloseInfo(0x15A, 0, "going away")
    with pytest.raises(PeerClosedError) as exc:
        _conn(_Sock(send_errno=errno.EPIPE), info).send(b"x", 0)
    e = exc.value
    assert (e.error_code, e.reason, e.errno, e.clean) == (0x15A, "going away", errno.EPIPE, False)
    assert str(e) == "connection closed by the peer: CRYPTO_ERROR user_canceled (alert 90) " \
                     "(going away)"  # fmt: skip


def test_recv_close_event():
    """The CONNECTION_CLOSE event on a read: PeerClosedError; code 0 is a clean end."""
    flags = abi.MSG_QUIC_NOTIFICATION
    sock = _Sock(recv=(_close_event(0x0), [], flags, None))
    with pytest.raises(PeerClosedError) as exc:
        _conn(sock).recv()
    assert exc.value.clean and exc.value.error_code == 0
    sock = _Sock(recv=(_close_event(0x2A, b"bye"), [], flags, None))
    with pytest.raises(PeerClosedError, match=r"error 0x2a \(bye\)") as exc:
        _conn(sock).recv()
    assert (exc.value.error_code, exc.value.reason) == (0x2A, "bye")


def test_socket_errors_keep_their_errno():
    """Other failures: QuicSocketError naming the call and the errno; a timeout set by the
    caller is QuicTimeoutError; EAGAIN stays BlockingIOError for non-blocking use."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        conn = _conn(udp)
        with pytest.raises(QuicSocketError, match="cannot send on stream 4: EDESTADDRREQ") as exc:
            conn.send(b"x", 4)
        assert exc.value.errno == errno.EDESTADDRREQ
        udp.settimeout(0.1)
        with pytest.raises(QuicTimeoutError, match="cannot receive: timed out"):
            conn.recv()
        udp.setblocking(False)
        with pytest.raises(BlockingIOError):
            conn.recv()


def test_socket_option_errors_are_quic_errors():
    """The typed option wrappers raise QuicSocketError (an OSError with errno) naming the
    option."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(QuicSocketError, match="setsockopt QUIC_SOCKOPT_ALPN") as exc:
            abi.setsockopt(udp, "ALPN", "h3")
    assert exc.value.errno == errno.ENOPROTOOPT


# --- the command line prints each kind as one line ---------------------------------------------


@pytest.mark.parametrize("args, needles", [
    (["server", "127.0.0.1", "4433", "keys/pkey.key", "keys/cert.crt"],
     ["cannot create a QUIC socket", "the quic module is not loaded", "--userspace"]),
    (["client", "127.0.0.1", "4433", "/x", "--insecure"],
     ["cannot create a QUIC socket", "the quic module is not loaded", "modprobe quic"]),
    (["client", "not-an-address.invalid", "4433", "/x", "--insecure", "--userspace"],
     ["cannot resolve 'not-an-address.invalid'"]),
])  # fmt: skip
def test_cli_prints_one_line(args, needles, monkeypatch):
    from test_cli import assert_one_error, invoke

    from quicctl import paths

    monkeypatch.chdir(paths.ROOT)
    assert_one_error(invoke(args), *needles)
