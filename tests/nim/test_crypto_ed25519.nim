## Nim-level tests of Ed25519: RFC 8032 §7.1 vectors (keys, signatures, verification), tamper
## rejection, S ≥ L, field identities, and the scalar reduction against a slow reference.
## Quick enough to run under ASan+UBSan.

import std/[unittest, strutils]
import nexpo_core
import nexpo_core/capi
import nexpo_core/errors
import nexpo_core/crypto/ed25519
import nexpo_core/crypto/ed25519/[field, scalar]

proc fromHex(s: string): seq[byte] =
  for i in countup(0, s.len - 2, 2): result.add byte(parseHexInt(s[i .. i + 1]))

proc hexOf(p: openArray[byte]): string =
  for b in p: result.add b.toHex(2).toLowerAscii

template P(s: seq[byte]): ptr UncheckedArray[byte] =
  (if s.len == 0: nil else: cast[ptr UncheckedArray[byte]](s[0].unsafeAddr))

type Vector = tuple[seed, pub, msg, sig: string]

const vectors: array[3, Vector] = [
  ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
   "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
   "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
  ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
   "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
   "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
  ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
   "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
   "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a")]

suite "ed25519":
  test "init":
    check nexpo_init() == 0

  test "RFC 8032 7.1 vectors":
    for v in vectors:
      let seed = fromHex(v.seed)
      let msg = fromHex(v.msg)
      var pub = newSeq[byte](32)
      publicKey(P(seed), P(pub))
      check hexOf(pub) == v.pub
      var sig = newSeq[byte](64)
      sign(P(seed), P(msg), msg.len, P(sig))
      check hexOf(sig) == v.sig
      check verify(P(pub), P(msg), msg.len, P(sig))
      var key = newSeq[byte](ed25519SigningKeySize)  # the key object's path: the same signature
      signingKey(P(seed), P(key))
      check hexOf(key[64 ..< 96]) == v.pub
      var sig2 = newSeq[byte](64)
      signWithKey(P(key), P(msg), msg.len, P(sig2))
      check sig2 == sig

  test "tampering is rejected":
    let v = vectors[2]
    let pub = fromHex(v.pub)
    let msg = fromHex(v.msg)
    let sig = fromHex(v.sig)
    for i in 0 ..< 64:
      var bad = sig
      bad[i] = bad[i] xor 1
      check not verify(P(pub), P(msg), msg.len, P(bad))
    var badMsg = msg
    badMsg[0] = badMsg[0] xor 0x80
    check not verify(P(pub), P(badMsg), badMsg.len, P(sig))

  test "S + L is rejected":
    let v = vectors[0]
    let pub = fromHex(v.pub)
    var sig = fromHex(v.sig)
    # S + L (little-endian add of L's bytes)
    let L = fromHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
    var carry = 0
    for i in 0 ..< 32:
      let t = int(sig[32 + i]) + int(L[i]) + carry
      sig[32 + i] = byte(t and 0xff)
      carry = t shr 8
    check not verify(P(pub), nil, 0, P(sig))

  test "field: inversion and square root exponent":
    var x: Fe = [12345'u64, 678, 91011, 1213, 1415]
    check equal(mul(x, invert(x)), feOne)
    check equal(sq(feSqrtM1), feZero - feOne)

  test "scalar: reduce of L and of 2^512 - 1":
    var h: array[64, byte]
    let L = fromHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
    for i in 0 ..< 32: h[i] = L[i]
    check reduce(h) == default(Scalar)
    for i in 0 ..< 64: h[i] = 0xff
    # (2^512 - 1) mod L, from Python
    check hexOf(reduce(h)) == "000f9c44e31106a447938568a71b0ed065bef517d273ecce3d9a307c1b419903"

  test "field: encoding is canonical and decoding reduces y mod p":
    var p = fromHex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")  # p
    var enc = newSeq[byte](32)
    toBytes(enc, fromBytes(p))
    check hexOf(enc) == "0000000000000000000000000000000000000000000000000000000000000000"
    p[0] = 0xee                                                                      # p + 1
    toBytes(enc, fromBytes(p))
    check hexOf(enc) == "0100000000000000000000000000000000000000000000000000000000000000"
    toBytes(enc, feZero - feOne)                                                     # p - 1
    check hexOf(enc) == "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"

  test "C ABI: verify_many, one bad item, and refused arguments":
    var keys, sigs, msgs: seq[byte]
    var lengths: seq[uint64]
    for v in vectors:
      keys.add fromHex(v.pub)
      sigs.add fromHex(v.sig)
      msgs.add fromHex(v.msg)
      lengths.add uint64(fromHex(v.msg).len)
    sigs[64 + 40] = sigs[64 + 40] xor 1
    var ok = newSeq[byte](3)
    check nexpo_ed25519_verify_many(P(keys), keys.len, P(msgs), msgs.len,
                                    cast[ptr UncheckedArray[uint64]](lengths[0].addr), 3,
                                    P(sigs), sigs.len, P(ok), 3) == 0
    check ok == @[1'u8, 0, 1]
    let lens = cast[ptr UncheckedArray[uint64]](lengths[0].addr)
    check nexpo_ed25519_verify_many(P(keys), keys.len - 1, P(msgs), msgs.len, lens, 3,
                                    P(sigs), sigs.len, P(ok), 3) == int32(ord(stInvalid))
    check nexpo_ed25519_verify_many(P(keys), keys.len, P(msgs), msgs.len, lens, 3,
                                    P(sigs), sigs.len, P(ok), 2) == int32(ord(stInvalid))
    check nexpo_ed25519_verify_many(P(keys), keys.len, P(msgs), msgs.len, lens, -1,
                                    P(sigs), sigs.len, P(ok), 3) == int32(ord(stInvalid))
    check nexpo_ed25519_verify_many(P(keys), keys.len, P(msgs), msgs.len, lens, high(int) div 32,
                                    P(sigs), sigs.len, P(ok), 3) == int32(ord(stInvalid))
    var seed = fromHex(vectors[0].seed)
    var sig = newSeq[byte](64)
    check nexpo_ed25519_sign(P(seed), 31, nil, 0, P(sig), 64) == int32(ord(stInvalid))
    check nexpo_ed25519_sign(P(seed), 32, nil, 0, P(sig), 63) == int32(ord(stInvalid))
    check nexpo_ed25519_sign(P(seed), 32, nil, 5, P(sig), 64) == int32(ord(stInvalid))
    check nexpo_ed25519_sign(P(seed), 32, nil, 0, P(sig), 64) == 0
    check hexOf(sig) == vectors[0].sig
    var key = newSeq[byte](96)
    check nexpo_ed25519_signing_key(P(seed), 31, P(key), 96) == int32(ord(stInvalid))
    check nexpo_ed25519_signing_key(P(seed), 32, P(key), 95) == int32(ord(stInvalid))
    check nexpo_ed25519_signing_key(P(seed), 32, nil, 96) == int32(ord(stInvalid))
    check nexpo_ed25519_signing_key(P(seed), 32, P(key), 96) == 0
    check nexpo_ed25519_sign_with_key(P(key), 95, nil, 0, P(sig), 64) == int32(ord(stInvalid))
    check nexpo_ed25519_sign_with_key(P(key), 96, nil, 0, P(sig), 63) == int32(ord(stInvalid))
    check nexpo_ed25519_sign_with_key(P(key), 96, nil, 5, P(sig), 64) == int32(ord(stInvalid))
    check nexpo_ed25519_sign_with_key(nil, 96, nil, 0, P(sig), 64) == int32(ord(stInvalid))
    check nexpo_ed25519_sign_with_key(P(key), 96, nil, 0, P(sig), 64) == 0
    check hexOf(sig) == vectors[0].sig
    var verdict: int32
    check nexpo_ed25519_verify(P(keys), 32, nil, 0, P(sig), 63, verdict.addr) == 0
    check verdict == 0
    check nexpo_ed25519_verify(P(keys), 32, nil, 0, P(sig), 64, verdict.addr) == 0
    check verdict == 1
    check nexpo_ed25519_verify(P(keys), 33, nil, 0, P(sig), 64, verdict.addr) == int32(ord(stInvalid))
