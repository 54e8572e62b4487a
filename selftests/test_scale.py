"""Scale (issue 13): many concurrent connections to one listener, each a real handshake and a
small transfer, all open at once; the module cannot be unloaded while they are, and unloads
cleanly after.

QUICCTL_SCALE_CONNS sets how many (default 50 in the suite; the long run uses 1000).  Every
handshake is done in userspace by Python and gnutls in the slow guest, so the count sets the
run time: 0.5 to 1.2 s a connection in the VM.
"""

from __future__ import annotations

import hashlib
import os
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import DEBUG_KERNEL, kernel_connect, kernel_listener, module_loaded
from peer import established

CONNS = int(os.environ.get("QUICCTL_SCALE_CONNS", "50"))
# Open until the last one is: no idle timeout while the others connect (4000 s, a u32 in us).
TP = {"max_idle_timeout": 4_000_000_000}
WORKERS = 8
PAYLOAD = 1000
# Seconds for all of them: up to 1.2 s a connection on the packaged kernel, several on the
# debug kernel (KASAN, lockdep, kmemleak); never less than the suite's 600.
LIMIT = max(600, CONNS * (6 if DEBUG_KERNEL else 2))


def _slab_kb() -> int:
    for line in open("/proc/meminfo"):
        if line.startswith("Slab:"):
            return int(line.split()[1])
    return 0


def _payload(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (PAYLOAD // 32) + b"\n" * (PAYLOAD % 32)


@pytest.mark.timeout(LIMIT + 300)
def test_concurrent_connections_to_one_listener(quic_module, clean_path, topo):
    """CONNS clients connect to one kernel listener at once (8 handshakes in flight on each
    side), each sends 1000 bytes that the server echoes, and all stay open together: both
    namespaces list CONNS established connections.  Unloading quic.ko is then refused; once
    all are closed it unloads."""
    from quicctl import kmod
    from quicctl.errors import QuicctlError

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (max(soft, 4 * CONNS + 256), max(hard, 4 * CONNS + 256))
    )
    srv = kernel_listener(topo, "0.0.0.0", alpn="quicctl-test", backlog=CONNS, transport_params=TP)
    port = srv.getsockname()[1]
    servers: list = []
    clients: list = []
    errors: list[str] = []
    lock = threading.Lock()
    slab_before = _slab_kb()
    start = time.monotonic()

    def serve_one(sock) -> None:
        try:
            conn = srv.handshake(sock, timeout=300)
        except Exception as exc:  # noqa: BLE001 -- every failure is reported by the test
            errors.append(f"server handshake: {exc}")
            sock.close()
            return
        with lock:
            servers.append(conn)
        conn.settimeout(120)
        sid, data, fin = conn.recv(PAYLOAD + 10)
        buf = bytearray(data)
        while not fin:
            sid, data, fin = conn.recv(PAYLOAD + 10)
            buf += data
        conn.send(bytes(buf), sid, fin=True)

    def accept_loop(pool: ThreadPoolExecutor) -> None:
        for _ in range(CONNS):
            try:
                sock, _ = srv.accept_socket()
            except OSError as exc:
                errors.append(f"accept: {exc}")
                return
            pool.submit(serve_one, sock)

    def connect_one(i: int) -> None:
        conn = kernel_connect(
            topo, topo.server_v4, port, alpn="quicctl-test", timeout=300, transport_params=TP
        )
        with lock:
            clients.append(conn)
        conn.settimeout(120)
        sid = conn.open_stream()
        conn.send(_payload(i), sid, fin=True)
        got = bytearray()
        fin = False
        while not fin:
            _, data, fin = conn.recv(PAYLOAD + 10)
            got += data
        assert bytes(got) == _payload(i), f"connection {i}: the echo differs"

    try:
        with ThreadPoolExecutor(WORKERS) as spool, ThreadPoolExecutor(WORKERS) as cpool:
            acceptor = threading.Thread(target=accept_loop, args=(spool,), daemon=True)
            acceptor.start()
            for f in [cpool.submit(connect_one, i) for i in range(CONNS)]:
                f.result(timeout=LIMIT)
            acceptor.join(60)
        took = time.monotonic() - start
        assert not errors, errors[:5]
        assert len(clients) == len(servers) == CONNS
        n_srv, n_cli = len(established(topo.server)), len(established(topo.client))
        slab = _slab_kb() - slab_before
        print(f"{CONNS} connections open with their echo in {took:.1f} s; "
              f"established: server {n_srv}, client {n_cli}; slab +{slab} kB "
              f"({slab / (2 * CONNS):.1f} kB a socket, both ends)")  # fmt: skip
        assert n_srv >= CONNS and n_cli >= CONNS
        with pytest.raises(QuicctlError, match="cannot unload"):
            kmod.unload()
        assert module_loaded()
    finally:
        for c in clients + servers:
            c.close()
        srv.close()
    assert kmod.unload(wait=60), "quic was not loaded"
    assert not module_loaded()
