"""The v2 tensor codec: every datatype in JSON and binary, and hostile binary framing."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest
from nexpo.api.v2.codec import (
    DTYPES,
    InferRequest,
    RequestedOutput,
    decode_request,
    encode_response,
    header_length,
)
from nexpo.api.v2.errors import V2Error

LIMIT = 1 << 20

SAMPLES: dict[str, list[object]] = {
    "BOOL": [True, False, True, True],
    "INT8": [-128, 0, 1, 127],
    "INT16": [-32768, 0, 7, 32767],
    "INT32": [-(2**31), 0, 5, 2**31 - 1],
    "INT64": [-(2**63), 0, 3, 2**63 - 1],
    "UINT8": [0, 1, 200, 255],
    "UINT16": [0, 1, 2, 65535],
    "UINT32": [0, 1, 2, 2**32 - 1],
    "UINT64": [0, 1, 2, 2**64 - 1],
    "FP16": [0.5, -1.0, 2.0, 65504.0],
    "FP32": [0.25, -1.5, 3.0, 2.0**100],
    "FP64": [0.1, -1e300, 3.0, 2.5],
    "BYTES": ["a", "", "héllo", "zz"],
}


def _body(inputs: list[dict[str, object]], **extra: object) -> bytes:
    return orjson.dumps({"inputs": inputs, **extra})


def _binary(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in array.reshape(-1))
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


@pytest.mark.parametrize("datatype", list(DTYPES))
def test_every_datatype_in_json_nested_or_flat(datatype: str) -> None:
    values = SAMPLES[datatype]
    for data in (values, [values[:2], values[2:]]):
        spec = {"name": "x", "datatype": datatype, "shape": [2, 2], "data": data}
        array = decode_request(_body([spec]), None, max_elements=LIMIT).inputs["x"]
        assert array.shape == (2, 2)
        expected = [v.encode() if isinstance(v, str) else v for v in values]
        assert array.reshape(-1).tolist() == expected


@pytest.mark.parametrize("datatype", list(DTYPES))
def test_every_datatype_in_binary_round_trips_through_the_response(datatype: str) -> None:
    values = SAMPLES[datatype]
    if datatype == "BYTES":
        array = np.array([str(v).encode() for v in values], dtype=object).reshape(2, 2)
    else:
        array = np.array(values, dtype=DTYPES[datatype]).reshape(2, 2)
    raw = _binary(array, datatype)
    head = _body(
        [{"name": "x", "datatype": datatype, "shape": [2, 2], "parameters": {"binary_data_size": len(raw)}}]
    )
    decoded = decode_request(head + raw, len(head), max_elements=LIMIT)
    assert decoded.inputs["x"].tolist() == array.tolist()
    request = InferRequest(None, {}, [RequestedOutput("y", binary=True)])
    body, json_length = encode_response("m", "1", request, {"y": decoded.inputs["x"]})
    assert json_length is not None
    doc = orjson.loads(body[:json_length])
    (out,) = doc["outputs"]
    assert out["datatype"] == datatype
    assert out["parameters"]["binary_data_size"] == len(body) - json_length
    assert body[json_length:] == raw


def test_json_response_with_id_and_every_output_by_default() -> None:
    request = InferRequest("r-1", {})
    body, json_length = encode_response(
        "m", "3", request, {"a": np.array([[1.5]], np.float32), "b": np.array([b"x"], object)}
    )
    assert json_length is None
    doc = orjson.loads(body)
    assert doc["id"] == "r-1" and doc["model_version"] == "3"
    assert doc["outputs"] == [
        {"name": "a", "datatype": "FP32", "shape": [1, 1], "data": [1.5]},
        {"name": "b", "datatype": "BYTES", "shape": [1], "data": ["x"]},
    ]


def test_non_utf8_bytes_output_must_be_binary() -> None:
    with pytest.raises(V2Error, match="binary"):
        encode_response("m", "1", InferRequest(None, {}), {"b": np.array([b"\xff"], object)})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "non-negative integer"),
        ("-1", "non-negative integer"),
        ("+5", "non-negative integer"),
        (" ", "non-negative integer"),
        ("1" * 30, "non-negative integer"),
        ("99", "past the end"),
    ],
)
def test_header_length_is_checked(value: str, message: str) -> None:
    with pytest.raises(V2Error, match=message) as info:
        header_length(value, 50)
    assert info.value.status == 400


def _fp32(size: object, extra: bytes = b"", shape: list[int] | None = None) -> tuple[bytes, int]:
    head = _body(
        [{"name": "x", "datatype": "FP32", "shape": shape or [2], "parameters": {"binary_data_size": size}}]
    )
    return head + extra, len(head)


@pytest.mark.parametrize(
    ("size", "extra", "message"),
    [
        (4, b"\0" * 4, "take 8"),  # wrong size for the shape
        (8, b"\0" * 4, "past the end"),
        (-8, b"\0" * 8, "non-negative"),
        ("8", b"\0" * 8, "non-negative"),
        (True, b"\0" * 8, "non-negative"),
        (8, b"\0" * 12, "belong to no input"),
    ],
)
def test_binary_sizes_are_checked(size: object, extra: bytes, message: str) -> None:
    body, json_length = _fp32(size, extra)
    with pytest.raises(V2Error, match=message):
        decode_request(body, json_length, max_elements=LIMIT)


def test_a_shape_is_bounded_before_anything_is_built() -> None:
    body, json_length = _fp32(8, b"\0" * 8, shape=[2**40, 2**40])
    with pytest.raises(V2Error, match="the limit is"):
        decode_request(body, json_length, max_elements=LIMIT)


@pytest.mark.parametrize(
    "raw",
    [struct.pack("<I", 5) + b"ab", struct.pack("<I", 1) + b"a" + b"\x01\x00", struct.pack("<I", 1) + b"a"],
)
def test_binary_bytes_framing_is_checked(raw: bytes) -> None:
    head = _body(
        [{"name": "s", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": len(raw)}}]
    )
    with pytest.raises(V2Error, match="BYTES"):
        decode_request(head + raw, len(head), max_elements=LIMIT)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"datatype": "INT8", "shape": [1], "data": [128]}, "range"),
        ({"datatype": "UINT8", "shape": [1], "data": [-1]}, "range"),
        ({"datatype": "INT32", "shape": [1], "data": [1.5]}, "integers"),
        ({"datatype": "BOOL", "shape": [1], "data": [1]}, "true or false"),
        ({"datatype": "FP32", "shape": [1], "data": [True]}, "numbers"),
        ({"datatype": "FP16", "shape": [1], "data": [1e6]}, "overflows"),
        ({"datatype": "BYTES", "shape": [1], "data": [1]}, "strings"),
        ({"datatype": "FP32", "shape": [3], "data": [1, 2]}, "holds 3"),
        ({"datatype": "FP32", "shape": [1], "data": [1, 2]}, "holds 1"),
        ({"datatype": "FP32", "shape": [1], "data": [[1], [2]]}, "more than"),
        ({"datatype": "FP32", "shape": [2], "data": [[1], "a"]}, "numbers"),
        ({"datatype": "FP32", "shape": [-1], "data": []}, "non-negative"),
        ({"datatype": "FP33", "shape": [1], "data": [1]}, "datatype"),
        ({"datatype": "FP32", "shape": "1", "data": [1]}, "shape"),
        ({"datatype": "FP32", "shape": [1], "data": 1}, "JSON array"),
        ({"datatype": "FP32", "shape": [1]}, "no 'data'"),
    ],
)
def test_json_tensors_are_checked(spec: dict[str, object], message: str) -> None:
    with pytest.raises(V2Error, match=message):
        decode_request(_body([{"name": "x", **spec}]), None, max_elements=LIMIT)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"{",
        b'{"inputs": []}',
        b'{"inputs": [1]}',
        b'{"id": 5, "inputs": []}',
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}], "outputs": {}}',
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}],'
        b' "parameters": {"binary_data_output": 1}}',
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]},'
        b' {"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_requests_are_400(body: bytes) -> None:
    with pytest.raises(V2Error) as info:
        decode_request(body, None, max_elements=LIMIT)
    assert info.value.status == 400


def test_requested_outputs_and_binary_flags() -> None:
    body = _body(
        [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}],
        outputs=[{"name": "a", "parameters": {"binary_data": True}}, {"name": "b"}],
        parameters={"binary_data_output": True},
        id="abc",
    )
    request = decode_request(body, None, max_elements=LIMIT)
    assert request.id == "abc"
    assert request.binary_output
    assert [(o.name, o.binary) for o in request.outputs] == [("a", True), ("b", False)]
