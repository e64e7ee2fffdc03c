"""A registry of multilayer perceptrons over a directory of ``*.safetensors`` files.

File format (``nexpo-mlp/1``): tensors ``layers.<i>.weight`` (in × out, float32) and
``layers.<i>.bias`` (out, float32) for i = 0..L-1; string metadata:

=============== ============================================================
``format``      ``nexpo-mlp/1``
``activations`` JSON list, one per layer: null, "relu", "gelu", "tanh",
                "sigmoid" or "softmax" (the last layer must be "softmax")
``labels``      JSON list of output labels (one per output unit)
``description`` free text (optional)
=============== ============================================================

The model name is the file name without ``.safetensors``. A file that is unreadable or breaks any
rule above is reported by name in ``ModelRegistry.errors`` and skipped; it never stops the service.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..safe_files import UnsafeFileError, describe_os_error, read_regular_file

log = logging.getLogger("api.inference")

FORMAT = "nexpo-mlp/1"
ACTIVATIONS = (None, "relu", "gelu", "tanh", "sigmoid", "softmax")
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # fullmatch: ``$`` would accept a trailing newline
MAX_FILE_BYTES = 512 * 1024 * 1024

F32 = npt.NDArray[np.float32]


class ModelError(ValueError):
    """A model file breaks the format; the message says which rule."""


@dataclass(frozen=True)
class Layer:
    weight: F32  # (in, out)
    bias: F32  # (out,)
    activation: str | None


@dataclass(frozen=True)
class MlpModel:
    name: str
    layers: tuple[Layer, ...]
    labels: tuple[str, ...]
    description: str = ""
    sha256: str = ""
    path: Path | None = None

    @property
    def input_width(self) -> int:
        return int(self.layers[0].weight.shape[0])

    @property
    def parameters(self) -> int:
        return sum(layer.weight.size + layer.bias.size for layer in self.layers)

    def forward_cost(self, rows: int) -> int:
        """Bytes a forward pass of ``rows`` reads and writes: inputs, every layer's parameters and
        outputs (the ``cost`` of ``Gateway.run``)."""
        widths = sum(int(layer.weight.shape[1]) for layer in self.layers)
        return 4 * (self.parameters + rows * (self.input_width + widths))

    def forward(self, x: F32) -> F32:
        """Class probabilities for a (batch, input_width) float32 batch; CPU-bound (see forward_cost)."""
        from nexpo.kernels import linear

        out = x
        for layer in self.layers:
            out = linear(out, layer.weight, layer.bias, activation=layer.activation)
        return out

    def label_of(self, probabilities: F32) -> list[str]:
        labels = self.labels
        return [labels[i] for i in probabilities.argmax(axis=1).tolist()]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_width": self.input_width,
            "labels": list(self.labels),
            "layers": [
                {
                    "inputs": int(layer.weight.shape[0]),
                    "outputs": int(layer.weight.shape[1]),
                    "activation": layer.activation,
                }
                for layer in self.layers
            ],
            "parameters": self.parameters,
            "sha256": self.sha256,
        }


def _metadata_list(meta: dict[str, str], key: str) -> list[Any]:
    if key not in meta:
        raise ModelError(f"metadata has no {key!r}")
    try:
        value = json.loads(meta[key])
    except json.JSONDecodeError as exc:
        raise ModelError(f"metadata {key!r} is not JSON: {exc}") from None
    if not isinstance(value, list):
        raise ModelError(f"metadata {key!r} must be a JSON list")
    return value


def model_from_tensors(
    name: str,
    tensors: dict[str, np.ndarray],
    meta: dict[str, str],
    *,
    sha256: str = "",
    path: Path | None = None,
) -> MlpModel:
    """Validate tensors + metadata against the format and build the model."""
    if meta.get("format") != FORMAT:
        raise ModelError(f"metadata 'format' must be {FORMAT!r}, got {meta.get('format')!r}")
    activations = _metadata_list(meta, "activations")
    labels = _metadata_list(meta, "labels")
    if not activations:
        raise ModelError("a model needs at least one layer")
    for act in activations:
        if act not in ACTIVATIONS:
            raise ModelError(f"unknown activation {act!r}; expected one of {ACTIVATIONS}")
    if activations[-1] != "softmax":
        raise ModelError("the last layer's activation must be 'softmax' (outputs are probabilities)")
    expected = {f"layers.{i}.{part}" for i in range(len(activations)) for part in ("weight", "bias")}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ModelError(
            f"tensors do not match {len(activations)} layers (missing {missing}, unexpected {extra})"
        )
    layers: list[Layer] = []
    width: int | None = None
    for i, act in enumerate(activations):
        weight, bias = tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"]
        if weight.dtype != np.float32 or bias.dtype != np.float32:
            raise ModelError(f"layer {i}: tensors must be float32, got {weight.dtype}/{bias.dtype}")
        if weight.ndim != 2 or bias.shape != (weight.shape[1],) or 0 in weight.shape:
            raise ModelError(f"layer {i}: weight {weight.shape} and bias {bias.shape} do not form a layer")
        if width is not None and weight.shape[0] != width:
            raise ModelError(f"layer {i}: takes {weight.shape[0]} inputs but layer {i - 1} gives {width}")
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ModelError(f"layer {i}: weights contain NaN or infinity")
        width = int(weight.shape[1])
        layers.append(Layer(np.ascontiguousarray(weight), np.ascontiguousarray(bias), act))
    if len(labels) != width or not all(isinstance(label, str) for label in labels):
        raise ModelError(f"'labels' must be {width} strings, one per output")
    return MlpModel(name, tuple(layers), tuple(labels), str(meta.get("description", "")), sha256, path)


def load_model(path: Path) -> MlpModel:
    """Read and validate one model file; ``ModelError`` says what is wrong (never with a path: the
    message reaches ``/v1/info``)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    name = path.name.removesuffix(".safetensors")
    if not NAME.fullmatch(name):
        raise ModelError(f"model name {name!r} must match {NAME.pattern}")
    try:  # a FIFO, a device or a huge file is refused before anything is read
        raw = read_regular_file(path, MAX_FILE_BYTES)
    except UnsafeFileError as exc:
        raise ModelError(str(exc)) from None
    try:
        tensors = load(raw)
        meta = _read_metadata(raw)
    except (SafetensorError, ValueError) as exc:
        raise ModelError(f"not a readable safetensors file: {exc}") from None
    return model_from_tensors(name, tensors, meta, sha256=hashlib.sha256(raw).hexdigest(), path=path)


def _read_metadata(raw: bytes) -> dict[str, str]:
    # safetensors layout: u64 little-endian header length, then a JSON header with "__metadata__".
    if len(raw) < 8:
        raise ValueError("file too short")
    n = int.from_bytes(raw[:8], "little")
    try:
        header = json.loads(raw[8 : 8 + n])
    except RecursionError:
        raise ValueError("header nested too deeply") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("__metadata__ is not an object")
    return {str(k): str(v) for k, v in meta.items()}


def save_model(
    path: Path,
    *,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activations: Sequence[str | None],
    labels: Sequence[str],
    description: str = "",
) -> None:
    """Write a model in the ``nexpo-mlp/1`` format (validated by loading it back)."""
    from safetensors.numpy import save_file

    tensors: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        tensors[f"layers.{i}.weight"] = np.ascontiguousarray(w, dtype=np.float32)
        tensors[f"layers.{i}.bias"] = np.ascontiguousarray(b, dtype=np.float32)
    meta = {
        "format": FORMAT,
        "activations": json.dumps(list(activations)),
        "labels": json.dumps(list(labels)),
        "description": description,
    }
    model_from_tensors(path.name, tensors, meta)
    save_file(tensors, str(path), metadata=meta)


MODELS_DIRECTORY = "<models directory>"  # the key of a missing directory in ``ModelRegistry.errors``


@dataclass
class ModelRegistry:
    """Models by name, plus the files that were skipped and why."""

    models: dict[str, MlpModel] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def scan(cls, directory: Path) -> ModelRegistry:
        registry = cls()
        if not directory.is_dir():  # keyed without the path: /v1/info shows these errors
            registry.errors[MODELS_DIRECTORY] = "models directory does not exist"
            log.error("models directory %s does not exist: serving no models", directory)
            return registry
        for path in sorted(directory.glob("*.safetensors")):
            try:
                model = load_model(path)
            except Exception as exc:  # any broken file is reported and skipped, never fatal
                detail = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
                registry.errors[path.name] = detail or type(exc).__name__
                log.error("skipping model file %s: %s", path.name, exc)
                continue
            registry.models[model.name] = model
            log.info("loaded model %s (%d parameters) from %s", model.name, model.parameters, path.name)
        return registry
