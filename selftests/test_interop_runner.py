"""The QUIC interop runner's cases on impaired paths, between quic.ko and aioquic or ngtcp2.

test_recovery runs transferloss, reordering, duplication and the blackhole kernel to kernel;
here the same impairments carry hq-interop downloads between the kernel and aioquic (kernel
client -> aioquic server, aioquic client -> kernel server), and handshakeloss and corruption
run in those pairings and kernel to kernel.  Each case is judged by the files' hashes, by the
kernel's counters (/proc/net/quic/snmp and cong) and by what the path or a capture shows: the
netem qdiscs' counters prove the traffic went through the impairment, and for handshakeloss
tshark and quicdecode count the connections in a tcpdump capture.

The blackhole (10 MB, the path black 5 s of every 7) runs with ngtcp2's gtlsclient (HTTP/3)
downloading from the kernel, judged by the saved file's hash and the nftables drop counters.
Only the kernel sends through it: the independent senders do not survive it, for reasons of
their own.  ngtcp2's gtlsserver doubles its PTO without bound (RFC 9002 Section 6.2.1): when
its probes, 0.3, 0.6, 1.1, 2.3, 4.5 and 9 s apart, have all fallen into black periods, the next
would come after its 30 s idle timeout, and it gives up (ERR_IDLE_CLOSE in 3 of 3 runs, its
qlog in one).  aioquic's sender does the same (branch blackhole-aioquic), and a kernel sender
with an aioquic receiver is too slow for 10 MB in the guest.  The kernel's backoff stops at
1/16 of the idle timeout (input.c), so it probes every 1.9 s.

The runner's "transfer" (2, 3 and 5 MB, a client starting with 64 KB / 16 KB windows) and
"multiplexing" (2,000 streams) are test_streams' test_transfer_small_windows_* and
test_multiplexing_2000_streams, in all three pairings.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    DEBUG_KERNEL,
    SERVER_NAME,
    KernelHqServer,
    hq_server,
    kernel_connect,
    require,
    snmp,
)
from test_h3 import _check_files, _tool
from test_recovery import Blackhole, CongMonitor, _check_samples
from test_streams import _check

from quicctl.paths import KEYS

MB = 1000 * 1000
# Seconds a handshake, or any pause of a transfer, may take: generous (the TCG guest is slow,
# and 30% loss makes PTOs back off to many seconds) but bounded.
TIMEOUT = 120
# The kernel ends' idle timeout (us) where the path goes silent for long: 30 s (the default)
# of silence is too likely under 30% loss with PTO backoff, or across blackholes.
IDLE_TP = {"max_idle_timeout": TIMEOUT * 1000 * 1000}
# handshakeloss: the runner's 50 connections; fewer only on the debug kernel (KASAN under TCG).
HANDSHAKES = 15 if DEBUG_KERNEL else 50
# The pairings: client-server.
PAIRS = ["kernel-kernel", "kernel-aioquic", "aioquic-kernel"]
WITH_AIOQUIC = ["kernel-aioquic", "aioquic-kernel"]


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    from quicctl.hq import make_file

    root = tmp_path_factory.mktemp("www")
    sizes = {"three": 3 * MB, "ten": 10 * MB}
    sizes.update({f"k{i}": 1024 for i in range(HANDSHAKES)})
    return root, {name: make_file(root / name, size, seed=i) for i, (name, size) in
                  enumerate(sizes.items())}  # fmt: skip


def _fetch(
    topo, client: str, port: int, paths: list[str], progress=None, transport_params=None
) -> list:
    """Download ``paths`` on one connection from the client namespace, with quic.ko
    ("kernel", advertising ``transport_params``) or aioquic."""
    from quicctl import hq, userspace
    from quicctl.netns import enter

    if client == "kernel":
        with kernel_connect(topo, topo.server_v4, port, transport_params=transport_params) as conn:
            return hq.fetch(conn, paths, None, progress)
    with enter(topo.client):
        return userspace.fetch(
            topo.server_v4, port, paths, cafile=str(KEYS / "ca.crt"), server_name=SERVER_NAME,
            timeout=TIMEOUT, progress=progress,
        )  # fmt: skip


def _both(topo, spec: str, spec_client: str | None = None) -> None:
    topo.netem(topo.server, spec)
    topo.netem(topo.client, spec_client or spec)


def _qdisc(topo, ns: str) -> tuple[int, int]:
    """(packets sent, packets dropped) by the root qdisc (netem) of ``ns``'s veth end."""
    out = topo.run(ns, ["tc", "-s", "qdisc", "show", "dev", topo.dev(ns), "root"],
                   capture_output=True, text=True, check=True).stdout  # fmt: skip
    m = re.search(r"Sent \d+ bytes (\d+) pkt \(dropped (\d+)", out)
    assert m and "netem" in out, f"no netem statistics on {topo.dev(ns)}:\n{out}"
    return int(m[1]), int(m[2])


def _through_netem(topo, size: int) -> dict[str, tuple[int, int]]:
    """The file went through the netem qdiscs: the sender's (either end) passed at least one
    packet per 1,500 bytes of it.  Returns (sent, dropped) per end."""
    stats = {"server": _qdisc(topo, topo.server), "client": _qdisc(topo, topo.client)}
    assert stats["server"][0] >= size // 1500, f"the file did not cross the netem: {stats}"
    return stats


def _delta(before: dict[str, int], after: dict[str, int], name: str) -> int:
    return after[name] - before[name]


# -- handshakeloss ------------------------------------------------------------------------


class Capture:
    """tcpdump on the client's veth end: what left the client past its netem and what reached
    it past the server's."""

    def __init__(self, topo, pcap: Path):
        require("tcpdump", "tshark")
        self.pcap = pcap
        self.proc = topo.popen(
            topo.client, ["tcpdump", "-U", "-n", "-i", topo.dev(topo.client), "-w", str(pcap),
                          "udp"], stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        said = ""
        while "listening on" not in said:  # it captures once it says so
            line = self.proc.stderr.readline()
            assert line, f"tcpdump did not start: {said}"
            said += line

    def stop(self) -> None:
        time.sleep(1)  # the last packets reach the file (-U: written per packet)
        self.proc.terminate()
        self.proc.wait(30)

    def scids(self, port: int, direction: str, name: str) -> set[str]:
        """The Source Connection IDs of the long-header (Initial, Handshake) packets sent to
        (``"to"``) or from (``"from"``) the server's UDP ``port``: one per connection and end,
        whatever the packets' version and however often they were sent again.

        Read by two decoders, tshark and quicdecode, which must agree; a tshark that crashes
        (it has, on a busy machine) decides nothing: its crash is reported, the capture kept,
        and quicdecode's reading stands alone."""
        import quicdecode

        ours = quicdecode.decode(self.pcap, port).scids["client" if direction == "to" else "server"]
        r = quicdecode.run_tshark(
            ["-n", "-r", str(self.pcap), "-d", f"udp.port=={port},quic",
             "-Y", f"quic && udp.{'dst' if direction == 'to' else 'src'}port=={port}",
             "-T", "fields", "-e", "quic.scid"], self.pcap, None, name,
        )  # fmt: skip
        if r.crashed:
            return ours
        assert r.rc == 0, f"tshark failed: {r.stderr}"
        theirs = {c.replace(":", "") for line in r.stdout.split() for c in line.split(",") if c}
        assert theirs == ours, (
            f"tshark and quicdecode read different Source Connection IDs {direction} the server: "
            f"only tshark {sorted(theirs - ours)}, only quicdecode {sorted(ours - theirs)}"
        )
        return ours


# 50 connections take ~400 s in a loaded TCG guest, too close to the suite's 600 s per test;
# each connection is bounded by TIMEOUT as well.
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("pair", ["kernel-kernel", "aioquic-kernel"])
def test_handshakeloss(quic_module, clean_path, topo, www, tmp_path, pair, capsys):
    """handshakeloss: HANDSHAKES sequential connections, each downloading 1 KB, with 30% of
    the packets lost each way.  Every file arrives intact, and the capture shows exactly one
    client and one server Connection ID per connection (no connection made twice, none
    missing)."""
    root, digests = www
    client, server = pair.split("-")
    srv = hq_server(topo, server, root, handshake_timeout=TIMEOUT, transport_params=IDLE_TP)
    cap = Capture(topo, tmp_path / "handshakeloss.pcap")
    took: list[float] = []
    try:
        _both(topo, "loss 30%")
        for i in range(HANDSHAKES):
            start = time.monotonic()
            try:
                got = _fetch(topo, client, srv.port, [f"/k{i}"], transport_params=IDLE_TP)
            except Exception as exc:
                raise AssertionError(
                    f"connection {i + 1} of {HANDSHAKES} failed after "
                    f"{time.monotonic() - start:.1f} s: {exc}; server log: {srv.log}"
                ) from exc
            _check(got, digests, [f"k{i}"])
            took.append(time.monotonic() - start)
        netem = {"server": _qdisc(topo, topo.server), "client": _qdisc(topo, topo.client)}
    finally:
        cap.stop()
        srv.close()
    assert not srv.log, srv.log
    with capsys.disabled():
        print(
            f"\n  handshakeloss {pair}: {HANDSHAKES} connections in {sum(took):.0f} s "
            f"(median {statistics.median(took):.1f} s, max {max(took):.1f} s); "
            f"netem (sent, dropped) {netem}"
        )
    assert all(dropped for _, dropped in netem.values()), f"nothing was lost: {netem}"
    name = f"handshakeloss-{pair}"
    clients, servers = cap.scids(srv.port, "to", name), cap.scids(srv.port, "from", name)
    assert len(clients) == HANDSHAKES, f"{len(clients)} client Connection IDs: {sorted(clients)}"
    assert len(servers) == HANDSHAKES, f"{len(servers)} server Connection IDs: {sorted(servers)}"


# -- corruption ---------------------------------------------------------------------------


class Corruption:
    """netem ``corrupt`` flips a bit in 2% of the packets leaving each end.  It does so after
    computing the UDP checksum, so the receiving UDP would drop every such packet as a
    checksum error before QUIC saw it: a tc ``csum`` action on each end's ingress recomputes
    the checksum, and the corrupted packets reach QUIC (and aioquic), which must drop them
    as undecryptable (the AEAD tag) and recover the data they carried."""

    def __init__(self, topo, rate: str = "2%"):
        self.topo = topo
        for ns in (topo.server, topo.client):
            topo.netem(ns, f"corrupt {rate}")
            for cmd in (["qdisc", "add", "dev", topo.dev(ns), "clsact"],
                        ["filter", "add", "dev", topo.dev(ns), "ingress", "matchall",
                         "action", "csum", "udp"]):  # fmt: skip
                r = topo.run(ns, ["tc", *cmd], capture_output=True, text=True)
                assert r.returncode == 0, f"tc {' '.join(cmd)}: {r.stderr.strip()}"

    def close(self) -> None:
        for ns in (self.topo.server, self.topo.client):
            self.topo.run(ns, ["tc", "qdisc", "del", "dev", self.topo.dev(ns), "clsact"],
                          capture_output=True)  # fmt: skip


@pytest.mark.parametrize("pair", PAIRS)
def test_corruption(quic_module, clean_path, topo, www, pair):
    """corruption: 3 MB with 2% of the packets corrupted each way; the file is intact and the
    kernel end(s) counted the undecryptable packets (QuicPktDecDrop)."""
    root, digests = www
    client, server = pair.split("-")
    kernel_ns = [ns for kind, ns in ((client, topo.client), (server, topo.server))
                 if kind == "kernel"]  # fmt: skip
    before = {ns: snmp(ns=ns) for ns in kernel_ns}
    srv = hq_server(topo, server, root)
    corrupt = Corruption(topo)
    try:
        _check(_fetch(topo, client, srv.port, ["/three"]), digests, ["three"])
        netem = _through_netem(topo, 3 * MB)
    finally:
        corrupt.close()
        srv.close()
    assert not srv.log, srv.log
    dropped = {ns: _delta(before[ns], snmp(ns=ns), "QuicPktDecDrop") for ns in kernel_ns}
    print(f"QuicPktDecDrop per namespace: {dropped}; netem (sent, dropped): {netem}")
    # The receiving end gets ~2,000 packets of the file: 2% of them is ~40.
    receiver = topo.client if client == "kernel" else topo.server
    assert dropped[receiver] > 0, f"no decryption failure counted: {dropped}"


# -- transferloss, reordering, duplication with aioquic ---------------------------------------


def _transfer(topo, www, pair: str, name: str):
    """Download file ``name`` across the impaired path: kernel namespace's SNMP counters
    before and after, /proc/net/quic/cong samples of a kernel server, the netem counters."""
    root, digests = www
    client, server = pair.split("-")
    kernel_ns = topo.client if client == "kernel" else topo.server
    before = snmp(ns=kernel_ns)
    srv = hq_server(topo, server, root)
    monitor = CongMonitor(topo) if server == "kernel" else None
    try:
        _check(_fetch(topo, client, srv.port, [f"/{name}"]), digests, [name])
        netem = _through_netem(topo, (root / name).stat().st_size)
    finally:
        samples = monitor.finish() if monitor else []
        srv.close()
    assert not srv.log, srv.log
    after = snmp(ns=kernel_ns)
    print(f"{pair}: netem (sent, dropped) {netem}; {kernel_ns} SNMP after {after}")
    return before, after, samples, netem


@pytest.mark.parametrize("pair", WITH_AIOQUIC)
def test_transferloss_2pct(quic_module, clean_path, topo, www, pair):
    """transferloss: 2% of the packets lost each way.  The netem qdiscs dropped packets of
    both ends; a kernel sender declared losses and queued the lost frames again."""
    _both(topo, "loss 2%")
    before, after, samples, netem = _transfer(topo, www, pair, "three")
    assert netem["server"][1] > 0 and netem["client"][1] > 0, f"nothing lost: {netem}"
    if pair.endswith("kernel"):
        assert _check_samples(samples, "reno")["LOST"] > 0, "no packet declared lost"
        assert _delta(before, after, "QuicFrmRetrans") > 0, "no frame sent again"


@pytest.mark.parametrize("pair", WITH_AIOQUIC)
def test_transfer_reordering(quic_module, clean_path, topo, www, pair):
    """reordering: a quarter of the server's packets overtake others by 10 ms."""
    _both(topo, "delay 10ms reorder 75% 50%", "delay 5ms")
    _, _, samples, _ = _transfer(topo, www, pair, "three")
    if pair.endswith("kernel"):
        _check_samples(samples, "reno", min_rtt_floor=5000)


@pytest.mark.parametrize("pair", WITH_AIOQUIC)
def test_transfer_duplication(quic_module, clean_path, topo, www, pair):
    """duplication: 5% of the packets arrive twice, each way; the kernel end drops the
    copies by packet number (QuicPktInvNumDrop)."""
    _both(topo, "duplicate 5%")
    before, after, _, _ = _transfer(topo, www, pair, "three")
    assert _delta(before, after, "QuicPktInvNumDrop") > 0, "no duplicate seen by the kernel"


# -- blackhole with ngtcp2 ----------------------------------------------------------------


def _gtlsclient(topo, port: int, name: str, outdir: Path, log) -> subprocess.Popen:
    """ngtcp2's HTTP/3 client in the client namespace, GETting ``/name`` into ``outdir``."""
    addr = topo.server_v4
    return topo.popen(
        topo.client,
        [_tool("gtlsclient"), "-q", "--exit-on-all-streams-close", "--download", str(outdir),
         "--sni", SERVER_NAME,
         # Explicit (it is ngtcp2's default): the negotiated idle timeout stops the kernel's
         # PTO backoff at 1/16 of it (input.c), 1.9 s, within the 2 s the path is open.
         "--timeout", "30s",
         addr, str(port), f"https://{addr}:{port}/{name}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_blackhole_10mb_ngtcp2_client(quic_module, clean_path, topo, www, tmp_path, capsys):
    """blackhole: quic.ko sends 10 MB over HTTP/3 (quicctl's server) to ngtcp2's gtlsclient
    on a 20 Mbit/s path that goes black (all UDP dropped) 5 s of every 7 once 1 MB has
    arrived.  The file gtlsclient saved is intact, at least one blackhole began during the
    transfer and its counters show the kernel's packets dropped."""
    root, digests = www
    topo.netem(topo.server, "delay 5ms rate 20mbit")
    srv = KernelHqServer(topo, root, alpn=["h3"])
    hole = Blackhole(topo)
    outdir, log = tmp_path / "dl", tmp_path / "gtlsclient.log"
    outdir.mkdir()
    out = outdir / "ten"
    with open(log, "w") as f:
        proc = _gtlsclient(topo, srv.port, "ten", outdir, f)
    try:
        # gtlsclient writes the body as it arrives: the path goes black after 1 MB.
        deadline = time.monotonic() + TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            if out.exists() and out.stat().st_size >= MB:
                break
            time.sleep(0.05)
        got = out.stat().st_size if out.exists() else 0
        assert got >= MB, f"the transfer did not start: {got} bytes; {log.read_text()}"
        start = time.monotonic()
        hole.start()
        try:
            proc.wait(480)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"not finished in 480 s: {out.stat().st_size} bytes") from None
        took = time.monotonic() - start
        dropped = hole.dropped()
    finally:
        hole.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        srv.close()
    with capsys.disabled():
        print(
            f"\n  blackhole ngtcp2 client <- kernel: 10 MB in {took:.0f} s from the first "
            f"blackhole, {hole.cycles} blackholes, nftables dropped {dropped}"
        )
    # gtlsclient exits 0 even when the transfer failed: the saved file is the verdict.
    said = log.read_text()[-2000:]
    _check_files(outdir, digests, ["ten"], f"gtlsclient said: {said}; server: {srv.log}")
    assert not said.strip(), f"gtlsclient (exit {proc.returncode}) said: {said}"
    assert not srv.log, srv.log
    assert hole.cycles >= 1, "the transfer ended before the first blackhole"
    assert dropped["from_server"] > 0, f"the blackhole dropped none of the kernel's: {dropped}"
