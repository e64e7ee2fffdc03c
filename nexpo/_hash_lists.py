"""SHA-256 and HMAC-SHA-256 batches over a list (or tuple) of ``bytes``, hashed in place.

The general batch path (``nexpo.crypto._Batch``) joins the messages into one buffer first: for
1M × 64 B that copy, the per-item checks and the sizes list cost more than the hashing. Here
``nexpo._hashpath`` hands every item's own buffer to the native batch as (pointer, length) pairs
and builds the list of digests in C (for SHA-256 chunk by chunk: the pool hashes one chunk into
its digest objects while the next chunk's are created, nexpo/_hashpath_list.c). Only exact
``bytes`` items qualify (immutable: a reference held to each keeps it alive and unchanged while
the native call runs without the GIL); anything else returns None and the caller takes the
general path.
"""

from __future__ import annotations

from typing import Final, Protocol

from nexpo._native import check, load_sibling_module


class _ListPath(Protocol):
    def sha256_many_list(self, messages: object, /) -> list[bytes] | int: ...
    def hmac_sha256_many_list(self, key: object, messages: object, /) -> list[bytes] | int: ...


_hp: Final[_ListPath] = load_sibling_module("nexpo._hashpath")


def _digests(result: list[bytes] | int) -> list[bytes] | None:
    if result is NotImplemented:
        return None
    if isinstance(result, int):
        check(result)
        raise AssertionError("unreachable: a status other than NEXPO_OK raised")
    return result


def sha256_list(messages: object) -> list[bytes] | None:
    """The digests of a list/tuple of bytes, or None when ``messages`` is anything else."""
    return _digests(_hp.sha256_many_list(messages))


def hmac_sha256_list(key: object, messages: object) -> list[bytes] | None:
    """HMAC-SHA-256 under ``key`` of a list/tuple of bytes, or None when it is anything else."""
    return _digests(_hp.hmac_sha256_many_list(key, messages))
