"""Build quic.ko inside a kernel source tree, as an in-tree module (``CONFIG_IP_QUIC=m``).

The tree is Debian's ``linux-source-6.12`` (``/usr/src/linux-source-6.12.tar.xz`` when the
package is installed, else the package fetched with ``apt-get download`` into the cache),
unpacked once under ``CACHE_DIR/intree/``.  ``kernel/net/quic`` goes to ``net/quic``, the headers
to ``include/``, ``net/Kconfig`` and ``net/Makefile`` get their two lines, and the configuration
is Debian's own (the installed 6.12 headers' ``.config``) with ``CONFIG_IP_QUIC=m``.  Only
``modules_prepare`` and the module are built; ``Module.symvers`` comes from the same headers, so
modpost resolves the kernel's exports as it would in a full build.  Every step is skipped when
its result is already there, so a second run only rebuilds the module.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from quicctl import kbuild, paths
from quicctl.errors import QuicctlError

SERIES = "6.12"
SOURCE_PACKAGE = f"linux-source-{SERIES}"
SYSTEM_TARBALL = Path("/usr/src") / f"{SOURCE_PACKAGE}.tar.xz"
HEADERS_GLOB = f"/usr/src/linux-headers-{SERIES}.*-amd64"

KCONFIG_LINE = 'source "net/quic/Kconfig"'
MAKEFILE_LINE = "obj-$(CONFIG_IP_QUIC) += quic/"

# On top of Debian's configuration: the module, and what a tree without Debian's signing keys
# and without a vmlinux needs (no module signing at build time, no BTF, no debug info: the
# module's code and warnings do not depend on them, and the build is several times faster).
CONFIG_ARGS = (
    "--module", "IP_QUIC",
    "--disable", "MODULE_SIG_ALL",
    "--set-str", "MODULE_SIG_KEY", "certs/signing_key.pem",
    "--set-str", "SYSTEM_TRUSTED_KEYS", "",
    "--set-str", "SYSTEM_REVOCATION_KEYS", "",
    "--disable", "DEBUG_INFO_BTF",
    "--disable", "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT",
    "--enable", "DEBUG_INFO_NONE",
)  # fmt: skip


@dataclass
class InTreeBuild:
    """The result of an in-tree build: the tree, the module, make's output."""

    tree: Path
    ko: Path
    log: list[str]

    @property
    def warnings(self) -> list[str]:
        return [ln for ln in self.log if kbuild.is_warning(ln)]


def cache_root() -> Path:
    return Path(paths.CACHE_DIR) / "intree"


def _run(argv: list[str], cwd: Path, what: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env.update(LANG="C", LC_ALL="C")
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, errors="replace",
                       env=env, stdin=subprocess.DEVNULL)  # fmt: skip
    lines = (r.stdout + r.stderr).splitlines()
    if r.returncode:
        detail = "\n".join("  " + ln for ln in kbuild.error_excerpt(lines))
        raise QuicctlError(f"{what} failed in {cwd} (exit {r.returncode}):\n{detail}")
    return lines


def source_tarball() -> Path:
    """Debian's linux-source tarball: the installed one, else one fetched into the cache."""
    if SYSTEM_TARBALL.is_file():
        return SYSTEM_TARBALL
    root = cache_root()
    tarball = root / SYSTEM_TARBALL.name
    if tarball.is_file():
        return tarball
    root.mkdir(parents=True, exist_ok=True)
    debs = sorted(root.glob(f"{SOURCE_PACKAGE}_*.deb"))
    if not debs:
        if shutil.which("apt-get") is None:
            raise QuicctlError(f"no {SYSTEM_TARBALL} and no apt-get to fetch {SOURCE_PACKAGE}")
        _run(["apt-get", "download", SOURCE_PACKAGE], root, f"apt-get download {SOURCE_PACKAGE}")
        debs = sorted(root.glob(f"{SOURCE_PACKAGE}_*.deb"))
        if not debs:
            raise QuicctlError(f"apt-get download {SOURCE_PACKAGE} left no .deb in {root}")
    member = f"./usr/src/{SYSTEM_TARBALL.name}"
    tmp = tarball.with_suffix(".part")
    with open(tmp, "wb") as out:
        fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[-1])],
                                stdout=subprocess.PIPE)  # fmt: skip
        r = subprocess.run(["tar", "-xO", member], stdin=fsys.stdout, stdout=out)
        fsys.wait()
    if r.returncode or fsys.returncode:
        tmp.unlink(missing_ok=True)
        raise QuicctlError(f"cannot extract {member} from {debs[-1]} (a damaged download?)")
    tmp.rename(tarball)
    return tarball


def headers_dir() -> Path:
    """The installed Debian 6.12 headers: their ``.config`` and ``Module.symvers``."""
    found = sorted(glob.glob(HEADERS_GLOB), key=kbuild.version_key)
    found = [Path(d) for d in found if (Path(d) / ".config").is_file()]
    if not found:
        raise QuicctlError(
            f"no Debian {SERIES} kernel headers ({HEADERS_GLOB}/.config): run scripts/setup"
        )
    return found[-1]


def unpacked_tree(tarball: Path) -> Path:
    """The tarball unpacked once: ``CACHE_DIR/intree/linux-source-6.12``."""
    root = cache_root()
    tree = root / SOURCE_PACKAGE
    stamp = root / ".unpacked"
    ident = f"{tarball} {tarball.stat().st_size} {tarball.stat().st_mtime_ns}\n"
    if tree.is_dir() and stamp.is_file() and stamp.read_text() == ident:
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    tmp = root / "unpack.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _run(["tar", "-xJf", str(tarball), "-C", str(tmp)], root, f"unpacking {tarball}")
    (tmp / SOURCE_PACKAGE).rename(tree)
    tmp.rmdir()
    stamp.write_text(ident)
    return tree


def _add_line(path: Path, line: str, after: str) -> None:
    """Add ``line`` after the first line matching ``after`` (a regex), once."""
    text = path.read_text()
    if line in text.splitlines():
        return
    m = re.search(after, text, re.M)
    if not m:
        raise QuicctlError(f"cannot hook net/quic into {path}: no line matching {after!r}")
    end = text.index("\n", m.end()) + 1
    path.write_text(text[:end] + line + "\n" + text[end:])


def install_sources(tree: Path) -> None:
    """``kernel/net/quic`` to ``net/quic``, the headers to ``include/``, the Kconfig and
    Makefile hooks (idempotent; only changed files are copied, so make stays incremental)."""
    kbuild.sync_tree(paths.MODULE_SRC, tree / "net" / "quic",
                     manifest=tree / "net" / "quic" / ".quicctl-sources")  # fmt: skip
    for rel in ("linux/quic.h", "uapi/linux/quic.h"):
        kbuild._copy_if_changed(paths.KERNEL_SRC / "include" / rel, tree / "include" / rel)
    _add_line(tree / "net" / "Kconfig", KCONFIG_LINE, r'^source "net/tls/Kconfig"$')
    _add_line(tree / "net" / "Makefile", MAKEFILE_LINE, r"^obj-\$\(CONFIG_TLS\)")


def configure(tree: Path, headers: Path) -> None:
    """Debian's configuration plus :data:`CONFIG_ARGS`, then olddefconfig and
    modules_prepare; skipped when the inputs are those of the last run."""
    stamp = tree / ".quicctl-configured"
    kconfig = paths.MODULE_SRC / "Kconfig"
    ident = "\n".join([
        str(headers), str((headers / ".config").stat().st_mtime_ns),
        kconfig.read_text(), " ".join(CONFIG_ARGS),
    ])  # fmt: skip
    if stamp.is_file() and stamp.read_text() == ident and (tree / "scripts" / "mod").is_dir():
        return
    stamp.unlink(missing_ok=True)
    shutil.copy2(headers / ".config", tree / ".config")
    shutil.copy2(headers / "Module.symvers", tree / "Module.symvers")
    _run(["scripts/config", *CONFIG_ARGS], tree, "scripts/config")
    _run(["make", "olddefconfig"], tree, "make olddefconfig")
    config = (tree / ".config").read_text()
    if "\nCONFIG_IP_QUIC=m\n" not in config:
        raise QuicctlError(
            f"CONFIG_IP_QUIC=m did not survive olddefconfig in {tree / '.config'} "
            "(an unmet dependency in net/quic/Kconfig?)"
        )
    _run(["make", f"-j{kbuild._default_jobs()}", "modules_prepare"], tree, "make modules_prepare")
    stamp.write_text(ident)


def prepare() -> Path:
    """The kernel tree, unpacked, hooked, configured and prepared."""
    tree = unpacked_tree(source_tarball())
    install_sources(tree)
    configure(tree, headers_dir())
    return tree


def build() -> InTreeBuild:
    """Build ``net/quic`` (quic.ko, and quic_sample.ko where the tree has net/handshake) in
    the prepared tree, every object recompiled (so the warnings of this build are all in its
    log)."""
    tree = prepare()
    moddir = tree / "net" / "quic"
    for obj in moddir.rglob("*.o"):
        obj.unlink()
    # M= rather than `make net/quic/quic.ko`: modpost then checks the module against the
    # tree's Module.symvers (there is no vmlinux to check it against).  Kbuild still takes
    # its in-tree branch: CONFIG_IP_QUIC is set.
    log = _run(["make", f"-j{kbuild._default_jobs()}", "W=1", f"M={moddir}", "modules"], tree,
               "make M=net/quic modules")  # fmt: skip
    ko = moddir / "quic.ko"
    if not ko.is_file():
        raise QuicctlError(f"make M=net/quic modules succeeded but {ko} was not produced")
    return InTreeBuild(tree, ko, log)
