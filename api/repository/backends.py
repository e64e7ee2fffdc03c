"""What the repository loads a model version into: a ``Backend``.

A backend describes its tensors (name, protocol datatype, shape with -1 for a free dimension) and
runs one request's inputs to its outputs. It is called in a worker thread; it never sees a raw
request (the codec has already checked names, datatypes and element counts against the shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..inference.registry import MlpModel, ModelError, load_model


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # a protocol datatype: "FP32", "INT64", "BYTES", ...
    shape: tuple[int, ...]  # -1: any size


class Backend(Protocol):
    """One loaded model version."""

    @property
    def platform(self) -> str: ...

    @property
    def inputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name for inputs by name; CPU-bound (``Gateway.run`` places it by its cost)."""
        ...

    def forward_cost(self, rows: int) -> int:
        """Bytes a call on ``rows`` rows reads and writes (``Gateway.run``'s ``cost``)."""
        ...


class BackendError(ValueError):
    """A model version cannot be loaded; the message says why (never with a path)."""


INPUT = "INPUT"
OUTPUT = "PROBABILITIES"


class MlpBackend:
    """A ``nexpo-mlp/1`` safetensors model: FP32 ``INPUT`` [-1, width] to ``PROBABILITIES``
    [-1, labels]."""

    platform = "nexpo_mlp"

    def __init__(self, model: MlpModel) -> None:
        self.model = model
        width, classes = model.input_width, len(model.labels)
        self.inputs = (TensorSpec(INPUT, "FP32", (-1, width)),)
        self.outputs = (TensorSpec(OUTPUT, "FP32", (-1, classes)),)

    @classmethod
    def load(cls, path: Path, name: str) -> MlpBackend:
        try:
            model = load_model(path)
        except ModelError as exc:
            raise BackendError(str(exc)) from None
        model = MlpModel(name, model.layers, model.labels, model.description, model.sha256, model.path)
        return cls(model)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.model.forward(x)

    def forward_cost(self, rows: int) -> int:
        return self.model.forward_cost(rows)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {OUTPUT: self.model.forward(inputs[INPUT])}
