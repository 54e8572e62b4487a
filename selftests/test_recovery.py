"""Loss recovery and congestion control (RFC 9002, RFC 9438, RFC 9406) on impaired paths.

Modelled on the QUIC interop runner's cases: a kernel server sends a file to a kernel client
across the veth pair while tc netem, tc tbf or nftables impair the path; the file must arrive
intact.  The server is the sender, so its congestion controller (QUIC_SOCKOPT_CONFIG
congestion_control_algo, inherited by accepted sockets) is the one under test.  While the data
flows, /proc/net/quic/cong of the server's namespace is sampled to check the RTT estimates and
the window the kernel reports.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import nft, nft_counter

from quicctl.paths import KEYS

ALPN = "quicctl-recovery"
ALGOS = {"reno": 0, "cubic": 1}
MSS_MIN = 1200


class Sender:
    """Accepts one connection; answers the first stream it reads with ``data`` and FIN."""

    def __init__(self, topo, algo: str, data: bytes, ready: threading.Event | None = None):
        """``ready``: the sender waits for it between the request and the answer (a monitor
        that must see the connection before the data flows)."""
        from quicctl import QuicServer, abi
        from quicctl.netns import enter

        self.errors: list[BaseException] = []
        self.data = data
        self.ready = ready
        self.done = threading.Event()
        with enter(topo.server):
            self.srv = QuicServer(
                "0.0.0.0",
                0,
                alpn=ALPN,
                certfile=str(KEYS / "cert.crt"),
                keyfile=str(KEYS / "pkey.key"),
            )
        if ALGOS[algo]:
            abi.setsockopt(self.srv.sock, "CONFIG", congestion_control_algo=ALGOS[algo])
        self.port = self.srv.getsockname()[1]
        self.conn = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.conn = self.srv.accept(timeout=120)
            sid, _, _ = self.conn.recv()
            if self.ready is not None and not self.ready.wait(30):
                raise AssertionError("the sender's connection was never ready to send")
            self.conn.sendall(self.data, sid, fin=True)
            # Stay open until the client has read everything and closes.
            try:
                while True:
                    self.conn.recv()
            except (ConnectionError, OSError):
                pass
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)
        finally:
            self.done.set()

    def close(self) -> None:
        self.srv.close()
        if self.conn:
            self.conn.close()
        self.thread.join(30)


class CongMonitor:
    """Samples /proc/net/quic/cong of namespace ``ns`` (the server's by default) every
    ``period`` seconds: the connections that were not there when it started (an earlier test's
    connection may still be waiting for its idle timeout).  A transfer can be over between two
    periods: ``seen`` is set by the first sample of a new connection, and ``sample()`` takes
    one at once (the last one, after the receiver has everything)."""

    def __init__(self, topo, period: float = 0.25, ns: str | None = None):
        self.topo = topo
        self.ns = ns or topo.server
        self.period = period
        self.samples: list[dict] = []
        self.seen = threading.Event()
        self.lock = threading.Lock()
        self.stale = {_conn_key(row) for row in self._rows()}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _rows(self) -> list[dict]:
        from quicctl import kmod
        from quicctl.netns import enter

        # /proc/thread-self/net follows this thread's namespace (/proc/net is the process's).
        with enter(self.ns):
            return kmod.connections(kmod.System(proc=Path("/proc/thread-self")))

    def sample(self) -> None:
        """One sample of the new established connections, now (any thread)."""
        with self.lock:
            rows = [r for r in self._rows() if r["STATE"] == 1 and _conn_key(r) not in self.stale]
            self.samples += rows
        if rows:
            self.seen.set()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.period)

    def finish(self) -> list[dict]:
        self.stop.set()
        self.thread.join(30)
        return self.samples


def _conn_key(row: dict) -> tuple:
    return row["SOCK"], row["LOCAL_ADDRESS"], row["REMOTE_ADDRESS"]


def _download(
    topo,
    port: int,
    size: int,
    progress: threading.Event | None = None,
    received=None,
) -> tuple[bytes, float]:
    """Request the file; returns it and the seconds from the request to its last byte.
    ``progress`` is set once a tenth of the file arrived; ``received()`` is called once all of
    it has, before the connection closes."""
    from quicctl import connect
    from quicctl.netns import enter

    with enter(topo.client):
        conn = connect(
            topo.server_v4,
            port,
            alpn=ALPN,
            cafile=str(KEYS / "ca.crt"),
            server_name="server.quic.test",
            timeout=120,
        )
    with conn:
        sid = conn.open_stream()
        start = time.monotonic()
        conn.send(b"GET", sid, fin=True)
        got = bytearray()
        while True:
            rsid, data, fin = conn.recv(1 << 20)
            assert rsid == sid, f"data on unexpected stream {rsid}"
            got += data
            if progress and len(got) >= size // 10:
                progress.set()
            if fin:
                break
        elapsed = time.monotonic() - start
        if received:
            received()
    assert len(got) == size, f"received {len(got)} of {size} bytes"
    return bytes(got), elapsed


def _transfer(topo, algo: str, size: int) -> tuple[float, list[dict]]:
    """One download of ``size`` random bytes, checked by hash; (seconds, /proc samples)."""
    data = os.urandom(size)
    monitor = CongMonitor(topo)
    sender = Sender(topo, algo, data, ready=monitor.seen)
    try:
        got, elapsed = _download(topo, sender.port, size, received=monitor.sample)
        assert sender.done.wait(60), "server did not see the connection end"
    finally:
        samples = monitor.finish()
        sender.close()
    assert not sender.errors, sender.errors
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), "file corrupted"
    return elapsed, samples


def _check_samples(samples: list[dict], algo: str, min_rtt_floor: int = 0) -> dict:
    """The per-connection proc values are sane; returns the last sample."""
    assert samples, "/proc/net/quic/cong never listed the connection"
    for s in samples:
        assert s["ALGO"] == algo, s
        assert s["CWND"] >= 2 * MSS_MIN, s
        assert 0 < s["MIN_RTT"] <= s["LATEST_RTT"], s
        assert s["MIN_RTT"] >= min_rtt_floor, s
        assert s["SRTT"] > 0 and s["RTTVAR"] >= 0, s
        assert s["PACING_RATE"] > 0, s
    return samples[-1]


def _timeline(samples: list[dict], every: int = 4) -> str:
    """Every ``every``-th sample: window, ssthresh, bytes in flight, srtt, losses (and how many
    of them arrived after all: reordering)."""
    return "\n".join(
        f"    cwnd {s['CWND']:>8} ssthresh {s['SSTHRESH']:>8} in_flight {s['IN_FLIGHT']:>8} "
        f"srtt {s['SRTT'] / 1000:7.1f} ms lost {s['LOST']:>5} (late {s.get('SPURIOUS', 0)}) "
        f"pto {s['PTO_COUNT']}"
        for s in samples[::every]
    )


def _netem(topo, spec_server: str, spec_client: str | None = None) -> None:
    topo.netem(topo.server, spec_server)
    topo.netem(topo.client, spec_client or spec_server)


@pytest.mark.parametrize("algo", list(ALGOS))
def test_transfer_loss_2pct(quic_module, clean_path, topo, algo):
    """transferloss: 2% of the packets lost in each direction; the lost frames are resent."""
    retrans = _server_retrans(topo)
    _netem(topo, "loss 2%")
    _, samples = _transfer(topo, algo, 3 * 1000 * 1000)
    last = _check_samples(samples, algo)
    assert last["LOST"] > 0, f"no packet declared lost under 2% loss: {last}"
    assert _server_retrans(topo) > retrans, "lost frames were not queued again"


def _server_retrans(topo) -> int:
    """QuicFrmRetrans of the server's namespace (frames of lost packets queued again)."""
    out = topo.run(topo.server, ["cat", "/proc/net/quic/snmp"], capture_output=True,
                   text=True, check=True).stdout  # fmt: skip
    for line in out.splitlines():
        name, _, value = line.partition("\t")
        if name.strip() == "QuicFrmRetrans":
            return int(value)
    raise AssertionError(f"no QuicFrmRetrans in /proc/net/quic/snmp:\n{out}")


def test_transfer_reordering(quic_module, clean_path, topo):
    """reordering: a quarter of the packets overtake the others by 10 ms."""
    _netem(topo, "delay 10ms reorder 75% 50%", "delay 5ms")
    _, samples = _transfer(topo, "cubic", 3 * 1000 * 1000)
    _check_samples(samples, "cubic", min_rtt_floor=5000)


def test_transfer_duplication(quic_module, clean_path, topo):
    """duplication: 5% of the packets arrive twice, each direction."""
    _netem(topo, "duplicate 5%")
    _, samples = _transfer(topo, "reno", 3 * 1000 * 1000)
    _check_samples(samples, "reno")


BOTTLENECK_BPS = 10 * 1000 * 1000
BOTTLENECK_BYTES = 8 * 1000 * 1000


def test_bottleneck_10mbit_200ms(quic_module, clean_path, topo, capsys):
    """`quicctl bench --bottleneck 10mbit --rtt 200`'s measurement, run here: a 10 Mbit/s tbf
    bottleneck with a BDP of queue, 200 ms of RTT on the ACK path; QUIC with NewReno, QUIC with
    CUBIC and TCP each move 8 MB (pattern-checked by the data path).  The benchmark measures the
    goodput (slow start included); the test reports it with the window's timeline.  It asserts
    that every transfer completes, that the shaping holds (nobody beats the link) and that
    QUIC's RTT estimates in /proc see the 200 ms path.  How much of the link each transport
    fills is a figure for the benchmark, not a verdict: it depends on how busy the host's CPUs
    are (TCP reached 56% on a contended CI machine).
    """
    from quicctl.bench import datapath
    from quicctl.bench import run as bench

    opts = bench.Options(
        transports=("quic", "tcp"),
        bottleneck_bps=BOTTLENECK_BPS,
        rtt_ms=200,
        bottleneck_bytes=BOTTLENECK_BYTES,
    )
    prog = datapath.binary()
    before = {ns: _drops(topo, ns) for ns in (topo.client, topo.server)}
    monitor = CongMonitor(topo, ns=topo.client)  # the client sends
    try:
        doc = bench.bottleneck(topo, opts, prog)
    finally:
        samples = monitor.finish()
    after = {ns: _drops(topo, ns) for ns in (topo.client, topo.server)}
    per_algo = {algo: [s for s in samples if s["ALGO"] == algo] for algo in ALGOS}
    with capsys.disabled():
        print()
        for e in doc["results"]:
            print(
                f"  bottleneck {e['transport']} ({e['cc']}): {e['bytes']} bytes in "
                f"{e['seconds']:.2f} s, goodput {e['goodput_bps'] / 1e6:.2f} Mbit/s "
                f"({100 * e['utilization']:.0f}% of 10 Mbit/s), {e['queue_drops']} dropped "
                "by the bottleneck's queue"
            )
        for algo, rows in per_algo.items():
            print(f"  quic {algo} timeline:")
            print(_timeline(rows))
        for ns, who in ((topo.client, "sender"), (topo.server, "receiver")):
            delta = {k: v - before[ns].get(k, 0) for k, v in after[ns].items()}
            print(f"  {who}: " + ", ".join(f"{k} {v}" for k, v in delta.items() if v))
    by = {(e["transport"], e["cc"]): e for e in doc["results"]}
    for e in doc["results"]:
        assert e["bytes"] == BOTTLENECK_BYTES, e
        assert e["utilization"] <= 1.05, f"faster than the bottleneck? {e}"
    for algo in ALGOS:
        last = _check_samples(per_algo[algo], algo, min_rtt_floor=195000)
        assert last["SRTT"] >= 195000, last
        assert ("quic", algo) in by, doc
    assert any(e["transport"] == "tcp" for e in doc["results"]), doc


def _drops(topo, ns: str) -> dict[str, int]:
    """Where packets can be lost besides the bottleneck's queue (the benchmark counts those):
    QUIC's drop and retransmission counters and the veth's drops, in namespace ``ns``."""
    dev = topo.dev(ns)
    script = (
        f"grep -E 'Drop|Retrans' /proc/net/quic/snmp; "
        f"echo RxDropped $(cat /sys/class/net/{dev}/statistics/rx_dropped); "
        f"echo TxDropped $(cat /sys/class/net/{dev}/statistics/tx_dropped)"
    )
    r = topo.run(ns, ["sh", "-c", script], capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        name, _, value = line.partition(" ") if "\t" not in line else line.partition("\t")
        if value.strip().isdigit():
            out[name.strip()] = int(value)
    return out


class Blackhole:
    """All UDP between the namespaces is dropped, 5 s on, 2 s off, from start(): nftables
    drops it where it arrives (each namespace's input hook), so a sender's sendmsg succeeds as
    it would into a real blackhole (an output-hook drop would fail it with EPERM).  Named
    counters, kept across the cycles, count the drops: dropped()."""

    def __init__(self, topo, on: float = 5.0, off: float = 2.0):
        self.topo, self.on, self.off = topo, on, off
        # Namespace -> the counter of what it is not let in.
        self.counters = {topo.server: "to_server", topo.client: "from_server"}
        self.cycles = 0
        self.stop = threading.Event()
        for ns, name in self.counters.items():
            nft(
                topo,
                ns,
                f"add table inet quicbh\nadd counter inet quicbh {name}\n"
                "add chain inet quicbh in { type filter hook input priority 0; }\n",
            )
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for ns, name in self.counters.items():
                rule = f"add rule inet quicbh in meta l4proto udp counter name {name} drop"
                nft(self.topo, ns, rule)
            self.cycles += 1
            self.stop.wait(self.on)
            for ns in self.counters:
                nft(self.topo, ns, "flush chain inet quicbh in\n")
            self.stop.wait(self.off)

    def dropped(self) -> dict[str, int]:
        """UDP packets dropped so far: {"to_server": n, "from_server": n}."""
        return {
            name: nft_counter(self.topo, ns, "inet", "quicbh", name)
            for ns, name in self.counters.items()
        }

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(30)
        for ns in self.counters:
            nft(self.topo, ns, "delete table inet quicbh\n")


@pytest.mark.parametrize("algo", list(ALGOS))
def test_blackhole_10mb(quic_module, clean_path, topo, algo):
    """A 10 MB transfer survives a path that goes black 5 s of every 7 (PTO with backoff,
    then persistent congestion once the path is back)."""
    data = os.urandom(10 * 1000 * 1000)
    # A 20 Mbit/s link: the transfer lasts long enough for the blackholes.
    topo.netem(topo.server, "delay 5ms rate 20mbit")
    hole = Blackhole(topo)
    monitor = CongMonitor(topo)
    sender = Sender(topo, algo, data, ready=monitor.seen)
    progress = threading.Event()
    try:
        result: dict = {}

        def client() -> None:
            try:
                result["got"] = _download(topo, sender.port, len(data), progress, monitor.sample)
            except BaseException as exc:
                result["error"] = exc
                progress.set()

        t = threading.Thread(target=client, daemon=True)
        t.start()
        # The path goes black once the transfer is under way (1 MB received).
        assert progress.wait(120), "the transfer did not start"
        hole.start()
        t.join(480)
        assert not t.is_alive(), "transfer did not finish in 480 s"
        assert "error" not in result, result.get("error")
        assert hole.cycles >= 1, "the transfer ended before the first blackhole"
        dropped = hole.dropped()
    finally:
        hole.close()
        samples = monitor.finish()
        sender.close()
    assert not sender.errors, sender.errors
    assert dropped["from_server"] > 0, f"the blackhole dropped none of the sender's: {dropped}"
    got, _ = result["got"]
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), "file corrupted"
    last = _check_samples(samples, algo)
    assert last["LOST"] > 0, last
