"""ALPN demultiplexing: listeners on one address and port with disjoint ALPN sets (ABI reference
Sections 3 and 5.2), each new client going to the listener whose set holds the protocol its
ClientHello asks for (the kernel reads the ALPN extension from the client's Initials).

Three listeners share a port: "a", "b,b2", and one with no ALPN set (its TLS library offers
"c"), the fallback.  Kernel clients and aioquic clients reach the right one (accept() on each,
the ALPN getsockopt of the accepted socket, data echoed with the listener's name), also with a
ClientHello spread over two Initial packets (a 1500-byte session ticket in aioquic's
pre_shared_key extension).  With no fallback listener, a client whose protocols no listener
offers is closed with CRYPTO_ERROR 0x178 (no_application_protocol).  Hand-made Initials with
malformed ClientHellos are dropped and counted, and leave no memory behind.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest
from conftest import SERVER_NAME, kernel_connect, snmp
from test_listener import _rmem
from test_wire import _client_initial, _varint

from quicctl import abi
from quicctl.paths import KEYS

NO_APPLICATION_PROTOCOL = 0x100 + 120  # CRYPTO_ERROR of TLS alert 120 (RFC 9001 Section 4.8)


class Listener:
    """A kernel listener on ``port`` (0: any) in the server namespace, accepting in a thread:
    each connection reads one message and answers ``name: message``; ``got`` lists (ALPN
    getsockopt of the accepted socket, negotiated ALPN) per connection.  ``alpn`` None: no
    ALPN set on the socket (the TLS library still offers ``tls_alpn``)."""

    def __init__(self, topo, name: str, port: int, alpn: str | None, tls_alpn: str = ""):
        from quicctl.connection import QuicServer
        from quicctl.netns import enter

        self.name, self.got, self.errors = name, [], []
        with enter(topo.server):
            self.srv = QuicServer("0.0.0.0", port, alpn=(alpn or tls_alpn).split(","),
                                  certfile=str(KEYS / "cert.crt"),
                                  keyfile=str(KEYS / "pkey.key"),
                                  listener_alpn=alpn is not None, backlog=16)  # fmt: skip
        self.port = self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.srv.accept_socket()
            except OSError:
                return
            try:
                kernel_alpn = abi.getsockopt(sock, "ALPN").rstrip(b"\0").decode()
                conn = self.srv.handshake(sock, timeout=120)
                with conn:
                    sid, data, _ = conn.recv()
                    conn.send(f"{self.name}: ".encode() + data, sid, fin=True)
                    self.got.append((kernel_alpn, conn.alpn))
                    time.sleep(0.5)  # the answer leaves before the close
            except Exception as exc:  # reported by the test
                self.errors.append(exc)

    def close(self) -> None:
        self.srv.close()
        self.thread.join(30)


@pytest.fixture
def listeners(quic_module, clean_path, topo):
    """Listeners "a", "b,b2" and one without ALPN (TLS: "c") on one port."""
    a = Listener(topo, "A", 0, "a")
    b = Listener(topo, "B", a.port, "b,b2")
    c = Listener(topo, "C", a.port, None, tls_alpn="c")
    yield a, b, c
    for lst in (a, b, c):
        lst.close()
    for lst in (a, b, c):
        assert not lst.errors, (lst.name, lst.errors)


def _ask(topo, port: int, alpn: str) -> bytes:
    """One kernel client connection with ``alpn``: its message echoed with a listener name."""
    with kernel_connect(topo, topo.server_v4, port, alpn=alpn.split(",")) as conn:
        sid = conn.open_stream()
        conn.send(f"hello {alpn}".encode(), sid, fin=True)
        out = b""
        while True:
            _, data, fin = conn.recv()
            out += data
            if fin:
                return out


def test_kernel_clients_reach_their_listener(listeners, topo):
    """Each client's ALPN picks the listener; the first of the client's protocols that a
    listener offers decides; a protocol no ALPN listener offers goes to the fallback."""
    a, b, c = listeners
    assert _ask(topo, a.port, "a") == b"A: hello a"
    assert _ask(topo, a.port, "b2") == b"B: hello b2"
    assert _ask(topo, a.port, "zz,b,a") == b"B: hello zz,b,a"
    assert _ask(topo, a.port, "c") == b"C: hello c"
    assert a.got == [("a", "a")], a.got
    assert b.got == [("b,b2", "b2"), ("b,b2", "b")], b.got
    assert c.got == [("", "c")], c.got


def _aioquic_client(topo, port: int, alpn: str, **config_kw) -> bytes:
    """An aioquic client (sans-I/O, selftests/peer.py): one stream, the answer."""
    from peer import AioPeer

    p = AioPeer(topo, port, alpn=alpn, **config_kw)
    try:
        p.until(lambda: p.connected, "the handshake", timeout=120)
        sid = p.quic.get_next_available_stream_id()
        p.quic.send_stream_data(sid, f"hello {alpn}".encode(), end_stream=True)
        p.until(lambda: sid in p.fin, "the answer", timeout=60)
        return bytes(p.data[sid])
    finally:
        p.close()


def _big_ticket():
    """A session ticket of 1500 random bytes: its pre_shared_key extension makes aioquic's
    ClientHello longer than one Initial packet (the server, which never issued it, ignores
    it and does a full handshake)."""
    import datetime

    from aioquic.tls import CipherSuite, SessionTicket, utcnow

    now = utcnow()
    return SessionTicket(
        age_add=0,
        cipher_suite=CipherSuite.AES_128_GCM_SHA256,
        not_valid_after=now + datetime.timedelta(hours=1),
        not_valid_before=now - datetime.timedelta(minutes=1),
        resumption_secret=os.urandom(32),
        server_name=SERVER_NAME,
        ticket=os.urandom(1500),
    )


@pytest.mark.parametrize("big", [False, True], ids=["one-initial", "two-initials"])
def test_aioquic_clients_reach_their_listener(listeners, topo, big):
    """aioquic clients too; ``two-initials``: a 1500-byte session ticket makes the
    ClientHello span two Initial packets, which the kernel puts together before choosing."""
    a, b, c = listeners
    before = snmp(ns=topo.server)
    kw = {"session_ticket": _big_ticket()} if big else {}
    assert _aioquic_client(topo, a.port, "b", **kw) == b"B: hello b"
    assert _aioquic_client(topo, a.port, "a", **kw) == b"A: hello a"
    assert _aioquic_client(topo, a.port, "c", **kw) == b"C: hello c"
    after = snmp(ns=topo.server)
    assert after["QuicPktInvFrmDrop"] == before["QuicPktInvFrmDrop"]
    assert [g[0] for g in a.got + b.got + c.got] == ["a", "b,b2", ""]


def test_unknown_alpn_closed_no_application_protocol(quic_module, clean_path, topo):
    """No listener offers the client's protocol and none is without a set: CONNECTION_CLOSE
    CRYPTO_ERROR 0x178 in an Initial, to aioquic and to a kernel client."""
    from peer import AioPeer

    from quicctl.errors import QuicError

    a = Listener(topo, "A", 0, "a")
    b = Listener(topo, "B", a.port, "b")
    try:
        p = AioPeer(topo, a.port, alpn="zz")
        try:
            p.until(lambda: p.closed is not None, "the close", timeout=60)
            assert p.closed.error_code == NO_APPLICATION_PROTOCOL, p.closed
        finally:
            p.close()
        with pytest.raises(QuicError) as err:
            _ask(topo, a.port, "zz,yy")
        assert getattr(err.value, "error_code", None) == NO_APPLICATION_PROTOCOL, err.value
        assert not a.got and not b.got
    finally:
        a.close()
        b.close()
    assert not a.errors and not b.errors, (a.errors, b.errors)


# -- hand-made ClientHellos --------------------------------------------------------------------


def _ext(etype: int, body: bytes) -> bytes:
    return struct.pack("!HH", etype, len(body)) + body


def _alpn_ext(*names: bytes) -> bytes:
    lst = b"".join(bytes([len(n)]) + n for n in names)
    return _ext(16, struct.pack("!H", len(lst)) + lst)


def _client_hello(exts: bytes) -> bytes:
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
            + struct.pack("!H", len(exts)) + exts)  # fmt: skip
    return b"\x01" + struct.pack("!I", len(body))[1:] + body


def _crypto(offset: int, data: bytes) -> bytes:
    return b"\x06" + _varint(offset) + _varint(len(data)) + data


@pytest.fixture
def raw_pair(quic_module):
    """Listeners "a" and "b" on one loopback port, and a plain UDP socket to play clients."""
    socks = []
    for alpn in ("a", "b"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 261)
        abi.setsockopt(s, "ALPN", alpn)
        s.bind(("127.0.0.1", socks[0].getsockname()[1] if socks else 0))
        s.listen(16)
        socks.append(s)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    yield socks, udp
    udp.close()
    for s in socks:
        s.close()


def _nothing_accepted(socks) -> None:
    for s in socks:
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.accept()


def test_raw_alpn_choice_and_close(raw_pair):
    """A whole ClientHello in one Initial goes to "b"; one split over two Initials (its
    second half first) too; one asking for "zz" is answered with CONNECTION_CLOSE 0x178,
    read here with aioquic's Initial keys."""
    from aioquic.quic.crypto import CryptoPair
    from test_wire import _pull_varint

    (a, b), udp = raw_pair
    here = a.getsockname()
    ch = _client_hello(_ext(0, b"\x00\x05\x00\x00\x02xy") + _alpn_ext(b"zz", b"b"))
    udp.sendto(_client_initial(os.urandom(8), os.urandom(8), _crypto(0, ch)), here)
    b.settimeout(10)
    b.accept()[0].close()
    # Split: the second piece arrives first; nothing is chosen until the first comes.
    dcid, scid = os.urandom(8), os.urandom(8)
    big = _client_hello(_ext(0x4469, os.urandom(1500)) + _alpn_ext(b"b"))
    udp.sendto(_client_initial(dcid, scid, _crypto(1000, big[1000:]), pn=1), here)
    time.sleep(0.3)
    assert _rmem(a)[0] > 0, "the held Initial is charged to the port's first listener"
    udp.sendto(_client_initial(dcid, scid, _crypto(0, big[:1000]), pn=0), here)
    b.accept()[0].close()
    # No listener for "zz": CONNECTION_CLOSE CRYPTO_ERROR 0x178 (what the two closed
    # connections said goes first).
    time.sleep(0.5)
    udp.setblocking(False)
    try:
        while True:
            udp.recvfrom(65536)
    except BlockingIOError:
        pass
    udp.settimeout(5)
    dcid, scid = os.urandom(8), os.urandom(8)
    ch = _client_hello(_alpn_ext(b"zz"))
    udp.sendto(_client_initial(dcid, scid, _crypto(0, ch)), here)
    dgram, _ = udp.recvfrom(65536)
    assert dgram[0] & 0xF0 == 0xC0, dgram[:1].hex()
    i = 5
    assert dgram[i + 1 : i + 1 + dgram[i]] == scid
    i += 1 + dgram[i]
    i += 1 + dgram[i]
    _, i = _pull_varint(dgram, i)  # token length
    _, i = _pull_varint(dgram, i)  # length
    pair = CryptoPair()
    pair.setup_initial(cid=dcid, is_client=True, version=1)
    _, payload, _ = pair.decrypt_packet(dgram, i, 0)
    code, _ = _pull_varint(payload, 1)
    assert payload[0] == 0x1C and code == NO_APPLICATION_PROTOCOL, payload.hex()
    _nothing_accepted((a, b))
    time.sleep(0.2)
    assert _rmem(a)[0] == 0 and _rmem(b)[0] == 0


MALFORMED = {
    "not a ClientHello": b"\x02" + _client_hello(_alpn_ext(b"a"))[1:],
    "ALPN list length past its extension": _client_hello(_ext(16, b"\x00\x09\x01a")),
    "empty protocol name": _client_hello(_alpn_ext(b"", b"a")),
    "two ALPN extensions": _client_hello(_alpn_ext(b"a") + _alpn_ext(b"b")),
    "extension past the block": _client_hello(b"\x00\x10\x00\xff\x00\x02\x01a"),
    "ALPN list over 128 bytes": _client_hello(_alpn_ext(*[b"a%02d" % i for i in range(33)])),
    "ClientHello over 8 KiB": b"\x01\x00\x40\x00" + os.urandom(1000),
    "CRYPTO past 8 KiB": None,
    "bad CRYPTO frame length": None,
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_raw_malformed_client_hello_dropped(raw_pair, case):
    """Malformed ClientHellos, and CRYPTO frames that cannot be read, are dropped and counted
    (QuicPktInvFrmDrop); nothing is accepted and no memory stays charged."""
    (a, b), udp = raw_pair
    here = a.getsockname()
    before = snmp()["QuicPktInvFrmDrop"]
    for _ in range(3):
        if case == "CRYPTO past 8 KiB":
            payload = _crypto(8190, b"xyz")
        elif case == "bad CRYPTO frame length":
            payload = b"\x06\x00\x48\x00" + b"\x01" * 20  # 2048 bytes in a 1200-byte packet
        else:
            payload = _crypto(0, MALFORMED[case])
        udp.sendto(_client_initial(os.urandom(8), os.urandom(8), payload), here)
    time.sleep(0.5)
    assert snmp()["QuicPktInvFrmDrop"] - before >= 3
    _nothing_accepted((a, b))
    assert _rmem(a)[0] == 0 and _rmem(b)[0] == 0


def test_raw_hold_is_bounded(raw_pair):
    """A client that sends pieces of a ClientHello but never its start: at most eight of its
    datagrams are held (then it is dropped and counted), and nothing stays charged."""
    (a, b), udp = raw_pair
    here = a.getsockname()
    before = snmp()["QuicPktRcvDrop"]
    dcid, scid = os.urandom(8), os.urandom(8)
    for pn in range(10):
        udp.sendto(_client_initial(dcid, scid, _crypto(100 + 5 * pn, b"x" * 5), pn=pn), here)
    time.sleep(0.5)
    assert snmp()["QuicPktRcvDrop"] - before >= 1
    assert _rmem(a)[0] < 20000
    _nothing_accepted((a, b))
    a.close()  # the port's first listener goes: what it was charged for goes with it
    assert _rmem(b)[0] == 0


def test_raw_reuseport_group_shares_its_clients(quic_module):
    """Two SO_REUSEPORT listeners with "a" and one with "b" on one port: 64 ClientHellos
    asking for "a" spread over the "a" group (by a hash of each client's Destination ID, so
    every Initial of a client goes to the same one), none to "b"."""
    socks = []
    for alpn in ("a", "a", "b"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 261)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        abi.setsockopt(s, "ALPN", alpn)
        s.bind(("127.0.0.1", socks[0].getsockname()[1] if socks else 0))
        s.listen(128)
        socks.append(s)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        here = socks[0].getsockname()
        for _ in range(64):
            ch = _client_hello(_alpn_ext(b"a"))
            udp.sendto(_client_initial(os.urandom(8), os.urandom(8), _crypto(0, ch)), here)
        time.sleep(1)
        got = []
        for s in socks:
            s.setblocking(False)
            n = 0
            try:
                while True:
                    s.accept()[0].close()
                    n += 1
            except BlockingIOError:
                pass
            got.append(n)
        assert got[0] + got[1] == 64 and got[0] and got[1] and not got[2], got
    finally:
        udp.close()
        for s in socks:
            s.close()
