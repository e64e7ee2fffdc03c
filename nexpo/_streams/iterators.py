"""Helpers for driving async iterators, shared by the combinators (flow.py, merge.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar, cast

T = TypeVar("T")

# Returned by ``next_or_end`` when the iterator is exhausted (a task's result cannot be a raise
# of StopAsyncIteration).
END: Any = object()


async def aclose(iterator: AsyncIterator[Any]) -> None:
    """Close ``iterator`` if it can be closed (async generators can; any async iterator may not)."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


async def next_or_end(iterator: AsyncIterator[T]) -> T:
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return cast(T, END)
