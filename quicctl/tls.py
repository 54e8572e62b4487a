"""TLS 1.3 for QUIC (RFC 9001) through gnutls, with no socket inside.

:class:`QuicTls` moves handshake bytes, secrets and the quic_transport_parameters extension
between gnutls (>= 3.7, its QUIC hooks, through cffi in ABI mode) and whoever drives the kernel
socket (see linux-quic-abi.md section 5)::

    tls = QuicTls(server=False, alpns=["h3"], server_name="localhost", cafile="keys/ca.crt")
    tls.set_local_transport_params(getsockopt(TRANSPORT_PARAM_EXT))
    while not tls.handshake_complete:
        for ev in tls.step():
            ...                                 # Send / Secret / PeerTransportParams / Done
        level, data = recvmsg(...)              # CRYPTO bytes and their level
        tls.feed(level, data)

Events come out of :meth:`QuicTls.step` in the order gnutls produces them, which is the order
the kernel needs them (Send events at the same level next to each other are merged):

client, full handshake::

    Send(INITIAL, ClientHello)
    -- feed ServerHello (INITIAL) and EncryptedExtensions..Finished (HANDSHAKE) --
    Secret(HANDSHAKE, send) Secret(HANDSHAKE, recv)
    PeerTransportParams            (from EncryptedExtensions: before the APP secrets, 5.1 step 9)
    Send(HANDSHAKE, client Finished [with Certificate/CertificateVerify first if requested])
    Secret(APP, send) Secret(APP, recv)
    HandshakeDone

server::

    -- feed ClientHello (INITIAL) --
    PeerTransportParams            (on_peer_transport_params runs here, before ours are sent)
    Secret(HANDSHAKE, send) Secret(HANDSHAKE, recv)
    Send(INITIAL, ServerHello)
    Send(HANDSHAKE, EncryptedExtensions Certificate CertificateVerify Finished)
    Secret(APP, send)
    [Send(APP, NewSessionTicket x2)      (only with ticket_key)]
    -- feed client Finished (HANDSHAKE) --
    Secret(APP, recv)              (only once the client's Finished is verified: 5.2 step 11)
    HandshakeDone

(On a resumed handshake there is no Certificate/CertificateVerify, and the server's tickets
come after Secret(APP, recv).  After a HelloRetryRequest the client sends a second
ClientHello; PeerTransportParams is still given once.)

The client sends its Finished before it installs the APP keys; the kernel accepts that (the
HANDSHAKE send key is installed).  Levels are the kernel's ``QUIC_CRYPTO_*`` numbers and cipher
types its ``TLS_CIPHER_*`` numbers (checked against quicctl.abi by the selftests).

On the server the client's transport parameters arrive in the same gnutls call that writes our
EncryptedExtensions, so the kernel's "set the peer's, then get ours" order (5.2 steps 6-7) goes
through the synchronous ``on_peer_transport_params(peer) -> ours`` callback.

Failures raise :class:`TlsError`: ``.alert`` is the TLS alert we would send (close the connection
with ``.error_code`` = 0x100 + alert).  A peer's CONNECTION_CLOSE carrying a CRYPTO_ERROR becomes a
TlsError through :meth:`QuicTls.peer_alert`.

Secrets are Python ``bytes`` and cannot be wiped; drop the events once the kernel has them.

gnutls 3.7.9 behaviour this relies on or works around: gnutls_handshake_write() buffers partial
messages (we still frame them ourselves); the secret hook gives both directions of a level in
one call, the server's APP read secret only after the client Finished; calling
gnutls_handshake() after completion sends a KeyUpdate (so we never do); alerts are not sent
by themselves (we compute the alert); mandatory ALPN does not fail when the peer offers or
selects none (we check); the hostname given to gnutls_session_set_verify_cert() is not copied.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from quicctl.errors import HandshakeError, QuicError

# QUIC_CRYPTO_* (include/uapi/linux/quic.h) and TLS_CIPHER_* (<linux/tls.h>).  Written here so
# that importing this module needs neither a compiler nor the kernel tree; the selftests compare
# them with quicctl.abi, which reads the headers.
APP, INITIAL, HANDSHAKE, EARLY = 0, 1, 2, 3
TLS_CIPHER_AES_GCM_128 = 51
TLS_CIPHER_AES_GCM_256 = 52
TLS_CIPHER_AES_CCM_128 = 53
TLS_CIPHER_CHACHA20_POLY1305 = 54
QUIC_TRANSPORT_ERROR_INTERNAL = 0x01
QUIC_TRANSPORT_ERROR_CRYPTO_BUF_EXCEEDED = 0x0D
QUIC_TRANSPORT_ERROR_CRYPTO = 0x100

LEVEL_NAMES = {APP: "app", INITIAL: "initial", HANDSHAKE: "handshake", EARLY: "early"}

# name -> (gnutls priority token, gnutls_cipher_algorithm_t, TLS_CIPHER_*, IANA suite name).
# The four AEADs the kernel implements (linux-quic-abi.md 1.8), in gnutls' NORMAL order.
CIPHERS = {
    "AES-256-GCM": ("AES-256-GCM", 11, TLS_CIPHER_AES_GCM_256, "TLS_AES_256_GCM_SHA384"),
    "CHACHA20-POLY1305": (
        "CHACHA20-POLY1305",
        23,
        TLS_CIPHER_CHACHA20_POLY1305,
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    "AES-128-GCM": ("AES-128-GCM", 10, TLS_CIPHER_AES_GCM_128, "TLS_AES_128_GCM_SHA256"),
    "AES-128-CCM": ("AES-128-CCM", 19, TLS_CIPHER_AES_CCM_128, "TLS_AES_128_CCM_SHA256"),
}
# Traffic secret length per cipher type: the HKDF hash size (SHA-384 for AES-256-GCM).
SECRET_LEN = {
    TLS_CIPHER_AES_GCM_128: 32,
    TLS_CIPHER_AES_GCM_256: 48,
    TLS_CIPHER_AES_CCM_128: 32,
    TLS_CIPHER_CHACHA20_POLY1305: 32,
}

# TLS alerts (RFC 8446 section 6 and the IANA registry) by number.
ALERTS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}
A_UNEXPECTED_MESSAGE, A_BAD_CERTIFICATE, A_CERTIFICATE_REVOKED = 10, 42, 44
A_CERTIFICATE_EXPIRED, A_UNKNOWN_CA, A_INTERNAL_ERROR = 45, 48, 80
A_MISSING_EXTENSION, A_CERTIFICATE_REQUIRED, A_NO_APPLICATION_PROTOCOL = 109, 116, 120
A_UNKNOWN_PSK_IDENTITY = 115

QUIC_TRANSPORT_PARAMETERS_EXT = 0x39  # RFC 9001 section 8.2
# A handshake message may be up to 2^24-1 bytes; buffer no more than gnutls itself accepts.
MAX_HANDSHAKE_MESSAGE = 128 * 1024
_HT_NEW_SESSION_TICKET, _HT_END_OF_EARLY_DATA, _HT_KEY_UPDATE = 4, 5, 24


def alert_name(alert: int) -> str:
    """``"unknown_ca (alert 48)"``."""
    return f"{ALERTS.get(alert, 'unassigned')} (alert {alert})"


class TlsError(HandshakeError):
    """The TLS handshake failed (or the engine cannot start: no ALPN, an unreadable CA file).

    ``alert``: the TLS alert for the failure (sent by us, or received when ``from_peer``), or
    None when the failure is not a TLS one; ``error_code``: the QUIC error to close the connection
    with (0x100 + alert, else ``transport_error``); ``gnutls_error``: the gnutls error code if any.
    """

    def __init__(
        self,
        message: str,
        *,
        alert: int | None = None,
        from_peer: bool = False,
        gnutls_error: int | None = None,
        transport_error: int = QUIC_TRANSPORT_ERROR_INTERNAL,
    ) -> None:
        QuicError.__init__(self, message)  # error_code is a property here
        self.alert = alert
        self.from_peer = from_peer
        self.gnutls_error = gnutls_error
        self.transport_error = transport_error

    @property
    def error_code(self) -> int:
        if self.alert is not None:
            return QUIC_TRANSPORT_ERROR_CRYPTO + self.alert
        return self.transport_error


class Send(NamedTuple):
    """CRYPTO bytes to send at ``level`` (sendmsg with a QUIC_HANDSHAKE_INFO cmsg)."""

    level: int
    data: bytes


class Secret(NamedTuple):
    """A traffic secret to install (setsockopt QUIC_SOCKOPT_CRYPTO_SECRET)."""

    level: int
    send: bool
    cipher_type: int
    secret: bytes

    def __repr__(self) -> str:  # keep secrets out of logs and test reports
        return f"Secret(level={self.level}, send={self.send}, cipher_type={self.cipher_type})"


class PeerTransportParams(NamedTuple):
    """The peer's quic_transport_parameters extension (setsockopt TRANSPORT_PARAM_EXT)."""

    data: bytes


class HandshakeDone(NamedTuple):
    """The handshake is complete (for the server: the client's Finished is verified)."""

    alpn: str
    cipher_type: int
    resumed: bool


Event = Send | Secret | PeerTransportParams | HandshakeDone


# ---------------------------------------------------------------------------------------------
# gnutls through cffi, loaded on first use.

_CDEF = """
typedef struct gnutls_session_int *gnutls_session_t;
typedef struct gnutls_certificate_credentials_st *gnutls_certificate_credentials_t;
typedef struct gnutls_psk_client_credentials_st *gnutls_psk_client_credentials_t;
typedef struct gnutls_psk_server_credentials_st *gnutls_psk_server_credentials_t;
typedef struct { unsigned char *data; unsigned int size; } gnutls_datum_t;
typedef struct gnutls_buffer_st *gnutls_buffer_t;
typedef void *gnutls_transport_ptr_t;
typedef ssize_t (*pull_fn)(gnutls_transport_ptr_t, void *, size_t);
typedef ssize_t (*push_fn)(gnutls_transport_ptr_t, const void *, size_t);
typedef int (*read_fn)(gnutls_session_t, int, int, const void *, size_t);
typedef int (*secret_fn)(gnutls_session_t, int, const void *, const void *, size_t);
typedef int (*alert_fn)(gnutls_session_t, int, int, int);
typedef int (*hook_fn)(gnutls_session_t, unsigned int, unsigned, unsigned int,
                       const gnutls_datum_t *);
typedef int (*keylog_fn)(gnutls_session_t, const char *, const gnutls_datum_t *);
typedef int (*ext_recv_fn)(gnutls_session_t, const unsigned char *, size_t);
typedef int (*ext_send_fn)(gnutls_session_t, gnutls_buffer_t);
typedef int (*psk_server_fn)(gnutls_session_t, const char *, gnutls_datum_t *);
typedef struct gnutls_anti_replay_st *gnutls_anti_replay_t;  /* time_t is long (glibc, LP64) */
typedef int (*db_add_fn)(void *, long, const gnutls_datum_t *, const gnutls_datum_t *);

extern void (*gnutls_free)(void *);
extern void *(*gnutls_malloc)(size_t);
const char *gnutls_check_version(const char *);
const char *gnutls_strerror(int);
const char *gnutls_strerror_name(int);
int gnutls_error_is_fatal(int);
int gnutls_error_to_alert(int, int *);
int gnutls_alert_get(gnutls_session_t);

int gnutls_init(gnutls_session_t *, unsigned int);
void gnutls_deinit(gnutls_session_t);
int gnutls_priority_set_direct(gnutls_session_t, const char *, const char **);
int gnutls_credentials_set(gnutls_session_t, int, void *);
int gnutls_certificate_allocate_credentials(gnutls_certificate_credentials_t *);
void gnutls_certificate_free_credentials(gnutls_certificate_credentials_t);
int gnutls_certificate_set_x509_trust_file(gnutls_certificate_credentials_t, const char *, int);
int gnutls_certificate_set_x509_system_trust(gnutls_certificate_credentials_t);
int gnutls_certificate_set_x509_key_file(gnutls_certificate_credentials_t, const char *,
                                         const char *, int);
void gnutls_certificate_server_set_request(gnutls_session_t, int);
void gnutls_session_set_verify_cert(gnutls_session_t, const char *, unsigned);
unsigned gnutls_session_get_verify_cert_status(gnutls_session_t);
int gnutls_certificate_verification_status_print(unsigned, int, gnutls_datum_t *, unsigned);
int gnutls_psk_allocate_client_credentials(gnutls_psk_client_credentials_t *);
void gnutls_psk_free_client_credentials(gnutls_psk_client_credentials_t);
int gnutls_psk_set_client_credentials(gnutls_psk_client_credentials_t, const char *,
                                      const gnutls_datum_t *, int);
int gnutls_psk_allocate_server_credentials(gnutls_psk_server_credentials_t *);
void gnutls_psk_free_server_credentials(gnutls_psk_server_credentials_t);
void gnutls_psk_set_server_credentials_function(gnutls_psk_server_credentials_t, psk_server_fn);
const char *gnutls_psk_server_get_username(gnutls_session_t);
int gnutls_server_name_set(gnutls_session_t, int, const void *, size_t);
int gnutls_alpn_set_protocols(gnutls_session_t, const gnutls_datum_t *, unsigned, unsigned);
int gnutls_alpn_get_selected_protocol(gnutls_session_t, gnutls_datum_t *);
int gnutls_session_ticket_enable_server(gnutls_session_t, const gnutls_datum_t *);
int gnutls_session_set_data(gnutls_session_t, const void *, size_t);
int gnutls_session_get_data2(gnutls_session_t, gnutls_datum_t *);
unsigned gnutls_session_get_flags(gnutls_session_t);
int gnutls_session_is_resumed(gnutls_session_t);
void gnutls_session_get_random(gnutls_session_t, gnutls_datum_t *, gnutls_datum_t *);
int gnutls_cipher_get(gnutls_session_t);
int gnutls_early_cipher_get(gnutls_session_t);
void gnutls_session_set_ptr(gnutls_session_t, void *);
void *gnutls_session_get_ptr(gnutls_session_t);

void gnutls_transport_set_ptr(gnutls_session_t, gnutls_transport_ptr_t);
void gnutls_transport_set_pull_function(gnutls_session_t, pull_fn);
void gnutls_transport_set_push_function(gnutls_session_t, push_fn);
void gnutls_transport_set_errno(gnutls_session_t, int);
void gnutls_handshake_set_read_function(gnutls_session_t, read_fn);
void gnutls_handshake_set_secret_function(gnutls_session_t, secret_fn);
void gnutls_alert_set_read_function(gnutls_session_t, alert_fn);
void gnutls_handshake_set_hook_function(gnutls_session_t, unsigned int, int, hook_fn);
void gnutls_session_set_keylog_function(gnutls_session_t, keylog_fn);
int gnutls_session_ext_register(gnutls_session_t, const char *, int, int, ext_recv_fn,
                                ext_send_fn, void *, void *, void *, unsigned);
int gnutls_buffer_append_data(gnutls_buffer_t, const void *, size_t);
int gnutls_handshake_write(gnutls_session_t, int, const void *, size_t);
int gnutls_handshake(gnutls_session_t);
int gnutls_record_set_max_early_data_size(gnutls_session_t, size_t);
int gnutls_anti_replay_init(gnutls_anti_replay_t *);
void gnutls_anti_replay_deinit(gnutls_anti_replay_t);
void gnutls_anti_replay_set_window(gnutls_anti_replay_t, unsigned int);
void gnutls_anti_replay_enable(gnutls_session_t, gnutls_anti_replay_t);
void gnutls_anti_replay_set_add_function(gnutls_anti_replay_t, db_add_fn);
void gnutls_anti_replay_set_ptr(gnutls_anti_replay_t, void *);
"""

# gnutls.h values used below (enums and macros do not go through the cdef).
_GNUTLS_SERVER, _GNUTLS_CLIENT, _GNUTLS_NONBLOCK = 1, 2, 1 << 3
_GNUTLS_NO_END_OF_EARLY_DATA = 1 << 22  # RFC 9001 section 8.3
_GNUTLS_ENABLE_EARLY_DATA = 1 << 20
_GNUTLS_SFLAGS_EARLY_DATA = 1 << 10
_E_DB_ENTRY_EXISTS = -428
# RFC 9001 section 4.6.1: the max_early_data_size of a QUIC server's tickets.
_QUIC_MAX_EARLY_DATA = 0xFFFFFFFF
_GNUTLS_CRD_CERTIFICATE, _GNUTLS_X509_FMT_PEM, _GNUTLS_CRT_X509 = 1, 1, 1
_GNUTLS_CRD_PSK, _GNUTLS_PSK_KEY_RAW = 4, 0
_GNUTLS_CERT_REQUIRE, _GNUTLS_NAME_DNS, _GNUTLS_ALPN_MANDATORY = 2, 1, 1
_GNUTLS_EXT_TLS = 2
_GNUTLS_EXT_FLAG_CLIENT_HELLO, _GNUTLS_EXT_FLAG_EE, _GNUTLS_EXT_FLAG_TLS = 1 << 1, 1 << 4, 1 << 7
_GNUTLS_HANDSHAKE_ANY, _GNUTLS_HANDSHAKE_CLIENT_HELLO = 0xFFFFFFFF, 1
# What the server sends after EncryptedExtensions: CertificateRequest, Certificate, Finished.
_AFTER_EE = (13, 11, 20)
_GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC = 254
_GNUTLS_HOOK_PRE, _GNUTLS_HOOK_POST = 0, 1
_GNUTLS_SFLAGS_SESSION_TICKET = 1 << 7
_GNUTLS_CERT_REVOKED, _GNUTLS_CERT_SIGNER_NOT_FOUND, _GNUTLS_CERT_SIGNER_NOT_CA = 32, 64, 128
_GNUTLS_CERT_NOT_ACTIVATED, _GNUTLS_CERT_EXPIRED, _GNUTLS_CERT_UNEXPECTED_OWNER = 512, 1024, 16384
_E_AGAIN, _E_INTERRUPTED, _E_INTERNAL_ERROR = -28, -52, -59
_E_CERTIFICATE_REQUIRED, _E_NO_APPLICATION_PROTOCOL = -112, -344
_E_CERT_VERIFICATION, _E_MISSING_EXTENSION = -348, -427
_E_FATAL_ALERT_RECEIVED = -12
_EAGAIN, _EIO = 11, 5

# gnutls_record_encryption_level_t <-> QUIC_CRYPTO_*
_FROM_GNUTLS_LEVEL = {0: INITIAL, 1: EARLY, 2: HANDSHAKE, 3: APP}
_TO_GNUTLS_LEVEL = {v: k for k, v in _FROM_GNUTLS_LEVEL.items()}
_CIPHER_TYPE = {gn: ctype for _tok, gn, ctype, _iana in CIPHERS.values()}


class _Gnutls:
    """The library and the process-wide callbacks (one set for all sessions)."""

    def __init__(self) -> None:
        try:
            import cffi
        except ImportError as exc:  # pragma: no cover - cffi is a dependency
            raise TlsError("the python cffi module is missing (pip install cffi)") from exc
        self.ffi = ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        try:
            self.lib = lib = ffi.dlopen("libgnutls.so.30")
        except OSError as exc:
            raise TlsError(f"cannot load libgnutls.so.30: {exc} (install libgnutls30)") from exc
        if lib.gnutls_check_version(b"3.7.0") == ffi.NULL:
            found = ffi.string(lib.gnutls_check_version(ffi.NULL)).decode()
            raise TlsError(f"gnutls {found} has no QUIC support: 3.7.0 or later is needed")
        self.version = ffi.string(lib.gnutls_check_version(ffi.NULL)).decode()
        self.ext_name = ffi.new("char[]", b"quic_transport_parameters")
        self.pull = ffi.callback("pull_fn", _cb_pull)
        self.push = ffi.callback("push_fn", _cb_push)
        self.read = ffi.callback("read_fn", _cb_read)
        self.secret = ffi.callback("secret_fn", _cb_secret)
        self.alert = ffi.callback("alert_fn", _cb_alert)
        self.hook = ffi.callback("hook_fn", _cb_hook)
        self.keylog = ffi.callback("keylog_fn", _cb_keylog)
        self.ext_recv = ffi.callback("ext_recv_fn", _cb_ext_recv)
        self.ext_send = ffi.callback("ext_send_fn", _cb_ext_send)
        self.psk_server = ffi.callback("psk_server_fn", _cb_psk_server)
        self.db_add = ffi.callback("db_add_fn", _cb_db_add)

    def strerror(self, rc: int) -> str:
        ffi, lib = self.ffi, self.lib
        text = ffi.string(lib.gnutls_strerror(rc)).decode(errors="replace").rstrip(".")
        name = lib.gnutls_strerror_name(rc)
        return f"{text} [{ffi.string(name).decode()}]" if name != ffi.NULL else text


_gnutls: _Gnutls | None = None
_gnutls_lock = threading.Lock()


def _g() -> _Gnutls:
    # One ffi instance per process: sessions made by one instance cannot be passed to the
    # callbacks of another, so two threads racing here must not both load it.
    global _gnutls
    if _gnutls is None:
        with _gnutls_lock:
            if _gnutls is None:
                _gnutls = _Gnutls()
    return _gnutls


def gnutls_version() -> str:
    """The runtime gnutls version (loads the library)."""
    return _g().version


# Sessions find their QuicTls through gnutls_session_get_ptr(): a key into this weak registry,
# so no reference cycle keeps an abandoned QuicTls (and its gnutls session) alive.
_sessions: weakref.WeakValueDictionary[int, QuicTls] = weakref.WeakValueDictionary()
_next_key = itertools.count(1).__next__


def _owner(session: Any) -> QuicTls:
    g = _g()
    key = int(g.ffi.cast("uintptr_t", g.lib.gnutls_session_get_ptr(session)))
    return _sessions[key]


def _guarded(fail: int) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Run a callback on its QuicTls; an exception is kept for step() and gnutls gets ``fail``."""

    def wrap(fn: Callable[..., int]) -> Callable[..., int]:
        def cb(session: Any, *args: Any) -> int:
            tls = None
            try:
                tls = _owner(session)
                return fn(tls, *args)
            except BaseException as exc:  # noqa: BLE001 - re-raised by step()/feed()
                if tls is not None and tls._cb_exc is None:
                    tls._cb_exc = exc
                return fail

        return cb

    return wrap


def _cb_pull(ptr: Any, buf: Any, size: int) -> int:
    # Handshake bytes come in through gnutls_handshake_write(); there is never a record to read.
    g = _g()
    g.lib.gnutls_transport_set_errno(g.ffi.cast("gnutls_session_t", ptr), _EAGAIN)
    return -1


def _cb_push(ptr: Any, buf: Any, size: int) -> int:
    # With the QUIC hooks nothing is written as TLS records; if gnutls tries, fail loudly.
    g = _g()
    g.lib.gnutls_transport_set_errno(g.ffi.cast("gnutls_session_t", ptr), _EIO)
    return -1


@_guarded(fail=-1)
def _cb_read(tls: QuicTls, glevel: int, htype: int, data: Any, size: int) -> int:
    if htype != _GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC:  # never sent on QUIC (RFC 9001 8.4)
        tls._add_send(_FROM_GNUTLS_LEVEL[glevel], bytes(_g().ffi.buffer(data, size)))
    return 0


@_guarded(fail=-1)
def _cb_secret(tls: QuicTls, glevel: int, rd: Any, wr: Any, size: int) -> int:
    tls._on_secret(_FROM_GNUTLS_LEVEL[glevel], rd, wr, size)
    return 0


@_guarded(fail=-1)
def _cb_alert(tls: QuicTls, glevel: int, alert_level: int, desc: int) -> int:
    if tls.alert is None:
        tls.alert = desc
    return 0


@_guarded(fail=_E_INTERNAL_ERROR)
def _cb_hook(tls: QuicTls, htype: int, when: int, incoming: int, msg: Any) -> int:
    if not incoming or tls._negotiated or (not tls.server and htype not in _AFTER_EE):
        return 0
    return tls._check_negotiated()


@_guarded(fail=-1)
def _cb_keylog(tls: QuicTls, label: Any, secret: Any) -> int:
    tls._on_keylog(label, secret)
    return 0


@_guarded(fail=_E_INTERNAL_ERROR)
def _cb_ext_recv(tls: QuicTls, data: Any, size: int) -> int:
    tls._on_peer_params(bytes(_g().ffi.buffer(data, size)))
    return 0


@_guarded(fail=_E_INTERNAL_ERROR)
def _cb_ext_send(tls: QuicTls, buf: Any) -> int:
    data = tls._params_to_send()
    rc = _g().lib.gnutls_buffer_append_data(buf, data, len(data))
    return rc if rc < 0 else len(data)


@_guarded(fail=-1)
def _cb_psk_server(tls: QuicTls, username: Any, key: Any) -> int:
    g = _g()
    identity = g.ffi.string(username).decode(errors="replace")
    secret = tls._psk_lookup(identity)
    if secret is None:
        return -1  # gnutls answers unknown_psk_identity / decrypt_error
    key.data = g.ffi.cast("unsigned char *", g.lib.gnutls_malloc(len(secret)))
    if key.data == g.ffi.NULL:
        return -1
    g.ffi.memmove(key.data, secret, len(secret))
    key.size = len(secret)
    return 0


# Anti-replay caches, found by their key like sessions (gnutls_anti_replay_set_ptr()).
_replay_caches: weakref.WeakValueDictionary[int, AntiReplay] = weakref.WeakValueDictionary()


def _cb_db_add(ptr: Any, exp_time: int, key: Any, data: Any) -> int:
    g = _g()
    cache = _replay_caches.get(int(g.ffi.cast("uintptr_t", ptr)))
    if cache is None:
        return _E_INTERNAL_ERROR
    return cache._add(bytes(g.ffi.buffer(key.data, key.size)), exp_time)


class AntiReplay:
    """A server's 0-RTT replay protection (RFC 8446 section 8): gnutls's anti-replay.

    gnutls accepts early data only from a ClientHello whose ticket age puts it within
    ``window_ms`` of now, and only once: each one accepted is remembered here (by its PSK binder)
    until it leaves the window; a second copy has its early data rejected, so the kernel never
    gets its EARLY key and drops its 0-RTT packets.  One cache serves every connection of a
    server (pass it to each server :class:`QuicTls`); thread safe.
    """

    def __init__(self, window_ms: int = 10000) -> None:
        g = _g()
        ptr = g.ffi.new("gnutls_anti_replay_t *")
        rc = g.lib.gnutls_anti_replay_init(ptr)
        if rc < 0:
            raise TlsError(f"cannot set up anti-replay: {g.strerror(rc)}", gnutls_error=rc)
        self._ar = ptr[0]
        self._key = _next_key()
        self._seen: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self.replays = 0  # ClientHellos whose early data was refused as a replay
        _replay_caches[self._key] = self
        g.lib.gnutls_anti_replay_set_window(self._ar, window_ms)
        g.lib.gnutls_anti_replay_set_add_function(self._ar, g.db_add)
        g.lib.gnutls_anti_replay_set_ptr(self._ar, g.ffi.cast("void *", self._key))

    def _add(self, key: bytes, exp_time: int) -> int:
        import time

        now = int(time.time())
        with self._lock:
            for k in [k for k, exp in self._seen.items() if exp < now]:
                del self._seen[k]
            if key in self._seen:
                self.replays += 1
                return _E_DB_ENTRY_EXISTS
            self._seen[key] = exp_time
        return 0

    def enable(self, session: Any) -> None:
        _g().lib.gnutls_anti_replay_enable(session, self._ar)

    def close(self) -> None:
        if self._ar is not None and _gnutls is not None:
            _gnutls.lib.gnutls_anti_replay_deinit(self._ar)
        self._ar = None
        _replay_caches.pop(self._key, None)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


# With an external PSK: (EC)DHE with the PSK preferred (forward secrecy), plain PSK accepted.
_PSK_KX = ":+ECDHE-PSK:+DHE-PSK:+PSK"


def _cipher_priority(ciphers: list[str] | None) -> str:
    names = list(CIPHERS) if ciphers is None else ciphers
    if not names:
        raise TlsError("no TLS cipher given")
    aliases = {k: k for k in CIPHERS} | {v[3]: k for k, v in CIPHERS.items()}
    tokens = []
    for name in names:
        key = aliases.get(name.upper().replace("_", "-"), aliases.get(name.upper()))
        if key is None:
            raise TlsError(
                f"unknown or unsupported TLS cipher {name!r} "
                f"(the kernel supports: {', '.join(CIPHERS)})"
            )
        tokens.append("+" + CIPHERS[key][0])
    return "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE:-CIPHER-ALL:" + ":".join(
        tokens
    )


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class QuicTls:
    """One TLS 1.3 handshake for one QUIC connection (client or server); see the module doc.

    ``alpns``: protocols we offer (client, in preference order) or accept (server); QUIC
    requires one to be negotiated (RFC 9001 8.1).  ``server_name``: the client's SNI (DNS names
    only) and the name or IP address the server certificate must match.  ``cafile``: PEM CAs to
    verify the peer with (system trust when None); ``insecure`` skips verification of the
    server (client) or of the client certificate (server).  ``certfile``/``keyfile``: our
    certificate (required on a server; on a client, sent when the server asks).
    ``verify_client``: the server requires and verifies a client certificate.  ``ciphers``:
    names from :data:`CIPHERS` or IANA names (``TLS_AES_128_GCM_SHA256``), in preference order.
    ``keylog``: append the secrets in NSS key log format to this file (default: $SSLKEYLOGFILE).
    ``session_data``: resume a session (client; from :meth:`session_data`).  ``ticket_key``:
    64-byte session ticket key (server; e.g. the kernel's SESSION_TICKET), enables tickets.
    ``on_peer_transport_params``: called with the peer's transport parameters as soon as they
    arrive; a returned ``bytes`` replaces our own (server: set the peer's on the socket, then
    return getsockopt TRANSPORT_PARAM_EXT).  ``psk``: (identity, key) of an external
    pre-shared key (RFC 8446 section 4.2.11) used instead of certificates: the client offers it,
    the server accepts that identity only; the certificate arguments are then ignored.
    ``early_data``: client: offer 0-RTT when resuming a ticket that allows it (the EARLY send
    secret comes out right after the ClientHello); server: issue tickets that allow 0-RTT
    (max_early_data_size 0xffffffff, RFC 9001 section 4.6.1) and accept it when TLS does (the
    EARLY receive secret comes out before the HANDSHAKE ones).  ``anti_replay``: a server's
    :class:`AntiReplay`, to accept each 0-RTT ClientHello once.  :attr:`early_data_accepted`
    says, once complete, whether the server took the early data.
    """

    def __init__(
        self,
        *,
        server: bool,
        alpns: list[str],
        server_name: str | None = None,
        cafile: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        insecure: bool = False,
        verify_client: bool = False,
        ciphers: list[str] | None = None,
        keylog: str | None = None,
        session_data: bytes | None = None,
        ticket_key: bytes | None = None,
        on_peer_transport_params: Callable[[bytes], bytes | None] | None = None,
        psk: tuple[str, bytes] | None = None,
        early_data: bool = False,
        anti_replay: AntiReplay | None = None,
    ) -> None:
        self.server = server
        self.early_data = early_data
        self.early_data_accepted = False
        self.role = "server" if server else "client"
        self.peer = "client" if server else "server"
        self.alpns = list(alpns)
        self.server_name = server_name
        self.on_peer_transport_params = on_peer_transport_params
        self.keylog = os.environ.get("SSLKEYLOGFILE") if keylog is None else keylog
        self.peer_transport_params: bytes | None = None
        self.alert: int | None = None  # the alert we sent (or would send) on failure
        self.handshake_complete = False
        self.alpn: str | None = None
        self.cipher_type: int | None = None
        self.resumed = False
        self._local_params: bytes | None = None
        self._events: list[Event] = []
        self._rx: dict[int, bytearray] = {}
        self._early_app: list[bytes] = []  # APP-level messages fed before the handshake ended
        self._keylog_lines: list[str] = []
        self._cb_exc: BaseException | None = None
        self._reason: tuple[str, int] | None = None
        self._failed: TlsError | None = None
        self._started = False
        self._negotiated = False  # ALPN and peer transport parameters checked
        self._session: Any = None
        self._cred: Any = None
        self._verify_name: Any = None
        self._ticket_key: Any = None
        self._psk = psk
        self._psk_cred: Any = None
        self.psk_identity: str | None = None  # the identity the handshake used
        self._key = 0

        if not self.alpns:
            raise TlsError("no ALPN given: QUIC needs an application protocol (RFC 9001 8.1)")
        if psk is not None:
            if not psk[0] or len(psk[0].encode()) > 255 or not psk[1]:
                raise TlsError("a PSK needs an identity of 1..255 bytes and a non-empty key")
        elif server and not (certfile and keyfile):
            raise TlsError("a QUIC server needs a certificate and key (certfile, keyfile)")
        if bool(certfile) != bool(keyfile):
            raise TlsError("certfile and keyfile go together")
        if ticket_key is not None and len(ticket_key) != 64:
            raise TlsError(f"a session ticket key is 64 bytes, not {len(ticket_key)}")
        priority = _cipher_priority(ciphers) + (_PSK_KX if psk is not None else "")

        g = _g()
        ffi, lib = g.ffi, g.lib
        try:
            self._setup_session(g, priority)
            if psk is not None:
                self._setup_psk(g)
            else:
                self._setup_credentials(g, cafile, certfile, keyfile, insecure, verify_client)
            if server_name and not server and not _is_ip(server_name):  # RFC 6066: no IPs
                name = server_name.encode()
                rc = lib.gnutls_server_name_set(self._session, _GNUTLS_NAME_DNS, name, len(name))
                self._check(rc, f"cannot set the server name {server_name!r}")
            self._setup_alpn(g)
            if ticket_key is not None:
                if not server:
                    raise TlsError("ticket_key is for a server (clients use session_data)")
                key = ffi.new("gnutls_datum_t *")
                self._ticket_key = ffi.new("unsigned char[]", ticket_key)  # kept, as the name
                key.data, key.size = self._ticket_key, len(ticket_key)
                self._check(lib.gnutls_session_ticket_enable_server(self._session, key))
            if session_data is not None:
                if server:
                    raise TlsError("session_data is for a client (servers use ticket_key)")
                rc = lib.gnutls_session_set_data(self._session, session_data, len(session_data))
                self._check(rc, "cannot use the saved session data")
            if early_data and server:
                rc = lib.gnutls_record_set_max_early_data_size(self._session, _QUIC_MAX_EARLY_DATA)
                self._check(rc, "cannot enable early data")
            if anti_replay is not None:
                if not server:
                    raise TlsError("anti_replay is for a server")
                anti_replay.enable(self._session)
        except BaseException:
            self.close()
            raise

    # -- setup ------------------------------------------------------------------------------

    def _check(self, rc: int, what: str = "gnutls setup failed") -> int:
        if rc < 0:
            raise TlsError(f"TLS {self.role}: {what}: {_g().strerror(rc)}", gnutls_error=rc)
        return rc

    def _setup_session(self, g: _Gnutls, priority: str) -> None:
        ffi, lib = g.ffi, g.lib
        sp = ffi.new("gnutls_session_t *")
        flags = (_GNUTLS_SERVER if self.server else _GNUTLS_CLIENT) | _GNUTLS_NONBLOCK
        if self.early_data:
            flags |= _GNUTLS_ENABLE_EARLY_DATA
        self._check(lib.gnutls_init(sp, flags | _GNUTLS_NO_END_OF_EARLY_DATA))
        s = self._session = sp[0]
        self._key = _next_key()
        _sessions[self._key] = self
        lib.gnutls_session_set_ptr(s, ffi.cast("void *", self._key))
        err = ffi.new("const char **")
        rc = lib.gnutls_priority_set_direct(s, priority.encode(), err)
        if rc < 0:
            at = ffi.string(err[0]).decode() if err[0] != ffi.NULL else "?"
            raise TlsError(f"gnutls rejects priority string {priority!r} at {at!r}")
        lib.gnutls_transport_set_ptr(s, s)
        lib.gnutls_transport_set_pull_function(s, g.pull)
        lib.gnutls_transport_set_push_function(s, g.push)
        lib.gnutls_handshake_set_read_function(s, g.read)
        lib.gnutls_handshake_set_secret_function(s, g.secret)
        lib.gnutls_alert_set_read_function(s, g.alert)
        # Replaces gnutls' own $SSLKEYLOGFILE writer (the default keylog function), so the
        # keylog argument decides alone and no line is written twice.
        lib.gnutls_session_set_keylog_function(s, g.keylog)
        # Server: after the ClientHello is parsed, before the ServerHello is written.  Client:
        # before the message after EncryptedExtensions, whose extensions are parsed by then.
        if self.server:
            hook = (_GNUTLS_HANDSHAKE_CLIENT_HELLO, _GNUTLS_HOOK_POST)
        else:
            hook = (_GNUTLS_HANDSHAKE_ANY, _GNUTLS_HOOK_PRE)
        lib.gnutls_handshake_set_hook_function(s, *hook, g.hook)
        flags = _GNUTLS_EXT_FLAG_CLIENT_HELLO | _GNUTLS_EXT_FLAG_EE | _GNUTLS_EXT_FLAG_TLS
        rc = lib.gnutls_session_ext_register(
            s,
            g.ext_name,
            QUIC_TRANSPORT_PARAMETERS_EXT,
            _GNUTLS_EXT_TLS,
            g.ext_recv,
            g.ext_send,
            ffi.NULL,
            ffi.NULL,
            ffi.NULL,
            flags,
        )
        self._check(rc, "cannot register the quic_transport_parameters extension")

    def _setup_credentials(
        self,
        g: _Gnutls,
        cafile: str | None,
        certfile: str | None,
        keyfile: str | None,
        insecure: bool,
        verify_client: bool,
    ) -> None:
        ffi, lib = g.ffi, g.lib
        cp = ffi.new("gnutls_certificate_credentials_t *")
        self._check(lib.gnutls_certificate_allocate_credentials(cp))
        self._cred = cp[0]
        verify = not insecure and (verify_client or not self.server)
        if verify:
            if cafile:
                rc = lib.gnutls_certificate_set_x509_trust_file(
                    self._cred, os.fsencode(cafile), _GNUTLS_X509_FMT_PEM
                )
                if rc <= 0:
                    why = _g().strerror(rc) if rc < 0 else "no certificate in it"
                    raise TlsError(f"cannot load CA file {cafile}: {why} (a PEM file?)")
            else:
                rc = lib.gnutls_certificate_set_x509_system_trust(self._cred)
                if rc <= 0:
                    raise TlsError("no system CA certificates found (pass cafile, or insecure)")
        if certfile and keyfile:
            rc = lib.gnutls_certificate_set_x509_key_file(
                self._cred, os.fsencode(certfile), os.fsencode(keyfile), _GNUTLS_X509_FMT_PEM
            )
            if rc < 0:
                raise TlsError(
                    f"cannot load certificate {certfile} with key {keyfile}: "
                    f"{_g().strerror(rc)} (PEM files of one key pair?)",
                    gnutls_error=rc,
                )
        self._check(lib.gnutls_credentials_set(self._session, _GNUTLS_CRD_CERTIFICATE, self._cred))
        if self.server and verify_client:
            lib.gnutls_certificate_server_set_request(self._session, _GNUTLS_CERT_REQUIRE)
        if verify:
            # gnutls 3.7.9 keeps the hostname pointer (no copy): it must outlive the session.
            name = ffi.NULL
            if self.server_name and not self.server:
                name = self._verify_name = ffi.new("char[]", self.server_name.encode())
            lib.gnutls_session_set_verify_cert(self._session, name, 0)

    def _setup_psk(self, g: _Gnutls) -> None:
        ffi, lib = g.ffi, g.lib
        identity, key = self._psk
        if self.server:
            cp = ffi.new("gnutls_psk_server_credentials_t *")
            self._check(lib.gnutls_psk_allocate_server_credentials(cp))
            self._psk_cred = cp[0]
            lib.gnutls_psk_set_server_credentials_function(self._psk_cred, g.psk_server)
        else:
            cp = ffi.new("gnutls_psk_client_credentials_t *")
            self._check(lib.gnutls_psk_allocate_client_credentials(cp))
            self._psk_cred = cp[0]
            d = ffi.new("gnutls_datum_t *")
            buf = ffi.new("unsigned char[]", key)
            d.data, d.size = buf, len(key)
            rc = lib.gnutls_psk_set_client_credentials(self._psk_cred, identity.encode(), d,
                                                       _GNUTLS_PSK_KEY_RAW)  # fmt: skip
            self._check(rc, "cannot set the PSK")
            self.psk_identity = identity
        self._check(lib.gnutls_credentials_set(self._session, _GNUTLS_CRD_PSK, self._psk_cred))

    def _psk_lookup(self, identity: str) -> bytes | None:
        """Server: the key of ``identity`` if it is the one we accept."""
        if self._psk is None or identity != self._psk[0]:
            self._reason = (f"the client offered PSK identity {identity!r}, which is not "
                            "ours", A_UNKNOWN_PSK_IDENTITY)  # fmt: skip
            return None
        self.psk_identity = identity
        return self._psk[1]

    def _setup_alpn(self, g: _Gnutls) -> None:
        ffi = g.ffi
        protos = [a.encode() for a in self.alpns]
        if any(not 0 < len(p) < 256 for p in protos):
            raise TlsError(f"invalid ALPN list {self.alpns!r}: each is 1..255 bytes")
        datums = ffi.new("gnutls_datum_t[]", len(protos))
        bufs = [ffi.from_buffer(p) for p in protos]
        for d, b, p in zip(datums, bufs, protos, strict=True):
            d.data, d.size = ffi.cast("unsigned char *", b), len(p)
        rc = g.lib.gnutls_alpn_set_protocols(
            self._session, datums, len(protos), _GNUTLS_ALPN_MANDATORY
        )
        self._check(rc, "cannot set ALPN")

    # -- public API -------------------------------------------------------------------------

    def set_local_transport_params(self, data: bytes) -> None:
        """Our quic_transport_parameters (the kernel's getsockopt TRANSPORT_PARAM_EXT).

        Client: before the first :meth:`step`.  Server: before the ClientHello is processed,
        or return them from ``on_peer_transport_params``.
        """
        if not data:
            raise ValueError("empty transport parameters")
        self._local_params = bytes(data)

    def feed(self, level: int, data: bytes) -> None:
        """CRYPTO bytes the peer sent at ``level``, split anywhere; call :meth:`step` after."""
        self._usable()
        if level not in (INITIAL, HANDSHAKE, APP):
            raise ValueError(f"no CRYPTO data at level {LEVEL_NAMES.get(level, level)}")
        buf = self._rx.setdefault(level, bytearray())
        buf += data
        while len(buf) >= 4:
            size = int.from_bytes(buf[1:4], "big")
            if size > MAX_HANDSHAKE_MESSAGE:
                raise self._fail(
                    TlsError(
                        f"TLS {self.role}: the {self.peer} sent a {size}-byte handshake message "
                        f"at level {LEVEL_NAMES[level]} (limit {MAX_HANDSHAKE_MESSAGE})",
                        transport_error=QUIC_TRANSPORT_ERROR_CRYPTO_BUF_EXCEEDED,
                    )
                )
            if len(buf) < 4 + size:
                break
            msg = bytes(buf[: 4 + size])
            del buf[: 4 + size]
            self._deliver(level, msg)

    def step(self) -> list[Event]:
        """Run the handshake as far as the input allows; the events, in order.

        Raises TlsError (the engine is unusable afterwards) or an exception from
        ``on_peer_transport_params``.
        """
        self._usable()
        try:
            if not self.handshake_complete:
                self._drive()
            if self.handshake_complete and self._early_app:
                msgs, self._early_app = self._early_app, []
                for msg in msgs:
                    self._deliver(APP, msg)
            self._reraise()
        finally:
            self._flush_keylog()
        events, self._events = self._events, []
        return events

    def peer_alert(self, alert: int) -> TlsError:
        """The error for a CONNECTION_CLOSE from the peer with CRYPTO_ERROR 0x100 + ``alert``.

        Marks the handshake failed and returns the TlsError for the caller to raise.
        """
        hints = {
            A_NO_APPLICATION_PROTOCOL: f"no ALPN in common; we offered {', '.join(self.alpns)}",
            A_UNKNOWN_CA: f"the {self.peer} does not trust the CA of our certificate",
            A_BAD_CERTIFICATE: f"the {self.peer} rejected our certificate",
            A_CERTIFICATE_REQUIRED: "the server requires a client certificate (certfile, keyfile)",
            A_MISSING_EXTENSION: "quic_transport_parameters or another extension missing",
        }
        hint = hints.get(alert)
        err = TlsError(
            f"TLS handshake failed ({self.role}): the {self.peer} sent "
            f"{alert_name(alert)}" + (f": {hint}" if hint else ""),
            alert=alert,
            from_peer=True,
        )
        if self._failed is None:
            self._failed = err
        return err

    def session_data(self) -> bytes | None:
        """Client: data to resume this session later, once a NewSessionTicket was fed (APP)."""
        if self.server or self._session is None or not self.handshake_complete:
            return None
        g = _g()
        if not g.lib.gnutls_session_get_flags(self._session) & _GNUTLS_SFLAGS_SESSION_TICKET:
            return None
        d = g.ffi.new("gnutls_datum_t *")
        self._check(g.lib.gnutls_session_get_data2(self._session, d), "no session data")
        try:
            return bytes(g.ffi.buffer(d.data, d.size))
        finally:
            g.lib.gnutls_free(d.data)

    def close(self) -> None:
        """Free the gnutls session and credentials (idempotent)."""
        g = _gnutls
        if self._session is not None and g is not None:
            g.lib.gnutls_deinit(self._session)
        self._session = None
        if self._cred is not None and g is not None:
            g.lib.gnutls_certificate_free_credentials(self._cred)
        self._cred = None
        if self._psk_cred is not None and g is not None:
            if self.server:
                g.lib.gnutls_psk_free_server_credentials(self._psk_cred)
            else:
                g.lib.gnutls_psk_free_client_credentials(self._psk_cred)
        self._psk_cred = None
        _sessions.pop(self._key, None)
        self._rx.clear()
        self._events = []
        self._early_app = []

    def __enter__(self) -> QuicTls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- internals --------------------------------------------------------------------------

    def _usable(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._session is None:
            raise RuntimeError("QuicTls is closed")

    def _fail(self, err: TlsError) -> TlsError:
        if err.alert is not None and not err.from_peer and self.alert is None:
            self.alert = err.alert
        self._failed = err
        self._events = []
        return err

    def _reraise(self) -> None:
        exc, self._cb_exc = self._cb_exc, None
        if exc is not None:
            self._fail(
                exc
                if isinstance(exc, TlsError)
                else TlsError(f"TLS {self.role}: {exc}", alert=A_INTERNAL_ERROR)
            )
            raise exc

    def _drive(self) -> None:
        g = _g()
        if not self.server and not self._started and self._local_params is None:
            raise RuntimeError("set_local_transport_params() must come before the first step()")
        self._started = True
        for _ in range(16):
            rc = g.lib.gnutls_handshake(self._session)
            self._reraise()
            if rc == 0:
                self._complete(g)
                return
            if rc in (_E_AGAIN, _E_INTERRUPTED):
                return
            if g.lib.gnutls_error_is_fatal(rc):
                raise self._fail(self._error(g, rc))
        raise self._fail(TlsError(f"TLS {self.role}: gnutls_handshake() makes no progress"))

    def _complete(self, g: _Gnutls) -> None:
        # Never call gnutls_handshake() again: on an established TLS 1.3 session it sends a
        # KeyUpdate, which QUIC forbids (RFC 9001 section 6).
        ffi, lib = g.ffi, g.lib
        d = ffi.new("gnutls_datum_t *")
        rc = lib.gnutls_alpn_get_selected_protocol(self._session, d)
        self.alpn = ffi.string(ffi.cast("char *", d.data), d.size).decode() if rc == 0 else ""
        self.cipher_type = self._cipher_type(lib.gnutls_cipher_get(self._session))
        self.resumed = bool(lib.gnutls_session_is_resumed(self._session))
        flags = lib.gnutls_session_get_flags(self._session)
        self.early_data_accepted = self.early_data and bool(flags & _GNUTLS_SFLAGS_EARLY_DATA)
        self.handshake_complete = True
        self._events.append(HandshakeDone(self.alpn, self.cipher_type, self.resumed))

    def _deliver(self, level: int, msg: bytes) -> None:
        htype = msg[0]
        if htype in (_HT_KEY_UPDATE, _HT_END_OF_EARLY_DATA) or (
            level == APP and htype != _HT_NEW_SESSION_TICKET
        ):
            # RFC 9001 sections 6 and 8.3: no KeyUpdate, no EndOfEarlyData; post-handshake
            # only tickets (no post-handshake client authentication).
            raise self._fail(
                TlsError(
                    f"TLS {self.role}: the {self.peer} sent handshake message type {htype} "
                    f"at level {LEVEL_NAMES[level]}, not allowed in QUIC: "
                    f"{alert_name(A_UNEXPECTED_MESSAGE)}",
                    alert=A_UNEXPECTED_MESSAGE,
                )
            )
        if level == APP and not self.handshake_complete:
            self._early_app.append(msg)
            return
        g = _g()
        rc = g.lib.gnutls_handshake_write(self._session, _TO_GNUTLS_LEVEL[level], msg, len(msg))
        self._reraise()
        if rc < 0:
            raise self._fail(self._error(g, rc))

    def _add_send(self, level: int, data: bytes) -> None:
        last = self._events[-1] if self._events else None
        if isinstance(last, Send) and last.level == level:
            self._events[-1] = Send(level, last.data + data)
        else:
            self._events.append(Send(level, data))

    def _cipher_type(self, gnutls_cipher: int) -> int:
        ctype = _CIPHER_TYPE.get(gnutls_cipher)
        if ctype is None:
            raise TlsError(
                f"TLS {self.role}: negotiated gnutls cipher {gnutls_cipher}, which the kernel "
                "does not implement",
                alert=A_INTERNAL_ERROR,
            )
        return ctype

    def _on_secret(self, level: int, rd: Any, wr: Any, size: int) -> None:
        g = _g()
        get = g.lib.gnutls_early_cipher_get if level == EARLY else g.lib.gnutls_cipher_get
        ctype = self._cipher_type(get(self._session))
        if wr != g.ffi.NULL:
            self._events.append(Secret(level, True, ctype, bytes(g.ffi.buffer(wr, size))))
        if rd != g.ffi.NULL:
            self._events.append(Secret(level, False, ctype, bytes(g.ffi.buffer(rd, size))))

    def _on_peer_params(self, data: bytes) -> None:
        if data == self.peer_transport_params:
            return  # the second ClientHello after a HelloRetryRequest repeats them
        self.peer_transport_params = data
        self._events.append(PeerTransportParams(data))
        if self.on_peer_transport_params is not None:
            ours = self.on_peer_transport_params(data)
            if ours is not None:
                self.set_local_transport_params(ours)

    def _params_to_send(self) -> bytes:
        if self._local_params is None:
            raise RuntimeError(
                "no local transport parameters: call set_local_transport_params() or return "
                "them from on_peer_transport_params"
            )
        return self._local_params

    def _check_negotiated(self) -> int:
        """Server after the ClientHello, client after EncryptedExtensions (RFC 9001 8.1, 8.2).

        gnutls' mandatory ALPN only fails when the offers do not overlap, not when the peer
        offers or selects none, and it knows nothing of transport parameters.  (The client
        cannot check in EncryptedExtensions' own post hook: gnutls 3.7.9 runs it before it
        parses the extensions.)
        """
        if self.peer_transport_params is None:
            self._reason = (
                f"the {self.peer} sent no quic_transport_parameters extension "
                "(not a QUIC peer? RFC 9001 8.2)",
                A_MISSING_EXTENSION,
            )
            return _E_MISSING_EXTENSION
        g = _g()
        d = g.ffi.new("gnutls_datum_t *")
        if g.lib.gnutls_alpn_get_selected_protocol(self._session, d) < 0:
            self._reason = (
                f"the {self.peer} negotiated no application protocol "
                f"(ALPN: we {'accept' if self.server else 'offer'} {', '.join(self.alpns)})",
                A_NO_APPLICATION_PROTOCOL,
            )
            return _E_NO_APPLICATION_PROTOCOL
        self._negotiated = True
        return 0

    def _on_keylog(self, label: Any, secret: Any) -> None:
        if not self.keylog:
            return
        g = _g()
        client, server = g.ffi.new("gnutls_datum_t *"), g.ffi.new("gnutls_datum_t *")
        g.lib.gnutls_session_get_random(self._session, client, server)
        crandom = bytes(g.ffi.buffer(client.data, client.size)).hex()
        value = bytes(g.ffi.buffer(secret.data, secret.size)).hex()
        self._keylog_lines.append(f"{g.ffi.string(label).decode()} {crandom} {value}\n")

    def _flush_keylog(self) -> None:
        if not self._keylog_lines or not self.keylog:
            return
        text, self._keylog_lines = "".join(self._keylog_lines).encode(), []
        fd = os.open(self.keylog, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, text)  # one append per step: lines of two engines never interleave
        finally:
            os.close(fd)

    def _error(self, g: _Gnutls, rc: int) -> TlsError:
        """The TlsError for a fatal gnutls error, with the alert to send."""
        ffi, lib = g.ffi, g.lib
        head = f"TLS handshake failed ({self.role})"
        if self._reason is not None:
            text, alert = self._reason
        elif rc == _E_CERT_VERIFICATION:
            text, alert = self._cert_error(g)
        elif rc == _E_NO_APPLICATION_PROTOCOL:
            text = (
                f"no application protocol in common with the {self.peer} "
                f"(ALPN: we {'accept' if self.server else 'offer'} {', '.join(self.alpns)})"
            )
            alert = A_NO_APPLICATION_PROTOCOL
        elif rc == _E_CERTIFICATE_REQUIRED:
            text = (
                "the client sent no certificate and verify_client requires one (has it one "
                "issued by a CA in cafile? gnutls clients send only such a certificate)"
            )
            alert = A_CERTIFICATE_REQUIRED
        elif rc == _E_FATAL_ALERT_RECEIVED:  # not on QUIC (alerts arrive as CONNECTION_CLOSE)
            return self.peer_alert(lib.gnutls_alert_get(self._session))
        else:
            level = ffi.new("int *")
            alert = lib.gnutls_error_to_alert(rc, level)
            text = g.strerror(rc)
            if alert < 0:
                alert = A_INTERNAL_ERROR
        if self.alert is not None and self._reason is None and rc != _E_CERT_VERIFICATION:
            alert = self.alert  # gnutls itself chose the alert (through the alert hook)
        return TlsError(f"{head}: {text}: {alert_name(alert)}", alert=alert, gnutls_error=rc)

    def _cert_error(self, g: _Gnutls) -> tuple[str, int]:
        ffi, lib = g.ffi, g.lib
        status = lib.gnutls_session_get_verify_cert_status(self._session)
        out = ffi.new("gnutls_datum_t *")
        desc = ""
        if lib.gnutls_certificate_verification_status_print(status, _GNUTLS_CRT_X509, out, 0) == 0:
            desc = ffi.string(ffi.cast("char *", out.data), out.size).decode(errors="replace")
            lib.gnutls_free(out.data)
        desc = desc.replace("The certificate is NOT trusted. ", "").strip().rstrip(".")
        if status & _GNUTLS_CERT_REVOKED:
            alert, hint = A_CERTIFICATE_REVOKED, ""
        elif status & (_GNUTLS_CERT_EXPIRED | _GNUTLS_CERT_NOT_ACTIVATED):
            alert, hint = A_CERTIFICATE_EXPIRED, " (check the clocks)"
        elif status & (_GNUTLS_CERT_SIGNER_NOT_FOUND | _GNUTLS_CERT_SIGNER_NOT_CA):
            alert, hint = A_UNKNOWN_CA, " (is cafile the CA that issued it?)"
        else:
            alert = A_BAD_CERTIFICATE
            hint = (
                f" (not issued for {self.server_name!r})"
                if status & _GNUTLS_CERT_UNEXPECTED_OWNER and self.server_name
                else ""
            )
        name = f" for {self.server_name}" if self.server_name and not self.server else ""
        return f"{self.peer} certificate{name} rejected: {desc}{hint}", alert
