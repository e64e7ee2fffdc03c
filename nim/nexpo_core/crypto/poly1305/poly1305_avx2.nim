## Poly1305 on AVX2: four blocks per step in four 64-bit lanes, 26-bit limbs, `vpmuludq`.
##
## Four interleaved Horner chains (Goll & Gueron, "Vectorization of Poly1305", 2015): lane j
## absorbs every fourth block and multiplies by r^4; the last group multiplies each lane by
## the power of r that block still owes (r^4, r^3, r^2, r), and the lanes are summed:
##
## ::
##
##   h = Σ_j H_j · r^(4-j)      H_j = H_j · r^4 + m_(4k+j)
##
## Loading two 32-byte vectors and unpacking 64-bit halves puts blocks 0,2,1,3 of a group in
## lanes 0..3; the final powers follow that order.
##
## Properties:
## - limbs stay below 2^28 (inputs) and products below 2^60 in 64-bit lanes: no overflow
## - the caller converts h to/from 26-bit limbs and supplies r, r^2, r^3, r^4 (26-bit limbs)
## - `avx2fn` procs: only called when `cpu.activeIsa() >= isaAvx2`; constant time

import ../../targets
import ../simd
import ../ct, ./poly1305_limbs

# The vocabulary of poly1305_limbs' width-generic templates, for 4 × 64-bit lanes here.
template add(a, b: M256i): M256i = mm256_add_epi64(a, b)
template mul(a, b: M256i): M256i = mm256_mul_epu32(a, b)
template andv(a, b: M256i): M256i = mm256_and_si256(a, b)
template srli(a: M256i, n: static int): M256i = mm256_srli_epi64(a, n)
template slli(a: M256i, n: static int): M256i = mm256_slli_epi64(a, n)

type
  Limbs26* = array[5, uint64]
  Powers26* = array[4, Limbs26]   ## r^1, r^2, r^3, r^4

template loadGroup(m: var array[5, M256i], p: pointer, mask, hibit: M256i) =
  let a = mm256_loadu_si256(p)
  let b = mm256_loadu_si256(cast[pointer](cast[uint](p) + 32))
  let t0 = mm256_unpacklo_epi64(a, b)   # low 64 bits of blocks 0, 2, 1, 3
  let t1 = mm256_unpackhi_epi64(a, b)   # high 64 bits
  m[0] = mm256_and_si256(t0, mask)
  m[1] = mm256_and_si256(mm256_srli_epi64(t0, 26), mask)
  m[2] = mm256_and_si256(mm256_or_si256(mm256_srli_epi64(t0, 52), mm256_slli_epi64(t1, 12)), mask)
  m[3] = mm256_and_si256(mm256_srli_epi64(t1, 14), mask)
  m[4] = mm256_or_si256(mm256_srli_epi64(t1, 40), hibit)

proc polyGroupsAvx2*(h: var Limbs26, powers: Powers26, msg: ptr UncheckedArray[byte],
                     groups: int) {.avx2fn.} =
  ## Absorb 4·groups full blocks (groups >= 1) into h (26-bit limbs, in and out).
  let mask = mm256_set1_epi64x((1'i64 shl 26) - 1)
  let hibit = mm256_set1_epi64x(1'i64 shl 24)
  var r4, s4, rl, sl: array[5, M256i]
  for i in 0 ..< 5:
    r4[i] = mm256_set1_epi64x(int64(powers[3][i]))
    s4[i] = mm256_set1_epi64x(int64(5 * powers[3][i]))
    # lanes hold blocks 0, 2, 1, 3 of the last group: they owe r^4, r^2, r^3, r^1
    rl[i] = mm256_set_epi64x(int64(powers[0][i]), int64(powers[2][i]), int64(powers[1][i]), int64(powers[3][i]))
    sl[i] = mm256_set_epi64x(int64(5 * powers[0][i]), int64(5 * powers[2][i]), int64(5 * powers[1][i]),
                 int64(5 * powers[3][i]))
  var acc, m, d: array[5, M256i]
  for i in 0 ..< 5: acc[i] = mm256_set_epi64x(0, 0, 0, int64(h[i]))
  for g in 0 ..< groups:
    loadGroup(m, msg[64 * g].addr, mask, hibit)
    for i in 0 ..< 5: acc[i] = mm256_add_epi64(acc[i], m[i])
    if g < groups - 1:
      mulAdd(d, acc, r4, s4)
    else:
      mulAdd(d, acc, rl, sl)
    carry(acc, d, mask)
  var lanes: array[4, uint64]
  for i in 0 ..< 5:
    mm256_storeu_si256(lanes[0].addr, acc[i])
    h[i] = lanes[0] + lanes[1] + lanes[2] + lanes[3]
  wipe(lanes)  # r's powers and the accumulators stay in registers: wiping them would pin them to the stack
