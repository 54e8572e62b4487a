"""The measurements of `quicctl bench`, run where modules load (the VM, or ``--host``).

Everything happens between two network namespaces joined by one veth pair
(:class:`quicctl.netns.Topology`).  Kernel transports (quic, tcp, ktls): the handshake runs in
Python (gnutls for QUIC, OpenSSL for kTLS), then the connected sockets go to the C data path
(``datapath.c``) so the kernel, not the interpreter, is measured.  aioquic runs as one process
per namespace; ngtcp2 as Debian's ``gtlsserver``/``gtlsclient`` (HTTP/3).

Throughput is bytes over the sender's window (first write to the receiver's 1-byte ack; for
ngtcp2 the whole ``gtlsclient`` run); CPU is /proc/stat's busy time of all CPUs over the same
window (both ends live on this machine), per GB moved.

With a bottleneck (:func:`bottleneck`), the veth path is shaped instead: tc tbf at the given rate
with one bandwidth-delay product of buffer on the sender's side, netem delay on the ACK path,
and each kernel transport (QUIC once per congestion controller) moves one file across it; the
goodput is reported as a share of the link.
"""

from __future__ import annotations

import hashlib
import json
import re
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
from quicctl.demo import _stop, _wait_listening
from quicctl.errors import QuicctlError
from quicctl.paths import KEYS

# quic-plain: kernel QUIC with disable_1rtt_encryption offered by both ends (1-RTT in clear)
TRANSPORTS = ("quic", "quic-plain", "tcp", "ktls", "aioquic", "ngtcp2")
KERNEL = ("quic", "quic-plain", "tcp", "ktls")
QUIC = ("quic", "quic-plain")
SIZES = (1 << 10, 16 << 10, 64 << 10)
PORTS = {
    "quic": 4433,
    "quic-plain": 4436,
    "tcp": 5201,
    "ktls": 5202,
    "aioquic": 4434,
    "ngtcp2": 4435,
}
RR_SIZE = 64
NGTCP2_CIPHERS = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM"
# QUIC_SOCKOPT_CONFIG congestion_control_algo (include/uapi/linux/quic.h)
QUIC_CC = {"reno": 0, "cubic": 1}
BOTTLENECK_WRITE = 64 << 10
NO_KERNEL = "the bottleneck runs the kernel transports only: select quic, tcp or ktls"

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
    load: bool = True  # load the built quic.ko (False: use the module as loaded)
    bottleneck_bps: int | None = None  # shape the path to this rate instead (bits/s)
    rtt_ms: int = 200  # with a bottleneck: the round-trip delay added on the ACK path
    bottleneck_bytes: int = 8 << 20
    # QUIC_SOCKOPT_CONFIG plpmtud_probe_interval of both ends (us); 0: 1200-byte datagrams
    plpmtud_us: int = 30_000_000


def _entry(transport: str, size: int, data: dict) -> dict:
    gb = data["bytes"] / 1e9
    return {
        "transport": transport,
        "write_size": size,
        "gbps": round(data["bytes"] * 8 / data["seconds"] / 1e9, 6),
        "cpu_s_per_gb": round(data["cpu_seconds"] / gb, 3),
        "bytes": data["bytes"],
        "seconds": round(data["seconds"], 4),
        "cpu_seconds": round(data["cpu_seconds"], 3),
    }


class _Kernel:
    """Connected socket pairs over one kernel transport, handed to the C data path."""

    def __init__(self, topo, opts: Options, prog: Path, transport: str, cc: str | None = None):
        from quicctl import netns

        self.topo, self.opts, self.prog, self.transport = topo, opts, prog, transport
        # QUIC's congestion controller for the sending (client) side (None: the default), and
        # DPLPMTUD on both ends.
        self.config = {"congestion_control_algo": QUIC_CC[cc]} if cc else {}
        if opts.plpmtud_us:
            self.config["plpmtud_probe_interval"] = opts.plpmtud_us
        # quic-plain: both ends offer disable_1rtt_encryption (draft-banks), so 1-RTT goes clear
        self.tp = {"disable_1rtt_encryption": 1} if transport == "quic-plain" else None
        with netns.enter(topo.server):
            if transport in QUIC:
                from quicctl.connection import QuicServer

                self.listener = QuicServer(
                    "0.0.0.0",
                    PORTS[transport],
                    alpn=ALPN,
                    certfile=str(KEYS / "cert.crt"),
                    keyfile=str(KEYS / "pkey.key"),
                    config={"plpmtud_probe_interval": opts.plpmtud_us} if opts.plpmtud_us else None,
                    transport_params=self.tp,
                )
            else:
                self.listener = socket.create_server(("0.0.0.0", PORTS[transport]), backlog=128)

    def close(self) -> None:
        self.listener.close()

    @contextmanager
    def pair(self, nodelay: bool = False) -> Iterator[tuple]:
        """(client, server) connected over the transport; the client side sends first.
        ``nodelay``: TCP_NODELAY on TCP and kTLS (request/response; bulk keeps Nagle)."""
        from quicctl import netns

        transport, lst = self.transport, self.listener
        if transport in QUIC:
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
                    cli = connect(
                        self.topo.server_v4,
                        PORTS[transport],
                        alpn=ALPN,
                        cafile=str(KEYS / "ca.crt"),
                        server_name=SERVER_NAME,
                        config=self.config,
                        transport_params=self.tp,
                    )
            finally:
                t.join()
            if "error" in box:
                cli.close()
                raise QuicctlError(f"{transport}: the server's handshake failed: {box['error']}")
            srv = box["conn"]
            # The client opens stream 0; write() without a cmsg then goes to this active stream
            # on both ends (ABI reference Section 4.2).
            cli.open_stream()
        else:
            with netns.enter(self.topo.client):
                cli = socket.create_connection((self.topo.server_v4, PORTS[transport]))
            srv, _ = lst.accept()
            for s in (cli, srv) if nodelay else ():
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

    def bulk(self, size: int, nbytes: int | None = None) -> dict:
        from quicctl.bench import datapath

        n = nbytes or self.opts.bytes
        with self.pair() as (cli, srv):
            sent, _ = datapath.pair(
                self.prog,
                ("send", "recv"),
                (cli.fileno(), srv.fileno()),
                ((n, size), (n,)),
                f"{self.transport} bulk, {size}-byte writes",
                self.opts.timeout,
            )
        return _entry(self.transport, size, sent)

    def rr(self) -> dict:
        from quicctl.bench import datapath

        args = (self.opts.rr_count, RR_SIZE)
        with self.pair(nodelay=True) as (cli, srv):
            out, _ = datapath.pair(
                self.prog,
                ("rr-client", "rr-server"),
                (cli.fileno(), srv.fileno()),
                (args, args),
                f"{self.transport} request/response",
                self.opts.timeout,
            )
        return out

    def handshakes(self) -> float:
        t0 = time.monotonic()
        for _ in range(self.opts.handshakes):
            with self.pair():
                pass
        return self.opts.handshakes / (time.monotonic() - t0)

    def measure(self, progress: Progress) -> tuple[list[dict], float, float]:
        tr = self.transport
        entries = []
        for size in self.opts.sizes:
            progress(f"{tr}: bulk, {self.opts.bytes} bytes in {size}-byte writes")
            entries.append(self.bulk(size))
            _report(progress, entries[-1])
        progress(f"{tr}: {self.opts.handshakes} handshakes")
        hs = self.handshakes()
        progress(f"{tr}: {self.opts.rr_count} request/response round trips")
        return entries, hs, self.rr()["median_us"]


def _report(progress: Progress, e: dict) -> None:
    progress(
        f"{e['transport']}: write size {e['write_size']}: {e['gbps']:.4f} Gbit/s, "
        f"{e['cpu_s_per_gb']} CPU s/GB"
    )


class _Aioquic:
    """aioquic server and clients, one process per namespace."""

    def __init__(self, topo, opts: Options):
        self.topo, self.opts = topo, opts
        self.py = [sys.executable, "-m", "quicctl.bench.aioq"]
        self.server = topo.popen(
            topo.server,
            [*self.py, "server", "0.0.0.0", str(PORTS["aioquic"])],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_listening(self.server, "aioquic", timeout=120)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        _stop(self.server)

    def measure(self, progress: Progress) -> tuple[list[dict], float, float]:
        """(bulk entries, handshakes/s, request/response median in µs) from one client run."""
        o = self.opts
        progress(
            f"aioquic: bulk ({o.aioquic_bytes} bytes per write size), handshakes, "
            "request/response (one client process)"
        )
        argv = [
            *self.py,
            "client",
            self.topo.server_v4,
            str(PORTS["aioquic"]),
            str(o.aioquic_bytes),
            ",".join(map(str, o.sizes)),
            str(o.handshakes),
            str(max(1, o.rr_count // 5)),
        ]
        r = self.topo.run(
            self.topo.client,
            argv,
            capture_output=True,
            text=True,
            timeout=o.timeout * (len(o.sizes) + 2),
        )
        try:
            out = json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            out = {"ok": False, "error": r.stderr.strip()[-500:] or f"exit {r.returncode}"}
        if r.returncode or not out.get("ok"):
            raise QuicctlError(f"aioquic client: {out.get('error')}")
        hs = out["handshakes"]
        entries = [_entry("aioquic", b["write_size"], b) for b in out["bulk"]]
        for e in entries:
            _report(progress, e)
        return entries, hs["count"] / hs["seconds"], out["rr"]["median_us"]


class _Ngtcp2:
    """Debian's ngtcp2 examples: gtlsserver serves a file, gtlsclient fetches it (HTTP/3)."""

    def __init__(self, topo, opts: Options):
        self.topo, self.opts = topo, opts
        for tool in ("gtlsserver", "gtlsclient"):
            if not shutil.which(tool):
                raise QuicctlError(
                    f"{tool} is missing: apt-get install ngtcp2-server ngtcp2-client"
                )
        self.dir = Path(tempfile.mkdtemp(prefix="quicctl-bench-"))
        self.root = self.dir / "htdocs"
        self.root.mkdir()
        n = opts.bytes
        reps = n // PERIOD + 1
        (self.root / "bulk").write_bytes((PATTERN[:PERIOD] * reps)[:n])
        self.digest = hashlib.sha256((self.root / "bulk").read_bytes()).hexdigest()
        (self.root / "hs").write_bytes(b"x")
        argv = [
            "gtlsserver",
            "-q",
            "-d",
            str(self.root),
            f"--ciphers={NGTCP2_CIPHERS}",
            self.topo.server_v4,
            str(PORTS["ngtcp2"]),
            str(KEYS / "pkey.key"),
            str(KEYS / "cert.crt"),
        ]
        self.log = self.dir / "gtlsserver.log"
        with open(self.log, "w") as log:
            self.server = topo.popen(topo.server, argv, stdout=log, stderr=subprocess.STDOUT)
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
                err = self.log.read_text(errors="replace")[-500:]
                raise QuicctlError(f"gtlsserver exited ({self.server.returncode}): {err.strip()}")
            r = self.topo.run(
                self.topo.server, ["cat", "/proc/net/udp"], capture_output=True, text=True
            )
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
        argv = [
            "gtlsclient",
            "-q",
            "--no-quic-dump",
            "--no-http-dump",
            "--exit-on-all-streams-close",
            f"--download={out}",
            f"--ciphers={NGTCP2_CIPHERS}",
            self.topo.server_v4,
            str(PORTS["ngtcp2"]),
            f"https://{SERVER_NAME}:{PORTS['ngtcp2']}/{name}",
        ]
        t0, c0 = time.monotonic(), cpu_seconds()
        r = self.topo.run(
            self.topo.client, argv, capture_output=True, text=True, timeout=self.opts.timeout
        )
        t1, c1 = time.monotonic(), cpu_seconds()
        got = out / name
        # gtlsclient exits 0 even when the transfer failed: the file is the judge.
        if r.returncode or not got.is_file():
            raise QuicctlError(
                f"ngtcp2: gtlsclient did not download /{name} (exit "
                f"{r.returncode}): {(r.stderr or r.stdout).strip()[-300:]}"
            )
        return got, t1 - t0, c1 - c0

    def measure(self, progress: Progress) -> tuple[list[dict], float, None]:
        """Handshakes first: the time and CPU of the fastest (process start, handshake, one
        round trip) are taken off the bulk fetch's, which pays the same."""
        progress(f"ngtcp2: {self.opts.handshakes} handshakes (one gtlsclient run each)")
        probes = []
        t0 = time.monotonic()
        for _ in range(self.opts.handshakes):
            got, secs, cpu = self._fetch("hs")
            if got.read_bytes() != b"x":
                raise QuicctlError("ngtcp2: the handshake probe fetched the wrong bytes")
            probes.append((secs, cpu))
        hs = self.opts.handshakes / (time.monotonic() - t0)
        progress(f"ngtcp2: bulk, {self.opts.bytes} bytes, gtlsclient's own write sizes")
        got, secs, cpu = self._fetch("bulk")
        size = got.stat().st_size
        if size != self.opts.bytes or hashlib.sha256(got.read_bytes()).hexdigest() != self.digest:
            raise QuicctlError(f"ngtcp2: received {size} of {self.opts.bytes} bytes, or corrupt")
        # The fastest probe: the least that the bulk fetch's own start can have cost.
        start = min(p[0] for p in probes)
        start_cpu = min(p[1] for p in probes)
        if secs <= start:
            # A loaded machine made every probe slower than the whole bulk fetch: the start-up
            # cannot be told apart, so the raw fetch stands (a lower bound of the throughput).
            progress(
                f"ngtcp2: the bulk fetch ({secs:.2f} s) took no longer than the fastest 1-byte "
                f"fetch ({start:.2f} s): nothing subtracted (raise --bytes for a better figure)"
            )
            start, start_cpu = 0.0, 0.0
        entry = _entry(
            "ngtcp2",
            0,
            {"bytes": size, "seconds": secs - start, "cpu_seconds": max(0.0, cpu - start_cpu)},
        )
        entry.update(seconds_raw=round(secs, 4), startup_seconds=round(start, 4))
        _report(progress, entry)
        return [entry], hs, None


def _ktls_available() -> bool:
    """The "tls" TCP ULP is registered: tls loaded, or built in (the debug kernel, which has no
    /lib/modules for modprobe to look in)."""
    try:
        return "tls" in Path("/proc/sys/net/ipv4/tcp_available_ulp").read_text().split()
    except OSError:
        return False


def _prepare(opts: Options, progress: Progress) -> Path | None:
    from quicctl import kmod

    if "quic" in opts.transports and opts.load:
        res = kmod.load()
        progress(f"quic.ko {res.version or ''} {res.action} (srcversion {res.srcversion})")
    if "ktls" in opts.transports and not _ktls_available():
        r = subprocess.run(["modprobe", "tls"], capture_output=True, text=True)
        if r.returncode:
            raise QuicctlError(f"cannot load the kernel's tls module for kTLS: {r.stderr.strip()}")
    if any(t in KERNEL for t in opts.transports):
        from quicctl.bench import datapath

        return datapath.binary()
    return None


def parse_rate(text: str) -> int:
    """A tc-style rate (``10mbit``, ``500kbit``, ``1gbit``, ``2000000bit``: SI units of bits
    per second, as tc reads them) in bits per second; QuicctlError otherwise."""
    units = {"gbit": 10**9, "mbit": 10**6, "kbit": 10**3, "bit": 1}
    t = text.strip().lower()
    for unit, mult in units.items():
        if t.endswith(unit) and t[: -len(unit)].isdigit() and int(t[: -len(unit)]) > 0:
            return int(t[: -len(unit)]) * mult
    raise QuicctlError(f"bad rate {text!r}: give a tc rate like 10mbit, 500kbit or 1gbit")


@contextmanager
def _shaped(topo, rate_bps: int, rtt_ms: int) -> Iterator[None]:
    """The client (the sender of bulk data) sends through tc tbf at ``rate_bps`` with one
    bandwidth-delay product of queue; the server's ACKs wait ``rtt_ms`` in netem."""
    bdp = max(rate_bps // 8 * rtt_ms // 1000, 2 * 15000)
    argv = ["tc", "qdisc", "replace", "dev", topo.dev(topo.client), "root", "tbf",
            "rate", f"{rate_bps}bit", "burst", "15000", "limit", str(bdp)]  # fmt: skip
    try:
        topo.wire_like(topo.client)
        r = topo.run(topo.client, argv, capture_output=True, text=True)
        if r.returncode:
            raise QuicctlError(f"tc tbf on {topo.dev(topo.client)} failed: {r.stderr.strip()}")
        topo.netem(topo.server, f"delay {rtt_ms}ms limit 100000")
        yield
    finally:
        topo.clear_qdisc(topo.client)
        topo.clear_qdisc(topo.server)


def _queue_drops(topo) -> int:
    """Packets the bottleneck's tbf has dropped so far."""
    r = topo.run(topo.client, ["tc", "-s", "qdisc", "show", "dev", topo.dev(topo.client)],
                 capture_output=True, text=True)  # fmt: skip
    return sum(int(n) for n in re.findall(r"dropped (\d+)", r.stdout))


def _tcp_cc(topo) -> str:
    r = topo.run(topo.client, ["cat", "/proc/sys/net/ipv4/tcp_congestion_control"],
                 capture_output=True, text=True)  # fmt: skip
    return r.stdout.strip() or "?"


def bottleneck(topo, opts: Options, prog: Path, progress: Progress = lambda m: None) -> dict:
    """Each selected kernel transport (QUIC with NewReno and with CUBIC) moves
    ``opts.bottleneck_bytes`` in 64 KB writes across the shaped path; goodput is bytes over the
    sender's window, slow start included, and ``utilization`` its share of the rate."""
    rate, rtt = opts.bottleneck_bps, opts.rtt_ms
    assert rate
    out: list[dict] = []
    runs = [(tr, cc) for tr in opts.transports if tr in KERNEL
            for cc in (QUIC_CC if tr in QUIC else (None,))]  # fmt: skip
    if not runs:
        raise QuicctlError(NO_KERNEL)
    with _shaped(topo, rate, rtt):
        for tr, cc in runs:
            name = f"{tr} ({cc or _tcp_cc(topo)})"
            progress(f"{name}: {opts.bottleneck_bytes} bytes through {rate} bit/s, RTT {rtt} ms")
            runner = _Kernel(topo, opts, prog, tr, cc=cc)
            drops = _queue_drops(topo)
            try:
                e = runner.bulk(BOTTLENECK_WRITE, opts.bottleneck_bytes)
            finally:
                runner.close()
            goodput = e["bytes"] * 8 / e["seconds"]
            e.update(
                cc=cc or _tcp_cc(topo),
                goodput_bps=round(goodput),
                utilization=round(goodput / rate, 4),
                queue_drops=_queue_drops(topo) - drops,
            )
            progress(f"{name}: goodput {goodput / 1e6:.2f} Mbit/s, {100 * goodput / rate:.0f}%")
            out.append(e)
    return {"rate_bps": rate, "rtt_ms": rtt, "results": out}


def run(opts: Options, progress: Progress = lambda m: None) -> dict:
    """Run every selected measurement; returns the JSON document of `quicctl bench --json`.
    With ``opts.bottleneck_bps`` only the bottleneck runs (its results under ``"bottleneck"``)."""
    from quicctl.netns import Topology

    prog = _prepare(opts, progress)
    results: list[dict] = []
    hs: dict[str, float] = {}
    rr: dict[str, float] = {}
    if opts.bottleneck_bps:
        if prog is None:
            raise QuicctlError(NO_KERNEL)
        with Topology() as topo:
            doc = bottleneck(topo, opts, prog, progress)
        return {
            "results": results,
            "handshakes_per_s": hs,
            "rr_us": rr,
            "bottleneck": doc,
            "quic_plpmtud_us": opts.plpmtud_us,
        }
    with Topology() as topo:
        for tr in opts.transports:
            if tr in KERNEL:
                assert prog is not None
                runner = _Kernel(topo, opts, prog, tr)
            elif tr == "aioquic":
                runner = _Aioquic(topo, opts)
            else:
                runner = _Ngtcp2(topo, opts)
            try:
                entries, rate, median = runner.measure(progress)
            finally:
                runner.close()
            results += entries
            hs[tr] = round(rate, 2)
            if median is not None:
                rr[tr] = round(median, 1)
    return {
        "results": results,
        "handshakes_per_s": hs,
        "rr_us": rr,
        "quic_plpmtud_us": opts.plpmtud_us,
    }
