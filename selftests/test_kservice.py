"""Kernel services (issue 14): QUIC sockets created and owned by a kernel module, quic_sample.ko,
their handshakes up-called through net/handshake to `quicctl agent` (as a kernel service does
with tlshd).  The data crosses the kernel socket; the kernel computes each file's SHA-256.

`quicctl client --in-kernel` fetches from an aioquic server and from a quic.ko (userspace
socket) server; `quicctl server --in-kernel` serves an aioquic client and a quicctl client;
failures (untrusted server, ALPN mismatch, no agent) reach the service as errors within its
timeout and leave nothing behind; the sample holds quic.ko while loaded.
"""

from __future__ import annotations

import hashlib
import subprocess
import time

import pytest

from quicctl.demo import _quicctl, _stop, _wait_listening
from quicctl.paths import KEYS

SERVER_NAME = "server.quic.test"
SIZE = 300_000


@pytest.fixture
def sample(quic_module, topo):
    from quicctl import kservice

    if not kservice.module_path().is_file():
        pytest.fail(f"{kservice.module_path()} was not built (no CONFIG_NET_HANDSHAKE?)")
    kservice.load()
    yield kservice
    if kservice.is_loaded():
        _wait_no_conns(topo)
        kservice.unload()


def _wait_no_conns(topo, timeout: float = 30) -> None:
    from peer import conns

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (conns(topo.client) or conns(topo.server)):
        time.sleep(0.2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    data = hashlib.sha256(b"kservice").digest() * (SIZE // 32)
    (root / "file").write_bytes(data)
    return root, hashlib.sha256(data).hexdigest(), len(data)


def _client_in_kernel(topo, port: int, *extra: str, timeout: float = 300):
    return topo.run(
        topo.client,
        [_quicctl(), "client", "--in-kernel", topo.server_v4, str(port), "/file",
         "--server-name", SERVER_NAME, *extra],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["aioquic", "kernel"])
def test_in_kernel_client_fetches(sample, clean_path, topo, files, kind):
    """The kernel service downloads over its own socket; the agent (started by the command
    for its duration) verifies the server against the CA; the kernel's SHA-256 matches."""
    from conftest import hq_server

    root, digest, size = files
    srv = hq_server(topo, kind, root)
    try:
        r = _client_in_kernel(topo, srv.port, "--cafile", str(KEYS / "ca.crt"))
    finally:
        srv.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split()[:4] == [digest, "/file", str(size), "bytes"], r.stdout
    assert "clienthello auth x509" in r.stderr and " ok " in r.stderr, r.stderr  # agent's log


def test_in_kernel_server_serves(sample, clean_path, topo, files, tmp_path):
    """`quicctl server --in-kernel --count 2`: an aioquic client, then a quicctl client (a
    userspace quic.ko socket), each gets the file with the right hash."""
    root, digest, size = files
    port = 4480
    srv = topo.popen(
        topo.server,
        [_quicctl(), "server", "--in-kernel", "--count", "2", "--alpn", "hq-interop",
         topo.server_v4, str(port), str(KEYS / "pkey.key"), str(KEYS / "cert.crt"),
         "--root", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_listening(srv, "in-kernel")
        for how in (["--userspace"], []):
            r = topo.run(
                topo.client,
                [_quicctl(), "client", topo.server_v4, str(port), "/file", "--cafile",
                 str(KEYS / "ca.crt"), "--server-name", SERVER_NAME, "-o", str(tmp_path), *how],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert r.returncode == 0, (how, r.stdout, r.stderr)
            assert r.stdout.split()[:2] == [digest, "/file"], (how, r.stdout)
        out, err = srv.communicate(timeout=120)
    except BaseException:
        _stop(srv)
        print("in-kernel server:", srv.stdout.read(), srv.stderr.read())
        raise
    finally:
        _stop(srv)
    assert srv.returncode == 0, err
    assert f"served 2 connections, {2 * size} bytes" in out, out
    assert "serverhello auth x509" in err, err


def test_in_kernel_failures_reach_the_service(sample, clean_path, topo, files):
    """An untrusted server certificate and an ALPN the server does not offer fail the
    handshake; with no agent at all the request times out.  Each is an error at the service
    within its timeout, and no connection is left behind."""
    from conftest import hq_server

    from quicctl.errors import QuicctlError
    from quicctl.netns import enter

    root, _, _ = files
    srv = hq_server(topo, "aioquic", root)
    try:
        r = _client_in_kernel(topo, srv.port, "--cafile", str(KEYS / "other-ca.crt"))
        assert r.returncode == 1 and "handshake failed" in r.stderr, r.stderr
        assert "failed (EACCES)" in r.stderr, r.stderr
        agent = topo.popen(topo.client, [_quicctl(), "agent", "--ca", str(KEYS / "ca.crt")],
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert "serving" in agent.stderr.readline()
            with enter(topo.client), pytest.raises(QuicctlError, match="the handshake failed"):
                sample.get(topo.server_v4, srv.port, "/file", alpn="h3",
                           peername=SERVER_NAME, timeout=20)  # fmt: skip
        finally:
            _stop(agent)
        t0 = time.monotonic()
        with enter(topo.client), pytest.raises(QuicctlError, match="no handshake agent listens"):
            sample.get(topo.server_v4, srv.port, "/file", peername=SERVER_NAME, timeout=3)
        took = time.monotonic() - t0
        assert took < 10, f"no agent: the error came after {took:.1f} s (timeout 3 s)"
    finally:
        srv.close()
    _wait_no_conns(topo)
    from peer import conns

    assert not conns(topo.client), "a kernel-service connection was left behind"


def test_sample_holds_quic_and_many_connections(sample, clean_path, topo, files):
    """50 kernel-service connections in a row and 10 at once all complete with the right hash;
    quic.ko cannot be unloaded while the sample is loaded; both unload afterwards."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import hq_server, module_loaded

    from quicctl import kmod
    from quicctl.errors import QuicctlError
    from quicctl.netns import enter

    root, digest, size = files
    srv = hq_server(topo, "aioquic", root)
    agent = topo.popen(topo.client, [_quicctl(), "agent", "--ca", str(KEYS / "ca.crt")],
                       stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert "serving" in agent.stderr.readline()

        def one(_: int) -> str:
            with enter(topo.client):
                return sample.get(topo.server_v4, srv.port, "/file", peername=SERVER_NAME,
                                  timeout=120).sha256  # fmt: skip

        assert [one(i) for i in range(50)] == [digest] * 50
        with ThreadPoolExecutor(10) as pool:
            assert list(pool.map(one, range(10))) == [digest] * 10
        with pytest.raises(QuicctlError, match="cannot unload quic"):
            kmod.unload()
        assert module_loaded()
    finally:
        _stop(agent)
        srv.close()
    _wait_no_conns(topo)
    assert sample.unload()
    assert kmod.unload(wait=30)
    assert not module_loaded()
