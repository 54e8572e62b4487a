"""`quicctl bench`: kernel QUIC next to TCP, kTLS, aioquic and ngtcp2 on one veth path.

:mod:`quicctl.bench.run` runs the measurements (in a VM, or here when modules load);
``datapath.c`` is the C data path of the kernel transports; :mod:`quicctl.bench.aioq` the
aioquic endpoints; :mod:`quicctl.bench.ktls` the TLS 1.3 handshake that feeds kTLS.  This module
holds only what they share, so the aioquic processes import little.
"""

from __future__ import annotations

PERIOD = 251  # the data pattern's period (as in datapath.c): byte i of a transfer is i % 251
ALPN = "quicctl-bench"
SERVER_NAME = "server.quic.test"  # in keys/cert.crt
PATTERN = bytes(i % PERIOD for i in range(PERIOD + (64 << 10)))


def pattern(offset: int, length: int) -> memoryview:
    """``length`` (at most 64 KiB) pattern bytes starting at stream offset ``offset``."""
    start = offset % PERIOD
    return memoryview(PATTERN)[start : start + length]


def matches(offset: int, data: bytes) -> bool:
    """Whether ``data`` is the pattern at stream offset ``offset``."""
    view = memoryview(data)
    for i in range(0, len(view), 64 << 10):
        piece = view[i : i + (64 << 10)]
        if piece != pattern(offset + i, len(piece)):
            return False
    return True


def cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine (/proc/stat: user+nice+system+irq+softirq)."""
    import os

    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
