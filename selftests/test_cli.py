"""quicctl's module commands: every user error is ONE clear line, and --help works everywhere.

The errors are provoked by pointing quicctl at simulated kernels (``kmod.SYSTEM`` with tmp
``proc``/``sys``/``lib_modules`` roots, an empty build directory, fake tools), so most tests
run the same on the host and in the VM.  Nothing here loads or unloads the real module: fake
insmod/rmmod/modprobe stand in for the real ones.  Two tests need more: the version mismatch
uses a real quic.ko built for another kernel, and ``status --json`` with the real counters
needs the module loaded (the VM).  Compiling tests are marked ``host`` (the VM is TCG: slow).
"""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import require

from quicctl import kbuild, kmod, paths
from quicctl.cli import main

IN_VM = os.environ.get("QUICCTL_IN_VM") == "1"

SNMP_NAMES = [
    "QuicConnCurrentEstabs", "QuicConnPassiveEstabs", "QuicConnActiveEstabs",
    "QuicPktRcvFastpaths", "QuicPktDecFastpaths", "QuicPktEncFastpaths",
    "QuicPktRcvBacklogs", "QuicPktDecBacklogs", "QuicPktEncBacklogs",
    "QuicPktInvHdrDrop", "QuicPktInvNumDrop", "QuicPktInvFrmDrop",
    "QuicPktRcvDrop", "QuicPktDecDrop", "QuicPktEncDrop",
    "QuicFrmRcvBufDrop", "QuicFrmRetrans", "QuicFrmOutCloses", "QuicFrmInCloses",
    "QuicPktRcvEcnCe", "QuicEcnCongEvents", "QuicEcnFailed",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Helpers


def invoke(args: list[str], env: dict | None = None):
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 always keeps stderr apart
    return runner.invoke(main, args, env=env)


def show(result) -> str:
    return f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def assert_one_error(result, *needles: str) -> str:
    """Exit 1, no traceback, exactly one stderr line `quicctl: ...` containing each needle."""
    assert result.exit_code == 1, show(result)
    assert result.exception is None or isinstance(result.exception, SystemExit), show(result)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, show(result)
    assert lines[0].startswith("quicctl: "), show(result)
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in the error\n{show(result)}"
    return lines[0]


def write_fake_ko(path: Path, **modinfo: str) -> Path:
    """A minimal ELF64 file whose .modinfo section holds ``key=value`` strings, as in a .ko."""
    info = b"".join(f"{k}={v}".encode() + b"\0" for k, v in modinfo.items())
    names = b"\0.modinfo\0.shstrtab\0"
    info_off, names_off = 64, 64 + len(info)
    sh_off = (names_off + len(names) + 7) & ~7
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)  # 64-bit, little endian, version 1
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, sh_off, 0, 64, 0, 0, 64, 3, 2)

    def shdr(name: int, sh_type: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, sh_type, 0, 0, offset, size, 0, 0, 1, 0)

    data = ehdr + info + names
    data += bytes(sh_off - len(data))
    data += shdr(0, 0, 0, 0) + shdr(1, 1, info_off, len(info)) + shdr(10, 3, names_off, len(names))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def fake_tool(path: Path, script: str) -> str:
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


class FakeKernel:
    """A simulated running kernel: tmp proc/sys/lib_modules roots and fake kmod tools."""

    def __init__(self, root: Path, monkeypatch, *, modules: bool = True):
        self.root = root
        self.release = os.uname().release
        self.proc, self.sys, self.lib = root / "proc", root / "sys", root / "lib" / "modules"
        for d in (self.proc, self.sys / "module", self.lib / self.release):
            d.mkdir(parents=True)
        if modules:
            (self.proc / "modules").write_text("")
        (self.lib / self.release / "modules.builtin").write_text("")
        self.system = kmod.System(self.proc, self.sys, self.lib, self.release)
        monkeypatch.setattr(kmod, "SYSTEM", self.system)
        monkeypatch.setattr(kmod, "KMSG", root / "no-kmsg")
        monkeypatch.setattr(os, "geteuid", lambda: 0)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        self.bin = bin_dir
        # Tests that get past the checks must never reach the real module tools.
        for tool in ("INSMOD", "RMMOD", "MODPROBE", "MOUNT"):
            name = tool.lower()
            monkeypatch.setattr(
                kmod,
                tool,
                fake_tool(bin_dir / name, f"echo '{name}: ERROR: fake {name}' >&2; exit 1"),
            )
        self.monkeypatch = monkeypatch

    def module(self, name: str, **files: str) -> Path:
        d = self.sys / "module" / name
        d.mkdir(parents=True, exist_ok=True)
        for key, value in files.items():
            (d / key).write_text(value + "\n")
        return d

    def dependencies_loaded(self) -> None:
        for dep in kmod.DEPENDENCIES:
            self.module(dep, initstate="live", refcnt="1")

    def ko(self, srcversion: str = "0123456789ABCDEF0123456", release: str | None = None) -> Path:
        return write_fake_ko(
            self.root / "ko" / "quic.ko",
            version="0.1.0",
            srcversion=srcversion,
            name="quic",
            vermagic=f"{release or self.release} SMP preempt mod_unload modversions ",
        )

    def tool(self, name: str, script: str) -> None:
        self.monkeypatch.setattr(kmod, name.upper(), fake_tool(self.bin / name, script))


@pytest.fixture
def fake_kernel(tmp_path, monkeypatch) -> FakeKernel:
    return FakeKernel(tmp_path, monkeypatch)


def other_release_module() -> Path:
    """A real quic.ko built for a kernel other than the running one (6.1 on the 6.12 VM)."""
    running = os.uname().release
    build_dir = Path(paths.BUILD_DIR)
    found = sorted(build_dir.glob("6.1.0-*/net/quic/quic.ko"))
    found += sorted(build_dir.glob("*/net/quic/quic.ko"))
    for ko in found:
        if ko.parent.parent.parent.name != running:
            return ko
    pytest.fail(
        f"no quic.ko built for a kernel other than {running} under {build_dir}: the suite's "
        "runner builds build/6.1.0-*/net/quic/quic.ko (quicctl build --kernel 6.1.0-56-amd64)"
    )


# --------------------------------------------------------------------------------------------
# --help


def _commands(group: click.Group, prefix: list[str]):
    for name, cmd in sorted(group.commands.items()):
        yield prefix + [name]
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + [name])


def _leaves(group: click.Group, prefix: list[str]):
    """(path, command) of every command that is not a group."""
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _leaves(cmd, prefix + [name])
        else:
            yield prefix + [name], cmd


def test_help_of_every_command():
    paths_seen = []
    result = invoke(["--help"])
    assert result.exit_code == 0, show(result)
    for name in ("build", "load", "unload", "debug", "dkms", "status"):
        assert name in result.stdout, show(result)
    for path in _commands(main, []):
        result = invoke(path + ["--help"])
        assert result.exit_code == 0, f"quicctl {' '.join(path)} --help\n{show(result)}"
        assert "Usage: " in result.stdout and " ".join(path) in result.stdout, show(result)
        paths_seen.append(" ".join(path))
    assert {"dkms install", "dkms remove", "dkms status"} <= set(paths_seen), paths_seen


# --------------------------------------------------------------------------------------------
# load: one clear line per failed check, in the order they are made


def test_load_not_root(fake_kernel, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert_one_error(invoke(["load"]), "cannot load quic.ko", "run as root", "sudo quicctl load")


def test_load_kernel_without_module_support(tmp_path, monkeypatch):
    FakeKernel(tmp_path, monkeypatch, modules=False)
    line = assert_one_error(
        invoke(["load"]), "cannot load modules", os.uname().release, "CONFIG_MODULES"
    )
    assert "quicctl vm -- quicctl load" in line


def test_load_module_not_built(fake_kernel, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "empty-build")
    release = fake_kernel.release
    assert_one_error(
        invoke(["load"]),
        f"quic.ko for {release} not built",
        f"quicctl build --kernel {release}",
    )


@pytest.mark.parametrize("how", ["--module", "--kernel"])
def test_load_version_mismatch(fake_kernel, monkeypatch, how):
    ko = other_release_module()
    built_for = kbuild.vermagic_release(ko)
    assert built_for != fake_kernel.release
    if how == "--module":
        args = ["load", "--module", str(ko)]
    else:
        monkeypatch.setattr(paths, "BUILD_DIR", ko.parent.parent.parent.parent)
        args = ["load", "--kernel", ko.parent.parent.parent.name]
    assert_one_error(
        invoke(args),
        f"quic.ko was built for {built_for} but the running kernel is {fake_kernel.release}",
        "quicctl build",
    )


def test_load_dependency_missing(fake_kernel):
    fake_kernel.tool(
        "modprobe",
        'echo "modprobe: FATAL: Module $1 not found in directory /lib/modules" >&2; exit 1',
    )
    line = assert_one_error(
        invoke(["load", "--module", str(fake_kernel.ko())]),
        "cannot load quic.ko",
        "udp_tunnel is missing",
        "linux-modules-extra",
    )
    assert "Module udp_tunnel not found" in line


def test_load_insmod_failure_gives_the_kernels_reason(fake_kernel):
    fake_kernel.dependencies_loaded()
    ko = fake_kernel.ko()
    fake_kernel.tool(
        "insmod",
        f'echo "insmod: ERROR: could not insert module {ko}: Invalid module format" >&2; exit 1',
    )
    assert_one_error(
        invoke(["load", "--module", str(ko)]), f"cannot load {ko}", "Invalid module format"
    )


def test_load_same_build_is_a_noop(fake_kernel):
    fake_kernel.dependencies_loaded()
    ko = fake_kernel.ko(srcversion="SAMEBUILD")
    fake_kernel.module("quic", initstate="live", srcversion="SAMEBUILD", refcnt="3")
    result = invoke(["load", "--module", str(ko)])
    assert result.exit_code == 0, show(result)
    assert "already loaded" in result.stdout, show(result)


def test_load_other_build_in_use_is_refused(fake_kernel):
    fake_kernel.dependencies_loaded()
    ko = fake_kernel.ko(srcversion="NEWBUILD")
    fake_kernel.module("quic", initstate="live", srcversion="OLDBUILD", refcnt="2")
    line = assert_one_error(
        invoke(["load", "--module", str(ko)]), "in use by 2 references", "open QUIC sockets"
    )
    assert "OLDBUILD" in line and "NEWBUILD" in line


def test_load_other_build_unused_is_replaced(fake_kernel):
    fake_kernel.dependencies_loaded()
    ko = fake_kernel.ko(srcversion="NEWBUILD")
    quic = fake_kernel.module("quic", initstate="live", srcversion="OLDBUILD", refcnt="0")
    log = fake_kernel.root / "tools.log"
    fake_kernel.tool("rmmod", f'echo "rmmod $1" >>{log}; rm -rf {quic}')
    fake_kernel.tool(
        "insmod",
        f'echo "insmod $1" >>{log}; mkdir -p {quic}; echo live >{quic}/initstate; '
        f"echo NEWBUILD >{quic}/srcversion",
    )
    result = invoke(["load", "--module", str(ko)])
    assert result.exit_code == 0, show(result)
    assert "reloaded" in result.stdout, show(result)
    assert log.read_text().splitlines() == ["rmmod quic", f"insmod {ko}"]


# --------------------------------------------------------------------------------------------
# unload, debug


def test_unload_in_use(fake_kernel):
    fake_kernel.module("quic", initstate="live", srcversion="X", refcnt="3")
    assert_one_error(
        invoke(["unload"]), "cannot unload quic", "in use by 3 references", "open QUIC sockets"
    )


def test_unload_not_loaded_is_a_noop(fake_kernel):
    result = invoke(["unload"])
    assert result.exit_code == 0, show(result)
    assert "not loaded" in result.stdout


def test_debug_needs_the_module(fake_kernel):
    assert_one_error(invoke(["debug", "on"]), "debug on for quic", "not loaded")


def test_debug_on_and_status(fake_kernel):
    fake_kernel.module("quic", initstate="live", srcversion="X", refcnt="0")
    control = fake_kernel.sys / "kernel" / "debug" / "dynamic_debug" / "control"
    control.parent.mkdir(parents=True)
    control.write_text(
        "# filename:lineno [module]function flags format\n"
        'net/quic/socket.c:120 [quic]quic_init_sock =p "init %p\\012"\n'
        'net/quic/udp.c:42 [quic]quic_udp_sock_create =_ "udp [%d] %pISpc\\012"\n'
        'net/ipv4/tcp.c:7 [tcp]tcp_foo =p "x"\n'
    )
    sites = kmod.debug_status()
    assert [(s["file"], s["line"], s["function"], s["enabled"]) for s in sites] == [
        ("net/quic/socket.c", 120, "quic_init_sock", True),
        ("net/quic/udp.c", 42, "quic_udp_sock_create", False),
    ]
    result = invoke(["debug", "status"])
    assert result.exit_code == 0, show(result)
    assert "quic_udp_sock_create" in result.stdout and "1/2 call sites" in result.stdout
    assert "udp [%d] %pISpc" in result.stdout, show(result)  # "[...]" is not rich markup

    result = invoke(["debug", "on"])
    assert result.exit_code == 0, show(result)
    assert control.read_text() == "module quic +p\n"


# --------------------------------------------------------------------------------------------
# build, dkms


def test_build_headers_missing():
    line = assert_one_error(
        invoke(["build", "--kernel", "9.9.9"]),
        "kernel headers for 9.9.9",
        "apt-get install linux-headers-9.9.9",
    )
    for release in kbuild.installed_releases():
        assert release in line


@pytest.mark.parametrize("action", ["install", "remove", "status"])
def test_dkms_not_installed(tmp_path, action):
    empty = tmp_path / "bin"
    empty.mkdir()
    assert_one_error(
        invoke(["dkms", action], env={"PATH": str(empty)}),
        "dkms is not installed",
        "apt-get install dkms",
    )


def _module_tree(root: Path, body: str) -> Path:
    """A kernel/ tree with a one-file quic module (Kbuild + quic.c)."""
    (root / "net" / "quic").mkdir(parents=True)
    (root / "net" / "quic" / "Kbuild").write_text("obj-m := quic.o\n")
    (root / "net" / "quic" / "quic.c").write_text(
        "#include <linux/module.h>\n"
        f"{body}\n"
        "static int __init q_init(void) { return 0; }\n"
        "static void __exit q_exit(void) { }\n"
        "module_init(q_init);\nmodule_exit(q_exit);\n"
        'MODULE_LICENSE("GPL");\nMODULE_DESCRIPTION("quicctl selftest");\n'
    )
    return root


@pytest.fixture
def toy_sources(tmp_path, monkeypatch):
    """Point quicctl at a tmp kernel/ tree and build dir; returns a writer of its quic.c."""
    require("make")
    assert kbuild.installed_releases(), "no kernel headers installed: run scripts/setup"
    src = tmp_path / "kernel"
    monkeypatch.setattr(paths, "KERNEL_SRC", src)
    monkeypatch.setattr(paths, "MODULE_SRC", src / "net" / "quic")
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    return lambda body: _module_tree(src, body)


@pytest.mark.host
def test_build_error_shows_the_compiler_error(toy_sources):
    toy_sources("static int broken(void) { return undeclared_thing; }")
    result = invoke(["build"])
    assert result.exit_code == 1, show(result)
    # Progress lines come first when stderr is not a terminal; the error is one message.
    assert "\nquicctl: build of quic.ko for " in result.stderr, show(result)
    assert "quic.c:2:" in result.stderr and "'undeclared_thing' undeclared" in result.stderr
    assert "build.log" in result.stderr, show(result)


@pytest.mark.host
def test_build_fails_on_w1_warnings_unless_allowed(toy_sources):
    toy_sources("int quic_no_prototype(void) { return 0; }")  # W=1: -Wmissing-prototypes
    result = invoke(["build"])
    assert result.exit_code == 1, show(result)
    assert "-Wmissing-prototypes" in result.stderr, show(result)
    assert "quicctl: quic.ko for " in result.stderr and "--allow-warnings" in result.stderr
    ko = Path(result.stdout.strip())
    assert ko.name == "quic.ko" and ko.is_file(), show(result)
    # Nothing changed: kbuild compiles nothing, yet the warning is still reported.
    result = invoke(["build"])
    assert result.exit_code == 1 and "-Wmissing-prototypes" in result.stderr, show(result)
    result = invoke(["build", "--allow-warnings"])
    assert result.exit_code == 0, show(result)
    assert kbuild.vermagic_release(Path(result.stdout.strip())) == kbuild.resolve_kernel().release


# --------------------------------------------------------------------------------------------
# status


def test_status_json_module_not_loaded(fake_kernel):
    result = invoke(["status", "--json"])
    assert result.exit_code == 0, show(result)
    info = json.loads(result.stdout)
    assert info["loaded"] is False and info["snmp"] == {} and info["module_support"] is True


def test_status_json_kernel_without_module_support(tmp_path, monkeypatch):
    FakeKernel(tmp_path, monkeypatch, modules=False)
    result = invoke(["status", "--json"])
    assert result.exit_code == 0, show(result)
    info = json.loads(result.stdout)
    assert info["loaded"] is False and info["module_support"] is False
    assert invoke(["status"]).exit_code == 0


def test_status_json_parses_the_snmp_file(fake_kernel):
    fake_kernel.module(
        "quic", initstate="live", version="0.1.0", srcversion="ABC", refcnt="4", taint="OE"
    )
    snmp = fake_kernel.proc / "net" / "quic" / "snmp"
    snmp.parent.mkdir(parents=True)
    snmp.write_text("".join(f"{name:<32}\t{i * 7}\n" for i, name in enumerate(SNMP_NAMES)))
    result = invoke(["status", "--json"])
    assert result.exit_code == 0, show(result)
    info = json.loads(result.stdout)
    assert info["loaded"] is True and info["version"] == "0.1.0" and info["refcount"] == 4
    assert list(info["snmp"]) == SNMP_NAMES
    assert info["snmp"]["QuicFrmInCloses"] == 18 * 7
    table = invoke(["status"])
    assert table.exit_code == 0 and "QuicPktInvHdrDrop" in table.stdout, show(table)


def test_status_shows_connections(fake_kernel):
    """/proc/net/quic/cong: one dict per connection in --json, a table row otherwise."""
    fake_kernel.module("quic", initstate="live", version="0.1.0", srcversion="ABC", refcnt="2")
    cong = fake_kernel.proc / "net" / "quic" / "cong"
    cong.parent.mkdir(parents=True)
    header = (
        "SOCK STATE LOCAL_ADDRESS REMOTE_ADDRESS ALGO SRTT MIN_RTT RTTVAR LATEST_RTT CWND "
        "SSTHRESH IN_FLIGHT LOST PTO_COUNT PACING_RATE SPURIOUS UNDONE REORDER"
    ).split()
    row = ["00000000deadbeef", "1", "10.99.0.1:4433", "10.99.0.2:40000", "cubic", "201500",
           "200100", "1500", "202000", "250000", "-1", "120000", "7", "0", "1562500", "2", "1",
           "5"]  # fmt: skip
    cong.write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")
    result = invoke(["status", "--json"])
    assert result.exit_code == 0, show(result)
    (conn,) = json.loads(result.stdout)["connections"]
    assert conn["ALGO"] == "cubic" and conn["SRTT"] == 201500 and conn["SSTHRESH"] == -1
    assert conn["REMOTE_ADDRESS"] == "10.99.0.2:40000" and conn["LOST"] == 7
    assert conn["SPURIOUS"] == 2 and conn["UNDONE"] == 1 and conn["REORDER"] == 5
    table = invoke(["status"])
    assert table.exit_code == 0, show(table)
    assert "cubic" in table.stdout and "201.5" in table.stdout, show(table)
    assert "late" in table.stdout, show(table)
    trailing = [ln for ln in table.stdout.splitlines() if ln != ln.rstrip()]
    assert not trailing, f"lines with trailing spaces: {trailing}"  # rich pads every cell


def test_status_json_real_module(request):
    if not IN_VM:
        pytest.fail("needs quic loaded: runs in the VM (quicctl test)")
    request.getfixturevalue("quic_module")
    result = invoke(["status", "--json"])
    assert result.exit_code == 0, show(result)
    info = json.loads(result.stdout)
    assert info["loaded"] is True, info
    assert list(info["snmp"]) == SNMP_NAMES, info["snmp"]
    assert all(isinstance(v, int) for v in info["snmp"].values())
    assert info["version"] == kbuild.module_version()
    assert info["srcversion"] == Path("/sys/module/quic/srcversion").read_text().strip()


# --------------------------------------------------------------------------------------------
# client and server: errors before any packet is one line, never a traceback (issue 16)


@pytest.mark.host
def test_client_without_the_module_says_so():
    """The host cannot load modules: socket(IPPROTO_QUIC) fails with EPROTONOSUPPORT."""
    assert_one_error(invoke(["client", "127.0.0.1", "4433", "/x", "--insecure"]),
                     "cannot create a QUIC socket", "the quic module is not loaded",
                     "quicctl load", "--userspace")  # fmt: skip


def test_client_bad_address_is_one_line():
    assert_one_error(invoke(["client", "not-an-address.invalid", "4433", "/x", "--insecure"]),
                     "cannot resolve 'not-an-address.invalid'")  # fmt: skip


@pytest.mark.parametrize("cmd", [
    ["client", "127.0.0.1", "99999", "/x", "--insecure"],
    ["server", "127.0.0.1", "99999", "keys/pkey.key", "keys/cert.crt", "--userspace"],
])  # fmt: skip
def test_port_out_of_range_is_a_usage_error(cmd, monkeypatch):
    monkeypatch.chdir(paths.ROOT)
    result = invoke(cmd)
    assert result.exit_code == 2, show(result)
    assert "'PORT': 99999 is not in the range 0<=x<=65535" in result.stderr, show(result)


def test_library_errors_name_the_cause():
    """quicctl.connect() raises QuicctlError, not a bare socket error, for a bad address."""
    from quicctl import connect
    from quicctl.errors import QuicctlError

    with pytest.raises(QuicctlError, match="cannot resolve 'not-an-address.invalid'"):
        connect("not-an-address.invalid", 4433, alpn="h3", insecure=True)
    with pytest.raises(QuicctlError, match="port 70000 is not a UDP port"):
        connect("127.0.0.1", 70000, alpn="h3", insecure=True)


@pytest.mark.host
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_vm_runner_ended_early_kills_its_vm(tmp_path, sig):
    """Ctrl-C or SIGTERM on a command running a VM ends the VM too (vng and QEMU run in their
    own session, out of reach of the terminal's signals)."""
    import signal
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "vm.pid"
    # As from a terminal: a shell without job control starts background commands with SIGINT
    # ignored (POSIX), and CI may run us like that.
    script = (
        "import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from quicctl import vm\n"
        f"vm._stream(['sh', '-c', 'sleep 300 & echo $! > {pidfile}; echo started; wait'], "
        "{'PATH': '/usr/bin:/bin'}, None)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=paths.ROOT,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "started"
    vm_pid = int(pidfile.read_text())
    proc.send_signal(getattr(signal, sig))
    proc.wait(10)
    for _ in range(50):
        try:
            os.kill(vm_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(vm_pid, signal.SIGKILL)
        pytest.fail(f"the VM stand-in (pid {vm_pid}) survived {sig} of its runner")


@pytest.mark.host
def test_demo_wait_for_a_silent_server_times_out():
    """A server that prints nothing no longer blocks the wait for its "listening" line."""
    import subprocess
    import time

    from quicctl.demo import _wait_listening
    from quicctl.errors import QuicctlError

    proc = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        with pytest.raises(QuicctlError, match="did not start listening within 1 s"):
            _wait_listening(proc, "silent", timeout=1)
        assert time.monotonic() - t0 < 5
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("cmd, needle", [
    (["client", "127.0.0.1", "4433", "/x"], "give --cafile FILE"),
    (["server", "127.0.0.1", "4433", "k", "c", "--alpn", ","], "give at least one protocol"),
    (["client", "127.0.0.1", "4433", "/x", "--insecure", "--alpn", "foo"],
     "foo: quicctl speaks h3 and hq-interop only"),
    (["client", "127.0.0.1", "4433", "/x", "--insecure", "--in-kernel", "--alpn", "h3"],
     "--in-kernel speaks hq-interop only"),
])  # fmt: skip
def test_client_server_usage_errors_exit_2(cmd, needle, tmp_path, monkeypatch):
    """Usage errors are click's: exit 2 and the reason, not exit 1."""
    monkeypatch.chdir(tmp_path)
    for name in ("k", "c"):
        (tmp_path / name).write_text("x")
    result = invoke(cmd)
    assert result.exit_code == 2, show(result)
    assert needle in result.stderr, show(result)


@pytest.mark.host
def test_errors_name_the_documented_setup_command():
    """The README's set-up command is `bash scripts/setup`; no message sends users elsewhere."""
    for py in (paths.ROOT / "quicctl").rglob("*.py"):
        assert "make setup" not in py.read_text(), f"{py} says `make setup`"


def test_every_option_has_help():
    """`quicctl X --help` explains every option (vm --cpus had none)."""

    bare = [f"quicctl {' '.join(path)} {p.opts[0]}" for path, cmd in _leaves(main, [])
            for p in cmd.params if isinstance(p, click.Option) and not p.help]  # fmt: skip
    assert not bare, bare


def test_status_names_builds_for_other_kernels(fake_kernel, tmp_path, monkeypatch):
    """Not built for the running kernel but for another (the VM's): status says both."""
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    ko = tmp_path / "build" / "6.12.0-other" / "net" / "quic" / "quic.ko"
    ko.parent.mkdir(parents=True)
    ko.write_bytes(b"")
    result = invoke(["status"])
    assert result.exit_code == 0, show(result)
    text = " ".join(result.stdout.split())
    assert "not built for" in text and "built for 6.12.0-other" in text, show(result)
    assert json.loads(invoke(["status", "--json"]).stdout)["other_builds"] == ["6.12.0-other"]


@pytest.mark.parametrize("cmd", [["bench"], ["fuzz", "frames"], ["fuzz", "syscalls"]])
def test_json_file_checked_before_the_run(cmd):
    """An unwritable --json FILE is a usage error at once, not after the run."""
    result = invoke(cmd + ["--json", "/nonexistent-dir/report.json"])
    assert result.exit_code == 2, show(result)
    assert "cannot create it (/nonexistent-dir is not a writable directory)" in result.stderr


@pytest.mark.parametrize("cmd, needle", [
    (["bench", "--plpmtud", "100"], "the kernel takes 0 or 5000 ms and more"),
    (["bench", "--no-load"], "--no-load applies to --host only"),
    (["bench", "--bytes", "12Q"], "Invalid value for '--bytes': '12Q': give a positive"),
    (["demo", "--size", "12Q"], "Invalid value for '--size': '12Q': give a positive"),
])  # fmt: skip
def test_bench_demo_usage_errors_exit_2(cmd, needle):
    result = invoke(cmd)
    assert result.exit_code == 2, show(result)
    assert needle in result.stderr, show(result)
    assert result.stderr.count("--bytes") <= 1, show(result)  # the option named once


def test_demo_size_takes_units_like_bench(monkeypatch):
    """One SIZE type everywhere: `demo --size 10M` as `bench --bytes 64M`."""
    from quicctl import demo as demolib

    seen = {}
    monkeypatch.setattr(demolib, "run", lambda size, load, echo: seen.setdefault("size", size) * 0)
    result = invoke(["demo", "--size", "10M"])
    assert result.exit_code == 0, show(result)
    assert seen["size"] == 10 << 20


def test_dash_k_means_one_thing():
    """`-k` is pytest's EXPR on `quicctl test`; no other command takes it for --kernel."""

    for path, cmd in _leaves(main, []):
        for p in cmd.params:
            if "-k" in getattr(p, "opts", []):
                assert path == ["test"], f"quicctl {' '.join(path)} takes -k for {p.opts}"


@pytest.mark.host
def test_vm_arguments_stay_off_the_kernel_cmdline(monkeypatch, tmp_path):
    """vng passes --exec on the kernel command line (2048 bytes on x86): a long pytest -k
    expression on the debug kernel overflowed it and the guest never started.  The guest's
    arguments go through a file; the guest reads them back unchanged."""
    import shlex

    from quicctl import guest, vm
    from quicctl.errors import QuicctlError

    long_k = " or ".join(f"test_number_{i}" for i in range(300))  # 4,700 characters
    seen: dict = {}

    def fake_stream(argv, env, timeout):
        exec_arg = argv[argv.index("--exec") + 1]
        seen["exec"] = exec_arg
        seen["args"] = json.loads(Path(shlex.split(exec_arg)[-1]).read_text())
        return 1

    monkeypatch.setattr(vm, "_stream", fake_stream)
    kernel = vm.VmKernel("6.12.0-test", Path("/nonexistent/vmlinuz"), debug=True)
    with pytest.raises(QuicctlError, match="without a result"):
        vm.run(["python3", "-m", "pytest", "-k", long_k], kernel)
    assert len(seen["exec"]) < 300, seen["exec"]
    assert seen["args"][-1] == long_k and "--debug-kernel" in seen["args"]
    assert not list((vm.BUILD_DIR / "vm").glob("*-argv.json")), "the argument file stayed"

    class Parsed(Exception):
        pass

    def parse_args(self, argv):
        raise Parsed(argv)

    monkeypatch.setattr(guest.argparse.ArgumentParser, "parse_args", parse_args)
    argv_file = tmp_path / "argv.json"
    argv_file.write_text(json.dumps(seen["args"]))
    with pytest.raises(Parsed) as got:
        guest.main(["--argv-file", str(argv_file)])
    assert got.value.args[0] == seen["args"]
