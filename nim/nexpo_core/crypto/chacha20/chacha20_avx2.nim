## ChaCha20 on AVX2: 8 blocks (512 bytes of keystream) per iteration.
##
## Same vertical layout as `chacha20_avx512.nim` with 8 lanes: x[w] holds word w of 8 blocks.
## Rotations by 16 and 8 are byte shuffles (`vpshufb`), by 12 and 7 shift+or. Each block's
## keystream is gathered back from the stored 16×8 matrix with two `vpgatherdd` (stride 8).
##
## Properties:
## - procs carry `avx2fn`; only called when `cpu.activeIsa() >= isaAvx2`
## - add/xor/rotate only: constant time; the keystream buffer is wiped before returning (the
##   state vectors stay in registers: wiping them would pin them to the stack for the whole loop)

import ../../targets
import ../simd
import ../ct
import ./chacha20_generic

template rolShift(v: M256i, n: static cint): M256i = mm256_or_si256(mm256_slli_epi32(v, n), mm256_srli_epi32(v, 32 - n))

template qr(x: var array[16, M256i], a, b, c, d: static int, rot16, rot8: M256i) =
  x[a] = mm256_add_epi32(x[a], x[b]); x[d] = mm256_shuffle_epi8(mm256_xor_si256(x[d], x[a]), rot16)
  x[c] = mm256_add_epi32(x[c], x[d]); x[b] = rolShift(mm256_xor_si256(x[b], x[c]), 12)
  x[a] = mm256_add_epi32(x[a], x[b]); x[d] = mm256_shuffle_epi8(mm256_xor_si256(x[d], x[a]), rot8)
  x[c] = mm256_add_epi32(x[c], x[d]); x[b] = rolShift(mm256_xor_si256(x[b], x[c]), 7)

proc chachaXor8(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], nchunks: int) {.avx2fn.} =
  ## nchunks × 512 bytes: dst = src ⊕ keystream; advances input[12] by 8 per chunk.
  var ks {.align: 32.}: array[128, uint32]
  var init: array[16, M256i]
  for w in 0 ..< 16: init[w] = mm256_set1_epi32(cast[int32](input[w]))
  let lanes = mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
  let stride = mm256_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56)
  let rot16 = mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                     2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)
  let rot8 = mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14,
                    3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14)
  var x: array[16, M256i]
  for chunk in 0 ..< nchunks:
    init[12] = mm256_add_epi32(mm256_set1_epi32(cast[int32](input[12])), lanes)
    x = init
    for _ in 0 ..< 10:
      qr(x, 0, 4, 8, 12, rot16, rot8); qr(x, 1, 5, 9, 13, rot16, rot8)
      qr(x, 2, 6, 10, 14, rot16, rot8); qr(x, 3, 7, 11, 15, rot16, rot8)
      qr(x, 0, 5, 10, 15, rot16, rot8); qr(x, 1, 6, 11, 12, rot16, rot8)
      qr(x, 2, 7, 8, 13, rot16, rot8); qr(x, 3, 4, 9, 14, rot16, rot8)
    for w in 0 ..< 16: mm256_storeu_si256(ks[8 * w].addr, mm256_add_epi32(x[w], init[w]))
    let base = 512 * chunk
    for b in 0 ..< 8:
      let off = base + 64 * b
      let lo = mm256_i32gather_epi32(ks[b].addr, stride, 4)
      let hi = mm256_i32gather_epi32(ks[64 + b].addr, stride, 4)
      mm256_storeu_si256(dst[off].addr, mm256_xor_si256(mm256_loadu_si256(src[off].addr), lo))
      mm256_storeu_si256(dst[off + 32].addr, mm256_xor_si256(mm256_loadu_si256(src[off + 32].addr), hi))
    input[12] += 8
  # The vectors above live in registers (wiping them would force them to memory in the loop);
  # the keystream buffer is the one copy of keystream that outlives the call.
  wipe(ks)

proc chachaXorAvx2*(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], len: int) =
  ## Whole 512-byte chunks on AVX2; a rest of two blocks or more as one more chunk through a
  ## stack buffer (one 8-block step costs less than two portable blocks), a single block on
  ## the portable block function.
  let chunks = len div 512
  if chunks > 0: chachaXor8(input, src, dst, chunks)
  let done = 512 * chunks
  let rest = len - done
  if rest > 64:
    var buf {.noinit, align: 32.}: array[512, byte]
    let counter = input[12]
    copyMem(buf[0].addr, src[done].addr, rest)
    chachaXor8(input, cast[ptr UncheckedArray[byte]](buf[0].addr), cast[ptr UncheckedArray[byte]](buf[0].addr), 1)
    copyMem(dst[done].addr, buf[0].addr, rest)
    input[12] = counter + uint32((rest + 63) div 64)
    wipe(buf)    # keystream beyond `rest`, and the message
  elif rest > 0:
    chachaXorGeneric(input, cast[ptr UncheckedArray[byte]](src[done].addr),
                     cast[ptr UncheckedArray[byte]](dst[done].addr), rest)
