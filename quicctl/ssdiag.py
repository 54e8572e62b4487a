"""QUIC sockets through sock_diag (quic_diag.ko): what `quicctl ss` lists.

One inet_diag dump per address family over a NETLINK_SOCK_DIAG socket, for protocol
IPPROTO_QUIC (261) given in the INET_DIAG_REQ_PROTOCOL attribute, as iproute2 does for MPTCP.
Each reply is an ``inet_diag_msg`` plus INET_DIAG_SKMEMINFO and INET_DIAG_INFO, which holds the
QUIC_DIAG_* attributes of ``kernel/net/quic/diag.h`` (mirrored in :data:`ATTRS`; a host test
checks the two agree).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from quicctl.agent.genl import Attrs, NetlinkError, parse_attrs
from quicctl.errors import QuicctlError

IPPROTO_QUIC = 261
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x01
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_INFO = 2
INET_DIAG_SKMEMINFO = 7
INET_DIAG_REQ_PROTOCOL = 3

DIAG_HEADER = Path(__file__).resolve().parent.parent / "kernel" / "net" / "quic" / "diag.h"

# kernel/net/quic/diag.h, QUIC_DIAG_*: number -> (key, type).  Append only, as there.
ATTRS: dict[int, tuple[str, str]] = {
    1: ("server", "u8"),
    2: ("alpn", "binary"),
    3: ("version", "u32"),
    4: ("cipher", "u32"),
    5: ("scid", "binary"),
    6: ("dcid", "binary"),
    7: ("streams_bidi_local", "u64"),
    8: ("streams_uni_local", "u64"),
    9: ("streams_bidi_peer", "u64"),
    10: ("streams_uni_peer", "u64"),
    11: ("cong_algo", "string"),
    12: ("srtt", "u32"),
    13: ("rttvar", "u32"),
    14: ("min_rtt", "u32"),
    15: ("latest_rtt", "u32"),
    16: ("cwnd", "u32"),
    17: ("ssthresh", "u32"),
    18: ("in_flight", "u32"),
    19: ("mss", "u32"),
    20: ("lost", "u64"),
    21: ("pto_count", "u32"),
    22: ("pacing_rate", "u64"),
    23: ("bytes_sent", "u64"),
    24: ("bytes_acked", "u64"),
    25: ("bytes_received", "u64"),
    26: ("idle_timeout", "u64"),
}

# TCP's numbers (include/net/tcp_states.h), which QUIC sockets use (ABI reference 7.18).
STATES = {1: "ESTAB", 3: "SYN-RECV", 7: "UNCONN", 10: "LISTEN"}
STATE_NUMBERS = {"established": 1, "syn-recv": 3, "closed": 7, "listening": 10}
ALL_STATES = 0xFFFFFFFF
SKMEM_FIELDS = ("rmem_alloc", "rcvbuf", "wmem_alloc", "sndbuf", "fwd_alloc", "wmem_queued",
                "optmem", "backlog", "drops")  # fmt: skip
_SIZES = {"u8": 1, "u32": 4, "u64": 8}
_FMT = {"u8": "=B", "u32": "=I", "u64": "=Q"}
_NLMSGHDR = struct.Struct("=IHHII")
_REQ = struct.Struct("=BBBBI48s")  # inet_diag_req_v2: family, protocol, ext, pad, states, id
_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")  # inet_diag_msg
_QUIC_VERSIONS = {1: "v1", 0x6B3343CF: "v2"}


def _cipher_names() -> dict[int, str]:
    from quicctl import abi

    try:
        consts = abi.constants()
    except abi.AbiError:  # no C preprocessor here: numbers only
        return {}
    return {v: k.removeprefix("TLS_CIPHER_").lower() for k, v in consts.items()
            if k.startswith("TLS_CIPHER_") and not k.endswith("_SIZE")}  # fmt: skip


def request(family: int, states: int = ALL_STATES, sport: int = 0, dport: int = 0,
            seq: int = 1) -> bytes:  # fmt: skip
    """The dump request for one address family (AF_INET or AF_INET6)."""
    sockid = struct.pack("!HH", sport, dport) + bytes(44)
    ext = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_SKMEMINFO - 1))
    body = _REQ.pack(family, 0, ext, 0, states, sockid)
    body += struct.pack("=HHI", 8, INET_DIAG_REQ_PROTOCOL, IPPROTO_QUIC)
    hdr = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                         NLM_F_REQUEST | NLM_F_DUMP, seq, 0)  # fmt: skip
    return hdr + body


def _addr(family: int, raw: bytes, port: int) -> str:
    ip = ipaddress.ip_address(raw[:4] if family == socket.AF_INET else raw)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{host}:{port}" if port or not ip.is_unspecified else f"{host}:*"


def _quic_info(attrs: Attrs, ciphers: dict[int, str]) -> dict:
    out: dict = {}
    for atype, value in attrs.items:
        if atype not in ATTRS:
            continue  # QUIC_DIAG_UNSPEC (alignment) or newer than this table
        key, kind = ATTRS[atype]
        if kind in _SIZES:
            if len(value) != _SIZES[kind]:
                raise NetlinkError(f"QUIC_DIAG {key}: {len(value)} bytes, a {kind} has "
                                   f"{_SIZES[kind]}")  # fmt: skip
            out[key] = struct.unpack(_FMT[kind], value)[0]
        elif kind == "string":
            out[key] = value.split(b"\0", 1)[0].decode(errors="replace")
        else:
            out[key] = value
    if "alpn" in out:
        out["alpn"] = _alpn_list(out["alpn"])
    for key in ("scid", "dcid"):
        if key in out:
            out[key] = out[key].hex()
    if "server" in out:
        out["server"] = bool(out["server"])
    if "version" in out:
        out["version_name"] = _QUIC_VERSIONS.get(out["version"], f"{out['version']:#x}")
    if "cipher" in out:
        out["cipher_name"] = ciphers.get(out["cipher"], str(out["cipher"]))
    if out.get("ssthresh") == 0xFFFFFFFF:
        out["ssthresh"] = None
    return out


def _alpn_list(wire: bytes) -> list[str]:
    """RFC 7301 encoding (length-prefixed names) to a list of names."""
    names, i = [], 0
    while i < len(wire):
        n = wire[i]
        if i + 1 + n > len(wire):
            raise NetlinkError(f"QUIC_DIAG alpn: name of {n} bytes at {i} runs past {len(wire)}")
        names.append(wire[i + 1 : i + 1 + n].decode(errors="replace"))
        i += 1 + n
    return names


def parse_socket(body: bytes, ciphers: dict[int, str] | None = None) -> dict:
    """One SOCK_DIAG_BY_FAMILY reply (after its netlink header) as a dict."""
    if len(body) < _MSG.size:
        raise NetlinkError(f"inet_diag_msg of {len(body)} bytes, it has {_MSG.size}")
    (family, state, _timer, _retrans, sport, dport, src, dst, ifindex, cookie, _expires,
     rqueue, wqueue, uid, inode) = _MSG.unpack_from(body)  # fmt: skip
    attrs = parse_attrs(body[_MSG.size :], "inet_diag_msg")
    sock = {
        "family": {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}.get(family, str(family)),
        "state": STATES.get(state, str(state)),
        "local": _addr(family, src, struct.unpack("!H", sport)[0]),
        "peer": _addr(family, dst, struct.unpack("!H", dport)[0]),
        "local_port": struct.unpack("!H", sport)[0],
        "peer_port": struct.unpack("!H", dport)[0],
        "recv_q": rqueue,
        "send_q": wqueue,
        "uid": uid,
        "inode": inode,
        "ifindex": ifindex,
        "cookie": struct.unpack("=Q", cookie)[0],
    }
    mem = attrs.get(INET_DIAG_SKMEMINFO)
    if mem is not None:
        vals = struct.unpack(f"={len(mem) // 4}I", mem[: len(mem) // 4 * 4])
        sock["skmem"] = dict(zip(SKMEM_FIELDS, vals, strict=False))
    info = attrs.get(INET_DIAG_INFO)
    if info is not None:
        quic = _quic_info(parse_attrs(info, "INET_DIAG_INFO"), ciphers or {})
        sock.update(quic)
    return sock


def parse_replies(data: bytes, ciphers: dict[int, str] | None = None) -> tuple[list[dict], bool]:
    """The sockets in one datagram of the dump, and whether it ended (NLMSG_DONE).  An error
    reply (or a DONE carrying one) raises OSError with its errno."""
    out, i, done = [], 0, False
    while i + _NLMSGHDR.size <= len(data):
        mlen, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, i)
        if mlen < _NLMSGHDR.size or i + mlen > len(data):
            raise NetlinkError(f"message of length {mlen} at offset {i} runs past {len(data)}")
        body = data[i + _NLMSGHDR.size : i + mlen]
        i += (mlen + 3) & ~3
        if mtype in (NLMSG_DONE, NLMSG_ERROR):
            err = -struct.unpack_from("=i", body)[0] if len(body) >= 4 else 0
            if err:
                raise OSError(err, os.strerror(err))
            done = done or mtype == NLMSG_DONE
            continue
        if mtype == SOCK_DIAG_BY_FAMILY:
            out.append(parse_socket(body, ciphers))
    return out, done


def _not_available(err: OSError) -> QuicctlError:
    quic = Path("/sys/module/quic").exists()
    why = "" if quic else " (quic.ko is not loaded either: `quicctl load` first)"
    return QuicctlError(
        f"cannot list QUIC sockets: quic_diag.ko is not loaded{why} (the kernel answered "
        f"{errno.errorcode.get(err.errno, err.errno)}): `modprobe quic_diag`, or "
        "`modprobe inet_diag; insmod build/<release>/net/quic/quic_diag.ko`"
    )


def _dump(sock: socket.socket, family: int, states: int, sport: int, dport: int,
          ciphers: dict[int, str]) -> Iterator[dict]:  # fmt: skip
    sock.send(request(family, states, sport, dport))
    done = False
    while not done:
        data = sock.recv(1 << 16)
        socks, done = parse_replies(data, ciphers)
        yield from socks


def sockets(states: Iterable[str] | None = None, sport: int = 0, dport: int = 0,
            families: Iterable[int] = (socket.AF_INET, socket.AF_INET6)) -> list[dict]:  # fmt: skip
    """Every QUIC socket of this network namespace that sock_diag lists (listeners and
    connections), optionally only those in ``states`` (keys of :data:`STATE_NUMBERS`) and on
    local port ``sport`` / peer port ``dport`` (the kernel filters)."""
    mask = ALL_STATES
    if states is not None:
        mask = 0
        for s in states:
            mask |= 1 << STATE_NUMBERS[s]
    ciphers = _cipher_names()
    out: list[dict] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(10)
        for family in families:
            try:
                out.extend(_dump(sock, family, mask, sport, dport, ciphers))
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL):
                    raise _not_available(exc) from None
                raise QuicctlError(f"sock_diag dump of QUIC sockets failed: {exc}") from None
            except NetlinkError as exc:
                raise QuicctlError(f"sock_diag reply from quic_diag malformed: {exc}") from None
    return out
