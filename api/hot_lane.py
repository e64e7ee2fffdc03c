"""The hot lane: the hot operations (v2 infer; v1 infer, hash, ping) answered in front of the
middleware chain, with the chain's checks made as plain calls in one coroutine.

Through the chain a request passes eight nested ASGI layers, four of them wrapping ``send``: measured
in-process (batching on, the ONNX MLP, 64 concurrent requests) that was 30–50 µs of CPU a request,
as much as everything else the event loop does for it. The lane does the same work in order —
metrics, W3C trace context, the deadline, the API key, the rate limit, the body limit — with one
``send`` wrapper, then calls the hot path's own handler (api/fastpath.py, api/v2/hot_infer.py).

It serves only requests it can admit from their headers: one it would refuse with 400/401/413
(no or unknown key, a body over the limit, a malformed or missing Content-Length on a POST) goes
down the chain unchanged, which answers it exactly as without the lane; nothing has been read or
counted by then. The rate limit and the deadline, which need the request under way, answer 429
and 504 here, in the shape of the path's protocol (problem+json, or ``{"error": ...}`` under /v2).

Not installed when OpenTelemetry or a root path is configured: their middleware must see every
request first (api/main.py).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .fastpath import HotPathMiddleware, HotRoute
from .middleware.auth import KEY_ID_SCOPE, ApiKeys, find_key
from .middleware.metrics import IN_FLIGHT, RequestMetrics
from .middleware.rate_limit import (
    RATE_LIMITED,
    SharedLimiter,
    TokenBuckets,
    identity_of,
    retry_after,
    take_token,
)
from .middleware.timeout import Deadlines
from .middleware.traceparent import current_traceparent, traceparent_for
from .problems import send_problem
from .state import Gateway
from .v2.errors import send_error
from .v2.hot_infer import V2InferMiddleware


async def _refuse(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None, *, v2: bool
) -> None:
    """A refusal the chain would send: problem+json, reshaped to ``{"error": ...}`` under /v2."""
    await (send_error if v2 else send_problem)(send, status, detail, extra or ())


class HotLane:
    def __init__(
        self,
        app: ASGIApp,
        *,
        gateway: Gateway,
        hot: tuple[HotRoute, ...],
        routes: list[Any],
        keys: ApiKeys | None,
        max_body_bytes: int,
        timeout_s: float,
        buckets: TokenBuckets | None,
        shared: SharedLimiter | None,
    ) -> None:
        self.app = app
        self.v2 = V2InferMiddleware(app, gateway, routes)
        self.v1 = HotPathMiddleware(app, gateway, hot, routes)
        self.keys = keys
        self.max_body_bytes = max_body_bytes
        self.deadlines = Deadlines(timeout_s)
        self.buckets = buckets
        self.shared = shared if buckets is not None else None
        self.metrics = RequestMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        serve = self.v2.handler(scope) or self.v1.handler(scope) if scope["type"] == "http" else None
        if serve is None or not self._admitted(scope):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        trace = traceparent_for(scope["headers"], use_otel=False)
        token = current_traceparent.set(trace.decode())
        v2 = scope["path"].startswith("/v2/")

        async def send_traced(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"traceparent", trace)]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.deadlines.run(
                scope, send_traced, partial(self._limited, serve, v2, scope, receive), partial(_refuse, v2=v2)
            )
        finally:
            IN_FLIGHT.dec()
            self.metrics.record(scope, status, start)
            current_traceparent.reset(token)

    def _admitted(self, scope: Scope) -> bool:
        """Whether the chain would let this request through to the hot path, from its headers."""
        declared: list[bytes] = [value for name, value in scope["headers"] if name == b"content-length"]
        if len(declared) > 1:  # the chain reads the first; the server should have refused the request
            return False
        if declared:
            if not declared[0].isdigit() or int(declared[0]) > self.max_body_bytes:
                return False
        elif scope["method"] != "GET":  # a body of unknown length: the chain watches it grow
            return False
        if self.keys is not None:
            key = find_key(scope["headers"])
            key_id = self.keys.match(key) if key is not None else None
            if key_id is None:
                return False
            scope[KEY_ID_SCOPE] = key_id
        return True

    async def _limited(self, serve: ASGIApp, v2: bool, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is not None:
            wait = (
                self.buckets.take(identity_of(scope))  # no coroutine when the buckets are local
                if self.shared is None
                else await take_token(self.buckets, self.shared, scope)
            )
            if wait > 0.0:
                await _refuse(send, 429, RATE_LIMITED, retry_after(wait), v2=v2)
                return
        await serve(scope, receive, send)
