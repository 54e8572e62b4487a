"""`quicctl package deb`: the quic-dkms binary package, built with dpkg-deb alone.

The package holds the module sources exactly as ``quicctl dkms install`` lays them out
(``kernel/`` less build products, ``dkms.conf`` at the top) under ``/usr/src/quic-<version>/``,
maintainer scripts that do what dh_dkms's do (packaging/deb/postinst, prerm), the copyright
file, a changelog, the man pages of ``man/`` if there are any, and the agent's systemd unit as
an example (it runs quicctl, which this package does not ship).  The version is
``PACKAGE_VERSION`` of ``kernel/dkms.conf``.  Timestamps come from ``SOURCE_DATE_EPOCH`` or
the last commit, so two builds of one tree give the same .deb.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
import textwrap
from email.utils import formatdate
from pathlib import Path

from quicctl import kbuild, paths
from quicctl.errors import QuicctlError

PACKAGE = "quic-dkms"
PACKAGING = paths.ROOT / "packaging"
DEB_FILES = PACKAGING / "deb"
AGENT_UNIT = PACKAGING / "quicctl-agent.service"
MAN_DIR = paths.ROOT / "man"
DOC = Path("usr/share/doc") / PACKAGE

DESCRIPTION = """\
QUIC transport protocol for Linux sockets (DKMS module source)
quic.ko implements QUIC versions 1 and 2 (RFC 9000, 9001, 9002, 9369) in the
kernel, behind ordinary sockets: socket(AF_INET or AF_INET6, SOCK_DGRAM or
SOCK_STREAM, IPPROTO_QUIC).  The TLS 1.3 handshake runs in userspace (or, for
kernel services, in a handshake agent reached through net/handshake) and hands
its keys to the kernel.  The socket API is binary-compatible with the Linux
QUIC socket API proposed upstream.

This package ships the module sources; DKMS builds and installs quic.ko (and
the quic_sample kernel service on kernels with net/handshake) for every
installed kernel that has its headers, Linux 6.1 and later.  The module loads
by itself when a program opens its first IPPROTO_QUIC socket.
"""


def _require_tool(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise QuicctlError(f"cannot build {PACKAGE}: {tool} is not installed "
                           f"(apt-get install {package})")  # fmt: skip
    return found


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(paths.ROOT), *args], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)  # fmt: skip
    except OSError:
        return None
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and out else None


def source_date() -> int:
    """``SOURCE_DATE_EPOCH``, else the last commit's time, else dkms.conf's mtime."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        if not env.isdigit():
            raise QuicctlError(f"SOURCE_DATE_EPOCH={env!r} is not a number of seconds")
        return int(env)
    commit = _git("log", "-1", "--format=%ct")
    if commit and commit.isdigit():
        return int(commit)
    return int((paths.KERNEL_SRC / "dkms.conf").stat().st_mtime)


def maintainer() -> str:
    """``DEBFULLNAME <DEBEMAIL>`` if set, else the checkout's git identity."""
    name = os.environ.get("DEBFULLNAME") or _git("config", "user.name")
    email = os.environ.get("DEBEMAIL") or _git("config", "user.email")
    if not name or not email:
        raise QuicctlError(f"cannot build {PACKAGE}: no maintainer: set DEBFULLNAME and "
                           "DEBEMAIL (or git's user.name and user.email)")  # fmt: skip
    return f"{name} <{email}>"


def source_files() -> list[str]:
    """The files of the DKMS source tree (kernel/ as ``quicctl dkms install`` copies it)."""
    return kbuild.source_files(paths.KERNEL_SRC)


def man_pages() -> list[Path]:
    """``man/*.7`` and ``man/*.8`` when the checkout has a man/ directory."""
    if not MAN_DIR.is_dir():
        return []
    return sorted(p for p in MAN_DIR.iterdir() if p.suffix in (".7", ".8") and p.is_file())


def _write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)  # like gzip -9n


def _template(name: str, version: str) -> str:
    path = DEB_FILES / name
    try:
        return path.read_text().replace("@VERSION@", version)
    except OSError as exc:
        raise QuicctlError(f"cannot read {path}: {exc.strerror or exc}") from None


def _changelog(version: str, who: str, when: int) -> str:
    date = formatdate(when, usegmt=False).replace("-0000", "+0000")
    return textwrap.dedent(f"""\
        {PACKAGE} ({version}) unstable; urgency=medium

          * quic.ko {version} as DKMS module sources (quicctl package deb).

         -- {who}  {date}
        """)


def _control(version: str, who: str, installed_kib: int) -> str:
    synopsis, _, body = DESCRIPTION.partition("\n")
    long = "\n".join(" " + (line if line.strip() else ".") for line in body.strip().split("\n"))
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        "Architecture: all\n"
        f"Maintainer: {who}\n"
        f"Installed-Size: {installed_kib}\n"
        "Depends: dkms (>= 3)\n"
        "Section: kernel\n"
        "Priority: optional\n"
        f"Description: {synopsis}\n{long}\n"
    )


def _stage(root: Path, version: str, who: str, when: int) -> None:
    src = root / "usr" / "src" / f"quic-{version}"
    for rel in source_files():
        _write(src / rel, (paths.KERNEL_SRC / rel).read_bytes())
    doc = root / DOC
    _write(doc / "copyright", _template("copyright", version))
    # A native package (no Debian revision): lintian wants changelog.gz, not changelog.Debian.gz.
    _write(doc / "changelog.gz", _gzip(_changelog(version, who, when).encode()))
    if AGENT_UNIT.is_file():
        _write(doc / "examples" / AGENT_UNIT.name, AGENT_UNIT.read_bytes())
    for page in man_pages():
        section = page.suffix[1:]
        _write(root / "usr/share/man" / f"man{section}" / f"{page.name}.gz",
               _gzip(page.read_bytes()))  # fmt: skip

    files = sorted(p for p in root.rglob("*") if p.is_file())
    debian = root / "DEBIAN"
    md5sums = "".join(
        f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(root)}\n" for p in files
    )
    size = sum(p.stat().st_size for p in files)
    dirs = sum(1 for p in root.rglob("*") if p.is_dir())
    _write(debian / "control", _control(version, who, (size + 1023) // 1024 + dirs))
    _write(debian / "md5sums", md5sums)
    for script in ("postinst", "prerm"):
        _write(debian / script, _template(script, version), 0o755)
    for p in [root, *root.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
        os.utime(p, (when, when), follow_symlinks=False)


def deb_name(version: str) -> str:
    return f"{PACKAGE}_{version}_all.deb"


def build(output: Path) -> Path:
    """Build ``quic-dkms_<version>_all.deb`` into ``output``; returns its path."""
    dpkg_deb = _require_tool("dpkg-deb", "dpkg")
    version = kbuild.module_version()
    who = maintainer()
    when = source_date()
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QuicctlError(f"cannot create {output}: {exc.strerror or exc}") from None
    if not os.access(output, os.W_OK):
        raise QuicctlError(f"cannot write the package to {output}: not writable")
    deb = output / deb_name(version)
    with tempfile.TemporaryDirectory(prefix="quic-deb-") as tmp:
        root = Path(tmp) / PACKAGE
        old_umask = os.umask(0o022)
        try:
            _stage(root, version, who, when)
        except OSError as exc:
            raise QuicctlError(f"cannot lay out {PACKAGE} in {tmp}: {exc}") from None
        finally:
            os.umask(old_umask)
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(when))
        proc = subprocess.run(
            [dpkg_deb, "--root-owner-group", "-Zxz", "--build", str(root), str(deb)],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise QuicctlError(f"dpkg-deb could not build {deb}: {err[-1] if err else 'no output'}")
    return deb
