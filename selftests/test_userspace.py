"""quicctl.userspace: hq-interop between an aioquic server and an aioquic client, no module.

The userspace peer is the independent side of the interop tests, so it is checked on its own
here first: transfers (hash of the bytes received against the file served), cipher selection,
certificate and ALPN failures, unknown paths, key log, refused and unanswered connections.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import require, run

from quicctl import userspace
from quicctl.errors import HandshakeError, HandshakeTimeoutError, QuicctlError
from quicctl.hq import make_file
from quicctl.paths import KEYS

pytestmark = pytest.mark.host

CA, OTHER_CA = str(KEYS / "ca.crt"), str(KEYS / "other-ca.crt")
CERT, PKEY = str(KEYS / "cert.crt"), str(KEYS / "pkey.key")
BIG = 1 << 20
SMALL = 20
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


HOSTS = ["127.0.0.1", "::1"]


@pytest.fixture(scope="module")
def www(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A root with a 1 MB file and 20 small ones (path -> SHA-256), and a file beside it."""
    base = tmp_path_factory.mktemp("userspace")
    root = base / "www"
    (root / "sub").mkdir(parents=True)
    hashes = {"/big": make_file(root / "big", BIG, seed=1)}
    for i in range(SMALL):
        hashes[f"/sub/f{i}"] = make_file(root / "sub" / f"f{i}", 100 + 37 * i, seed=100 + i)
    (base / "outside").write_bytes(b"not for clients")
    return root, hashes


def start(host: str, root: Path, port: int = 0, **kw) -> userspace.ServerThread:
    kw.setdefault("keylog", "")
    return userspace.ServerThread(host, port, root=root, certfile=CERT, keyfile=PKEY, **kw)


@pytest.fixture(scope="module", params=HOSTS)
def server(request, www):
    """(host, port, hashes) of a userspace server with default settings."""
    root, hashes = www
    srv = start(request.param, root)
    yield request.param, srv.port, hashes
    srv.close()


def fetch(host: str, port: int, paths, **kw):
    kw.setdefault("cafile", CA)
    kw.setdefault("keylog", "")
    kw.setdefault("timeout", 10)
    return userspace.fetch(host, port, list(paths), **kw)


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def test_many_files_one_connection(server, tmp_path):
    host, port, hashes = server
    paths = list(hashes)
    got = fetch(host, port, paths, outdir=tmp_path)
    assert [d.path for d in got] == paths
    # one connection: the client's bidirectional streams 0, 4, 8, ... one per request
    assert [d.stream_id for d in got] == [4 * i for i in range(len(paths))]
    for d in got:
        assert d.done and d.finished >= d.started
        assert d.sha256.hexdigest() == hashes[d.path], d.path
        assert hashlib.sha256(d.out.read_bytes()).hexdigest() == hashes[d.path], d.out
    assert got[0].size == BIG


def test_concurrent_connections(server):
    host, port, hashes = server
    results: list = []
    errors: list = []

    def one() -> None:
        try:
            results.extend(fetch(host, port, ["/big", "/sub/f3"]))
        except QuicctlError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(results) == 8
    assert all(d.sha256.hexdigest() == hashes[d.path] for d in results)


def test_unknown_path_empty_answer(server):
    host, port, hashes = server
    got = fetch(host, port, ["/missing", "/../outside", "/sub", "/sub/f1"])
    for d in got[:3]:  # no such file, outside the root, a directory: empty answer + FIN
        assert d.done and d.size == 0, d.path
        assert d.sha256.hexdigest() == EMPTY_SHA256
    assert got[3].sha256.hexdigest() == hashes["/sub/f1"]


# cipher -> another cipher the server does not accept
CIPHER_PAIRS = [
    ("TLS_AES_128_GCM_SHA256", "CHACHA20-POLY1305"),
    ("TLS_CHACHA20_POLY1305_SHA256", "AES-128-GCM"),
]


@pytest.mark.parametrize("cipher,other", CIPHER_PAIRS, ids=["aes128gcm", "chacha20"])
def test_cipher(www, cipher, other):
    """A server that accepts only ``cipher``: a client offering it gets the file, a client
    offering only ``other`` fails the handshake, so ``cipher`` is the one negotiated."""
    root, hashes = www
    with start("127.0.0.1", root, ciphers=[cipher]) as srv:
        (d,) = fetch("127.0.0.1", srv.port, ["/big"], ciphers=[cipher])
        assert d.sha256.hexdigest() == hashes["/big"]
        with pytest.raises(HandshakeError, match="handshake_failure.*cipher"):
            fetch("127.0.0.1", srv.port, ["/big"], ciphers=[other])


def test_cipher_names():
    aes, chacha = (
        userspace.CIPHERS["TLS_AES_128_GCM_SHA256"],
        userspace.CIPHERS["TLS_CHACHA20_POLY1305_SHA256"],
    )
    assert userspace.cipher_suites("chacha20-poly1305,TLS_AES_128_GCM_SHA256") == [chacha, aes]
    assert userspace.cipher_suites(None) is None
    with pytest.raises(QuicctlError, match="AES-128-CCM.*aioquic implements"):
        userspace.cipher_suites(["AES-128-CCM"])


def test_wrong_ca(server):
    host, port, _ = server
    with pytest.raises(HandshakeError) as exc:
        fetch(host, port, ["/big"], cafile=OTHER_CA)
    msg = str(exc.value)
    assert f"{host} port {port}" in msg
    assert "bad_certificate" in msg and "unable to get local issuer certificate" in msg
    assert "other-ca.crt" in msg
    assert (exc.value.alert, exc.value.alert_name) == (42, "bad_certificate")
    assert exc.value.error_code == 0x100 + 42


def test_wrong_server_name(server):
    host, port, _ = server
    with pytest.raises(HandshakeError, match="bad_certificate.*'wrong.example' doesn't match"):
        fetch(host, port, ["/big"], server_name="wrong.example")


def test_server_name_and_insecure(server):
    host, port, hashes = server
    (d,) = fetch(host, port, ["/sub/f0"], server_name="server.quic.test")
    assert d.sha256.hexdigest() == hashes["/sub/f0"]
    (d,) = fetch(host, port, ["/sub/f0"], cafile=None, insecure=True)
    assert d.sha256.hexdigest() == hashes["/sub/f0"]


def test_alpn_mismatch(server):
    host, port, _ = server
    with pytest.raises(HandshakeError) as exc:
        fetch(host, port, ["/big"], alpn="h3")
    msg = str(exc.value)
    assert f"{host} port {port}" in msg
    assert "no_application_protocol" in msg and "ALPN" in msg and "h3" in msg
    assert (exc.value.alert, exc.value.alert_name) == (120, "no_application_protocol")


def test_keylog(www, tmp_path):
    """Both ends write NSS key log lines for the connection; AES-256-GCM secrets are SHA-384
    sized (48 bytes), which shows the cipher asked for is the one in use."""
    root, hashes = www
    server_log, client_log = tmp_path / "server.keys", tmp_path / "client.keys"
    with start("127.0.0.1", root, keylog=str(server_log)) as srv:
        (d,) = fetch(
            "127.0.0.1",
            srv.port,
            ["/sub/f2"],
            keylog=str(client_log),
            ciphers=["TLS_AES_256_GCM_SHA384"],
        )
    assert d.sha256.hexdigest() == hashes["/sub/f2"]
    labels = {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    }
    for log in (client_log, server_log):
        assert log.stat().st_mode & 0o077 == 0, f"{log}: secrets readable by others"
        lines = [line.split() for line in log.read_text().splitlines()]
        assert {line[0] for line in lines} == labels, log
        assert len({line[1] for line in lines}) == 1  # one connection's client random
        assert all(len(bytes.fromhex(line[2])) == 48 for line in lines)


def test_keylog_from_environment(server, tmp_path, monkeypatch):
    """With no ``keylog`` argument, $SSLKEYLOGFILE decides (as for the kernel path)."""
    host, port, _ = server
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "env.keys"))
    userspace.fetch(host, port, ["/sub/f0"], cafile=CA, timeout=10)
    assert "CLIENT_TRAFFIC_SECRET_0" in (tmp_path / "env.keys").read_text()


@contextlib.contextmanager
def capture(port: int, pcap: Path):
    """tcpdump of UDP ``port`` on lo into ``pcap``, known to be running before the body and
    to have written what came before its end (a probe datagram is seen in the file)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        probe_port = sink.getsockname()[1]
        bpf = f"udp port {port} or udp port {probe_port}"
        argv = ["tcpdump", "-i", "lo", "-n", "-U", "-w", str(pcap), bpf]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def probe_seen() -> None:
            size = max(pcap.stat().st_size if pcap.exists() else 0, 24)  # pcap header: 24
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                sink.sendto(b"probe", ("127.0.0.1", probe_port))
                time.sleep(0.05)
                if pcap.exists() and pcap.stat().st_size > size:
                    return
            proc.kill()
            pytest.fail(f"{' '.join(argv)}: no packet captured\n{proc.communicate()[1]}")

        try:
            probe_seen()
            yield
            probe_seen()
        finally:
            proc.terminate()
            proc.wait(10)


def test_capture_decrypts_with_keylog(www, tmp_path):
    """What the key log is for: tshark decrypts a capture with it.  On the wire: the
    ServerHello's cipher suite is the one asked for, and the request is readable."""
    require("tcpdump", "tshark")
    assert os.geteuid() == 0, "capturing on lo needs root (the suite runs as root)"
    root, hashes = www
    pcap, keys = tmp_path / "quic.pcap", tmp_path / "keys.log"
    with start("127.0.0.1", root, ciphers=["CHACHA20-POLY1305"]) as srv:
        with capture(srv.port, pcap):
            (d,) = fetch("127.0.0.1", srv.port, ["/sub/f1"], keylog=str(keys))
    assert d.sha256.hexdigest() == hashes["/sub/f1"]
    decrypt = ["-o", f"tls.keylog_file:{keys}", "-Y", "quic", "-T", "fields"]
    fields = ["-e", "tls.handshake.ciphersuite", "-e", "quic.stream_data"]
    out = run(["tshark", "-n", "-r", str(pcap), *decrypt, *fields]).stdout
    assert "0x1303" in out  # TLS_CHACHA20_POLY1305_SHA256
    assert b"GET /sub/f1\r\n".hex() in out


def test_connection_refused():
    port = free_udp_port()
    with pytest.raises(
        HandshakeError, match=f"127.0.0.1 port {port} failed: connection refused"
    ) as exc:
        fetch("127.0.0.1", port, ["/big"])
    assert exc.value.errno == errno.ECONNREFUSED


def test_handshake_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        with pytest.raises(
            HandshakeTimeoutError, match=f"port {port} failed: no answer within 0.5 s"
        ):
            fetch("127.0.0.1", port, ["/big"], timeout=0.5)


def test_stop_frees_port(www):
    root, _ = www
    srv = start("127.0.0.1", root)
    port = srv.port
    srv.close()
    assert not srv.is_alive()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # the server's socket is gone


def test_server_stop_mid_transfer(tmp_path):
    """Clients of a stopped server learn why from its CONNECTION_CLOSE.  (16 MB: far more
    than goes by while the server notices the stop; only the start of it is sent.)"""
    make_file(tmp_path / "huge", 16 << 20)
    srv = start("127.0.0.1", tmp_path)
    stopping = threading.Event()

    def progress(d, n: int) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=srv.close).start()
            # Stop reading for a while: flow control (8 MiB per stream) then holds the server
            # back, so the stop always lands mid-transfer however fast the machine is.
            time.sleep(1.0)

    with pytest.raises(QuicctlError, match=r"closed before all answers.*\(server stopped\)"):
        fetch("127.0.0.1", srv.port, ["/huge"], progress=progress)
    srv.close()


def test_port_in_use(www):
    root, _ = www
    with start("127.0.0.1", root) as srv:
        with pytest.raises(QuicctlError, match=f"port {srv.port}: Address already in use"):
            start("127.0.0.1", root, port=srv.port)
