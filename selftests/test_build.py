"""Host checks on the module sources: W=1 builds against every supported kernel, checkpatch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKPATCH = ROOT.parent / "shared" / "tools" / "checkpatch.sh"
# Debian's generic 6.12 headers (the VM kernel) and 6.1 headers (bookworm's own kernel).
SUPPORTED = ("6.12.", "6.1.0-")


def _releases() -> list[str]:
    from quicctl import kbuild

    found = [
        r
        for r in kbuild.installed_releases()
        if r.startswith(SUPPORTED) and r.endswith("-amd64") and "-rt-" not in r and "cloud" not in r
    ]
    return found


@pytest.mark.host
@pytest.mark.parametrize("series", SUPPORTED)
def test_builds_without_warnings(series):
    from quicctl import kbuild

    rels = [r for r in _releases() if r.startswith(series)]
    assert rels, f"no Debian {series}x headers installed: run scripts/setup"
    for rel in rels:
        ko = kbuild.build(kbuild.resolve_kernel(rel))
        assert ko.is_file()
        assert kbuild.last_warnings(rel) == [], f"W=1 warnings for {rel}"
        assert kbuild.vermagic_release(ko) == rel


# TRACE_EVENT()'s layout (TP_PROTO( / TP_STRUCT__entry( on lines of their own, fields aligned
# in columns) is what checkpatch's --strict CHECKs flag; every include/trace/events/*.h does the
# same.  Only these two CHECKs, only in trace.h.
_TRACE_LAYOUT = ("CHECK:OPEN_ENDED_LINE", "CHECK:PARENTHESIS_ALIGNMENT")


def _trace_layout(line: str) -> bool:
    return line.startswith("kernel/net/quic/trace.h:") and any(t in line for t in _TRACE_LAYOUT)


@pytest.mark.host
def test_checkpatch_strict_clean():
    assert CHECKPATCH.exists(), f"{CHECKPATCH} missing (is ../shared beside the work tree?)"
    files = subprocess.run(
        ["git", "ls-files", "kernel/*.c", "kernel/*.h"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert files
    r = subprocess.run([str(CHECKPATCH), *files], cwd=ROOT, capture_output=True, text=True)
    findings = [
        ln
        for ln in r.stdout.splitlines()
        if any(t in ln for t in ("ERROR:", "WARNING:", "CHECK:")) and not _trace_layout(ln)
    ]
    assert not findings, "checkpatch --strict:\n" + "\n".join(findings[:40])
