"""Read-only ``__slots__`` attributes for objects whose state reaches native code."""

from __future__ import annotations

from typing import Any


def read_only_slot(cls: type, name: str) -> Any:
    """Swap a slot's descriptor for a getter-only property; return the descriptor, which
    stays module-private (the class's own methods set the slot through it)."""
    slot = cls.__dict__[name]
    getter = property(slot.__get__, doc=f"read-only: {name} reaches native code")
    getter.__set_name__(cls, name)  # type: ignore[attr-defined]  # named in the AttributeError
    setattr(cls, name, getter)
    return slot
