"""HTTP/3 over quic.ko, proved against independent stacks in the two-namespace topology:
Debian's ngtcp2 (gtlsclient/gtlsserver, 0.12) both ways, aioquic both ways, and kernel to kernel.

Every transfer is judged by the bytes: SHA-256 of each file received against the file served
(ngtcp2's example programs exit 0 even when they fail, so their exit code proves nothing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SERVER_NAME, KernelHqServer, kernel_connect

from quicctl.paths import KEYS

BIG = 3 * 1000 * 1000
SMALL = [f"s{i}" for i in range(6)]
GTLS_PORT = 4460


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    from quicctl.hq import make_file

    root = tmp_path_factory.mktemp("h3www")
    digests = {"big": make_file(root / "big", BIG, seed=31)}
    for i, name in enumerate(SMALL):
        digests[name] = make_file(root / name, 500 + 997 * i, seed=300 + i)
    return root, digests


def _addr(topo, family: str) -> str:
    return topo.server_v4 if family == "ipv4" else topo.server_v6


def _url_host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


def _check_files(outdir: Path, digests: dict[str, str], names: list[str], detail: str = "") -> None:
    """The files ``names`` saved in ``outdir`` are the served ones; ``detail`` (what the tool
    said) goes with a failure."""
    import hashlib

    for name in names:
        path = outdir / name
        files = sorted(os.listdir(outdir))
        assert path.is_file(), f"{name} was not downloaded (files: {files})\n{detail}"
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        assert got == digests[name], f"{name}: {path.stat().st_size} bytes, hash differs\n{detail}"


def _check(downloads, digests, names) -> None:
    got = {d.path.strip("/"): d for d in downloads}
    for name in names:
        d = got[name]
        assert d.done, f"/{name} not finished"
        assert d.status == 200, f"/{name}: status {d.status}"
        assert d.sha256.hexdigest() == digests[name], f"/{name}: {d.size} bytes, hash differs"


def KernelServer(topo, root: Path) -> KernelHqServer:  # noqa: N802 (reads as the class)
    """quicctl's server over quic.ko, h3 and hq-interop on one listener."""
    return KernelHqServer(topo, root, alpn=["h3", "hq-interop"])


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    assert path, f"{name} is required (Debian's ngtcp2-client/ngtcp2-server; scripts/setup)"
    return path


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_gtlsclient_downloads_from_quicctl_server(quic_module, clean_path, topo, www, tmp_path,
                                                  family):  # fmt: skip
    """ngtcp2's HTTP/3 client fetches a 3 MB file and six small ones, concurrently on one
    connection, from `quicctl server` (kernel): the files it saved are byte-identical."""
    from quicctl.demo import _quicctl, _stop, _wait_listening

    root, digests = www
    gtlsclient = _tool("gtlsclient")
    addr = _addr(topo, family)
    port = 4470 if family == "ipv4" else 4471
    errlog = tmp_path / "server.err"
    with open(errlog, "w") as err:
        srv = topo.popen(
            topo.server,
            [_quicctl(), "server", "::", str(port), str(KEYS / "pkey.key"),
             str(KEYS / "cert.crt"), "--root", str(root)],
            stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    outdir = tmp_path / "dl"
    outdir.mkdir()
    names = ["big", *SMALL]
    try:
        _wait_listening(srv, "quicctl")
        r = topo.run(
            topo.client,
            [gtlsclient, "-q", "--exit-on-all-streams-close", "--download", str(outdir),
             "--sni", SERVER_NAME, addr, str(port),
             *(f"https://{_url_host(addr)}:{port}/{n}" for n in names)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        _stop(srv)
    detail = f"gtlsclient stdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-2000:]}"
    _check_files(outdir, digests, names, detail)
    assert not errlog.read_text().strip(), "quicctl server logged:\n" + errlog.read_text()


class GtlsServer:
    """ngtcp2's HTTP/3 server serving ``root`` in the server namespace (``extra``: more
    options)."""

    def __init__(self, topo, root: Path, port: int, tmp_path: Path, extra: list[str] = ()):
        self.topo = topo
        self.port = port
        self.text = ""
        self.out = open(tmp_path / "gtlsserver.log", "w+")  # noqa: SIM115 - closed in close()
        self.proc = topo.popen(
            topo.server,
            [_tool("gtlsserver"), "-q", "-d", str(root), *extra, "*", str(port),
             str(KEYS / "pkey.key"), str(KEYS / "cert.crt")],
            stdout=self.out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ss = topo.run(topo.server, ["ss", "-Hunl", f"sport = :{port}"],
                          capture_output=True, text=True)  # fmt: skip
            if ss.stdout.strip():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.close()
        raise AssertionError(f"gtlsserver is not listening on UDP port {port}: {self.log()}")

    def log(self) -> str:
        if not self.out.closed:
            self.out.seek(0)
            self.text = self.out.read()[-3000:]
        return self.text

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log()
        self.out.close()


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_quicctl_client_downloads_from_gtlsserver(quic_module, clean_path, topo, www, tmp_path,
                                                  family):  # fmt: skip
    """`quicctl client --alpn h3` (kernel) fetches the same files from ngtcp2's server: the
    hashes it prints and the files it saves are the served ones; a missing path (404) makes it
    exit non-zero."""
    from quicctl.demo import _quicctl

    root, digests = www
    addr = _addr(topo, family)
    port = GTLS_PORT if family == "ipv4" else GTLS_PORT + 1
    server = GtlsServer(topo, root, port, tmp_path)
    outdir = tmp_path / "dl"
    names = ["big", *SMALL]
    base = [_quicctl(), "client", addr, str(port), "--alpn", "h3", "--cafile",
            str(KEYS / "ca.crt"), "--server-name", SERVER_NAME]  # fmt: skip
    try:
        r = topo.run(topo.client, [*base, "-o", str(outdir), *(f"/{n}" for n in names)],
                     capture_output=True, text=True, timeout=600)  # fmt: skip
        missing = topo.run(topo.client, [*base, "/s0", "/no-such-file"],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    finally:
        server.close()
    detail = f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}\ngtlsserver:\n{server.log()}"
    assert r.returncode == 0, f"quicctl client failed ({r.returncode})\n{detail}"
    printed = {line.split()[1].strip("/"): line.split() for line in r.stdout.splitlines()}
    for name in names:
        assert printed[name][0] == digests[name], f"/{name}: printed hash differs\n{detail}"
        assert int(printed[name][2]) == (root / name).stat().st_size
    _check_files(outdir, digests, names)
    assert missing.returncode == 1, f"404 not reported: {missing.stdout}\n{missing.stderr}"
    assert "/no-such-file: HTTP status 404" in missing.stderr, missing.stderr
    assert digests["s0"] in missing.stdout, missing.stdout


def test_kernel_h3_both_ends(quic_module, clean_path, topo, www):
    """Kernel client and kernel server over HTTP/3 (IPv6): all files concurrently, 404 for a
    missing one, and hq-interop still served by the same listener."""
    from quicctl import h3, hq

    root, digests = www
    server = KernelServer(topo, root)
    try:
        with kernel_connect(topo, topo.server_v6, server.port, alpn="h3") as conn:
            assert conn.alpn == "h3"
            downloads = h3.fetch(conn, ["/big", *(f"/{n}" for n in SMALL), "/nope"], None,
                                 authority=SERVER_NAME)  # fmt: skip
            h3.close(conn)
        _check(downloads, digests, ["big", *SMALL])
        nope = downloads[-1]
        assert nope.done and nope.status == 404 and nope.size == 0
        with kernel_connect(topo, topo.server_v4, server.port) as conn:
            assert conn.alpn == "hq-interop"
            got = hq.fetch(conn, ["/s1", "/s2"], None)
        assert [d.sha256.hexdigest() for d in got] == [digests["s1"], digests["s2"]]
    finally:
        server.close()
    assert not server.log, server.log


def test_aioquic_h3_client_to_kernel_server(quic_module, clean_path, topo, www):
    from quicctl import userspace
    from quicctl.netns import enter

    root, digests = www
    server = KernelServer(topo, root)
    try:
        with enter(topo.client):
            downloads = userspace.fetch(
                topo.server_v4, server.port, ["/big", "/s3", "/s4", "/missing"], alpn="h3",
                cafile=str(KEYS / "ca.crt"), server_name=SERVER_NAME, timeout=120,
            )  # fmt: skip
        _check(downloads, digests, ["big", "s3", "s4"])
        assert downloads[-1].status == 404
    finally:
        server.close()
    assert not server.log, server.log


def test_kernel_h3_client_to_aioquic_server(quic_module, clean_path, topo, www):
    from quicctl import h3, userspace
    from quicctl.netns import enter

    root, digests = www
    log: list[str] = []
    with enter(topo.server):
        server = userspace.ServerThread(
            "::", 0, root=root, certfile=str(KEYS / "cert.crt"),
            keyfile=str(KEYS / "pkey.key"), alpn=["h3"], log=log.append,
        )  # fmt: skip
    try:
        with kernel_connect(topo, topo.server_v6, server.port, alpn="h3") as conn:
            downloads = h3.fetch(conn, ["/big", "/s5", "/s0"], None, authority=SERVER_NAME)
            h3.close(conn)
        _check(downloads, digests, ["big", "s5", "s0"])
    finally:
        server.close()
    assert not log, log
