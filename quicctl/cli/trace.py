"""`quicctl trace`: record one connection's quic.ko tracepoints as qlog (.sqlog)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from quicctl.cli import OutputFile
from quicctl.errors import QuicctlError


class Cookie(click.ParamType):
    """A socket cookie: decimal, or hex with 0x (`ss -e` prints it as sk:HEX)."""

    name = "cookie"

    def convert(self, value, param, ctx):
        try:
            n = int(str(value), 0)
        except ValueError:
            n = -1
        if not 0 <= n < 1 << 64:
            self.fail(f"{value!r} is not a socket cookie (a number, 0x for hex)", param, ctx)
        return n


@click.command()
@click.option("-o", "--output", "output", type=OutputFile(), default="quic.sqlog",
              show_default=True, help="qlog file to write (JSON-SEQ).")  # fmt: skip
@click.option(
    "--cookie",
    type=Cookie(),
    metavar="N",
    help="The connection's socket cookie: decimal, or 0x and hex (`ss -e` shows sk:HEX).",
)
@click.option(
    "--local-port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="The first new connection with this local port.",
)
@click.option(
    "--peer-port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="The first new connection with this peer port.",
)
@click.option(
    "--duration",
    type=click.FloatRange(0, min_open=True),
    metavar="SECONDS",
    help="Stop after this long (default: when the connection closes, or Ctrl-C).",
)
def trace(output, cookie, local_port, peer_port, duration):
    """Record one QUIC connection's events as qlog, for qvis (qvis.quictools.info).

    Enables the quic tracepoints in a tracefs instance of its own (removed on exit) and
    follows one connection: by --cookie, else the first one that starts while it records
    (with --local-port/--peer-port, the first with those ports).  Stops when the connection
    closes, after --duration, or on Ctrl-C, and writes OUTPUT.  Needs root and quic.ko.
    """
    from quicctl import qlog

    if cookie is not None and (local_port or peer_port):
        raise click.UsageError("--cookie selects one connection: no --local-port/--peer-port")
    sel = qlog.Selector(cookie=cookie, local_port=local_port, peer_port=peer_port)
    # SIGTERM stops the recording as Ctrl-C does: the qlog is written, the instance removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    def started(rec):
        what = f"cookie {cookie}" if cookie is not None else "the first new connection"
        click.echo(f"tracing {what} in {rec.inst}; Ctrl-C stops", err=True)

    log = qlog.record(sel, duration=duration, on_start=started)
    if log is None:
        raise QuicctlError("trace: no matching connection was seen; nothing written")
    Path(output).write_text(log.dumps())
    end = "closed" if log.closed else "still open"
    click.echo(f"{output}: {len(log.events)} events of connection cookie {log.cookie} "
               f"({end})", file=sys.stderr)  # fmt: skip


COMMANDS = [trace]
