"""QUIC versions: compatible version negotiation to v2 (RFC 9368 Section 2.3, RFC 9369) with
quic.ko at both ends and with aioquic, and incompatible negotiation (RFC 9368 Section 2.1): a
client sent a version the server does not know gets a Version Negotiation packet and starts
again in one it does; forged or late Version Negotiation packets are ignored or end the attempt
as RFC 9000 Section 6.2 and RFC 9368 Section 4 say.  ngtcp2's client takes the same path."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from conftest import SERVER_NAME, KernelHqServer, kernel_connect, kernel_listener, snmp
from peer import ALPN, AioPeer, KernelAccept
from test_h3 import _addr, _check_files, _tool, _url_host
from test_ss import _lib, quic_diag  # noqa: F401 (a fixture)

from quicctl import abi
from quicctl.paths import KEYS

V1 = 0x00000001
V2 = 0x6B3343CF
UNKNOWN = 0x1A2A3A4A  # a reserved version (RFC 9000 Section 15): no server speaks it
VERSION_NEGOTIATION_ERROR = 0x11
PAYLOAD = bytes(range(256)) * 512  # 128 KiB each way


def _version(sock) -> int:
    """The version the connection runs in (QUIC_SOCKOPT_CONFIG reports the one in use)."""
    return abi.getsockopt(sock, "CONFIG")["version"]


class _Echo:
    """A kernel listener (``config`` for it) that accepts one connection in a thread and
    echoes one stream back."""

    def __init__(self, topo, config=None):
        self.srv = kernel_listener(topo, "0.0.0.0", alpn=ALPN, config=config)
        self.port = self.srv.getsockname()[1]
        self.conn = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.conn = self.srv.accept(timeout=120)
            got, fin = bytearray(), False
            while not fin:
                sid, data, fin = self.conn.recv()
                got += data
            self.conn.sendall(bytes(got), sid, fin=True)
        except BaseException as exc:  # reported by wait()
            self.error = exc

    def wait(self):
        self.thread.join(150)
        assert self.error is None, self.error
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.srv.close()


def _echo_through(conn) -> bytes:
    sid = conn.open_stream()
    conn.sendall(PAYLOAD, sid, fin=True)
    got, fin = bytearray(), False
    while not fin:
        _, data, fin = conn.recv()
        got += data
    return bytes(got)


def _kernel_pair(topo, server_config, client_config):
    """An echo through quic.ko at both ends; the two connections' versions."""
    srv = _Echo(topo, server_config)
    try:
        with kernel_connect(topo, topo.server_v4, srv.port, alpn=ALPN,
                            config=client_config) as conn:  # fmt: skip
            assert _echo_through(conn) == PAYLOAD
            server_conn = srv.wait()
            return _version(conn.sock), _version(server_conn.sock)
    finally:
        srv.close()


@pytest.mark.packaged_kernel  # quic_diag.ko needs CONFIG_INET_DIAG: not in the debug kernel
@pytest.mark.parametrize("client", [None, V1, V2], ids=["default", "v1", "v2"])
def test_kernel_to_kernel_v2(quic_module, clean_path, topo, quic_diag, client):  # noqa: F811
    """A server that prefers v2 moves a client that starts in v1 (and offers v2 in its
    version_information) to v2 without a round trip; a client that starts in v2 stays there.
    Data goes both ways; both ends report v2, through CONFIG and through sock_diag (`quicctl
    ss`), while connected."""
    srv = _Echo(topo, {"version": V2})
    try:
        config = {"version": client} if client else None
        with kernel_connect(topo, topo.server_v4, srv.port, alpn=ALPN,
                            config=config) as conn:  # fmt: skip
            assert _echo_through(conn) == PAYLOAD
            server_conn = srv.wait()
            assert _version(conn.sock) == V2
            assert _version(server_conn.sock) == V2
            port = conn.getsockname()[1]
            client_rows = _lib(topo.client, sport=port)
            server_rows = _lib(topo.server, dport=port)
            assert [r["version_name"] for r in client_rows] == ["v2"], client_rows
            assert [r["version_name"] for r in server_rows] == ["v2"], server_rows
    finally:
        srv.close()


def test_kernel_to_kernel_v1_stays(quic_module, clean_path, topo):
    """Without a preference the server answers in the client's version, v1."""
    assert _kernel_pair(topo, None, None) == (V1, V1)


@pytest.mark.parametrize("server_pref", [None, V2], ids=["server-v1", "server-v2"])
def test_kernel_client_unknown_version_to_kernel(quic_module, clean_path, topo, server_pref):
    """A client configured with a version no server speaks gets our server's Version
    Negotiation packet, starts again in v1 with the same ClientHello, and the server may then
    move it to v2 (compatible negotiation after incompatible, RFC 9368 Figure 1)."""
    config = {"version": server_pref} if server_pref else None
    versions = _kernel_pair(topo, config, {"version": UNKNOWN})
    want = server_pref or V1
    assert versions == (want, want)


def test_kernel_client_unknown_version_to_aioquic(quic_module, clean_path, topo, tmp_path):
    """The same against aioquic's server, which answers with its Version Negotiation packet and
    then moves the v1 attempt to v2."""
    from quicctl import hq, userspace
    from quicctl.hq import make_file
    from quicctl.netns import enter

    digest = make_file(tmp_path / "f", 300000, seed=7)
    versions: list[int] = []
    with enter(topo.server):
        server = userspace.ServerThread(
            "::", 0, root=tmp_path, certfile=str(KEYS / "cert.crt"),
            keyfile=str(KEYS / "pkey.key"), versions=versions,
        )  # fmt: skip
    try:
        with kernel_connect(topo, topo.server_v6, server.port,
                            config={"version": UNKNOWN}) as conn:  # fmt: skip
            downloads = hq.fetch(conn, ["/f"], None)
            assert _version(conn.sock) == versions[0]
        assert downloads[0].done and downloads[0].sha256.hexdigest() == digest
        assert versions in ([V1], [V2]), [hex(v) for v in versions]
    finally:
        server.close()


# -- Version Negotiation packets on the wire --------------------------------------------------


def _long_header(version: int, dcid: bytes, scid: bytes, first: int = 0xC0) -> bytes:
    return (bytes([first]) + struct.pack("!I", version) + bytes([len(dcid)]) + dcid
            + bytes([len(scid)]) + scid)  # fmt: skip


def _parse_long(data: bytes) -> tuple[int, bytes, bytes, bytes]:
    """(version, DCID, SCID, the rest) of a long header packet."""
    version = struct.unpack("!I", data[1:5])[0]
    dl = data[5]
    dcid = data[6 : 6 + dl]
    sl = data[6 + dl]
    scid = data[7 + dl : 7 + dl + sl]
    return version, dcid, scid, data[7 + dl + sl :]


def _udp(topo, ns: str, family=socket.AF_INET) -> socket.socket:
    from quicctl.netns import enter

    with enter(ns):
        s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    return s


def _silent(sock, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        sock.recv(65536)
    except TimeoutError:
        return True
    return False


def test_server_sends_version_negotiation(quic_module, clean_path, topo):
    """Our listener answers a 1200-byte Initial of an unknown version with a Version
    Negotiation packet that echoes both connection IDs, has 0x40 set and lists v2 and v1
    (RFC 9000 Sections 6.1 and 17.2.1); it answers neither a Version Negotiation packet nor a
    datagram under 1200 bytes (Section 14.1)."""
    srv = kernel_listener(topo, "0.0.0.0", alpn=ALPN)
    udp = _udp(topo, topo.client)
    try:
        addr = (topo.server_v4, srv.getsockname()[1])
        dcid, scid = bytes(range(1, 9)), b"\xaa\xbb\xcc\xdd\xee"
        pkt = _long_header(UNKNOWN, dcid, scid)
        udp.sendto(pkt.ljust(1200, b"\0"), addr)
        udp.settimeout(30)
        vn = udp.recv(65536)
        version, vdcid, vscid, rest = _parse_long(vn)
        assert vn[0] & 0xC0 == 0xC0 and version == 0
        assert (vdcid, vscid) == (scid, dcid)
        assert len(rest) % 4 == 0
        listed = {struct.unpack("!I", rest[i : i + 4])[0] for i in range(0, len(rest), 4)}
        assert listed == {V1, V2}, [hex(v) for v in listed]
        # A Version Negotiation packet (version 0) is never answered, nor a short datagram.
        udp.sendto((_long_header(0, dcid, scid, 0x80) + struct.pack("!I", UNKNOWN))
                   .ljust(1200, b"\0"), addr)  # fmt: skip
        udp.sendto(pkt.ljust(1199, b"\0"), addr)
        assert _silent(udp, 3), "the listener answered a VN packet or a short datagram"
    finally:
        udp.close()
        srv.close()


class _FakeServer:
    """A UDP socket in the server namespace that takes a kernel client's first Initial and
    answers with the Version Negotiation packets a test forges; the client runs in a thread."""

    def __init__(self, topo, client_config=None):
        self.udp = _udp(topo, topo.server)
        self.port = self.udp.getsockname()[1]
        self.error: BaseException | None = None
        self.conn = None
        self.thread = threading.Thread(
            target=self._connect, args=(topo, client_config), daemon=True
        )
        self.thread.start()
        self.udp.settimeout(60)
        data, self.client = self.udp.recvfrom(65536)
        self.version, self.dcid, self.scid, _ = _parse_long(data)
        assert len(data) >= 1200

    def _connect(self, topo, config) -> None:
        try:
            self.conn = kernel_connect(topo, topo.server_v4, self.port, alpn=ALPN, config=config,
                                       timeout=30)  # fmt: skip
        except BaseException as exc:  # examined by the test
            self.error = exc

    def vn(self, versions, dcid=None, scid=None) -> None:
        body = b"".join(struct.pack("!I", v) for v in versions)
        hdr = _long_header(0, self.scid if dcid is None else dcid,
                           self.dcid if scid is None else scid, 0xC0)  # fmt: skip
        self.udp.sendto(hdr + body, self.client)

    def close(self) -> None:
        self.udp.close()
        self.thread.join(90)
        if self.conn is not None:
            self.conn.close()


def test_forged_version_negotiation(quic_module, clean_path, topo):
    """RFC 9000 Section 6.2 and RFC 9368 Sections 2.1 and 4: a v1 client ignores a Version
    Negotiation packet that does not echo its connection IDs or that lists v1 (each counted
    as a drop), and gives up with VERSION_NEGOTIATION_ERROR on one that lists only versions
    it cannot start again in: its ClientHello named v1."""
    fake = _FakeServer(topo)
    try:
        assert fake.version == V1
        drops = snmp(ns=topo.client)["QuicPktRcvDrop"]
        fake.vn([0x5A5A5A5A], scid=b"\x01" * 8)  # not the client's DCID
        fake.vn([0x5A5A5A5A], dcid=b"\x02" * 8)  # not the client's SCID
        fake.vn([0x5A5A5A5A, V1, V2])  # lists the version the client sent: stale or forged
        deadline = time.monotonic() + 30
        while snmp(ns=topo.client)["QuicPktRcvDrop"] < drops + 3:
            assert time.monotonic() < deadline, "the forged VN packets were not counted"
            time.sleep(0.1)
        assert fake.thread.is_alive() and fake.error is None, fake.error
        fake.vn([0x5A5A5A5A, 0xFF00001D])  # nothing the client can start again in
        fake.thread.join(60)
        assert not fake.thread.is_alive(), "the client did not give up"
        assert getattr(fake.error, "error_code", None) == VERSION_NEGOTIATION_ERROR, fake.error
    finally:
        fake.close()


def test_forged_version_negotiation_for_unknown_version(quic_module, clean_path, topo):
    """A client that started in an unknown version takes one Version Negotiation packet: it
    starts again in v1 to a new Destination ID, with the same Source ID, and ignores any
    further Version Negotiation packet (RFC 9368 Section 4)."""
    fake = _FakeServer(topo, {"version": UNKNOWN})
    try:
        assert fake.version == UNKNOWN
        fake.vn([V2, V1])
        fake.udp.settimeout(30)
        data = fake.udp.recv(65536)
        version, dcid, scid, _ = _parse_long(data)
        assert version == V1 and scid == fake.scid and dcid != fake.dcid and len(data) >= 1200
        drops = snmp(ns=topo.client)["QuicPktRcvDrop"]
        fake.dcid = dcid
        fake.vn([0x5A5A5A5A])  # a second one, for the new attempt: ignored
        deadline = time.monotonic() + 30
        while snmp(ns=topo.client)["QuicPktRcvDrop"] < drops + 1:
            assert time.monotonic() < deadline, "the second VN packet was not counted"
            time.sleep(0.1)
        assert fake.thread.is_alive() and fake.error is None, fake.error
    finally:
        fake.close()


@pytest.mark.packaged_kernel  # quic_diag.ko needs CONFIG_INET_DIAG: not in the debug kernel
def test_version_negotiation_after_handshake_ignored(
    quic_module,
    clean_path,
    topo,
    quic_diag,  # noqa: F811
):
    """A Version Negotiation packet after the server's packets (here once connected), sent to
    the client's connection ID, is dropped and counted; the connection goes on."""
    srv = _Echo(topo)
    udp = _udp(topo, topo.server)
    try:
        with kernel_connect(topo, topo.server_v4, srv.port, alpn=ALPN) as conn:
            port = conn.getsockname()[1]
            rows = _lib(topo.client, sport=port)
            assert len(rows) == 1 and rows[0]["scid"], rows
            drops = snmp(ns=topo.client)["QuicPktRcvDrop"]
            vn = _long_header(0, bytes.fromhex(rows[0]["scid"]), b"\x01" * 8)
            udp.sendto(vn + struct.pack("!I", 0x5A5A5A5A), (topo.client_v4, port))
            assert _echo_through(conn) == PAYLOAD
            assert snmp(ns=topo.client)["QuicPktRcvDrop"] >= drops + 1
    finally:
        udp.close()
        srv.close()


# -- aioquic and ngtcp2 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aio", "server_pref"),
    [({"original_version": V2}, None), ({"supported_versions": [V1, V2]}, V2)],
    ids=["aioquic-v2", "aioquic-v1-server-v2"],
)
def test_aioquic_client_v2(quic_module, clean_path, topo, aio, server_pref):
    """aioquic's client in v2 from its first packet, or in v1 moved to v2 by our server:
    data both ways, v2 at both ends."""
    from aioquic.quic import events

    acc = KernelAccept(topo)
    if server_pref:
        abi.setsockopt(acc.srv.sock, "CONFIG", version=server_pref)
    peer = AioPeer(topo, acc.port, **aio)
    try:
        conn, reader, step = peer.accepted(acc)
        assert _version(conn.sock) == V2
        assert peer.quic._version == V2  # aioquic keeps the version in use there
        peer.quic.send_stream_data(0, PAYLOAD, end_stream=True)
        got, fin = bytearray(), False
        while not fin:
            peer.pump()
            conn.sock.settimeout(0.05)
            try:
                sid, data, fin = conn.recv()
            except (TimeoutError, BlockingIOError):
                continue
            got += data
        assert bytes(got) == PAYLOAD
        conn.sock.settimeout(None)
        conn.sendall(b"pong", 0, fin=True)
        peer.until(lambda: 0 in peer.fin, "the answer")
        assert bytes(peer.data[0]) == b"pong"
        assert not [e for e in peer.events if isinstance(e, events.ConnectionTerminated)]
    finally:
        peer.close()
        acc.close()


def test_gtlsclient_unknown_version(quic_module, clean_path, topo, tmp_path):
    """ngtcp2's client started in an unknown version (--version) takes our server's Version
    Negotiation packet and connects again in v1 (--preferred-versions): the file arrives."""
    import subprocess

    from quicctl.hq import make_file

    root = tmp_path / "www"
    root.mkdir()
    digests = {"f": make_file(root / "f", 200000, seed=3)}
    server = KernelHqServer(topo, root, alpn=["h3", "hq-interop"])
    outdir = tmp_path / "dl"
    outdir.mkdir()
    addr = _addr(topo, "ipv4")
    try:
        r = topo.run(
            topo.client,
            [_tool("gtlsclient"), "-q", "--exit-on-all-streams-close", "--download",
             str(outdir), "--sni", SERVER_NAME, f"--version={UNKNOWN:#x}",
             "--preferred-versions=v1", addr, str(server.port),
             f"https://{_url_host(addr)}:{server.port}/f"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        server.close()
    detail = f"gtlsclient stdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-2000:]}"
    assert isinstance(r, subprocess.CompletedProcess)
    _check_files(outdir, digests, ["f"], detail)
