## Poly1305 on AVX-512: eight blocks per step in eight 64-bit lanes, 26-bit limbs.
##
## The 8-way version of `poly1305_avx2.nim`: lane j absorbs every eighth block and multiplies
## by r^8; the last group multiplies each lane by the power of r its block still owes, and the
## lanes are summed. Unpacking two 64-byte loads by 64-bit halves (per 128-bit lane) puts the
## blocks of a group in lane order 0, 4, 1, 5, 2, 6, 3, 7:
##
## ::
##
##   lane:    0    1    2    3    4    5    6    7
##   block:   0    4    1    5    2    6    3    7
##   owes:   r^8  r^4  r^7  r^3  r^6  r^2  r^5  r^1
##
## Properties:
## - same limb bounds as the AVX2 path (inputs < 2^28, products < 2^60): no overflow
## - `avx512fn` procs: only called when `cpu.activeIsa() == isaAvx512`; constant time

import ../../targets
import ../simd
import ../ct, ./poly1305_limbs
import ./poly1305_avx2 # Limbs26

# The vocabulary of poly1305_limbs' width-generic templates, for 8 × 64-bit lanes here.
template add(a, b: M512i): M512i = mm512_add_epi64(a, b)
template mul(a, b: M512i): M512i = mm512_mul_epu32(a, b)
template andv(a, b: M512i): M512i = mm512_and_si512(a, b)
template srli(a: M512i, n: static int): M512i = mm512_srli_epi64(a, n)
template slli(a: M512i, n: static int): M512i = mm512_slli_epi64(a, n)

type Powers8* = array[8, Limbs26]   ## r^1 .. r^8

proc polyGroupsAvx512*(h: var Limbs26, powers: Powers8, msg: ptr UncheckedArray[byte],
                       groups: int) {.avx512fn.} =
  ## Absorb 8·groups full blocks (groups >= 1) into h (26-bit limbs, in and out).
  let mask = mm512_set1_epi64((1'i64 shl 26) - 1)
  let hibit = mm512_set1_epi64(1'i64 shl 24)
  var r8, s8, rl, sl: array[5, M512i]
  template p(k, i: int): int64 = int64(powers[k - 1][i])
  for i in 0 ..< 5:
    r8[i] = mm512_set1_epi64(p(8, i))
    s8[i] = mm512_set1_epi64(5 * p(8, i))
    # lanes 7..0 owe r^1, r^5, r^2, r^6, r^3, r^7, r^4, r^8
    rl[i] = mm512_set_epi64(p(1, i), p(5, i), p(2, i), p(6, i), p(3, i), p(7, i), p(4, i), p(8, i))
    sl[i] = mm512_set_epi64(5 * p(1, i), 5 * p(5, i), 5 * p(2, i), 5 * p(6, i), 5 * p(3, i), 5 * p(7, i),
                 5 * p(4, i), 5 * p(8, i))
  var acc, m, d: array[5, M512i]
  for i in 0 ..< 5: acc[i] = mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, int64(h[i]))
  for g in 0 ..< groups:
    let a = mm512_loadu_si512(msg[128 * g].addr)
    let b = mm512_loadu_si512(msg[128 * g + 64].addr)
    let t0 = mm512_unpacklo_epi64(a, b)
    let t1 = mm512_unpackhi_epi64(a, b)
    m[0] = mm512_and_si512(t0, mask)
    m[1] = mm512_and_si512(mm512_srli_epi64(t0, 26), mask)
    m[2] = mm512_and_si512(mm512_or_si512(mm512_srli_epi64(t0, 52), mm512_slli_epi64(t1, 12)), mask)
    m[3] = mm512_and_si512(mm512_srli_epi64(t1, 14), mask)
    m[4] = mm512_or_si512(mm512_srli_epi64(t1, 40), hibit)
    for i in 0 ..< 5: acc[i] = mm512_add_epi64(acc[i], m[i])
    if g < groups - 1:
      mulAdd(d, acc, r8, s8)
    else:
      mulAdd(d, acc, rl, sl)
    carry(acc, d, mask)
  var lanes: array[8, uint64]
  for i in 0 ..< 5:
    mm512_storeu_si512(lanes[0].addr, acc[i])
    h[i] = lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7]
  wipe(lanes)  # r's powers and the accumulators stay in registers: wiping them would pin them to the stack
