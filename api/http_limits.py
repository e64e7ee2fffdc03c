"""Connection limits enforced in the HTTP protocol, before a request reaches the app (so before any
API key is checked): neither uvicorn nor httptools bounds a request head or times it out.

- a request head (request line + headers) larger than ``max_header_bytes`` gets 431 and the
  connection is closed: nothing more of it is buffered;
- a head not complete ``head_timeout_s`` after its first byte gets 408 and is closed (slowloris);
- a connection with no request in progress (just opened, or after a response) is closed after
  ``idle_timeout_s``; bytes that start no request (stray CRLFs, the rest of a body the app did
  not read) do not extend it;
- beyond ``max_connections`` open connections per worker, a new one gets 503 and is closed at once.

uvicorn builds one ``LimitedHttpToolsProtocol`` per connection (``http=`` in api/server.py); worker
processes read the limits from the environment (``NEXPO_*``), like the rest of the settings.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from .coalesce import CoalescingTransport
from .problems import PROBLEM_MEDIA_TYPE, problem_body
from .settings import Settings

PROTOCOL_PATH = f"{__name__}:LimitedHttpToolsProtocol"


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    head_timeout_s: float
    idle_timeout_s: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            head_timeout_s=settings.head_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            max_connections=settings.max_connections,
        )


@functools.cache
def limits_from_environment() -> ConnectionLimits:
    return ConnectionLimits.from_settings(Settings())


def connection_limit_env(settings: Settings) -> dict[str, str]:
    """The limits as ``NEXPO_*`` variables, for worker processes to read back."""
    return {
        "NEXPO_MAX_HEADER_BYTES": str(settings.max_header_bytes),
        "NEXPO_HEAD_TIMEOUT_S": repr(settings.head_timeout_s),
        "NEXPO_IDLE_TIMEOUT_S": repr(settings.idle_timeout_s),
        "NEXPO_MAX_CONNECTIONS": str(settings.max_connections),
    }


def closing_response(status: int, detail: str, extra: bytes = b"") -> bytes:
    """A complete problem+json response that announces ``connection: close``."""
    body = problem_body(status, detail)
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode()),
            b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n",
            b"content-length: %d\r\n" % len(body),
            extra,
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits or limits_from_environment()
        self.timeout_keep_alive = self.limits.idle_timeout_s  # type: ignore[assignment]
        self._refused = False
        self._discarding = False  # a head was rejected: ignore the rest of what the parser has
        self._in_head = False  # from a request's first byte to the end of its headers
        self._head_bytes = 0  # of a head that spans reads, in the reads before this one
        self._read_bytes = 0  # in the read being parsed
        self._deadline: asyncio.TimerHandle | None = None  # the idle or the head deadline

    # --- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            transport.pause_reading()
            transport.write(
                closing_response(
                    503,
                    f"the server holds its limit of {self.limits.max_connections} connections; retry later",
                    b"retry-after: 1\r\n",
                )
            )
            transport.close()
            return
        super().connection_made(transport)
        # responses leave in one write (api/coalesce.py); flow control keeps the real transport
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._arm(self.limits.idle_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._read_bytes = len(data)
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            # The head spans reads. Counted after the parser saw it: it holds at most this read
            # beyond the limit. Its deadline runs from this, its first read.
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._reject(431, f"request head exceeds the limit of {self.limits.max_header_bytes} bytes")
            elif self._deadline is None:
                self._arm(self.limits.head_timeout_s)

    # --- parser callbacks

    def on_message_begin(self) -> None:
        if self._discarding:
            return
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._disarm()  # the idle deadline; a head deadline is armed if the head spans reads

    def on_headers_complete(self) -> None:
        if self._discarding:
            return
        self._in_head = False
        self._disarm()  # the request's own deadline (TimeoutMiddleware) takes over
        limit = self.limits.max_header_bytes
        if self._head_bytes + self._read_bytes > limit:  # the last read was not counted: measure
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) + 16
            if size > limit:
                self._reject(431, f"request head exceeds the limit of {limit} bytes")
                return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._discarding:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._discarding:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:
            # uvicorn armed its idle timer (timeout_keep_alive is ours) but cancels it on any byte
            # received: held here, only the start of a request cancels it.
            self._disarm()
            self._deadline = self.timeout_keep_alive_task
            self.timeout_keep_alive_task = None

    # --- deadlines

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._deadline_passed)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._in_head:
            self._reject(408, f"request head not received within {self.limits.head_timeout_s:g} s")
        else:
            self.transport.close()

    def _reject(self, status: int, detail: str) -> None:
        """Answer ``status`` unless a response is under way on this connection, then close."""
        self._disarm()
        self._discarding = True
        self.flow.pause_reading()
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(closing_response(status, detail))
        self.transport.close()
