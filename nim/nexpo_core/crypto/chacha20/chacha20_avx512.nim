## ChaCha20 on AVX-512: 16 blocks (1 KiB of keystream) per iteration.
##
## "Vertical" layout: register x[w] holds state word w of 16 consecutive blocks, one block per
## 32-bit lane, so a quarter round is 12 full-width ops on 16 blocks and rotations are single
## `vprold` instructions. After the 20 rounds the 16×16 word matrix is written to the stack and
## each block's 64 bytes are gathered back with one `vpgatherdd` (stride 16 words).
##
## ::
##
##   x[0..3]   constants (broadcast)     x[12] = counter + [0, 1, ..., 15]
##   x[4..11]  key words (broadcast)     x[13..15] nonce words (broadcast)
##
## Properties:
## - procs carry `avx512fn`; only called when `cpu.activeIsa() == isaAvx512`
## - add/xor/rotate only: constant time; the keystream buffer is wiped before returning

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
  var ks {.align: 64.}: array[256, uint32]
  var init: array[16, M512i]
  for w in 0 ..< 16: init[w] = mm512_set1_epi32(cast[int32](input[w]))
  let lanes = mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
  let stride = mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240)
  var x: array[16, M512i]
  for chunk in 0 ..< nchunks:
    init[12] = mm512_add_epi32(mm512_set1_epi32(cast[int32](input[12])), lanes)
    x = init
    for _ in 0 ..< 10:
      qr(x, 0, 4, 8, 12); qr(x, 1, 5, 9, 13); qr(x, 2, 6, 10, 14); qr(x, 3, 7, 11, 15)
      qr(x, 0, 5, 10, 15); qr(x, 1, 6, 11, 12); qr(x, 2, 7, 8, 13); qr(x, 3, 4, 9, 14)
    for w in 0 ..< 16: mm512_storeu_si512(ks[16 * w].addr, mm512_add_epi32(x[w], init[w]))
    let base = 1024 * chunk
    for b in 0 ..< 16:
      let k = mm512_i32gather_epi32(stride, ks[b].addr, 4)
      let off = base + 64 * b
      mm512_storeu_si512(dst[off].addr, mm512_xor_si512(mm512_loadu_si512(src[off].addr), k))
    input[12] += 16
  wipe(ks)
  wipe(x)
  wipe(init)

proc chachaXorAvx512*(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], len: int) =
  ## Whole 1 KiB chunks on AVX-512, the rest on the portable block function.
  let chunks = len div 1024
  if chunks > 0: chachaXor16(input, src, dst, chunks)
  let done = 1024 * chunks
  if done < len:
    chachaXorGeneric(input, cast[ptr UncheckedArray[byte]](src[done].addr),
                     cast[ptr UncheckedArray[byte]](dst[done].addr), len - done)
