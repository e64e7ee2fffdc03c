"""Rate limits shared by every worker and replica through Redis (``NEXPO_REDIS_URL``).

One Lua script (GCRA: the token bucket kept as one timestamp) decides atomically on the Redis
server, with the server's clock, so the fleet together allows a key ``rate`` requests/s up to
``burst``, however many pods and workers there are. Each bucket key expires as soon as its bucket
would be full again.

Redis is a dependency the gateway must survive: every call has a deadline (``redis_timeout_s``,
covering the wait for one of ``redis_pool_size`` connections), and when a call fails or is late
the worker switches to its own per-worker buckets (``TokenBuckets``), logs one line, counts the
fallback, and probes Redis in the background with backoff until it answers; then it logs one
line and shares limits again. No request ever fails because Redis did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any, Final
from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge

from nexpo.metrics import REGISTRY

from ..settings import Settings
from .rate_limit import TokenBuckets

log = logging.getLogger("api")

REDIS: Final = "redis"
LOCAL: Final = "local"
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 5.0

# livesum over workers: how many worker processes limit through each backend right now.
BACKEND = Gauge(
    "nexpo_rate_limit_backend",
    "Worker processes whose rate limits go through this backend (redis: shared; local: per worker)",
    ["backend"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
FALLBACKS = Counter(
    "nexpo_rate_limit_fallbacks_total",
    "Switches from Redis-shared to per-worker rate limits (Redis unreachable, failing or slow)",
    registry=REGISTRY,
)

# KEYS[1]: the bucket; it holds the theoretical arrival time (TAT) of the next request, in
# microseconds of the Redis server's clock. ARGV[1]: microseconds per token (1 / rate);
# ARGV[2]: burst. A new or expired bucket is full. Returns 0 when a token was taken, else the
# microseconds until one is available (refusals change nothing). Numbers are stored with %.17g:
# Lua's default formatting (%.14g) would round a microsecond timestamp.
GCRA_SCRIPT: Final = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allowed_at = next_tat - burst * interval
if allowed_at > now then
  return math.ceil(allowed_at - now)
end
local ttl_ms = math.ceil((next_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.17g', next_tat), 'PX', string.format('%d', ttl_ms))
return 0
"""


def publish_backend(backend: str) -> None:
    """This worker's series of ``nexpo_rate_limit_backend``: 1 for ``backend``, 0 for the other."""
    BACKEND.labels(REDIS).set(int(backend == REDIS))
    BACKEND.labels(LOCAL).set(int(backend == LOCAL))


def redacted(url: str) -> str:
    """``url`` without its credentials, for logs."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class SharedBuckets:
    """Per-key buckets in Redis, with this worker's own ``TokenBuckets`` while Redis is away."""

    def __init__(
        self,
        url: str,
        rate: float,
        burst: int,
        *,
        timeout_s: float,
        pool_size: int,
        key_prefix: str,
    ) -> None:
        self.url = url
        self.rate = rate
        self.burst = burst
        self.timeout_s = timeout_s
        self.pool_size = pool_size
        self.key_prefix = key_prefix
        self.local = TokenBuckets(rate, burst)
        self.backend: str = REDIS
        self._interval_us = 1e6 / rate
        self._client: Any = None
        self._script: Any = None
        self._probe: asyncio.Task[None] | None = None
        self._closed = False

    # -- life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (lazily, bounded) and check that Redis answers; fall back when it does not."""
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._set_backend(REDIS)
        try:
            pool = BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.pool_size,
                timeout=self.timeout_s,  # the wait for a free connection
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 0),  # one try: the fallback is the retry
                health_check_interval=0,
            )
            self._client = Redis(connection_pool=pool)
            self._script = self._client.register_script(GCRA_SCRIPT)
            await self._ping()
        except Exception as exc:
            self._fall_back(exc)
            return
        log.info("rate limits shared through Redis at %s", redacted(self.url))

    async def aclose(self) -> None:
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose(close_connection_pool=True)
            self._client = None
        BACKEND.labels(REDIS).set(0)
        BACKEND.labels(LOCAL).set(0)

    # -- the decision -------------------------------------------------------------------------

    async def take(self, identity: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        if self.backend == LOCAL or self._script is None:
            return self.local.take(identity)
        try:
            async with asyncio.timeout(self.timeout_s):
                wait_us = await self._script(
                    keys=[self.key_prefix + identity], args=[repr(self._interval_us), self.burst]
                )
        except Exception as exc:  # whatever Redis did, the request is limited locally, not failed
            self._fall_back(exc)
            return self.local.take(identity)
        return int(wait_us) / 1e6

    # -- fallback and recovery ----------------------------------------------------------------

    def _set_backend(self, backend: str) -> None:
        self.backend = backend
        publish_backend(backend)

    def _fall_back(self, exc: BaseException) -> None:
        """Switch to local buckets once per outage (concurrent failures find it done)."""
        if self.backend == LOCAL or self._closed:
            return
        self._set_backend(LOCAL)
        FALLBACKS.inc()
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning(
            "rate limits: Redis at %s failed (%s); limiting per worker until it is back",
            redacted(self.url),
            reason,
        )
        self._probe = asyncio.get_running_loop().create_task(self._recover(), name="nexpo-redis-probe")

    async def _ping(self) -> None:
        async with asyncio.timeout(self.timeout_s):
            await self._client.ping()

    async def _recover(self) -> None:
        delay = RETRY_FIRST_S
        while not self._closed:
            await asyncio.sleep(delay * random.uniform(0.75, 1.0))  # jitter: workers spread out
            try:
                await self._ping()
            except Exception:
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            self._set_backend(REDIS)
            log.info("rate limits: Redis at %s is back; limits are shared again", redacted(self.url))
            return


def shared_buckets(settings: Settings) -> SharedBuckets | None:
    """The shared limiter ``settings`` ask for: None without a Redis URL or with limits off."""
    if settings.redis_url is None or settings.rate_limit_rps <= 0:
        return None
    try:
        import redis.asyncio  # noqa: F401 -- in the api extra; say so rather than fail in a worker
    except ImportError as exc:
        raise RuntimeError(f"NEXPO_REDIS_URL needs redis-py: pip install 'nexpo[api]' ({exc})") from None
    return SharedBuckets(
        settings.redis_url,
        settings.rate_limit_rps,
        settings.rate_limit_burst,
        timeout_s=settings.redis_timeout_s,
        pool_size=settings.redis_pool_size,
        key_prefix=settings.redis_key_prefix,
    )
