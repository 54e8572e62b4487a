"""Record quic.ko's tracepoints for one connection and write them as qlog.

The kernel side is kernel/net/quic/trace.h (TRACE_SYSTEM quic): every event carries the
socket cookie (the one ``ss -e`` shows), and ``quic_state`` also the addresses and ports.
``Recorder`` enables the events in a tracefs instance of its own (instances/quicctl-<pid>,
removed when it stops), so other users of tracefs are not disturbed; ``Qlog`` turns the
events of one connection into qlog 0.3 JSON-SEQ (RFC 7464), with the event names and fields
of draft-ietf-quic-qlog-main-schema and -quic-events of that version (``transport:``,
``recovery:``, ``security:``, ``connectivity:``), which qvis loads.
"""

from __future__ import annotations

import json
import os
import re
import select
import time
from dataclasses import dataclass, field
from pathlib import Path

from quicctl.errors import QuicctlError

TRACEFS_ROOTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
RS = "\x1e"  # RFC 7464 record separator

# kernel/net/quic/pnspace.h enum quic_space_id and packet.h enum quic_pkt_type.
SPACE_PACKET_TYPE = {0: "1RTT", 1: "initial", 2: "handshake"}
PACKET_TYPES = {0: "initial", 1: "0RTT", 2: "handshake", 3: "retry", 4: "1RTT",
                5: "version_negotiation", 6: "unknown"}  # fmt: skip
# UAPI enum quic_crypto_level.
LEVEL_NAMES = {0: "1rtt", 1: "initial", 2: "handshake", 3: "0rtt"}
# RFC 9000 Section 12.4 frame types, bit N of the frames mask (STREAM: bit 8).
FRAME_NAMES = {
    0x00: "padding", 0x01: "ping", 0x02: "ack", 0x03: "ack", 0x04: "reset_stream",
    0x05: "stop_sending", 0x06: "crypto", 0x07: "new_token", 0x08: "stream",
    0x10: "max_data", 0x11: "max_stream_data", 0x12: "max_streams", 0x13: "max_streams",
    0x14: "data_blocked", 0x15: "stream_data_blocked", 0x16: "streams_blocked",
    0x17: "streams_blocked", 0x18: "new_connection_id", 0x19: "retire_connection_id",
    0x1A: "path_challenge", 0x1B: "path_response", 0x1C: "connection_close",
    0x1D: "connection_close", 0x1E: "handshake_done", 0x30: "datagram", 0x31: "datagram",
}  # fmt: skip
STATE_NAMES = {"closed": "closed", "establishing": "handshake_started",
               "established": "handshake_complete", "listening": "attempted"}  # fmt: skip
LOSS_TRIGGERS = {"packet_threshold": "reordering_threshold", "time_threshold": "time_threshold"}
KEY_TRIGGERS = {"install": "tls", "local_update": "local_update",
                "remote_update": "remote_update"}  # fmt: skip
# trace.h stream events: (stream_side or None, new state).
STREAM_EVENTS = {
    "open": (None, "open"),
    "fin_sent": ("sending", "data_sent"),
    "fin_recvd": ("receiving", "data_received"),
    "reset_sent": ("sending", "reset_sent"),
    "reset_recvd": ("receiving", "reset_received"),
    "closed": (None, "closed"),
}
PATH_EVENTS = {"moved": "migration_started", "challenge_sent": "probing_started",
               "validated": "migration_complete", "back": "migration_abandoned"}  # fmt: skip
# recovery:metrics_updated fields from quic_metrics: (qlog name, scale); times us -> ms.
METRICS = (("min_rtt", "min_rtt", 1e-3), ("srtt", "smoothed_rtt", 1e-3),
           ("latest_rtt", "latest_rtt", 1e-3), ("rttvar", "rtt_variance", 1e-3),
           ("cwnd", "congestion_window", 1), ("in_flight", "bytes_in_flight", 1),
           ("ssthresh", "ssthresh", 1), ("pacing_rate", "pacing_rate", 8),
           ("pto_count", "pto_count", 1))  # fmt: skip

_LINE = re.compile(r"\s(\d+\.\d+):\s+(quic_\w+):\s(.*)$")
_KV = re.compile(r"(\w+)=(\S+)")
_STATE = re.compile(
    r"cookie=(\d+) (\S+) -> (\S+) server=(\d) state=(\w+) -> (\w+)"
)  # fmt: skip


@dataclass
class Event:
    """One line of trace_pipe: trace clock time (s), event name, fields."""

    ts: float
    name: str
    fields: dict

    @property
    def cookie(self) -> int:
        return int(self.fields["cookie"])


def _port(addr: str) -> int | None:
    m = re.search(r":(\d+)$", addr)
    return int(m.group(1)) if m else None


def parse_line(line: str) -> Event | None:
    """An event of ours from a trace_pipe line, or None (another format, lost events...)."""
    m = _LINE.search(line.rstrip("\n"))
    if not m:
        return None
    ts, name, rest = float(m.group(1)), m.group(2), m.group(3)
    if name == "quic_state":
        s = _STATE.match(rest)
        if not s:
            return None
        fields = {"cookie": s.group(1), "local": s.group(2), "peer": s.group(3),
                  "server": s.group(4) == "1", "old": s.group(5), "new": s.group(6),
                  "sport": _port(s.group(2)), "dport": _port(s.group(3))}  # fmt: skip
        return Event(ts, name, fields)
    fields = dict(_KV.findall(rest))
    if "cookie" not in fields:
        return None
    return Event(ts, name, fields)


def _num(v: str) -> int:
    """A number as TP_printk wrote it: 12, 0x1f or 1500us."""
    return int(v.removesuffix("us"), 0)


def frame_names(mask: int) -> list[str]:
    """The frame types of a quic_packet_* frames mask, in type order, each once."""
    out: list[str] = []
    for bit in range(64):
        if mask >> bit & 1:
            name = FRAME_NAMES.get(bit, f"unknown_{bit:#x}")
            if name not in out:
                out.append(name)
    return out


@dataclass
class Selector:
    """Which connection to keep: a cookie, or the first new one (by ports, if given)."""

    cookie: int | None = None
    local_port: int | None = None
    peer_port: int | None = None

    def matches_new(self, ev: Event) -> bool:
        """A quic_state event that starts the connection we want."""
        if ev.name != "quic_state" or ev.fields["new"] != "establishing":
            return False
        if self.local_port is not None and ev.fields["sport"] != self.local_port:
            return False
        return self.peer_port is None or ev.fields["dport"] == self.peer_port


@dataclass
class Qlog:
    """The qlog of one connection, built from its events in order."""

    cookie: int
    reference: float  # trace clock time (s) of time 0
    reference_wall_ms: float  # the same instant, Unix time in ms
    server: bool | None = None
    local: str | None = None
    peer: str | None = None
    closed: bool = False
    events: list[dict] = field(default_factory=list)
    _metrics: dict = field(default_factory=dict)
    _last_rx: dict = field(default_factory=dict)  # space -> its last packet_received data

    def _emit(self, ev: Event, name: str, data: dict) -> dict:
        rec = {"time": round((ev.ts - self.reference) * 1000, 3), "name": name, "data": data}
        self.events.append(rec)
        return rec

    def add(self, ev: Event) -> None:
        f = ev.fields
        handler = getattr(self, "_on_" + ev.name.removeprefix("quic_"), None)
        if handler is not None:
            handler(ev, f)

    def _on_packet_sent(self, ev: Event, f: dict) -> None:
        self._packet(ev, f, "transport:packet_sent")

    def _on_packet_received(self, ev: Event, f: dict) -> None:
        data = self._packet(ev, f, "transport:packet_received")
        self._last_rx[int(f["space"])] = data

    def _packet(self, ev: Event, f: dict, name: str) -> dict:
        ptype = PACKET_TYPES.get(int(f["type"]), "unknown")
        header = {"packet_type": ptype, "packet_number": int(f["pn"])}
        if ptype == "1RTT":
            header["key_phase_bit"] = int(f["key_phase"])
        data = {
            "header": header,
            "raw": {"length": int(f["len"])},
            "frames": [{"frame_type": n} for n in frame_names(int(f["frames"], 0))],
        }
        self._emit(ev, name, data)
        return data

    def _on_ack_received(self, ev: Event, f: dict) -> None:
        # The ACK frame of the packet being handled: its fields go on that frame.
        data = self._last_rx.get(int(f["space"]))
        ack = next((fr for fr in (data or {}).get("frames", []) if fr["frame_type"] == "ack"),
                   None)  # fmt: skip
        if ack is None:
            return
        ack["ack_delay"] = round(_num(f["ack_delay"]) / 1000, 3)
        ack["largest_acknowledged"] = int(f["largest"])
        ack["newly_acknowledged"] = int(f["newly_acked"])

    def _on_packet_lost(self, ev: Event, f: dict) -> None:
        data = {"header": {"packet_type": SPACE_PACKET_TYPE[int(f["space"])],
                           "packet_number": int(f["pn"])}}  # fmt: skip
        if f["reason"] in LOSS_TRIGGERS:
            data["trigger"] = LOSS_TRIGGERS[f["reason"]]
        self._emit(ev, "recovery:packet_lost", data)

    def _on_metrics(self, ev: Event, f: dict) -> None:
        data = {}
        for key, name, scale in METRICS:
            v = _num(f[key]) * scale
            v = round(v, 3) if isinstance(v, float) else v
            if self._metrics.get(name) != v:
                data[name] = v
                self._metrics[name] = v
        if data:
            self._emit(ev, "recovery:metrics_updated", data)

    def _on_key_update(self, ev: Event, f: dict) -> None:
        send, level = f["send"] == "1", LEVEL_NAMES.get(int(f["level"]), "1rtt")
        ours = "server" if self.server else "client"
        theirs = "client" if self.server else "server"
        side = ours if send else theirs
        data = {"key_type": f"{side}_{level}_secret", "trigger": KEY_TRIGGERS[f["event"]]}
        if level == "1rtt":
            data["key_phase"] = int(f["phase"])
        self._emit(ev, "security:key_updated", data)

    def _on_state(self, ev: Event, f: dict) -> None:
        self.server = f["server"]
        self.local, self.peer = f["local"], f["peer"]
        self._emit(ev, "connectivity:connection_state_updated",
                   {"old": STATE_NAMES[f["old"]], "new": STATE_NAMES[f["new"]]})  # fmt: skip
        if f["new"] == "closed":
            self.closed = True

    def _on_stream(self, ev: Event, f: dict) -> None:
        sid = int(f["id"])
        side, new = STREAM_EVENTS[f["event"]]
        data = {"stream_id": sid, "stream_type": "unidirectional" if sid & 2 else "bidirectional",
                "new": new}  # fmt: skip
        if side:
            data["stream_side"] = side
        self._emit(ev, "transport:stream_state_updated", data)

    def _on_path(self, ev: Event, f: dict) -> None:
        self._emit(ev, "connectivity:migration_state_updated",
                   {"new": PATH_EVENTS[f["event"]], "peer_address": f["addr"]})  # fmt: skip

    def header(self) -> dict:
        vantage = {"name": "quic.ko", "type": "server" if self.server else "client"}
        if self.server is None:
            vantage["type"] = "unknown"
        return {
            "qlog_version": "0.3",
            "qlog_format": "JSON-SEQ",
            "title": "quicctl trace",
            "description": f"quic.ko connection, socket cookie {self.cookie}"
            + (f", {self.local} -> {self.peer}" if self.local else ""),
            "trace": {
                "title": f"cookie {self.cookie}",
                "vantage_point": vantage,
                "common_fields": {
                    "group_id": str(self.cookie),
                    "protocol_type": ["QUIC"],
                    "time_format": "relative",
                    "reference_time": round(self.reference_wall_ms, 3),
                },
            },
        }

    def dumps(self) -> str:
        """JSON-SEQ: each record is RS, the JSON text, LF (RFC 7464 Section 2.2)."""
        recs = [self.header(), *self.events]
        return "".join(RS + json.dumps(r, separators=(",", ":")) + "\n" for r in recs)


def read_json_seq(text: str) -> list:
    """The records of a JSON-SEQ text (RFC 7464): a record that does not parse is an error."""
    if text and not text.startswith(RS):
        raise ValueError("JSON-SEQ text does not start with a record separator")
    return [json.loads(chunk) for chunk in text.split(RS)[1:]]


def tracefs_root() -> Path:
    for root in TRACEFS_ROOTS:
        if (root / "instances").is_dir():
            return root
    raise QuicctlError(
        "tracefs: not mounted at /sys/kernel/tracing "
        "(mount -t tracefs nodev /sys/kernel/tracing, as root)"
    )


class Recorder:
    """quic events in a tracefs instance of our own: ``with Recorder() as r: r.read(...)``.

    The instance is removed on exit, whatever happened (Ctrl-C included).
    """

    def __init__(self, cookie: int | None = None, buffer_kb: int = 8192,
                 name: str | None = None) -> None:  # fmt: skip
        self.root = tracefs_root()
        if not (self.root / "events" / "quic").is_dir():
            raise QuicctlError(
                "quic tracepoints: none in tracefs (quic.ko is not loaded, or built without "
                "trace.h): load it with `quicctl load`"
            )
        self.inst = self.root / "instances" / (name or f"quicctl-trace-{os.getpid()}")
        self.cookie = cookie
        self.buffer_kb = buffer_kb
        self.fd: int | None = None
        self._pending = b""
        self.mono_offset = 0.0  # Unix time - trace clock (mono)

    def _write(self, rel: str, value: str) -> None:
        try:
            (self.inst / rel).write_text(value)
        except OSError as exc:
            raise QuicctlError(f"tracefs: cannot write {value!r} to {self.inst / rel}: "
                               f"{exc.strerror}") from None  # fmt: skip

    def __enter__(self) -> Recorder:
        try:
            self.inst.mkdir()
        except FileExistsError:
            raise QuicctlError(f"tracefs: instance {self.inst} exists (another quicctl trace "
                               "is running, or remove it with rmdir)") from None  # fmt: skip
        except OSError as exc:
            raise QuicctlError(f"tracefs: cannot create {self.inst}: {exc.strerror} "
                               "(tracing needs root)") from None  # fmt: skip
        try:
            self._write("trace_clock", "mono")
            self._write("buffer_size_kb", str(self.buffer_kb))
            if self.cookie is not None:
                self._write("events/quic/filter", f"cookie == {self.cookie}")
            self._write("events/quic/enable", "1")
            self._write("tracing_on", "1")
            self.mono_offset = time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)
            self.fd = os.open(self.inst / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if not self.inst.exists():
            return
        for rel, value in (("tracing_on", "0"), ("events/quic/enable", "0")):
            try:
                (self.inst / rel).write_text(value)
            except OSError:
                pass
        for _ in range(50):  # EBUSY while a reader is still leaving trace_pipe
            try:
                self.inst.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        raise QuicctlError(f"tracefs: cannot remove {self.inst} (busy): rmdir it by hand")

    def read(self, timeout: float) -> list[Event]:
        """Events that arrived, waiting at most ``timeout`` s for the first."""
        assert self.fd is not None
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        data = self._pending + chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()
        out = []
        for line in lines:
            ev = parse_line(line.decode(errors="replace"))
            if ev is not None:
                out.append(ev)
        return out


def record(selector: Selector, duration: float | None = None, linger: float = 0.5,
           on_start=None, recorder: Recorder | None = None) -> Qlog | None:  # fmt: skip
    """Record one connection: until it is closed (and ``linger`` s more, for its last
    packets), ``duration`` s, or KeyboardInterrupt (then what was recorded is returned).
    ``on_start(recorder)`` is called once tracing runs.  None if no connection was seen."""
    rec = recorder or Recorder(cookie=selector.cookie)
    qlog: Qlog | None = None
    start = time.monotonic()
    closed_at: float | None = None
    with rec:
        if on_start is not None:
            on_start(rec)
        try:
            while True:
                now = time.monotonic()
                if duration is not None and now - start >= duration:
                    break
                if closed_at is not None and now - closed_at >= linger:
                    break
                for ev in rec.read(0.2):
                    if qlog is None:
                        if selector.cookie is not None:
                            if ev.cookie != selector.cookie:
                                continue
                        elif not selector.matches_new(ev):
                            continue
                        qlog = Qlog(ev.cookie, ev.ts, (ev.ts + rec.mono_offset) * 1000)
                    if ev.cookie != qlog.cookie:
                        continue
                    qlog.add(ev)
                    if qlog.closed and closed_at is None:
                        closed_at = time.monotonic()
        except KeyboardInterrupt:
            pass
    return qlog
