"""`quicctl agent`: the net/handshake agent for kernel services' QUIC sockets (quicctl.agent)."""

from __future__ import annotations

import signal
import sys
import time

import click

_HELP = """Run the handshake agent: kernel services hand their QUIC sockets to it through
net/handshake (the `handshake` netlink family, as to tlshd), it runs the TLS 1.3 handshake on
each and reports the outcome.  Runs in the foreground, one line per handshake (peer, ALPN,
cipher, outcome, time); SIGTERM or Ctrl-C ends it.  Needs root (CAP_NET_ADMIN).

\b
Credentials: a tlshd-style --config FILE, e.g.
  [authenticate.client]
  x509.truststore = /etc/quic/ca.crt
  [authenticate.server]
  x509.certificate = /etc/quic/cert.crt
  x509.private_key = /etc/quic/pkey.key
and the options below on top of it.
"""


@click.command(help=_HELP)
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="tlshd-style configuration file.")  # fmt: skip
@click.option("--ca", help="CA file the client side verifies servers with.")
@click.option("--cert", help="Server certificate file.")
@click.option("--key", help="Server private key file.")
@click.option("-v", "--verbose", is_flag=True, help="Log netlink traffic too.")
def agent(config_file, ca, cert, key, verbose) -> None:
    from quicctl.agent import Agent, Config

    cfg = Config.load(config_file, client_truststore=ca, server_certificate=cert,
                      server_private_key=key)  # fmt: skip

    def log(msg: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {msg}", err=True)

    a = Agent(cfg, log, verbose)
    a.open()
    signal.signal(signal.SIGTERM, lambda *_: a.stop())
    try:
        a.run()
    except KeyboardInterrupt:
        a.stop()
    log(f"quicctl agent: stopped after {a.handled} handshakes")
    sys.exit(0)


COMMANDS = [agent]
