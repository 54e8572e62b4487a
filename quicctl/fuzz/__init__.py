"""Seeded fuzzers for quic.ko: frames inside validly protected packets (:mod:`.frames`) and
random sequences of socket calls and options (:mod:`.syscalls`).

Both run where the module is loaded (the VM) and return a JSON-able report: iterations,
coverage (every frame type per packet-number space, every SOL_QUIC option), how the kernel
reacted, and ``failures``, each of which names the seed that reproduces it.  A run derives one
seed per connection or worker from its own (:func:`derive`), and prints them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from quicctl.errors import QuicctlError
from quicctl.guest import kmsg

__all__ = ["Deadline", "Progress", "bad_kernel_lines", "derive", "kmsg", "require_module"]

Progress = Callable[[str], None]


def derive(seed: int, *parts: object) -> int:
    """A sub-seed of ``seed`` for one connection or worker: stable across runs and Python
    versions (no ``hash()``), so ``--seed`` reproduces every derived stream."""
    text = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


def require_module() -> None:
    """Fail with one line where quic.ko is not loaded (e.g. on a host without modules)."""
    if not Path("/proc/net/quic/snmp").exists():
        where = "" if os.environ.get("QUICCTL_IN_VM") else " (run it in the VM: drop --host)"
        raise QuicctlError(f"cannot fuzz: quic.ko is not loaded here{where}")


def bad_kernel_lines(mark: str) -> list[str]:
    """BUG/WARNING/Oops/KASAN/... lines the kernel logged since ``mark``: the VM's own scan."""
    from quicctl import guest

    return guest.findings(guest.dmesg_since(mark))


class Deadline:
    """Stop after ``iterations`` or ``seconds``, whichever comes first (either may be None)."""

    def __init__(self, iterations: int | None, seconds: float | None):
        if iterations is None and seconds is None:
            raise QuicctlError("give --iterations or --time (or both)")
        self.iterations = iterations
        self.end = None if seconds is None else time.monotonic() + seconds

    def done(self, count: int) -> bool:
        if self.iterations is not None and count >= self.iterations:
            return True
        return self.end is not None and time.monotonic() >= self.end
