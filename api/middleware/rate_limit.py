"""Per-key token bucket: ``rate`` tokens/s up to ``burst``; an empty bucket answers 429 with
``Retry-After``. Buckets are per worker process (N workers allow N× the rate in total) unless a
``SharedBuckets`` (api/middleware/shared_rate_limit.py: Redis) is given."""

from __future__ import annotations

import math
import time
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from ..problems import send_problem
from .auth import KEY_ID_SCOPE

_MAX_BUCKETS = 100_000  # identities remembered; full buckets are forgotten first


class TokenBuckets:
    def __init__(self, rate: float, burst: int, clock: object = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # identity -> [tokens, last refill time]

    def take(self, identity: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        now: float = self._clock()  # type: ignore[operator]
        bucket = self._buckets.get(identity)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._forget_full(now)
            self._buckets[identity] = [self.burst - 1.0, now]
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full_after = self.burst / self.rate
        stale = [k for k, (_, last) in self._buckets.items() if now - last >= full_after]
        for key in stale or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


class SharedLimiter(Protocol):
    async def take(self, identity: str) -> float: ...


def identity_of(scope: Scope) -> str:
    """Whom a request's tokens come from: its API key's id, else its client address."""
    identity = scope.get(KEY_ID_SCOPE)
    if identity is None:
        client = scope.get("client")
        identity = f"ip-{client[0]}" if client else "anonymous"
    return str(identity)


async def take_token(buckets: TokenBuckets, shared: SharedLimiter | None, scope: Scope) -> float:
    """0.0 when the request may go, else the seconds until its identity has a token."""
    identity = identity_of(scope)
    return buckets.take(identity) if shared is None else await shared.take(identity)


RATE_LIMITED = "rate limit exceeded for this API key"


def retry_after(wait: float) -> list[tuple[bytes, bytes]]:
    return [(b"retry-after", str(max(1, math.ceil(wait))).encode())]


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        burst: int,
        *,
        prefix: str | tuple[str, ...] = "/v1/",
        shared: SharedLimiter | None = None,
        open_prefixes: tuple[str, ...] = (),
        buckets: TokenBuckets | None = None,  # shared with the gRPC server: one limit per identity
    ) -> None:
        self.app = app
        self.buckets = (buckets or TokenBuckets(rate, burst)) if rate > 0 else None
        self.shared = shared if rate > 0 else None
        self.prefix = prefix
        self.open_prefixes = open_prefixes  # inside prefix, but never limited (health probes)
        if self.buckets is not None and self.shared is None:
            from .shared_rate_limit import LOCAL, publish_backend

            publish_backend(LOCAL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.buckets is None
            or scope["type"] != "http"
            or not scope["path"].startswith(self.prefix)
            or scope["path"].startswith(self.open_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        wait = await take_token(self.buckets, self.shared, scope)
        if wait > 0.0:
            await send_problem(send, 429, RATE_LIMITED, retry_after(wait))
            return
        await self.app(scope, receive, send)
