"""SOL_QUIC option dispatch: unknown options, oversize values, other levels passed through."""

from __future__ import annotations

import errno
import socket

import pytest

IPPROTO_QUIC = 261
SOL_QUIC = 288
UNKNOWN = [15, 16, 100, 0x7FFFFFFF]


def _errno(fn, *args) -> int:
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


@pytest.fixture(params=[socket.AF_INET, socket.AF_INET6], ids=["inet", "inet6"])
def qsock(request, quic_module):
    s = socket.socket(request.param, socket.SOCK_DGRAM, IPPROTO_QUIC)
    yield s
    s.close()


@pytest.mark.parametrize("opt", UNKNOWN)
def test_unknown_option_enoprotoopt(qsock, opt):
    assert _errno(qsock.setsockopt, SOL_QUIC, opt, b"\0" * 8) == errno.ENOPROTOOPT
    assert _errno(qsock.getsockopt, SOL_QUIC, opt, 64) == errno.ENOPROTOOPT


@pytest.mark.parametrize("opt", [0, 8, 9, 11, 14, 15, 100])
def test_optlen_over_4096_einval(qsock, opt):
    assert _errno(qsock.setsockopt, SOL_QUIC, opt, b"\0" * 4097) == errno.EINVAL


def test_optlen_4096_reaches_option(qsock):
    # 4096 is allowed by the length check; SESSION_TICKET takes 64..4096 bytes.
    qsock.setsockopt(SOL_QUIC, 12, b"\x01" * 4096)


def test_ip_level_option_passes_through(qsock):
    if qsock.family == socket.AF_INET:
        qsock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x28)
        assert qsock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x28
        qsock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 17)
        assert qsock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 17
    else:
        qsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x28)
        assert qsock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS) == 0x28
        qsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 17)
        assert qsock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS) == 17
    # An invalid IP-level value gets the IP layer's own error.
    level, opt = (
        (socket.IPPROTO_IP, socket.IP_TTL)
        if qsock.family == socket.AF_INET
        else (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)
    )
    assert _errno(qsock.setsockopt, level, opt, 1000) == errno.EINVAL


def test_sol_socket_options(qsock):
    qsock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    assert qsock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= 65536
    qsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    assert qsock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
