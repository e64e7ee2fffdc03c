"""The v2 model repository: layout on disk, per-model config, backends, and the polled store."""

from .backends import Backend, BackendError, MlpBackend, TensorSpec
from .store import BatchingDefaults, ModelRepository, ModelVersion

__all__ = [
    "Backend",
    "BackendError",
    "BatchingDefaults",
    "MlpBackend",
    "ModelRepository",
    "ModelVersion",
    "TensorSpec",
]
