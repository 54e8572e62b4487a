"""The frame fuzzer: mutated frames and frame sequences inside validly protected packets, sent
to quic.ko by an aioquic peer (sans-I/O), in both directions of live connections and in every
packet-number space, the handshake's included.

* ``kernel-server``: an aioquic client (injecting) against a kernel listener
  (:class:`quicctl.QuicServer`, gnutls in userspace);
* ``kernel-client``: :func:`quicctl.connect` against an aioquic server (injecting).

In the handshake spaces the aioquic end adds a mutation (:mod:`quicctl.fuzz.gen`) at the
start of its next packet of that space: aioquic builds, numbers and protects the packet as
usual.  In 1-RTT the mutations go out eight at a time, each in its own short-header packet
(PADDING, PING, then the mutation) that we number after aioquic's last packet and protect
with its keys; the kernel's ACK ranges say which it took (``alive``), which it skipped
(``dropped``), and a CONNECTION_CLOSE which one closed the connection (the first unacknowledged
packet holding the frame type it names).  A connection draws how hostile it is: most are
gentle (plausible frames consistent with what was sent before, so a connection takes dozens),
some hostile (boundary values, damaged sequences, soon closed).  Every few connections a
clean connection in each direction must still carry an echo (liveness); at the end no
connection may remain in /proc/net/quic/conns and the kernel log must be clean.  Several
worker processes (own namespaces, own derived seeds) run side by side.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from quicctl.fuzz import Deadline, Progress, bad_kernel_lines, derive, kmsg
from quicctl.fuzz.gen import (
    ALL_TYPES,
    FC_DATA,
    FC_STREAM,
    MAX_STREAMS,
    NAMES,
    Context,
    FrameGen,
)  # fmt: skip
from quicctl.fuzz.gen import Mutation as Mutation
from quicctl.paths import KEYS

ALPN = "quicctl-fuzz"
SERVER_NAME = "server.quic.test"  # in keys/cert.crt
SPACES = ("initial", "handshake", "1rtt")
# What the fuzzed kernel endpoints advertise: small, known limits the generator aims at.
TRANSPORT_PARAMS = {
    "max_data": FC_DATA,
    "max_stream_data_bidi_local": FC_STREAM,
    "max_stream_data_bidi_remote": FC_STREAM,
    "max_stream_data_uni": FC_STREAM,
    "max_streams_bidi": MAX_STREAMS,
    "max_streams_uni": MAX_STREAMS,
    "max_datagram_frame_size": 1200,
}
# At most, on one connection, before the next one starts: a handshake costs as much as about
# 20 mutations (8x that on the debug kernel), so long-lived connections make the run.
MUTATIONS_PER_CONN = 192
BATCH = 8  # 1-RTT mutations sent back to back, each in its own packet
RAW_PN_LEN = 2  # packet number length of those packets
HOSTILE = 0.25  # share of handshake mutations with random/boundary values and sequence damage
HANDSHAKE_SHARE = 0.15  # of connections with a mutation in each handshake space
# Per connection, (share of hostile mutations, share of plausible ones drawn from every type):
# gentle connections take many mutations, hostile ones are soon closed.
HOSTILITY = ((0.01, 0.01), (0.01, 0.01), (0.01, 0.01), (0.05, 0.05), (0.25, 0.25), (0.6, 0.5))
LIVENESS_EVERY = 20  # connections
ANSWER_TIMEOUT = 1.0  # s for the kernel to acknowledge a batch or close
HANDSHAKE_TIMEOUT = 30.0
OUR_CLOSE = "draining after our CONNECTION_CLOSE"
ECHO_MARK = b"echo "  # the kernel ends echo streams starting with this only


class FuzzFailure(AssertionError):
    pass


def _peer_class():
    """aioquic's QuicConnection that puts ``pending[space]`` mutations at the start of its next
    packet of that space, and records the peer's CONNECTION_CLOSE."""
    from aioquic import tls
    from aioquic.quic.connection import QuicConnection, stream_is_client_initiated
    from aioquic.quic.packet import QuicPacketType, pull_ack_frame
    from aioquic.quic.packet_builder import QuicPacketBuilderStop
    from aioquic.quic.stream import StreamFinishedError

    space_of = {
        QuicPacketType.INITIAL: "initial",
        QuicPacketType.HANDSHAKE: "handshake",
        QuicPacketType.ONE_RTT: "1rtt",
    }

    class Injector(QuicConnection):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.pending: dict[str, list[Mutation]] = {s: [] for s in SPACES}
            self.sent: list[Mutation] = []
            self.peer_close: tuple[int, int | None, str] | None = None
            self.raw_outstanding: set[int] = set()
            self.raw_acked: set[int] = set()

        def _wrap(self, builder):
            orig = builder.start_packet

            def start_packet(packet_type, crypto):
                orig(packet_type, crypto)
                queue = self.pending.get(space_of.get(packet_type, ""))
                if not queue:
                    return
                mut = queue[0]
                if builder.remaining_flight_space < len(mut.data) + 64:
                    return  # a later, emptier packet takes it
                try:
                    buf = builder.start_frame(0x00, capacity=len(mut.data) + 1)
                except QuicPacketBuilderStop:
                    return
                buf.push_bytes(mut.data)  # after one PADDING byte: any bytes at all
                mut.space = space_of[packet_type]
                self.sent.append(queue.pop(0))

            builder.start_packet = start_packet
            return orig

        def _write_handshake(self, builder, epoch, now) -> None:
            orig = self._wrap(builder)
            try:
                super()._write_handshake(builder, epoch, now)
            finally:
                builder.start_packet = orig

        def _write_application(self, builder, network_path, now) -> None:
            orig = self._wrap(builder)
            try:
                super()._write_application(builder, network_path, now)
            finally:
                builder.start_packet = orig

        def _handle_ack_frame(self, context, frame_type, buf) -> None:
            # Note which of our raw 1-RTT packets the kernel acknowledged, then let aioquic
            # process the frame as usual (it ignores numbers it did not send itself).
            if self.raw_outstanding and context.epoch == tls.Epoch.ONE_RTT:
                pos = buf.tell()
                try:
                    ranges, _ = pull_ack_frame(buf)
                except ValueError:
                    ranges = ()
                buf.seek(pos)
                for r in ranges:
                    hit = {pn for pn in self.raw_outstanding if pn in r}
                    self.raw_outstanding -= hit
                    self.raw_acked |= hit
            super()._handle_ack_frame(context, frame_type, buf)

        def _get_or_create_stream(self, frame_type: int, stream_id: int):
            # Our raw frames open streams of our side that aioquic never created: the kernel
            # answering on them (RESET_STREAM after STOP_SENDING, ...) is not an error here.
            if (
                stream_id not in self._streams
                and stream_is_client_initiated(stream_id) == self._is_client
            ):
                raise StreamFinishedError  # aioquic then ignores the frame
            return super()._get_or_create_stream(frame_type, stream_id)

        def send_raw(self, payloads: list[bytes]) -> list[tuple[int, bytes]]:
            """Short-header packets with these plaintexts, numbered after aioquic's last and
            protected with its 1-RTT keys: the datagrams and their packet numbers."""
            pair = self._cryptos[tls.Epoch.ONE_RTT]
            out = []
            for payload in payloads:
                pn = self._packet_number
                self._packet_number += 1
                first = 0x40 | (pair.key_phase << 2) | (RAW_PN_LEN - 1)
                header = bytes([first]) + self._peer_cid.cid + pn.to_bytes(RAW_PN_LEN, "big")
                out.append((pn, pair.encrypt_packet(header, payload, pn)))
                self.raw_outstanding.add(pn)
            return out

        def _handle_connection_close_frame(self, context, frame_type, buf) -> None:
            # The kernel's own words (aioquic's close event may be its own earlier close).
            pos = buf.tell()
            code = buf.pull_uint_var()
            trigger = buf.pull_uint_var() if frame_type == 0x1C else None
            buf.seek(pos)
            first = getattr(self, "_close_event", None) is None  # aioquic had not closed
            super()._handle_connection_close_frame(context, frame_type, buf)
            if first and self.peer_close is None:
                self.peer_close = (code, trigger, "")

    return Injector


def reaction(quic) -> str:
    """How a closed connection ended, from the aioquic side."""
    if quic.peer_close is not None:
        code, ftype, _ = quic.peer_close
        what = f"closed 0x{code:x}"
        return what + (f" frame 0x{ftype:x}" if ftype else "")
    ev = getattr(quic, "_close_event", None)
    return f"aioquic closed 0x{ev.error_code:x}" if ev is not None else "alive"


class AioEnd:
    """The aioquic end of one connection, over its own UDP socket, stepped by :meth:`pump`."""

    def __init__(self, topo, role: str, rng: random.Random, port: int = 0):
        from aioquic.quic.configuration import QuicConfiguration

        from quicctl.netns import enter

        self.role = role
        self.rng = rng
        client = role == "client"
        config = QuicConfiguration(
            is_client=client, alpn_protocols=[ALPN], max_datagram_frame_size=1200
        )
        with enter(topo.client if client else topo.server):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if client:
            config.server_name = SERVER_NAME
            config.load_verify_locations(cafile=str(KEYS / "ca.crt"))
            self.addr: tuple | None = (topo.server_v4, port)
            self.quic = _peer_class()(configuration=config)
        else:
            config.load_cert_chain(str(KEYS / "cert.crt"), str(KEYS / "pkey.key"))
            self.sock.bind((topo.server_v4, 0))
            self.addr = None
            self.quic = None
        self.config = config
        self.pending: dict[str, list[Mutation]] = {s: [] for s in SPACES}
        self.connected = False
        self.terminated = False
        self.acked: set[int] = set()
        self.data: dict[int, bytearray] = {}
        self.fin: set[int] = set()
        if client:
            self._attach()
            self.quic.connect(self.addr, now=time.monotonic())

    @property
    def ended(self) -> bool:
        """Closing or draining: aioquic reports ConnectionTerminated only after draining."""
        return self.terminated or getattr(self.quic, "_close_event", None) is not None

    def largest_pn(self) -> int:
        """The largest 1-RTT packet number received from the kernel (-1: none yet)."""
        from aioquic import tls

        return self.quic._spaces[tls.Epoch.ONE_RTT].largest_received_packet

    def _attach(self) -> None:
        self.quic.pending = self.pending

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _accept(self, data: bytes, addr) -> None:
        from aioquic.buffer import Buffer
        from aioquic.quic.packet import pull_quic_header

        hdr = pull_quic_header(Buffer(data=data), host_cid_length=8)
        self.addr = addr
        self.quic = _peer_class()(
            configuration=self.config, original_destination_connection_id=hdr.destination_cid
        )
        self._attach()

    def pump(self, wait: float = 0.01) -> None:
        from aioquic.quic import events

        if self.quic is not None:
            self._flush()
            timer = self.quic.get_timer()
            now = time.monotonic()
            wait = wait if timer is None else max(0.0, min(wait, timer - now))
        self.sock.settimeout(wait or 0.001)
        try:
            while True:
                data, addr = self.sock.recvfrom(65536)
                if self.quic is None:
                    self._accept(data, addr)
                self.quic.receive_datagram(data, addr, time.monotonic())
                self.sock.settimeout(0.0005)
        except (TimeoutError, BlockingIOError):
            pass
        if self.quic is None:
            return
        timer = self.quic.get_timer()
        if timer is not None and time.monotonic() >= timer:
            self.quic.handle_timer(now=time.monotonic())
        while (ev := self.quic.next_event()) is not None:
            if isinstance(ev, events.HandshakeCompleted):
                self.connected = True
            elif isinstance(ev, events.ConnectionTerminated):
                self.terminated = True
            elif isinstance(ev, events.PingAcknowledged):
                self.acked.add(ev.uid)
            elif isinstance(ev, events.StreamDataReceived):
                self.data.setdefault(ev.stream_id, bytearray()).extend(ev.data)
                if ev.end_stream:
                    self.fin.add(ev.stream_id)
        self._flush()

    def _flush(self) -> None:
        for data, addr in self.quic.datagrams_to_send(now=time.monotonic()):
            try:
                self.sock.sendto(data, addr)
            except OSError:
                pass

    def until(self, cond, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() >= deadline:
                return False
            self.pump(0.01)
        return True

    def echo(self, payload: bytes, timeout: float = 20.0) -> bool:
        """A new stream carries ``payload`` to the kernel and back (the kernel end echoes)."""
        sid = self.quic.get_next_available_stream_id()
        self.quic.send_stream_data(sid, payload, end_stream=True)
        ok = self.until(lambda: sid in self.fin or self.ended, timeout)
        return ok and bytes(self.data.get(sid, b"")) == payload

    def close(self) -> None:
        if self.quic is not None and not self.ended:
            self.quic.close()
            for _ in range(3):
                self.pump(0.005)
        self.sock.close()


def _echo_loop(conn, stop: threading.Event) -> None:
    """Kernel end: each stream's bytes back on the same stream once its FIN arrives."""
    from quicctl.errors import PeerClosedError

    conn.settimeout(0.5)
    bufs: dict[int, bytearray] = {}
    try:
        while not stop.is_set():
            try:
                sid, data, fin = conn.recv()
            except TimeoutError:
                continue
            if sid < 0:
                continue
            bufs.setdefault(sid, bytearray()).extend(data)
            if fin and not bufs[sid].startswith(ECHO_MARK):
                bufs.pop(sid)  # stream data the fuzzer injected
            elif fin:
                try:
                    conn.settimeout(5)
                    conn.sendall(bytes(bufs.pop(sid)), sid)
                except (TimeoutError, OSError):
                    pass
                finally:
                    conn.settimeout(0.5)
    except (PeerClosedError, OSError):
        pass
    finally:
        conn.close()


class KernelServer:
    """A quic.ko listener in the server namespace; each accepted connection runs the handshake
    and then echoes, in its own thread."""

    def __init__(self, topo):
        from quicctl.connection import QuicServer
        from quicctl.netns import enter

        with enter(topo.server):
            self.srv = QuicServer(
                topo.server_v4, 0, alpn=ALPN, certfile=str(KEYS / "cert.crt"),
                keyfile=str(KEYS / "pkey.key"), transport_params=TRANSPORT_PARAMS,
            )  # fmt: skip
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        self.handshake_errors = Counter()
        self.threads: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.srv.accept_socket()
            except OSError as exc:  # a fuzzed connection may fail between queue and accept
                if self.stop.is_set() or self.srv.sock.fileno() < 0:
                    return
                self.handshake_errors[f"accept {exc.errno}"] += 1
                time.sleep(0.01)
                continue
            t = threading.Thread(target=self._one, args=(sock,), daemon=True)
            t.start()
            self.threads = [x for x in self.threads if x.is_alive()] + [t]

    def _one(self, sock) -> None:
        try:
            conn = self.srv.handshake(sock, timeout=HANDSHAKE_TIMEOUT)
        except Exception as exc:  # a fuzzed handshake may fail: counted, not fatal
            self.handshake_errors[type(exc).__name__] += 1
            return
        _echo_loop(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.srv.close()
        self.thread.join(10)
        for t in self.threads:
            t.join(10)


class KernelClient:
    """quicctl.connect from the client namespace in a thread, then the echo loop."""

    def __init__(self, topo, port: int, stop: threading.Event):
        self.topo, self.port, self.stop = topo, port, stop
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from quicctl.connection import connect
        from quicctl.netns import enter

        try:
            with enter(self.topo.client):
                conn = connect(
                    self.topo.server_v4, self.port, alpn=ALPN, cafile=str(KEYS / "ca.crt"),
                    server_name=SERVER_NAME, timeout=HANDSHAKE_TIMEOUT,
                    transport_params=TRANSPORT_PARAMS,
                )  # fmt: skip
        except BaseException as exc:
            self.error = exc
            return
        _echo_loop(conn, self.stop)


def _proc(ns: str, name: str) -> str:
    from quicctl.netns import enter

    with enter(ns):
        return Path(f"/proc/thread-self/net/quic/{name}").read_text()


def _snmp(ns: str) -> dict[str, int]:
    out = {}
    for line in _proc(ns, "snmp").splitlines():
        name, _, value = line.partition("\t")
        if value.strip().isdigit():
            out[name.strip()] = int(value)
    return out


def _conn_count(ns: str) -> int:
    return max(0, len(_proc(ns, "conns").splitlines()) - 1)


class Run:
    """One fuzzing run: counters, the kernel endpoints, and the connections one by one."""

    def __init__(self, topo, seed: int, deadline: Deadline, progress: Progress, verbose=False):
        self.topo, self.seed, self.deadline, self.progress = topo, seed, deadline, progress
        self.verbose = verbose
        self.mutations = 0
        self.frames = 0
        self.coverage: dict[str, Counter] = {s: Counter() for s in SPACES}
        self.reactions: Counter = Counter()
        self.by_type: dict[str, Counter] = defaultdict(Counter)
        self.todo = set(ALL_TYPES)  # coverage first: types never sent yet
        self.samples: dict[str, dict] = {}  # reaction -> the first mutation that caused it
        self.ops: Counter = Counter()
        self.directions: Counter = Counter()
        self.outcomes: Counter = Counter()
        self.failures: list[str] = []
        self.liveness = 0
        self.server = KernelServer(topo)
        self.stop = threading.Event()
        self.clients: list[KernelClient] = []

    def fail(self, what: str, conn: int | None = None) -> None:
        where = f" (connection {conn}, seed {derive(self.seed, 'conn', conn)})" if conn else ""
        msg = f"seed {self.seed}{where}: {what}"
        self.failures.append(msg)
        self.progress(f"FAILURE {msg}")

    # -- one connection ------------------------------------------------------------------
    def open(self, index: int, direction: str, rng: random.Random) -> AioEnd:
        if direction == "kernel-server":
            return AioEnd(self.topo, "client", rng, self.server.port)
        end = AioEnd(self.topo, "server", rng)
        self.clients = [c for c in self.clients if c.thread.is_alive()]
        self.clients.append(KernelClient(self.topo, end.port, self.stop))
        return end

    def record(self, end: AioEnd, outcome: str, index: int = 0) -> None:
        """The handshake-space mutations aioquic's packets carried, all with ``outcome``."""
        for mut in end.quic.sent if end.quic is not None else ():
            self.count(mut, outcome, index)
        if end.quic is not None:
            end.quic.sent.clear()

    def count(self, mut: Mutation, outcome: str, index: int) -> None:
        if outcome not in self.samples and outcome != "alive":
            self.samples[outcome] = {
                "connection": index,
                "space": mut.space,
                "types": mut.types,
                "op": mut.op,
                "hex": mut.data[:256].hex(),
            }
        self.mutations += 1
        self.frames += len(mut.types)
        self.ops[mut.op] += 1
        for t in mut.types:
            self.todo.discard(t)
            self.coverage[mut.space][t] += 1
            self.by_type[t][outcome] += 1
        self.reactions[outcome] += 1

    def connection(self, index: int) -> None:
        rng = random.Random(derive(self.seed, "conn", index))
        direction = rng.choice(("kernel-server", "kernel-client"))
        self.directions[direction] += 1
        gen = FrameGen(rng, Context(peer_is_client=direction == "kernel-server"), self.todo)
        end = self.open(index, direction, rng)
        t0, before = time.monotonic(), self.mutations
        try:
            self._fuzz(index, end, gen, rng)
        finally:
            end.close()
        if self.verbose:
            self.progress(
                f"connection {index} ({direction}): {self.mutations - before} mutations, "
                f"{reaction(end.quic) if end.quic else 'no handshake'}, "
                f"{time.monotonic() - t0:.1f} s"
            )

    def _fuzz(self, index: int, end: AioEnd, gen: FrameGen, rng: random.Random) -> None:
        # How hostile this connection is: most are gentle (long-lived, many mutations each),
        # some hostile (short-lived, most of their mutations close them).
        hostile, wild = rng.choice(HOSTILITY)
        # The handshake spaces first: one mutation each, with some probability.
        for space, limit in (("initial", 500), ("handshake", 400)):
            if rng.random() < HANDSHAKE_SHARE:
                end.pending[space].append(gen.mutation(rng.random() < HOSTILE, limit))
        ok = end.until(lambda: end.connected or end.ended, HANDSHAKE_TIMEOUT)
        for space in ("initial", "handshake"):
            end.pending[space].clear()  # not sent: the space had no packet left with room
        if not ok:
            self.record(end, "handshake stalled", index)
            self.outcomes["handshake stalled"] += 1
            return
        if end.ended:
            self.record(end, reaction(end.quic), index)
            self.outcomes["closed in the handshake"] += 1
            return
        self.record(end, "alive", index)
        budget = rng.randint(MUTATIONS_PER_CONN // 4, MUTATIONS_PER_CONN)
        done = 0
        while done < budget and not self.deadline.done(self.mutations):
            n = min(BATCH, budget - done)
            done += n
            gen.ctx.largest_pn = end.largest_pn()
            muts = [gen.mutation(rng.random() < hostile, wild=wild) for _ in range(n)]
            if not self._batch(index, end, muts):
                return
        if not end.ended and not end.echo(b"echo fuzz %d" % index, 10):
            if not end.ended:
                self.outcomes["alive, echo failed"] += 1
                return
        self.outcomes["closed" if end.ended else "survived"] += 1

    def _batch(self, index: int, end: AioEnd, muts: list[Mutation]) -> bool:
        """Send ``muts`` in back-to-back 1-RTT packets (PADDING, PING, then the mutation, which
        may run to the end of the packet)
        and sort them by what the kernel did: acknowledged (``alive``), acknowledged around
        (``dropped``: skipped unacknowledged, counted by the kernel), closed the connection, or
        nothing at all (``silent``: our own CONNECTION_CLOSE, the connection then drains).
        True if the connection is still worth fuzzing."""
        quic = end.quic
        sent = quic.send_raw([b"\x00\x01" + m.data for m in muts])
        for (_, dgram), m in zip(sent, muts, strict=True):
            m.space = "1rtt"
            try:
                end.sock.sendto(dgram, end.addr)
            except OSError:
                pass
        pns = [pn for pn, _ in sent]
        end.until(lambda: pns[-1] in quic.raw_acked or end.ended, ANSWER_TIMEOUT)
        if end.ended:
            # Packets are handled in order and those before the culprit were not all
            # acknowledged yet: the culprit is the first unacknowledged one holding the frame
            # type the close names, else the first unacknowledged.  Those after it met a
            # closed connection and are not counted.
            first = next((i for i, pn in enumerate(pns) if pn not in quic.raw_acked), 0)
            name = NAMES.get(quic.peer_close[1]) if quic.peer_close else None
            culprit = next((i for i in range(first, len(muts)) if name in muts[i].types), first)
            outcomes = ["alive"] * culprit + [reaction(quic)]
            self.outcomes["closed"] += 1
        else:
            last = max((i for i, pn in enumerate(pns) if pn in quic.raw_acked), default=-1)
            outcomes = ["alive" if pn in quic.raw_acked else "dropped" if i < last else "silent"
                        for i, pn in enumerate(pns)]  # fmt: skip
            if last < len(pns) - 1:
                outcomes = outcomes[: last + 2]  # the first silent one: the kernel went quiet
                closes = ("CONNECTION_CLOSE", "CONNECTION_CLOSE_APP")
                if any(t in closes for m in muts[: last + 2] for t in m.types):
                    outcomes[-1] = OUR_CLOSE  # the kernel drains after our close: right
        quic.raw_outstanding.clear()
        quic.raw_acked.clear()
        for m, outcome in zip(muts, outcomes, strict=False):
            self.count(m, outcome, index)
        if not end.ended and outcomes[-1] in ("silent", OUR_CLOSE):
            self.outcomes["went silent"] += 1
            return False
        return not end.ended

    # -- liveness ------------------------------------------------------------------------
    def check_liveness(self, index: int) -> None:
        """A clean connection each way still carries an echo."""
        self.liveness += 1
        for direction in ("kernel-server", "kernel-client"):
            end = self.open(index, direction, random.Random(0))
            try:
                ok = end.until(lambda e=end: e.connected or e.ended, HANDSHAKE_TIMEOUT)
                if not ok or end.ended:
                    how = reaction(end.quic) if end.quic else "no answer"
                    self.fail(f"liveness: a clean {direction} handshake failed after {index} "
                              f"connections ({how})")  # fmt: skip
                elif not end.echo(b"echo liveness %d" % index):
                    self.fail(f"liveness: a clean {direction} connection did not echo after "
                              f"{index} connections")  # fmt: skip
            finally:
                end.close()

    def close(self) -> None:
        self.stop.set()
        self.server.close()
        for c in self.clients:
            c.thread.join(10)


def run(
    seed: int,
    iterations: int | None = None,
    seconds: float | None = None,
    topo=None,
    progress: Progress = lambda m: None,
    verbose: bool = False,
    workers: int = 1,
) -> dict:
    """Fuzz until ``iterations`` mutations or ``seconds`` (whichever first); the report.
    ``workers`` > 1: that many processes, each with its own namespaces and the seed
    ``derive(seed, 'worker', i)`` (which reproduces it alone), their reports merged."""
    from quicctl.netns import Topology

    if workers > 1:
        return _run_workers(seed, iterations, seconds, progress, verbose, workers)
    if topo is None:
        with Topology() as t:
            return run(seed, iterations, seconds, t, progress, verbose)
    deadline = Deadline(iterations, seconds)
    mark = f"quicctl fuzz frames: seed {seed} starts"
    kmsg(mark)
    before = {ns: _snmp(ns) for ns in (topo.server, topo.client)}
    progress(f"frames: seed {seed} (connection i uses derive(seed, 'conn', i))")
    r = Run(topo, seed, deadline, progress, verbose)
    start = time.monotonic()
    index = 0
    try:
        while not deadline.done(r.mutations):
            index += 1
            try:
                r.connection(index)
            except Exception as exc:
                r.fail(f"{type(exc).__name__}: {exc}", index)
                raise
            if index % LIVENESS_EVERY == 0:
                r.check_liveness(index)
                progress(
                    f"frames: {r.mutations} mutations, {index} connections, "
                    f"{time.monotonic() - start:.0f} s"
                )
        r.check_liveness(index)
    finally:
        r.close()
    elapsed = time.monotonic() - start
    leaked = _wait_no_conns(topo)
    if leaked:
        r.fail(f"{leaked} connections left in /proc/net/quic/conns after all were closed")
    for line in bad_kernel_lines(mark):
        r.fail(f"kernel log: {line}")
    after = {ns: _snmp(ns) for ns in (topo.server, topo.client)}
    return {
        "fuzzer": "frames",
        "seed": seed,
        "mutations": r.mutations,
        "frames": r.frames,
        "connections": index,
        "directions": dict(r.directions),
        "seconds": round(elapsed, 1),
        "per_second": round(r.mutations / elapsed, 1) if elapsed else 0.0,
        "coverage": {s: dict(sorted(c.items())) for s, c in r.coverage.items()},
        "missing_types": [t for t in ALL_TYPES if not any(r.coverage[s][t] for s in SPACES)],
        "reactions": dict(r.reactions.most_common()),
        "reactions_by_type": {t: dict(c.most_common()) for t, c in sorted(r.by_type.items())},
        "ops": dict(r.ops),
        "samples": r.samples,
        "connection_outcomes": dict(r.outcomes),
        "kernel_server_handshake_errors": dict(r.server.handshake_errors),
        "liveness_checks": r.liveness,
        "snmp": {
            role: {
                k: v - before[ns].get(k, 0)
                for k, v in after[ns].items()
                if v != before[ns].get(k, 0)
            }
            for role, ns in (("server", topo.server), ("client", topo.client))
        },  # fmt: skip
        "leaked_connections": leaked,
        "failures": r.failures,
    }


def _wait_no_conns(topo, timeout: float = 60.0) -> int:
    """Connections still listed after ``timeout`` (closed ones drain for up to 3 PTO)."""
    deadline = time.monotonic() + timeout
    while True:
        left = _conn_count(topo.server) + _conn_count(topo.client)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)


def _run_workers(seed, iterations, seconds, progress, verbose, workers: int) -> dict:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    seeds = [derive(seed, "worker", i) for i in range(workers)]
    share = None if iterations is None else -(-iterations // workers)
    progress(f"frames: {workers} workers, seeds {', '.join(map(str, seeds))}")

    def one(i: int) -> None:
        try:
            tag = f"worker {i}: "
            doc = run(seeds[i], share, seconds, None, lambda m: progress(tag + m), verbose)
        except BaseException as exc:  # reported by the parent
            doc = {"seed": seeds[i], "error": f"{type(exc).__name__}: {exc}"}
        results.put(doc)

    procs = [ctx.Process(target=one, args=(i,), daemon=True) for i in range(workers)]
    for p in procs:
        p.start()
    wait = None if seconds is None else seconds + 600
    docs = []
    for _ in procs:
        try:
            docs.append(results.get(timeout=wait))
        except Exception:  # queue.Empty: a worker hung or died
            break
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
    return merge(seed, seeds, docs)


def merge(seed: int, seeds: list[int], docs: list[dict]) -> dict:
    """One report of several workers': counts added, coverage and reactions merged."""

    def add(a: dict, b: dict) -> dict:
        for k, v in b.items():
            if isinstance(v, dict):
                add(a.setdefault(k, {}), v)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                a[k] = a.get(k, 0) + v
        return a

    out: dict = {"fuzzer": "frames", "seed": seed, "workers": seeds, "failures": []}
    for key in ("coverage", "reactions", "reactions_by_type", "ops", "directions",
                "connection_outcomes", "kernel_server_handshake_errors", "snmp"):  # fmt: skip
        out[key] = {}
    for key in ("mutations", "frames", "connections", "liveness_checks", "leaked_connections"):
        out[key] = 0
    out["samples"] = {}
    out["seconds"] = 0.0
    missing = set(ALL_TYPES)
    for doc in docs:
        if "error" in doc:
            out["failures"].append(f"seed {doc['seed']}: worker failed: {doc['error']}")
            continue
        for key in ("mutations", "frames", "connections", "liveness_checks",
                    "leaked_connections"):  # fmt: skip
            out[key] += doc[key]
        for key in ("coverage", "reactions", "reactions_by_type", "ops", "directions",
                    "connection_outcomes", "kernel_server_handshake_errors", "snmp"):  # fmt: skip
            add(out[key], doc[key])
        for k, v in doc["samples"].items():
            out["samples"].setdefault(k, {**v, "seed": doc["seed"]})
        out["seconds"] = max(out["seconds"], doc["seconds"])
        missing &= set(doc["missing_types"])
        out["failures"] += doc["failures"]
    if len(docs) < len(seeds):
        out["failures"].append(f"seed {seed}: {len(seeds) - len(docs)} workers never reported")
    out["missing_types"] = [t for t in ALL_TYPES if t in missing]
    out["reactions"] = dict(sorted(out["reactions"].items(), key=lambda kv: -kv[1]))
    out["per_second"] = round(out["mutations"] / out["seconds"], 1) if out["seconds"] else 0.0
    return out
