"""quic-dkms .deb (`quicctl package deb`): its contents on the host; installed with dpkg on the
host, DKMS builds quic.ko for the target kernel; in the VM `modprobe quic` and socket autoload
load that build; `dpkg -r` takes module and DKMS entry away.

This file runs after test_dkms.py (file order), in both phases: the host test here removes
test_dkms's `quicctl dkms install` registration and leaves the package installed, so the VM
phase finds the package's DKMS build in updates/dkms (test_dkms's VM test then loads that
build of the same sources: same path and srcversion).  test_dkms's host test removes the
package first, as `quicctl dkms install` refuses to work over it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    host_phase_state,
    install_for_autoload,
    module_loaded,
    require,
    run,
    target_release,
    unload_module,
)

STATE = ROOT / "build" / "deb-test.json"
IPPROTO_QUIC = 261


def _quicctl(*args: str, env: dict | None = None, check: bool = True):
    argv = [sys.executable, "-c", "from quicctl.cli import main; main(prog_name='quicctl')"]
    return run([*argv, *args], check=check, cwd=ROOT, env=env)


def _build(out: Path) -> Path:
    res = _quicctl("package", "deb", "--output", str(out))
    deb = Path(res.stdout.strip())
    assert deb.is_file(), res.stdout
    return deb


def _kernel_sources() -> list[str]:
    """Every file under kernel/ that git tracks: what the module build reads."""
    out = run(["git", "-C", str(ROOT), "ls-files", "kernel"]).stdout.split()
    assert "kernel/dkms.conf" in out, out
    return sorted(f.removeprefix("kernel/") for f in out)


def _listing(deb: Path) -> list[str]:
    lines = run(["dpkg-deb", "-c", str(deb)]).stdout.splitlines()
    return sorted(line.split(None, 5)[5].removeprefix("./") for line in lines)


@pytest.mark.host
def test_deb_contents(tmp_path):
    from quicctl import kbuild

    require("dpkg-deb", "git")
    version = kbuild.module_version()
    deb = _build(tmp_path)
    assert deb.name == f"quic-dkms_{version}_all.deb"
    field = {
        k: run(["dpkg-deb", "-f", str(deb), k]).stdout.strip()
        for k in ("Package", "Version", "Architecture", "Depends", "Section", "Priority",
                  "Maintainer", "Description")
    }  # fmt: skip
    assert field["Package"] == "quic-dkms"
    assert field["Version"] == version
    assert field["Architecture"] == "all"
    assert field["Depends"] == "dkms (>= 3)"
    assert (field["Section"], field["Priority"]) == ("kernel", "optional")
    assert "@" in field["Maintainer"] and field["Maintainer"].endswith(">")
    assert "DKMS" in field["Description"] and len(field["Description"].splitlines()) > 5

    files = _listing(deb)
    top = f"usr/src/quic-{version}/"
    shipped = sorted(
        f.removeprefix(top) for f in files if f.startswith(top) and not f.endswith("/")
    )
    assert shipped == _kernel_sources()
    assert f"{top}dkms.conf" in files
    assert "usr/share/doc/quic-dkms/copyright" in files
    assert "usr/share/doc/quic-dkms/changelog.gz" in files
    for page in sorted((ROOT / "man").glob("*.[78]")):
        assert f"usr/share/man/man{page.suffix[1:]}/{page.name}.gz" in files

    ctl = tmp_path / "control"
    run(["dpkg-deb", "-e", str(deb), str(ctl)])
    for script in ("postinst", "prerm"):
        path = ctl / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        run(["sh", "-n", str(path)])
        assert f"VERSION={version}\n" in path.read_text()
    # The packaged dkms.conf is the checkout's.
    data = tmp_path / "data"
    run(["dpkg-deb", "-x", str(deb), str(data)])
    conf = data / top / "dkms.conf"
    assert conf.read_bytes() == (ROOT / "kernel" / "dkms.conf").read_bytes()

    require("lintian")
    lint = run(["lintian", "--no-tag-display-limit", str(deb)], check=False)
    errors = [ln for ln in lint.stdout.splitlines() if ln.startswith("E:")]
    assert lint.returncode == 0 and not errors, lint.stdout + lint.stderr


@pytest.mark.host
def test_deb_reproducible(tmp_path):
    require("dpkg-deb")
    one = _build(tmp_path / "one")
    two = _build(tmp_path / "two")
    assert _listing(one) == _listing(two)
    assert one.read_bytes() == two.read_bytes(), "two builds of one tree differ"


@pytest.mark.host
def test_deb_man_pages(tmp_path, monkeypatch):
    """man/*.7 and man/*.8 go to /usr/share/man, gzipped; no man/ directory, no man pages."""
    import gzip

    from quicctl import deb as deb_mod

    require("dpkg-deb")
    man = tmp_path / "man"
    man.mkdir()
    (man / "quic.7").write_text(".TH QUIC 7\n.SH NAME\nquic \\- QUIC sockets\n")
    (man / "quicctl.8").write_text(".TH QUICCTL 8\n.SH NAME\nquicctl \\- QUIC tool\n")
    (man / "notes.txt").write_text("not a man page\n")
    monkeypatch.setattr(deb_mod, "MAN_DIR", man)
    deb = deb_mod.build(tmp_path / "with")
    files = _listing(deb)
    pages = [f for f in files if f.startswith("usr/share/man/") and not f.endswith("/")]
    assert pages == ["usr/share/man/man7/quic.7.gz", "usr/share/man/man8/quicctl.8.gz"]
    data = tmp_path / "data"
    run(["dpkg-deb", "-x", str(deb), str(data)])
    got = gzip.decompress((data / "usr/share/man/man7/quic.7.gz").read_bytes())
    assert got == (man / "quic.7").read_bytes()

    monkeypatch.setattr(deb_mod, "MAN_DIR", tmp_path / "absent")
    files = _listing(deb_mod.build(tmp_path / "without"))
    assert not [f for f in files if f.startswith("usr/share/man")]


@pytest.mark.host
def test_deb_cli_errors(tmp_path):
    # No dpkg-deb on PATH: one line naming the package and the cause, no traceback.
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    res = _quicctl("package", "deb", "--output", str(tmp_path), env=env, check=False)
    assert res.returncode == 1, res
    assert res.stderr == "quicctl: cannot build quic-dkms: dpkg-deb is not installed " \
                         "(apt-get install dpkg)\n"  # fmt: skip
    # An output directory that cannot be made.
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = _quicctl("package", "deb", "--output", str(blocker / "sub"), check=False)
    assert res.returncode in (1, 2), res
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and str(blocker) in res.stderr, res.stderr
    assert len([ln for ln in lines if ln.strip()]) <= 3, res.stderr
    res = _quicctl("package", "deb", "--bogus", check=False)
    assert res.returncode == 2


def _dkms_status(release: str) -> str:
    return run(["dkms", "status", "quic", "-k", release]).stdout


def _installed_ko(release: str) -> Path:
    found = sorted(Path(f"/lib/modules/{release}/updates/dkms").glob("quic.ko*"))
    assert found, f"no quic.ko under /lib/modules/{release}/updates/dkms"
    return found[0]


def _clean_slate() -> None:
    """No quic-dkms package and no quic in DKMS (test_dkms's `quicctl dkms install`)."""
    from quicctl import dkms

    if dkms.deb_installed():
        run(["dpkg", "-r", "quic-dkms"])
    if dkms.status():
        dkms.remove()


def _assert_gone(release: str, version: str) -> None:
    from quicctl import dkms

    assert dkms.deb_installed() is None
    assert not _dkms_status(release).strip()
    assert not dkms.status()
    assert not list(Path(f"/lib/modules/{release}/updates/dkms").glob("quic*.ko*"))
    assert not Path(f"/usr/src/quic-{version}").exists()
    assert not Path(f"/var/lib/dkms/quic/{version}").exists()


@pytest.mark.host
@pytest.mark.packaged_kernel
@pytest.mark.timeout(2400)  # three installs, each a DKMS build for every kernel with headers
def test_deb_install_remove_on_host(tmp_path):
    from quicctl import dkms, kbuild

    require("dpkg", "dkms", "dpkg-deb")
    release = target_release()
    assert Path(f"/lib/modules/{release}/build/include").exists(), (
        f"no headers for {release}: run scripts/setup"
    )
    version = kbuild.module_version()
    deb = _build(tmp_path)
    _clean_slate()
    _assert_gone(release, version)

    # A kernel without headers is a warning, not a failed install.
    bare = Path("/lib/modules/0.0.0-quic-deb-test")
    bare.mkdir(exist_ok=True)
    try:
        res = run(["dpkg", "-i", str(deb)])
    finally:
        bare.rmdir()
    assert f"quic-dkms: warning: no headers for {bare.name}" in res.stderr, res.stderr
    assert f"quic/{version}, {release}, x86_64: installed" in _dkms_status(release)
    first = _installed_ko(release)
    # While the package owns quic in DKMS, `quicctl dkms install/remove` refuse in one line.
    for cmd in ("install", "remove"):
        res = _quicctl("dkms", cmd, check=False)
        assert res.returncode == 1
        assert res.stderr.startswith("quicctl: cannot ") and "dpkg -r quic-dkms" in res.stderr
        assert res.stderr.count("\n") == 1, res.stderr

    # Removal takes module, DKMS entry and sources away.
    run(["dpkg", "-r", "quic-dkms"])
    _assert_gone(release, version)

    # Installed again, twice (a reinstall of the same version is a clean rebuild): the build
    # stays for the VM phase.
    run(["dpkg", "-i", str(deb)])
    res = run(["dpkg", "-i", str(deb)])
    assert "quic-dkms: warning" not in res.stderr, res.stderr
    assert f"quic/{version}, {release}, x86_64: installed" in _dkms_status(release)
    assert [e for e in dkms.status() if e["kernel"] == release][0]["state"] == "installed"
    ko = _installed_ko(release)
    assert ko == first
    srcversion = run(["modinfo", "-F", "srcversion", str(ko)]).stdout.strip()
    assert srcversion
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps({
        "release": release, "version": version, "path": str(ko), "srcversion": srcversion,
        "sha256": hashlib.sha256(ko.read_bytes()).hexdigest(),
    }))  # fmt: skip


@pytest.mark.packaged_kernel
def test_deb_modprobe_and_autoload(dev_module_installed):
    want = host_phase_state(STATE, "dpkg -i quic-dkms")
    ko = Path(want["path"])
    assert hashlib.sha256(ko.read_bytes()).hexdigest() == want["sha256"], (
        f"{ko} is not the package's DKMS build any more"
    )
    unload_module()
    install_for_autoload(dev_module_installed, prefer="updates")
    try:
        assert run(["modinfo", "-n", "quic"]).stdout.strip() == want["path"]
        run(["modprobe", "quic"])
        assert module_loaded()
        assert Path("/sys/module/quic/srcversion").read_text().strip() == want["srcversion"]
        assert Path("/sys/module/quic/version").read_text().strip() == want["version"]
        run(["modprobe", "-r", "quic"])
        assert not module_loaded()
        # No modules-load.d entry: the net-pf-2-proto-261 alias loads it on the first socket.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC) as s:
            assert s.proto == IPPROTO_QUIC
        assert module_loaded()
        assert Path("/sys/module/quic/srcversion").read_text().strip() == want["srcversion"]
        unload_module()
    finally:
        subprocess.run(["rmmod", "quic"], capture_output=True)
        install_for_autoload(dev_module_installed)
