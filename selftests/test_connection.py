"""QUIC connections carried by quic.ko: kernel client <-> kernel server across two namespaces.

The server runs in a thread that moved into the server namespace (setns is per thread), the
client in the test's thread in the client namespace; the packets cross a veth pair.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import pytest
from conftest import scaled

from quicctl.paths import KEYS

ALPN = "quicctl-test"
CIPHERS = {
    "aes128gcm": "TLS_AES_128_GCM_SHA256",
    "aes256gcm": "TLS_AES_256_GCM_SHA384",
    "chacha20": "TLS_CHACHA20_POLY1305_SHA256",
}
BIG = scaled(10 * 1000 * 1000)
SMALL_STREAMS = 100


class EchoServer:
    """Accepts connections; echoes each stream back (same stream, FIN when the peer's FIN
    arrives), so hashes can be compared in both directions."""

    def __init__(
        self,
        topo,
        host: str,
        ciphers=None,
        config: dict[str, int] | None = None,
        transport_params: dict[str, int] | None = None,
    ):
        from quicctl import QuicServer
        from quicctl.netns import enter

        self.errors: list[BaseException] = []
        self.ready = threading.Event()
        self.conns = []

        def serve():
            try:
                with enter(topo.server):
                    self.srv = QuicServer(
                        host,
                        0,
                        alpn=ALPN,
                        certfile=str(KEYS / "cert.crt"),
                        keyfile=str(KEYS / "pkey.key"),
                        ciphers=ciphers,
                        config=config,
                        transport_params=transport_params,
                    )
                self.port = self.srv.getsockname()[1]
                self.ready.set()
                while True:
                    try:
                        conn = self.srv.accept()
                    except OSError:
                        return
                    self.conns.append(conn)
                    threading.Thread(target=self._echo, args=(conn,), daemon=True).start()
            except BaseException as exc:  # reported by the test
                self.errors.append(exc)
                self.ready.set()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        assert self.ready.wait(60), "server did not start"
        assert not self.errors, self.errors

    def _echo(self, conn) -> None:
        pending: dict[int, bytearray] = {}
        try:
            while True:
                sid, data, fin = conn.recv(1 << 20)
                buf = pending.setdefault(sid, bytearray())
                buf += data
                if fin:
                    conn.sendall(bytes(pending.pop(sid)), sid, fin=True)
        except (ConnectionError, OSError):
            pass

    def close(self) -> None:
        self.srv.close()
        for c in self.conns:
            c.close()


def _client(topo, host, port, cipher, config: dict[str, int] | None = None):
    from quicctl import connect
    from quicctl.netns import enter

    with enter(topo.client):
        return connect(
            host,
            port,
            alpn=ALPN,
            cafile=str(KEYS / "ca.crt"),
            server_name="server.quic.test",
            ciphers=[cipher],
            timeout=60,
            config=config,
        )


def _read_streams(conn, want: set[int]) -> dict[int, bytes]:
    got: dict[int, bytearray] = {}
    done: set[int] = set()
    while done != want:
        sid, data, fin = conn.recv(1 << 20)
        assert sid in want, f"data on unexpected stream {sid}"
        got.setdefault(sid, bytearray()).extend(data)
        if fin:
            done.add(sid)
    return {k: bytes(v) for k, v in got.items()}


@pytest.mark.parametrize("cipher", list(CIPHERS), ids=list(CIPHERS))
@pytest.mark.parametrize("family", ["v4", "v6"])
def test_kernel_to_kernel_transfer(quic_module, clean_path, topo, family, cipher):
    host = topo.server_v4 if family == "v4" else topo.server_v6
    server = EchoServer(topo, "::" if family == "v6" else "0.0.0.0", [CIPHERS[cipher]])
    try:
        conn = _client(topo, host, server.port, CIPHERS[cipher])
        with conn:
            from quicctl import tls

            want_type = {
                "aes128gcm": tls.TLS_CIPHER_AES_GCM_128,
                "aes256gcm": tls.TLS_CIPHER_AES_GCM_256,
                "chacha20": tls.TLS_CIPHER_CHACHA20_POLY1305,
            }[cipher]
            assert conn.cipher_type == want_type and conn.alpn == ALPN
            big = os.urandom(BIG)
            sid = conn.open_stream()
            conn.sendall(big, sid, fin=True)
            back = _read_streams(conn, {sid})[sid]
            assert hashlib.sha256(back).hexdigest() == hashlib.sha256(big).hexdigest()

            smalls = {}
            for i in range(SMALL_STREAMS):
                sid = conn.open_stream()
                smalls[sid] = f"stream {i} ".encode() * (i + 1)
                conn.send(smalls[sid], sid, fin=True)
            back = _read_streams(conn, set(smalls))
            assert back == smalls
    finally:
        server.close()
    assert not server.errors, server.errors


def test_established_counters_and_conns(quic_module, clean_path, topo):
    from conftest import snmp

    server = EchoServer(topo, "0.0.0.0")
    try:
        conn = _client(topo, topo.server_v4, server.port, CIPHERS["aes128gcm"])
        with conn:
            text = open("/proc/net/quic/snmp").read()
            assert "QuicConnCurrentEstabs" in text
            sid = conn.open_stream()
            conn.sendall(b"ping", sid)
            assert _read_streams(conn, {sid})[sid] == b"ping"
    finally:
        server.close()
    assert snmp()  # readable after the connection closed


def test_socket_type_stream_works_too(quic_module, clean_path, topo):
    from quicctl import QuicServer, connect
    from quicctl.netns import enter

    srv_box = {}

    def serve():
        with enter(topo.server):
            srv = QuicServer(
                "0.0.0.0",
                0,
                alpn=ALPN,
                certfile=str(KEYS / "cert.crt"),
                keyfile=str(KEYS / "pkey.key"),
                sock_type=socket.SOCK_STREAM,
            )
        srv_box["srv"] = srv
        srv_box["ready"].set()
        conn = srv.accept()
        sid, data, fin = conn.recv()
        conn.sendall(data[::-1], sid)
        srv_box["conn"] = conn

    srv_box["ready"] = threading.Event()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert srv_box["ready"].wait(60)
    port = srv_box["srv"].getsockname()[1]
    with enter(topo.client):
        conn = connect(
            topo.server_v4,
            port,
            alpn=ALPN,
            cafile=str(KEYS / "ca.crt"),
            server_name="server.quic.test",
            sock_type=socket.SOCK_STREAM,
        )
    with conn:
        sid = conn.open_stream()
        conn.sendall(b"abcdef", sid)
        assert _read_streams(conn, {sid})[sid] == b"fedcba"
    t.join(30)
    srv_box["srv"].close()


@pytest.mark.parametrize("dest", [0, 1], ids=["source", "dest"])
def test_connection_id_errors_change_nothing(quic_module, clean_path, topo, dest):
    """CONNECTION_ID with a valid ``active`` and an invalid ``prior_to`` is EINVAL and leaves
    the active ID where it was (it used to switch first, then fail); valid, both apply."""
    import errno

    from quicctl import abi

    server = EchoServer(topo, "0.0.0.0")
    try:
        conn = _client(topo, topo.server_v4, server.port, CIPHERS["aes128gcm"])
        with conn:
            sid = conn.open_stream()
            conn.sendall(b"ping", sid)  # the peer's NEW_CONNECTION_ID frames arrive meanwhile
            assert _read_streams(conn, {sid})[sid] == b"ping"
            before = abi.getsockopt(conn.sock, "CONNECTION_ID", dest=dest)
            active = before["active"] + 1
            # Above the highest held; at the lowest held (0 itself means "retire nothing").
            for prior_to in (0xFFFFFFF0, before["prior_to"] or 0xFFFFFFFF):
                with pytest.raises(OSError) as info:
                    abi.setsockopt(conn.sock, "CONNECTION_ID", dest=dest, active=active,
                                   prior_to=prior_to)  # fmt: skip
                assert info.value.errno == errno.EINVAL
                assert abi.getsockopt(conn.sock, "CONNECTION_ID", dest=dest) == before
            abi.setsockopt(conn.sock, "CONNECTION_ID", dest=dest, active=active,
                           prior_to=active)  # fmt: skip
            after = abi.getsockopt(conn.sock, "CONNECTION_ID", dest=dest)
            assert after["active"] == active, (before, after)
            sid = conn.open_stream()
            conn.sendall(b"still", sid)  # the connection goes on with the new IDs
            assert _read_streams(conn, {sid})[sid] == b"still"
    finally:
        server.close()
