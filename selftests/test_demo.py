"""The README's main job, `quicctl demo`, end to end in the VM: a file over quic.ko and over TCP
between two namespaces, each checked by SHA-256, with the throughput of each printed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conftest import run

SIZE = 4 * 1000 * 1000


def test_demo_end_to_end(quic_module, capsys):
    quicctl = str(Path(sys.executable).parent / "quicctl")
    r = run([quicctl, "demo", "--size", str(SIZE), "--no-load"], timeout=900)
    rows = dict(re.findall(r"^(quic|tcp)\s+(\d+ bytes\s+[\d.]+ Mbit/s\s+hash ok)$", r.stdout, re.M))
    assert set(rows) == {"quic", "tcp"}, r.stdout
    assert all(row.startswith(f"{SIZE} bytes") for row in rows.values()), rows
    assert "srcversion" in r.stdout and "sha256" in r.stdout, r.stdout
    with capsys.disabled():
        print(f"\n  demo: quic {rows['quic']}; tcp {rows['tcp']}")
