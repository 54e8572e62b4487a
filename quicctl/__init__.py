"""quicctl: build, load, debug, demonstrate, benchmark and test the QUIC kernel module.

``quicctl.connect()`` and ``quicctl.QuicServer`` give QUIC connections carried by the kernel
(see :mod:`quicctl.connection`); they are imported on first use to keep ``import quicctl`` light.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {"connect", "QuicServer", "QuicConnection", "HandshakeError"}


def __getattr__(name: str):
    if name in _LAZY:
        from quicctl import connection

        return getattr(connection, name)
    raise AttributeError(f"module 'quicctl' has no attribute {name!r}")
