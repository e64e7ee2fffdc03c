## The edwards25519 group: -x² + y² = 1 + d·x²·y², in extended coordinates (X:Y:Z:T) with
## x = X/Z, y = Y/Z, x·y = T/Z (Hisil–Wong–Carter–Dawson 2008, a = -1).
##
## Properties:
## - `add`/`double` are complete for a = -1 with d a non-square: no exceptional cases, so no
##   branch on the points (the constant-time base multiplication relies on it)
## - addends are kept "cached": (Y+X, Y-X, Z, 2d·T); affine table entries have Z = 1 and use
##   `addAffine` (one multiplication less)
## - `decode` is OpenSSL's: y ≥ p is reduced, x = 0 with the sign bit set is accepted (as 0);
##   it fails only when x² has no square root. `encode` is canonical.

import ./field

type
  Point* = object
    x*, y*, z*, t*: Fe

  Cached* = object
    ## An addend: (Y+X, Y-X, Z, 2d·T).
    ypx*, ymx*, z*, t2d*: Fe

  Affine* = object
    ## An addend with Z = 1: (y+x, y-x, 2d·x·y).
    ypx*, ymx*, xy2d*: Fe

const
  identity* = Point(x: feZero, y: feOne, z: feOne, t: feZero)
  affineIdentity* = Affine(ypx: feOne, ymx: feOne, xy2d: feZero)
  basePoint* = Point(
    x: [0x62d608f25d51a'u64, 0x412a4b4f6592a'u64, 0x75b7171a4b31d'u64, 0x1ff60527118fe'u64,
        0x216936d3cd6e5'u64],
    y: [0x6666666666658'u64, 0x4cccccccccccc'u64, 0x1999999999999'u64, 0x3333333333333'u64,
        0x6666666666666'u64],
    z: feOne,
    t: [0x68ab3a5b7dda3'u64, 0xeea2a5eadbb'u64, 0x2af8df483c27e'u64, 0x332b375274732'u64,
        0x67875f0fd78b7'u64])

proc toCached*(p: Point): Cached {.inline.} =
  add(result.ypx, p.y, p.x)
  sub(result.ymx, p.y, p.x)
  result.z = p.z
  mul(result.t2d, p.t, feD2)

proc toAffine*(p: Point): Affine =
  let zi = invert(p.z)
  let x = mul(p.x, zi)
  let y = mul(p.y, zi)
  add(result.ypx, y, x)
  carry(result.ypx)
  sub(result.ymx, y, x)
  mul(result.xy2d, mul(x, y), feD2)

proc finish(r: var Point, e, f, g, h: Fe, withT: bool) {.inline.} =
  mul(r.x, e, f)
  mul(r.y, g, h)
  mul(r.z, f, g)
  if withT: mul(r.t, e, h)

proc addCached*(r: var Point, p: Point, q: Cached, withT = true) {.inline.} =
  ## r = p + q. `withT = false` skips T when the next step is a doubling (public choice).
  var a, b, c, d, e, f, g, h: Fe
  mul(a, p.y - p.x, q.ymx)
  mul(b, p.y + p.x, q.ypx)
  mul(c, p.t, q.t2d)
  mul(d, p.z, q.z)
  add(d, d, d)
  sub(e, b, a); sub(f, d, c); add(g, d, c); add(h, b, a)
  finish(r, e, f, g, h, withT)

proc subCached*(r: var Point, p: Point, q: Cached, withT = true) {.inline.} =
  ## r = p - q: -q swaps Y+X with Y-X and negates 2d·T.
  var a, b, c, d, e, f, g, h: Fe
  mul(a, p.y - p.x, q.ypx)
  mul(b, p.y + p.x, q.ymx)
  mul(c, p.t, q.t2d)
  mul(d, p.z, q.z)
  add(d, d, d)
  sub(e, b, a); add(f, d, c); sub(g, d, c); add(h, b, a)
  finish(r, e, f, g, h, withT)

proc addAffine*(r: var Point, p: Point, q: Affine, withT = true) {.inline.} =
  var a, b, c, d, e, f, g, h: Fe
  mul(a, p.y - p.x, q.ymx)
  mul(b, p.y + p.x, q.ypx)
  mul(c, p.t, q.xy2d)
  add(d, p.z, p.z)
  sub(e, b, a); sub(f, d, c); add(g, d, c); add(h, b, a)
  finish(r, e, f, g, h, withT)

proc subAffine*(r: var Point, p: Point, q: Affine, withT = true) {.inline.} =
  var a, b, c, d, e, f, g, h: Fe
  mul(a, p.y - p.x, q.ypx)
  mul(b, p.y + p.x, q.ymx)
  mul(c, p.t, q.xy2d)
  add(d, p.z, p.z)
  sub(e, b, a); add(f, d, c); sub(g, d, c); add(h, b, a)
  finish(r, e, f, g, h, withT)

proc double*(r: var Point, p: Point, withT = true) {.inline.} =
  ## r = 2p; reads only X, Y, Z of p.
  var a, b, c, e, f, g, h, s: Fe
  sq(a, p.x)
  sq(b, p.y)
  sq(c, p.z)
  add(c, c, c)
  add(h, a, b)
  sq(s, p.x + p.y)
  sub(e, h, s)
  sub(g, a, b)
  add(f, c, g)
  finish(r, e, f, g, h, withT)

proc encodeWith*(s: var openArray[byte], p: Point, zi: Fe) =
  ## The 32-byte RFC 8032 encoding of p, given zi = 1/Z: y, with x's sign in bit 255.
  let x = mul(p.x, zi)
  let y = mul(p.y, zi)
  toBytes(s, y)
  s[31] = s[31] or byte(isNegative(x) shl 7)

proc encode*(s: var openArray[byte], p: Point) =
  encodeWith(s, p, invert(p.z))

proc encodeTwo*(s1: var openArray[byte], p1: Point, s2: var openArray[byte], p2: Point) =
  ## Both encodings with one inversion (Montgomery's trick: 1/z1 = z2/(z1·z2)).
  let inv = invert(mul(p1.z, p2.z))
  encodeWith(s1, p1, mul(inv, p2.z))
  encodeWith(s2, p2, mul(inv, p1.z))

proc decode*(p: var Point, s: openArray[byte]): bool =
  ## Decompress s[0..32) (variable time: for public keys). False when no x exists.
  let y = fromBytes(s)
  let y2 = sq(y)
  let u = y2 - feOne                       # y² - 1
  var v: Fe
  mul(v, y2, feD)
  add(v, v, feOne)                         # d·y² + 1
  carry(v)
  let v3 = mul(sq(v), v)
  let v7 = mul(sq(v3), v)
  var x = mul(mul(u, v3), pow22523(mul(u, v7)))   # u·v³·(u·v⁷)^((p-5)/8)
  let vxx = mul(sq(x), v)
  if not equal(vxx, u):
    var negu: Fe
    neg(negu, u)
    if not equal(vxx, negu): return false
    x = mul(x, feSqrtM1)
  if isNegative(x) != uint64(s[31] shr 7):
    neg(x, x)
  p.x = x
  p.y = y
  p.z = feOne
  mul(p.t, x, y)
  true

proc negate*(p: Point): Point =
  neg(result.x, p.x)
  result.y = p.y
  result.z = p.z
  neg(result.t, p.t)

proc cmovAffine*(r: var Affine, a: Affine, flag: uint64) {.inline.} =
  ## r = a when flag == 1, unchanged when 0: one loop over the 15 words (vectorised).
  let m = 0'u64 - flag
  let rw = cast[ptr array[15, uint64]](r.addr)
  let aw = cast[ptr array[15, uint64]](a.unsafeAddr)
  for i in 0 ..< 15: rw[i] = rw[i] xor (m and (rw[i] xor aw[i]))
