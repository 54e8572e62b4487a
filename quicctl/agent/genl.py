"""Generic netlink over a plain AF_NETLINK socket: just what the handshake agent needs (resolve a
family and its multicast groups, join one, send a request, read replies and notifications).

No pyroute2 here: its import costs seconds in the VM, and an agent parses what the kernel sends
with its own bounds checks.  Every parser raises :class:`NetlinkError` on malformed input (a
length past the buffer, a truncated header, an attribute of the wrong size); callers log it and
go on.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_MCAST_GROUPS = 7
CTRL_ATTR_MCAST_GRP_NAME = 1
CTRL_ATTR_MCAST_GRP_ID = 2

NLM_F_REQUEST = 0x01
NLM_F_ACK = 0x04
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_EXT_ACK = 11
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_GENLHDR = struct.Struct("=BBH")  # cmd, version, reserved
_NLA = struct.Struct("=HH")  # len, type


class NetlinkError(Exception):
    """A malformed netlink message or attribute (the text says what and where)."""


class ErrorReply(OSError):
    """The kernel answered a request with an error (its errno, and its extack message if any).

    A subclass, so that an ETIMEDOUT from the kernel stays an error reply: a plain
    ``OSError(ETIMEDOUT)`` becomes a TimeoutError, indistinguishable from no answer at all."""


def _align(n: int) -> int:
    return (n + 3) & ~3


@dataclass
class Attrs:
    """The attributes of one message or nest, in order; types may repeat (multi-attr)."""

    items: list[tuple[int, bytes]] = field(default_factory=list)

    def all(self, atype: int) -> list[bytes]:
        return [v for t, v in self.items if t == atype]

    def get(self, atype: int) -> bytes | None:
        vals = self.all(atype)
        return vals[0] if vals else None

    def u32(self, atype: int, default: int | None = None) -> int | None:
        v = self.get(atype)
        return default if v is None else as_u32(v, atype)

    def s32(self, atype: int, default: int | None = None) -> int | None:
        v = self.get(atype)
        return default if v is None else as_s32(v, atype)

    def string(self, atype: int) -> str | None:
        v = self.get(atype)
        return None if v is None else as_str(v, atype)

    def nested(self, atype: int) -> list[Attrs]:
        return [parse_attrs(v, f"nest {atype}") for v in self.all(atype)]


def as_u32(v: bytes, atype: int = 0) -> int:
    if len(v) != 4:
        raise NetlinkError(f"attribute {atype}: {len(v)} bytes, a u32 has 4")
    return struct.unpack("=I", v)[0]


def as_s32(v: bytes, atype: int = 0) -> int:
    if len(v) != 4:
        raise NetlinkError(f"attribute {atype}: {len(v)} bytes, an s32 has 4")
    return struct.unpack("=i", v)[0]


def as_str(v: bytes, atype: int = 0) -> str:
    """A NUL-terminated (or unterminated) string attribute, UTF-8."""
    v = v.split(b"\0", 1)[0]
    try:
        return v.decode()
    except UnicodeDecodeError as exc:
        raise NetlinkError(f"attribute {atype}: not UTF-8 ({exc.reason})") from None


def parse_attrs(data: bytes, where: str = "message") -> Attrs:
    """Attributes packed in ``data`` (RFC 3549 / linux/netlink.h alignment)."""
    out = Attrs()
    i = 0
    while i < len(data):
        if len(data) - i < _NLA.size:
            raise NetlinkError(f"{where}: {len(data) - i} trailing bytes, not an attribute")
        alen, atype = _NLA.unpack_from(data, i)
        if alen < _NLA.size or i + alen > len(data):
            raise NetlinkError(f"{where}: attribute {atype & NLA_TYPE_MASK} of length {alen} "
                               f"at offset {i} runs past {len(data)} bytes")  # fmt: skip
        out.items.append((atype & NLA_TYPE_MASK, bytes(data[i + _NLA.size : i + alen])))
        i += _align(alen)
    return out


def attr(atype: int, value: bytes | int | str, fmt: str = "=I") -> bytes:
    """One attribute: bytes as they are, str NUL-terminated, int packed with ``fmt``."""
    if isinstance(value, str):
        value = value.encode() + b"\0"
    elif isinstance(value, int):
        value = struct.pack(fmt, value)
    head = _NLA.pack(_NLA.size + len(value), atype)
    return head + value + bytes(_align(len(value)) - len(value))


@dataclass
class Message:
    """One netlink message: its type, flags, sequence number, and for generic netlink the
    command and attributes; ``error`` for NLMSG_ERROR (0 is an ACK)."""

    mtype: int
    flags: int
    seq: int
    cmd: int = 0
    attrs: Attrs = field(default_factory=Attrs)
    error: int | None = None
    extack: str | None = None  # the kernel's explanation of an error (NLMSGERR_ATTR_MSG)


def parse_messages(data: bytes) -> Iterator[Message]:
    """The messages of one datagram; raises NetlinkError at the first malformed one."""
    i = 0
    while i < len(data):
        if len(data) - i < _NLMSGHDR.size:
            raise NetlinkError(f"{len(data) - i} trailing bytes, not a netlink header")
        mlen, mtype, flags, seq, _ = _NLMSGHDR.unpack_from(data, i)
        if mlen < _NLMSGHDR.size or i + mlen > len(data):
            raise NetlinkError(f"message of length {mlen} at offset {i} runs past "
                               f"{len(data)} bytes")  # fmt: skip
        body = data[i + _NLMSGHDR.size : i + mlen]
        i += _align(mlen)
        if mtype == NLMSG_DONE:
            continue
        if mtype == NLMSG_ERROR:
            if len(body) < 4:
                raise NetlinkError("NLMSG_ERROR without its error code")
            msg = Message(mtype, flags, seq, error=-struct.unpack_from("=i", body)[0])
            if flags & NLM_F_ACK_TLVS and len(body) >= 4 + _NLMSGHDR.size:
                # after the request echoed back (only its header when capped)
                olen = _NLMSGHDR.size if flags & NLM_F_CAPPED else _align(
                    _NLMSGHDR.unpack_from(body, 4)[0])  # fmt: skip
                tlvs = parse_attrs(body[4 + olen :], "extended ACK")
                msg.extack = tlvs.string(NLMSGERR_ATTR_MSG)
            yield msg
            continue
        if len(body) < _GENLHDR.size:
            raise NetlinkError(f"generic netlink message of {len(body)} bytes, no header")
        cmd, _, _ = _GENLHDR.unpack_from(body)
        yield Message(mtype, flags, seq, cmd, parse_attrs(body[_GENLHDR.size :], f"cmd {cmd}"))


@dataclass
class Family:
    name: str
    id: int
    groups: dict[str, int]


class GenlSocket:
    """A NETLINK_GENERIC socket: requests with sequence numbers, their replies, and the
    notifications of the multicast groups joined."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.bind((0, 0))
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # errors with their reason
        except OSError:
            pass
        self.seq = 0
        self.pending: list[Message] = []  # notifications read while waiting for a reply

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, family: int, cmd: int, attrs: bytes = b"", version: int = 1,
             flags: int = NLM_F_REQUEST | NLM_F_ACK) -> int:  # fmt: skip
        self.seq += 1
        body = _GENLHDR.pack(cmd, version, 0) + attrs
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), family, flags, self.seq, 0)
                       + body)  # fmt: skip
        return self.seq

    def recv(self, timeout: float | None = None) -> list[Message]:
        """One datagram's messages (NetlinkError if malformed, TimeoutError)."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 16)
        return list(parse_messages(data))

    def request(self, family: int, cmd: int, attrs: bytes = b"", version: int = 1,
                timeout: float = 10.0) -> list[Message]:  # fmt: skip
        """Send and collect the replies up to the ACK; an error reply raises OSError."""
        seq = self.send(family, cmd, attrs, version)
        replies: list[Message] = []
        while True:
            for msg in self.recv(timeout):
                if msg.seq != seq:
                    self.pending.append(msg)
                elif msg.error is not None:
                    if msg.error:
                        why = os.strerror(msg.error)
                        raise ErrorReply(msg.error, f"{msg.extack} ({why})" if msg.extack else why)
                    return replies
                else:
                    replies.append(msg)

    def resolve(self, name: str) -> Family:
        """The id and multicast groups of a family (ENOENT: not registered)."""
        replies = self.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                               attr(CTRL_ATTR_FAMILY_NAME, name))  # fmt: skip
        if not replies:
            raise OSError(errno.ENOENT, f"no generic netlink family {name}")
        a = replies[0].attrs
        fid = a.get(CTRL_ATTR_FAMILY_ID)
        if fid is None or len(fid) != 2:
            raise NetlinkError(f"family {name}: no 16-bit id in the controller's reply")
        groups = {}
        for nest in a.nested(CTRL_ATTR_MCAST_GROUPS):
            for _, grp in nest.items:
                g = parse_attrs(grp, "mcast group")
                gname, gid = g.string(CTRL_ATTR_MCAST_GRP_NAME), g.u32(CTRL_ATTR_MCAST_GRP_ID)
                if gname is not None and gid is not None:
                    groups[gname] = gid
        return Family(name, struct.unpack("=H", fid)[0], groups)

    def join(self, group: int) -> None:
        self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
