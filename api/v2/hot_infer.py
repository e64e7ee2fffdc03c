"""``POST /v2/models/{name}[/versions/{version}]/infer`` answered in pure ASGI, like the /v1 hot path
(api/fastpath.py): FastAPI's request machinery costs more than a small model's inference.

It sits inside every shared middleware (metrics, deadline, auth, rate and body limits still apply;
the hot lane, api/hot_lane.py, calls its handler with the same checks in front of them), answers
errors in the protocol's shape itself, and calls the route's own ``answer``
(api/routers/v2_inference.py), so both give the same bytes;
the FastAPI routes document the operation and serve it in apps built with ``fast_paths=False``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from functools import partial
from typing import Any

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from ..routers.v2_inference import answer, find_version
from ..state import Gateway
from .errors import V2Error, send_error

_PATH = re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer")
_LATEST, _VERSIONED = "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"
_JSON = b"application/json"
_HEAD = b"inference-header-content-length"


async def _body(receive: Receive) -> AsyncIterator[bytes] | bytes:
    """The body when its first message holds all of it (the usual case: no generator per request),
    else its chunks as they arrive (counted by the caller)."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect()
    first: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return first
    return _chunks(receive, first)


async def _chunks(receive: Receive, first: bytes) -> AsyncIterator[bytes]:
    yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


class V2InferMiddleware:
    def __init__(self, app: ASGIApp, gateway: Gateway, routes: Iterable[Any]) -> None:
        self.app = app
        self.gateway = gateway
        documented = {r.path: r for r in routes if isinstance(r, APIRoute) and "POST" in (r.methods or ())}
        self.latest, self.versioned = documented[_LATEST], documented[_VERSIONED]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        serve = self.handler(scope) if scope["type"] == "http" else None
        await (serve or self.app)(scope, receive, send)

    def handler(self, scope: Scope) -> ASGIApp | None:
        """What answers this HTTP request: an infer call, else None (not ours)."""
        if scope["method"] == "POST" and (match := _PATH.fullmatch(scope["path"])) is not None:
            return partial(self._serve, match["name"], match["version"])
        return None

    async def _serve(
        self, name: str, version: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["route"] = self.latest if version is None else self.versioned  # for metrics and tracing
        scope["path_params"] = {"name": name} if version is None else {"name": name, "version": version}
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            model = find_version(self.gateway, name, version)
            with model.hold():  # a version retired meanwhile still serves this request
                content, head = await answer(self.gateway, model, name, headers, await _body(receive))
        except V2Error as exc:
            await send_error(send, exc.status, exc.message)
            return
        except ClientDisconnect:
            return
        except StarletteHTTPException as exc:  # 413 from the body limit, in the protocol's shape
            extra = [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
            await send_error(send, exc.status_code, str(exc.detail), extra)
            return
        if head is None:
            await _send(send, 200, content, _JSON)
        else:
            await _send(send, 200, content, b"application/octet-stream", [(_HEAD, b"%d" % head)])


async def _send(
    send: Send, status: int, body: bytes, media: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", media), (b"content-length", b"%d" % len(body))]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
