"""quicdecode, the second decoder beside tshark, checked on the build host against a capture
of aioquic talking to itself over loopback (no quic.ko): it opens every packet and agrees with
tshark on the frames and Connection IDs; a flipped bit in a packet, or a key log without the
connection's secrets, is an error; and a tshark that crashes is reported with its capture kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import quicdecode
from conftest import SERVER_NAME, require

from quicctl.paths import KEYS

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """(pcap, key log, server port) of one aioquic download over 127.0.0.1."""
    from quicctl import userspace

    require("tcpdump", "tshark")
    if os.geteuid() != 0:
        pytest.fail("tcpdump on lo needs root: run the suite as root (quicctl test does)")
    tmp = tmp_path_factory.mktemp("quicdecode")
    (tmp / "www").mkdir()
    (tmp / "www" / "f").write_bytes(os.urandom(200_000))
    srv = userspace.ServerThread(
        "127.0.0.1", 0, root=tmp / "www", certfile=str(KEYS / "cert.crt"),
        keyfile=str(KEYS / "pkey.key"),
    )  # fmt: skip
    pcap, keylog = tmp / "cap.pcap", tmp / "keys.log"
    dump = subprocess.Popen(
        ["tcpdump", "-U", "-i", "lo", "-w", str(pcap), f"udp port {srv.port}"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        said = ""
        while "listening on" not in said:
            line = dump.stderr.readline()
            assert line, f"tcpdump did not start: {said}"
            said += line
        got = userspace.fetch("127.0.0.1", srv.port, ["/f"], cafile=str(KEYS / "ca.crt"),
                              server_name=SERVER_NAME, timeout=60, keylog=str(keylog))  # fmt: skip
        assert got[0].done
    finally:
        srv.close()
        dump.terminate()
        dump.wait(10)
    return pcap, keylog, srv.port


def test_quicdecode_opens_what_tshark_opens(capture):
    pcap, keylog, port = capture
    ours = quicdecode.decode(pcap, port, keylog)
    assert not ours.errors, ours.errors
    assert ours.connections == 1 and ours.packets > 100, ours.summary()
    r = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}",
         "-d", f"udp.port=={port},quic", "-Y", "quic", "-T", "fields", "-e", "quic.frame_type"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    theirs = {int(t, 0) for line in r.stdout.split() for t in line.split(",") if t}
    assert set(ours.frames) == theirs, (sorted(ours.frames), sorted(theirs))
    headers = quicdecode.decode(pcap, port)  # no key log: the Connection IDs only
    assert headers.packets == 0 and not headers.errors
    assert all(len(ids) == 1 for ids in headers.scids.values()), headers.scids


def test_quicdecode_reports_what_does_not_open(capture, tmp_path):
    pcap, keylog, port = capture
    raw = bytearray(pcap.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # a bit of some packet in the middle of the transfer
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(raw)
    out = quicdecode.decode(bad, port, keylog)
    assert len(out.errors) == 1 and "does not open" in out.errors[0], out.errors
    nokeys = tmp_path / "nokeys.log"
    nokeys.write_text("CLIENT_TRAFFIC_SECRET_0 " + "00" * 32 + " " + "11" * 32 + "\n")
    out = quicdecode.decode(pcap, port, nokeys)
    assert out.errors and all("no handshake keys" in e or "no 1rtt keys" in e
                              for e in out.errors), out.errors[:5]  # fmt: skip


def test_a_tshark_crash_is_reported_and_kept(capture, tmp_path, monkeypatch):
    """A tshark killed by SIGSEGV once it reads the 20th frame: the run says so, finds that
    frame, and keeps the capture and key log under build/artifacts/."""
    pcap, keylog, _ = capture
    fake = tmp_path / "bin" / "tshark"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/bash\n"
        '[ "$1" = --version ] && { echo "TShark (fake)"; exit 0; }\n'
        'c=; p=; for a in "$@"; do [ "$p" = -c ] && c=$a; p=$a; done\n'
        '[ -z "$c" ] || [ "$c" -ge 20 ] && kill -SEGV $$\n'
        "exit 0\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    r = quicdecode.run_tshark(["-n", "-r", str(pcap)], pcap, keylog, "selfcheck")
    try:
        assert r.crashed and r.rc == -11
        assert r.kept and (r.kept / pcap.name).is_file() and (r.kept / keylog.name).is_file()
        said = (r.kept / "tshark-crash.txt").read_text()
        assert "signal 11" in said and "reads frame 20 " in said, said
    finally:
        if r.kept:
            shutil.rmtree(r.kept)


def test_decoders_read_the_pcap_tcpdump_writes(capture):
    pcap, _, port = capture
    dgrams = quicdecode.read_pcap(Path(pcap))
    assert dgrams and all(port in (d.src[1], d.dst[1]) for d in dgrams)
