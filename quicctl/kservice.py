"""The sample kernel service, quic_sample.ko: QUIC connections owned by the kernel, their
handshakes done by the agent (:mod:`quicctl.agent`) through net/handshake.  This module loads it
and drives its ``quic_sample`` generic netlink family: GET (fetch one path, the kernel returns
its length and SHA-256) and SERVE (serve files under a root to a number of connections).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from quicctl.agent import genl
from quicctl.errors import QuicctlError

FAMILY = "quic_sample"
MODULE = "quic_sample"
CMD_GET, CMD_SERVE = 1, 2
(A_ADDR, A_PORT, A_ALPN, A_PATH, A_PEERNAME, A_TIMEOUT, A_ROOT, A_COUNT, A_BYTES, A_SHA256,
 A_SERVED, A_PAD, A_PSK, A_CANCEL, A_FAILED, A_CERT, A_PRIVKEY) = range(1, 18)  # fmt: skip


def module_path(release: str | None = None) -> Path:
    from quicctl import kbuild

    return kbuild.module_path(release or os.uname().release).with_name("quic_sample.ko")


def is_loaded() -> bool:
    return Path(f"/sys/module/{MODULE}").exists()


def load() -> None:
    """quic.ko (if needed), then quic_sample.ko from the same build."""
    from quicctl import kmod

    kmod.load()
    if is_loaded():
        return
    ko = module_path()
    if not ko.is_file():
        raise QuicctlError(f"{ko} is not built: this kernel has no net/handshake "
                           "(CONFIG_NET_HANDSHAKE, Linux 6.5 and later)?")  # fmt: skip
    proc = subprocess.run(["insmod", str(ko)], capture_output=True, text=True)
    if proc.returncode:
        raise QuicctlError(f"cannot load {ko}: {proc.stderr.strip()}")


def unload() -> bool:
    if not is_loaded():
        return False
    proc = subprocess.run(["rmmod", MODULE], capture_output=True, text=True)
    if proc.returncode:
        raise QuicctlError(f"cannot unload {MODULE}: {proc.stderr.strip()}")
    return True


def _call(cmd: int, attrs: bytes, what: str, timeout: float) -> genl.Attrs:
    nl = genl.GenlSocket()
    try:
        try:
            fam = nl.resolve(FAMILY)
        except OSError:
            raise QuicctlError(f"{what}: quic_sample.ko is not loaded") from None
        try:
            replies = nl.request(fam.id, cmd, attrs, timeout=timeout)
        except TimeoutError:
            raise QuicctlError(f"{what}: no answer from quic_sample in {timeout:.0f} s") from None
        except OSError as exc:
            raise QuicctlError(f"{what}: {exc.strerror}") from None
        if not replies:
            raise QuicctlError(f"{what}: quic_sample sent no result")
        return replies[0].attrs
    finally:
        nl.close()


@dataclass
class Fetched:
    path: str
    size: int
    sha256: str
    seconds: float

    @property
    def mbps(self) -> float:
        return self.size * 8 / self.seconds / 1e6 if self.seconds else 0.0


def get(addr: str, port: int, path: str, *, alpn: str = "hq-interop",
        peername: str | None = None, timeout: float = 30.0, psk: int = 0,
        cancel: float = 0) -> Fetched:  # fmt: skip
    """One connection from the kernel service: the path's length and SHA-256.  ``psk``: the
    key serial of a pre-shared key (:func:`quicctl.keyring.add_psk`) instead of x509.
    ``cancel``: seconds after which the service cancels the handshake (tls_handshake_cancel),
    whatever the agent is doing."""
    attrs = (genl.attr(A_ADDR, addr) + genl.attr(A_PORT, port, "=H") + genl.attr(A_ALPN, alpn)
             + genl.attr(A_PATH, path) + genl.attr(A_TIMEOUT, int(timeout * 1000)))  # fmt: skip
    if peername:
        attrs += genl.attr(A_PEERNAME, peername)
    if psk:
        attrs += genl.attr(A_PSK, psk)
    if cancel:
        attrs += genl.attr(A_CANCEL, max(1, int(cancel * 1000)))
    t0 = time.monotonic()
    a = _call(CMD_GET, attrs, f"in-kernel GET {path} from {addr} port {port}", timeout * 3 + 10)
    took = time.monotonic() - t0
    size, digest = a.get(A_BYTES), a.get(A_SHA256)
    if size is None or len(size) != 8 or digest is None or len(digest) != 32:
        raise QuicctlError("quic_sample's GET reply lacks its length or digest")
    return Fetched(path, struct.unpack("=Q", size)[0], digest.hex(), took)


def serve(addr: str, port: int, root: str, *, alpn: str = "hq-interop", count: int = 1,
          timeout: float = 30.0, psk: int = 0,
          x509: tuple[int, int] | None = None) -> tuple[int, int, int]:  # fmt: skip
    """Serve ``count`` connections from the kernel: (connections served, bytes sent,
    connections that failed on the way).  ``x509``: key serials of the certificate and private
    key the service names for its handshakes (:func:`add_x509`); else the agent's own."""
    attrs = (genl.attr(A_ADDR, addr) + genl.attr(A_PORT, port, "=H") + genl.attr(A_ALPN, alpn)
             + genl.attr(A_ROOT, str(Path(root).resolve()))
             + genl.attr(A_COUNT, count) + genl.attr(A_TIMEOUT, int(timeout * 1000))
             + (genl.attr(A_PSK, psk) if psk else b""))  # fmt: skip
    if x509:
        attrs += genl.attr(A_CERT, x509[0]) + genl.attr(A_PRIVKEY, x509[1])
    a = _call(CMD_SERVE, attrs, f"in-kernel server on {addr} port {port}",
              timeout * (count + 2) + 10)  # fmt: skip
    served, size, failed = a.u32(A_SERVED), a.get(A_BYTES), a.u32(A_FAILED)
    if served is None or size is None or len(size) != 8 or failed is None:
        raise QuicctlError("quic_sample's SERVE reply lacks its counts")
    return served, struct.unpack("=Q", size)[0], failed


def add_x509(certfile: str, keyfile: str) -> tuple[int, int]:
    """A certificate and its private key (PEM files) as keys of this process, for the service
    to name by serial; :func:`quicctl.keyring.remove` each when done."""
    from quicctl import keyring

    data = []
    for path in (certfile, keyfile):
        try:
            data.append(Path(path).read_bytes())
        except OSError as exc:
            raise QuicctlError(f"cannot read {path}: {exc.strerror}") from None
    cert = keyring.add_user_key("quicctl:cert", data[0], what=f"certificate {certfile}")
    try:
        return cert, keyring.add_user_key("quicctl:key", data[1], what=f"private key {keyfile}")
    except BaseException:
        keyring.remove(cert)
        raise


def read_psk_file(path: str) -> tuple[str, bytes]:
    """A PSK file: one line ``IDENTITY:HEXKEY`` (the key at least 16 bytes)."""
    try:
        text = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise QuicctlError(f"PSK file {path}: {exc}") from None
    identity, sep, hexkey = text.rpartition(":") if "\n" not in text else ("", "", "")
    try:
        key = bytes.fromhex(hexkey)
    except ValueError:
        key = b""
    if not sep or not identity or len(identity.encode()) > 255 or len(key) < 16:
        raise QuicctlError(f"PSK file {path}: expected one line IDENTITY:HEXKEY (an identity of "
                           "1..255 bytes, a key of at least 16 bytes in hex)")  # fmt: skip
    return identity, key


def udp_bound(port: int) -> bool:
    """A UDP socket of this namespace is bound to ``port`` (the service's listener)."""
    hexport = f":{port:04X} "
    for name in ("udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        if any(hexport in line.split(None, 2)[1] + " " for line in lines if line.strip()):
            return True
    return False


def agent_running() -> bool:
    """An agent (ours or tlshd) already serves this network namespace (net/handshake queues
    requests per namespace)."""
    here = os.stat("/proc/self/ns/net").st_ino
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if os.stat(f"/proc/{pid}/ns/net").st_ino != here:
                continue
        except OSError:
            continue
        names = [os.path.basename(c) for c in cmd[:3]]
        if b"tlshd" in names or (b"agent" in cmd[:4] and any(b"quicctl" in n for n in names)):
            return True
    return False


def start_agent(*args: str) -> subprocess.Popen:
    """``quicctl agent ARGS`` in the background, for the duration of one command."""
    exe = shutil.which("quicctl") or str(Path(sys.executable).parent / "quicctl")
    proc = subprocess.Popen([exe, "agent", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    line = proc.stderr.readline()  # "serving handshake requests" or the error
    if "serving" not in line:
        proc.wait(5)
        raise QuicctlError(f"the handshake agent did not start: {line.strip()}")

    def forward() -> None:  # its log lines, so its pipe never fills
        for text in proc.stderr:
            sys.stderr.write(text)

    proc.forwarder = threading.Thread(target=forward, daemon=True)  # type: ignore[attr-defined]
    proc.forwarder.start()  # type: ignore[attr-defined]
    return proc


def stop_agent(proc: subprocess.Popen | None) -> None:
    """End an agent :func:`start_agent` started, its last log lines passed on."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.forwarder.join(5)  # type: ignore[attr-defined]
