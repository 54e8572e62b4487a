"""kTLS for the benchmark: a real TLS 1.3 handshake (OpenSSL through pyOpenSSL, memory BIOs over
our own TCP sockets, TLS_AES_128_GCM_SHA256 only), then the traffic keys handed to the kernel's
``tls`` module (TCP_ULP "tls", SOL_TLS TLS_TX/TLS_RX, ``struct tls12_crypto_info_aes_gcm_128``).

The traffic secrets come from the key log callback; key and IV from them by HKDF-Expand-Label
(RFC 8446 Section 7.3).  OpenSSL's server sends NewSessionTicket records right after the
handshake; the client consumes them in userspace, and the record sequence numbers given to the
kernel count them (RFC 8446 Section 5.3).
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import struct
import threading
from dataclasses import dataclass, field

from quicctl.errors import QuicctlError
from quicctl.paths import KEYS

SOL_TLS = 282
TCP_ULP = 31
TLS_TX, TLS_RX = 1, 2
TLS_1_3_VERSION = 0x0304
TLS_CIPHER_AES_GCM_128 = 51
# struct tls12_crypto_info_aes_gcm_128 (linux/tls.h): version, cipher_type, iv[8], key[16],
# salt[4], rec_seq[8]
_CRYPTO_INFO = struct.Struct("=HH8s16s4s8s")
SUITE = b"TLS_AES_128_GCM_SHA256"


def hkdf_expand_label(secret: bytes, label: str, length: int) -> bytes:
    """HKDF-Expand-Label(secret, label, "", length) with SHA-256 (RFC 8446 Section 7.1)."""
    full = b"tls13 " + label.encode()
    info = struct.pack("!HB", length, len(full)) + full + b"\0"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def crypto_info(secret: bytes, seq: int) -> bytes:
    """The TLS_TX/TLS_RX option value for one direction's traffic secret."""
    key = hkdf_expand_label(secret, "key", 16)
    iv = hkdf_expand_label(secret, "iv", 12)
    return _CRYPTO_INFO.pack(
        TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128, iv[4:], key, iv[:4], seq.to_bytes(8, "big")
    )


def _records(data: bytes) -> int:
    """How many whole TLS records ``data`` holds (5-byte headers: type, version, length)."""
    n, off = 0, 0
    while off + 5 <= len(data):
        off += 5 + int.from_bytes(data[off + 3 : off + 5], "big")
        n += 1
    if off != len(data):
        raise QuicctlError("kTLS: the TLS server's post-handshake output is not whole records")
    return n


@dataclass
class _Side:
    sock: socket.socket
    server: bool
    secrets: dict[bytes, bytes] = field(default_factory=dict)
    tail: bytes = b""  # what the last handshake step wrote (the server's tickets)


def _context(side: _Side):
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_tls13_ciphersuites(SUITE)
    if side.server:
        ctx.use_certificate_chain_file(str(KEYS / "cert.crt"))
        ctx.use_privatekey_file(str(KEYS / "pkey.key"))
    else:
        ctx.load_verify_locations(str(KEYS / "ca.crt"))
        ctx.set_verify(SSL.VERIFY_PEER, lambda *a: a[-1])

    def keylog(_conn, line: bytes) -> None:
        label, _, rest = line.partition(b" ")
        side.secrets[label] = bytes.fromhex(rest.split()[-1].decode())

    ctx.set_keylog_callback(keylog)
    return ctx


def _handshake(side: _Side, server_name: str):
    """Drive one end of the handshake over its TCP socket (blocking)."""
    from OpenSSL import SSL

    conn = SSL.Connection(_context(side), None)
    if side.server:
        conn.set_accept_state()
    else:
        conn.set_tlsext_host_name(server_name.encode())
        conn.set_connect_state()
    while True:
        try:
            conn.do_handshake()
            done = True
        except SSL.WantReadError:
            done = False
        out = b""
        while True:
            try:
                out += conn.bio_read(65536)
            except SSL.WantReadError:
                break
        if out:
            side.sock.sendall(out)
        if done:
            side.tail = out
            return conn
        data = side.sock.recv(65536)
        if not data:
            raise QuicctlError("kTLS: the peer closed the TCP connection during the handshake")
        conn.bio_write(data)


def _consume_tickets(client, sock: socket.socket, nbytes: int) -> None:
    """Feed the server's post-handshake records to the client's OpenSSL, which reads them."""
    from OpenSSL import SSL

    while nbytes > 0:
        data = sock.recv(nbytes)
        if not data:
            raise QuicctlError("kTLS: the peer closed before its session tickets arrived")
        nbytes -= len(data)
        client.bio_write(data)
    try:
        client.recv(1)
        raise QuicctlError("kTLS: application data arrived before the keys went to the kernel")
    except SSL.WantReadError:
        pass


def _install(sock: socket.socket, tx: bytes, tx_seq: int, rx: bytes, rx_seq: int) -> None:
    try:
        sock.setsockopt(socket.SOL_TCP, TCP_ULP, b"tls")
        sock.setsockopt(SOL_TLS, TLS_TX, crypto_info(tx, tx_seq))
        sock.setsockopt(SOL_TLS, TLS_RX, crypto_info(rx, rx_seq))
    except OSError as exc:
        raise QuicctlError(
            f"cannot switch a TCP socket to kTLS: {exc.strerror or exc} "
            "(is the tls module available? modprobe tls)"
        ) from exc


def establish(client: socket.socket, server: socket.socket, server_name: str) -> None:
    """TLS 1.3 over the connected pair ``client``/``server``, then kTLS on both in place."""
    cside, sside = _Side(client, False), _Side(server, True)
    box: dict = {}

    def run_server() -> None:
        try:
            box["conn"] = _handshake(sside, server_name)
        except Exception as exc:  # reported by the caller's thread
            box["error"] = exc

    t = threading.Thread(target=run_server, name="ktls-server")
    t.start()
    try:
        cconn = _handshake(cside, server_name)
    finally:
        t.join()
    if "error" in box:
        raise QuicctlError(f"kTLS: the TLS server's handshake failed: {box['error']}")
    for conn in (cconn, box["conn"]):
        name = conn.get_cipher_name()
        if name != "TLS_AES_128_GCM_SHA256":
            raise QuicctlError(f"kTLS: negotiated {name}, wanted TLS_AES_128_GCM_SHA256")
    tickets = _records(sside.tail)
    _consume_tickets(cconn, client, len(sside.tail))
    cts, sts = b"CLIENT_TRAFFIC_SECRET_0", b"SERVER_TRAFFIC_SECRET_0"
    for side in (cside, sside):
        if cts not in side.secrets or sts not in side.secrets:
            raise QuicctlError("kTLS: OpenSSL did not log the traffic secrets")
    _install(client, cside.secrets[cts], 0, cside.secrets[sts], tickets)
    _install(server, sside.secrets[sts], tickets, sside.secrets[cts], 0)
