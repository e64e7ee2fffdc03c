"""Conv through the Winograd F(2x2, 3x3) kernel (kernels/conv_winograd.nim): 3x3, unit stride and
dilation, one group, even output sizes and at least WINOGRAD_MIN_CIN input channels; against
onnxruntime on every ISA path, with and without the fused pools, batch 1 (inputs and tiles split
across threads) and batch > 1 (images split), and the shapes that stay on the direct kernel."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import _inference_models as models  # noqa: E402
from onnx import ModelProto, TensorProto, helper  # noqa: E402

import nexpo  # noqa: E402
from nexpo.inference import InferenceSession  # noqa: E402
from nexpo.inference._ops_nn import WINOGRAD_MIN_CIN  # noqa: E402
from nexpo.inference._plan import OP_CONV  # noqa: E402

LAYOUT_WORD = 17  # of a conv instruction's body: 0 OIHW, 1 the direct kernel's, 2 Winograd


def randn(*shape: int, seed: int = 1) -> Any:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def check(model: ModelProto, feeds: list[dict[str, Any]]) -> InferenceSession:
    sess = InferenceSession(model.SerializeToString())
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for feed in feeds:
        (got,), (want,) = sess.run(None, feed), ref.run(None, feed)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * (1 + float(np.abs(want).max())))
    return sess


def conv_layouts(sess: InferenceSession) -> list[int]:
    code = [int(w) for w in next(reversed(sess._plans.values())).plan.code]
    layouts, at = [], 0
    while at < len(code):
        if code[at] == OP_CONV:
            layouts.append(code[at + 2 + LAYOUT_WORD])
        at += code[at + 1]
    return layouts


def conv_model(cin: int, cout: int, size: tuple[int, int], pads: list[int], *, relu: bool,
               after: str | None) -> ModelProto:
    g = models.GraphBuilder(7)
    y = g.node("Conv", ["x", g.weight(cout, cin, 3, 3), g.weight(cout, scale=0.1)], pads=pads)
    if relu:
        y = g.node("Relu", [y])
    if after == "max":
        y = g.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    elif after == "mean":
        y = g.node("GlobalAveragePool", [y])
    return g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", cin, *size])],
                   [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)])


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("after", [None, "max", "mean"])
@pytest.mark.parametrize(("cin", "cout", "size", "pads"), [
    (16, 32, (16, 16), [1, 1, 1, 1]),  # the benchmark CNN's second conv
    (8, 13, (10, 14), [1, 1, 1, 1]),   # 35 tiles: a partial chunk; a partial channel block
    (9, 4, (9, 11), [2, 1, 1, 2]),     # uneven pads, odd input sizes, even outputs
    (12, 20, (6, 6), [0, 0, 0, 0]),    # no padding: 4x4 outputs
])
def test_winograd_conv_matches_onnxruntime(cin: int, cout: int, size: tuple[int, int],
                                           pads: list[int], after: str | None) -> None:
    model = conv_model(cin, cout, size, pads, relu=after != "mean", after=after)
    sess = check(model, [{"x": randn(n, cin, *size, seed=n)} for n in (1, 3)])
    assert conv_layouts(sess) == [2]


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_winograd_splits_batch_one_across_threads(threads: int) -> None:
    """One image: the input channels' transforms, then the (channel block, tiles) items, are
    split between the threads; more images: the images are."""
    model = conv_model(24, 40, (20, 18), [1, 1, 1, 1], relu=True, after="mean")
    before = nexpo.get_num_threads()
    nexpo.set_num_threads(threads)
    try:
        check(model, [{"x": randn(n, 24, 20, 18, seed=n)} for n in (1, 2, 5)])
    finally:
        nexpo.set_num_threads(before)


@pytest.mark.parametrize(("cin", "size", "attrs"), [
    (WINOGRAD_MIN_CIN - 1, (16, 16), {}),         # too few input channels to repay the transforms
    (16, (15, 16), {}),                           # an odd output height
    (16, (16, 16), {"strides": [2, 1]}),          # a row stride
    (64, (66, 66), {}),                           # a transformed input larger than L2's half
    (16, (16, 16), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
])
def test_other_shapes_stay_on_the_direct_kernel(cin: int, size: tuple[int, int],
                                                attrs: dict[str, Any]) -> None:
    g = models.GraphBuilder(8)
    y = g.node("Conv", ["x", g.weight(8, cin, 3, 3)], **{"pads": [1, 1, 1, 1], **attrs})
    model = g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", cin, *size])],
                    [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)])
    sess = check(model, [{"x": randn(2, cin, *size)}])
    assert conv_layouts(sess) == [1]


def test_benchmark_cnn_takes_winograd_for_its_second_conv_only() -> None:
    sess = check(models.cnn(), [{"x": randn(2, 3, 32, 32)}])
    assert conv_layouts(sess) == [1, 2]
