"""Named, typed tensors of ``/v1/models/{name}/infer`` for models with tensor signatures (ONNX).

Request ``{"inputs": {"ids": [[1, 2, 3]]}, "outputs": ["logits"]}``: each input a nested JSON array
as deep as the model's input rank, rectangular, its values of the input's type; ``outputs`` is
optional (default: every output, in the model's order). Response ``{"model", "model_version",
"outputs": {name: nested array}}``. Values are counted from the body's bytes before it is parsed
(``tensor_limits``); every error names the input and what the model expects.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ..bodies import JsonLimits
from ..repository.backends import TensorSpec
from ..v2.codec import from_json_values
from ..v2.errors import V2Error

UNKNOWN_ROW_VALUES = 1024  # per row and input, when a non-batch dimension is free
_KEYS = {"inputs", "outputs"}


class NamedTensorError(ValueError):
    """A request that does not fit the model's tensors; the message names the input or output."""


@dataclass(frozen=True)
class NamedRequest:
    inputs: dict[str, np.ndarray]
    outputs: list[str]  # the outputs to return, in order


@functools.lru_cache(maxsize=64)
def tensor_limits(specs: tuple[TensorSpec, ...], max_rows: int) -> JsonLimits:
    """What a body may hold for a model with input ``specs``: ``max_rows`` rows of every input."""
    per_row = 0
    for spec in specs:
        free = any(d < 0 for d in spec.shape[1:])
        per_row += UNKNOWN_ROW_VALUES if free else math.prod(max(d, 1) for d in spec.shape[1:]) + 1
    most = max_rows * (per_row + 1) + 8 * len(specs) + 16
    return JsonLimits(most, f"the body holds more than {most} JSON values ({max_rows} rows of each input)")


def _describe(spec: TensorSpec) -> str:
    dims = ", ".join("?" if d < 0 else str(d) for d in spec.shape)
    return f"{spec.datatype} [{dims}]"


def _nested(data: Any, spec: TensorSpec) -> tuple[list[Any], tuple[int, ...]]:
    """Row-major values and the shape of ``data``, a rectangular nested array of ``spec``'s rank."""
    what = f"input {spec.name!r}"
    rank = len(spec.shape)
    shape: list[int] = []
    probe = data
    for _ in range(rank):
        if not isinstance(probe, list) or not probe:
            raise NamedTensorError(
                f"{what} must be a non-empty array nested {rank} deep (the model takes {_describe(spec)})"
            )
        shape.append(len(probe))
        probe = probe[0]
    level: list[Any] = [data]
    for depth, size in enumerate(shape):
        flat: list[Any] = []
        for item in level:
            if not isinstance(item, list) or len(item) != size:
                raise NamedTensorError(
                    f"{what} is not rectangular: at depth {depth} every array needs {size}"
                )
            flat.extend(item)
        level = flat
    if list in set(map(type, level)):
        raise NamedTensorError(f"{what} is nested deeper than the model's {_describe(spec)}")
    return level, tuple(shape)


def decode_request(
    body: bytes, specs: Sequence[TensorSpec], outputs: Sequence[str], max_rows: int
) -> NamedRequest:
    """The request's inputs as arrays of the model's types (``NamedTensorError`` says what is wrong)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NamedTensorError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), dict):
        raise NamedTensorError('the body must be {"inputs": {"<input name>": [...], ...}}')
    if unexpected := sorted(set(doc) - _KEYS):
        raise NamedTensorError(f"unexpected field {unexpected[0][:64]!r} (fields: inputs, outputs)")
    raw: dict[str, Any] = doc["inputs"]
    expected = {spec.name for spec in specs}
    if unknown := sorted(set(raw) - expected):
        raise NamedTensorError(f"the model has no input {unknown[0][:64]!r} (inputs: {', '.join(expected)})")
    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.name not in raw:
            raise NamedTensorError(f"input {spec.name!r} is missing (the model takes {_describe(spec)})")
        values, shape = _nested(raw[spec.name], spec)
        if any(want not in (-1, got) for want, got in zip(spec.shape, shape, strict=True)):
            raise NamedTensorError(
                f"input {spec.name!r} has shape {list(shape)}; the model takes {_describe(spec)}"
            )
        if spec.shape[:1] == (-1,) and shape[0] > max_rows:
            raise NamedTensorError(
                f"input {spec.name!r}: a batch of {shape[0]} rows exceeds the limit of {max_rows}"
            )
        try:
            arrays[spec.name] = from_json_values(values, spec.datatype, f"input {spec.name!r}").reshape(shape)
        except V2Error as exc:
            raise NamedTensorError(exc.message) from None
    return NamedRequest(arrays, _requested(doc.get("outputs"), outputs))


def _requested(raw: Any, outputs: Sequence[str]) -> list[str]:
    if raw is None:
        return list(outputs)
    if not isinstance(raw, list) or not raw or not all(isinstance(n, str) for n in raw):
        raise NamedTensorError("'outputs' must be a non-empty list of output names")
    for name in raw:
        if name not in outputs:
            raise NamedTensorError(f"the model has no output {name[:64]!r} (outputs: {', '.join(outputs)})")
    return list(dict.fromkeys(raw))


def _json_ready(array: np.ndarray) -> Any:
    if array.dtype.kind in "OSU":
        text = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
        return np.array(text, dtype=object).reshape(array.shape).tolist()
    if array.dtype == np.float16:
        return np.ascontiguousarray(array, dtype=np.float32)
    return np.ascontiguousarray(array)


def encode_response(
    model: str, version: int, names: Sequence[str], outputs: Mapping[str, np.ndarray]
) -> bytes:
    """The response body: the requested outputs by name (text outputs as flat lists of strings)."""
    shown = {name: _json_ready(outputs[name]) for name in names}
    doc = {"model": model, "model_version": str(version), "outputs": shown}
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
