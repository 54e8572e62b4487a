"""The kernel key retention service (keyctl(2)), as much of it as pre-shared keys need.

net/handshake names a PSK by its key serial: a kernel service passes the serial to
``tls_client_hello_psk()``/``tls_server_hello_psk()``, the agent reads the key's description
(the PSK identity) and payload (the key) by that serial.  :func:`add_psk` makes such a key for
the sample service; :func:`read_psk` is the agent's side.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

from quicctl.errors import QuicctlError

# keyctl(2) and add_key(2) by architecture (the generic table for the arm64/riscv ones).
_SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219), "riscv64": (217, 219),
             "ppc64le": (269, 271), "s390x": (278, 280)}  # fmt: skip
KEYCTL_SETPERM, KEYCTL_DESCRIBE, KEYCTL_UNLINK, KEYCTL_READ, KEYCTL_INVALIDATE = 5, 6, 9, 11, 21
KEY_SPEC_PROCESS_KEYRING = -2
KEY_POS_ALL = 0x3F000000
KEY_USR_VIEW, KEY_USR_READ, KEY_USR_SEARCH = 0x00010000, 0x00020000, 0x00080000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _nr(i: int) -> int:
    arch = platform.machine()
    if arch not in _SYSCALLS:
        raise QuicctlError(f"keyctl: unknown system call numbers for {arch}")
    return _SYSCALLS[arch][i]


def _check(rc: int, what: str) -> int:
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return rc


def _keyctl(op: int, *args: int | bytes | ctypes.Array) -> int:
    cargs = [ctypes.c_ulong(a & (2**64 - 1)) if isinstance(a, int) else a for a in args]
    return _libc.syscall(ctypes.c_long(_nr(1)), ctypes.c_long(op), *cargs)


def add_psk(identity: str, key: bytes, keyring: int = KEY_SPEC_PROCESS_KEYRING) -> int:
    """A "user" key named ``identity`` holding ``key`` in ``keyring`` (by default this
    process's: it goes when the process does), readable by its owner's other processes (the
    agent runs as the same user).  Returns its serial."""
    if not identity or len(identity.encode()) > 255 or not key:
        raise QuicctlError("a PSK needs an identity of 1..255 bytes and a non-empty key")
    return add_user_key(identity, key, keyring, what=f"PSK {identity!r}")


def add_user_key(description: str, payload: bytes, keyring: int = KEY_SPEC_PROCESS_KEYRING,
                 what: str = "a key") -> int:  # fmt: skip
    """A "user" key (at most 32 KB) as :func:`add_psk` makes it; ``what`` names it in errors."""
    try:
        serial = _check(_libc.syscall(ctypes.c_long(_nr(0)), b"user", description.encode(),
                                      payload, ctypes.c_size_t(len(payload)),
                                      ctypes.c_int(keyring)),
                        "add_key")  # fmt: skip
        perm = KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_SEARCH
        _check(_keyctl(KEYCTL_SETPERM, serial, perm), "keyctl(SETPERM)")
    except OSError as exc:
        raise QuicctlError(f"cannot put {what} in the kernel keyring: {exc.strerror} "
                           "(CONFIG_KEYS? the key quota, /proc/sys/kernel/keys/maxkeys?)"
                           ) from None  # fmt: skip
    return serial


def remove(serial: int) -> None:
    """Invalidate a key (idempotent: a key already gone, or serial 0, is fine)."""
    if serial <= 0:
        return
    try:
        _check(_keyctl(KEYCTL_INVALIDATE, serial), f"keyctl(INVALIDATE, {serial})")
    except OSError:
        pass


def describe(serial: int) -> tuple[str, str]:
    """(type, description) of a key."""
    buf = ctypes.create_string_buffer(4096)
    n = _check(_keyctl(KEYCTL_DESCRIBE, serial, buf, len(buf)), f"key {serial}")
    text = buf.raw[: max(0, min(n, len(buf)) - 1)].decode(errors="replace")
    parts = text.split(";", 4)  # type;uid;gid;perm;description
    if len(parts) != 5:
        raise OSError(0, f"key {serial}: unexpected description {text!r}")
    return parts[0], parts[4]


def read(serial: int) -> bytes:
    """A key's payload."""
    size = 256
    while True:
        buf = ctypes.create_string_buffer(size)
        n = _check(_keyctl(KEYCTL_READ, serial, buf, size), f"key {serial}")
        if n <= size:
            return buf.raw[:n]
        if n > 1 << 20:
            raise OSError(0, f"key {serial}: a {n}-byte payload is no PSK")
        size = n


def read_psk(serial: int) -> tuple[str, bytes]:
    """(identity, key) of the PSK with this serial: its description and its payload."""
    _type, identity = describe(serial)
    key = read(serial)
    if not identity or not key:
        raise OSError(0, f"key {serial}: an empty identity or key is no PSK")
    return identity, key
