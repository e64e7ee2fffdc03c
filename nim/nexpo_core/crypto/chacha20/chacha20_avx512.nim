## ChaCha20 on AVX-512: 16 blocks (1 KiB of keystream) per iteration.
##
## "Vertical" layout: register x[w] holds state word w of 16 consecutive blocks, one block per
## 32-bit lane, so a quarter round is 12 full-width ops on 16 blocks and rotations are single
## `vprold` instructions. After the 20 rounds the 16×16 word matrix is transposed in registers
## (64 shuffles; gathers from a stack copy were slower and left keystream on the stack).
##
## ::
##
##   x[0..3]   constants (broadcast)     x[12] = counter + [0, 1, ..., 15]
##   x[4..11]  key words (broadcast)     x[13..15] nonce words (broadcast)
##
## Properties:
## - procs carry `avx512fn`; only called when `cpu.activeIsa() == isaAvx512`
## - add/xor/rotate/shuffle only: constant time; keystream is written nowhere but into dst,
##   or into a stack buffer for a short rest, which is wiped

import ../../targets
import ../simd
import ../ct
import ./chacha20_generic

template qr(x: var array[16, M512i], a, b, c, d: static int) =
  x[a] = mm512_add_epi32(x[a], x[b]); x[d] = mm512_rol_epi32(mm512_xor_si512(x[d], x[a]), 16)
  x[c] = mm512_add_epi32(x[c], x[d]); x[b] = mm512_rol_epi32(mm512_xor_si512(x[b], x[c]), 12)
  x[a] = mm512_add_epi32(x[a], x[b]); x[d] = mm512_rol_epi32(mm512_xor_si512(x[d], x[a]), 8)
  x[c] = mm512_add_epi32(x[c], x[d]); x[b] = mm512_rol_epi32(mm512_xor_si512(x[b], x[c]), 7)

template rotl(v: uint32, n: static int): uint32 = (v shl n) or (v shr (32 - n))

template sqr(a, b, c, d: untyped) =
  a += b; d = rotl(d xor a, 16)
  c += d; b = rotl(b xor c, 12)
  a += b; d = rotl(d xor a, 8)
  c += d; b = rotl(b xor c, 7)

proc chachaXor16Impl(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], nchunks: int,
                     blk0: ptr array[16, uint32], withKey: static bool) {.avx512fn.} =
  ## nchunks × 1024 bytes: dst = src ⊕ keystream; advances input[12] by 16 per chunk.
  ## `withKey`: also blk0 = the block function at counter input[12] - 1 (the AEAD's one-time
  ## key block), in scalar registers between the vector rounds: the integer ALUs are idle
  ## there, so the block costs next to nothing instead of a portable call. (A separate
  ## instance, called for one chunk: in the plain loop the extra code cost register slack.)
  var init: array[16, M512i]
  for w in 0 ..< 16: init[w] = mm512_set1_epi32(cast[int32](input[w]))
  let lanes = mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
  var x, t: array[16, M512i]
  for chunk in 0 ..< nchunks:
    init[12] = mm512_add_epi32(mm512_set1_epi32(cast[int32](input[12])), lanes)
    x = init
    when withKey:
      var (s0, s1, s2, s3, s4, s5, s6, s7) = (input[0], input[1], input[2], input[3], input[4],
                                              input[5], input[6], input[7])
      var (s8, s9, s10, s11, s12, s13, s14, s15) = (input[8], input[9], input[10], input[11],
                                                    input[12] - 1, input[13], input[14], input[15])
      for _ in 0 ..< 10:
        qr(x, 0, 4, 8, 12); sqr(s0, s4, s8, s12); qr(x, 1, 5, 9, 13); sqr(s1, s5, s9, s13)
        qr(x, 2, 6, 10, 14); sqr(s2, s6, s10, s14); qr(x, 3, 7, 11, 15); sqr(s3, s7, s11, s15)
        qr(x, 0, 5, 10, 15); sqr(s0, s5, s10, s15); qr(x, 1, 6, 11, 12); sqr(s1, s6, s11, s12)
        qr(x, 2, 7, 8, 13); sqr(s2, s7, s8, s13); qr(x, 3, 4, 9, 14); sqr(s3, s4, s9, s14)
      blk0[] = [s0 + input[0], s1 + input[1], s2 + input[2], s3 + input[3], s4 + input[4],
                s5 + input[5], s6 + input[6], s7 + input[7], s8 + input[8], s9 + input[9],
                s10 + input[10], s11 + input[11], s12 + input[12] - 1, s13 + input[13],
                s14 + input[14], s15 + input[15]]
    else:
      for _ in 0 ..< 10:
        qr(x, 0, 4, 8, 12); qr(x, 1, 5, 9, 13); qr(x, 2, 6, 10, 14); qr(x, 3, 7, 11, 15)
        qr(x, 0, 5, 10, 15); qr(x, 1, 6, 11, 12); qr(x, 2, 7, 8, 13); qr(x, 3, 4, 9, 14)
    for w in 0 ..< 16: x[w] = mm512_add_epi32(x[w], init[w])
    # Transpose the 16×16 word matrix in registers (x[w] lane b = word w of block b):
    # 32-bit then 64-bit interleaves leave x[4g+k] 128-bit lane L = words 4g..4g+3 of block
    # 4L+k; a 4×4 transpose of 128-bit lanes then assembles each block.
    for p in 0 ..< 8:
      t[2 * p] = mm512_unpacklo_epi32(x[2 * p], x[2 * p + 1])
      t[2 * p + 1] = mm512_unpackhi_epi32(x[2 * p], x[2 * p + 1])
    for g in 0 ..< 4:
      x[4 * g] = mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2])
      x[4 * g + 1] = mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2])
      x[4 * g + 2] = mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3])
      x[4 * g + 3] = mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3])
    let base = 1024 * chunk
    for k in 0 ..< 4:
      let v0 = mm512_shuffle_i32x4(x[k], x[4 + k], 0x44)
      let v1 = mm512_shuffle_i32x4(x[k], x[4 + k], 0xEE)
      let v2 = mm512_shuffle_i32x4(x[8 + k], x[12 + k], 0x44)
      let v3 = mm512_shuffle_i32x4(x[8 + k], x[12 + k], 0xEE)
      template put(blk: int, ks: M512i) =
        let off = base + 64 * blk
        mm512_storeu_si512(dst[off].addr, mm512_xor_si512(mm512_loadu_si512(src[off].addr), ks))
      put(k, mm512_shuffle_i32x4(v0, v2, 0x88))
      put(4 + k, mm512_shuffle_i32x4(v0, v2, 0xDD))
      put(8 + k, mm512_shuffle_i32x4(v1, v3, 0x88))
      put(12 + k, mm512_shuffle_i32x4(v1, v3, 0xDD))
    input[12] += 16
  # The state vectors live in registers (wiping them would pin them to the stack for the
  # whole loop); no keystream is ever stored but into dst.

proc chachaXorAvx512*(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], len: int,
                      blk0: ptr array[16, uint32] = nil) =
  ## Whole 1 KiB chunks on AVX-512; a rest of two blocks or more as one more chunk through a
  ## stack buffer (one 16-block step costs less than two portable blocks), a single block on
  ## the portable block function. `blk0` (len >= 1024 only): see `chachaXor16Impl`.
  let chunks = len div 1024
  if chunks > 0:
    if blk0 != nil:
      chachaXor16Impl(input, src, dst, 1, blk0, true)
      if chunks > 1:
        chachaXor16Impl(input, cast[ptr UncheckedArray[byte]](src[1024].addr),
                        cast[ptr UncheckedArray[byte]](dst[1024].addr), chunks - 1, nil, false)
    else:
      chachaXor16Impl(input, src, dst, chunks, nil, false)
  let done = 1024 * chunks
  let rest = len - done
  if rest > 64:
    var buf {.noinit, align: 64.}: array[1024, byte]
    let counter = input[12]
    copyMem(buf[0].addr, src[done].addr, rest)
    chachaXor16Impl(input, cast[ptr UncheckedArray[byte]](buf[0].addr), cast[ptr UncheckedArray[byte]](buf[0].addr),
                    1, nil, false)
    copyMem(dst[done].addr, buf[0].addr, rest)
    input[12] = counter + uint32((rest + 63) div 64)
    wipe(buf)    # keystream beyond `rest`, and the message
  elif rest > 0:
    chachaXorGeneric(input, cast[ptr UncheckedArray[byte]](src[done].addr),
                     cast[ptr UncheckedArray[byte]](dst[done].addr), rest)
