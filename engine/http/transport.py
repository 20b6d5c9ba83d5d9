"""The HTTP protocol uvicorn runs for `ratecard serve`: its own, with Nagle's algorithm turned off.

With `--workers N` uvicorn binds the listening socket itself as `socket.socket(family)`, whose
protocol number is 0, so asyncio's check for a TCP socket fails and TCP_NODELAY is never set on
accepted connections. A small response then waits for the client's delayed ACK: every request took
about 44 ms (23 requests/s on one connection). One worker was not affected, because there asyncio
creates the socket from `getaddrinfo`, protocol included. Setting the option on every connection
makes both modes the same.
"""

from __future__ import annotations

import socket

try:  # the protocol uvicorn's "auto" would choose
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Protocol
except ImportError:  # pragma: no cover - httptools is optional for uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Protocol  # type: ignore[assignment]  # the other protocol class, same interface


def no_delay(transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # a connection already closed by its peer: nothing to speed up
            pass


class NoDelayHTTP(_Protocol):
    """uvicorn's HTTP/1.1 protocol, with TCP_NODELAY set on the connection before the first byte."""

    def connection_made(self, transport) -> None:
        no_delay(transport)
        super().connection_made(transport)
