"""Loading and validating an ONNX model: protobuf -> ``Graph`` (nodes in execution order).

Parsing uses the ``onnx`` package (the ``[onnx]`` extra): the protobuf schema is large and
versioned, and ``onnx`` is the reference reader of it. Everything after parsing (validation,
planning, execution) is nexpo's. Validation here is structural and shape-independent:

- every node's operator (domain, op type) is one the engine runs, at a supported opset, and its
  attributes are ones the handler knows; otherwise ``UnsupportedModel`` naming node, op, opset
- every name a node reads is a graph input, an initializer or another node's output, produced
  once; nodes form a DAG (a cycle is reported with the nodes on it); outputs are produced
- inputs and initializers have dtypes the engine can hold
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nexpo.errors import InvalidModel, UnsupportedModel

try:
    import onnx
    from onnx import numpy_helper
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("nexpo.inference needs the onnx package: pip install 'nexpo[onnx]'") from exc

__all__ = ["MAX_OPSET", "MIN_OPSET", "Graph", "Node", "TensorInfo", "load_graph"]

MIN_OPSET = 7
MAX_OPSET = 21
MAX_MODEL_BYTES = 2**31 - 1  # the protobuf limit

# ONNX TensorProto element types the engine can hold at run time, and the numpy dtypes they map to.
RUNTIME_DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.float32),
    7: np.dtype(np.int64),
    9: np.dtype(np.bool_),
}
TYPE_NAMES = {
    1: "float",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "double",
    12: "uint32",
    13: "uint64",
    16: "bfloat16",
}


@dataclass
class Node:
    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    opset: int

    def describe(self) -> str:
        return f"node {self.name!r} ({self.op_type}, opset {self.opset})"


@dataclass
class TensorInfo:
    name: str
    elem_type: int
    shape: list[int | str | None]  # None: an unnamed dynamic dimension

    @property
    def type_name(self) -> str:
        return f"tensor({TYPE_NAMES.get(self.elem_type, str(self.elem_type))})"


@dataclass
class Graph:
    nodes: list[Node]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    initializers: dict[str, np.ndarray[Any, Any]]
    opset: int
    consumers: dict[str, list[Node]] = field(default_factory=dict)
    producers: dict[str, Node] = field(default_factory=dict)  # output name -> its node


def _read_model(model: object) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            data = f.read(MAX_MODEL_BYTES + 1)
    elif isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
    else:
        raise TypeError(f"model must be a path or the model's bytes, not {type(model).__name__}")
    if len(data) > MAX_MODEL_BYTES:
        raise InvalidModel("model: larger than the 2 GiB protobuf limit")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise InvalidModel(f"model: not an ONNX protobuf ({exc})") from None
    if not proto.HasField("graph"):
        raise InvalidModel("model: no graph (is this an ONNX model?)")
    return proto


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    t = value.type
    if t.WhichOneof("value") != "tensor_type":
        raise UnsupportedModel(f"graph value {value.name!r}: only tensors are supported")
    dims: list[int | str | None] = []
    for d in t.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(str(d.dim_param))
        else:
            dims.append(None)
    return TensorInfo(value.name, int(t.tensor_type.elem_type), dims)


def _attributes(node: onnx.NodeProto, describe: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise UnsupportedModel(f"{describe}: subgraph attribute {a.name!r} is not supported")
        if a.ref_attr_name:
            raise UnsupportedModel(f"{describe}: attribute references are not supported")
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, onnx.TensorProto):
            value = _initializer(value, describe)
        elif isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", "replace") for v in value]
        attrs[a.name] = value
    return attrs


def _initializer(tensor: onnx.TensorProto, where: str) -> np.ndarray[Any, Any]:
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise UnsupportedModel(f"{where}: tensor {tensor.name!r} has external data (not supported)")
    if tensor.data_type == onnx.TensorProto.STRING:
        raise UnsupportedModel(f"{where}: string tensor {tensor.name!r} is not supported")
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as exc:
        raise InvalidModel(f"{where}: tensor {tensor.name!r} cannot be decoded ({exc})") from None
    return array if array.flags.c_contiguous else array.copy(order="C")


def _opsets(proto: onnx.ModelProto) -> dict[str, int]:
    opsets = {}
    for entry in proto.opset_import:
        opsets[entry.domain if entry.domain != "ai.onnx" else ""] = int(entry.version)
    return opsets


def _topological(nodes: list[Node], available: Iterable[str]) -> list[Node]:
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for out in node.outputs:
            if not out:
                continue
            if out in producer:
                raise InvalidModel(f"{node.describe()}: output {out!r} is produced twice")
            producer[out] = i
    known = set(available)
    for out in producer:
        if out in known:
            raise InvalidModel(f"value {out!r} is both a graph input/initializer and a node output")
    waiting = [0] * len(nodes)
    dependents: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for name in node.inputs:
            if not name or name in known:
                continue
            if name not in producer:
                raise InvalidModel(
                    f"{node.describe()}: input {name!r} is not a graph input, an initializer or "
                    "any node's output (missing initializer?)"
                )
            waiting[i] += 1
            dependents[producer[name]].append(i)
    ready = [i for i in range(len(nodes)) if waiting[i] == 0]
    order: list[Node] = []
    while ready:
        i = ready.pop()
        order.append(nodes[i])
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if len(order) != len(nodes):
        stuck = [n.name or n.op_type for n, w in zip(nodes, waiting, strict=True) if w > 0]
        raise InvalidModel(f"graph has a cycle through nodes {stuck[:8]}")
    return order


def load_graph(model: object, check_node: Any) -> Graph:
    """Parse and validate ``model``; ``check_node(node)`` rejects unsupported nodes."""
    proto = _read_model(model)
    opsets = _opsets(proto)
    opset = opsets.get("", 0)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedModel(
            f"model: default-domain opset {opset} is outside the supported {MIN_OPSET}..{MAX_OPSET}"
        )
    g = proto.graph
    initializers = {t.name: _initializer(t, "initializer") for t in g.initializer}
    inputs = [_tensor_info(v) for v in g.input if v.name not in initializers]
    for info in inputs:
        if info.elem_type not in RUNTIME_DTYPES:
            raise UnsupportedModel(
                f"input {info.name!r}: {info.type_name} is not supported (float, int64 and bool are)"
            )
    outputs = [_tensor_info(v) for v in g.output]
    nodes = []
    for i, n in enumerate(g.node):
        domain = n.domain if n.domain != "ai.onnx" else ""
        node_opset = opsets.get(domain, 0)
        node = Node(
            n.name or f"{n.op_type}_{i}", n.op_type, domain, list(n.input), list(n.output), {}, node_opset
        )
        node.attrs = _attributes(n, node.describe())
        check_node(node)
        nodes.append(node)
    available = [i.name for i in inputs] + list(initializers)
    ordered = _topological(nodes, available)
    produced = set(available) | {o for n in nodes for o in n.outputs}
    for out in outputs:
        if out.name not in produced:
            raise InvalidModel(f"graph output {out.name!r} is not produced by any node")
    graph = Graph(ordered, inputs, outputs, initializers, opset)
    for node in ordered:
        for name in node.inputs:
            graph.consumers.setdefault(name, []).append(node)
        for name in node.outputs:
            if name:
                graph.producers[name] = node
    return graph
