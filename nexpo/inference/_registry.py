"""The operator registry (handler + the attributes it understands) and helpers handlers share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nexpo.errors import InvalidModel, UnsupportedModel
from nexpo.inference._model import Node
from nexpo.inference._plan import BOOL, F32, I64, Builder, Handler, Value

__all__ = ["OPS", "broadcast_strides", "check_node", "const_of", "contiguous_strides", "op"]

MAX_BROADCAST_RANK = 6
HINTS = {"ZipMap": " (it outputs maps, not tensors: convert with options={'zipmap': False})"}


@dataclass(frozen=True)
class OpSpec:
    handler: Handler
    attrs: frozenset[str]


OPS: dict[tuple[str, str], OpSpec] = {}


def op(*names: str, attrs: tuple[str, ...] = (), domain: str = "") -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            OPS[(domain, name)] = OpSpec(fn, frozenset(attrs))
        return fn

    return register


def check_node(node: Node) -> None:
    spec = OPS.get((node.domain, node.op_type))
    if spec is None:
        where = f" in domain {node.domain!r}" if node.domain else ""
        hint = HINTS.get(node.op_type, "")
        raise UnsupportedModel(f"{node.describe()}: operator {node.op_type}{where} is not supported{hint}")
    unknown = sorted(set(node.attrs) - spec.attrs)
    if unknown:
        raise UnsupportedModel(f"{node.describe()}: unsupported attribute(s) {unknown}")


def unsupported(node: Node, what: str) -> UnsupportedModel:
    return UnsupportedModel(f"{node.describe()}: {what}")


def invalid(node: Node, what: str) -> InvalidModel:
    return InvalidModel(f"{node.describe()}: {what}")


def const_of(node: Node, v: Value | None, what: str) -> np.ndarray[Any, Any]:
    """An input that must be known at plan time (a shape, axes, ...)."""
    if v is None or v.const is None:
        raise unsupported(node, f"{what} must be a constant (or computable from input shapes)")
    return v.const


def ints_of(node: Node, v: Value | None, what: str) -> list[int]:
    return [int(x) for x in const_of(node, v, what).reshape(-1)]


def require(node: Node, v: Value | None, dtypes: tuple[np.dtype[Any], ...], what: str) -> Value:
    if v is None:
        raise invalid(node, f"{what} is missing")
    if v.dtype not in dtypes:
        names = ", ".join(str(d) for d in dtypes)
        raise unsupported(node, f"{what} has dtype {v.dtype}; the engine runs {names} here")
    return v


def runtime_dtype(node: Node, v: Value, what: str = "input") -> None:
    if v.dtype not in (F32, I64, BOOL):
        raise unsupported(node, f"{what} of dtype {v.dtype} cannot be computed at run time")


def norm_axis(node: Node, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise invalid(node, f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def contiguous_strides(shape: tuple[int, ...]) -> list[int]:
    strides = [0] * len(shape)
    acc = 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = acc
        acc *= shape[d]
    return strides


def broadcast_shape(node: Node, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise invalid(node, f"shapes {list(shapes)} do not broadcast") from None


def broadcast_strides(
    out: tuple[int, ...], shapes: list[tuple[int, ...]]
) -> tuple[list[int], list[list[int]]]:
    """Element strides of each input viewed at the output's shape (0 along broadcast dims),
    with adjacent dimensions merged where every view allows it."""
    rank = len(out)
    views = []
    for shape in shapes:
        padded = (1,) * (rank - len(shape)) + tuple(shape)
        base = contiguous_strides(padded)
        views.append([0 if padded[d] == 1 and out[d] != 1 else base[d] for d in range(rank)])
    dims: list[int] = []
    strides: list[list[int]] = [[] for _ in shapes]
    for d in range(rank):
        if out[d] == 1:
            continue
        if dims and all(s[-1] == v[d] * out[d] for s, v in zip(strides, views, strict=True)):
            dims[-1] *= out[d]
            for s, v in zip(strides, views, strict=True):
                s[-1] = v[d]
            continue
        dims.append(out[d])
        for s, v in zip(strides, views, strict=True):
            s.append(v[d])
    return dims, strides


def pad_dims(values: list[int], n: int) -> list[int]:
    return values + [0] * (n - len(values))


def emit_broadcast(b: Builder, node: Node, head: list[int], ins: list[Value], out: Value) -> None:
    """One broadcasting instruction: ``head`` (opcode and leading words), then shapes and strides."""
    dims, strides = broadcast_strides(out.shape, [v.shape for v in ins])
    if len(dims) > MAX_BROADCAST_RANK:
        raise unsupported(node, f"broadcasting over {len(dims)} dimensions (at most 6)")
    words: list[Any] = [*head[1:], len(dims), *pad_dims(dims, MAX_BROADCAST_RANK)]
    for s in strides:
        words += pad_dims(s, MAX_BROADCAST_RANK)
    words += [b.ref(v) for v in ins]
    words.append(b.ref(out))
    b.emit(head[0], *words)
