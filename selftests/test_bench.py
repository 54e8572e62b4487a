"""quicctl bench: the whole benchmark code path with small transfers (VM), its C data path and
its option checks (host).

Speed is not judged here (that is what the benchmark is for): only that every transport and
write size ran, moved all its bytes intact (the data paths verify every byte) and that the JSON
document has the documented shape.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
from conftest import run

from quicctl.bench import PERIOD, datapath

TRANSPORTS = {"quic", "quic-plain", "tcp", "ktls", "aioquic", "ngtcp2"}


def _cli(args: list[str]):
    from click.testing import CliRunner

    from quicctl.cli import main

    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    return runner.invoke(main, args)


# -- host ------------------------------------------------------------------------------------


@pytest.mark.host
@pytest.mark.parametrize(
    "args, message",
    [
        (["--sizes", "1K,abc"], "bad write size 'abc'"),
        (["--sizes", "2M"], "at most 1M"),
        (["--transports", "quic,sctp"], "unknown transport sctp"),
        (["--bytes", "0"], "positive byte count"),
        (["--no-load"], "--no-load applies to --host only"),
        (["--bottleneck", "10 mbit"], "give a tc rate like 10mbit"),
        (["--bottleneck", "0mbit"], "give a tc rate like 10mbit"),
        (["--bottleneck", "10mbit", "--rtt", "0"], "--rtt"),
        (["--bottleneck", "10mbit", "--transports", "aioquic"], "kernel transports only"),
    ],
)
def test_bench_option_errors(args, message):
    r = _cli(["bench", *args])
    assert r.exit_code in (1, 2), r.output
    assert message in r.stderr, r.stderr


@pytest.mark.host
def test_bench_sizes_parse():
    from quicctl.cli.bench import parse_size

    assert [parse_size(s, "x") for s in ("1024", "1K", "16k", "64KiB", "2M", "1G")] == [
        1024,
        1024,
        16384,
        65536,
        2 << 20,
        1 << 30,
    ]


@pytest.mark.host
def test_bench_rate_parse():
    from quicctl.bench.run import parse_rate

    assert [parse_rate(s) for s in ("10mbit", "500kbit", "1gbit", "2000bit", " 10Mbit ")] == [
        10**7,
        5 * 10**5,
        10**9,
        2000,
        10**7,
    ]


def _pattern(offset: int, n: int) -> bytes:
    return bytes((offset + i) % PERIOD for i in range(n))


@pytest.mark.host
@pytest.mark.parametrize("size", [1, 1000, 65536])
def test_datapath_bulk_and_rr_over_socketpair(size):
    prog = datapath.binary()
    a, b = socket.socketpair()
    with a, b:
        sent, got = datapath.pair(
            prog, ("send", "recv"), (a.fileno(), b.fileno()), ((300_001, size), (300_001,)),
            "socketpair bulk", 60,
        )  # fmt: skip
        assert sent["bytes"] == got["bytes"] == 300_001
        assert sent["seconds"] > 0 and sent["cpu_seconds"] >= 0
        out, _ = datapath.pair(
            prog, ("rr-client", "rr-server"), (a.fileno(), b.fileno()), ((50, 64), (50, 64)),
            "socketpair rr", 60,
        )  # fmt: skip
        assert out["count"] == 50 and out["median_us"] > 0


@pytest.mark.host
def test_datapath_detects_corruption():
    """The receiver judges every byte: one wrong byte fails it (the check can fail)."""
    prog = datapath.binary()
    a, b = socket.socketpair()
    with a, b:
        data = bytearray(_pattern(0, 100_000))
        data[77_777] ^= 0xFF
        proc = datapath.start(prog, "recv", b.fileno(), len(data))
        a.sendall(data)
        with pytest.raises(Exception, match="corrupt data at offset 77777"):
            datapath.result(proc, "recv", 30)


@pytest.mark.host
def test_datapath_short_stream_fails():
    prog = datapath.binary()
    a, b = socket.socketpair()
    with b:
        proc = datapath.start(prog, "recv", b.fileno(), 1000)
        a.sendall(_pattern(0, 999))
        a.close()
        with pytest.raises(Exception, match="read: peer closed"):
            datapath.result(proc, "recv", 30)


@pytest.mark.host
def test_ktls_key_schedule_rfc8448():
    """HKDF-Expand-Label against RFC 8448 Section 3 (server handshake traffic key and IV)."""
    from quicctl.bench.ktls import hkdf_expand_label

    secret = bytes.fromhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    assert hkdf_expand_label(secret, "key", 16).hex() == "3fce516009c21727d0f2e4e86ee403bc"
    assert hkdf_expand_label(secret, "iv", 12).hex() == "5d313eb2671276ee13000b30"


# -- VM --------------------------------------------------------------------------------------


def test_bench_all_transports_json(quic_module, tmp_path: Path):
    """`quicctl bench --host` with small transfers: every transport at every write size, the
    JSON schema, all bytes moved."""
    out = tmp_path / "bench.json"
    # The quicctl of this tree (the venv's script may import another checkout's).
    quicctl = [sys.executable, "-c", "from quicctl.cli import main; main()"]
    nbytes, abytes, sizes = 2 << 20, 64 << 10, (1024, 16384, 65536)
    r = run(
        [*quicctl, "bench", "--host", "--no-load", "--bytes", str(nbytes), "--aioquic-bytes",
         str(abytes), "--sizes", ",".join(map(str, sizes)), "--handshakes", "3",
         "--rr-count", "20", "--json", str(out)],
        timeout=1800, env=dict(os.environ, NO_COLOR="1"),
    )  # fmt: skip
    doc = json.loads(out.read_text())
    assert set(doc) == {"results", "handshakes_per_s", "rr_us", "quic_plpmtud_us"}, doc.keys()
    assert doc["quic_plpmtud_us"] == 30_000_000  # the default: DPLPMTUD on
    seen = set()
    for e in doc["results"]:
        assert e["transport"] in TRANSPORTS, e
        assert isinstance(e["write_size"], int)
        assert isinstance(e["gbps"], float) and e["gbps"] > 0, e
        assert isinstance(e["cpu_s_per_gb"], float) and e["cpu_s_per_gb"] >= 0, e
        assert e["bytes"] == (abytes if e["transport"] == "aioquic" else nbytes), e
        seen.add((e["transport"], e["write_size"]))
    want = {(t, s) for t in TRANSPORTS - {"ngtcp2"} for s in sizes} | {("ngtcp2", 0)}
    assert seen == want and len(doc["results"]) == len(want)
    assert set(doc["handshakes_per_s"]) == TRANSPORTS
    assert all(isinstance(v, float) and v > 0 for v in doc["handshakes_per_s"].values())
    assert set(doc["rr_us"]) == {"quic", "quic-plain", "tcp", "ktls", "aioquic"}
    assert all(isinstance(v, float) and v > 0 for v in doc["rr_us"].values())
    # The table went to stdout.
    assert "bulk transfer" in r.stdout and "ktls" in r.stdout, r.stdout
    assert "quic-plain" in r.stdout, r.stdout
