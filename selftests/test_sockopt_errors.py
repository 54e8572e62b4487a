"""Every error row of the reference's option table (section 3): the errno, and nothing changed.

Each case puts a socket in the state the row names (fresh = CLOSED, ``connect()``ed =
ESTABLISHING, listening, or one end of an established kernel-to-kernel connection), reads every
option that state lets it read, makes the refused call, checks the errno, and reads them all
again: an error must leave the socket as it was.  A row whose state cannot be reached from a
test (ENOMEM, EFAULT, EINTR) is not listed; CONNECTION_MIGRATION's rows are in
test_migration (CONNECTION_MIGRATION on an established connection).
"""

from __future__ import annotations

import errno
import socket

import pytest
from conftest import nft
from peer import conns_row
from test_connection import CIPHERS, EchoServer, _client, _read_streams

from quicctl import abi

IPPROTO_QUIC = 261
EVENTS = range(1, 10)


def _snapshot(sock) -> dict:
    """What every get that the socket's state allows returns (an error is recorded as such)."""
    out: dict = {}
    for t in EVENTS:
        out[f"EVENT{t}"] = abi.getsockopt(sock, "EVENT", type=t)["on"]
    for name, kw in (
        ("TRANSPORT_PARAM", {"remote": 0}),
        ("TRANSPORT_PARAM/remote", {"remote": 1}),
        ("CONFIG", {}),
        ("CONNECTION_CLOSE", {}),
        ("CONNECTION_ID/source", {"dest": 0}),
        ("CONNECTION_ID/dest", {"dest": 1}),
        ("ALPN", None),
        ("TOKEN", None),
        ("SESSION_TICKET", None),
    ):
        opt = name.split("/")[0]
        try:
            out[name] = abi.getsockopt(sock, opt, **kw) if kw is not None else (
                abi.getsockopt(sock, opt))  # fmt: skip
        except OSError as e:
            out[name] = errno.errorcode.get(e.errno, e.errno)
    return out


def _refused(sock, err: int, call, *args, allow: tuple[str, ...] = (), **fields) -> None:
    """``call(sock, *args, **fields)`` fails with ``err`` and changes no option but ``allow``."""
    before = _snapshot(sock)
    with pytest.raises(OSError) as info:
        call(sock, *args, **fields)
    got = info.value.errno
    assert got == err, (
        f"{call.__name__}{args} {fields}: {errno.errorcode.get(got, got)}, "
        f"the reference says {errno.errorcode[err]}"
    )
    after = _snapshot(sock)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    for k in allow:
        changed.pop(k, None)
    assert not changed, f"{args} {fields} failed with {errno.errorcode[err]} but changed {changed}"


def _set(sock, name, value=None, **fields):
    abi.setsockopt(sock, name, value, **fields)


def _get(sock, name, value=None, **fields):
    return abi.getsockopt(sock, name, value, **fields)


@pytest.fixture
def fresh(quic_module):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    yield s
    s.close()


@pytest.fixture
def establishing(quic_module):
    """A client after connect(): ESTABLISHING, nothing sent yet (reference section 5.1)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    s.connect(("127.0.0.1", 9))
    yield s
    s.close()


@pytest.fixture
def listener(quic_module):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    abi.setsockopt(s, "ALPN", "errors-test")
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    yield s
    s.close()


@pytest.fixture
def established(quic_module, topo):
    """A kernel client and the kernel server's accepted socket, a stream echoed once (one
    connection per test: a row's refusal must not depend on what an earlier test did)."""
    server = EchoServer(topo, "0.0.0.0")
    conn = _client(topo, topo.server_v4, server.port, CIPHERS["aes128gcm"])
    sid = conn.open_stream()
    conn.sendall(b"ping", sid, fin=True)
    assert _read_streams(conn, {sid})[sid] == b"ping"
    yield conn, server.conns[0]
    conn.close()
    server.close()


@pytest.fixture
def live(established, topo):
    """``established``, checked to be still up before and after the test."""

    def up():
        for c, ns in zip(established, (topo.client, topo.server), strict=True):
            row = conns_row(c.sock, ns)
            info = c.close_info()
            assert row and row["STATE"] == 1, f"{ns}: {row}, closed: {info.describe()}"

    up()
    yield established
    up()


# -- EVENT ------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0, 10, 255])
def test_event_type_out_of_range(fresh, t):
    _refused(fresh, errno.EINVAL, _set, "EVENT", type=t, on=1)
    _refused(fresh, errno.EINVAL, _get, "EVENT", type=t)


def test_event_get_with_len_0(fresh):
    sol = abi.constants()["SOL_QUIC"]
    _refused(fresh, errno.EINVAL, abi.raw_getsockopt, sol, abi.option_number("EVENT"), 0)


# -- STREAM_OPEN, STREAM_RESET, STREAM_STOP_SENDING -------------------------------------------


@pytest.mark.parametrize("state", ["fresh", "listener"])
def test_stream_open_closed_or_listening_epipe(request, state):
    sock = request.getfixturevalue(state)
    _refused(sock, errno.EPIPE, _get, "STREAM_OPEN", stream_id=-1, stream_flags=0)


def _next_bidi(conn) -> int:
    return _get(conn.sock, "STREAM_OPEN", stream_id=-1, stream_flags=0)["stream_id"]


def test_stream_open_errors_leave_the_next_id(live):
    conn, _ = live
    first = _next_bidi(conn)
    s = conn.sock
    _refused(s, errno.EINVAL, _get, "STREAM_OPEN", stream_id=-1, stream_flags=0x1)  # bit 0
    _refused(s, errno.EINVAL, _get, "STREAM_OPEN", stream_id=1, stream_flags=0)  # server's
    _refused(s, errno.EINVAL, _get, "STREAM_OPEN", stream_id=3, stream_flags=0)  # server uni
    conn.sendall(b"x", first, fin=True)
    _refused(s, errno.EINVAL, _get, "STREAM_OPEN", stream_id=first, stream_flags=0)  # used
    # Far past the peer's limit of 100 bidi streams, without waiting.
    dontwait = abi.constants()["MSG_QUIC_STREAM_DONTWAIT"]
    _refused(s, errno.EAGAIN, _get, "STREAM_OPEN", stream_id=4 * 5000, stream_flags=dontwait)
    assert _read_streams(conn, {first})[first] == b"x"
    assert _next_bidi(conn) == first + 4, "a refused STREAM_OPEN consumed a stream ID"


def test_stream_reset_and_stop_sending_errors(live, establishing, topo):
    conn, _ = live
    s = conn.sock
    _refused(establishing, errno.EINVAL, _set, "STREAM_RESET", stream_id=0, errcode=1)
    _refused(establishing, errno.EINVAL, _set, "STREAM_STOP_SENDING", stream_id=0, errcode=1)
    # Receive-only (the server's uni 3) and not yet opened (4000) streams.
    _refused(s, errno.EINVAL, _set, "STREAM_RESET", stream_id=3, errcode=1)
    _refused(s, errno.EINVAL, _set, "STREAM_RESET", stream_id=4000, errcode=1)
    # Send-only: a uni stream of our own.
    uni = abi.constants()["MSG_QUIC_STREAM_UNI"]
    sid = _get(s, "STREAM_OPEN", stream_id=-1, stream_flags=uni)["stream_id"]
    _refused(s, errno.EINVAL, _set, "STREAM_STOP_SENDING", stream_id=sid, errcode=1)
    _refused(s, errno.EINVAL, _set, "STREAM_STOP_SENDING", stream_id=4000, errcode=1)
    # A second STOP_SENDING for one stream; the first is allowed.  The server's answer
    # (RESET_STREAM, which ends our receive side: EINVAL then) is held back meanwhile: over
    # veth it can arrive before setsockopt() returns.
    bidi = _next_bidi(conn)
    conn.sendall(b"y", bidi, fin=False)
    nft(
        topo,
        topo.server,
        """
table inet quicss {
    chain out { type filter hook output priority 0; udp dport > 0 drop; }
}
""",
    )
    try:
        _set(s, "STREAM_STOP_SENDING", stream_id=bidi, errcode=7)
        _refused(s, errno.EAGAIN, _set, "STREAM_STOP_SENDING", stream_id=bidi, errcode=7)
    finally:
        nft(topo, topo.server, "delete table inet quicss\n")


def test_stream_reset_after_close_enostr(live):
    conn, _ = live
    sid = _next_bidi(conn)
    conn.sendall(b"echo me", sid, fin=True)
    assert _read_streams(conn, {sid})[sid] == b"echo me"  # both directions over: freed
    _refused(conn.sock, errno.ENOSTR, _set, "STREAM_RESET", stream_id=sid, errcode=1)
    _refused(conn.sock, errno.ENOSTR, _set, "STREAM_STOP_SENDING", stream_id=sid, errcode=1)


# -- CONNECTION_ID ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["fresh", "establishing", "listener"])
def test_connection_id_not_established(request, state):
    sock = request.getfixturevalue(state)
    for dest in (0, 1):
        _refused(sock, errno.EINVAL, _get, "CONNECTION_ID", dest=dest)
        _refused(sock, errno.EINVAL, _set, "CONNECTION_ID", dest=dest, active=1, prior_to=0)


@pytest.mark.parametrize("dest", [0, 1], ids=["source", "dest"])
def test_connection_id_bad_active_and_prior_to(live, dest):
    conn, _ = live
    s = conn.sock
    held = _get(s, "CONNECTION_ID", dest=dest)
    if not held["active"]:  # 0 means "no switch": move on to 1 first
        _set(s, "CONNECTION_ID", dest=dest, active=1, prior_to=0)
        held = _get(s, "CONNECTION_ID", dest=dest)
    _refused(s, errno.EINVAL, _set, "CONNECTION_ID", dest=dest, active=held["active"], prior_to=0)
    _refused(s, errno.EINVAL, _set, "CONNECTION_ID", dest=dest, active=1000, prior_to=0)
    _refused(s, errno.EINVAL, _set, "CONNECTION_ID", dest=dest, active=0, prior_to=1000)
    if held["prior_to"]:
        _refused(s, errno.EINVAL, _set, "CONNECTION_ID", dest=dest, active=0,
                 prior_to=held["prior_to"])  # fmt: skip


# -- KEY_UPDATE ------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["fresh", "establishing", "listener"])
def test_key_update_not_established_epipe(request, state):
    _refused(request.getfixturevalue(state), errno.EPIPE, _set, "KEY_UPDATE")


def test_key_update_while_one_is_pending(quic_module, topo):
    """On a connection of its own: the server starts an update and sends nothing, so the
    peer cannot have acknowledged a packet of the new phase: the update is still pending."""
    server = EchoServer(topo, "0.0.0.0")
    try:
        conn = _client(topo, topo.server_v4, server.port, CIPHERS["aes128gcm"])
        with conn:
            sid = conn.open_stream()
            conn.sendall(b"ping", sid, fin=True)
            assert _read_streams(conn, {sid})[sid] == b"ping"
            srv = server.conns[0]
            _set(srv.sock, "KEY_UPDATE")
            _refused(srv.sock, errno.EINVAL, _set, "KEY_UPDATE")
    finally:
        server.close()


# -- TRANSPORT_PARAM and CONFIG --------------------------------------------------------------

TP_BAD = [
    ("max_udp_payload_size", 1199),
    ("max_udp_payload_size", 65528),
    ("ack_delay_exponent", 21),
    ("max_ack_delay", 16384000),
    ("active_connection_id_limit", 1),
    ("active_connection_id_limit", 9),
    ("max_idle_timeout", 999999),
    ("max_datagram_frame_size", 1199),
    ("max_data", 1199),
    ("max_data", 536870912),
    ("max_stream_data_bidi_local", 1199),
    ("max_stream_data_bidi_local", 268435456),
    ("max_stream_data_bidi_remote", 268435456),
    ("max_stream_data_uni", 1199),
    ("max_streams_bidi", 4097),
    ("max_streams_uni", 4097),
]


@pytest.mark.parametrize("field,value", TP_BAD, ids=[f"{f}={v}" for f, v in TP_BAD])
def test_transport_param_range(fresh, field, value):
    # A valid field beside the bad one must not be applied either (the snapshot shows it).
    valid = {"max_ack_delay": 30000} if field != "max_ack_delay" else {"ack_delay_exponent": 5}
    _refused(fresh, errno.EINVAL, _set, "TRANSPORT_PARAM", **valid, **{field: value})


def test_transport_param_state_rows(fresh, live):
    # remote != 0 outside ESTABLISHING; any set once ESTABLISHED.
    _refused(fresh, errno.EINVAL, _set, "TRANSPORT_PARAM", remote=1, max_idle_timeout=2000000)
    conn, _ = live
    _refused(conn.sock, errno.EINVAL, _set, "TRANSPORT_PARAM", max_idle_timeout=2000000)


CONFIG_BAD = [
    ("payload_cipher_type", 50),
    ("payload_cipher_type", 55),
    ("initial_smoothed_rtt", 999),
    ("initial_smoothed_rtt", 6000001),
    ("congestion_control_algo", 2),
    ("plpmtud_probe_interval", 4999999),
    ("plpmtud_probe_interval", 143165577),
    ("keepalive_probe_interval", 1499999),
]


@pytest.mark.parametrize("field,value", CONFIG_BAD, ids=[f"{f}={v}" for f, v in CONFIG_BAD])
def test_config_range(fresh, field, value):
    _refused(fresh, errno.EINVAL, _set, "CONFIG", stream_data_nodelay=1, **{field: value})


def test_config_established(live):
    conn, _ = live
    _refused(conn.sock, errno.EINVAL, _set, "CONFIG", initial_smoothed_rtt=100000)


# -- TOKEN, ALPN, SESSION_TICKET -------------------------------------------------------------


def test_token_rows(fresh, establishing, live):
    _set(fresh, "TOKEN", b"t" * 40)
    _refused(fresh, errno.EINVAL, _set, "TOKEN", b"")
    _refused(fresh, errno.EINVAL, _set, "TOKEN", b"u" * 121)
    _refused(fresh, errno.EINVAL, _get, "TOKEN", 39)  # shorter than the stored token
    _, server = live
    _refused(server.sock, errno.EINVAL, _get, "TOKEN")  # any server socket


def test_token_server_not_established(listener):
    _refused(listener, errno.EINVAL, _set, "TOKEN")


def test_alpn_rows(fresh, listener):
    _set(fresh, "ALPN", "h3,hq-interop")
    _refused(fresh, errno.EINVAL, _set, "ALPN", b"")
    _refused(fresh, errno.EINVAL, _set, "ALPN", b"a" * 129)
    _refused(fresh, errno.EINVAL, _get, "ALPN", len("h3,hq-interop"))  # encoded: one more
    _refused(listener, errno.EINVAL, _set, "ALPN", "h3")


def test_session_ticket_rows(fresh, establishing, listener):
    _refused(fresh, errno.EINVAL, _set, "SESSION_TICKET", b"k" * 63)
    _refused(fresh, errno.EINVAL, _set, "SESSION_TICKET", b"k" * 4097)
    _refused(listener, errno.EPIPE, _get, "SESSION_TICKET")
    _set(establishing, "SESSION_TICKET", b"s" * 100)
    _refused(establishing, errno.EINVAL, _get, "SESSION_TICKET", 99)


# -- CRYPTO_SECRET, TRANSPORT_PARAM_EXT ------------------------------------------------------


def test_crypto_secret_rows(fresh, establishing):
    aes = 51  # TLS_CIPHER_AES_GCM_128
    _refused(fresh, errno.EINVAL, _set, "CRYPTO_SECRET", send=1, level=3, type=aes)
    _refused(establishing, errno.EINVAL, _set, "CRYPTO_SECRET", send=1, level=1, type=aes)
    _refused(establishing, errno.EINVAL, _set, "CRYPTO_SECRET", send=1, level=2, type=50)


def test_transport_param_ext_rows(fresh, establishing, live):
    _refused(fresh, errno.EINVAL, _set, "TRANSPORT_PARAM_EXT", b"\x01\x01\x00")
    _refused(fresh, errno.EINVAL, _get, "TRANSPORT_PARAM_EXT")
    conn, _ = live
    _refused(conn.sock, errno.EINVAL, _get, "TRANSPORT_PARAM_EXT")
    _refused(establishing, errno.EINVAL, _set, "TRANSPORT_PARAM_EXT", b"\0" * 513)
    _refused(establishing, errno.EINVAL, _get, "TRANSPORT_PARAM_EXT", 8)  # too short
    # A parameter whose length runs past the end.  The reference has the kernel queue the
    # CONNECTION_CLOSE (TRANSPORT_PARAMETER_ERROR) it will send: the one change allowed.
    _refused(establishing, errno.EINVAL, _set, "TRANSPORT_PARAM_EXT", b"\x04\x08\x01",
             allow=("CONNECTION_CLOSE",))  # fmt: skip
