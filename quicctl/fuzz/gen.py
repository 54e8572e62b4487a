"""Frames of every RFC 9000 / RFC 9221 type with random and boundary field values, and the
mutations of frame sequences (duplicate, reorder, truncate, bit flips, garbage).

Pure generation: no sockets, no aioquic.  A :class:`Mutation` is the plaintext that goes into
one protected packet, with the types it was made of and what was done to it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# RFC 9000 Section 19 and RFC 9221 Section 4: the frame types, by number.
NAMES: dict[int, str] = {
    0x00: "PADDING",
    0x01: "PING",
    0x02: "ACK",
    0x03: "ACK_ECN",
    0x04: "RESET_STREAM",
    0x05: "STOP_SENDING",
    0x06: "CRYPTO",
    0x07: "NEW_TOKEN",
    **{t: f"STREAM_{t:#04x}" for t in range(0x08, 0x10)},
    0x10: "MAX_DATA",
    0x11: "MAX_STREAM_DATA",
    0x12: "MAX_STREAMS_BIDI",
    0x13: "MAX_STREAMS_UNI",
    0x14: "DATA_BLOCKED",
    0x15: "STREAM_DATA_BLOCKED",
    0x16: "STREAMS_BLOCKED_BIDI",
    0x17: "STREAMS_BLOCKED_UNI",
    0x18: "NEW_CONNECTION_ID",
    0x19: "RETIRE_CONNECTION_ID",
    0x1A: "PATH_CHALLENGE",
    0x1B: "PATH_RESPONSE",
    0x1C: "CONNECTION_CLOSE",
    0x1D: "CONNECTION_CLOSE_APP",
    0x1E: "HANDSHAKE_DONE",
    0x30: "DATAGRAM",
    0x31: "DATAGRAM_LEN",
}
UNKNOWN = "UNKNOWN"
ALL_TYPES: tuple[str, ...] = (*NAMES.values(), UNKNOWN)

MAX_VARINT = (1 << 62) - 1
# Varint boundaries: each encoding length's first and last value (RFC 9000 Section 16).
BOUNDARY = (0, 1, 63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30, MAX_VARINT)
# Unknown types: just past the RFC 9000 range, around the DATAGRAM pair, two-byte and the
# largest encodable (RFC 9000 Section 12.4: FRAME_ENCODING_ERROR).
UNKNOWN_TYPES = (0x1F, 0x20, 0x2F, 0x32, 0x3F, 0x40, 0x3FFF, 0x4000, MAX_VARINT)

# The flow-control limits the fuzzed kernel endpoints advertise (frames.TRANSPORT_PARAMS), so
# offsets and limits can sit exactly on them.
FC_DATA = 65536
FC_STREAM = 16384
MAX_STREAMS = 16

# Types a peer may send in 1-RTT at any time (with plausible values the kernel must accept).
SAFE = (
    "PADDING", "PING", "ACK", "MAX_DATA", "MAX_STREAMS_BIDI", "MAX_STREAMS_UNI", "DATA_BLOCKED",
    "STREAMS_BLOCKED_BIDI", "STREAMS_BLOCKED_UNI", "PATH_CHALLENGE", "MAX_STREAM_DATA",
    "STREAM_DATA_BLOCKED", "RESET_STREAM", "STOP_SENDING", "DATAGRAM", "DATAGRAM_LEN",
    *(f"STREAM_{t:#04x}" for t in range(0x08, 0x10)),
)  # fmt: skip
# Frames without a length run to the end of the packet (RFC 9000 Sections 19.8, RFC 9221 4):
# a plausible mutation has at most one, last, so it takes no other frame's bytes as its data.
OPEN_ENDED = {"STREAM_0x08": "STREAM_0x0a", "STREAM_0x09": "STREAM_0x0b",
              "STREAM_0x0c": "STREAM_0x0e", "STREAM_0x0d": "STREAM_0x0f",
              "DATAGRAM": "DATAGRAM_LEN"}  # fmt: skip
OPS = ("none", "duplicate", "reorder", "truncate", "bitflip", "garbage", "flood")


def varint(v: int, length: int | None = None) -> bytes:
    """RFC 9000 Section 16; ``length`` forces a longer (non-minimal) encoding."""
    v = min(max(v, 0), MAX_VARINT)
    need = 1 if v < 1 << 6 else 2 if v < 1 << 14 else 4 if v < 1 << 30 else 8
    n = max(need, length or need)
    prefix = {1: 0, 2: 0x40, 4: 0x80, 8: 0xC0}[n]
    out = bytearray(v.to_bytes(n, "big"))
    out[0] |= prefix
    return bytes(out)


@dataclass
class Mutation:
    """One packet's injected plaintext."""

    data: bytes
    types: list[str]
    op: str
    hostile: bool
    space: str = ""  # filled in when it goes out: initial, handshake, 1rtt
    tags: list[str] = field(default_factory=list)


@dataclass
class Context:
    """What the generator knows of the connection: which end the injecting peer is."""

    peer_is_client: bool  # the aioquic end (the injector) initiated the connection
    largest_pn: int = 2  # the largest 1-RTT packet number received from the kernel so far


class FrameGen:
    """Frames with random and boundary field values (``hostile``) or plausible ones."""

    def __init__(self, rng: random.Random, ctx: Context, todo: set[str] | None = None):
        self.rng = rng
        self.ctx = ctx
        self.todo = todo if todo is not None else set()  # types not sent yet: drawn first
        # Plausible STREAM and RESET_STREAM frames stay consistent with what was sent before:
        # per stream the highest end and the final size, and their sum (flow control).
        self.ends: dict[int, int] = {}
        self.finals: dict[int, int] = {}

    # -- fields --------------------------------------------------------------------------
    def num(self, hostile: bool, lo: int = 0, hi: int = 16, near: tuple[int, ...] = ()) -> int:
        r = self.rng
        if hostile:
            pick = r.random()
            if pick < 0.45:
                return r.choice(BOUNDARY)
            if pick < 0.65 and near:
                return max(0, r.choice(near) + r.choice((-1, 0, 1)))
            return r.randrange(1 << r.choice((6, 14, 30, 62)))
        if near and r.random() < 0.4:
            return max(lo, r.choice(near) + r.choice((-1, 0)))
        return r.randint(lo, hi)

    def v(self, value: int, hostile: bool) -> bytes:
        if hostile and self.rng.random() < 0.08:
            return varint(value, self.rng.choice((2, 4, 8)))  # non-minimal
        return varint(value)

    def stream_id(self, hostile: bool, uni: bool | None = None) -> int:
        """A stream the injecting peer opens (valid), one of the kernel's, or a boundary."""
        r = self.rng
        own = 0 if self.ctx.peer_is_client else 1
        if uni is None:
            uni = r.random() < 0.3
        kind = own | (2 if uni else 0)
        if not hostile:  # above the streams aioquic itself opens, below the limit
            return kind + 4 * r.randrange(MAX_STREAMS // 2, MAX_STREAMS - 2)
        if r.random() < 0.5:
            return r.choice(
                (
                    kind ^ 1,  # the kernel's side of the same direction
                    (kind ^ 1) + 4 * r.randrange(4),
                    kind + 4 * MAX_STREAMS,  # one past the advertised limit
                    kind + 4 * (MAX_STREAMS - 1),
                    MAX_VARINT,
                    MAX_VARINT - 3,
                    r.randrange(1 << 62),
                )
            )
        return kind + 4 * r.randrange(MAX_STREAMS // 2)

    def _room(self, sid: int) -> int:
        """Bytes stream ``sid`` may still grow by within the kernel's flow control."""
        conn = FC_DATA - 1024 - sum(self.ends.values())
        return max(0, min(FC_STREAM - self.ends.get(sid, 0), conn))

    def plausible_final(self, sid: int) -> tuple[int, int]:
        """A final size for ``sid`` the kernel must accept (recorded), on a stream that can
        still take one, else on a fresh stream above the others."""
        if sid not in self.finals:
            end = self.ends.get(sid, 0)
            final = end + self.rng.randint(0, min(200, self._room(sid)))
            self.finals[sid] = self.ends[sid] = final
        return sid, self.finals[sid]

    def plausible_stream(self, t: int) -> bytes:
        """A STREAM frame of type ``t`` consistent with the stream's earlier frames: no byte
        past its final size, FIN only at it, within flow control, no gap past its end."""
        r = self.rng
        has_off, has_len, fin = t & 0x04, t & 0x02, t & 0x01
        for _ in range(8):
            sid = self.stream_id(False)
            end, final = self.ends.get(sid, 0), self.finals.get(sid)
            if fin and not has_off and final is None and end == 0:
                n = r.randint(0, min(200, self._room(sid)))
                self.finals[sid] = self.ends[sid] = n
                data = r.randbytes(n)
                break
            if fin and not has_off:
                if final is not None and final <= 200:
                    data = r.randbytes(final)  # the whole stream again
                    break
                continue
            top = final if final is not None else end + min(200, self._room(sid))
            off = r.randint(0, end) if has_off else 0
            off = min(off, top)
            if fin:
                if final is None:
                    final = r.randint(max(end, off), top)
                    self.finals[sid] = final
                n = final - off
                if n > 200:
                    off, n = final - 200, 200
            else:
                n = r.randint(0, min(200, top - off))
            data = r.randbytes(n)
            self.ends[sid] = max(end, off + n)
            break
        else:  # FIN without an offset: a stream not used yet, else one with a short final size
            own = 0 if self.ctx.peer_is_client else 1
            ids = [
                k + 4 * i for k in (own, own | 2) for i in range(MAX_STREAMS // 2, MAX_STREAMS - 2)
            ]
            fresh = [i for i in ids if i not in self.ends]
            short = [i for i in ids if self.finals.get(i, 1 << 62) <= 200]
            off = 0
            if fresh:
                sid = r.choice(fresh)
                n = r.randint(0, min(200, self._room(sid)))
                self.finals[sid] = self.ends[sid] = n
            else:  # none left: may well be a FINAL_SIZE_ERROR
                sid = r.choice(short or ids)
                n = self.finals.get(sid, 0)
            data = r.randbytes(min(n, 200))
        out = varint(sid)
        if has_off:
            out += varint(off)
        if has_len:
            out += varint(len(data))
        return out + data

    def blob(self, hostile: bool, most: int = 64) -> bytes:
        n = self.rng.randrange(0, most + 1)
        return self.rng.randbytes(n)

    # -- frames --------------------------------------------------------------------------
    def frame(self, name: str, hostile: bool) -> bytes:
        r = self.rng
        v = self.v
        num = self.num
        if name == UNKNOWN:
            t = r.choice(UNKNOWN_TYPES) if r.random() < 0.7 else r.randrange(0x1F, 1 << 14)
            if t in NAMES:
                t = 0x1F
            return varint(t) + self.blob(True, 16)
        t = next(k for k, n in NAMES.items() if n == name)
        head = v(t, hostile)
        if t == 0x00:
            return b"\0" * r.randint(1, 32)
        if t in (0x01, 0x1E):
            return head
        if t in (0x02, 0x03):
            largest = num(hostile, 0, max(0, self.ctx.largest_pn))
            count = num(hostile, 0, 0) if hostile else 0
            first = num(hostile, 0, min(largest, 1)) if hostile else min(largest, r.randint(0, 1))
            out = head + v(largest, hostile) + v(num(hostile, 0, 25), hostile)
            out += v(count, hostile) + v(first, hostile)
            for _ in range(min(count, r.randint(0, 4))):  # fewer ranges than claimed: truncated
                out += v(num(True), hostile) + v(num(True), hostile)
            if t == 0x03:
                out += b"".join(v(num(hostile, 0, 2), hostile) for _ in range(3))
            return out
        if t == 0x04 and not hostile:
            sid, final = self.plausible_final(self.stream_id(False))
            return head + v(sid, False) + v(num(False, 0, 255), False) + v(final, False)
        if 0x08 <= t <= 0x0F and not hostile:
            return head + self.plausible_stream(t)
        if t == 0x04:
            return (
                head
                + v(self.stream_id(hostile), hostile)
                + v(num(hostile, 0, 255), hostile)
                + v(
                    num(hostile, 0, 2000, (FC_STREAM, FC_DATA) if hostile else (FC_STREAM,)),
                    hostile,
                )
            )
        if t == 0x05:
            sid = self.stream_id(hostile, uni=False if not hostile else None)
            return head + v(sid, hostile) + v(num(hostile, 0, 255), hostile)
        if t == 0x06:
            data = self.blob(hostile, 48)
            off = num(hostile, 0, 0, (MAX_VARINT - len(data), 1 << 16))
            n = len(data) if not hostile or r.random() < 0.5 else num(True)
            return head + v(off, hostile) + v(n, hostile) + data
        if t == 0x07:
            token = self.blob(hostile, 64)
            n = len(token) if not hostile or r.random() < 0.5 else num(True)
            return head + v(n, hostile) + token
        if 0x08 <= t <= 0x0F:
            sid = self.stream_id(hostile)
            data = self.blob(hostile, 200)
            out = head + v(sid, hostile)
            if t & 0x04:
                near = (FC_STREAM - len(data),)
                if hostile:
                    near += (FC_DATA - len(data), MAX_VARINT - len(data))
                out += v(num(hostile, 0, 1000, near), hostile)
            if t & 0x02:
                n = len(data) if not hostile or r.random() < 0.6 else num(True)
                out += v(n, hostile)
            return out + data
        if t == 0x10:
            return head + v(num(hostile, 0, 1 << 20, (FC_DATA,)), hostile)
        if t == 0x11:
            sid = self.stream_id(hostile, uni=False if not hostile else None)
            return head + v(sid, hostile) + v(num(hostile, 0, 1 << 20, (FC_STREAM,)), hostile)
        if t in (0x12, 0x13, 0x16, 0x17):
            near = (MAX_STREAMS, 1 << 60) + (((1 << 60) + 1,) if hostile else ())
            return head + v(num(hostile, 0, 64, near), hostile)
        if t == 0x14:
            return head + v(num(hostile, 0, FC_DATA, (FC_DATA,)), hostile)
        if t == 0x15:
            sid = self.stream_id(hostile)
            return head + v(sid, hostile) + v(num(hostile, 0, FC_STREAM, (FC_STREAM,)), hostile)
        if t == 0x18:
            seq = num(hostile, 1, 12)
            prior = num(hostile, 0, 0) if hostile else 0
            cid_len = r.choice((0, 1, 8, 20, 21, 255)) if hostile else r.choice((8, 20))
            cid = r.randbytes(min(cid_len, 24))
            token = r.randbytes(16 if not hostile or r.random() < 0.7 else r.randrange(17))
            return head + v(seq, hostile) + v(prior, hostile) + bytes([cid_len]) + cid + token
        if t == 0x19:
            return head + v(num(hostile, 0, 8), hostile)
        if t in (0x1A, 0x1B):
            return head + r.randbytes(8 if not hostile or r.random() < 0.7 else r.randrange(9))
        if t in (0x1C, 0x1D):
            reason = self.blob(hostile, 32)
            n = len(reason) if not hostile or r.random() < 0.5 else num(True)
            out = head + v(num(hostile, 0, 0x1FF), hostile)
            if t == 0x1C:
                out += v(num(hostile, 0, 0x1E), hostile)
            return out + v(n, hostile) + reason
        if t == 0x30:
            return head + self.blob(hostile, 200)  # runs to the end of the packet
        if t == 0x31:
            data = self.blob(hostile, 200)
            n = len(data) if not hostile or r.random() < 0.6 else num(True)
            return head + v(n, hostile) + data
        raise AssertionError(name)

    # -- sequences -----------------------------------------------------------------------
    def mutation(
        self, hostile: bool, limit: int = 900, types: list[str] | None = None, wild: float = 0.25
    ) -> Mutation:
        """One to four frames (of ``types``, else random ones), then a sequence mutation.
        ``wild``: the share of plausible mutations that draw from every type, not only from
        those a peer may send at any time."""
        r = self.rng
        if types is None:
            # Plausible mutations mostly use the types a peer may send at any time, so a
            # connection lives long enough to take several; hostile ones use any type.
            pool = ALL_TYPES if hostile or r.random() < wild else SAFE
            types = [r.choice(pool) for _ in range(r.choice((1, 1, 1, 2, 3, 4)))]
            if self.todo and r.random() < 0.8:
                types[0] = r.choice(sorted(self.todo))
        if not hostile:
            open_ended = [t for t in types if t in OPEN_ENDED]
            types = [OPEN_ENDED.get(t, t) for t in types if t not in open_ended[:1]]
            types += open_ended[:1]
        frames = [self.frame(t, hostile) for t in types]
        op = "none"
        if hostile:
            op = r.choice(OPS)
        if op == "duplicate":
            i = r.randrange(len(frames))
            frames.insert(i, frames[i])
        elif op == "reorder":
            r.shuffle(frames)
        elif op == "flood":
            frames = frames * r.randint(2, 40)
        data = b"".join(frames)
        if op == "truncate" and data:
            data = data[: r.randrange(len(data))]
        elif op == "bitflip" and data:
            b = bytearray(data)
            for _ in range(r.randint(1, 8)):
                b[r.randrange(len(b))] ^= 1 << r.randrange(8)
            data = bytes(b)
        elif op == "garbage":
            pos = r.randrange(len(data) + 1)
            data = data[:pos] + r.randbytes(r.randint(1, 32)) + data[pos:]
        return Mutation(data[:limit], types, op, hostile)
