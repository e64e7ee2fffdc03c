"""Errors of the v2 protocol: ``{"error": "..."}`` with the status the protocol gives them.

Domain code raises ``V2Error``; the /v2 routers turn it into a response. Answers sent by the shared
middleware (401, 413, 429, 504: problem+json) are reshaped by ``V2ErrorShapeMiddleware``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..problems import PROBLEM_MEDIA_TYPE

MAX_PROBLEM_BYTES = 64 * 1024  # a problem body is small; anything larger passes through untouched


class V2Error(Exception):
    """A request the protocol answers with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type="application/json")


async def send_error(
    send: Send, status: int, message: str, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``{"error": message}`` from pure-ASGI code: the protocol's ``send_problem``."""
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _reshape(body: bytes) -> bytes:
    try:
        problem = json.loads(body)
        message = str(problem.get("detail") or problem.get("title") or "error")
    except (ValueError, AttributeError):
        message = "error"
    return orjson.dumps({"error": message})


class V2ErrorShapeMiddleware:
    """Under ``/v2``, problem+json answers become the protocol's ``{"error": ...}`` JSON."""

    def __init__(self, app: ASGIApp, prefix: str = "/v2") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def reshaping_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(PROBLEM_MEDIA_TYPE.encode()):
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False) and sum(map(len, chunks)) <= MAX_PROBLEM_BYTES:
                    return
                body = _reshape(b"".join(chunks))
                headers = [
                    (k, v)
                    for k, v in held.get("headers", [])
                    if k not in (b"content-type", b"content-length")
                ]
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({**held, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                held = None
                return
            await send(message)

        await self.app(scope, receive, reshaping_send)
