"""`quicctl bench`: kernel QUIC against TCP, kTLS, aioquic and ngtcp2 (quicctl.bench)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import click

from quicctl.cli import OutputFile
from quicctl.errors import QuicctlError

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str, what: str) -> int:
    """``65536``, ``64K``, ``16M``, ``1G`` (binary units) as bytes; QuicctlError otherwise."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    num, unit = (t[:-1], t[-1]) if t[-1:] in _UNITS and t[-1:] else (t, "")
    if not num.isdigit() or int(num) == 0:
        raise QuicctlError(f"bad {what} {text!r}: give a positive byte count like 65536, 64K, 16M")
    return int(num) * _UNITS[unit]


class Size(click.ParamType):
    """A byte count: 65536, 64K, 16M, 1G (binary units).  One type for every size option."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        try:
            return value if isinstance(value, int) else parse_size(value, "size")
        except QuicctlError:
            self.fail(f"{value!r}: give a positive byte count like 65536, 64K, 16M", param, ctx)


def _sizes(ctx, param, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(parse_size(v, "write size") for v in value.split(",") if v.strip())
    except QuicctlError as exc:
        raise click.BadParameter(str(exc)) from None
    if not sizes:
        raise click.BadParameter("give at least one write size")
    if max(sizes) > 1 << 20:
        raise click.BadParameter("write sizes are at most 1M (the data path's buffer)")
    return sizes


def _transports(ctx, param, value: str) -> tuple[str, ...]:
    from quicctl.bench.run import TRANSPORTS

    names = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [n for n in names if n not in TRANSPORTS]
    if bad or not names:
        raise click.BadParameter(
            f"unknown transport {', '.join(bad) or '(none)'}: choose from {','.join(TRANSPORTS)}"
        )
    return tuple(dict.fromkeys(names))


def _rate(ctx, param, value: str | None) -> int | None:
    from quicctl.bench.run import parse_rate

    try:
        return None if value is None else parse_rate(value)
    except QuicctlError as exc:
        raise click.BadParameter(str(exc).removeprefix("bad rate ")) from None


def _bottleneck_table(doc: dict):
    from rich.table import Table

    b = doc["bottleneck"]
    t = Table(
        title=f"bottleneck {b['rate_bps'] / 1e6:g} Mbit/s, RTT {b['rtt_ms']} ms, one connection",
        title_justify="left",
    )
    cols = ("transport", "congestion control", "Mbit/s", "of the link", "queue drops", "seconds")
    for col in cols:
        t.add_column(col, justify="left" if col in ("transport", "congestion control") else "right")
    for e in b["results"]:
        t.add_row(
            e["transport"],
            e["cc"],
            f"{e['goodput_bps'] / 1e6:.2f}",
            f"{100 * e['utilization']:.0f}%",
            str(e["queue_drops"]),
            f"{e['seconds']:.2f}",
        )
    return (t,)


def _table(doc: dict):
    from rich.table import Table

    if doc.get("bottleneck"):
        return _bottleneck_table(doc)

    t = Table(title="bulk transfer, one connection", title_justify="left")
    for col in ("transport", "write size", "Gbit/s", "CPU s/GB", "bytes", "seconds"):
        t.add_column(col, justify="left" if col == "transport" else "right")
    for e in doc["results"]:
        size = "own" if e["write_size"] == 0 else f"{e['write_size'] // 1024} KB"
        t.add_row(
            e["transport"],
            size,
            f"{e['gbps']:.4f}",
            f"{e['cpu_s_per_gb']:.1f}",
            str(e["bytes"]),
            f"{e['seconds']:.2f}",
        )
    hs = Table(title="handshakes and latency", title_justify="left")
    for col in ("transport", "handshakes/s", "request/response median µs"):
        hs.add_column(col, justify="left" if col == "transport" else "right")
    for tr, rate in doc["handshakes_per_s"].items():
        rr = doc["rr_us"].get(tr)
        hs.add_row(tr, f"{rate:.1f}", "-" if rr is None else f"{rr:.0f}")
    return t, hs


_HELP = """Benchmark kernel QUIC against TCP, kTLS, aioquic and ngtcp2 on one veth path.

Boots one VM (this host cannot load modules; --host runs here instead), loads quic.ko and the
kernel's tls module there, and measures between two network namespaces:

\b
- bulk: one connection, --bytes moved at each --sizes write size; Gbit/s over the sender's
  window (first write to the receiver's ack) and CPU seconds per GB (/proc/stat, all CPUs:
  both ends run on the same machine). quic, quic-plain, tcp and ktls: Python does the
  handshake, a C program (quicctl/bench/datapath.c) the write()/read() loops. ktls is TLS
  1.3 AES-128-GCM through the kernel's tls module. quic-plain is kernel QUIC with
  disable_1rtt_encryption offered by both ends: 1-RTT packets go unprotected (the
  transport's own cost). aioquic: one process per namespace, one send_stream_data() per
  write; --aioquic-bytes (it is orders of magnitude slower). ngtcp2: gtlsserver/gtlsclient
  fetch --bytes over HTTP/3; ngtcp2 picks its own write sizes, so it has one entry with
  write_size 0, and the time and CPU of its fastest 1-byte fetch (process start and
  handshake) are taken off the bulk fetch's (unless longer).
- handshakes/s: --handshakes sequential connections, each opened and closed. quic: kernel
  QUIC + TLS 1.3 (gnutls, in Python, both ends in one process). tcp: TCP connect/accept.
  ktls: TCP + TLS 1.3 handshake (OpenSSL) + kTLS install. aioquic: its client process
  against its server process. ngtcp2: one gtlsclient run per connection fetching one byte
  (process start included).
- quic_plpmtud_us: the plpmtud_probe_interval kernel QUIC ran with (--plpmtud; 0: 1200-byte
  datagrams).
- rr_us: median round trip of a 64-byte request and its 64-byte echo on one connection
  (quic, quic-plain, tcp, ktls: --rr-count round trips in C; aioquic: a fifth of them in Python).

With --bottleneck RATE, only this runs instead: the client's side of the veth sends through tc
tbf at RATE (one bandwidth-delay product of queue), netem delays the ACKs by --rtt, and each
selected kernel transport (quic and quic-plain once with NewReno and once with CUBIC, tcp,
ktls) moves
--bottleneck-bytes in 64 KB writes; the table gives the goodput (slow start included) and its
share of the link, the JSON a "bottleneck" object.
"""


@click.command(help=_HELP)
@click.option("--host", "on_host", is_flag=True, help="Run here (this host must load modules).")
@click.option(
    "--bytes",
    "nbytes",
    type=Size(),
    default="64M",
    show_default=True,
    help="Bytes per transfer for quic, quic-plain, tcp, ktls and ngtcp2.",
)
@click.option(
    "--aioquic-bytes",
    type=Size(),
    default="4M",
    show_default=True,
    help="Bytes per transfer for aioquic.",
)
@click.option(
    "--sizes",
    default="1K,16K,64K",
    show_default=True,
    callback=_sizes,
    help="Comma-separated write sizes.",
)
@click.option(
    "--transports",
    default="quic,quic-plain,tcp,ktls,aioquic,ngtcp2",
    show_default=True,
    callback=_transports,
    help="Comma-separated transports to measure.",
)
@click.option(
    "--handshakes",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Connections timed for handshakes/s.",
)
@click.option(
    "--rr-count",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Round trips timed for the request/response latency.",
)
@click.option(
    "--bottleneck",
    "bottleneck_bps",
    metavar="RATE",
    callback=_rate,
    help="Shape the path to RATE (tc units: 10mbit) and measure goodput only.",
)
@click.option(
    "--rtt",
    "rtt_ms",
    type=click.IntRange(min=1, max=5000),
    default=200,
    show_default=True,
    help="With --bottleneck: round-trip delay in ms, added on the ACK path.",
)
@click.option(
    "--bottleneck-bytes",
    type=Size(),
    default="8M",
    show_default=True,
    help="With --bottleneck: bytes per transfer.",
)
@click.option(
    "--json",
    "json_file",
    type=OutputFile(),
    help="Also write the results to FILE as JSON.",
)
@click.option(
    "--plpmtud",
    "plpmtud_ms",
    type=click.IntRange(min=0, max=143165),
    default=30000,
    show_default=True,
    help="QUIC's plpmtud_probe_interval in ms (DPLPMTUD raises datagrams above 1200 bytes to "
    "what the veth carries, as TCP's MSS follows its MTU); 0: off, 1200-byte datagrams.",
)
@click.option("--no-load", is_flag=True, help="With --host: use quic.ko as already loaded.")
@click.option("--result-file", hidden=True, help="(VM side) write the results here, no table.")
@click.option(
    "--timeout", default=3600.0, show_default=True, help="Seconds before the VM is killed."
)
def bench(
    on_host,
    nbytes,
    aioquic_bytes,
    sizes,
    transports,
    handshakes,
    rr_count,
    bottleneck_bps,
    rtt_ms,
    bottleneck_bytes,
    json_file,
    plpmtud_ms,
    no_load,
    result_file,
    timeout,
) -> None:
    from quicctl.bench.run import Options

    opts = Options(
        bytes=nbytes,
        aioquic_bytes=aioquic_bytes,
        sizes=sizes,
        transports=transports,
        handshakes=handshakes,
        rr_count=rr_count,
        load=not no_load,
        bottleneck_bps=bottleneck_bps,
        rtt_ms=rtt_ms,
        bottleneck_bytes=bottleneck_bytes,
        plpmtud_us=plpmtud_ms * 1000,
    )
    if plpmtud_ms and plpmtud_ms < 5000:
        raise click.BadParameter(f"{plpmtud_ms}: the kernel takes 0 or 5000 ms and more",
                                 param_hint="--plpmtud")  # fmt: skip
    if no_load and not on_host:
        raise click.UsageError("--no-load applies to --host only (the VM always loads the build)")
    if bottleneck_bps:
        from quicctl.bench.run import KERNEL, NO_KERNEL

        if not set(transports) & set(KERNEL):
            raise QuicctlError(f"--bottleneck: {NO_KERNEL}")
    if on_host:
        import time

        from quicctl.bench import run

        t0 = time.monotonic()

        def progress(msg: str) -> None:
            click.echo(f"quicctl bench: [{time.monotonic() - t0:6.1f} s] {msg}", err=True)

        doc = run.run(opts, progress=progress)
        if result_file:
            Path(result_file).write_text(json.dumps(doc))
            return
    else:
        doc = _in_vm(opts, timeout)
    _output(doc, json_file)


def _in_vm(opts, timeout: float) -> dict:
    from quicctl import kbuild, vm
    from quicctl.bench import datapath
    from quicctl.paths import BUILD_DIR

    kernel = vm.packaged_kernel(None)
    click.echo(f"quicctl bench: building quic.ko for {kernel.release}", err=True)
    kbuild.build(kbuild.resolve_kernel(kernel.release))
    datapath.binary()  # gcc on the host: much faster than in the guest
    result = BUILD_DIR / "bench" / f"result-{uuid.uuid4().hex[:8]}.json"
    cmd = [
        str(Path(sys.executable).parent / "quicctl"),
        "bench",
        "--host",
        "--result-file",
        str(result),
        "--bytes",
        str(opts.bytes),
        "--aioquic-bytes",
        str(opts.aioquic_bytes),
        "--sizes",
        ",".join(map(str, opts.sizes)),
        "--transports",
        ",".join(opts.transports),
        "--handshakes",
        str(opts.handshakes),
        "--rr-count",
        str(opts.rr_count),
        "--plpmtud",
        str(opts.plpmtud_us // 1000),
    ]
    if opts.bottleneck_bps:
        cmd += ["--bottleneck", f"{opts.bottleneck_bps}bit", "--rtt", str(opts.rtt_ms),
                "--bottleneck-bytes", str(opts.bottleneck_bytes)]  # fmt: skip
    rc = vm.run(cmd, kernel, timeout=timeout)
    if rc or not result.exists():
        raise QuicctlError(
            f"the benchmark failed in the VM ({kernel.release}, exit {rc}): see its output above"
        )
    doc = json.loads(result.read_text())
    result.unlink()
    return doc


def _output(doc: dict, json_file: str | None) -> None:
    from quicctl.cli.module import print_tables

    print_tables(*_table(doc))
    if json_file:
        Path(json_file).write_text(json.dumps(doc, indent=2) + "\n")
        click.echo(f"quicctl bench: results written to {json_file}", err=True)


COMMANDS = [bench]
