"""`quicctl ss`: QUIC sockets like `ss -tin` lists TCP's, from quic_diag.ko (quicctl.ssdiag)."""

from __future__ import annotations

import ipaddress
import json
import sys
import time

import click

_HELP = """List QUIC sockets and connections of this network namespace, as `ss -tin` does for
TCP: state, queues, local and peer address, then per connection the ALPN, QUIC version, cipher,
connection IDs (ours, the peer's), open streams, RTT, congestion window, bytes in flight, losses,
pacing rate, bytes sent/acknowledged/received and socket memory (skmem, as ss -m).

\b
Connections only by default; -l: listeners only; -a: both.
Needs quic_diag.ko (sock_diag for IPPROTO_QUIC): `modprobe quic_diag`.
iproute2's own ss with QUIC: `make ss` builds build/iproute2/ss (ss -Q).
"""


class Endpoint(click.ParamType):
    """ADDR, ADDR:PORT, [IPv6]:PORT or :PORT, as (address or None, port or None)."""

    name = "ADDR[:PORT]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        host, port = value, None
        if value.startswith("["):
            host, sep, rest = value[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                self.fail(f"{value}: expected [IPv6]:PORT", param, ctx)
            port = rest[1:] or None
        elif value.count(":") == 1:
            host, port = value.split(":")
        try:
            addr = ipaddress.ip_address(host) if host else None
        except ValueError:
            self.fail(f"{value}: {host!r} is not an IP address", param, ctx)
        if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
            self.fail(f"{value}: port {port!r} is not 1..65535", param, ctx)
        if addr is None and port is None:
            self.fail(f"{value}: give an address, a port or both", param, ctx)
        return addr, None if port is None else int(port)


def _matches(sock: dict, side: str, want: tuple) -> bool:
    addr, port = want
    if port is not None and sock[f"{side}_port"] != port:
        return False
    if addr is None:
        return True
    host = sock[side].rsplit(":", 1)[0].strip("[]")
    return ipaddress.ip_address(host) == addr


def _us(v: int | None) -> str:
    return "-" if v is None else f"{v / 1000:.3f}ms"


def _rate(bps: int) -> str:
    bits = bps * 8
    for unit, div in (("Gbps", 1e9), ("Mbps", 1e6), ("Kbps", 1e3)):
        if bits >= div:
            return f"{bits / div:.1f}{unit}"
    return f"{bits}bps"


def detail(sock: dict) -> str:
    """The indented second line of a socket, in ss -i's key:value style."""
    parts = ["server" if sock.get("server") else "client"]
    if sock.get("alpn"):
        parts.append("alpn:" + ",".join(sock["alpn"]))
    if "version_name" in sock:
        parts.append(sock["version_name"])
    if "cipher_name" in sock:
        parts.append(sock["cipher_name"])
    for key in ("scid", "dcid"):
        if sock.get(key) is not None:
            parts.append(f"{key}:{sock[key] or '-'}")
    if "streams_bidi_local" in sock:
        parts.append(f"streams:bidi:{sock['streams_bidi_local']}/{sock['streams_bidi_peer']},"
                     f"uni:{sock['streams_uni_local']}/{sock['streams_uni_peer']}")  # fmt: skip
    if "cwnd" in sock:
        ssthresh = "-" if sock["ssthresh"] is None else sock["ssthresh"]
        parts += [
            sock["cong_algo"],
            f"rtt:{_us(sock['srtt'])}/{_us(sock['rttvar'])}",
            f"minrtt:{_us(sock['min_rtt'])}",
            f"cwnd:{sock['cwnd']}",
            f"ssthresh:{ssthresh}",
            f"inflight:{sock['in_flight']}",
            f"mss:{sock['mss']}",
            f"lost:{sock['lost']}",
            f"pto:{sock['pto_count']}",
            f"pacing_rate:{_rate(sock['pacing_rate'])}",
            f"bytes_sent:{sock['bytes_sent']}",
            f"bytes_acked:{sock['bytes_acked']}",
            f"bytes_received:{sock['bytes_received']}",
        ]
    mem = sock.get("skmem")
    if mem:
        short = ("r", "rb", "t", "tb", "f", "w", "o", "bl", "d")
        vals = zip(short, mem.values(), strict=False)
        parts.append("skmem:(" + ",".join(f"{k}{v}" for k, v in vals) + ")")
    return "\t " + " ".join(parts)


def render(socks: list[dict]) -> str:
    """ss's layout: one aligned row per socket, its details on an indented line below."""
    head = ("State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port")
    rows = [(s["state"], str(s["recv_q"]), str(s["send_q"]), s["local"], s["peer"])
            for s in socks]  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    right = {1, 2}

    def line(cells) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w)
               for i, (c, w) in enumerate(zip(cells, widths, strict=True))]  # fmt: skip
        return "  ".join(out).rstrip()

    lines = [line(head)]
    for sock, row in zip(socks, rows, strict=True):
        lines += [line(row), detail(sock)]
    return "\n".join(lines)


def _select(socks, listening, all_, src, dst):
    if not all_:
        socks = [s for s in socks if (s["state"] == "LISTEN") == listening]
    if src:
        socks = [s for s in socks if _matches(s, "local", src)]
    if dst:
        socks = [s for s in socks if _matches(s, "peer", dst)]
    return socks


@click.command(help=_HELP)
@click.option("-l", "--listening", is_flag=True, help="Listening sockets only.")
@click.option("-a", "--all", "all_", is_flag=True, help="Listeners and connections.")
@click.option("--state", "states", multiple=True,
              type=click.Choice(["established", "syn-recv", "closed", "listening"]),
              help="Only sockets in this state (repeatable; the kernel filters).")  # fmt: skip
@click.option("--sport", type=click.IntRange(1, 65535), help="Local port (the kernel filters).")
@click.option("--dport", type=click.IntRange(1, 65535), help="Peer port (the kernel filters).")
@click.option("--src", type=Endpoint(), help="Local ADDR, ADDR:PORT, [IPv6]:PORT or :PORT.")
@click.option("--dst", type=Endpoint(), help="Peer ADDR, ADDR:PORT, [IPv6]:PORT or :PORT.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of sockets instead.")
@click.option("--watch", type=click.FloatRange(min=0.1), is_flag=False, flag_value=1.0,
              default=None, metavar="[SECONDS]",
              help="Refresh every SECONDS (1 if not given) until Ctrl-C.")  # fmt: skip
def ss(listening, all_, states, sport, dport, src, dst, as_json, watch) -> None:
    from quicctl import ssdiag

    if listening and all_:
        raise click.UsageError("-l/--listening and -a/--all exclude each other")
    if states:
        all_ = True  # an explicit state list replaces the default selection
    try:
        while True:
            socks = ssdiag.sockets(states or None, sport or 0, dport or 0)
            socks = _select(socks, listening, all_, src, dst)
            if as_json:
                click.echo(json.dumps(socks, indent=2))
            else:
                if watch:
                    click.clear()
                click.echo(render(socks))
            if not watch:
                return
            sys.stdout.flush()
            time.sleep(watch)
    except KeyboardInterrupt:
        return


COMMANDS = [ss]
