## ChaCha20 on AVX2: 8 blocks (512 bytes of keystream) per iteration.
##
## Same vertical layout as `chacha20_avx512.nim` with 8 lanes: x[w] holds word w of 8 blocks.
## Rotations by 16 and 8 are byte shuffles (`vpshufb`), by 12 and 7 shift+or. Each block's
## keystream is gathered back from the stored 16×8 matrix with two `vpgatherdd` (stride 8).
##
## Properties:
## - procs carry `avx2fn`; only called when `cpu.activeIsa() >= isaAvx2`
## - add/xor/rotate only: constant time; the keystream buffer is wiped before returning

import ../../targets
import ../ct
import ./chacha20_generic

type M256i {.importc: "__m256i", header: "immintrin.h", bycopy.} = object

proc set1(a: int32): M256i {.importc: "_mm256_set1_epi32", header: "immintrin.h".}
proc setr8(a0, a1, a2, a3, a4, a5, a6, a7: int32): M256i {.importc: "_mm256_setr_epi32", header: "immintrin.h".}
proc setr8b(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, b0, b1, b2, b3,
            b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15: int8): M256i {.
  importc: "_mm256_setr_epi8", header: "immintrin.h".}
proc add(a, b: M256i): M256i {.importc: "_mm256_add_epi32", header: "immintrin.h".}
proc xorv(a, b: M256i): M256i {.importc: "_mm256_xor_si256", header: "immintrin.h".}
proc orv(a, b: M256i): M256i {.importc: "_mm256_or_si256", header: "immintrin.h".}
proc slli(a: M256i, n: cint): M256i {.importc: "_mm256_slli_epi32", header: "immintrin.h".}
proc srli(a: M256i, n: cint): M256i {.importc: "_mm256_srli_epi32", header: "immintrin.h".}
proc shuffle8(a, b: M256i): M256i {.importc: "_mm256_shuffle_epi8", header: "immintrin.h".}
proc loadu(p: pointer): M256i {.importc: "_mm256_loadu_si256", header: "immintrin.h".}
proc storeu(p: pointer, a: M256i) {.importc: "_mm256_storeu_si256", header: "immintrin.h".}
proc gather(base: pointer, idx: M256i, scale: cint): M256i {.
  importc: "_mm256_i32gather_epi32", header: "immintrin.h".}

template rolShift(v: M256i, n: static cint): M256i = orv(slli(v, n), srli(v, 32 - n))

template qr(x: var array[16, M256i], a, b, c, d: static int, rot16, rot8: M256i) =
  x[a] = add(x[a], x[b]); x[d] = shuffle8(xorv(x[d], x[a]), rot16)
  x[c] = add(x[c], x[d]); x[b] = rolShift(xorv(x[b], x[c]), 12)
  x[a] = add(x[a], x[b]); x[d] = shuffle8(xorv(x[d], x[a]), rot8)
  x[c] = add(x[c], x[d]); x[b] = rolShift(xorv(x[b], x[c]), 7)

proc chachaXor8(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], nchunks: int) {.avx2fn.} =
  ## nchunks × 512 bytes: dst = src ⊕ keystream; advances input[12] by 8 per chunk.
  var ks {.align: 32.}: array[128, uint32]
  var init: array[16, M256i]
  for w in 0 ..< 16: init[w] = set1(cast[int32](input[w]))
  let lanes = setr8(0, 1, 2, 3, 4, 5, 6, 7)
  let stride = setr8(0, 8, 16, 24, 32, 40, 48, 56)
  let rot16 = setr8b(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                     2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)
  let rot8 = setr8b(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14,
                    3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14)
  var x: array[16, M256i]
  for chunk in 0 ..< nchunks:
    init[12] = add(set1(cast[int32](input[12])), lanes)
    x = init
    for _ in 0 ..< 10:
      qr(x, 0, 4, 8, 12, rot16, rot8); qr(x, 1, 5, 9, 13, rot16, rot8)
      qr(x, 2, 6, 10, 14, rot16, rot8); qr(x, 3, 7, 11, 15, rot16, rot8)
      qr(x, 0, 5, 10, 15, rot16, rot8); qr(x, 1, 6, 11, 12, rot16, rot8)
      qr(x, 2, 7, 8, 13, rot16, rot8); qr(x, 3, 4, 9, 14, rot16, rot8)
    for w in 0 ..< 16: storeu(ks[8 * w].addr, add(x[w], init[w]))
    let base = 512 * chunk
    for b in 0 ..< 8:
      let off = base + 64 * b
      let lo = gather(ks[b].addr, stride, 4)
      let hi = gather(ks[64 + b].addr, stride, 4)
      storeu(dst[off].addr, xorv(loadu(src[off].addr), lo))
      storeu(dst[off + 32].addr, xorv(loadu(src[off + 32].addr), hi))
    input[12] += 8
  wipe(ks)
  wipe(x)
  wipe(init)

proc chachaXorAvx2*(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], len: int) =
  ## Whole 512-byte chunks on AVX2, the rest on the portable block function.
  let chunks = len div 512
  if chunks > 0: chachaXor8(input, src, dst, chunks)
  let done = 512 * chunks
  if done < len:
    chachaXorGeneric(input, cast[ptr UncheckedArray[byte]](src[done].addr),
                     cast[ptr UncheckedArray[byte]](dst[done].addr), len - done)
