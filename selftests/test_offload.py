"""UDP GSO on transmit and GRO on receive, kernel to kernel across the veth pair.

quic.ko builds the full-size datagrams of one flush into one UDP GSO skb when the route's device
takes it (veth does), and its UDP socket has UDP_GRO on and takes each skb off the UDP queue
whole (sk_data_ready), so a GSO skb from the sender, or a GRO train from the receiving device,
is decrypted datagram by datagram in place instead of being copied apart by UDP.  tcpdump on
the server's veth end sees what crossed it: UDP packets longer than the MTU are those trains.
Each test moves data both ways (an echo) and checks it by hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

from conftest import require, snmp
from test_connection import CIPHERS, EchoServer, _client, _read_streams

SIZE = 2 * 1000 * 1000
MTU = 1500
UDP_MAX = MTU - 20 - 8  # the largest UDP payload of one IPv4 datagram


class Capture:
    """tcpdump of the UDP packets on ``ns``'s veth end into a pcap (``snap`` bytes of each;
    headers only by default: the lengths are what counts); ``lengths()`` after ``stop()``."""

    def __init__(self, topo, ns: str, pcap: Path, snap: int = 96):
        require("tcpdump")
        self.pcap = pcap
        self.proc = topo.popen(
            ns,
            ["tcpdump", "-n", "-U", "-i", topo.dev(ns), "-s", str(snap), "-B", "16384", "-w",
             str(pcap), "udp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        # tcpdump says "listening on" once the capture runs.
        said = ""
        for _ in range(5):
            said += self.proc.stderr.readline()
            if "listening" in said:
                break
        assert "listening" in said, f"tcpdump did not start: {said}"

    def stop(self) -> None:
        # The last packets reach the capture: tcpdump (-U) writes each as it takes it, so
        # the file stops growing once it has caught up (it lags on a loaded machine).
        size, deadline = -1, time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.pcap.stat().st_size if self.pcap.exists() else 0
            if now == size:
                break
            size = now
        self.proc.terminate()
        self.said = self.proc.communicate(timeout=60)[1]  # tcpdump's packet counts

    def lengths(self) -> list[int]:
        r = subprocess.run(["tcpdump", "-n", "-r", str(self.pcap)], capture_output=True,
                           text=True, check=True)  # fmt: skip
        return [int(m) for m in re.findall(r"UDP, length (\d+)", r.stdout)]


def _snmp(topo) -> dict[str, dict[str, int]]:
    return {ns: snmp(ns=ns) for ns in (topo.server, topo.client)}


def _echo(topo, tmp_path: Path) -> list[int]:
    """SIZE bytes to the echo server and back over one stream; the UDP lengths seen on the
    server's veth end.  Prints the time and the counters that moved."""
    server = EchoServer(topo, "0.0.0.0", [CIPHERS["aes128gcm"]])
    cap = Capture(topo, topo.server, tmp_path / "veth.pcap")
    before, start = _snmp(topo), time.monotonic()
    try:
        with _client(topo, topo.server_v4, server.port, CIPHERS["aes128gcm"]) as conn:
            data = os.urandom(SIZE)
            sid = conn.open_stream()
            conn.sendall(data, sid, fin=True)
            back = _read_streams(conn, {sid})[sid]
            assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest(), "data differs"
            # Before the close: a datagram that arrives after a CONNECTION_CLOSE overtook it
            # is dropped as RFC 9000 Section 10.2.2 says, and counted.
            after = _snmp(topo)
    finally:
        took = time.monotonic() - start
        cap.stop()
        server.close()
    for ns, name in ((topo.server, "server"), (topo.client, "client")):
        moved = {k: v - before[ns][k] for k, v in after[ns].items() if v != before[ns][k]}
        print(f"  {name} after {took:.1f} s: {moved}")
        # A clean path: nothing may fail to decrypt or parse.  QuicPktRcvDrop also counts
        # what RFC 9001 Section 4.9 and RFC 9000 Section 10.2 make an endpoint drop, such as
        # a Handshake packet sent again by a slow peer after the keys were discarded; a full
        # backlog or receive buffer would drop far more than two.
        for what in ("QuicPktDecDrop", "QuicPktInvHdrDrop"):
            assert not moved.get(what), f"{name}: {what} {moved[what]}: {moved}"
        assert moved.get("QuicPktRcvDrop", 0) <= 2, f"{name}: {moved}"
    assert not server.errors, server.errors
    lengths = cap.lengths()
    assert len(lengths) > 100, f"tcpdump saw too few packets: {len(lengths)}"
    return lengths


def _gro(topo, ns: str, state: str) -> None:
    r = topo.run(ns, ["ethtool", "-K", topo.dev(ns), "gro", state], capture_output=True, text=True)
    assert r.returncode == 0, f"ethtool -K {topo.dev(ns)} gro {state}: {r.stderr.strip()}"


def test_gso_trains_cross_the_veth(quic_module, clean_path, topo, tmp_path, capsys):
    """Both ends send UDP GSO skbs: packets longer than the MTU cross the veth, whole."""
    lengths = _echo(topo, tmp_path)
    trains = [n for n in lengths if n > UDP_MAX]
    with capsys.disabled():
        print(f"\n  gso: {len(trains)} of {len(lengths)} UDP packets were trains, "
              f"up to {max(lengths)} bytes ({max(lengths) // 1200} datagrams)")  # fmt: skip
    assert trains, f"no UDP GSO skb crossed the veth (longest {max(lengths)})"
    assert all(n <= 64 * 1024 for n in trains), max(trains)


def test_wire_like_path_carries_datagrams(quic_module, clean_path, topo, tmp_path):
    """With gso and tx-udp-segmentation off (what Topology.netem() sets), no train leaves
    either end: netem and tbf see each datagram alone, as on a wire."""
    for ns in (topo.server, topo.client):
        topo.wire_like(ns)
    lengths = _echo(topo, tmp_path)
    assert max(lengths) <= UDP_MAX, f"a {max(lengths)}-byte train left a wire-like end"


def _segmentation(topo, ns: str, state: str) -> None:
    """tx-udp-segmentation and tso of ``ns``'s veth end ``state``, gso left on."""
    dev = topo.dev(ns)
    r = topo.run(ns, ["ethtool", "-K", dev, "tx-udp-segmentation", state, "tso", state],
                 capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, f"ethtool -K {dev} tx-udp-segmentation/tso {state}: {r.stderr}"


def test_gro_trains_are_received_whole(quic_module, clean_path, topo, tmp_path, capsys):
    """The server's veth end does GRO, and trains longer than the MTU reach the server's UDP
    socket, which takes them whole; the transfer is intact.

    The client's veth end keeps software GSO but not tx-udp-segmentation, so each GSO skb
    quic.ko sends is cut into datagrams in the client's transmit path, all of them queued to
    the server's end before its NAPI poll runs: that poll finds the datagrams of a train
    together, whatever the speed of the machine, and GRO has something to coalesce.  With tso
    off as well, veth hands them to that NAPI poll rather than to netif_rx()
    (veth_skb_is_eligible_for_gro()).  The server sends the same way, so every train on its
    end came from GRO."""
    for ns in (topo.server, topo.client):
        _segmentation(topo, ns, "off")
    _gro(topo, topo.server, "on")
    try:
        lengths = _echo(topo, tmp_path)
        features = _features(topo)
    finally:
        _gro(topo, topo.server, "off")
        for ns in (topo.server, topo.client):
            _segmentation(topo, ns, "on")
    trains = [n for n in lengths if n > UDP_MAX]
    with capsys.disabled():
        print(f"\n  gro: {len(trains)} of {len(lengths)} UDP packets received as trains, "
              f"up to {max(lengths)} bytes")  # fmt: skip
    assert trains, f"the receiving veth did no GRO (longest {max(lengths)}): {features}"


def _features(topo) -> str:
    """What the veth ends had on: for a GRO that did not happen."""
    said = []
    for ns in (topo.server, topo.client):
        r = topo.run(ns, ["ethtool", "-k", topo.dev(ns)], capture_output=True, text=True)
        on = [
            line.split(":")[0].strip()
            for line in r.stdout.splitlines()
            if ": on" in line and ("segment" in line or "gro" in line or "offload" in line)
        ]
        s = topo.run(ns, ["ethtool", "-S", topo.dev(ns)], capture_output=True, text=True)
        said.append(f"{ns}: on {on}; stats {' '.join(s.stdout.split())}")
    return "; ".join(said)
