"""Self-attention's Q, K, V projections as one GEMM (nexpo/inference/_attention_projections.py):
outputs equal onnxruntime's on every ISA path, and graphs that differ from the pattern keep
three projections (the attention itself stays fused where it fits)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _inference_models as models
from _inference_models import GraphBuilder
from onnx import ModelProto, TensorProto, helper
from test_inference import assert_close, randn, reference

from nexpo.inference import InferenceSession
from nexpo.inference._plan import OP_ATTENTION, OP_GEMM

F = TensorProto.FLOAT


def self_attention(d: int = 24, heads: int = 3, dv: int = 8, *, variant: str = "") -> ModelProto:
    """x [N, S, d] -> q, k (heads x d/heads) and v (heads x dv) projections -> attention.

    variant: "" the pattern; "cross" K and V project another input y; "bias-input" Q's bias is a
    graph input; "sum-output" Q's x·W + b is a graph output too; "wide-bias" K's bias is
    [S, width], which broadcasts over the sequence; "infer" the reshapes use -1 for the heads."""
    g = GraphBuilder(7)
    dk = d // heads
    inputs = [helper.make_tensor_value_info("x", F, ["n", 5, d])]
    outputs = []

    def proj(x: str, width: int, bias: str, split: list[int]) -> str:
        summed = g.node("Add", [g.node("MatMul", [x, g.weight(d, width)]), bias])
        if variant == "sum-output" and not outputs:
            outputs.append(helper.make_tensor_value_info(summed, F, None))
        return g.node("Reshape", [summed, g.init(np.array(split, np.int64))])

    heads_dim = -1 if variant == "infer" else heads
    q_bias = "qb" if variant == "bias-input" else g.weight(dk * heads, scale=0.1)
    if variant == "bias-input":
        inputs.append(helper.make_tensor_value_info("qb", F, [dk * heads]))
    k_bias = g.weight(5, dk * heads, scale=0.1) if variant == "wide-bias" else g.weight(dk * heads, scale=0.1)
    kv_input = "y" if variant == "cross" else "x"
    if variant == "cross":
        inputs.append(helper.make_tensor_value_info("y", F, ["n", 5, d]))
    q = g.node("Transpose", [proj("x", dk * heads, q_bias, [0, 0, heads_dim, dk])], perm=[0, 2, 1, 3])
    k = g.node("Transpose", [proj(kv_input, dk * heads, k_bias, [0, 0, heads, dk])], perm=[0, 2, 3, 1])
    v = g.node("Transpose", [proj(kv_input, dv * heads, g.weight(dv * heads, scale=0.1), [0, 0, heads, dv])],
               perm=[0, 2, 1, 3])
    scores = g.node("Mul", [g.node("MatMul", [q, k]), g.init(np.float32(1 / np.sqrt(dk)))])
    attended = g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v])
    out = g.node("Transpose", [attended], perm=[0, 2, 1, 3])
    outputs.insert(0, helper.make_tensor_value_info(out, F, None))
    return g.model(inputs, outputs, opset=17)


def counts(sess: InferenceSession, shapes: tuple[tuple[int, ...], ...]) -> tuple[int, int]:
    """(GEMMs, fused attentions) in the plan for these input shapes."""
    code = sess._compiled(shapes).plan.code
    gemms, attentions, at = 0, 0, 0
    while at < len(code):
        gemms += int(code[at] == OP_GEMM)
        attentions += int(code[at] == OP_ATTENTION)
        at += int(code[at + 1])
    return gemms, attentions


def check(model: ModelProto, feeds: list[dict[str, Any]], want_counts: tuple[int, int]) -> None:
    sess = InferenceSession(model.SerializeToString())
    for f in feeds:
        assert_close(sess.run(None, f), reference(model, f))
        assert counts(sess, tuple(f[i.name].shape for i in sess.get_inputs())) == want_counts


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("variant", ["", "infer"])
def test_projections_of_one_input_are_one_gemm(variant: str) -> None:
    """Q and K 8 wide per head, V 8: one GEMM of 3·24 columns feeds the attention."""
    feeds = [{"x": randn(n, 5, 24, seed=n)} for n in (1, 2, 64)]
    check(self_attention(variant=variant), feeds, (1, 1))
    check(self_attention(24, 3, 16), feeds, (1, 1))  # V wider than Q and K


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("ops", [True, False], ids=["ops", "decomposed"])
def test_the_encoder_block_plans_four_gemms(ops: bool) -> None:
    """QKV, the output projection and the two FFN layers; exact at batch 1, 8 and 64."""
    model = models.encoder(ops=ops)
    check(model, [{"x": randn(n, 32, 128, seed=n)} for n in (1, 8, 64)], (4, 1))


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("variant", ["cross", "bias-input", "sum-output", "wide-bias"])
def test_projections_that_differ_from_the_pattern_stay_three(variant: str) -> None:
    """Other inputs, a run-time bias, a sum read twice, a bias over the sequence too: three
    GEMMs (a run-time bias makes Q's an Add of its own); the attention stays fused."""
    f = {"x": randn(2, 5, 24, seed=3)}
    if variant == "cross":
        f["y"] = randn(2, 5, 24, seed=4)
    if variant == "bias-input":
        f["qb"] = randn(24, seed=5)
    check(self_attention(variant=variant), [f], (3, 1))
