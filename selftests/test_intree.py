"""Host check: quic.ko builds as an in-tree module of Debian's linux-source-6.12.

The first run fetches and unpacks the source (``apt-get download linux-source-6.12`` unless the
package is installed) and runs ``modules_prepare``, a few minutes; later runs reuse the
prepared tree under ``~/.cache/quicctl/intree`` and only rebuild the module.  See
quicctl/intree.py.
"""

from __future__ import annotations

import re

import pytest

ROOT_KCONFIG_LINE = 'source "net/quic/Kconfig"'


@pytest.mark.host
@pytest.mark.timeout(1800)
def test_builds_in_kernel_tree():
    from quicctl import intree, kbuild

    b = intree.build()

    # Hooked into the tree and configured by Kconfig, as a module.
    assert ROOT_KCONFIG_LINE in (b.tree / "net" / "Kconfig").read_text().splitlines()
    assert intree.MAKEFILE_LINE in (b.tree / "net" / "Makefile").read_text().splitlines()
    config = (b.tree / ".config").read_text()
    assert "\nCONFIG_IP_QUIC=m\n" in config
    # No dkms.conf anywhere the in-tree Kbuild could reach: it must not need one.
    assert not (b.tree / "dkms.conf").exists()

    assert b.ko.is_file()
    assert b.warnings == [], "W=1 warnings in the in-tree build:\n" + "\n".join(b.warnings)
    info = kbuild.modinfo(b.ko)
    assert info["name"] == ["quic"]
    assert info["license"] == ["GPL"]
    assert info["alias"] and all(re.fullmatch(r"net-pf-(2|10)-proto-261", a) for a in info["alias"])
    # In a kernel tree the module is versioned by the kernel release, as in-tree modules are;
    # MODULE_VERSION (from dkms.conf) is the out-of-tree build's.
    assert "version" not in info
    release = (b.tree / "include" / "config" / "kernel.release").read_text().strip()
    assert kbuild.vermagic_release(b.ko) == release
    # net/handshake is built into Debian's 6.12: the sample service comes along.
    if "\nCONFIG_NET_HANDSHAKE=y\n" in config:
        assert kbuild.modinfo(b.ko.with_name("quic_sample.ko"))["name"] == ["quic_sample"]


@pytest.mark.host
def test_out_of_tree_version_from_dkms_conf():
    """The out-of-tree module keeps MODULE_VERSION, read from dkms.conf by Kbuild."""
    from quicctl import kbuild

    rels = [
        r for r in kbuild.installed_releases() if r.startswith("6.12.") and r.endswith("-amd64")
    ]
    assert rels, "no Debian 6.12 headers installed: run scripts/setup"
    ko = kbuild.build(kbuild.resolve_kernel(rels[-1]))
    assert kbuild.modinfo_field(ko, "version") == kbuild.module_version()
