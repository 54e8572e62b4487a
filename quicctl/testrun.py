"""`quicctl test`: the selftests in two phases, on the host and in one VM boot.

Phase 1 runs on the host the tests marked `host` (builds against every installed kernel,
checkpatch, DKMS build/install).  Phase 2 boots the VM once and runs everything else there as
root.  With `host_only` (a host that can load modules) both phases run here.  A KTAP summary of
both phases is printed at the end; the result is non-zero on any failure or error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from quicctl import kbuild, vm
from quicctl.errors import QuicctlError
from quicctl.paths import BUILD_DIR, ROOT, SELFTESTS

# What sizes or seeds the long runs of test_scale and test_fuzz, passed from the host.
PASS_THROUGH = ("QUICCTL_SCALE_CONNS", "QUICCTL_FUZZ_SEED")


@dataclass
class Outcome:
    name: str
    status: str  # "ok", "fail", "skip"
    detail: str = ""


@dataclass
class Phase:
    name: str
    rc: int
    outcomes: list[Outcome] = field(default_factory=list)


def _pytest_argv(junit: Path, marker: str, kexpr: str | None, extra: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "pytest", str(SELFTESTS), "-m", marker, f"--junitxml={junit}"]
    argv += ["-p", "no:cacheprovider", "-o", "console_output_style=classic"]
    if kexpr:
        argv += ["-k", kexpr]
    return argv + list(extra)


def _read_junit(path: Path) -> list[Outcome]:
    if not path.exists():
        return []
    out = []
    for case in ET.parse(path).iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
        status, detail = "ok", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status, detail = "fail", (child.get("message") or "").splitlines()[0:1]
                detail = detail[0] if detail else child.tag
            elif child.tag == "skipped":
                status, detail = "skip", child.get("message") or ""
        out.append(Outcome(name, status, detail))
    return out


def _phase_rc(rc: int) -> int:
    # pytest exit 5: no test selected (e.g. -k matched nothing in this phase).
    return 0 if rc == 5 else rc


def ktap(phases: list[Phase]) -> tuple[str, bool]:
    """KTAP-style report of all phases; also says whether everything passed."""
    lines = ["KTAP version 1", f"1..{len(phases)}"]
    ok_all = True
    for i, ph in enumerate(phases, 1):
        lines.append(f"    KTAP version 1\n    # Subtest: {ph.name}\n    1..{len(ph.outcomes)}")
        for j, o in enumerate(ph.outcomes, 1):
            tag = "ok" if o.status in ("ok", "skip") else "not ok"
            skip = f" # SKIP {o.detail}" if o.status == "skip" else ""
            lines.append(f"    {tag} {j} {o.name}{skip}")
            if o.status == "fail" and o.detail:
                lines.append(f"    # {o.detail}")
        good = ph.rc == 0 and all(o.status != "fail" for o in ph.outcomes)
        ok_all &= good
        lines.append(f"{'ok' if good else 'not ok'} {i} {ph.name}")
    counts = {
        s: sum(o.status == s for ph in phases for o in ph.outcomes) for s in ("ok", "fail", "skip")
    }
    lines.append(
        f"# totals: {counts['ok']} passed, {counts['fail']} failed, {counts['skip']} skipped"
    )
    return "\n".join(lines), ok_all


def run(
    *,
    host_only: bool = False,
    kexpr: str | None = None,
    kernel: str | None = None,
    debug_kernel: bool = False,
    pytest_args: list[str] | None = None,
    timeout: float = 3600,
) -> int:
    if not SELFTESTS.is_dir():
        raise QuicctlError(
            f"cannot run the selftests: {SELFTESTS} does not exist (an installed quicctl has no "
            "tests; run `quicctl test` from a source checkout)"
        )
    extra = list(pytest_args or [])
    results = BUILD_DIR / "test-results"
    results.mkdir(parents=True, exist_ok=True)
    if debug_kernel:
        vmk = vm.debug_kernel()
        kb = kbuild.resolve_kernel(str(_debug_build_tree()))
    elif host_only:
        vmk = None
        kb = kbuild.resolve_kernel(kernel)
    else:
        vmk = vm.packaged_kernel(kernel)
        kb = kbuild.resolve_kernel(vmk.release)
    # The suite tests a snapshot: a rebuild while it runs must not swap the module under it.
    ko = results / f"quic-{kb.release}.ko"
    built = _build(kb)
    shutil.copy2(built, ko)
    env = {"QUICCTL_MODULE": str(ko), "QUICCTL_TARGET_RELEASE": kb.release}
    # quic_diag.ko (`quicctl ss`) of the same build: it uses quic.ko's symbols.  Built only
    # for kernels with CONFIG_INET_DIAG (not the debug kernel; test_ss is packaged_kernel).
    if built.with_name("quic_diag.ko").is_file():
        env["QUICCTL_DIAG_MODULE"] = str(results / f"quic_diag-{kb.release}.ko")
        shutil.copy2(built.with_name("quic_diag.ko"), env["QUICCTL_DIAG_MODULE"])
    if not debug_kernel:  # test_ss runs it on Debian's kernel (packaged_kernel)
        _build_ss(env)
    # Sizes of the long runs, set on the host (e.g. QUICCTL_SCALE_CONNS=1000), reach the guest.
    env.update({k: v for k, v in os.environ.items() if k in PASS_THROUGH})
    if debug_kernel:
        # KUnit tests: built only against kernels with CONFIG_KUNIT.
        unit = built.with_name("quic_unit_test.ko")
        if not unit.is_file():
            raise QuicctlError(f"{unit} was not built: does {kb.release} lack CONFIG_KUNIT?")
        env["QUICCTL_DEBUG_KERNEL"] = "1"
        env["QUICCTL_KUNIT_MODULE"] = str(results / f"quic_unit_test-{kb.release}.ko")
        shutil.copy2(unit, env["QUICCTL_KUNIT_MODULE"])
        # The canary proves that KASAN and lockdep report and that the scan catches them.
        print(f"quicctl test: building quic_canary.ko for {kb.release}", flush=True)
        canary = kbuild.build_external(kb, SELFTESTS / "canary", "quic_canary")
        env["QUICCTL_CANARY_MODULE"] = str(results / f"quic_canary-{kb.release}.ko")
        shutil.copy2(canary, env["QUICCTL_CANARY_MODULE"])
    # A module for another kernel: the version-mismatch test loads it on the target kernel.
    other = [r for r in kbuild.installed_releases() if r.startswith("6.1.0-") and r != kb.release]
    if other:
        _build(kbuild.resolve_kernel(other[-1]))

    phases = []
    junit = results / "host.xml"
    junit.unlink(missing_ok=True)
    print("quicctl test: phase 1 (host)", flush=True)
    # The debug kernel has no /lib/modules tree: DKMS is checked on Debian's kernel only; the
    # KUnit tests need the debug kernel.
    if debug_kernel:
        only = " and not packaged_kernel"
        print("quicctl test: debug kernel: DKMS tests (packaged_kernel) deselected", flush=True)
    else:
        only = " and not debug_kernel"
    argv = _pytest_argv(
        junit, ("host" if not host_only else "(host or not host)") + only, kexpr, extra
    )
    rc = subprocess.run(argv, cwd=ROOT, env=_env(env)).returncode
    phases.append(Phase("host", _phase_rc(rc), _read_junit(junit)))

    if not host_only:
        junit = results / "vm.xml"
        junit.unlink(missing_ok=True)
        print(f"quicctl test: phase 2 (VM, {vmk.release})", flush=True)
        # Per-test limit: the debug kernel is several times slower than Debian's.
        slow = ["--timeout=2400"] if debug_kernel else []
        # A debug pass that has not shown its checks firing proves nothing: whatever -k
        # selects, the canary runs too (last, see selftests/conftest.py).
        vm_kexpr = f"({kexpr}) or canary" if debug_kernel and kexpr else kexpr
        argv = _pytest_argv(junit, "not host" + only, vm_kexpr, slow + extra)
        try:
            rc = vm.run(argv, vmk, timeout=timeout, unload_check=True, env=env)
        except QuicctlError as exc:
            print(f"quicctl test: {exc}", file=sys.stderr)
            rc = 1
        phases.append(Phase(f"vm {vmk.release}", _phase_rc(rc), _read_junit(junit)))

    report, ok = ktap(phases)
    print(report, flush=True)
    return 0 if ok else 1


def _build(kernel: kbuild.Kernel) -> Path:
    print(f"quicctl test: building quic.ko for {kernel.release}", flush=True)
    ko = kbuild.build(kernel)
    warnings = kbuild.last_warnings(kernel.release)
    if warnings:
        raise QuicctlError(
            f"quic.ko for {kernel.release} builds with W=1 warnings:\n" + "\n".join(warnings)
        )
    return ko


def _build_ss(env: dict[str, str]) -> None:
    """iproute2's ss with QUIC (scripts/build-ss) for test_ss, in QUICCTL_SS.  When it cannot
    be built the suite goes on; the tests that run it fail with the reason (QUICCTL_SS_ERROR)."""
    print("quicctl test: building iproute2's ss with QUIC (scripts/build-ss)", flush=True)
    r = subprocess.run(["bash", str(ROOT / "scripts" / "build-ss")], capture_output=True,
                       text=True)  # fmt: skip
    if r.returncode == 0 and r.stdout.strip():
        env["QUICCTL_SS"] = r.stdout.strip().splitlines()[-1]
        return
    why = (r.stderr.strip().splitlines() or [f"scripts/build-ss: exit {r.returncode}"])[-1]
    env["QUICCTL_SS_ERROR"] = why
    print(f"quicctl test: {why}", file=sys.stderr, flush=True)


def _debug_build_tree() -> Path:
    from quicctl import debugkernel

    return debugkernel.build_tree()


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env
