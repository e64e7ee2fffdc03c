"""Shape and data-movement operators.

Reshape/Flatten/Squeeze/Unsqueeze alias their input's storage (no instruction). Shape, Size,
Constant, ConstantOfShape and Range are always plan-time constants. Transpose, Slice, Expand,
Tile, Concat and Split are strided copies (one kernel); Gather has its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nexpo.inference._model import Node
from nexpo.inference._plan import I64, OP_COPY, OP_GATHER, Builder, Ref, Value, check_elements
from nexpo.inference._registry import (
    broadcast_shape,
    const_of,
    contiguous_strides,
    ints_of,
    invalid,
    norm_axis,
    op,
    runtime_dtype,
    unsupported,
)

__all__ = ["emit_copy", "emit_transpose"]

MAX_COPY_RANK = 8


def _prod(xs: Any) -> int:
    return int(np.prod(xs, dtype=np.int64))


def emit_copy(
    b: Builder,
    node: Node,
    src: Value,
    dst: Value,
    *,
    shape: list[int],
    sin: list[int],
    sout: list[int],
    src_offset: int = 0,
    dst_offset: int = 0,
) -> None:
    """dst[dst_offset + idx·sout] = src[src_offset + idx·sin] for every idx of ``shape``."""
    dims: list[list[int]] = []
    for d, s_in, s_out in zip(shape, sin, sout, strict=True):
        if d == 1:
            continue
        if dims and dims[-1][1] == s_in * d and dims[-1][2] == s_out * d:
            dims[-1] = [dims[-1][0] * d, s_in, s_out]
        else:
            dims.append([d, s_in, s_out])
    if len(dims) > MAX_COPY_RANK:
        raise unsupported(node, f"a copy over {len(dims)} dimensions (at most {MAX_COPY_RANK})")
    pad = [0] * (MAX_COPY_RANK - len(dims))
    size = src.dtype.itemsize
    b.emit(
        OP_COPY,
        size,
        len(dims),
        *[d[0] for d in dims],
        *pad,
        *[d[1] for d in dims],
        *pad,
        *[d[2] for d in dims],
        *pad,
        Ref(b.ref(src).storage, src_offset * size),
        Ref(b.ref(dst).storage, dst_offset * size),
    )


def emit_transpose(b: Builder, node: Node, x: Value, perm: list[int]) -> Value:
    strides = contiguous_strides(x.shape)
    shape = [x.shape[p] for p in perm]
    out = b.new(x.dtype, shape)
    emit_copy(
        b, node, x, out, shape=shape, sin=[strides[p] for p in perm], sout=contiguous_strides(tuple(shape))
    )
    return out


@op("Shape", attrs=("start", "end"))
def shape_op(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    rank = len(x.shape)
    start = int(node.attrs.get("start", 0))
    end = int(node.attrs.get("end", rank))
    return [b.const(np.asarray(x.shape[slice(start, end)], dtype=np.int64))]


@op("Size")
def size_op(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    assert ins[0] is not None
    return [b.const(np.asarray(ins[0].size, dtype=np.int64))]


@op("Reshape", attrs=("allowzero",))
def reshape(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    target = ints_of(node, ins[1], "shape")
    if not int(node.attrs.get("allowzero", 0)):
        target = [x.shape[i] if t == 0 and i < len(x.shape) else t for i, t in enumerate(target)]
    if target.count(-1) > 1 or any(t < -1 for t in target):
        raise invalid(node, f"bad target shape {target}")
    if -1 in target:
        known = _prod([t for t in target if t != -1])
        if known == 0 or x.size % known:
            raise invalid(node, f"cannot reshape {x.shape} to {target}")
        target[target.index(-1)] = x.size // known
    if _prod(target) != x.size:
        raise invalid(node, f"cannot reshape {x.shape} ({x.size} elements) to {target}")
    return [b.alias(x, target)]


@op("Flatten", attrs=("axis",))
def flatten(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    rank = len(x.shape)
    axis = int(node.attrs.get("axis", 1))
    axis = axis + rank if axis < 0 else axis  # negative axes count from the input's rank
    if not 0 <= axis <= rank:
        raise invalid(node, f"axis {node.attrs.get('axis')} is out of range for rank {rank}")
    return [b.alias(x, [_prod(x.shape[:axis]), _prod(x.shape[axis:])])]


def _axes(b: Builder, node: Node, ins: list[Value | None]) -> list[int] | None:
    if node.opset >= 13:
        return ints_of(node, ins[1], "axes") if len(ins) > 1 and ins[1] is not None else None
    return [int(a) for a in node.attrs["axes"]] if "axes" in node.attrs else None


@op("Squeeze", attrs=("axes",))
def squeeze(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    given = _axes(b, node, ins)
    rank = len(x.shape)
    axes = (
        {norm_axis(node, a, rank) for a in given}
        if given is not None
        else {d for d in range(rank) if x.shape[d] == 1}
    )
    if any(x.shape[a] != 1 for a in axes):
        raise invalid(node, f"cannot squeeze axes {sorted(axes)} of shape {x.shape}")
    return [b.alias(x, [x.shape[d] for d in range(rank) if d not in axes])]


@op("Unsqueeze", attrs=("axes",))
def unsqueeze(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    given = _axes(b, node, ins)
    if given is None:
        raise invalid(node, "axes are required")
    rank = len(x.shape) + len(given)
    axes = {norm_axis(node, a, rank) for a in given}
    if len(axes) != len(given):
        raise invalid(node, f"repeated axes {given}")
    dims = iter(x.shape)
    return [b.alias(x, [1 if d in axes else next(dims) for d in range(rank)])]


@op("Transpose", attrs=("perm",))
def transpose(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    rank = len(x.shape)
    perm = [int(p) for p in node.attrs.get("perm", range(rank - 1, -1, -1))]
    if sorted(perm) != list(range(rank)):
        raise invalid(node, f"perm {perm} is not a permutation of {rank} axes")
    if x.const is not None:
        return [b.const(np.transpose(x.const, perm))]
    runtime_dtype(node, x)
    return [emit_transpose(b, node, x, perm)]


@op("Concat", attrs=("axis",))
def concat(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    vals = [v for v in ins if v is not None]
    if not vals:
        raise invalid(node, "no inputs")
    rank = len(vals[0].shape)
    axis = norm_axis(node, int(node.attrs.get("axis", 0)), rank)
    for v in vals:
        if (
            len(v.shape) != rank
            or v.dtype != vals[0].dtype
            or any(v.shape[d] != vals[0].shape[d] for d in range(rank) if d != axis)
        ):
            raise invalid(node, f"inputs {[u.shape for u in vals]} do not concatenate on axis {axis}")
    if all(v.const is not None for v in vals):
        return [b.const(np.concatenate([v.const for v in vals if v.const is not None], axis=axis))]
    runtime_dtype(node, vals[0])
    total = sum(v.shape[axis] for v in vals)
    shape = list(vals[0].shape)
    shape[axis] = total
    out = b.new(vals[0].dtype, shape)
    outer, inner = _prod(shape[:axis]), _prod(shape[axis + 1 :])
    at = 0
    for v in vals:
        span = v.shape[axis] * inner
        emit_copy(
            b,
            node,
            v,
            out,
            shape=[outer, span],
            sin=[span, 1],
            sout=[total * inner, 1],
            dst_offset=at * inner,
        )
        at += v.shape[axis]
    return [out]


@op("Split", attrs=("axis", "split", "num_outputs"))
def split(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    axis = norm_axis(node, int(node.attrs.get("axis", 0)), len(x.shape))
    count = len(node.outputs)
    if len(ins) > 1 and ins[1] is not None:
        sizes = ints_of(node, ins[1], "split")
    elif "split" in node.attrs:
        sizes = [int(s) for s in node.attrs["split"]]
    else:
        dim = x.shape[axis]
        each = -(-dim // count)
        sizes = [min(each, max(dim - i * each, 0)) for i in range(count)]
    if len(sizes) != count or sum(sizes) != x.shape[axis] or min(sizes) < 0:
        raise invalid(node, f"split sizes {sizes} do not divide axis {axis} of {x.shape}")
    outs, at = [], 0
    outer, inner = _prod(x.shape[:axis]), _prod(x.shape[axis + 1 :])
    for s in sizes:
        shape = list(x.shape)
        shape[axis] = s
        if x.const is not None:
            outs.append(b.const(np.take(x.const, range(at, at + s), axis=axis)))
        else:
            out = b.new(x.dtype, shape)
            emit_copy(
                b,
                node,
                x,
                out,
                shape=[outer, s * inner],
                sin=[x.shape[axis] * inner, 1],
                sout=[s * inner, 1],
                src_offset=at * inner,
            )
            outs.append(out)
        at += s
    return outs


def _onnx_range(start: int, end: int, step: int, dim: int) -> range:
    """The indices Slice takes along one axis: negative starts/ends count from the end, then are
    clamped to [0, dim] (step > 0) or [0, dim-1] / [-1, dim-1] (step < 0), unlike Python's slices."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return range(min(max(start, 0), dim), min(max(end, 0), dim), step)
    return range(min(max(start, 0), dim - 1), min(max(end, -1), dim - 1), step)


@op("Slice", attrs=("starts", "ends", "axes"))
def slice_op(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    rank = len(x.shape)
    if node.opset < 10:
        starts, ends = list(node.attrs["starts"]), list(node.attrs["ends"])
        axes = list(node.attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = ints_of(node, ins[1], "starts"), ints_of(node, ins[2], "ends")
        opt = [ins[i] if len(ins) > i and ins[i] is not None else None for i in (3, 4)]
        axes = ints_of(node, opt[0], "axes") if opt[0] is not None else list(range(len(starts)))
        steps = ints_of(node, opt[1], "steps") if opt[1] is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise invalid(node, "starts, ends, axes and steps must have one nonzero entry per axis")
    ranges = [range(d) for d in x.shape]
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        d = norm_axis(node, int(a), rank)
        ranges[d] = _onnx_range(int(s), int(e), int(st), x.shape[d])
    if x.const is not None:
        index = np.ix_(*[np.asarray(r, dtype=np.intp) for r in ranges]) if rank else ()
        return [b.const(x.const[index])]
    runtime_dtype(node, x)
    if any(r.step < 0 and len(r) > 1 for r in ranges):
        raise unsupported(node, "negative steps on run-time tensors")
    strides = contiguous_strides(x.shape)
    shape = [len(r) for r in ranges]
    out = b.new(x.dtype, shape)
    if out.size:
        offset = sum(r.start * s for r, s in zip(ranges, strides, strict=True))
        emit_copy(
            b,
            node,
            x,
            out,
            shape=shape,
            sin=[abs(r.step) * s for r, s in zip(ranges, strides, strict=True)],
            sout=contiguous_strides(tuple(shape)),
            src_offset=offset,
        )
    return [out]


@op("Gather", attrs=("axis",))
def gather(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    data, idx = ins[0], ins[1]
    assert data is not None and idx is not None
    axis = norm_axis(node, int(node.attrs.get("axis", 0)), len(data.shape))
    dim = data.shape[axis]
    if idx.const is not None:
        if idx.const.size and (idx.const.min() < -dim or idx.const.max() >= dim):
            raise invalid(node, f"indices out of range for axis {axis} of size {dim}")
        if data.const is not None:
            return [b.const(np.take(data.const, idx.const.astype(np.int64), axis=axis))]
        idx = b.const(idx.const.astype(np.int64))
    if idx.dtype != I64:
        raise unsupported(node, f"run-time indices of dtype {idx.dtype} (int64 is supported)")
    runtime_dtype(node, data)
    shape = [*data.shape[:axis], *idx.shape, *data.shape[axis + 1 :]]
    out = b.new(data.dtype, shape)
    b.emit(
        OP_GATHER,
        data.dtype.itemsize,
        _prod(data.shape[:axis]),
        dim,
        _prod(data.shape[axis + 1 :]),
        idx.size,
        b.ref(data),
        b.ref(idx),
        b.ref(out),
    )
    return [out]


@op("Expand")
def expand(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    shape = broadcast_shape(node, x.shape, tuple(ints_of(node, ins[1], "shape")))
    if x.const is not None:
        return [b.const(np.broadcast_to(x.const, shape))]
    runtime_dtype(node, x)
    padded = (1,) * (len(shape) - len(x.shape)) + x.shape
    strides = contiguous_strides(padded)
    out = b.new(x.dtype, shape)
    emit_copy(
        b,
        node,
        x,
        out,
        shape=list(shape),
        sin=[0 if padded[d] == 1 else strides[d] for d in range(len(shape))],
        sout=contiguous_strides(shape),
    )
    return [out]


@op("Tile")
def tile(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = ins[0]
    assert x is not None
    reps = ints_of(node, ins[1], "repeats")
    if len(reps) != len(x.shape) or min(reps, default=0) < 0:
        raise invalid(node, f"repeats {reps} do not match rank {len(x.shape)}")
    check_elements([r * d for r, d in zip(reps, x.shape, strict=True)])
    if x.const is not None:
        return [b.const(np.tile(x.const, reps))]
    runtime_dtype(node, x)
    strides = contiguous_strides(x.shape)
    view, sin = [], []
    for r, d, s in zip(reps, x.shape, strides, strict=True):
        view += [r, d]
        sin += [0, s]
    out = b.new(x.dtype, [r * d for r, d in zip(reps, x.shape, strict=True)])
    emit_copy(b, node, x, out, shape=view, sin=sin, sout=contiguous_strides(tuple(view)))
    return [out]


@op("Constant", attrs=("value", "value_float", "value_floats", "value_int", "value_ints"))
def constant(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    a = node.attrs
    if "value" in a:
        return [b.const(a["value"])]
    if "value_float" in a or "value_floats" in a:
        return [b.const(np.asarray(a.get("value_float", a.get("value_floats")), dtype=np.float32))]
    if "value_int" in a or "value_ints" in a:
        return [b.const(np.asarray(a.get("value_int", a.get("value_ints")), dtype=np.int64))]
    raise invalid(node, "no value")


@op("ConstantOfShape", attrs=("value",))
def constant_of_shape(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    shape = ints_of(node, ins[0], "shape")
    if min(shape, default=0) < 0:
        raise invalid(node, f"bad shape {shape}")
    check_elements(shape)
    value = node.attrs.get("value", np.zeros(1, dtype=np.float32))
    return [b.const(np.full(shape, value.reshape(-1)[0], dtype=value.dtype))]


@op("Range")
def range_op(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    start, limit, delta = (
        const_of(node, v, n) for v, n in zip(ins, ("start", "limit", "delta"), strict=True)
    )
    if delta == 0:
        raise invalid(node, "delta is 0")
    count = max(int(np.ceil((limit - start) / delta)), 0)
    check_elements([count])
    return [b.const(np.arange(count, dtype=start.dtype) * delta + start)]
