"""ECN (RFC 9000 Section 13.4, RFC 9002 Section 7.1 and Appendix B.7).

quic.ko sends its datagrams with ECT(0) while ECN is tested or known to work on the path,
counts the codepoints of what it receives and reports them in ACK_ECN frames, checks the
peer's counts, and treats a rise of the peer's CE count as a congestion signal without a loss.
Here: a kernel server sends to a kernel client through a rate-limited bottleneck whose AQM
(fq_codel) marks instead of dropping, then the same bottleneck dropping; a path that clears
the marks (nftables); and aioquic peers, which acknowledge without ECN counts.
"""

from __future__ import annotations

import re

import pytest
from conftest import SERVER_NAME, KernelHqServer, kernel_connect, nft, nft_counter, scaled, snmp
from test_recovery import ALGOS, _check_samples, _timeline, _transfer

from quicctl.paths import KEYS

SIZE = scaled(4 * 1000 * 1000)
RATE = "20mbit"
# Datagrams the sender marks before it knows whether the marks arrive (RFC 9000 Appendix A.4:
# QUIC_ECN_TESTING_PKTS ack-eliciting ones, and the ACK-only packets sent meanwhile).
TESTING_MAX = 30


def _ect_counters(topo, ns: str) -> None:
    """nftables counters of the UDP datagrams leaving namespace ``ns``: all of them and
    those with ECT(0) (``ect0``), one per datagram (:meth:`Topology.wire_like`)."""
    topo.wire_like(ns)
    nft(
        topo,
        ns,
        "add table inet quicecn\nadd counter inet quicecn udp_all\nadd counter inet quicecn ect0\n"
        "add chain inet quicecn out { type filter hook postrouting priority 0; }\n"
        "add rule inet quicecn out meta l4proto udp counter name udp_all\n"
        "add rule inet quicecn out meta l4proto udp ip ecn ect0 counter name ect0\n"
        "add rule inet quicecn out meta l4proto udp ip6 ecn ect0 counter name ect0\n",
    )


def _ect_sent(topo, ns: str) -> tuple[int, int]:
    """(datagrams with ECT(0), all datagrams) counted by :func:`_ect_counters`."""
    return (
        nft_counter(topo, ns, "inet", "quicecn", "ect0"),
        nft_counter(topo, ns, "inet", "quicecn", "udp_all"),
    )


@pytest.fixture
def ecn_tables(topo):
    """The nftables tables of this file go at the end of each test."""
    yield
    for ns in (topo.server, topo.client):
        topo.run(ns, ["nft", "delete", "table", "inet", "quicecn"], capture_output=True)


def _bottleneck(topo, ecn: bool) -> str:
    """The server's veth end sends through tbf at RATE with fq_codel under it, marking CE
    (``ecn``) or dropping when packets wait longer than its target; the ACK path is 10 ms
    long.  Returns the device."""
    dev = topo.dev(topo.server)
    topo.wire_like(topo.server)
    for argv in (
        ["root", "handle", "1:", "tbf", "rate", RATE, "burst", "20kb", "latency", "1s"],
        ["parent", "1:1", "handle", "10:", "fq_codel", "ecn" if ecn else "noecn",
         "target", "2ms", "interval", "20ms"],
    ):  # fmt: skip
        r = topo.run(topo.server, ["tc", "qdisc", "replace", "dev", dev, *argv],
                     capture_output=True, text=True)  # fmt: skip
        assert r.returncode == 0, f"tc qdisc {' '.join(argv)} on {dev}: {r.stderr.strip()}"
    topo.netem(topo.client, "delay 10ms")
    return dev


def _qdisc_stats(topo, dev: str) -> dict[str, int]:
    """The bottleneck's marks (fq_codel ecn_mark) and drops (of every qdisc on ``dev``)."""
    out = topo.run(topo.server, ["tc", "-s", "qdisc", "show", "dev", dev], capture_output=True,
                   text=True, check=True).stdout  # fmt: skip
    marks = re.search(r"ecn_mark (\d+)", out)
    assert marks, f"no fq_codel statistics on {dev}:\n{out}"
    dropped = sum(int(n) for n in re.findall(r"\(dropped (\d+)", out))
    return {"ecn_mark": int(marks[1]), "dropped": dropped, "text": out}


def _delta(before: dict[str, int], after: dict[str, int], name: str) -> int:
    return after[name] - before[name]


def _run_bottleneck(topo, algo: str, ecn: bool) -> dict:
    """One SIZE transfer through the bottleneck; the figures the test compares."""
    dev = _bottleneck(topo, ecn)
    sender0, receiver0 = snmp(ns=topo.server), snmp(ns=topo.client)
    elapsed, samples = _transfer(topo, algo, SIZE)
    sender, receiver = snmp(ns=topo.server), snmp(ns=topo.client)
    stats = _qdisc_stats(topo, dev)
    topo.clear_qdisc(topo.server)
    topo.clear_qdisc(topo.client)
    last = _check_samples(samples, algo)
    return {
        "mbps": SIZE * 8 / elapsed / 1e6,
        "seconds": elapsed,
        "samples": samples,
        "last": last,
        "qdisc": stats,
        "ce_rcvd": _delta(receiver0, receiver, "QuicPktRcvEcnCe"),
        "ce_events": _delta(sender0, sender, "QuicEcnCongEvents"),
        "failed": _delta(sender0, sender, "QuicEcnFailed")
        + _delta(receiver0, receiver, "QuicEcnFailed"),
    }


def _report(name: str, r: dict) -> str:
    q, last = r["qdisc"], r["last"]
    return (
        f"  {name}: {SIZE} bytes in {r['seconds']:.2f} s ({r['mbps']:.2f} Mbit/s of {RATE}), "
        f"fq_codel marked {q['ecn_mark']} dropped {q['dropped']}, receiver counted CE "
        f"{r['ce_rcvd']}, sender CE congestion events {r['ce_events']}, lost {last['LOST']} "
        f"({last['SPURIOUS']} of them acknowledged later), "
        f"final cwnd {last['CWND']} ssthresh {last['SSTHRESH']}\n{_timeline(r['samples'])}"
    )


@pytest.mark.parametrize("algo", list(ALGOS))
def test_ce_marks_instead_of_drops(quic_module, clean_path, topo, ecn_tables, algo, capsys):
    """Through a 20 Mbit/s bottleneck whose fq_codel marks CE: the qdisc marks and drops
    nothing, the receiver counts the CE marks and reports them, the sender reduces its window
    for them (ssthresh set, QuicEcnCongEvents) with no packet lost, the file arrives intact,
    and the goodput is that of the same bottleneck dropping instead."""
    _ect_counters(topo, topo.server)
    marked = _run_bottleneck(topo, algo, ecn=True)
    ect0, total = _ect_sent(topo, topo.server)
    dropped = _run_bottleneck(topo, algo, ecn=False)
    with capsys.disabled():
        print()
        print(_report(f"{algo} ecn", marked))
        print(f"  sender datagrams with ECT(0): {ect0} of {total}")
        print(_report(f"{algo} drop", dropped))
    m, last = marked["qdisc"], marked["last"]
    assert m["ecn_mark"] > 0, f"fq_codel marked nothing: the bottleneck never queued\n{m}"
    assert m["dropped"] <= 2, f"the marking AQM dropped packets:\n{m['text']}"
    assert marked["ce_rcvd"] > 0, "the receiver counted no CE-marked packet"
    assert marked["ce_events"] > 0, "the sender never reduced its window for the CE marks"
    assert last["SSTHRESH"] > 0, f"no window reduction: {last}"
    top = max(s["CWND"] for s in marked["samples"])
    assert top < SIZE // 4, f"the window grew to {top} bytes as if nothing was marked"
    # Declared lost and then acknowledged (reordering in the guest) is no loss.
    real = last["LOST"] - last["SPURIOUS"]
    assert real <= 3, f"{real} packets lost though the bottleneck only marked: {last}"
    assert marked["failed"] == 0, "ECN validation failed on a path that keeps the marks"
    assert ect0 >= 0.9 * total, f"only {ect0} of {total} datagrams left with ECT(0)"
    # The baseline did meet the AQM: it dropped, and the sender saw losses.
    assert dropped["qdisc"]["dropped"] > 0 and dropped["last"]["LOST"] > 0, dropped["qdisc"]
    assert dropped["ce_events"] == 0, "CE congestion events without ECN at the bottleneck"
    assert marked["mbps"] >= 0.6 * dropped["mbps"], (
        f"marking goodput {marked['mbps']:.2f} Mbit/s against {dropped['mbps']:.2f} when dropping"
    )


def _broken_path(topo, algo: str, size: int, rule: str) -> dict[str, int]:
    """A transfer from the server while nftables applies ``rule`` to the UDP datagrams arriving
    in the client's namespace; what the server marked and its QuicEcnFailed."""
    _ect_counters(topo, topo.server)
    nft(
        topo,
        topo.client,
        "add table inet quicecn\n"
        "add chain inet quicecn in { type filter hook prerouting priority -300; }\n"
        f"add rule inet quicecn in meta l4proto udp {rule}\n",
    )
    before = snmp(ns=topo.server)
    _, samples = _transfer(topo, algo, size)
    after = snmp(ns=topo.server)
    _check_samples(samples, algo)
    ect0, total = _ect_sent(topo, topo.server)
    return {
        "ect0": ect0,
        "total": total,
        "failed": _delta(before, after, "QuicEcnFailed"),
    }


def test_bleached_path_disables_ecn(quic_module, clean_path, topo, ecn_tables, capsys):
    """A path that clears the ECN field (nftables sets not-ECT where the server's datagrams
    arrive): the client's ACKs acknowledge marked packets without counts, the server's
    validation fails (QuicEcnFailed) and it stops marking; the transfer completes."""
    r = _broken_path(topo, "cubic", SIZE // 2, "ip ecn set not-ect")
    with capsys.disabled():
        print(f"\n  bleached path: the server sent {r['ect0']} of {r['total']} datagrams with "
              "ECT(0)")  # fmt: skip
    assert r["failed"] >= 1, "the server's ECN validation never failed"
    assert 0 < r["ect0"] <= TESTING_MAX, f"{r} datagrams marked on a bleached path"
    assert r["total"] > 10 * TESTING_MAX, r


def test_path_dropping_ect_packets(quic_module, clean_path, topo, ecn_tables, capsys):
    """A path that drops every ECT(0) datagram from the server (a broken middlebox): the marked
    packets of the server's test are lost, its first PTO ends the test, the unmarked probes get
    through, the marked packets are declared lost and ECN is off on the path (QuicEcnFailed);
    the transfer completes intact."""
    r = _broken_path(topo, "reno", SIZE // 4, "ip ecn ect0 drop")
    with capsys.disabled():
        print(f"\n  ECT dropped: the server sent {r['ect0']} of {r['total']} datagrams with "
              "ECT(0)")  # fmt: skip
    assert r["ect0"] > 0, "nothing marked: the path was not tested"
    assert r["failed"] >= 1, "the server's ECN validation never failed"
    assert r["ect0"] <= TESTING_MAX, f"{r}: marked datagrams on a path that drops them"


def _aioquic_server(topo, root):
    from quicctl import userspace
    from quicctl.netns import enter

    with enter(topo.server):
        return userspace.ServerThread(
            "::", 0, root=root, certfile=str(KEYS / "cert.crt"), keyfile=str(KEYS / "pkey.key")
        )


def test_aioquic_without_ecn_counts(quic_module, clean_path, topo, ecn_tables, tmp_path):
    """aioquic acknowledges without ECN counts: our client (downloading from aioquic's server)
    and our server (serving aioquic's client) each fail validation and stop marking after the
    test packets; both transfers complete intact."""
    from quicctl import hq, userspace
    from quicctl.netns import enter

    digest = hq.make_file(tmp_path / "big", SIZE // 2, seed=7)
    _ect_counters(topo, topo.client)
    _ect_counters(topo, topo.server)

    # Our client, aioquic's server: the client's requests and ACKs carry the marks.
    before = snmp(ns=topo.client)
    server = _aioquic_server(topo, tmp_path)
    try:
        with kernel_connect(topo, topo.server_v6, server.port) as conn:
            (d,) = hq.fetch(conn, ["/big"], None)
    finally:
        server.close()
    assert d.done and d.sha256.hexdigest() == digest, "download from aioquic corrupted"
    assert _delta(before, snmp(ns=topo.client), "QuicEcnFailed") >= 1
    ect0, total = _ect_sent(topo, topo.client)
    assert 0 < ect0 <= TESTING_MAX, f"our client marked {ect0} of {total} datagrams"

    # aioquic's client, our server: the data carries the marks.
    before = snmp(ns=topo.server)
    server = KernelHqServer(topo, tmp_path)
    try:
        with enter(topo.client):
            (d,) = userspace.fetch(topo.server_v4, server.port, ["/big"],
                                   cafile=str(KEYS / "ca.crt"), server_name=SERVER_NAME,
                                   timeout=120)  # fmt: skip
    finally:
        server.close()
    assert d.done and d.sha256.hexdigest() == digest, "download by aioquic corrupted"
    assert not server.log, server.log
    assert _delta(before, snmp(ns=topo.server), "QuicEcnFailed") >= 1
    ect0, total = _ect_sent(topo, topo.server)
    assert 0 < ect0 <= TESTING_MAX, f"our server marked {ect0} of {total} datagrams"
    assert total > 10 * TESTING_MAX, total


def test_ngtcp2_echoes_our_marks(quic_module, clean_path, topo, ecn_tables, tmp_path, capsys):
    """ngtcp2 (Debian's gtlsserver) does ECN: our client's marked datagrams are counted in its
    ACK_ECN frames, so validation passes and our client keeps marking every datagram; ngtcp2
    marks its own, which our client counts in its ACK_ECN (ngtcp2 keeps marking too)."""
    from test_h3 import GtlsServer

    from quicctl.demo import _quicctl
    from quicctl.hq import make_file

    root = tmp_path / "www"
    root.mkdir()
    digest = make_file(root / "big", SIZE // 2, seed=9)
    _ect_counters(topo, topo.client)
    _ect_counters(topo, topo.server)
    before = snmp(ns=topo.client)
    port = 4480
    server = GtlsServer(topo, root, port, tmp_path)
    try:
        r = topo.run(topo.client,
                     [_quicctl(), "client", topo.server_v4, str(port), "--alpn", "h3",
                      "--cafile", str(KEYS / "ca.crt"), "--server-name", SERVER_NAME, "/big"],
                     capture_output=True, text=True, timeout=600)  # fmt: skip
    finally:
        server.close()
    detail = f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}\ngtlsserver:\n{server.log()}"
    assert r.returncode == 0 and digest in r.stdout, detail
    ours, ours_total = _ect_sent(topo, topo.client)
    theirs, theirs_total = _ect_sent(topo, topo.server)
    with capsys.disabled():
        print(f"\n  with ngtcp2: our client marked {ours} of {ours_total} datagrams, "
              f"gtlsserver {theirs} of {theirs_total}")  # fmt: skip
    assert _delta(before, snmp(ns=topo.client), "QuicEcnFailed") == 0, detail
    assert ours >= 0.9 * ours_total, f"our client marked only {ours} of {ours_total} datagrams"
    assert theirs >= 0.9 * theirs_total, f"ngtcp2 marked {theirs} of {theirs_total} datagrams"
