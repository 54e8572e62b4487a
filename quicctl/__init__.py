"""quicctl: QUIC connections over the in-kernel QUIC module, and the tools around the module.

``quicctl.connect()`` and ``quicctl.QuicServer`` give QUIC connections carried by the kernel
(see :mod:`quicctl.connection`); they are imported on first use to keep ``import quicctl`` light.
Every failure is a :class:`QuicError` kind (:mod:`quicctl.errors`)::

    import quicctl
    try:
        conn = quicctl.connect("127.0.0.1", 4433, alpn="hq-interop", cafile="ca.crt")
    except quicctl.NotLoadedError as exc:    # quic.ko is not loaded: the message says how
        ...
    except quicctl.QuicError as exc:         # HandshakeError, PeerClosedError, QuicTimeoutError...
        ...

The package has three layers.  ``pip install quicctl`` installs the library and what the
applications need (cffi, aioquic); ``pip install 'quicctl[cli]'`` adds the command line, the VM
and test tooling (click, rich, pyroute2, virtme-ng).  No library module imports those.

* library: ``quicctl`` (connect, QuicServer, the errors), ``errors``, ``abi`` (the UAPI
  header's structs, constants and typed socket options, pre-generated in ``_uapi``),
  ``connection``, ``tls`` (TLS 1.3 through gnutls), ``keyring`` (PSKs for kernel services),
  ``paths``;
* applications on the library: ``hq`` and ``h3`` (hq-interop and HTTP/3 servers and clients),
  ``userspace`` (the same over aioquic, for hosts without quic.ko), ``agent`` (the
  net/handshake agent), ``demo``, ``bench``;
* tools for the module (build, load, test; most need the ``cli`` extra and a checkout):
  ``kbuild``, ``kmod``, ``dkms``, ``kservice``, ``vm``, ``guest``, ``testrun``, ``netns``,
  ``debugkernel``, ``fuzz``, and ``cli`` (the ``quicctl`` command).

An installed wheel carries the kernel sources, the UAPI header and the test keys as package
data (``quicctl/_data``), so ``quicctl build``, ``load`` and ``dkms`` work from it; ``quicctl
test``, ``vm``, ``fuzz`` and the VM side of ``demo`` and ``bench`` need a source checkout.
"""

from __future__ import annotations

from quicctl.errors import (
    AddressError,
    HandshakeError,
    HandshakeTimeoutError,
    NotLoadedError,
    PeerClosedError,
    QuicctlError,
    QuicError,
    QuicSocketError,
    QuicTimeoutError,
)

__version__ = "0.1.0"
__all__ = [
    "AddressError",
    "HandshakeError",
    "HandshakeTimeoutError",
    "NotLoadedError",
    "PeerClosedError",
    "QuicConnection",
    "QuicError",
    "QuicServer",
    "QuicSocketError",
    "QuicTimeoutError",
    "QuicctlError",
    "connect",
]

_LAZY = {"connect", "QuicServer", "QuicConnection"}


def __getattr__(name: str):
    if name in _LAZY:
        from quicctl import connection

        return getattr(connection, name)
    raise AttributeError(f"module 'quicctl' has no attribute {name!r}")
