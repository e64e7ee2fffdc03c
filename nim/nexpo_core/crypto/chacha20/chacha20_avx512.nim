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

proc chachaXor16(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], nchunks: int) {.avx512fn.} =
  ## nchunks × 1024 bytes: dst = src ⊕ keystream; advances input[12] by 16 per chunk.
  var init: array[16, M512i]
  for w in 0 ..< 16: init[w] = mm512_set1_epi32(cast[int32](input[w]))
  let lanes = mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
  var x, t: array[16, M512i]
  for chunk in 0 ..< nchunks:
    init[12] = mm512_add_epi32(mm512_set1_epi32(cast[int32](input[12])), lanes)
    x = init
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

proc chachaXorAvx512*(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], len: int) =
  ## Whole 1 KiB chunks on AVX-512; a rest of two blocks or more as one more chunk through a
  ## stack buffer (one 16-block step costs less than two portable blocks), a single block on
  ## the portable block function.
  let chunks = len div 1024
  if chunks > 0: chachaXor16(input, src, dst, chunks)
  let done = 1024 * chunks
  let rest = len - done
  if rest > 64:
    var buf {.noinit, align: 64.}: array[1024, byte]
    let counter = input[12]
    copyMem(buf[0].addr, src[done].addr, rest)
    chachaXor16(input, cast[ptr UncheckedArray[byte]](buf[0].addr), cast[ptr UncheckedArray[byte]](buf[0].addr), 1)
    copyMem(dst[done].addr, buf[0].addr, rest)
    input[12] = counter + uint32((rest + 63) div 64)
    wipe(buf)    # keystream beyond `rest`, and the message
  elif rest > 0:
    chachaXorGeneric(input, cast[ptr UncheckedArray[byte]](src[done].addr),
                     cast[ptr UncheckedArray[byte]](dst[done].addr), rest)
