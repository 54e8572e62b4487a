"""disable_1rtt_encryption (draft-banks-quic-disable-encryption, transport parameter 0xbaad),
kernel to kernel across the veth pair.

Only when both ends offer it do 1-RTT packets go without header protection and payload
encryption (their 16 tag bytes stay, zero); Initial and Handshake packets are protected as
always.  Each test echoes a payload full of a known marker and captures what crossed the
server's veth end (tcpdump, whole packets): the marker is on the wire in both directions when
both ends offer the parameter, nowhere when only one does, and the data is intact either way.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from conftest import kernel_connect, snmp
from test_connection import ALPN, EchoServer, _read_streams
from test_offload import Capture

from quicctl import abi
from quicctl.paths import KEYS

MARKER = b"\x00plaintext-1rtt-marker-0123456789\xff"
PAYLOAD = MARKER * 3000  # about 100 KB, over many packets
PLAIN = {"disable_1rtt_encryption": 1}


def _echo(topo, tmp_path: Path, server_tp, client_tp) -> tuple[bytes, dict, str]:
    """PAYLOAD to the echo server and back; (the capture, the client's view of the peer's
    transport parameters, what tcpdump said)."""
    server = EchoServer(topo, "0.0.0.0", transport_params=server_tp)
    cap = Capture(topo, topo.server, tmp_path / "veth.pcap", snap=65535)
    before = snmp(ns=topo.client)
    try:
        with kernel_connect(
            topo, topo.server_v4, server.port, alpn=ALPN, transport_params=client_tp
        ) as conn:
            peer = abi.getsockopt(conn.sock, "TRANSPORT_PARAM", remote=1)
            sid = conn.open_stream()
            conn.sendall(PAYLOAD, sid, fin=True)
            back = _read_streams(conn, {sid})[sid]
            assert hashlib.sha256(back).digest() == hashlib.sha256(PAYLOAD).digest(), (
                f"echo differs: {len(back)} of {len(PAYLOAD)} bytes"
            )
            after = snmp(ns=topo.client)
    finally:
        cap.stop()
        server.close()
    assert not server.errors, server.errors
    moved = {k: v - before[k] for k, v in after.items() if v != before[k]}
    for what in ("QuicPktDecDrop", "QuicPktInvHdrDrop"):
        assert not moved.get(what), f"client: {what}: {moved}"
    return cap.pcap.read_bytes(), peer, cap.said.strip()


def test_both_offer_1rtt_goes_clear(quic_module, clean_path, topo, tmp_path):
    """Both ends offer it: the echo is intact and the marker crosses the wire in clear, both
    ways (at least the payload's worth of markers each way)."""
    wire, peer, said = _echo(topo, tmp_path, PLAIN, PLAIN)
    assert peer["disable_1rtt_encryption"] == 1, peer
    seen = wire.count(MARKER)
    # Each direction carries 3000 markers; a marker cut by a packet boundary is not counted.
    assert seen > 2 * 3000 * 0.8, f"only {seen} markers in clear on the wire: {said}"
    # The handshake stays protected: the server's certificate is not readable on the wire.
    der = base64.b64decode("".join((KEYS / "cert.crt").read_text().splitlines()[1:-1]))
    assert der[100:140] not in wire, "the Handshake packets went in clear"


@pytest.mark.parametrize("who", ["client", "server"])
def test_one_side_only_stays_encrypted(quic_module, clean_path, topo, tmp_path, who):
    """Only one end offers it: everything is encrypted (no marker on the wire) and works."""
    server_tp = PLAIN if who == "server" else None
    client_tp = PLAIN if who == "client" else None
    wire, peer, said = _echo(topo, tmp_path, server_tp, client_tp)
    assert peer["disable_1rtt_encryption"] == (1 if who == "server" else 0), peer
    assert len(wire) > len(PAYLOAD), f"the capture holds only {len(wire)} bytes: {said}"
    assert MARKER not in wire, "1-RTT went in clear though only one end offered it"
    assert MARKER[:12] not in wire
