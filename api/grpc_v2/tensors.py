"""Tensors of a gRPC ``ModelInferRequest``/``ModelInferResponse`` <-> numpy arrays.

Inputs come either all as ``raw_input_contents`` (little-endian bytes, one entry per input, the
way tritonclient sends them) or each as typed ``contents``. Sizes are checked against the shape
before any array is built, like the REST codec (``api/v2/codec.py``); errors are ``V2Error(400)``.
Outputs go back the way the inputs came: raw bytes, or typed contents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..v2.codec import DTYPES, InferRequest, RequestedOutput, _binary_data, _from_binary, datatype_of
from ..v2.errors import V2Error
from . import messages

_MAX_DIMS = 32
# datatype -> the InferTensorContents field that carries it (FP16 has none: raw only)
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _shape(raw: Any, what: str, budget: int) -> tuple[int, ...]:
    shape = tuple(int(d) for d in raw)
    if len(shape) > _MAX_DIMS or any(d < 0 for d in shape):
        raise V2Error(400, f"{what}: shape {list(shape)[:_MAX_DIMS]} must have at most {_MAX_DIMS} "
                      "non-negative dimensions")  # fmt: skip
    if math.prod(shape) > budget:
        raise V2Error(
            400, f"{what}: shape {list(shape)} has {math.prod(shape)} elements; the limit is {budget}"
        )
    return shape


def _from_raw(raw: bytes, count: int, datatype: str, what: str) -> np.ndarray:
    return _from_binary(memoryview(raw), count, datatype, what)  # REST's: same bytes, same checks


def _from_contents(contents: Any, count: int, datatype: str, what: str) -> np.ndarray:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise V2Error(400, f"{what}: {datatype} has no typed contents; send it in raw_input_contents")
    used = [f.name for f, _ in contents.ListFields()]
    if any(name != field for name in used):
        raise V2Error(400, f"{what}: {datatype} data belongs in contents.{field}, not {', '.join(used)}")
    values = getattr(contents, field)
    if len(values) != count:
        raise V2Error(400, f"{what}: contents.{field} has {len(values)} elements; its shape holds {count}")
    dtype = DTYPES[datatype]
    if datatype == "BYTES":
        out = np.empty(count, dtype=object)
        out[:] = list(values)
        return out
    if dtype.kind in "iu":
        wide = np.array(values, dtype=np.int64 if field.startswith("int") else np.uint64)
        info = np.iinfo(dtype)
        if wide.size and (wide.min() < info.min or wide.max() > info.max):
            raise V2Error(400, f"{what}: a value is outside the range of {datatype}")
        return wide.astype(dtype)
    array: np.ndarray = np.array(values, dtype=dtype)
    return array


def decode_request(request: Any, *, max_elements: int) -> InferRequest:
    """An ``InferRequest`` (the REST codec's) from a ``ModelInferRequest``; ``V2Error(400)``."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise V2Error(400, f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    if not request.inputs:
        raise V2Error(400, "'inputs' must not be empty")
    inputs: dict[str, np.ndarray] = {}
    budget = max_elements
    for index, tensor in enumerate(request.inputs):
        if not tensor.name:
            raise V2Error(400, f"inputs[{index}]: 'name' must not be empty")
        what = f"input {tensor.name[:64]!r}"
        if tensor.name in inputs:
            raise V2Error(400, f"{what} appears twice")
        if tensor.datatype not in DTYPES:
            raise V2Error(400, f"{what}: 'datatype' must be one of {', '.join(DTYPES)}")
        shape = _shape(tensor.shape, what, budget)
        count = math.prod(shape)
        budget -= count
        if raw:
            if tensor.HasField("contents"):
                raise V2Error(400, f"{what}: has both contents and raw_input_contents")
            array = _from_raw(raw[index], count, tensor.datatype, what)
        else:
            array = _from_contents(tensor.contents, count, tensor.datatype, what)
        inputs[tensor.name] = array.reshape(shape)
    outputs = [RequestedOutput(o.name, binary=bool(raw)) for o in request.outputs]
    return InferRequest(request.id or None, inputs, outputs, binary_output=bool(raw))


def _raw_bytes(array: np.ndarray) -> bytes:
    return _binary_data(array)


def encode_response(name: str, version: str, request: InferRequest, outputs: Mapping[str, np.ndarray]) -> Any:
    """The ``ModelInferResponse``: raw bytes when the request sent raw bytes, else typed contents."""
    response = messages.ModelInferResponse(model_name=name, model_version=version, id=request.id or "")
    names = [o.name for o in request.outputs] or list(outputs)
    for output_name in names:
        array = outputs[output_name]
        datatype = datatype_of(array)
        tensor = response.outputs.add(name=output_name, datatype=datatype, shape=list(array.shape))
        field = CONTENTS_FIELD.get(datatype)
        if request.binary_output or field is None:
            response.raw_output_contents.append(_raw_bytes(array))
        else:
            getattr(tensor.contents, field).extend(array.reshape(-1).tolist())
    if not request.binary_output and response.raw_output_contents:
        # the protocol allows raw outputs only for all of them: FP16 (no typed field) forces raw
        del response.raw_output_contents[:]
        for tensor, output_name in zip(response.outputs, names, strict=True):
            tensor.ClearField("contents")
            response.raw_output_contents.append(_raw_bytes(outputs[output_name]))
    return response
