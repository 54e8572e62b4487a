"""The handshake agent's netlink parsing (issue 14): what it builds matches the kernel's layout,
and what it receives is parsed defensively: truncated and malformed messages and attributes
raise NetlinkError (which the agent logs before it goes on), never IndexError or struct.error,
and never a request with a made-up descriptor."""

from __future__ import annotations

import random
import struct

import pytest

from quicctl.agent import genl, handshake
from quicctl.agent.genl import NetlinkError, attr, parse_attrs, parse_messages

pytestmark = pytest.mark.host


def _msg(cmd: int, attrs: bytes, mtype: int = 0x20, seq: int = 7) -> bytes:
    body = struct.pack("=BBH", cmd, 1, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, seq, 0) + body


def _accept_reply(**over) -> bytes:
    a = over.get("fd", attr(handshake.A_ACCEPT_SOCKFD, 5, "=i"))
    a += over.get("mtype", attr(handshake.A_ACCEPT_MESSAGE_TYPE, handshake.MSG_TYPE_CLIENTHELLO))
    a += attr(handshake.A_ACCEPT_TIMEOUT, 15000)
    a += attr(handshake.A_ACCEPT_AUTH_MODE, handshake.AUTH_X509)
    a += attr(handshake.A_ACCEPT_PEER_IDENTITY, 0x1234) + attr(handshake.A_ACCEPT_PEER_IDENTITY, 9)
    nest = attr(handshake.A_X509_CERT, 77, "=i") + attr(handshake.A_X509_PRIVKEY, 78, "=i")
    a += attr(handshake.A_ACCEPT_CERTIFICATE | genl.NLA_F_NESTED, nest)
    a += attr(handshake.A_ACCEPT_PEERNAME, "server.quic.test")
    a += over.get("extra", b"")
    return _msg(handshake.CMD_ACCEPT, a)


def test_accept_reply_parsed():
    (msg,) = parse_messages(_accept_reply())
    req = handshake.parse_accept(msg.attrs)
    assert (req.sockfd, req.message_type, req.timeout_ms) == (5, 1, 15000)
    assert req.is_client and req.auth_mode == handshake.AUTH_X509
    assert req.peer_identities == [0x1234, 9]
    assert req.certificates == [(77, 78)]
    assert req.peername == "server.quic.test"
    assert req.describe() == "clienthello auth x509 peer server.quic.test"


def test_done_request_layout():
    """Status, descriptor and remote identities, each a 4-byte attribute with its header."""
    data = handshake.done_request(13, 5, [42])
    a = parse_attrs(data)
    assert a.items == [(1, struct.pack("=I", 13)), (2, struct.pack("=i", 5)),
                       (3, struct.pack("=I", 42))]  # fmt: skip
    assert len(data) == 3 * 8


def test_unknown_attributes_are_ignored():
    (msg,) = parse_messages(_accept_reply(extra=attr(200, b"\x01\x02\x03")))
    assert handshake.parse_accept(msg.attrs).sockfd == 5


@pytest.mark.parametrize(
    "over, what",
    [
        ({"fd": b""}, "without a socket descriptor"),
        ({"fd": attr(handshake.A_ACCEPT_SOCKFD, -1, "=i")}, "without a socket descriptor"),
        ({"fd": attr(handshake.A_ACCEPT_SOCKFD, b"\x05\x00")}, "a s32 has 4|an s32 has 4"),
        ({"mtype": attr(handshake.A_ACCEPT_MESSAGE_TYPE, 9)}, "message type 9"),
        ({"mtype": b""}, "message type None"),
    ],
)
def test_bad_accept_reply_is_refused(over, what):
    (msg,) = parse_messages(_accept_reply(**over))
    with pytest.raises(NetlinkError, match=what):
        handshake.parse_accept(msg.attrs)


def test_truncated_messages_raise_netlink_error():
    """Every prefix of a valid reply, and every length field pointing past the end."""
    data = _accept_reply()
    for n in range(len(data)):
        try:
            for msg in parse_messages(data[:n]):
                handshake.parse_accept(msg.attrs)
        except NetlinkError:
            pass
    bad = bytearray(data)
    struct.pack_into("=I", bad, 0, len(data) + 4)
    with pytest.raises(NetlinkError, match="runs past"):
        list(parse_messages(bytes(bad)))
    bad = bytearray(data)
    struct.pack_into("=H", bad, 20, 0xFFF0)  # the first attribute's length
    with pytest.raises(NetlinkError, match="runs past"):
        list(parse_messages(bytes(bad)))
    with pytest.raises(NetlinkError, match="no header"):
        list(parse_messages(struct.pack("=IHHII", 18, 0x20, 0, 1, 0) + b"\x02\x01"))
    with pytest.raises(NetlinkError, match="not UTF-8"):
        parse_attrs(attr(8, b"\xff\xfe")).string(8)


def test_random_damage_only_ever_raises_netlink_error():
    """10,000 random bit flips, truncations and splices of a valid reply: the parser either
    returns a request whose every field came from the bytes, or raises NetlinkError."""
    rng = random.Random(14)
    base = _accept_reply()
    for _ in range(10_000):
        b = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            if op < 0.6:
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            elif op < 0.8:
                del b[rng.randrange(len(b)) :]
            else:
                b[rng.randrange(len(b) + 1) : 0] = rng.randbytes(rng.randint(1, 12))
            if not b:
                break
        try:
            for msg in parse_messages(bytes(b)):
                if msg.error is None:
                    req = handshake.parse_accept(msg.attrs)
                    assert req.sockfd >= 0 and req.message_type in handshake.MSG_TYPES
        except NetlinkError:
            pass


def test_error_and_ack_messages():
    ack = struct.pack("=IHHII", 36, genl.NLMSG_ERROR, 0, 3, 0) + struct.pack("=i", 0) + bytes(16)
    err = struct.pack("=IHHII", 36, genl.NLMSG_ERROR, 0, 4, 0) + struct.pack("=i", -2) + bytes(16)
    msgs = list(parse_messages(ack + err))
    assert [(m.seq, m.error) for m in msgs] == [(3, 0), (4, 2)]
    with pytest.raises(NetlinkError, match="without its error code"):
        list(parse_messages(struct.pack("=IHHII", 18, genl.NLMSG_ERROR, 0, 1, 0) + b"\0\0"))


def test_extended_ack_message_is_read():
    """An error with NLM_F_ACK_TLVS carries the kernel's reason (NLMSGERR_ATTR_MSG) after the
    echoed request header (capped)."""
    body = struct.pack("=i", -3) + struct.pack("=IHHII", 20, 0x20, 5, 9, 0)
    body += attr(genl.NLMSGERR_ATTR_MSG, "no handshake agent listens")
    flags = genl.NLM_F_CAPPED | genl.NLM_F_ACK_TLVS
    (msg,) = parse_messages(struct.pack("=IHHII", 16 + len(body), genl.NLMSG_ERROR, flags, 9, 0)
                            + body)  # fmt: skip
    assert (msg.error, msg.extack) == (3, "no handshake agent listens")


def test_psk_key_by_serial_and_psk_files(tmp_path):
    """A PSK in the kernel keyring reads back by serial as (description, payload), as the
    agent reads what a service names; PSK files are checked and their errors name the file."""
    from quicctl import keyring
    from quicctl.errors import QuicctlError
    from quicctl.kservice import read_psk_file

    serial = keyring.add_psk("nvme:host:id", bytes(range(48)))
    try:
        assert keyring.read_psk(serial) == ("nvme:host:id", bytes(range(48)))
        assert keyring.describe(serial)[0] == "user"
    finally:
        keyring.remove(serial)
    with pytest.raises(OSError):
        keyring.read_psk(serial)
    keyring.remove(0)  # no key: nothing to do
    good = tmp_path / "good"
    good.write_text("nvme:host:id:" + "ab" * 32 + "\n")
    assert read_psk_file(str(good)) == ("nvme:host:id", bytes([0xAB]) * 32)
    for text in ("", "nokey", "id:zz", "id:abab", ":" + "ab" * 32, "a\nb:" + "ab" * 32):
        bad = tmp_path / "bad"
        bad.write_text(text)
        with pytest.raises(QuicctlError, match=f"PSK file {bad}: expected one line"):
            read_psk_file(str(bad))
    with pytest.raises(QuicctlError, match="PSK file /nonexistent"):
        read_psk_file("/nonexistent")


def test_kernel_etimedout_is_an_error_reply_not_a_timeout():
    """The sample answers ETIMEDOUT when the agent is late; that must not read as 'no answer'
    (OSError(ETIMEDOUT) would be a TimeoutError)."""
    import errno

    exc = genl.ErrorReply(errno.ETIMEDOUT, "the handshake agent did not finish in time")
    assert isinstance(exc, OSError) and not isinstance(exc, TimeoutError)
    assert exc.errno == errno.ETIMEDOUT


def test_der_certificate_payload_becomes_pem():
    """Keys named by serial may hold DER (as the kernel's asymmetric keys do) or PEM."""
    import base64

    from quicctl.agent import _pem
    from quicctl.paths import KEYS

    pem = (KEYS / "cert.crt").read_bytes()
    body = b"".join(ln for ln in pem.splitlines() if ln and not ln.startswith(b"-----"))
    der = base64.b64decode(body)
    assert _pem(pem, "CERTIFICATE") == pem
    out = _pem(der, "CERTIFICATE")
    assert out.startswith(b"-----BEGIN CERTIFICATE-----\n")
    assert out.endswith(b"-----END CERTIFICATE-----\n")
    assert all(len(ln) <= 64 for ln in out.splitlines())
    back = b"".join(ln for ln in out.splitlines() if not ln.startswith(b"-----"))
    assert base64.b64decode(back) == der
