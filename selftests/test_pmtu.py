"""DPLPMTUD (RFC 8899, RFC 9000 Section 14.3), kernel to kernel across the veth pair.

Datagrams are 1200 bytes (RFC 9000 Section 14) until QUIC_SOCKOPT_CONFIG's
plpmtud_probe_interval turns the search on: probes, PINGs padded to the size tried, raise the
path MSS to the largest one the peer acknowledges, never above the route's MTU, and their loss
is no congestion signal (Section 14.4).  Each test echoes data over one stream, checks it by
hash, and reads what crossed the server's veth end (tcpdump, wire-like so that every datagram
is seen alone) and the MSS both sockets ended with (/proc/net/quic/conns).
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from conftest import nft, nft_counter
from test_connection import CIPHERS, EchoServer, _client, _read_streams
from test_offload import MTU, Capture

SIZE = 2 * 1000 * 1000
PL = {"plpmtud_probe_interval": 5_000_000}  # us: the smallest the kernel takes
HDR = {"v4": 20 + 8, "v6": 40 + 8}  # IP and UDP headers
STEP = 16  # QUIC_PL_STEP: the search stops this close to the path's limit


def _table(topo, ns: str, name: str) -> list[dict[str, str]]:
    r = topo.run(ns, ["cat", f"/proc/net/quic/{name}"], capture_output=True, text=True)
    assert r.returncode == 0, f"/proc/net/quic/{name} in {ns}: {r.stderr.strip()}"
    lines = r.stdout.splitlines()
    names = lines[0].split("\t")
    return [dict(zip(names, line.split("\t"), strict=True)) for line in lines[1:]]


def _echo(topo, tmp_path, family: str, config: dict | None) -> tuple[list[int], dict]:
    """SIZE bytes echoed with ``config`` on both ends: the UDP lengths seen on the server's
    veth end, and per namespace the connection's MSS, LOST and SSTHRESH before it closed."""
    for ns in (topo.server, topo.client):
        topo.wire_like(ns)
    host, bind = (topo.server_v4, "0.0.0.0") if family == "v4" else (topo.server_v6, "::")
    server = EchoServer(topo, bind, [CIPHERS["aes128gcm"]], config=config)
    cap = Capture(topo, topo.server, tmp_path / "pl.pcap")
    ends = {}
    try:
        with _client(topo, host, server.port, CIPHERS["aes128gcm"], config) as conn:
            data = os.urandom(SIZE)
            sid = conn.open_stream()
            conn.sendall(data, sid, fin=True)
            back = _read_streams(conn, {sid})[sid]
            assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest(), "data differs"
            for ns in (topo.server, topo.client):
                (c,) = _table(topo, ns, "conns")
                (g,) = _table(topo, ns, "cong")
                ends[ns] = {"mss": int(c["MSS"]), "lost": int(g["LOST"]),
                            "ssthresh": int(g["SSTHRESH"])}  # fmt: skip
    finally:
        cap.stop()
        server.close()
    assert not server.errors, server.errors
    return cap.lengths(), ends


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_plpmtud_grows_datagrams_to_the_link(
    quic_module, clean_path, topo, tmp_path, capsys, family
):
    """The veth's MTU is 1500: both ends end up with an MSS of 1500 bytes less the IP and UDP
    headers, the largest size probed first, and the data goes in datagrams above 1200."""
    top = MTU - HDR[family]
    lengths, ends = _echo(topo, tmp_path, family, PL)
    # The data: STREAM frames fill a packet whatever the connection ID length, so a datagram
    # is a few bytes short of the MSS (unpadded when it does not go in a GSO train).
    big = sum(1 for n in lengths if n > 1200)
    with capsys.disabled():
        print(f"\n  {family}: {big} of {len(lengths)} datagrams over 1200 bytes, the longest "
              f"{max(lengths)}; ends {ends}")  # fmt: skip
    assert max(lengths) == top, f"largest datagram {max(lengths)}, the link takes {top}"
    for ns, end in ends.items():
        assert end["mss"] == top, f"{ns}: MSS {end['mss']}, the link takes {top}"
    # About half the datagrams are ACKs; most of the others must carry the data.
    assert big > len(lengths) // 4, f"only {big} of {len(lengths)} datagrams were over 1200"


def test_plpmtud_off_keeps_1200_bytes(quic_module, clean_path, topo, tmp_path):
    """Without plpmtud_probe_interval no datagram is longer than 1200 bytes."""
    lengths, ends = _echo(topo, tmp_path, "v4", None)
    assert max(lengths) == 1200, max(lengths)
    assert all(end["mss"] == 1200 for end in ends.values()), ends


class _Narrow:
    """Both namespaces drop arriving IPv4 packets longer than ``limit`` bytes, silently, as a
    tunnel further down a path does whose ICMP never comes back; a named counter counts."""

    def __init__(self, topo, limit: int):
        self.topo = topo
        script = (
            "add table ip quicpl\nadd counter ip quicpl big\n"
            "add chain ip quicpl in { type filter hook input priority 0; }\n"
            f"add rule ip quicpl in ip length > {limit} counter name big drop\n"
        )
        for ns in (topo.server, topo.client):
            nft(topo, ns, script)

    def dropped(self) -> int:
        return sum(
            nft_counter(self.topo, ns, "ip", "quicpl", "big")
            for ns in (self.topo.server, self.topo.client)
        )

    def close(self) -> None:
        for ns in (self.topo.server, self.topo.client):
            nft(self.topo, ns, "delete table ip quicpl\n")


def test_plpmtud_finds_a_narrower_path(quic_module, clean_path, topo, tmp_path, capsys):
    """A path that silently drops IPv4 packets over 1300 bytes, on a 1500-byte link: the
    probes above it are lost, the MSS settles within QUIC_PL_STEP below 1272 bytes and never
    above, the data arrives, and no probe's loss counts as a lost packet or a congestion
    event (LOST stays 0)."""
    limit = 1300
    narrow = _Narrow(topo, limit)
    try:
        lengths, ends = _echo(topo, tmp_path, "v4", PL)
        dropped = narrow.dropped()
    finally:
        narrow.close()
    top = limit - HDR["v4"]
    with capsys.disabled():
        print(f"\n  narrow: {dropped} probes dropped, ends {ends}")
    assert dropped, "no datagram was too big for the path: nothing was probed"
    for ns, end in ends.items():
        assert top - STEP <= end["mss"] <= top, f"{ns}: MSS {end['mss']}, the path takes {top}"
        assert end["lost"] == 0, f"{ns}: lost probes counted as lost packets: {end}"
    # tcpdump sees what arrives before nftables drops it, and what leaves.
    over = sum(1 for n in lengths if n > top)
    assert over == dropped, f"{over} datagrams over {top} bytes crossed, {dropped} dropped"


def _mss(topo) -> dict[str, int]:
    return {ns: int(_table(topo, ns, "conns")[0]["MSS"]) for ns in (topo.server, topo.client)}


def _read(conn, sid: int, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        s, data, _fin = conn.recv(1 << 20)
        assert s == sid, f"data on unexpected stream {s}"
        got += data
    return bytes(got)


def test_plpmtud_survives_a_path_that_narrows(quic_module, clean_path, topo, tmp_path, capsys):
    """Black hole detection (RFC 8899 Section 4.3): once the MSS has grown to the link's 1472
    bytes, the path starts dropping IPv4 packets over 1300 bytes, silently.  After three probe
    timeouts both ends fall back to 1200-byte datagrams, cutting the STREAM frames already
    built to the new size, the echo completes intact, and a new search settles below the new
    limit."""
    for ns in (topo.server, topo.client):
        topo.wire_like(ns)
    server = EchoServer(topo, "0.0.0.0", [CIPHERS["aes128gcm"]], config=PL)
    narrow = None
    half = SIZE // 2
    try:
        with _client(topo, topo.server_v4, server.port, CIPHERS["aes128gcm"], PL) as conn:
            data = os.urandom(SIZE)
            sid = conn.open_stream()
            # The echo server holds the data until the FIN: the first half crosses the
            # wide path, the second half and all of the echo the narrowed one.
            conn.sendall(data[:half], sid, fin=False)
            deadline = time.monotonic() + 30
            while set((wide := _mss(topo)).values()) != {MTU - HDR["v4"]}:
                assert time.monotonic() < deadline, f"the MSS did not grow: {wide}"
                time.sleep(0.2)
            narrow = _Narrow(topo, 1300)
            conn.sendall(data[half:], sid, fin=True)
            assert _read(conn, sid, SIZE) == data, "the echo differs"
            after = _mss(topo)
            dropped = narrow.dropped()
    finally:
        if narrow:
            narrow.close()
        server.close()
    assert not server.errors, server.errors
    with capsys.disabled():
        print(f"\n  narrowed: MSS {wide} -> {after}, {dropped} datagrams dropped")
    assert dropped, "nothing was dropped: the path never narrowed under the transfer"
    for ns, mss in after.items():
        assert mss <= 1300 - HDR["v4"], f"{ns}: MSS {mss} is above what the path now takes"
