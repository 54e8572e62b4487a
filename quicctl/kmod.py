"""Load, unload, inspect and debug the quic module of the running kernel.

Every path read comes from a :class:`System` (``proc``, ``sys``, ``lib_modules`` roots and the
running release); functions take ``system=None`` and then use the module-level ``SYSTEM``, looked
up at call time, so tests can simulate a kernel by pointing it at a tmp directory.  Tools run
by name from ``PATH`` (plus /usr/sbin and /sbin); tests can replace the names below.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from quicctl import kbuild, paths
from quicctl.errors import QuicctlError

MODULE = "quic"
DIAG_MODULE = "quic_diag"  # sock_diag for `quicctl ss`, a user of quic
DEPENDENCIES = ("udp_tunnel", "ip6_udp_tunnel")

INSMOD = "insmod"
RMMOD = "rmmod"
MODPROBE = "modprobe"
MOUNT = "mount"
KMSG = Path("/dev/kmsg")

# A symbol each dependency exports: found in kallsyms, the dependency is built in (a kernel
# with no /lib/modules tree, like the debug kernel, where modprobe cannot help).
_DEP_SYMBOLS = {"udp_tunnel": "setup_udp_tunnel_sock", "ip6_udp_tunnel": "udp_tunnel6_xmit_skb"}
_DEP_CONFIG = {"udp_tunnel": "CONFIG_NET_UDP_TUNNEL", "ip6_udp_tunnel": "CONFIG_NET_UDP_TUNNEL"}

_DDEBUG_RE = re.compile(
    r"^(?P<file>\S+):(?P<line>\d+) \[(?P<module>[^\]]+)\](?P<function>\S+)"
    r' =(?P<flags>\S+) "(?P<format>.*)"$'
)


@dataclass
class System:
    """The roots the running kernel is seen through, and its release."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    lib_modules: Path = Path("/lib/modules")
    release: str = field(default_factory=lambda: os.uname().release)

    @property
    def module_dir(self) -> Path:
        return self.sys / "module" / MODULE

    @property
    def debugfs(self) -> Path:
        return self.sys / "kernel" / "debug"

    @property
    def has_modules(self) -> bool:
        return (self.proc / "modules").exists()


SYSTEM = System()


@dataclass
class LoadResult:
    action: str  # "loaded", "reloaded" or "already loaded"
    ko: Path
    srcversion: str | None
    version: str | None


def _sys(system: System | None) -> System:
    return system if system is not None else SYSTEM


# --------------------------------------------------------------------------------------------
# Small helpers


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _tool(name: str) -> str:
    if os.sep in name:
        return name
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise QuicctlError(f"cannot run {name}: not installed (apt-get install kmod?)")
    return found


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace"
    )


def _reason(proc: subprocess.CompletedProcess) -> str:
    """The tool's own explanation: its last stderr line (``insmod: ERROR: ...: reason``)."""
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
    if not lines:
        return f"exit status {proc.returncode}"
    return lines[-1]


def _require_root(action: str, command: str) -> None:
    if os.geteuid() != 0:
        raise QuicctlError(f"cannot {action}: run as root (sudo quicctl {command})")


def _require_module_support(s: System) -> None:
    if not s.has_modules:
        raise QuicctlError(
            f"cannot load quic.ko: this kernel ({s.release}) cannot load modules "
            f"(no {s.proc / 'modules'}: CONFIG_MODULES off?): use `quicctl vm -- quicctl load`"
        )


def is_loaded(system: System | None = None) -> bool:
    s = _sys(system)
    return _read(s.module_dir / "initstate") in ("live", "coming")


def refcount(system: System | None = None) -> int:
    value = _read(_sys(system).module_dir / "refcnt")
    return int(value) if value and value.isdigit() else 0


def holders(system: System | None = None) -> list[str]:
    d = _sys(system).module_dir / "holders"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _kmsg_open() -> int | None:
    """A /dev/kmsg reader positioned at the end of the log, to collect what comes next."""
    try:
        fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        os.lseek(fd, 0, os.SEEK_END)
    except OSError:
        os.close(fd)
        return None
    return fd


def _kmsg_read(fd: int | None, limit: int = 8) -> list[str]:
    if fd is None:
        return []
    messages: list[str] = []
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # overwritten while reading: skip ahead
                    continue
                break
            if not record:
                break
            text = record.decode(errors="replace").split("\n", 1)[0]
            messages.append(text.split(";", 1)[-1])
    finally:
        os.close(fd)
    return messages[-limit:]


# --------------------------------------------------------------------------------------------
# Load and unload


def _dependency_present(dep: str, s: System) -> bool:
    if (s.sys / "module" / dep).is_dir():
        return True
    builtin = s.lib_modules / s.release / "modules.builtin"
    try:
        names = {
            Path(ln).name.split(".ko")[0].replace("-", "_") for ln in builtin.read_text().split()
        }
        return dep in names
    except OSError:
        pass
    symbol = _DEP_SYMBOLS.get(dep)
    if symbol is None:
        return False
    try:
        with open(s.proc / "kallsyms", errors="replace") as kallsyms:
            return any(ln.rstrip().endswith(f" {symbol}") for ln in kallsyms)
    except OSError:
        return False


def _ensure_dependency(dep: str, s: System) -> None:
    if _dependency_present(dep, s):
        return
    hint = f"install linux-modules-extra / enable {_DEP_CONFIG.get(dep, 'its CONFIG_ option')}?"
    if not (s.lib_modules / s.release).is_dir():
        raise QuicctlError(
            f"cannot load quic.ko: {dep} is missing (not loaded, not built in, and no "
            f"{s.lib_modules / s.release} to modprobe it from: {hint})"
        )
    proc = _run([_tool(MODPROBE), dep])
    if proc.returncode != 0 or not (s.sys / "module" / dep).is_dir():
        raise QuicctlError(
            f"cannot load quic.ko: {dep} is missing (modprobe {dep}: {_reason(proc)}; {hint})"
        )


def _insmod(ko: Path, s: System) -> None:
    kmsg = _kmsg_open()
    proc = _run([_tool(INSMOD), str(ko)])
    if proc.returncode == 0:
        if kmsg is not None:
            os.close(kmsg)
        return
    messages = _kmsg_read(kmsg)
    reason = _reason(proc).rsplit(": ", 1)[-1]
    detail = "".join(f"\n  kernel: {m}" for m in messages)
    raise QuicctlError(f"cannot load {ko}: {reason} (insmod exit {proc.returncode}){detail}")


def _rmmod(s: System) -> None:
    proc = _run([_tool(RMMOD), MODULE])
    if proc.returncode != 0 and is_loaded(s):
        raise QuicctlError(f"cannot unload quic: {_reason(proc)}")


def _release_diag(s: System) -> None:
    """quic_diag.ko (`quicctl ss`) holds quic: unload it first, it keeps no state."""
    if not (s.sys / "module" / DIAG_MODULE).is_dir():
        return
    proc = _run([_tool(RMMOD), DIAG_MODULE])
    if proc.returncode != 0 and (s.sys / "module" / DIAG_MODULE).is_dir():
        raise QuicctlError(f"cannot unload {DIAG_MODULE} (it holds quic): {_reason(proc)}")


def _in_use(refs: int, s: System) -> str:
    users = holders(s)
    by = f", held by {', '.join(users)}" if users else ""
    return f"quic is in use by {refs} references (open QUIC sockets?{by})"


def load(
    ko: Path | None = None, release: str | None = None, *, system: System | None = None
) -> LoadResult:
    """Load quic.ko (``ko``, else the one built for ``release``, else for the running kernel).

    Idempotent: the same build already loaded is a no-op; a different build is swapped in when
    nothing uses the loaded one.
    """
    s = _sys(system)
    _require_root("load quic.ko", "load")
    _require_module_support(s)
    release = release or s.release
    if ko is None:
        ko = kbuild.module_path(release)
        if not ko.is_file():
            raise QuicctlError(
                f"quic.ko for {release} not built ({ko} missing): "
                f"run `quicctl build --kernel {release}`"
            )
    elif not Path(ko).is_file():
        raise QuicctlError(f"cannot load {ko}: no such file")
    ko = Path(ko)
    info = kbuild.modinfo(ko)  # once: in the VM the .ko is read over 9p
    built_for = (info.get("vermagic") or [""])[0].split(" ", 1)[0]
    if not built_for:
        raise QuicctlError(f"{ko} has no vermagic (not a module built by kbuild?)")
    if built_for != s.release:
        raise QuicctlError(
            f"quic.ko was built for {built_for} but the running kernel is {s.release} ({ko}): "
            "run `quicctl build`"
        )
    for dep in DEPENDENCIES:
        _ensure_dependency(dep, s)

    want = (info.get("srcversion") or [None])[0]
    version = (info.get("version") or [None])[0]
    action = "loaded"
    if is_loaded(s):
        have = _read(s.module_dir / "srcversion")
        if want is not None and have == want:
            return LoadResult("already loaded", ko, want, version)
        _release_diag(s)
        refs = refcount(s)
        if refs > 0:
            raise QuicctlError(
                f"cannot replace the loaded quic (srcversion {have}) with {ko} ({want}): "
                f"{_in_use(refs, s)}"
            )
        _rmmod(s)
        action = "reloaded"
    _insmod(ko, s)
    have = _read(s.module_dir / "srcversion")
    if want is not None and have is not None and have != want:
        raise QuicctlError(f"loaded {ko} but /sys/module/quic reports srcversion {have}")
    return LoadResult(action, ko, want, version)


def unload(*, system: System | None = None, wait: float = 0.0) -> bool:
    """Unload quic; ``False`` when it was not loaded (a no-op).

    ``wait``: seconds to let closed connections finish (a closed socket lives on while it
    sends its CONNECTION_CLOSE and drains) before an open reference is an error.
    """
    s = _sys(system)
    if not is_loaded(s):
        return False
    _require_root("unload quic", "unload")
    _release_diag(s)
    deadline = time.monotonic() + wait
    refs = refcount(s)
    while refs > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        refs = refcount(s)
    if refs > 0:
        raise QuicctlError(f"cannot unload quic: {_in_use(refs, s)}")
    _rmmod(s)
    return True


# --------------------------------------------------------------------------------------------
# Status


def snmp(system: System | None = None) -> dict[str, int]:
    """``/proc/net/quic/snmp`` as name -> value, in the kernel's order (empty if absent)."""
    text = _read(_sys(system).proc / "net" / "quic" / "snmp")
    counters: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counters[parts[0]] = int(parts[1])
    return counters


# Integer columns of /proc/net/quic/cong; the others (SOCK, LOCAL_ADDRESS, ...) stay strings.
CONG_INT_FIELDS = frozenset(
    "STATE SRTT MIN_RTT RTTVAR LATEST_RTT CWND SSTHRESH IN_FLIGHT LOST PTO_COUNT "
    "PACING_RATE SPURIOUS UNDONE REORDER".split()
)


def connections(system: System | None = None) -> list[dict[str, str | int]]:
    """``/proc/net/quic/cong``: one dict per connection, keyed by the header's column names.

    RTTs are in microseconds, windows in bytes, PACING_RATE in bytes per second, SSTHRESH -1
    while unset.  Empty if the module is not loaded.
    """
    text = _read(_sys(system).proc / "net" / "quic" / "cong")
    lines = (text or "").splitlines()
    if not lines:
        return []
    names = lines[0].split("\t")
    rows: list[dict[str, str | int]] = []
    for line in lines[1:]:
        values = line.split("\t")
        if len(values) != len(names):
            continue
        rows.append(
            {n: int(v) if n in CONG_INT_FIELDS else v for n, v in zip(names, values, strict=True)}
        )
    return rows


def status(system: System | None = None) -> dict:
    """What a user wants to know about the module; works whether or not it is loaded."""
    s = _sys(system)
    loaded = is_loaded(s)
    mod = s.module_dir
    built = kbuild.module_path(s.release)
    built_srcversion = None
    if built.is_file():
        try:
            built_srcversion = kbuild.modinfo_field(built, "srcversion")
        except QuicctlError:
            built_srcversion = None
    srcversion = _read(mod / "srcversion") if loaded else None
    tainted = _read(s.proc / "sys" / "kernel" / "tainted")
    return {
        "kernel": s.release,
        "module_support": s.has_modules,
        "loaded": loaded,
        "state": _read(mod / "initstate") if loaded else None,
        "version": _read(mod / "version") if loaded else None,
        "srcversion": srcversion,
        "refcount": refcount(s) if loaded else None,
        "holders": holders(s) if loaded else [],
        "taint": (_read(mod / "taint") or "") if loaded else None,
        "kernel_tainted": int(tainted) if tainted and tainted.isdigit() else None,
        "built_module": str(built) if built.is_file() else None,
        # Builds for other kernels (the VM's, say): "not built" alone would mislead.
        "other_builds": sorted(
            ko.parents[2].name
            for ko in Path(paths.BUILD_DIR).glob("*/net/quic/quic.ko")
            if ko.parents[2].name != s.release
        ),
        "built_srcversion": built_srcversion,
        "built_matches_loaded": (built_srcversion == srcversion)
        if loaded and built_srcversion
        else None,
        "snmp": snmp(s) if loaded else {},
        "connections": connections(s) if loaded else [],
    }


# --------------------------------------------------------------------------------------------
# Dynamic debug


def _debugfs_mounted(s: System) -> bool:
    try:
        mounts = (s.proc / "mounts").read_text().splitlines()
    except OSError:
        return False
    return any(
        len(f) > 2 and f[2] == "debugfs" and f[1] == str(s.debugfs) for f in map(str.split, mounts)
    )


def control_file(*, system: System | None = None, mount: bool = True) -> Path:
    """The dynamic debug control file, mounting debugfs on ``<sys>/kernel/debug`` if needed."""
    s = _sys(system)
    ctl = s.debugfs / "dynamic_debug" / "control"
    if ctl.exists():
        return ctl
    if mount and not _debugfs_mounted(s):
        proc = _run([_tool(MOUNT), "-t", "debugfs", "debugfs", str(s.debugfs)])
        if proc.returncode != 0:
            raise QuicctlError(f"cannot mount debugfs on {s.debugfs}: {_reason(proc)}")
        if ctl.exists():
            return ctl
    alt = s.proc / "dynamic_debug" / "control"
    if alt.exists():
        return alt
    raise QuicctlError(
        f"cannot use dynamic debug: no {ctl} or {alt} "
        f"(kernel {s.release} built without CONFIG_DYNAMIC_DEBUG?)"
    )


def debug(on: bool, *, system: System | None = None) -> int:
    """Turn quic's ``pr_debug`` call sites on or off; returns how many are now enabled."""
    s = _sys(system)
    word = "on" if on else "off"
    _require_root(f"turn debug {word} for quic", f"debug {word}")
    if not is_loaded(s):
        raise QuicctlError(
            f"cannot turn debug {word} for quic: the module is not loaded (quicctl load)"
        )
    ctl = control_file(system=s)
    try:
        with open(ctl, "w") as f:
            f.write(f"module {MODULE} {'+p' if on else '-p'}\n")
    except OSError as exc:
        raise QuicctlError(
            f"cannot turn debug {word} for quic: writing {ctl} failed: {exc.strerror or exc}"
        ) from None
    return sum(site["enabled"] for site in debug_status(system=s))


def debug_status(*, system: System | None = None) -> list[dict]:
    """quic's dynamic debug call sites: file, line, function, flags, enabled, format.

    Empty when quic is not loaded (debugfs is then left alone).
    """
    s = _sys(system)
    if not is_loaded(s):
        return []
    _require_root("list quic's dynamic debug call sites", "debug status")
    ctl = control_file(system=s)
    try:
        text = ctl.read_text(errors="replace")
    except OSError as exc:
        raise QuicctlError(f"cannot read {ctl}: {exc.strerror or exc} (run as root?)") from None
    sites = []
    for line in text.splitlines():
        m = _DDEBUG_RE.match(line)
        if m and m["module"] == MODULE:
            flags = m["flags"]
            sites.append(
                {
                    "file": m["file"],
                    "line": int(m["line"]),
                    "function": m["function"],
                    "flags": flags,
                    "enabled": "p" in flags,
                    "format": m["format"],
                }
            )
    return sites
