"""Tensors of the Open Inference Protocol, in JSON and in the binary tensor data extension.

A request body is a JSON object, optionally followed by raw tensor bytes: the header
``Inference-Header-Content-Length`` says where the JSON ends, and each input with a
``binary_data_size`` parameter takes its bytes from the rest, in order. Sizes are checked against
the shape *before* any array is built (a shape's element count is bounded by ``max_elements``);
JSON values are counted from the bytes before the JSON is parsed (``api/bodies.py``).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from .errors import V2Error

# protocol datatype -> numpy dtype (BYTES: an object array of ``bytes``)
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
HEADER_LENGTH = "inference-header-content-length"
_DIGITS = re.compile(r"[0-9]{1,19}")
_MAX_DIMS = 32


_DATATYPES = {dtype: name for name, dtype in DTYPES.items() if name != "BYTES"}


def datatype_of(array: np.ndarray) -> str:
    """The protocol datatype of a numpy array (object/str/bytes arrays are BYTES)."""
    found = _DATATYPES.get(array.dtype)  # one hash lookup per tensor (it is on every request)
    if found is not None:
        return found
    if array.dtype.kind in "OSU":
        return "BYTES"
    raise V2Error(400, f"no protocol datatype for numpy dtype {array.dtype}")


@dataclass
class RequestedOutput:
    name: str
    binary: bool


@dataclass
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[RequestedOutput] = field(default_factory=list)  # empty: every output
    binary_output: bool = False  # the request-level ``binary_data_output`` parameter


def header_length(value: str | None, body_length: int) -> int | None:
    """The JSON part's length from ``Inference-Header-Content-Length`` (None: all JSON)."""
    if value is None:
        return None
    if not _DIGITS.fullmatch(value.strip()):
        raise V2Error(400, f"{HEADER_LENGTH} must be a non-negative integer, got {value[:40]!r}")
    length = int(value)
    if length > body_length:
        raise V2Error(400, f"{HEADER_LENGTH} {length} is past the end of the {body_length}-byte body")
    return length


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise V2Error(400, f"{what} must be a JSON object")
    return value


def _flag(parameters: Mapping[str, Any], key: str, what: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise V2Error(400, f"{what}: parameter {key!r} must be true or false")
    return value


def _shape(raw: Any, what: str, max_elements: int) -> tuple[int, ...]:
    if not isinstance(raw, list) or len(raw) > _MAX_DIMS:
        raise V2Error(400, f"{what}: 'shape' must be a list of at most {_MAX_DIMS} dimensions")
    for dim in raw:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise V2Error(400, f"{what}: shape dimensions must be non-negative integers, got {dim!r}")
    shape = tuple(raw)
    count = math.prod(shape)
    if count > max_elements:
        raise V2Error(400, f"{what}: shape {list(shape)} has {count} elements; the limit is {max_elements}")
    return shape


def _flatten(data: Any, expected: int, what: str) -> list[Any]:
    """Row-major elements of (possibly nested) JSON ``data``; stops as soon as there are too many."""
    if not isinstance(data, list):
        raise V2Error(400, f"{what}: 'data' must be a JSON array")
    if list not in set(map(type, data)):  # already flat (what clients usually send): no copy
        if len(data) != expected:
            raise V2Error(400, f"{what}: 'data' has {len(data)} elements; its shape holds {expected}")
        return data
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
            if len(flat) > expected:
                raise V2Error(400, f"{what}: 'data' has more than the {expected} elements of its shape")
        else:
            stack.pop()
    if len(flat) != expected:
        raise V2Error(400, f"{what}: 'data' has {len(flat)} elements; its shape holds {expected}")
    return flat


def from_json_values(flat: list[Any], datatype: str, what: str) -> np.ndarray:
    dtype = DTYPES[datatype]
    types = set(map(type, flat))  # one pass in C; orjson gives exactly bool, int, float, str, ...
    if datatype == "BYTES":
        if not types <= {str}:
            raise V2Error(400, f"{what}: BYTES elements in JSON must be strings")
        out = np.empty(len(flat), dtype=object)
        out[:] = [v.encode("utf-8") for v in flat]
        return out
    if datatype == "BOOL":
        if not types <= {bool}:
            raise V2Error(400, f"{what}: BOOL elements must be true or false")
        return np.array(flat, dtype=dtype)
    if dtype.kind in "iu":
        if not types <= {int}:
            raise V2Error(400, f"{what}: {datatype} elements must be integers")
        info = np.iinfo(dtype)
        if flat and (min(flat) < info.min or max(flat) > info.max):
            raise V2Error(400, f"{what}: a value is outside the range of {datatype}")
        return np.array(flat, dtype=dtype)
    if not types <= {int, float}:
        raise V2Error(400, f"{what}: {datatype} elements must be numbers")
    with np.errstate(over="ignore"):
        array = np.array(flat, dtype=dtype)
    if not np.isfinite(array).all():
        raise V2Error(400, f"{what}: a value overflows {datatype}")
    return array


def _from_binary(raw: memoryview, count: int, datatype: str, what: str) -> np.ndarray:
    dtype = DTYPES[datatype]
    if datatype == "BYTES":
        items: list[bytes] = []
        offset = 0
        while offset < len(raw) and len(items) <= count:
            if offset + 4 > len(raw):
                raise V2Error(400, f"{what}: BYTES data ends inside an element's length prefix")
            (length,) = struct.unpack_from("<I", raw, offset)
            offset += 4
            if offset + length > len(raw):
                raise V2Error(400, f"{what}: a BYTES element of {length} bytes runs past its data")
            items.append(bytes(raw[offset : offset + length]))
            offset += length
        if len(items) != count or offset != len(raw):
            raise V2Error(400, f"{what}: binary BYTES data does not hold exactly {count} elements")
        out = np.empty(count, dtype=object)
        out[:] = items
        return out
    if len(raw) != count * dtype.itemsize:
        raise V2Error(
            400,
            f"{what}: binary_data_size is {len(raw)} bytes; {count} {datatype} take {count * dtype.itemsize}",
        )
    if datatype == "BOOL":
        flags: np.ndarray = np.frombuffer(raw, dtype=np.uint8) != 0
        return flags
    array: np.ndarray = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=True)
    return array


def decode_request(body: bytes, json_length: int | None, *, max_elements: int) -> InferRequest:
    """An infer request from its body; ``V2Error(400)`` says what is wrong."""
    header = body if json_length is None else body[:json_length]
    binary = memoryview(body)[len(header) :]
    try:
        doc = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise V2Error(400, f"the request is not valid JSON: {exc}") from None
    doc = _object(doc, "the request")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise V2Error(400, "'id' must be a string")
    parameters = _object(doc.get("parameters", {}), "'parameters'")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise V2Error(400, "'inputs' must be a non-empty list")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    budget = max_elements
    for index, item in enumerate(raw_inputs):
        raw = _object(item, f"inputs[{index}]")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise V2Error(400, f"inputs[{index}]: 'name' must be a non-empty string")
        what = f"input {name[:64]!r}"
        if name in inputs:
            raise V2Error(400, f"{what} appears twice")
        datatype = raw.get("datatype")
        if datatype not in DTYPES:
            raise V2Error(400, f"{what}: 'datatype' must be one of {', '.join(DTYPES)}")
        shape = _shape(raw.get("shape"), what, budget)
        count = math.prod(shape)
        budget -= count
        input_parameters = _object(raw.get("parameters", {}), f"{what}: 'parameters'")
        size = input_parameters.get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise V2Error(400, f"{what}: binary_data_size must be a non-negative integer")
            if "data" in raw:
                raise V2Error(400, f"{what}: has both 'data' and binary_data_size")
            if offset + size > len(binary):
                raise V2Error(400, f"{what}: binary_data_size {size} runs past the end of the body")
            array = _from_binary(binary[offset : offset + size], count, datatype, what)
            offset += size
        else:
            if "data" not in raw:
                raise V2Error(400, f"{what}: no 'data' and no binary_data_size")
            array = from_json_values(_flatten(raw["data"], count, what), datatype, what)
        inputs[name] = array.reshape(shape)
    if offset != len(binary):
        raise V2Error(400, f"{len(binary) - offset} bytes of binary data belong to no input")
    outputs = [_requested_output(raw, i) for i, raw in enumerate(_list(doc.get("outputs", []), "'outputs'"))]
    binary_output = _flag(parameters, "binary_data_output", "the request")
    return InferRequest(request_id, inputs, outputs, binary_output)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise V2Error(400, f"{what} must be a list")
    return value


def _requested_output(raw: Any, index: int) -> RequestedOutput:
    raw = _object(raw, f"outputs[{index}]")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise V2Error(400, f"outputs[{index}]: 'name' must be a non-empty string")
    parameters = _object(raw.get("parameters", {}), f"outputs[{index}]: 'parameters'")
    return RequestedOutput(name, _flag(parameters, "binary_data", f"output {name[:64]!r}"))


def _json_data(array: np.ndarray, name: str) -> list[Any]:
    flat = array.reshape(-1)
    if array.dtype.kind in "OSU":
        try:
            return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in flat.tolist()]
        except UnicodeDecodeError:
            raise V2Error(400, f"output {name!r} is not UTF-8 text: request it as binary data") from None
    values: list[Any] = flat.tolist()
    return values


def _binary_data(array: np.ndarray) -> bytes:
    if array.dtype.kind in "OSU":
        parts: list[bytes] = []
        for value in array.reshape(-1).tolist():
            item = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts += [struct.pack("<I", len(item)), item]
        return b"".join(parts)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(little).tobytes()


def encode_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    outputs: Mapping[str, np.ndarray],
) -> tuple[bytes, int | None]:
    """The response body and, when some output is binary, the length of its JSON part."""
    binary_of = {o.name: o.binary for o in request.outputs}
    names: Sequence[str] = [o.name for o in request.outputs] or list(outputs)
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name in names:
        array = outputs[name]
        entry: dict[str, Any] = {"name": name, "datatype": datatype_of(array), "shape": list(array.shape)}
        if binary_of.get(name, request.binary_output):
            blob = _binary_data(array)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _json_data(array, name)
        described.append(entry)
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": described}
    if request.id is not None:
        doc["id"] = request.id
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)
