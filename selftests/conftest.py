"""Fixtures shared by the selftests.

Two phases (see quicctl/testrun.py): tests marked `host` run on the build host before the VM
boots; all others run as root inside the VM (QUICCTL_IN_VM=1), where the session fixture makes
the freshly built quic.ko the one that `modprobe`/socket autoload find, and loads it.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

IN_VM = os.environ.get("QUICCTL_IN_VM") == "1"
# `quicctl test --debug-kernel`: KASAN and friends under TCG run far slower; bulk transfers
# shrink (scaled()), the code paths they cover stay the same.
DEBUG_KERNEL = os.environ.get("QUICCTL_DEBUG_KERNEL") == "1"
ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "host: runs on the build host, before the VM phase")
    config.addinivalue_line(
        "markers",
        "packaged_kernel: needs Debian's packaged kernel (/lib/modules, DKMS, or "
        "CONFIG_INET_DIAG for quic_diag.ko); deselected on the debug kernel",
    )
    config.addinivalue_line(
        "markers",
        "debug_kernel: needs the debug kernel (KUnit); run by `quicctl test --debug-kernel`",
    )
    config.addinivalue_line(
        "markers",
        "canary: makes the debug kernel report (KASAN, lockdep) on purpose; always selected by "
        "`quicctl test --debug-kernel`, run last (a report turns lockdep off for the boot)",
    )


def pytest_collection_modifyitems(config, items):
    # A lockdep report, or the taint of a KASAN report, turns lockdep off until the next boot:
    # the canary goes after every test it would otherwise leave unchecked.
    items.sort(key=lambda item: item.get_closest_marker("canary") is not None)


@pytest.fixture(autouse=True)
def _dmesg_clean(request):
    """In the VM: a test fails if the kernel logged a BUG/WARNING/Oops/... while it ran (the
    scan of quicctl.guest, which passes over the reports the canary test fired and caught)."""
    if not IN_VM:
        yield
        return
    from quicctl import guest

    mark = f"selftest start: {request.node.nodeid}"
    guest.kmsg(mark)
    yield
    bad = guest.findings(guest.dmesg_since(mark))
    assert not bad, "kernel log during the test:\n" + "\n".join(bad)


def run(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a command; on failure show it with its output (STYLE.md item 19)."""
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and r.returncode:
        raise AssertionError(
            f"command failed ({r.returncode}): {' '.join(argv)}\n"
            f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        )
    return r


def scaled(nbytes: int) -> int:
    """A bulk transfer size: as given on Debian's kernel, a tenth on the debug kernel."""
    return max(nbytes // 10, 256 * 1024) if DEBUG_KERNEL else nbytes


def require(*tools: str) -> None:
    """Fail (not skip) when a tool the suite needs is missing: scripts/setup installs them."""
    import shutil

    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/setup")


def target_release() -> str:
    """The kernel release the VM phase boots (set by `quicctl test` for both phases)."""
    rel = os.environ.get("QUICCTL_TARGET_RELEASE")
    if not rel:
        pytest.fail("QUICCTL_TARGET_RELEASE is not set: run the suite with `quicctl test`")
    return rel


def host_phase_state(path: Path, step: str) -> dict:
    """What a host-phase test left in ``path`` (JSON) for its VM half, on the same kernel."""
    import json

    if not path.exists():
        pytest.fail(f"{path} missing: the host phase ({step}) did not run or failed")
    state = json.loads(path.read_text())
    assert state["release"] == kernel_release()
    return state


def kernel_release() -> str:
    return os.uname().release


def dev_module() -> Path:
    """The quic.ko under test (built by `quicctl test` for the kernel being tested)."""
    env = os.environ.get("QUICCTL_MODULE")
    ko = Path(env) if env else ROOT / "build" / kernel_release() / "net" / "quic" / "quic.ko"
    if not ko.exists():
        pytest.fail(f"{ko} is missing: run the suite with `quicctl test` (it builds the module)")
    return ko


def modinfo_field(ko: Path | str, name: str) -> str:
    return run(["modinfo", "-F", name, str(ko)]).stdout.strip()


def install_for_autoload(ko: Path, prefer: str = "extra") -> None:
    """Make `modprobe quic` (and socket autoload) pick `ko`, or with `prefer="updates"` the
    DKMS-installed module that the host's own module index points at.

    The index is made on the host (`quicctl vm` runs depmod there: under TCG it takes minutes)
    and copied over the guest's throwaway /lib overlay, so nothing changes on the host.
    """
    from quicctl import guest

    if prefer == "updates":
        guest.restore_modules()
        return
    prepared = os.environ.get("QUICCTL_DEPMOD_DIR")
    if not prepared:
        pytest.fail("QUICCTL_DEPMOD_DIR is not set: run the suite with `quicctl test`")
    guest.install_modules(prepared, ko)


def module_loaded() -> bool:
    return Path("/sys/module/quic").exists()


def unload_module() -> None:
    """Unload quic once earlier tests' closed connections have finished draining."""
    from quicctl import kmod

    kmod.unload(wait=20)


@pytest.fixture(scope="session")
def dev_module_installed() -> Path:
    """Session: the dev build is what modprobe/autoload find."""
    ko = dev_module()
    install_for_autoload(ko)
    return ko


@pytest.fixture
def quic_module(dev_module_installed) -> Path:
    """The dev build is loaded (through quicctl, the way a user loads it)."""
    from quicctl import kmod

    kmod.load(dev_module_installed)
    assert module_loaded()
    return dev_module_installed


def snmp(netns_pid: int | None = None, ns: str | None = None) -> dict[str, int]:
    """/proc/net/quic/snmp of this process, of process ``netns_pid``'s namespace, or of the
    named namespace ``ns``."""
    path = Path(f"/proc/{netns_pid}/net/quic/snmp") if netns_pid else Path("/proc/net/quic/snmp")
    if ns is not None:
        from quicctl.netns import enter

        with enter(ns):  # /proc/thread-self/net follows this thread's namespace
            text = Path("/proc/thread-self/net/quic/snmp").read_text()
    else:
        text = path.read_text()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition("\t")
        out[name.strip()] = int(value)
    return out


def nft(topo, ns: str, script: str = "", *args: str) -> str:
    """Run nft in namespace ``ns``: ``script`` on its stdin, or the command ``args``; its output.
    A rule nft refuses fails the test with nft's message and the script."""
    r = topo.run(ns, ["nft", *(args or ("-f", "-"))], input=script,
                 capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, f"nft {' '.join(args)} in {ns}: {r.stderr.strip()}\n{script}"
    return r.stdout


def nft_counter(topo, ns: str, family: str, table: str, name: str) -> int:
    """Packets counted so far by the named nftables counter ``name`` of ``family table``."""
    said = nft(topo, ns, "", "list", "counter", family, table, name)
    m = re.search(r"packets (\d+)", said)
    assert m, f"nft counter {family} {table} {name} in {ns}: {said}"
    return int(m[1])


@pytest.fixture(scope="session")
def topo(dev_module_installed):
    """Two namespaces (server, client) joined by a veth pair, v4 and v6 (quicctl.netns)."""
    from quicctl.netns import Topology

    with Topology() as t:
        yield t


@pytest.fixture
def clean_path(topo):
    """No netem on the veth pair before and after the test."""
    for ns in (topo.server, topo.client):
        topo.clear_qdisc(ns)
    yield topo
    for ns in (topo.server, topo.client):
        topo.clear_qdisc(ns)


SERVER_NAME = "server.quic.test"  # in keys/cert.crt


def kernel_connect(topo, addr: str, port: int, alpn="hq-interop", **kw):
    """A quic.ko client connection from the client namespace, verified against keys/ca.crt
    (``kw`` goes to quicctl.connect; the handshake may take 120 s in the slow guest)."""
    from quicctl.connection import connect
    from quicctl.netns import enter
    from quicctl.paths import KEYS

    kw.setdefault("timeout", 120)
    with enter(topo.client):
        return connect(
            addr, port, alpn=alpn, cafile=str(KEYS / "ca.crt"), server_name=SERVER_NAME, **kw
        )


def kernel_listener(topo, host: str = "::", **kw):
    """A quicctl.QuicServer over quic.ko in the server namespace (test keys, any port)."""
    from quicctl.connection import QuicServer
    from quicctl.netns import enter
    from quicctl.paths import KEYS

    kw.setdefault("alpn", "hq-interop")
    with enter(topo.server):
        return QuicServer(
            host, 0, certfile=str(KEYS / "cert.crt"), keyfile=str(KEYS / "pkey.key"), **kw
        )


class KernelHqServer:
    """quicctl's hq-interop server over quic.ko, in a thread in the server namespace.
    Keywords go to QuicServer (ciphers, transport_params, alpn); ``handshake_timeout`` bounds
    each connection's handshake on the server side."""

    def __init__(self, topo, root: Path, handshake_timeout: float = 30.0, **kw):
        from quicctl.hq import HqServer

        self.srv = kernel_listener(topo, **kw)
        self.port = self.srv.getsockname()[1]
        self.log: list[str] = []
        self.hq = HqServer(self.srv, root, log=self.log.append, handshake_timeout=handshake_timeout)
        self.thread = threading.Thread(target=self.hq.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.hq.stop()
        self.thread.join(10)


def hq_server(topo, kind: str, root: Path, **kernel_kw):
    """An hq-interop server in the server namespace with ``.port``, ``.log`` (a line per failed
    connection or request) and ``.close()``: quic.ko ("kernel": a KernelHqServer, keywords go
    to it) or aioquic ("aioquic": quicctl.userspace.ServerThread, with its own limits, e.g.
    128 streams)."""
    if kind == "kernel":
        return KernelHqServer(topo, root, **kernel_kw)
    from quicctl import userspace
    from quicctl.netns import enter
    from quicctl.paths import KEYS

    log: list[str] = []
    with enter(topo.server):
        srv = userspace.ServerThread(
            "0.0.0.0", 0, root=root, certfile=str(KEYS / "cert.crt"),
            keyfile=str(KEYS / "pkey.key"), log=log.append,
        )  # fmt: skip
    srv.log = log  # type: ignore[attr-defined]
    return srv
