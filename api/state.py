"""What the running service holds: settings, models and their batchers, the CPU limiter, the
transit keyring, and whether it is ready."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from .inference import MicroBatcher, MlpModel, ModelRegistry
from .inference.registry import F32
from .settings import Settings
from .transit import KeyringFile

if TYPE_CHECKING:
    from .middleware.shared_rate_limit import SharedBuckets

log = logging.getLogger("api")
T = TypeVar("T")


@dataclass
class Gateway:
    settings: Settings
    limiter: anyio.CapacityLimiter
    registry: ModelRegistry = field(default_factory=ModelRegistry)
    batchers: dict[str, MicroBatcher] = field(default_factory=dict)
    keyring: KeyringFile | None = None
    keyring_error: str | None = None
    ready: bool = False
    tracer_provider: Any = None  # OpenTelemetry's SDK TracerProvider when tracing is on
    shared_limits: SharedBuckets | None = None  # rate limits through Redis (NEXPO_REDIS_URL)
    repository: Any = None  # the /v2 ModelRepository (api/repository/store.py) once started
    repository_decisions: Any = None  # load/unload shared with the other workers (api/repository/service.py)
    admin_keys: Any = None  # ApiKeys allowed to load/unload models on /v2, if any
    api_keys: Any = None  # the ApiKeys every authenticated call needs (None: auth disabled)
    rate_buckets: Any = None  # the per-worker TokenBuckets of the rate limit (None: no limit)

    @classmethod
    def create(cls, settings: Settings) -> Gateway:
        return cls(settings=settings, limiter=anyio.CapacityLimiter(settings.cpu_workers))

    async def run(self, fn: Callable[..., T], *args: Any, cost: int) -> T:
        """``fn(*args)``: the one place that decides between the event loop and a worker thread.

        ``cost`` is the bytes the work reads and writes (a body parsed, data hashed, operands and
        result of a product). Up to ``settings.max_inline_cost`` it runs inline: a thread hop costs
        more (~100 µs) than the work. Above, it runs in a worker thread, at most ``cpu_workers``
        at once: the native kernels release the GIL, so threads give real parallelism, and the
        limiter keeps the event loop's core free for I/O instead of oversubscribing the machine.
        """
        if cost <= self.settings.max_inline_cost:
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def model(self, name: str) -> MlpModel | None:
        return self.registry.models.get(name)

    async def infer(self, model: MlpModel, x: F32) -> F32:
        """Probabilities for the batch ``x``, merged with concurrent requests when batching is on."""
        batcher = self.batchers.get(model.name)
        if batcher is not None:
            return await batcher.infer(x)
        return await self.run(model.forward, x, cost=model.forward_cost(x.shape[0]))
