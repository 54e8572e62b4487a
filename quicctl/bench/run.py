"""The measurements of `quicctl bench`, run where modules load (the VM, or ``--host``).

Everything happens between two network namespaces joined by one veth pair
(:class:`quicctl.netns.Topology`).  Kernel transports (quic, tcp, ktls): the handshake runs in
Python (gnutls for QUIC, OpenSSL for kTLS), then the connected sockets go to the C data path
(``datapath.c``) so the kernel, not the interpreter, is measured.  aioquic runs as one process
per namespace; ngtcp2 as Debian's ``gtlsserver``/``gtlsclient`` (HTTP/3).

Throughput is bytes over the sender's window (first write to the receiver's 1-byte ack; for
ngtcp2 the whole ``gtlsclient`` run); CPU is /proc/stat's busy time of all CPUs over the same
window (both ends live on this machine), per GB moved.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from quicctl.bench import ALPN, PATTERN, PERIOD, SERVER_NAME, cpu_seconds
from quicctl.errors import QuicctlError
from quicctl.paths import KEYS

TRANSPORTS = ("quic", "tcp", "ktls", "aioquic", "ngtcp2")
KERNEL = ("quic", "tcp", "ktls")
SIZES = (1 << 10, 16 << 10, 64 << 10)
PORTS = {"quic": 4433, "tcp": 5201, "ktls": 5202, "aioquic": 4434, "ngtcp2": 4435}
RR_SIZE = 64
NGTCP2_CIPHERS = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM"

Progress = Callable[[str], None]


@dataclass
class Options:
    bytes: int = 64 << 20  # quic, tcp, ktls, ngtcp2
    aioquic_bytes: int = 4 << 20
    sizes: tuple[int, ...] = SIZES
    transports: tuple[str, ...] = TRANSPORTS
    handshakes: int = 20
    rr_count: int = 1000  # aioquic: a fifth of it
    timeout: float = 900.0  # per transfer


def _entry(transport: str, size: int, data: dict) -> dict:
    gb = data["bytes"] / 1e9
    return {
        "transport": transport,
        "write_size": size,
        "gbps": round(data["bytes"] * 8 / data["seconds"] / 1e9, 4),
        "cpu_s_per_gb": round(data["cpu_seconds"] / gb, 3),
        "bytes": data["bytes"],
        "seconds": round(data["seconds"], 4),
        "cpu_seconds": round(data["cpu_seconds"], 3),
    }


class _Kernel:
    """Connected socket pairs over the kernel transports, handed to the C data path."""

    def __init__(self, topo, opts: Options, prog: Path):
        self.topo, self.opts, self.prog = topo, opts, prog
        self.listeners: dict[str, object] = {}

    def close(self) -> None:
        for lst in self.listeners.values():
            lst.close()

    def _listener(self, transport: str):
        from quicctl import netns

        if transport in self.listeners:
            return self.listeners[transport]
        with netns.enter(self.topo.server):
            if transport == "quic":
                from quicctl.connection import QuicServer

                lst = QuicServer("0.0.0.0", PORTS["quic"], alpn=ALPN,
                                 certfile=str(KEYS / "cert.crt"), keyfile=str(KEYS / "pkey.key"))  # fmt: skip
            else:
                lst = socket.create_server(("0.0.0.0", PORTS[transport]), backlog=128)
        self.listeners[transport] = lst
        return lst

    @contextmanager
    def pair(self, transport: str) -> Iterator[tuple]:
        """(client, server) connected over ``transport``; the client side sends first."""
        from quicctl import netns

        lst = self._listener(transport)
        if transport == "quic":
            from quicctl.connection import connect

            box: dict = {}

            def accept() -> None:
                try:
                    box["conn"] = lst.accept()
                except Exception as exc:  # reported below
                    box["error"] = exc

            t = threading.Thread(target=accept, name="bench-accept")
            t.start()
            try:
                with netns.enter(self.topo.client):
                    cli = connect(self.topo.server_v4, PORTS["quic"], alpn=ALPN,
                                  cafile=str(KEYS / "ca.crt"), server_name=SERVER_NAME)  # fmt: skip
            finally:
                t.join()
            if "error" in box:
                cli.close()
                raise QuicctlError(f"quic: the server's handshake failed: {box['error']}")
            srv = box["conn"]
            # The client opens stream 0; write() without a cmsg then goes to this active stream
            # on both ends (ABI reference Section 4.2).
            cli.open_stream()
        else:
            with netns.enter(self.topo.client):
                cli = socket.create_connection((self.topo.server_v4, PORTS[transport]))
            srv, _ = lst.accept()
            for s in (cli, srv):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if transport == "ktls":
                from quicctl.bench import ktls

                try:
                    ktls.establish(cli, srv, SERVER_NAME)
                except BaseException:
                    cli.close()
                    srv.close()
                    raise
        try:
            yield cli, srv
        finally:
            cli.close()
            srv.close()

    def bulk(self, transport: str, size: int) -> dict:
        from quicctl.bench import datapath

        n = self.opts.bytes
        with self.pair(transport) as (cli, srv):
            sent, _ = datapath.pair(self.prog, ("send", "recv"), (cli.fileno(), srv.fileno()),
                                    ((n, size), (n,)), f"{transport} bulk, {size}-byte writes",
                                    self.opts.timeout)  # fmt: skip
        return _entry(transport, size, sent)

    def rr(self, transport: str) -> dict:
        from quicctl.bench import datapath

        args = (self.opts.rr_count, RR_SIZE)
        with self.pair(transport) as (cli, srv):
            out, _ = datapath.pair(self.prog, ("rr-client", "rr-server"),
                                   (cli.fileno(), srv.fileno()), (args, args),
                                   f"{transport} request/response", self.opts.timeout)  # fmt: skip
        return out

    def handshakes(self, transport: str) -> float:
        t0 = time.monotonic()
        for _ in range(self.opts.handshakes):
            with self.pair(transport):
                pass
        return self.opts.handshakes / (time.monotonic() - t0)


def _wait_line(proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening" in line:
            return
        if not line and proc.poll() is not None:
            raise QuicctlError(f"the {what} server exited ({proc.returncode}) before listening")
    raise QuicctlError(f"the {what} server did not start within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Aioquic:
    """aioquic server and clients, one process per namespace."""

    def __init__(self, topo, opts: Options):
        self.topo, self.opts = topo, opts
        self.py = [sys.executable, "-m", "quicctl.bench.aioq"]
        self.server = topo.popen(topo.server, [*self.py, "server", "0.0.0.0", str(PORTS["aioquic"])],
                                 stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            _wait_line(self.server, "aioquic")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        _stop(self.server)

    def _client(self, what: str, *args: int) -> dict:
        mode = what.split()[0]
        argv = [*self.py, mode, self.topo.server_v4, str(PORTS["aioquic"]), *map(str, args)]
        r = self.topo.run(self.topo.client, argv, capture_output=True, text=True,
                          timeout=self.opts.timeout)  # fmt: skip
        try:
            out = json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            out = {"ok": False, "error": r.stderr.strip()[-500:] or f"exit {r.returncode}"}
        if r.returncode or not out.get("ok"):
            raise QuicctlError(f"aioquic {what}: {out.get('error')}")
        return out

    def bulk(self, size: int) -> dict:
        out = self._client(f"bulk, {size}-byte writes", self.opts.aioquic_bytes, size)
        return _entry("aioquic", size, out)

    def rr(self) -> dict:
        return self._client("rr", max(1, self.opts.rr_count // 5), RR_SIZE)

    def handshakes(self) -> float:
        out = self._client("handshakes", self.opts.handshakes)
        return out["count"] / out["seconds"]


class _Ngtcp2:
    """Debian's ngtcp2 examples: gtlsserver serves a file, gtlsclient fetches it (HTTP/3)."""

    def __init__(self, topo, opts: Options):
        self.topo, self.opts = topo, opts
        for tool in ("gtlsserver", "gtlsclient"):
            if not shutil.which(tool):
                raise QuicctlError(f"{tool} is missing: apt-get install ngtcp2-server "
                                   "ngtcp2-client")  # fmt: skip
        self.dir = Path(tempfile.mkdtemp(prefix="quicctl-bench-"))
        self.root = self.dir / "htdocs"
        self.root.mkdir()
        n = opts.bytes
        reps = n // PERIOD + 1
        (self.root / "bulk").write_bytes((PATTERN[:PERIOD] * reps)[:n])
        self.digest = hashlib.sha256((self.root / "bulk").read_bytes()).hexdigest()
        (self.root / "hs").write_bytes(b"x")
        argv = ["gtlsserver", "-q", "-d", str(self.root), f"--ciphers={NGTCP2_CIPHERS}",
                self.topo.server_v4, str(PORTS["ngtcp2"]), str(KEYS / "pkey.key"),
                str(KEYS / "cert.crt")]  # fmt: skip
        self.server = topo.popen(topo.server, argv, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            self._wait_bound()
        except BaseException:
            self.close()
            raise

    def _wait_bound(self, timeout: float = 60) -> None:
        port = f":{PORTS['ngtcp2']:04X} "
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                err = self.server.stderr.read() if self.server.stderr else ""
                raise QuicctlError(f"gtlsserver exited ({self.server.returncode}): {err.strip()}")
            r = self.topo.run(self.topo.server, ["cat", "/proc/net/udp"], capture_output=True,
                              text=True)  # fmt: skip
            if port in r.stdout:
                return
            time.sleep(0.2)
        raise QuicctlError(f"gtlsserver did not bind UDP port {PORTS['ngtcp2']} in {timeout} s")

    def close(self) -> None:
        _stop(self.server)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _fetch(self, name: str) -> tuple[Path, float, float]:
        out = self.dir / "dl"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        argv = ["gtlsclient", "-q", "--no-quic-dump", "--no-http-dump",
                "--exit-on-all-streams-close", f"--download={out}", f"--ciphers={NGTCP2_CIPHERS}",
                self.topo.server_v4, str(PORTS["ngtcp2"]),
                f"https://{SERVER_NAME}:{PORTS['ngtcp2']}/{name}"]  # fmt: skip
        t0, c0 = time.monotonic(), cpu_seconds()
        r = self.topo.run(self.topo.client, argv, capture_output=True, text=True,
                          timeout=self.opts.timeout)  # fmt: skip
        t1, c1 = time.monotonic(), cpu_seconds()
        got = out / name
        # gtlsclient exits 0 even when the transfer failed: the file is the judge.
        if r.returncode or not got.is_file():
            raise QuicctlError(f"ngtcp2: gtlsclient did not download /{name} (exit "
                               f"{r.returncode}): {(r.stderr or r.stdout).strip()[-300:]}")  # fmt: skip
        return got, t1 - t0, c1 - c0

    def bulk(self) -> dict:
        got, secs, cpu = self._fetch("bulk")
        size = got.stat().st_size
        if size != self.opts.bytes or hashlib.sha256(got.read_bytes()).hexdigest() != self.digest:
            raise QuicctlError(f"ngtcp2: received {size} of {self.opts.bytes} bytes, or corrupt")
        return _entry("ngtcp2", 0, {"bytes": size, "seconds": secs, "cpu_seconds": cpu})

    def handshakes(self) -> float:
        t0 = time.monotonic()
        for _ in range(self.opts.handshakes):
            got, _, _ = self._fetch("hs")
            if got.read_bytes() != b"x":
                raise QuicctlError("ngtcp2: the handshake probe fetched the wrong bytes")
        return self.opts.handshakes / (time.monotonic() - t0)


def _prepare(opts: Options, progress: Progress) -> Path | None:
    from quicctl import kmod

    if "quic" in opts.transports:
        res = kmod.load()
        progress(f"quic.ko {res.version or ''} {res.action} (srcversion {res.srcversion})")
    if "ktls" in opts.transports:
        r = subprocess.run(["modprobe", "tls"], capture_output=True, text=True)
        if r.returncode:
            raise QuicctlError(f"cannot load the kernel's tls module for kTLS: {r.stderr.strip()}")
    if any(t in KERNEL for t in opts.transports):
        from quicctl.bench import datapath

        return datapath.binary()
    return None


def run(opts: Options, progress: Progress = lambda m: None) -> dict:
    """Run every selected measurement; returns the JSON document of `quicctl bench --json`."""
    from quicctl.netns import Topology

    prog = _prepare(opts, progress)
    results: list[dict] = []
    hs: dict[str, float] = {}
    rr: dict[str, float] = {}
    with Topology() as topo:
        for tr in opts.transports:
            if tr in KERNEL:
                assert prog is not None
                runner = _Kernel(topo, opts, prog)
            elif tr == "aioquic":
                runner = _Aioquic(topo, opts)
            else:
                runner = _Ngtcp2(topo, opts)
            try:
                results += _measure(tr, runner, opts, progress, hs, rr)
            finally:
                runner.close()
    return {"results": results, "handshakes_per_s": hs, "rr_us": rr}


def _measure(tr: str, runner, opts: Options, progress: Progress, hs: dict, rr: dict) -> list:
    out = []
    if tr == "ngtcp2":
        progress(f"{tr}: bulk, {opts.bytes} bytes, gtlsclient's own write sizes")
        out.append(runner.bulk())
    else:
        for size in opts.sizes:
            progress(f"{tr}: bulk, {size}-byte writes")
            out.append(runner.bulk(tr, size) if tr in KERNEL else runner.bulk(size))
    for e in out:
        progress(f"{tr}: {e['write_size']}: {e['gbps']:.3f} Gbit/s, {e['cpu_s_per_gb']} CPU s/GB")
    progress(f"{tr}: {opts.handshakes} handshakes")
    hs[tr] = round(runner.handshakes(tr) if tr in KERNEL else runner.handshakes(), 2)
    if tr != "ngtcp2":
        progress(f"{tr}: request/response, {RR_SIZE} bytes each way")
        res = runner.rr(tr) if tr in KERNEL else runner.rr()
        rr[tr] = round(res["median_us"], 1)
    return out


def check(doc: dict, opts: Options) -> list[str]:
    """What is wrong with a result document for ``opts`` (empty when it is complete)."""
    problems = []
    want = {(t, s) for t in opts.transports for s in ((0,) if t == "ngtcp2" else opts.sizes)}
    have = {(e["transport"], e["write_size"]) for e in doc.get("results", [])}
    problems += [f"missing {t} at {s} bytes" for t, s in sorted(want - have)]
    for e in doc.get("results", []):
        n = opts.aioquic_bytes if e["transport"] == "aioquic" else opts.bytes
        if e.get("bytes") != n:
            problems.append(f"{e['transport']} {e['write_size']}: {e.get('bytes')} of {n} bytes")
    return problems
