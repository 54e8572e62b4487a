"""The quicctl command: thin click groups over the plain modules of the package."""

from __future__ import annotations

import sys

import click

from quicctl import __version__
from quicctl.errors import QuicctlError


class _Main(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except QuicctlError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"quicctl: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(__version__, prog_name="quicctl")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Build, load, debug, demonstrate, benchmark and test the in-kernel QUIC module."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    from quicctl.cli import agent, bench, demo, fuzz, module, vm

    for mod in (module, vm, demo, bench, fuzz, agent):
        for cmd in mod.COMMANDS:
            main.add_command(cmd)


_register()
