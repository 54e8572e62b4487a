"""`quicctl package`: distribution packages of the module (quicctl.deb)."""

from __future__ import annotations

import click


@click.group()
def package() -> None:
    """Build distribution packages of quic.ko."""


@package.command("deb")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=None,
              metavar="DIR", help="Directory for the .deb [build/packages].")  # fmt: skip
def deb(output: str | None) -> None:
    """Build quic-dkms_<version>_all.deb: the module sources for DKMS, which builds and
    installs quic.ko for every kernel with headers when the package is installed.

    The version is PACKAGE_VERSION of kernel/dkms.conf; the maintainer is DEBFULLNAME and
    DEBEMAIL (else git's user.name and user.email).  Prints the path of the package.
    """
    from pathlib import Path

    from quicctl import deb as deb_mod
    from quicctl.paths import BUILD_DIR

    click.echo(deb_mod.build(Path(output) if output else BUILD_DIR / "packages"))


COMMANDS = [package]
