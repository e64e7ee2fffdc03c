"""Triton's statistics extension: ``model_stats`` of loaded model versions, from their metrics.

One entry per version::

    {"name", "version", "last_inference" (ms since the epoch), "inference_count" (batch rows),
     "execution_count" (merged batches), "inference_stats": {success, fail, queue, compute_input,
     compute_infer, compute_output, cache_hit, cache_miss: {"count", "ns"}},
     "batch_stats": [{"batch_size", compute_input, compute_infer, compute_output}]}

As in Triton, ``count`` of queue and compute is the number of successful requests and ``ns`` the
time summed over them; compute_infer of a merged batch is counted once per batch (its requests
shared it). The figures are this worker process's. Shared by REST and gRPC.
"""

from __future__ import annotations

from typing import Any

from ..repository.store import ModelRepository, ModelVersion
from .errors import V2Error

_NS = 1_000_000_000


def _count(child: Any) -> int:
    return int(child._value.get())  # a prometheus_client counter child's running total


def _duration(count: int, ns: int) -> dict[str, int]:
    return {"count": count, "ns": ns}


def model_stats(model: ModelVersion) -> dict[str, Any]:
    metrics = model.metrics
    success = _count(metrics.success)
    executions = _count(metrics.executions)
    compute_ns = int(metrics.compute_seconds._value.get() * _NS)
    batch_stats = [
        {
            "batch_size": size,
            "compute_input": _duration(count, 0),
            "compute_infer": _duration(count, ns),
            "compute_output": _duration(count, 0),
        }
        for size, (count, ns) in sorted(metrics.batches.items())
    ]
    return {
        "name": model.name,
        "version": str(model.version),
        "last_inference": metrics.last_inference_ms,
        "inference_count": _count(metrics.inferences),
        "execution_count": executions,
        "inference_stats": {
            "success": _duration(success, int(metrics.request_seconds._value.get() * _NS)),
            "fail": _duration(_count(metrics.failure), metrics.fail_ns),
            "queue": _duration(success, int(metrics.queue_seconds._value.get() * _NS)),
            "compute_input": _duration(success, metrics.input_ns),
            "compute_infer": _duration(success, compute_ns),
            "compute_output": _duration(success, metrics.output_ns),
            "cache_hit": _duration(0, 0),
            "cache_miss": _duration(0, 0),
        },
        "batch_stats": batch_stats,
    }


def statistics(repository: ModelRepository, name: str, version: int | None) -> dict[str, Any]:
    """``{"model_stats": [...]}``: every loaded version of every model (``name`` empty), of one
    model, or one version; ``V2Error(404)`` for a model or version that is not loaded."""
    if not name:
        versions = [
            v for _, entry in sorted(repository.models.items()) for _, v in sorted(entry.versions.items())
        ]
        return {"model_stats": [model_stats(v) for v in versions]}
    entry = repository.models.get(name)
    if entry is None or not entry.versions:
        raise V2Error(404, f"no loaded model {name[:64]!r}")
    if version is None:
        return {"model_stats": [model_stats(v) for _, v in sorted(entry.versions.items())]}
    model = entry.versions.get(version)
    if model is None:
        raise V2Error(404, f"no loaded version {version} of model {name!r}")
    return {"model_stats": [model_stats(model)]}
