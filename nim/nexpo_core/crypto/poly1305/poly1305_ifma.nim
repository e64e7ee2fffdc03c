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
  IfmaLanes* = array[2, array[3, array[8, uint64]]]
    ## the powers each chain's lanes owe at the last step, [chain A, chain B][limb][lane]:
    ## A = r^16, r^12, r^15, r^11, r^14, r^10, r^13, r^9; B = r^8, r^4, r^7, r^3, r^6, r^2, r^5, r^1

proc mm512_madd52lo_epu64(a, b, c: M512i): M512i {.importc: "_mm512_madd52lo_epu64", header: "<immintrin.h>".}
proc mm512_madd52hi_epu64(a, b, c: M512i): M512i {.importc: "_mm512_madd52hi_epu64", header: "<immintrin.h>".}
proc mm512_reduce_add_epi64(a: M512i): int64 {.importc: "_mm512_reduce_add_epi64", header: "<immintrin.h>".}

template absorb(h0, h1, h2: var M512i, p: pointer, mask44, hibit: M512i) =
  ## h += eight blocks at `p`, as 44/44/42-bit limb vectors (lane order 0, 4, 1, 5, 2, 6, 3, 7).
  let a = mm512_loadu_si512(p)
  let b = mm512_loadu_si512(cast[pointer](cast[uint](p) + 64))
  let t0 = mm512_unpacklo_epi64(a, b)
  let t1 = mm512_unpackhi_epi64(a, b)
  h0 = mm512_add_epi64(h0, mm512_and_si512(t0, mask44))
  h1 = mm512_add_epi64(h1, mm512_and_si512(mm512_or_si512(mm512_srli_epi64(t0, 44), mm512_slli_epi64(t1, 20)), mask44))
  h2 = mm512_add_epi64(h2, mm512_or_si512(mm512_srli_epi64(t1, 24), hibit))

template mulReduce(h0, h1, h2: var M512i, r0, r1, r2, s1, s2, mask44, mask42: M512i) =
  ## h = h·r mod 2^130 - 5, partially reduced (limbs back under 2^44 + a little). The accumulators
  ## are separate variables, not arrays: GCC kept an array of them on the stack.
  let z = mm512_setzero_si512()
  var d0lo = mm512_madd52lo_epu64(z, h0, r0)
  var d0hi = mm512_madd52hi_epu64(z, h0, r0)
  var d1lo = mm512_madd52lo_epu64(z, h0, r1)
  var d1hi = mm512_madd52hi_epu64(z, h0, r1)
  var d2lo = mm512_madd52lo_epu64(z, h0, r2)
  var d2hi = mm512_madd52hi_epu64(z, h0, r2)
  d0lo = mm512_madd52lo_epu64(d0lo, h1, s2); d0hi = mm512_madd52hi_epu64(d0hi, h1, s2)
  d1lo = mm512_madd52lo_epu64(d1lo, h1, r0); d1hi = mm512_madd52hi_epu64(d1hi, h1, r0)
  d2lo = mm512_madd52lo_epu64(d2lo, h1, r1); d2hi = mm512_madd52hi_epu64(d2hi, h1, r1)
  d0lo = mm512_madd52lo_epu64(d0lo, h2, s1); d0hi = mm512_madd52hi_epu64(d0hi, h2, s1)
  d1lo = mm512_madd52lo_epu64(d1lo, h2, s2); d1hi = mm512_madd52hi_epu64(d1hi, h2, s2)
  d2lo = mm512_madd52lo_epu64(d2lo, h2, r0); d2hi = mm512_madd52hi_epu64(d2hi, h2, r0)
  # A high half sits 52 bits above its column: 8 bits above the next 44-bit limb (10 above
  # 2^130 for the top column, which folds back to limb 0 times 5).
  d0hi = mm512_add_epi64(mm512_slli_epi64(d0hi, 8), mm512_srli_epi64(d0lo, 44))
  h0 = mm512_and_si512(d0lo, mask44)
  d1lo = mm512_add_epi64(d1lo, d0hi)
  d1hi = mm512_add_epi64(mm512_slli_epi64(d1hi, 8), mm512_srli_epi64(d1lo, 44))
  h1 = mm512_and_si512(d1lo, mask44)
  d2lo = mm512_add_epi64(d2lo, d1hi)
  d2hi = mm512_add_epi64(mm512_slli_epi64(d2hi, 10), mm512_srli_epi64(d2lo, 42))
  h2 = mm512_and_si512(d2lo, mask42)
  h0 = mm512_add_epi64(h0, mm512_add_epi64(d2hi, mm512_slli_epi64(d2hi, 2)))
  h1 = mm512_add_epi64(h1, mm512_srli_epi64(h0, 44))
  h0 = mm512_and_si512(h0, mask44)

template times20(v: M512i): M512i = mm512_add_epi64(mm512_slli_epi64(v, 4), mm512_slli_epi64(v, 2))

proc ifmaLanesOf*(r1, r2, r3, r4, r8: Limbs44, lanes: var IfmaLanes) {.ifmafn.} =
  ## r^1 .. r^16 in lane order from the scalar r, r^2, r^3, r^4, r^8, with two vector
  ## multiplications: chain B = [r^4, r^4, r^3, r^3, r^2, r^2, r, r] · [r^4, 1, r^4, 1, ...],
  ## chain A = B · r^8. (Fifteen scalar products cost as much as absorbing a kilobyte.)
  let mask44 = mm512_set1_epi64((1'i64 shl 44) - 1)
  let mask42 = mm512_set1_epi64((1'i64 shl 42) - 1)
  template pairs(i: int): M512i =
    mm512_set_epi64(int64(r1[i]), int64(r1[i]), int64(r2[i]), int64(r2[i]),
                    int64(r3[i]), int64(r3[i]), int64(r4[i]), int64(r4[i]))
  template r4or1(i: int, one: int64): M512i =
    mm512_set_epi64(one, int64(r4[i]), one, int64(r4[i]), one, int64(r4[i]), one, int64(r4[i]))
  var b0 = pairs(0)
  var b1 = pairs(1)
  var b2 = pairs(2)
  let y0 = r4or1(0, 1)
  let y1 = r4or1(1, 0)
  let y2 = r4or1(2, 0)
  mulReduce(b0, b1, b2, y0, y1, y2, times20(y1), times20(y2), mask44, mask42)
  var a0 = b0
  var a1 = b1
  var a2 = b2
  let e0 = mm512_set1_epi64(int64(r8[0]))
  let e1 = mm512_set1_epi64(int64(r8[1]))
  let e2 = mm512_set1_epi64(int64(r8[2]))
  mulReduce(a0, a1, a2, e0, e1, e2, times20(e1), times20(e2), mask44, mask42)
  mm512_storeu_si512(lanes[0][0][0].addr, a0)
  mm512_storeu_si512(lanes[0][1][0].addr, a1)
  mm512_storeu_si512(lanes[0][2][0].addr, a2)
  mm512_storeu_si512(lanes[1][0][0].addr, b0)
  mm512_storeu_si512(lanes[1][1][0].addr, b1)
  mm512_storeu_si512(lanes[1][2][0].addr, b2)

proc polyGroupsIfma*(h: var Limbs44, lanes: IfmaLanes, msg: ptr UncheckedArray[byte],
                     groups: int) {.ifmafn.} =
  ## Absorb 8·groups full blocks (groups >= 1) into h (loose 44-bit limbs, in and out).
  let mask44 = mm512_set1_epi64((1'i64 shl 44) - 1)
  let mask42 = mm512_set1_epi64((1'i64 shl 42) - 1)
  let hibit = mm512_set1_epi64(1'i64 shl 40)
  # lane 0 of chain A owes r^16
  let r0 = mm512_set1_epi64(int64(lanes[0][0][0]))
  let r1 = mm512_set1_epi64(int64(lanes[0][1][0]))
  let r2 = mm512_set1_epi64(int64(lanes[0][2][0]))
  let s1 = times20(r1)
  let s2 = times20(r2)
  let z = mm512_setzero_si512()
  var (a0, a1, a2) = (z, z, z)
  var (b0, b1, b2) = (z, z, z)
  let h0 = mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, int64(h[0]))
  let h1 = mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, int64(h[1]))
  let h2 = mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, int64(h[2]))
  var base = 0
  let pairs = groups div 2
  if (groups and 1) == 1:
    # chain A's first group would lie before the message: B starts alone, with h
    (b0, b1, b2) = (h0, h1, h2)
    absorb(b0, b1, b2, msg[0].addr, mask44, hibit)
    if pairs > 0: mulReduce(b0, b1, b2, r0, r1, r2, s1, s2, mask44, mask42)
    base = 128
  else:
    (a0, a1, a2) = (h0, h1, h2)
  # every pair but the last multiplies by r^16 ...
  for _ in 1 ..< pairs:
    absorb(a0, a1, a2, msg[base].addr, mask44, hibit)
    absorb(b0, b1, b2, msg[base + 128].addr, mask44, hibit)
    mulReduce(a0, a1, a2, r0, r1, r2, s1, s2, mask44, mask42)
    mulReduce(b0, b1, b2, r0, r1, r2, s1, s2, mask44, mask42)
    base += 256
  # ... and the last one by the powers each lane owes
  template lastStep(x0, x1, x2: var M512i, chain: int) =
    let q0 = mm512_loadu_si512(lanes[chain][0][0].unsafeAddr)
    let q1 = mm512_loadu_si512(lanes[chain][1][0].unsafeAddr)
    let q2 = mm512_loadu_si512(lanes[chain][2][0].unsafeAddr)
    mulReduce(x0, x1, x2, q0, q1, q2, times20(q1), times20(q2), mask44, mask42)
  if pairs > 0:
    absorb(a0, a1, a2, msg[base].addr, mask44, hibit)
    absorb(b0, b1, b2, msg[base + 128].addr, mask44, hibit)
    lastStep(a0, a1, a2, 0)
  lastStep(b0, b1, b2, 1)
  # 16 lanes of < 2^45 each: sums < 2^49, then one carry pass back to loose 44-bit limbs.
  var t0 = uint64(mm512_reduce_add_epi64(mm512_add_epi64(a0, b0)))
  var t1 = uint64(mm512_reduce_add_epi64(mm512_add_epi64(a1, b1)))
  var t2 = uint64(mm512_reduce_add_epi64(mm512_add_epi64(a2, b2)))
  t1 += t0 shr 44; t0 = t0 and ((1'u64 shl 44) - 1)
  t2 += t1 shr 44; t1 = t1 and ((1'u64 shl 44) - 1)
  t0 += 5 * (t2 shr 42); t2 = t2 and ((1'u64 shl 42) - 1)
  t1 += t0 shr 44; t0 = t0 and ((1'u64 shl 44) - 1)
  h = [t0, t1, t2]
  # The accumulators and powers live in registers (wiping them would pin them to the stack).
