## Arithmetic in GF(2^255 - 19), radix 2^51: five 64-bit limbs, products in 128 bits.
##
## Properties:
## - no branch and no memory index depends on a field element's value (`cmov`, `isZero`,
##   `isNegative` are arithmetic), so the signing path can use every proc here
## - limbs are kept "weakly reduced": after `mul`/`sq`/`sub`/`carry` every limb is below
##   2^51 + 2^13; `add` doesn't carry, so its result (limbs < 2^52 + 2^14) may only go into
##   `mul`, `sq`, or as the first operand of `sub` (whose 4p bias covers limbs up to 2^53)
## - `toBytes` is the one canonical encoding (value fully reduced below p); `fromBytes` ignores
##   bit 255 and accepts y ≥ p (reduced mod p), as OpenSSL does
## - Nim 1.6 has no 128-bit integer: `U128` is C's `unsigned __int128` (gcc and clang on every
##   64-bit target we build), reached through one-line `emit`s the C compiler inlines

{.push raises: [].}

type
  U128 {.importc: "unsigned __int128", nodecl.} = object
  Fe* = array[5, uint64]

const
  mask51 = (1'u64 shl 51) - 1
  feZero*: Fe = [0'u64, 0, 0, 0, 0]
  feOne*: Fe = [1'u64, 0, 0, 0, 0]
  feD*: Fe = [0x34dca135978a3'u64, 0x1a8283b156ebd'u64, 0x5e7a26001c029'u64,
              0x739c663a03cbb'u64, 0x52036cee2b6ff'u64]      ## d = -121665/121666
  feD2*: Fe = [0x69b9426b2f159'u64, 0x35050762add7a'u64, 0x3cf44c0038052'u64,
               0x6738cc7407977'u64, 0x2406d9dc56dff'u64]     ## 2d
  feSqrtM1*: Fe = [0x61b274a0ea0b0'u64, 0xd5a5fc8f189d'u64, 0x7ef5e9cbd0c60'u64,
                   0x78595a6804c9e'u64, 0x2b8324804fc1d'u64] ## sqrt(-1) = 2^((p-1)/4)

# The 128-bit helpers are templates, not procs: a call to a proc with an `emit` is followed by
# a check of the exception flag (goto exceptions), ~50 of them per multiplication.
template mulw(a, b: uint64): U128 =
  let x = a
  let y = b
  var r {.noinit.}: U128
  {.emit: [r, " = (unsigned __int128)", x, " * ", y, ";"].}
  r

template `+`(a, b: U128): U128 =
  let x = a
  let y = b
  var r {.noinit.}: U128
  {.emit: [r, " = ", x, " + ", y, ";"].}
  r

template `+`(a: U128, b: uint64): U128 =
  let x = a
  let y = b
  var r {.noinit.}: U128
  {.emit: [r, " = ", x, " + ", y, ";"].}
  r

template lo51(a: U128): uint64 =
  let x = a
  var r {.noinit.}: uint64
  {.emit: [r, " = (NU64)", x, " & 0x7ffffffffffffULL;"].}
  r

template hi51(a: U128): uint64 =
  let x = a
  var r {.noinit.}: uint64
  {.emit: [r, " = (NU64)(", x, " >> 51);"].}
  r

proc add*(r: var Fe, a, b: Fe) {.inline.} =
  for i in 0 ..< 5: r[i] = a[i] + b[i]

proc carry*(r: var Fe) {.inline.} =
  ## Limbs back below 2^51 + 2^13 (the top carry wraps around times 19).
  var c: uint64
  c = r[0] shr 51; r[0] = r[0] and mask51; r[1] += c
  c = r[1] shr 51; r[1] = r[1] and mask51; r[2] += c
  c = r[2] shr 51; r[2] = r[2] and mask51; r[3] += c
  c = r[3] shr 51; r[3] = r[3] and mask51; r[4] += c
  c = r[4] shr 51; r[4] = r[4] and mask51; r[0] += 19 * c

proc sub*(r: var Fe, a, b: Fe) {.inline.} =
  ## a - b + 4p, carried: b's limbs may be up to 2^53.
  r[0] = a[0] + 0x1fffffffffffb4'u64 - b[0]
  r[1] = a[1] + 0x1ffffffffffffc'u64 - b[1]
  r[2] = a[2] + 0x1ffffffffffffc'u64 - b[2]
  r[3] = a[3] + 0x1ffffffffffffc'u64 - b[3]
  r[4] = a[4] + 0x1ffffffffffffc'u64 - b[4]
  carry(r)

proc neg*(r: var Fe, a: Fe) {.inline.} = sub(r, feZero, a)

proc reduceProduct(r: var Fe, t0, t1, t2, t3, t4: U128) {.inline.} =
  var c: uint64
  r[0] = lo51(t0); let u1 = t1 + hi51(t0)
  r[1] = lo51(u1); let u2 = t2 + hi51(u1)
  r[2] = lo51(u2); let u3 = t3 + hi51(u2)
  r[3] = lo51(u3); let u4 = t4 + hi51(u3)
  r[4] = lo51(u4); c = hi51(u4)
  r[0] += 19 * c
  c = r[0] shr 51; r[0] = r[0] and mask51; r[1] += c

proc mul*(r: var Fe, a, b: Fe) {.inline.} =
  let (a0, a1, a2, a3, a4) = (a[0], a[1], a[2], a[3], a[4])
  let (b0, b1, b2, b3, b4) = (b[0], b[1], b[2], b[3], b[4])
  let (b1x, b2x, b3x, b4x) = (19 * b1, 19 * b2, 19 * b3, 19 * b4)
  let t0 = mulw(a0, b0) + mulw(a1, b4x) + mulw(a2, b3x) + mulw(a3, b2x) + mulw(a4, b1x)
  let t1 = mulw(a0, b1) + mulw(a1, b0) + mulw(a2, b4x) + mulw(a3, b3x) + mulw(a4, b2x)
  let t2 = mulw(a0, b2) + mulw(a1, b1) + mulw(a2, b0) + mulw(a3, b4x) + mulw(a4, b3x)
  let t3 = mulw(a0, b3) + mulw(a1, b2) + mulw(a2, b1) + mulw(a3, b0) + mulw(a4, b4x)
  let t4 = mulw(a0, b4) + mulw(a1, b3) + mulw(a2, b2) + mulw(a3, b1) + mulw(a4, b0)
  reduceProduct(r, t0, t1, t2, t3, t4)

proc sq*(r: var Fe, a: Fe) {.inline.} =
  let (a0, a1, a2, a3, a4) = (a[0], a[1], a[2], a[3], a[4])
  let (d0, d1, d2, d3) = (2 * a0, 2 * a1, 2 * a2, 2 * a3)
  let (a3x, a4x) = (19 * a3, 19 * a4)
  let t0 = mulw(a0, a0) + mulw(d1, a4x) + mulw(d2, a3x)
  let t1 = mulw(d0, a1) + mulw(d2, a4x) + mulw(a3, a3x)
  let t2 = mulw(d0, a2) + mulw(a1, a1) + mulw(d3, a4x)
  let t3 = mulw(d0, a3) + mulw(d1, a2) + mulw(a4, a4x)
  let t4 = mulw(d0, a4) + mulw(d1, a3) + mulw(a2, a2)
  reduceProduct(r, t0, t1, t2, t3, t4)

proc sqn(r: var Fe, a: Fe, n: int) =
  ## a^(2^n), n ≥ 1.
  sq(r, a)
  for _ in 1 ..< n: sq(r, r)

proc mul*(a, b: Fe): Fe {.inline.} = mul(result, a, b)
proc sq*(a: Fe): Fe {.inline.} = sq(result, a)
proc `+`*(a, b: Fe): Fe {.inline.} = add(result, a, b)
proc `-`*(a, b: Fe): Fe {.inline.} = sub(result, a, b)

proc pow2250m1(z: Fe, z11: var Fe): Fe =
  ## z^(2^250 - 1), and z^11 on the side (ref10's addition chain).
  var t0, t1, t2: Fe
  sq(t0, z)                 # 2
  sqn(t1, t0, 2)            # 8
  mul(t1, z, t1)            # 9
  mul(z11, t0, t1)          # 11
  sq(t0, z11)               # 22
  mul(t0, t1, t0)           # 2^5 - 1
  sqn(t1, t0, 5); mul(t0, t1, t0)        # 2^10 - 1
  sqn(t1, t0, 10); mul(t1, t1, t0)       # 2^20 - 1
  sqn(t2, t1, 20); mul(t1, t2, t1)       # 2^40 - 1
  sqn(t1, t1, 10); mul(t0, t1, t0)       # 2^50 - 1
  sqn(t1, t0, 50); mul(t1, t1, t0)       # 2^100 - 1
  sqn(t2, t1, 100); mul(t1, t2, t1)      # 2^200 - 1
  sqn(t1, t1, 50); mul(result, t1, t0)   # 2^250 - 1

proc invert*(z: Fe): Fe =
  ## z^(p-2) = 1/z (0 for 0), by Fermat: time independent of z.
  var z11: Fe
  let t = pow2250m1(z, z11)
  var t1: Fe
  sqn(t1, t, 5)               # 2^255 - 32
  mul(result, t1, z11)        # 2^255 - 21

proc pow22523*(z: Fe): Fe =
  ## z^((p-5)/8) = z^(2^252 - 3): the exponent of the square root.
  var z11: Fe
  let t = pow2250m1(z, z11)
  var t1: Fe
  sqn(t1, t, 2)
  mul(result, t1, z)

proc reduceFull(a: Fe): Fe {.inline.} =
  ## The representative in [0, p): q = 1 exactly when a ≥ p (no branch).
  result = a
  carry(result)
  var q = (result[0] + 19) shr 51
  q = (result[1] + q) shr 51
  q = (result[2] + q) shr 51
  q = (result[3] + q) shr 51
  q = (result[4] + q) shr 51
  result[0] += 19 * q
  var c: uint64
  c = result[0] shr 51; result[0] = result[0] and mask51; result[1] += c
  c = result[1] shr 51; result[1] = result[1] and mask51; result[2] += c
  c = result[2] shr 51; result[2] = result[2] and mask51; result[3] += c
  c = result[3] shr 51; result[3] = result[3] and mask51; result[4] += c
  result[4] = result[4] and mask51

proc load64(s: openArray[byte], at: int): uint64 {.inline.} =
  for i in countdown(7, 0): result = (result shl 8) or uint64(s[at + i])

proc store64(s: var openArray[byte], at: int, v: uint64) {.inline.} =
  for i in 0 ..< 8: s[at + i] = byte((v shr (8 * i)) and 0xff)

proc fromBytes*(s: openArray[byte]): Fe =
  ## The low 255 bits of s[0..32) (little-endian), not reduced: y ≥ p is taken mod p.
  result[0] = load64(s, 0) and mask51
  result[1] = (load64(s, 6) shr 3) and mask51
  result[2] = (load64(s, 12) shr 6) and mask51
  result[3] = (load64(s, 19) shr 1) and mask51
  result[4] = (load64(s, 24) shr 12) and mask51

proc toBytes*(s: var openArray[byte], a: Fe) =
  ## The canonical 32-byte little-endian encoding (bit 255 clear).
  let h = reduceFull(a)
  store64(s, 0, h[0] or (h[1] shl 51))
  store64(s, 8, (h[1] shr 13) or (h[2] shl 38))
  store64(s, 16, (h[2] shr 26) or (h[3] shl 25))
  store64(s, 24, (h[3] shr 39) or (h[4] shl 12))

proc isZero*(a: Fe): bool =
  let h = reduceFull(a)
  let acc = h[0] or h[1] or h[2] or h[3] or h[4]
  ((acc or (0'u64 - acc)) shr 63) == 0

proc isNegative*(a: Fe): uint64 =
  ## The "sign" of RFC 8032: the low bit of the canonical value (0 or 1).
  reduceFull(a)[0] and 1

proc equal*(a, b: Fe): bool = isZero(a - b)

proc cmov*(r: var Fe, a: Fe, flag: uint64) {.inline.} =
  ## r = a when flag == 1, unchanged when flag == 0, without a branch.
  let m = 0'u64 - flag
  for i in 0 ..< 5: r[i] = r[i] xor (m and (r[i] xor a[i]))
