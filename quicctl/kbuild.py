"""Build quic.ko out of tree against a kernel's build tree (kbuild, ``make M=``).

The sources in ``kernel/`` are mirrored into ``BUILD_DIR/<release>/`` so one checkout builds for
several kernels side by side and ``kernel/`` stays free of build products.  Only changed files are
copied and their mtimes are kept, so kbuild stays incremental.

Every path read here is a module-level name (``LIB_MODULES``, ``BOOT``) or comes from
``quicctl.paths`` at call time, so tests can point them elsewhere.
"""

from __future__ import annotations

import filecmp
import fnmatch
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from quicctl import paths
from quicctl.errors import QuicctlError

LIB_MODULES = Path("/lib/modules")
BOOT = Path("/boot")

MODULE_NAME = "quic"

# Build products that must never be mirrored from kernel/ (someone may have built in place).
BUILD_PRODUCTS = (
    "*.o",
    "*.ko",
    "*.mod",
    "*.mod.c",
    "*.a",
    "*.dwo",
    ".*.cmd",
    ".*.d",
    "modules.order",
    "Module.symvers",
    ".tmp_versions",
    "__pycache__",
)

_MANIFEST = ".quicctl-sources"  # the files the last sync copied (what a later sync may prune)
_WARNINGS = ".quicctl-warnings"  # the warnings of the last build ("#" while a build runs)
_LOG = "build.log"

_WARNING_RE = re.compile(
    r"^\S+:\d+(?::\d+)?: warning: "  # gcc, clang, sparse
    r"|^\S+: warning: objtool: "
    r"|^WARNING: modpost: "
)
_ERROR_RE = re.compile(
    r"^\S+:\d+(?::\d+)?: (?:fatal )?error: |^\S+: error: |^ERROR: |No rule to make"
)
_EXCERPT_RE = re.compile(r"^\s+(?:\d+\s*)?\|")  # gcc's source excerpt under a diagnostic


@dataclass
class Kernel:
    """A kernel quic.ko can be built for: its release, its kbuild tree, its image if known."""

    release: str
    build_dir: Path
    image: Path | None = None


# --------------------------------------------------------------------------------------------
# Kernels


def running_release() -> str:
    return os.uname().release


def version_key(release: str) -> tuple:
    """A sort key that orders kernel releases like ``sort -V``."""
    return tuple(
        (1, int(part), "") if part.isdigit() else (0, 0, part)
        for part in re.findall(r"\d+|\D+", release)
    )


def installed_releases() -> list[str]:
    """Releases with headers (``/lib/modules/<release>/build/Makefile``), oldest first."""
    if not LIB_MODULES.is_dir():
        return []
    found = [d.name for d in LIB_MODULES.iterdir() if (d / "build" / "Makefile").is_file()]
    return sorted(found, key=version_key)


def _is_path_spec(spec: str) -> bool:
    return os.sep in spec or spec.startswith((".", "~"))


def release_of(spec: str | None) -> str:
    """The release a ``--kernel`` value names (a release string or a build tree), no checks."""
    if spec is None:
        return running_release()
    if _is_path_spec(spec):
        return _tree_release(Path(spec).expanduser())
    return spec


def _tree_release(tree: Path) -> str:
    """The release of a kernel build tree: what vermagic will say (``UTS_RELEASE``).

    ``include/generated/utsrelease.h`` first: Debian's header packages put the upstream version
    in ``include/config/kernel.release`` (6.1.192) but build modules for ``6.1.0-56-amd64``.
    """
    if not (tree / "Makefile").is_file():
        raise QuicctlError(
            f"{tree} is not a kernel build tree (no Makefile): "
            "pass a release (see /lib/modules) or the tree the kernel was built in"
        )
    try:
        uts = (tree / "include" / "generated" / "utsrelease.h").read_text()
        m = re.search(r'UTS_RELEASE\s+"([^"]+)"', uts)
        if m:
            return m.group(1)
    except OSError:
        pass
    rel_file = tree / "include" / "config" / "kernel.release"
    try:
        release = rel_file.read_text().strip()
    except OSError:
        release = ""
    if not release:
        raise QuicctlError(
            f"cannot tell the release of the kernel build tree {tree}: {rel_file} missing or "
            "empty (was the kernel built there, or at least `make modules_prepare` run?)"
        )
    return release


def _image_for(release: str, tree: Path | None = None) -> Path | None:
    candidates = []
    if tree is not None:
        candidates += [tree.parent / "bzImage", tree / "arch" / "x86" / "boot" / "bzImage"]
    candidates.append(BOOT / f"vmlinuz-{release}")
    return next((c for c in candidates if c.is_file()), None)


def _headers_missing(release: str) -> QuicctlError:
    installed = installed_releases()
    have = ", ".join(installed) if installed else "none"
    return QuicctlError(
        f"kernel headers for {release} not found ({LIB_MODULES / release / 'build'} missing): "
        f"apt-get install linux-headers-{release} (installed: {have})"
    )


def resolve_kernel(spec: str | None = None) -> Kernel:
    """The kernel to build for.

    ``None``: the running kernel if its headers are installed, else the newest installed release
    with headers.  A release string: ``/lib/modules/<spec>/build``.  A path: a kernel build tree
    (e.g. the debug kernel's), its release read from ``include/config/kernel.release``.
    """
    if spec is not None and _is_path_spec(spec):
        tree = Path(spec).expanduser().resolve()
        release = _tree_release(tree)
        return Kernel(release, tree, _image_for(release, tree))
    if spec is None:
        release = running_release()
        if not (LIB_MODULES / release / "build" / "Makefile").is_file():
            installed = installed_releases()
            if not installed:
                raise QuicctlError(
                    f"no kernel headers installed in {LIB_MODULES} (the running kernel is "
                    f"{release}): apt-get install linux-headers-{release}, or pass --kernel PATH "
                    "to a kernel build tree"
                )
            release = installed[-1]
    else:
        release = spec
    build_dir = LIB_MODULES / release / "build"
    if not (build_dir / "Makefile").is_file():
        raise _headers_missing(release)
    return Kernel(release, build_dir, _image_for(release))


# --------------------------------------------------------------------------------------------
# Paths of built things and the version


def build_tree(release: str) -> Path:
    """Where the sources are mirrored and built for ``release``."""
    return Path(paths.BUILD_DIR) / release


def module_path(release: str) -> Path:
    return build_tree(release) / "net" / "quic" / f"{MODULE_NAME}.ko"


def build_log(release: str) -> Path:
    return build_tree(release) / _LOG


def module_version() -> str:
    """``PACKAGE_VERSION`` from ``kernel/dkms.conf``, the one source of the module version."""
    conf = paths.KERNEL_SRC / "dkms.conf"
    try:
        text = conf.read_text()
    except OSError as exc:
        raise QuicctlError(
            f"cannot read the module version from {conf}: {exc.strerror or exc} "
            "(PACKAGE_VERSION there is the one source of the version)"
        ) from None
    m = re.search(r"""^\s*PACKAGE_VERSION\s*=\s*["']?([^"'\s#]+)""", text, re.M)
    if not m:
        raise QuicctlError(f"cannot read the module version: no PACKAGE_VERSION= line in {conf}")
    return m.group(1)


def modinfo(ko: Path) -> dict[str, list[str]]:
    """The ``key=value`` strings of a module's ``.modinfo`` ELF section (all values per key)."""
    try:
        section = _elf_section(Path(ko), b".modinfo")
    except OSError as exc:
        raise QuicctlError(f"cannot read {ko}: {exc.strerror or exc}") from None
    if section is None:
        raise QuicctlError(f"{ko} is not a kernel module (no ELF .modinfo section)")
    info: dict[str, list[str]] = {}
    for item in section.split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            info.setdefault(key, []).append(value)
    return info


def modinfo_field(ko: Path, key: str) -> str | None:
    values = modinfo(ko).get(key)
    return values[0] if values else None


def vermagic_release(ko: Path) -> str:
    """The kernel release a .ko was built for (the first word of its vermagic)."""
    vermagic = modinfo_field(ko, "vermagic")
    if not vermagic or not vermagic.split():
        raise QuicctlError(f"{ko} has no vermagic (not a module built by kbuild?)")
    return vermagic.split()[0]


def _elf_section(path: Path, name: bytes) -> bytes | None:
    """The contents of section ``name`` of an ELF file (32 or 64 bit, either byte order).

    Reads only the headers and that section: a .ko with debug info is many megabytes, and in
    the VM the file comes over 9p.
    """
    with open(path, "rb") as f:

        def read_at(offset: int, size: int) -> bytes:
            f.seek(offset)
            data = f.read(size)
            if len(data) != size:
                raise ValueError("truncated ELF file")
            return data

        try:
            ident = read_at(0, 64)
            if ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
                return None
            end = "<" if ident[5] == 1 else ">"
            if ident[4] == 2:  # ELF64: Elf64_Shdr name, type, flags, addr, offset, size, ...
                shoff_fmt, shoff_at, counts_at, shdr = "Q", 0x28, 0x3A, "IIQQQQ"
            else:  # ELF32
                shoff_fmt, shoff_at, counts_at, shdr = "I", 0x20, 0x2E, "IIIIII"
            (shoff,) = struct.unpack_from(end + shoff_fmt, ident, shoff_at)
            shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", ident, counts_at)
            table = read_at(shoff, shentsize * shnum)
            sections = [struct.unpack_from(end + shdr, table, i * shentsize) for i in range(shnum)]
            names = read_at(sections[shstrndx][4], sections[shstrndx][5])
            for sh_name, _type, _flags, _addr, offset, size in sections:
                if names[sh_name : names.index(b"\0", sh_name)] == name:
                    return read_at(offset, size)
        except (struct.error, IndexError, ValueError):
            return None
    return None


# --------------------------------------------------------------------------------------------
# Mirroring the sources


def _excluded(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _source_files(src: Path, exclude: Sequence[str]) -> list[str]:
    files = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not _excluded(d, exclude))
        for f in sorted(filenames):
            if not _excluded(f, exclude):
                files.append(os.path.relpath(os.path.join(dirpath, f), src))
    return files


def source_files(src: Path) -> list[str]:
    """The files of a source tree, relative and sorted, build products left out."""
    return _source_files(src, BUILD_PRODUCTS)


def _copy_if_changed(src: Path, dst: Path) -> bool:
    try:
        d = dst.stat()
    except FileNotFoundError:
        d = None
    s = src.stat()
    if d is not None and d.st_size == s.st_size:
        if d.st_mtime_ns == s.st_mtime_ns or filecmp.cmp(src, dst, shallow=False):
            return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.quicctl-tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    if d is not None and s.st_mtime_ns <= d.st_mtime_ns:
        # The source went back in time (a revert with an old mtime): make sure kbuild, which
        # compares mtimes, still sees the file as newer than what was built from it.
        os.utime(dst)
    return True


def sync_tree(
    src: Path,
    dst: Path,
    *,
    manifest: Path | None = None,
    exclude: Sequence[str] = BUILD_PRODUCTS,
) -> list[str]:
    """Mirror ``src`` into ``dst``: copy changed files (mtimes kept), prune deleted ones.

    With ``manifest``, only files an earlier sync copied are pruned (build products living
    beside the sources survive); without it, every file of ``dst`` not in ``src`` goes.
    Returns the relative paths copied or removed.
    """
    files = _source_files(src, exclude)
    changed = [f for f in files if _copy_if_changed(src / f, dst / f)]
    wanted = set(files)
    if manifest is not None:
        try:
            previous = manifest.read_text().split("\n")
        except FileNotFoundError:
            previous = []
    else:
        previous = _source_files(dst, ()) if dst.is_dir() else []
    for rel in previous:
        if rel and rel not in wanted and (dst / rel).is_file():
            (dst / rel).unlink()
            changed.append(rel)
    if manifest is not None:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text("".join(f + "\n" for f in files))
    return changed


# --------------------------------------------------------------------------------------------
# Building


def is_warning(line: str) -> bool:
    return bool(_WARNING_RE.search(line))


def error_excerpt(lines: Sequence[str], max_errors: int = 3, tail: int = 12) -> list[str]:
    """The first compiler/modpost errors with gcc's source excerpt; else the output's tail."""
    out: list[str] = []
    errors = 0
    in_error = False
    for i, line in enumerate(lines):
        if _ERROR_RE.search(line):
            if errors == max_errors:
                break
            errors += 1
            in_error = True
            if i > 0 and ": In function" in lines[i - 1] and lines[i - 1] not in out:
                out.append(lines[i - 1])
            out.append(line)
        elif in_error and _EXCERPT_RE.match(line):
            out.append(line)
        else:
            in_error = False
    return out or [ln for ln in lines if ln.strip()][-tail:]


def _kbuild_vars(kernel: Kernel, extra: Sequence[str]) -> list[str]:
    """Make variables the build tree asks for: LLVM=1 for a kernel built with clang."""
    if any(a.startswith(("LLVM=", "CC=")) for a in extra):
        return []
    try:
        auto = (kernel.build_dir / "include" / "config" / "auto.conf").read_text()
    except OSError:
        return []
    return ["LLVM=1"] if "\nCONFIG_CC_IS_CLANG=y" in auto else []


def last_warnings(release: str) -> list[str]:
    """The W=1 warnings of the last build for ``release`` (sources shown under ``kernel/``)."""
    try:
        text = (build_tree(release) / _WARNINGS).read_text()
    except FileNotFoundError:
        return []
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def build(
    kernel: Kernel,
    *,
    jobs: int | None = None,
    extra_make_args: Sequence[str] = (),
    quiet: bool = True,
    on_line: Callable[[str], None] | None = None,
) -> Path:
    """Build quic.ko for ``kernel`` with ``W=1`` and return its path.

    Make's output goes to ``BUILD_DIR/<release>/build.log``, to ``on_line`` line by line, and to
    stdout unless ``quiet``.  The warnings are kept for :func:`last_warnings`: kbuild only
    recompiles what changed, so after a build that warned, the next one recompiles every object
    to report the same warnings again rather than silently dropping them.
    """
    make = shutil.which("make")
    if make is None:
        raise QuicctlError(
            "cannot build quic.ko: make is not installed (apt-get install build-essential)"
        )
    if (
        not (paths.MODULE_SRC / "Kbuild").is_file()
        and not (paths.MODULE_SRC / "Makefile").is_file()
    ):
        raise QuicctlError(
            f"cannot build quic.ko: no module sources in {paths.MODULE_SRC} (Kbuild missing)"
        )
    tree = build_tree(kernel.release)
    moddir = tree / paths.MODULE_SRC.relative_to(paths.KERNEL_SRC)
    try:
        sync_tree(paths.KERNEL_SRC, tree, manifest=tree / _MANIFEST)
    except OSError as exc:
        raise QuicctlError(
            f"cannot copy the module sources to {tree}: {exc.strerror or exc} "
            "(is the build directory writable?)"
        ) from None

    warn_file = tree / _WARNINGS
    if warn_file.is_file() and warn_file.read_text().strip():
        for obj in moddir.rglob("*.o"):
            obj.unlink()
    warn_file.write_text("# build in progress\n")

    argv = [
        make,
        "-C",
        str(kernel.build_dir),
        f"M={moddir}",
        "W=1",
        f"-j{jobs or _default_jobs()}",
        *_kbuild_vars(kernel, extra_make_args),
        *extra_make_args,
        "modules",
    ]
    # ASCII quotes in gcc's diagnostics (kbuild unexports LC_ALL, so LANG and LC_* count too).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env.update(LANG="C", LC_ALL="C")
    lines: list[str] = []
    with open(tree / _LOG, "w") as log:
        log.write(" ".join(argv) + "\n")
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise QuicctlError(f"cannot run {make}: {exc.strerror or exc}") from None
        assert proc.stdout is not None
        with proc:
            for raw in proc.stdout:
                log.write(raw)
                line = raw.rstrip("\n")
                lines.append(line)
                if not quiet:
                    print(line, flush=True)
                if on_line is not None:
                    on_line(line.replace(f"{tree}{os.sep}", ""))
        rc = proc.wait()

    # Diagnostics name the files under kernel/, the ones to edit, not their build copies.
    def to_source(line: str) -> str:
        return line.replace(f"{tree}{os.sep}", f"{paths.KERNEL_SRC}{os.sep}")

    warnings = [to_source(ln) for ln in lines if is_warning(ln)]
    warn_file.write_text("".join(w + "\n" for w in warnings))
    if rc != 0:
        detail = "\n".join("  " + to_source(ln) for ln in error_excerpt(lines))
        raise QuicctlError(
            f"build of quic.ko for {kernel.release} failed (make exit {rc}):\n{detail}\n"
            f"full log: {tree / _LOG}"
        )
    ko = module_path(kernel.release)
    if not ko.is_file():
        raise QuicctlError(
            f"make succeeded but {ko} was not produced (is `obj-m += quic.o` in "
            f"{paths.MODULE_SRC / 'Kbuild'}?)"
        )
    return ko


def build_external(kernel: Kernel, src: Path, name: str) -> Path:
    """Build the single-module directory ``src`` (its own Kbuild) for ``kernel`` with ``W=1``;
    returns ``name``.ko.  For test modules that are not part of quic (the debug-pass canary):
    mirrored into ``BUILD_DIR/<release>/<src's name>/``, never into the DKMS sources."""
    make = shutil.which("make")
    if make is None:
        raise QuicctlError(f"cannot build {name}.ko: make is not installed")
    dst = build_tree(kernel.release) / src.name
    try:
        sync_tree(src, dst, manifest=dst / _MANIFEST)
    except OSError as exc:
        raise QuicctlError(f"cannot copy {src} to {dst}: {exc.strerror or exc}") from None
    argv = [make, "-C", str(kernel.build_dir), f"M={dst}", "W=1", f"-j{_default_jobs()}",
            *_kbuild_vars(kernel, ()), "modules"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env.update(LANG="C", LC_ALL="C")
    r = subprocess.run(argv, capture_output=True, text=True, errors="replace", env=env,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    lines = (r.stdout + r.stderr).splitlines()
    (dst / _LOG).write_text(" ".join(argv) + "\n" + "\n".join(lines) + "\n")
    warnings = [ln.replace(f"{dst}{os.sep}", f"{src}{os.sep}") for ln in lines if is_warning(ln)]
    if r.returncode or warnings:
        detail = "\n".join("  " + ln for ln in (warnings or error_excerpt(lines)))
        raise QuicctlError(
            f"build of {name}.ko for {kernel.release} failed (make exit {r.returncode}"
            f"{', W=1 warnings' if warnings else ''}):\n{detail}\nfull log: {dst / _LOG}"
        )
    ko = dst / f"{name}.ko"
    if not ko.is_file():
        raise QuicctlError(f"make succeeded but {ko} was not produced")
    return ko
