## HMAC-SHA-512 (RFC 2104, FIPS 198-1; the SHA-512 cases of RFC 4231), on the SHA-512 path
## `sha512ImplOf()` picks.
##
## Properties:
## - constant time in the key and the data: no branch or index depends on either (the key's
##   length, which is public, picks the long-key path)
## - every buffer that held the key, a pad or the inner digest is wiped with `ct.wipe`
## - `Hmac512Key` must be wiped by its owner (`wipe(key)`) when done

import ./sha512, ./ct

type Hmac512Key* = object
  inner*, outer*: Sha512State  ## SHA-512 states after absorbing key⊕ipad / key⊕opad

proc padState(impl: Sha512Impl, k: array[128, byte], pad: byte): Sha512State =
  var ctx: Sha512Ctx
  var block128: array[128, byte]
  for i in 0 ..< 128: block128[i] = k[i] xor pad
  ctx.init()
  ctx.update(impl, cast[ptr UncheckedArray[byte]](block128[0].addr), 128)   # one whole block
  result = ctx.state
  wipe(block128)
  wipe(ctx)

proc initHmac512Key*(impl: Sha512Impl, key: ptr UncheckedArray[byte], keyLen: int): Hmac512Key =
  ## A key longer than the 128-byte block is replaced by its SHA-512 digest (RFC 2104 §2).
  var k: array[128, byte]
  if keyLen > 128:
    sha512(impl, key, keyLen, cast[ptr UncheckedArray[byte]](k[0].addr))
  elif keyLen > 0:
    copyMem(k[0].addr, key[0].addr, keyLen)
  result.inner = padState(impl, k, 0x36)
  result.outer = padState(impl, k, 0x5c)
  wipe(k)

proc hmac512*(impl: Sha512Impl, key: Hmac512Key, data: ptr UncheckedArray[byte], len: int,
              output: ptr UncheckedArray[byte]) =
  ## HMAC-SHA-512 of data[0..len) into output[0..64).
  var ctx = Sha512Ctx(state: key.inner, total: 128)
  var inner: array[64, byte]
  if len > 0: ctx.update(impl, data, len)
  ctx.finish(impl, cast[ptr UncheckedArray[byte]](inner[0].addr))
  ctx = Sha512Ctx(state: key.outer, total: 128)
  ctx.update(impl, cast[ptr UncheckedArray[byte]](inner[0].addr), 64)
  ctx.finish(impl, output)
  wipe(inner)
  wipe(ctx)

proc hmacSha512*(key, data: openArray[byte]): Digest512 =
  ## Convenience for Nim callers and tests.
  let impl = sha512ImplOf()
  var k = initHmac512Key(impl, bytesOf(key), key.len)
  hmac512(impl, k, bytesOf(data), data.len, cast[ptr UncheckedArray[byte]](result[0].addr))
  wipe(k)
