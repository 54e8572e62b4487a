"""What the kernel does with hand-made client Initials, seen on the wire: frames that must not
be there close the connection with the RFC's error code, and before the client's address is
validated the server sends at most three times what it received (RFC 9000 Section 8.1).

The client side is a plain UDP socket; packets are protected and opened with aioquic's
RFC 9001 Initial keys (an independent implementation of the key schedule).
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest

IPPROTO_QUIC = 261
VERSION_1 = 1
FRAME_ENCODING_ERROR = 0x07
PROTOCOL_VIOLATION = 0x0A
CONNECTION_CLOSE = 0x1C


def _varint(v: int) -> bytes:
    for prefix, size in ((0, 1), (0x40, 2), (0x80, 4), (0xC0, 8)):
        if v < 1 << (8 * size - 2):
            return (v | prefix << (8 * size - 8)).to_bytes(size, "big")
    raise ValueError(v)


def _pull_varint(buf: bytes, i: int) -> tuple[int, int]:
    size = 1 << (buf[i] >> 6)
    v = int.from_bytes(buf[i : i + size], "big") & ((1 << (8 * size - 2)) - 1)
    return v, i + size


def _client_initial(dcid: bytes, scid: bytes, payload: bytes, pn: int = 0) -> bytes:
    """A protected client Initial of version 1, padded to a 1200-byte datagram."""
    from aioquic.quic.crypto import CryptoPair

    pair = CryptoPair()
    pair.setup_initial(cid=dcid, is_client=True, version=VERSION_1)

    def header(plen: int) -> bytes:
        return (
            bytes([0xC3])  # long header, fixed bit, Initial, 4-byte packet number
            + struct.pack("!I", VERSION_1)
            + bytes([len(dcid)])
            + dcid
            + bytes([len(scid)])
            + scid
            + _varint(0)  # no token
            + struct.pack("!H", 0x4000 | (4 + plen + 16))
            + struct.pack("!I", pn)
        )

    pad = 1200 - len(header(0)) - len(payload) - 16
    assert pad >= 0, "payload too long for one Initial"
    body = payload + bytes(pad)  # PADDING frames
    return pair.encrypt_packet(header(len(body)), body, pn)


def _server_initial_frames(dgram: bytes, odcid: bytes) -> bytes:
    """The plain payload of the server Initial at the start of ``dgram``."""
    from aioquic.quic.crypto import CryptoPair

    pair = CryptoPair()
    pair.setup_initial(cid=odcid, is_client=True, version=VERSION_1)
    assert dgram[0] & 0x80, f"not a long header (first byte {dgram[0]:#x})"
    assert (dgram[0] >> 4) & 0x3 == 0, f"not an Initial (first byte {dgram[0]:#x})"
    i = 5
    i += 1 + dgram[i]  # DCID
    i += 1 + dgram[i]  # SCID
    token_len, i = _pull_varint(dgram, i)
    i += token_len
    length, i = _pull_varint(dgram, i)
    _, payload, _ = pair.decrypt_packet(dgram[: i + length], i, 0)
    return payload


def _close_code(frames: bytes) -> int | None:
    """The error code of the first transport CONNECTION_CLOSE among ``frames`` (PADDING and
    ACK frames may come before it)."""
    i = 0
    while i < len(frames):
        ftype, i = _pull_varint(frames, i)
        if ftype == 0x00:
            continue
        if ftype == CONNECTION_CLOSE:
            code, _ = _pull_varint(frames, i)
            return code
        if ftype in (0x02, 0x03):  # ACK: largest, delay, range count, first range, ranges
            vals = []
            for _ in range(4):
                v, i = _pull_varint(frames, i)
                vals.append(v)
            for _ in range(2 * vals[2] + (3 if ftype == 0x03 else 0)):
                _, i = _pull_varint(frames, i)
            continue
        return None
    return None


@pytest.fixture
def listener(quic_module):
    lst = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    yield lst, udp
    udp.close()
    lst.close()


@pytest.mark.parametrize(
    "name,frames,code",
    [
        ("unknown frame type", _varint(0x21) + b"\x01\x02", FRAME_ENCODING_ERROR),
        ("STREAM frame in an Initial", bytes([0x0A, 0x00, 0x03]) + b"abc", PROTOCOL_VIOLATION),
        ("HANDSHAKE_DONE in an Initial", bytes([0x1E]), PROTOCOL_VIOLATION),
        (
            "CRYPTO frame longer than its packet",
            bytes([0x06, 0x00]) + _varint(5000) + b"\x01",
            FRAME_ENCODING_ERROR,
        ),
    ],
    ids=["unknown-type", "stream-in-initial", "handshake-done-in-initial", "crypto-overrun"],
)
def test_bad_frame_in_initial_closes_with_rfc_error(listener, name, frames, code):
    """RFC 9000 Sections 12.4 and 19: the server answers with CONNECTION_CLOSE carrying the
    error code the RFC gives, and the socket reports the same code."""
    from quicctl import abi

    lst, udp = listener
    dcid, scid = os.urandom(8), os.urandom(8)
    # The bad frame comes first: the PADDING after it is never reached.
    udp.sendto(_client_initial(dcid, scid, frames), lst.getsockname())
    lst.settimeout(10)
    try:
        conn, _ = lst.accept()
    except ConnectionAbortedError:
        conn = None  # closed while accept() set it up: it is never handed out
    try:
        dgram, _ = udp.recvfrom(2048)
        got = _close_code(_server_initial_frames(dgram, dcid))
        assert got == code, f"{name}: server closed with {got!r}, RFC says {code:#x}"
        if conn is not None:
            info = abi.getsockopt(conn, "CONNECTION_CLOSE")
            assert info["errcode"] == code, f"{name}: socket reports {info}"
    finally:
        if conn is not None:
            conn.close()


@pytest.mark.parametrize("spoofed", [0, 20], ids=["alone", "with_20_from_elsewhere"])
def test_anti_amplification_limit_before_validation(quic_module, spoofed):
    """RFC 9000 Section 8.1: one 1200-byte client Initial with a real ClientHello, then
    silence; across several PTOs the server sends the client at most 3 x 1200 bytes.  Datagrams
    for the same connection from another address (an attacker who put a victim's address in
    the first Initial) do not raise that budget."""
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection as AioConnection

    from quicctl import HandshakeError, QuicServer
    from quicctl.paths import KEYS

    srv = QuicServer(
        "127.0.0.1",
        0,
        alpn="quicctl-test",
        certfile=str(KEYS / "cert.crt"),
        keyfile=str(KEYS / "pkey.key"),
    )
    errors: list[str] = []

    def serve() -> None:
        try:
            srv.accept(timeout=8)
        except (HandshakeError, OSError) as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = AioConnection(
        configuration=QuicConfiguration(
            is_client=True, alpn_protocols=["quicctl-test"], server_name="localhost"
        )
    )
    addr = srv.getsockname()[:2]
    client.connect(addr, now=time.monotonic())
    dgrams = [d for d, _ in client.datagrams_to_send(now=time.monotonic())]
    assert len(dgrams) == 1, "aioquic's first flight is one datagram"
    odcid = client._peer_cid.cid  # the Destination ID of the first Initial
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.sendto(dgrams[0], addr)
        received, got = len(dgrams[0]), 0
        deadline = time.monotonic() + 7  # PTOs at about 1, 3 and 7 s after the first flight
        while (left := deadline - time.monotonic()) > 0:
            udp.settimeout(left)
            try:
                got += len(udp.recv(65536))
            except TimeoutError:
                break
            if spoofed and got:
                # Initials the server cannot open, for its connection, from another port.
                for pn in range(spoofed):
                    junk = bytearray(_client_initial(odcid, os.urandom(8), b"\x01", pn + 1))
                    junk[-20:] = os.urandom(20)  # the AEAD tag no longer matches
                    other.sendto(bytes(junk), addr)
                spoofed = 0
        assert got > 0, "the server never answered the Initial"
        assert got <= 3 * received, f"server sent {got} bytes for {received} received"
    finally:
        udp.close()
        other.close()
        thread.join(15)
        srv.close()
    assert errors, "the handshake cannot have completed"
