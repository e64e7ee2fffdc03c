"""The binding layer: status codes become exceptions, buffers are checked, ISA paths switch."""

from __future__ import annotations

import threading

import pytest

from nexpo import _native
from nexpo._native import NULL, ffi, lib
from nexpo.errors import AuthenticationError, ChannelClosed, ChannelCorrupted, NexpoError


def test_null_output_pointer_raises_value_error() -> None:
    with pytest.raises(ValueError, match="NULL pointer"):
        _native.check(lib.nexpo_nim_version(NULL, 10))


def test_too_short_output_buffer_raises_value_error() -> None:
    out = ffi.new("char[]", 2)
    with pytest.raises(ValueError, match="too small, need"):
        _native.check(lib.nexpo_nim_version(out, 2))


def test_length_that_wraps_negative_is_rejected() -> None:
    # size_t in C, a signed int in Nim: a length with the top bit set must not be trusted
    out = ffi.new("uint64_t[]", 4)
    workers = ffi.new("int32_t *")
    with pytest.raises(ValueError, match="negative length"):
        _native.check(lib.nexpo_scheduler_stats(out, 2**63, workers))


def test_last_error_is_per_thread() -> None:
    with pytest.raises(ValueError, match="NULL"):
        _native.check(lib.nexpo_nim_version(NULL, 10))
    seen: list[str] = []
    thread = threading.Thread(target=lambda: seen.append(_native.last_error()))
    thread.start()
    thread.join()
    assert seen == [""]
    assert "NULL" in _native.last_error()


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        ("NEXPO_EINVAL", ValueError),
        ("NEXPO_ETYPE", TypeError),
        ("NEXPO_ENOMEM", MemoryError),
        ("NEXPO_EAUTH", AuthenticationError),
        ("NEXPO_ETIMEOUT", TimeoutError),
        ("NEXPO_ECLOSED", ChannelClosed),
        ("NEXPO_EINTERNAL", NexpoError),
        ("NEXPO_EUNSUPPORTED", NexpoError),
        ("NEXPO_ECORRUPT", ChannelCorrupted),
    ],
)
def test_status_codes_map_to_exceptions(status: str, exc_type: type[Exception]) -> None:
    assert isinstance(_native.error_for(getattr(lib, status)), exc_type)


def test_ok_status_does_not_raise() -> None:
    _native.check(lib.NEXPO_OK)


@pytest.mark.parametrize("bad", ["text", 42, None, [1, 2]])
def test_read_buffer_rejects_non_buffers(bad: object) -> None:
    with pytest.raises(TypeError, match="data must be a bytes-like object"):
        _native.read_buffer(bad, "data")


def test_read_buffer_accepts_bytes_likes_without_copying() -> None:
    source = bytearray(b"abcdef")
    buf, length = _native.read_buffer(memoryview(source)[1:4], "data")
    assert length == 3
    assert bytes(ffi.buffer(buf, length)) == b"bcd"
    source[1] = ord("X")  # a view, not a copy
    assert bytes(ffi.buffer(buf, length)) == b"Xcd"


def test_read_buffer_passes_bytes_through() -> None:
    data = b"payload"
    assert _native.read_buffer(data, "data") == (data, 7)


def test_write_buffer_rejects_read_only() -> None:
    with pytest.raises(TypeError, match="out must be a writable bytes-like object"):
        _native.write_buffer(b"immutable", "out")
    _, length = _native.write_buffer(bytearray(4), "out")
    assert length == 4


def test_every_available_isa_can_be_forced(isa: str) -> None:
    assert _native.isa_active() == isa


def test_unknown_isa_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="isa must be one of portable, avx2, avx512"):
        _native.set_isa("sse9")


def test_isa_wider_than_cpu_is_refused_natively() -> None:
    beyond = lib.nexpo_isa_best() + 1
    if beyond > lib.NEXPO_ISA_AVX512:
        beyond = 99  # the CPU has every path: check the unknown-path error instead
    with pytest.raises((NexpoError, ValueError)):
        _native.check(lib.nexpo_isa_set(beyond))


def test_init_is_idempotent_and_thread_safe() -> None:
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(lib.nexpo_init())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * 8
