"""Starting, polling and stopping the repository with the gateway's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..state import Gateway
from .store import BatchingDefaults, ModelRepository

log = logging.getLogger("api.repository")


async def start(gateway: Gateway) -> asyncio.Task[None] | None:
    """Load the repository once, then poll it every ``repository_poll_s`` (None: no polling)."""
    settings = gateway.settings
    defaults = BatchingDefaults(
        enabled=settings.batching,
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_batch_wait_ms / 1000,
        max_concurrent=settings.cpu_workers,
    )
    repository = ModelRepository(settings.model_repository, settings.models_dir, gateway.run, defaults)
    await repository.sync()
    gateway.repository = repository
    if settings.repository_poll_s <= 0:
        return None
    return asyncio.get_running_loop().create_task(
        _poll(repository, settings.repository_poll_s), name="repository-poll"
    )


async def _poll(repository: ModelRepository, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await repository.sync()
        except Exception:  # a bad scan is logged; the next one may succeed
            log.exception("model repository scan failed")


async def stop(gateway: Gateway, poller: asyncio.Task[None] | None) -> None:
    if poller is not None:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
    if gateway.repository is not None:
        await gateway.repository.close()
