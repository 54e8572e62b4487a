"""`quicctl server`, `quicctl client` (hq-interop over the kernel) and `quicctl demo`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from quicctl.errors import QuicctlError


@click.command()
@click.argument("addr")
@click.argument("port", type=int)
@click.argument("key", type=click.Path(exists=True, dir_okay=False))
@click.argument("cert", type=click.Path(exists=True, dir_okay=False))
@click.option("--root", "root", type=click.Path(exists=True, file_okay=False), default=".",
              show_default=True, help="Directory whose files are served.")  # fmt: skip
@click.option("--alpn", default="hq-interop", show_default=True)
@click.option("--userspace", is_flag=True, help="Use aioquic instead of the kernel module.")
def server(addr, port, key, cert, root, alpn, userspace) -> None:
    """Serve files under --root over hq-interop until stopped."""
    from quicctl import hq
    from quicctl.connection import QuicServer

    if userspace:
        from quicctl import userspace as us

        def listening(bound: int) -> None:
            click.echo(f"quicctl server: listening on {addr} port {bound} (aioquic, ALPN {alpn})")
            sys.stdout.flush()

        try:
            us.serve(addr, port, root=Path(root), certfile=cert, keyfile=key, alpn=alpn,
                     on_listening=listening)  # fmt: skip
        except KeyboardInterrupt:
            pass
        return

    try:
        srv = QuicServer(addr, port, alpn=alpn, certfile=cert, keyfile=key)
    except OSError as exc:
        raise QuicctlError(f"cannot listen on {addr} port {port}: {exc.strerror or exc}") from exc
    host, bound = srv.getsockname()[:2]
    click.echo(f"quicctl server: listening on {host} port {bound} (ALPN {alpn}), root {root}")
    sys.stdout.flush()
    try:
        hq.HqServer(srv, Path(root), log=lambda m: click.echo(f"quicctl server: {m}", err=True)
                    ).serve_forever()  # fmt: skip
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()


@click.command()
@click.argument("addr")
@click.argument("port", type=int)
@click.argument("paths", nargs=-1, required=True)
@click.option("--cafile", type=click.Path(exists=True, dir_okay=False), help="CA to verify with.")
@click.option("--insecure", is_flag=True, help="Do not verify the server certificate.")
@click.option("--alpn", default="hq-interop", show_default=True)
@click.option("--server-name", help="Name to verify and send as SNI (default: ADDR).")
@click.option("-o", "outdir", type=click.Path(file_okay=False), help="Save the files here.")
@click.option("--userspace", is_flag=True, help="Use aioquic instead of the kernel module.")
def client(addr, port, paths, cafile, insecure, alpn, server_name, outdir, userspace) -> None:
    """Download each PATH on its own stream of one connection; prints SHA-256 and throughput."""
    from quicctl import hq
    from quicctl.connection import connect

    if not cafile and not insecure:
        raise QuicctlError("give --cafile FILE to verify the server, or --insecure")
    out = Path(outdir) if outdir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    failed = False
    if userspace:
        from quicctl import userspace as us

        results = us.fetch(addr, port, list(paths), outdir=out, cafile=cafile, insecure=insecure,
                           server_name=server_name, alpn=alpn)  # fmt: skip
    else:
        conn = connect(addr, port, alpn=alpn, cafile=cafile, insecure=insecure,
                       server_name=server_name)  # fmt: skip
        with conn:
            results = hq.fetch(conn, list(paths), out)
    for d in results:
        if d.size == 0:
            failed = True
            click.echo(f"{d.path}: empty answer (not found on the server?)", err=True)
            continue
        click.echo(f"{d.sha256.hexdigest()}  {d.path}  {d.size} bytes  {d.mbps:.1f} Mbit/s")
    sys.exit(1 if failed else 0)


@click.command()
@click.option("--size", default=10 << 20, show_default=True, help="Bytes to transfer.")
@click.option("--no-load", is_flag=True, help="Use the module as already loaded.")
def demo(size, no_load) -> None:
    """Server and client in two network namespaces: a verified transfer over quic.ko and TCP."""
    from quicctl import demo as demolib

    sys.exit(demolib.run(size=size, load=not no_load, echo=click.echo))


COMMANDS = [server, client, demo]
