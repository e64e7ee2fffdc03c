"""The native executor refuses malformed plans with an error (never a read or write outside the
buffers it was given), and the planner lays out and reuses the arena."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")

import _inference_models as models

from nexpo import _native
from nexpo.inference import InferenceSession
from nexpo.inference._plan import OP_CONV, OP_COPY, OP_GATHER, OP_UNARY, f64_word


def run_plan(words: list[int], *buffers: Any) -> None:
    ffi = _native.ffi
    code = np.asarray(words, dtype=np.int64)
    bases = ffi.new("void *[]", len(buffers))
    sizes = ffi.new("size_t[]", len(buffers))
    keep = []
    for i, b in enumerate(buffers):
        keep.append(ffi.from_buffer("uint8_t[]", b))
        bases[i], sizes[i] = keep[-1], b.nbytes
    _native.check(_native.lib.nexpo_infer_run(ffi.from_buffer("int64_t[]", code), len(code), bases, sizes,
                                              len(buffers)))


def unary(n: int, src: tuple[int, int, int], dst: tuple[int, int, int]) -> list[int]:
    body = [10, n, f64_word(0), f64_word(0), *src, *dst]  # relu
    return [OP_UNARY, len(body) + 2, *body]


def test_a_valid_instruction_runs() -> None:
    x = np.array([-1, 2, -3, 4], dtype=np.float32)
    out = np.zeros(4, dtype=np.float32)
    run_plan(unary(4, (0, 0, 16), (1, 0, 16)), x, out)
    assert out.tolist() == [0, 2, 0, 4]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (unary(5, (0, 0, 16), (1, 0, 16)), "needs 20 bytes"),
        (unary(4, (0, 8, 16), (1, 0, 16)), "outside buffer 0"),
        (unary(4, (0, 0, 16), (7, 0, 16)), "no buffer space 7"),
        (unary(4, (0, 2, 8), (1, 0, 16)), "not aligned|outside"),
        (unary(-1, (0, 0, 16), (1, 0, 16)), "negative n"),
        (unary(4, (0, 0, 16), (1, 0, 16))[:-2], "truncated|bad instruction"),
        ([99, 2], "bad instruction"),
        ([OP_UNARY, 1000], "bad instruction"),
        ([OP_UNARY, 13, *unary(4, (0, 0, 16), (1, 0, 16))[2:], 0], "extra words"),
        ([OP_COPY, 2 + 2 + 24 + 6, 4, 9, *([0] * 24), 0, 0, 16, 1, 0, 16], "bad rank"),
        ([OP_COPY, 2 + 2 + 24 + 6, 4, 1, 5, *([0] * 7), 1, *([0] * 7), 1, *([0] * 7), 0, 0, 16, 1, 0, 16],
         "needs 20 bytes"),
        ([OP_COPY, 2 + 2 + 24 + 6, 4, 2, -2, -2, *([0] * 6), 1, 1, *([0] * 6), 1, 1, *([0] * 6),
          0, 0, 16, 1, 0, 16], "negative dimension"),
        ([OP_GATHER, 2 + 5 + 9, 4, 1, 4, 1, 1, 0, 0, 16, 2, 0, 8, 1, 0, 4], "index 9 is out of range"),
    ],
)
def test_malformed_plans_are_errors(words: list[int], message: str) -> None:
    x = np.array([-1, 2, -3, 4], dtype=np.float32)
    out = np.zeros(4, dtype=np.float32)
    idx = np.array([9], dtype=np.int64)
    with pytest.raises(ValueError, match=message):
        run_plan(words, x, out, idx)


def conv_1x1(sw: int, packed: int, pool: int) -> list[int]:
    """A 1x2 input, 4 -> 4 channels' 1x1 conv with column stride sw, the weight layout word
    (0 OIHW, 1 direct, 2 Winograd) and the fused pool."""
    geometry = [1, 4, 1, 2, 4, 1, 1, 1, 2 // sw, 1, sw, 0, 0, 1, 1, 1]  # n cin h w cout kh kw oh ow ...
    body = [*geometry, 0, packed, pool, 0, 0, 32, 1, 0, 128, -1, 0, 0, 2, 0, 32]
    return [OP_CONV, len(body) + 2, *body]


def conv_3x3_mean(oh: int, ow: int) -> list[int]:
    """A 4x4 input, 4 -> 4 channels' 3x3 conv (packed) with a fused mean of a claimed oh x ow plane."""
    geometry = [1, 4, 4, 4, 4, 3, 3, oh, ow, 1, 1, 1, 1, 1, 1, 1]
    body = [*geometry, 0, 1, 2, 0, 0, 256, 1, 0, 1152, -1, 0, 0, 2, 0, 16]
    return [OP_CONV, len(body) + 2, *body]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (conv_1x1(2, 1, 0), "packed weights for a shape the direct kernel does not take"),
        (conv_1x1(1, 0, 1), "a fused pool needs packed weights"),
        (conv_1x1(1, 0, 2), "a fused pool needs packed weights"),
        (conv_1x1(1, 2, 0), "Winograd weights for a shape the Winograd kernel does not take"),
        (conv_1x1(1, 3, 0), "bad weight layout 3"),
        (conv_1x1(1, -1, 0), "bad weight layout -1"),
        (conv_1x1(1, 0, 3), "bad fused pool 3"),
        (conv_1x1(1, 0, -1), "bad fused pool -1"),
        (conv_3x3_mean(1 << 20, 1 << 20), "fused mean's planes are empty or too large"),
        (conv_3x3_mean(0, 4), "fused mean's planes are empty or too large"),
    ],
)
def test_malformed_conv_flags_are_errors(words: list[int], message: str) -> None:
    x, w, out = (np.zeros(n, dtype=np.float32) for n in (64, 288, 8))
    with pytest.raises(ValueError, match=message):
        run_plan(words, x, w, out)


def test_arena_is_reused_across_layers() -> None:
    sess = InferenceSession(models.mlp(dims=(64, 256, 256, 256, 256, 10)).SerializeToString())
    sess.run(None, {"x": np.zeros((8, 64), dtype=np.float32)})
    plan = next(reversed(sess._plans.values())).plan
    one_layer = 8 * 256 * 4
    # five intermediates of one_layer bytes each, at most two alive at a time
    assert plan.arena_bytes <= 2 * one_layer + 8 * 10 * 4 + 256
