"""nexpo.inference.InferenceSession: whole models against onnxruntime on every ISA path, the API's
argument checks, and malformed or unsupported models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import _inference_models as models  # noqa: E402
from onnx import ModelProto, TensorProto, helper  # noqa: E402

import nexpo  # noqa: E402
from nexpo.inference import InferenceSession, InvalidModel, UnsupportedModel  # noqa: E402
from nexpo.inference._plan import OP_CONV  # noqa: E402


def reference(model: ModelProto, feed: dict[str, Any]) -> list[Any]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(sess.run(None, feed))


def assert_close(got: list[Any], want: list[Any]) -> None:
    assert len(got) == len(want)
    for a, e in zip(got, want, strict=True):
        assert a.shape == e.shape and a.dtype == e.dtype
        if a.dtype.kind == "f":
            tol = 1e-4 * (1 + float(np.max(np.abs(e), initial=0)))
            np.testing.assert_allclose(a, e, rtol=0, atol=tol)
        else:
            np.testing.assert_array_equal(a, e)


def check_model(model: ModelProto, feeds: list[dict[str, Any]]) -> None:
    sess = InferenceSession(model.SerializeToString())
    for feed in feeds:
        assert_close(sess.run(None, feed), reference(model, feed))


def randn(*shape: int, seed: int = 1) -> Any:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.usefixtures("isa")
def test_mlp_matches_onnxruntime_at_every_batch_size() -> None:
    check_model(models.mlp(), [{"x": randn(n, 64, seed=n)} for n in (1, 8, 64, 3)])


@pytest.mark.usefixtures("isa")
def test_cnn_with_batchnorm_and_pooling_matches_onnxruntime() -> None:
    check_model(models.cnn(), [{"x": randn(n, 3, 32, 32, seed=n)} for n in (1, 4, 64)])


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("ops", [True, False], ids=["ops", "decomposed"])
def test_encoder_block_matches_onnxruntime(ops: bool) -> None:
    check_model(models.encoder(ops=ops), [{"x": randn(n, s, 128, seed=n)} for n, s in ((1, 32), (2, 7))])


@pytest.mark.usefixtures("isa")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["mlp", "logistic"])
def test_sklearn_classifiers_match_onnxruntime(kind: str) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    clf = MLPClassifier((16,), max_iter=300, random_state=0) if kind == "mlp" else LogisticRegression()
    clf.fit(x, y)
    model = skl2onnx.to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset=17)
    sess = InferenceSession(model.SerializeToString())
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
    for batch in (x[:1], x[:37]):
        got = sess.run(None, {"X": batch})
        assert_close(got, reference(model, {"X": batch}))
        np.testing.assert_array_equal(got[0], clf.predict(batch))


def test_inputs_and_outputs_describe_the_graph() -> None:
    sess = InferenceSession(models.mlp().SerializeToString())
    (inp,) = sess.get_inputs()
    assert (inp.name, inp.shape, inp.type) == ("x", ["batch", 64], "tensor(float)")
    (out,) = sess.get_outputs()
    assert out.shape == ["batch", 10] and out.type == "tensor(float)"


def test_model_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mlp.onnx"
    path.write_bytes(models.mlp().SerializeToString())
    (y,) = InferenceSession(str(path)).run(None, {"x": randn(2, 64)})
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-5)


def test_run_by_output_name_and_num_threads() -> None:
    before = nexpo.get_num_threads()
    try:
        sess = InferenceSession(models.mlp().SerializeToString(), num_threads=1)
        assert nexpo.get_num_threads() == 1
        name = sess.get_outputs()[0].name
        assert len(sess.run([name], {"x": randn(1, 64)})) == 1
        with pytest.raises(ValueError, match="unknown output 'nope'"):
            sess.run(["nope"], {"x": randn(1, 64)})
    finally:
        nexpo.set_num_threads(before)


def test_bad_feeds_name_the_input_and_what_was_expected() -> None:
    sess = InferenceSession(models.mlp().SerializeToString())
    with pytest.raises(ValueError, match=r"unknown input\(s\) \['y'\]"):
        sess.run(None, {"x": randn(1, 64), "y": randn(1)})
    with pytest.raises(ValueError, match="input 'x' is missing"):
        sess.run(None, {})
    with pytest.raises(TypeError, match=r"input 'x': expected tensor\(float\) \(float32\), got float64"):
        sess.run(None, {"x": np.zeros((1, 64))})
    with pytest.raises(ValueError, match="input 'x': dimension 1 must be 64"):
        sess.run(None, {"x": randn(1, 63)})
    with pytest.raises(ValueError, match="input 'x': expected rank 2"):
        sess.run(None, {"x": randn(64)})
    with pytest.raises(TypeError, match="numpy array"):
        sess.run(None, {"x": [[0.0] * 64]})
    with pytest.raises(TypeError, match="mapping"):
        sess.run(None, [("x", randn(1, 64))])  # type: ignore[arg-type]


def test_cached_shapes_still_check_every_feed_and_results_never_alias() -> None:
    """Once a shape has a plan, `run` skips the checks only for plain C-contiguous arrays of the
    input's dtype under exactly the model's names: every other feed still gets its error, and
    each result is the caller's own array, untouched by the next run."""
    sess = InferenceSession(models.mlp().SerializeToString())
    x1, x2 = randn(1, 64, seed=1), randn(1, 64, seed=2)
    (y1,) = sess.run(None, {"x": x1})
    kept = y1.copy()
    (y2,) = sess.run(None, {"x": x2})
    assert np.array_equal(y1, kept) and not np.shares_memory(y1, y2)
    assert_close([y2], reference(models.mlp(), {"x": x2}))
    with pytest.raises(TypeError, match="got float64"):
        sess.run(None, {"x": np.zeros((1, 64))})
    with pytest.raises(ValueError, match=r"unknown input\(s\) \['y'\]"):
        sess.run(None, {"y": x1})
    with pytest.raises(TypeError, match="numpy array"):
        sess.run(None, {"x": x1.tolist()})
    swapped = x1.astype(x1.dtype.newbyteorder())
    with pytest.raises(TypeError, match="expected tensor\\(float\\)"):
        sess.run(None, {"x": swapped})
    strided = randn(2, 64, seed=3)[::2]
    assert_close(sess.run(None, {"x": strided}), reference(models.mlp(), {"x": strided.copy()}))


def test_non_contiguous_inputs_and_empty_batches() -> None:
    sess = InferenceSession(models.mlp().SerializeToString())
    x = randn(64, 6)[:, ::1].T.copy(order="F")
    assert_close(sess.run(None, {"x": x}), reference(models.mlp(), {"x": np.ascontiguousarray(x)}))
    (y,) = sess.run(None, {"x": randn(0, 64)})
    assert y.shape == (0, 10)


def _model(graph: Any) -> ModelProto:
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _two_nodes(op: str = "Relu", **attrs: Any) -> ModelProto:
    nodes = [helper.make_node(op, ["x"], ["y"], name="first", **attrs)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_unsupported_operator_names_node_op_and_opset() -> None:
    with pytest.raises(UnsupportedModel, match=r"node 'first' \(NonMaxSuppression, opset 17\)"):
        InferenceSession(_two_nodes("NonMaxSuppression").SerializeToString())
    assert issubclass(UnsupportedModel, nexpo.NexpoError)


def test_unsupported_attribute_is_refused_at_load() -> None:
    with pytest.raises(UnsupportedModel, match=r"unsupported attribute\(s\) \['bogus'\]"):
        InferenceSession(_two_nodes("Relu", bogus=1).SerializeToString())


def test_cycle_missing_initializer_and_garbage_are_invalid_models() -> None:
    cyc = helper.make_graph(
        [helper.make_node("Relu", ["x", "b"], ["a"], name="p"),
         helper.make_node("Relu", ["a"], ["b"], name="q")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])])
    with pytest.raises(InvalidModel, match="cycle"):
        InferenceSession(_model(cyc).SerializeToString())
    missing = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])])
    with pytest.raises(InvalidModel, match="'W' is not a graph input, an initializer"):
        InferenceSession(_model(missing).SerializeToString())
    with pytest.raises(InvalidModel, match="not an ONNX"):
        InferenceSession(b"\xff\xfe garbage")
    with pytest.raises(TypeError, match="path or the model's bytes"):
        InferenceSession(12)


def test_shape_mismatch_is_reported_with_the_node() -> None:
    g = models.GraphBuilder()
    out = g.node("MatMul", ["x", g.weight(5, 3)])
    model = g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                    [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])
    with pytest.raises(InvalidModel, match=r"\(MatMul, opset 17\): inner dimensions differ"):
        InferenceSession(model.SerializeToString())


def test_zipmap_is_refused_with_the_converter_option() -> None:
    node = helper.make_node("ZipMap", ["x"], ["y"], name="zm", domain="ai.onnx.ml", classlabels_int64s=[0, 1])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 1)])
    with pytest.raises(UnsupportedModel, match="zipmap"):
        InferenceSession(model.SerializeToString())


def test_plans_are_cached_per_input_shape() -> None:
    sess = InferenceSession(models.encoder(d=32, heads=2, ff=64).SerializeToString())
    for n, s in ((1, 4), (3, 4), (1, 4), (2, 9)):
        x = randn(n, s, 32, seed=n + s)
        assert_close(sess.run(None, {"x": x}), reference(models.encoder(d=32, heads=2, ff=64), {"x": x}))
    assert len(sess._plans) == 4  # the load-time plan (dims 1) and three shapes


def test_concurrent_runs_from_threads_share_one_session() -> None:
    import threading

    model = models.encoder(d=32, heads=2, ff=64)
    sess = InferenceSession(model.SerializeToString())
    feeds = [{"x": randn(n % 3 + 1, 5, 32, seed=n)} for n in range(6)]
    wants = [reference(model, f) for f in feeds]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for _ in range(10):
                assert_close(sess.run(None, feeds[i]), wants[i])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(feeds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)


def test_huge_shapes_from_a_hostile_model_are_refused_not_allocated() -> None:
    g = models.GraphBuilder()
    out = g.node("Expand", ["x", g.init(np.array([1 << 20, 1 << 20], dtype=np.int64))])
    model = g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
                    [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])
    with pytest.raises(InvalidModel, match="exceeds the engine's limit"):
        InferenceSession(model.SerializeToString())


@pytest.mark.usefixtures("isa")
def test_large_tensors_split_across_threads_match_onnxruntime() -> None:
    g = models.GraphBuilder()
    x = g.node("Gelu", ["x"])
    x = g.node("Softmax", [g.node("Exp", [g.node("Mul", [x, g.init(np.float32(0.1))])])], axis=-1)
    out = g.node("LayerNormalization", [x, g.weight(999), g.weight(999)], axis=-1)
    model = g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 999])],
                    [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], opset=20)
    check_model(model, [{"x": randn(n, 999, seed=n) * 3} for n in (1, 77, 301)])


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(("pads", "strides", "dilations"), [
    ([1, 1, 1, 1], [1, 1], [1, 1]), ([0, 2, 1, 0], [2, 1], [1, 1]), ([2, 2, 2, 2], [1, 2], [2, 1]),
    ([0, 0, 0, 0], [1, 1], [1, 1]),
])
def test_conv_batch_smaller_than_threads_splits_rows(threads: int, pads: list[int], strides: list[int],
                                                      dilations: list[int]) -> None:
    """Fewer images than threads: each image's output rows are split between threads (each part
    builds its own im2col columns from the zero-padded input); bias and ReLU fused."""
    x = ("x", TensorProto.FLOAT, [None, 8, 23, 37])
    w, b = randn(16, 8, 3, 3, seed=2), randn(16, seed=3)
    conv = models.single_op("Conv", [x], [("c", TensorProto.FLOAT)], inits={"w": w, "b": b}, pads=pads,
                            strides=strides, dilations=dilations)
    conv.graph.node.append(helper.make_node("Relu", ["c"], ["y"]))
    conv.graph.output[0].name = "y"
    before = nexpo.get_num_threads()
    nexpo.set_num_threads(threads)
    try:
        check_model(conv, [{"x": randn(n, 8, 23, 37, seed=n)} for n in (1, 2, 1)])
    finally:
        nexpo.set_num_threads(before)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("axis_len", [1, 5, 16, 37, 300])
def test_softmax_of_contiguous_rows_in_blocks_keeps_nan_and_inf(axis_len: int) -> None:
    """Rows are shifted, exponentiated a block at a time and scaled; a NaN anywhere in a row makes
    the row NaN, +inf gives NaN where x = inf (inf - inf) as in onnxruntime's formula."""
    x = randn(130, axis_len, seed=axis_len) * 5
    x[3, axis_len // 2] = np.nan
    x[7, 0] = -np.inf
    x[9, -1] = np.inf
    model = models.single_op("Softmax", [("x", TensorProto.FLOAT, [130, axis_len])],
                             [("y", TensorProto.FLOAT)], axis=-1)
    (got,) = InferenceSession(model.SerializeToString()).run(None, {"x": x})
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        want = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_plain_2x2_pooling_matches_the_window_rules(op: str) -> None:
    """The 2x2 stride-2 fast path: odd sizes drop the last row/column; a max skips NaN (a window
    of NaN only gives the lowest float, like the general path), an average propagates it."""
    x = randn(2, 3, 9, 12, seed=5)
    x[0, 0, 0, 0] = np.nan
    x[0, 1, 2:4, 2:4] = np.nan
    model = models.single_op(op, [("x", TensorProto.FLOAT, [2, 3, 9, 12])], [("y", TensorProto.FLOAT)],
                             kernel_shape=[2, 2], strides=[2, 2])
    (got,) = InferenceSession(model.SerializeToString()).run(None, {"x": x})
    win = x[:, :, :8, :].reshape(2, 3, 4, 2, 6, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 4, 6, 4)
    if op == "MaxPool":
        lowest = np.finfo(np.float32).min
        want = np.where(np.isnan(win), lowest, win).max(axis=-1)
    else:
        want = win.mean(axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, equal_nan=True)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("case", [
    (3, 16, 1, 3, [1, 1, 1, 1], [1, 1], [1, 1], 32),  # direct kernel: full vectors
    (5, 13, 1, 3, [1, 1, 1, 1], [1, 1], [1, 1], 17),  # a 1-lane last vector, 13 channels
    (6, 12, 3, 3, [0, 1, 2, 1], [2, 1], [1, 2], 21),  # groups, row stride, dilation
    (4, 8, 1, 1, [1, 1, 1, 1], [1, 1], [1, 1], 9),    # 1x1 with padding (not pointwise)
    (8, 8, 8, 3, [1, 1, 1, 1], [1, 1], [1, 1], 19),   # depthwise: im2col + GEMM
    (4, 6, 2, 3, [1, 1, 1, 1], [1, 2], [1, 1], 23),   # column stride: im2col + GEMM
])
def test_conv_paths_match_onnxruntime(case: tuple[Any, ...]) -> None:
    """Conv + ReLU through the direct kernel (unit column stride, >= 4 output channels a group)
    and through im2col + GEMM, batch 1 (work split inside the image) and 3 (images split).
    case: cin, cout, group, kernel, pads, strides, dilations, width."""
    cin, cout, group, kernel, pads, strides, dilations, width = case
    x = ("x", TensorProto.FLOAT, [None, cin, 11, width])
    w, b = randn(cout, cin // group, kernel, kernel, seed=2), randn(cout, seed=3)
    conv = models.single_op("Conv", [x], [("c", TensorProto.FLOAT)], inits={"w": w, "b": b}, pads=pads,
                            strides=strides, dilations=dilations, group=group)
    conv.graph.node.append(helper.make_node("Relu", ["c"], ["y"]))
    conv.graph.output[0].name = "y"
    check_model(conv, [{"x": randn(n, cin, 11, width, seed=n)} for n in (1, 3)])


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize(("relu", "pool_attrs", "size"), [
    (True, {}, (32, 32)),               # fused on store: the CNN's first block
    (True, {}, (11, 17)),               # odd output: the last row and column are dropped
    (False, {}, (6, 35)),               # no ReLU between: still fused
    (True, {"pads": [1, 1, 1, 1]}, (9, 9)),  # padded pool: a separate MaxPool
    (True, {"strides": [1, 1]}, (8, 8)),     # overlapping windows: a separate MaxPool
])
def test_conv_then_max_pool_matches_onnxruntime(relu: bool, pool_attrs: dict[str, Any],
                                                size: tuple[int, int]) -> None:
    """A 2x2/2 MaxPool after a direct-kernel Conv (and ReLU) is applied as the conv stores."""
    h, w = size
    g = models.GraphBuilder(4)
    y = g.node("Conv", ["x", g.weight(12, 5, 3, 3), g.weight(12, scale=0.1)], pads=[1, 1, 1, 1])
    if relu:
        y = g.node("Relu", [y])
    y = g.node("MaxPool", [y], kernel_shape=[2, 2], **{"strides": [2, 2], **pool_attrs})
    model = g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 5, h, w])],
                    [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)])
    check_model(model, [{"x": randn(n, 5, h, w, seed=n)} for n in (1, 3)])


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize(("kernel", "size"), [(2, (16, 16)), (3, (9, 12)), (2, (7, 9)), (2, (5, 35))])
def test_average_then_global_pool_matches_onnxruntime(kernel: int, size: tuple[int, int]) -> None:
    """Windows that tile the plane exactly (16x16 by 2, 9x12 by 3): the GlobalAveragePool reads the
    AveragePool's input (the same mean); 7x9 drops a row and a column, so the pool runs. The
    global mean runs over planes of 35..256 elements (partial sums and a tail)."""
    h, w = size
    g = models.GraphBuilder(5)
    y = g.node("AveragePool", ["x"], kernel_shape=[kernel, kernel], strides=[kernel, kernel])
    y = g.node("GlobalAveragePool", [y])
    model = g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, h, w])],
                    [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)])
    check_model(model, [{"x": randn(n, 3, h, w, seed=n) + 3} for n in (1, 4)])


def opcodes(sess: InferenceSession) -> list[int]:
    code = [int(w) for w in next(reversed(sess._plans.values())).plan.code]
    ops, at = [], 0
    while at < len(code):
        ops.append(code[at])
        at += code[at + 1]
    return ops


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize(("relu", "kernel", "size", "fused"), [
    (True, 2, (16, 16), True),     # the CNN's second block; batch 1 splits the tiles
    (True, None, (16, 16), True),  # the GlobalAveragePool right after the conv
    (False, 3, (9, 12), True),     # windows of 3 that tile the plane
    (True, None, (5, 35), True),   # partial vectors in the tile sums
    (True, 2, (7, 9), False),      # the pool drops a row and a column: not the plane's mean
])
def test_conv_then_global_average_pool_matches_onnxruntime(relu: bool, kernel: int | None,
                                                          size: tuple[int, int], fused: bool) -> None:
    """A GlobalAveragePool (after an AveragePool that tiles the plane) on a direct-kernel Conv is
    taken as the conv stores: one sum a tile and channel, no conv output or reduction."""
    h, w = size
    g = models.GraphBuilder(6)
    y = g.node("Conv", ["x", g.weight(12, 5, 3, 3), g.weight(12, scale=0.1)], pads=[1, 1, 1, 1])
    if relu:
        y = g.node("Relu", [y])
    if kernel:
        y = g.node("AveragePool", [y], kernel_shape=[kernel, kernel], strides=[kernel, kernel])
    y = g.node("GlobalAveragePool", [y])
    model = g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 5, h, w])],
                    [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)])
    check_model(model, [{"x": randn(n, 5, h, w, seed=n)} for n in (1, 3)])
    sess = InferenceSession(model.SerializeToString())
    assert (opcodes(sess) == [OP_CONV]) == fused
