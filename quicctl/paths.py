"""Where things live: the project tree, the build output, the cache."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNEL_SRC = ROOT / "kernel"
MODULE_SRC = KERNEL_SRC / "net" / "quic"
UAPI_HEADER = KERNEL_SRC / "include" / "uapi" / "linux" / "quic.h"
BUILD_DIR = Path(os.environ.get("QUICCTL_BUILD_DIR", ROOT / "build"))
SELFTESTS = ROOT / "selftests"
KEYS = ROOT / "keys"
CACHE_DIR = Path(os.environ.get("QUICCTL_CACHE", Path.home() / ".cache" / "quicctl"))
SHARED = ROOT.parent / "shared"
