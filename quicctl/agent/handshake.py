"""The kernel's ``handshake`` generic netlink family (Documentation/netlink/specs/handshake.yaml,
include/uapi/linux/handshake.h): what an agent accepts and what it reports back.

A kernel service hands a socket to userspace with net/handshake's ``tls_client_hello_*()`` or
``tls_server_hello_*()``; the family notifies the ``tlshd`` multicast group (READY), an agent
takes the request with ACCEPT (the reply installs the socket as a file descriptor in the agent
and says what to do) and reports with DONE (status, the descriptor, the peer's identity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quicctl.agent.genl import Attrs, NetlinkError, as_u32, attr, parse_attrs

FAMILY = "handshake"
VERSION = 1
GROUP = "tlshd"

HANDLER_CLASS_TLSHD = 1

MSG_TYPE_CLIENTHELLO = 1
MSG_TYPE_SERVERHELLO = 2
MSG_TYPES = {MSG_TYPE_CLIENTHELLO: "clienthello", MSG_TYPE_SERVERHELLO: "serverhello"}

AUTH_UNAUTH = 1
AUTH_PSK = 2
AUTH_X509 = 3
AUTH_MODES = {AUTH_UNAUTH: "unauth", AUTH_PSK: "psk", AUTH_X509: "x509"}

CMD_READY = 1
CMD_ACCEPT = 2
CMD_DONE = 3

A_X509_CERT = 1
A_X509_PRIVKEY = 2

A_ACCEPT_SOCKFD = 1
A_ACCEPT_HANDLER_CLASS = 2
A_ACCEPT_MESSAGE_TYPE = 3
A_ACCEPT_TIMEOUT = 4
A_ACCEPT_AUTH_MODE = 5
A_ACCEPT_PEER_IDENTITY = 6
A_ACCEPT_CERTIFICATE = 7
A_ACCEPT_PEERNAME = 8
A_ACCEPT_KEYRING = 9

A_DONE_STATUS = 1
A_DONE_SOCKFD = 2
A_DONE_REMOTE_AUTH = 3


@dataclass
class Request:
    """One accepted handshake request."""

    sockfd: int
    message_type: int
    timeout_ms: int = 0
    auth_mode: int = AUTH_UNAUTH
    peer_identities: list[int] = field(default_factory=list)  # key serials (PSK identities)
    certificates: list[tuple[int, int]] = field(default_factory=list)  # (cert, privkey) serials
    peername: str | None = None
    keyring: int = 0

    @property
    def is_client(self) -> bool:
        return self.message_type == MSG_TYPE_CLIENTHELLO

    def describe(self) -> str:
        return (f"{MSG_TYPES.get(self.message_type, self.message_type)} "
                f"auth {AUTH_MODES.get(self.auth_mode, self.auth_mode)}"
                + (f" peer {self.peername}" if self.peername else ""))  # fmt: skip


def parse_accept(a: Attrs) -> Request:
    """The ACCEPT reply; NetlinkError if it lacks the descriptor or the message type, or if
    an attribute has the wrong size."""
    fd = a.s32(A_ACCEPT_SOCKFD)
    mtype = a.u32(A_ACCEPT_MESSAGE_TYPE)
    if fd is None or fd < 0:
        raise NetlinkError(f"ACCEPT reply without a socket descriptor ({fd})")
    if mtype not in MSG_TYPES:
        raise NetlinkError(f"ACCEPT reply with message type {mtype}")
    certs = []
    for nest in a.nested(A_ACCEPT_CERTIFICATE):
        cert, key = nest.s32(A_X509_CERT), nest.s32(A_X509_PRIVKEY)
        if cert is not None and key is not None:
            certs.append((cert, key))
    return Request(
        sockfd=fd,
        message_type=mtype,
        timeout_ms=a.u32(A_ACCEPT_TIMEOUT, 0),
        auth_mode=a.u32(A_ACCEPT_AUTH_MODE, AUTH_UNAUTH),
        peer_identities=[
            as_u32(v, A_ACCEPT_PEER_IDENTITY) for v in a.all(A_ACCEPT_PEER_IDENTITY)
        ],  # fmt: skip
        certificates=certs,
        peername=a.string(A_ACCEPT_PEERNAME),
        keyring=a.s32(A_ACCEPT_KEYRING, 0),
    )


def accept_request() -> bytes:
    return attr(A_ACCEPT_HANDLER_CLASS, HANDLER_CLASS_TLSHD)


def done_request(status: int, sockfd: int, remote_auth: list[int] = ()) -> bytes:
    """DONE: ``status`` 0 or a positive errno (the kernel passes it on negated)."""
    out = attr(A_DONE_STATUS, status) + attr(A_DONE_SOCKFD, sockfd, "=i")
    for serial in remote_auth:
        out += attr(A_DONE_REMOTE_AUTH, serial)
    return out


__all__ = ["Request", "parse_accept", "parse_attrs", "accept_request", "done_request"]
