"""Ed25519 against published vectors: RFC 8032 §7.1 (TEST 1, 2, 3, 1024 and SHA(abc)), and the
edge cases where implementations differ (small-order points, non-canonical encodings, S ≥ L),
each compared with `cryptography` (OpenSSL), whose answers we match by design."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nexpo.crypto import (
    Ed25519SigningKey,
    ed25519_public_key,
    ed25519_sign,
    ed25519_verify,
    ed25519_verify_many,
)

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493

MESSAGE_1024 = bytes.fromhex(
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1"
    "e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a"
    "7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10"
    "3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d"
    "502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b"
    "eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b"
    "e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d"
    "cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7"
    "984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09"
    "43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161"
    "0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca"
    "c60c905c15fc910840b94c00a0b9d0"
)

# (seed, public key, message, signature), hex
RFC8032 = {
    "TEST 1": (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
        "6bd25bf5f0595bbe24655141438e7a100b",
    ),
    "TEST 2": (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d"
        "8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    "TEST 3": (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6"
        "594a7c15e9716ed28dc027beceea1ec40a",
    ),
    "TEST 1024": (
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        MESSAGE_1024.hex(),
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d9"
        "4b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    "TEST SHA(abc)": (
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        hashlib.sha512(b"abc").hexdigest(),
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0"
        "303dca179c138ac17ad9bef1177331a704",
    ),
}


@pytest.mark.parametrize("name", list(RFC8032))
def test_rfc8032_vectors(name: str) -> None:
    seed, public, message, signature = (bytes.fromhex(h) for h in RFC8032[name])
    assert ed25519_public_key(seed) == public
    assert ed25519_sign(seed, message) == signature
    key = Ed25519SigningKey(seed)
    assert key.public_key == public
    assert key.sign(message) == signature
    assert ed25519_verify(public, message, signature)
    assert not ed25519_verify(public, message + b"\x00", signature)


def test_rfc8032_vectors_on_every_isa_path(isa: str) -> None:
    """The SHA-512 inside signing and verification runs on the forced path."""
    for seed_hex, public_hex, message_hex, signature_hex in RFC8032.values():
        seed, public = bytes.fromhex(seed_hex), bytes.fromhex(public_hex)
        message, signature = bytes.fromhex(message_hex), bytes.fromhex(signature_hex)
        assert ed25519_sign(seed, message) == signature, isa
        assert Ed25519SigningKey(seed).sign(message) == signature, isa
        assert ed25519_verify(public, message, signature), isa
        assert ed25519_verify_many([public] * 3, [message] * 3, [signature] * 3) == [True] * 3


def test_test_1024_message_is_1023_bytes() -> None:
    assert len(MESSAGE_1024) == 1023


def test_rfc8032_vectors_in_one_batch() -> None:
    rows = [tuple(bytes.fromhex(h) for h in v) for v in RFC8032.values()]
    keys = [r[1] for r in rows]
    msgs = [r[2] for r in rows]
    sigs = [r[3] for r in rows]
    assert ed25519_verify_many(keys, msgs, sigs) == [True] * len(rows)
    sigs[1] = sigs[0]
    assert ed25519_verify_many(keys, msgs, sigs) == [True, False, True, True, True]


# --- edge cases, judged by cryptography -----------------------------------------------------


def _enc(y: int, sign: int = 0) -> bytes:
    return (y | (sign << 255)).to_bytes(32, "little")


# The eight points of small order in their canonical encodings, plus non-canonical spellings
# (x = 0 with the sign bit set; y = p, p + 1, ... which OpenSSL reduces mod p).
SMALL_ORDER = [
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",  # identity
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
        "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
        "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    )
]
NON_CANONICAL = [
    _enc(1, 1),  # identity with the sign bit
    _enc(P - 1, 1),  # order 2 with the sign bit
    *(_enc(P + k, s) for k in range(19) for s in (0, 1)),  # y ≥ p
]
NOT_ON_CURVE = [_enc(2), _enc(P - 2, 1)]
KEYS = SMALL_ORDER + NON_CANONICAL + NOT_ON_CURVE
R_VALUES = SMALL_ORDER + NON_CANONICAL[:8]
S_VALUES = [0, 1, L - 1, L, L + 1, 2**253 - 1, 2**256 - 1]


def _reference(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def test_edge_cases_match_cryptography() -> None:
    """Every key × R × S × message combination answers as cryptography does (some small-order
    combinations verify there: the equation is cofactorless and OpenSSL has no extra check)."""
    cases = [
        (key, msg, r + s.to_bytes(32, "little"))
        for key in KEYS
        for r in R_VALUES
        for s in S_VALUES
        for msg in (b"", b"ed25519 edge")
    ]
    expected = [_reference(*case) for case in cases]
    assert [ed25519_verify(*case) for case in cases] == expected
    assert any(expected) and not all(expected)
    keys, msgs, sigs = zip(*cases, strict=True)
    assert ed25519_verify_many(keys, msgs, sigs) == expected


def test_s_at_or_above_l_is_rejected() -> None:
    _, public, message, signature = (bytes.fromhex(h) for h in RFC8032["TEST 2"])
    s = int.from_bytes(signature[32:], "little")
    for bigger in (s + L, s + 2 * L, s + 8 * L, s + 15 * L):
        if bigger < 2**256:
            forged = signature[:32] + bigger.to_bytes(32, "little")
            assert not ed25519_verify(public, message, forged)
            assert not _reference(public, message, forged)


def test_r_with_its_sign_bit_flipped_is_rejected() -> None:
    _, public, message, signature = (bytes.fromhex(h) for h in RFC8032["TEST 1"])
    flipped = signature[:31] + bytes([signature[31] ^ 0x80]) + signature[32:]
    assert not ed25519_verify(public, message, flipped)
    assert not _reference(public, message, flipped)


# --- mixed-order points: a genuine key or R plus a point of small order -----------------------

_D = (-121665 * pow(121666, P - 2, P)) % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)


def _decode(s: bytes) -> tuple[int, int]:
    """Affine (x, y) of a canonical encoding (slow reference, test data only)."""
    y = int.from_bytes(s, "little") & (2**255 - 1)
    xx = (y * y - 1) * pow(_D * y * y + 1, P - 2, P) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * _SQRT_M1 % P
    assert (x * x - xx) % P == 0
    if x & 1 != s[31] >> 7:
        x = (P - x) % P
    return x, y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


def _encode(pt: tuple[int, int]) -> bytes:
    return _enc(pt[1], pt[0] & 1)


def test_mixed_order_keys_and_r_match_cryptography() -> None:
    """A genuine signature checked under A + T, or with R + T, for every small-order T: the
    cofactorless equation accepts exactly when the torsion terms cancel, as in OpenSSL."""
    torsion = [_decode(t) for t in SMALL_ORDER]
    results = []
    for i in range(24):
        seed = hashlib.sha256(b"mixed %d" % i).digest()
        message = b"mixed order %d" % i
        public = ed25519_public_key(seed)
        signature = ed25519_sign(seed, message)
        a, r = _decode(public), _decode(signature[:32])
        for t in torsion:
            cases = [
                (_encode(_add(a, t)), message, signature),
                (public, message, _encode(_add(r, t)) + signature[32:]),
            ]
            for case in cases:
                expected = _reference(*case)
                assert ed25519_verify(*case) is expected
                results.append(expected)
    assert True in results and False in results  # both outcomes occur
