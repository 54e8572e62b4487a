"""`quicctl man`: the quicctl(8) manual page, generated from the click command tree.

Every command and subcommand, its usage, help and options come from the commands themselves
(hidden options are internal and left out); the sections a command tree cannot know (exit
status, environment, files, completion, examples) are written here.  The output is
deterministic (no date), so the copy checked in as man/quicctl.8 can be compared with a fresh
generation.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import click

from quicctl import __version__
from quicctl.errors import QuicctlError

# Variables quicctl reads (selftests/test_man.py checks this against os.environ in quicctl/).
ENVIRONMENT = [
    ("QUICCTL_BUILD_DIR", "Where builds go (default: build/ in the source tree)."),
    ("QUICCTL_CACHE", "Cache directory (default: ~/.cache/quicctl); unpacked debug kernels."),
    (
        "QUICCTL_DEBUG_KERNEL_DIR",
        "Directory holding the debug kernel's tarball for --debug-kernel "
        "(default: ../shared/debug-kernel next to the source tree).",
    ),
    (
        "QUICCTL_UAPI_HEADER",
        "The UAPI header quicctl.abi reads its constants and structures from "
        "(default: kernel/include/uapi/linux/quic.h).",
    ),
    ("CPP", "C preprocessor used to read the UAPI header (default: cc -E, else gcc or clang)."),
    (
        "SSLKEYLOGFILE",
        "TLS handshakes quicctl runs (over quic.ko and with --userspace) append their "
        "secrets to this file (NSS key log format, for tshark and Wireshark).",
    ),
    (
        "QUICCTL_SCALE_CONNS",
        "test: connections opened by test_scale (default 50); passed into the VM.",
    ),
    ("QUICCTL_FUZZ_SEED", "test: seed of the fuzz selftests; passed into the VM."),
    ("QUICCTL_IN_VM", "Set to 1 by quicctl inside its guest; not meant to be set by hand."),
    ("DEBFULLNAME", "package deb: the Maintainer's name (default: git's user.name)."),
    ("DEBEMAIL", "package deb: the Maintainer's address (default: git's user.email)."),
    (
        "SOURCE_DATE_EPOCH",
        "package deb: the time stamp of every file in the package (default: the last commit's "
        "time), so that two builds are identical.",
    ),
    (
        "PATH",
        "Searched for the tools quicctl runs; /usr/sbin and /sbin are added for the module "
        "tools (modprobe, insmod, rmmod).",
    ),
    ("LANG, LC_*", "Removed from the environment of make, so compiler messages are in English."),
    ("_QUICCTL_COMPLETE", "Shell completion protocol of click (see SHELL COMPLETION)."),
]

FILES = [
    ("build/RELEASE/quic.ko", "The module quicctl build writes for kernel RELEASE."),
    ("kernel/dkms.conf", "DKMS description used by quicctl dkms."),
    ("/usr/src/quic-VERSION", "The copy of the sources quicctl dkms install gives DKMS."),
    ("/proc/net/quic/snmp, /proc/net/quic/cong",
     "Counters and per-connection state read by quicctl status."),
    ("keys/", "Test CA, certificate and key used by demo, bench and the selftests."),
    ("packaging/quicctl-agent.service", "systemd unit running quicctl agent."),
]  # fmt: skip

EXAMPLES = [
    ("Build for the running kernel, load and show the state:",
     ["quicctl build", "quicctl load", "quicctl status"]),
    ("On a host that cannot load modules, the same in a QEMU guest:",
     ["quicctl build && quicctl vm -- sh -c 'quicctl load && quicctl status'"]),
    ("Serve the current directory and fetch a file from it:",
     ["quicctl server 127.0.0.1 4433 keys/pkey.key keys/cert.crt --root . &",
      "quicctl client 127.0.0.1 4433 /README.md --cafile keys/ca.crt \\",
      "    --server-name server.quic.test"]),
    ("Run the selftests whose names match connection:", ["quicctl test -k connection"]),
    ("Install the manual page:", ["quicctl man --output /usr/local/share/man/man8"]),
]  # fmt: skip


SEE_ALSO = [("quic", 7), ("modprobe", 8), ("dkms", 8), ("tlshd", 8), ("ss", 8), ("vng", 1)]


def escape(text: str) -> str:
    """Text for a roff line: backslashes and hyphens escaped, control characters at the
    start of a line neutralised."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def _paragraphs(help_text: str) -> list[str]:
    """click's help text as roff: paragraphs filled, `\\b` paragraphs kept line by line."""
    out = []
    for para in re.split(r"\n\s*\n", inspect.cleandoc(help_text).split("\f")[0]):
        if para.startswith("\b"):
            lines = para[1:].strip("\n")
            out.append(".PP\n.nf\n" + escape(lines) + "\n.fi")
        elif para.strip():
            out.append(".PP\n" + escape(" ".join(para.split())))
    return out


def _option_tag(record: str) -> str:
    """`-j, --jobs INTEGER RANGE` -> names in bold, the value's metavar in italics."""
    words = []
    for word in record.split():
        if word.startswith("-"):
            comma = "," if word.endswith(",") else ""
            names = word.rstrip(",").split("/")
            words.append("/".join(f"\\fB{escape(n)}\\fR" for n in names) + comma)
        else:
            words.append(f"\\fI{escape(word)}\\fR")
    return " ".join(words)


def _options(cmd: click.Command, ctx: click.Context) -> list[str]:
    out = []
    for param in cmd.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        out.append(f".TP\n{_option_tag(record[0])}\n{escape(record[1])}")
    return out


def _usage(path: list[str], cmd: click.Command, ctx: click.Context) -> str:
    return escape(" ".join(path + cmd.collect_usage_pieces(ctx)))


Tree = list[tuple[list[str], click.Command, click.Context]]


def commands(root: click.Group, ctx: click.Context) -> Tree:
    """Every command below `root`, depth first, groups before their subcommands."""
    out = []
    for name in sorted(root.commands):
        cmd = root.commands[name]
        if cmd.hidden:
            continue
        sub = click.Context(cmd, info_name=name, parent=ctx, **cmd.context_settings)
        out.append(([*ctx.command_path.split(), name], cmd, sub))
        if isinstance(cmd, click.Group):
            out.extend(commands(cmd, sub))
    return out


def _section(title: str, body: list[str]) -> list[str]:
    return [f".SH {title}", *body]


def render(root: click.Group) -> str:
    """The quicctl(8) page for the command tree `root`."""
    ctx = click.Context(root, info_name="quicctl", **root.context_settings)
    tree = commands(root, ctx)
    page = [
        '.\\" Generated by `quicctl man` from the click commands; do not edit.',
        f'.TH QUICCTL 8 "" "quicctl {escape(__version__)}" "System Administration"',
        ".SH NAME",
        "quicctl \\- build, load, debug, demonstrate, benchmark and test the in\\-kernel "
        "QUIC module",
        ".SH SYNOPSIS",
        ".B quicctl",
        "[\\fB\\-\\-debug\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".br",
        ".B quicctl",
        "\\fB\\-\\-version\\fR | \\fB\\-h\\fR | \\fB\\-\\-help\\fR",
        ".SH DESCRIPTION",
        *_paragraphs(root.help or ""),
        ".PP",
        "The module itself, quic.ko, gives programs QUIC through ordinary sockets; see",
        ".BR quic (7).",
        "Every command accepts \\fB\\-h\\fR and \\fB\\-\\-help\\fR. Errors are one line on "
        "standard error naming the object and the likely cause; \\fB\\-\\-debug\\fR shows the "
        "Python traceback instead.",
        ".SH OPTIONS",
        *_options(root, ctx),
        ".SH COMMANDS",
    ]
    for path, cmd, sub in tree:
        page.append(f'.SS "{_usage(path, cmd, sub)}"')
        page.extend(_paragraphs(cmd.help or cmd.short_help or ""))
        if isinstance(cmd, click.Group):
            names = ", ".join(f"\\fB{escape(n)}\\fR" for n in sorted(cmd.commands))
            page.extend([".PP", f"Subcommands: {names}."])
        page.extend(_options(cmd, sub))
    page += _section(
        "EXIT STATUS",
        [
            ".TP\n.B 0\nSuccess.",
            ".TP\n.B 1\nThe operation failed (a one\\-line message says why); for \\fBclient\\fR, "
            "any file missing or refused; for \\fBvm\\fR and \\fBtest\\fR also a kernel log "
            "showing BUG, WARNING, Oops, KASAN, UBSAN or a leak.",
            ".TP\n.B 2\nUsage error: an unknown command or option, a missing or invalid "
            "argument (click's convention).",
            ".PP\n\\fBvm\\fR exits with the status of the command it ran in the guest "
            "(1 also when the guest's kernel log is not clean); \\fBtest\\fR with 0 when every "
            "selected test passed, else 1.",
        ],
    )
    page += _section(
        "ENVIRONMENT",
        [f".TP\n.B {escape(name)}\n{escape(text)}" for name, text in ENVIRONMENT],
    )
    page += _section(
        "FILES",
        [".PP\nPaths without a leading / are relative to the source tree quicctl runs from."]
        + [f".TP\n.I {escape(name)}\n{escape(text)}" for name, text in FILES],
    )
    page += _section(
        "SHELL COMPLETION",
        [
            ".PP",
            "quicctl completes commands, subcommands, options and choices through click's "
            "completion protocol. Load it in the running shell, or save the script once:",
            ".PP\n.nf\n.RS",
            escape('eval "$(_QUICCTL_COMPLETE=bash_source quicctl)"          # bash, ~/.bashrc'),
            escape('eval "$(_QUICCTL_COMPLETE=zsh_source quicctl)"           # zsh, ~/.zshrc'),
            escape("_QUICCTL_COMPLETE=fish_source quicctl | source          # fish"),
            escape("_QUICCTL_COMPLETE=bash_source quicctl > /etc/bash_completion.d/quicctl"),
            ".RE\n.fi",
            ".PP",
            "Bash needs version 4.4 or later.",
        ],
    )
    examples = []
    for text, lines in EXAMPLES:
        examples += [".PP", escape(text), ".PP\n.nf\n.RS", *map(escape, lines), ".RE\n.fi"]
    page += _section("EXAMPLES", examples)
    page += _section(
        "SEE ALSO",
        [",\n".join(f".BR {name} ({sec})" for name, sec in SEE_ALSO)],
    )
    return "\n".join(page) + "\n"


@click.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    metavar="DIR",
    help="Write DIR/quicctl.8 (DIR is created) instead of printing the page.",
)
@click.pass_context
def man(ctx: click.Context, output: Path | None) -> None:
    """Print the quicctl(8) manual page, generated from these commands (roff).

    Read it with `quicctl man | man -l -`; the socket API is in quic(7) (man/quic.7).
    """
    root = ctx.find_root().command
    text = render(root)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.mkdir(parents=True, exist_ok=True)
        (output / "quicctl.8").write_text(text)
    except OSError as exc:
        raise QuicctlError(f"{output}: cannot write quicctl.8 there ({exc.strerror})") from exc
    click.echo(output / "quicctl.8")


COMMANDS = [man]
