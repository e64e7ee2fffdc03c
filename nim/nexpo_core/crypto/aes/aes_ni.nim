## AES-256-GCM on AES-NI + PCLMULQDQ (xmm, VEX-encoded): eight blocks per loop, their GHASH
## folded with H^8..H^1 into one reduction. Also the key setup of both x86 variants.
##
## Properties:
## - AES rounds in hardware (constant time); GHASH by carry-less multiply
## - the tail (< 128 bytes) goes through a zero-padded stack buffer, wiped afterwards; round
##   keys, counters and the hash state are register values (wiping them would pin them to the
##   stack): the lasting copy of the key is the caller's `AesGcmKey`

{.push overflowChecks: off, boundChecks: off.}  # indices bounded by the loops

import ../../targets, ../simd, ../ct
import ./aes_common

type RoundKeys = array[aesRounds + 1, M128i]

proc bswapMask(): M128i {.aesniInline.} =
  mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

proc loadKeys(key: AesGcmKey, rk: var RoundKeys) {.aesniInline.} =
  for r in 0 .. aesRounds: rk[r] = mm_loadu_si128(key.rk[16 * r].unsafeAddr)

proc reduce(lo, mid, hi: M128i): M128i {.aesniInline.} =
  ## (hi·x^128 + mid·x^64 + lo)·x^-128 mod POLYVAL's polynomial.
  let poly = mm_set_epi64x(cast[int64](0xC200000000000000'u64), 1)
  var l = mm_xor_si128(lo, mm_slli_si128(mid, 8))
  let h = mm_xor_si128(hi, mm_srli_si128(mid, 8))
  l = mm_xor_si128(mm_shuffle_epi32(l, 0x4E), mm_clmulepi64_si128(l, poly, 0x10))
  l = mm_xor_si128(mm_shuffle_epi32(l, 0x4E), mm_clmulepi64_si128(l, poly, 0x10))
  mm_xor_si128(h, l)

proc dotNi(a, b: M128i): M128i {.aesniInline.} =
  reduce(mm_clmulepi64_si128(a, b, 0x00),
         mm_xor_si128(mm_clmulepi64_si128(a, b, 0x10), mm_clmulepi64_si128(a, b, 0x01)),
         mm_clmulepi64_si128(a, b, 0x11))

proc dotU128*(a, b: U128): U128 {.aesnifn.} =
  var a = a
  var b = b
  mm_storeu_si128(result.addr, dotNi(mm_loadu_si128(a.addr), mm_loadu_si128(b.addr)))

proc ghashBlocks(key: AesGcmKey, y: var M128i, data: pointer, k: int) {.aesniInline.} =
  ## Absorb k ≤ 16 whole blocks with one reduction: block n times H^(k-n).
  let bs = bswapMask()
  let p = cast[Bytes](data)
  var lo, mid, hi = mm_setzero_si128()
  for n in 0 ..< k:
    var x = mm_shuffle_epi8(mm_loadu_si128(p[16 * n].addr), bs)
    if n == 0: x = mm_xor_si128(x, y)
    let h = mm_loadu_si128(key.hrev[gcmPowers - k + n].unsafeAddr)
    lo = mm_xor_si128(lo, mm_clmulepi64_si128(x, h, 0x00))
    hi = mm_xor_si128(hi, mm_clmulepi64_si128(x, h, 0x11))
    mid = mm_xor_si128(mid, mm_xor_si128(mm_clmulepi64_si128(x, h, 0x10),
                                         mm_clmulepi64_si128(x, h, 0x01)))
  y = reduce(lo, mid, hi)

proc ghashNi(key: AesGcmKey, y: var M128i, data: Bytes, len: int) {.aesnifn.} =
  ## Absorb data, its last partial block zero-padded.
  var off = 0
  while len - off >= 256:
    ghashBlocks(key, y, data[off].addr, 16)
    off += 256
  if off < len:
    var buf: array[256, byte]
    copyMem(buf[0].addr, data[off].addr, len - off)
    ghashBlocks(key, y, buf[0].addr, (len - off + 15) div 16)

template aesRound(b: var array[8, M128i], n: int, rk: M128i) =
  for i in 0 ..< n: b[i] = mm_aesenc_si128(b[i], rk)

proc encryptBlocks(rk: RoundKeys, b: var array[8, M128i], n: int) {.aesniInline.} =
  for i in 0 ..< n: b[i] = mm_xor_si128(b[i], rk[0])
  for r in 1 ..< aesRounds: aesRound(b, n, rk[r])
  for i in 0 ..< n: b[i] = mm_aesenclast_si128(b[i], rk[aesRounds])

proc counters(base: M128i, ctr: uint32, b: var array[8, M128i], n: int) {.aesniInline.} =
  for i in 0 ..< n:
    let c = ctr + uint32(i)
    let be = (c shr 24) or ((c shr 8) and 0xff00'u32) or ((c shl 8) and 0xff0000'u32) or (c shl 24)
    b[i] = mm_insert_epi32(base, cast[int32](be), 3)

proc ctrGhash(key: AesGcmKey, rk: RoundKeys, base: M128i, y0: M128i, src, dst: Bytes,
              len: int, decrypting: bool): M128i {.aesniInline.} =
  ## dst = src ⊕ keystream (counter 2 on); returns y0 after GHASH absorbed the ciphertext.
  var y = y0
  var ctr = 2'u32
  var off = 0
  var b: array[8, M128i]
  # Encryption is software-pipelined: the GHASH of the previous 128 bytes of ciphertext runs
  # beside the AES rounds of the next, so neither waits for the other.
  var pending = -1
  while len - off >= 128:
    counters(base, ctr, b, 8)
    encryptBlocks(rk, b, 8)
    if decrypting: ghashBlocks(key, y, src[off].addr, 8)
    elif pending >= 0: ghashBlocks(key, y, dst[pending].addr, 8)
    for i in 0 ..< 8:
      mm_storeu_si128(dst[off + 16 * i].addr,
                      mm_xor_si128(b[i], mm_loadu_si128(src[off + 16 * i].addr)))
    pending = off
    ctr += 8
    off += 128
  if not decrypting and pending >= 0: ghashBlocks(key, y, dst[pending].addr, 8)
  if off < len:
    let rem = len - off
    let n = (rem + 15) div 16
    var buf: array[128, byte]
    copyMem(buf[0].addr, src[off].addr, rem)
    if decrypting: ghashBlocks(key, y, buf[0].addr, n)
    counters(base, ctr, b, n)
    encryptBlocks(rk, b, n)
    for i in 0 ..< n:
      mm_storeu_si128(buf[16 * i].addr, mm_xor_si128(b[i], mm_loadu_si128(buf[16 * i].addr)))
    copyMem(dst[off].addr, buf[0].addr, rem)
    if not decrypting:
      zeroMem(buf[rem].addr, 16 * n - rem)
      ghashBlocks(key, y, buf[0].addr, n)
    wipe(buf)
  y

proc gcmNi(key: AesGcmKey, nonce, aad: Bytes, aadLen: int, src, dst: Bytes, len: int,
           tag: Bytes, decrypting: bool) {.aesnifn.} =
  var rk: RoundKeys
  loadKeys(key, rk)
  let j0 = counterBlock(nonce, 1)
  let base = mm_loadu_si128(j0[0].unsafeAddr)
  var y = mm_setzero_si128()
  ghashNi(key, y, aad, aadLen)
  y = ctrGhash(key, rk, base, y, src, dst, len, decrypting)
  var lens = lengthBlock(aadLen, len)
  ghashBlocks(key, y, lens[0].addr, 1)
  var b: array[8, M128i]
  b[0] = base
  encryptBlocks(rk, b, 1)
  mm_storeu_si128(tag, mm_xor_si128(mm_shuffle_epi8(y, bswapMask()), b[0]))

proc sealNi*(key: AesGcmKey, nonce, aad: Bytes, aadLen: int, src, dst: Bytes, len: int,
             tag: Bytes) =
  gcmNi(key, nonce, aad, aadLen, src, dst, len, tag, decrypting = false)

proc openNi*(key: AesGcmKey, nonce, aad: Bytes, aadLen: int, src, dst: Bytes, len: int,
             tag: Bytes) =
  ## Decrypts and writes the expected tag; the caller compares and wipes dst on a mismatch.
  gcmNi(key, nonce, aad, aadLen, src, dst, len, tag, decrypting = true)

# --- key setup (AES-NI's key-generation assist; both x86 variants) ----------------------------

proc prefixXor(k: M128i): M128i {.aesniInline.} =
  var k = k
  k = mm_xor_si128(k, mm_slli_si128(k, 4))
  k = mm_xor_si128(k, mm_slli_si128(k, 4))
  mm_xor_si128(k, mm_slli_si128(k, 4))

template expandPair(rk: var RoundKeys, i, rcon: static int) =
  rk[2 * i] = mm_xor_si128(prefixXor(rk[2 * i - 2]),
                           mm_shuffle_epi32(mm_aeskeygenassist_si128(rk[2 * i - 1], rcon), 0xFF))
  when 2 * i + 1 <= aesRounds:
    rk[2 * i + 1] = mm_xor_si128(prefixXor(rk[2 * i - 1]),
                                 mm_shuffle_epi32(mm_aeskeygenassist_si128(rk[2 * i], 0), 0xAA))

proc initNi*(key: var AesGcmKey, secret: Bytes) {.aesnifn.} =
  var rk: RoundKeys
  rk[0] = mm_loadu_si128(secret)
  rk[1] = mm_loadu_si128(secret[16].addr)
  expandPair(rk, 1, 0x01)
  expandPair(rk, 2, 0x02)
  expandPair(rk, 3, 0x04)
  expandPair(rk, 4, 0x08)
  expandPair(rk, 5, 0x10)
  expandPair(rk, 6, 0x20)
  expandPair(rk, 7, 0x40)
  for r in 0 .. aesRounds: mm_storeu_si128(key.rk[16 * r].addr, rk[r])
  var b: array[8, M128i]
  b[0] = mm_setzero_si128()
  encryptBlocks(rk, b, 1)
  var h: array[16, byte]
  mm_storeu_si128(h[0].addr, b[0])
  setPowers(key, h, dotU128)
  wipe(h)
  wipe(b)
  wipe(rk)
