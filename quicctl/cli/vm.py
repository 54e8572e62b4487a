"""`quicctl vm` and `quicctl test`."""

from __future__ import annotations

import sys

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--kernel", "kver", metavar="KVER", help="Packaged kernel release to boot.")
@click.option("--debug-kernel", is_flag=True, help="Boot the KASAN/lockdep/kmemleak kernel.")
@click.option("--memory", default=None, help="Guest memory (default 2G, 4G for the debug kernel).")
@click.option(
    "--cpus",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Guest CPUs (QEMU TCG: each is a host thread).",
)
@click.option(
    "--timeout", default=3600.0, show_default=True, help="Seconds before the VM is killed."
)
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def vm(kver, debug_kernel, memory, cpus, timeout, cmd) -> None:
    """Boot a kernel under QEMU (TCG) with this project writable and run CMD in it.

    Fails when CMD fails or when the kernel log shows BUG/WARNING/Oops/KASAN/UBSAN/leaks.
    """
    from quicctl import vm as vmlib

    kernel = vmlib.debug_kernel() if debug_kernel else vmlib.packaged_kernel(kver)
    sys.exit(vmlib.run(list(cmd), kernel, memory=memory, cpus=cpus, timeout=timeout))


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--host", "host_only", is_flag=True, help="Run on this host (it must load modules).")
@click.option("-k", "kexpr", metavar="EXPR", help="Only tests matching EXPR (pytest -k).")
@click.option("--kernel", "kver", metavar="KVER", help="Packaged kernel release to test on.")
@click.option("--debug-kernel", is_flag=True, help="Run on the KASAN/lockdep/kmemleak kernel.")
@click.option(
    "--timeout",
    type=float,
    help="Seconds before the VM is killed.  [default: 3600, 4 h with --debug-kernel]",
)
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def test(host_only, kexpr, kver, debug_kernel, timeout, pytest_args) -> None:
    """Run selftests/: host checks, then everything else in one VM boot. KTAP summary."""
    from quicctl import testrun

    if timeout is None:  # the whole suite on the debug kernel took over an hour under load
        timeout = 4 * 3600.0 if debug_kernel else 3600.0

    sys.exit(
        testrun.run(
            host_only=host_only,
            kexpr=kexpr,
            kernel=kver,
            debug_kernel=debug_kernel,
            pytest_args=list(pytest_args),
            timeout=timeout,
        )
    )


COMMANDS = [vm, test]
