"""The main job: a verified file transfer carried by quic.ko between two network namespaces,
next to the same transfer over TCP on the same path."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from quicctl.errors import QuicctlError
from quicctl.paths import KEYS

PORT = 4433
SERVER_NAME = "server.quic.test"  # in keys/cert.crt

_TCP_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(1); print("listening", flush=True)
c, _ = s.accept(); data = open(sys.argv[1], "rb").read(); c.sendall(data); c.close()
"""
_TCP_CLIENT = """
import hashlib, socket, sys, time
t = time.monotonic(); c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    h.update(b); n += len(b)
dt = time.monotonic() - t
print(h.hexdigest(), n, f"{n * 8 / dt / 1e6:.1f}")
"""


def _quicctl() -> str:
    return str(Path(sys.executable).parent / "quicctl")


def _wait_listening(proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    """Until the server prints its "listening" line; QuicctlError if it exits first or stays
    silent for ``timeout`` s.  A thread reads the lines (up to that one), so the wait has a
    deadline whatever the server prints or does not.  Three minutes by default: in a TCG guest
    on a busy machine a Python server's imports alone took over 60 s."""
    import queue
    import threading

    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put(line)
            if "listening" in line:
                return
        lines.put("")  # EOF

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if "listening" in line:
            return
        if not line:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                raise QuicctlError(
                    f"the {what} server closed its output before listening"
                ) from None
            raise QuicctlError(f"the {what} server exited ({proc.returncode}) before listening")
    raise QuicctlError(f"the {what} server did not start listening within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def quic_transfer(topo, root: Path, name: str) -> tuple[str, int, float]:
    srv = topo.popen(
        topo.server,
        [_quicctl(), "server", "::", str(PORT), str(KEYS / "pkey.key"), str(KEYS / "cert.crt"),
         "--root", str(root)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_listening(srv, "QUIC")
        r = topo.run(
            topo.client,
            [_quicctl(), "client", topo.server_v4, str(PORT), f"/{name}",
             "--cafile", str(KEYS / "ca.crt"), "--server-name", SERVER_NAME],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        _stop(srv)
    if r.returncode:
        raise QuicctlError(f"quicctl client failed ({r.returncode}): {r.stderr.strip()}")
    digest, _, size, _, rate, _ = r.stdout.split()[:6]
    return digest, int(size), float(rate)


def tcp_transfer(topo, root: Path, name: str) -> tuple[str, int, float]:
    srv = topo.popen(topo.server, [sys.executable, "-c", _TCP_SERVER, str(root / name), "5001"],
                     stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_listening(srv, "TCP")
        r = topo.run(topo.client, [sys.executable, "-c", _TCP_CLIENT, topo.server_v4, "5001"],
                     capture_output=True, text=True, timeout=600)  # fmt: skip
    finally:
        _stop(srv)
    if r.returncode:
        raise QuicctlError(f"TCP client failed: {r.stderr.strip()}")
    digest, size, rate = r.stdout.split()
    return digest, int(size), float(rate)


def run(size: int, load: bool = True, echo: Callable[[str], None] = print) -> int:
    from quicctl import hq, kmod
    from quicctl.netns import Topology

    if load:
        kmod.load()
    st = kmod.status()
    echo(f"quic.ko {st.get('version')} srcversion {st.get('srcversion')} loaded")
    root = Path(tempfile.mkdtemp(prefix="quicctl-demo-"))
    try:
        want = hq.make_file(root / "data.bin", size)
        echo(f"serving {size} bytes, sha256 {want}")
        with Topology() as topo:
            results = {
                "quic": quic_transfer(topo, root, "data.bin"),
                "tcp": tcp_transfer(topo, root, "data.bin"),
            }
            snmp = topo.run(topo.server, ["cat", "/proc/net/quic/snmp"], capture_output=True,
                            text=True).stdout  # fmt: skip
        counters = [ln.split() for ln in snmp.splitlines() if len(ln.split()) == 2]
        echo("server netns: " + " ".join(f"{k}={v}" for k, v in counters if v != "0"))
        ok = True
        for name, (digest, got, rate) in results.items():
            good = digest == want and got == size
            ok &= good
            verdict = "hash ok" if good else "HASH MISMATCH"
            echo(f"{name:5} {got} bytes  {rate:8.1f} Mbit/s  {verdict}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
