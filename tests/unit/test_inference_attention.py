"""The attention fusion (nexpo/inference/_attention.py): fused graphs against onnxruntime on every
ISA path (odd sequence lengths, head widths 8/24/64, masks, NaN and Inf), and graphs that differ
from the pattern planned op by op."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from _inference_models import GraphBuilder  # noqa: E402
from onnx import ModelProto, TensorProto, helper  # noqa: E402
from test_inference import assert_close, randn, reference  # noqa: E402

import nexpo  # noqa: E402
from nexpo.inference import InferenceSession  # noqa: E402
from nexpo.inference._plan import OP_ATTENTION  # noqa: E402

F = TensorProto.FLOAT


def attention_model(
    heads: int,
    dk: int,
    dv: int | None = None,
    *,
    scale: Any = "mul",
    mask: str | None = None,
    merge: bool = True,
    k_perm: tuple[int, ...] = (0, 2, 3, 1),
    axis: int = -1,
    scores_output: bool = False,
) -> ModelProto:
    """q, k, v inputs of [N, S, H, d] through the exporters' head-split attention."""
    g = GraphBuilder(3)
    dv = dv or dk
    q = g.node("Transpose", ["q"], perm=[0, 2, 1, 3])
    k = g.node("Transpose", ["k"], perm=list(k_perm))
    v = g.node("Transpose", ["v"], perm=[0, 2, 1, 3])
    s = raw = g.node("MatMul", [q, k])
    if scale == "mul":
        s = g.node("Mul", [g.init(np.float32(1 / np.sqrt(dk))), s])
    elif scale == "div":
        s = g.node("Div", [s, g.init(np.float32(np.sqrt(dk)))])
    elif scale is not None:  # a constant that is not a scalar
        s = g.node("Mul", [s, g.init(np.asarray(scale, dtype=np.float32))])
    inputs = [
        helper.make_tensor_value_info(n, F, ["n", "s" if n == "q" else "t", heads, d])
        for n, d in (("q", dk), ("k", dk), ("v", dv))
    ]
    if mask == "input":  # [N, 1, 1, T] padding mask, fed at run time
        s = g.node("Add", ["mask", s])
        inputs.append(helper.make_tensor_value_info("mask", F, ["n", 1, 1, "t"]))
    elif mask is not None:  # a causal [S, S] constant
        size = int(mask)
        s = g.node("Add", [s, g.init(np.triu(np.full((size, size), -1e9, np.float32), 1))])
    p = g.node("Softmax", [s], axis=axis)
    out = g.node("MatMul", [p, v])
    if merge:
        out = g.node("Transpose", [out], perm=[0, 2, 1, 3])
    outputs = [helper.make_tensor_value_info(out, F, None)]
    if scores_output:
        outputs.append(helper.make_tensor_value_info(raw, F, None))
    return g.model(inputs, outputs, opset=17)


def feed(
    n: int, s: int, t: int, heads: int, dk: int, *, dv: int | None = None, seed: int = 0
) -> dict[str, Any]:
    return {
        "q": randn(n, s, heads, dk, seed=seed),
        "k": randn(n, t, heads, dk, seed=seed + 1),
        "v": randn(n, t, heads, dv or dk, seed=seed + 2),
    }


def fused_count(sess: InferenceSession, shapes: tuple[tuple[int, ...], ...]) -> int:
    code = sess._compiled(shapes).plan.code
    count, at = 0, 0
    while at < len(code):
        count += int(code[at] == OP_ATTENTION)
        at += int(code[at + 1])
    return count


def check(model: ModelProto, feeds: list[dict[str, Any]], fused: bool) -> None:
    sess = InferenceSession(model.SerializeToString())
    for f in feeds:
        assert_close(sess.run(None, f), reference(model, f))
        shapes = tuple(f[i.name].shape for i in sess.get_inputs())
        assert fused_count(sess, shapes) == int(fused)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("dk", [8, 24, 64])
@pytest.mark.parametrize("merge", [True, False], ids=["merged", "heads-first"])
def test_fused_attention_matches_onnxruntime(dk: int, merge: bool) -> None:
    model = attention_model(3, dk, merge=merge)
    check(model, [feed(2, 7, 7, 3, dk), feed(1, 33, 17, 3, dk, seed=5), feed(1, 1, 1, 3, dk)], True)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("scale", ["div", None])
def test_division_or_no_scale_is_fused(scale: str | None) -> None:
    check(attention_model(2, 24, 8, scale=scale), [feed(2, 5, 9, 2, 24, dv=8)], True)


@pytest.mark.usefixtures("isa")
def test_a_runtime_padding_mask_and_a_causal_constant_mask() -> None:
    f = feed(2, 6, 6, 4, 8)
    f["mask"] = np.where(np.arange(6) < [[[[4]]], [[[6]]]], 0.0, -1e4).astype(np.float32)
    check(attention_model(4, 8, mask="input"), [f], True)
    check(attention_model(4, 8, mask="6"), [feed(3, 6, 6, 4, 8)], True)


@pytest.mark.usefixtures("isa")
def test_nan_and_inf_propagate_like_the_unfused_ops() -> None:
    model = attention_model(2, 8)
    f = feed(1, 5, 7, 2, 8)
    f["q"][0, 1, 0, 3] = np.nan  # one query row of head 0
    f["k"][0, 2, 1, 0] = np.inf  # one key of head 1: every row of head 1
    f["v"][0, 4, 0, 5] = -np.inf
    got = InferenceSession(model.SerializeToString()).run(None, f)[0]
    want = reference(model, f)[0]
    assert np.isnan(want).any() and np.isinf(want).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    tol = 1e-4 * (1 + float(np.max(np.abs(want[finite]))))
    np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=tol)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize(
    "variant",
    [
        {"scale": [1.0, 0.5, 0.25, 2.0, 1.0]},  # a per-key factor, not a scalar
        {"scores_output": True},  # the scores are read by something else
        {"k_perm": (0, 2, 1, 3)},  # K not transposed for Q·Kᵀ (square shapes make it valid)
        {"axis": 2},  # softmax over the query axis
    ],
    ids=["vector-scale", "scores-read-twice", "other-layout", "other-axis"],
)
def test_graphs_that_differ_from_the_pattern_run_unfused(variant: dict[str, Any]) -> None:
    heads, d = 2, 5
    model = attention_model(heads, d, **variant)
    f = feed(1, 5, 5, heads, d)
    check(model, [f], False)


@pytest.mark.usefixtures("isa")
def test_heads_split_across_threads_match_onnxruntime() -> None:
    previous = nexpo.get_num_threads()
    nexpo.set_num_threads(2)  # 16 x 4 heads of 32 x 32 x 32: above the kernel's serial limit
    try:
        check(
            attention_model(4, 32, mask="input"),
            [{**feed(16, 32, 32, 4, 32), "mask": randn(16, 1, 1, 32)}],
            True,
        )
    finally:
        nexpo.set_num_threads(previous)
