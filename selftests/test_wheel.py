"""The installable library (issue 16): the wheel, installed in a fresh venv without the cli
extra, works from outside the source tree with no C compiler reachable.

Builds the wheel from a copy of the tree (setuptools' build/ stays out of ours), installs it
with its dependencies into a venv without system site packages (pip's cache makes that fast;
the network is needed as for scripts/setup), then runs a script there with PATH holding only
the venv: it imports quicctl, compares ffi sizes of ABI structs with the tree's header read
through the preprocessor, checks the error hierarchy, and connects to 127.0.0.1, which this
host (no quic.ko) refuses with EPROTONOSUPPORT: NotLoadedError.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, run

pytestmark = pytest.mark.host

# The structs compared between the installed package and the tree's header.
STRUCTS = [
    "struct quic_config",
    "struct quic_transport_param",
    "struct quic_stream_info",
    "struct quic_connection_close",
    "struct quic_crypto_secret",
    "struct quic_event_option",
    "union quic_event",
]
CONSTANTS = [
    "SOL_QUIC",
    "QUIC_SOCKOPT_CONFIG",
    "MSG_QUIC_STREAM_FIN",
    "QUIC_EVENT_CONNECTION_CLOSE",
]
CLI_ONLY = ["click", "rich", "pyroute2", "virtme_ng"]
TREE = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "quicctl", "kernel", "keys"]

# Runs in the venv, outside the tree, with PATH = the venv's bin only.
CHILD = r"""
import errno, json, pkgutil, shutil, sys, importlib
STRUCTS, CONSTANTS, CLI_ONLY, VENV = json.loads(sys.argv[1])
out = {}
assert not [c for c in ("cc", "gcc", "cpp", "clang") if shutil.which(c)], "a compiler is reachable"

import quicctl
from quicctl import abi, paths
assert quicctl.__file__.startswith(VENV), quicctl.__file__
assert not paths.IN_CHECKOUT
for f in (paths.UAPI_HEADER, paths.MODULE_SRC / "Kbuild", paths.KERNEL_SRC / "dkms.conf",
          paths.KEYS / "ca.crt", paths.KEYS / "cert.crt", paths.KEYS / "pkey.key",
          paths.PACKAGE / "bench" / "datapath.c"):
    assert f.is_file(), f"{f} is not in the installed package"
assert not paths.BUILD_DIR.is_relative_to(paths.PACKAGE.parent), paths.BUILD_DIR

out["sizes"] = {s: abi.ffi.sizeof(s) for s in STRUCTS}
out["constants"] = {c: getattr(abi, c) for c in CONSTANTS}
cfg = abi.from_bytes("quic_config", abi.to_bytes("quic_config", congestion_control_algo=1))
assert cfg["congestion_control_algo"] == 1, cfg

# The error hierarchy.
E = quicctl
for kind in (E.NotLoadedError, E.AddressError, E.HandshakeError, E.PeerClosedError,
             E.QuicTimeoutError, E.QuicSocketError):
    assert issubclass(kind, E.QuicError) and issubclass(kind, E.QuicctlError), kind
assert issubclass(E.NotLoadedError, OSError) and issubclass(E.QuicTimeoutError, TimeoutError)
assert issubclass(E.PeerClosedError, ConnectionError)
from quicctl.tls import TlsError
assert issubclass(TlsError, E.HandshakeError)

def error_of(call):
    try:
        call()
    except quicctl.QuicError as exc:
        return {"type": type(exc).__name__, "errno": exc.errno, "message": str(exc)}
    raise AssertionError(f"{call} raised nothing")

keys = paths.KEYS
out["connect"] = error_of(lambda: quicctl.connect("127.0.0.1", 4433, alpn="h3", insecure=True))
out["server"] = error_of(lambda: quicctl.QuicServer(
    "127.0.0.1", 4433, alpn="h3", certfile=str(keys / "cert.crt"), keyfile=str(keys / "pkey.key")))
out["bad_address"] = error_of(
    lambda: quicctl.connect("not-an-address.invalid", 4433, alpn="h3", insecure=True))
out["bad_port"] = error_of(lambda: quicctl.connect("127.0.0.1", 70000, alpn="h3", insecure=True))

# Every module but the command line imports without the cli extra.
for mod in pkgutil.walk_packages(quicctl.__path__, "quicctl."):
    if not mod.name.startswith("quicctl.cli"):
        importlib.import_module(mod.name)
out["cli_modules_loaded"] = sorted(m for m in CLI_ONLY if m in sys.modules)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding the wheel built from this tree, with its dependencies."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.o", "*.ko", "*.cmd", ".*.cmd")
    for name in TREE:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run([*pip, "wheel", "--no-deps", "-w", str(tmp / "dist"), str(src)])
    (wheel,) = (tmp / "dist").glob("quicctl-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    run([*pip, "--python", str(venv / "bin" / "python"), "install", str(wheel)])
    return wheel


def _venv(wheel: Path) -> Path:
    return wheel.parent.parent / "venv"


def test_wheel_metadata_keeps_the_library_small(installed):
    """The library needs cffi and aioquic; the command line's tooling is the cli extra."""
    with zipfile.ZipFile(installed) as whl:
        meta = whl.read("quicctl-0.1.0.dist-info/METADATA").decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines()
                if line.startswith("Requires-Dist:")]  # fmt: skip
    base = sorted(r.split(">")[0] for r in requires if "extra ==" not in r)
    cli = sorted(r.split(">")[0] for r in requires if 'extra == "cli"' in r)
    assert base == ["aioquic", "cffi"], requires
    assert cli == ["click", "pyroute2", "rich", "virtme-ng"], requires


def test_wheel_works_without_compiler_or_tree(installed, tmp_path):
    from quicctl import abi, paths

    venv = _venv(installed)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    arg = json.dumps([STRUCTS, CONSTANTS, CLI_ONLY, str(venv)])
    r = run([str(venv / "bin" / "python"), "-c", CHILD, arg], cwd=outside, env=env)
    got = json.loads(r.stdout)

    tree = abi.Abi(paths.UAPI_HEADER)  # the tree's header through the preprocessor
    assert got["sizes"] == {s: tree.ffi.sizeof(s) for s in STRUCTS}
    assert got["constants"] == {c: tree.constants[c] for c in CONSTANTS}

    for key in ("connect", "server"):
        err = got[key]
        assert err["type"] == "NotLoadedError", got
        assert err["errno"] == 93, got  # EPROTONOSUPPORT
        assert "the quic module is not loaded" in err["message"], got
        assert "quicctl load" in err["message"] and "--userspace" in err["message"], got
    assert got["bad_address"]["type"] == "AddressError", got
    assert "cannot resolve 'not-an-address.invalid'" in got["bad_address"]["message"], got
    assert got["bad_port"]["type"] == "AddressError", got
    assert "port 70000 is not a UDP port" in got["bad_port"]["message"], got
    assert got["cli_modules_loaded"] == [], got


def test_command_without_cli_extra_says_how(installed, tmp_path):
    """`quicctl` without the cli extra: one line naming the extra, exit 1, no traceback."""
    venv = _venv(installed)
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    r = subprocess.run([str(venv / "bin" / "quicctl"), "status"], capture_output=True,
                       text=True, cwd=tmp_path, env=env)  # fmt: skip
    assert r.returncode == 1, r
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "the command line needs the cli extra" in r.stderr, r.stderr
    assert "pip install 'quicctl[cli]'" in r.stderr, r.stderr


def test_selftests_need_a_checkout(monkeypatch, tmp_path):
    """`quicctl test` from an install (no selftests/): one line saying a checkout is needed."""
    from quicctl import testrun
    from quicctl.errors import QuicctlError

    monkeypatch.setattr(testrun, "SELFTESTS", tmp_path / "selftests")
    with pytest.raises(QuicctlError, match="an installed quicctl has no tests"):
        testrun.run(host_only=True)
