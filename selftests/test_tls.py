"""quicctl.tls: TLS 1.3 handshakes between two in-memory engines (no kernel, no socket).

A client and a server QuicTls are wired back to back: each Send(level, data) of one side is fed
to the other at that level, cut into random pieces to exercise reassembly.  The certificates
are the ones in keys/ (keys/make-keys.sh).
"""

from __future__ import annotations

import gc
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quicctl import tls
from quicctl.paths import KEYS, ROOT
from quicctl.tls import (
    APP,
    HANDSHAKE,
    INITIAL,
    HandshakeDone,
    PeerTransportParams,
    QuicTls,
    Secret,
    Send,
    TlsError,
)

# Pure userspace (gnutls, the header, gcc): the host runs them in seconds, the TCG guest in
# minutes.
pytestmark = pytest.mark.host

CA, OTHER_CA = str(KEYS / "ca.crt"), str(KEYS / "other-ca.crt")
CERT, PKEY = str(KEYS / "cert.crt"), str(KEYS / "pkey.key")
CLIENT_CERT, CLIENT_KEY = str(KEYS / "client.crt"), str(KEYS / "client.key")

EXT_SERVER_NAME, EXT_ALPN = 0, 16
HT_CLIENT_HELLO, HT_ENCRYPTED_EXTENSIONS = 1, 8


def client(**kw) -> QuicTls:
    args = dict(server=False, alpns=["h3"], server_name="localhost", cafile=CA, keylog="")
    args.update(kw)
    return QuicTls(**args)


def server(**kw) -> QuicTls:
    args = dict(server=True, alpns=["h3"], certfile=CERT, keyfile=PKEY, keylog="")
    args.update(kw)
    return QuicTls(**args)


def chunks(data: bytes, rng: random.Random | None) -> list[bytes]:
    """``data`` cut at random places (pieces of 1..80 bytes); whole when rng is None."""
    if rng is None:
        return [data]
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 80)
        out.append(data[i : i + n])
        i += n
    return out


def deliver(events, to: QuicTls, rng, edit=None) -> None:
    for ev in events:
        if isinstance(ev, Send):
            data = edit(ev.level, ev.data) if edit else ev.data
            for piece in chunks(data, rng):
                to.feed(ev.level, piece)


def run(c: QuicTls, s: QuicTls, rng=None, edit_c2s=None, edit_s2c=None):
    """Drive both to completion; returns the (client, server) event lists."""
    if c._local_params is None:
        c.set_local_transport_params(b"client transport parameters")
    if s._local_params is None and s.on_peer_transport_params is None:
        s.set_local_transport_params(b"server transport parameters")
    cev, sev = c.step(), []
    pending, turn = cev, s
    for _ in range(8):
        deliver(pending, turn, rng, edit_c2s if turn is s else edit_s2c)
        pending = turn.step()
        (sev if turn is s else cev).extend(pending)
        turn = c if turn is s else s
        if c.handshake_complete and s.handshake_complete:
            break
    assert c.handshake_complete and s.handshake_complete
    return cev, sev


def secrets(events) -> dict[tuple[int, bool], Secret]:
    out = {}
    for ev in events:
        if isinstance(ev, Secret):
            assert (ev.level, ev.send) not in out, f"secret given twice: {ev}"
            out[(ev.level, ev.send)] = ev
    return out


def kinds(events) -> list[str]:
    """Event sequence as short strings: Send:1, Secret:2:tx, PeerTP, Done."""
    out = []
    for ev in events:
        if isinstance(ev, Send):
            out.append(f"Send:{ev.level}")
        elif isinstance(ev, Secret):
            out.append(f"Secret:{ev.level}:{'tx' if ev.send else 'rx'}")
        elif isinstance(ev, PeerTransportParams):
            out.append("PeerTP")
        else:
            out.append("Done")
    return out


def messages(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i + 1 : i + 4], "big")
        out.append(data[i : i + 4 + n])
        i += 4 + n
    assert i == len(data)
    return out


def extensions_offset(msg: bytes) -> int:
    """Where the extensions block (2-byte length) of a ClientHello / EncryptedExtensions is."""
    if msg[0] == HT_ENCRYPTED_EXTENSIONS:
        return 4
    assert msg[0] == HT_CLIENT_HELLO
    p = 4 + 2 + 32  # legacy_version, random
    p += 1 + msg[p]  # legacy_session_id
    p += 2 + int.from_bytes(msg[p : p + 2], "big")  # cipher_suites
    return p + 1 + msg[p]  # legacy_compression_methods


def extensions(msg: bytes) -> dict[int, bytes]:
    p = extensions_offset(msg)
    end = p + 2 + int.from_bytes(msg[p : p + 2], "big")
    out, p = {}, p + 2
    while p < end:
        etype, n = int.from_bytes(msg[p : p + 2], "big"), int.from_bytes(msg[p + 2 : p + 4], "big")
        out[etype] = msg[p + 4 : p + 4 + n]
        p += 4 + n
    return out


def strip_extension(data: bytes, htype: int, ext: int) -> bytes:
    """``data`` (handshake messages) with extension ``ext`` removed from the ``htype`` one."""
    out = []
    for msg in messages(data):
        if msg[0] == htype:
            p = extensions_offset(msg)
            kept = b"".join(
                e.to_bytes(2, "big") + len(v).to_bytes(2, "big") + v
                for e, v in extensions(msg).items()
                if e != ext
            )
            body = msg[4:p] + len(kept).to_bytes(2, "big") + kept
            msg = msg[:1] + len(body).to_bytes(3, "big") + body
        out.append(msg)
    return b"".join(out)


# -- successful handshakes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "cipher, ctype",
    [
        ("AES-128-GCM", tls.TLS_CIPHER_AES_GCM_128),
        ("AES-256-GCM", tls.TLS_CIPHER_AES_GCM_256),
        ("CHACHA20-POLY1305", tls.TLS_CIPHER_CHACHA20_POLY1305),
        ("TLS_AES_128_CCM_SHA256", tls.TLS_CIPHER_AES_CCM_128),
    ],
)
def test_handshake_cipher_secrets_and_params(cipher, ctype):
    rng = random.Random(f"handshake-{cipher}")
    ctp, stp = rng.randbytes(rng.randint(40, 200)), rng.randbytes(rng.randint(40, 200))
    with client(ciphers=[cipher]) as c, server() as s:
        c.set_local_transport_params(ctp)
        s.set_local_transport_params(stp)
        cev, sev = run(c, s, rng)

    # Transport parameters cross intact, ALPN and cipher agree.
    assert [e.data for e in cev if isinstance(e, PeerTransportParams)] == [stp]
    assert [e.data for e in sev if isinstance(e, PeerTransportParams)] == [ctp]
    assert cev[-1] == sev[-1] == HandshakeDone("h3", ctype, False)
    assert c.peer_transport_params == stp and s.peer_transport_params == ctp

    # Per level and direction: one side's send secret is the other's receive secret.
    cs, ss = secrets(cev), secrets(sev)
    assert set(cs) == set(ss) == {(lv, d) for lv in (HANDSHAKE, APP) for d in (True, False)}
    for level in (HANDSHAKE, APP):
        for direction in (True, False):
            mine, theirs = cs[(level, direction)], ss[(level, not direction)]
            assert mine.secret == theirs.secret
            assert mine.cipher_type == theirs.cipher_type == ctype
            assert len(mine.secret) == tls.SECRET_LEN[ctype]
        assert cs[(level, True)].secret != cs[(level, False)].secret
    assert cs[(HANDSHAKE, True)].secret != cs[(APP, True)].secret


def test_event_order_matches_kernel_choreography():
    """linux-quic-abi.md 5.1/5.2: peer params before APP keys; server APP rx key last."""
    rng = random.Random("order")
    with client() as c, server() as s:
        c.set_local_transport_params(b"c" * 50)
        s.set_local_transport_params(b"s" * 50)
        first = c.step()
        assert kinds(first) == ["Send:1"]
        deliver(first, s, rng)
        flight = s.step()
        assert kinds(flight) == [
            "PeerTP",
            "Secret:2:tx",
            "Secret:2:rx",
            "Send:1",
            "Send:2",
            "Secret:0:tx",
        ]
        assert not s.handshake_complete
        deliver(flight, c, rng)
        cev = c.step()
        assert kinds(cev) == [
            "Secret:2:tx",
            "Secret:2:rx",
            "PeerTP",
            "Send:2",
            "Secret:0:tx",
            "Secret:0:rx",
            "Done",
        ]
        assert [len(messages(e.data)) for e in flight if isinstance(e, Send)] == [1, 4]
        deliver(cev, s, rng)
        assert kinds(s.step()) == ["Secret:0:rx", "Done"]
        assert c.step() == [] and s.step() == []


def test_byte_by_byte_and_whole_flights():
    class OneByte(random.Random):
        def randint(self, a, b):
            return 1

    for rng in (OneByte(), None):
        with client() as c, server() as s:
            cev, sev = run(c, s, rng)
            assert cev[-1].alpn == sev[-1].alpn == "h3"


def test_server_sets_peer_params_before_writing_its_own():
    """on_peer_transport_params runs before EncryptedExtensions is written (5.2 steps 6-7)."""
    seen = []

    def exchange(peer: bytes) -> bytes:
        seen.append(peer)
        return b"ours, after " + peer

    with client() as c, server(on_peer_transport_params=exchange) as s:
        c.set_local_transport_params(b"client-tp")
        cev, sev = run(c, s, random.Random(1))
    assert seen == [b"client-tp"]
    assert [e.data for e in cev if isinstance(e, PeerTransportParams)] == [b"ours, after client-tp"]


def test_exception_in_params_callback_propagates():
    def exchange(peer: bytes) -> bytes:
        raise OSError(22, "setsockopt TRANSPORT_PARAM_EXT: EINVAL")

    with client() as c, server(on_peer_transport_params=exchange) as s:
        c.set_local_transport_params(b"client-tp")
        deliver(c.step(), s, None)
        with pytest.raises(OSError, match="EINVAL"):
            s.step()
        with pytest.raises(TlsError):  # the engine is dead afterwards
            s.step()


@pytest.mark.parametrize(
    "name", ["localhost", "server.quic.test", "any.quic.test", "127.0.0.1", "::1"]
)
def test_server_name_verified_and_sni(name):
    with client(server_name=name) as c, server() as s:
        cev, sev = run(c, s)
    assert cev[-1].alpn == sev[-1].alpn == "h3"
    ch = extensions(cev[0].data)
    if ":" in name or name[0].isdigit():
        assert EXT_SERVER_NAME not in ch  # RFC 6066: no IP literals in SNI
    else:
        assert name.encode() in ch[EXT_SERVER_NAME]
    assert ch[EXT_ALPN] == b"\x00\x03\x02h3"


def test_hello_retry_request(monkeypatch):
    """A server preferring another key share group asks for a second ClientHello."""
    with client() as c:
        prio = tls._cipher_priority
        monkeypatch.setattr(
            tls, "_cipher_priority", lambda x: prio(x) + ":-GROUP-ALL:+GROUP-SECP384R1"
        )
        with server() as s:
            cev, sev = run(c, s, random.Random(11))
    assert kinds(cev).count("Send:1") == 2  # ClientHello twice
    assert kinds(sev)[:2] == ["PeerTP", "Send:1"]  # HelloRetryRequest
    assert kinds(sev).count("PeerTP") == 1 and sev[-1].alpn == "h3"


def test_alpn_negotiation_picks_a_common_protocol():
    with client(alpns=["hq-interop", "h3"]) as c, server(alpns=["h3", "smb"]) as s:
        cev, sev = run(c, s)
    assert cev[-1].alpn == sev[-1].alpn == c.alpn == s.alpn == "h3"


def test_insecure_client_accepts_unknown_ca():
    with client(cafile=OTHER_CA, insecure=True, server_name="wrong.example") as c, server() as s:
        run(c, s)


def test_client_certificate_required_and_verified():
    c = client(certfile=CLIENT_CERT, keyfile=CLIENT_KEY)
    with c, server(verify_client=True, cafile=CA) as s:
        cev, sev = run(c, s, random.Random(7))
    assert sev[-1] == HandshakeDone("h3", cev[-1].cipher_type, False)


def test_resumption_with_session_ticket():
    key = bytes(range(64))
    with client() as c, server(ticket_key=key) as s:  # tickets arrive with the server flight
        run(c, s)
        assert c.session_data()
    with client() as c, server(ticket_key=key) as s:  # tickets arrive after the handshake

        def hold_tickets(level, data):
            return b"" if level == APP else data

        cev, sev = run(c, s, edit_s2c=hold_tickets)
        tickets = [e for e in sev if isinstance(e, Send) and e.level == APP]
        assert [m[0] for t in tickets for m in messages(t.data)] == [4, 4]  # NewSessionTicket
        assert c.session_data() is None
        deliver(tickets, c, random.Random(3))
        assert c.step() == []
        data = c.session_data()
    assert data
    with client(session_data=data) as c, server(ticket_key=key) as s:
        cev, sev = run(c, s)
        assert cev[-1].resumed and sev[-1].resumed
        # No Certificate / CertificateVerify on a resumed handshake: EE and Finished only.
        flight = [e for e in sev if isinstance(e, Send) and e.level == HANDSHAKE]
        assert [m[0] for m in messages(flight[0].data)] == [8, 20]


# -- failures ----------------------------------------------------------------------------------


def expect_failure(c, s, side, rng=None, **kw) -> TlsError:
    with pytest.raises(TlsError) as info:
        run(c, s, rng, **kw)
    err = info.value
    failed = c if side == "client" else s
    assert failed.alert == err.alert and not err.from_peer
    assert err.error_code == 0x100 + err.alert
    assert not c.handshake_complete or not s.handshake_complete
    with pytest.raises(TlsError):  # stays failed
        failed.step()
    return err


def test_wrong_ca_fails_on_client_and_server_sees_alert():
    with client(cafile=OTHER_CA) as c, server() as s:
        err = expect_failure(c, s, "client", random.Random(5))
        assert err.alert == 48
        assert "unknown_ca (alert 48)" in str(err) and "issuer" in str(err)
        assert "server certificate for localhost" in str(err)
        # The server learns it from CONNECTION_CLOSE 0x100 + 48.
        peer = s.peer_alert(err.error_code - 0x100)
        assert peer.alert == 48 and peer.from_peer
        assert "client sent unknown_ca (alert 48)" in str(peer)
        assert not s.handshake_complete
        with pytest.raises(TlsError, match="unknown_ca"):
            s.step()


@pytest.mark.parametrize("name", ["example.com", "127.0.0.2", "::2", "quic.test"])
def test_hostname_mismatch(name):
    with client(server_name=name) as c, server() as s:
        err = expect_failure(c, s, "client")
    assert err.alert == 42 and "bad_certificate (alert 42)" in str(err)
    assert name in str(err)


def test_alpn_mismatch_is_no_application_protocol_on_both_sides():
    with client(alpns=["h3"]) as c, server(alpns=["hq-interop"]) as s:
        err = expect_failure(c, s, "server")
        assert err.alert == 120 and "no_application_protocol (alert 120)" in str(err)
        peer = c.peer_alert(err.alert)
        assert "no_application_protocol (alert 120)" in str(peer) and "h3" in str(peer)


@pytest.mark.parametrize("side", ["client", "server"])
def test_peer_without_alpn_is_refused(side):
    """gnutls' mandatory ALPN lets a peer that offers or selects none through; QUIC must not."""

    def drop_alpn(level, data):
        if side == "server" and level == INITIAL:
            return strip_extension(data, HT_CLIENT_HELLO, EXT_ALPN)
        if side == "client" and level == HANDSHAKE:
            return strip_extension(data, HT_ENCRYPTED_EXTENSIONS, EXT_ALPN)
        return data

    kw = {"edit_c2s": drop_alpn} if side == "server" else {"edit_s2c": drop_alpn}
    with client() as c, server() as s:
        err = expect_failure(c, s, side, **kw)
    assert err.alert == 120 and "negotiated no application protocol" in str(err)


@pytest.mark.parametrize("side", ["client", "server"])
def test_missing_transport_parameters(side):
    def drop_params(level, data):
        if side == "server" and level == INITIAL:
            return strip_extension(data, HT_CLIENT_HELLO, tls.QUIC_TRANSPORT_PARAMETERS_EXT)
        if side == "client" and level == HANDSHAKE:
            return strip_extension(data, HT_ENCRYPTED_EXTENSIONS, tls.QUIC_TRANSPORT_PARAMETERS_EXT)
        return data

    kw = {"edit_c2s": drop_params} if side == "server" else {"edit_s2c": drop_params}
    with client() as c, server() as s:
        err = expect_failure(c, s, side, **kw)
    assert err.alert == 109 and "missing_extension (alert 109)" in str(err)
    assert "quic_transport_parameters" in str(err)


def test_client_certificate_missing_or_untrusted():
    with client() as c, server(verify_client=True, cafile=CA) as s:
        err = expect_failure(c, s, "server")
    assert err.alert == 116 and "certificate_required" in str(err)
    # The server's CertificateRequest names the CAs it trusts; a gnutls client whose
    # certificate is not from one of them sends none at all.
    c = client(certfile=CLIENT_CERT, keyfile=CLIENT_KEY)
    with c, server(verify_client=True, cafile=OTHER_CA) as s:
        err = expect_failure(c, s, "server")
    assert err.alert == 116 and "issued by a CA in cafile" in str(err)


def test_key_update_and_unexpected_messages_rejected():
    with client() as c, server() as s:
        run(c, s)
        with pytest.raises(TlsError, match=r"type 24 .*unexpected_message \(alert 10\)"):
            c.feed(APP, b"\x18\x00\x00\x01\x00")  # KeyUpdate: RFC 9001 section 6
        assert c.alert == 10


def test_garbage_is_decode_error():
    with server() as s:
        s.set_local_transport_params(b"tp")
        s.feed(INITIAL, b"\x01\x00\x00\x05hello")
        with pytest.raises(TlsError, match=r"decode_error \(alert 50\)"):
            s.step()


def test_oversized_message_is_crypto_buffer_exceeded():
    with server() as s:
        with pytest.raises(TlsError) as info:
            s.feed(INITIAL, b"\x01\xff\xff\xff")
    assert info.value.alert is None and info.value.error_code == 0x0D


def test_bad_configuration_is_reported_clearly(tmp_path):
    with pytest.raises(TlsError, match="cannot load CA file .*nothing.pem"):
        client(cafile=str(tmp_path / "nothing.pem"))
    with pytest.raises(TlsError, match="cannot load certificate"):
        server(certfile=CA, keyfile=PKEY)
    with pytest.raises(TlsError, match="unsupported TLS cipher 'AES-128-CBC'"):
        client(ciphers=["AES-128-CBC"])
    with pytest.raises(TlsError, match="ALPN"):
        client(alpns=[])
    with pytest.raises(TlsError, match="certificate and key"):
        QuicTls(server=True, alpns=["h3"])
    c = client()
    with pytest.raises(RuntimeError, match="set_local_transport_params"):
        c.step()
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        c.feed(INITIAL, b"x")


# -- key log -------------------------------------------------------------------------------------

LABELS = {
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET": (HANDSHAKE, True),
    "SERVER_HANDSHAKE_TRAFFIC_SECRET": (HANDSHAKE, False),
    "CLIENT_TRAFFIC_SECRET_0": (APP, True),
    "SERVER_TRAFFIC_SECRET_0": (APP, False),
}


def read_keylog(path: Path) -> list[tuple[str, str, str]]:
    return [tuple(line.split(" ")) for line in path.read_text().splitlines()]


def test_keylog_nss_format_and_appends(tmp_path, monkeypatch):
    path = tmp_path / "keys.log"
    path.write_text("")
    with client(keylog=str(path)) as c, server() as s:
        cev, _ = run(c, s)
    lines = read_keylog(path)
    assert {label for label, _, _ in lines} == set(LABELS) | {"EXPORTER_SECRET"}
    assert len(lines) == 5
    crandom = {r for _, r, _ in lines}
    assert len(crandom) == 1 and len(crandom.pop()) == 64
    cs = secrets(cev)
    for label, _random, secret in lines:
        if label in LABELS:
            assert bytes.fromhex(secret) == cs[LABELS[label]].secret, label

    with client(keylog=str(path)) as c, server() as s:  # appends
        run(c, s)
    assert read_keylog(path)[:5] == lines and len(read_keylog(path)) == 10

    env = tmp_path / "env.log"  # default: $SSLKEYLOGFILE
    monkeypatch.setenv("SSLKEYLOGFILE", str(env))
    with QuicTls(server=False, alpns=["h3"], cafile=CA, server_name="localhost") as c:
        with server() as s:
            run(c, s)
    assert len(read_keylog(env)) == 5
    assert oct(env.stat().st_mode & 0o777) == "0o600"


def test_keylog_replaces_gnutls_own_sslkeylogfile_writer(tmp_path):
    """gnutls writes $SSLKEYLOGFILE by itself; ours replaces that writer (no duplicate lines)."""
    env = tmp_path / "env.log"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from quicctl.tls import QuicTls, Send
        c = QuicTls(server=False, alpns=["h3"], server_name="localhost", cafile={CA!r})
        s = QuicTls(server=True, alpns=["h3"], certfile={CERT!r}, keyfile={PKEY!r},
                    keylog={str(tmp_path / "srv.log")!r})
        c.set_local_transport_params(b"c")
        s.set_local_transport_params(b"s")
        events, to, other = c.step(), s, c
        while not (c.handshake_complete and s.handshake_complete):
            for ev in events:
                if isinstance(ev, Send):
                    to.feed(ev.level, ev.data)
            events, to, other = to.step(), other, to
        """
    )
    env_vars = dict(os.environ, SSLKEYLOGFILE=str(env))
    r = subprocess.run([sys.executable, "-c", script], env=env_vars, capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    lines = read_keylog(env)
    assert len(lines) == 5 and len(set(lines)) == 5, lines  # the client's, once each
    assert len(read_keylog(tmp_path / "srv.log")) == 5


# -- resources -----------------------------------------------------------------------------------


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_no_leak_over_200_handshakes():
    def handshakes(n: int) -> None:
        for _ in range(n):
            with client() as c, server() as s:
                run(c, s)

    handshakes(30)  # warm up allocators and caches
    gc.collect()
    # Engines of connections other tests left open (server threads) are not ours to judge.
    others = set(tls._sessions.keys())
    before = rss_kib()
    handshakes(200)
    gc.collect()
    grown = rss_kib() - before
    assert grown < 1024, f"RSS grew by {grown} KiB over 200 handshakes"
    left = set(tls._sessions.keys()) - others
    assert not left, "QuicTls objects still registered after close()"


def test_abandoned_engine_is_freed_without_close():
    c = client()
    key = c._key
    del c
    gc.collect()
    assert key not in tls._sessions


def test_constants_match_the_kernel_headers():
    from quicctl import abi

    k = abi.constants()
    assert (tls.APP, tls.INITIAL, tls.HANDSHAKE, tls.EARLY) == (
        k["QUIC_CRYPTO_APP"],
        k["QUIC_CRYPTO_INITIAL"],
        k["QUIC_CRYPTO_HANDSHAKE"],
        k["QUIC_CRYPTO_EARLY"],
    )
    for name in (
        "TLS_CIPHER_AES_GCM_128",
        "TLS_CIPHER_AES_GCM_256",
        "TLS_CIPHER_AES_CCM_128",
        "TLS_CIPHER_CHACHA20_POLY1305",
        "QUIC_TRANSPORT_ERROR_INTERNAL",
        "QUIC_TRANSPORT_ERROR_CRYPTO_BUF_EXCEEDED",
        "QUIC_TRANSPORT_ERROR_CRYPTO",
    ):
        assert getattr(tls, name) == k[name], name
    assert max(tls.SECRET_LEN.values()) == k["QUIC_CRYPTO_SECRET_BUFFER_SIZE"]


PSK = ("quicctl-test", bytes(range(32)))


@pytest.mark.parametrize("cipher", ["AES-128-GCM", "CHACHA20-POLY1305"])
def test_external_psk_handshake(cipher):
    """An external PSK instead of certificates (net/handshake's PSK mode): no certificate on
    either side, both learn the identity, the secrets agree."""
    with client(psk=PSK, cafile=None, ciphers=[cipher]) as c, \
            server(psk=PSK, certfile=None, keyfile=None, ciphers=[cipher]) as s:  # fmt: skip
        cev, sev = run(c, s, random.Random(3))
        assert c.psk_identity == s.psk_identity == PSK[0]
        assert "Certificate" not in str(kinds(cev))
        cs, ss = secrets(cev), secrets(sev)
        assert cs[(tls.APP, True)].secret == ss[(tls.APP, False)].secret
        assert c.cipher_type == tls.CIPHERS[cipher][2]


@pytest.mark.parametrize("what", ["identity", "key"])
def test_external_psk_mismatch_fails(what):
    other = ("someone-else", PSK[1]) if what == "identity" else (PSK[0], bytes(32))
    with client(psk=other, cafile=None) as c, \
            server(psk=PSK, certfile=None, keyfile=None) as s:  # fmt: skip
        with pytest.raises(TlsError) as info:
            run(c, s)
        assert not c.handshake_complete and not s.handshake_complete
        if what == "identity":
            assert "someone-else" in str(info.value), info.value


def test_external_psk_arguments_checked():
    with pytest.raises(TlsError, match="identity of 1..255 bytes"):
        client(psk=("", b"k"))
    with pytest.raises(TlsError, match="non-empty key"):
        server(psk=("id", b""))
