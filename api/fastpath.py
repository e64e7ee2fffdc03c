"""A pure-ASGI fast path for the hottest operations: infer, hash and ping.

Measured in-process under load: the same infer work costs ~10× less as a bare ASGI handler than
through FastAPI + Starlette (exception and exit-stack middleware, router, ``Request``/``Response``
objects, dependency solving) — for a small model that machinery, not the model, bounds throughput.

``HotPathMiddleware`` sits innermost among the gateway's middleware (after auth, limits, deadline,
metrics and tracing, which all still apply; the hot lane, api/hot_lane.py, calls its handler with
the same checks in front of the chain) and answers these operations itself by calling the
*same* functions the FastAPI routes call (``infer_json``, ``hash_json``) with the same body
budgets, so both paths give byte-identical answers and errors.

The FastAPI routes it shadows are therefore never served by the gateway: they are the hot path's
documentation (OpenAPI, /docs) and its reference implementation, served only by an app built with
``create_app(fast_paths=False)``. Each is marked ``@served_by_hot_path`` (the middleware refuses a
hot route whose FastAPI route is not), and tests/unit/api/test_api_fastpath.py drives every hot
route both ways, error cases included, and compares status, headers and body.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from .bodies import JsonBudget, JsonLimits
from .problems import PROBLEM_MEDIA_TYPE, send_problem, validation_problem_body
from .state import Gateway

Operation = Callable[[Gateway, bytes, dict[str, str]], Awaitable[bytes]]
Budget = Callable[[Gateway, dict[str, str]], JsonLimits]  # what a body may hold, checked as it arrives
E = TypeVar("E", bound=Callable[..., Any])
_JSON_HEADERS = (b"content-type", b"application/json")
_MARK = "__served_by_hot_path__"


def served_by_hot_path(endpoint: E) -> E:
    """Mark a FastAPI route as shadowed: ``HotPathMiddleware`` answers its requests, so in the
    gateway the route only documents the operation (it serves it with ``fast_paths=False``)."""
    setattr(endpoint, _MARK, True)
    return endpoint


@dataclass(frozen=True)
class HotRoute:
    method: str
    template: str  # e.g. "/v1/models/{name}/infer"
    operation: Operation
    reads_body: bool = True
    budget: Budget | None = None


@dataclass(frozen=True)
class _Compiled:
    method: str
    pattern: re.Pattern[str]
    operation: Operation
    reads_body: bool
    budget: Budget | None
    api_route: APIRoute  # set as scope["route"], as routing would, for metrics and tracing


async def _read_body(receive: Receive, budget: JsonBudget | None) -> bytes | None:
    """The whole body, or None when the client went away; 422 once it exceeds ``budget``."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if budget is not None:
            budget.feed(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class HotPathMiddleware:
    def __init__(
        self, app: ASGIApp, gateway: Gateway, hot: Iterable[HotRoute], routes: Iterable[Any]
    ) -> None:
        self.app = app
        self.gateway = gateway
        documented = {(m, r.path): r for r in routes if isinstance(r, APIRoute) for m in r.methods or ()}
        self.routes = []
        for route in hot:
            api_route = documented.get((route.method, route.template))
            if api_route is None:
                raise ValueError(f"no documented route {route.method} {route.template}")
            if not getattr(api_route.endpoint, _MARK, False):
                raise ValueError(f"mark the route of {route.method} {route.template} @served_by_hot_path")
            pattern, _, _ = compile_path(route.template)
            self.routes.append(
                _Compiled(route.method, pattern, route.operation, route.reads_body, route.budget, api_route)
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        serve = self.handler(scope) if scope["type"] == "http" else None
        await (serve or self.app)(scope, receive, send)

    def handler(self, scope: Scope) -> ASGIApp | None:
        """What answers this HTTP request: one of the hot routes, else None (not ours)."""
        method, path = scope["method"], scope["path"]
        for route in self.routes:
            if route.method == method and (match := route.pattern.match(path)) is not None:
                return partial(self._serve, route, match.groupdict())
        return None

    async def _serve(
        self, route: _Compiled, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["route"] = route.api_route
        scope["path_params"] = params
        try:
            body = b""
            if route.reads_body:
                budget = route.budget(self.gateway, params).budget() if route.budget is not None else None
                received = await _read_body(receive, budget)
                if received is None:
                    return
                body = received
            payload = await route.operation(self.gateway, body, params)
        except StarletteHTTPException as exc:  # ProblemError, BodyTooLarge, …
            headers = [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
            await send_problem(send, exc.status_code, str(exc.detail), headers)
            return
        except RequestValidationError as exc:
            problem = validation_problem_body(exc)
            await send(
                {
                    "type": "http.response.start",
                    "status": 422,
                    "headers": [
                        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                        (b"content-length", b"%d" % len(problem)),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": problem})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON_HEADERS, (b"content-length", b"%d" % len(payload))],
            }
        )
        await send({"type": "http.response.body", "body": payload})
