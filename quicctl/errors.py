"""The exceptions of quicctl: one base the CLI prints as one line, and the library's kinds.

``QuicctlError`` is any error a user can act on; the CLI prints ``quicctl: <message>`` to stderr
and exits 1 (traceback only with --debug).  ``QuicError`` is what the library raises for QUIC
connections (:func:`quicctl.connect`, :class:`quicctl.QuicServer`, the socket wrappers of
:mod:`quicctl.connection` and the TLS engine of :mod:`quicctl.tls`)::

    QuicctlError
    └── QuicError                     .errno (or None)
        ├── NotLoadedError            socket(IPPROTO_QUIC) refused: quic.ko is not loaded (OSError)
        ├── AddressError              a host that does not resolve, a port out of 0..65535
        ├── HandshakeError            .alert, .alert_name: the TLS alert when there is one
        │   ├── TlsError              the TLS engine's own failure (quicctl.tls)
        │   └── HandshakeTimeoutError no answer within the handshake's timeout (also below)
        ├── PeerClosedError           .error_code, .frame, .reason (ConnectionError)
        ├── QuicTimeoutError          no answer in time: handshake or socket timeout (TimeoutError)
        └── QuicSocketError           any other failed socket call, with its errno (OSError)

The kinds that wrap a system error also derive from the matching built-in (OSError,
ConnectionError, TimeoutError), so ``except OSError`` and ``exc.errno`` keep working.  Each
message is one line naming the object and the likely cause.
"""

from __future__ import annotations

import errno as _errno
import os


class QuicctlError(Exception):
    """An error a user can act on: says what failed, on what, and the likely cause.

    The CLI prints ``quicctl: <message>`` to stderr and exits 1 (traceback only with --debug).
    """


class QuicError(QuicctlError):
    """A QUIC connection or socket failed; ``errno`` is the system error behind it, if any."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        # OSError subclasses take (errno, strerror) to set .errno and .strerror; str() is the
        # message either way.
        super().__init__(*((errno, os.strerror(errno)) if errno is not None else (message,)))
        self.message = message
        self.errno = errno

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # picklable (multiprocessing, the fuzzers' workers)
        return _rebuild, (type(self), self.message, self.errno, self.__dict__)


def _rebuild(cls: type, message: str, err: int | None, state: dict) -> QuicError:
    exc = cls.__new__(cls)
    QuicError.__init__(exc, message, errno=err)
    exc.__dict__.update(state)
    return exc


class NotLoadedError(QuicError, OSError):
    """The kernel has no QUIC: socket(..., IPPROTO_QUIC) failed with EPROTONOSUPPORT."""


class AddressError(QuicError):
    """The address cannot be used: a host that does not resolve, a port out of 0..65535."""


class HandshakeError(QuicError):
    """The handshake failed: the message names the TLS alert, the peer's close or the errno.

    ``alert`` is the TLS alert number (RFC 8446 Section 6) when TLS failed, ``alert_name`` its
    name (``"bad_certificate"``); ``error_code`` the QUIC error code of the close."""

    def __init__(self, message: str, *, alert: int | None = None, error_code: int | None = None,
                 errno: int | None = None) -> None:  # fmt: skip
        super().__init__(message, errno=errno)
        self.alert = alert
        self.error_code = error_code

    @property
    def alert_name(self) -> str | None:
        if self.alert is None:
            return None
        from quicctl.tls import ALERTS

        return ALERTS.get(self.alert, f"alert {self.alert}")


class PeerClosedError(QuicError, ConnectionError):
    """The peer (or the kernel, at the idle timeout) closed the connection.

    ``error_code`` is the QUIC error code of its CONNECTION_CLOSE, ``frame`` the frame type it
    names (0 for an application close), ``reason`` its reason phrase."""

    def __init__(self, message: str, *, error_code: int, frame: int = 0, reason: str = "",
                 errno: int | None = None) -> None:  # fmt: skip
        super().__init__(message, errno=errno)
        self.error_code = error_code
        self.frame = frame
        self.reason = reason

    @property
    def clean(self) -> bool:
        """A close without an error (NO_ERROR, application code 0): the normal end."""
        return self.error_code == 0


class QuicTimeoutError(QuicError, TimeoutError):
    """No answer in time: the handshake's deadline, or a socket timeout set by the caller."""


class HandshakeTimeoutError(HandshakeError, QuicTimeoutError):
    """The handshake got no answer in time: both a failed handshake and a timeout."""


class QuicSocketError(QuicError, OSError):
    """A socket call on a QUIC socket failed; ``errno`` says why."""


# errno values meaning "this kernel has no QUIC sockets".
NOT_LOADED_ERRNOS = frozenset({_errno.EPROTONOSUPPORT, _errno.ESOCKTNOSUPPORT, _errno.EAFNOSUPPORT})
# Names the socket man pages use where Python's errno table picks an alias.
_ERRNAMES = {_errno.EOPNOTSUPP: "EOPNOTSUPP", _errno.EDEADLK: "EDEADLK"}


def errno_name(err: int) -> str:
    """95 -> ``"EOPNOTSUPP"``."""
    return _ERRNAMES.get(err) or _errno.errorcode.get(err, f"errno {err}")


def not_loaded(err: int, what: str = "cannot create a QUIC socket") -> NotLoadedError:
    """The error for socket(IPPROTO_QUIC) refused with ``err``: says how to load quic.ko."""
    return NotLoadedError(
        f"{what}: {os.strerror(err)}: the quic module is not loaded (`quicctl load` as root, "
        "or `modprobe quic` where it is installed; where modules cannot load, `quicctl vm`, or "
        "--userspace for aioquic)",
        errno=err,
    )


def from_oserror(exc: OSError, what: str) -> QuicError:
    """The QuicError kind for a failed socket call ``what`` ("send on stream 4"): a timeout,
    or the call's errno named."""
    if isinstance(exc, QuicError):
        return exc
    if isinstance(exc, TimeoutError) or exc.errno == _errno.ETIMEDOUT:
        return QuicTimeoutError(f"{what}: timed out", errno=exc.errno)
    if exc.errno is None:
        return QuicSocketError(f"{what}: {exc}")
    return QuicSocketError(
        f"{what}: {errno_name(exc.errno)} ({os.strerror(exc.errno)})", errno=exc.errno
    )
