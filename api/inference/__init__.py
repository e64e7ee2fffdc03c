"""Model inference: a registry of MLPs stored as safetensors, run through ``nexpo.kernels.linear``,
with a dynamic micro-batcher in front."""

from .batcher import MicroBatcher
from .registry import MlpModel, ModelError, ModelRegistry, load_model, save_model

__all__ = ["MicroBatcher", "MlpModel", "ModelError", "ModelRegistry", "load_model", "save_model"]
