"""JSON tensor bodies: JSON numbers only, counted before they are built, large ones parsed off the
event loop.

pydantic builds a Python object for every JSON value (~30 bytes a number, ~60 an array): an 8 MiB
body of two million empty rows cost ~500 MB, and seconds of event loop, before a row limit could
reject it. So a body's size in values is bounded from its bytes (every value but the last is
followed by a comma or, for a key, a colon; every container opens with a bracket), by a
``JsonBudget``: chunk by chunk while the body arrives, so a body over budget is answered 422 before
the rest of it is even read, and once more on the whole body before it is parsed. What is parsed
is thus bounded by the budget, whatever the body. Callers parse through ``Gateway.run`` with the
body's length as the cost: large bodies are counted and parsed in a worker thread.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, TypeVar

from pydantic import BaseModel, Field
from starlette.requests import Request

from .deps import parse_json
from .problems import ProblemError

# A JSON number and nothing else: not "1", true or null (pydantic's lax float takes all three).
JsonNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]

_SLICE = 256 * 1024  # counted per slice: each count holds the GIL only briefly

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class JsonLimits:
    """At most ``max_values`` JSON values (and ``max_arrays`` arrays) in a body, counted from its
    bytes; commas, colons and brackets inside strings only count against it, never for it."""

    max_values: int
    too_many: str  # the 422 detail for a body over max_values
    max_arrays: int | None = None
    too_many_arrays: str = ""

    def budget(self) -> JsonBudget:
        return JsonBudget(self)


class JsonBudget:
    """One body's count against its ``JsonLimits``."""

    __slots__ = ("arrays", "limits", "values")

    def __init__(self, limits: JsonLimits) -> None:
        self.limits = limits
        self.values = 1
        self.arrays = 0

    def feed(self, chunk: bytes) -> None:
        """Count the next part of the body; 422 as soon as it is over the limits."""
        limits = self.limits
        for start in range(0, len(chunk), _SLICE):
            end = start + _SLICE
            arrays = chunk.count(b"[", start, end)
            self.arrays += arrays
            self.values += arrays + chunk.count(b"{", start, end)
            self.values += chunk.count(b",", start, end) + chunk.count(b":", start, end)
            if limits.max_arrays is not None and self.arrays > limits.max_arrays:
                raise ProblemError(422, limits.too_many_arrays)
            if self.values > limits.max_values:
                raise ProblemError(422, limits.too_many)


@functools.lru_cache(maxsize=16)
def item_list_limits(name: str, max_items: int) -> JsonLimits:
    """A body of one list ``name`` of at most ``max_items`` strings and a few fields beside it: an
    8 MiB body of empty strings would otherwise build millions of objects before its 422."""
    most = max_items + 16
    return JsonLimits(most, f"the body holds more than {most} JSON values; the limit is {max_items} {name}")


def parse_bounded(model: type[M], body: bytes, limits: JsonLimits) -> M:
    """Parse ``body`` as ``model`` once the whole of it is counted within ``limits`` (else 422)."""
    limits.budget().feed(body)
    return parse_json(model, body)


async def read_json_body(request: Request, limits: JsonLimits) -> bytes:
    """The request's body, counted against ``limits`` as it arrives."""
    budget = limits.budget()
    chunks = []
    async for chunk in request.stream():
        budget.feed(chunk)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
