"""What the running service holds: settings, models and their batchers, the CPU limiter, the
transit keyring, and whether it is ready."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .inference import MicroBatcher, MlpModel, ModelRegistry
from .inference.registry import F32
from .settings import Settings
from .transit import KeyringFile

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
    repository: Any = None  # the /v2 ModelRepository (api/repository/store.py) once started
    admin_keys: Any = None  # ApiKeys allowed to load/unload models on /v2, if any

    @classmethod
    def create(cls, settings: Settings) -> Gateway:
        return cls(settings=settings, limiter=anyio.CapacityLimiter(settings.cpu_workers))

    async def run_cpu(self, fn: Callable[..., T], *args: object) -> T:
        """Run CPU-bound ``fn`` in a worker thread, at most ``cpu_workers`` at once.

        The native kernels release the GIL, so threads give real parallelism; the limiter keeps
        the event loop's core free for I/O instead of oversubscribing the machine.
        """
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    async def run_model(self, fn: Callable[[F32], F32], x: F32) -> F32:
        return await self.run_cpu(fn, x)

    def model(self, name: str) -> MlpModel | None:
        return self.registry.models.get(name)

    async def infer(self, model: MlpModel, x: F32) -> F32:
        batcher = self.batchers.get(model.name)
        if batcher is not None:
            return await batcher.infer(x)
        return await self.run_cpu(model.forward, x)
