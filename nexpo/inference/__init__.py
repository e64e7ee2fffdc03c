"""ONNX inference on nexpo's Nim kernels: ``InferenceSession``, shaped like onnxruntime's.

    sess = nexpo.inference.InferenceSession("model.onnx")
    probs, = sess.run(None, {"x": batch})

Loading parses the protobuf with the ``onnx`` package (``pip install 'nexpo[onnx]'``), validates
the graph (unsupported operators/attributes/dtypes raise ``nexpo.UnsupportedModel`` naming the
node; malformed graphs ``nexpo.InvalidModel``), and compiles it per input shapes into a plan the
Nim core executes in one call with the GIL released. ``supported_operators()`` lists the
operators it runs.
"""

from __future__ import annotations

from nexpo.errors import InvalidModel, UnsupportedModel
from nexpo.inference._registry import OPS
from nexpo.inference._session import InferenceSession, NodeArg

__all__ = ["InferenceSession", "InvalidModel", "NodeArg", "UnsupportedModel", "supported_operators"]


def supported_operators() -> list[str]:
    """``"op"`` (default domain) and ``"domain:op"`` names of every operator the engine runs."""
    return sorted(f"{domain}:{name}" if domain else name for domain, name in OPS)
