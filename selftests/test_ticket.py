"""A server's default session ticket key (ABI reference section 3, SESSION_TICKET get): a
server socket that was given no ticket key reads a 64-byte one derived from its listener's
random secret and the client's IP address, the same for every connection from that address to
that listener (so that a ticket issued on one opens on the next) and different for another
address or another listener; a key that was set is read back instead."""

from __future__ import annotations

import errno
import threading

import pytest
from conftest import kernel_connect, kernel_listener
from peer import ALPN, KernelAccept
from test_migration import SECOND_CLIENT_V4, _second_address


def _server_key(topo, listener, bind=None) -> bytes:
    """Connects to ``listener`` (from ``bind``) and reads the server end's key."""
    from quicctl import abi

    got: dict = {}

    def accept() -> None:
        got["conn"] = listener.accept(timeout=120)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    port = listener.getsockname()[1]
    with kernel_connect(topo, topo.server_v4, port, alpn=ALPN, bind=bind):
        t.join(150)
        assert "conn" in got, "the server accepted no connection"
        with got["conn"] as srv:
            key = abi.getsockopt(srv.sock, "SESSION_TICKET")
            with pytest.raises(OSError) as e:
                abi.getsockopt(srv.sock, "SESSION_TICKET", 63)
            assert e.value.errno == errno.EINVAL
    return key


def test_default_ticket_key(quic_module, clean_path, topo):
    a = kernel_listener(topo, "0.0.0.0", alpn=ALPN)
    b = kernel_listener(topo, "0.0.0.0", alpn=ALPN)
    try:
        with _second_address(topo):
            k1 = _server_key(topo, a)
            k2 = _server_key(topo, a)
            k_other_listener = _server_key(topo, b)
            k_other_address = _server_key(topo, a, bind=(SECOND_CLIENT_V4, 0))
        assert len(k1) == 64 and k1 != bytes(64)
        assert k1 == k2, "two connections from one address got different keys"
        assert k_other_listener != k1, "two listeners share a key"
        assert k_other_address != k1, "two client addresses share a key"
    finally:
        a.close()
        b.close()


def test_set_ticket_key_is_read_back(quic_module, clean_path, topo):
    from quicctl import abi

    acc = KernelAccept(topo)
    client = kernel_connect(topo, topo.server_v4, acc.port, alpn=ALPN)
    try:
        srv = acc.wait()
        abi.setsockopt(srv.sock, "SESSION_TICKET", b"K" * 80)
        assert abi.getsockopt(srv.sock, "SESSION_TICKET") == b"K" * 80
    finally:
        client.close()
        acc.close()
