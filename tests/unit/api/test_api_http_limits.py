"""api/http_limits.py: the connection protocol's head limit, head and idle deadlines and connection
cap, driven through a fake transport (tests/integration/test_gateway_hostile_clients.py runs the
same against a real server)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from nexpo.api.http_limits import ConnectionLimits, LimitedHttpToolsProtocol, connection_limit_env
from nexpo.api.settings import Settings
from uvicorn.config import Config
from uvicorn.server import ServerState

LIMITS = ConnectionLimits(max_header_bytes=4096, head_timeout_s=0.2, idle_timeout_s=0.2, max_connections=2)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 4242), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: Any) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


@pytest.fixture
def state() -> ServerState:
    return ServerState()


def _connect(
    state: ServerState, limits: ConnectionLimits = LIMITS
) -> tuple[LimitedHttpToolsProtocol, FakeTransport]:
    config = Config(app=_app, http="httptools", lifespan="off", log_level="warning")
    protocol = LimitedHttpToolsProtocol(config=config, server_state=state, app_state={}, limits=limits)
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def test_a_head_over_the_limit_gets_431_whether_whole_or_in_pieces(state: ServerState) -> None:
    protocol, transport = _connect(state)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    assert transport.written.startswith(b"HTTP/1.1 431 ") and transport.closed
    assert b"application/problem+json" in transport.written

    protocol, transport = _connect(state)
    protocol.data_received(b"GET / HTTP/1.1\r\nX-Big: ")
    for _ in range(10):  # never completes: cut off after the limit, not after the header
        protocol.data_received(b"a" * 1000)
    assert transport.written.startswith(b"HTTP/1.1 431 ") and transport.closed


async def test_a_small_request_is_served_and_the_connection_kept(state: ServerState) -> None:
    protocol, transport = _connect(state)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.05)
    assert transport.written.startswith(b"HTTP/1.1 200 ")
    assert not transport.closed


async def test_a_slow_head_gets_408(state: ServerState) -> None:
    protocol, transport = _connect(state)
    protocol.data_received(b"GET / HTTP/1.1\r\n")
    await asyncio.sleep(0.1)
    protocol.data_received(b"X-Slow: 1\r\n")  # bytes keep coming, the head deadline holds
    await asyncio.sleep(0.2)
    assert transport.written.startswith(b"HTTP/1.1 408 ") and transport.closed


async def test_idle_connections_close_and_stray_crlf_does_not_keep_them(state: ServerState) -> None:
    silent, silent_transport = _connect(state)
    chatty, chatty_transport = _connect(state)
    for _ in range(4):
        chatty.data_received(b"\r\n")
        await asyncio.sleep(0.07)
    assert silent_transport.closed and chatty_transport.closed
    assert silent_transport.written == b""
    silent.connection_lost(None)
    chatty.connection_lost(None)


async def test_idle_deadline_rearms_after_a_response(state: ServerState) -> None:
    limits = dataclasses.replace(LIMITS, idle_timeout_s=0.4)
    protocol, transport = _connect(state, limits)
    await asyncio.sleep(0.2)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # idle from ~0.2 s to ~0.6 s
    await asyncio.sleep(0.3)
    assert transport.written.startswith(b"HTTP/1.1 200 ")
    assert not transport.closed  # past the first idle deadline (0.4 s)
    await asyncio.sleep(0.5)
    assert transport.closed


async def test_connections_beyond_the_cap_get_503_without_reading(state: ServerState) -> None:
    held = [_connect(state) for _ in range(2)]
    protocol, transport = _connect(state)
    assert transport.written.startswith(b"HTTP/1.1 503 ") and transport.closed
    assert b"retry-after: 1" in transport.written and not transport.reading
    protocol.data_received(b"GET / HTTP/1.1\r\n\r\n")  # ignored
    protocol.connection_lost(None)
    assert len(state.connections) == 2
    for other, _ in held:
        other.connection_lost(None)
    assert not state.connections


def test_limits_travel_to_workers_as_environment() -> None:
    settings = Settings(max_header_bytes=2048, head_timeout_s=1.5, idle_timeout_s=0.5, max_connections=7)
    env = connection_limit_env(settings)
    assert Settings(**{k.removeprefix("NEXPO_").lower(): v for k, v in env.items()}) == settings
    assert ConnectionLimits.from_settings(settings) == ConnectionLimits(2048, 1.5, 0.5, 7)
