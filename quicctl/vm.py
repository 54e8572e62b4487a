"""Boot a kernel under QEMU (virtme-ng, TCG) with the host filesystem and run a command in it.

The guest side is `quicctl.guest`: it runs the command, then scans the kernel log (and kmemleak
where the kernel has it) and writes a result file into the shared project directory.  The host
trusts only that file: a guest that panicked or hung leaves none, which is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from quicctl.errors import QuicctlError
from quicctl.paths import BUILD_DIR, ROOT


@dataclass
class VmKernel:
    release: str
    image: Path
    debug: bool = False


def packaged_kernel(release: str | None = None) -> VmKernel:
    """A Debian-packaged kernel image from /boot: `release`, else the newest 6.12 one."""
    boot = Path("/boot")
    if release:
        image = boot / f"vmlinuz-{release}"
        if not image.exists():
            raise QuicctlError(
                f"no kernel image {image}: install it with "
                f"`INITRD=No apt-get install linux-image-{release}-unsigned` "
                "(or `bash scripts/setup`)"
            )
        return VmKernel(release, image)
    images = sorted(
        (p for p in boot.glob("vmlinuz-*") if p.name.endswith("-amd64")),
        key=lambda p: _version_key(p.name.removeprefix("vmlinuz-")),
    )
    if not images:
        raise QuicctlError(
            "no kernel image in /boot to boot the VM with: run `bash scripts/setup` "
            "(installs Debian's newest linux-image-6.12*-amd64-unsigned)"
        )
    pref = [p for p in images if p.name.startswith("vmlinuz-6.12.")] or images
    return VmKernel(pref[-1].name.removeprefix("vmlinuz-"), pref[-1])


def debug_kernel() -> VmKernel:
    from quicctl import debugkernel

    return VmKernel(debugkernel.release(), debugkernel.image(), debug=True)


def _version_key(release: str) -> list:
    out: list = []
    for part in release.replace("-", ".").replace("+", ".").split("."):
        out.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return out


def _vng() -> str:
    here = Path(sys.executable).parent / "vng"
    found = str(here) if here.exists() else shutil.which("vng")
    if not found:
        raise QuicctlError("virtme-ng (vng) is not installed: run `bash scripts/setup`")
    for tool, pkg in (("qemu-system-x86_64", "qemu-system-x86"), ("file", "file")):
        if not shutil.which(tool):
            raise QuicctlError(f"{tool} is missing, virtme-ng needs it: apt-get install {pkg}")
    return found


def prepare_depmod(release: str, ko: Path) -> Path:
    """depmod's output for `release` with the dev build as extra/quic.ko, made on the host.

    Under TCG `depmod -a` takes minutes (it decompresses every module); here it takes seconds.
    The guest copies these files over its (throwaway, overlaid) /lib/modules/<release>, so that
    `modprobe quic` and socket autoload find the dev build.  Returns the module directory.
    """
    base = BUILD_DIR / release / "depmod"
    moddir = base / "lib" / "modules" / release
    src = Path("/lib/modules") / release
    shutil.rmtree(base, ignore_errors=True)
    (moddir / "extra").mkdir(parents=True)
    if src.is_dir():
        for entry in src.iterdir():
            if entry.name.startswith("modules.") and not entry.name.startswith(
                ("modules.order", "modules.builtin")
            ):
                continue  # depmod's own outputs: regenerated below
            (moddir / entry.name).symlink_to(entry)
    shutil.copy2(ko, moddir / "extra" / "quic.ko")
    conf = base / "depmod.conf"
    conf.write_text("search extra updates built-in\noverride quic * extra\n")
    r = subprocess.run(
        ["depmod", "-b", str(base), "-C", str(conf), release], capture_output=True, text=True
    )
    if r.returncode:
        raise QuicctlError(f"depmod for {release} failed: {r.stderr.strip()}")
    return moddir


def guest_python() -> str:
    """The interpreter of this venv; the host filesystem is the guest's root."""
    return sys.executable


def _stream(argv: list[str], env: dict[str, str], timeout: float | None) -> int:
    """Run vng in its own session, its output copied to ours; returns its exit status.

    Its session is killed whole (QEMU with it) at ``timeout``, and when we end early: Ctrl-C
    (KeyboardInterrupt), SIGTERM (turned into SystemExit here) or any error, so no VM is left
    running behind a command that is gone."""
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL)) if timeout else None
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if timer:
        timer.start()
    try:
        assert proc.stdout is not None
        out = sys.stdout.buffer
        for line in proc.stdout:
            out.write(line)
            out.flush()
        return proc.wait()
    except BaseException:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        raise
    finally:
        if timer:
            timer.cancel()
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def run(
    cmd: list[str],
    kernel: VmKernel,
    *,
    memory: str | None = None,
    cpus: int = 2,
    timeout: float | None = None,
    unload_check: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    """Run `cmd` in a fresh VM; returns its exit code, or 1 when the kernel log is not clean."""
    if not cmd:
        raise QuicctlError("quicctl vm: no command given (usage: quicctl vm -- CMD...)")
    vng = _vng()
    results = BUILD_DIR / "vm"
    results.mkdir(parents=True, exist_ok=True)
    result = results / f"result-{uuid.uuid4().hex[:8]}.json"
    guest = [guest_python(), "-m", "quicctl.guest", "--result", str(result)]
    if unload_check:
        guest.append("--unload-check")
    if kernel.debug:
        guest.append("--debug-kernel")  # the guest checks that KASAN and lockdep are armed
    for key, val in (env or {}).items():
        guest += ["--env", f"{key}={val}"]
    # The dev build, where there is one for this kernel, is what modprobe and socket autoload
    # find in the guest (its /lib is a throwaway overlay).
    from quicctl import kbuild

    ko = kbuild.module_path(kernel.release)
    if ko.is_file():
        guest += ["--modules", str(prepare_depmod(kernel.release, ko))]
    guest += ["--", *cmd]
    # vng passes --exec on the kernel command line (2048 bytes on x86, the debug kernel's
    # options included): a long pytest -k expression overflowed it and the guest never ran.
    # The arguments go through a file in the shared tree instead.
    argv_file = result.with_name(result.stem + "-argv.json")
    argv_file.write_text(json.dumps(guest[3:]))
    guest = [*guest[:3], "--argv-file", str(argv_file)]
    memory = memory or ("4G" if kernel.debug else "2G")
    append = "panic_on_oops=1 loglevel=5 oops=panic"
    if kernel.debug:
        from quicctl import debugkernel

        append += " " + " ".join(debugkernel.CMDLINE)
    argv = [
        vng, "--run", str(kernel.image), "--disable-kvm",
        "--cpus", str(cpus), "--memory", memory,
        "--rwdir", str(ROOT), "--cwd", str(Path.cwd()),
        "--append", append,
        "--exec", subprocess.list2cmdline(guest),
    ]  # fmt: skip
    if not BUILD_DIR.resolve().is_relative_to(ROOT.resolve()):
        argv[1:1] = ["--rwdir", str(BUILD_DIR)]
    start = time.monotonic()
    # vng truncates a file it writes to directly: its output always goes through this pipe.
    # vng runs its helpers (virtme-run, virtme-init) by name: they sit beside it in the venv,
    # which need not be on PATH when quicctl is run as .venv/bin/quicctl.
    path = os.environ.get("PATH", "")
    child_env = dict(os.environ, PATH=f"{Path(vng).parent}{os.pathsep}{path}")
    try:
        status = _stream(argv, child_env, timeout)
    finally:
        argv_file.unlink(missing_ok=True)
    if timeout and time.monotonic() - start >= timeout:
        raise QuicctlError(
            f"the VM ({kernel.release}) did not finish within {timeout:.0f} s: "
            "a hung test or a kernel hang (see the console output above)"
        )
    if not result.exists():
        raise QuicctlError(
            f"the VM ({kernel.release}) exited (status {status}) after "
            f"{time.monotonic() - start:.0f} s without a result: kernel panic, oops or a guest "
            "crash (see the console output above)"
        )
    data = json.loads(result.read_text())
    result.unlink()
    for line in data.get("findings", []):
        print(f"quicctl vm: kernel log: {line}", file=sys.stderr)
    rc = int(data["rc"])
    if data.get("findings") and rc == 0:
        rc = 1
    return rc
