"""The debug pass proves that its checks fire: quic_canary.ko (selftests/canary/) makes the
debug kernel report on purpose, and the reports must be caught by the same kernel log scan
that judges every other test and the whole VM run (quicctl.guest.findings).

A debug kernel that checks nothing looks exactly like one whose tests are clean: booted
without `no5lvl`, this kernel once tainted itself at boot with an unrelated KASAN report,
which turned lockdep off and used up KASAN's single report, and every run "passed".

The canary is only meaningful on the debug kernel: it is marked `debug_kernel` (a normal run
deselects it) and `canary` (`quicctl test --debug-kernel` selects it whatever -k says, and
conftest runs it after every other test: a lockdep report turns lockdep off for the rest of
the boot).  Each trigger's lines are logged between guest.CANARY_EXPECT and
guest.CANARY_CAUGHT marks; the test writes the second only once the scan has reported exactly
what it fired, and the scan then passes over them (this test's own dmesg check, the run's).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from conftest import run

DEBUGFS = Path("/sys/kernel/debug/quic_canary")

# What each trigger must make the scan report, and all it may: (pattern, how many).
EXPECTED = {
    # lockdep first: its report turns lockdep off, a KASAN report's taint would too.
    "lockdep_abba": [
        (r"WARNING: possible circular locking dependency detected", 1),
    ],
    # Fired twice: the second report shows that kasan_multi_shot is in effect (KASAN
    # reports once per boot without it).
    "kasan_oob_read": [
        (r"BUG: KASAN: slab-out-of-bounds in quic_canary_oob_read", 2),
        # The report's taint turns lockdep off, when the lockdep canary has not already.
        (r"Disabling lock debugging due to kernel taint", None),
    ],
}
FIRES = {"lockdep_abba": 1, "kasan_oob_read": 2}


def _canary_module() -> Path:
    env = os.environ.get("QUICCTL_CANARY_MODULE")
    if not env or not Path(env).is_file():
        pytest.fail(
            f"quic_canary.ko is missing ({env or 'QUICCTL_CANARY_MODULE unset'}): "
            "run `quicctl test --debug-kernel`, which builds it"
        )
    return Path(env)


@pytest.fixture(scope="module")
def canary():
    run(["insmod", str(_canary_module())])
    try:
        yield DEBUGFS
    finally:
        run(["rmmod", "quic_canary"])


def _scan(trigger: str, timeout: float = 30) -> list[str]:
    """What the scan finds since ``trigger``'s expect mark, once the expected reports are
    all there (a report is printed while the trigger runs; give the log a moment)."""
    from quicctl import guest

    deadline = time.monotonic() + timeout
    while True:
        found = guest.findings(guest.dmesg_since(guest.CANARY_EXPECT + trigger))
        done = all(
            sum(bool(re.search(pat, ln)) for ln in found) >= n
            for pat, n in EXPECTED[trigger]
            if n is not None
        )
        if done or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.debug_kernel
@pytest.mark.canary
@pytest.mark.parametrize("trigger", list(EXPECTED))
def test_canary_is_caught(canary, trigger):
    from quicctl import guest

    if trigger == "lockdep_abba":
        assert guest.debug_locks() == 1, "lockdep is off before the lockdep canary fires"
    start = f"quicctl-canary: test of {trigger}"
    guest.kmsg(start)
    guest.kmsg(guest.CANARY_EXPECT + trigger)
    for _ in range(FIRES[trigger]):
        (canary / trigger).write_text("1\n")
    found = _scan(trigger)
    for pat, n in EXPECTED[trigger]:
        hits = [ln for ln in found if re.search(pat, ln)]
        if n is not None:
            assert len(hits) == n, (
                f"{trigger}: the kernel log scan found {len(hits)} of {n} '{pat}' "
                "(the debug kernel's check did not fire, or the scan missed it):\n"
                + "\n".join(guest.dmesg_since(guest.CANARY_EXPECT + trigger)[-80:])
            )
    other = [ln for ln in found if not any(re.search(pat, ln) for pat, _ in EXPECTED[trigger])]
    assert not other, f"{trigger}: the scan found more than the canary's report:\n" + "\n".join(
        other
    )
    if trigger == "lockdep_abba":
        assert guest.debug_locks() == 0, "lockdep reported but did not turn itself off"
    # Caught: the scan (this test's dmesg check, the run's) passes over these lines from now.
    guest.kmsg(guest.CANARY_CAUGHT + trigger)
    assert not guest.findings(guest.dmesg_since(start))


@pytest.mark.host
def test_scan_passes_over_caught_canary_windows_only():
    """The scan's bookkeeping, on made-up logs: a caught window's reports no longer count; an
    open one's do, and so does what comes after it or outside it."""
    from quicctl.guest import CANARY_CAUGHT, CANARY_EXPECT, findings

    kasan = "[9.1] BUG: KASAN: slab-out-of-bounds in quic_canary_oob_read+0x4f/0x90"
    warn = "[9.5] WARNING: CPU: 1 PID: 7 at net/quic/stream.c:10 quic_stream_free"
    off = "[9.6] Disabling lock debugging due to kernel taint"
    begin, caught = f"[9.0] {CANARY_EXPECT}kasan_oob_read", f"[9.2] {CANARY_CAUGHT}kasan_oob_read"
    assert findings([begin, kasan, caught]) == []
    assert findings([begin, kasan, caught, warn]) == [warn]
    assert findings([warn, begin, kasan, caught]) == [warn]
    assert findings([begin, kasan]) == [kasan]  # not caught: it counts
    assert findings([begin, kasan, f"[9.2] {CANARY_CAUGHT}lockdep_abba"]) == [kasan]
    assert findings([off]) == [off]
    assert findings([f"[9.0] {CANARY_EXPECT}lockdep_abba", begin, kasan, caught]) == []
