"""A second decoder for our captures, beside tshark: it opens the QUIC packets of a tcpdump
capture with the secrets of an SSLKEYLOGFILE and lists their frames.

tshark is an independent check of what quic.ko puts on the wire, but it is a program of its
own that can crash: 4.0.17 (Debian 12) died with SIGSEGV decoding our captures on a busy CI
machine and decoded the same capture fine on a rerun.  A crash is not a verdict on quic.ko, so
the tests decode with both: when tshark crashes, this decoder's result decides, the crash is
reported and its capture and key log are kept under build/ (run_tshark()).

Only aioquic's public primitives are used (packet headers, Initial keys, packet protection,
ACK frames); the pcap reader, the TLS fields it needs (ClientHello random, ServerHello cipher
suite) and the frame parser (RFC 9000 Section 19) are here.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from aioquic.buffer import Buffer, BufferReadError
from aioquic.quic.crypto import CryptoContext, CryptoError, CryptoPair, next_key_phase
from aioquic.quic.packet import (
    QuicPacketType,
    is_long_header,
    pull_ack_frame,
    pull_quic_header,
)
from aioquic.tls import CipherSuite

from quicctl.paths import BUILD_DIR

ARTIFACTS = BUILD_DIR / "artifacts"

# --------------------------------------------------------------------------------------------
# pcap


@dataclass
class Datagram:
    number: int  # 1-based, as tshark counts frames
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def _ip(raw: bytes) -> str:
    import ipaddress

    return str(ipaddress.ip_address(raw))


def read_pcap(path: Path) -> list[Datagram]:
    """The UDP datagrams of a pcap file (tcpdump -w: Ethernet or Linux cooked captures)."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise ValueError(f"{path}: not a pcap file ({len(data)} bytes)")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError(f"{path}: not a pcap file (magic {magic.hex()}; pcapng is not read)")
    (linktype,) = struct.unpack_from(end + "I", data, 20)
    out: list[Datagram] = []
    off, number = 24, 0
    while off + 16 <= len(data):
        _, _, caplen, _ = struct.unpack_from(end + "IIII", data, off)
        frame = data[off + 16 : off + 16 + caplen]
        off += 16 + caplen
        number += 1
        dgram = _udp(frame, linktype)
        if dgram is not None:
            out.append(Datagram(number, *dgram))
    return out


def _udp(frame: bytes, linktype: int):
    if linktype == 1:  # Ethernet
        proto, off = struct.unpack_from("!H", frame, 12)[0], 14
        while proto in (0x8100, 0x88A8):
            proto, off = struct.unpack_from("!H", frame, off + 2)[0], off + 4
    elif linktype == 113:  # Linux cooked (SLL)
        proto, off = struct.unpack_from("!H", frame, 14)[0], 16
    elif linktype == 276:  # SLL2
        proto, off = struct.unpack_from("!H", frame, 0)[0], 20
    else:
        raise ValueError(f"pcap link type {linktype} is not read")
    if proto == 0x0800:
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 17 or struct.unpack_from("!H", frame, off + 6)[0] & 0x1FFF:
            return None
        src, dst = _ip(frame[off + 12 : off + 16]), _ip(frame[off + 16 : off + 20])
        off += ihl
    elif proto == 0x86DD:
        nxt, src, dst = (
            frame[off + 6],
            _ip(frame[off + 8 : off + 24]),
            _ip(frame[off + 24 : off + 40]),
        )
        off += 40
        while nxt in (0, 43, 60):  # hop-by-hop, routing, destination options
            nxt, off = frame[off], off + (frame[off + 1] + 1) * 8
        if nxt != 17:
            return None
    else:
        return None
    sport, dport, length = struct.unpack_from("!HHH", frame, off)
    return (src, sport), (dst, dport), frame[off + 8 : off + length]


# --------------------------------------------------------------------------------------------
# Frames (RFC 9000 Section 19; DATAGRAM, RFC 9221)


def _skip(buf: Buffer, n: int) -> None:
    buf.pull_bytes(n)


def parse_frames(payload: bytes) -> list[tuple[int, dict]]:
    """The frames of a decrypted payload as (type, fields); ValueError when malformed."""
    buf = Buffer(data=payload)
    frames: list[tuple[int, dict]] = []
    try:
        while not buf.eof():
            ftype = buf.pull_uint_var()
            info: dict = {}
            if ftype == 0x00:
                while not buf.eof() and payload[buf.tell()] == 0:
                    buf.pull_uint8()
            elif ftype in (0x01, 0x1E):
                pass
            elif ftype in (0x02, 0x03):
                info["ranges"], _ = pull_ack_frame(buf)
                if ftype == 0x03:
                    for _ in range(3):
                        buf.pull_uint_var()
            elif ftype == 0x04:
                info["stream"] = buf.pull_uint_var()
                buf.pull_uint_var()
                buf.pull_uint_var()
            elif ftype == 0x05:
                info["stream"] = buf.pull_uint_var()
                buf.pull_uint_var()
            elif ftype == 0x06:
                info["offset"] = buf.pull_uint_var()
                info["data"] = buf.pull_bytes(buf.pull_uint_var())
            elif ftype == 0x07:
                length = buf.pull_uint_var()
                if not length:
                    raise ValueError("NEW_TOKEN with an empty token")
                _skip(buf, length)
            elif 0x08 <= ftype <= 0x0F:
                info["stream"] = buf.pull_uint_var()
                info["offset"] = buf.pull_uint_var() if ftype & 0x04 else 0
                length = buf.pull_uint_var() if ftype & 0x02 else buf.capacity - buf.tell()
                info["data"] = buf.pull_bytes(length)
                info["fin"] = bool(ftype & 0x01)
            elif ftype in (0x10, 0x12, 0x13, 0x14, 0x16, 0x17, 0x19):
                buf.pull_uint_var()
            elif ftype in (0x11, 0x15):
                buf.pull_uint_var()
                buf.pull_uint_var()
            elif ftype == 0x18:
                seq, retire = buf.pull_uint_var(), buf.pull_uint_var()
                length = buf.pull_uint8()
                if not 1 <= length <= 20 or retire > seq:
                    raise ValueError(f"NEW_CONNECTION_ID: length {length}, retire {retire} > {seq}")
                info["cid"] = buf.pull_bytes(length)
                _skip(buf, 16)
            elif ftype in (0x1A, 0x1B):
                _skip(buf, 8)
            elif ftype in (0x1C, 0x1D):
                info["error"] = buf.pull_uint_var()
                if ftype == 0x1C:
                    buf.pull_uint_var()
                info["reason"] = buf.pull_bytes(buf.pull_uint_var())
            elif ftype in (0x30, 0x31):
                length = buf.pull_uint_var() if ftype == 0x31 else buf.capacity - buf.tell()
                _skip(buf, length)
            else:
                raise ValueError(f"unknown frame type {ftype:#x}")
            frames.append((ftype, info))
    except BufferReadError:
        done = ", ".join(f"{t:#x}" for t, _ in frames)
        raise ValueError(
            f"frame runs past the end of the packet (after {done or 'none'})"
        ) from None
    return frames


# Frames a packet type may carry (RFC 9000 Table 3): Initial and Handshake packets.
_LONG_FRAMES = {0x00, 0x01, 0x02, 0x03, 0x06, 0x1C}
# Frames a 0-RTT packet may not carry (RFC 9000 Section 12.4): ACK, CRYPTO, NEW_TOKEN,
# RETIRE_CONNECTION_ID, PATH_RESPONSE, HANDSHAKE_DONE.
_NOT_0RTT = {0x02, 0x03, 0x06, 0x07, 0x19, 0x1B, 0x1E}

# --------------------------------------------------------------------------------------------
# Connections


def read_keylog(path: Path) -> dict[str, dict[str, bytes]]:
    """NSS key log: client random (hex) -> label -> secret."""
    out: dict[str, dict[str, bytes]] = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            out.setdefault(parts[1].lower(), {})[parts[0]] = bytes.fromhex(parts[2])
    return out


_LABELS = {
    ("client", "handshake"): "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    ("server", "handshake"): "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    ("client", "0rtt"): "CLIENT_EARLY_TRAFFIC_SECRET",
    ("client", "1rtt"): "CLIENT_TRAFFIC_SECRET_0",
    ("server", "1rtt"): "SERVER_TRAFFIC_SECRET_0",
}


@dataclass
class Conn:
    client: tuple[str, int]
    odcid: bytes
    cids: dict[str, set[bytes]] = field(default_factory=lambda: {"client": set(), "server": set()})
    version: int = 0
    crypto: dict[str, dict[int, bytes]] = field(
        default_factory=lambda: {"client": {}, "server": {}}
    )  # Initial CRYPTO data by offset
    keys: dict = field(default_factory=dict)  # (sender, epoch, version) -> CryptoContext
    largest: Counter = field(default_factory=Counter)  # (sender, epoch) -> largest pn + 1

    def crypto_stream(self, sender: str) -> bytes:
        out = b""
        for off in sorted(self.crypto[sender]):
            if off <= len(out):
                out += self.crypto[sender][off][len(out) - off :]
        return out

    def client_random(self) -> str | None:
        ch = self.crypto_stream("client")
        return ch[6:38].hex() if len(ch) >= 38 and ch[0] == 1 else None

    def cipher_suite(self) -> CipherSuite | None:
        sh = self.crypto_stream("server")
        if len(sh) < 39 or sh[0] != 2:
            return None
        at = 39 + sh[38]
        return CipherSuite(struct.unpack_from("!H", sh, at)[0]) if len(sh) >= at + 2 else None


@dataclass
class Decoded:
    """What decode() saw: packets opened, frame types by count, and what was wrong."""

    packets: int = 0
    frames: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    connections: int = 0
    scids: dict[str, set[str]] = field(default_factory=lambda: {"client": set(), "server": set()})
    epochs: Counter = field(default_factory=Counter)  # (sender, epoch) -> packets opened
    # (sender, epochs of its packets in order) of each datagram, coalesced packets together
    datagrams: list[tuple[str, list[str]]] = field(default_factory=list)
    # (sender, epoch, stream, offset, data) of each STREAM frame opened
    stream_frames: list[tuple[str, str, int, int, bytes]] = field(default_factory=list)

    def summary(self) -> str:
        types = ", ".join(f"{t:#04x}x{n}" for t, n in sorted(self.frames.items()))
        return (
            f"{self.connections} connection(s), {self.packets} packets opened, frames {types}; "
            f"{len(self.errors)} error(s)"
        )


def _epoch(ptype: QuicPacketType | None) -> str:
    return {
        QuicPacketType.INITIAL: "initial",
        QuicPacketType.HANDSHAKE: "handshake",
        QuicPacketType.ZERO_RTT: "0rtt",
    }.get(ptype, "1rtt")


def _context(conn: Conn, sender: str, epoch: str, version: int, secrets) -> CryptoContext | None:
    key = (sender, epoch, version)
    if key in conn.keys:
        return conn.keys[key]
    if epoch == "initial":
        pair = CryptoPair()
        pair.setup_initial(conn.odcid, is_client=True, version=version)
        ctx = pair.send if sender == "client" else pair.recv
    else:
        suite = conn.cipher_suite()
        secret = (secrets or {}).get(_LABELS[(sender, epoch)])
        if epoch == "0rtt" and secret is not None:
            # 0-RTT packets come before the ServerHello names the suite: the ticket's, which
            # our tests leave at the default of its hash length.
            suite = (
                CipherSuite.AES_256_GCM_SHA384 if len(secret) == 48
                else CipherSuite.AES_128_GCM_SHA256
            )  # fmt: skip
        if suite is None or secret is None:
            return None
        ctx = CryptoContext()
        ctx.setup(cipher_suite=suite, secret=secret, version=version)
    conn.keys[key] = ctx
    return ctx


def decode(pcap: Path, server_port: int, keylog: Path | None = None) -> Decoded:
    """Open every QUIC packet to or from ``server_port`` in ``pcap`` and list its frames.

    Without ``keylog`` only the headers are read (the connection IDs); with it, a packet
    that does not open, or whose frames do not parse, is an error.
    """
    secrets = read_keylog(keylog) if keylog else None
    out = Decoded()
    conns: dict[tuple[str, int], Conn] = {}
    for dg in read_pcap(pcap):
        if server_port not in (dg.src[1], dg.dst[1]):
            continue
        sender = "client" if dg.dst[1] == server_port else "server"
        client = dg.src if sender == "client" else dg.dst
        buf = Buffer(data=dg.payload)
        kinds: list[str] = []
        out.datagrams.append((sender, kinds))
        while not buf.eof():
            start = buf.tell()
            first = dg.payload[start]
            if not any(dg.payload[start:]):
                break  # zeros after the last packet: padding of the datagram
            conn = conns.get(client)
            # The header is read with the fixed bit set: a peer that took the grease_quic_bit
            # transport parameter may clear it (RFC 9287).  The packet is opened as sent.
            buf = Buffer(data=dg.payload[:start] + bytes([first | 0x40]) + dg.payload[start + 1 :])
            buf.seek(start)
            try:
                if is_long_header(first):
                    header = pull_quic_header(buf)
                else:
                    if secrets is None:
                        break  # a short header has no Source Connection ID to learn
                    if conn is None:
                        out.errors.append(f"frame {dg.number}: short header before any Initial")
                        break
                    peer = "server" if sender == "client" else "client"
                    known = conn.cids[peer]
                    dcid = next(
                        (c for c in known if dg.payload[start + 1 : start + 1 + len(c)] == c),
                        None,
                    )
                    length = len(dcid) if dcid else len(next(iter(known), b""))
                    header = pull_quic_header(buf, host_cid_length=length)
            except (BufferReadError, ValueError) as exc:
                out.errors.append(f"frame {dg.number}: malformed header: {exc}")
                break
            pn_offset = buf.tell() - start  # pull_quic_header stops at the packet number
            end = start + header.packet_length
            if header.packet_type == QuicPacketType.VERSION_NEGOTIATION:
                buf.seek(len(dg.payload))
                continue
            if conn is None:
                if sender != "client" or header.packet_type != QuicPacketType.INITIAL:
                    out.errors.append(f"frame {dg.number}: {header.packet_type} before an Initial")
                    buf.seek(len(dg.payload))
                    continue
                conn = conns[client] = Conn(client, header.destination_cid)
                out.connections += 1
            if header.version is not None:
                conn.version = header.version
                conn.cids[sender].add(header.source_cid)
                out.scids[sender].add(header.source_cid.hex())
            if header.packet_type == QuicPacketType.RETRY:
                conn.odcid = header.source_cid  # the client's next Initial DCID
                conn.keys = {k: v for k, v in conn.keys.items() if k[1] != "initial"}
                buf.seek(end)
                continue
            buf.seek(end)
            epoch = _epoch(header.packet_type if header.version is not None else None)
            kinds.append(epoch)
            if secrets is None:
                continue
            ctx = _context(conn, sender, epoch, conn.version, secrets.get(conn.client_random()))
            if ctx is None:
                out.errors.append(f"frame {dg.number}: no {epoch} keys ({sender} sends)")
                continue
            try:
                _, payload, pn, update = ctx.decrypt_packet(
                    dg.payload[start:end], pn_offset, conn.largest[(sender, epoch)]
                )
            except CryptoError as exc:
                out.errors.append(
                    f"frame {dg.number}: {sender} {epoch} packet (pn near "
                    f"{conn.largest[(sender, epoch)]}) does not open: {exc or 'bad AEAD tag'}"
                )
                continue
            if update:
                conn.keys[(sender, epoch, conn.version)] = next_key_phase(ctx)
            conn.largest[(sender, epoch)] = max(conn.largest[(sender, epoch)], pn + 1)
            out.packets += 1
            out.epochs[(sender, epoch)] += 1
            try:
                frames = parse_frames(payload)
            except ValueError as exc:
                out.errors.append(f"frame {dg.number}: {sender} {epoch} pn {pn}: {exc}")
                continue
            for ftype, info in frames:
                out.frames[ftype] += 1
                if 0x08 <= ftype <= 0x0F:
                    out.stream_frames.append(
                        (sender, epoch, info["stream"], info["offset"], info["data"])
                    )
                if epoch == "0rtt":
                    if ftype in _NOT_0RTT:
                        out.errors.append(f"frame {dg.number}: frame {ftype:#x} in a 0-RTT packet")
                elif epoch != "1rtt" and ftype not in _LONG_FRAMES:
                    out.errors.append(f"frame {dg.number}: frame {ftype:#x} in an {epoch} packet")
                if ftype == 0x06 and epoch == "initial":
                    conn.crypto[sender].setdefault(info["offset"], info["data"])
                if ftype == 0x18:
                    conn.cids[sender].add(info["cid"])
    return out


# --------------------------------------------------------------------------------------------
# tshark, which may crash


@dataclass
class Tshark:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    kept: Path | None = None  # where a crash's capture and key log were kept

    @property
    def crashed(self) -> bool:
        """Killed by a signal (SIGSEGV, SIGABRT...): tshark's failure, not a verdict."""
        return self.rc < 0


def run_tshark(args: list[str], pcap: Path, keylog: Path | None, name: str) -> Tshark:
    """``tshark ARGS`` (which read ``pcap``); when it crashes, keep the capture and key log
    under build/artifacts/, find the first frame of the capture it crashes on, and say so on
    the console (outside pytest's capture: a crash is reported even when the test passes)."""
    argv = ["tshark", *args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    out = Tshark(argv, r.returncode, r.stdout, r.stderr)
    if not out.crashed:
        return out
    kept = ARTIFACTS / f"tshark-crash-{name}-{time.strftime('%Y%m%dT%H%M%S')}"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy2(pcap, kept / pcap.name)
    if keylog is not None and keylog.exists():
        shutil.copy2(keylog, kept / keylog.name)
    where = _crash_frame(argv)
    report = (
        f"tshark ({_tshark_version()}) crashed with signal {-out.rc} on {pcap.name}: {where}\n"
        f"  command: {' '.join(argv)}\n  stderr: {out.stderr.strip()[-2000:]}\n"
        f"  capture and key log kept in {kept}"
    )
    (kept / "tshark-crash.txt").write_text(report + "\n")
    out.kept = kept
    print(f"\n{report}", file=sys.__stderr__, flush=True)
    return out


def _tshark_version() -> str:
    r = subprocess.run(["tshark", "--version"], capture_output=True, text=True)
    return (r.stdout.splitlines() or ["tshark ?"])[0]


def _crash_frame(argv: list[str]) -> str:
    """The first frame of the capture that makes ``argv`` crash, by bisection with ``-c N``
    (tshark reads only the first N frames), or why there is none."""

    def crashes(count: int | None) -> bool:
        extra = ["-c", str(count)] if count else []
        r = subprocess.run(argv + extra, capture_output=True, timeout=900)
        return r.returncode < 0

    if not crashes(None):
        return "the same command did not crash when run again (not reproducible)"
    total = max(dg.number for dg in read_pcap(Path(argv[argv.index("-r") + 1])))
    lo, hi = 1, total  # crashes(hi); find the least count that crashes
    while lo < hi:
        mid = (lo + hi) // 2
        if crashes(mid):
            hi = mid
        else:
            lo = mid + 1
    pcap = Path(argv[argv.index("-r") + 1])
    dg = next((d for d in read_pcap(pcap) if d.number == lo), None)
    what = f"frame {lo}"
    if dg is not None:
        kind = "long header" if is_long_header(dg.payload[0]) else "short header"
        what += (
            f" (UDP {dg.src[0]}:{dg.src[1]} -> {dg.dst[0]}:{dg.dst[1]}, {len(dg.payload)} bytes, "
            f"first packet {kind}, first byte {dg.payload[0]:#04x})"
        )
    return f"reproducible; it crashes once it reads {what}: tshark -c {lo}"
