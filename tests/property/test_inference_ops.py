"""Per-operator differential tests of nexpo.inference against onnxruntime: one-node models over
random shapes, broadcasting and attributes; inputs are graph inputs (run-time kernels) or
initializers (folded at plan time). Outputs must agree within 1e-4·(1 + max|reference|)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, ValueInfoProto, helper, numpy_helper, shape_inference  # noqa: E402

from nexpo.inference import InferenceSession  # noqa: E402

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
        np.dtype(np.bool_): TensorProto.BOOL}
SEED = st.integers(0, 2**32 - 1)


def one_node(op: str, inputs: list[Any], consts: frozenset[int] | set[int] = frozenset(), *,
             n_out: int = 1, opset: int = 18, domain: str = "", **attrs: Any) -> tuple[bytes, dict[str, Any]]:
    """A model of one node; inputs[i] is an array (a graph input, or an initializer when i is in
    ``consts``) or None (an omitted optional input). Returns (model bytes, feed)."""
    names, graph_inputs, inits, feed = [], [], [], {}
    for i, value in enumerate(inputs):
        if value is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        array = np.asarray(value)
        if i in consts:
            inits.append(numpy_helper.from_array(array, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, ELEM[array.dtype], list(array.shape)))
            feed[name] = array
    outs = [f"out{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, name="op", domain=domain, **attrs)
    graph = helper.make_graph([node], "g", graph_inputs, [ValueInfoProto(name=o) for o in outs], inits)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = shape_inference.infer_shapes(helper.make_model(graph, opset_imports=opsets))
    model.ir_version = 8
    return model.SerializeToString(), feed


def check(model: bytes, feed: dict[str, Any]) -> None:
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feed)
    got = InferenceSession(model).run(None, feed)
    for a, e in zip(got, want, strict=True):
        assert a.shape == e.shape, (a.shape, e.shape)
        assert a.dtype == e.dtype, (a.dtype, e.dtype)
        if a.dtype.kind == "f":
            tol = 1e-4 * (1 + float(np.max(np.abs(e), initial=0)))
            np.testing.assert_allclose(a, e, rtol=0, atol=tol)
        else:
            np.testing.assert_array_equal(a, e)


def randn(rng: np.random.Generator, shape: Any) -> Any:
    return rng.standard_normal(shape).astype(np.float32)


@st.composite
def broadcast_pair(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    out = draw(st.lists(st.integers(1, 5), min_size=0, max_size=4))
    shapes = []
    for _ in range(2):
        drop = draw(st.integers(0, len(out)))
        shapes.append(tuple(1 if draw(st.booleans()) else d for d in out[drop:]))
    return shapes[0], shapes[1]


BINARY_F32 = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater",
              "LessOrEqual", "GreaterOrEqual"]


@SETTINGS
@given(op=st.sampled_from(BINARY_F32), shapes=broadcast_pair(), const=st.sampled_from([(), (0,), (1,)]),
       seed=SEED)
def test_binary_float_broadcasting(op: str, shapes: Any, const: tuple[int, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = randn(rng, shapes[0]), randn(rng, shapes[1])
    if op == "Pow":
        a = np.abs(a) + 0.5
    if op == "Div":
        b = np.where(np.abs(b) < 0.1, 1.0, b).astype(np.float32)
    if op in ("Equal",):
        b = np.where(rng.random(shapes[1]) < 0.5, b, 0.0).astype(np.float32)
        a = np.where(rng.random(shapes[0]) < 0.5, a, 0.0).astype(np.float32)
    check(*one_node(op, [a, b], set(const)))


@SETTINGS
@given(op=st.sampled_from(["Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater"]), shapes=broadcast_pair(),
       seed=SEED)
def test_binary_int64(op: str, shapes: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(-20, 20, shapes[0])
    b = rng.integers(1, 7, shapes[1]) * rng.choice([-1, 1], shapes[1])
    check(*one_node(op, [a, b]))


@SETTINGS
@given(op=st.sampled_from(["And", "Or", "Xor"]), shapes=broadcast_pair(), seed=SEED)
def test_logical(op: str, shapes: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    check(*one_node(op, [rng.random(shapes[0]) < 0.5, rng.random(shapes[1]) < 0.5]))
    check(*one_node("Not", [rng.random(shapes[0]) < 0.5]))


UNARY = ["Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Tanh", "Sigmoid", "Relu", "Floor",
         "Ceil", "HardSwish", "Identity"]


@SETTINGS
@given(op=st.sampled_from(UNARY), shape=st.lists(st.integers(0, 6), max_size=4), const=st.booleans(),
       seed=SEED)
def test_unary(isa: str, op: str, *, shape: list[int], const: bool, seed: int) -> None:
    x = randn(np.random.default_rng(seed), shape) * 3
    if op in ("Log", "Sqrt", "Reciprocal"):
        x = np.abs(x) + 0.1
    check(*one_node(op, [x], {0} if const else set()))


@SETTINGS
@given(case=st.sampled_from([("LeakyRelu", {"alpha": 0.3}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
                             ("Gelu", {}), ("Gelu", {"approximate": "tanh"}), ("Elu", None)]),
       shape=st.lists(st.integers(1, 6), max_size=3), seed=SEED)
def test_unary_with_attributes(isa: str, case: Any, shape: list[int], seed: int) -> None:
    op, attrs = case
    assume(attrs is not None)
    check(*one_node(op, [randn(np.random.default_rng(seed), shape) * 3], opset=20, **attrs))


@SETTINGS
@given(lo=st.one_of(st.none(), st.floats(-2, 0)), hi=st.one_of(st.none(), st.floats(0, 2)), seed=SEED)
def test_clip_with_optional_bounds(lo: float | None, hi: float | None, seed: int) -> None:
    x = randn(np.random.default_rng(seed), (3, 5)) * 3
    bounds = [None if v is None else np.float32(v) for v in (lo, hi)]
    check(*one_node("Clip", [x, *bounds], {1, 2}))


@SETTINGS
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), data=st.data(),
       op=st.sampled_from(["Softmax", "LogSoftmax"]), opset=st.sampled_from([11, 13, 18]), seed=SEED)
def test_softmax_axes(isa: str, shape: list[int], *, data: st.DataObject, op: str, opset: int,
                     seed: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check(*one_node(op, [randn(np.random.default_rng(seed), shape) * 4], opset=opset, axis=axis))


@SETTINGS
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=5), data=st.data(), seed=SEED)
def test_transpose(shape: list[int], data: st.DataObject, seed: int) -> None:
    perm = data.draw(st.permutations(range(len(shape))))
    check(*one_node("Transpose", [randn(np.random.default_rng(seed), shape)], perm=list(perm)))


@SETTINGS
@given(op=st.sampled_from(["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"]),
       shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), data=st.data(), keepdims=st.booleans(),
       seed=SEED)
def test_reductions(op: str, shape: list[int], data: st.DataObject, keepdims: bool, seed: int) -> None:
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), max_size=len(shape),
                              unique_by=lambda a: a % len(shape)))
    x = randn(np.random.default_rng(seed), shape)
    inputs = [x, np.array(axes, dtype=np.int64)] if axes else [x]
    check(*one_node(op, inputs, {1}, keepdims=int(keepdims)))


@SETTINGS
@given(op=st.sampled_from(["ArgMax", "ArgMin"]), shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       data=st.data(), keepdims=st.booleans(), last=st.booleans(), seed=SEED)
def test_argmax(op: str, *, shape: list[int], data: st.DataObject, keepdims: bool, last: bool,
                seed: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).integers(0, 3, shape).astype(np.float32)  # ties
    check(*one_node(op, [x], axis=axis, keepdims=int(keepdims), select_last_index=int(last)))
