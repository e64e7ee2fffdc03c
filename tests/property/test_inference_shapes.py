"""Differential tests of the shape and data-movement operators against onnxruntime; see
test_inference_ops.py for the harness."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

pytest.importorskip("onnxruntime")

from test_inference_ops import SEED, SETTINGS, broadcast_pair, check, one_node, randn

SHAPE = st.lists(st.integers(1, 5), min_size=1, max_size=4)


@SETTINGS
@given(shape=SHAPE, data=st.data(), const=st.booleans(), seed=SEED)
def test_slice(shape: list[int], data: st.DataObject, const: bool, seed: int) -> None:
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                              unique_by=lambda a: a % len(shape)))
    starts = [data.draw(st.integers(-7, 7)) for _ in axes]
    ends = [data.draw(st.integers(-7, 7)) for _ in axes]
    steps = [data.draw(st.sampled_from([1, 2, 3, -1] if const else [1, 2, 3])) for _ in axes]
    args = [np.array(v, dtype=np.int64) for v in (starts, ends, axes, steps)]
    check(*one_node("Slice", [randn(np.random.default_rng(seed), shape), *args], {0, 1, 2, 3, 4} if const
                    else {1, 2, 3, 4}))


@SETTINGS
@given(shape=SHAPE, data=st.data(), count=st.integers(1, 3), const=st.sampled_from([(), (0,), (1,)]),
       seed=SEED)
def test_concat(shape: list[int], data: st.DataObject, count: int, const: tuple[int, ...], seed: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(count):
        s = list(shape)
        s[axis] = data.draw(st.integers(0, 3))
        parts.append(randn(rng, s))
    check(*one_node("Concat", parts, set(const), axis=axis))


@SETTINGS
@given(shape=SHAPE, data=st.data(), seed=SEED)
def test_split(shape: list[int], data: st.DataObject, seed: int) -> None:
    axis = data.draw(st.integers(0, len(shape) - 1))
    dim = shape[axis]
    cut = sorted(data.draw(st.lists(st.integers(0, dim), max_size=2)))
    sizes = np.diff([0, *cut, dim]).astype(np.int64)
    check(*one_node("Split", [randn(np.random.default_rng(seed), shape), sizes], {1}, n_out=len(sizes),
                    axis=axis))


@SETTINGS
@given(shape=SHAPE, data=st.data(), idx_shape=st.lists(st.integers(1, 3), max_size=2),
       const=st.sampled_from([(), (1,), (0, 1)]), seed=SEED)
def test_gather(shape: list[int], data: st.DataObject, idx_shape: list[int], const: tuple[int, ...],
                seed: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    dim = shape[axis]
    idx = rng.integers(-dim, dim, idx_shape).astype(np.int64)
    check(*one_node("Gather", [randn(rng, shape), idx], set(const), axis=axis))


def test_gather_out_of_range_index_is_an_error_not_a_read() -> None:
    from nexpo.inference import InferenceSession

    model, feed = one_node("Gather", [randn(np.random.default_rng(0), (4, 3)), np.array([1, 4])], axis=0)
    with pytest.raises(ValueError, match="index 4 is out of range"):
        InferenceSession(model).run(None, feed)


@SETTINGS
@given(shapes=broadcast_pair(), seed=SEED)
def test_expand_and_where(shapes: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    target = np.array(np.broadcast_shapes(*shapes), dtype=np.int64)
    check(*one_node("Expand", [randn(rng, shapes[0]), target], {1}))
    cond = rng.random(shapes[0]) < 0.5
    check(*one_node("Where", [cond, randn(rng, shapes[1]), randn(rng, shapes[0])]))
    check(*one_node("Where", [cond, rng.integers(0, 9, shapes[1]), rng.integers(0, 9, shapes[0])]))


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data(), seed=SEED)
def test_tile(shape: list[int], data: st.DataObject, seed: int) -> None:
    reps = np.array([data.draw(st.integers(1, 3)) for _ in shape], dtype=np.int64)
    check(*one_node("Tile", [randn(np.random.default_rng(seed), shape), reps], {1}))


@SETTINGS
@given(src=st.sampled_from(["f", "i", "b"]), dst=st.sampled_from([1, 7, 9]), shape=SHAPE, seed=SEED)
def test_cast(src: str, dst: int, shape: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = {"f": (randn(rng, shape) * 5).round(1), "i": rng.integers(-3, 3, shape),
         "b": rng.random(shape) < 0.5}[src]
    check(*one_node("Cast", [x], to=dst))


@SETTINGS
@given(shape=SHAPE, data=st.data(), seed=SEED)
def test_views_reshape_flatten_squeeze_unsqueeze(shape: list[int], data: st.DataObject, seed: int) -> None:
    x = randn(np.random.default_rng(seed), shape)
    target = list(shape)
    target[data.draw(st.integers(0, len(shape) - 1))] = -1
    if data.draw(st.booleans()):
        target[0] = 0
    check(*one_node("Reshape", [x, np.array(target, dtype=np.int64)], {1}))
    check(*one_node("Flatten", [x], axis=data.draw(st.integers(-len(shape), len(shape)))))
    ones = [i for i, d in enumerate(shape) if d == 1]
    check(*one_node("Squeeze", [x, np.array(ones, dtype=np.int64)], {1}))
    check(*one_node("Unsqueeze", [x, np.array([0, len(shape) + 1], dtype=np.int64)], {1}))


@SETTINGS
@given(shape=SHAPE, seed=SEED)
def test_folded_shape_ops(shape: list[int], seed: int) -> None:
    x = randn(np.random.default_rng(seed), shape)
    check(*one_node("Shape", [x]))
    check(*one_node("Size", [x]))
    check(*one_node("ConstantOfShape", [np.array(shape, dtype=np.int64)], {0}))
    start, limit, delta = (np.array(v, dtype=np.int64) for v in (shape[0], 17, len(shape)))
    check(*one_node("Range", [start, limit, delta], {0, 1, 2}))
    assume(True)
