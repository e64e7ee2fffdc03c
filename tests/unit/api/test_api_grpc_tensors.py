"""gRPC tensors: raw bytes and typed contents in, the same way back out; every malformed tensor a
clear ``V2Error(400)`` before any array is built."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from nexpo.api.grpc_v2 import messages
from nexpo.api.grpc_v2.tensors import decode_request, encode_response
from nexpo.api.v2.errors import V2Error


def _typed(datatype: str, shape: list[int], **contents: Any) -> Any:
    request = messages.ModelInferRequest(model_name="m")
    tensor = request.inputs.add(name="x", datatype=datatype, shape=shape)
    for field, values in contents.items():
        getattr(tensor.contents, field).extend(values)
    return request


@pytest.mark.parametrize(
    ("datatype", "field", "values", "dtype"),
    [
        ("FP32", "fp32_contents", [0.5, 1.5], np.float32),
        ("FP64", "fp64_contents", [0.5, -2.0], np.float64),
        ("INT8", "int_contents", [-128, 127], np.int8),
        ("UINT16", "uint_contents", [0, 65535], np.uint16),
        ("INT64", "int64_contents", [-(2**63), 2**63 - 1], np.int64),
        ("BOOL", "bool_contents", [True, False], np.bool_),
        ("BYTES", "bytes_contents", [b"a", b"\xff"], object),
    ],
)
def test_typed_contents_round_trip(datatype: str, field: str, values: list[Any], dtype: Any) -> None:
    decoded = decode_request(_typed(datatype, [2], **{field: values}), max_elements=100)
    array = decoded.inputs["x"]
    assert array.dtype == np.dtype(dtype)
    assert array.tolist() == values
    response = encode_response("m", "1", decoded, {"y": array})
    assert not response.raw_output_contents
    assert list(getattr(response.outputs[0].contents, field)) == values


def test_raw_in_raw_out_and_fp16_always_raw() -> None:
    request = messages.ModelInferRequest(model_name="m", id="i")
    request.inputs.add(name="x", datatype="FP32", shape=[2, 2])
    request.raw_input_contents.append(np.arange(4, dtype="<f4").tobytes())
    decoded = decode_request(request, max_elements=100)
    np.testing.assert_array_equal(decoded.inputs["x"], np.arange(4, dtype=np.float32).reshape(2, 2))
    response = encode_response("m", "1", decoded, {"y": decoded.inputs["x"]})
    assert response.raw_output_contents[0] == np.arange(4, dtype="<f4").tobytes()
    typed = decode_request(_typed("FP32", [1], fp32_contents=[1.0]), max_elements=10)
    half = {"a": np.ones(1, dtype=np.float32), "b": np.ones(1, dtype=np.float16)}
    mixed = encode_response("m", "1", typed, half)  # FP16 has no typed field: all outputs go raw
    assert len(mixed.raw_output_contents) == 2
    assert not mixed.outputs[0].HasField("contents")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_typed("FP32", [3], fp32_contents=[1.0, 2.0]), "has 2 elements; its shape holds 3"),
        (_typed("INT8", [1], int_contents=[128]), "outside the range of INT8"),
        (_typed("FP32", [1], fp64_contents=[1.0]), "belongs in contents.fp32_contents"),
        (_typed("FP16", [1]), "no typed contents"),
        (_typed("FLOAT", [1]), "'datatype' must be one of"),
        (_typed("FP32", [10**6, 10**6]), "the limit is"),
        (_typed("FP32", [-1]), "non-negative"),
        (messages.ModelInferRequest(model_name="m"), "must not be empty"),
    ],
)
def test_malformed_tensors(request_: Any, message: str) -> None:
    with pytest.raises(V2Error, match=message) as error:
        decode_request(request_, max_elements=1000)
    assert error.value.status == 400


def test_raw_contents_are_checked() -> None:
    request = messages.ModelInferRequest(model_name="m")
    request.inputs.add(name="x", datatype="FP32", shape=[4])
    request.raw_input_contents.append(b"\0" * 12)  # 3 floats for a shape of 4
    with pytest.raises(V2Error, match="take 16"):
        decode_request(request, max_elements=100)
    request.raw_input_contents.append(b"")
    with pytest.raises(V2Error, match="2 raw_input_contents for 1 inputs"):
        decode_request(request, max_elements=100)
    both = _typed("FP32", [1], fp32_contents=[1.0])
    both.raw_input_contents.append(b"\0" * 4)
    with pytest.raises(V2Error, match="both contents and raw_input_contents"):
        decode_request(both, max_elements=100)
