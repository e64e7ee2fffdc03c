"""ONNX models through nexpo's own inference engine (``nexpo.inference.InferenceSession``).

The session is shaped like onnxruntime's: ``get_inputs()``/``get_outputs()`` give objects with
``name``, ``shape`` (ints, or strings/None for free dimensions) and ``type`` (``"tensor(float)"``),
and ``run(output_names, feed)`` returns a list of arrays. The engine is imported only when a model
is loaded: without it, an ``.onnx`` model fails to load with a clear reason and the others serve.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..safe_files import UnsafeFileError, read_regular_file
from .backends import BackendError, TensorSpec

MAX_ONNX_BYTES = 1024 * 1024 * 1024
ENGINE_MODULE = "nexpo.inference"

# onnx tensor element types -> protocol datatypes
_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}

SessionFactory = Callable[[bytes], Any]


def engine_session_factory() -> SessionFactory:
    """``InferenceSession`` of nexpo's engine, or ``BackendError`` when it is not installed."""
    try:
        module = importlib.import_module(ENGINE_MODULE)
        session_class = module.InferenceSession
    except (ImportError, AttributeError):
        raise BackendError("ONNX engine not available (nexpo.inference.InferenceSession)") from None
    factory: SessionFactory = session_class
    return factory


def _spec(arg: Any) -> TensorSpec:
    datatype = _TYPES.get(str(arg.type))
    if datatype is None:
        raise BackendError(f"tensor {arg.name!r} has unsupported type {arg.type}")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or ()))
    return TensorSpec(str(arg.name), datatype, shape)


def _engine_array(array: np.ndarray) -> np.ndarray:
    if array.dtype != object:
        return array
    text = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
    return np.array(text, dtype=object).reshape(array.shape)


ALWAYS_IN_POOL = 1 << 62


class OnnxBackend:
    platform = "onnxruntime_onnx"  # what Triton reports for ONNX models: clients key on it

    def __init__(self, session: Any) -> None:
        self.session = session
        try:
            self.inputs = tuple(_spec(a) for a in session.get_inputs())
            self.outputs = tuple(_spec(a) for a in session.get_outputs())
        except BackendError:
            raise
        except Exception as exc:  # the engine's own description of a model it cannot describe
            raise BackendError(f"cannot describe the model: {exc}") from None
        self._output_names: Sequence[str] = [o.name for o in self.outputs]

    @classmethod
    def load(cls, path: Path, factory: SessionFactory | None = None) -> OnnxBackend:
        try:
            raw = read_regular_file(path, MAX_ONNX_BYTES)
        except UnsafeFileError as exc:
            raise BackendError(str(exc)) from None
        session_of = factory or engine_session_factory()
        try:
            session = session_of(raw)
        except Exception as exc:  # a model the engine rejects is a load error, never a crash
            raise BackendError(f"the ONNX engine rejected the model: {exc}") from None
        return cls(session)

    def forward_cost(self, rows: int) -> int:
        # a graph's work is not known from its inputs: it always goes to the worker pool
        return ALWAYS_IN_POOL

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: _engine_array(array) for name, array in inputs.items()}
        results = self.session.run(list(self._output_names), feed)
        return {name: np.asarray(value) for name, value in zip(self._output_names, results, strict=True)}
