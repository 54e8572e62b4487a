"""A program written for the upstream QUIC socket API, against this module (issue 15).

``selftests/capi/quic_upstream.c`` uses only what the upstream API has (<linux/quic.h>, libc,
gnutls's QUIC hooks) and defines the helper masks upstream programs define themselves.  On the
host it must build with ``gcc -Wall -Wextra -Werror`` against our UAPI header; in the VM it
runs the handshake choreography of the reference's section 5 as such a program would: a full
handshake and an echo, resumption with the ticket and the remembered transport parameters,
0-RTT (the request sent before the handshake, section 5.3), and a client moving itself to a
second address with CONNECTION_MIGRATION while what reaches the old one is dropped.  Against
itself, against `quicctl server`, and with quicctl's Python client against the C server.
"""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import ROOT, SERVER_NAME, kernel_connect, require, run
from test_migration import _dropped_to, _second_address

from quicctl.paths import KEYS

SRC = ROOT / "selftests" / "capi"
BIN = ROOT / "build" / "capi" / "quic_upstream"
ALPN = "quic-upstream"
TIMEOUT = 400  # one client run: up to three handshakes of the slow guest


@pytest.mark.host
def test_upstream_program_builds_with_werror():
    """The program builds against our header with every warning an error (its own
    QUIC_MSG_STREAM_FLAGS and QUIC_MSG_SENDMSG_FLAGS included), and runs: a usage error exits 2
    and, with no quic.ko on the host, a client says so in one line and exits 1."""
    require("gcc", "make")
    if not Path("/usr/include/gnutls/gnutls.h").exists():
        pytest.fail("gnutls headers missing (libgnutls28-dev): run scripts/setup")
    r = run(["make", "-B", "-C", str(SRC), f"O={BIN.parent}"], check=False)
    assert r.returncode == 0, f"make failed:\n{r.stdout}\n{r.stderr}"
    assert "warning" not in r.stderr, r.stderr
    assert run([str(BIN)], check=False).returncode == 2
    r = run([str(BIN), "client", "127.0.0.1", "4433", "--early-data"], check=False)
    assert r.returncode == 2, "--early-data without --resume is a usage error"


@pytest.mark.host
def test_upstream_program_uses_only_upstream_names():
    """Every QUIC name the program uses is in the reference's tables (test_abi's, typed from
    the reference), and the names it defines itself, as upstream programs do, are not in our
    header (an identical redefinition would not even warn)."""
    from test_abi import ALL_CONSTANTS, HEADER, STRUCTS

    text = (SRC / "quic_upstream.c").read_text()
    own = set(re.findall(r"^#define\s+(\w+)", text, re.M))
    used = set(re.findall(r"\b(?:MSG_QUIC_|QUIC_|SOL_QUIC|IPPROTO_QUIC|TLS_CIPHER_)\w*", text))
    used = {n for n in used if not n.endswith("_")}  # "QUIC_CRYPTO_*" in comments
    types = set(re.findall(r"\b(?:struct|union)\s+quic_\w+", text))
    assert used - own - set(ALL_CONSTANTS) == set(), "names not in the reference"
    assert {" ".join(t.split()) for t in types} - set(STRUCTS) == set(), "types not in it"
    header = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)  # code, not comments
    assert {"QUIC_MSG_STREAM_FLAGS", "QUIC_MSG_SENDMSG_FLAGS"} <= own
    assert [n for n in own if re.search(rf"\b{n}\b", header)] == []


def _bin() -> str:
    if not BIN.exists():
        pytest.fail(f"{BIN} missing: the host phase (test_upstream_program_builds_with_werror) "
                    "did not run or failed")  # fmt: skip
    return str(BIN)


class CServer:
    """``quic_upstream server`` in the server namespace; ``.lines`` is what it printed."""

    def __init__(self, topo, alpn: str = ALPN, host: str = "0.0.0.0"):
        self.proc = topo.popen(
            topo.server,
            [_bin(), "server", host, "0", "--cert", str(KEYS / "cert.crt"),
             "--key", str(KEYS / "pkey.key"), "--alpn", alpn],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.wait("listening", 60)
        self.port = int(first.rsplit("port=", 1)[1])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._q.put(line.rstrip("\n"))

    def wait(self, prefix: str, timeout: float = 120) -> str:
        """The next line starting with ``prefix`` (earlier ones are skipped)."""
        while True:
            try:
                line = self._q.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"the C server printed no {prefix!r} line in {timeout} s:\n" + self.log()
                ) from None
            assert not line.startswith("FAIL"), "the C server: " + line + "\n" + self.log()
            if line.startswith(prefix):
                return line

    def log(self) -> str:
        return "\n".join(self.lines)

    def close(self) -> None:
        from quicctl.demo import _stop

        _stop(self.proc)


@contextlib.contextmanager
def c_server(topo, alpn: str = ALPN, host: str = "0.0.0.0"):
    srv = CServer(topo, alpn, host)
    try:
        yield srv
    finally:
        srv.close()


def client_argv(topo, port: int, *args: str, addr: str = "") -> list[str]:
    return [_bin(), "client", addr or topo.server_v4, str(port), "--cafile",
            str(KEYS / "ca.crt"), "--server-name", SERVER_NAME, *args]  # fmt: skip


def c_client(topo, port: int, *args: str, server: CServer | None = None, addr: str = ""):
    """Runs ``quic_upstream client``; its lines, after checking it succeeded."""
    r = topo.run(topo.client, client_argv(topo, port, *args, addr=addr), capture_output=True,
                 text=True, timeout=TIMEOUT)  # fmt: skip
    detail = f"client {' '.join(args)}:\n{r.stdout}{r.stderr}"
    if server is not None:
        detail += "\nserver:\n" + server.log()
    assert r.returncode == 0 and r.stdout.rstrip().endswith("done"), detail
    return r.stdout.splitlines()


def line(lines: list[str], prefix: str) -> str:
    found = [ln for ln in lines if ln.startswith(prefix + " ")]
    assert found, f"no {prefix!r} line in:\n" + "\n".join(lines)
    return found[0]


def fields(text: str) -> dict[str, str]:
    return dict(f.split("=", 1) for f in text.split() if "=" in f)


def _first_connection(topo, srv: CServer, session: Path) -> None:
    out = c_client(topo, srv.port, "--session", str(session), server=srv)
    hs = fields(line(out, "handshake ok"))
    assert hs["alpn"] == ALPN and hs["resumed"] == "0", out
    line(out, "echo ok")
    assert int(fields(line(out, "ticket ok"))["bytes"]) > 4, out
    assert fields(srv.wait("handshake ok"))["resumed"] == "0"
    srv.wait("echo ok")


def test_c_full_handshake_and_resumption(quic_module, clean_path, topo, tmp_path):
    """C client and C server: a full handshake and an echo; the client takes the server's
    ticket (the NEW_SESSION_TICKET event, the same bytes through getsockopt SESSION_TICKET),
    saves the TLS session and the server's transport parameters, and the next connection
    resumes with them (setsockopt TRANSPORT_PARAM remote=1): no certificate, same echo."""
    session = tmp_path / "session"
    with c_server(topo) as srv:
        _first_connection(topo, srv, session)
        out = c_client(topo, srv.port, "--resume", str(session), server=srv)
        assert fields(line(out, "handshake ok"))["resumed"] == "1", out
        line(out, "echo ok")
        assert fields(srv.wait("handshake ok"))["resumed"] == "1"
        srv.wait("echo ok")


def test_c_over_ipv6(quic_module, clean_path, topo):
    """The same program over IPv6 (sockaddr_in6 everywhere): a handshake and an echo."""
    with c_server(topo, host="::") as srv:
        out = c_client(topo, srv.port, server=srv, addr=topo.server_v6)
        assert fields(line(out, "connect ok"))["peer"] == f"[{topo.server_v6}]:{srv.port}"
        line(out, "echo ok")
        assert fields(srv.wait("accept ok"))["peer"].startswith(f"[{topo.client_v6}]:")
        srv.wait("echo ok")


def test_c_early_data(quic_module, clean_path, topo, tmp_path):
    """Resumption with 0-RTT as section 5.3 has it: the remembered transport parameters, the
    request queued before the handshake, the early send secret before the ClientHello.  The
    server (gnutls with GNUTLS_ENABLE_EARLY_DATA and anti-replay, the kernel's ticket key)
    accepts early data and echoes the request."""
    session = tmp_path / "session"
    with c_server(topo) as srv:
        _first_connection(topo, srv, session)
        out = c_client(topo, srv.port, "--resume", str(session), "--early-data", server=srv)
        line(out, "early_data ok")
        hs = fields(line(out, "handshake ok"))
        assert hs["resumed"] == "1" and hs["early_data"] == "1", out
        line(out, "early_echo ok")
        hs = fields(srv.wait("handshake ok"))
        assert hs["resumed"] == "1" and hs["early_data"] == "1", srv.log()
        srv.wait("echo ok")


@contextlib.contextmanager
def _migrating_client(topo, port: int, *args: str):
    """A ``--migrate ... --sync`` client; yields (process, its old local port, its lines) once
    it is ready to move, and lets it go when the caller says (``go()``)."""
    proc = topo.popen(topo.client, client_argv(topo, port, *args, "--sync"),
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      text=True)  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None and proc.stdin is not None
        for ln in proc.stdout:
            lines.append(ln.rstrip("\n"))
            if ln.startswith("migrate ready") or ln.startswith("FAIL"):
                break
        assert lines and lines[-1].startswith("migrate ready"), "\n".join(lines)
        old_port = int(lines[-1].rsplit(":", 1)[1])

        def go() -> list[str]:
            out, _ = proc.communicate("go\n", timeout=TIMEOUT)
            lines.extend(out.splitlines())
            assert proc.returncode == 0 and lines[-1] == "done", "\n".join(lines)
            return lines

        yield old_port, go
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_c_client_migrates_to_c_server(quic_module, clean_path, topo):
    """The C client moves to a second local address with CONNECTION_MIGRATION after an echo;
    from then on what reaches its old address is dropped.  Its MIGRATION event says
    local_migration 1, getsockname() is the new address, the server reports the peer's move,
    and a second echo goes over the new path."""
    with _second_address(topo) as second, c_server(topo) as srv:
        with _migrating_client(topo, srv.port, "--migrate", second) as (old_port, go):
            srv.wait("echo ok")
            with _dropped_to(topo, old_port) as dropped:
                out = go()
                print(f"{dropped()} datagrams to the old address dropped")
        assert fields(line(out, "migrate ok"))["local"].startswith(second + ":"), out
        line(out, "echo_after_migration ok")
        assert "local_migration=0" in srv.wait("migration ok"), srv.log()
        srv.wait("echo ok")


def test_c_client_against_quicctl_server(quic_module, clean_path, topo, tmp_path):
    """The C client fetches a file from `quicctl server` over hq-interop (the request on a
    new stream, the file back with FIN), moves to a second address with the old one dropped,
    and fetches it again: both copies are the file."""
    import hashlib

    from quicctl.demo import _quicctl, _stop, _wait_listening

    data = bytes(range(256)) * 400
    (tmp_path / "file").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    port = 4480
    srv = topo.popen(
        topo.server,
        [_quicctl(), "server", "0.0.0.0", str(port), str(KEYS / "pkey.key"),
         str(KEYS / "cert.crt"), "--root", str(tmp_path), "--alpn", "hq-interop"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _wait_listening(srv, "quicctl")
        with _second_address(topo) as second:
            args = ("--alpn", "hq-interop", "--get", "/file", "--migrate", second)
            with _migrating_client(topo, port, *args) as (old_port, go):
                with _dropped_to(topo, old_port):
                    out = go()
        for step in ("echo", "echo_after_migration"):
            got = fields(line(out, step + " ok"))
            assert got["bytes"] == str(len(data)) and got["sha256"] == digest, out
        line(out, "migrate ok")
    finally:
        _stop(srv)


def test_python_client_against_c_server(quic_module, clean_path, topo):
    """quicctl's Python client (quicctl.connect over quic.ko) to the C server: a handshake,
    three streams echoed byte for byte, and the server sees the connection close."""
    with c_server(topo) as srv:
        with kernel_connect(topo, topo.server_v4, srv.port, alpn=ALPN) as conn:
            for n in range(3):
                payload = f"request {n} ".encode() * (n * 500 + 1)
                sid = conn.open_stream()
                conn.send(payload, sid, fin=True)
                got, fin = b"", False
                while not fin:
                    rsid, data, fin = conn.recv()
                    assert rsid == sid
                    got += data
                assert got == payload, f"stream {sid}: {len(got)} bytes back of {len(payload)}"
        hs = fields(srv.wait("handshake ok"))
        assert hs["resumed"] == "0", srv.log()
        srv.wait("closed")


def test_python_client_zerortt_with_c_server(quic_module, clean_path, topo):
    """quicctl's Python client takes the C server's ticket (gnutls, the kernel's default key)
    and resumes with its request in 0-RTT: the C server accepts it and echoes it."""
    request = b"early request " * 20
    with c_server(topo) as srv:
        with kernel_connect(topo, topo.server_v4, srv.port, alpn=ALPN) as conn:
            sid = conn.open_stream()
            conn.send(b"first", sid, fin=True)
            assert conn.recv() == (sid, b"first", True)
            session = conn.session(timeout=60)
        assert session is not None, "no NewSessionTicket from the C server"
        conn = kernel_connect(topo, topo.server_v4, srv.port, alpn=ALPN, session=session,
                              early_data=request)  # fmt: skip
        with conn:
            assert conn.resumed and conn.early_data_accepted
            got, fin = b"", False
            while not fin:
                rsid, data, fin = conn.recv()
                assert rsid == conn.early_streams[0]
                got += data
            assert got == request
        assert fields(srv.wait("handshake ok"))["resumed"] == "0"
        hs = fields(srv.wait("handshake ok"))
        assert hs["resumed"] == "1" and hs["early_data"] == "1", srv.log()
