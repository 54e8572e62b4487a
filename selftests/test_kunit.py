"""The module's KUnit tests, on the debug kernel (the one built with KUnit): RFC 9001 and
RFC 9369 packet-protection vectors, packet numbers, key updates, Retry tags, reset tokens and
the received skbs: decrypted in place, stream data queued as clones (suite quic_crypto);
varints, transport parameters and connection IDs (suite quic_tp); RTT estimation, NewReno,
CUBIC, HyStart++, persistent congestion and pacing (suite quic_cong); the ClientHello ALPN
parser of listener demultiplexing against malformed input (suite quic_demux).

quic_unit_test.ko is built only for kernels with CONFIG_KUNIT; `quicctl test --debug-kernel`
snapshots it next to quic.ko and names it in QUICCTL_KUNIT_MODULE.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import run

pytestmark = pytest.mark.debug_kernel

# Each suite and the fewest cases it has.
SUITES = {"quic_crypto": 10, "quic_tp": 10, "quic_cong": 10, "quic_demux": 7}
KUNIT_DEBUGFS = Path("/sys/kernel/debug/kunit")
RESULT = re.compile(r"^\s*(ok|not ok) \d+ (\S+)(.*)$")


def _unit_module() -> Path:
    env = os.environ.get("QUICCTL_KUNIT_MODULE")
    if not env or not Path(env).is_file():
        pytest.fail(
            f"quic_unit_test.ko is missing ({env or 'QUICCTL_KUNIT_MODULE unset'}): "
            "run `quicctl test --debug-kernel`, which builds it"
        )
    return Path(env)


def _results(suite: str) -> list[tuple[str, str, str]]:
    text = (KUNIT_DEBUGFS / suite / "results").read_text()
    out = []
    for line in text.splitlines():
        m = RESULT.match(line)
        if m and m.group(2) != suite:
            out.append((m.group(1), m.group(2), m.group(3).strip()))
    return out


def test_kunit_suites_pass(quic_module):
    ko = _unit_module()
    assert KUNIT_DEBUGFS.is_dir(), f"{KUNIT_DEBUGFS} is missing: this kernel has no KUnit"
    run(["insmod", str(ko)])  # runs both suites before returning
    try:
        for suite, least in SUITES.items():
            results = _results(suite)
            assert len(results) >= least, f"KUnit suite {suite}: only {len(results)} cases ran"
            failed = [f"{name} {rest}" for status, name, rest in results if status != "ok"]
            skipped = [name for _, name, rest in results if "# SKIP" in rest]
            assert not failed, (
                f"KUnit suite {suite}: failed cases: {failed}\n"
                + (KUNIT_DEBUGFS / suite / "results").read_text()[-4000:]
            )
            assert not skipped, f"KUnit suite {suite}: skipped cases: {skipped}"
    finally:
        run(["rmmod", "quic_unit_test"])
