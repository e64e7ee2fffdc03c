# Included by capi.nim: the AES-256-GCM exports (declared in aes.h), and the key-object form of
# ChaCha20-Poly1305's calls that the CPython fast path uses.

import ../crypto/aesgcm

type
  AesGcmState = object
    ## The layout of a caller-owned AES-256-GCM key buffer (nexpo_aes256gcm_key_size bytes).
    magic: uint32
    key: AesGcmKey

const aesGcmMagic = 0x41454747'u32  # "AEGG": catches a buffer that was never initialised

proc keyState(state: pointer, stateLen: int): ptr AesGcmState =
  checkPtr(state, stateLen, "state")
  check(stateLen == sizeof(AesGcmState),
        "state: need " & $sizeof(AesGcmState) & " bytes, got " & $stateLen)
  result = cast[ptr AesGcmState](state)
  check(result.magic == aesGcmMagic, "state: not an initialised AES-256-GCM key")

proc checkGcm(nonce: Bytes, nonceLen: int, data: Bytes, len: int, aad: Bytes, aadLen: int) =
  checkPtr(nonce, nonceLen, "nonce")
  checkPtr(data, len, "data")
  checkPtr(aad, aadLen, "aad")
  check(nonceLen == gcmNonceLen, "nonce: must be 12 bytes, got " & $nonceLen)

proc checkSecret(key: Bytes, keyLen: int) =
  checkPtr(key, keyLen, "key")
  check(keyLen == aesKeyLen, "key: must be 32 bytes, got " & $keyLen)

proc gcmSeal(key: AesGcmKey, nonce: Bytes, data: Bytes, len: int, aad: Bytes, aadLen: int,
             output: Bytes, outLen: int) =
  check(int64(len) <= gcmMaxPlaintext, "data: longer than GCM's 2^36 - 32 byte limit")
  checkOut(output, outLen, len + gcmTagLen)
  seal(aesImplOf(), key, nonce, data, len, aad, aadLen, output)
  countCall(kAesGcm, len)

proc gcmOpen(key: AesGcmKey, nonce: Bytes, data: Bytes, len: int, aad: Bytes, aadLen: int,
             output: Bytes, outLen: int) =
  check(len >= gcmTagLen, "data: " & $len & " bytes is shorter than the 16-byte tag")
  check(int64(len - gcmTagLen) <= gcmMaxPlaintext, "data: longer than GCM's 2^36 - 32 byte limit")
  checkOut(output, outLen, len - gcmTagLen)
  countCall(kAesGcm, len)
  if not open(aesImplOf(), key, nonce, data, len, aad, aadLen, output):
    fail(stAuth, "authentication failed: the ciphertext, tag, aad, key or nonce was altered")

proc nexpo_aes256gcm_key_size*(): int {.exportc, cdecl.} = sizeof(AesGcmState)

proc nexpo_aes256gcm_key_init*(state: pointer, stateLen: int, key: Bytes,
                               keyLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(state, stateLen, "state")
    check(stateLen == sizeof(AesGcmState),
          "state: need " & $sizeof(AesGcmState) & " bytes, got " & $stateLen)
    checkSecret(key, keyLen)
    let s = cast[ptr AesGcmState](state)
    initKey(aesImplOf(), s.key, key)
    s.magic = aesGcmMagic

proc nexpo_aes256gcm_key_wipe*(state: pointer, stateLen: int) {.exportc, cdecl.} =
  if state != nil and stateLen > 0: wipe(state, stateLen)

proc nexpo_aes256gcm_seal*(state: pointer, stateLen: int, nonce: Bytes, nonceLen: int,
                           data: Bytes, len: int, aad: Bytes, aadLen: int, output: Bytes,
                           outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    let s = keyState(state, stateLen)
    checkGcm(nonce, nonceLen, data, len, aad, aadLen)
    gcmSeal(s.key, nonce, data, len, aad, aadLen, output, outLen)

proc nexpo_aes256gcm_open*(state: pointer, stateLen: int, nonce: Bytes, nonceLen: int,
                           data: Bytes, len: int, aad: Bytes, aadLen: int, output: Bytes,
                           outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    let s = keyState(state, stateLen)
    checkGcm(nonce, nonceLen, data, len, aad, aadLen)
    gcmOpen(s.key, nonce, data, len, aad, aadLen, output, outLen)

proc nexpo_aes256gcm_encrypt*(key: Bytes, keyLen: int, nonce: Bytes, nonceLen: int, data: Bytes,
                              len: int, aad: Bytes, aadLen: int, output: Bytes,
                              outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkSecret(key, keyLen)
    checkGcm(nonce, nonceLen, data, len, aad, aadLen)
    var k: AesGcmKey
    try:
      initKey(aesImplOf(), k, key)
      gcmSeal(k, nonce, data, len, aad, aadLen, output, outLen)
    finally:
      wipe(k)

proc nexpo_aes256gcm_decrypt*(key: Bytes, keyLen: int, nonce: Bytes, nonceLen: int, data: Bytes,
                              len: int, aad: Bytes, aadLen: int, output: Bytes,
                              outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkSecret(key, keyLen)
    checkGcm(nonce, nonceLen, data, len, aad, aadLen)
    var k: AesGcmKey
    try:
      initKey(aesImplOf(), k, key)
      gcmOpen(k, nonce, data, len, aad, aadLen, output, outLen)
    finally:
      wipe(k)

proc nexpo_aes256gcm_impl*(): int32 {.exportc, cdecl.} =
  ## The variant the next call would use: 0 portable, 1 AES-NI, 2 VAES.
  int32(ord(aesImplOf()))

proc nexpo_aes256gcm_cpu*(): int32 {.exportc, cdecl.} =
  ## The CPU's AES extensions: bit 0 AES-NI + PCLMULQDQ, bit 1 VAES + VPCLMULQDQ on zmm.
  int32(hasAesNi()) or (int32(hasVaes()) shl 1)
