"""The UAPI header against the reference ABI (../shared/reference/linux-quic-abi.md, sections 1-2).

Every number below is typed in from the reference document, never derived from the header, so
a wrong header fails here.  Each table is checked twice:

* through ``quicctl.abi`` (cffi reading the header), and
* through a C probe generated from the same tables, compiled with gcc against
  ``-I kernel/include/uapi`` twice: with our header first (it must be self-contained) and with
  ``<sys/socket.h>`` before it.  The probe prints sizeof/offsetof/alignof, field types, constant
  values and macro-ness; the output is compared to the tables.

No kernel module is needed.  Sizes are x86_64 (LP64) ones; elsewhere the layout tests skip.
"""

from __future__ import annotations

import errno
import platform
import re
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import require

from quicctl import abi

# Pure userspace (gnutls, the header, gcc): the host runs them in seconds, the TCG guest in
# minutes.
pytestmark = pytest.mark.host

ROOT = Path(__file__).resolve().parent.parent
UAPI_DIR = Path(abi.default_header()).resolve().parent.parent  # .../kernel/include/uapi
HEADER = UAPI_DIR / "linux" / "quic.h"

lp64 = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="reference sizes are x86_64 (LP64) ones"
)


# --------------------------------------------------------------------------------------------
# Reference tables (typed from the reference document)
# --------------------------------------------------------------------------------------------

# Reference section 1.1, 1.3, 1.6, 1.13: plain macros (usable in #if).
MACROS: dict[str, int] = {
    "SOL_QUIC": 288,
    "QUIC_STREAM_TYPE_SERVER_MASK": 0x01,
    "QUIC_STREAM_TYPE_UNI_MASK": 0x02,
    "QUIC_STREAM_TYPE_MASK": 0x03,
    "QUIC_SOCKOPT_EVENT": 0,
    "QUIC_SOCKOPT_STREAM_OPEN": 1,
    "QUIC_SOCKOPT_STREAM_RESET": 2,
    "QUIC_SOCKOPT_STREAM_STOP_SENDING": 3,
    "QUIC_SOCKOPT_CONNECTION_ID": 4,
    "QUIC_SOCKOPT_CONNECTION_CLOSE": 5,
    "QUIC_SOCKOPT_CONNECTION_MIGRATION": 6,
    "QUIC_SOCKOPT_KEY_UPDATE": 7,
    "QUIC_SOCKOPT_TRANSPORT_PARAM": 8,
    "QUIC_SOCKOPT_CONFIG": 9,
    "QUIC_SOCKOPT_TOKEN": 10,
    "QUIC_SOCKOPT_ALPN": 11,
    "QUIC_SOCKOPT_SESSION_TICKET": 12,
    "QUIC_SOCKOPT_CRYPTO_SECRET": 13,
    "QUIC_SOCKOPT_TRANSPORT_PARAM_EXT": 14,
    "QUIC_CRYPTO_SECRET_BUFFER_SIZE": 48,
    "QUIC_CLOSE_PHRASE_BUFFER_SIZE": 64,
}

# Names the upstream header does not define, which programs written for it may define
# themselves: ours must not define them either (the section 1.4 masks live in net/quic/quic.h).
NOT_UAPI = ("QUIC_MSG_STREAM_FLAGS", "QUIC_MSG_SENDMSG_FLAGS")

# Named enums: enum tag -> exactly these enumerators (sections 1.2, 1.4, 1.5, 1.9, 1.10).
NAMED_ENUMS: dict[str, dict[str, int]] = {
    "quic_cmsg_type": {"QUIC_STREAM_INFO": 0, "QUIC_HANDSHAKE_INFO": 1},
    "quic_msg_flags": {
        "MSG_QUIC_STREAM_NEW": 0x400,
        "MSG_QUIC_STREAM_FIN": 0x200,
        "MSG_QUIC_STREAM_UNI": 0x800,
        "MSG_QUIC_STREAM_DONTWAIT": 0x10000,
        "MSG_QUIC_STREAM_SNDBLOCK": 0x2000,
        "MSG_QUIC_DATAGRAM": 0x1000,
        "MSG_QUIC_NOTIFICATION": 0x8000,
    },
    "quic_crypto_level": {
        "QUIC_CRYPTO_APP": 0,
        "QUIC_CRYPTO_INITIAL": 1,
        "QUIC_CRYPTO_HANDSHAKE": 2,
        "QUIC_CRYPTO_EARLY": 3,
        "QUIC_CRYPTO_MAX": 4,
    },
    "quic_cong_algo": {"QUIC_CONG_ALG_RENO": 0, "QUIC_CONG_ALG_CUBIC": 1, "QUIC_CONG_ALG_MAX": 2},
    "quic_event_type": {
        "QUIC_EVENT_NONE": 0,
        "QUIC_EVENT_STREAM_UPDATE": 1,
        "QUIC_EVENT_STREAM_MAX_DATA": 2,
        "QUIC_EVENT_STREAM_MAX_STREAM": 3,
        "QUIC_EVENT_CONNECTION_ID": 4,
        "QUIC_EVENT_CONNECTION_CLOSE": 5,
        "QUIC_EVENT_CONNECTION_MIGRATION": 6,
        "QUIC_EVENT_KEY_UPDATE": 7,
        "QUIC_EVENT_NEW_TOKEN": 8,
        "QUIC_EVENT_NEW_SESSION_TICKET": 9,
        "QUIC_EVENT_MAX": 10,
    },
}

# Anonymous-enum members (sections 1.11, 1.12); they must not be macros.
ANON_ENUMERATORS: dict[str, int] = {
    "QUIC_STREAM_SEND_STATE_READY": 0,
    "QUIC_STREAM_SEND_STATE_SEND": 1,
    "QUIC_STREAM_SEND_STATE_SENT": 2,
    "QUIC_STREAM_SEND_STATE_RECVD": 3,
    "QUIC_STREAM_SEND_STATE_RESET_SENT": 4,
    "QUIC_STREAM_SEND_STATE_RESET_RECVD": 5,
    "QUIC_STREAM_RECV_STATE_RECV": 6,
    "QUIC_STREAM_RECV_STATE_SIZE_KNOWN": 7,
    "QUIC_STREAM_RECV_STATE_RECVD": 8,
    "QUIC_STREAM_RECV_STATE_READ": 9,
    "QUIC_STREAM_RECV_STATE_RESET_RECVD": 10,
    "QUIC_STREAM_RECV_STATE_RESET_READ": 11,
    "QUIC_TRANSPORT_ERROR_NONE": 0x00,
    "QUIC_TRANSPORT_ERROR_INTERNAL": 0x01,
    "QUIC_TRANSPORT_ERROR_CONNECTION_REFUSED": 0x02,
    "QUIC_TRANSPORT_ERROR_FLOW_CONTROL": 0x03,
    "QUIC_TRANSPORT_ERROR_STREAM_LIMIT": 0x04,
    "QUIC_TRANSPORT_ERROR_STREAM_STATE": 0x05,
    "QUIC_TRANSPORT_ERROR_FINAL_SIZE": 0x06,
    "QUIC_TRANSPORT_ERROR_FRAME_ENCODING": 0x07,
    "QUIC_TRANSPORT_ERROR_TRANSPORT_PARAM": 0x08,
    "QUIC_TRANSPORT_ERROR_CONNECTION_ID_LIMIT": 0x09,
    "QUIC_TRANSPORT_ERROR_PROTOCOL_VIOLATION": 0x0A,
    "QUIC_TRANSPORT_ERROR_INVALID_TOKEN": 0x0B,
    "QUIC_TRANSPORT_ERROR_APPLICATION": 0x0C,
    "QUIC_TRANSPORT_ERROR_CRYPTO_BUF_EXCEEDED": 0x0D,
    "QUIC_TRANSPORT_ERROR_KEY_UPDATE": 0x0E,
    "QUIC_TRANSPORT_ERROR_AEAD_LIMIT_REACHED": 0x0F,
    "QUIC_TRANSPORT_ERROR_NO_VIABLE_PATH": 0x10,
    "QUIC_TRANSPORT_ERROR_VERSION_NEGOTIATION": 0x11,
    "QUIC_TRANSPORT_ERROR_CRYPTO": 0x0100,
}

# Section 1.1: anonymous-enum member plus a macro expanding to it.
IPPROTO = {"IPPROTO_QUIC": 261}

# Section 1.7: the form is not specified, only the values.
VERSIONS = {"QUIC_VERSION_V1": 0x00000001, "QUIC_VERSION_V2": 0x6B3343CF}

# Sections 1.4 and 1.8: generic values our header builds on (from <sys/socket.h>, <linux/tls.h>).
SYSTEM = {
    "MSG_SYN": 0x400,
    "MSG_FIN": 0x200,
    "MSG_CONFIRM": 0x800,
    "MSG_WAITFORONE": 0x10000,
    "MSG_ERRQUEUE": 0x2000,
    "MSG_RST": 0x1000,
    "MSG_MORE": 0x8000,
    "MSG_BATCH": 0x40000,
    "MSG_DONTWAIT": 0x40,
    "MSG_NOSIGNAL": 0x4000,
    "MSG_WAITALL": 0x100,
    "MSG_PEEK": 0x2,
    "MSG_CTRUNC": 0x8,
    "MSG_EOR": 0x80,
    "TLS_CIPHER_AES_GCM_128": 51,
    "TLS_CIPHER_AES_GCM_256": 52,
    "TLS_CIPHER_AES_CCM_128": 53,
    "TLS_CIPHER_CHACHA20_POLY1305": 54,
}

ALL_CONSTANTS: dict[str, int] = {
    **MACROS,
    **{k: v for e in NAMED_ENUMS.values() for k, v in e.items()},
    **ANON_ENUMERATORS,
    **IPPROTO,
    **VERSIONS,
    **SYSTEM,
}

# Section 1.4 masks as combinations of the flags.
STREAM_MASK_FLAGS = [
    "MSG_QUIC_STREAM_NEW",
    "MSG_QUIC_STREAM_FIN",
    "MSG_QUIC_STREAM_UNI",
    "MSG_QUIC_STREAM_DONTWAIT",
    "MSG_QUIC_STREAM_SNDBLOCK",
]
SENDMSG_EXTRA_FLAGS = [
    "MSG_BATCH",
    "MSG_MORE",
    "MSG_DONTWAIT",
    "MSG_NOSIGNAL",
    "MSG_WAITALL",
    "MSG_QUIC_DATAGRAM",
]

# Section 2: C type -> (size, alignment, [(field, offset, size, type)]) in declaration order.
Field = tuple[str, int, int, str]
STRUCTS: dict[str, tuple[int, int, list[Field]]] = {
    "struct quic_handshake_info": (1, 1, [("crypto_level", 0, 1, "__u8")]),
    "struct quic_stream_info": (
        16,
        8,
        [("stream_id", 0, 8, "__s64"), ("stream_flags", 8, 4, "__u32")],
    ),
    "struct quic_transport_param": (
        56,
        8,
        [
            ("remote", 0, 1, "__u8"),
            ("disable_active_migration", 1, 1, "__u8"),
            ("grease_quic_bit", 2, 1, "__u8"),
            ("stateless_reset", 3, 1, "__u8"),
            ("disable_1rtt_encryption", 4, 1, "__u8"),
            ("disable_compatible_version", 5, 1, "__u8"),
            ("active_connection_id_limit", 6, 1, "__u8"),
            ("ack_delay_exponent", 7, 1, "__u8"),
            ("max_datagram_frame_size", 8, 2, "__u16"),
            ("max_udp_payload_size", 10, 2, "__u16"),
            ("max_idle_timeout", 12, 4, "__u32"),
            ("max_ack_delay", 16, 4, "__u32"),
            ("max_streams_bidi", 20, 2, "__u16"),
            ("max_streams_uni", 22, 2, "__u16"),
            ("max_data", 24, 8, "__u64"),
            ("max_stream_data_bidi_local", 32, 8, "__u64"),
            ("max_stream_data_bidi_remote", 40, 8, "__u64"),
            ("max_stream_data_uni", 48, 8, "__u64"),
        ],
    ),
    "struct quic_config": (
        28,
        4,
        [
            ("version", 0, 4, "__u32"),
            ("plpmtud_probe_interval", 4, 4, "__u32"),
            ("initial_smoothed_rtt", 8, 4, "__u32"),
            ("payload_cipher_type", 12, 4, "__u32"),
            ("congestion_control_algo", 16, 1, "__u8"),
            ("validate_peer_address", 17, 1, "__u8"),
            ("stream_data_nodelay", 18, 1, "__u8"),
            ("receive_session_ticket", 19, 1, "__u8"),
            ("certificate_request", 20, 1, "__u8"),
            ("reserved", 21, 3, "__u8[3]"),
            ("keepalive_probe_interval", 24, 4, "__u32"),
        ],
    ),
    "struct quic_crypto_secret": (
        56,
        4,
        [
            ("send", 0, 1, "__u8"),
            ("level", 1, 1, "__u8"),
            ("reserved", 2, 2, "__u16"),
            ("type", 4, 4, "__u32"),
            ("secret", 8, 48, "__u8[48]"),
        ],
    ),
    "struct quic_errinfo": (16, 8, [("stream_id", 0, 8, "__s64"), ("errcode", 8, 4, "__u32")]),
    "struct quic_connection_id_info": (
        12,
        4,
        [
            ("dest", 0, 1, "__u8"),
            ("reserved", 1, 3, "__u8[3]"),
            ("active", 4, 4, "__u32"),
            ("prior_to", 8, 4, "__u32"),
        ],
    ),
    "struct quic_event_option": (2, 1, [("type", 0, 1, "__u8"), ("on", 1, 1, "__u8")]),
    "struct quic_stream_update": (
        24,
        8,
        [
            ("id", 0, 8, "__s64"),
            ("state", 8, 1, "__u8"),
            ("reserved", 9, 3, "__u8[3]"),
            ("errcode", 12, 4, "__u32"),
            ("finalsz", 16, 8, "__u64"),
        ],
    ),
    "struct quic_stream_max_data": (
        16,
        8,
        [("id", 0, 8, "__s64"), ("max_data", 8, 8, "__u64")],
    ),
    "struct quic_connection_close": (
        72,
        4,
        [
            ("errcode", 0, 4, "__u32"),
            ("frame", 4, 1, "__u8"),
            ("reserved", 5, 3, "__u8[3]"),
            ("phrase", 8, 64, "__u8[64]"),
        ],
    ),
    "union quic_event": (
        72,
        8,
        [
            ("update", 0, 24, "struct quic_stream_update"),
            ("max_data", 0, 16, "struct quic_stream_max_data"),
            ("close", 0, 72, "struct quic_connection_close"),
            ("info", 0, 12, "struct quic_connection_id_info"),
            ("max_stream", 0, 8, "__u64"),
            ("local_migration", 0, 1, "__u8"),
            ("key_update_phase", 0, 1, "__u8"),
        ],
    ),
}

# Section 2.13: the address structs CONNECTION_MIGRATION takes (system layouts; no type check).
SOCKADDRS: dict[str, tuple[int, list[tuple[str, int, int]]]] = {
    "struct sockaddr_in": (
        16,
        [("sin_family", 0, 2), ("sin_port", 2, 2), ("sin_addr", 4, 4), ("sin_zero", 8, 8)],
    ),
    "struct sockaddr_in6": (
        28,
        [
            ("sin6_family", 0, 2),
            ("sin6_port", 2, 2),
            ("sin6_flowinfo", 4, 4),
            ("sin6_addr", 8, 16),
            ("sin6_scope_id", 24, 4),
        ],
    ),
}

# Section 1.2: CMSG_LEN / CMSG_SPACE on x86_64.
CMSG = {"CMSG_LEN(1)": 17, "CMSG_SPACE(1)": 24, "CMSG_LEN(16)": 32, "CMSG_SPACE(16)": 32}

# Section 3: argument of each option.
OPTION_KINDS = {
    "EVENT": "struct quic_event_option",
    "STREAM_OPEN": "struct quic_stream_info",
    "STREAM_RESET": "struct quic_errinfo",
    "STREAM_STOP_SENDING": "struct quic_errinfo",
    "CONNECTION_ID": "struct quic_connection_id_info",
    "CONNECTION_CLOSE": "struct quic_connection_close",
    "CONNECTION_MIGRATION": "sockaddr",
    "KEY_UPDATE": "none",
    "TRANSPORT_PARAM": "struct quic_transport_param",
    "CONFIG": "struct quic_config",
    "TOKEN": "bytes",
    "ALPN": "bytes",
    "SESSION_TICKET": "bytes",
    "CRYPTO_SECRET": "struct quic_crypto_secret",
    "TRANSPORT_PARAM_EXT": "bytes",
}

# --------------------------------------------------------------------------------------------
# The C probe
# --------------------------------------------------------------------------------------------

PROBE_HEAD = """\
/* Generated by selftests/test_abi.py: prints the ABI as the C compiler sees it. */
#ifdef SOCKET_FIRST
#include <sys/socket.h>
#endif
#include <linux/quic.h>	/* must compile on its own: nothing but SOCKET_FIRST before it */

#include <stddef.h>
#include <stdio.h>
#include <netinet/in.h>
#include <linux/tls.h>

#define P(kind, key, val) printf("%s\\t%s\\t%lld\\n", kind, key, (long long)(val))
#define MEMBER(t, f) (((t *)0)->f)

int main(void)
{
"""


def probe_source() -> str:
    out = [PROBE_HEAD]
    add = out.append
    for ctype, (_size, _align, fields) in STRUCTS.items():
        add(f'\tP("size", "{ctype}", sizeof({ctype}));\n')
        add(f'\tP("align", "{ctype}", __alignof__({ctype}));\n')
        for name, _off, _fsize, ftype in fields:
            key = f"{ctype}.{name}"
            add(f'\tP("offset", "{key}", offsetof({ctype}, {name}));\n')
            add(f'\tP("fsize", "{key}", sizeof(MEMBER({ctype}, {name})));\n')
            add(
                f'\tP("ftype", "{key}", __builtin_types_compatible_p('
                f"__typeof__(MEMBER({ctype}, {name})), {ftype}));\n"
            )
    for ctype, (_size, fields) in SOCKADDRS.items():
        add(f'\tP("size", "{ctype}", sizeof({ctype}));\n')
        for name, _off, _fsize in fields:
            add(f'\tP("offset", "{ctype}.{name}", offsetof({ctype}, {name}));\n')
            add(f'\tP("fsize", "{ctype}.{name}", sizeof(MEMBER({ctype}, {name})));\n')
    for name in ALL_CONSTANTS:
        add(f'\tP("const", "{name}", {name});\n')
    for name, value in MACROS.items():  # a plain macro: defined and right inside #if
        add(f'#if defined({name}) && ({name}) == {value}\n\tP("macro", "{name}", 1);\n#endif\n')
    for name in [*ANON_ENUMERATORS, *(k for e in NAMED_ENUMS.values() for k in e)]:
        add(f'#ifdef {name}\n\tP("ismacro", "{name}", 1);\n#endif\n')
    for name in IPPROTO:  # defined, but as an identifier (an enumerator is 0 inside #if)
        add(f'#if defined({name}) && {name} == 0\n\tP("enum_macro", "{name}", 1);\n#endif\n')
    for tag in NAMED_ENUMS:
        add(f'\tP("enumsize", "enum {tag}", sizeof(enum {tag}));\n')
    for expr in CMSG:
        add(f'\tP("cmsg", "{expr}", {expr});\n')
    add(
        '\tP("cmsg", "CMSG_LEN(sizeof(struct quic_handshake_info))", '
        "CMSG_LEN(sizeof(struct quic_handshake_info)));\n"
    )
    add(
        '\tP("cmsg", "CMSG_SPACE(sizeof(struct quic_stream_info))", '
        "CMSG_SPACE(sizeof(struct quic_stream_info)));\n"
    )
    stream = " | ".join(STREAM_MASK_FLAGS)
    add(f'\tP("mask", "stream", {stream});\n')
    add(f'\tP("mask", "sendmsg", {stream} | {" | ".join(SENDMSG_EXTRA_FLAGS)});\n')
    add("\treturn 0;\n}\n")
    return "".join(out)


ProbeOut = dict[tuple[str, str], int]

VARIANTS = {"header-first": [], "socket-first": ["-DSOCKET_FIRST"]}


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ProbeOut]:
    """Compile and run the probe once per variant: {variant: {(kind, key): value}}."""
    require("gcc")
    tmp = tmp_path_factory.mktemp("abi_probe")
    src = tmp / "abi_probe.c"
    src.write_text(probe_source())
    results: dict[str, ProbeOut] = {}
    for variant, defines in VARIANTS.items():
        exe = tmp / f"abi_probe-{variant}"
        cmd = [
            "gcc",
            "-std=gnu11",
            "-Wall",
            "-Wextra",
            "-Werror",
            *defines,
            "-I",
            str(UAPI_DIR),
            "-o",
            str(exe),
            str(src),
        ]
        cc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert cc.returncode == 0, f"{' '.join(cmd)}\n{cc.stderr}"
        run = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
        parsed: ProbeOut = {}
        for line in run.stdout.splitlines():
            kind, key, value = line.split("\t")
            parsed[(kind, key)] = int(value)
        results[variant] = parsed
    return results


def _probe_mismatches(out: ProbeOut, expected: dict[tuple[str, str], int]) -> list[str]:
    return [
        f"{kind} {key}: probe {out.get((kind, key))}, reference {want}"
        for (kind, key), want in expected.items()
        if out.get((kind, key)) != want
    ]


# --------------------------------------------------------------------------------------------
# Header hygiene (cffi must stay able to read it; kernel UAPI rules)
# --------------------------------------------------------------------------------------------


def _header_code() -> str:
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def test_header_boilerplate() -> None:
    text = HEADER.read_text()
    assert text.splitlines()[0] == (
        "/* SPDX-License-Identifier: GPL-2.0+ WITH Linux-syscall-note */"
    )
    code = _header_code()
    assert re.search(r"#ifndef _UAPI_LINUX_QUIC_H\s+#define _UAPI_LINUX_QUIC_H\b", code)
    assert "#include <linux/types.h>" in code
    assert re.search(
        r"#ifdef __KERNEL__\s+#include <linux/socket.h>\s+#else\s+#include <sys/socket.h>\s+#endif",
        code,
    )
    assert re.search(r"#define IPPROTO_QUIC IPPROTO_QUIC\b", code)


def test_header_is_cffi_friendly() -> None:
    code = _header_code()
    assert not re.findall(r"#\s*define\s+\w+\(", code), "function-like macro"
    assert "__attribute__" not in code and "packed" not in code and "aligned" not in code
    assert not re.findall(r"\[\s*0?\s*\]", code), "zero-length or flexible array"
    assert not re.findall(r"\b\w+\s*:\s*\d+\s*;", code), "bitfield"
    assert "TLS_CIPHER_" not in code, "TLS_CIPHER_* belong to <linux/tls.h>"
    assert "<linux/tls.h>" not in code
    # Every macro other than the guard and IPPROTO_QUIC is a plain integer literal.
    for name, body in re.findall(r"#define\s+(\w+)[ \t]*([^\n]*)", code):
        if name in ("_UAPI_LINUX_QUIC_H", "IPPROTO_QUIC"):
            continue
        assert re.fullmatch(r"(0x[0-9a-fA-F]+|[0-9]+)\s*", body), f"{name} = {body!r}"
    # Kernel types only: no <stdint.h> types, no plain long (differs between ABIs).
    assert not re.findall(r"\b(u?int\d+_t|long)\b", code)


# --------------------------------------------------------------------------------------------
# Through quicctl.abi (cffi)
# --------------------------------------------------------------------------------------------

CFFI_TYPES = {
    "__u8": "unsigned char",
    "__u16": "unsigned short",
    "__u32": "unsigned int",
    "__u64": "unsigned long long",
    "__s64": "long long",
}


def _cffi_type(t: str) -> str:
    m = re.fullmatch(r"(__\w+)\[(\d+)\]", t)
    if m:
        return f"{CFFI_TYPES[m.group(1)]}[{m.group(2)}]"
    return CFFI_TYPES.get(t, t)


@lp64
@pytest.mark.parametrize("ctype", list(STRUCTS))
def test_cffi_layout(ctype: str) -> None:
    size, align, fields = STRUCTS[ctype]
    assert abi.struct_size(ctype) == size
    assert abi.struct_align(ctype) == align
    assert list(abi.field_offsets(ctype).items()) == [(f[0], f[1]) for f in fields]
    ct = abi.ffi.typeof(ctype)
    got = [(name, abi.ffi.sizeof(f.type), f.type.cname) for name, f in ct.fields]
    assert got == [(f[0], f[2], _cffi_type(f[3])) for f in fields]
    assert all(f.bitsize == -1 for _n, f in ct.fields), "bitfield"


def test_cffi_struct_names_without_prefix() -> None:
    assert abi.struct_size("quic_config") == abi.struct_size("struct quic_config")
    assert abi.struct_size("quic_event") == abi.struct_size("union quic_event")
    with pytest.raises(KeyError):
        abi.struct_size("quic_no_such_struct")


@lp64
@pytest.mark.parametrize("ctype", list(SOCKADDRS))
def test_cffi_sockaddr_layout(ctype: str) -> None:
    size, fields = SOCKADDRS[ctype]
    assert abi.struct_size(ctype) == size
    assert list(abi.field_offsets(ctype).items()) == [(f[0], f[1]) for f in fields]


def test_cffi_constants() -> None:
    consts = abi.constants()
    wrong = {
        name: (consts.get(name), want)
        for name, want in ALL_CONSTANTS.items()
        if consts.get(name) != want or getattr(abi, name, None) != want
    }
    assert not wrong, f"name: (quicctl.abi, reference): {wrong}"


def test_cffi_named_enums() -> None:
    for tag, members in NAMED_ENUMS.items():
        ct = abi.ffi.typeof(f"enum {tag}")
        assert ct.relements == members, tag
        assert abi.ffi.sizeof(ct) == 4, f"enum {tag} must have int size"


def test_no_unexpected_names() -> None:
    """Every QUIC name the header defines is in the reference tables (catches typos)."""
    ours = {
        k
        for k in abi.constants()
        if k.startswith(("QUIC_", "MSG_QUIC_", "IPPROTO_QUIC", "SOL_QUIC"))
    }
    assert ours == {k for k in ALL_CONSTANTS if k not in SYSTEM}


def test_cffi_masks() -> None:
    stream = 0
    for flag in STREAM_MASK_FLAGS:
        stream |= getattr(abi, flag)
    sendmsg = stream
    for flag in SENDMSG_EXTRA_FLAGS:
        sendmsg |= getattr(abi, flag)
    assert stream == 0x12E00
    assert sendmsg == 0x5FF40


def test_option_kinds() -> None:
    assert abi.OPTIONS == OPTION_KINDS
    for short, kind in OPTION_KINDS.items():
        assert abi.option_number(short) == MACROS[f"QUIC_SOCKOPT_{short}"]
        assert abi.option_name(MACROS[f"QUIC_SOCKOPT_{short}"]) == f"QUIC_SOCKOPT_{short}"
        if kind.startswith("struct "):
            assert abi.struct_size(kind) == STRUCTS[kind][0]


def test_struct_round_trip() -> None:
    raw = abi.to_bytes("quic_connection_close", errcode=0x10A, frame=6, phrase="bye")
    assert len(raw) == 72
    assert raw[:8] == (0x10A).to_bytes(4, "little") + b"\x06\0\0\0"
    assert raw[8:12] == b"bye\0"
    assert abi.from_bytes("quic_connection_close", raw) == {
        "errcode": 0x10A,
        "frame": 6,
        "reserved": b"\0\0\0",
        "phrase": b"bye",
    }
    info = abi.to_bytes("quic_stream_info", {"stream_id": -1}, stream_flags=0x600)
    assert info == b"\xff" * 8 + (0x600).to_bytes(4, "little") + bytes(4)
    # An event payload carries only its member's bytes: from_bytes zero-extends.
    ev = abi.from_bytes("quic_event", (488).to_bytes(8, "little"))
    assert ev["max_stream"] == 488 and ev["key_update_phase"] == 488 & 0xFF
    with pytest.raises(ValueError):
        abi.from_bytes("quic_event_option", b"abc")
    with pytest.raises(TypeError):
        abi.to_bytes("quic_config", no_such_field=1)


def test_sockaddr_encoding() -> None:
    v4 = abi.sockaddr_bytes(("192.0.2.1", 443))
    assert v4 == socket.AF_INET.to_bytes(2, "little") + bytes([1, 187, 192, 0, 2, 1]) + bytes(8)
    v6 = abi.sockaddr_bytes(("2001:db8::1", 443, 0, 3))
    assert len(v6) == 28 and v6[2:4] == bytes([1, 187])
    assert v6[8:24] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert v6[24:] == (3).to_bytes(4, "little")


def test_sockopt_error_names_errno_and_option() -> None:
    """A UDP socket refuses level SOL_QUIC: setsockopt ENOPROTOOPT, getsockopt EOPNOTSUPP."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(OSError) as e:
            abi.setsockopt(s, "CONFIG", initial_smoothed_rtt=100000)
        assert e.value.errno == errno.ENOPROTOOPT
        assert "ENOPROTOOPT" in str(e.value) and "QUIC_SOCKOPT_CONFIG" in str(e.value)
        with pytest.raises(OSError) as e:
            abi.getsockopt(s.fileno(), "EVENT", type=1)
        assert e.value.errno == errno.EOPNOTSUPP
        assert "EOPNOTSUPP" in str(e.value) and "QUIC_SOCKOPT_EVENT" in str(e.value)


def test_raw_sockopt_round_trip() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        abi.raw_setsockopt(s, socket.SOL_SOCKET, socket.SO_RCVBUF, (8192).to_bytes(4, "little"))
        got = abi.raw_getsockopt(s, socket.SOL_SOCKET, socket.SO_RCVBUF, 4)
        assert int.from_bytes(got, "little") == s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        with pytest.raises(OSError) as e:
            abi.raw_setsockopt(s, socket.SOL_SOCKET, socket.SO_RCVBUF, None, 4)
        assert e.value.errno == errno.EFAULT and "EFAULT" in str(e.value)


# --------------------------------------------------------------------------------------------
# Through the C probe
# --------------------------------------------------------------------------------------------

variants = pytest.mark.parametrize("variant", list(VARIANTS))


@lp64
@variants
def test_probe_layout(probe: dict[str, ProbeOut], variant: str) -> None:
    expected: dict[tuple[str, str], int] = {}
    for ctype, (size, align, fields) in STRUCTS.items():
        expected[("size", ctype)] = size
        expected[("align", ctype)] = align
        for name, off, fsize, _type in fields:
            expected[("offset", f"{ctype}.{name}")] = off
            expected[("fsize", f"{ctype}.{name}")] = fsize
            expected[("ftype", f"{ctype}.{name}")] = 1
    for ctype, (size, fields) in SOCKADDRS.items():
        expected[("size", ctype)] = size
        for name, off, fsize in fields:
            expected[("offset", f"{ctype}.{name}")] = off
            expected[("fsize", f"{ctype}.{name}")] = fsize
    assert not _probe_mismatches(probe[variant], expected)


@variants
def test_probe_constants(probe: dict[str, ProbeOut], variant: str) -> None:
    expected = {("const", k): v for k, v in ALL_CONSTANTS.items()}
    expected.update({("macro", k): 1 for k in MACROS})
    expected.update({("enum_macro", k): 1 for k in IPPROTO})
    expected.update({("enumsize", f"enum {tag}"): 4 for tag in NAMED_ENUMS})
    assert not _probe_mismatches(probe[variant], expected)
    macros = [key for kind, key in probe[variant] if kind == "ismacro"]
    assert not macros, f"enumerators defined as macros: {macros}"


@lp64
@variants
def test_probe_cmsg(probe: dict[str, ProbeOut], variant: str) -> None:
    expected = {("cmsg", k): v for k, v in CMSG.items()}
    expected[("cmsg", "CMSG_LEN(sizeof(struct quic_handshake_info))")] = 17
    expected[("cmsg", "CMSG_SPACE(sizeof(struct quic_stream_info))")] = 32
    assert not _probe_mismatches(probe[variant], expected)


@variants
def test_probe_masks(probe: dict[str, ProbeOut], variant: str) -> None:
    assert probe[variant][("mask", "stream")] == 0x12E00
    assert probe[variant][("mask", "sendmsg")] == 0x5FF40


def test_upstream_program_defining_its_own_masks_builds(tmp_path) -> None:
    """A program written for the upstream header that names the section 1.4 masks itself
    builds with -Werror against ours (they were once defined in our UAPI header)."""
    text = HEADER.read_text()
    for name in NOT_UAPI:
        assert name not in text, f"{name} is not upstream API: keep it out of the UAPI header"
    src = tmp_path / "own_masks.c"
    src.write_text(
        "#include <sys/socket.h>\n#include <linux/quic.h>\n"
        "#define QUIC_MSG_STREAM_FLAGS 0x12E00\n#define QUIC_MSG_SENDMSG_FLAGS 0x5FF40\n"
        "int main(void) { return (QUIC_MSG_STREAM_FLAGS & MSG_QUIC_STREAM_FIN) ? 0 : 1; }\n"
    )
    r = subprocess.run(["gcc", "-Wall", "-Wextra", "-Werror", "-I", str(UAPI_DIR), "-o",
                        str(tmp_path / "own_masks"), str(src)],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert subprocess.run([str(tmp_path / "own_masks")]).returncode == 0


# --------------------------------------------------------------------------------------------
# The generated module (quicctl/_uapi.py): what an installed wheel reads instead of running cpp
# --------------------------------------------------------------------------------------------


def test_generated_module_matches_the_header():
    """quicctl/_uapi.py is what the header gives through the preprocessor now (after editing
    the header: `python -m quicctl.abi --write`)."""
    assert abi.GENERATED.read_text() == abi.generated_source(HEADER), (
        f"{abi.GENERATED} is out of date: run `python -m quicctl.abi --write`"
    )


def test_generated_and_preprocessed_abi_agree():
    """The default ABI comes from _uapi.py for the tree's header; it equals the preprocessor's."""
    fresh = abi.Abi(HEADER)
    generated = abi.Abi(HEADER, generated=True)
    assert generated.constants == fresh.constants
    for name in ("struct quic_config", "union quic_event", "struct quic_transport_param"):
        assert generated.ffi.sizeof(name) == fresh.ffi.sizeof(name)
    assert abi.load().cdef == generated.cdef


def test_another_header_goes_through_the_preprocessor(tmp_path, monkeypatch):
    """QUICCTL_UAPI_HEADER names another copy: an edited one is preprocessed, not replaced by
    the generated module (here a copy with one more macro)."""
    copy = tmp_path / "include" / "linux" / "quic.h"
    copy.parent.mkdir(parents=True)
    text = HEADER.read_text()
    copy.write_text(
        text.replace("#define SOL_QUIC", "#define QUIC_TEST_EXTRA 7\n#define SOL_QUIC", 1)
    )
    default = abi.load()
    # load() caches the default ABI and copies ffi and the constants into the module: all
    # restored after the test.
    monkeypatch.setattr(abi, "_default", None)
    monkeypatch.setattr(abi, "ffi", default.ffi)
    monkeypatch.setenv("QUICCTL_UAPI_HEADER", str(copy))
    try:
        other = abi.load()
    finally:
        vars(abi).pop("QUIC_TEST_EXTRA", None)
    assert other.header == copy.resolve()
    assert other.constants["QUIC_TEST_EXTRA"] == 7  # not in the generated module
    assert other.constants["SOL_QUIC"] == 288
