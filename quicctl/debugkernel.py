"""The KASAN/lockdep/kmemleak debug kernel shipped in ../shared/debug-kernel.

It is unpacked once into the cache directory; `kernel()` gives its release, image and module
build tree so `quicctl build` and `quicctl vm` can use it like a packaged kernel.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from quicctl.errors import QuicctlError
from quicctl.paths import CACHE_DIR, SHARED

TARBALL_DIR = Path(os.environ.get("QUICCTL_DEBUG_KERNEL_DIR", SHARED / "debug-kernel"))

# Kernel command line the debug kernel must boot with, or it checks neither KASAN nor lockdep.
# QEMU's TCG CPU offers 5-level paging, and with it this kernel prints a KASAN report 0.05 s
# into every boot (wild-memory-access in do_raw_spin_lock, an early interrupt, not quic.ko):
# that report taints the kernel, which turns lockdep off, and uses up KASAN's one report, so
# every later one is suppressed.  `no5lvl` avoids the early report; `kasan_multi_shot` keeps
# KASAN reporting after a first report (the canary test makes several).
CMDLINE = ("no5lvl", "kasan_multi_shot")


def _tarball() -> Path:
    found = sorted(TARBALL_DIR.glob("quicdbg-*.tar.xz"))
    if not found:
        raise QuicctlError(
            f"no debug kernel tarball (quicdbg-*.tar.xz) in {TARBALL_DIR}: "
            "is ../shared/debug-kernel beside the work tree? (set QUICCTL_DEBUG_KERNEL_DIR)"
        )
    return found[-1]


def unpack() -> Path:
    """Unpack the tarball once (keyed by its size and mtime); returns the directory."""
    tar = _tarball()
    st = tar.stat()
    key = hashlib.sha256(f"{tar.name}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    dest = CACHE_DIR / "debug-kernel" / f"{tar.name.removesuffix('.tar.xz')}-{key}"
    if (dest / ".unpacked").exists():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        subprocess.run(["tar", "-xJf", str(tar), "-C", str(tmp)], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        raise QuicctlError(
            f"cannot unpack {tar}: {exc.stderr.decode(errors='replace').strip()}"
        ) from exc
    (tmp / ".unpacked").touch()
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def build_tree() -> Path:
    return unpack() / "build"


def image() -> Path:
    return unpack() / "bzImage"


def release() -> str:
    return (build_tree() / "include" / "config" / "kernel.release").read_text().strip()
