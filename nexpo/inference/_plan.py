"""The planner: a validated graph + concrete input shapes -> a ``Plan`` the Nim core runs in one call.

Per node, in execution order, the operator's handler (``_ops_*.py``) infers output shapes and
either folds the node (all inputs known at plan time: the result is a constant, e.g. a whole
Shape->Gather->Concat->Reshape subgraph) or emits instructions. Handlers may fuse a node's only
consumer into it (bias and activation into GEMM, BatchNormalization into Conv). Fusions spanning
several nodes (attention: _attention.py) look at the graph before the walk: they defer the
nodes of a match to its last one, whose handler emits one instruction or, when the shapes do
not fit, runs the deferred nodes' own handlers. Then:

- buffers: every run-time value lives in a ``Storage``; reshapes alias their input's. Storages
  are laid out in one arena by first-fit over their live ranges (first and last instruction
  using them), so intermediates reuse memory; graph outputs live to the end
- constants that instructions read are packed once into one 64-byte aligned blob
- the instruction stream is encoded as int64 words (format: nim/nexpo_core/inference/program.nim)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nexpo.errors import InvalidModel, UnsupportedModel
from nexpo.inference._model import Graph, Node

__all__ = ["BOOL", "F32", "I64", "Builder", "Plan", "Value", "build_plan"]

F32 = np.dtype(np.float32)
I64 = np.dtype(np.int64)
BOOL = np.dtype(np.bool_)
DTYPE_CODES = {F32: 0, I64: 1, BOOL: 2}
ALIGN = 64

# opcodes of nim/nexpo_core/inference/exec.nim
OP_GEMM, OP_UNARY, OP_BINARY, OP_WHERE, OP_SOFTMAX, OP_LAYERNORM, OP_AFFINE, OP_INSTNORM = range(1, 9)
OP_CONV, OP_POOL, OP_REDUCE, OP_COPY, OP_GATHER, OP_CAST, OP_NOT, OP_ATTENTION = range(9, 17)

SPACE_ARENA, SPACE_CONST, SPACE_INPUT0 = 0, 1, 2
# Largest tensor a plan may hold (elements): a hostile model's Expand/Tile/ConstantOfShape to a huge
# shape is an InvalidModel, not an attempt to allocate it.
MAX_ELEMENTS = 1 << 28


@dataclass(eq=False)
class Storage:
    nbytes: int
    space: int = SPACE_ARENA
    offset: int = -1
    first: int = -1  # first and last instruction index that touches it
    last: int = -1
    const: np.ndarray[Any, Any] | None = None


@dataclass(eq=False)
class Value:
    """A tensor during planning: its dtype and shape, plus a constant or a run-time storage."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    const: np.ndarray[Any, Any] | None = None
    storage: Storage | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_const(self) -> bool:
        return self.const is not None


class Ref:
    """An operand word triple; ``offset`` is in bytes from the storage's start."""

    __slots__ = ("offset", "storage")

    def __init__(self, storage: Storage, offset: int = 0) -> None:
        self.storage = storage
        self.offset = offset


Word = int | float | Ref | None
Handler = Callable[["Builder", Node, list["Value | None"]], list["Value"]]
Fusion = Callable[["Builder"], None]  # may defer nodes: Builder.defer


@dataclass
class Plan:
    code: np.ndarray[Any, Any]  # int64 words
    consts: np.ndarray[Any, Any]  # uint8 blob
    arena_bytes: int
    outputs: list[Value]  # one per graph output
    input_storages: list[Storage]
    arenas: list[np.ndarray[Any, Any]] = field(default_factory=list)


def check_elements(shape: tuple[int, ...] | list[int]) -> None:
    count = 1
    for d in shape:
        count *= int(d)
    if count > MAX_ELEMENTS:
        raise InvalidModel(
            f"a tensor of shape {tuple(shape)} ({count} elements) exceeds the "
            f"engine's limit of {MAX_ELEMENTS}"
        )


def f64_word(x: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", float(x)))[0])


class Builder:
    def __init__(self, graph: Graph, handlers: dict[str, Handler] | None = None) -> None:
        self.graph = graph
        self.handlers = handlers or {}
        self.deferred: dict[int, Handler] = {}  # node id -> the handler that replaces its own
        self.instructions: list[list[Word]] = []
        self.skipped: set[int] = set()
        self.values: dict[str, Value] = {}
        self.outputs = {o.name for o in graph.outputs}

    # --- values ---------------------------------------------------------------------------------
    def const(self, array: Any, dtype: np.dtype[Any] | None = None) -> Value:
        a = np.asarray(array, dtype=dtype)
        check_elements(a.shape)
        if not a.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d array into 1-d)
            a = a.copy(order="C")
        return Value(a.dtype, tuple(int(d) for d in a.shape), const=a)

    def new(self, dtype: np.dtype[Any], shape: tuple[int, ...] | list[int]) -> Value:
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise InvalidModel(f"negative dimension in inferred shape {shape}")
        check_elements(shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return Value(dtype, shape, storage=Storage(nbytes))

    def alias(self, v: Value, shape: tuple[int, ...] | list[int]) -> Value:
        shape = tuple(int(d) for d in shape)
        if v.const is not None:
            return self.const(v.const.reshape(shape))
        return Value(v.dtype, shape, storage=v.storage)

    # --- graph structure ------------------------------------------------------------------------
    def sole_consumer(self, name: str) -> Node | None:
        """The node that alone reads ``name`` (so it can be fused), unless ``name`` is an output."""
        users = self.graph.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs or id(users[0]) in self.skipped:
            return None
        return users[0]

    def fuse(self, node: Node, result: Value) -> None:
        """``node`` was computed as part of another one: its output is ``result``."""
        self.skipped.add(id(node))
        self.values[node.outputs[0]] = result

    def defer(self, nodes: list[Node], last: Node, handler: Handler) -> None:
        """Skip ``nodes`` in the walk; ``handler`` runs in place of ``last``'s (after them all)."""
        for n in nodes:
            self.skipped.add(id(n))
        self.deferred[id(last)] = handler

    def run(self, node: Node) -> list[Value]:
        """Plan ``node`` with its operator's handler (a deferred node: once its inputs exist)."""
        handler = self.deferred.pop(id(node), None)
        if handler is None:
            handler = self.handlers[node.op_type]
            ins = [self.values[name] if name else None for name in node.inputs]
        else:  # (inputs made by the deferred nodes do not exist yet)
            ins = [self.values.get(name) if name else None for name in node.inputs]
        try:
            outs = handler(self, node, ins)
        except (UnsupportedModel, InvalidModel):
            raise
        except (ValueError, IndexError) as exc:
            raise InvalidModel(f"{node.describe()}: {exc}") from None
        for name, v in zip(node.outputs, outs, strict=False):
            if name:
                self.values[name] = v
        return outs

    def run_unfused(self, nodes: list[Node], last: Node) -> list[Value]:
        """In a deferred handler whose fusion does not fit the shapes: plan ``nodes`` and then
        ``last`` node by node, with their own handlers."""
        for n in nodes:
            self.skipped.discard(id(n))
        for n in nodes:
            if id(n) not in self.skipped:  # (a handler may have fused a later one)
                self.run(n)
        ins = [self.values[name] if name else None for name in last.inputs]
        return self.handlers[last.op_type](self, last, ins)

    # --- emission -------------------------------------------------------------------------------
    def ref(self, v: Value) -> Ref:
        if v.storage is None:
            assert v.const is not None
            v.storage = Storage(v.const.nbytes, space=SPACE_CONST, const=v.const)
        return Ref(v.storage)

    def emit(self, opcode: int, *words: Word) -> None:
        self.instructions.append([opcode, *words])


def _layout(builder: Builder, keep: set[int]) -> int:
    """First-fit offsets for the arena storages; returns the arena size."""
    storages: dict[int, Storage] = {}
    for t, instr in enumerate(builder.instructions):
        for w in instr:
            if isinstance(w, Ref):
                s = w.storage
                if s.first < 0:
                    s.first = t
                s.last = t
                storages[id(s)] = s
    end = len(builder.instructions)
    for s in storages.values():
        if id(s) in keep:
            s.last = end
    live: list[Storage] = []
    size = 0
    arena = sorted((s for s in storages.values() if s.space == SPACE_ARENA), key=lambda s: s.first)
    for s in arena:
        live = [o for o in live if o.last >= s.first]
        need = max(s.nbytes, 1)
        offset = 0
        for o in sorted(live, key=lambda o: o.offset):
            if offset + need <= o.offset:
                break
            offset = max(offset, _round(o.offset + max(o.nbytes, 1)))
        s.offset = offset
        live.append(s)
        size = max(size, offset + need)
    return _round(size)


def _round(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _pack_consts(builder: Builder) -> np.ndarray[Any, Any]:
    seen: dict[int, Storage] = {}
    for instr in builder.instructions:
        for w in instr:
            if isinstance(w, Ref) and w.storage.space == SPACE_CONST:
                seen[id(w.storage)] = w.storage
    total = 0
    for s in seen.values():
        s.offset = total
        total = _round(total + s.nbytes)
    blob = np.zeros(max(total, ALIGN), dtype=np.uint8)
    for s in seen.values():
        assert s.const is not None
        blob[s.offset : s.offset + s.nbytes] = s.const.reshape(-1).view(np.uint8)
    return blob


def _encode(builder: Builder) -> np.ndarray[Any, Any]:
    words: list[int] = []
    for instr in builder.instructions:
        body: list[int] = []
        for w in instr[1:]:
            if w is None:
                body += [-1, 0, 0]
            elif isinstance(w, Ref):
                s = w.storage
                body += [s.space, s.offset + w.offset, s.nbytes - w.offset]
            elif isinstance(w, float):
                body.append(f64_word(w))
            else:
                body.append(int(w))
        assert isinstance(instr[0], int)
        words += [instr[0], len(body) + 2, *body]
    return np.asarray(words, dtype=np.int64)


def build_plan(
    graph: Graph,
    handlers: dict[str, Handler],
    inputs: list[tuple[int, ...]],
    fusions: tuple[Fusion, ...] = (),
) -> Plan:
    b = Builder(graph, handlers)
    input_storages = []
    for i, (info, shape) in enumerate(zip(graph.inputs, inputs, strict=True)):
        from nexpo.inference._model import RUNTIME_DTYPES

        v = b.new(RUNTIME_DTYPES[info.elem_type], shape)
        assert v.storage is not None
        v.storage.space = SPACE_INPUT0 + i
        v.storage.offset = 0
        input_storages.append(v.storage)
        b.values[info.name] = v
    for name, array in graph.initializers.items():
        b.values[name] = b.const(array)
    for fusion in fusions:
        fusion(b)
    for node in graph.nodes:
        if id(node) not in b.skipped:
            b.run(node)
    outputs = [b.values[o.name] for o in graph.outputs]
    keep = {id(v.storage) for v in outputs if v.storage is not None}
    arena = _layout(b, keep)
    consts = _pack_consts(b)
    return Plan(_encode(b), consts, arena, outputs, input_storages)
