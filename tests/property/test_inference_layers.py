"""Differential tests of the layer operators (MatMul, Gemm, Conv, pooling, normalisations) against
onnxruntime on every ISA path; see test_inference_ops.py for the harness."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

pytest.importorskip("onnxruntime")

from test_inference_ops import SEED, SETTINGS, check, one_node, randn


@st.composite
def matmul_shapes(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    m, k, n = (draw(st.integers(1, 40)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=3))
    a_batch = [1 if draw(st.booleans()) else d for d in batch[draw(st.integers(0, len(batch))):]]
    b_batch = [1 if draw(st.booleans()) else d for d in batch[draw(st.integers(0, len(batch))):]]
    a = (*a_batch, m, k) if draw(st.integers(0, 5)) else (k,)
    b = (*b_batch, k, n) if draw(st.integers(0, 5)) else (k,)
    return a, b


@SETTINGS
@given(shapes=matmul_shapes(), const_b=st.booleans(), seed=SEED)
def test_matmul_batched_and_broadcast(isa: str, shapes: Any, const_b: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    check(*one_node("MatMul", [randn(rng, shapes[0]), randn(rng, shapes[1])], {1} if const_b else set()))


@SETTINGS
@given(m=st.integers(1, 30), k=st.integers(1, 30), n=st.integers(1, 30), ta=st.booleans(), tb=st.booleans(),
       alpha=st.sampled_from([1.0, 0.5]), beta=st.sampled_from([1.0, 2.0]),
       c=st.sampled_from(["none", "n", "1n", "m1", "mn", "scalar"]), const_b=st.booleans(), seed=SEED)
def test_gemm_attributes(isa: str, *, m: int, k: int, n: int, ta: bool, tb: bool, alpha: float, beta: float,
                         c: str, const_b: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = randn(rng, (k, m) if ta else (m, k))
    b = randn(rng, (n, k) if tb else (k, n))
    shapes = {"n": (n,), "1n": (1, n), "m1": (m, 1), "mn": (m, n), "scalar": ()}
    inputs = [a, b] + ([] if c == "none" else [randn(rng, shapes[c])])
    check(*one_node("Gemm", inputs, {1, 2} if const_b else {2}, alpha=alpha, beta=beta, transA=int(ta),
                    transB=int(tb)))


@st.composite
def conv_case(draw: st.DrawFn) -> dict[str, Any]:
    groups = draw(st.sampled_from([1, 1, 2, "depthwise"]))
    cin_g = draw(st.integers(1, 3))
    if groups == "depthwise":
        groups, cin_g = draw(st.integers(1, 4)), 1
    cout = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(kh, 9)), draw(st.integers(kw, 9))
    attrs: dict[str, Any] = {"group": groups, "strides": [draw(st.integers(1, 2)), draw(st.integers(1, 2))],
                             "dilations": [draw(st.integers(1, 2)), draw(st.integers(1, 2))]}
    auto = draw(st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    if auto == "NOTSET":
        attrs["pads"] = [draw(st.integers(0, 2)) for _ in range(4)]
    else:
        attrs["auto_pad"] = auto
    return {"x": (draw(st.integers(1, 3)), groups * cin_g, h, w), "w": (cout, cin_g, kh, kw), "attrs": attrs,
            "bias": draw(st.booleans())}


@SETTINGS
@given(case=conv_case(), seed=SEED)
def test_conv_pads_strides_dilations_groups(isa: str, case: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, w = randn(rng, case["x"]), randn(rng, case["w"])
    kh, kw = case["w"][2:]
    dil = case["attrs"]["dilations"]
    pads = case["attrs"].get("pads", [0, 0, 0, 0])
    assume(case["attrs"].get("auto_pad", "NOTSET") in ("NOTSET", "VALID") or max(dil) == 1)
    assume(case["x"][2] + pads[0] + pads[2] >= (kh - 1) * dil[0] + 1)
    assume(case["x"][3] + pads[1] + pads[3] >= (kw - 1) * dil[1] + 1)
    inputs = [x, w] + ([randn(rng, case["w"][0])] if case["bias"] else [])
    check(*one_node("Conv", inputs, {1, 2}, **case["attrs"]))


@SETTINGS
@given(op=st.sampled_from(["MaxPool", "AveragePool"]), k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       strides=st.tuples(st.integers(1, 3), st.integers(1, 3)), pads=st.lists(st.integers(0, 1), min_size=4,
                                                                                 max_size=4),
       include_pad=st.booleans(), hw=st.tuples(st.integers(1, 8), st.integers(1, 8)),
       dil=st.tuples(st.integers(1, 2), st.integers(1, 2)), seed=SEED)
def test_pooling(op: str, *, k: Any, strides: Any, pads: list[int], include_pad: bool, hw: Any,
                 dil: Any, seed: int) -> None:
    assume(all(p < kk for p, kk in zip(pads, [*k, *k], strict=True)))
    dil = dil if op == "MaxPool" else (1, 1)
    assume(all(hw[i] + pads[i] + pads[i + 2] >= (k[i] - 1) * dil[i] + 1 for i in range(2)))
    attrs: dict[str, Any] = {"kernel_shape": list(k), "strides": list(strides), "pads": pads,
                             "dilations": list(dil)}
    if op == "AveragePool":
        attrs["count_include_pad"] = int(include_pad)
    check(*one_node(op, [randn(np.random.default_rng(seed), (2, 3, *hw))], opset=19, **attrs))


@SETTINGS
@given(op=st.sampled_from(["GlobalAveragePool", "GlobalMaxPool"]),
       shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)), seed=SEED)
def test_global_pooling(op: str, shape: Any, seed: int) -> None:
    check(*one_node(op, [randn(np.random.default_rng(seed), shape)]))


@SETTINGS
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), data=st.data(), bias=st.booleans(),
       seed=SEED)
def test_layer_normalization(shape: list[int], data: st.DataObject, bias: bool, seed: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    tail = shape[axis:]
    inputs = [randn(rng, shape) * 3 + 1, randn(rng, tail)] + ([randn(rng, tail)] if bias else [])
    check(*one_node("LayerNormalization", inputs, {1, 2}, opset=17, axis=axis, epsilon=1e-3))


@SETTINGS
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5)), op=st.sampled_from(
    ["BatchNormalization", "InstanceNormalization"]), seed=SEED)
def test_batch_and_instance_normalization(shape: Any, op: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = randn(rng, shape)
    if op == "BatchNormalization":
        params = [randn(rng, c), randn(rng, c), randn(rng, c), np.abs(randn(rng, c)) + 0.5]
    else:
        params = [randn(rng, c), randn(rng, c)]
    check(*one_node(op, [x, *params], set(range(1, 5)), epsilon=1e-4))


@SETTINGS
@given(op=st.sampled_from(["Conv", "MaxPool", "AveragePool"]), length=st.integers(3, 12), k=st.integers(1, 3),
       stride=st.integers(1, 2), pads=st.tuples(st.integers(0, 1), st.integers(0, 1)),
       seed=SEED)
def test_one_dimensional_windows(isa: str, op: str, *, length: int, k: int, stride: int, pads: Any,
                                 seed: int) -> None:
    rng = np.random.default_rng(seed)
    attrs: dict[str, Any] = {"strides": [stride], "pads": list(pads)}
    if op == "Conv":
        inputs, consts = [randn(rng, (2, 3, length)), randn(rng, (4, 3, k)), randn(rng, 4)], {1, 2}
    else:
        assume(max(pads) < k)
        inputs, consts = [randn(rng, (2, 3, length))], set()
        attrs["kernel_shape"] = [k]
    check(*one_node(op, inputs, consts, **attrs))
