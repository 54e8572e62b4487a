"""`quicctl fuzz frames|syscalls`: the seeded fuzzers of quicctl.fuzz, in the VM by default."""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

import click

from quicctl.cli import OutputFile
from quicctl.errors import QuicctlError

_HELP = """Fuzz quic.ko: KIND is `frames` or `syscalls`.

\b
frames: an aioquic peer puts mutated frames and frame sequences (every RFC 9000/9221 type,
  unknown types, random and boundary values, duplicates, reordering, truncation, bit flips)
  into validly protected Initial, Handshake and 1-RTT packets, against a kernel server and a
  kernel client; one mutation is one packet's injected plaintext.
syscalls: threads run random sequences of socket calls (every SOL_QUIC option with random and
  boundary values and lengths, sendmsg/recvmsg with random cmsgs and flags, close at random
  points) on listening, fresh and connected sockets; one iteration is one sequence.

Boots a VM with the freshly built module (this host cannot load modules; --host runs here,
where quic.ko must load).  Stops after --iterations or --time, whichever comes first.  The run
fails when a fresh connection stops working, a connection is left behind, a call hangs or the
kernel logs a BUG/WARNING/KASAN/leak; every failure line carries the seed.
"""


@click.command(help=_HELP)
@click.argument("kind", type=click.Choice(["frames", "syscalls"]))
@click.option("--seed", type=click.IntRange(min=0), help="Seed (default: random, printed).")
@click.option("--iterations", type=click.IntRange(min=1), help="Mutations or sequences to run.")
@click.option("--time", "seconds", type=click.FloatRange(min=1), help="Seconds to run at most.")
@click.option("--workers", type=click.IntRange(1, 64),
              help="syscalls: threads (default 4); frames: processes (default 2).")  # fmt: skip
@click.option("--json", "json_file", type=OutputFile(),
              help="Also write the report to FILE as JSON.")  # fmt: skip
@click.option("--host", "on_host", is_flag=True, help="Run here (quic.ko must load here).")
@click.option("--debug-kernel", is_flag=True, help="Boot the KASAN/lockdep/kmemleak kernel.")
@click.option("--result-file", hidden=True, help="(VM side) write the report here, no summary.")
@click.option(
    "--timeout", default=4 * 3600.0, show_default=True, help="Seconds before the VM is killed."
)
def fuzz(kind, seed, iterations, seconds, workers, json_file, on_host, debug_kernel,
         result_file, timeout) -> None:  # fmt: skip
    if iterations is None and seconds is None:
        iterations = 2000
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 32)
    if workers is None:
        workers = 2 if kind == "frames" else 4
    if on_host or os.environ.get("QUICCTL_IN_VM") == "1":
        doc = _here(kind, seed, iterations, seconds, workers)
        if result_file:
            Path(result_file).write_text(json.dumps(doc))
            return
    else:
        doc = _in_vm(kind, seed, iterations, seconds, workers, debug_kernel, timeout)
    _output(doc, json_file)
    if doc["failures"]:
        sys.exit(1)


def _here(kind: str, seed: int, iterations, seconds, workers: int) -> dict:
    from quicctl import fuzz, kmod

    if not Path("/proc/net/quic/snmp").exists():
        if not kmod.SYSTEM.has_modules:
            raise QuicctlError(
                f"cannot fuzz here: quic.ko is not loaded and this kernel "
                f"({kmod.SYSTEM.release}) cannot load modules: drop --host (it boots the VM)"
            )
        kmod.load()
    fuzz.require_module()
    t0 = time.monotonic()

    def progress(msg: str) -> None:
        click.echo(f"quicctl fuzz: [{time.monotonic() - t0:7.1f} s] {msg}", err=True)

    if kind == "frames":
        from quicctl.fuzz import frames

        return frames.run(seed, iterations, seconds, progress=progress, workers=workers)
    from quicctl.fuzz import syscalls

    return syscalls.run(seed, iterations, seconds, progress=progress, workers=workers)


def _in_vm(kind, seed, iterations, seconds, workers, debug_kernel, timeout) -> dict:
    from quicctl import kbuild, vm
    from quicctl.paths import BUILD_DIR, ROOT

    if debug_kernel:
        from quicctl import debugkernel

        kernel = vm.debug_kernel()
        kb = kbuild.resolve_kernel(str(debugkernel.build_tree()))
    else:
        kernel = vm.packaged_kernel(None)
        kb = kbuild.resolve_kernel(kernel.release)
    click.echo(f"quicctl fuzz: building quic.ko for {kb.release}", err=True)
    kbuild.build(kb)
    result = BUILD_DIR / "fuzz" / f"result-{uuid.uuid4().hex[:8]}.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    quicctl = str(Path(sys.executable).parent / "quicctl")
    cmd = [quicctl, "fuzz", kind, "--host", "--result-file", str(result), "--seed", str(seed),
           "--workers", str(workers)]  # fmt: skip
    if iterations:
        cmd += ["--iterations", str(iterations)]
    if seconds:
        cmd += ["--time", str(seconds)]
    # This tree's quicctl in the guest too (the venv's script may belong to another checkout).
    rc = vm.run(cmd, kernel, timeout=timeout, env={"PYTHONPATH": str(ROOT)})
    if not result.exists():
        raise QuicctlError(
            f"the {kind} fuzzer (seed {seed}) failed in the VM ({kernel.release}, exit {rc}) "
            "without a report: see its output above"
        )
    doc = json.loads(result.read_text())
    result.unlink()
    if rc and not doc["failures"]:
        doc["failures"].append(
            f"seed {seed}: the VM run failed (exit {rc}): see the kernel log above"
        )
    return doc


def _output(doc: dict, json_file: str | None) -> None:
    out = click.echo
    if doc["fuzzer"] == "frames":
        out(f"frames: seed {doc['seed']}: {doc['mutations']} mutations ({doc['frames']} frames) "
            f"on {doc['connections']} connections {doc['directions']} in {doc['seconds']} s, "
            f"{doc['per_second']}/s")  # fmt: skip
        for space, cov in doc["coverage"].items():
            out(f"  {space}: {sum(cov.values())} frames, {len(cov)} types")
        out(f"  types never sent: {', '.join(doc['missing_types']) or 'none'}")
        out("  kernel reactions (per mutation):")
        for what, n in list(doc["reactions"].items())[:15]:
            out(f"    {n:7d}  {what}")
        out(f"  connections: {doc['connection_outcomes']}")
    else:
        out(f"syscalls: seed {doc['seed']}: {doc['sequences']} sequences ({doc['calls']} calls, "
            f"{doc['sockets']} sockets, {doc['connections']} handshakes) in {doc['seconds']} s, "
            f"{doc['per_second']}/s")  # fmt: skip
        out(f"  options never exercised: {', '.join(doc['missing_options']) or 'none'}")
        for key, dist in doc["errnos"].items():
            top = ", ".join(f"{k} {v}" for k, v in list(dist.items())[:6])
            out(f"    {key:40s} {top}")
    out(f"  leaked connections: {doc['leaked_connections']}; failures: {len(doc['failures'])}")
    for f in doc["failures"]:
        out(f"  FAILURE {f}", err=True)
    if json_file:
        Path(json_file).write_text(json.dumps(doc, indent=2) + "\n")
        out(f"quicctl fuzz: report written to {json_file}", err=True)


COMMANDS = [fuzz]
