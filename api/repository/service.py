"""Starting, polling and stopping the repository with the gateway's lifespan, and the load/unload
decisions that every worker process applies (api/repository/decisions.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import anyio.to_thread

from ..state import Gateway
from .decisions import FOLLOW_S, DecisionsError, SharedDecisions
from .store import BatchingDefaults, ModelEntry, ModelRepository

log = logging.getLogger("api.repository")

__all__ = ["DecisionsError", "load", "start", "stop", "unload"]


class _Shared:
    """This worker's view of the shared decisions: which ones it has applied."""

    def __init__(self, decisions: SharedDecisions) -> None:
        self.decisions = decisions
        self.applied: dict[str, int] = {}  # model -> sequence number of its last decision applied

    async def follow(self, repository: ModelRepository) -> None:
        """Apply the decisions other workers recorded since the last call."""
        if not self.decisions.changed():
            return
        for name, decision in (await anyio.to_thread.run_sync(self.decisions.read)).items():
            if decision.sequence <= self.applied.get(name, 0):
                continue
            self.applied[name] = decision.sequence
            if decision.unloaded:
                await repository.unload(name, absent_ok=True)
            else:
                with contextlib.suppress(KeyError):  # gone from the disk meanwhile
                    await repository.load(name)


async def start(gateway: Gateway) -> list[asyncio.Task[None]]:
    """Load the repository once, then poll it every ``repository_poll_s`` and, with several
    workers, follow the others' load/unload decisions; returns the tasks to stop."""
    settings = gateway.settings
    defaults = BatchingDefaults(
        enabled=settings.batching,
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_batch_wait_ms / 1000,
        max_concurrent=settings.cpu_workers,
    )
    repository = ModelRepository(settings.model_repository, settings.models_dir, gateway.run, defaults)
    decisions = SharedDecisions.from_environment()
    shared = _Shared(decisions) if decisions is not None else None
    if shared is not None:  # a restarted worker starts from the decisions already made
        for name, decision in (await anyio.to_thread.run_sync(shared.decisions.read)).items():
            shared.applied[name] = decision.sequence
            if decision.unloaded:
                repository.unloaded.add(name)
    await repository.sync()
    gateway.repository = repository
    gateway.repository_decisions = shared
    loop = asyncio.get_running_loop()
    tasks = []
    if settings.repository_poll_s > 0:
        tasks.append(loop.create_task(_poll(repository, settings.repository_poll_s), name="repository-poll"))
    if shared is not None:
        every = min(FOLLOW_S, settings.repository_poll_s or FOLLOW_S)
        tasks.append(loop.create_task(_follow(shared, repository, every), name="repository-decisions"))
    return tasks


async def _poll(repository: ModelRepository, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await repository.sync()
        except Exception:  # a bad scan is logged; the next one may succeed
            log.exception("model repository scan failed")


async def _follow(shared: _Shared, repository: ModelRepository, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await shared.follow(repository)
        except Exception:  # logged; the next tick retries
            log.exception("applying the shared repository decisions failed")


async def load(gateway: Gateway, repository: ModelRepository, name: str) -> ModelEntry:
    """Load (or reload) ``name`` here, then tell the other workers; ``KeyError`` when the disk
    has no such model (nothing recorded), ``DecisionsError`` when they cannot be told."""
    entry = await repository.load(name)
    shared: _Shared | None = gateway.repository_decisions
    if shared is not None:
        shared.applied[name] = await anyio.to_thread.run_sync(_record, shared, name, False)
    return entry


async def unload(gateway: Gateway, repository: ModelRepository, name: str) -> bool:
    """Stop serving ``name`` in every worker (this one at once); False when it is not loaded here.
    The decision is recorded first: when that fails (``DecisionsError``) nothing changes."""
    if name not in repository.models:
        return False
    shared: _Shared | None = gateway.repository_decisions
    if shared is not None:
        shared.applied[name] = await anyio.to_thread.run_sync(_record, shared, name, True)
    return await repository.unload(name, absent_ok=shared is not None)


def _record(shared: _Shared, name: str, unloaded: bool) -> int:
    return shared.decisions.record(name, unloaded=unloaded)


async def stop(gateway: Gateway, tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if gateway.repository is not None:
        await gateway.repository.close()
