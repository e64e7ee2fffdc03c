"""LayerNormalization(Add(x, y)) fused into one instruction (nexpo/inference/_residual_norm.py):
against onnxruntime on every ISA path, and the Adds that must stay separate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from _inference_models import GraphBuilder  # noqa: E402
from onnx import ModelProto, TensorProto, helper  # noqa: E402
from test_inference import assert_close, randn, reference  # noqa: E402

from nexpo.inference import InferenceSession  # noqa: E402
from nexpo.inference._plan import OP_BINARY, OP_LAYERNORM  # noqa: E402

F = TensorProto.FLOAT


def model(d: int, *, y_shape: list[Any] | None = None, sum_output: bool = False) -> ModelProto:
    g = GraphBuilder(5)
    total = g.node("Add", ["x", "y"])
    out = g.node("LayerNormalization", [total, g.weight(d, scale=1.0), g.weight(d, scale=0.1)], axis=-1)
    outputs = [helper.make_tensor_value_info(out, F, None)]
    if sum_output:
        outputs.append(helper.make_tensor_value_info(total, F, None))
    inputs = [
        helper.make_tensor_value_info("x", F, ["n", d]),
        helper.make_tensor_value_info("y", F, y_shape or ["n", d]),
    ]
    return g.model(inputs, outputs, opset=17)


def opcodes(sess: InferenceSession, shapes: tuple[tuple[int, ...], ...]) -> list[int]:
    code = sess._compiled(shapes).plan.code
    ops, at = [], 0
    while at < len(code):
        ops.append(int(code[at]))
        at += int(code[at + 1])
    return ops


def run(m: ModelProto, feed: dict[str, Any]) -> list[int]:
    sess = InferenceSession(m.SerializeToString())
    assert_close(sess.run(None, feed), reference(m, feed))
    return opcodes(sess, tuple(feed[i.name].shape for i in sess.get_inputs()))


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("d", [7, 128, 130])
def test_the_residual_add_is_fused_into_the_norm(d: int) -> None:
    for rows in (1, 5, 300):  # 300 x 130: split across threads
        ops = run(model(d), {"x": randn(rows, d, seed=rows), "y": randn(rows, d, seed=rows + 1)})
        assert ops == [OP_LAYERNORM]


@pytest.mark.usefixtures("isa")
def test_nan_in_the_residual_makes_its_row_nan() -> None:
    x, y = randn(3, 9), randn(3, 9, seed=2)
    y[1, 4] = np.nan
    got = InferenceSession(model(9).SerializeToString()).run(None, {"x": x, "y": y})[0]
    assert np.isnan(got[1]).all() and not np.isnan(got[[0, 2]]).any()
    assert_close([got[[0, 2]]], [reference(model(9), {"x": x, "y": y})[0][[0, 2]]])


@pytest.mark.usefixtures("isa")
def test_a_broadcast_add_or_a_sum_read_elsewhere_is_not_fused() -> None:
    ops = run(model(8, y_shape=[8]), {"x": randn(4, 8), "y": randn(8, seed=3)})
    assert ops == [OP_BINARY, OP_LAYERNORM]
    ops = run(model(8, sum_output=True), {"x": randn(4, 8), "y": randn(4, 8, seed=3)})
    assert ops == [OP_BINARY, OP_LAYERNORM]
