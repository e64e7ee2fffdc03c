"""Per-model inference metrics, like Triton's: requests (success/failure), inferences (batch rows),
batch executions, and cumulative queue and compute time, by model and version.

The same figures answer the statistics extension (``/v2/models/{name}/stats``, api/v2/statistics.py),
with what Prometheus counters do not hold kept beside them: the time of the last inference, the
time spent decoding inputs and encoding outputs, failed requests' time, and executions per batch
size. They are this worker's figures (each worker process keeps its own)."""

from __future__ import annotations

import time

from prometheus_client import Counter

from nexpo.metrics import REGISTRY

_LABELS = ["model", "version"]

REQUEST_SUCCESS = Counter(
    "nexpo_model_inference_request_success", "Successful inference requests", _LABELS, registry=REGISTRY
)
REQUEST_FAILURE = Counter(
    "nexpo_model_inference_request_failure", "Failed inference requests", _LABELS, registry=REGISTRY
)
INFERENCE_COUNT = Counter(
    "nexpo_model_inference_count", "Inferences performed (batch rows)", _LABELS, registry=REGISTRY
)
EXECUTION_COUNT = Counter(
    "nexpo_model_inference_exec_count", "Model executions (merged batches)", _LABELS, registry=REGISTRY
)
REQUEST_SECONDS = Counter(
    "nexpo_model_inference_request_duration_seconds", "Cumulative request time", _LABELS, registry=REGISTRY
)
QUEUE_SECONDS = Counter(
    "nexpo_model_inference_queue_duration_seconds",
    "Cumulative time queued for a batch",
    _LABELS,
    registry=REGISTRY,
)
COMPUTE_SECONDS = Counter(
    "nexpo_model_inference_compute_infer_duration_seconds",
    "Cumulative model compute time",
    _LABELS,
    registry=REGISTRY,
)


class ModelMetrics:
    """The label children of one model version (looked up once, not per request)."""

    def __init__(self, model: str, version: int) -> None:
        labels = (model, str(version))
        self.success = REQUEST_SUCCESS.labels(*labels)
        self.failure = REQUEST_FAILURE.labels(*labels)
        self.inferences = INFERENCE_COUNT.labels(*labels)
        self.executions = EXECUTION_COUNT.labels(*labels)
        self.request_seconds = REQUEST_SECONDS.labels(*labels)
        self.queue_seconds = QUEUE_SECONDS.labels(*labels)
        self.compute_seconds = COMPUTE_SECONDS.labels(*labels)
        self.last_inference_ms = 0  # milliseconds since the epoch; 0: never
        self.fail_ns = 0
        self.input_ns = 0  # decoding requests' tensors
        self.output_ns = 0  # encoding responses' tensors
        self.batches: dict[int, list[int]] = {}  # batch rows -> [executions, compute ns]

    def executed(self, rows: int, compute_s: float) -> None:
        self.executions.inc()
        self.inferences.inc(rows)
        self.compute_seconds.inc(compute_s)
        self.last_inference_ms = time.time_ns() // 1_000_000
        batch = self.batches.get(rows)
        if batch is None:
            batch = self.batches[rows] = [0, 0]
        batch[0] += 1
        batch[1] += int(compute_s * 1e9)

    def succeeded(self, seconds: float, input_s: float, output_s: float) -> None:
        """One request answered in ``seconds``, of which decoding and encoding took these."""
        self.success.inc()
        self.request_seconds.inc(seconds)
        self.input_ns += int(input_s * 1e9)
        self.output_ns += int(output_s * 1e9)

    def failed(self, seconds: float) -> None:
        self.failure.inc()
        self.fail_ns += int(seconds * 1e9)
