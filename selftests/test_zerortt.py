"""Session resumption and 0-RTT (RFC 9001 Section 4.6, linux-quic-abi.md 5.3).

A kernel client keeps a session (TLS session data from the server's NewSessionTicket, the
server's transport parameters, its token) and, on the next connection, queues its request
before the handshake: it leaves in 0-RTT packets, the first coalesced after the Initial, and
the server's kernel opens them once TLS accepted early data, holding their data back from
recvmsg until ESTABLISHED.  A server that rejects 0-RTT still gets the request once, resent in
1-RTT packets.  A replayed first flight is not delivered again (gnutls's anti-replay refuses its
early data, and without the client's keys the replayed handshake never completes).  The
capture is decoded with the key log (quicdecode, aioquic's primitives) to show where the
request went.  Also aioquic's client resuming with 0-RTT against our server, and the option's
error rows."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import threading
import time

import pytest
from conftest import kernel_connect, kernel_listener
from peer import ALPN, AioPeer, until

REQUEST = b"GET /early " + bytes(range(48)) * 4  # fits one 0-RTT packet after the Initial


class EchoServer:
    """A kernel listener (QuicServer keywords) in the server namespace; each connection's
    first stream is read to its FIN and answered upper-cased.  ``results`` has one dict per
    accepted connection: ok, data, early (TLS accepted 0-RTT), resumed, error."""

    def __init__(self, topo, **kw):
        self.srv = kernel_listener(topo, "0.0.0.0", alpn=ALPN, **kw)
        self.port = self.srv.getsockname()[1]
        self.results: list[dict] = []
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.closed:
            try:
                sock, _ = self.srv.accept_socket()
            except OSError:
                time.sleep(0.05)  # a request that went away, or the listener (closed)
                continue
            res: dict = {"ok": False, "data": b""}
            self.results.append(res)
            threading.Thread(target=self._serve, args=(sock, res), daemon=True).start()

    def _serve(self, sock, res: dict) -> None:
        from quicctl.errors import QuicError

        try:
            conn = self.srv.handshake(sock, timeout=40)
        except QuicError as exc:
            res["error"] = str(exc)
            return
        res.update(early=conn.early_data_accepted, resumed=conn.resumed)
        conn.settimeout(60)
        try:
            while True:
                sid, data, fin = conn.recv()
                res["data"] += data
                if fin:
                    break
            conn.send(res["data"].upper(), sid, fin=True)
            res["ok"] = True
            conn.recv()  # until the client closes
        except QuicError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed = True
        self.srv.close()
        self.thread.join(10)


def _ask(conn, sid: int) -> bytes:
    conn.settimeout(60)
    got = b""
    while True:
        rsid, data, fin = conn.recv()
        assert rsid == sid
        got += data
        if fin:
            return got


def _first_session(topo, port: int, **kw):
    """A full handshake with a request; the session it leaves."""
    with kernel_connect(topo, topo.server_v4, port, alpn=ALPN, **kw) as conn:
        sid = conn.open_stream()
        conn.send(b"first", sid, fin=True)
        assert _ask(conn, sid) == b"FIRST"
        session = conn.session(timeout=30)
    assert session is not None, "no NewSessionTicket reached the client"
    return session


class Capture:
    """tcpdump on the client namespace's veth end, one datagram per packet."""

    def __init__(self, topo, path):
        for tool in ("tcpdump",):
            assert shutil.which(tool), f"{tool} is required (scripts/setup installs it)"
        for ns in (topo.server, topo.client):
            topo.wire_like(ns)
        self.path = path
        cmd = ["tcpdump", "-U", "-i", topo.dev(topo.client), "-w", str(path), "udp"]
        self.proc = topo.popen(topo.client, cmd, stderr=subprocess.PIPE, text=True)
        said: list[str] = []
        while not said or "listening on" not in said[-1]:
            said.append(self.proc.stderr.readline())
            assert said[-1], "tcpdump did not start: " + "".join(said)

    def stop(self) -> None:
        time.sleep(1)
        self.proc.terminate()
        self.proc.wait(10)


def _resume_early(topo, server: EchoServer, keylog) -> int:
    """A full handshake with ``server``, then a resumed one with REQUEST in 0-RTT, accepted and
    answered; the second connection's client port."""
    session = _first_session(topo, server.port, keylog=str(keylog))
    conn = kernel_connect(
        topo, topo.server_v4, server.port, alpn=ALPN, session=session, early_data=REQUEST,
        keylog=str(keylog),
    )  # fmt: skip
    with conn:
        assert conn.resumed and conn.early_data_accepted
        assert _ask(conn, conn.early_streams[0]) == REQUEST.upper()
        port = conn.getsockname()[1]
    until(lambda: len(server.results) == 2 and server.results[1]["ok"], "the answer")
    return port


def _zrtt_data(decoded, sender: str = "client") -> bytes:
    frames = sorted(
        (o, d) for s, e, _, o, d in decoded.stream_frames if s == sender and e == "0rtt"
    )
    return b"".join(d for _, d in frames)


def test_zerortt_kernel_to_kernel(quic_module, clean_path, topo, tmp_path):
    """The second connection resumes and its request travels in 0-RTT packets, the first of
    them in the Initial's datagram; the server accepted it and answered once."""
    import quicdecode

    keylog, pcap = tmp_path / "keys.log", tmp_path / "quic.pcap"
    server = EchoServer(topo, early_data=True)
    cap = Capture(topo, pcap)
    try:
        _resume_early(topo, server, keylog)
    finally:
        cap.stop()
        server.close()
    first, second = server.results
    assert not first["resumed"] and second["resumed"] and second["early"], server.results
    assert second["data"] == REQUEST, "the server did not get the request exactly once"
    decoded = quicdecode.decode(pcap, server.port, keylog)
    assert not decoded.errors, decoded.errors[:5]
    assert decoded.epochs[("client", "0rtt")] >= 1, decoded.summary()
    assert _zrtt_data(decoded) == REQUEST, "the request did not travel in 0-RTT packets"
    flights = [kinds for s, kinds in decoded.datagrams if s == "client" and "0rtt" in kinds]
    assert flights[0] == ["initial", "0rtt"], f"0-RTT not coalesced after the Initial: {flights}"
    assert decoded.epochs[("server", "0rtt")] == 0, "the server sent 0-RTT packets"


def test_zerortt_rejected_falls_back(quic_module, clean_path, topo, tmp_path):
    """A server that cannot open the ticket (another listener: another ticket key) does a full
    handshake and drops the 0-RTT packets; the client resends the request in 1-RTT packets and
    the server gets it once."""
    import quicdecode

    keylog, pcap = tmp_path / "keys.log", tmp_path / "quic.pcap"
    issuer = EchoServer(topo, early_data=True)
    other = EchoServer(topo, early_data=True)
    cap = Capture(topo, pcap)
    try:
        session = _first_session(topo, issuer.port)
        conn = kernel_connect(
            topo, topo.server_v4, other.port, alpn=ALPN, session=session, early_data=REQUEST,
            keylog=str(keylog),
        )  # fmt: skip
        with conn:
            assert not conn.resumed and not conn.early_data_accepted
            assert _ask(conn, conn.early_streams[0]) == REQUEST.upper()
        until(lambda: other.results and other.results[0]["ok"], "the answer")
    finally:
        cap.stop()
        issuer.close()
        other.close()
    res = other.results[0]
    assert not res["resumed"] and not res["early"]
    assert res["data"] == REQUEST, "the request was not delivered exactly once"
    decoded = quicdecode.decode(pcap, other.port, keylog)
    assert decoded.epochs[("client", "0rtt")] >= 1, decoded.summary()
    resent = b"".join(
        d for s, e, _, _, d in sorted(decoded.stream_frames, key=lambda f: f[3])
        if s == "client" and e == "1rtt"
    )  # fmt: skip
    assert REQUEST in resent, "the request was not resent in 1-RTT packets"


def test_zerortt_replay_delivered_once(quic_module, clean_path, topo, tmp_path):
    """The client's first flight (Initial and 0-RTT datagrams) captured and sent again to the
    server: TLS refuses the copy's early data (anti-replay), the copy's handshake never
    completes, and the request is delivered once."""
    import quicdecode

    from quicctl.netns import enter
    from quicctl.tls import AntiReplay

    keylog, pcap = tmp_path / "keys.log", tmp_path / "quic.pcap"
    replay_cache = AntiReplay(window_ms=120000)  # the slow guest takes seconds per handshake
    server = EchoServer(topo, early_data=True, anti_replay=replay_cache)
    cap = Capture(topo, pcap)
    try:
        cport = _resume_early(topo, server, keylog)
        time.sleep(1)
        flight = []
        for dg in quicdecode.read_pcap(pcap):
            if dg.dst[1] == cport and dg.src[1] == server.port:
                break  # the server answered: the first flight is over
            if dg.src[1] == cport and dg.dst[1] == server.port:
                flight.append(dg.payload)
        assert len(flight) >= 1
        with enter(topo.client):
            rogue = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with rogue:
            for payload in flight:
                rogue.sendto(payload, (topo.server_v4, server.port))
            until(lambda: len(server.results) == 3 and "error" in server.results[2], "the replay")
    finally:
        cap.stop()
        server.close()
    assert server.results[1]["data"] == REQUEST
    replay = server.results[2]
    assert not replay["data"] and not replay["ok"], "the replayed request was delivered"
    assert replay_cache.replays == 1, "gnutls did not see the ClientHello as a replay"


def test_aioquic_client_zerortt_to_kernel_server(quic_module, clean_path, topo):
    """aioquic's client takes our server's ticket and resumes with its request in 0-RTT."""
    from aioquic.quic.events import StreamDataReceived

    server = EchoServer(topo, early_data=True)
    tickets: list = []
    try:
        peer = AioPeer(topo, server.port)
        # AioPeer connects at once: the handler goes in as connect() would have put it.
        peer.quic._session_ticket_handler = tickets.append
        peer.quic.tls.new_session_ticket_cb = peer.quic._handle_session_ticket
        peer.quic.send_stream_data(0, b"first", end_stream=True)
        peer.until(lambda: 0 in peer.fin and tickets, "the answer and a ticket")
        assert bytes(peer.data[0]) == b"FIRST"
        peer.close()
        ticket = tickets[-1]
        assert ticket.max_early_data_size == 0xFFFFFFFF  # RFC 9001 Section 4.6.1
        peer = AioPeer(topo, server.port, session_ticket=ticket)
        peer.quic.send_stream_data(0, REQUEST, end_stream=True)  # before the handshake: 0-RTT
        peer.until(lambda: 0 in peer.fin, "the 0-RTT answer")
        assert bytes(peer.data[0]) == REQUEST.upper()
        assert peer.quic.tls.session_resumed and peer.quic.tls.early_data_accepted
        assert peer.event(StreamDataReceived, 0) is not None
        peer.close()
        until(lambda: len(server.results) == 2 and server.results[1]["ok"], "the server")
    finally:
        server.close()
    assert server.results[1]["early"] and server.results[1]["data"] == REQUEST


def test_zerortt_errors(quic_module, clean_path, topo):
    """Early data without remembered parameters is EINVAL; TRANSPORT_PARAM with remote = 1
    outside ESTABLISHING (before connect(), and once ESTABLISHED) is EINVAL and changes
    nothing; a client whose 0-RTT data used more than the server's new limits allow closes
    with PROTOCOL_VIOLATION (RFC 9000 Section 7.4.1) and its setsockopt TRANSPORT_PARAM_EXT
    fails with EINVAL."""
    from quicctl import abi
    from quicctl.connection import _cmsg_stream, quic_socket
    from quicctl.errors import HandshakeError
    from quicctl.netns import enter

    issuer = EchoServer(topo, early_data=True)
    lowered = EchoServer(topo, early_data=True, transport_params={"max_streams_bidi": 2})
    try:
        with enter(topo.client):
            s = quic_socket(socket.AF_INET)
        with s:
            before = abi.getsockopt(s, "TRANSPORT_PARAM", remote=1)
            with pytest.raises(OSError) as e:  # not connected yet: not ESTABLISHING
                abi.setsockopt(s, "TRANSPORT_PARAM", remote=1, max_streams_bidi=10)
            assert e.value.errno == errno.EINVAL
            assert abi.getsockopt(s, "TRANSPORT_PARAM", remote=1) == before
            s.connect((topo.server_v4, issuer.port))
            flags = abi.MSG_QUIC_STREAM_NEW | abi.MSG_QUIC_STREAM_FIN
            with pytest.raises(OSError) as e:  # no stream limits known
                s.sendmsg([b"early"], _cmsg_stream(0, flags), socket.MSG_NOSIGNAL)
            assert e.value.errno == errno.EINVAL
        session = _first_session(topo, issuer.port)
        with kernel_connect(topo, topo.server_v4, issuer.port, alpn=ALPN) as conn:
            before = abi.getsockopt(conn.sock, "TRANSPORT_PARAM", remote=1)
            with pytest.raises(OSError) as e:  # ESTABLISHED
                abi.setsockopt(conn.sock, "TRANSPORT_PARAM", session.transport_params)
            assert e.value.errno == errno.EINVAL
            assert abi.getsockopt(conn.sock, "TRANSPORT_PARAM", remote=1) == before
        # RFC 9000 Section 7.4.1: three streams of 0-RTT data; another listener (which cannot
        # open the ticket, so 0-RTT is rejected) allows two: the client closes the connection.
        with pytest.raises(HandshakeError) as e:
            kernel_connect(
                topo, topo.server_v4, lowered.port, alpn=ALPN, session=session,
                early_data=[b"a", b"b", b"c"], timeout=60,
            )  # fmt: skip
        assert e.value.errno == errno.EINVAL, (e.value, lowered.results)
        until(lambda: lowered.results and "error" in lowered.results[-1], "the server's error")
        assert "error 0xa" in lowered.results[-1]["error"], lowered.results  # PROTOCOL_VIOLATION
    finally:
        issuer.close()
        lowered.close()


def test_cli_client_session_early_data(quic_module, clean_path, topo, tmp_path):
    """`quicctl client --session FILE --early-data` twice: the first run saves the session,
    the second resumes with its requests in 0-RTT, accepted; both fetch the files intact."""
    from conftest import KernelHqServer
    from test_cli import invoke

    from quicctl.hq import make_file
    from quicctl.netns import enter
    from quicctl.paths import KEYS

    root = tmp_path / "www"
    root.mkdir()
    digest = make_file(root / "one", 100 << 10, seed=3)
    sfile = tmp_path / "session.json"
    server = KernelHqServer(topo, root, tickets=True, early_data=True)
    args = ["client", topo.server_v4, str(server.port), "/one", "--cafile",
            str(KEYS / "ca.crt"), "--server-name", "server.quic.test", "--session", str(sfile),
            "--early-data"]  # fmt: skip
    try:
        with enter(topo.client):
            first = invoke(args)
            second = invoke(args)
    finally:
        server.close()
    assert first.exit_code == 0, first.stderr
    assert "full handshake; session saved to" in first.stderr, first.stderr
    assert second.exit_code == 0, second.stderr
    assert "resumed, 0-RTT accepted; session saved to" in second.stderr, second.stderr
    for run in (first, second):
        assert run.stdout.startswith(f"{digest}  /one  {100 << 10} bytes"), run.stdout


def test_kernel_client_zerortt_to_aioquic_server(quic_module, clean_path, topo, tmp_path):
    """Our client resumes with aioquic's server and sends its request in 0-RTT; aioquic
    accepts it and answers."""
    from quicctl import hq, userspace
    from quicctl.hq import make_file
    from quicctl.netns import enter
    from quicctl.paths import KEYS

    root = tmp_path / "www"
    root.mkdir()
    digest = make_file(root / "one", 64 << 10, seed=5)
    with enter(topo.server):
        server = userspace.ServerThread(
            "0.0.0.0", 0, root=root, certfile=str(KEYS / "cert.crt"),
            keyfile=str(KEYS / "pkey.key"), session_tickets=True,
        )  # fmt: skip
    try:
        with kernel_connect(topo, topo.server_v4, server.port) as conn:
            (d,) = hq.fetch(conn, ["/one"], None)
            assert d.sha256.hexdigest() == digest
            session = conn.session(timeout=30)
        assert session is not None, "aioquic sent no ticket"
        with kernel_connect(
            topo, topo.server_v4, server.port, session=session, early_data=hq.request("/one")
        ) as conn:
            assert conn.resumed and conn.early_data_accepted
            (d,) = hq.fetch(conn, ["/one"], None, sent={"/one": conn.early_streams[0]})
        assert d.done and d.sha256.hexdigest() == digest
    finally:
        server.close()
