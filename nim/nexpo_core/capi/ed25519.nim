# Included by capi.nim: the Ed25519 exports (declared in ed25519.h).

import ../crypto/ed25519 as ed
import ../crypto/batch as edbatch

proc checkSize(p: ptr UncheckedArray[byte], len, need: int, name: string) =
  checkPtr(p, len, name)
  check(len == need, name & ": need " & $need & " bytes, got " & $len)

proc nexpo_ed25519_public_key*(seed: ptr UncheckedArray[byte], seedLen: int,
                               output: ptr UncheckedArray[byte], outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkSize(seed, seedLen, ed25519SeedSize, "seed")
    checkPtr(output, outLen, "out")
    check(outLen >= 32, "out: need 32 bytes, got " & $outLen)
    ed.publicKey(seed, output)

proc nexpo_ed25519_sign*(seed: ptr UncheckedArray[byte], seedLen: int,
                         msg: ptr UncheckedArray[byte], len: int,
                         output: ptr UncheckedArray[byte], outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkSize(seed, seedLen, ed25519SeedSize, "seed")
    checkPtr(msg, len, "message")
    checkPtr(output, outLen, "out")
    check(outLen >= 64, "out: need 64 bytes, got " & $outLen)
    ed.sign(seed, msg, len, output)

proc nexpo_ed25519_signing_key*(seed: ptr UncheckedArray[byte], seedLen: int,
                                output: ptr UncheckedArray[byte], outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkSize(seed, seedLen, ed25519SeedSize, "seed")
    checkPtr(output, outLen, "out")
    check(outLen >= ed25519SigningKeySize, "out: need 96 bytes, got " & $outLen)
    ed.signingKey(seed, output)

proc nexpo_ed25519_sign_with_key*(key: ptr UncheckedArray[byte], keyLen: int,
                                  msg: ptr UncheckedArray[byte], len: int,
                                  output: ptr UncheckedArray[byte], outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkSize(key, keyLen, ed25519SigningKeySize, "key")
    checkPtr(msg, len, "message")
    checkPtr(output, outLen, "out")
    check(outLen >= 64, "out: need 64 bytes, got " & $outLen)
    ed.signWithKey(key, msg, len, output)

proc nexpo_ed25519_verify*(key: ptr UncheckedArray[byte], keyLen: int,
                           msg: ptr UncheckedArray[byte], len: int,
                           sig: ptr UncheckedArray[byte], sigLen: int,
                           ok: ptr int32): int32 {.exportc, cdecl.} =
  cabi:
    checkSize(key, keyLen, ed25519PublicKeySize, "public_key")
    checkPtr(msg, len, "message")
    checkPtr(sig, sigLen, "signature")
    check(ok != nil, "ok: NULL")
    ok[] = int32(sigLen == ed25519SignatureSize and ed.verify(key, msg, len, sig))

proc nexpo_ed25519_verify_many*(keys: ptr UncheckedArray[byte], keysLen: int,
                                data: ptr UncheckedArray[byte], len: int,
                                lengths: ptr UncheckedArray[uint64], n: int,
                                sigs: ptr UncheckedArray[byte], sigsLen: int,
                                output: ptr UncheckedArray[byte], outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    check(n >= 0 and n <= high(int) div 64, "n: " & $n & " items is out of range")
    var b = edbatch.initBatch(data, len, lengths, n, "messages")
    checkSize(keys, keysLen, 32 * n, "public_keys")
    checkSize(sigs, sigsLen, 64 * n, "signatures")
    checkPtr(output, outLen, "out")
    check(outLen >= n, "out: need " & $n & " bytes, got " & $outLen)
    ed.verifyMany(keys, b, sigs, output)
