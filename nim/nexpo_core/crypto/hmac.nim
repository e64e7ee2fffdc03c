## HMAC-SHA-256 (RFC 2104, FIPS 198-1), with the key's inner and outer pad blocks absorbed once
## so a batch under one key costs two SHA-256 finishes per message.
##
## Properties:
## - constant time in the key and the data: no branch or index depends on either (the key's
##   length, which is public, picks the long-key path)
## - every buffer that held the key or a pad is wiped with `ct.wipe` before returning
## - `HmacKey` must be wiped by its owner (`wipe(key)`) when done

import ./sha256, ./ct

type HmacKey* = object
  inner*, outer*: Sha256State  ## SHA-256 states after absorbing key⊕ipad / key⊕opad

proc initHmacKey*(impl: Sha256Impl, key: ptr UncheckedArray[byte], keyLen: int): HmacKey =
  var k: array[64, byte]
  if keyLen > 64:
    sha256(impl, key, keyLen, cast[ptr UncheckedArray[byte]](k[0].addr))
  elif keyLen > 0:
    copyMem(k[0].addr, key[0].addr, keyLen)
  var pad: array[64, byte]
  for i in 0 ..< 64: pad[i] = k[i] xor 0x36
  result.inner = sha256Iv
  compress(impl, result.inner, cast[ptr UncheckedArray[byte]](pad[0].addr), 1)
  for i in 0 ..< 64: pad[i] = k[i] xor 0x5c
  result.outer = sha256Iv
  compress(impl, result.outer, cast[ptr UncheckedArray[byte]](pad[0].addr), 1)
  wipe(k)
  wipe(pad)

proc hmac*(impl: Sha256Impl, key: HmacKey, data: ptr UncheckedArray[byte], len: int,
           output: ptr UncheckedArray[byte]) =
  var inner: array[32, byte]
  sha256From(impl, key.inner, 64, data, len, cast[ptr UncheckedArray[byte]](inner[0].addr))
  sha256From(impl, key.outer, 64, cast[ptr UncheckedArray[byte]](inner[0].addr), 32, output)
  wipe(inner)

proc hmacTwo*(impl: Sha256Impl, key: HmacKey, a, b: ptr UncheckedArray[byte], len: int,
              outA, outB: ptr UncheckedArray[byte]) =
  ## Two messages of the same length, interleaved on SHA-NI.
  var inner: array[64, byte]
  let ia = cast[ptr UncheckedArray[byte]](inner[0].addr)
  let ib = cast[ptr UncheckedArray[byte]](inner[32].addr)
  sha256TwoFrom(impl, key.inner, 64, a, b, len, ia, ib)
  sha256TwoFrom(impl, key.outer, 64, ia, ib, 32, outA, outB)
  wipe(inner)

proc hmacSha256*(key, data: openArray[byte]): Digest =
  ## Convenience for Nim callers and tests.
  let impl = implOf()
  var k = initHmacKey(impl, bytesOf(key), key.len)
  hmac(impl, k, bytesOf(data), data.len,
       cast[ptr UncheckedArray[byte]](result[0].addr))
  wipe(k)
