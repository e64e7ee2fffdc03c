## Portable constant-time AES-256-GCM: any CPU, no tables.
##
## SubBytes is computed, not looked up: four blocks (64 bytes) are transposed into eight 64-bit
## bit planes, each byte is inverted in GF(2^8) as x^254 with bitsliced multiplications, the
## affine map is applied on the planes, and the planes are transposed back. ShiftRows is a fixed
## byte permutation and MixColumns works on 32-bit columns with masks. GHASH uses `dot` from
## aes_common (carry-less products on the integer multiplier).
##
## Properties:
## - no secret-dependent branch or memory index anywhere (key schedule included)
## - slow (~100 cycles/byte): the fallback for CPUs without AES-NI and for aarch64

import ../ct
import ./aes_common

type State4 = array[64, byte]   ## four AES states, FIPS byte order, block b at [16b, 16b+16)

proc transpose8(x: uint64): uint64 {.inline.} =
  ## 8×8 bit matrix (row = byte, column = bit) transposed.
  var x = x
  var t = (x xor (x shr 7)) and 0x00AA00AA00AA00AA'u64
  x = x xor t xor (t shl 7)
  t = (x xor (x shr 14)) and 0x0000CCCC0000CCCC'u64
  x = x xor t xor (t shl 14)
  t = (x xor (x shr 28)) and 0x00000000F0F0F0F0'u64
  x xor t xor (t shl 28)

type Planes = array[8, uint64]   ## plane j holds bit j of each of the 64 bytes

proc toPlanes(s: State4): Planes =
  for m in 0 ..< 8:
    var w = 0'u64
    for k in 0 ..< 8: w = w or (uint64(s[8 * m + k]) shl (8 * k))
    let t = transpose8(w)
    for j in 0 ..< 8: result[j] = result[j] or (((t shr (8 * j)) and 0xff) shl (8 * m))

proc fromPlanes(p: Planes, s: var State4) =
  for m in 0 ..< 8:
    var t = 0'u64
    for j in 0 ..< 8: t = t or (((p[j] shr (8 * m)) and 0xff) shl (8 * j))
    let w = transpose8(t)
    for k in 0 ..< 8: s[8 * m + k] = byte(w shr (8 * k))

proc reduce(c: var array[15, uint64]): Planes {.inline.} =
  ## Mod x^8 + x^4 + x^3 + x + 1, on planes.
  for k in countdown(14, 8):
    c[k - 4] = c[k - 4] xor c[k]
    c[k - 5] = c[k - 5] xor c[k]
    c[k - 7] = c[k - 7] xor c[k]
    c[k - 8] = c[k - 8] xor c[k]
  for i in 0 ..< 8: result[i] = c[i]

proc gfMul(a, b: Planes): Planes =
  var c: array[15, uint64]
  for i in 0 ..< 8:
    for j in 0 ..< 8: c[i + j] = c[i + j] xor (a[i] and b[j])
  reduce(c)

proc gfSquare(a: Planes): Planes {.inline.} =
  var c: array[15, uint64]
  for i in 0 ..< 8: c[2 * i] = a[i]
  reduce(c)

proc subBytes(s: var State4) =
  ## S(x) = affine(x^254) for all 64 bytes at once.
  let x = toPlanes(s)
  let
    x2 = gfSquare(x)
    x3 = gfMul(x2, x)
    x12 = gfSquare(gfSquare(x3))
    x15 = gfMul(x12, x3)
    x240 = gfSquare(gfSquare(gfSquare(gfSquare(x15))))
    inv = gfMul(gfMul(x240, x12), x2)
  var o: Planes
  for i in 0 ..< 8:
    o[i] = inv[i] xor inv[(i + 4) mod 8] xor inv[(i + 5) mod 8] xor inv[(i + 6) mod 8] xor
           inv[(i + 7) mod 8]
    if ((0x63 shr i) and 1) == 1: o[i] = not o[i]   # public constant, not a secret branch
  fromPlanes(o, s)

proc shiftRowsMixColumns(s: var State4, mix: bool) =
  for b in 0 ..< 4:
    var t: array[16, byte]
    for c in 0 ..< 4:
      for r in 0 ..< 4: t[r + 4 * c] = s[16 * b + r + 4 * ((c + r) mod 4)]
    for c in 0 ..< 4:
      var w = uint32(t[4 * c]) or (uint32(t[4 * c + 1]) shl 8) or (uint32(t[4 * c + 2]) shl 16) or
              (uint32(t[4 * c + 3]) shl 24)
      if mix:   # public: the last round skips MixColumns
        let r8 = (w shr 8) or (w shl 24)
        let r16 = (w shr 16) or (w shl 16)
        let r24 = (w shr 24) or (w shl 8)
        let d = w xor r8
        let xt = ((d and 0x7f7f7f7f'u32) shl 1) xor (((d shr 7) and 0x01010101'u32) * 0x1b)
        w = xt xor r8 xor r16 xor r24
      for r in 0 ..< 4: s[16 * b + 4 * c + r] = byte(w shr (8 * r))

proc addRoundKey(s: var State4, rk: openArray[byte], round: int) {.inline.} =
  for b in 0 ..< 4:
    for i in 0 ..< 16: s[16 * b + i] = s[16 * b + i] xor rk[16 * round + i]

proc encrypt4(rk: openArray[byte], s: var State4) =
  addRoundKey(s, rk, 0)
  for round in 1 .. aesRounds:
    subBytes(s)
    shiftRowsMixColumns(s, mix = round < aesRounds)
    addRoundKey(s, rk, round)

proc expandKeyPortable*(key: Bytes, rk: var array[(aesRounds + 1) * 16, byte]) =
  ## FIPS-197 §5.2 for Nk = 8; SubWord through the bitsliced S-box.
  copyMem(rk[0].addr, key, 32)
  var rcon = 1'u8
  var s: State4
  for i in 8 ..< 4 * (aesRounds + 1):
    var w: array[4, byte]
    for j in 0 ..< 4: w[j] = rk[4 * (i - 1) + j]
    if i mod 8 == 0 or i mod 8 == 4:    # public schedule positions
      for j in 0 ..< 4: s[j] = w[j]
      subBytes(s)
      if i mod 8 == 0:
        w = [s[1] xor rcon, s[2], s[3], s[0]]
        rcon = byte((rcon shl 1) xor ((rcon shr 7) * 0x1b))
      else:
        for j in 0 ..< 4: w[j] = s[j]
    for j in 0 ..< 4: rk[4 * i + j] = rk[4 * (i - 8) + j] xor w[j]
  wipe(s)

proc initPortable*(key: var AesGcmKey, secret: Bytes) =
  expandKeyPortable(secret, key.rk)
  var s: State4
  encrypt4(key.rk, s)
  var h: array[16, byte]
  copyMem(h[0].addr, s[0].addr, 16)
  setPowers(key, h, dot)
  wipe(h)
  wipe(s)

proc ghashPortable(key: AesGcmKey, y: var U128, data: Bytes, len: int) =
  ## Absorb data, its last partial block zero-padded.
  let h = key.hrev[gcmPowers - 1]
  var off = 0
  while off < len:
    var blk: array[16, byte]
    copyMem(blk[0].addr, data[off].addr, min(16, len - off))
    y = dot(y xor reversed(cast[Bytes](blk[0].addr)), h)
    off += 16

proc ctrPortable(key: AesGcmKey, nonce: Bytes, first: uint32, src, dst: Bytes, len: int) =
  ## dst = src ⊕ AES-CTR keystream from counter `first`, four blocks at a time.
  var s: State4
  var ctr = first
  var off = 0
  while off < len:
    for b in 0 ..< 4:
      let blk = counterBlock(nonce, ctr + uint32(b))
      copyMem(s[16 * b].addr, blk[0].unsafeAddr, 16)
    encrypt4(key.rk, s)
    let n = min(64, len - off)
    for i in 0 ..< n: dst[off + i] = src[off + i] xor s[i]
    ctr += 4
    off += 64
  wipe(s)

proc finishTag(key: AesGcmKey, nonce: Bytes, y: var U128, aadLen, len: int, tag: Bytes) =
  var lens = lengthBlock(aadLen, len)
  ghashPortable(key, y, cast[Bytes](lens[0].addr), 16)
  var s: State4
  let j0 = counterBlock(nonce, 1)
  copyMem(s[0].addr, j0[0].unsafeAddr, 16)
  encrypt4(key.rk, s)
  storeReversed(tag, y)
  for i in 0 ..< 16: tag[i] = tag[i] xor s[i]
  wipe(s)
  wipe(y)

proc sealPortable*(key: AesGcmKey, nonce, aad: Bytes, aadLen: int, src, dst: Bytes, len: int,
                   tag: Bytes) =
  var y: U128
  ghashPortable(key, y, aad, aadLen)
  ctrPortable(key, nonce, 2, src, dst, len)
  ghashPortable(key, y, dst, len)
  finishTag(key, nonce, y, aadLen, len, tag)

proc openPortable*(key: AesGcmKey, nonce, aad: Bytes, aadLen: int, src, dst: Bytes, len: int,
                   tag: Bytes) =
  ## Decrypts and writes the expected tag; the caller compares and wipes dst on a mismatch.
  var y: U128
  ghashPortable(key, y, aad, aadLen)
  ghashPortable(key, y, src, len)
  ctrPortable(key, nonce, 2, src, dst, len)
  finishTag(key, nonce, y, aadLen, len, tag)
