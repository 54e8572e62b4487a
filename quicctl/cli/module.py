"""quicctl build, load, unload, debug, dkms, status: thin commands over kbuild, kmod and dkms."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from quicctl.errors import QuicctlError

_KERNEL_HELP = "Kernel release (see /lib/modules) or path to a kernel build tree."


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)  # rich honours NO_COLOR (and TERM=dumb) itself


def print_tables(*tables, stderr: bool = False) -> None:
    """Print rich tables, a blank line between them, with no trailing spaces (rich pads every
    cell to its column width, the last one too)."""
    console = _console(stderr)
    for i, table in enumerate(tables):
        with console.capture() as cap:
            if i:
                console.print()
            console.print(table)
        console.file.write("\n".join(line.rstrip() for line in cap.get().split("\n")))
        console.file.flush()


@contextmanager
def _progress(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal; plain lines on stderr otherwise.

    Yields ``update(step)``.  Without a terminal nothing is printed until the first step, so
    a command that fails its checks prints nothing but its error.
    """
    console = _console(stderr=True)
    if console.is_terminal:
        with console.status(text) as status:
            yield lambda line: status.update(f"{text}: {line.strip()}")
        return
    started = []

    def update(line: str) -> None:
        if not started:
            started.append(True)
            click.echo(text, err=True)
        click.echo(line, err=True)

    yield update


# --------------------------------------------------------------------------------------------
# build


@click.command()
@click.option("--kernel", "kernel_spec", metavar="KVER|PATH", help=_KERNEL_HELP)
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel make jobs [nproc].")
@click.option("--allow-warnings", is_flag=True, help="Succeed even if W=1 reported warnings.")
@click.option("-v", "--verbose", is_flag=True, help="Show make's whole output.")
def build(kernel_spec: str | None, jobs: int | None, allow_warnings: bool, verbose: bool) -> None:
    """Build quic.ko (W=1) for a kernel; prints the path of the module.

    Default kernel: the running one if its headers are installed, else the newest installed.
    """
    from quicctl import kbuild

    kernel = kbuild.resolve_kernel(kernel_spec)

    if verbose:
        ko = kbuild.build(kernel, jobs=jobs, on_line=lambda line: click.echo(line, err=True))
    else:
        with _progress(f"building quic.ko for {kernel.release}") as update:

            def on_line(line: str) -> None:
                # kbuild's steps ("  CC [M]  net/quic/foo.o"); diagnostics are reported after.
                if line.startswith("  ") and line.strip()[:1].isupper():
                    update(line)

            ko = kbuild.build(kernel, jobs=jobs, on_line=on_line)
    warnings = kbuild.last_warnings(kernel.release)
    err = _console(stderr=True)
    for w in warnings:
        err.print(w, style="yellow", markup=False, highlight=False, soft_wrap=True)
    click.echo(str(ko))
    if warnings and not allow_warnings:
        raise QuicctlError(
            f"quic.ko for {kernel.release} built with {len(warnings)} W=1 warning(s) "
            "(the test suite requires none): fix them, or pass --allow-warnings"
        )


# --------------------------------------------------------------------------------------------
# load / unload


@click.command()
@click.option("--kernel", "kernel_spec", metavar="KVER|PATH", help=_KERNEL_HELP)
@click.option(
    "--module",
    "module_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Load this quic.ko instead of the one built for the kernel.",
)
def load(kernel_spec: str | None, module_path: str | None) -> None:
    """Load quic.ko into the running kernel (with udp_tunnel and ip6_udp_tunnel)."""
    from pathlib import Path

    from quicctl import kbuild, kmod

    release = kbuild.release_of(kernel_spec) if kernel_spec else None
    result = kmod.load(Path(module_path) if module_path else None, release)
    version = f" {result.version}" if result.version else ""
    click.echo(f"quic{version} {result.action} (srcversion {result.srcversion}) from {result.ko}")


@click.command()
def unload() -> None:
    """Unload quic (a no-op when it is not loaded)."""
    from quicctl import kmod

    click.echo("quic unloaded" if kmod.unload(wait=5) else "quic was not loaded")


# --------------------------------------------------------------------------------------------
# debug


@click.command()
@click.argument("state", type=click.Choice(["on", "off", "status"]), default="status")
def debug(state: str) -> None:
    """Turn quic's pr_debug messages (dynamic debug) on or off, or list its call sites."""
    from quicctl import kmod

    if state != "status":
        enabled = kmod.debug(state == "on")
        click.echo(f"dynamic debug {state} for quic: {enabled} call site(s) enabled")
        return
    if not kmod.is_loaded():
        click.echo("quic is not loaded (quicctl load): no dynamic debug call sites")
        return
    sites = kmod.debug_status()
    if not sites:
        click.echo("quic has no dynamic debug call sites (no pr_debug in this build?)")
        return
    from rich.table import Table
    from rich.text import Text  # plain text: formats may hold "[...]", which is not markup

    table = Table("on", "file:line", "function", "format", box=None, pad_edge=False)
    for site in sites:
        # Call sites carry the path of the build copy: show it from net/quic/ on.
        file = site["file"]
        file = file[file.find("net/quic/") :] if "net/quic/" in file else file
        table.add_row(
            "+" if site["enabled"] else "-",
            Text(f"{file}:{site['line']}"),
            Text(site["function"]),
            Text(site["format"]),
        )
    print_tables(table)
    click.echo(f"{sum(s['enabled'] for s in sites)}/{len(sites)} call sites enabled")


# --------------------------------------------------------------------------------------------
# dkms


@click.group()
def dkms() -> None:
    """Install quic.ko through DKMS (rebuilt for every new kernel)."""


@dkms.command("install")
@click.option("--kernel", "release", metavar="KVER", help="Kernel release [as build].")
def dkms_install(release: str | None) -> None:
    """Copy the sources to /usr/src, then dkms add, build and install."""
    from quicctl import dkms as dkms_mod

    with _progress("installing quic with DKMS") as update:
        done = dkms_mod.install(release, on_step=update)
    click.echo(f"quic/{done['version']} installed with DKMS for {done['kernel']}")


@dkms.command("remove")
def dkms_remove() -> None:
    """Remove quic from DKMS (all kernels) and its /usr/src copy."""
    from quicctl import dkms as dkms_mod

    removed = dkms_mod.remove()
    if removed:
        click.echo(f"removed quic/{', quic/'.join(removed)} from DKMS")
    else:
        click.echo("quic was not in DKMS")


@dkms.command("status")
@click.option("--kernel", "release", metavar="KVER", help="Only this kernel release.")
def dkms_status(release: str | None) -> None:
    """Show what DKMS knows about quic."""
    from quicctl import dkms as dkms_mod

    entries = [e for e in dkms_mod.status() if release is None or e["kernel"] in (None, release)]
    if not entries:
        click.echo("quic is not in DKMS" + (f" for {release}" if release else ""))
    for e in entries:
        where = f" {e['kernel']} {e['arch']}" if e["kernel"] else ""
        note = f" ({e['note']})" if e["note"] else ""
        click.echo(f"quic/{e['version']}{where}: {e['state']}{note}")


# --------------------------------------------------------------------------------------------
# status


def _status_table(info: dict):
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()

    def row(name: str, value: object) -> None:
        table.add_row(name, Text("-" if value is None or value == "" else str(value)))

    row("kernel", info["kernel"])
    if not info["module_support"]:
        row("modules", "not supported by this kernel (use `quicctl vm`)")
    row("loaded", "yes" if info["loaded"] else "no")
    if info["loaded"]:
        row("version", info["version"])
        row("srcversion", info["srcversion"])
        holders = f" ({', '.join(info['holders'])})" if info["holders"] else ""
        row("refcount", f"{info['refcount']}{holders}")
        row("taint", info["taint"])
    row("kernel tainted", info["kernel_tainted"])
    built = info["built_module"] or f"not built for {info['kernel']} (quicctl build)"
    if not info["built_module"] and info.get("other_builds"):
        built += f"; built for {', '.join(info['other_builds'])} (quicctl vm boots those)"
    if info["built_matches_loaded"] is not None:
        built += " (loaded)" if info["built_matches_loaded"] else " (differs from the loaded one)"
    row("built module", built)
    return table


def _snmp_table(counters: dict):
    from rich.table import Table
    from rich.text import Text

    table = Table("counter", "value", box=None, pad_edge=False)
    table.columns[1].justify = "right"
    for name, value in counters.items():
        table.add_row(Text(name), str(value))
    return table


def _conns_table(conns: list[dict]):
    """RTT and congestion state per connection (/proc/net/quic/cong), RTTs in ms; "late" is
    how many of the "lost" packets arrived after all (reordered, not lost)."""
    from rich.table import Table

    table = Table(
        "local", "peer", "algo", "srtt", "min_rtt", "rttvar", "cwnd", "in flight", "lost",
        "late", "Mbit/s", box=None, pad_edge=False, title="connections (RTTs in ms, paced Mbit/s)",
    )  # fmt: skip
    for col in table.columns:
        col.overflow = "fold"
    for col in table.columns[3:]:
        col.justify = "right"
    for c in conns:
        table.add_row(
            str(c["LOCAL_ADDRESS"]), str(c["REMOTE_ADDRESS"]), str(c["ALGO"]),
            f"{int(c['SRTT']) / 1000:.1f}", f"{int(c['MIN_RTT']) / 1000:.1f}",
            f"{int(c['RTTVAR']) / 1000:.1f}", str(c["CWND"]), str(c["IN_FLIGHT"]),
            str(c["LOST"]), str(c.get("SPURIOUS", "-")), f"{int(c['PACING_RATE']) * 8 / 1e6:.1f}",
        )  # fmt: skip
    return table


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
def status(as_json: bool) -> None:
    """Show the module's state, its build, its SNMP counters (/proc/net/quic/snmp) and the
    RTT and congestion state of each connection of this namespace (/proc/net/quic/cong)."""
    from quicctl import kmod

    info = kmod.status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    tables = [_status_table(info)]
    if info["snmp"]:
        tables.append(_snmp_table(info["snmp"]))
    if info["connections"]:
        tables.append(_conns_table(info["connections"]))
    print_tables(*tables)


COMMANDS = [build, load, unload, debug, dkms, status]
