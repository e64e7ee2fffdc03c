## The x86 integer SIMD intrinsics the crypto variants use, imported from <immintrin.h> under
## their C names (lane width in the name: `mm512_add_epi32` vs `mm512_add_epi64`). Procs that
## call them carry the target pragmas of `../targets.nim` (`{.avx2fn.}`, `{.avx512fn.}`,
## `{.shanifn.}`); nothing here runs unless `cpu.nim` selected that path.

const hdr = "<immintrin.h>"

type
  M128i* {.importc: "__m128i", header: hdr, bycopy.} = object
  M256i* {.importc: "__m256i", header: hdr, bycopy.} = object
  M512i* {.importc: "__m512i", header: hdr, bycopy.} = object

# --- 128-bit (SSE4.1 / SSSE3 / SHA-NI) ---------------------------------------------------------
proc mm_loadu_si128*(p: pointer): M128i {.importc: "_mm_loadu_si128", header: hdr.}
proc mm_storeu_si128*(p: pointer, a: M128i) {.importc: "_mm_storeu_si128", header: hdr.}
proc mm_add_epi32*(a, b: M128i): M128i {.importc: "_mm_add_epi32", header: hdr.}
proc mm_shuffle_epi8*(a, b: M128i): M128i {.importc: "_mm_shuffle_epi8", header: hdr.}
proc mm_shuffle_epi32*(a: M128i, imm: cint): M128i {.importc: "_mm_shuffle_epi32", header: hdr.}
proc mm_alignr_epi8*(a, b: M128i, imm: cint): M128i {.importc: "_mm_alignr_epi8", header: hdr.}
proc mm_blend_epi16*(a, b: M128i, imm: cint): M128i {.importc: "_mm_blend_epi16", header: hdr.}
proc mm_set_epi64x*(hi, lo: int64): M128i {.importc: "_mm_set_epi64x", header: hdr.}
proc mm_set_epi32*(e3, e2, e1, e0: int32): M128i {.importc: "_mm_set_epi32", header: hdr.}
proc mm_sha256rnds2_epu32*(cdgh, abef, wk: M128i): M128i {.importc: "_mm_sha256rnds2_epu32", header: hdr.}
proc mm_sha256msg1_epu32*(a, b: M128i): M128i {.importc: "_mm_sha256msg1_epu32", header: hdr.}
proc mm_sha256msg2_epu32*(a, b: M128i): M128i {.importc: "_mm_sha256msg2_epu32", header: hdr.}

# --- 256-bit (AVX2) ----------------------------------------------------------------------------
proc mm256_loadu_si256*(p: pointer): M256i {.importc: "_mm256_loadu_si256", header: hdr.}
proc mm256_storeu_si256*(p: pointer, a: M256i) {.importc: "_mm256_storeu_si256", header: hdr.}
proc mm256_set1_epi32*(a: int32): M256i {.importc: "_mm256_set1_epi32", header: hdr.}
proc mm256_set1_epi64x*(a: int64): M256i {.importc: "_mm256_set1_epi64x", header: hdr.}
proc mm256_setr_epi32*(a0, a1, a2, a3, a4, a5, a6, a7: int32): M256i {.
  importc: "_mm256_setr_epi32", header: hdr.}
proc mm256_setr_epi8*(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, b0, b1,
                      b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15: int8): M256i {.
  importc: "_mm256_setr_epi8", header: hdr.}
proc mm256_set_epi64x*(a3, a2, a1, a0: int64): M256i {.importc: "_mm256_set_epi64x", header: hdr.}
proc mm256_add_epi32*(a, b: M256i): M256i {.importc: "_mm256_add_epi32", header: hdr.}
proc mm256_add_epi64*(a, b: M256i): M256i {.importc: "_mm256_add_epi64", header: hdr.}
proc mm256_mul_epu32*(a, b: M256i): M256i {.importc: "_mm256_mul_epu32", header: hdr.}
proc mm256_and_si256*(a, b: M256i): M256i {.importc: "_mm256_and_si256", header: hdr.}
proc mm256_or_si256*(a, b: M256i): M256i {.importc: "_mm256_or_si256", header: hdr.}
proc mm256_xor_si256*(a, b: M256i): M256i {.importc: "_mm256_xor_si256", header: hdr.}
proc mm256_slli_epi32*(a: M256i, n: cint): M256i {.importc: "_mm256_slli_epi32", header: hdr.}
proc mm256_srli_epi32*(a: M256i, n: cint): M256i {.importc: "_mm256_srli_epi32", header: hdr.}
proc mm256_slli_epi64*(a: M256i, n: cint): M256i {.importc: "_mm256_slli_epi64", header: hdr.}
proc mm256_srli_epi64*(a: M256i, n: cint): M256i {.importc: "_mm256_srli_epi64", header: hdr.}
proc mm256_shuffle_epi8*(a, b: M256i): M256i {.importc: "_mm256_shuffle_epi8", header: hdr.}
proc mm256_unpacklo_epi64*(a, b: M256i): M256i {.importc: "_mm256_unpacklo_epi64", header: hdr.}
proc mm256_unpackhi_epi64*(a, b: M256i): M256i {.importc: "_mm256_unpackhi_epi64", header: hdr.}
proc mm256_i32gather_epi32*(base: pointer, idx: M256i, scale: cint): M256i {.
  importc: "_mm256_i32gather_epi32", header: hdr.}

# --- 512-bit (AVX-512 F/BW/DQ/VL) --------------------------------------------------------------
proc mm512_loadu_si512*(p: pointer): M512i {.importc: "_mm512_loadu_si512", header: hdr.}
proc mm512_storeu_si512*(p: pointer, a: M512i) {.importc: "_mm512_storeu_si512", header: hdr.}
proc mm512_set1_epi32*(a: int32): M512i {.importc: "_mm512_set1_epi32", header: hdr.}
proc mm512_set1_epi64*(a: int64): M512i {.importc: "_mm512_set1_epi64", header: hdr.}
proc mm512_setr_epi32*(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14,
                       a15: int32): M512i {.importc: "_mm512_setr_epi32", header: hdr.}
proc mm512_set_epi64*(a7, a6, a5, a4, a3, a2, a1, a0: int64): M512i {.
  importc: "_mm512_set_epi64", header: hdr.}
proc mm512_add_epi32*(a, b: M512i): M512i {.importc: "_mm512_add_epi32", header: hdr.}
proc mm512_add_epi64*(a, b: M512i): M512i {.importc: "_mm512_add_epi64", header: hdr.}
proc mm512_mul_epu32*(a, b: M512i): M512i {.importc: "_mm512_mul_epu32", header: hdr.}
proc mm512_and_si512*(a, b: M512i): M512i {.importc: "_mm512_and_si512", header: hdr.}
proc mm512_or_si512*(a, b: M512i): M512i {.importc: "_mm512_or_si512", header: hdr.}
proc mm512_xor_si512*(a, b: M512i): M512i {.importc: "_mm512_xor_si512", header: hdr.}
proc mm512_rol_epi32*(a: M512i, n: cint): M512i {.importc: "_mm512_rol_epi32", header: hdr.}
proc mm512_ror_epi32*(a: M512i, n: cint): M512i {.importc: "_mm512_ror_epi32", header: hdr.}
proc mm512_srli_epi32*(a: M512i, n: cint): M512i {.importc: "_mm512_srli_epi32", header: hdr.}
proc mm512_slli_epi64*(a: M512i, n: cuint): M512i {.importc: "_mm512_slli_epi64", header: hdr.}
proc mm512_srli_epi64*(a: M512i, n: cuint): M512i {.importc: "_mm512_srli_epi64", header: hdr.}
proc mm512_ternarylogic_epi32*(a, b, c: M512i, imm: cint): M512i {.
  importc: "_mm512_ternarylogic_epi32", header: hdr.}
proc mm512_shuffle_epi8*(a, b: M512i): M512i {.importc: "_mm512_shuffle_epi8", header: hdr.}
proc mm512_unpacklo_epi64*(a, b: M512i): M512i {.importc: "_mm512_unpacklo_epi64", header: hdr.}
proc mm512_unpackhi_epi64*(a, b: M512i): M512i {.importc: "_mm512_unpackhi_epi64", header: hdr.}
proc mm512_i32gather_epi32*(idx: M512i, base: pointer, scale: cint): M512i {.
  importc: "_mm512_i32gather_epi32", header: hdr.}
proc mm512_i64gather_epi32*(idx: M512i, base: pointer, scale: cint): M256i {.
  importc: "_mm512_i64gather_epi32", header: hdr.}
proc mm512_castsi256_si512*(a: M256i): M512i {.importc: "_mm512_castsi256_si512", header: hdr.}
proc mm512_inserti64x4*(a: M512i, b: M256i, imm: cint): M512i {.importc: "_mm512_inserti64x4", header: hdr.}

# --- 128-bit, 64-bit lanes (SHA-512's message schedule) ----------------------------------------
proc mm_add_epi64*(a, b: M128i): M128i {.importc: "_mm_add_epi64", header: hdr.}
proc mm_xor_si128*(a, b: M128i): M128i {.importc: "_mm_xor_si128", header: hdr.}
proc mm_or_si128*(a, b: M128i): M128i {.importc: "_mm_or_si128", header: hdr.}
proc mm_srli_epi64*(a: M128i, n: cint): M128i {.importc: "_mm_srli_epi64", header: hdr.}
proc mm_slli_epi64*(a: M128i, n: cint): M128i {.importc: "_mm_slli_epi64", header: hdr.}

# --- AES-NI, PCLMULQDQ (AES-GCM) ---------------------------------------------------------------
proc mm_setzero_si128*(): M128i {.importc: "_mm_setzero_si128", header: hdr.}
proc mm_set_epi8*(e15, e14, e13, e12, e11, e10, e9, e8, e7, e6, e5, e4, e3, e2, e1, e0: int8): M128i {.
  importc: "_mm_set_epi8", header: hdr.}
proc mm_insert_epi32*(a: M128i, v: int32, imm: cint): M128i {.importc: "_mm_insert_epi32", header: hdr.}
proc mm_slli_si128*(a: M128i, imm: cint): M128i {.importc: "_mm_slli_si128", header: hdr.}
proc mm_srli_si128*(a: M128i, imm: cint): M128i {.importc: "_mm_srli_si128", header: hdr.}
proc mm_aesenc_si128*(a, rk: M128i): M128i {.importc: "_mm_aesenc_si128", header: hdr.}
proc mm_aesenclast_si128*(a, rk: M128i): M128i {.importc: "_mm_aesenclast_si128", header: hdr.}
proc mm_aeskeygenassist_si128*(a: M128i, imm: cint): M128i {.
  importc: "_mm_aeskeygenassist_si128", header: hdr.}
proc mm_clmulepi64_si128*(a, b: M128i, imm: cint): M128i {.importc: "_mm_clmulepi64_si128", header: hdr.}

# --- VAES, VPCLMULQDQ on zmm (AES-GCM, 4 blocks per register) ---------------------------------
proc mm512_unpacklo_epi32*(a, b: M512i): M512i {.importc: "_mm512_unpacklo_epi32", header: hdr.}
proc mm512_unpackhi_epi32*(a, b: M512i): M512i {.importc: "_mm512_unpackhi_epi32", header: hdr.}
proc mm512_shuffle_i32x4*(a, b: M512i, imm: cint): M512i {.importc: "_mm512_shuffle_i32x4", header: hdr.}
proc mm512_shuffle_epi32*(a: M512i, imm: cint): M512i {.importc: "_mm512_shuffle_epi32", header: hdr.}
proc mm512_setzero_si512*(): M512i {.importc: "_mm512_setzero_si512", header: hdr.}
proc mm512_broadcast_i32x4*(a: M128i): M512i {.importc: "_mm512_broadcast_i32x4", header: hdr.}
proc mm512_inserti32x4*(a: M512i, b: M128i, imm: cint): M512i {.importc: "_mm512_inserti32x4", header: hdr.}
proc mm512_extracti32x4_epi32*(a: M512i, imm: cint): M128i {.
  importc: "_mm512_extracti32x4_epi32", header: hdr.}
proc mm512_aesenc_epi128*(a, rk: M512i): M512i {.importc: "_mm512_aesenc_epi128", header: hdr.}
proc mm512_aesenclast_epi128*(a, rk: M512i): M512i {.importc: "_mm512_aesenclast_epi128", header: hdr.}
proc mm512_clmulepi64_epi128*(a, b: M512i, imm: cint): M512i {.
  importc: "_mm512_clmulepi64_epi128", header: hdr.}
proc mm512_maskz_loadu_epi8*(k: uint64, p: pointer): M512i {.importc: "_mm512_maskz_loadu_epi8", header: hdr.}
proc mm512_mask_storeu_epi8*(p: pointer, k: uint64, a: M512i) {.
  importc: "_mm512_mask_storeu_epi8", header: hdr.}
proc mm512_maskz_mov_epi8*(k: uint64, a: M512i): M512i {.importc: "_mm512_maskz_mov_epi8", header: hdr.}
proc mm512_ternarylogic_epi64*(a, b, c: M512i, imm: cint): M512i {.
  importc: "_mm512_ternarylogic_epi64", header: hdr.}

# --- 256-bit, 64-bit lanes (SHA-512's two-block message schedule) -------------------------------
proc mm256_alignr_epi8*(a, b: M256i, imm: cint): M256i {.importc: "_mm256_alignr_epi8", header: hdr.}
proc mm256_castsi128_si256*(a: M128i): M256i {.importc: "_mm256_castsi128_si256", header: hdr.}
proc mm256_inserti128_si256*(a: M256i, b: M128i, imm: cint): M256i {.
  importc: "_mm256_inserti128_si256", header: hdr.}
proc mm256_ror_epi64*(a: M256i, n: cint): M256i {.importc: "_mm256_ror_epi64", header: hdr.}  ## AVX-512VL
proc mm256_ternarylogic_epi64*(a, b, c: M256i, imm: cint): M256i {.
  importc: "_mm256_ternarylogic_epi64", header: hdr.}  ## AVX-512VL
