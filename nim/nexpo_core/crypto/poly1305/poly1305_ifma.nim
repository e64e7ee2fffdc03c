## Poly1305 on AVX-512 IFMA: sixteen blocks per step, 44/44/42-bit limbs, `vpmadd52luq/huq`.
##
## The radix-2^44 representation of `poly1305.nim`'s scalar code (OpenSSL's "base2_44" idea):
## a 52-bit multiply-accumulate gives the low and the high 52 bits of a 44×50-bit product, so
## h·r takes 9 products × 2 halves on 3 limbs where the 26-bit paths take 25 products on 5 —
## and h, r and r's powers stay in the scalar code's limbs (no conversion either way).
##
## Two independent 8-lane chains (A, B) hide the multiply latency: A absorbs blocks 0..7 and B
## blocks 8..15 of every 16, both multiplying by r^16; the last step multiplies each lane by
## the power its block still owes, and all 16 lanes are summed. Unpacking two 64-byte loads by
## 64-bit halves puts a chain's eight blocks in lane order 0, 4, 1, 5, 2, 6, 3, 7:
##
## ::
##
##   lane:       0     1     2     3     4     5     6     7
##   block:      0     4     1     5     2     6     3     7
##   B owes:    r^8   r^4   r^7   r^3   r^6   r^2   r^5   r^1
##   A owes:    r^16  r^12  r^15  r^11  r^14  r^10  r^13  r^9
##
## An odd number of 8-block groups starts with chain B alone (A's first group is "zero blocks",
## which add nothing): h enters the lane of the message's first block either way.
##
## Limb bounds: h limbs < 2^45 after each step's carry, message limbs <= 2^44, r's powers
## < 2^45 (loose), s = 20·r < 2^50: every multiplier input is under 52 bits, the three low
## halves of a column sum below 2^54 and the high halves below 2^45 (then shifted by 8 or 10).
##
## Properties:
## - `ifmafn` procs: only called when `cpu.useIfma()` (AVX-512 active and IFMA present)
## - multiplies, adds, shifts and masks only: constant time

import ../../targets
import ../simd

type
  Limbs44* = array[3, uint64]
  Powers44* = array[16, Limbs44]   ## r^1 .. r^16

proc mm512_madd52lo_epu64(a, b, c: M512i): M512i {.importc: "_mm512_madd52lo_epu64", header: "<immintrin.h>".}
proc mm512_madd52hi_epu64(a, b, c: M512i): M512i {.importc: "_mm512_madd52hi_epu64", header: "<immintrin.h>".}
proc mm512_reduce_add_epi64(a: M512i): int64 {.importc: "_mm512_reduce_add_epi64", header: "<immintrin.h>".}

template splitGroup(m: var array[3, M512i], p: pointer, mask44, hibit: M512i) =
  ## Eight blocks at `p` → three 44/44/42-bit limb vectors (lane order 0, 4, 1, 5, 2, 6, 3, 7).
  let a = mm512_loadu_si512(p)
  let b = mm512_loadu_si512(cast[pointer](cast[uint](p) + 64))
  let t0 = mm512_unpacklo_epi64(a, b)
  let t1 = mm512_unpackhi_epi64(a, b)
  m[0] = mm512_and_si512(t0, mask44)
  m[1] = mm512_and_si512(mm512_or_si512(mm512_srli_epi64(t0, 44), mm512_slli_epi64(t1, 20)), mask44)
  m[2] = mm512_or_si512(mm512_srli_epi64(t1, 24), hibit)

template mulReduce(h: var array[3, M512i], r, s: array[3, M512i], mask44, mask42: M512i) =
  ## h = h·r mod 2^130 - 5, partially reduced (limbs back under 2^44 + a little).
  let z = mm512_setzero_si512()
  var d0lo = mm512_madd52lo_epu64(z, h[0], r[0])
  var d0hi = mm512_madd52hi_epu64(z, h[0], r[0])
  var d1lo = mm512_madd52lo_epu64(z, h[0], r[1])
  var d1hi = mm512_madd52hi_epu64(z, h[0], r[1])
  var d2lo = mm512_madd52lo_epu64(z, h[0], r[2])
  var d2hi = mm512_madd52hi_epu64(z, h[0], r[2])
  d0lo = mm512_madd52lo_epu64(d0lo, h[1], s[2]); d0hi = mm512_madd52hi_epu64(d0hi, h[1], s[2])
  d1lo = mm512_madd52lo_epu64(d1lo, h[1], r[0]); d1hi = mm512_madd52hi_epu64(d1hi, h[1], r[0])
  d2lo = mm512_madd52lo_epu64(d2lo, h[1], r[1]); d2hi = mm512_madd52hi_epu64(d2hi, h[1], r[1])
  d0lo = mm512_madd52lo_epu64(d0lo, h[2], s[1]); d0hi = mm512_madd52hi_epu64(d0hi, h[2], s[1])
  d1lo = mm512_madd52lo_epu64(d1lo, h[2], s[2]); d1hi = mm512_madd52hi_epu64(d1hi, h[2], s[2])
  d2lo = mm512_madd52lo_epu64(d2lo, h[2], r[0]); d2hi = mm512_madd52hi_epu64(d2hi, h[2], r[0])
  # A high half sits 52 bits above its column: 8 bits above the next 44-bit limb (10 above
  # 2^130 for the top column, which folds back to limb 0 times 5).
  d0hi = mm512_add_epi64(mm512_slli_epi64(d0hi, 8), mm512_srli_epi64(d0lo, 44))
  h[0] = mm512_and_si512(d0lo, mask44)
  d1lo = mm512_add_epi64(d1lo, d0hi)
  d1hi = mm512_add_epi64(mm512_slli_epi64(d1hi, 8), mm512_srli_epi64(d1lo, 44))
  h[1] = mm512_and_si512(d1lo, mask44)
  d2lo = mm512_add_epi64(d2lo, d1hi)
  d2hi = mm512_add_epi64(mm512_slli_epi64(d2hi, 10), mm512_srli_epi64(d2lo, 42))
  h[2] = mm512_and_si512(d2lo, mask42)
  h[0] = mm512_add_epi64(h[0], mm512_add_epi64(d2hi, mm512_slli_epi64(d2hi, 2)))
  h[1] = mm512_add_epi64(h[1], mm512_srli_epi64(h[0], 44))
  h[0] = mm512_and_si512(h[0], mask44)

proc polyGroupsIfma*(h: var Limbs44, powers: Powers44, msg: ptr UncheckedArray[byte],
                     groups: int) {.ifmafn.} =
  ## Absorb 8·groups full blocks (groups >= 1) into h (loose 44-bit limbs, in and out).
  let mask44 = mm512_set1_epi64((1'i64 shl 44) - 1)
  let mask42 = mm512_set1_epi64((1'i64 shl 42) - 1)
  let hibit = mm512_set1_epi64(1'i64 shl 40)
  template p(k, i: int): int64 = int64(powers[k - 1][i])
  var r16, s16, ra, sa, rb, sb: array[3, M512i]
  for i in 0 ..< 3:
    r16[i] = mm512_set1_epi64(p(16, i))
    s16[i] = mm512_set1_epi64(20 * p(16, i))
    # lanes 7..0 (mm512_set_epi64's order) of each chain's last step
    ra[i] = mm512_set_epi64(p(9, i), p(13, i), p(10, i), p(14, i), p(11, i), p(15, i), p(12, i), p(16, i))
    rb[i] = mm512_set_epi64(p(1, i), p(5, i), p(2, i), p(6, i), p(3, i), p(7, i), p(4, i), p(8, i))
    sa[i] = mm512_set_epi64(20 * p(9, i), 20 * p(13, i), 20 * p(10, i), 20 * p(14, i), 20 * p(11, i),
                            20 * p(15, i), 20 * p(12, i), 20 * p(16, i))
    sb[i] = mm512_set_epi64(20 * p(1, i), 20 * p(5, i), 20 * p(2, i), 20 * p(6, i), 20 * p(3, i),
                            20 * p(7, i), 20 * p(4, i), 20 * p(8, i))
  var accA, accB, m: array[3, M512i]
  let odd = (groups and 1) == 1
  let first = mm512_setzero_si512()
  for i in 0 ..< 3:
    let hv = mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, int64(h[i]))
    accA[i] = if odd: first else: hv
    accB[i] = if odd: hv else: first
  # `base` is where chain A's group of the current step starts (one group before the message
  # when `odd`: that step skips A, whose accumulator is zero).
  var base = if odd: -128 else: 0
  let steps = (groups + 1) div 2
  for step in 0 ..< steps:
    let last = step == steps - 1
    if base >= 0:
      splitGroup(m, msg[base].addr, mask44, hibit)
      for i in 0 ..< 3: accA[i] = mm512_add_epi64(accA[i], m[i])
      if last: mulReduce(accA, ra, sa, mask44, mask42)
      else: mulReduce(accA, r16, s16, mask44, mask42)
    splitGroup(m, msg[base + 128].addr, mask44, hibit)
    for i in 0 ..< 3: accB[i] = mm512_add_epi64(accB[i], m[i])
    if last: mulReduce(accB, rb, sb, mask44, mask42)
    else: mulReduce(accB, r16, s16, mask44, mask42)
    base += 256
  # 16 lanes of < 2^45 each: sums < 2^49, then one carry pass back to loose 44-bit limbs.
  var h0 = uint64(mm512_reduce_add_epi64(mm512_add_epi64(accA[0], accB[0])))
  var h1 = uint64(mm512_reduce_add_epi64(mm512_add_epi64(accA[1], accB[1])))
  var h2 = uint64(mm512_reduce_add_epi64(mm512_add_epi64(accA[2], accB[2])))
  h1 += h0 shr 44; h0 = h0 and ((1'u64 shl 44) - 1)
  h2 += h1 shr 44; h1 = h1 and ((1'u64 shl 44) - 1)
  h0 += 5 * (h2 shr 42); h2 = h2 and ((1'u64 shl 42) - 1)
  h1 += h0 shr 44; h0 = h0 and ((1'u64 shl 44) - 1)
  h = [h0, h1, h2]
  # The accumulators and powers live in registers (wiping them would pin them to the stack).
