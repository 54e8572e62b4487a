"""`quicctl ss`, iproute2's ss with QUIC, and quic_diag.ko: QUIC sockets through sock_diag.

Host: the QUIC_DIAG_* tables of quicctl.ssdiag and of the ss patch
(packaging/iproute2/ss-quic.patch) against kernel/net/quic/diag.h, the parser and the ss-style
layout on a netlink reply built here byte by byte, and the patched ss (scripts/build-ss) on a
kernel without quic_diag.  VM: both ends of a live transfer between two namespaces, the
listener, the filters, the rows going at close, as `quicctl ss` and as the patched ss list them,
and quic_diag unloading and loading again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import IN_VM, ROOT, dev_module, kernel_connect, run
from peer import ALPN, KernelAccept, until

from quicctl import ssdiag
from quicctl.paths import BUILD_DIR

# -- host -------------------------------------------------------------------------------------


@pytest.mark.host
def test_attribute_table_matches_diag_h():
    """Every QUIC_DIAG_* of diag.h, in order, with the type its comment gives, is in ATTRS
    under the same number (and nothing else is)."""
    text = ssdiag.DIAG_HEADER.read_text()
    body = re.search(r"enum \{\n(.*?)__QUIC_DIAG_MAX", text, re.S)[1]
    entries = re.findall(r"^\s*QUIC_DIAG_(\w+),(?:\s*/\*\s*(\w+):)?", body, re.M)
    assert entries[0] == ("UNSPEC", "")
    header = {i: (name.lower(), kind) for i, (name, kind) in enumerate(entries) if i}
    assert header == ssdiag.ATTRS


def _diag_h_entries() -> list[str]:
    """The QUIC_DIAG_* names of diag.h, in order (QUIC_DIAG_UNSPEC first)."""
    body = re.search(r"enum \{\n(.*?)__QUIC_DIAG_MAX", ssdiag.DIAG_HEADER.read_text(), re.S)[1]
    return re.findall(r"^\s*(QUIC_DIAG_\w+),", body, re.M)


@pytest.mark.host
def test_ss_patch_attributes_match_diag_h():
    """The ss patch's copy of the QUIC_DIAG_* enum has diag.h's names in diag.h's order."""
    patch = (ROOT / "packaging" / "iproute2" / "ss-quic.patch").read_text()
    body = re.search(r"^\+enum \{\n(.*?)^\+\t__QUIC_DIAG_MAX", patch, re.S | re.M)[1]
    assert re.findall(r"^\+\t(QUIC_DIAG_\w+),", body, re.M) == _diag_h_entries()


def _nla(atype: int, value: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(value), atype) + value + bytes(-len(value) % 4)


def _reply(family, state, src, sport, dst, dport, info: bytes, seq=1) -> bytes:
    sockid = struct.pack("!HH", sport, dport) + src.ljust(16, b"\0") + dst.ljust(16, b"\0")
    sockid += struct.pack("=IQ", 0, 0x1122)
    body = struct.pack("=BBBB", family, state, 0, 0) + sockid
    body += struct.pack("=IIIII", 0, 5, 7, 1000, 4242)
    body += _nla(ssdiag.INET_DIAG_SKMEMINFO, struct.pack("=9I", *range(9)))
    body += _nla(ssdiag.INET_DIAG_INFO | 0x8000, info)
    return struct.pack("=IHHII", 16 + len(body), ssdiag.SOCK_DIAG_BY_FAMILY, 2, seq, 0) + body


def _canned() -> bytes:
    num = {key: n for n, (key, _) in ssdiag.ATTRS.items()}
    info = _nla(num["server"], b"\0") + _nla(num["alpn"], b"\x02h3\x0ahq-interop")
    info += _nla(num["version"], struct.pack("=I", 1)) + _nla(num["cipher"], struct.pack("=I", 51))
    info += _nla(num["scid"], bytes.fromhex("0102030405060708"))
    info += _nla(num["dcid"], b"")
    for key in ("streams_bidi_local", "streams_uni_local", "streams_bidi_peer",
                "streams_uni_peer", "lost", "pacing_rate", "bytes_sent", "bytes_acked",
                "bytes_received", "idle_timeout"):  # fmt: skip
        info += _nla(0, b"") + _nla(num[key], struct.pack("=Q", 3 if "streams" in key else 1250))
    info += _nla(num["cong_algo"], b"cubic\0")
    for key, v in (("srtt", 1500), ("rttvar", 750), ("min_rtt", 900), ("latest_rtt", 1000),
                   ("cwnd", 14720), ("ssthresh", 0xFFFFFFFF), ("in_flight", 1200),
                   ("mss", 1252), ("pto_count", 0)):  # fmt: skip
        info += _nla(num[key], struct.pack("=I", v))
    conn = _reply(socket.AF_INET, 1, bytes([10, 0, 0, 2]), 40000, bytes([10, 0, 0, 1]), 4433,
                  info)  # fmt: skip
    v6 = socket.inet_pton(socket.AF_INET6, "fd00::1")
    listener = _reply(socket.AF_INET6, 10, v6, 4433, b"", 0,
                      _nla(num["server"], b"\1") + _nla(num["alpn"], b"\x02h3"))  # fmt: skip
    done = struct.pack("=IHHIIi", 20, ssdiag.NLMSG_DONE, 2, 1, 0, 0)
    return conn + listener + done


@pytest.mark.host
def test_parse_and_render_canned_reply():
    socks, done = ssdiag.parse_replies(_canned(), {51: "aes_gcm_128"})
    assert done and len(socks) == 2
    c, lis = socks
    assert c["state"] == "ESTAB" and c["local"] == "10.0.0.2:40000" and c["peer"] == "10.0.0.1:4433"
    assert c["alpn"] == ["h3", "hq-interop"] and c["version_name"] == "v1"
    assert c["cipher_name"] == "aes_gcm_128" and c["scid"] == "0102030405060708"
    assert c["dcid"] == "" and c["server"] is False and c["ssthresh"] is None
    assert (c["recv_q"], c["send_q"], c["uid"], c["inode"], c["cookie"]) == (5, 7, 1000, 4242,
                                                                            0x1122)  # fmt: skip
    assert c["skmem"]["drops"] == 8 and c["cwnd"] == 14720 and c["bytes_acked"] == 1250
    assert lis["state"] == "LISTEN" and lis["local"] == "[fd00::1]:4433" and lis["peer"] == "[::]:*"
    assert lis["server"] is True and "cwnd" not in lis
    json.dumps(socks)  # --json can print it

    from quicctl.cli.ss import render

    out = render(socks).splitlines()
    assert out[0].split() == ["State", "Recv-Q", "Send-Q", "Local", "Address:Port", "Peer",
                              "Address:Port"]  # fmt: skip
    assert out[1].split() == ["ESTAB", "5", "7", "10.0.0.2:40000", "10.0.0.1:4433"]
    assert out[2].startswith("\t client alpn:h3,hq-interop v1 aes_gcm_128 scid:0102030405060708")
    for part in ("dcid:-", "streams:bidi:3/3,uni:3/3", "cubic", "rtt:1.500ms/0.750ms",
                 "cwnd:14720", "ssthresh:-", "inflight:1200", "pacing_rate:10.0Kbps",
                 "skmem:(r0,rb1,t2,tb3,f4,w5,o6,bl7,d8)"):  # fmt: skip
        assert part in out[2].split(), (part, out[2])
    assert out[3].split() == ["LISTEN", "5", "7", "[fd00::1]:4433", "[::]:*"]
    assert out[4] == "\t server alpn:h3 skmem:(r0,rb1,t2,tb3,f4,w5,o6,bl7,d8)"
    assert all(line == line.rstrip() for line in out)


@pytest.mark.host
def test_parse_rejects_malformed():
    data = _canned()
    with pytest.raises(ssdiag.NetlinkError):
        ssdiag.parse_replies(data[:88] + struct.pack("=H", 9999) + data[90:])  # SKMEMINFO
    bad = _reply(socket.AF_INET, 1, b"", 1, b"", 2, _nla(3, b"\1\2"))  # a 2-byte version
    with pytest.raises(ssdiag.NetlinkError, match="version"):
        ssdiag.parse_replies(bad)
    err = struct.pack("=IHHIIi", 20, ssdiag.NLMSG_DONE, 2, 1, 0, -2)
    with pytest.raises(OSError) as exc:
        ssdiag.parse_replies(err)
    assert exc.value.errno == 2


@pytest.fixture(scope="module")
def patched_ss() -> str:
    """iproute2's ss with QUIC: what `quicctl test` built (QUICCTL_SS), on the host built here
    (scripts/build-ss, quick when built), in the VM build/iproute2/ss.  Never a skip: a
    missing ss fails the test with the reason."""
    err = os.environ.get("QUICCTL_SS_ERROR")
    if err:
        pytest.fail(f"iproute2's ss with QUIC was not built: {err}")
    path = os.environ.get("QUICCTL_SS")
    if not path and not IN_VM:
        r = run(["bash", str(ROOT / "scripts" / "build-ss")], check=False)
        if r.returncode:
            pytest.fail(f"scripts/build-ss failed: {r.stderr.strip()}")
        path = r.stdout.strip().splitlines()[-1]
    ss = Path(path) if path else BUILD_DIR / "iproute2" / "ss"
    if not os.access(ss, os.X_OK):
        pytest.fail(f"{ss} is missing: build it with `make ss` (scripts/build-ss) on the host")
    return str(ss)


def _ss_rows(out: str) -> list[dict]:
    """The rows of ss -n output, one line a socket (-O): state (None when ss leaves the column
    out), queues, local, peer, and what follows: key:value pairs in `kv`, bare words in
    `words`; `pacing_rate VALUE` is a pair too."""
    lines = out.splitlines()
    assert lines and lines[0].split()[:1] in (["State"], ["Recv-Q"]), out
    has_state = lines[0].startswith("State")
    rows = []
    for line in lines[1:]:
        t = line.split()
        state = t.pop(0) if has_state else None
        row = {"state": state, "recv_q": int(t[0]), "send_q": int(t[1]), "local": t[2],
               "peer": t[3], "kv": {}, "words": set()}  # fmt: skip
        rest = iter(t[4:])
        for word in rest:
            if word == "pacing_rate":
                row["kv"][word] = next(rest)
            elif ":" in word:
                key, value = word.split(":", 1)
                row["kv"][key] = value
            else:
                row["words"].add(word)
        rows.append(row)
    return rows


@pytest.mark.host
def test_patched_ss_on_this_host(patched_ss):
    """The patched ss knows the QUIC table (-h, -A quic, -Q); without quic_diag (this host
    cannot load modules) it prints the header, no row, and says why in one line."""
    h = run([patched_ss, "-h"])
    assert "-Q, --quic" in h.stdout and "|mptcp|quic|" in h.stdout, h.stdout
    for argv in (["-Qn"], ["-A", "quic", "-na"], ["--quic", "-nOiem"]):
        r = run([patched_ss, *argv])
        lines = r.stdout.splitlines()
        assert lines[0].split()[:3] in (["State", "Recv-Q", "Send-Q"], ["Recv-Q", "Send-Q",
                                                                         "Local"]), r  # fmt: skip
        if Path("/sys/module/quic_diag").exists():
            continue  # a host with the module loaded: rows or none, no complaint
        assert lines[1:] == [], r.stdout
        assert r.stderr == "ss: no QUIC socket diagnostics in this kernel (quic_diag.ko not " \
            "loaded)\n", r.stderr  # fmt: skip
    # With other tables asked for too, QUIC's absence is not an error worth a line.
    r = run([patched_ss, "-A", "quic,tcp", "-n"])
    assert "quic_diag" not in r.stderr and r.stdout.startswith("Netid"), r


# -- VM ---------------------------------------------------------------------------------------


def _diag_ko() -> Path:
    """The quic_diag.ko of the quic.ko under test (`quicctl test` snapshots both)."""
    env = os.environ.get("QUICCTL_DIAG_MODULE")
    return Path(env) if env else dev_module().with_name("quic_diag.ko")


def _diag_loaded() -> bool:
    return Path("/sys/module/quic_diag").exists()


def _insmod_diag() -> None:
    run(["modprobe", "inet_diag"])  # what depmod would load first
    run(["insmod", str(_diag_ko())])


@pytest.fixture
def quic_diag(quic_module):
    if not _diag_loaded():
        _insmod_diag()
    yield
    if _diag_loaded():
        run(["rmmod", "quic_diag"])


def _quicctl(topo, ns: str, *args: str) -> subprocess.CompletedProcess:
    """`quicctl ss ARGS` of this tree (the venv's entry point may be another checkout's)."""
    main = "from quicctl.cli import main; main(prog_name='quicctl')"
    argv = [sys.executable, "-c", main, "ss", *args]
    root = Path(__file__).resolve().parent.parent
    return topo.run(ns, argv, capture_output=True, text=True, timeout=300, cwd=root)


def _ss_json(topo, ns: str, *args: str) -> list[dict]:
    r = _quicctl(topo, ns, "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _lib(ns: str, **kw) -> list[dict]:
    from quicctl.netns import enter

    with enter(ns):
        return ssdiag.sockets(**kw)


class _Transfer:
    """The client sends on one stream until stopped; the server reads all of it."""

    def __init__(self, client, server):
        self.stop = threading.Event()
        self.received = 0
        self.errors: list[BaseException] = []
        sid = client.open_stream()
        self.threads = [
            threading.Thread(target=self._send, args=(client, sid), daemon=True),
            threading.Thread(target=self._recv, args=(server,), daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _send(self, conn, sid) -> None:
        chunk = bytes(65536)
        try:
            while not self.stop.is_set():
                conn.sendall(chunk, sid, fin=False)
            conn.sendall(b"", sid, fin=True)
        except BaseException as exc:  # reported by finish()
            self.errors.append(exc)

    def _recv(self, conn) -> None:
        try:
            while True:
                _, data, fin = conn.recv()
                self.received += len(data)
                if fin:
                    return
        except BaseException as exc:
            self.errors.append(exc)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(120)
        assert not self.errors, self.errors


@contextlib.contextmanager
def _live_transfer(topo):
    """A listener, a connection to it and a transfer on that which has begun: (listener port,
    client port, transfer); all closed at the end."""
    acc = KernelAccept(topo)
    conn = srv = xfer = None
    try:
        conn = kernel_connect(topo, topo.server_v4, acc.port, alpn=ALPN)
        srv = acc.wait()
        xfer = _Transfer(conn, srv)
        until(lambda: xfer.received > 0 or xfer.errors, "the first bytes", 60)
        yield acc.port, conn.getsockname()[1], xfer
    finally:
        if xfer is not None:
            xfer.finish()
        for c_ in (conn, srv):
            if c_ is not None:
                c_.close()
        acc.close()


def _one(rows: list[dict], **want) -> dict:
    got = [r for r in rows if all(r.get(k) == v for k, v in want.items())]
    assert len(got) == 1, (want, rows)
    return got[0]


@pytest.mark.packaged_kernel  # quic_diag.ko needs CONFIG_INET_DIAG: not in the debug kernel
def test_ss_live_transfer(quic_diag, clean_path, topo, capsys):
    """Both ends of a transfer, and the listener, as `quicctl ss --json -a` lists them."""
    with _live_transfer(topo) as (port, cport, xfer):
        client_rows = _ss_json(topo, topo.client, "-a")
        server_rows = _ss_json(topo, topo.server, "-a")
        c = _one(client_rows, local=f"{topo.client_v4}:{cport}")
        assert c["peer"] == f"{topo.server_v4}:{port}" and c["state"] == "ESTAB"
        lis = _one(server_rows, state="LISTEN")
        assert lis["local"] == f"0.0.0.0:{port}" and lis["server"] and lis["alpn"] == [ALPN]
        s = _one(server_rows, state="ESTAB")
        assert s["local"] == f"{topo.server_v4}:{port}"
        assert s["peer"] == f"{topo.client_v4}:{cport}"
        for row, server in ((c, False), (s, True)):
            assert row["server"] is server and row["alpn"] == [ALPN], row
            assert row["version_name"] == "v1" and row["cipher_name"] == c["cipher_name"], row
            assert row["cipher_name"] in ("aes_gcm_128", "aes_gcm_256", "chacha20_poly1305")
            assert row["cwnd"] > 0 and row["srtt"] > 0 and row["mss"] >= 1200, row
            assert row["scid"] and row["dcid"] and row["pacing_rate"] > 0, row
            assert row["skmem"]["rcvbuf"] > 0 and row["skmem"]["sndbuf"] > 0, row
        assert c["scid"] == s["dcid"] and c["dcid"] == s["scid"]
        assert c["streams_bidi_local"] == 1 and s["streams_bidi_peer"] == 1

        first = (c["bytes_sent"], c["bytes_acked"], s["bytes_received"])
        seen = xfer.received
        until(lambda: xfer.received > seen + 200000 or xfer.errors, "more bytes", 120)
        c2 = _one(_lib(topo.client), local=c["local"])
        s2 = _one(_lib(topo.server), local=s["local"], peer=s["peer"])
        second = (c2["bytes_sent"], c2["bytes_acked"], s2["bytes_received"])
        print(f"client sent/acked, server received: {first} -> {second}")
        assert all(b > a for a, b in zip(first, second, strict=True)), (first, second)

        # Filters: the kernel's (state, ports) and the CLI's own (-l, --src, --dst).
        assert [r["state"] for r in _ss_json(topo, topo.server, "-l")] == ["LISTEN"]
        assert [r["state"] for r in _ss_json(topo, topo.server)] == ["ESTAB"]
        only = _ss_json(topo, topo.client, "--state", "established", "--dport", str(port))
        assert [r["local"] for r in only] == [c["local"]]
        assert _lib(topo.client, dport=port + 1 if port < 65535 else 1) == []
        assert _lib(topo.server, states=["listening"], sport=port)[0]["state"] == "LISTEN"
        dst = _ss_json(topo, topo.server, "-a", "--dst", f"{topo.client_v4}:{cport}")
        assert [r["cookie"] for r in dst] == [s["cookie"]]
        assert _ss_json(topo, topo.server, "-a", "--src", f":{port + 1}") == []
        text = _quicctl(topo, topo.client)
        assert text.returncode == 0 and f"{topo.server_v4}:{port}" in text.stdout, text
        assert f"alpn:{ALPN} v1 {c['cipher_name']}" in text.stdout, text.stdout
        with capsys.disabled():
            print(f"\n  quicctl ss (client namespace):\n{text.stdout}")

    def gone() -> bool:
        rows = _lib(topo.client) + _lib(topo.server)
        return not [r for r in rows if port in (r["local_port"], r["peer_port"])]

    until(gone, "the rows of the closed connection and listener to go", 60)


def _ss(topo, ns: str, ss: str, *args: str) -> list[dict]:
    """The rows of the patched ss ARGS (-n -O added) in namespace ns."""
    r = topo.run(ns, [ss, "-nO", *args], capture_output=True, text=True, timeout=120)
    # -e looks up each socket's cgroup; the guest mounts no cgroup2 (ss says so, and goes on).
    said = [line for line in r.stderr.splitlines() if line != "Failed to find cgroup2 mount"]
    assert r.returncode == 0 and not said, r
    return _ss_rows(r.stdout)


@pytest.mark.packaged_kernel
def test_iproute2_ss_live_transfer(quic_diag, patched_ss, clean_path, topo, capsys):
    """iproute2's ss with QUIC (-Q, -A quic) lists both ends of a transfer and the listener
    with their addresses, ports and states, filters by state and port, prints the QUIC_DIAG_*
    details under -i as quicctl's reader reads them, and the rows go at close."""
    ss = patched_ss
    with _live_transfer(topo) as (port, cport, xfer):
        client, server = f"{topo.client_v4}:{cport}", f"{topo.server_v4}:{port}"

        # Connections by default (as for TCP), the listener with -a, only it with -l.
        assert [(r["state"], r["local"], r["peer"]) for r in _ss(topo, topo.client, ss, "-Q")] \
            == [("ESTAB", client, server)]  # fmt: skip
        rows = _ss(topo, topo.server, ss, "--quic")
        assert [(r["state"], r["local"], r["peer"]) for r in rows] == [("ESTAB", server, client)]
        rows = _ss(topo, topo.server, ss, "-A", "quic", "-a")
        assert sorted((r["state"], r["local"], r["peer"]) for r in rows) == [
            ("ESTAB", server, client), ("LISTEN", f"0.0.0.0:{port}", "0.0.0.0:*")]  # fmt: skip
        assert [r["local"] for r in _ss(topo, topo.server, ss, "-Ql")] == [f"0.0.0.0:{port}"]
        # ss's state filter (sent to the kernel; one state: no State column) and its own
        # address/port expressions.
        rows = _ss(topo, topo.server, ss, "-Q", "state", "established")
        assert [(r["state"], r["local"]) for r in rows] == [(None, server)]
        assert _ss(topo, topo.client, ss, "-Q", "state", "listening") == []
        rows = _ss(topo, topo.client, ss, "-Q", "dport", "=", f":{port}")
        assert [r["local"] for r in rows] == [client]
        other = port + 1 if port < 65535 else 1
        assert _ss(topo, topo.client, ss, "-Q", "dport", "=", f":{other}") == []

        # -i -e -m: the QUIC details, socket and memory, against quicctl's reader.
        ref_c = _one(_lib(topo.client), local=client)
        ref_s = _one(_lib(topo.server), local=server, peer=client)
        ci = _one(_ss(topo, topo.client, ss, "-Qiem"), local=client)
        si = _one(_ss(topo, topo.server, ss, "-Qiem"), local=server)
        for row, ref, side in ((ci, ref_c, "client"), (si, ref_s, "server")):
            kv, words = row["kv"], row["words"]
            assert {side, "v1", ref["cipher_name"], ref["cong_algo"]} <= words, row
            assert kv["alpn"] == ALPN and kv["scid"] == ref["scid"], row
            assert kv["dcid"] == ref["dcid"], row
            assert kv["ino"] == str(ref["inode"]) and kv["sk"] == f"{ref['cookie']:x}", row
            bidi = f"{ref['streams_bidi_local']}/{ref['streams_bidi_peer']}"
            uni = f"{ref['streams_uni_local']}/{ref['streams_uni_peer']}"
            assert kv["streams"] == f"bidi:{bidi},uni:{uni}", row
            srtt, rttvar = (float(v) for v in kv["rtt"].split("/"))
            assert srtt > 0 and rttvar >= 0 and float(kv["minrtt"]) > 0, row
            assert int(kv["cwnd"]) > 0 and int(kv["mss"]) >= 1200, row
            assert int(kv["pacing_rate"].removesuffix("bps")) > 0, row
            assert kv["idle_timeout"] == f"{ref['idle_timeout'] // 1000}ms", row
            assert int(kv["lost"]) >= 0 and int(kv["pto"]) >= 0, row
            assert re.fullmatch(r"\(r\d+,rb[1-9]\d*,t\d+,tb[1-9]\d*,f\d+,w\d+,o\d+,bl\d+,d\d+\)",
                                kv["skmem"]), row  # fmt: skip
        assert ref_c["streams_bidi_local"] == 1 and ref_s["streams_bidi_peer"] == 1
        assert ci["kv"]["scid"] == si["kv"]["dcid"] and ci["kv"]["dcid"] == si["kv"]["scid"]
        assert int(ci["kv"]["bytes_sent"]) > 0 and int(si["kv"]["bytes_received"]) > 0, (ci, si)
        text = topo.run(topo.client, [ss, "-Qni"], capture_output=True, text=True, timeout=120)
        with capsys.disabled():
            print(f"\n  {Path(ss).name} -Qni (client namespace):\n{text.stdout}")

    def gone() -> bool:
        rows = _ss(topo, topo.client, ss, "-Qa") + _ss(topo, topo.server, ss, "-Qa")
        ends = [(r["local"].rsplit(":", 1)[1], r["peer"].rsplit(":", 1)[1]) for r in rows]
        return not [e for e in ends if str(port) in e]

    until(gone, "ss -Qa to list the closed connection and listener no longer", 60)


@pytest.mark.packaged_kernel
def test_ss_diag_unload_reload(quic_diag, patched_ss, topo):
    """quic_diag goes and comes back; without it `quicctl ss` and the patched ss say so in one
    line."""
    acc = KernelAccept(topo)
    try:
        assert _one(_lib(topo.server), state="LISTEN")["local_port"] == acc.port
        run(["rmmod", "quic_diag"])
        # Where DKMS or the .deb installed quic_diag (test_dkms ran first), the kernel would
        # load it again on demand (its net-pf-16-proto-4-type-2-261 alias): no modprobe now.
        modprobe = Path("/proc/sys/kernel/modprobe")
        saved = modprobe.read_text()
        modprobe.write_text("/bin/false\n")
        try:
            r = _quicctl(topo, topo.server)
            ss = topo.run(topo.server, [patched_ss, "-Qn"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
        finally:
            modprobe.write_text(saved)
        assert ss.returncode == 0 and len(ss.stdout.splitlines()) == 1, ss  # the header only
        assert ss.stderr == "ss: no QUIC socket diagnostics in this kernel (quic_diag.ko not " \
            "loaded)\n", ss  # fmt: skip
        assert r.returncode == 1 and "Traceback" not in r.stderr, r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "quic_diag.ko is not loaded" in lines[0], r.stderr
        assert "modprobe quic_diag" in lines[0]
        _insmod_diag()
        assert _one(_lib(topo.server), state="LISTEN")["local_port"] == acc.port
        # quicctl unload takes quic_diag out first (it holds quic).
        t0 = time.monotonic()
    finally:
        acc.close()
    from quicctl import kmod

    kmod.unload(wait=20)
    assert not _diag_loaded() and not Path("/sys/module/quic").exists()
    print(f"unload with quic_diag loaded: {time.monotonic() - t0:.1f} s")
