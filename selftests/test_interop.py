"""Interop and wire checks: aioquic against quic.ko both ways, tshark decoding our packets,
and a lossy path."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from conftest import SERVER_NAME, KernelHqServer, kernel_connect, scaled

from quicctl.paths import KEYS

FIVE_MB = scaled(5 * 1000 * 1000)
QUIC_VERSION_V2 = 0x6B3343CF


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    from quicctl.hq import make_file

    root = tmp_path_factory.mktemp("www")
    digests = {"five": make_file(root / "five", FIVE_MB, seed=5)}
    digests["one"] = make_file(root / "one", 1 << 20, seed=1)
    for i in range(10):
        digests[f"s{i}"] = make_file(root / f"s{i}", 1000 + i, seed=100 + i)
    return root, digests


def _check(downloads, digests, names):
    got = {d.path.strip("/"): d for d in downloads}
    for name in names:
        assert got[name].done, f"/{name} not finished"
        assert got[name].sha256.hexdigest() == digests[name], f"/{name} hash differs"


@pytest.mark.parametrize("cipher", ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"])
def test_aioquic_client_to_kernel_server(quic_module, clean_path, topo, www, cipher):
    from quicctl import userspace
    from quicctl.netns import enter

    root, digests = www
    server = KernelHqServer(topo, root, ciphers=[cipher])
    try:
        with enter(topo.client):
            downloads = userspace.fetch(
                topo.server_v4,
                server.port,
                ["/five", "/s0", "/s1"],
                cafile=str(KEYS / "ca.crt"),
                server_name=SERVER_NAME,
                ciphers=[cipher],
                timeout=120,
            )
        _check(downloads, digests, ["five", "s0", "s1"])
    finally:
        server.close()
    assert not server.log, server.log


@pytest.mark.parametrize("cipher", ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"])
def test_kernel_client_to_aioquic_server(quic_module, clean_path, topo, www, cipher):
    from quicctl import hq, userspace
    from quicctl.netns import enter

    root, digests = www
    versions: list[int] = []
    with enter(topo.server):
        server = userspace.ServerThread(
            "::",
            0,
            root=root,
            certfile=str(KEYS / "cert.crt"),
            keyfile=str(KEYS / "pkey.key"),
            ciphers=[cipher],
            versions=versions,
        )
    try:
        with kernel_connect(topo, topo.server_v6, server.port, ciphers=[cipher]) as conn:
            downloads = hq.fetch(conn, ["/five", "/s2", "/s3"], None)
        _check(downloads, digests, ["five", "s2", "s3"])
        # aioquic moves to QUIC v2 by compatible version negotiation (RFC 9368): we followed
        assert versions == [QUIC_VERSION_V2]
    finally:
        server.close()


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_tshark_decodes_our_packets(quic_module, clean_path, topo, www, tmp_path, family, capsys):
    """Independent decoders (tshark, and quicdecode on aioquic's primitives, each with the key
    log) read a kernel-to-kernel connection with no malformed packets or expert errors and see
    the frames we sent.  tshark crashing decides nothing: then quicdecode's result does."""
    import quicdecode

    from quicctl import hq

    for tool in ("tcpdump", "tshark"):
        assert shutil.which(tool), f"{tool} is required (scripts/setup installs it)"
    root, digests = www
    keylog = tmp_path / "keys.log"
    pcap = tmp_path / "quic.pcap"
    # One datagram per frame in the capture: a UDP GSO train of the server's would reach the
    # client's veth whole, and the decoders see one UDP payload, not the packets in it.
    topo.wire_like(topo.server)  # undone by clean_path
    dump = topo.popen(
        topo.client,
        ["tcpdump", "-U", "-i", topo.dev(topo.client), "-w", str(pcap), "udp"],
        stderr=subprocess.PIPE,
        text=True,
    )
    # tshark decrypts only what follows the handshake's first packets: capture from the start.
    said = []
    while not said or "listening on" not in said[-1]:  # tcpdump says so once it captures
        said.append(dump.stderr.readline())
        assert said[-1], "tcpdump did not start: " + "".join(said)
    addr = topo.server_v4 if family == "ipv4" else topo.server_v6
    server = KernelHqServer(topo, root)
    try:
        with kernel_connect(topo, addr, server.port, keylog=str(keylog)) as conn:
            downloads = hq.fetch(conn, ["/one", "/s4"], None)
        _check(downloads, digests, ["one", "s4"])
        time.sleep(1)
    finally:
        server.close()
        dump.terminate()
        dump.wait(10)
    # Two decoders: tshark, and ours (quicdecode, on aioquic's packet protection).  tshark
    # 4.0.17 has crashed (SIGSEGV) on our captures on a busy machine: a crash is reported, its
    # capture and key log kept, and the verdict is then ours alone.
    ours = quicdecode.decode(pcap, server.port, keylog)
    assert not ours.errors, f"quicdecode: {ours.summary()}:\n" + "\n".join(ours.errors[:40])
    decoders = {"quicdecode": set(ours.frames)}
    base = ["-n", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}",
            "-d", f"udp.port=={server.port},quic"]  # fmt: skip
    name = f"decodes-{family}"
    frames = quicdecode.run_tshark(
        base + ["-Y", "quic", "-T", "fields", "-e", "quic.frame_type"], pcap, keylog, name
    )
    if not frames.crashed:
        assert frames.rc == 0, f"tshark failed ({frames.rc}): {frames.stderr}"
        decoders["tshark"] = {
            int(t, 0) for line in frames.stdout.split() for t in line.split(",") if t
        }
    for decoder, seen in decoders.items():
        for ftype, fname in ((0x06, "CRYPTO"), (0x1E, "HANDSHAKE_DONE")):
            assert ftype in seen, f"{decoder} saw no {fname} frame (saw {sorted(seen)})"
        # ACK_ECN (0x03) once the peer's marks arrive: kernel to kernel, all of them.
        assert seen & {0x02, 0x03}, f"{decoder} saw no ACK frame (saw {sorted(seen)})"
        assert seen & set(range(0x08, 0x10)), f"{decoder} saw no STREAM frame ({sorted(seen)})"
    bad = quicdecode.run_tshark(
        base + ["-Y", "_ws.malformed || _ws.expert.severity >= 8388608"], pcap, keylog, name
    )
    if not bad.crashed:
        assert bad.rc == 0, f"tshark failed ({bad.rc}): {bad.stderr}"
        assert not bad.stdout.strip(), (
            "tshark reports malformed packets or expert errors:\n" + bad.stdout[:3000]
        )
    with capsys.disabled():
        crashed = [r for r in (frames, bad) if r.crashed]
        print(
            f"\n  quicdecode: {ours.summary()}; tshark: "
            + (f"crashed, capture kept in {crashed[0].kept}" if crashed else "agrees")
        )


def test_handshake_and_transfer_on_lossy_path(quic_module, clean_path, topo, www):
    """netem 10% loss and 30 ms delay each way: handshake and transfer still complete."""
    from quicctl import hq

    root, digests = www
    for ns in (topo.server, topo.client):
        topo.netem(ns, "loss 10% delay 30ms")
    server = KernelHqServer(topo, root)
    try:
        for _ in range(3):
            with kernel_connect(topo, topo.server_v4, server.port) as conn:
                downloads = hq.fetch(conn, ["/one", "/s5", "/s6"], None)
            _check(downloads, digests, ["one", "s5", "s6"])
    finally:
        server.close()
