"""The syscall fuzzer: random sequences of socket calls on QUIC sockets from several threads.

Workers share a pool of sockets in every state (fresh, bound, listening, accepted, and both
ends of real connections, which a connector thread keeps replenishing through quicctl's
handshake) and run sequences of 1-8 calls on them: socket(), bind, connect, listen, accept,
setsockopt/getsockopt of every SOL_QUIC option (names and structs from :mod:`quicctl.abi`)
with random and boundary values and lengths (0, 1, sizeof-1, sizeof, sizeof+1, huge),
sendmsg/recvmsg with random cmsgs (stream info, handshake info, garbage) and flags, shutdown,
ioctl, poll, and close at random points, also while another thread uses the socket.

Each worker draws from ``random.Random(derive(seed, "worker", i))``.  Every call has a 100 ms
SO_RCVTIMEO/SO_SNDTIMEO, so a call still running after WATCHDOG seconds is a hang and
reported with the seed.  At the end every socket is closed, no connection may remain in
/proc/net/quic/conns, a fresh connection must still carry an echo, and the kernel log must be
clean.  The errno of every call is counted per option and operation.
"""

from __future__ import annotations

import random
import select
import socket
import struct
import subprocess
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from quicctl.fuzz import Deadline, Progress, bad_kernel_lines, derive, kmsg
from quicctl.paths import KEYS

IPPROTO_QUIC = 261
ALPN = "quicctl-fuzz"
WORKERS = 4
CONNECTED_TARGET = 3  # pairs the connector keeps alive
# Sockets the pool holds at most: a new one then closes a random one first.  Without a cap
# the pool grew until socket() failed with EMFILE (RLIMIT_NOFILE) and most sequences after
# that ran on no socket at all.
POOL_MAX = 256
WATCHDOG = 60.0  # s: a call running longer is a hang
HUGE = (4096, 65536, 1 << 20)
U64 = (1 << 64) - 1
BOUNDARY = {
    1: (0, 1, 0x7F, 0x80, 0xFF),
    2: (0, 1, 1199, 1200, 0x7FFF, 0xFFFF),
    4: (0, 1, 999_999, 1_000_000, 5_000_000, 0x7FFFFFFF, 0xFFFFFFFF),
    8: (0, 1, (1 << 62) - 1, 1 << 62, (1 << 63) - 1, U64),
}
OPS = {
    "setsockopt": 30,
    "getsockopt": 25,
    "sendmsg": 14,
    "recvmsg": 10,
    "socket": 4,
    "bind": 3,
    "connect": 3,
    "listen": 3,
    "accept": 3,
    "close": 3,
    "shutdown": 1,
    "ioctl": 1,
    "poll": 1,
    "name": 1,
}
TIMEO = struct.pack("ll", 0, 100_000)


class Sock:
    """A pooled socket and what it was made as."""

    def __init__(self, sock: socket.socket, state: str):
        self.sock = sock
        self.state = state


class Pool:
    def __init__(self):
        self.lock = threading.Lock()
        self.items: list[Sock] = []
        self.made = 0
        self.evicted = 0  # closed to make room (max)
        self.max = POOL_MAX

    def add(self, sock: socket.socket, state: str) -> Sock:
        for opt in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, TIMEO)
            except OSError:
                pass
        s = Sock(sock, state)
        with self.lock:
            self.items.append(s)
            self.made += 1
        return s

    def pick(self, rng: random.Random) -> Sock | None:
        with self.lock:
            return rng.choice(self.items) if self.items else None

    def remove(self, s: Sock) -> bool:
        with self.lock:
            if s in self.items:
                self.items.remove(s)
                return True
            return False

    def count(self, state: str) -> int:
        with self.lock:
            return sum(1 for s in self.items if s.state == state)

    def size(self) -> int:
        with self.lock:
            return len(self.items)

    def drain(self) -> list[Sock]:
        with self.lock:
            items, self.items = self.items, []
            return items


def _dump_blocked_tasks(progress) -> None:
    """A hang: the kernel's stacks of every blocked task (sysrq w) into the log and the
    progress output, which say where the call waits."""
    mark = f"quicctl fuzz: blocked tasks at {time.monotonic():.0f}"
    kmsg(mark)
    try:
        Path("/proc/sysrq-trigger").write_text("w")
    except OSError as exc:
        progress(f"syscalls: cannot dump blocked tasks: {exc}")
        return
    time.sleep(1)
    out = subprocess.run(["dmesg"], capture_output=True, text=True).stdout.splitlines()
    start = max((i for i, ln in enumerate(out) if mark in ln), default=len(out))
    for line in out[start + 1 :][:400]:
        progress(f"  blocked: {line}")


def _options() -> dict[str, tuple[int, str]]:
    from quicctl import abi

    return {name: (abi.option_number(name), kind) for name, kind in abi.OPTIONS.items()}


class Values:
    """Option values: structs with boundary fields, byte strings around their limits."""

    def __init__(self, rng: random.Random, peer: tuple[str, int]):
        from quicctl import abi

        self.rng = rng
        self.abi = abi
        self.peer = peer

    def size(self, kind: str) -> int:
        if kind.startswith("struct "):
            return self.abi.struct_size(kind)
        return {"sockaddr": 28, "none": 0}.get(kind, 128)

    def length(self, kind: str, natural: int) -> int:
        r = self.rng
        size = self.size(kind)
        choices = [0, 1, max(size - 1, 0), size, size + 1, natural, natural, natural]
        if r.random() < 0.1:
            return r.choice(HUGE)
        return r.choice(choices)

    def struct(self, kind: str) -> bytes:
        r = self.rng
        pick = r.random()
        if pick < 0.1:
            return b"\0" * self.size(kind)
        if pick < 0.2:
            return b"\xff" * self.size(kind)
        if pick < 0.3:
            return r.randbytes(self.size(kind))
        ffi = self.abi.load().ffi
        ct = ffi.typeof(kind)
        fields = {}
        for name, f in ct.fields:
            if r.random() < 0.4:
                continue  # left zero: "unchanged" for TRANSPORT_PARAM and CONFIG
            if f.type.kind == "array":
                n = ffi.sizeof(f.type)
                fields[name] = r.randbytes(r.randrange(n + 1))
            elif f.type.kind in ("struct", "union"):
                continue
            else:
                width = ffi.sizeof(f.type)
                signed = f.type.cname.startswith(("__s", "int", "long", "signed"))
                v = r.choice(BOUNDARY[width]) if r.random() < 0.6 else r.getrandbits(8 * width)
                if name == "type" and r.random() < 0.5:
                    v = r.randint(0, 12)
                if name == "stream_id" and r.random() < 0.5:
                    v = r.choice((-1, 0, 1, 2, 3, 4, 5, 400, (1 << 62) - 1))
                if signed and v >= 1 << (8 * width - 1):
                    v -= 1 << (8 * width)
                fields[name] = v
        try:
            return self.abi.to_bytes(kind, **fields)
        except (OverflowError, ValueError):
            return r.randbytes(self.size(kind))

    def bytes_value(self, name: str) -> bytes:
        r = self.rng
        if name == "ALPN":
            parts = [r.choice((b"h3", b"hq-interop", b"quicctl-fuzz", b"", b"x" * r.randrange(300)))
                     for _ in range(r.randint(1, 4))]  # fmt: skip
            return r.choice((b",", b", ", b",,", b"\0")).join(parts)
        if name == "TRANSPORT_PARAM_EXT":
            out = b""
            for _ in range(r.randint(0, 12)):  # RFC 9000 Section 18: id, length, value
                pid = r.choice((0x00, 0x01, 0x03, 0x04, 0x0F, 0x10, 0x11, 0x20, 0x2AB2, 0xBAAD,
                                r.randrange(1 << 14)))  # fmt: skip
                val = r.randbytes(r.choice((0, 1, 2, 4, 8, 16, 20, 300)))
                out += (
                    _varint(pid)
                    + _varint(len(val) if r.random() < 0.8 else r.randrange(1 << 14))
                    + val
                )
            return out[: r.choice((len(out), 512, 513, 1000))]
        limit = {"TOKEN": 120, "SESSION_TICKET": 4096}.get(name, 256)
        n = r.choice((0, 1, 63, 64, limit - 1, limit, limit + 1, r.randrange(limit + 2)))
        return r.randbytes(n)

    def sockaddr(self) -> bytes:
        r = self.rng
        host, port = self.peer
        pick = r.random()
        if pick < 0.3:
            return self.abi.sockaddr_bytes((host, port))
        if pick < 0.5:
            host = r.choice(("127.0.0.1", "0.0.0.0", "255.255.255.255", "10.99.0.1"))
            return self.abi.sockaddr_bytes((host, r.choice((0, 1, 65535))))
        if pick < 0.7:
            return self.abi.sockaddr_bytes(
                (r.choice(("::1", "::", "fd00:99::1")), r.randrange(65536))
            )
        return struct.pack("=H", r.choice((0, 2, 10, 0xFFFF))) + r.randbytes(r.randrange(30))

    def value(self, name: str, kind: str) -> bytes:
        if kind.startswith("struct "):
            return self.struct(kind)
        if kind == "sockaddr":
            return self.sockaddr()
        if kind == "none":
            return self.rng.randbytes(self.rng.choice((0, 0, 1, 8)))
        return self.bytes_value(name)


def _varint(v: int) -> bytes:
    from quicctl.fuzz.gen import varint

    return varint(v)


class Worker:
    def __init__(self, run: Run, index: int):
        self.run = run
        self.index = index
        self.seed = derive(run.seed, "worker", index)
        self.rng = random.Random(self.seed)
        self.values = Values(self.rng, run.peer)
        self.sequences = 0
        self.busy: tuple[float, str] | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        from quicctl.netns import enter

        try:
            with enter(self.run.topo.server):
                while not self.run.stop.is_set() and not self.run.deadline.done(
                    self.run.sequences()
                ):
                    self.sequence()
                    self.sequences += 1
        except Exception as exc:  # a Python-level surprise: reported with the seed
            self.run.fail(f"worker {self.index} (seed {self.seed}), sequence {self.sequences}: "
                          f"{type(exc).__name__}: {exc}")  # fmt: skip

    def sequence(self) -> None:
        r = self.rng
        target = self.run.pool.pick(r) if r.random() < 0.85 else None
        for _ in range(r.randint(1, 8)):
            op = r.choices(list(OPS), weights=list(OPS.values()))[0]
            if op == "socket" or target is None:
                target = self.new_socket()
                continue
            self.call(op, target)

    def new_socket(self) -> Sock | None:
        r = self.rng
        fam = r.choice((socket.AF_INET, socket.AF_INET6))
        typ = r.choice((socket.SOCK_DGRAM, socket.SOCK_STREAM))
        key = "socket"
        if self.run.pool.size() >= self.run.pool.max:
            victim = self.run.pool.pick(r)
            if victim is not None:
                self.call("close", victim)
                with self.run.pool.lock:
                    self.run.pool.evicted += 1
        try:
            s = socket.socket(fam, typ, IPPROTO_QUIC)
        except OSError as e:
            self.run.count(key, e.errno)
            return None
        self.run.count(key, 0)
        return self.run.pool.add(s, "fresh")

    def call(self, op: str, s: Sock) -> None:
        self.busy = (time.monotonic(), f"{op} on a {s.state} socket")
        self.last_key = op
        key, err = op, 0
        try:
            key = getattr(self, "op_" + op)(s) or op
        except OSError as e:
            err = e.errno or -1
            key = self.last_key
        except ValueError:  # another thread closed it: Python refuses fd -1 before the call
            err = 9  # EBADF
            key = self.last_key
        finally:
            self.busy = None
        self.run.count(key, err)

    last_key = ""

    def addr(self, fam: int) -> tuple:
        r = self.rng
        if fam == socket.AF_INET6:
            return (
                r.choice(("::1", "::", "fd00:99::1")),
                r.choice((0, 0, self.run.peer[1], 65535)),
            )
        return (r.choice(("127.0.0.1", "0.0.0.0", self.run.topo.server_v4)),
                r.choice((0, 0, self.run.peer[1], 65535)))  # fmt: skip

    def op_bind(self, s: Sock) -> None:
        s.sock.bind(self.addr(s.sock.family))
        s.state = "bound" if s.state == "fresh" else s.state

    def op_connect(self, s: Sock) -> None:
        fam = s.sock.family
        host = self.run.peer[0] if fam == socket.AF_INET else "fd00:99::1"
        port = self.run.peer[1] if self.rng.random() < 0.7 else self.rng.randrange(65536)
        s.sock.connect((host, port))

    def op_listen(self, s: Sock) -> None:
        s.sock.listen(self.rng.choice((0, 1, 4, 128, 65535, -1)))
        s.state = "listening"

    def op_accept(self, s: Sock) -> None:
        p = select.poll()
        p.register(s.sock.fileno(), select.POLLIN)
        if not p.poll(0):
            return "accept (nothing pending)"
        conn, _ = s.sock.accept()
        self.run.pool.add(conn, "accepted")

    def op_close(self, s: Sock) -> None:
        self.run.pool.remove(s)
        if self.rng.random() < 0.3:
            try:
                abi = self.values.abi
                close = abi.option_number("CONNECTION_CLOSE")
                value = self.values.struct("struct quic_connection_close")
                abi.raw_setsockopt(s.sock, abi.SOL_QUIC, close, value)
            except OSError:
                pass
        s.sock.close()

    def op_shutdown(self, s: Sock) -> None:
        s.sock.shutdown(self.rng.choice((socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR)))

    def op_ioctl(self, s: Sock) -> None:
        import fcntl
        import termios

        req = self.rng.choice((termios.FIONREAD, termios.TIOCOUTQ, 0x8907))  # SIOCINQ/OUTQ/GSTAMP
        fcntl.ioctl(s.sock.fileno(), req, b"\0" * 16)

    def op_poll(self, s: Sock) -> None:
        p = select.poll()
        p.register(s.sock.fileno(), select.POLLIN | select.POLLOUT | select.POLLERR)
        p.poll(0)

    def op_name(self, s: Sock) -> None:
        s.sock.getsockname()
        s.sock.getpeername()

    def _option(self) -> tuple[str, int, str]:
        r = self.rng
        if r.random() < 0.04:
            return "invalid", r.choice((15, 16, 255, 0x7FFFFFFF, -1)), "bytes"
        name = r.choice(list(self.run.options))
        num, kind = self.run.options[name]
        return name, num, kind

    def op_setsockopt(self, s: Sock) -> str:
        from quicctl import abi

        name, num, kind = self._option()
        data = self.values.value(name, kind)
        optlen = self.values.length(kind, len(data))
        self.last_key = f"setsockopt {name}"
        self.run.exercised("set", name, s.state)
        abi.raw_setsockopt(s.sock, abi.SOL_QUIC, num, data, optlen)
        return self.last_key

    def op_getsockopt(self, s: Sock) -> str:
        from quicctl import abi

        name, num, kind = self._option()
        data = self.values.value(name, kind) if self.rng.random() < 0.7 else b""
        buflen = self.values.length(kind, max(len(data), self.values.size(kind)))
        self.last_key = f"getsockopt {name}"
        self.run.exercised("get", name, s.state)
        abi.raw_getsockopt(s.sock, abi.SOL_QUIC, num, max(buflen, 0), data[:buflen])
        return self.last_key

    def cmsgs(self) -> list[tuple[int, int, bytes]]:
        from quicctl import abi

        r = self.rng
        out = []
        for _ in range(r.choice((0, 1, 1, 1, 2, 3))):
            pick = r.random()
            if pick < 0.45:
                sid = r.choice((-1, 0, 1, 2, 3, 4, 5, 8, 400, (1 << 62) - 1, -2))
                flags = 0
                for bit in ("STREAM_NEW", "STREAM_FIN", "STREAM_UNI", "STREAM_DONTWAIT",
                            "STREAM_SNDBLOCK", "DATAGRAM"):  # fmt: skip
                    if r.random() < 0.25:
                        flags |= getattr(abi, "MSG_QUIC_" + bit)
                if r.random() < 0.1:
                    flags = r.getrandbits(32)
                data = struct.pack("=qI4x", sid, flags)
                data = data[: r.choice((16, 16, 16, 0, 8, 12, 15))] + (
                    b"\0" * 8 if r.random() < 0.1 else b""
                )
                out.append((abi.SOL_QUIC, abi.QUIC_STREAM_INFO, data))
            elif pick < 0.7:
                level = r.choice((0, 1, 2, 3, 4, 255))
                out.append(
                    (
                        abi.SOL_QUIC,
                        abi.QUIC_HANDSHAKE_INFO,
                        bytes([level]) * r.choice((1, 1, 0, 2, 8)),
                    )
                )
            elif pick < 0.85:
                out.append((abi.SOL_QUIC, r.randrange(256), r.randbytes(r.randrange(24))))
            else:
                level = r.choice(
                    (socket.SOL_SOCKET, socket.IPPROTO_IP, socket.IPPROTO_UDP, r.randrange(512))
                )
                out.append((level, r.randrange(64), r.randbytes(r.randrange(24))))
        return out

    def flags(self, send: bool) -> int:
        from quicctl import abi

        r = self.rng
        pool = [socket.MSG_DONTWAIT, socket.MSG_NOSIGNAL, socket.MSG_MORE, socket.MSG_WAITALL,
                socket.MSG_PEEK, socket.MSG_TRUNC, socket.MSG_OOB, socket.MSG_EOR,
                abi.MSG_QUIC_STREAM_NEW, abi.MSG_QUIC_STREAM_FIN, abi.MSG_QUIC_STREAM_UNI,
                abi.MSG_QUIC_STREAM_DONTWAIT, abi.MSG_QUIC_DATAGRAM,
                socket.MSG_ERRQUEUE, socket.MSG_CMSG_CLOEXEC]  # fmt: skip
        f = socket.MSG_DONTWAIT if r.random() < 0.6 else 0
        for bit in pool:
            if r.random() < 0.12:
                f |= bit
        if r.random() < 0.03:
            f |= r.getrandbits(31)
        return f | (socket.MSG_NOSIGNAL if send else 0)

    def op_sendmsg(self, s: Sock) -> str:
        r = self.rng
        n = (
            r.choice((0, 1, 17, 1200, 1201, 4096))
            if r.random() < 0.95
            else r.choice((65536, 1 << 20))
        )
        anc = self.cmsgs()
        self.last_key = "sendmsg" + (" +cmsg" if anc else "")
        s.sock.sendmsg([r.randbytes(n)], anc, self.flags(True))
        return self.last_key

    def op_recvmsg(self, s: Sock) -> str:
        r = self.rng
        bufsize = r.choice((0, 1, 16, 1200, 65536))
        anc = r.choice(
            (0, 1, 8, socket.CMSG_SPACE(1), socket.CMSG_LEN(16), socket.CMSG_SPACE(16), 256)
        )
        self.last_key = "recvmsg"
        s.sock.recvmsg(bufsize, anc, self.flags(False))
        return self.last_key


class Run:
    def __init__(self, topo, seed: int, deadline: Deadline, progress: Progress):
        self.topo, self.seed, self.deadline, self.progress = topo, seed, deadline, progress
        self.pool = Pool()
        self.stop = threading.Event()
        self.options = _options()
        self.lock = threading.Lock()
        self.errnos: dict[str, Counter] = defaultdict(Counter)
        self.coverage: dict[str, Counter] = defaultdict(Counter)  # "set NAME" -> states
        self.failures: list[str] = []
        self.workers: list[Worker] = []
        self.connections = 0
        self.handshake_errors: Counter = Counter()
        from quicctl.connection import QuicServer
        from quicctl.netns import enter

        with enter(topo.server):
            self.server = QuicServer(topo.server_v4, 0, alpn=ALPN, certfile=str(KEYS / "cert.crt"),
                                     keyfile=str(KEYS / "pkey.key"))  # fmt: skip
            # A second listener for the workers (they may close it); the first one is the
            # connector's.
            self.listener = QuicServer(topo.server_v4, 0, alpn=ALPN,
                                       certfile=str(KEYS / "cert.crt"),
                                       keyfile=str(KEYS / "pkey.key"))  # fmt: skip
        self.peer = (topo.server_v4, self.listener.getsockname()[1])
        self.server_addr = (topo.server_v4, self.server.getsockname()[1])
        self.pool.add(self.listener.sock, "listening")

    def sequences(self) -> int:
        return sum(w.sequences for w in self.workers)

    def count(self, key: str, err: int) -> None:
        from quicctl.abi import errno_name

        with self.lock:
            self.errnos[key]["ok" if not err else errno_name(err)] += 1

    def exercised(self, how: str, name: str, state: str) -> None:
        with self.lock:
            self.coverage[f"{how} {name}"][state] += 1

    def fail(self, msg: str) -> None:
        with self.lock:
            self.failures.append(f"seed {self.seed}: {msg}")
        self.progress(f"FAILURE seed {self.seed}: {msg}")

    def connector(self) -> None:
        """Keeps CONNECTED_TARGET real connections (both ends) in the pool."""
        from quicctl.connection import connect
        from quicctl.netns import enter

        while not self.stop.is_set():
            if self.pool.count("client") >= CONNECTED_TARGET:
                self.stop.wait(0.2)
                continue
            done = threading.Event()

            def serve(done=done):
                try:
                    sock, _ = self.server.accept_socket()
                    conn = self.server.handshake(sock, timeout=30)
                    self.pool.add(conn.sock, "server")
                except Exception as exc:
                    self.handshake_errors[type(exc).__name__] += 1
                finally:
                    done.set()

            threading.Thread(target=serve, daemon=True).start()
            try:
                with enter(self.topo.client):
                    conn = connect(*self.server_addr, alpn=ALPN,
                                   cafile=str(KEYS / "ca.crt"), server_name="server.quic.test",
                                   timeout=30)  # fmt: skip
                self.pool.add(conn.sock, "client")
                self.connections += 1
            except Exception as exc:
                self.handshake_errors[type(exc).__name__] += 1
            done.wait(35)


def _echo_check(topo) -> str | None:
    """A fresh connection to a fresh kernel server still carries an echo."""
    from quicctl.connection import connect
    from quicctl.fuzz.frames import ALPN as FALPN
    from quicctl.fuzz.frames import ECHO_MARK, SERVER_NAME, KernelServer
    from quicctl.netns import enter

    srv = KernelServer(topo)
    try:
        with enter(topo.client):
            conn = connect(topo.server_v4, srv.port, alpn=FALPN, cafile=str(KEYS / "ca.crt"),
                           server_name=SERVER_NAME, timeout=60)  # fmt: skip
        with conn:
            conn.settimeout(30)
            sid = conn.open_stream()
            conn.sendall(ECHO_MARK + b"still alive", sid)
            got = b""
            while True:
                s, data, fin = conn.recv()
                got += data
                if fin:
                    break
        return None if got == ECHO_MARK + b"still alive" else f"echo returned {got!r}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        srv.close()


def run(
    seed: int,
    iterations: int | None = None,
    seconds: float | None = None,
    topo=None,
    progress: Progress = lambda m: None,
    workers: int = WORKERS,
    pool_max: int = POOL_MAX,
) -> dict:
    """Run ``workers`` threads until ``iterations`` sequences or ``seconds``, with at most
    ``pool_max`` sockets open; the report."""
    from quicctl.fuzz.frames import _conn_count, _snmp, _wait_no_conns
    from quicctl.netns import Topology

    if topo is None:
        with Topology() as t:
            return run(seed, iterations, seconds, t, progress, workers, pool_max)
    deadline = Deadline(iterations, seconds)
    mark = f"quicctl fuzz syscalls: seed {seed} starts"
    kmsg(mark)
    before = _snmp(topo.server)
    r = Run(topo, seed, deadline, progress)
    r.pool.max = pool_max
    r.workers = [Worker(r, i) for i in range(workers)]
    progress(f"syscalls: seed {seed}, workers' seeds "
             f"{', '.join(str(w.seed) for w in r.workers)}")  # fmt: skip
    conn_thread = threading.Thread(target=r.connector, daemon=True)
    conn_thread.start()
    # Let the first real connection exist before the workers start closing things.
    t0 = time.monotonic()
    while not r.pool.count("client") and time.monotonic() - t0 < 60:
        time.sleep(0.1)
    start = time.monotonic()
    for w in r.workers:
        w.thread.start()
    last = start
    hung = False
    while any(w.thread.is_alive() for w in r.workers):
        time.sleep(0.2)
        now = time.monotonic()
        stuck = [(w, w.busy) for w in r.workers if w.busy]
        if any(now - b[0] > WATCHDOG for _, b in stuck):
            for w, busy in stuck:  # every worker caught in a call, for the diagnosis
                if now - busy[0] > 5:
                    r.fail(f"worker {w.index} (seed {w.seed}) hung for {now - busy[0]:.0f} s "
                           f"in {busy[1]}, sequence {w.sequences}")  # fmt: skip
            hung = True
        if hung:
            _dump_blocked_tasks(progress)
            break
        if now - last > 15:
            last = now
            progress(f"syscalls: {r.sequences()} sequences, {now - start:.0f} s")
    elapsed = time.monotonic() - start
    r.stop.set()
    progress(f"syscalls: {r.sequences()} sequences done; closing every socket")
    conn_thread.join(40)

    def close_all() -> None:
        for s in r.pool.drain():
            try:
                s.sock.close()
            except OSError:
                pass
        r.server.sock.close()

    closer = threading.Thread(target=close_all, daemon=True)
    closer.start()
    closer.join(WATCHDOG)
    if closer.is_alive():
        r.fail(f"closing the sockets hung for {WATCHDOG:.0f} s (a socket lock never released?)")
        _dump_blocked_tasks(progress)
        hung = True
    leaked = _wait_no_conns(topo) if not hung else _conn_count(topo.server)
    if leaked:
        r.fail(f"{leaked} connections left in /proc/net/quic/conns after every socket was closed")
    progress(f"syscalls: {leaked} connections left; a fresh connection's echo")
    problem = _echo_check(topo) if not hung else None
    if problem:
        r.fail(f"after the run a fresh connection failed: {problem}")
    for line in bad_kernel_lines(mark):
        r.fail(f"kernel log: {line}")
    after = _snmp(topo.server)
    options = sorted(f"{how} {name}" for name in r.options for how in ("set", "get"))
    return {
        "fuzzer": "syscalls",
        "seed": seed,
        "workers": {w.index: w.seed for w in r.workers},
        "sequences": r.sequences(),
        "calls": sum(sum(c.values()) for c in r.errnos.values()),
        "seconds": round(elapsed, 1),
        "per_second": round(r.sequences() / elapsed, 1) if elapsed else 0.0,
        "sockets": r.pool.made,
        "sockets_evicted": r.pool.evicted,
        "connections": r.connections,
        "handshake_errors": dict(r.handshake_errors),
        "errnos": {k: dict(v.most_common()) for k, v in sorted(r.errnos.items())},
        "option_states": {k: dict(r.coverage[k]) for k in options},
        "missing_options": [k for k in options if not r.coverage[k]],
        "snmp": {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)},
        "leaked_connections": leaked,
        "failures": r.failures,
    }
