"""The AEAD call path (nexpo/_aeadpath.c): the argument forms the key objects and one-shot
calls accept, and hostile arguments — wrong types, wrong sizes, non-contiguous views, a message
over the limit, pickling, subclassing, sharing one key object between threads.
"""

from __future__ import annotations

import array
import mmap
import pickle
import random
import threading

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import nexpo
from nexpo import _aead, crypto

KEY_OBJECTS = [crypto.AesGcm, crypto.ChaCha20Poly1305]


@pytest.fixture(params=KEY_OBJECTS, ids=["AesGcm", "ChaCha20Poly1305"])
def cls(request: pytest.FixtureRequest) -> type:
    return request.param  # type: ignore[no-any-return]


def test_exported_from_nexpo_crypto() -> None:
    for name in ("AesGcm", "ChaCha20Poly1305", "aes256gcm_encrypt", "aes256gcm_decrypt"):
        assert name in crypto.__all__
    assert crypto.AesGcm.__name__ == "AesGcm"
    assert "nexpo.crypto.AesGcm" in repr(crypto.AesGcm(bytes(32)))


def test_every_bytes_like_is_accepted(cls: type) -> None:
    key, nonce, pt, aad = bytes(range(32)), bytes(12), b"hello, world" * 5, b"header"
    sealed = cls(key).encrypt(nonce, pt, aad)
    for convert in (bytes, bytearray, memoryview, lambda b: array.array("B", b)):
        obj = cls(convert(key))
        assert obj.encrypt(convert(nonce), convert(pt), convert(aad)) == sealed
        assert obj.decrypt(convert(nonce), convert(sealed), convert(aad)) == pt


def test_aad_may_be_none_omitted_or_a_keyword(cls: type) -> None:
    obj, nonce = cls(bytes(32)), bytes(12)
    sealed = obj.encrypt(nonce, b"data")
    assert obj.encrypt(nonce, b"data", None) == sealed
    assert obj.encrypt(nonce, b"data", b"") == sealed
    assert obj.encrypt(nonce, b"data", aad=None) == sealed
    assert obj.decrypt(nonce, sealed, associated_data=None) == b"data"
    with_aad = obj.encrypt(nonce, b"data", aad=b"x")
    assert obj.decrypt(nonce, with_aad, b"x") == b"data"


def test_shaped_like_cryptography_aesgcm() -> None:
    rng = random.Random(5)
    key, nonce, pt, aad = rng.randbytes(32), rng.randbytes(12), rng.randbytes(77), rng.randbytes(9)
    ref = AESGCM(key)
    ours = crypto.AesGcm(key)
    assert ours.encrypt(nonce, pt, aad) == ref.encrypt(nonce, pt, aad)
    assert ours.encrypt(nonce, pt, None) == ref.encrypt(nonce, pt, None)
    assert ours.decrypt(nonce, ref.encrypt(nonce, pt, aad), aad) == pt


def test_wrong_types_are_type_errors(cls: type) -> None:
    obj = cls(bytes(32))
    sealed = obj.encrypt(bytes(12), b"x")
    for bad in ("text", 12, 1.5, [1, 2], object()):
        with pytest.raises(TypeError, match="key must be a bytes-like object"):
            cls(bad)
        with pytest.raises(TypeError, match="nonce must be a bytes-like object"):
            obj.encrypt(bad, b"x")
        with pytest.raises(TypeError, match="data must be a bytes-like object"):
            obj.encrypt(bytes(12), bad)
        with pytest.raises(TypeError, match="aad must be a bytes-like object"):
            obj.encrypt(bytes(12), b"x", bad)
        with pytest.raises(TypeError, match="data must be a bytes-like object"):
            obj.decrypt(bytes(12), bad)
    with pytest.raises(TypeError, match="key must be a bytes-like object"):
        cls(None)
    with pytest.raises(TypeError, match="data must be a bytes-like object"):
        obj.encrypt(bytes(12), None)
    assert obj.decrypt(bytes(12), sealed) == b"x"


def test_wrong_argument_counts_and_keywords(cls: type) -> None:
    obj = cls(bytes(32))
    with pytest.raises(TypeError):
        obj.encrypt(bytes(12))
    with pytest.raises(TypeError):
        obj.encrypt(bytes(12), b"x", b"", b"")
    with pytest.raises(TypeError, match="unexpected keyword"):
        obj.encrypt(bytes(12), b"x", tag=b"")
    with pytest.raises(TypeError):
        obj.encrypt(nonce=bytes(12), data=b"x")
    with pytest.raises(TypeError):
        cls()
    with pytest.raises(TypeError):
        crypto.aes256gcm_encrypt()


def test_wrong_sizes_are_value_errors(cls: type) -> None:
    for key in (b"", bytes(16), bytes(24), bytes(31), bytes(33), bytes(64)):
        with pytest.raises(ValueError, match="key must be 32 bytes"):
            cls(key)
        with pytest.raises(ValueError, match="key must be 32 bytes"):
            crypto.aes256gcm_encrypt(key, bytes(12), b"x")
        with pytest.raises(ValueError, match="key must be 32 bytes"):
            crypto.aes256gcm_decrypt(key, bytes(12), bytes(17))
    obj = cls(bytes(32))
    for nonce in (b"", bytes(8), bytes(11), bytes(13), bytes(16)):
        with pytest.raises(ValueError, match="nonce must be 12 bytes"):
            obj.encrypt(nonce, b"x")
        with pytest.raises(ValueError, match="nonce must be 12 bytes"):
            obj.decrypt(nonce, bytes(17))
        with pytest.raises(ValueError, match="nonce must be 12 bytes"):
            crypto.aes256gcm_encrypt(bytes(32), nonce, b"x")
    for short in (b"", bytes(1), bytes(15)):
        with pytest.raises(ValueError, match="16-byte tag"):
            obj.decrypt(bytes(12), short)
        with pytest.raises(ValueError, match="16-byte tag"):
            crypto.aes256gcm_decrypt(bytes(32), bytes(12), short)


def test_non_contiguous_views_are_value_errors(cls: type) -> None:
    obj = cls(bytes(32))
    strided = memoryview(bytes(64))[::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        obj.encrypt(bytes(12), strided)
    with pytest.raises(ValueError, match="C-contiguous"):
        obj.encrypt(strided[:12], b"x")
    with pytest.raises(ValueError, match="C-contiguous"):
        obj.encrypt(bytes(12), b"x", strided)
    with pytest.raises(ValueError, match="C-contiguous"):
        cls(strided)


def test_a_message_over_the_limit_is_refused_before_any_allocation() -> None:
    """2^36 bytes of address space (never touched): refused with ValueError, not MemoryError."""
    try:
        huge = mmap.mmap(-1, 1 << 36, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000)  # NORESERVE
    except (OSError, OverflowError, ValueError):
        pytest.skip("this system cannot reserve 64 GiB of address space")
    try:
        view = memoryview(huge)
        assert len(view) > _aead.AES256GCM_MAX
        with pytest.raises(ValueError, match="message limit"):
            crypto.AesGcm(bytes(32)).encrypt(bytes(12), view)
        with pytest.raises(ValueError, match="message limit"):
            crypto.aes256gcm_encrypt(bytes(32), bytes(12), view)
        with pytest.raises(ValueError, match="message limit"):
            crypto.AesGcm(bytes(32)).decrypt(bytes(12), view[: _aead.AES256GCM_MAX + 17])
        view.release()
    finally:
        huge.close()


def test_key_objects_cannot_be_pickled_or_subclassed(cls: type) -> None:
    obj = cls(bytes(32))
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(obj)
    with pytest.raises(TypeError):
        type("Sub", (cls,), {})


def test_the_key_is_copied_at_construction(cls: type) -> None:
    key = bytearray(32)
    obj = cls(key)
    sealed = obj.encrypt(bytes(12), b"x")
    key[0] = 1
    assert obj.encrypt(bytes(12), b"x") == sealed
    assert cls(bytes(32)).decrypt(bytes(12), sealed) == b"x"


def test_a_failed_decrypt_releases_nothing(cls: type) -> None:
    obj = cls(bytes(32))
    sealed = bytearray(obj.encrypt(bytes(12), b"secret" * 1000))
    sealed[-1] ^= 1
    with pytest.raises(nexpo.AuthenticationError) as info:
        obj.decrypt(bytes(12), sealed)
    assert "secret" not in str(info.value)


def test_one_key_object_shared_by_threads(cls: type) -> None:
    """Long messages run without the GIL: several threads use one key object at once."""
    obj = cls(bytes(range(32)))
    size = _aead.GIL_MINSIZE * 8
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(20):
                nonce, pt = rng.randbytes(12), rng.randbytes(rng.choice([10, size]))
                assert obj.decrypt(nonce, obj.encrypt(nonce, pt)) == pt
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert not any(t.is_alive() for t in threads)
