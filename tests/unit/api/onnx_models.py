"""Small ONNX models for the gateway's tests, built with onnx.helper (imported by name)."""

from __future__ import annotations

import numpy as np

EMBEDDING = np.arange(30, dtype=np.float32).reshape(10, 3) / 10


def embedding_model() -> bytes:
    """``ids`` INT64 [batch, 4] → ``pooled`` FP32 [batch, 3]: the mean of the ids' embedding rows."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
            helper.make_node("ReduceMean", ["rows"], ["pooled"], axes=[1], keepdims=0),
        ],
        "embedding",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 4])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(EMBEDDING, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def pooled(ids: np.ndarray) -> np.ndarray:
    """What ``embedding_model`` computes."""
    return np.asarray(EMBEDDING[ids].mean(axis=1), dtype=np.float32)


def two_way_model() -> bytes:
    """``x``, ``y`` FP32 [batch, 2] → ``total`` = x + y and ``product`` = x * y (two of each)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["total"]), helper.make_node("Mul", ["x", "y"], ["product"])],
        "two_way",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 2]) for n in ("x", "y")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 2]) for n in ("total", "product")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())
