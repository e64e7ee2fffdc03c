"""nexpo/_hash_lists.py: sha256_many / hmac_sha256_many over a list or tuple of bytes, hashed in
place by nexpo._hashpath (the general joined-buffer path is tests/unit/test_crypto.py's)."""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import threading

import pytest

from nexpo import _hash_lists, crypto

SIZES = (0, 1, 31, 55, 56, 63, 64, 65, 119, 127, 128, 129, 1000, 4096, 70_000)


def _expected(messages: list[bytes]) -> list[bytes]:
    return [hashlib.sha256(m).digest() for m in messages]


@pytest.mark.parametrize("container", [list, tuple])
def test_every_length_and_runs_of_equal_lengths_match_hashlib(container: type) -> None:
    messages = [os.urandom(n) for n in SIZES] + [os.urandom(64) for _ in range(100)] + [b""] * 17
    got = crypto.sha256_many(container(messages))
    assert got == _expected(messages)
    assert all(type(d) is bytes for d in got)
    assert _hash_lists.sha256_list(container(messages)) == got  # this path, not the fallback


def test_hmac_matches_the_standard_library_for_any_key_length() -> None:
    messages = [os.urandom(n) for n in SIZES] * 3
    for key in (b"", b"k", os.urandom(64), os.urandom(65), bytearray(b"mutable key")):
        want = [hmac.new(bytes(key), m, "sha256").digest() for m in messages]
        assert crypto.hmac_sha256_many(key, messages) == want
        assert _hash_lists.hmac_sha256_list(key, messages) == want


def test_large_batches_release_the_gil_and_still_match() -> None:
    messages = [os.urandom(64) for _ in range(50_000)]
    assert crypto.sha256_many(messages) == _expected(messages)


def test_other_items_and_containers_take_the_general_path() -> None:
    mixed = [b"a", bytearray(b"b"), memoryview(b"c")]
    assert _hash_lists.sha256_list(mixed) is None
    assert crypto.sha256_many(mixed) == _expected([b"a", b"b", b"c"])
    assert _hash_lists.sha256_list(iter([b"a"])) is None
    assert crypto.sha256_many(iter([b"a", b"b"])) == _expected([b"a", b"b"])

    class Subclass(bytes):
        pass

    assert _hash_lists.sha256_list([Subclass(b"x")]) is None  # could lie about its buffer
    assert crypto.sha256_many([Subclass(b"x")]) == _expected([b"x"])


def test_empty_and_bad_arguments() -> None:
    assert crypto.sha256_many([]) == []
    assert crypto.hmac_sha256_many(b"k", ()) == []
    with pytest.raises(TypeError, match="key must be a bytes-like object, not str"):
        crypto.hmac_sha256_many("key", [b"x"])
    with pytest.raises(TypeError, match="key"):
        crypto.hmac_sha256_many(None, [b"x"])
    with pytest.raises(TypeError, match="messages"):
        crypto.sha256_many([b"x", "text"])


def test_a_list_changed_by_another_thread_during_the_call_is_hashed_as_it_was() -> None:
    messages = [os.urandom(64) for _ in range(200_000)]
    want = _expected(messages)
    stop = threading.Event()

    def mutate() -> None:
        while not stop.is_set():
            messages.append(b"late")
            messages.pop()
            messages[0], messages[1] = messages[1], messages[0]
            messages[0], messages[1] = messages[1], messages[0]

    thread = threading.Thread(target=mutate)
    thread.start()
    try:
        for _ in range(3):
            got = crypto.sha256_many(messages)
            assert len(got) in (len(want), len(want) + 1)
            assert set(got[2:200_000]) == set(want[2:])
    finally:
        stop.set()
        thread.join(10)


def test_batches_of_several_chunks_and_mixed_lengths_match_hashlib() -> None:
    # The list path hands the batch over in chunks (8192 messages) while it creates the digest
    # objects: runs of 16 equal lengths broken up at odd places, across chunk boundaries.
    messages = [os.urandom(64 if i % 7 else i % 200) for i in range(20_000)]
    got = crypto.sha256_many(messages)
    assert got == _expected(messages)
    assert len({id(d) for d in got}) == len(got)  # one object per digest, each written once
    assert crypto.sha256_many(tuple(messages)) == got


@pytest.mark.parametrize("bad_at", [0, 40_000, 99_999])
def test_a_long_list_with_one_other_item_is_given_back_whole(bad_at: int) -> None:
    # Long lists are snapshotted by the scheduler's threads (nexpo_parallel_for): an item that
    # is not bytes, wherever it is, sends the batch to the general path with every reference
    # the snapshot took given back.
    messages: list[bytes | bytearray] = [os.urandom(64) for _ in range(100_000)]
    messages[bad_at] = bytearray(messages[bad_at])
    counts = [sys.getrefcount(m) for m in messages[::997]]
    assert _hash_lists.sha256_list(messages) is None
    assert [sys.getrefcount(m) for m in messages[::997]] == counts
    assert crypto.sha256_many(messages) == _expected([bytes(m) for m in messages])


def test_a_long_list_holds_its_items_for_the_call_and_no_longer() -> None:
    messages = [os.urandom(64) for _ in range(100_000)]
    counts = [sys.getrefcount(m) for m in messages[::997]]
    assert crypto.sha256_many(messages) == _expected(messages)
    assert [sys.getrefcount(m) for m in messages[::997]] == counts
