## Scalars modulo the group order L = 2^252 + 27742317777372353535851937790883648493.
##
## Properties:
## - `reduce` (a 64-byte hash mod L) and `mulAdd` (a·b + c mod L) are Barrett reductions
##   (HAC 14.42, base 2^64) with both final corrections done by masks: no branch on the value,
##   since the nonce r and the secret scalar a go through them
## - `isReduced` (S < L, public) may exit early
## - `recode16` gives the signed radix-16 digits of the constant-time base multiplication,
##   `slide` the width-w NAF of the variable-time verification

import ../ct

type
  U128 {.importc: "unsigned __int128", nodecl.} = object
  Limbs[N: static int] = array[N, uint64]
  Scalar* = array[32, byte]

const
  lLimbs: Limbs[4] = [0x5812631a5cf5d3ed'u64, 0x14def9dea2f79cd6'u64, 0'u64, 0x1000000000000000'u64]
  mu: Limbs[5] = [0xed9ce5a30a2c131b'u64, 0x2106215d086329a7'u64, 0xffffffffffffffeb'u64,
                  0xffffffffffffffff'u64, 0xf'u64]   ## floor(2^512 / L)

proc mulAcc(acc: U128, a, b: uint64): U128 {.inline.} =
  {.emit: [result, " = ", acc, " + (unsigned __int128)", a, " * ", b, ";"].}

proc lo(a: U128): uint64 {.inline.} =
  {.emit: [result, " = (NU64)", a, ";"].}

proc nextColumn(a: U128, top: uint64): U128 {.inline.} =
  ## (a >> 64) + top·2^64: the carry into the next column.
  {.emit: [result, " = (", a, " >> 64) | ((unsigned __int128)", top, " << 64);"].}

proc zero128(): U128 {.inline.} =
  {.emit: [result, " = 0;"].}

proc mulInto(a, b: openArray[uint64], r: var openArray[uint64]) =
  ## r = a·b, column by column (a column's sum may pass 2^128: `top` counts the wraps).
  let (N, M) = (a.len, b.len)
  var acc = zero128()
  var top = 0'u64
  for k in 0 ..< N + M - 1:
    for i in max(0, k - M + 1) .. min(k, N - 1):
      let before = acc
      acc = mulAcc(acc, a[i], b[k - i])
      var wrapped: uint64
      {.emit: [wrapped, " = ", acc, " < ", before, ";"].}
      top += wrapped
    r[k] = lo(acc)
    acc = nextColumn(acc, top)
    top = 0
  r[N + M - 1] = lo(acc)

proc mulLimbs[N, M: static int](a: Limbs[N], b: Limbs[M]): Limbs[N + M] =
  mulInto(a, b, result)

proc subBorrow(a: var Limbs[5], b: Limbs[5]): uint64 =
  ## a -= b (mod 2^320); the borrow out (0 or 1).
  var borrow = 0'u64
  for i in 0 ..< 5:
    let d = a[i] - b[i]
    let b1 = uint64(a[i] < b[i])
    let r = d - borrow
    let b2 = uint64(d < borrow)
    a[i] = r
    borrow = b1 or b2
  borrow

proc condSubL(r: var Limbs[5]) {.inline.} =
  ## r -= L when r ≥ L, by a mask.
  var t = r
  let l5: Limbs[5] = [lLimbs[0], lLimbs[1], lLimbs[2], lLimbs[3], 0]
  let borrow = subBorrow(t, l5)
  let keep = 0'u64 - borrow          # all ones when r < L: keep r
  for i in 0 ..< 5: r[i] = (r[i] and keep) or (t[i] and not keep)

proc barrett(x: Limbs[8]): Limbs[4] =
  ## x mod L for x < 2^512.
  var q1: Limbs[5]
  for i in 0 ..< 5: q1[i] = x[i + 3]            # floor(x / b^3)
  let q2 = mulLimbs(q1, mu)
  var q3: Limbs[5]
  for i in 0 ..< 5: q3[i] = q2[i + 5]           # floor(q2 / b^5)
  let r2full = mulLimbs(q3, lLimbs)
  var r: Limbs[5]
  for i in 0 ..< 5: r[i] = x[i]                 # x mod b^5
  var r2: Limbs[5]
  for i in 0 ..< 5: r2[i] = r2full[i]           # q3·L mod b^5
  discard subBorrow(r, r2)                      # mod b^5: the true r is < 3L
  condSubL(r)
  condSubL(r)
  for i in 0 ..< 4: result[i] = r[i]

proc loadLimbs[N: static int](s: openArray[byte]): Limbs[N] =
  for i in 0 ..< N:
    for j in countdown(7, 0): result[i] = (result[i] shl 8) or uint64(s[8 * i + j])

proc storeScalar(s: var Scalar, a: Limbs[4]) =
  for i in 0 ..< 4:
    for j in 0 ..< 8: s[8 * i + j] = byte((a[i] shr (8 * j)) and 0xff)

proc reduce*(h: openArray[byte]): Scalar =
  ## A 64-byte little-endian number (a SHA-512 digest) mod L.
  var x = loadLimbs[8](h)
  storeScalar(result, barrett(x))
  wipe(x)                           # the nonce's hash when signing

proc mulAdd*(a, b, c: Scalar): Scalar =
  ## a·b + c mod L.
  var x = mulLimbs(loadLimbs[4](a), loadLimbs[4](b))
  let cl = loadLimbs[4](c)
  var carry = 0'u64
  for i in 0 ..< 8:
    let add = if i < 4: cl[i] else: 0'u64
    let s1 = x[i] + add
    let c1 = uint64(s1 < add)
    let s2 = s1 + carry
    let c2 = uint64(s2 < carry)
    x[i] = s2
    carry = c1 or c2
  storeScalar(result, barrett(x))   # a·b + c < 2^512 for a, b, c < 2^253
  wipe(x)                           # a is the secret scalar

proc isReduced*(s: openArray[byte]): bool =
  ## s[0..32) < L (little-endian), as RFC 8032 requires of S.
  let v = loadLimbs[4](s)
  for i in countdown(3, 0):
    if v[i] != lLimbs[i]: return v[i] < lLimbs[i]
  false

proc recode16*(a: Scalar): array[64, int8] =
  ## Signed radix-16 digits e[i] in [-8, 8), a = Σ e[i]·16^i (a < 2^255; no branch).
  for i in 0 ..< 32:
    result[2 * i] = int8(a[i] and 15)
    result[2 * i + 1] = int8((a[i] shr 4) and 15)
  var carry = 0'i8
  for i in 0 ..< 63:
    result[i] += carry
    carry = (result[i] + 8) shr 4
    result[i] -= carry shl 4
  result[63] += carry

proc slide*(a: openArray[byte], w: int): array[256, int16] =
  ## Width-w NAF: odd digits |e| < 2^(w-1), each non-zero digit followed by w-1 zeros
  ## (variable time: public scalars only).
  var bits: array[257, int16]
  for i in 0 ..< 256: bits[i] = int16((a[i shr 3] shr (i and 7)) and 1)
  var i = 0
  let half = 1'i16 shl (w - 1)
  let full = 1'i16 shl w
  while i < 256:
    if bits[i] == 0:
      inc i
      continue
    # take w bits starting at i
    var v = 0'i16
    for j in 0 ..< w:
      if i + j < 257: v = v or (bits[i + j] shl j)
    for j in 0 ..< w:
      if i + j < 257: bits[i + j] = 0
    if v >= half:
      v -= full
      var k = i + w                # propagate the borrow: add 2^(i+w)
      while k < 257 and bits[k] == 1:
        bits[k] = 0
        inc k
      if k < 257: bits[k] = 1
    result[i] = v
    i += w
  # a < 2^253 (S < L, h < L): bit 256 is never set
