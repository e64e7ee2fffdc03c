"""Neural-network operators: softmax, normalisations, Conv (BatchNorm and ReLU folded in), pooling."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from nexpo.errors import InvalidModel, UnsupportedModel
from nexpo.inference._model import Node
from nexpo.inference._plan import (
    F32,
    OP_AFFINE,
    OP_CONV,
    OP_INSTNORM,
    OP_LAYERNORM,
    OP_POOL,
    OP_SOFTMAX,
    Builder,
    Value,
)
from nexpo.inference._registry import const_of, invalid, norm_axis, op, require, unsupported

__all__: list[str] = []


def _prod(xs: Any) -> int:
    return int(np.prod(xs, dtype=np.int64))


@op("Softmax", "LogSoftmax", attrs=("axis",))
def softmax(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "input")
    rank = len(x.shape)
    legacy = node.opset < 13  # before 13: softmax over the input flattened to 2-D at `axis`
    axis = norm_axis(node, int(node.attrs.get("axis", 1 if legacy else -1)), rank)
    outer = _prod(x.shape[:axis])
    span = _prod(x.shape[axis:]) if legacy else (x.shape[axis] if rank else 1)
    inner = 1 if legacy else _prod(x.shape[axis + 1 :])
    out = b.new(F32, x.shape)
    b.emit(OP_SOFTMAX, outer, span, inner, int(node.op_type == "LogSoftmax"), b.ref(x), b.ref(out))
    return [out]


def _flat_param(node: Node, v: Value | None, shape: tuple[int, ...], what: str) -> np.ndarray[Any, Any]:
    arr = const_of(node, v, what).astype(np.float32)
    try:
        return np.ascontiguousarray(np.broadcast_to(arr, shape).reshape(-1))
    except ValueError:
        raise invalid(node, f"{what} of shape {arr.shape} does not fit {shape}") from None


@op("LayerNormalization", attrs=("axis", "epsilon", "stash_type"))
def layer_norm(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    return [emit_layer_norm(b, node, require(node, ins[0], (F32,), "X"), ins)]


def emit_layer_norm(
    b: Builder, node: Node, x: Value, ins: list[Value | None], residual: Value | None = None
) -> Value:
    """LayerNormalization of x (+ residual, a fused Add of two tensors of x's shape)."""
    if any(node.outputs[1:]):
        raise unsupported(node, "the Mean/InvStdDev outputs (training) are not supported")
    axis = norm_axis(node, int(node.attrs.get("axis", -1)), len(x.shape))
    eps = float(node.attrs.get("epsilon", 1e-5))
    tail = x.shape[axis:]
    scale = b.const(_flat_param(node, ins[1], tail, "Scale"))
    bias = None
    if len(ins) > 2 and ins[2] is not None:
        bias = b.const(_flat_param(node, ins[2], tail, "B"))
    out = b.new(F32, x.shape)
    b.emit(
        OP_LAYERNORM,
        _prod(x.shape[:axis]),
        _prod(tail),
        eps,
        b.ref(x),
        None if residual is None else b.ref(residual),
        b.ref(scale),
        None if bias is None else b.ref(bias),
        b.ref(out),
    )
    return out


def _channels(node: Node, x: Value) -> tuple[int, int, int]:
    if len(x.shape) < 2:
        raise invalid(node, f"input of shape {x.shape} has no channel axis")
    return x.shape[0], x.shape[1], _prod(x.shape[2:])


def _batchnorm_affine(node: Node, ins: list[Value | None], c: int) -> tuple[Any, Any]:
    eps = float(node.attrs.get("epsilon", 1e-5))
    scale, bias, mean, var = (
        const_of(node, ins[i], n).astype(np.float64).reshape(-1)
        for i, n in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var"))
    )
    if not all(p.shape == (c,) for p in (scale, bias, mean, var)):
        raise invalid(node, f"parameters must have {c} elements (one per channel)")
    s = scale / np.sqrt(var + eps)
    return s, bias - mean * s


def _check_batchnorm(node: Node) -> None:
    if int(node.attrs.get("training_mode", 0)) or any(node.outputs[1:]):
        raise unsupported(node, "training mode is not supported")
    if int(node.attrs.get("spatial", 1)) != 1:
        raise unsupported(node, "spatial=0 is not supported")


@op("BatchNormalization", attrs=("epsilon", "momentum", "training_mode", "spatial", "is_test"))
def batch_norm(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    _check_batchnorm(node)
    x = require(node, ins[0], (F32,), "X")
    n, c, spatial = _channels(node, x)
    s, t = _batchnorm_affine(node, ins, c)
    out = b.new(F32, x.shape)
    b.emit(OP_AFFINE, n, c, spatial, b.ref(x), b.ref(b.const(s, F32)), b.ref(b.const(t, F32)), b.ref(out))
    return [out]


@op("InstanceNormalization", attrs=("epsilon",))
def instance_norm(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "input")
    n, c, spatial = _channels(node, x)
    scale = b.const(_flat_param(node, ins[1], (c,), "scale"))
    bias = b.const(_flat_param(node, ins[2], (c,), "B"))
    out = b.new(F32, x.shape)
    b.emit(
        OP_INSTNORM,
        n,
        c,
        spatial,
        float(node.attrs.get("epsilon", 1e-5)),
        b.ref(x),
        b.ref(scale),
        b.ref(bias),
        b.ref(out),
    )
    return [out]


def _window(node: Node, x: Value, kernel: list[int]) -> tuple[list[int], list[int], list[int], list[int]]:
    """(out dims, strides, pads begin, dilations) of a 2-D window op, auto_pad resolved."""
    if len(x.shape) != 4 or len(kernel) != 2:
        raise unsupported(node, f"only 1-D and 2-D windows are supported (input {x.shape})")
    if int(node.attrs.get("ceil_mode", 0)):
        raise unsupported(node, "ceil_mode=1 is not supported")
    strides = [int(s) for s in node.attrs.get("strides", [1, 1])]
    dil = [int(d) for d in node.attrs.get("dilations", [1, 1])]
    pads = [int(p) for p in node.attrs.get("pads", [0, 0, 0, 0])]
    if len(strides) != 2 or len(dil) != 2 or len(pads) != 4 or min(strides + dil) < 1 or min(pads) < 0:
        raise invalid(node, "strides/dilations/pads do not describe a 2-D window")
    auto = node.attrs.get("auto_pad", "NOTSET")
    size = x.shape[2:]
    eff = [(kernel[i] - 1) * dil[i] + 1 for i in range(2)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if max(dil) > 1:  # onnxruntime refuses it too: no reference to agree with
            raise unsupported(node, f"auto_pad={auto} with dilations {dil}")
        outs = [math.ceil(size[i] / strides[i]) for i in range(2)]
        total = [max(0, (outs[i] - 1) * strides[i] + eff[i] - size[i]) for i in range(2)]
        small = [t // 2 for t in total]
        begin = [t - s for t, s in zip(total, small, strict=True)] if auto == "SAME_LOWER" else small
        return outs, strides, begin, dil
    if auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto != "NOTSET":
        raise unsupported(node, f"auto_pad={auto!r}")
    outs = [(size[i] + pads[i] + pads[i + 2] - eff[i]) // strides[i] + 1 for i in range(2)]
    if min(outs) < 1:
        raise invalid(node, f"the window is larger than the padded input {x.shape}")
    return outs, strides, pads[:2], dil


def _fold_batchnorm(b: Builder, node: Node, w: Any, bias: Any) -> tuple[Any, Any, list[Node]]:
    nxt = b.sole_consumer(node.outputs[0])
    if nxt is None or nxt.op_type != "BatchNormalization":
        return w, bias, []
    ins = [b.values.get(name) if name else None for name in nxt.inputs]
    if any(v is None or v.const is None for v in ins[1:5]):
        return w, bias, []
    _check_batchnorm(nxt)
    s, t = _batchnorm_affine(nxt, ins, w.shape[0])
    w2 = (w.astype(np.float64) * s[:, None, None, None]).astype(np.float32)
    b2 = ((bias if bias is not None else 0.0) * s + t).astype(np.float32)
    return w2, b2, [nxt]


def _lift_1d(b: Builder, node: Node, x: Value) -> tuple[Node, Value]:
    """A 1-D window op (N, C, L) as the 2-D one on (N, C, 1, L): attributes get a unit first axis."""
    if len(x.shape) != 3:
        return node, x
    a = dict(node.attrs)
    for key, unit in (("strides", 1), ("dilations", 1), ("kernel_shape", 1)):
        if key in a:
            a[key] = [unit, *a[key]]
    if "pads" in a:
        pads = list(a["pads"])
        if len(pads) != 2:
            raise invalid(node, f"pads {pads} do not describe a 1-D window")
        a["pads"] = [0, pads[0], 0, pads[1]]
    return replace(node, attrs=a), b.alias(x, (x.shape[0], x.shape[1], 1, x.shape[2]))


PACKED_BLOCK = 8  # output channels a block of the direct kernel's weights (kernels/conv_direct.nim)
POOL_NONE, POOL_MAX_2X2, POOL_MEAN = range(3)  # a pooling the direct kernel fuses (ConvPool)


def _direct_applies(groups: int, cout: int, geometry: tuple[int, ...]) -> bool:
    """The direct kernel's domain, as conv_shape.nim's directApplies (which checks the plan)."""
    h, w, kh, kw, oh, ow, sh, sw, pt, pl = geometry
    pointwise = kh == kw == 1 and sh == sw == 1 and pt == pl == 0 and (oh, ow) == (h, w)
    return sw == 1 and not pointwise and cout // groups >= 4


def _pack_direct(w: Any, groups: int) -> Any:
    """OIHW weights as the direct kernel reads them: per group, blocks of PACKED_BLOCK output
    channels, each (taps x PACKED_BLOCK) with zero channels past the group's end."""
    cout, cin_g, kh, kw = w.shape
    cout_g = cout // groups
    taps = cin_g * kh * kw
    blocks = -(-cout_g // PACKED_BLOCK)
    padded = np.zeros((groups, blocks * PACKED_BLOCK, taps), np.float32)
    padded[:, :cout_g] = w.reshape(groups, cout_g, taps)
    return np.ascontiguousarray(padded.reshape(groups, blocks, PACKED_BLOCK, taps).transpose(0, 1, 3, 2))


# Winograd F(2x2, 3x3) (kernels/conv_winograd.nim) for 3x3 convolutions with at least this many
# input channels: it does 16 multiply-adds an input channel and 2x2 outputs where the direct
# kernel does 36, but transforms every input and output tile, which fewer channels do not repay.
# Its outputs differ from the direct sum by rounding only (a non-finite input spreads to the
# whole 2x2 tile whose 4x4 patch holds it).
WINOGRAD_MIN_CIN = 8
# Largest transformed input (16 floats a tile and input channel, one image) it takes: the items
# read it once a block of 8 output channels, from L2 while it fits (direct reads the input in place).
WINOGRAD_MAX_INPUT_BYTES = 1 << 19
_WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def _winograd_applies(groups: int, cin: int, cout: int, geometry: tuple[int, ...]) -> bool:
    """The planner's choice within conv_winograd.nim's winogradApplies (which checks the plan)."""
    kh, kw, oh, ow, sh, sw, dh, dw = geometry
    return (
        groups == 1 and cin >= WINOGRAD_MIN_CIN and cout >= 4
        and (kh, kw, sh, sw, dh, dw) == (3, 3, 1, 1, 1, 1)
        and oh >= 2 and ow >= 2 and oh % 2 == 0 and ow % 2 == 0
        and 16 * cin * (oh // 2) * (ow // 2) * 4 <= WINOGRAD_MAX_INPUT_BYTES
    )


def _pack_winograd(w: Any) -> Any:
    """OIHW 3x3 weights transformed (G g G^T, in float64) as conv_winograd.nim reads them:
    [block of PACKED_BLOCK output channels][16 positions][input channel][PACKED_BLOCK]."""
    cout, cin = w.shape[:2]
    u = np.einsum("ia,ocab,kb->ocik", _WINOGRAD_G, w.astype(np.float64), _WINOGRAD_G)
    blocks = -(-cout // PACKED_BLOCK)
    padded = np.zeros((blocks * PACKED_BLOCK, cin, 16), np.float64)
    padded[:cout] = u.reshape(cout, cin, 16)
    return np.ascontiguousarray(
        padded.reshape(blocks, PACKED_BLOCK, cin, 16).transpose(0, 3, 2, 1), dtype=np.float32)


def _fusable_max_pool(nxt: Node | None) -> bool:
    """A MaxPool the direct kernel can apply on store: a 2x2 window of stride 2, no padding."""
    if nxt is None or nxt.op_type != "MaxPool" or any(nxt.outputs[1:]):
        return False
    a = nxt.attrs
    return (
        list(a.get("kernel_shape", [])) == [2, 2]
        and list(a.get("strides", [1, 1])) == [2, 2]
        and list(a.get("dilations", [1, 1])) == [1, 1]
        and list(a.get("pads", [0, 0, 0, 0])) == [0, 0, 0, 0]
        and a.get("auto_pad", "NOTSET") in ("NOTSET", "VALID")
        and not int(a.get("ceil_mode", 0))
        and int(a.get("storage_order", 0)) == 0
    )


def _fusable_mean(b: Builder, nxt: Node | None, shape: tuple[int, ...]) -> list[Node]:
    """A GlobalAveragePool the direct kernel can take on store (one sum a tile and channel),
    possibly after an AveragePool whose windows tile the plane (the mean of their means is the
    plane's mean, as `pool` below): the nodes to fuse, or none."""
    if nxt is not None and nxt.op_type == "AveragePool" and len(nxt.outputs) == 1:
        kernel = [int(k) for k in nxt.attrs.get("kernel_shape", [])]
        try:
            (oh, ow), strides, pads, dil = _window(nxt, Value(F32, shape), kernel)
        except (InvalidModel, UnsupportedModel):
            return []
        tiles = shape[2:] == (oh * strides[0], ow * strides[1])
        if strides != kernel or dil != [1, 1] or pads != [0, 0] or not tiles:
            return []
        after = b.sole_consumer(nxt.outputs[0])
        return [nxt, after] if after is not None and after.op_type == "GlobalAveragePool" else []
    return [nxt] if nxt is not None and nxt.op_type == "GlobalAveragePool" else []


@op("Conv", attrs=("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"))
def conv(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "X")
    wv = require(node, ins[1], (F32,), "W")
    w = const_of(node, wv, "W")
    one_d = len(x.shape) == 3 and w.ndim == 3
    if one_d:
        node, x = _lift_1d(b, node, x)
        w = w[:, :, None, :]
    bias = None
    if len(ins) > 2 and ins[2] is not None:
        bias = const_of(node, ins[2], "B").astype(np.float32).reshape(-1)
    groups = int(node.attrs.get("group", 1))
    if w.ndim != 4:
        raise unsupported(node, f"only 1-D and 2-D convolutions are supported (W is {w.shape})")
    cout, cin_g, kh, kw = (int(d) for d in w.shape)
    if "kernel_shape" in node.attrs and list(node.attrs["kernel_shape"]) != [kh, kw]:
        raise invalid(node, "kernel_shape does not match W")
    if len(x.shape) != 4 or groups < 1 or x.shape[1] != cin_g * groups or cout % groups:
        raise invalid(node, f"X {x.shape}, W {w.shape} and group={groups} do not fit together")
    if bias is not None and bias.shape != (cout,):
        raise invalid(node, f"B must have {cout} elements")
    (oh, ow), (sh, sw), (pt, pl), (dh, dw) = _window(node, x, [kh, kw])
    w, bias, fused = _fold_batchnorm(b, node, w, bias)
    relu = False
    last = fused[-1].outputs[0] if fused else node.outputs[0]
    nxt = b.sole_consumer(last)
    if nxt is not None and nxt.op_type == "Relu":
        relu = True
        fused.append(nxt)
    n, cin, h, wd = x.shape
    winograd = not one_d and _winograd_applies(groups, cin, cout, (kh, kw, oh, ow, sh, sw, dh, dw))
    direct = winograd or _direct_applies(groups, cout, (h, wd, kh, kw, oh, ow, sh, sw, pt, pl))
    if winograd:
        w = _pack_winograd(w)
    else:
        w = _pack_direct(w, groups) if direct else np.ascontiguousarray(w, dtype=np.float32)
    after = b.sole_consumer(fused[-1].outputs[0] if fused else node.outputs[0])
    # the direct kernel pools on store (POOL_*: kernels/conv_shape.nim's ConvPool): no conv output written
    pool, out_shape = POOL_NONE, (n, cout, oh, ow)
    means = _fusable_mean(b, after, out_shape) if direct and not one_d else []
    if direct and min(oh, ow) >= 2 and _fusable_max_pool(after) and after is not None:
        pool, out_shape = POOL_MAX_2X2, (n, cout, oh // 2, ow // 2)
        fused.append(after)
    elif means:
        pool, out_shape = POOL_MEAN, (n, cout, 1, 1)
        fused.extend(means)
    out = b.new(F32, out_shape)
    b.emit(
        OP_CONV,
        n,
        cin,
        h,
        wd,
        cout,
        kh,
        kw,
        oh,
        ow,
        sh,
        sw,
        pt,
        pl,
        dh,
        dw,
        groups,
        int(relu),
        2 if winograd else int(direct),  # the weights' layout: OIHW, direct blocks, Winograd
        pool,
        b.ref(x),
        b.ref(b.const(np.asarray(w, dtype=np.float32))),
        None if bias is None else b.ref(b.const(bias, F32)),
        b.ref(out),
    )
    if one_d:
        out = b.alias(out, (n, cout, ow))
    for f in fused:
        b.fuse(f, out)
    return [out]


@op(
    "MaxPool",
    "AveragePool",
    attrs=(
        "auto_pad",
        "ceil_mode",
        "count_include_pad",
        "dilations",
        "kernel_shape",
        "pads",
        "strides",
        "storage_order",
    ),
)
def pool(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "X")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise unsupported(node, "the Indices output is not supported")
    one_d = len(x.shape) == 3
    node, x = _lift_1d(b, node, x)
    kernel = [int(k) for k in node.attrs.get("kernel_shape", [])]
    (oh, ow), (sh, sw), (pt, pl), (dh, dw) = _window(node, x, kernel)
    n, c, h, w = x.shape
    is_max = node.op_type == "MaxPool"
    nxt = b.sole_consumer(node.outputs[0])
    tiles = [sh, sw] == kernel and [dh, dw] == [1, 1] and (h, w) == (oh * sh, ow * sw) and pt == pl == 0
    if not is_max and not one_d and tiles and nxt is not None and nxt.op_type == "GlobalAveragePool":
        # windows of equal size that tile the plane: the mean of their means is the plane's
        # mean, so the GlobalAveragePool reads the input and this pass is skipped
        return [x]
    out = b.new(F32, (n, c, oh, ow))
    b.emit(
        OP_POOL,
        0 if is_max else 1,
        int(node.attrs.get("count_include_pad", 0)),
        n * c,
        h,
        w,
        kernel[0],
        kernel[1],
        oh,
        ow,
        sh,
        sw,
        pt,
        pl,
        dh,
        dw,
        b.ref(x),
        b.ref(out),
    )
    return [b.alias(out, (n, c, ow)) if one_d else out]
