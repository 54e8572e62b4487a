"""quic.ko as a module: load/unload, autoload, socket families/types, refcount, procfs."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import modinfo_field, module_loaded, run, snmp, unload_module

IPPROTO_QUIC = 261
FAMILIES = [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
TYPES = [socket.SOCK_DGRAM, socket.SOCK_STREAM]

SNMP_NAMES = [
    "QuicConnCurrentEstabs", "QuicConnPassiveEstabs", "QuicConnActiveEstabs",
    "QuicPktRcvFastpaths", "QuicPktDecFastpaths", "QuicPktEncFastpaths",
    "QuicPktRcvBacklogs", "QuicPktDecBacklogs", "QuicPktEncBacklogs",
    "QuicPktInvHdrDrop", "QuicPktInvNumDrop", "QuicPktInvFrmDrop",
    "QuicPktRcvDrop", "QuicPktDecDrop", "QuicPktEncDrop",
    "QuicFrmRcvBufDrop", "QuicFrmRetrans", "QuicFrmOutCloses", "QuicFrmInCloses",
    "QuicPktRcvEcnCe", "QuicEcnCongEvents", "QuicEcnFailed",
]  # fmt: skip


def slab_quic_objects() -> int:
    """Live objects in the module's slab caches (0 once everything is freed)."""
    total = 0
    for line in Path("/proc/slabinfo").read_text().splitlines()[2:]:
        fields = line.split()
        if fields[0].lower().startswith("quic"):
            total += int(fields[1])
    return total


def test_load_unload_20_times(dev_module_installed):
    from quicctl import kmod

    unload_module()
    for i in range(20):
        kmod.load(dev_module_installed)
        assert module_loaded(), f"iteration {i}: not loaded"
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, IPPROTO_QUIC) as s:
            s.bind(("::1", 0))
            assert s.getsockname()[1] != 0
        assert Path("/proc/net/quic/snmp").exists()
        kmod.unload(wait=20)
        assert not module_loaded(), f"iteration {i}: still loaded"
        assert not Path("/proc/net/quic").exists(), "procfs left behind after unload"
    # Idempotent both ways.
    kmod.unload()
    kmod.load(dev_module_installed)
    kmod.load(dev_module_installed)
    assert module_loaded()


def test_module_metadata(dev_module_installed):
    from quicctl import kbuild

    ko = dev_module_installed
    aliases = modinfo_field(ko, "alias").split()
    assert "net-pf-2-proto-261" in aliases and "net-pf-10-proto-261" in aliases
    assert modinfo_field(ko, "license") == "GPL"
    assert modinfo_field(ko, "description") == "Support for the QUIC protocol (RFC9000)"
    assert modinfo_field(ko, "version") == kbuild.module_version()
    # Where udp_tunnel is a module (Debian's kernels), quic.ko depends on both tunnel modules;
    # on the debug kernel they are built in and there is nothing to depend on.
    moddir = Path("/lib/modules") / os.uname().release / "kernel" / "net"
    if list(moddir.glob("ipv4/udp_tunnel.ko*")):
        deps = modinfo_field(ko, "depends").split(",")
        assert {"udp_tunnel", "ip6_udp_tunnel"} <= set(deps), deps


def test_autoload_by_socket(dev_module_installed):
    unload_module()
    assert not module_loaded()
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, IPPROTO_QUIC)
    s.close()
    assert module_loaded(), "socket(AF_INET6, SOCK_DGRAM, 261) did not autoload quic"
    want = modinfo_field(dev_module_installed, "srcversion")
    assert Path("/sys/module/quic/srcversion").read_text().strip() == want


@pytest.mark.parametrize("family,addr", FAMILIES, ids=["inet", "inet6"])
@pytest.mark.parametrize("stype", TYPES, ids=["dgram", "stream"])
def test_socket_family_type(quic_module, family, addr, stype):
    with socket.socket(family, stype, IPPROTO_QUIC) as s:
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == IPPROTO_QUIC
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == family
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == stype
        s.bind((addr, 0))
        name = s.getsockname()
        assert name[0] == addr and name[1] > 0


def test_unload_refused_while_socket_open(quic_module):
    from quicctl import kmod
    from quicctl.errors import QuicctlError

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    try:
        assert int(Path("/sys/module/quic/refcnt").read_text()) >= 1
        with pytest.raises(QuicctlError, match="in use"):
            kmod.unload()
        r = run(["rmmod", "quic"], check=False)
        assert r.returncode != 0 and "in use" in r.stderr
        assert module_loaded()
    finally:
        s.close()
    kmod.unload(wait=20)
    assert not module_loaded()


def test_bind_shares_port_and_clashes_with_udp(quic_module):
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        b.bind(("127.0.0.1", port))  # QUIC sockets share the UDP tunnel socket
        assert b.getsockname() == ("127.0.0.1", port)
        with pytest.raises(OSError) as e:
            u.bind(("127.0.0.1", port))
        assert e.value.errno == errno.EADDRINUSE
        with pytest.raises(OSError) as e:
            a.bind(("127.0.0.1", 0))  # already bound
        assert e.value.errno == errno.EINVAL
    finally:
        for s in (a, b, u):
            s.close()


def test_snmp_format_and_order(quic_module):
    lines = Path("/proc/net/quic/snmp").read_text().splitlines()
    assert [ln.split("\t")[0].rstrip() for ln in lines] == SNMP_NAMES
    for ln in lines:
        name, tab, value = ln.partition("\t")
        assert tab and len(name) == 32 and value.isdigit(), repr(ln)


def test_snmp_per_netns(quic_module):
    ns = "quicsnmp"
    run(["ip", "netns", "add", ns])
    try:
        out = run(["ip", "netns", "exec", ns, "cat", "/proc/net/quic/snmp"]).stdout
        assert [ln.split("\t")[0].rstrip() for ln in out.splitlines()] == SNMP_NAMES
        # A garbage datagram in the netns is counted there, not in the initial netns.
        before = snmp()
        code = (
            "import socket\n"
            "q=socket.socket(2,2,261); q.bind(('127.0.0.1',0)); p=q.getsockname()[1]\n"
            "u=socket.socket(2,2)\n"
            "u.sendto(b'\\x00', ('127.0.0.1',p)); u.sendto(b'', ('127.0.0.1',p))\n"
            "import time; time.sleep(0.5)\n"
            "print(open('/proc/net/quic/snmp').read())\n"
        )
        run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        out = run(["ip", "netns", "exec", ns, "python3", "-c", code]).stdout
        counters = {
            ln.split("\t")[0].rstrip(): int(ln.split("\t")[1])
            for ln in out.splitlines()
            if "\t" in ln
        }
        drops = counters["QuicPktInvHdrDrop"] + counters["QuicPktRcvDrop"]
        assert drops >= 2, counters
        after = snmp()
        assert after["QuicPktInvHdrDrop"] == before["QuicPktInvHdrDrop"]
        assert after["QuicPktRcvDrop"] == before["QuicPktRcvDrop"]
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_proc_conns_and_eps_headers(quic_module):
    conns = Path("/proc/net/quic/conns").read_text().splitlines()
    eps = Path("/proc/net/quic/eps").read_text().splitlines()
    assert (
        conns[0].split()
        == (
            "SOCK STATE LOCAL_ADDRESS REMOTE_ADDRESS UDP_ADDRESS WINDOW MSS IN_FLIGHT "
            "TX_QUEUE RX_QUEUE SNDBUF RCVBUF UID INODE"
        ).split()
    )
    assert eps[0].split() == "SOCK STATE LOCAL_ADDRESS UDP_ADDRESS UID INODE".split()


def test_dynamic_debug_on_real_module(quic_module):
    """`quicctl debug on` enables the module's pr_debug sites; their output reaches dmesg."""
    from quicctl import guest, kmod

    try:
        n = kmod.debug(True)
        sites = kmod.debug_status()
        assert n > 0 and sites and all(s["enabled"] for s in sites), sites
        mark = "selftest: dynamic debug probe"
        guest.kmsg(mark)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC) as s:
            s.bind(("127.0.0.1", 0))
        assert any("quic" in line for line in guest.dmesg_since(mark)), "no pr_debug output"
    finally:
        kmod.debug(False)
    assert not any(s["enabled"] for s in kmod.debug_status())
