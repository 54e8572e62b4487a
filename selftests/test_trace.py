"""`quicctl trace`: quic.ko's tracepoints (kernel/net/quic/trace.h) recorded as qlog.

Host: the conversion of trace_pipe lines to qlog, and the CLI's usage errors.  VM: a transfer
between two kernel sockets traced on the client's side while tcpdump captures it: the .sqlog
is JSON-SEQ, every record matches the schema below, and the 1-RTT packets the client sent
(numbers, and types of all its packets) are those tshark decodes from the capture with the
key log.  The tracefs instance is gone after the command, also after Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, KernelHqServer, kernel_connect

from quicctl import qlog
from quicctl.cli import main

# -- the schema (qlog 0.3, draft-ietf-quic-qlog-quic-events): a JSON Schema subset --------

_NUM = {"type": "number", "minimum": 0}
_UINT = {"type": "integer", "minimum": 0}
_PTYPE = {"enum": ["initial", "handshake", "0RTT", "1RTT", "retry", "version_negotiation",
                   "unknown"]}  # fmt: skip
_HEADER = {"type": "object", "required": ["packet_type", "packet_number"],
           "properties": {"packet_type": _PTYPE, "packet_number": _UINT,
                          "key_phase_bit": {"enum": [0, 1]}}}  # fmt: skip
_FRAME_TYPES = sorted(set(qlog.FRAME_NAMES.values()))
_PACKET = {
    "type": "object",
    "required": ["header", "raw", "frames"],
    "properties": {
        "header": _HEADER,
        "raw": {"type": "object", "required": ["length"], "properties": {"length": _UINT}},
        "frames": {"type": "array", "items": {
            "type": "object", "required": ["frame_type"],
            "properties": {"frame_type": {"enum": _FRAME_TYPES}, "ack_delay": _NUM,
                           "largest_acknowledged": _UINT, "newly_acknowledged": _UINT}}},
    },
}  # fmt: skip
_STATES = ["attempted", "handshake_started", "handshake_complete", "closed"]
DATA_SCHEMAS = {
    "transport:packet_sent": _PACKET,
    "transport:packet_received": _PACKET,
    "recovery:packet_lost": {
        "type": "object", "required": ["header"],
        "properties": {"header": _HEADER,
                       "trigger": {"enum": ["reordering_threshold", "time_threshold"]}}},
    "recovery:metrics_updated": {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {"min_rtt": _NUM, "smoothed_rtt": _NUM, "latest_rtt": _NUM,
                       "rtt_variance": _NUM, "congestion_window": _UINT,
                       "bytes_in_flight": _UINT, "ssthresh": _UINT, "pacing_rate": _UINT,
                       "pto_count": _UINT}},
    "security:key_updated": {
        "type": "object", "required": ["key_type", "trigger"],
        "properties": {"key_type": {"enum": [f"{s}_{lv}_secret" for s in ("client", "server")
                                             for lv in ("initial", "handshake", "0rtt", "1rtt")]},
                       "trigger": {"enum": ["tls", "local_update", "remote_update"]},
                       "key_phase": _UINT}},
    "connectivity:connection_state_updated": {
        "type": "object", "required": ["new"],
        "properties": {"old": {"enum": _STATES}, "new": {"enum": _STATES}}},
    "transport:stream_state_updated": {
        "type": "object", "required": ["stream_id", "new"],
        "properties": {"stream_id": _UINT,
                       "stream_type": {"enum": ["unidirectional", "bidirectional"]},
                       "stream_side": {"enum": ["sending", "receiving"]},
                       "new": {"enum": ["open", "data_sent", "data_received", "reset_sent",
                                        "reset_received", "closed"]}}},
    "connectivity:migration_state_updated": {
        "type": "object", "required": ["new", "peer_address"],
        "properties": {"new": {"enum": list(qlog.PATH_EVENTS.values())},
                       "peer_address": {"type": "string"}}},
}  # fmt: skip
EVENT_SCHEMA = {
    "type": "object",
    "required": ["time", "name", "data"],
    "additionalProperties": False,
    "properties": {
        "time": _NUM,
        "name": {"enum": sorted(DATA_SCHEMAS)},
        "data": {"type": "object"},
    },
}
HEADER_SCHEMA = {
    "type": "object",
    "required": ["qlog_version", "qlog_format", "trace"],
    "properties": {
        "qlog_version": {"enum": ["0.3"]},
        "qlog_format": {"enum": ["JSON-SEQ"]},
        "trace": {"type": "object", "required": ["vantage_point", "common_fields"], "properties": {
            "vantage_point": {"type": "object", "required": ["type"],
                              "properties": {"type": {"enum": ["client", "server"]}}},
            "common_fields": {"type": "object",
                              "required": ["time_format", "reference_time", "protocol_type"],
                              "properties": {"time_format": {"enum": ["relative"]},
                                             "reference_time": _NUM}}}},
    },
}  # fmt: skip

_TYPES = {"object": dict, "array": list, "string": str, "number": (int, float), "integer": int}


def validate(value, schema: dict, where: str = "$") -> list[str]:
    """Errors of ``value`` against ``schema`` (the JSON Schema keywords used above)."""
    errs: list[str] = []
    t = schema.get("type")
    if t and (not isinstance(value, _TYPES[t]) or isinstance(value, bool)):
        return [f"{where}: {value!r} is not of type {t}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errs.append(f"{where}: {value!r} < {schema['minimum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errs += [f"{where}: {k} missing" for k in schema.get("required", []) if k not in value]
        if len(value) < schema.get("minProperties", 0):
            errs.append(f"{where}: empty")
        for k, v in value.items():
            if k in props:
                errs += validate(v, props[k], f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{where}: unexpected {k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += validate(v, schema["items"], f"{where}[{i}]")
    return errs


def validate_sqlog(text: str) -> tuple[dict, list[dict]]:
    """The header and events of a .sqlog, asserting JSON-SEQ and the schema for each record."""
    assert text.startswith(qlog.RS) and text.endswith("\n"), "not JSON-SEQ (RFC 7464)"
    records = qlog.read_json_seq(text)
    header, events = records[0], records[1:]
    errs = validate(header, HEADER_SCHEMA, "header")
    for i, ev in enumerate(events):
        here = f"event {i}"
        errs += validate(ev, EVENT_SCHEMA, here)
        if ev.get("name") in DATA_SCHEMAS:
            errs += validate(ev["data"], DATA_SCHEMAS[ev["name"]], f"{here} {ev['name']}")
    assert not errs, "\n".join(errs[:40])
    times = [ev["time"] for ev in events]
    assert times == sorted(times), "event times go back"
    return header, events


# -- host -----------------------------------------------------------------------------------

_LINES = """\
  python3-1200  [000] ...1.   100.000000: quic_state: cookie=4097 10.0.0.2:40000 -> \
10.0.0.1:4433 server=0 state=closed -> establishing
  python3-1200  [000] ...1.   100.000100: quic_state: cookie=5000 10.0.0.2:40001 -> \
10.0.0.1:4433 server=0 state=closed -> establishing
  python3-1200  [000] ...1.   100.001000: quic_packet_sent: cookie=4097 type=0 space=1 pn=0 \
len=1200 frames=0x41 key_phase=0
  <idle>-0      [001] ..s1.   100.002000: quic_packet_received: cookie=4097 type=0 space=1 \
pn=0 len=1200 frames=0x45 key_phase=0
  <idle>-0      [001] ..s1.   100.002010: quic_ack_received: cookie=4097 space=1 largest=0 \
ack_delay=0us newly_acked=1
  <idle>-0      [001] ..s1.   100.002020: quic_metrics: cookie=4097 cwnd=12000 in_flight=0 \
ssthresh=4294967295 srtt=1000us rttvar=500us min_rtt=1000us latest_rtt=1000us \
pacing_rate=15000000 pto_count=0
  <idle>-0      [001] ..s1.   100.002030: quic_metrics: cookie=4097 cwnd=12000 in_flight=0 \
ssthresh=4294967295 srtt=1000us rttvar=500us min_rtt=1000us latest_rtt=1000us \
pacing_rate=15000000 pto_count=0
  python3-1200  [000] ...1.   100.003000: quic_packet_sent: cookie=4097 type=4 space=0 pn=3 \
len=60 frames=0x104 key_phase=1
  python3-1200  [000] ...1.   100.003500: quic_stream: cookie=4097 id=0 event=open errcode=0
  python3-1200  [000] ...1.   100.003600: quic_packet_lost: cookie=4097 space=0 pn=2 \
reason=time_threshold
  python3-1200  [000] ...1.   100.003700: quic_key_update: cookie=4097 level=0 send=0 phase=1 \
event=remote_update
  python3-1200  [000] ...1.   100.003800: quic_path: cookie=4097 event=moved addr=10.0.0.3:9
  python3-1200  [000] ...1.   100.004000: quic_state: cookie=4097 10.0.0.2:40000 -> \
10.0.0.1:4433 server=0 state=establishing -> closed
"""


@pytest.mark.host
def test_qlog_from_trace_lines():
    """trace_pipe lines of one connection become schema-valid qlog; another's are left out."""
    events = [e for e in map(qlog.parse_line, _LINES.splitlines()) if e]
    assert len(events) == 13
    sel = qlog.Selector(peer_port=4433)
    first = next(e for e in events if sel.matches_new(e))
    log = qlog.Qlog(first.cookie, first.ts, 1.7e12)
    for e in events:
        if e.cookie == log.cookie:
            log.add(e)
    header, out = validate_sqlog(log.dumps())
    assert header["trace"]["vantage_point"]["type"] == "client" and log.closed
    names = [e["name"] for e in out]
    assert names == [
        "connectivity:connection_state_updated",
        "transport:packet_sent",
        "transport:packet_received",
        "recovery:metrics_updated",
        "transport:packet_sent",
        "transport:stream_state_updated",
        "recovery:packet_lost",
        "security:key_updated",
        "connectivity:migration_state_updated",
        "connectivity:connection_state_updated",
    ]  # fmt: skip  (the second, unchanged, metrics line adds nothing)
    sent = out[1]["data"]
    assert sent["header"] == {"packet_type": "initial", "packet_number": 0}
    assert [f["frame_type"] for f in sent["frames"]] == ["padding", "crypto"]
    ack = out[2]["data"]["frames"][1]
    assert ack == {"frame_type": "ack", "ack_delay": 0, "largest_acknowledged": 0,
                   "newly_acknowledged": 1}  # fmt: skip
    assert out[3]["time"] == 2.02 and out[3]["data"]["smoothed_rtt"] == 1.0
    assert out[3]["data"]["pacing_rate"] == 120000000  # bits per second
    assert out[4]["data"]["header"] == {"packet_type": "1RTT", "packet_number": 3,
                                        "key_phase_bit": 1}  # fmt: skip
    assert out[7]["data"] == {"key_type": "server_1rtt_secret", "trigger": "remote_update",
                              "key_phase": 1}  # fmt: skip


@pytest.mark.host
def test_trace_usage_errors():
    r = CliRunner().invoke(main, ["trace", "--cookie", "1", "--peer-port", "4433"])
    assert r.exit_code == 2 and "--cookie" in r.output
    r = CliRunner().invoke(main, ["trace", "--local-port", "99999"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["trace", "--cookie", "sk:1f"])
    assert r.exit_code == 2 and "not a socket cookie" in r.output


# -- VM -------------------------------------------------------------------------------------


def _instances() -> set[str]:
    return {p.name for p in (qlog.tracefs_root() / "instances").iterdir()}


def _start_trace(args: list[str]) -> subprocess.Popen:
    # This tree's quicctl, whatever the venv's entry point was installed from.
    code = "from quicctl.cli import main; main(prog_name='quicctl')"
    cmd = [sys.executable, "-c", code, "trace", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stderr.readline()
    assert line.startswith("tracing "), f"quicctl trace did not start: {line}"
    return proc


def _tshark_client_packets(pcap: Path, keylog: Path, port: int) -> list[tuple[str, int]]:
    """(packet type, number) of each QUIC packet tshark decodes that was sent to ``port``."""
    import quicdecode

    r = quicdecode.run_tshark(
        ["-n", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}", "-d",
         f"udp.port=={port},quic", "-Y", f"quic && udp.dstport == {port}", "-T", "pdml"],
        pcap, keylog, "trace",
    )  # fmt: skip
    if r.crashed:
        pytest.fail(f"tshark crashed; capture kept in {r.kept}")
    assert r.rc == 0, f"tshark failed ({r.rc}): {r.stderr}"
    out = []
    for proto in ET.fromstring(r.stdout).iter("proto"):
        if proto.get("name") != "quic":
            continue
        fields = {}
        for f in proto.iter("field"):
            fields.setdefault(f.get("name"), f.get("show"))
        if "quic.packet_number" not in fields:
            continue  # not decrypted
        if fields.get("quic.header_form") in ("0", "False"):
            ptype = "1RTT"
        else:
            ptype = {0: "initial", 1: "0RTT", 2: "handshake", 3: "retry"}[
                int(fields["quic.long.packet_type"], 0)
            ]
        out.append((ptype, int(fields["quic.packet_number"], 0)))
    return out


def test_trace_transfer_matches_tshark(quic_module, clean_path, topo, tmp_path, capsys):
    """`quicctl trace --peer-port` records the client of a kernel-to-kernel transfer: the
    .sqlog validates, and the packets it says the client sent are those on the wire."""
    import quicdecode

    from quicctl import hq
    from quicctl.hq import make_file

    for tool in ("tcpdump", "tshark"):
        assert shutil.which(tool), f"{tool} is required (scripts/setup installs it)"
    root = tmp_path / "www"
    root.mkdir()
    digest = make_file(root / "one", 256 << 10, seed=1)
    keylog, pcap, out = tmp_path / "keys.log", tmp_path / "quic.pcap", tmp_path / "c.sqlog"
    for ns in (topo.server, topo.client):  # one packet per captured datagram
        topo.wire_like(ns)
    before = _instances()
    server = KernelHqServer(topo, root)
    tcpdump = ["tcpdump", "-U", "-i", topo.dev(topo.client), "-w", str(pcap), "udp"]
    dump = topo.popen(topo.client, tcpdump, stderr=subprocess.PIPE, text=True)
    said = []
    while not said or "listening on" not in said[-1]:
        said.append(dump.stderr.readline())
        assert said[-1], "tcpdump did not start: " + "".join(said)
    proc = _start_trace(["--peer-port", str(server.port), "-o", str(out)])
    try:
        with kernel_connect(topo, topo.server_v4, server.port, keylog=str(keylog)) as conn:
            downloads = hq.fetch(conn, ["/one"], None)
        assert downloads[0].done and downloads[0].sha256.hexdigest() == digest
        _, err = proc.communicate(timeout=120)
        time.sleep(1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()
        dump.terminate()
        dump.wait(10)
    assert proc.returncode == 0, err
    assert "(closed)" in err, err
    assert _instances() == before, "the tracefs instance is left behind"

    header, events = validate_sqlog(out.read_text())
    assert header["trace"]["vantage_point"]["type"] == "client"
    names = {e["name"] for e in events}
    for name in ("transport:packet_sent", "transport:packet_received",
                 "recovery:metrics_updated", "connectivity:connection_state_updated",
                 "transport:stream_state_updated"):  # fmt: skip
        assert name in names, f"no {name} event (saw {sorted(names)})"
    states = [e["data"]["new"] for e in events if e["name"].endswith("connection_state_updated")]
    assert states == ["handshake_started", "handshake_complete", "closed"], states
    sent = [(e["data"]["header"]["packet_type"], e["data"]["header"]["packet_number"])
            for e in events if e["name"] == "transport:packet_sent"]  # fmt: skip
    assert len(sent) == len(set(sent)), "a packet sent twice"
    frames = {f["frame_type"] for e in events for f in e["data"].get("frames", [])}
    assert {"crypto", "ack", "stream"} <= frames, frames

    wire = _tshark_client_packets(pcap, keylog, server.port)
    one_rtt = {pn for t, pn in sent if t == "1RTT"}
    wire_1rtt = {pn for t, pn in wire if t == "1RTT"}
    assert len(one_rtt) > 10
    assert one_rtt == wire_1rtt, (
        f"1-RTT packet numbers: traced only {sorted(one_rtt - wire_1rtt)[:20]}, "
        f"on the wire only {sorted(wire_1rtt - one_rtt)[:20]}"
    )
    assert set(sent) == set(wire), (
        f"traced only {sorted(set(sent) - set(wire))[:20]}, "
        f"on the wire only {sorted(set(wire) - set(sent))[:20]}"
    )
    kept = quicdecode.ARTIFACTS / "trace-client.sqlog"  # to open in qvis
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(out, kept)
    with capsys.disabled():
        counts = {n: sum(e["name"] == n for e in events) for n in sorted(names)}
        print(
            f"\n  {len(events)} qlog events {counts}; {len(sent)} packets sent "
            f"({len(one_rtt)} 1-RTT) all on the wire as tshark decodes them; kept {kept}"
        )


def test_trace_server_side_losses(quic_module, clean_path, topo, tmp_path, capsys):
    """`quicctl trace --local-port` follows the server's connection on a lossy path: the
    losses it reports are of packets it reported sent, and the window moves."""
    from quicctl import hq
    from quicctl.hq import make_file

    root = tmp_path / "www"
    root.mkdir()
    make_file(root / "one", 256 << 10, seed=2)
    out = tmp_path / "s.sqlog"
    topo.wire_like(topo.server)
    topo.netem(topo.server, "loss 8%")  # undone by clean_path
    before = _instances()
    server = KernelHqServer(topo, root)
    proc = _start_trace(["--local-port", str(server.port), "-o", str(out)])
    try:
        with kernel_connect(topo, topo.server_v4, server.port) as conn:
            downloads = hq.fetch(conn, ["/one"], None)
        assert downloads[0].done
        try:  # the server closes once the client's CONNECTION_CLOSE is in
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # what was recorded is written
            _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()
    assert proc.returncode == 0, err
    assert _instances() == before, "the tracefs instance is left behind"
    header, events = validate_sqlog(out.read_text())
    assert header["trace"]["vantage_point"]["type"] == "server"
    sent: dict[tuple[str, int], float] = {}
    lost = []
    for e in events:
        if e["name"] == "transport:packet_sent":
            h = e["data"]["header"]
            sent.setdefault((h["packet_type"], h["packet_number"]), e["time"])
        elif e["name"] == "recovery:packet_lost":
            h = e["data"]["header"]
            key = (h["packet_type"], h["packet_number"])
            assert key in sent and sent[key] <= e["time"], f"{key} lost but never sent"
            lost.append(key)
    assert lost, f"no packet_lost among {len(sent)} packets sent through 8% loss"
    windows = {
        e["data"]["congestion_window"]
        for e in events
        if e["name"] == "recovery:metrics_updated" and "congestion_window" in e["data"]
    }
    assert len(windows) > 1, f"the window never changed ({windows})"  # fmt: skip
    with capsys.disabled():
        print(f"\n  server: {len(events)} qlog events, {len(sent)} packets sent, {len(lost)} lost, "
              f"{len(windows)} congestion windows")  # fmt: skip


def test_trace_ctrl_c_removes_instance(quic_module):
    """Ctrl-C with no connection seen: one line, exit 1, and the tracefs instance is gone."""
    before = _instances()
    proc = _start_trace(["--duration", "600", "-o", "/tmp/unused.sqlog"])
    assert _instances() - before, "no tracefs instance while tracing"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert err.strip().splitlines() == [
        "quicctl: trace: no matching connection was seen; nothing written"
    ], err
    assert _instances() == before, "the tracefs instance is left behind"
    assert not Path("/tmp/unused.sqlog").exists()
