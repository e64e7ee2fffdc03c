"""MatMul/Gemm plans (nexpo/inference/_ops_linalg.py): constant weights packed at plan time for the
active ISA path's micro-kernel, on every path, at ragged sizes, re-planned per batch size, and a
plan made on one path run on another (the executor then packs per call instead)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")  # the installed-wheel suites run without it
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _inference_models as models  # noqa: E402
from onnx import ModelProto, TensorProto, helper, numpy_helper  # noqa: E402

from nexpo import _native  # noqa: E402
from nexpo.inference import InferenceSession, _plan  # noqa: E402


def linear_model(k: int, n: int, *, gemm: bool, seed: int) -> ModelProto:
    """x[batch, k] -> Relu(x·W + b) as MatMul + Add, or as Gemm with transB (W stored n x k)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k) if gemm else (k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(bias, "b")]
    if gemm:
        nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)]
    else:
        nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])]
    nodes.append(helper.make_node("Relu", ["y"], ["out"]))
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", n])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def check(sess: InferenceSession, model: ModelProto, x: np.ndarray[Any, Any]) -> None:
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )[0]
    got = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * (1 + float(np.abs(want).max())))


def plan_consts(sess: InferenceSession, batch: int, k: int) -> int:
    """Bytes of constants in the session's plan for x of shape (batch, k)."""
    return int(sess._plans[((batch, k),)].plan.consts.nbytes)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("gemm", [False, True])
@pytest.mark.parametrize(("k", "n"), [(64, 256), (256, 128), (37, 70), (300, 33), (129, 1000)])
def test_packed_weights_match_onnxruntime_at_every_batch_size(k: int, n: int, gemm: bool) -> None:
    model = linear_model(k, n, gemm=gemm, seed=k + n)
    sess = InferenceSession(model.SerializeToString())
    for batch in (64, 9, 1, 301, 8, 64):  # direct and blocked paths, the small path, re-planned
        check(sess, model, np.random.default_rng(batch).standard_normal((batch, k)).astype(np.float32))


def test_plan_made_on_one_path_runs_on_every_other() -> None:
    """A cached plan keeps the packing of the path active when it was made; another path ignores it."""
    model = models.mlp(dims=(64, 200, 130, 10))
    x = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    previous = _native.isa_active()
    try:
        for made in _native.isa_available():
            _native.set_isa(made)
            sess = InferenceSession(model.SerializeToString())
            check(sess, model, x)
            for other in _native.isa_available():
                _native.set_isa(other)
                check(sess, model, x)
    finally:
        _native.set_isa(previous)


@pytest.mark.usefixtures("isa")
def test_weights_are_packed_only_where_the_gemm_would_pack_them() -> None:
    """Batch 64 keeps a packed copy of each large weight; batch 1 (the small path reads B in
    place) keeps none: its constants are just the model's."""
    model = linear_model(256, 128, gemm=False, seed=3)
    nr = _native.gemm_b_panel_width(_native.isa_active())
    sess = InferenceSession(model.SerializeToString())  # plans batch 1 at load
    sess.run(None, {"x": np.ones((64, 256), np.float32)})
    at_one, at_64 = plan_consts(sess, 1, 256), plan_consts(sess, 64, 256)
    assert at_64 - at_one >= 256 * ((128 + nr - 1) // nr * nr) * 4
    assert at_one < 2 * 256 * 128 * 4


def test_panel_width_is_the_kernels_on_every_path() -> None:
    widths = [_native.gemm_b_panel_width(isa) for isa in _native.ISA_NAMES]
    assert all(w > 0 and w % 8 == 0 for w in widths), widths
    assert widths == sorted(widths)  # wider vectors, wider panels


@pytest.mark.parametrize("isa", _native.ISA_NAMES)
@pytest.mark.parametrize(("k", "n"), [(1, 1), (3, 33), (64, 256), (17, 70)])
def test_packed_weights_are_the_kernels_panels(isa: str, k: int, n: int) -> None:
    """Panel q: columns q*nr ..< q*nr+nr, k rows of nr contiguous floats, zeros past n."""
    w = np.random.default_rng(k * n).standard_normal((k, n)).astype(np.float32)
    nr = _native.gemm_b_panel_width(isa)
    panels = -(-n // nr)
    padded = np.zeros((k, panels * nr), np.float32)
    padded[:, :n] = w
    expected = padded.reshape(k, panels, nr).transpose(1, 0, 2).reshape(-1)
    assert np.array_equal(_native.gemm_pack_weights(isa, w), expected)


def test_packing_for_an_unknown_path_is_refused() -> None:
    with pytest.raises(ValueError, match="isa: unknown path 7"):
        _native.check(_native.lib.nexpo_gemm_pack_weights(7, 1, 1, _native.NULL, _native.NULL))


def activation_model(k: int, n: int, act: str, seed: int) -> ModelProto:
    """x[batch, k] -> act(x·W + b), opset 20: act "Relu", "Gelu", "GeluTanh" (approximate="tanh"),
    or "GeluShared" (the Gelu's input, x·W + b, is a graph output too)."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array((rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "b"),
    ]
    op = "Relu" if act == "Relu" else "Gelu"
    attrs = {"approximate": "tanh"} if act == "GeluTanh" else {}
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y"]),
        helper.make_node(op, ["y"], ["out"], **attrs),
    ]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", n])]
    if act == "GeluShared":
        outputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n]))
    graph = helper.make_graph(
        nodes, "act", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])], outputs, inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def plan_opcodes(sess: InferenceSession, shape: tuple[int, ...]) -> list[int]:
    code = sess._plans[(shape,)].plan.code
    ops, at = [], 0
    while at < len(code):
        ops.append(int(code[at]))
        at += int(code[at + 1])
    return ops


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("act", ["Relu", "Gelu"])
@pytest.mark.parametrize(
    ("batch", "k", "n"),
    [(2051, 128, 512), (1000, 600, 70), (300, 600, 300), (64, 128, 512), (7, 128, 512)],
)
def test_an_activation_in_the_epilogue_matches_onnxruntime(act: str, batch: int, k: int, n: int) -> None:
    """Bias and ReLU/GELU fused into the GEMM, with packed weights read by tall products in parts
    of a few tiles' rows (ragged rows and columns, two k blocks), a B too large for that (the
    blocked path), and at small batches."""
    model = activation_model(k, n, act, seed=batch + k)
    sess = InferenceSession(model.SerializeToString())
    x = 3 * np.random.default_rng(batch).standard_normal((batch, k)).astype(np.float32)
    check(sess, model, x)
    assert plan_opcodes(sess, (batch, k)) == [_plan.OP_GEMM]


@pytest.mark.usefixtures("isa")
def test_a_fused_gelu_gives_the_bits_of_the_unfused_node() -> None:
    """The epilogue runs the vectorised erf of the executor's Gelu node: the same values."""
    fused = InferenceSession(activation_model(128, 512, "Gelu", seed=5).SerializeToString())
    unfused = InferenceSession(activation_model(128, 512, "GeluShared", seed=5).SerializeToString())
    x = np.random.default_rng(2).standard_normal((300, 128)).astype(np.float32)
    assert np.array_equal(fused.run(None, {"x": x})[0], unfused.run(None, {"x": x})[0])


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("act", ["GeluTanh", "GeluShared"])
def test_near_misses_of_the_gelu_fusion_stay_unfused(act: str) -> None:
    """The tanh approximation, or a GELU input someone else reads: a GEMM, then the Gelu node."""
    model = activation_model(128, 512, act, seed=9)
    sess = InferenceSession(model.SerializeToString())
    x = np.random.default_rng(4).standard_normal((300, 128)).astype(np.float32)
    ref_sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = ref_sess.run(None, {"x": x})
    for got, ref in zip(sess.run(None, {"x": x}), want, strict=True):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4 * (1 + float(np.abs(ref).max())))
    assert plan_opcodes(sess, (300, 128)) == [_plan.OP_GEMM, _plan.OP_UNARY]
