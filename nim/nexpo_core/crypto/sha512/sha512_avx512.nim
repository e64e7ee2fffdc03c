## SHA-512 on the AVX-512 path: scalar rounds (BMI2 `rorx`, `andn`) fed by a message schedule
## of TWO blocks at once in ymm registers (block i in the low 128-bit lane, block i+1 in the
## high one), computed one pair ahead with AVX-512VL's `vprorq` and `vpternlogq`.
##
## The rounds are bound by the 4 integer ALUs (~22 operations a round); the schedule runs on the
## vector pipes and only competes for dispatch slots. Two blocks per ymm halves its instruction
## count per block, and `vprorq` + one three-way xor make σ0/σ1 4 instructions instead of 9 with
## shifts: about 3 vector instructions a round instead of ~10 on the SSE path.
## x[k mod 8] holds (W[2k], W[2k+1]) of both blocks; `vpalignr` works within each 128-bit lane,
## so the straddling pairs (W[t-15], W[t-14]) and (W[t-7], W[t-6]) come out per block.
## The frame interleaves the blocks as the registers do: W+K of step k is 4 words at 4k,
## block i's two then block i+1's.
##
## ::
##
##   rounds of pair p:        | block 2p: 10 groups of 8 | block 2p+1: 10 groups of 8 |
##   schedule of pair p+1:    | loads 0-7, steps 8-19    | steps 20-39               |
##
## The rounds compute Ch(e,f,g) as (e and f) + (not e and g) (disjoint bits: + is xor, and the
## two halves add into h independently) and Maj(a,b,c) as ((a xor b) and (b xor c)) xor b,
## where b xor c is the previous round's a xor b: 3 operations, one of them shared.
##
## Properties:
## - `compressAvx512` carries target(avx512 + bmi2): only called when `cpu.activeIsa() >=
##   isaAvx512` (which requires BMI2)
## - add/xor/and/rotate only: constant time; the W+K frames and registers are wiped on return
## - an odd last block is scheduled in both lanes (the high lane's copy is never used)

import ../../config
import ./sha512_generic

when x86SimdEnabled:
  import ../simd, ../ct, ../../targets

  {.push raises: [], boundChecks: off, overflowChecks: off, rangeChecks: off.}

  const kPairsInit = block:
    var r: array[160, uint64]
    for k in 0 ..< 40:
      r[4 * k] = k512[2 * k]
      r[4 * k + 1] = k512[2 * k + 1]
      r[4 * k + 2] = k512[2 * k]
      r[4 * k + 3] = k512[2 * k + 1]
    r
  var kPairs {.align: 32.}: array[160, uint64] = kPairsInit  ## K of step k, for both lanes

  template rotr(x: uint64, n: static int): uint64 = (x shr n) or (x shl (64 - n))
  template xor3(a, b, c: M256i): M256i = mm256_ternarylogic_epi64(a, b, c, 0x96)
  template sigma0y(v: M256i): M256i =
    xor3(mm256_ror_epi64(v, 1), mm256_ror_epi64(v, 8), mm256_srli_epi64(v, 7))
  template sigma1y(v: M256i): M256i =
    xor3(mm256_ror_epi64(v, 19), mm256_ror_epi64(v, 61), mm256_srli_epi64(v, 6))

  template loadStep(k: static int) {.dirty.} =
    ## x[k] = W[2k], W[2k+1] of the next pair (k < 8), byte-swapped; W+K stored.
    block:
      let pair = mm256_inserti128_si256(mm256_castsi128_si256(mm_loadu_si128(nextLo[16 * k].addr)),
                                        mm_loadu_si128(nextHi[16 * k].addr), 1)
      x[k] = mm256_shuffle_epi8(pair, bswapMask)
      mm256_storeu_si256(nextWk[4 * k].addr, mm256_add_epi64(x[k], mm256_loadu_si256(kPairs[4 * k].addr)))

  template schedStep(k: static int) {.dirty.} =
    ## x[k mod 8] = W[2k], W[2k+1] (8 <= k < 40) of both blocks; W+K stored.
    block:
      let w15 = mm256_alignr_epi8(x[(k - 7) and 7], x[(k - 8) and 7], 8)
      let w7 = mm256_alignr_epi8(x[(k - 3) and 7], x[(k - 4) and 7], 8)
      let s = mm256_add_epi64(mm256_add_epi64(x[(k - 8) and 7], sigma0y(w15)),
                              mm256_add_epi64(w7, sigma1y(x[(k - 1) and 7])))
      x[k and 7] = s
      mm256_storeu_si256(nextWk[4 * k].addr, mm256_add_epi64(s, mm256_loadu_si256(kPairs[4 * k].addr)))

  template step(k: static int) {.dirty.} =
    when k < 8: loadStep(k)
    else: schedStep(k)

  template round(a, b, c, d, e, f, g, h, abPrev, abNew: untyped, t, lane: static int) {.dirty.} =
    ## d and h take the new values; abPrev is b xor c, abNew becomes a xor b.
    h += wk[4 * (t shr 1) + 2 * lane + (t and 1)]
    h += (e and f) + ((not e) and g)
    h += rotr(e, 14) xor rotr(e, 18) xor rotr(e, 41)
    d += h
    abNew = a xor b
    h += (rotr(a, 28) xor rotr(a, 34) xor rotr(a, 39)) + ((abNew and abPrev) xor b)

  template group(gi, lane: static int) {.dirty.} =
    ## Rounds 8·gi .. 8·gi+7 of this block, then two schedule steps of the next pair.
    round(a, b, c, d, e, f, g, h, m1, m0, 8 * gi, lane)
    round(h, a, b, c, d, e, f, g, m0, m1, 8 * gi + 1, lane)
    round(g, h, a, b, c, d, e, f, m1, m0, 8 * gi + 2, lane)
    round(f, g, h, a, b, c, d, e, m0, m1, 8 * gi + 3, lane)
    round(e, f, g, h, a, b, c, d, m1, m0, 8 * gi + 4, lane)
    round(d, e, f, g, h, a, b, c, m0, m1, 8 * gi + 5, lane)
    round(c, d, e, f, g, h, a, b, m1, m0, 8 * gi + 6, lane)
    round(b, c, d, e, f, g, h, a, m0, m1, 8 * gi + 7, lane)
    if more:
      step(20 * lane + 2 * gi)
      step(20 * lane + 2 * gi + 1)

  template blockRounds(lane: static int) {.dirty.} =
    block:
      var
        a = state[0]
        b = state[1]
        c = state[2]
        d = state[3]
        e = state[4]
        f = state[5]
        g = state[6]
        h = state[7]
        m0 = 0'u64
        m1 = b xor c
      group(0, lane); group(1, lane); group(2, lane); group(3, lane); group(4, lane)
      group(5, lane); group(6, lane); group(7, lane); group(8, lane); group(9, lane)
      state[0] += a; state[1] += b; state[2] += c; state[3] += d
      state[4] += e; state[5] += f; state[6] += g; state[7] += h

  proc compressAvx512*(state: var Sha512State, data: ptr UncheckedArray[byte], nblocks: int) {.
      codegenDecl: "__attribute__((target(\"" & avx512Targets & ",bmi,bmi2\"))) $# $#$#".} =
    ## Absorb `nblocks` 128-byte blocks from `data` into `state`.
    if nblocks <= 0: return
    let bswapMask = mm256_set_epi64x(0x08090a0b0c0d0e0f'i64, 0x0001020304050607'i64,
                                     0x08090a0b0c0d0e0f'i64, 0x0001020304050607'i64)
    var frames {.align: 32.}: array[2, array[160, uint64]]
    var x: array[8, M256i]
    var cur = 0
    # the first pair's schedule, up front (an odd last block is scheduled twice)
    var nextLo = data
    var nextHi = if nblocks > 1: cast[ptr UncheckedArray[byte]](data[128].addr) else: data
    var nextWk = cast[ptr UncheckedArray[uint64]](frames[0][0].addr)
    var more = true
    step(0); step(1); step(2); step(3); step(4); step(5); step(6); step(7); step(8); step(9)
    step(10); step(11); step(12); step(13); step(14); step(15); step(16); step(17); step(18)
    step(19); step(20); step(21); step(22); step(23); step(24); step(25); step(26); step(27)
    step(28); step(29); step(30); step(31); step(32); step(33); step(34); step(35); step(36)
    step(37); step(38); step(39)
    var blk = 0
    while blk < nblocks:
      let wk = cast[ptr UncheckedArray[uint64]](frames[cur][0].addr)
      let two = blk + 1 < nblocks
      more = blk + 2 < nblocks
      if more:
        nextLo = cast[ptr UncheckedArray[byte]](data[128 * (blk + 2)].addr)
        nextHi = if blk + 3 < nblocks: cast[ptr UncheckedArray[byte]](data[128 * (blk + 3)].addr)
                 else: nextLo
        nextWk = cast[ptr UncheckedArray[uint64]](frames[1 - cur][0].addr)
      blockRounds(0)
      if two:
        blockRounds(1)
      blk += 2
      cur = 1 - cur
    wipe(frames); wipe(x)

  {.pop.}
