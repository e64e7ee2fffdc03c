## What every AES-GCM variant shares: the expanded key and its GHASH powers, and the GF(2^128)
## arithmetic in POLYVAL's bit order (RFC 8452 appendix A), which all variants use for GHASH.
##
## GHASH in POLYVAL form: with every block byte-reversed, GHASH(H, X) equals POLYVAL under the
## key mulX(reverse(H)), where POLYVAL's `dot(a, b) = a·b·x^-128` needs no bit reflection and
## reduces with two multiplications by 0xC2 << 56 — the same steps in the portable and the
## carry-less-multiply variants, so they agree bit for bit.
##
## Properties:
## - no secret-dependent branch or memory index: the portable 32×32 carry-less product uses the
##   integer multiplier on bits spaced four apart (each 4-bit digit sums at most 8 ones)
## - `AesGcmKey` is plain data: callers wipe it (`ct.wipe`) when the key is dropped

import ../ct

const
  aesRounds* = 14         ## AES-256
  gcmPowers* = 32         ## H^1..H^32: the widest variant folds 32 blocks per reduction
  gcmMaxPlaintext* = (1'i64 shl 36) - 32   ## NIST SP 800-38D: 2^39 - 256 bits

type
  Bytes* = ptr UncheckedArray[byte]
  U128* = object
    lo*, hi*: uint64      ## little-endian halves: loads straight into an xmm register
  AesGcmKey* = object
    ## An AES-256 key ready for GCM: 15 round keys in FIPS-197 byte order, then the GHASH key's
    ## powers in POLYVAL form, highest first: hrev[n] = H^(32-n) for n < 32, zero after (so a
    ## batch of k ≤ 32 blocks multiplies block n by hrev[32-k+n] and padding lanes by zero).
    rk*: array[(aesRounds + 1) * 16, byte]
    hrev*: array[2 * gcmPowers, U128]

proc loadBe64*(p: Bytes, off: int): uint64 {.inline.} =
  for i in 0 ..< 8: result = (result shl 8) or uint64(p[off + i])

proc storeBe64*(p: Bytes, off: int, v: uint64) {.inline.} =
  for i in 0 ..< 8: p[off + i] = byte(v shr (56 - 8 * i))

proc reversed*(p: Bytes, off = 0): U128 {.inline.} =
  ## The 16 bytes at p[off] byte-reversed, as a POLYVAL field element.
  U128(lo: loadBe64(p, off + 8), hi: loadBe64(p, off))

proc storeReversed*(p: Bytes, v: U128) {.inline.} =
  storeBe64(p, 0, v.hi)
  storeBe64(p, 8, v.lo)

proc `xor`*(a, b: U128): U128 {.inline.} = U128(lo: a.lo xor b.lo, hi: a.hi xor b.hi)

proc mulX*(v: U128): U128 =
  ## v·x in POLYVAL's field (x^128 = x^127 + x^126 + x^121 + 1), without a branch.
  let mask = 0'u64 - (v.hi shr 63)
  result.hi = ((v.hi shl 1) or (v.lo shr 63)) xor (0xC200000000000000'u64 and mask)
  result.lo = (v.lo shl 1) xor (1'u64 and mask)

proc bmul32(x, y: uint32): uint64 {.inline.} =
  ## Carry-less 32×32 product with the integer multiplier: bits four apart never carry into
  ## each other because each 4-bit digit of a partial product counts at most 8 ones.
  let
    x0 = uint64(x and 0x11111111'u32)
    x1 = uint64(x and 0x22222222'u32)
    x2 = uint64(x and 0x44444444'u32)
    x3 = uint64(x and 0x88888888'u32)
    y0 = uint64(y and 0x11111111'u32)
    y1 = uint64(y and 0x22222222'u32)
    y2 = uint64(y and 0x44444444'u32)
    y3 = uint64(y and 0x88888888'u32)
  let
    z0 = (x0 * y0) xor (x1 * y3) xor (x2 * y2) xor (x3 * y1)
    z1 = (x0 * y1) xor (x1 * y0) xor (x2 * y3) xor (x3 * y2)
    z2 = (x0 * y2) xor (x1 * y1) xor (x2 * y0) xor (x3 * y3)
    z3 = (x0 * y3) xor (x1 * y2) xor (x2 * y1) xor (x3 * y0)
  (z0 and 0x1111111111111111'u64) or (z1 and 0x2222222222222222'u64) or
    (z2 and 0x4444444444444444'u64) or (z3 and 0x8888888888888888'u64)

proc clmul64(a, b: uint64): U128 =
  ## Carry-less 64×64 → 128 (Karatsuba over 32-bit halves).
  let
    a0 = uint32(a)
    a1 = uint32(a shr 32)
    b0 = uint32(b)
    b1 = uint32(b shr 32)
    lo = bmul32(a0, b0)
    hi = bmul32(a1, b1)
    mid = bmul32(a0 xor a1, b0 xor b1) xor lo xor hi
  U128(lo: lo xor (mid shl 32), hi: hi xor (mid shr 32))

proc reduceByC2(l: U128): U128 {.inline.} =
  ## One folding step: swap the halves and add lo·(0xC2 << 56) (a constant: shifts only).
  let t = U128(lo: (l.lo shl 63) xor (l.lo shl 62) xor (l.lo shl 57),
               hi: (l.lo shr 1) xor (l.lo shr 2) xor (l.lo shr 7))
  U128(lo: l.hi xor t.lo, hi: l.lo xor t.hi)

proc dot*(a, b: U128): U128 =
  ## POLYVAL's a·b·x^-128, portable and constant-time.
  let
    lo = clmul64(a.lo, b.lo)
    hi = clmul64(a.hi, b.hi)
    mid = clmul64(a.lo xor a.hi, b.lo xor b.hi) xor lo xor hi
    pl = U128(lo: lo.lo, hi: lo.hi xor mid.lo)
    ph = U128(lo: hi.lo xor mid.hi, hi: hi.hi)
  ph xor reduceByC2(reduceByC2(pl))

template setPowers*(key: var AesGcmKey, h: array[16, byte], mul: untyped) =
  ## Fill hrev from H = E_K(0^128) with the variant's multiplication `mul` (once per key).
  var hb = h
  let h1 = mulX(reversed(cast[Bytes](hb[0].addr)))
  var p = h1
  for n in countdown(gcmPowers - 1, 0):
    key.hrev[n] = p
    p = mul(p, h1)
  for n in gcmPowers ..< 2 * gcmPowers: key.hrev[n] = U128()
  wipe(hb)

proc lengthBlock*(aadLen, len: int): array[16, byte] =
  ## GCM's final GHASH block: bit lengths of the AAD and the ciphertext, big-endian.
  storeBe64(cast[Bytes](result[0].addr), 0, uint64(aadLen) * 8)
  storeBe64(cast[Bytes](result[0].addr), 8, uint64(len) * 8)

proc counterBlock*(nonce: Bytes, ctr: uint32): array[16, byte] =
  ## nonce ‖ be32(ctr): J0 is ctr 1, the data starts at 2.
  copyMem(result[0].addr, nonce, 12)
  for i in 0 ..< 4: result[12 + i] = byte(ctr shr (24 - 8 * i))
