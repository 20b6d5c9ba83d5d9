"""`ratecard serve` turns Nagle's algorithm off on every connection, in one worker and in several.

uvicorn's `--workers N` binds the listening socket with protocol number 0, so asyncio never set
TCP_NODELAY on accepted connections and every small response waited ~40 ms for a delayed ACK.
"""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("uvicorn")

from ratecard.http.transport import NoDelayHTTP, no_delay  # noqa: E402


class _Transport:
    def __init__(self, sock):
        self.sock = sock

    def get_extra_info(self, name, default=None):
        return self.sock if name == "socket" else default


def _accepted_pair():
    listener = socket.socket(socket.AF_INET)  # as uvicorn binds it for several workers: proto 0
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    listener.close()
    return client, accepted


def test_an_accepted_connection_of_a_protocol_zero_listener_gets_no_delay():
    client, accepted = _accepted_pair()
    with client, accepted:
        assert accepted.proto == 0  # the case asyncio's own check skips
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        no_delay(_Transport(accepted))
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_a_connection_closed_by_its_peer_or_not_tcp_is_left_alone():
    no_delay(_Transport(None))
    a, b = socket.socketpair()
    with a, b:
        no_delay(_Transport(a))  # AF_UNIX: no TCP option to set, and no error


def test_serve_runs_uvicorn_with_the_no_delay_protocol(monkeypatch, tmp_path):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **config: seen.update(config))
    monkeypatch.setenv("RATECARD_TOKENS", "read:" + "r" * 32)
    from ratecard.cli import serve as serve_cli
    from ratecard.cli.parser import build_parser

    for workers in ("1", "2"):
        args = build_parser().parse_args(["serve", "--db", str(tmp_path / "l.db"), "--workers", workers])
        assert serve_cli.cmd_serve(args) == 0
        assert seen["http"] is NoDelayHTTP
