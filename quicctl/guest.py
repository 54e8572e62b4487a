"""Guest side of `quicctl vm`: run a command, then judge the kernel log.

Run as `python -m quicctl.guest --result FILE [--unload-check] -- CMD...` inside the VM.  The
verdict goes to FILE (JSON: rc, findings) on the shared project directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

MARK = "quicctl-guest: run starts"

# What fails a run when the kernel logs it during the command (STYLE.md item 21).  The last
# line: lockdep turned itself off (a taint, e.g. from a KASAN report, or its own limits), after
# which no locking is checked; a run that says so has not been checked.
BAD = re.compile(
    r"BUG[: ]|WARNING:|Oops|KASAN|UBSAN|refcount_t|list_del corruption|list_add corruption|"
    r"general protection fault|Kernel panic|possible recursive locking|"
    r"circular locking dependency|suspicious RCU usage|scheduling while atomic|"
    r"sleeping function called from invalid context|stack-protector|stack guard page|"
    r"Disabling lock debugging|turning off the locking correctness validator|"
    r"lockdep is turned off"
)

# The canary (selftests/test_canary.py) makes the debug kernel report on purpose, to prove that
# the scan below catches KASAN and lockdep.  It logs CANARY_EXPECT before it fires a trigger
# and, once it has checked that findings() reports exactly what it fired, CANARY_CAUGHT: the
# lines between the two are its own and no longer fail the run.  A window that is not closed
# (the canary was not caught, or something else was logged meanwhile) still counts.
CANARY_EXPECT = "quicctl-canary: expecting "
CANARY_CAUGHT = "quicctl-canary: caught "
LOCKDEP_STATS = Path("/proc/lockdep_stats")
KMEMLEAK = Path("/sys/kernel/debug/kmemleak")
ORIG_INDEX = "/tmp/quicctl-modules-orig"


def kmsg(text: str) -> None:
    try:
        with open("/dev/kmsg", "w") as f:
            f.write(text + "\n")
    except OSError:
        pass


def dmesg_since(mark: str = MARK) -> list[str]:
    """Kernel log lines after the last line containing `mark`."""
    out = subprocess.run(["dmesg"], capture_output=True, text=True).stdout.splitlines()
    for i in range(len(out) - 1, -1, -1):
        if mark in out[i]:
            return out[i + 1 :]
    return out


def findings(lines: list[str]) -> list[str]:
    """The lines of ``lines`` (kernel log) that fail a run: BAD ones, except those inside a
    canary window the canary test closed."""
    out: list[str] = []
    window: list[str] | None = None
    name = ""
    for line in lines:
        if CANARY_EXPECT in line:
            out += window or []
            window, name = [], line.split(CANARY_EXPECT, 1)[1].strip()
        elif window is not None and CANARY_CAUGHT + name in line:
            window = None
        elif BAD.search(line):
            (window if window is not None else out).append(line)
    return out + (window or [])


def canaries_caught(lines: list[str]) -> list[str]:
    """The canary triggers whose reports the canary test has consumed in ``lines``."""
    return [ln.split(CANARY_CAUGHT, 1)[1].strip() for ln in lines if CANARY_CAUGHT in ln]


def debug_locks() -> int | None:
    """Lockdep's ``debug_locks`` (1: on; 0: it turned itself off), None without lockdep."""
    try:
        text = LOCKDEP_STATS.read_text()
    except OSError:
        return None
    m = re.search(r"^\s*debug_locks:\s*(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def debug_checks_armed() -> list[str]:
    """On the debug kernel, before the command: what keeps KASAN or lockdep from reporting.

    The kernel must have been booted with quicctl.debugkernel.CMDLINE, lockdep must still be
    on, and the boot itself must have logged nothing bad (a boot-time KASAN report taints the
    kernel, which turns lockdep off, and without kasan_multi_shot uses up KASAN's one report).
    """
    from quicctl.debugkernel import CMDLINE

    problems = []
    cmdline = Path("/proc/cmdline").read_text().split()
    missing = [opt for opt in CMDLINE if opt not in cmdline]
    if missing:
        problems.append(
            f"debug kernel booted without {' '.join(missing)}: KASAN and lockdep are not "
            f"checked (/proc/cmdline: {' '.join(cmdline)})"
        )
    locks = debug_locks()
    if locks is None:
        problems.append(f"debug kernel without lockdep: no debug_locks in {LOCKDEP_STATS}")
    elif locks != 1:
        problems.append(f"lockdep is off before the run (debug_locks {locks}): nothing is checked")
    problems += [f"at boot: {line}" for line in findings(dmesg_since(MARK))]
    return problems


def _mount_debugfs() -> None:
    if not Path("/sys/kernel/debug/dynamic_debug").exists() and not KMEMLEAK.exists():
        subprocess.run(["mount", "-t", "debugfs", "none", "/sys/kernel/debug"], check=False)


def _kmemleak_write(cmd: str) -> None:
    try:
        KMEMLEAK.write_text(cmd)
    except OSError:
        pass


def _kmemleak_report() -> list[str]:
    """Leaks whose allocation trace goes through the quic module."""
    if not KMEMLEAK.exists():
        return []
    # An object must stay unreferenced for a while before kmemleak reports it.
    time.sleep(6)
    _kmemleak_write("scan")
    _kmemleak_write("scan")
    text = KMEMLEAK.read_text(errors="replace")
    leaks = [b for b in text.split("unreferenced object") if b.strip()]
    return [
        "kmemleak: unreferenced object" + b.strip().splitlines()[0] for b in leaks if "quic" in b
    ]


def install_modules(prepared: str | Path, ko: str | Path | None = None) -> None:
    """Put the host-prepared module index (and extra/quic.ko) into /lib/modules/<release>.

    /lib is a throwaway overlay in the guest.  The original index files are saved once to
    /tmp/quicctl-modules-orig so a test can go back to the host's own (restore_modules()).
    """
    moddir = Path("/lib/modules") / os.uname().release
    moddir.mkdir(parents=True, exist_ok=True)
    saved = Path(ORIG_INDEX)
    if not saved.exists():
        saved.mkdir(parents=True)
        for f in moddir.glob("modules.*"):
            shutil.copy2(f, saved / f.name)
    prepared = Path(prepared)
    (moddir / "extra").mkdir(exist_ok=True)
    shutil.copy2(ko or prepared / "extra" / "quic.ko", moddir / "extra" / "quic.ko")
    for f in prepared.glob("modules.*"):
        if not f.is_symlink():
            shutil.copy2(f, moddir / f.name)


def restore_modules() -> None:
    """Back to the host's module index (e.g. a DKMS-installed quic.ko in updates/dkms)."""
    moddir = Path("/lib/modules") / os.uname().release
    for f in Path(ORIG_INDEX).iterdir():
        shutil.copy2(f, moddir / f.name)


def _unload_check() -> list[str]:
    if not Path("/sys/module/quic").exists():
        return []
    # Closed connections live on while they drain (3 PTO at most): give them time.
    deadline = time.monotonic() + 30
    ref = Path("/sys/module/quic/refcnt").read_text().strip()
    while ref != "0" and time.monotonic() < deadline:
        time.sleep(0.2)
        ref = Path("/sys/module/quic/refcnt").read_text().strip()
    r = subprocess.run(["rmmod", "quic"], capture_output=True, text=True)
    if r.returncode:
        return [f"rmmod quic after the run failed (refcnt {ref}): {r.stderr.strip()}"]
    return []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--argv-file"]:  # vm.run(): the arguments, kept off the kernel cmdline
        argv = json.loads(Path(argv[1]).read_text())
    ap = argparse.ArgumentParser(prog="quicctl.guest")
    ap.add_argument("--result", required=True)
    ap.add_argument("--unload-check", action="store_true")
    ap.add_argument(
        "--debug-kernel", action="store_true", help="check that KASAN and lockdep are armed"
    )
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--modules", help="host-prepared module index to install")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd

    env = dict(os.environ)
    env["QUICCTL_IN_VM"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/sbin:/usr/bin')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    for kv in args.env:
        key, _, val = kv.partition("=")
        env[key] = val
    if args.modules:
        install_modules(args.modules)
        env["QUICCTL_DEPMOD_DIR"] = args.modules
    _mount_debugfs()
    _kmemleak_write("clear")
    # Before the mark, so that no line of the run can count as a line of the boot.
    armed = debug_checks_armed() if args.debug_kernel else []
    kmsg(MARK)
    if armed:
        for line in armed:
            print(f"quicctl vm: {line}", file=sys.stderr)
        rc = 1  # the command would run unchecked: do not run it
    else:
        try:
            rc = subprocess.run(cmd, env=env).returncode
        except OSError as exc:
            print(f"quicctl vm: cannot run {cmd[0]!r}: {exc.strerror}", file=sys.stderr)
            rc = 127
    problems = armed + (_unload_check() if args.unload_check else [])
    log = dmesg_since()
    problems += findings(log)
    if args.debug_kernel and not armed and debug_locks() != 1 and not canaries_caught(log):
        problems.append(
            f"lockdep turned itself off during the run (debug_locks {debug_locks()}) "
            "and no canary accounts for it: the rest of the run was not checked"
        )
    problems += _kmemleak_report()
    if problems:
        print("quicctl vm: the kernel log shows problems:", file=sys.stderr)
        for line in dmesg_since()[-200:]:
            print(f"  dmesg: {line}", file=sys.stderr)
    Path(args.result).write_text(json.dumps({"rc": rc, "findings": problems}))
    return rc


if __name__ == "__main__":
    sys.exit(main())
