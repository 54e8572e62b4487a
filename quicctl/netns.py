"""Two hosts on one machine: network namespaces joined by a veth pair (through pyroute2).

Used by the demo, the benchmarks and the selftests.  Names are unique per call and everything
is removed again in reverse order (``with Topology() as topo``).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass, field

from quicctl.errors import QuicctlError

V4 = ("10.99.0.1", "10.99.0.2", 24)
V6 = ("fd00:99::1", "fd00:99::2", 64)


@dataclass
class Topology:
    """``server`` and ``client`` namespaces, ``veth`` between them, v4 and v6 addresses."""

    mtu: int = 1500
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    server: str = ""
    client: str = ""
    server_v4: str = V4[0]
    client_v4: str = V4[1]
    server_v6: str = V6[0]
    client_v6: str = V6[1]
    _wire_like: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.server = f"qsrv{self.tag}"
        self.client = f"qcli{self.tag}"
        self.dev_server = f"qs{self.tag}"
        self.dev_client = f"qc{self.tag}"

    def __enter__(self) -> Topology:
        from pyroute2 import IPRoute, NetNS, config, netns

        # pyroute2 creates namespaces from a helper process and gives it 2 s to answer: far too
        # little in a loaded TCG guest, where Python runs ~14x slower.
        config.default_communicate_timeout = max(config.default_communicate_timeout, 120)

        if os.geteuid() != 0:
            raise QuicctlError("network namespaces need root")
        try:
            netns.create(self.server)
            netns.create(self.client)
            with IPRoute() as ipr:
                ipr.link("add", ifname=self.dev_server, kind="veth", peer=self.dev_client)
                for dev, ns in ((self.dev_server, self.server), (self.dev_client, self.client)):
                    idx = ipr.link_lookup(ifname=dev)[0]
                    ipr.link("set", index=idx, net_ns_fd=ns)
            for ns, dev, v4, v6 in (
                (self.server, self.dev_server, self.server_v4, self.server_v6),
                (self.client, self.dev_client, self.client_v4, self.client_v6),
            ):
                with NetNS(ns) as nsr:
                    lo = nsr.link_lookup(ifname="lo")[0]
                    nsr.link("set", index=lo, state="up")
                    idx = nsr.link_lookup(ifname=dev)[0]
                    nsr.link("set", index=idx, mtu=self.mtu)
                    nsr.addr("add", index=idx, address=v4, prefixlen=V4[2])
                    nsr.addr("add", index=idx, address=v6, prefixlen=V6[2], flags=0x80)
                    nsr.link("set", index=idx, state="up")
        except Exception as exc:
            self.__exit__()
            raise QuicctlError(f"cannot set up the test network: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        from pyroute2 import netns

        for ns in (self.client, self.server):
            try:
                netns.remove(ns)
            except OSError:
                pass

    def argv(self, ns: str, cmd: list[str]) -> list[str]:
        """``cmd`` run inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *cmd]

    def run(self, ns: str, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(ns, cmd), **kw)

    def popen(self, ns: str, cmd: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self.argv(ns, cmd), **kw)

    def dev(self, ns: str) -> str:
        return self.dev_server if ns == self.server else self.dev_client

    def clear_qdisc(self, ns: str) -> None:
        self.run(ns, ["tc", "qdisc", "del", "dev", self.dev(ns), "root"], capture_output=True)
        if ns in self._wire_like:
            self._segmentation(ns, "on")
            self._wire_like.discard(ns)

    def wire_like(self, ns: str) -> None:
        """Datagrams leave this namespace's veth end one skb each, as on a wire, so that a qdisc
        there (netem, tbf) loses, delays or corrupts each one alone: quic.ko sends UDP GSO
        batches only through a device with tx-udp-segmentation or gso on.  Undone by
        :meth:`clear_qdisc`."""
        if ns not in self._wire_like:
            self._segmentation(ns, "off")
            self._wire_like.add(ns)

    def _segmentation(self, ns: str, state: str) -> None:
        dev = self.dev(ns)
        r = self.run(ns, ["ethtool", "-K", dev, "gso", state, "tx-udp-segmentation", state],
                     capture_output=True, text=True)  # fmt: skip
        if r.returncode:
            raise QuicctlError(
                f"ethtool -K {dev} gso/tx-udp-segmentation {state} failed: {r.stderr.strip()}"
            )

    def netem(self, ns: str, spec: str) -> None:
        """tc netem on this namespace's veth end, e.g. ``"loss 10% delay 30ms"``; the datagrams
        go through it one by one (:meth:`wire_like`)."""
        dev = self.dev_server if ns == self.server else self.dev_client
        self.wire_like(ns)
        r = self.run(ns, ["tc", "qdisc", "replace", "dev", dev, "root", "netem", *spec.split()],
                     capture_output=True, text=True)  # fmt: skip
        if r.returncode:
            raise QuicctlError(f"tc netem {spec!r} on {dev} failed: {r.stderr.strip()}")


class enter:  # noqa: N801 - used as a context manager, like open()
    """Move the calling thread into namespace ``name`` (setns(2)); back again on exit.

    Sockets created inside stay in that namespace.  Only the calling thread moves, so a server
    thread and a client thread of one process can live in two namespaces.
    """

    def __init__(self, name: str):
        self.name = name
        self._orig: int | None = None

    def __enter__(self) -> enter:
        self._orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._orig is not None:
            try:
                _setns(self._orig)
            finally:
                os.close(self._orig)
                self._orig = None


def _setns(fd: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")
