"""W3C Trace Context: accept ``traceparent``, continue its trace with a new span id for this
request, and return it in the response's ``traceparent`` header (available to handlers and logs
through ``current_traceparent``). When OpenTelemetry is on, its server span's ids are used."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TRACEPARENT = re.compile(rb"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16

_random = random.Random().getrandbits  # seeded from os.urandom at import

current_traceparent: ContextVar[str | None] = ContextVar("nexpo_traceparent", default=None)


def parse_traceparent(value: bytes) -> tuple[bytes, bytes] | None:
    """(trace id, flags) of a valid header, else None (spec §3.2: then start a new trace)."""
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == b"ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    if version == b"00" and len(value.strip()) != 55:
        return None
    return trace_id, flags


def _otel_ids() -> tuple[bytes, bytes, bytes] | None:
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}".encode(), f"{ctx.span_id:016x}".encode(), f"{ctx.trace_flags:02x}".encode()


def traceparent_for(headers: list[tuple[bytes, bytes]], use_otel: bool) -> bytes:
    """This request's ``traceparent``: OpenTelemetry's server span when on, else the incoming
    trace continued with a new span id, else a new trace."""
    ids = _otel_ids() if use_otel else None
    if ids is None:
        incoming = None
        for name, value in headers:
            if name == b"traceparent":
                incoming = parse_traceparent(value)
                break
        # Ids need uniqueness, not secrecy: the PRNG (as OpenTelemetry's SDK uses) spares a
        # getrandom syscall per id. A zero id is invalid, hence the "| 1".
        trace_id, flags = incoming if incoming else (b"%032x" % (_random(128) | 1), b"00")
        ids = (trace_id, b"%016x" % (_random(64) | 1), flags)
    return b"00-" + ids[0] + b"-" + ids[1] + b"-" + ids[2]


class TraceparentMiddleware:
    def __init__(self, app: ASGIApp, use_otel: bool = False) -> None:
        self.app = app
        self.use_otel = use_otel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = traceparent_for(scope["headers"], self.use_otel)
        token = current_traceparent.set(header.decode())

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"traceparent", header)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            current_traceparent.reset(token)
