"""Per-model inference metrics, like Triton's: requests (success/failure), inferences (batch rows),
batch executions, and cumulative queue and compute time, by model and version."""

from __future__ import annotations

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

    def executed(self, rows: int, compute_s: float) -> None:
        self.executions.inc()
        self.inferences.inc(rows)
        self.compute_seconds.inc(compute_s)
