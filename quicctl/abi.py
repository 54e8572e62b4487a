"""The QUIC socket ABI for Python, read from the UAPI header (the one source of truth).

``kernel/include/uapi/linux/quic.h`` is run through the C preprocessor (``cc -E -dD``); its
result is checked in as :mod:`quicctl._uapi` (``python -m quicctl.abi --write``), which is
used on first use (importing this module costs nothing) whenever the header read is the one it
was generated from (same SHA-256), so an installed wheel needs no compiler.  Another or an
edited header goes through the preprocessor at run time.  From the header come:

* ``ffi``: a cffi FFI whose cdef is our header's own text after preprocessing (no system header
  bodies), so ``ffi.sizeof("struct quic_config")`` and friends are the C layouts;
* every integer constant as a module attribute and in :func:`constants`: the enumerators and
  object-like macros of our header, the generic ``MSG_*`` flags of ``<sys/socket.h>`` and the
  ``TLS_CIPHER_*`` numbers of ``<linux/tls.h>``.  No number of the ABI is written in Python.

Socket options go through libc directly (cffi ABI mode) because several QUIC getsockopt calls
pass input in the buffer (EVENT, TRANSPORT_PARAM ``remote``, STREAM_OPEN, CONNECTION_ID), which
:meth:`socket.socket.getsockopt` cannot do.  The typed helpers take and return plain values:

* struct options: a ``dict`` of field names to ints; ``__u8`` arrays are ``bytes`` (``phrase``
  up to its NUL); nested structs (``union quic_event``) are nested dicts;
* byte options (ALPN, TOKEN, SESSION_TICKET, TRANSPORT_PARAM_EXT): ``bytes``;
* CONNECTION_MIGRATION: a socket-module address tuple (``(host, port)`` or
  ``(host, port, flowinfo, scope_id)``), or the raw sockaddr bytes;
* KEY_UPDATE: nothing.

Failures raise :class:`quicctl.errors.QuicSocketError` (an OSError), e.g. ``EINVAL (Invalid
argument): setsockopt QUIC_SOCKOPT_... (optlen 8)``: ``.errno`` is set and the message names
the errno and the option.  EAGAIN and EINTR stay BlockingIOError and InterruptedError.

Set ``QUICCTL_UAPI_HEADER`` to read another copy of the header, ``CPP`` to choose the
preprocessor command (default: ``cc -E``, ``gcc -E`` or ``clang -E``, the first one found);
neither is needed for the header the package carries.
"""

from __future__ import annotations

import errno as _errno
import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from quicctl import paths
from quicctl.errors import QuicSocketError, errno_name

if TYPE_CHECKING:
    import cffi

__all__ = [
    "AbiError",
    "Abi",
    "OPTIONS",
    "constants",
    "default_header",
    "errno_name",
    "field_offsets",
    "from_bytes",
    "getsockopt",
    "load",
    "option_name",
    "option_number",
    "raw_getsockopt",
    "raw_setsockopt",
    "setsockopt",
    "sockaddr_bytes",
    "struct_align",
    "struct_size",
    "to_bytes",
]

SockLike = Union[int, "socket.socket", Any]
Value = Any  # None, int, bytes, str, dict, address tuple or cffi cdata, per option

# How each QUIC_SOCKOPT_<NAME> carries its value (reference section 3).  The option numbers come
# from the header; only names live here.
OPTIONS: dict[str, str] = {
    "EVENT": "struct quic_event_option",
    "STREAM_OPEN": "struct quic_stream_info",
    "STREAM_RESET": "struct quic_errinfo",
    "STREAM_STOP_SENDING": "struct quic_errinfo",
    "CONNECTION_ID": "struct quic_connection_id_info",
    "CONNECTION_CLOSE": "struct quic_connection_close",
    "CONNECTION_MIGRATION": "sockaddr",
    "KEY_UPDATE": "none",
    "TRANSPORT_PARAM": "struct quic_transport_param",
    "CONFIG": "struct quic_config",
    "TOKEN": "bytes",
    "ALPN": "bytes",
    "SESSION_TICKET": "bytes",
    "CRYPTO_SECRET": "struct quic_crypto_secret",
    "TRANSPORT_PARAM_EXT": "bytes",
}

# Default getsockopt buffer for byte-valued options: the largest optlen any SOL_QUIC option
# accepts.  A caller wanting a smaller buffer passes its length as ``value``.
DEFAULT_BUFLEN = 4096

# __u8 arrays that hold a NUL-terminated string; from_bytes() cuts them at the first NUL.
_CSTRING_FIELDS = frozenset({"phrase"})

# Types the preprocessed header uses but does not define (their bodies come from
# <linux/types.h>), libc's socket option calls, and the two address structs
# CONNECTION_MIGRATION takes (Linux layouts, reference section 2.13).
_PRELUDE = """
typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef signed short __s16;
typedef unsigned int __u32;
typedef signed int __s32;
typedef unsigned long long __u64;
typedef signed long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;

struct sockaddr_in {
    unsigned short sin_family;
    __be16 sin_port;
    __be32 sin_addr;
    unsigned char sin_zero[8];
};
struct sockaddr_in6 {
    unsigned short sin6_family;
    __be16 sin6_port;
    __be32 sin6_flowinfo;
    unsigned char sin6_addr[16];
    __u32 sin6_scope_id;
};

int setsockopt(int fd, int level, int optname, const void *optval, unsigned int optlen);
int getsockopt(int fd, int level, int optname, void *optval, unsigned int *optlen);
"""

_LINEMARKER = re.compile(r'^# (\d+) "((?:[^"\\]|\\.)*)"')
_DEFINE = re.compile(r"^#define ([A-Za-z_]\w*)(\(?)\s*(.*)$")
_INT_LITERAL = re.compile(r"^\(?\s*(-?(?:0[xX][0-9a-fA-F]+|[0-9]+))[uUlL]*\s*\)?$")
_MSG_ENUMERATOR = re.compile(r"\b(MSG_\w+)\s*=\s*(0[xX][0-9a-fA-F]+|[0-9]+)\b")
_ENUM_BODY = re.compile(r"\benum\b\s*\w*\s*\{([^}]*)\}", re.S)
_SYSTEM_PREFIXES = ("MSG_", "TLS_CIPHER_")


class AbiError(RuntimeError):
    """The header cannot be read or parsed (no preprocessor, syntax cffi rejects, ...)."""


def _parse_int(text: str) -> int | None:
    m = _INT_LITERAL.match(text.strip())
    return int(m.group(1), 0) if m else None


def _find_cpp() -> list[str]:
    env = os.environ.get("CPP")
    if env:
        return shlex.split(env)
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc):
            return [cc, "-E"]
    raise AbiError("cannot read the QUIC UAPI header: no C preprocessor (install gcc, or set CPP)")


def _preprocess(header: Path) -> str:
    src = (
        f'#include "{header}"\n'
        "#include <sys/socket.h>\n"
        "#if defined(__has_include)\n#if __has_include(<linux/tls.h>)\n"
        "#include <linux/tls.h>\n#endif\n#endif\n"
    )
    argv = [*_find_cpp(), "-dD", "-x", "c", "-std=gnu11", "-"]
    try:
        res = subprocess.run(argv, input=src, capture_output=True, text=True, check=False)
    except OSError as e:
        raise AbiError(f"cannot run the C preprocessor {argv[0]}: {e.strerror}") from e
    if res.returncode != 0:
        raise AbiError(f"cannot preprocess {header} with {' '.join(argv)}:\n{res.stderr.strip()}")
    return res.stdout


def _normalize(text: str) -> str:
    """The preprocessed declarations, one per line and indented by braces: the same text
    whether it comes from the C preprocessor now or from the generated module."""
    out: list[str] = []
    depth = 0
    cur = ""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        cur = re.sub(r"\s+([,;])", r"\1", f"{cur} {line}" if cur else line)
        if cur.endswith(("{", "}", ";", ",")):
            if cur.startswith("}"):
                depth -= 1
            out.append("    " * depth + cur)
            if cur.endswith("{"):
                depth += 1
            cur = ""
    if cur:
        out.append("    " * depth + cur)
    return "\n".join(out) + "\n"


def extract(header: str | Path) -> tuple[str, dict[str, int], dict[str, int]]:
    """Read ``header`` with the C preprocessor: its declarations (cffi cdef text), its integer
    object-like macros (with ``TLS_CIPHER_*`` of ``<linux/tls.h>``), and the generic ``MSG_*``
    flags of ``<sys/socket.h>``."""
    header = Path(header).resolve()
    if not header.is_file():
        raise AbiError(f"cannot read the QUIC UAPI header: {header} does not exist")
    ours, macros, system_text = _split(header, _preprocess(header))
    msg: dict[str, int] = {}
    for name, value in _MSG_ENUMERATOR.findall(system_text):  # glibc: MSG_* are enumerators
        msg[name] = int(value, 0)
    for name, (_origin, body) in macros.items():  # musl and friends: plain macros
        if name.startswith("MSG_") and name not in msg:
            v = _parse_int(body)
            if v is not None:
                msg[name] = v
    ints: dict[str, int] = {}
    for name, (origin, value) in macros.items():
        if origin == "ours" or name.startswith("TLS_CIPHER_"):
            v = _parse_int(value)
            if v is not None:
                ints[name] = v
    return _normalize(ours), ints, msg


def _split(header: Path, text: str) -> tuple[str, dict[str, tuple[str, str]], str]:
    """Split preprocessor output into our header's text, macros, and system text."""
    ours: list[str] = []
    system: list[str] = []
    macros: dict[str, tuple[str, str]] = {}
    here = str(header)
    in_ours = False
    for line in text.splitlines():
        if line.startswith("#"):
            m = _LINEMARKER.match(line)
            if m:
                in_ours = m.group(2) == here
                continue
            d = _DEFINE.match(line)
            if d and not d.group(2):  # object-like macros only
                origin = "ours" if in_ours else "system"
                if in_ours or d.group(1).startswith(_SYSTEM_PREFIXES):
                    macros[d.group(1)] = (origin, d.group(3))
            continue  # #undef, #pragma, ... are not declarations
        (ours if in_ours else system).append(line)
    if not ours:
        raise AbiError(f"no declarations from {header} in the preprocessor output")
    return "\n".join(ours) + "\n", macros, "\n".join(system)


def header_digest(header: str | Path) -> str | None:
    """SHA-256 of the header file (None when it cannot be read)."""
    try:
        return hashlib.sha256(Path(header).read_bytes()).hexdigest()
    except OSError:
        return None


class Abi:
    """The ABI read from one copy of the header: ``ffi``, ``lib`` and ``constants``.

    ``Abi(header)`` runs the C preprocessor on it; ``Abi(header, generated=True)`` takes the
    declarations from :mod:`quicctl._uapi` (generated from the header, no compiler needed)."""

    def __init__(self, header: str | Path, *, generated: bool = False) -> None:
        import cffi  # deferred: keeps ``import quicctl.abi`` free

        self.header = Path(header).resolve()
        if generated:
            from quicctl import _uapi

            cdef, ints, msg = _uapi.CDEF, _uapi.MACROS, _uapi.MSG
        else:
            cdef, ints, msg = extract(self.header)
        # Give cffi the generic MSG_* values, so "MSG_QUIC_STREAM_FIN = MSG_FIN" resolves.
        enumerators = ",\n".join(f"    {k} = {v:#x}" for k, v in msg.items())
        msg_enum = f"enum {{\n{enumerators}\n}};\n"

        self.ffi: cffi.FFI = cffi.FFI()
        try:
            self.ffi.cdef(_PRELUDE + msg_enum + cdef)
        except Exception as e:  # cffi raises CDefError, pycparser ParseError, ...
            raise AbiError(f"cffi cannot parse {self.header}: {e}") from e
        self.lib = self.ffi.dlopen(None)

        consts: dict[str, int] = dict(msg)
        for body in _ENUM_BODY.findall(cdef):
            for item in body.split(","):
                name = item.split("=")[0].strip()
                if name:
                    consts[name] = getattr(self.lib, name)
        consts.update(ints)
        self.constants: dict[str, int] = consts
        self.cdef = cdef


def generated_source(header: str | Path) -> str:
    """The text of :mod:`quicctl._uapi` for ``header`` (``python -m quicctl.abi --write``)."""
    cdef, ints, msg = extract(header)

    def table(d: dict[str, int]) -> str:
        # hex as ruff format writes it (upper-case digits), so the file stays format-clean
        return "".join(f'    "{k}": {"-" if v < 0 else ""}0x{abs(v):X},\n' for k, v in d.items())

    return (
        '"""The QUIC socket ABI of kernel/include/uapi/linux/quic.h, after the C preprocessor.\n'
        "\n"
        "Generated by `python -m quicctl.abi --write` (`make abi`): do not edit.  quicctl.abi\n"
        "uses it instead of running a preprocessor when the header's SHA-256 is HEADER_SHA256;\n"
        'test_abi checks it is what the header gives now.\n"""\n'
        "\n"
        f'HEADER_SHA256 = "{header_digest(header)}"\n'
        "\n"
        "# The header's declarations: cffi cdef text.\n"
        f'CDEF = """\\\n{cdef}"""\n'
        "\n"
        "# Integer object-like macros of the header, and TLS_CIPHER_* of <linux/tls.h>.\n"
        f"MACROS = {{\n{table(ints)}}}\n"
        "\n"
        "# The generic MSG_* flags of <sys/socket.h>.\n"
        f"MSG = {{\n{table(msg)}}}\n"
    )


GENERATED = Path(__file__).with_name("_uapi.py")

_lock = threading.Lock()
_default: Abi | None = None


def default_header() -> Path:
    """The header this process reads: ``$QUICCTL_UAPI_HEADER`` or the package's own (the
    checkout's, or the copy an installed wheel carries)."""
    return Path(os.environ.get("QUICCTL_UAPI_HEADER", paths.UAPI_HEADER))


def _matches_generated(header: Path) -> bool:
    from quicctl import _uapi

    return header_digest(header) == _uapi.HEADER_SHA256


def load(header: str | Path | None = None) -> Abi:
    """Return the ABI of ``header`` (always through the preprocessor); with no argument the
    cached default one: :func:`default_header` from :mod:`quicctl._uapi` when it was generated
    from exactly that file (no compiler needed), else through the preprocessor."""
    global _default
    if header is not None:
        return Abi(header)
    with _lock:
        if _default is None:
            path = default_header()
            _default = Abi(path, generated=_matches_generated(path))
            for name, value in _default.constants.items():
                globals().setdefault(name, value)
            globals()["ffi"] = _default.ffi
        return _default


def __getattr__(name: str) -> Any:
    """Module attributes ``ffi`` and every constant, read from the header on first use."""
    if name == "ffi":
        return load().ffi
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return load().constants[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(load().constants) | {"ffi"})


def constants() -> dict[str, int]:
    """Every integer constant, by name (a copy)."""
    return dict(load().constants)


# --- structs -----------------------------------------------------------------------------


def _ctype(name: str) -> Any:
    """The cffi type of ``name``: "quic_config", "struct quic_config" or "union quic_event"."""
    ffi_ = load().ffi
    names = (
        [name] if name.startswith(("struct ", "union ")) else [f"struct {name}", f"union {name}"]
    )
    for cname in names:
        try:
            ct = ffi_.typeof(cname)
        except ffi_.error:
            continue
        if ct.fields is not None:  # cffi makes unknown names opaque instead of failing
            return ct
    raise KeyError(f"no struct or union {name!r} in {load().header}")


def struct_size(name: str) -> int:
    """``sizeof`` of a struct or union of the header."""
    return load().ffi.sizeof(_ctype(name))


def struct_align(name: str) -> int:
    """``_Alignof`` of a struct or union of the header."""
    return load().ffi.alignof(_ctype(name))


def field_offsets(name: str) -> dict[str, int]:
    """Field name to byte offset, in declaration order."""
    ct = _ctype(name)
    return {field: f.offset for field, f in ct.fields}


def _fill(ptr: Any, ct: Any, values: Mapping[str, Any]) -> None:
    ffi_ = load().ffi
    known = dict(ct.fields)
    for field, value in values.items():
        f = known.get(field)
        if f is None:
            raise TypeError(f"{ct.cname} has no field {field!r} (fields: {', '.join(known)})")
        if f.type.kind == "array" and isinstance(value, (bytes, bytearray, memoryview, str)):
            data = value.encode() if isinstance(value, str) else bytes(value)
            size = ffi_.sizeof(f.type)
            if len(data) > size:
                raise ValueError(f"{ct.cname}.{field}: {len(data)} bytes do not fit in {size}")
            ffi_.memmove(getattr(ptr, field), data, len(data))
        elif f.type.kind in ("struct", "union") and isinstance(value, Mapping):
            _fill(ffi_.addressof(ptr[0], field), f.type, value)
        else:
            setattr(ptr, field, value)


def to_bytes(name: str, value: Value = None, **fields: Any) -> bytes:
    """Encode a struct: from a dict, a cffi struct, raw bytes, and/or keyword fields.

    Unnamed fields are zero.  ``__u8`` arrays take bytes (or str, encoded as UTF-8).
    """
    abi = load()
    ct = _ctype(name)
    ptr = abi.ffi.new(f"{ct.cname} *")
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) > abi.ffi.sizeof(ct):
            raise ValueError(f"{ct.cname}: {len(data)} bytes, more than {abi.ffi.sizeof(ct)}")
        abi.ffi.memmove(ptr, data, len(data))
    elif isinstance(value, Mapping):
        _fill(ptr, ct, value)
    elif isinstance(value, abi.ffi.CData) and abi.ffi.typeof(value) is ct:
        abi.ffi.memmove(ptr, abi.ffi.addressof(value), abi.ffi.sizeof(ct))
    elif isinstance(value, abi.ffi.CData) and abi.ffi.typeof(value) is abi.ffi.typeof(ptr):
        abi.ffi.memmove(ptr, value, abi.ffi.sizeof(ct))
    elif value is not None:
        raise TypeError(f"{ct.cname}: cannot encode {value!r} (give a dict, bytes or cdata)")
    _fill(ptr, ct, fields)
    return bytes(abi.ffi.buffer(ptr))


def _to_python(ffi_: Any, ct: Any, cdata: Any, field: str = "") -> Any:
    if ct.kind in ("struct", "union"):
        return {name: _to_python(ffi_, f.type, getattr(cdata, name), name) for name, f in ct.fields}
    if ct.kind == "array":
        data = bytes(ffi_.buffer(cdata))
        if field in _CSTRING_FIELDS:
            data = data.split(b"\0", 1)[0]
        return data
    return int(cdata)


def from_bytes(name: str, data: bytes) -> dict[str, Any]:
    """Decode a struct into a dict.  Shorter data is zero-extended (events carry only the
    bytes of one union member); longer data is an error."""
    abi = load()
    ct = _ctype(name)
    if len(data) > abi.ffi.sizeof(ct):
        raise ValueError(f"{ct.cname}: {len(data)} bytes, more than {abi.ffi.sizeof(ct)}")
    ptr = abi.ffi.new(f"{ct.cname} *")
    abi.ffi.memmove(ptr, bytes(data), len(data))
    return _to_python(abi.ffi, ct, ptr[0])


# --- socket options ----------------------------------------------------------------------


def _fileno(sock: SockLike) -> int:
    return sock if isinstance(sock, int) else sock.fileno()


def option_number(name: str | int) -> int:
    """``"CONFIG"``, ``"quic_sockopt_config"`` or ``9`` -> 9."""
    if isinstance(name, int):
        return name
    key = name.upper()
    if not key.startswith("QUIC_SOCKOPT_"):
        key = "QUIC_SOCKOPT_" + key
    try:
        return load().constants[key]
    except KeyError:
        raise ValueError(f"unknown QUIC socket option {name!r}") from None


def option_name(number: str | int) -> str:
    """9 -> ``"QUIC_SOCKOPT_CONFIG"``; unknown numbers -> ``"QUIC_SOCKOPT_<n>"``."""
    n = option_number(number)
    for short in OPTIONS:
        if load().constants.get("QUIC_SOCKOPT_" + short) == n:
            return "QUIC_SOCKOPT_" + short
    return f"QUIC_SOCKOPT_{n}"


def _kind(number: int) -> str:
    name = option_name(number)
    return OPTIONS.get(name[len("QUIC_SOCKOPT_") :], "bytes")


def _oserror(err: int, call: str, what: str) -> OSError:
    """QuicSocketError naming the errno and the option; "try again" (EAGAIN, EINTR) stays the
    built-in BlockingIOError or InterruptedError for non-blocking callers."""
    msg = f"{errno_name(err)} ({os.strerror(err)}): {call} {what}"
    if err in (_errno.EAGAIN, _errno.EINTR):
        return OSError(err, msg)
    return QuicSocketError(msg, errno=err)


def _describe(level: int, opt: int) -> str:
    if level == load().constants["SOL_QUIC"]:
        return option_name(opt)
    return f"level {level} option {opt}"


def raw_setsockopt(
    fd: SockLike, level: int, opt: int, data: bytes | None, optlen: int | None = None
) -> None:
    """setsockopt(2) with exactly these bytes.  ``optlen`` defaults to ``len(data)``; a larger
    one is backed by zero padding; ``data=None`` passes a NULL pointer (EFAULT tests)."""
    abi = load()
    if data is None:
        buf = abi.ffi.NULL
        optlen = optlen or 0
    else:
        if optlen is None:
            optlen = len(data)
        buf = abi.ffi.new("unsigned char[]", max(len(data), optlen, 1))
        abi.ffi.memmove(buf, data, len(data))
    if abi.lib.setsockopt(_fileno(fd), level, opt, buf, optlen) != 0:
        err = abi.ffi.errno
        raise _oserror(err, "setsockopt", f"{_describe(level, opt)} (optlen {optlen})")


def raw_getsockopt(fd: SockLike, level: int, opt: int, buflen: int, data: bytes = b"") -> bytes:
    """getsockopt(2) into a ``buflen``-byte buffer pre-filled with ``data`` (the input part of
    in/out options); returns the first ``optlen`` bytes the kernel reports."""
    abi = load()
    if len(data) > buflen:
        raise ValueError(f"{len(data)} bytes of input do not fit a {buflen}-byte buffer")
    buf = abi.ffi.new("unsigned char[]", max(buflen, 1))
    abi.ffi.memmove(buf, data, len(data))
    optlen = abi.ffi.new("unsigned int *", buflen)
    if abi.lib.getsockopt(_fileno(fd), level, opt, buf, optlen) != 0:
        err = abi.ffi.errno
        raise _oserror(err, "getsockopt", f"{_describe(level, opt)} (optlen {buflen})")
    return bytes(abi.ffi.buffer(buf, min(optlen[0], buflen)))


def sockaddr_bytes(value: Value) -> bytes:
    """A sockaddr_in / sockaddr_in6 from a socket-module address tuple (or raw bytes)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if not isinstance(value, tuple) or len(value) not in (2, 4):
        raise TypeError(f"expected (host, port) or (host, port, flowinfo, scope_id), got {value!r}")
    host, port = value[0], value[1]
    if len(value) == 2 and ":" not in host:
        return to_bytes(
            "struct sockaddr_in",
            sin_family=socket.AF_INET,
            sin_port=socket.htons(port),
            sin_addr=int.from_bytes(socket.inet_pton(socket.AF_INET, host), sys.byteorder),
        )
    flowinfo, scope_id = (value[2], value[3]) if len(value) == 4 else (0, 0)
    return to_bytes(
        "struct sockaddr_in6",
        sin6_family=socket.AF_INET6,
        sin6_port=socket.htons(port),
        sin6_flowinfo=socket.htonl(flowinfo),
        sin6_addr=socket.inet_pton(socket.AF_INET6, host),
        sin6_scope_id=scope_id,
    )


def _encode(kind: str, value: Value, fields: Mapping[str, Any]) -> bytes | None:
    if kind.startswith("struct "):
        return to_bytes(kind, value, **fields)
    if fields:
        raise TypeError(f"keyword fields only apply to struct options, not {kind}")
    if kind == "sockaddr":
        return sockaddr_bytes(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


def setsockopt(sock: SockLike, name: str | int, value: Value = None, **fields: Any) -> None:
    """Set a SOL_QUIC option with the argument type the reference gives it (see module doc).

    >>> setsockopt(s, "CONFIG", initial_smoothed_rtt=100000)
    >>> setsockopt(s, "ALPN", "h3")
    >>> setsockopt(s, "KEY_UPDATE")
    """
    opt = option_number(name)
    data = _encode(_kind(opt), value, fields)
    raw_setsockopt(sock, load().constants["SOL_QUIC"], opt, data)


def getsockopt(sock: SockLike, name: str | int, value: Value = None, **fields: Any) -> Any:
    """Get a SOL_QUIC option.  Struct options return a dict; ``value``/``fields`` fill the
    input part (``getsockopt(s, "EVENT", type=abi.QUIC_EVENT_STREAM_UPDATE)``).  Byte options
    return bytes; ``value`` is then the buffer length (default 4096).

    A struct option answered with a length other than ``sizeof`` raises ValueError: our kernel
    always writes back the full struct.
    """
    opt = option_number(name)
    kind = _kind(opt)
    sol = load().constants["SOL_QUIC"]
    if kind.startswith("struct "):
        size = struct_size(kind)
        out = raw_getsockopt(sock, sol, opt, size, to_bytes(kind, value, **fields))
        if len(out) != size:
            raise ValueError(
                f"getsockopt {option_name(opt)}: kernel returned {len(out)} bytes, "
                f"expected sizeof({kind}) = {size}"
            )
        return from_bytes(kind, out)
    if fields:
        raise TypeError(f"keyword fields only apply to struct options, not {kind}")
    buflen = value if isinstance(value, int) else DEFAULT_BUFLEN
    data = b"" if value is None or isinstance(value, int) else _encode(kind, value, {}) or b""
    return raw_getsockopt(sock, sol, opt, max(buflen, len(data)), data)


def main(argv: list[str] | None = None) -> int:
    """``python -m quicctl.abi --write``: regenerate quicctl/_uapi.py from the header;
    ``--check``: exit 1 when it is out of date."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m quicctl.abi", description=main.__doc__)
    ap.add_argument("--header", default=str(paths.UAPI_HEADER), help="the UAPI header")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help=f"write {GENERATED}")
    mode.add_argument("--check", action="store_true", help=f"check {GENERATED} is current")
    args = ap.parse_args(argv)
    text = generated_source(args.header)
    if args.write:
        GENERATED.write_text(text)
        return 0
    if GENERATED.read_text() != text:
        print(f"{GENERATED} is out of date: run `python -m quicctl.abi --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
