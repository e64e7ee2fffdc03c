"""The models the v2 protocol serves, kept in step with the disk.

``sync()`` scans the disk (in a worker thread) and then, on the event loop, loads what is new or
changed and retires what is gone. A version is swapped, never edited: requests that already hold
the old one finish on it (``in_flight``), and only then is its batcher closed. A model that fails
to load is kept as an error by name and never stops the others. ``unload`` is sticky: the poller
does not bring the model back until ``load`` asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np

from ..inference.batcher import MicroBatcher
from ..v2.metrics import ModelMetrics
from .backends import Backend, BackendError, MlpBackend
from .config import ModelConfig
from .layout import ModelSource, VersionSource, scan
from .onnx_backend import OnnxBackend

log = logging.getLogger("api.repository")

CLOSE_TIMEOUT_S = 30.0

# ``Gateway.run``: fn(*args) inline or in a worker thread, by its cost in bytes
Runner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class BatchingDefaults:
    """Settings for models without a config.json (the /v1 batching settings)."""

    enabled: bool = True
    max_batch_size: int = 128
    max_wait_s: float = 0.002
    max_concurrent: int = 1


class _Rows:
    """A single-input, single-output backend as the batcher's row model.

    nexpo's ONNX engine plans a graph per input shape and keeps a few plans (milliseconds to make
    one): merged batches of every size from 1 to the maximum would re-plan on nearly every call.
    They run in chunks of powers of two instead (37 rows: 32, 4, 1), which reuse at most
    log2(max_batch_size) + 1 plans; rows are independent in a batchable model, as they are between
    requests."""

    def __init__(self, name: str, backend: Backend, *, power_of_two_chunks: bool = False) -> None:
        self.name = name
        self._backend = backend
        self._input = backend.inputs[0].name
        self._output = backend.outputs[0].name
        self._chunked = power_of_two_chunks

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._backend.infer({self._input: x})[self._output]

    def forward(self, x: np.ndarray) -> np.ndarray:
        rows = x.shape[0]
        if not self._chunked or rows & (rows - 1) == 0:
            return self._run(x)
        parts, start = [], 0
        for bit in reversed(range(rows.bit_length())):
            if rows & (1 << bit):
                parts.append(self._run(x[start : start + (1 << bit)]))
                start += 1 << bit
        return np.concatenate(parts)

    def forward_cost(self, rows: int) -> int:
        return self._backend.forward_cost(rows)


def batchable(backend: Backend) -> bool:
    """One input and one output whose only free dimension is the first (the batch)."""
    specs = (*backend.inputs, *backend.outputs)
    return (
        len(backend.inputs) == 1
        and len(backend.outputs) == 1
        and all(s.shape[:1] == (-1,) and -1 not in s.shape[1:] and s.datatype != "BYTES" for s in specs)
    )


@dataclass(eq=False)
class ModelVersion:
    name: str
    version: int
    backend: Backend
    config: ModelConfig
    source: VersionSource
    metrics: ModelMetrics
    batcher: MicroBatcher | None = None
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep this version (and its batcher) alive while a request uses it, even if it is retired."""
        self.in_flight += 1
        self.idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()


@dataclass
class ModelEntry:
    name: str
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    source: ModelSource | None = None
    errors: dict[int, str] = field(default_factory=dict)  # version -> why it did not load
    # version -> (file stamp, why): a file that failed is not retried every poll until it changes
    failed: dict[int, tuple[tuple[int, int, int], str]] = field(default_factory=dict)
    error: str | None = None  # the whole model

    @property
    def ready(self) -> bool:
        return bool(self.versions)

    def latest(self) -> ModelVersion | None:
        return self.versions[max(self.versions)] if self.versions else None


def load_backend(source: VersionSource, name: str) -> Backend:
    if source.kind == "onnx":
        return OnnxBackend.load(source.path)
    return MlpBackend.load(source.path, name)


class ModelRepository:
    def __init__(
        self,
        repository: Path | None,
        flat: Path | None,
        run: Runner,
        defaults: BatchingDefaults,
        loader: Callable[[VersionSource, str], Backend] = load_backend,
    ) -> None:
        self.repository = repository
        self.flat = flat
        self._run = run
        self.defaults = defaults
        self._loader = loader
        self.models: dict[str, ModelEntry] = {}
        self.unloaded: set[str] = set()
        self.error: str | None = None  # the repository itself could not be read
        self.synced = False
        self.startup_failures: set[str] = set()  # models that failed in the first scan
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    # --- lookups --------------------------------------------------------------------------------

    def get(self, name: str, version: int | None = None) -> ModelVersion | None:
        entry = self.models.get(name)
        if entry is None:
            return None
        return entry.latest() if version is None else entry.versions.get(version)

    def ready(self) -> bool:
        """The server is ready once the first scan loaded everything it found (a broken deployment
        never becomes ready) and while that stays so. A model or version that breaks later is
        reported (index, model readiness) but keeps no pod out of rotation: every pod reading the
        same repository would fail at once, and the other models can serve."""
        if not self.synced or self.error is not None:
            return False
        return not any(self._failing(self.models.get(name)) for name in self.startup_failures)

    @staticmethod
    def _failing(entry: ModelEntry | None) -> bool:
        return entry is not None and (not entry.ready or bool(entry.errors))

    def index(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for name in sorted(self.models.keys() | self.unloaded):
            entry = self.models.get(name)
            if entry is None:
                rows.append({"name": name, "state": "UNAVAILABLE", "reason": "unloaded"})
                continue
            if entry.error is not None:
                rows.append({"name": name, "state": "UNAVAILABLE", "reason": entry.error})
            for version in sorted(entry.versions.keys() | entry.errors.keys()):
                if version in entry.versions:  # a failed reload keeps the loaded file serving
                    reason = f"reload failed: {entry.errors[version]}" if version in entry.errors else ""
                    rows.append({"name": name, "version": str(version), "state": "READY", "reason": reason})
                else:
                    reason = entry.errors[version]
                    rows.append(
                        {"name": name, "version": str(version), "state": "UNAVAILABLE", "reason": reason}
                    )
        return rows

    # --- requests -------------------------------------------------------------------------------

    async def infer(self, model: ModelVersion, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one request on ``model`` (through its batcher, if it has one)."""
        with model.hold():
            if model.batcher is not None:
                spec_in, spec_out = model.backend.inputs[0], model.backend.outputs[0]
                return {spec_out.name: await model.batcher.infer(inputs[spec_in.name])}
            started = asyncio.get_running_loop().time()
            first = next(iter(inputs.values()), None)
            cost = model.backend.forward_cost(first.shape[0] if first is not None and first.ndim else 1)
            outputs: dict[str, np.ndarray] = await self._run(model.backend.infer, inputs, cost=cost)
            rows = next(iter(inputs.values())).shape[0] if model.config.max_batch_size else 1
            model.metrics.executed(rows, asyncio.get_running_loop().time() - started)
            return outputs

    # --- keeping in step with the disk ----------------------------------------------------------

    async def sync(self, only: str | None = None) -> None:
        """Scan the disk and load/retire accordingly (``only``: just that model)."""
        sources, error = await anyio.to_thread.run_sync(scan, self.repository, self.flat)
        async with self._lock:
            if error is not None and error != self.error:  # logged once, not every poll
                log.error("%s", error)
            self.error = error
            if error is not None:
                if not self.synced:
                    self.synced = True
                return  # keep serving what is loaded: a transient listing error unloads nothing
            for name in list(self.models):
                if (only is None or name == only) and (name not in sources or name in self.unloaded):
                    self._drop(name)
            for name, source in sources.items():
                if (only is None or name == only) and name not in self.unloaded:
                    await self._apply(source)
            if not self.synced:
                self.startup_failures = {n for n, e in self.models.items() if self._failing(e)}
            self.synced = True

    async def load(self, name: str) -> ModelEntry:
        """Load (or reload) ``name`` from disk; ``KeyError`` when the disk has no such model."""
        self.unloaded.discard(name)
        if name in self.models:
            self.models[name].failed.clear()  # an explicit load retries what failed
        await self.sync(only=name)
        entry = self.models.get(name)
        if entry is None:
            raise KeyError(name)
        return entry

    async def unload(self, name: str, *, absent_ok: bool = False) -> bool:
        """Stop serving ``name`` (in-flight requests finish); False when it is not loaded. With
        ``absent_ok`` (a decision another worker made) it stays unloaded even if it is not loaded
        here (yet)."""
        async with self._lock:
            if name not in self.models and not absent_ok:
                return False
            self.unloaded.add(name)
            if name in self.models:
                self._drop(name)
            return True

    async def close(self) -> None:
        async with self._lock:
            for name in list(self.models):
                self._drop(name)
        if self._retiring:  # bounded: requests have their own deadline, this is a backstop
            await asyncio.wait(self._retiring, timeout=CLOSE_TIMEOUT_S)

    def _drop(self, name: str) -> None:
        entry = self.models.pop(name)
        for version in entry.versions.values():
            self._retire(version)
        log.info("model %s unloaded", name)

    def _retire(self, model: ModelVersion) -> None:
        async def retire() -> None:
            await model.idle.wait()  # in-flight requests finish on the version they started on
            if model.batcher is not None:
                await model.batcher.close()

        task = asyncio.get_running_loop().create_task(retire(), name=f"retire-{model.name}-{model.version}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _apply(self, source: ModelSource) -> None:
        entry = self.models.get(source.name)
        if entry is None:
            entry = self.models[source.name] = ModelEntry(source.name)
        config_changed = entry.source is not None and entry.source.config_stamp != source.config_stamp
        if source.error is not None and source.error != entry.error:  # logged once, not every poll
            log.error("model %s: %s", source.name, source.error)
        entry.source, entry.error = source, source.error
        entry.errors = dict(source.version_errors)
        if config_changed:
            entry.failed.clear()
        for version, found in source.versions.items():
            current = entry.versions.get(version)
            if current is not None and current.source.stamp == found.stamp and not config_changed:
                continue
            failed = entry.failed.get(version)
            if failed is not None and failed[0] == found.stamp:
                entry.errors[version] = failed[1]
                continue
            try:
                backend = await anyio.to_thread.run_sync(self._loader, found, source.name)
            except Exception as exc:  # any broken model is reported by name, never fatal
                detail = str(exc) if isinstance(exc, BackendError) else f"{type(exc).__name__}: {exc}"
                entry.errors[version] = detail
                entry.failed[version] = (found.stamp, detail)
                log.error("model %s version %d failed to load: %s", source.name, version, detail)
                continue
            entry.failed.pop(version, None)
            loaded = self._version(source, version, found, backend)
            entry.versions[version] = loaded  # new requests take the new version from now on
            if current is not None:
                self._retire(current)
            log.info("model %s version %d loaded (%s)", source.name, version, backend.platform)
        # Retired only now, so a request always finds a version; and never the last ones for a
        # replacement that failed to load (they keep serving; the index shows the failure).
        dropped = [v for v in entry.versions if v not in source.versions]
        if dropped and len(dropped) == len(entry.versions):
            return
        for version in dropped:
            self._retire(entry.versions.pop(version))
            log.info("model %s version %d unloaded", source.name, version)

    def _version(
        self, source: ModelSource, version: int, found: VersionSource, backend: Backend
    ) -> ModelVersion:
        config = source.config
        metrics = ModelMetrics(source.name, version)
        model = ModelVersion(source.name, version, backend, config or ModelConfig(), found, metrics)
        if config is None:
            enabled, rows, wait = (
                self.defaults.enabled,
                self.defaults.max_batch_size,
                self.defaults.max_wait_s,
            )
        else:
            enabled = config.dynamic_batching
            rows = max(config.preferred_batch_size, default=config.max_batch_size)
            wait = config.max_queue_delay_us / 1e6
        if enabled and batchable(backend):

            def observe(n: int, queued: float, compute: float) -> None:
                metrics.executed(n, compute)
                metrics.queue_seconds.inc(queued)

            model.batcher = MicroBatcher(
                _Rows(
                    f"{source.name}/{version}", backend, power_of_two_chunks=isinstance(backend, OnnxBackend)
                ),
                self._run,
                max_batch_size=rows,
                max_wait_s=wait,
                max_concurrent=self.defaults.max_concurrent,
                on_batch=observe,
            )
            model.batcher.start()
        return model
