"""Fuzz cases for every public native-backed function except the channels.

A case is one call with hostile arguments and what it must do: return the reference answer,
or raise a refusal (TypeError, ValueError, OverflowError or a NexpoError, with a message).
``lax`` cases (lying objects, racing threads) may do either, never anything else.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cases_ed25519 import ed25519_case
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hostile import JUNK, Arg, BadInt, Indexy, bytes_like, dim, float_matrix, lying, payload
from references import gemm_close, mth, path, sha

import nexpo
from nexpo import crypto, kernels, scheduler

REFUSE = object()  # the call must raise a refusal


@dataclass
class Case:
    name: str
    call: Callable[[], Any]
    expect: Any = REFUSE
    check: Callable[[Any, Any], str | None] | None = None  # None: compare with ==
    lax: bool = False
    refusals: tuple[type[BaseException], ...] = (TypeError, ValueError, OverflowError, nexpo.NexpoError)
    labels: list[str] = field(default_factory=list)


def _expect(args: list[Arg], answer: Callable[[], Any]) -> tuple[Any, bool]:
    if any(a.real is None for a in args):
        return REFUSE, False
    return answer(), any(a.lax for a in args)


# --- kernels ----------------------------------------------------------------------------------


def _plain_float(arr: Any) -> bool:
    return isinstance(arr, np.ndarray) and arr.dtype in (np.float32, np.float64) and arr.dtype.isnative


def _out_ok(arr: Any, shape: tuple[int, int], dtype: Any) -> bool:
    """The documented rules for ``out``."""
    flags = getattr(arr, "flags", None)
    return (isinstance(arr, np.ndarray) and arr.dtype == dtype and arr.shape == shape and flags is not None
            and flags.c_contiguous and flags.writeable and flags.aligned)


def _out_arg(rng: random.Random, a: Arg, m: int, n: int, dtype: Any) -> Arg:
    """``out=`` for an (m, n) product: fresh, aliasing ``a``, of the wrong kind, or lying."""
    kind = rng.randrange(8)
    other = np.float64 if np.dtype(dtype) == np.float32 else np.float32
    real: Any
    if kind == 0 and type(a.value) is np.ndarray:
        value, real, label = a.value, a.value, "out aliases a"
    elif kind == 1:
        value = real = np.empty((n, m) if m != n else (m + 1, n), dtype)
        label = "out wrong shape"
    elif kind == 2:
        value, real, label = np.empty((m, n), other), None, "out wrong dtype"
        real = value
    elif kind == 3:
        value = real = np.empty((m, n), dtype)
        value.setflags(write=False)
        label = "out read-only"
    elif kind == 4:
        real = np.empty((1, 1), dtype)
        value, label = lying(real, shape=(m, n), flags=real.flags), "lying out"
    elif kind == 5:
        value = real = np.empty((n, m), dtype).T
        label = "out Fortran"
    else:
        value = real = np.empty((m, n), dtype)
        label = "out fresh"
    return Arg(value, real if _out_ok(real, (m, n), dtype) else None, label=label)


def matmul_case(rng: random.Random) -> Case:
    dtype = rng.choice([np.float32, np.float64])
    m, k, n = dim(rng), dim(rng), dim(rng)
    k2 = k if rng.random() < 0.9 else dim(rng)
    dtype2 = dtype if rng.random() < 0.9 else rng.choice([np.float32, np.float64])
    a, b = float_matrix(rng, m, k, dtype), float_matrix(rng, k2, n, dtype2)
    args = [a, b]
    ra, rb = a.real, b.real
    valid = (_plain_float(ra) and _plain_float(rb) and ra.ndim == 2 and rb.ndim == 2
             and ra.dtype == rb.dtype and ra.shape[1] == rb.shape[0])
    out = None
    if rng.random() < 0.3:
        out = _out_arg(rng, a, m, n, ra.dtype if valid else dtype)
        args.append(out)
        valid = valid and out.real is not None and (ra.shape[0], rb.shape[1]) == (m, n)
    ca, cb = (ra.copy(), rb.copy()) if valid else (None, None)  # before an aliased out is written
    case = Case("matmul", lambda: kernels.matmul(a.value, b.value, out=None if out is None else out.value),
                labels=[x.label for x in args])
    if valid:
        case.expect, case.lax = (ca, cb), any(x.lax for x in args)
        case.check = lambda got, ab: gemm_close(got, ab[0], ab[1])
    return case


ACTIVATIONS = [None, "relu", "gelu", "tanh", "sigmoid", "softmax"]


def linear_case(rng: random.Random) -> Case:
    dtype = rng.choice([np.float32, np.float64])
    m, k, n = dim(rng), dim(rng), dim(rng)
    x = float_matrix(rng, m, k, dtype, specials=False)
    if rng.random() < 0.2 and type(x.value) is np.ndarray and x.value.ndim == 2:
        row = x.value[:1].reshape(-1)
        x = Arg(row, row, label=x.label + " 1-D")
    w = float_matrix(rng, k, n, dtype, specials=False)
    bias: Arg | None = None
    roll = rng.random()
    if roll < 0.5:
        vec = np.random.default_rng(rng.randrange(2**32)).standard_normal(n * 2).astype(dtype)
        bias = rng.choice([Arg(vec[:n], vec[:n], label="bias"), Arg(vec[::2], vec[::2], label="bias strided"),
                           Arg(np.ones(n + 1, dtype), np.ones(n + 1, dtype), label="bias too long"),
                           Arg(lying(vec[:1].copy(), shape=(n,)), vec[:1], lax=True,
                               label="bias lying shape"),
                           Arg(rng.choice(JUNK[1:]), None, label="bias junk")])
    activation = rng.choice([*ACTIVATIONS, "RELU", "", 3, b"relu"]) if rng.random() < 0.9 else "gelu"
    args = [x, w] + ([bias] if bias is not None else [])
    rx, rw = x.real, w.real
    valid = (_plain_float(rx) and _plain_float(rw) and rx.ndim in (1, 2) and rw.ndim == 2
             and rx.dtype == rw.dtype and rx.shape[-1] == rw.shape[0] and activation in ACTIVATIONS)
    if bias is not None:
        rb = bias.real
        valid = valid and _plain_float(rb) and rb.dtype == rx.dtype and rb.shape == (rw.shape[1],)
    case = Case("linear", lambda: kernels.linear(x.value, w.value, None if bias is None else bias.value,
                                                 activation),  # type: ignore[arg-type]
                labels=[a.label for a in args] + [repr(activation)])
    if valid:
        x2 = rx.reshape(1, -1) if rx.ndim == 1 else rx
        b_real = None if bias is None else bias.real

        def check(got: Any, _: Any) -> str | None:
            got2 = got.reshape(1, -1) if rx.ndim == 1 and isinstance(got, np.ndarray) else got
            return gemm_close(got2, x2, rw, b_real, activation)  # type: ignore[arg-type]

        case.expect, case.check, case.lax = True, check, any(a.lax for a in args)
    return case


# --- crypto -----------------------------------------------------------------------------------


def _messages(rng: random.Random) -> Arg:
    """A batch: a list/tuple/generator of bytes-likes or a 2-D uint8 array (``real``: list of bytes)."""
    roll = rng.random()
    if roll < 0.5:
        items = [bytes_like(rng, junk=0.03) for _ in range(rng.choice([0, 1, 2, 3, 7, 16, 33]))]
        real = None if any(i.real is None for i in items) else [bytes(i.real) for i in items]
        wrap = rng.choice([list, tuple, iter])
        return Arg(wrap([i.value for i in items]), real, label=f"{wrap.__name__} of {len(items)}")
    if roll < 0.85:
        rows, cols = rng.choice([0, 1, 2, 5, 31]), rng.choice([0, 1, 32, 64, 100])
        raw = np.frombuffer(rng.randbytes(rows * cols), np.uint8).reshape(rows, cols)
        kind = rng.randrange(5)
        view = {0: raw, 1: np.asfortranarray(raw), 2: raw[::-1, ::-1].copy()[::-1, ::-1],
                3: np.broadcast_to(raw[:1], raw.shape) if rows else raw,
                4: lying(raw.copy(), shape=(1, 7))}[kind]
        real = [bytes(r) for r in np.asarray(view)]
        return Arg(view, real, lax=kind == 4, label=f"array {view.shape} layout {kind}")
    bad = rng.choice([np.zeros((2, 3, 4), np.uint8), np.zeros((3, 4), np.int16),
                      np.empty((1 << 40, 0), np.uint8),
                      b"single", "text", 7, None, object(), [1, 2], Indexy()])
    return Arg(bad, None, label="bad batch")


def _digests(real: list[bytes], key: bytes | None, as_array: bool) -> Any:
    ds = [sha(m) if key is None else hmac.digest(key, m, "sha256") for m in real]
    return np.frombuffer(b"".join(ds), np.uint8).reshape(len(ds), 32) if as_array else ds


def _array_eq(got: Any, want: Any) -> str | None:
    if isinstance(want, np.ndarray):
        ok = isinstance(got, np.ndarray) and got.shape == want.shape and bool((got == want).all())
    else:
        ok = got == want
    return None if ok else f"wrong answer: {str(got)[:120]}"


def hash_case(rng: random.Random) -> Case:
    kind = rng.randrange(7)
    if kind == 0:
        d = bytes_like(rng)
        if rng.random() < 0.5:
            exp, lax = _expect([d], lambda: hashlib.sha512(bytes(d.real)).digest())
            return Case("sha512", lambda: crypto.sha512(d.value), exp, lax=lax, labels=[d.label])
        exp, lax = _expect([d], lambda: sha(bytes(d.real)))
        return Case("sha256", lambda: crypto.sha256(d.value), exp, lax=lax, labels=[d.label])
    if kind in (1, 2):
        key = bytes_like(rng) if kind == 2 else None
        msgs = _messages(rng)
        as_array = isinstance(msgs.value, np.ndarray)
        args = [msgs] + ([key] if key else [])
        key_real = None if key is None else bytes(key.real) if key.real is not None else b""
        exp, lax = _expect(args, lambda: _digests(msgs.real, key_real, as_array))
        call = (lambda: crypto.sha256_many(msgs.value)) if key is None else (
            lambda: crypto.hmac_sha256_many(key.value, msgs.value))  # type: ignore[union-attr]
        return Case("sha256_many" if key is None else "hmac_sha256_many", call, exp, _array_eq, lax,
                    labels=[a.label for a in args])
    if kind == 3:
        key, d = bytes_like(rng), bytes_like(rng)
        exp, lax = _expect([key, d], lambda: hmac.digest(bytes(key.real), bytes(d.real), "sha256"))
        return Case("hmac_sha256", lambda: crypto.hmac_sha256(key.value, d.value), exp, lax=lax)
    if kind == 4:
        key, d = bytes_like(rng), bytes_like(rng)
        tag_ok = rng.random() < 0.5
        both = key.real is not None and d.real is not None
        true_tag = hmac.digest(bytes(key.real), bytes(d.real), "sha256") if both else b"\0" * 32
        tag_bytes = true_tag if tag_ok else true_tag[: rng.randrange(33)]
        tag = bytes_like(rng, tag_bytes, junk=0.05)
        good = tag_bytes == true_tag
        exp, lax = _expect([key, d, tag], lambda: good)
        return Case("hmac_sha256_verify", lambda: crypto.hmac_sha256_verify(key.value, d.value, tag.value),
                    exp, lax=lax, labels=[key.label, d.label, tag.label])
    return streaming_case(rng)


def streaming_case(rng: random.Random) -> Case:
    parts = [bytes_like(rng, junk=0.02) for _ in range(rng.randrange(1, 5))]
    attack = rng.choice(["_native", "_state", "_ptr", "_lock", None])

    def run() -> Any:
        h = crypto.Sha256(parts[0].value)
        if attack is not None:
            try:
                setattr(h, attack, crypto.ffi.cast("uint8_t *", 8))
            except AttributeError:
                pass
            else:
                return f"{attack} was assignable"
        for p in parts[1:]:
            h = h.copy().update(p.value) if rng.random() < 0.3 else h.update(p.value)
        return h.digest()

    exp, lax = _expect(parts, lambda: sha(b"".join(bytes(p.real) for p in parts)))
    return Case("Sha256", run, exp, lax=lax, labels=[p.label for p in parts] + [f"assign {attack}"])


def merkle_case(rng: random.Random) -> Case:
    leaves = _messages(rng)
    kind = rng.randrange(3)
    if kind == 0:
        exp, lax = _expect([leaves], lambda: mth(leaves.real))
        return Case("merkle_root", lambda: crypto.merkle_root(leaves.value), exp, lax=lax,
                    labels=[leaves.label])
    n = len(leaves.real) if leaves.real is not None else 0
    index: Any = rng.choice([0, n - 1, n, -1, 2**70, True, 1.0, Indexy(), BadInt(max(n - 1, 0))])
    in_range = type(index) in (int, BadInt) and 0 <= int(index) < n
    if kind == 1:
        idx = Arg(index, index if in_range else None)
        exp, lax = _expect([leaves, idx], lambda: path(int(index), leaves.real))
        return Case("merkle_proof", lambda: crypto.merkle_proof(leaves.value, index), exp, lax=lax,
                    labels=[leaves.label, repr(index)])
    real = leaves.real or [b"leaf"]
    i = rng.randrange(len(real))
    proof = path(i, real)
    root, leaf = mth(real), real[i]
    # tamper: 0 none, 1 a 31-byte node (refused), 2 a tree size that cannot hold the leaf
    # (False; -1 refused), 3 a 16-byte root (refused), 4 another leaf (False)
    tamper = rng.randrange(5)
    tree_size: Any = rng.choice([2**64, 2**70, -1, i]) if tamper == 2 else len(real)
    proof_arg = [bytes_like(rng, p, junk=0.02) for p in proof]
    if tamper == 1 and proof:
        proof_arg[0] = Arg(proof[0][:31], None, label="31-byte node")
    root_arg = bytes_like(rng, root, junk=0.02) if tamper != 3 else Arg(root[:16], None, label="16-byte root")
    leaf_arg = bytes_like(rng, leaf if tamper != 4 else leaf + b"!", junk=0.02)
    args = [leaf_arg, root_arg, *proof_arg]
    if tree_size == -1 or any(len(a.real) != 32 for a in args[1:] if a.real is not None):
        args.append(Arg(tree_size, None, label="a node or root not of 32 bytes"))
    exp, lax = _expect(args, lambda: tree_size == len(real) and leaf_arg.real == leaf
                       and root_arg.real == root and [p.real for p in proof_arg] == proof)
    return Case("merkle_verify", lambda: crypto.merkle_verify(leaf_arg.value, i, tree_size,
                                                             [p.value for p in proof_arg], root_arg.value),
                exp, lax=lax, labels=[a.label for a in args] + [f"tamper {tamper}"])


def aead_case(rng: random.Random) -> Case:
    key_len = 32 if rng.random() < 0.85 else rng.choice([0, 16, 31, 33])
    nonce_len = 12 if rng.random() < 0.85 else rng.choice([0, 8, 13])
    key, nonce = bytes_like(rng, rng.randbytes(key_len)), bytes_like(rng, rng.randbytes(nonce_len))
    if key.real is not None and len(key.real) != 32:
        key.real = None
    if nonce.real is not None and len(nonce.real) != 12:
        nonce.real = None
    pt = bytes_like(rng, payload(rng, big=True))
    aad = bytes_like(rng, payload(rng) if rng.random() < 0.5 else b"")
    args = [key, nonce, pt, aad]
    if rng.random() < 0.5:
        exp, lax = _expect(args, lambda: ChaCha20Poly1305(bytes(key.real)).encrypt(
            bytes(nonce.real), bytes(pt.real), bytes(aad.real)))
        return Case("chacha20poly1305_encrypt",
                    lambda: crypto.chacha20poly1305_encrypt(key.value, nonce.value, pt.value, aad.value),
                    exp, lax=lax, labels=[a.label for a in args])
    k = bytes(key.real) if key.real is not None else b"\0" * 32
    nn = bytes(nonce.real) if nonce.real is not None else b"\0" * 12
    plain = bytes(pt.real) if pt.real is not None else b""
    sealed = ChaCha20Poly1305(k).encrypt(nn, plain, bytes(aad.real) if aad.real is not None else b"")
    tampered = rng.random() < 0.3
    if tampered:
        pos = rng.randrange(len(sealed))
        sealed = sealed[:pos] + bytes([sealed[pos] ^ (1 << rng.randrange(8))]) + sealed[pos + 1:]
    ct = bytes_like(rng, sealed, junk=0.05)
    if rng.random() < 0.1:
        ct, tampered = Arg(sealed[: rng.randrange(16)], None, label="shorter than the tag"), False
    exp, lax = _expect([key, nonce, ct, aad], lambda: plain)
    case = Case("chacha20poly1305_decrypt",
                lambda: crypto.chacha20poly1305_decrypt(key.value, nonce.value, ct.value, aad.value),
                exp, lax=lax, labels=[key.label, nonce.label, ct.label, aad.label, f"tampered {tampered}"])
    if tampered and exp is not REFUSE:
        case.expect, case.refusals = REFUSE, (nexpo.AuthenticationError,)
    return case


# --- scheduler ------------------------------------------------------------------------------


def scheduler_case(rng: random.Random) -> Case:
    value: Any = rng.choice([1, 2, 3, 0, -1, 1025, 2**31, 2**63, 2**64 + 1, 1.0, "2", None, True,
                             BadInt(5000), BadInt(-3), BadInt(2), Indexy()])
    valid = type(value) in (int, BadInt) and 1 <= int(value) <= 1024

    def run() -> Any:
        before = scheduler.get_num_threads()
        try:
            scheduler.set_num_threads(value)
            now = scheduler.get_num_threads()
            stats = scheduler.stats()
            return (now, stats["workers"], len(stats["stolen"]))
        finally:
            scheduler.set_num_threads(before)

    want = (int(value), int(value), int(value)) if valid else REFUSE
    return Case("set_num_threads", run, want, labels=[repr(value)])


# --- races ------------------------------------------------------------------------------------


def race_case(rng: random.Random) -> Case:
    """A thread rewrites the caller's arguments while the calls validate them and run without
    the GIL: list entries swap, a bytearray grows, an operand's shape and dtype are reassigned.
    Every answer must be right for some state the arguments went through, or a refusal."""
    n = rng.choice([4, 16, 64])
    variants = [(rng.randbytes(rng.randrange(200)), bytearray(rng.randbytes(rng.randrange(200))))
                for _ in range(n)]
    items: list[Any] = [v[0] for v in variants]
    grown = [{sha(bytes(v[1]) + b"x" * j) for j in range(64)} for v in variants]
    w = np.random.default_rng(rng.randrange(2**32)).standard_normal((64, 64)).astype(np.float32)
    w_ref = w.copy()
    x = np.asfortranarray(w_ref[:8])  # Fortran order: the checked (slow) path
    stop = threading.Event()

    def mutate() -> None:
        grows = 0
        while not stop.is_set():
            i = rng.randrange(n)
            items[i] = variants[i][rng.randrange(2)]
            if grows < 60:
                try:
                    variants[i][1].extend(b"x")
                    grows += 1
                except BufferError:
                    pass
            w.shape = (32, 128)
            w.dtype = np.int32
            w.dtype = np.float32
            w.shape = (64, 64)

    def run() -> Any:
        worker = threading.Thread(target=mutate)
        worker.start()
        results: list[tuple[str, Any]] = []
        try:
            for _ in range(5):
                results.append(("many", crypto.sha256_many(items)))
                for lhs in (x, w_ref[:8]):
                    with contextlib.suppress(TypeError, ValueError):  # caught mid-reassignment
                        results.append(("matmul", kernels.matmul(lhs, w)))
            return results
        finally:
            stop.set()
            worker.join()

    def check(got: Any, _: Any) -> str | None:
        for kind, value in got:
            if kind == "matmul":
                why = gemm_close(value, w_ref[:8], w_ref)
                if why:
                    return "matmul: " + why
                continue
            for i, d in enumerate(value):
                if d != sha(variants[i][0]) and d not in grown[i]:
                    return f"sha256_many[{i}] is the hash of no state the item had"
        return None

    return Case("race", run, True, check)


FAMILIES: list[tuple[Callable[[random.Random], Case], int]] = [
    (matmul_case, 6), (linear_case, 4), (hash_case, 8), (merkle_case, 3), (aead_case, 4),
    (scheduler_case, 1), (race_case, 1), (ed25519_case, 3),
]


def make_case(seed: int, index: int) -> Case:
    rng = random.Random(f"{seed}:{index}")
    family = rng.choices([f for f, _ in FAMILIES], weights=[w for _, w in FAMILIES])[0]
    return family(rng)
