"""Where things live: the project tree, the build output, the cache.

In a checkout the kernel sources and keys are the tree's own (``kernel/``, ``keys/`` beside the
package).  An installed wheel carries copies of them as package data in ``quicctl/_data``
(setup.py's build step), and builds into the cache instead of the tree.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
# A checkout: the module sources sit beside the package.
IN_CHECKOUT = (ROOT / "kernel" / "net" / "quic").is_dir()
DATA = ROOT if IN_CHECKOUT else PACKAGE / "_data"
KERNEL_SRC = DATA / "kernel"
MODULE_SRC = KERNEL_SRC / "net" / "quic"
UAPI_HEADER = KERNEL_SRC / "include" / "uapi" / "linux" / "quic.h"
KEYS = DATA / "keys"
CACHE_DIR = Path(os.environ.get("QUICCTL_CACHE", Path.home() / ".cache" / "quicctl"))
BUILD_DIR = Path(
    os.environ.get("QUICCTL_BUILD_DIR", ROOT / "build" if IN_CHECKOUT else CACHE_DIR / "build")
)
SELFTESTS = ROOT / "selftests"
SHARED = ROOT.parent / "shared"
