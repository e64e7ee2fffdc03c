"""Model inference: a registry of MLPs stored as safetensors, run through ``nexpo.kernels.linear``,
with a dynamic micro-batcher in front."""

from api.inference.batcher import MicroBatcher
from api.inference.registry import MlpModel, ModelError, ModelRegistry, load_model, save_model

__all__ = ["MicroBatcher", "MlpModel", "ModelError", "ModelRegistry", "load_model", "save_model"]
