"""1-RTT key updates started through the KEY_UPDATE option (RFC 9001 Section 6), by either
end, kernel to kernel and against aioquic: data keeps flowing both ways across several
generations of keys, and the end that did not start an update gets the KEY_UPDATE event."""

from __future__ import annotations

import errno
import time

import pytest
from peer import AioPeer, KernelAccept, until
from test_connection import CIPHERS, EchoServer, _client, _read_streams

from quicctl import abi


def _update(sock, timeout: float = 10) -> None:
    """KEY_UPDATE, again while it is EINVAL: RFC 9001 Section 6.1 lets an end update only once
    a packet of its current keys was acknowledged, which may still be on its way."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            abi.setsockopt(sock, "KEY_UPDATE")
            return
        except OSError as e:
            if e.errno != errno.EINVAL or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _echo(conn, data: bytes) -> None:
    sid = conn.open_stream()
    conn.sendall(data, sid, fin=True)
    assert _read_streams(conn, {sid})[sid] == data


@pytest.mark.parametrize("cipher", list(CIPHERS), ids=list(CIPHERS))
def test_key_updates_kernel_to_kernel(quic_module, clean_path, topo, cipher):
    server = EchoServer(topo, "0.0.0.0", ciphers=[CIPHERS[cipher]])
    try:
        client = _client(topo, topo.server_v4, server.port, CIPHERS[cipher])
        with client:
            _echo(client, b"before")
            srv = server.conns[0]
            for i in range(6):  # client, server, client, ...: six generations of keys
                who = client if i % 2 == 0 else srv
                _update(who.sock)
                _echo(client, f"after update {i} by {'client' if who is client else 'server'}"
                      .encode() * 50)  # fmt: skip
    finally:
        server.close()


def test_kernel_key_update_with_aioquic(quic_module, clean_path, topo):
    """The kernel server updates its keys, aioquic follows; aioquic updates, the kernel follows
    and reports it (QUIC_EVENT_KEY_UPDATE, its payload the new phase); and again."""
    ev = abi.constants()["QUIC_EVENT_KEY_UPDATE"]
    acc = KernelAccept(topo, events=(ev,))
    peer = AioPeer(topo, acc.port)
    conn = None
    i = -1
    try:
        conn, reader, step = peer.accepted(acc)
        for i in range(4):
            sid = peer.quic.get_next_available_stream_id()
            peer.quic.send_stream_data(sid, b"x" * 3000, end_stream=True)
            until(lambda sid=sid: sid in reader.fin, f"aioquic's stream {sid}", step=step)
            ksid = conn.open_stream()
            conn.sendall(b"y" * 3000, ksid)
            until(lambda k=ksid: k in peer.fin, f"the kernel's stream {ksid}", step=step)
            if i % 2 == 0:
                _update(conn.sock)
            else:
                # RFC 9001 Section 6.1: aioquic's request_key_update() does not wait for an
                # acknowledgment of a packet of its current keys (here it may have sent only
                # ACKs since it followed the kernel's update, which nobody acknowledges); the
                # kernel does not hold that against an answer to its own update.
                for _ in range(10):
                    step()
                peer.quic.request_key_update()
        phases = [p[0] for t, p in reader.events if t == ev]
        assert phases == [0, 1][: len(phases)] and len(phases) >= 1, reader.events
        assert peer.closed is None and reader.close is None
    except BaseException:
        if conn is not None:
            print(f"round {i}: kernel close:", conn.close_info().describe(), "aioquic:",
                  peer.closed, "kernel events:", reader.events)  # fmt: skip
        raise
    finally:
        peer.close()
        acc.close()
