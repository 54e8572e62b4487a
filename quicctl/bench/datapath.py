"""The C data path of the benchmark (``datapath.c``): built with gcc into build/bench/, cached by
the hash of its source, and run on sockets Python has already connected (``pass_fds``)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from quicctl.errors import QuicctlError
from quicctl.paths import BUILD_DIR

SOURCE = Path(__file__).with_name("datapath.c")
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"]


def binary() -> Path:
    """The program for the current source (built now if it is not in build/bench/ yet)."""
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:12]
    out = BUILD_DIR / "bench" / f"datapath-{digest}"
    if out.is_file():
        return out
    gcc = shutil.which("gcc")
    if not gcc:
        raise QuicctlError(
            "cannot build the benchmark's data path: gcc is missing (apt-get install gcc)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    for old in out.parent.glob("datapath-*"):
        old.unlink(missing_ok=True)
    tmp = out.with_suffix(".tmp")
    r = subprocess.run([gcc, *CFLAGS, "-o", str(tmp), str(SOURCE)], capture_output=True, text=True)
    if r.returncode:
        raise QuicctlError(f"gcc failed to build {SOURCE.name}: {r.stderr.strip()}")
    tmp.rename(out)
    return out


def start(prog: Path, mode: str, fd: int, *args: int) -> subprocess.Popen:
    """Run ``prog MODE FD ARGS`` on the (inherited) socket ``fd``."""
    argv = [str(prog), mode, str(fd), *map(str, args)]
    return subprocess.Popen(
        argv, pass_fds=[fd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def result(proc: subprocess.Popen, what: str, timeout: float) -> dict:
    """The JSON line ``proc`` printed; QuicctlError naming ``what`` when it failed."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise QuicctlError(
            f"{what}: the data path did not finish within {timeout:.0f} s (a stalled connection?)"
        ) from None
    try:
        data = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        data = {"ok": False, "error": err.strip() or f"exit status {proc.returncode}"}
    if proc.returncode or not data.get("ok"):
        raise QuicctlError(f"{what}: {data.get('error', 'failed')}")
    return data


def pair(
    prog: Path,
    modes: tuple[str, str],
    fds: tuple[int, int],
    args: tuple[tuple[int, ...], tuple[int, ...]],
    what: str,
    timeout: float,
) -> tuple[dict, dict]:
    """Start the passive side (``modes[1]`` on ``fds[1]``) first, then the active one; wait for
    both.  Returns (active result, passive result)."""
    passive = start(prog, modes[1], fds[1], *args[1])
    try:
        assert passive.stdout is not None
        if passive.stdout.readline().strip() != "ready":
            result(passive, f"{what} ({modes[1]})", timeout)  # raises with its error
            raise QuicctlError(f"{what} ({modes[1]}): the data path did not start")
        active = start(prog, modes[0], fds[0], *args[0])
    except BaseException:
        passive.kill()
        passive.wait()
        raise
    try:
        a = result(active, f"{what} ({modes[0]})", timeout)
    except BaseException:
        passive.kill()
        passive.communicate()
        raise
    p = result(passive, f"{what} ({modes[1]})", timeout)
    return a, p
