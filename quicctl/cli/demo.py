"""`quicctl server`, `quicctl client` (hq-interop or HTTP/3 over the kernel) and `quicctl demo`."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import click

from quicctl.cli.bench import Size
from quicctl.errors import QuicctlError

# Options of both `server` and `client`.
_psk_option = click.option(
    "--psk", "psk_file", type=click.Path(exists=True, dir_okay=False),
    help="Authenticate with the pre-shared key in FILE (IDENTITY:HEXKEY) instead of certificates.",
)  # fmt: skip
_timeout_option = click.option(
    "--timeout", type=click.FloatRange(1, 600), default=30, show_default=True,
    help="--in-kernel: seconds the kernel service gives each handshake and each wait.",
)  # fmt: skip


@click.command()
@click.argument("addr")
@click.argument("port", type=click.IntRange(0, 65535))
@click.argument("key", type=click.Path(exists=True, dir_okay=False))
@click.argument("cert", type=click.Path(exists=True, dir_okay=False))
@click.option("--root", "root", type=click.Path(exists=True, file_okay=False), default=".",
              show_default=True, help="Directory whose files are served.")  # fmt: skip
@click.option("--alpn", default="h3,hq-interop", show_default=True,
              help="Protocols offered, comma-separated: h3 and/or hq-interop.")  # fmt: skip
@click.option("--userspace", is_flag=True, help="Use aioquic instead of the kernel module.")
@click.option(
    "--in-kernel",
    is_flag=True,
    help="Serve from quic_sample.ko, a kernel service (handshakes by the agent).",
)
@click.option(
    "--count",
    type=click.IntRange(1, 10000),
    default=1,
    show_default=True,
    help="--in-kernel: connections to serve before exiting.",
)
@click.option("--retry", is_flag=True,
              help="Validate client addresses with a Retry first (RFC 9000 8.1.2).")  # fmt: skip
@_psk_option
@_timeout_option
def server(addr, port, key, cert, root, alpn, in_kernel, count, userspace, retry,
           psk_file, timeout) -> None:  # fmt: skip
    """Serve files under --root over HTTP/3 and hq-interop (by each connection's ALPN).

    KEY and CERT are the server's; with --psk they are not used.  The kernel server sends
    session tickets (sealed with the socket's SESSION_TICKET key), so that clients can resume
    (quicctl client --session) and send requests in 0-RTT packets, each first flight accepted
    once (gnutls's anti-replay cache)."""
    from quicctl import hq
    from quicctl.connection import QuicServer
    from quicctl.kservice import read_psk_file

    alpn = _alpns(alpn)
    psk = read_psk_file(psk_file) if psk_file else None
    if in_kernel:
        _serve_in_kernel(addr, port, key, cert, root, alpn, count, userspace or retry, psk,
                         timeout)  # fmt: skip
        return
    if psk and userspace:
        raise click.UsageError("--psk: aioquic (--userspace) has no external PSK; drop one")

    if userspace:
        from quicctl import userspace as us

        def listening(bound: int) -> None:
            click.echo(f"quicctl server: listening on {addr} port {bound} (aioquic, ALPN "
                       f"{','.join(alpn)})")  # fmt: skip
            sys.stdout.flush()

        try:
            us.serve(addr, port, root=Path(root), certfile=cert, keyfile=key, alpn=alpn,
                     on_listening=listening, retry=retry)  # fmt: skip
        except KeyboardInterrupt:
            pass
        return

    # QuicServer's errors name the address and the cause (NotLoadedError: how to load quic.ko).
    config = {"validate_peer_address": 1} if retry else None
    # Tickets (sealed with the kernel's SESSION_TICKET key) let clients resume, with 0-RTT
    # accepted once per ClientHello (gnutls's anti-replay).
    srv = QuicServer(addr, port, alpn=alpn, certfile=cert, keyfile=key, config=config,
                     psk=psk, tickets=psk is None, early_data=psk is None)  # fmt: skip
    host, bound = srv.getsockname()[:2]
    # made before `listening`: it loads the h3 layer, slow to import where Python is slow
    files = hq.HqServer(srv, Path(root), log=lambda m: click.echo(f"quicctl server: {m}", err=True))
    click.echo(f"quicctl server: listening on {host} port {bound} (ALPN {','.join(alpn)}), "
               f"root {root}")  # fmt: skip
    sys.stdout.flush()
    try:
        files.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()


@click.command()
@click.argument("addr")
@click.argument("port", type=click.IntRange(0, 65535))
@click.argument("paths", nargs=-1, required=True)
@click.option("--cafile", type=click.Path(exists=True, dir_okay=False), help="CA to verify with.")
@click.option("--insecure", is_flag=True, help="Do not verify the server certificate.")
@click.option("--alpn", default="hq-interop", show_default=True,
              help="hq-interop or h3 (HTTP/3); comma-separated to offer several.")  # fmt: skip
@click.option("--server-name", help="Name to verify and send as SNI (default: ADDR).")
@click.option("-o", "outdir", type=click.Path(file_okay=False), help="Save the files here.")
@click.option("--userspace", is_flag=True, help="Use aioquic instead of the kernel module.")
@click.option(
    "--in-kernel",
    is_flag=True,
    help="Fetch with quic_sample.ko, a kernel service (handshakes by the agent).",
)
@click.option(
    "--session", "session_file", type=click.Path(dir_okay=False),
    help="Resume the session saved in FILE, if there is one, and save this one there.",
)  # fmt: skip
@click.option(
    "--early-data", is_flag=True,
    help="With --session: send the requests in 0-RTT packets, before the handshake (hq-interop).",
)  # fmt: skip
@_psk_option
@_timeout_option
def client(addr, port, paths, cafile, insecure, alpn, server_name, outdir, userspace,
           in_kernel, session_file, early_data, psk_file, timeout) -> None:  # fmt: skip
    """Download each PATH on its own stream of one connection; prints SHA-256 and throughput.

    With --session the connection resumes the session saved in FILE (when FILE exists), and
    the new session (TLS session data, the server's transport parameters, its token) is saved
    there afterwards.  Exits with 1 when any answer is missing, empty (hq-interop) or not HTTP
    200 (h3)."""
    from quicctl import hq
    from quicctl.connection import connect
    from quicctl.kservice import read_psk_file

    alpn = _alpns(alpn)
    psk = read_psk_file(psk_file) if psk_file else None
    if not cafile and not insecure and not psk:
        raise click.UsageError("give --cafile FILE to verify the server, or --insecure (or --psk)")
    if in_kernel:
        _fetch_in_kernel(addr, port, paths, cafile, insecure, alpn, server_name, outdir,
                         userspace, psk, timeout)  # fmt: skip
        return
    if psk and userspace:
        raise click.UsageError("--psk: aioquic (--userspace) has no external PSK; drop one")
    if session_file and (userspace or in_kernel):
        raise click.UsageError("--session: kernel clients only (drop --userspace, --in-kernel)")
    if early_data and not session_file:
        raise click.UsageError("--early-data needs --session FILE (0-RTT resumes a session)")
    if early_data and alpn != [hq.ALPN]:
        raise click.UsageError("--early-data: hq-interop only (give --alpn hq-interop)")
    session = _load_session(session_file)
    out = Path(outdir) if outdir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    failed = False
    if userspace:
        from quicctl import userspace as us

        results = us.fetch(addr, port, list(paths), outdir=out, cafile=cafile, insecure=insecure,
                           server_name=server_name, alpn=alpn)  # fmt: skip
    else:
        if hq.H3 in alpn:
            # aioquic's h3 layer imports slowly where Python is slow (a TCG guest over 9p):
            # load it before the handshake, not while the new connection sits idle
            from quicctl import h3
        early = [hq.request(p) for p in paths] if early_data and session else None
        conn = connect(addr, port, alpn=alpn, cafile=cafile, insecure=insecure,
                       server_name=server_name, psk=psk, session=session,
                       early_data=early)  # fmt: skip
        with conn:
            try:
                if conn.alpn == hq.H3:
                    results = h3.fetch(conn, list(paths), out, authority=server_name or addr)
                    h3.close(conn)
                else:
                    sent = dict(zip(paths, conn.early_streams, strict=True)) if early else None
                    results = hq.fetch(conn, list(paths), out, sent=sent)
                if session_file:
                    _save_session(conn, session_file, session is not None)
            except OSError as exc:  # PeerClosedError among them
                raise QuicctlError(f"{addr} port {port}: {exc}") from exc
    for d in results:
        if d.status is not None and d.status != 200:
            failed = True
            click.echo(f"{d.path}: HTTP status {d.status}", err=True)
            continue
        if d.status is None and d.size == 0:
            failed = True
            click.echo(f"{d.path}: empty answer (not found on the server?)", err=True)
            continue
        click.echo(f"{d.sha256.hexdigest()}  {d.path}  {d.size} bytes  {d.mbps:.1f} Mbit/s")
    sys.exit(1 if failed else 0)


def _load_session(path: str | None):
    """The session saved in ``path``; None when there is no such file yet."""
    from quicctl.connection import Session

    if not path or not Path(path).exists():
        return None
    return Session.load(path)  # QuicError: one line naming the file


def _save_session(conn, path: str, resumed_from: bool) -> None:
    session = conn.session()
    what = "resumed" if conn.resumed else "full handshake"
    if conn.early_streams:
        what += ", 0-RTT " + ("accepted" if conn.early_data_accepted else "rejected (resent)")
    if session is None:
        click.echo(f"quicctl client: {what}; the server sent no session ticket, "
                   f"{path} not written", err=True)  # fmt: skip
        return
    try:
        session.save(path)
    except OSError as exc:
        raise QuicctlError(f"cannot save the session to {path}: {exc.strerror}") from None
    click.echo(f"quicctl client: {what}; session saved to {path}", err=True)


@click.command()
@click.option("--size", type=Size(), default="10M", show_default=True,
              help="Bytes to transfer (65536, 64K, 16M, ...).")  # fmt: skip
@click.option("--no-load", is_flag=True, help="Use the module as already loaded.")
def demo(size, no_load) -> None:
    """Server and client in two network namespaces: a verified transfer over quic.ko and TCP."""
    from quicctl import demo as demolib

    sys.exit(demolib.run(size=size, load=not no_load, echo=click.echo))


def _with_agent(args: list[str]):
    """The agent's process if we had to start one (no agent or tlshd running), else None."""
    from quicctl import kservice

    kservice.load()
    return None if kservice.agent_running() else kservice.start_agent(*args)


def _stop_agent(proc) -> None:
    from quicctl import kservice

    kservice.stop_agent(proc)


def _fetch_in_kernel(addr, port, paths, cafile, insecure, alpn, server_name, outdir,
                     userspace, psk, timeout) -> None:  # fmt: skip
    """One connection of quic_sample.ko a path: the kernel returns each path's SHA-256."""
    from quicctl import keyring, kservice

    if userspace or outdir:
        raise click.UsageError("--in-kernel: the kernel service keeps the data (it returns its "
                           "SHA-256): drop " + ("--userspace" if userspace else "-o"))  # fmt: skip
    if len(alpn) != 1 or alpn[0] != "hq-interop":
        raise click.UsageError("--in-kernel speaks hq-interop only: give --alpn hq-interop")
    _sigterm_exits()
    agent = _with_agent(["--ca", cafile] if cafile and not insecure and not psk else [])
    serial, failed = 0, False
    try:
        serial = keyring.add_psk(*psk) if psk else 0  # this process's: gone when we are
        for path in paths:
            d = kservice.get(addr, port, path, alpn=alpn[0], peername=server_name or addr,
                             psk=serial, timeout=timeout)  # fmt: skip
            if d.size == 0:
                failed = True
                click.echo(f"{d.path}: empty answer (not found on the server?)", err=True)
                continue
            click.echo(f"{d.sha256}  {d.path}  {d.size} bytes  {d.mbps:.1f} Mbit/s")
    finally:
        keyring.remove(serial)
        _stop_agent(agent)
    sys.exit(1 if failed else 0)


def _serve_in_kernel(addr, port, key, cert, root, alpn, count, other, psk, timeout) -> None:
    from quicctl import keyring, kservice

    if other:
        raise click.UsageError("--in-kernel serves from the kernel: drop --userspace and --retry")
    if len(alpn) != 1 or alpn[0] != "hq-interop":
        raise click.UsageError("--in-kernel speaks hq-interop only: give --alpn hq-interop")
    if not port:
        raise click.UsageError("--in-kernel: give the port to listen on (not 0)")
    _sigterm_exits()
    agent = _with_agent(["--cert", cert, "--key", key])
    serial, x509 = 0, (0, 0)

    def announce() -> None:  # once the kernel service has bound its port
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not kservice.udp_bound(port):
            time.sleep(0.05)
        click.echo(f"quicctl server: listening on {addr} port {port} (in the kernel, "
                   f"quic_sample.ko, ALPN hq-interop), root {root}")  # fmt: skip
        sys.stdout.flush()

    try:
        # As a kernel server names its own credentials: by key serial, whatever agent runs.
        serial = keyring.add_psk(*psk) if psk else 0
        x509 = kservice.add_x509(cert, key) if not psk else (0, 0)
        threading.Thread(target=announce, daemon=True).start()
        served, size, failed = kservice.serve(
            addr, port, root, alpn=alpn[0], count=count, psk=serial,
            x509=x509 if x509[0] else None, timeout=timeout,
        )  # fmt: skip
        click.echo(
            f"quicctl server: served {served} connections, {size} bytes"
            + (f" ({failed} failed: the agent's log says why)" if failed else "")
        )
    finally:
        for key_serial in (serial, *x509):
            keyring.remove(key_serial)
        _stop_agent(agent)


def _sigterm_exits() -> None:
    """SIGTERM ends the command through its cleanup (the agent it started, the keys it made):
    it interrupts the kernel service's wait, which answers EINTR."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def _alpns(value: str) -> list[str]:
    """--alpn: the protocols quicctl speaks (h3, hq-interop), comma-separated."""
    alpns = [a.strip() for a in value.split(",") if a.strip()]
    if not alpns:
        raise click.BadParameter(f"{value!r}: give at least one protocol (h3, hq-interop)",
                                 param_hint="--alpn")  # fmt: skip
    unknown = [a for a in alpns if a not in ("h3", "hq-interop")]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: quicctl speaks h3 and hq-interop only",
                                 param_hint="--alpn")  # fmt: skip
    return alpns


COMMANDS = [server, client, demo]
