"""DKMS: the host builds and installs through dkms; in the VM `modprobe quic` loads that build.

test_dkms_deb.py runs after this file in both phases and replaces this registration with the
quic-dkms package's: the VM test here then loads the package's DKMS build of the same sources
(same path and srcversion).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import (
    host_phase_state,
    install_for_autoload,
    modinfo_field,
    module_loaded,
    run,
    target_release,
    unload_module,
)

STATE = Path(__file__).resolve().parent.parent / "build" / "dkms-test.json"


def _dkms_module(release: str, name: str = "quic") -> Path:
    found = sorted(Path(f"/lib/modules/{release}/updates/dkms").glob(f"{name}.ko*"))
    assert found, f"dkms installed no {name}.ko under /lib/modules/{release}/updates/dkms"
    return found[0]


def _has_handshake(release: str) -> bool:
    config = Path(f"/lib/modules/{release}/build/.config")
    return "\nCONFIG_NET_HANDSHAKE=y\n" in "\n" + config.read_text()


@pytest.mark.host
@pytest.mark.packaged_kernel
def test_dkms_add_build_install_on_host():
    from quicctl import dkms, kbuild

    release = target_release()
    if dkms.deb_installed():  # left by test_dkms_deb.py; `quicctl dkms install` refuses then
        run(["dpkg", "-r", "quic-dkms"])
    dkms.install(release)
    dkms.install(release)  # idempotent
    ver = kbuild.module_version()
    st = run(["dkms", "status", f"quic/{ver}", "-k", release]).stdout
    assert "installed" in st, st
    ko = _dkms_module(release)
    src = run(["modinfo", "-F", "srcversion", str(ko)]).stdout.strip()
    assert src
    # The sample kernel service comes in the same package where the kernel has net/handshake.
    assert _has_handshake(release), f"{release} has no CONFIG_NET_HANDSHAKE: test on 6.12"
    sample = _dkms_module(release, "quic_sample")
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(f'{{"release": "{release}", "srcversion": "{src}", "path": "{ko}", '
                     f'"sample": "{sample}"}}')  # fmt: skip


@pytest.mark.packaged_kernel
def test_modprobe_loads_dkms_build(dev_module_installed):
    want = host_phase_state(STATE, "dkms install")
    unload_module()
    install_for_autoload(dev_module_installed, prefer="updates")
    try:
        run(["modprobe", "quic"])
        assert module_loaded()
        assert run(["modinfo", "-n", "quic"]).stdout.strip() == want["path"]
        assert Path("/sys/module/quic/srcversion").read_text().strip() == want["srcversion"]
        assert (
            modinfo_field(want["path"], "version")
            == Path("/sys/module/quic/version").read_text().strip()
        )
        # The sample service of the same package: modprobe finds it and keeps quic under it.
        run(["modprobe", "quic_sample"])
        assert Path("/sys/module/quic_sample").exists()
        assert run(["modinfo", "-n", "quic_sample"]).stdout.strip() == want["sample"]
        run(["modprobe", "-r", "quic_sample"])
        run(["modprobe", "-r", "quic"])
        assert not module_loaded()
    finally:
        subprocess.run(["rmmod", "quic_sample"], capture_output=True)
        subprocess.run(["rmmod", "quic"], capture_output=True)
        install_for_autoload(dev_module_installed)
