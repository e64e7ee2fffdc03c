"""``InferenceSession``: onnxruntime's shape of API over nexpo's planner and Nim executor."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nexpo import _native
from nexpo.errors import InvalidModel
from nexpo.inference import _ops_elementwise, _ops_linalg, _ops_ml, _ops_nn, _ops_reduce, _ops_shape
from nexpo.inference._attention import defer_attention
from nexpo.inference._model import RUNTIME_DTYPES, TensorInfo, load_graph
from nexpo.inference._ops_elementwise import ONNX_TO_NUMPY
from nexpo.inference._plan import SPACE_ARENA, Plan, build_plan
from nexpo.inference._registry import OPS, check_node
from nexpo.inference._residual_norm import defer_residual_norm

__all__ = ["InferenceSession", "NodeArg"]

_OPERATOR_MODULES = (_ops_elementwise, _ops_linalg, _ops_ml, _ops_nn, _ops_reduce, _ops_shape)
MAX_PLANS = 8       # input-shape combinations kept compiled (LRU)
MAX_IDLE_ARENAS = 4  # per plan: concurrent runs beyond this allocate and drop their own


@dataclass(frozen=True)
class NodeArg:
    """A graph input or output: name, shape (ints; strings or None for dynamic dims), type."""

    name: str
    shape: list[int | str | None]
    type: str


class _Slot:
    """An arena with the C argument arrays of one run; a run holds its slot exclusively."""

    def __init__(self, compiled: _Compiled) -> None:
        ffi = _native.ffi
        self.arena = np.empty(max(compiled.plan.arena_bytes, 64), dtype=np.uint8)
        spaces = 2 + len(compiled.plan.input_storages)
        self.bases = ffi.new("void *[]", spaces)
        self.sizes = ffi.new("size_t[]", spaces)
        self.arena_view = ffi.from_buffer("uint8_t[]", self.arena)
        self.bases[0], self.sizes[0] = self.arena_view, self.arena.nbytes
        self.bases[1], self.sizes[1] = compiled.consts, compiled.plan.consts.nbytes
        self.spaces = spaces
        # Per graph output kept in the arena: a view of it, copied out after a run (the copy is
        # what the caller gets: the arena is reused by the next run).
        self.views: list[np.ndarray[Any, Any] | None] = [
            np.frombuffer(self.arena, dtype=dtype, count=count, offset=at).reshape(shape)
            if where == "arena" and count else None
            for where, at, dtype, shape, count, _ in compiled.readers
        ]


# How to read graph output i after a run: ("const", array) | ("arena", byte offset) | ("input", index)
_Reader = tuple[str, Any, np.dtype[Any], tuple[int, ...], int, Any]


class _Compiled:
    """A plan plus the C views of its code and constants, kept alive together."""

    def __init__(self, plan: Plan, declared: list[Any]) -> None:
        self.plan = plan
        self.code = _native.ffi.from_buffer("int64_t[]", plan.code)
        self.code_len = len(plan.code)
        self.consts = _native.ffi.from_buffer("uint8_t[]", plan.consts)
        self.idle: list[_Slot] = []
        self.readers: list[_Reader] = []
        for v, want in zip(plan.outputs, declared, strict=True):
            cast = want if want is not None and np.dtype(want) != v.dtype else None
            if v.const is not None:
                self.readers.append(("const", v.const, v.dtype, v.shape, 0, cast))
                continue
            assert v.storage is not None
            where = "arena" if v.storage.space == SPACE_ARENA else "input"
            at = v.storage.offset if where == "arena" else v.storage.space - 2
            self.readers.append((where, at, v.dtype, v.shape, v.size, cast))

    def take(self) -> _Slot:
        try:
            return self.idle.pop()
        except IndexError:
            return _Slot(self)

    def give_back(self, slot: _Slot) -> None:
        if len(self.idle) < MAX_IDLE_ARENAS:
            self.idle.append(slot)


class InferenceSession:
    """Run an ONNX model on nexpo's Nim kernels.

    ``model`` is a path or the model's bytes. The graph is validated at load (an operator,
    attribute or dtype the engine does not run raises ``nexpo.UnsupportedModel``); it is
    compiled into a plan per combination of input shapes (shapes inferred, constants folded,
    buffers laid out), on first use of those shapes, and each ``run`` is one native call with the
    GIL released. ``num_threads`` resizes nexpo's (process-wide) kernel thread pool.
    """

    def __init__(self, model: object, *, num_threads: int | None = None) -> None:
        if num_threads is not None:
            from nexpo.scheduler import set_num_threads

            set_num_threads(num_threads)
        _ = _OPERATOR_MODULES  # registering the handlers is importing them
        self._graph = load_graph(model, check_node)
        self._plans: OrderedDict[tuple[tuple[int, ...], ...], _Compiled] = OrderedDict()
        self._lock = threading.Lock()
        self._inputs = [NodeArg(i.name, list(i.shape), i.type_name) for i in self._graph.inputs]
        self._outputs = [NodeArg(o.name, list(o.shape), o.type_name) for o in self._graph.outputs]
        self._output_index = {o.name: i for i, o in enumerate(self._graph.outputs)}
        self._declared = [ONNX_TO_NUMPY.get(o.elem_type) for o in self._graph.outputs]
        self._all_outputs = list(range(len(self._graph.outputs)))
        self._input_names = [i.name for i in self._graph.inputs]
        self._input_set = frozenset(self._input_names)
        self._input_dtypes = [RUNTIME_DTYPES[i.elem_type] for i in self._graph.inputs]
        self._feed_spec = list(zip(self._input_names, self._input_dtypes, strict=True))
        self._plan_at_load()

    def _plan_at_load(self) -> None:
        """Compile once now so unsupported parts surface at load; dynamic dims are tried as 1."""
        shapes = tuple(tuple(d if isinstance(d, int) else 1 for d in i.shape) for i in self._graph.inputs)
        static = all(isinstance(d, int) for i in self._graph.inputs for d in i.shape)
        try:
            self._compiled(shapes)
        except InvalidModel:
            if static:
                raise

    def get_inputs(self) -> list[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._outputs)

    def _compiled(self, shapes: tuple[tuple[int, ...], ...]) -> _Compiled:
        compiled = self._plans.get(shapes)  # a dict read is atomic; recency is only kept on a miss
        if compiled is not None:
            return compiled
        handlers: dict[str, Any] = {}
        for (_, name), spec in OPS.items():
            handlers[name] = spec.handler
        plan = build_plan(self._graph, handlers, list(shapes), (defer_attention, defer_residual_norm))
        compiled = _Compiled(plan, self._declared)
        with self._lock:
            self._plans[shapes] = compiled
            while len(self._plans) > MAX_PLANS:
                self._plans.popitem(last=False)
        return compiled

    def _check_feed(self, input_feed: Mapping[str, Any]) -> list[np.ndarray[Any, Any]]:
        if type(input_feed) is not dict and not isinstance(input_feed, Mapping):
            raise TypeError(f"input_feed must be a mapping of input name to array, not "
                            f"{type(input_feed).__name__}")
        expected = self._input_names
        if len(input_feed) != len(expected) or any(k not in self._input_set for k in input_feed):
            unknown = [k for k in input_feed if k not in self._input_set]
            if unknown:
                raise ValueError(f"unknown input(s) {unknown}; the model's inputs are {expected}")
        arrays = []
        symbols: dict[str, tuple[int, str]] = {}
        for info, want in zip(self._graph.inputs, self._input_dtypes, strict=True):
            value = input_feed.get(info.name)
            if value is None:
                raise ValueError(f"input {info.name!r} is missing; the model's inputs are {expected}")
            arrays.append(self._check_input(info, want, value, symbols))
        return arrays

    @staticmethod
    def _check_input(info: TensorInfo, want: np.dtype[Any], value: Any,
                     symbols: dict[str, tuple[int, str]]) -> np.ndarray[Any, Any]:
        if not isinstance(value, np.ndarray):
            raise TypeError(f"input {info.name!r}: expected a numpy array of {info.type_name} "
                            f"({want}), got {type(value).__name__}")
        if value.dtype != want:
            raise TypeError(f"input {info.name!r}: expected {info.type_name} ({want}), "
                            f"got {value.dtype}")
        if value.ndim != len(info.shape):
            raise ValueError(f"input {info.name!r}: expected rank {len(info.shape)} "
                             f"(shape {info.shape}), got shape {value.shape}")
        for d, (want_dim, got) in enumerate(zip(info.shape, value.shape, strict=True)):
            if isinstance(want_dim, int) and want_dim != got:
                raise ValueError(f"input {info.name!r}: dimension {d} must be {want_dim} "
                                 f"(shape {info.shape}), got shape {value.shape}")
            if isinstance(want_dim, str) and want_dim:
                seen = symbols.setdefault(want_dim, (got, info.name))
                if seen[0] != got:
                    raise ValueError(f"input {info.name!r}: dimension {d} ({want_dim!r}) is {got} "
                                     f"but it is {seen[0]} in input {seen[1]!r}")
        return value if value.flags.c_contiguous else value.copy(order="C")

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any],
            run_options: object = None) -> list[np.ndarray[Any, Any]]:
        """The requested outputs (all, in graph order, when ``output_names`` is None)."""
        wanted = self._all_outputs if output_names is None else self._wanted(output_names)
        compiled = None
        # Fast path: a dict of exactly the inputs, as C-contiguous arrays of the runtime dtypes,
        # whose shapes have a plan already (a plan exists only for shapes that passed the
        # checks, which depend on nothing else). Anything else takes the checked path.
        if type(input_feed) is dict and len(input_feed) == len(self._feed_spec):
            arrays = []
            for name, want in self._feed_spec:
                value = input_feed.get(name)
                if type(value) is not np.ndarray or value.dtype is not want or \
                        not value.flags.c_contiguous:
                    break
                arrays.append(value)
            else:
                compiled = self._plans.get(tuple([a.shape for a in arrays]))
        if compiled is None:
            arrays = self._check_feed(input_feed)
            compiled = self._compiled(tuple(a.shape for a in arrays))
        slot = compiled.take()
        ffi = _native.ffi
        keep = []
        for i, a in enumerate(arrays):
            buf = ffi.from_buffer("uint8_t[]", a) if a.nbytes else ffi.NULL
            keep.append(buf)
            slot.bases[2 + i], slot.sizes[2 + i] = buf, a.nbytes
        status = _native.lib.nexpo_infer_run(compiled.code, compiled.code_len, slot.bases, slot.sizes,
                                             slot.spaces)
        if status:
            compiled.give_back(slot)
            _native.check(status)
        results = [_read(compiled.readers[i], slot.views[i], arrays) for i in wanted]
        compiled.give_back(slot)
        return results

    def _wanted(self, output_names: Sequence[str]) -> list[int]:
        if isinstance(output_names, str):
            raise TypeError("output_names must be a list of names (or None), not a str")
        wanted = []
        for name in output_names:
            if name not in self._output_index:
                raise ValueError(f"unknown output {name!r}; the model's outputs are "
                                 f"{list(self._output_index)}")
            wanted.append(self._output_index[name])
        return wanted


def _read(reader: _Reader, view: np.ndarray[Any, Any] | None, arrays: list[np.ndarray[Any, Any]]
          ) -> np.ndarray[Any, Any]:
    where, at, dtype, shape, count, cast = reader
    if view is not None:  # an arena output: a copy, since the arena is reused by the next run
        result: np.ndarray[Any, Any] = view.copy()
    elif where == "const":
        result = np.array(at, copy=True)
    elif count == 0:
        result = np.empty(shape, dtype=dtype)
    else:
        result = arrays[at].reshape(shape).copy()
    return result if cast is None else result.astype(cast)
