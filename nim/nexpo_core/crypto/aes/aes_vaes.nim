## AES-256-GCM on VAES + VPCLMULQDQ (AVX-512): four blocks per zmm, 32 per loop, their GHASH
## folded with H^32..H^1 into one reduction (Karatsuba products). The tail (< 256 bytes) uses
## byte-masked loads and stores, so short messages never touch a stack buffer.
##
## Properties:
## - AES rounds in hardware (constant time); GHASH by carry-less multiply
## - round keys, counters and the hash state stay in registers (and whatever the compiler
##   spills): the one lasting copy of the key is the caller's `AesGcmKey`
## - masked-off lanes are zero, and the key's hrev table is zero past H^1: padding lanes of a
##   partial batch add nothing to the hash

{.push overflowChecks: off, boundChecks: off.}  # indices bounded by the loops

import ../../targets, ../simd
import ./aes_common

type RoundKeys = array[aesRounds + 1, M512i]

proc bswapLanes(): M512i {.vaesInline.} =
  ## pshufb control reversing each 128-bit lane.
  mm512_broadcast_i32x4(mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))

proc xor3(a, b, c: M512i): M512i {.vaesInline.} = mm512_ternarylogic_epi64(a, b, c, 0x96)

proc reduceZ(lo, mid, hi: M512i): M128i {.vaesInline.} =
  ## Sum the four lanes' unreduced products, then reduce once (as aes_ni's `reduce`).
  template fold(v: M512i): M128i =
    mm_xor_si128(mm_xor_si128(mm512_extracti32x4_epi32(v, 0), mm512_extracti32x4_epi32(v, 1)),
                 mm_xor_si128(mm512_extracti32x4_epi32(v, 2), mm512_extracti32x4_epi32(v, 3)))
  let poly = mm_set_epi64x(cast[int64](0xC200000000000000'u64), 1)
  let m = fold(mid)
  var l = mm_xor_si128(fold(lo), mm_slli_si128(m, 8))
  let h = mm_xor_si128(fold(hi), mm_srli_si128(m, 8))
  l = mm_xor_si128(mm_shuffle_epi32(l, 0x4E), mm_clmulepi64_si128(l, poly, 0x10))
  l = mm_xor_si128(mm_shuffle_epi32(l, 0x4E), mm_clmulepi64_si128(l, poly, 0x10))
  mm_xor_si128(h, l)

template karatsuba(lo, mid, hi: var M512i, v, h: M512i) =
  ## Accumulate the unreduced v·h, three carry-less products per block rather than four
  ## (VPCLMULQDQ's throughput is what bounds the GHASH half of the loop).
  lo = mm512_xor_si512(lo, mm512_clmulepi64_epi128(v, h, 0x00))
  hi = mm512_xor_si512(hi, mm512_clmulepi64_epi128(v, h, 0x11))
  mid = mm512_xor_si512(mid, mm512_clmulepi64_epi128(mm512_xor_si512(v, mm512_shuffle_epi32(v, 0x4E)),
                                                     mm512_xor_si512(h, mm512_shuffle_epi32(h, 0x4E)), 0x00))

proc ghash16(key: AesGcmKey, y: var M128i, x: array[4, M512i], k: int) {.vaesInline.} =
  ## Absorb k ≤ 16 blocks held in x (block 4j+l in lane l of x[j], zero past k): one reduction.
  let bs = bswapLanes()
  var lo, mid, hi = mm512_setzero_si512()
  let first = gcmPowers - k
  for j in 0 ..< 4:
    if 4 * j >= k: break
    var v = mm512_shuffle_epi8(x[j], bs)
    if j == 0: v = mm512_xor_si512(v, mm512_inserti32x4(mm512_setzero_si512(), y, 0))
    karatsuba(lo, mid, hi, v, mm512_loadu_si512(key.hrev[first + 4 * j].unsafeAddr))
  y = reduceZ(lo, xor3(mid, lo, hi), hi)

proc ghash32(key: AesGcmKey, y: var M128i, x: array[8, M512i]) {.vaesInline.} =
  ## Absorb 32 blocks with one reduction (block n times H^(32-n)).
  let bs = bswapLanes()
  var lo, mid, hi = mm512_setzero_si512()
  for j in 0 ..< 8:
    var v = mm512_shuffle_epi8(x[j], bs)
    if j == 0: v = mm512_xor_si512(v, mm512_inserti32x4(mm512_setzero_si512(), y, 0))
    karatsuba(lo, mid, hi, v, mm512_loadu_si512(key.hrev[4 * j].unsafeAddr))
  y = reduceZ(lo, xor3(mid, lo, hi), hi)

proc laneMask(bytes: int): uint64 {.inline.} =
  ## Byte mask for min(bytes, 64) leading bytes of a zmm (0 when bytes <= 0).
  if bytes >= 64: high(uint64) elif bytes <= 0: 0'u64 else: (1'u64 shl bytes) - 1

proc ghashZ(key: AesGcmKey, y0: M128i, data: Bytes, len: int): M128i {.vaesfn.} =
  ## y0 after absorbing data, its last partial block zero-padded.
  var y = y0
  var x: array[4, M512i]
  var off = 0
  while len - off >= 256:
    for j in 0 ..< 4: x[j] = mm512_loadu_si512(data[off + 64 * j].addr)
    ghash16(key, y, x, 16)
    off += 256
  if off < len:
    let rem = len - off
    for j in 0 ..< 4:
      x[j] = mm512_maskz_loadu_epi8(laneMask(rem - 64 * j), data[min(off + 64 * j, len - 1)].addr)
    ghash16(key, y, x, (rem + 15) div 16)
  y

template encryptAll(rk: RoundKeys, b: var array) =
  for j in 0 ..< b.len: b[j] = mm512_xor_si512(b[j], rk[0])
  for r in 1 ..< aesRounds:
    for j in 0 ..< b.len: b[j] = mm512_aesenc_epi128(b[j], rk[r])
  for j in 0 ..< b.len: b[j] = mm512_aesenclast_epi128(b[j], rk[aesRounds])

proc encrypt4(rk: RoundKeys, b: var array[4, M512i]) {.vaesInline.} = encryptAll(rk, b)
proc encrypt8(rk: RoundKeys, b: var array[8, M512i]) {.vaesInline.} = encryptAll(rk, b)

proc ctrGhashVaes*(key: AesGcmKey, nonce: Bytes, firstCtr: uint32, y0: U128, src, dst: Bytes,
                   len: int, decrypting: bool): U128 {.vaesfn.} =
  ## dst = src ⊕ keystream from counter `firstCtr`; returns y0 after GHASH absorbed the
  ## ciphertext (src when decrypting, dst when encrypting). A partial last block is padded, so
  ## a part that is not the message's end must be whole blocks.
  var y0 = y0
  var rk: RoundKeys
  for r in 0 .. aesRounds:
    rk[r] = mm512_broadcast_i32x4(mm_loadu_si128(key.rk[16 * r].unsafeAddr))
  let j0 = counterBlock(nonce, 0)
  let base = mm512_broadcast_i32x4(mm_loadu_si128(j0[0].unsafeAddr))   # counter bytes zero
  # Counters count in little-endian dword 3 of each lane; `ctrSwap` moves them big-endian into
  # place and zeroes the rest, so a block is base ⊕ shuffle(counter).
  let ctrSwap = mm512_broadcast_i32x4(mm_set_epi8(12, 13, 14, 15, -128, -128, -128, -128, -128,
                                                  -128, -128, -128, -128, -128, -128, -128))
  let c = cast[int32](firstCtr)
  var ctr = mm512_setr_epi32(0, 0, 0, c, 0, 0, 0, c +% 1, 0, 0, 0, c +% 2, 0, 0, 0, c +% 3)
  let four = mm512_setr_epi32(0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4)
  var y = mm_loadu_si128(y0.addr)
  var b, x: array[4, M512i]
  var off = 0
  template nextCounters(b: var array) =
    for j in 0 ..< b.len:
      b[j] = mm512_xor_si512(base, mm512_shuffle_epi8(ctr, ctrSwap))
      ctr = mm512_add_epi32(ctr, four)
  # 512 bytes (32 blocks in 8 zmm) per loop: eight independent AES chains hide the rounds'
  # latency. Encryption is software-pipelined: the GHASH of the previous 512 bytes of
  # ciphertext runs beside the AES rounds of the next.
  var b8, x8: array[8, M512i]
  if decrypting:
    while len - off >= 512:
      nextCounters(b8)
      for j in 0 ..< 8: x8[j] = mm512_loadu_si512(src[off + 64 * j].addr)
      encrypt8(rk, b8)
      ghash32(key, y, x8)
      for j in 0 ..< 8: mm512_storeu_si512(dst[off + 64 * j].addr, mm512_xor_si512(b8[j], x8[j]))
      off += 512
  elif len >= 512:
    nextCounters(b8)
    encrypt8(rk, b8)
    for j in 0 ..< 8:
      x8[j] = mm512_xor_si512(b8[j], mm512_loadu_si512(src[64 * j].addr))
      mm512_storeu_si512(dst[64 * j].addr, x8[j])
    off = 512
    while len - off >= 512:
      nextCounters(b8)
      encrypt8(rk, b8)
      ghash32(key, y, x8)
      for j in 0 ..< 8:
        x8[j] = mm512_xor_si512(b8[j], mm512_loadu_si512(src[off + 64 * j].addr))
        mm512_storeu_si512(dst[off + 64 * j].addr, x8[j])
      off += 512
    ghash32(key, y, x8)
  if len - off >= 256:
    nextCounters(b)
    encrypt4(rk, b)
    for j in 0 ..< 4:
      let input = mm512_loadu_si512(src[off + 64 * j].addr)
      let output = mm512_xor_si512(b[j], input)
      mm512_storeu_si512(dst[off + 64 * j].addr, output)
      x[j] = if decrypting: input else: output
    ghash16(key, y, x, 16)
    off += 256
  if off < len:
    let rem = len - off
    nextCounters(b)
    encrypt4(rk, b)
    for j in 0 ..< 4:
      let m = laneMask(rem - 64 * j)
      let at = min(off + 64 * j, len - 1)    # an in-bounds address even for an empty mask
      let input = mm512_maskz_loadu_epi8(m, src[at].addr)
      let output = mm512_maskz_mov_epi8(m, mm512_xor_si512(b[j], input))
      mm512_mask_storeu_epi8(dst[at].addr, m, output)
      x[j] = if decrypting: input else: output
    ghash16(key, y, x, (rem + 15) div 16)
  mm_storeu_si128(result.addr, y)

proc ghashVaes*(key: AesGcmKey, y0: U128, data: Bytes, len: int): U128 {.vaesfn.} =
  var y0 = y0
  mm_storeu_si128(result.addr, ghashZ(key, mm_loadu_si128(y0.addr), data, len))

proc tagVaes*(key: AesGcmKey, nonce: Bytes, y0: U128, aadLen, len: int, tag: Bytes) {.vaesfn.} =
  ## tag = GHASH(..., lengths) ⊕ E_K(J0).
  var y0 = y0
  var y = mm_loadu_si128(y0.addr)
  var lens = lengthBlock(aadLen, len)
  var x: array[4, M512i]
  x[0] = mm512_maskz_loadu_epi8(0xFFFF'u64, lens[0].addr)
  ghash16(key, y, x, 1)
  var rk: RoundKeys
  for r in 0 .. aesRounds:
    rk[r] = mm512_broadcast_i32x4(mm_loadu_si128(key.rk[16 * r].unsafeAddr))
  let j0 = counterBlock(nonce, 1)
  var b: array[4, M512i]
  b[0] = mm512_broadcast_i32x4(mm_loadu_si128(j0[0].unsafeAddr))
  encrypt4(rk, b)
  let mask = mm512_extracti32x4_epi32(b[0], 0)
  mm_storeu_si128(tag, mm_xor_si128(mm_shuffle_epi8(y, mm512_extracti32x4_epi32(bswapLanes(), 0)),
                                    mask))

proc gcmVaes(key: AesGcmKey, nonce, aad: Bytes, aadLen: int, src, dst: Bytes, len: int,
             tag: Bytes, decrypting: bool) =
  var y = ghashVaes(key, U128(), aad, aadLen)
  y = ctrGhashVaes(key, nonce, 2, y, src, dst, len, decrypting)
  tagVaes(key, nonce, y, aadLen, len, tag)

proc sealVaes*(key: AesGcmKey, nonce, aad: Bytes, aadLen: int, src, dst: Bytes, len: int,
               tag: Bytes) =
  gcmVaes(key, nonce, aad, aadLen, src, dst, len, tag, decrypting = false)

proc openVaes*(key: AesGcmKey, nonce, aad: Bytes, aadLen: int, src, dst: Bytes, len: int,
               tag: Bytes) =
  ## Decrypts and writes the expected tag; the caller compares and wipes dst on a mismatch.
  gcmVaes(key, nonce, aad, aadLen, src, dst, len, tag, decrypting = true)
