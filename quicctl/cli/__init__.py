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


class OutputFile(click.Path):
    """A file a command will write at its end: checked at once (an existing directory we may
    write in, or a writable file), not after an hour-long run."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, writable=True)

    def convert(self, value, param, ctx):
        import os

        path = super().convert(value, param, ctx)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.exists(path) and not (os.path.isdir(parent) and
                                             os.access(parent, os.W_OK)):  # fmt: skip
            self.fail(f"{value}: cannot create it ({parent} is not a writable directory)",
                      param, ctx)  # fmt: skip
        return path


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(__version__, prog_name="quicctl")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Build, load, debug, demonstrate, benchmark and test the in-kernel QUIC module."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    from quicctl.cli import agent, bench, demo, fuzz, module, trace, vm

    for mod in (module, vm, demo, bench, fuzz, agent, trace):
        for cmd in mod.COMMANDS:
            main.add_command(cmd)


_register()
