"""A kernel listener against hand-made client Initials on a plain UDP socket: trains of them
(UDP GSO) are taken apart without losing either end of their path.

Initials are protected with aioquic's RFC 9001 Initial keys (test_wire.py's helpers), so what
the kernel makes of them is checked by an independent key schedule.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_wire import _client_initial

IPPROTO_QUIC = 261
SOL_UDP = 17
UDP_SEGMENT = 103
PING = b"\x01"


def _gso_train(udp: socket.socket, dgrams: list[bytes], dest) -> None:
    """One sendmsg() of equal-size datagrams as a UDP GSO train (UDP_SEGMENT): on loopback
    it reaches the listener's UDP socket as one GSO skb."""
    size = len(dgrams[0])
    assert all(len(d) == size for d in dgrams)
    udp.setsockopt(SOL_UDP, UDP_SEGMENT, size)
    assert udp.sendto(b"".join(dgrams), dest) == size * len(dgrams)


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")],
                         ids=["v4", "v6"])  # fmt: skip
def test_gso_train_of_initials_keeps_local_address(quic_module, family, host):
    """Issue 13, defect 1: a GSO train of 1200-byte Initials for three new connections (one
    of them in two Initials, as a ClientHello with post-quantum key shares comes) is copied
    apart datagram by datagram; each request must still know the address and port it was
    sent to.  The accepted sockets' getsockname() is the listener's, and the server's ACKs
    come from the listener's port.  (Before the fix the listener read IP and UDP headers the
    copies did not have: KASAN slab-out-of-bounds, addresses made of packet bytes, replies
    from random ports.)"""
    lst = socket.socket(family, socket.SOCK_DGRAM, IPPROTO_QUIC)
    udp = socket.socket(family, socket.SOCK_DGRAM)
    conns = []
    try:
        lst.bind((host, 0))
        lst.listen(8)
        lst.settimeout(20)
        here = lst.getsockname()
        udp.bind((host, 0))
        dcids = [os.urandom(8) for _ in range(3)]
        scid = os.urandom(8)
        train = [_client_initial(dcids[0], scid, PING, pn=0),
                 _client_initial(dcids[0], scid, PING, pn=1),
                 _client_initial(dcids[1], scid, PING),
                 _client_initial(dcids[2], scid, PING)]  # fmt: skip
        _gso_train(udp, train, here)
        for _ in dcids:
            conn, _ = lst.accept()
            conns.append(conn)
            assert conn.getsockname()[:2] == here[:2], (
                f"accepted socket bound to {conn.getsockname()}, listener is {here}"
            )
        lst.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conns.append(lst.accept()[0])  # the second Initial went with the first
        udp.settimeout(10)
        senders = set()
        deadline = time.monotonic() + 10
        while len(senders) < 2 and time.monotonic() < deadline:
            try:
                _, src = udp.recvfrom(65536)
            except TimeoutError:
                break
            senders.add(src[:2])
            udp.settimeout(1)
        assert senders == {here[:2]}, f"replies from {senders}, listener is {here[:2]}"
    finally:
        for c in conns:
            c.close()
        udp.close()
        lst.close()


SO_MEMINFO = 55  # struct: u32 SK_MEMINFO_* values; [0] is sk_rmem_alloc, [1] sk_rcvbuf


def _rmem(sock) -> tuple[int, int]:
    """(sk_rmem_alloc, sk_rcvbuf) of any socket, a listener too (SO_MEMINFO)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * 9)
    rmem, rcvbuf = struct.unpack_from("II", raw)
    return rmem, rcvbuf


def _snmp(name: str) -> int:
    from conftest import snmp

    return snmp()[name]


@pytest.fixture
def raw_listener(quic_module):
    """A kernel listener on loopback (backlog 512) and a plain UDP socket to play clients."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    lst.bind(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    yield lst, udp
    udp.close()
    lst.close()


def test_initials_that_do_not_open_make_no_request(raw_listener):
    """Issue 13, defect 4: a 1200-byte datagram with an Initial header and an 8-byte DCID
    whose protection does not open with that DCID's Initial keys is dropped (counted in
    QuicPktDecDrop) and leaves nothing behind: accept() has nothing to return and the
    listener holds no receive memory."""
    lst, udp = raw_listener
    lst.listen(64)
    here = lst.getsockname()
    before = _snmp("QuicPktDecDrop")
    n = 20
    for i in range(n):
        dgram = bytearray(_client_initial(os.urandom(8), os.urandom(8), PING))
        dgram[100 + i] ^= 0x01  # one bit of the ciphertext (the tag no longer matches)
        udp.sendto(bytes(dgram), here)
    forged = bytearray(_client_initial(os.urandom(8), os.urandom(8), PING))
    forged[-1] ^= 0x80  # the tag itself
    udp.sendto(bytes(forged), here)
    # Junk of the right shape: Initial header, random bytes behind it.
    junk = bytes([0xC3, 0, 0, 0, 1, 8]) + os.urandom(8) + b"\x00\x00\x44\x9e" + os.urandom(1200)
    udp.sendto(junk[:1200], here)
    time.sleep(0.5)
    lst.settimeout(1)
    with pytest.raises(TimeoutError):
        lst.accept()
    assert _snmp("QuicPktDecDrop") - before >= n + 2
    assert _rmem(lst)[0] == 0


def test_listener_requests_charged_and_bounded(raw_listener):
    """What waits for accept() is charged to the listener's receive memory and stays within
    its SO_RCVBUF: 200 valid Initials for 200 connections against a 32 KB buffer (64 KB of
    sk_rcvbuf) queue only as many requests as fit, and accepting them gives it all back.
    Also at most 16 datagrams of one request are kept."""
    lst, udp = raw_listener
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    lst.listen(512)
    here = lst.getsockname()
    scid = os.urandom(8)
    udp.sendto(_client_initial(os.urandom(8), scid, PING), here)
    time.sleep(0.3)
    one, rcvbuf = _rmem(lst)
    assert rcvbuf == 65536
    assert one > 0, "the request's datagram is not charged to the listener"
    many = os.urandom(8)
    for pn in range(40):  # one request, 40 datagrams: 16 kept
        udp.sendto(_client_initial(many, scid, PING, pn=pn), here)
    time.sleep(0.3)
    held = _rmem(lst)[0] - one
    assert one * 15 < held <= one * 16, f"one request holds {held} bytes, a datagram {one}"
    for _ in range(200):
        udp.sendto(_client_initial(os.urandom(8), scid, PING), here)
    time.sleep(1)
    rmem, _ = _rmem(lst)
    assert 0 < rmem <= rcvbuf, f"listener holds {rmem} bytes, SO_RCVBUF gives {rcvbuf}"
    lst.settimeout(2)
    accepted = []
    try:
        while True:
            try:
                accepted.append(lst.accept()[0])
            except TimeoutError:
                break
        assert 1 < len(accepted) < 200, f"{len(accepted)} requests were queued"
        assert _rmem(lst)[0] == 0, "accept() left charges on the listener"
    finally:
        for c in accepted:
            c.close()
    print(f"listener: SO_RCVBUF {rcvbuf}, {len(accepted)} requests queued of 202, "
          f"a datagram {one} bytes, one request of 40 datagrams {held}")  # fmt: skip


def _long_scid(dgram: bytes) -> bytes:
    """Source Connection ID of the long header packet at the start of ``dgram``."""
    assert dgram[0] & 0x80, f"not a long header (first byte {dgram[0]:#x})"
    i = 6 + dgram[5]
    return dgram[i + 1 : i + 1 + dgram[i]]


def test_key_wait_buffer_charged_and_bounded(raw_listener):
    """Issue 13, defect 4: 1-RTT packets a connection cannot open yet (no keys: the TLS
    handshake has not even begun) are kept for later, but charged to the connection's
    receive memory and within its SO_RCVBUF; at most 128 of them.  300 datagrams of 1200
    bytes for its connection ID leave it holding no more than SO_RCVBUF allows."""
    from peer import inq

    lst, udp = raw_listener
    lst.listen(4)
    here = lst.getsockname()
    dcid, scid = os.urandom(8), os.urandom(8)
    udp.sendto(_client_initial(dcid, scid, PING), here)
    lst.settimeout(10)
    conn, _ = lst.accept()
    try:
        udp.settimeout(10)
        reply, _ = udp.recvfrom(65536)  # the server's Initial with the ACK of our PING
        server_cid = _long_scid(reply)
        assert len(server_cid) == 8
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        rcvbuf = _rmem(conn)[1]
        assert rcvbuf == 32768
        short = bytes([0x40]) + server_cid
        for _ in range(300):
            udp.sendto(short + os.urandom(1200 - len(short)), here)
        time.sleep(1)
        held = inq(conn)
        assert 0 < held <= rcvbuf, f"waiting for keys: {held} bytes, SO_RCVBUF gives {rcvbuf}"
        print(f"key-wait buffer: {held} bytes held of SO_RCVBUF {rcvbuf}")
    finally:
        conn.close()


# -- Retry (RFC 9000 Sections 8.1.2 and 17.2.5) ----------------------------------------------


def _initial_with_token(dcid: bytes, scid: bytes, token: bytes, pn: int = 0) -> bytes:
    """A 1200-byte client Initial (version 1, a PING) carrying ``token``."""
    from aioquic.quic.crypto import CryptoPair
    from test_wire import _varint

    pair = CryptoPair()
    pair.setup_initial(cid=dcid, is_client=True, version=1)

    def header(plen: int) -> bytes:
        return (bytes([0xC3]) + struct.pack("!I", 1) + bytes([len(dcid)]) + dcid
                + bytes([len(scid)]) + scid + _varint(len(token)) + token
                + struct.pack("!H", 0x4000 | (4 + plen + 16)) + struct.pack("!I", pn))  # fmt: skip

    body = PING + bytes(1200 - len(header(0)) - len(PING) - 16)
    return pair.encrypt_packet(header(len(body)), body, pn)


def _parse_retry(dgram: bytes, odcid: bytes) -> tuple[bytes, bytes, bytes]:
    """(DCID, SCID, token) of a Retry, after checking its type and integrity tag."""
    from aioquic.quic.packet import get_retry_integrity_tag

    assert dgram[0] & 0xF0 == 0xF0, f"not a version 1 Retry (first byte {dgram[0]:#x})"
    assert dgram[1:5] == b"\x00\x00\x00\x01"
    i = 5
    dcid = dgram[i + 1 : i + 1 + dgram[i]]
    i += 1 + dgram[i]
    scid = dgram[i + 1 : i + 1 + dgram[i]]
    i += 1 + dgram[i]
    token = dgram[i:-16]
    assert get_retry_integrity_tag(dgram[:-16], odcid, 1) == dgram[-16:], "bad integrity tag"
    return dcid, scid, token


def _expect_invalid_token(sock, dcid: bytes, scid: bytes, here) -> None:
    """The listener answers an Initial whose Retry token is not valid with an Initial holding
    CONNECTION_CLOSE INVALID_TOKEN (RFC 9000 Section 8.1.3), opened here with aioquic's server
    Initial keys of ``dcid``."""
    from aioquic.quic.crypto import CryptoPair
    from test_wire import _pull_varint

    dgram, src = sock.recvfrom(65536)
    assert src[:2] == here[:2]
    assert dgram[0] & 0xF0 == 0xC0 and dgram[1:5] == b"\x00\x00\x00\x01", dgram[:5].hex()
    i = 5
    assert dgram[i + 1 : i + 1 + dgram[i]] == scid, "not addressed to the client's SCID"
    i += 1 + dgram[i]
    i += 1 + dgram[i]
    tlen, i = _pull_varint(dgram, i)
    assert tlen == 0
    plen, i = _pull_varint(dgram, i)
    assert i + plen == len(dgram)
    pair = CryptoPair()
    pair.setup_initial(cid=dcid, is_client=True, version=1)
    _, payload, pn = pair.decrypt_packet(dgram, i, 0)
    assert payload[:2] == bytes([0x1C, 0x0B]), (
        f"not CONNECTION_CLOSE INVALID_TOKEN: {payload.hex()}"
    )


def _tp(ext: bytes) -> dict[int, bytes]:
    from test_wire import _pull_varint

    out, i = {}, 0
    while i < len(ext):
        pid, i = _pull_varint(ext, i)
        plen, i = _pull_varint(ext, i)
        out[pid] = ext[i : i + plen]
        i += plen
    return out


def test_retry_server_validates_address(quic_module):
    """validate_peer_address (QUIC_SOCKOPT_CONFIG): a first Initial is answered with a Retry
    (integrity tag checked with aioquic's RFC 9001 Section 5.8 code) and makes no request;
    the Initial that returns its token to the Retry's Source ID does, and the accepted
    connection's transport parameters carry original_destination_connection_id (the first
    DCID) and retry_source_connection_id.  A forged token, the token from another address or
    for another DCID, and a token older than 3 s make nothing but a CONNECTION_CLOSE with
    INVALID_TOKEN."""
    from quicctl import abi

    lst = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    late = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    conn = None
    try:
        abi.setsockopt(lst, "CONFIG", validate_peer_address=1)
        lst.bind(("127.0.0.1", 0))
        lst.listen(8)
        here = lst.getsockname()
        udp.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.2", 0))
        udp.settimeout(10)
        lst.settimeout(1)

        def retry_for(odcid: bytes, scid: bytes, udp=udp) -> tuple[bytes, bytes]:
            udp.sendto(_initial_with_token(odcid, scid, b""), here)
            dgram, src = udp.recvfrom(65536)
            assert src[:2] == here[:2]
            dcid, rscid, token = _parse_retry(dgram, odcid)
            assert dcid == scid and len(rscid) == 8 and rscid != odcid and token
            return rscid, token

        odcid, scid = os.urandom(8), os.urandom(8)
        rscid, token = retry_for(odcid, scid)
        with pytest.raises(TimeoutError):
            lst.accept()  # the first Initial made no request

        before = _snmp("QuicPktRcvDrop")
        forged = bytearray(token)
        forged[len(forged) // 2] ^= 0x01
        udp.sendto(_initial_with_token(rscid, scid, bytes(forged)), here)
        _expect_invalid_token(udp, rscid, scid, here)
        other.settimeout(10)
        other.sendto(_initial_with_token(rscid, scid, token), here)  # another address
        _expect_invalid_token(other, rscid, scid, here)
        dcid3 = os.urandom(8)
        udp.sendto(_initial_with_token(dcid3, scid, token), here)  # another DCID
        _expect_invalid_token(udp, dcid3, scid, here)
        with pytest.raises(TimeoutError):
            lst.accept()
        assert _snmp("QuicPktRcvDrop") - before >= 3

        udp.sendto(_initial_with_token(rscid, scid, token), here)
        lst.settimeout(10)
        conn, _ = lst.accept()
        tp = _tp(abi.getsockopt(conn, "TRANSPORT_PARAM_EXT"))
        assert tp.get(0x00) == odcid, f"original_destination_connection_id {tp.get(0x00)}"
        assert tp.get(0x10) == rscid, f"retry_source_connection_id {tp.get(0x10)}"

        # A fresh socket: the accepted connection answers on the first one.
        late.bind(("127.0.0.1", 0))
        late.settimeout(10)
        odcid2 = os.urandom(8)
        rscid2, token2 = retry_for(odcid2, scid, late)
        time.sleep(3.3)  # Retry tokens are valid 3 s (ABI reference Section 1)
        late.sendto(_initial_with_token(rscid2, scid, token2), here)
        _expect_invalid_token(late, rscid2, scid, here)
        lst.settimeout(1)
        with pytest.raises(TimeoutError):
            lst.accept()
    finally:
        if conn is not None:
            conn.close()
        for s in (udp, other, late, lst):
            s.close()


def test_retry_aioquic_client_to_kernel_server(quic_module, clean_path, topo, tmp_path):
    """An aioquic client follows the kernel server's Retry and checks both connection IDs
    of the transport parameters (RFC 9000 Section 7.3), then downloads a file."""
    from conftest import SERVER_NAME, KernelHqServer

    from quicctl import userspace
    from quicctl.hq import make_file
    from quicctl.netns import enter
    from quicctl.paths import KEYS

    digest = make_file(tmp_path / "f", 100_000, seed=7)
    server = KernelHqServer(topo, tmp_path, config={"validate_peer_address": 1})
    try:
        with enter(topo.client):
            downloads = userspace.fetch(topo.server_v4, server.port, ["/f"],
                                        cafile=str(KEYS / "ca.crt"), server_name=SERVER_NAME,
                                        timeout=120)  # fmt: skip
        assert downloads[0].done and downloads[0].sha256.hexdigest() == digest
    finally:
        server.close()
    assert not server.log, server.log


@pytest.mark.parametrize("server", ["aioquic", "kernel"])
def test_retry_kernel_client_follows_retry(quic_module, clean_path, topo, tmp_path, server):
    """A kernel client follows a Retry (RFC 9000 Section 17.2.5.2): it sends its Initial again
    to the Retry's Source ID with the token, under the keys of that ID, and checks the
    server's retry_source_connection_id; against aioquic with retry=True (which then also
    moves to QUIC v2 by compatible version negotiation) and against a kernel server with
    validate_peer_address.  Before, the Retry was dropped and the handshake timed out."""
    from conftest import KernelHqServer, kernel_connect

    from quicctl import hq, userspace
    from quicctl.hq import make_file
    from quicctl.netns import enter
    from quicctl.paths import KEYS

    digest = make_file(tmp_path / "f", 100_000, seed=8)
    if server == "aioquic":
        with enter(topo.server):
            srv = userspace.ServerThread("::", 0, root=tmp_path, certfile=str(KEYS / "cert.crt"),
                                         keyfile=str(KEYS / "pkey.key"), retry=True)  # fmt: skip
    else:
        srv = KernelHqServer(topo, tmp_path, config={"validate_peer_address": 1})
    try:
        with kernel_connect(topo, topo.server_v6, srv.port, timeout=60) as conn:
            downloads = hq.fetch(conn, ["/f"], None)
        assert downloads[0].done and downloads[0].sha256.hexdigest() == digest
    finally:
        srv.close()


def _this_quicctl() -> list[str]:
    """The quicctl command of this source tree (the venv's console script may be another's)."""
    root = Path(__file__).resolve().parent.parent
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r}); sys.argv[0] = 'quicctl'; "
        "from quicctl.cli import main; main()"
    )
    return [sys.executable, "-c", code]


def test_retry_gtlsclient_from_quicctl_server_retry(quic_module, clean_path, topo, tmp_path):
    """ngtcp2's HTTP/3 client follows the Retry of `quicctl server --retry` (kernel) and
    downloads a file byte-identical (gtlsclient exits 0 even on failure: the bytes decide)."""
    import hashlib

    from conftest import SERVER_NAME
    from test_h3 import _tool

    from quicctl.demo import _stop, _wait_listening
    from quicctl.hq import make_file
    from quicctl.paths import KEYS

    root = tmp_path / "www"
    root.mkdir()
    digest = make_file(root / "f", 200_000, seed=9)
    outdir = tmp_path / "dl"
    outdir.mkdir()
    port = 4475
    qlog = tmp_path / "qlog"
    qlog.mkdir()
    errlog = open(tmp_path / "server.err", "w+")  # noqa: SIM115 - closed below
    srv = topo.popen(topo.server,
                     [*_this_quicctl(), "server", "::", str(port), str(KEYS / "pkey.key"),
                      str(KEYS / "cert.crt"), "--root", str(root), "--retry"],
                     stdout=subprocess.PIPE, stderr=errlog, text=True)  # fmt: skip
    try:
        _wait_listening(srv, "quicctl")
        addr = topo.server_v4
        r = topo.run(topo.client,
                     [_tool("gtlsclient"), "-q", "--exit-on-all-streams-close", "--download",
                      str(outdir), "--qlog-dir", str(qlog), "--sni", SERVER_NAME, addr, str(port),
                      f"https://{addr}:{port}/f"],
                     capture_output=True, text=True, timeout=300)  # fmt: skip
    finally:
        _stop(srv)
        errlog.seek(0)
        said = errlog.read()[-2000:]
        errlog.close()
    got = outdir / "f"
    events = "".join(p.read_text()[-3000:] for p in qlog.iterdir())
    detail = (f"gtlsclient stdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-2000:]}\n"
              f"server:\n{said}\nqlog (end):\n{events}")  # fmt: skip
    assert got.is_file(), f"nothing downloaded\n{detail}"
    assert hashlib.sha256(got.read_bytes()).hexdigest() == digest, detail


def test_retry_quicctl_client_from_gtlsserver_validating(quic_module, clean_path, topo, tmp_path):
    """`quicctl client --alpn h3` (kernel) against ngtcp2's server with address validation
    (gtlsserver -V, a Retry for every new connection): before, the kernel dropped the Retry
    and the handshake timed out."""
    from conftest import SERVER_NAME
    from test_h3 import _tool

    from quicctl.hq import make_file
    from quicctl.paths import KEYS

    root = tmp_path / "www"
    root.mkdir()
    digest = make_file(root / "f", 200_000, seed=10)
    port = 4476
    log = open(tmp_path / "gtlsserver.log", "w+")  # noqa: SIM115 - closed below
    srv = topo.popen(topo.server,
                     [_tool("gtlsserver"), "-q", "-V", "-d", str(root), "*", str(port),
                      str(KEYS / "pkey.key"), str(KEYS / "cert.crt")],
                     stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ss = topo.run(topo.server, ["ss", "-Hunl", f"sport = :{port}"],
                          capture_output=True, text=True)  # fmt: skip
            if ss.stdout.strip():
                break
            time.sleep(0.2)
        r = topo.run(topo.client,
                     [*_this_quicctl(), "client", topo.server_v4, str(port), "--alpn", "h3",
                      "--cafile", str(KEYS / "ca.crt"), "--server-name", SERVER_NAME, "/f"],
                     capture_output=True, text=True, timeout=300)  # fmt: skip
    finally:
        srv.terminate()
        srv.wait(10)
        log.seek(0)
        said = log.read()[-2000:]
        log.close()
    detail = f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}\ngtlsserver:\n{said}"
    assert r.returncode == 0, f"quicctl client failed ({r.returncode})\n{detail}"
    assert r.stdout.split()[0] == digest, detail
