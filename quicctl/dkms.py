"""Install quic.ko through DKMS so it is rebuilt for every kernel the machine installs.

``kernel/`` is copied to ``/usr/src/quic-<version>/`` (``dkms.conf`` at its top), then
``dkms add``, ``dkms build`` and ``dkms install`` run for one kernel release.  Everything is
idempotent: installing the same version again unbuilds, rebuilds and reinstalls it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from quicctl import kbuild, paths
from quicctl.errors import QuicctlError

NAME = "quic"
USR_SRC = Path("/usr/src")
DKMS_TREE = Path("/var/lib/dkms")
DKMS = "dkms"
DEB_PACKAGE = "quic-dkms"  # `quicctl package deb` (quicctl.deb)

# dkms 3: "quic/0.1.0, 6.12.1-amd64, x86_64: installed (note)"; dkms 2: "quic, 0.1.0, ...";
# added only: "quic/0.1.0: added".
_STATUS_RE = re.compile(
    r"^(?P<module>[^/,\s]+)[/,]\s*(?P<version>[^,:\s]+)"
    r"(?:,\s*(?P<kernel>[^,:\s]+))?(?:,\s*(?P<arch>[^,:\s]+))?"
    r":\s*(?P<state>\w+)(?:\s*\((?P<note>.*)\))?"
)


def _dkms(action: str) -> str:
    found = shutil.which(DKMS)
    if found is None:
        raise QuicctlError(f"cannot {action}: dkms is not installed (apt-get install dkms)")
    return found


def _require_root(action: str, command: str) -> None:
    if os.geteuid() != 0:
        raise QuicctlError(f"cannot {action}: run as root (sudo quicctl dkms {command})")


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace"
    )


def _last_lines(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines[-n:]) if lines else "no output"


def deb_installed() -> str | None:
    """The version of the quic-dkms package when dpkg has it unpacked or installed."""
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        return None
    proc = _run([dpkg_query, "-W", "-f=${Status}\t${Version}", DEB_PACKAGE])
    status, _, version = proc.stdout.partition("\t")
    if proc.returncode != 0 or status.split()[-1:] in (["not-installed"], ["config-files"]):
        return None
    return version or "?"


def _refuse_if_packaged(action: str) -> None:
    version = deb_installed()
    if version is not None:
        raise QuicctlError(
            f"cannot {action}: the {DEB_PACKAGE} package ({version}) owns quic in DKMS and "
            f"{USR_SRC}/{NAME}-{version}; remove it first (dpkg -r {DEB_PACKAGE})"
        )


def source_dir(version: str) -> Path:
    return USR_SRC / f"{NAME}-{version}"


def status() -> list[dict]:
    """``dkms status quic`` as a list of {module, version, kernel, arch, state, note}."""
    dkms = _dkms("query DKMS")
    proc = _run([dkms, "status", NAME])
    if proc.returncode != 0:
        raise QuicctlError(f"dkms status {NAME} failed: {_last_lines(proc.stderr)}")
    entries = []
    for line in proc.stdout.splitlines():
        m = _STATUS_RE.match(line.strip())
        if m and m["module"] == NAME:
            entries.append(
                {k: m[k] for k in ("module", "version", "kernel", "arch", "state", "note")}
            )
    return entries


def _added(version: str) -> bool:
    return (DKMS_TREE / NAME / version / "source").exists()


def _built(version: str, release: str) -> bool:
    """Built (or installed) for ``release``: dkms keeps ``<version>/<release>/`` then."""
    return (DKMS_TREE / NAME / version / release).is_dir()


def _build_failure(version: str, release: str, proc: subprocess.CompletedProcess) -> QuicctlError:
    log = DKMS_TREE / NAME / version / "build" / "make.log"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return QuicctlError(
            f"dkms build of quic/{version} for {release} failed: "
            f"{_last_lines(proc.stderr or proc.stdout)}"
        )
    excerpt = "\n".join("  " + ln for ln in kbuild.error_excerpt(lines))
    return QuicctlError(
        f"dkms build of quic/{version} for {release} failed; from {log}:\n{excerpt}"
    )


def install(release: str | None = None, *, on_step: Callable[[str], None] | None = None) -> dict:
    """Install quic.ko through DKMS for ``release`` (default: as kbuild.resolve_kernel).

    ``on_step`` hears about each dkms step once the checks have passed.
    """
    step = on_step or (lambda _msg: None)
    dkms = _dkms("install quic with DKMS")
    _require_root("install quic with DKMS", "install")
    _refuse_if_packaged("install quic with DKMS from the checkout")
    kernel = kbuild.resolve_kernel(release)
    if kernel.build_dir != kbuild.LIB_MODULES / kernel.release / "build":
        raise QuicctlError(
            f"cannot install quic with DKMS for {kernel.build_dir}: DKMS builds against "
            f"{kbuild.LIB_MODULES}/<release>/build only; use `quicctl build --kernel "
            f"{kernel.build_dir}` for a private kernel tree"
        )
    version = kbuild.module_version()
    src = source_dir(version)
    try:
        kbuild.sync_tree(paths.KERNEL_SRC, src)
    except OSError as exc:
        raise QuicctlError(
            f"cannot copy the module sources to {src}: {exc.strerror or exc}"
        ) from None
    if not (src / "dkms.conf").is_file():
        raise QuicctlError(f"cannot install quic with DKMS: no dkms.conf at the top of {src}")

    ref = f"{NAME}/{version}"
    if not _added(version):
        step(f"dkms add {ref}")
        proc = _run([dkms, "add", ref])
        if proc.returncode != 0 and not _added(version):
            raise QuicctlError(f"dkms add {ref} failed: {_last_lines(proc.stderr or proc.stdout)}")
    # Reinstalling the same version: `dkms unbuild` uninstalls, then drops the build.  (dkms
    # 3.0's `build --force` drops the build but leaves the installed .ko and its kernel-*
    # symlink behind, so a failed rebuild would keep the old module installed, untracked.)
    if _built(version, kernel.release):
        step(f"dkms unbuild {ref} -k {kernel.release}")
        proc = _run([dkms, "unbuild", ref, "-k", kernel.release])
        if proc.returncode != 0:
            raise QuicctlError(
                f"dkms unbuild {ref} for {kernel.release} failed: "
                f"{_last_lines(proc.stderr or proc.stdout)}"
            )
    if _built(version, kernel.release):
        # dkms left it: it no longer counts it as a build because dkms.conf now lists more
        # modules than were built then (quic_sample.ko came later).  Ours alone: drop it.
        step(f"removing the stale dkms build {DKMS_TREE / NAME / version / kernel.release}")
        shutil.rmtree(DKMS_TREE / NAME / version / kernel.release)
    step(f"dkms build {ref} -k {kernel.release}")
    proc = _run([dkms, "build", ref, "-k", kernel.release])
    if proc.returncode != 0:
        raise _build_failure(version, kernel.release, proc)
    step(f"dkms install {ref} -k {kernel.release}")
    proc = _run([dkms, "install", ref, "-k", kernel.release, "--force"])
    if proc.returncode != 0:
        raise QuicctlError(
            f"dkms install {ref} for {kernel.release} failed: "
            f"{_last_lines(proc.stderr or proc.stdout)}"
        )
    return {"version": version, "kernel": kernel.release, "source": str(src)}


def remove() -> list[str]:
    """Remove every quic version from DKMS and its /usr/src copy; returns the versions removed."""
    dkms = _dkms("remove quic from DKMS")
    _require_root("remove quic from DKMS", "remove")
    _refuse_if_packaged("remove quic from DKMS")
    registered = {e["version"] for e in status()}
    versions = set(registered)
    try:
        versions.add(kbuild.module_version())
    except QuicctlError:
        pass  # no dkms.conf in the checkout: remove what DKMS knows about
    removed = []
    for version in sorted(versions, key=kbuild.version_key):
        if version in registered or _added(version):
            proc = _run([dkms, "remove", f"{NAME}/{version}", "--all"])
            if proc.returncode != 0 and _added(version):
                raise QuicctlError(
                    f"dkms remove {NAME}/{version} failed: "
                    f"{_last_lines(proc.stderr or proc.stdout)}"
                )
            removed.append(version)
        src = source_dir(version)
        if src.is_dir():
            shutil.rmtree(src)
            if version not in removed:
                removed.append(version)
    try:
        (DKMS_TREE / NAME).rmdir()  # only once empty
    except OSError:
        pass
    return removed
