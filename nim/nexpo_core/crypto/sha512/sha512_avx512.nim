## SHA-512 on the AVX-512 path: scalar rounds (BMI2 `rorx`, `andn`) fed by a message schedule
## of TWO blocks at once in ymm registers (block i in the low 128-bit lane, block i+1 in the
## high one), with AVX-512VL's `vprorq` and `vpternlogq` for σ0/σ1.
##
## The rounds are `scalarRoundShortChain`: with six integer ALUs (Zen 5) the round is bound by
## its dependency chain, not by its operation count (OpenSSL's AVX2 code has the fewest, 22, and
## a chain of 5; this round has 24 and a chain of 4, and its 25-op predecessor was 5 % faster
## on Zen 5; on Zen 4's four ALUs the count binds, 24 ops measured 4 % faster than 25). The
## schedule runs on the vector pipes and is hidden (measured: dropping it changes nothing). The
## code is a loop of 16 rounds, not 80 unrolled: unrolled, two blocks' rounds and schedule were
## ~5,000 instructions, more than the op cache holds, and measured 2% slower on Zen 4.
##
## x[k mod 8] holds (W[2k], W[2k+1]) of both blocks; `vpalignr` works within each 128-bit lane,
## so the straddling pairs (W[t-15], W[t-14]) and (W[t-7], W[t-6]) come out per block. The
## frame interleaves the blocks as the registers do: W+K of step k is 4 words at 4k, block i's
## two then block i+1's. 8 steps fill 16 rounds' words, and after 8 steps the registers are
## back in the same roles, so each loop pass has fixed register names:
##
## ::
##
##   block 2p (low lane):    | rounds 16j..16j+15 + steps 8(j+1)..8(j+1)+7, j = 0..3 | 64-79 |
##   block 2p+1 (high lane): | rounds 0-63 from the frame | 64-79 + loads of pair p+1 (0-7) |
##
## The rounds compute Ch(e,f,g) as (e and f) + (not e and g) (disjoint bits: + is xor, and the
## two halves add into h independently) and Maj(a,b,c) as ((a xor b) and (b xor c)) xor b,
## where b xor c is the previous round's a xor b: 3 operations, one of them shared. The order
## of the statements in `round` is measured (GCC's output follows it): it is ~3% faster than writing
## T1 first (Zen 4, 16 KiB; other orders tried were 1-2% slower or no better).
##
## Properties:
## - `compressAvx512` carries target(avx512 + bmi2): only called when `cpu.activeIsa() >=
##   isaAvx512` (which requires BMI2)
## - add/xor/and/rotate only: constant time; the W+K frame and schedule registers are wiped on return
## - an odd last block is loaded in both lanes (the high lane's copy is never used)

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

  template xor3(a, b, c: M256i): M256i = mm256_ternarylogic_epi64(a, b, c, 0x96)
  template sigma0y(v: M256i): M256i =
    xor3(mm256_ror_epi64(v, 1), mm256_ror_epi64(v, 8), mm256_srli_epi64(v, 7))
  template sigma1y(v: M256i): M256i =
    xor3(mm256_ror_epi64(v, 19), mm256_ror_epi64(v, 61), mm256_srli_epi64(v, 6))

  template loadStep(k: static int) {.dirty.} =
    ## x[k] = W[2k], W[2k+1] of the pair at lo/hi (k < 8), byte-swapped; W+K stored.
    block:
      let pair = mm256_inserti128_si256(mm256_castsi128_si256(mm_loadu_si128(lo[16 * k].addr)),
                                        mm_loadu_si128(hi[16 * k].addr), 1)
      x[k] = mm256_shuffle_epi8(pair, bswapMask)
      mm256_storeu_si256(frame[4 * k].addr, mm256_add_epi64(x[k], mm256_loadu_si256(kPairs[4 * k].addr)))

  template loadPair() {.dirty.} =
    loadStep(0); loadStep(1); loadStep(2); loadStep(3)
    loadStep(4); loadStep(5); loadStep(6); loadStep(7)

  template schedStep(j: static int) {.dirty.} =
    ## x[j] = W[2k], W[2k+1] of both blocks for step k = 8(pass+1) + j; W+K stored at `ahead`.
    block:
      let w15 = mm256_alignr_epi8(x[(j + 1) and 7], x[j], 8)
      let w7 = mm256_alignr_epi8(x[(j + 5) and 7], x[(j + 4) and 7], 8)
      let s = mm256_add_epi64(mm256_add_epi64(x[j], sigma0y(w15)),
                              mm256_add_epi64(w7, sigma1y(x[(j + 7) and 7])))
      x[j] = s
      mm256_storeu_si256(ahead[4 * j].addr, mm256_add_epi64(s, mm256_loadu_si256(kAhead[4 * j].addr)))

  template round(a, b, c, d, e, f, g, h, abPrev, abNew: untyped, s, lane: static int) {.dirty.} =
    ## Round 16·pass + s of block `lane` (0 low, 1 high): W+K from the interleaved schedule.
    scalarRoundShortChain(a, b, c, d, e, f, g, h, abPrev, abNew, wk[4 * (s shr 1) + 2 * lane + (s and 1)])

  template pair(x0, x1, x2, x3, x4, x5, x6, x7: untyped, s, lane: static int, step: static int) {.dirty.} =
    ## Rounds s and s+1 (the variables rotate by two), then schedule step `step` (none if < 0).
    round(x0, x1, x2, x3, x4, x5, x6, x7, m1, m0, s, lane)
    round(x7, x0, x1, x2, x3, x4, x5, x6, m0, m1, s + 1, lane)
    when step >= 0: schedStep(step)

  template eight(s, lane: static int, step: static int = -1) {.dirty.} =
    ## Rounds s ..< s+8; with `step` >= 0, schedule steps step ..< step+4 between their pairs.
    pair(a, b, c, d, e, f, g, h, s, lane, (if step < 0: -1 else: step))
    pair(g, h, a, b, c, d, e, f, s + 2, lane, (if step < 0: -1 else: step + 1))
    pair(e, f, g, h, a, b, c, d, s + 4, lane, (if step < 0: -1 else: step + 2))
    pair(c, d, e, f, g, h, a, b, s + 6, lane, (if step < 0: -1 else: step + 3))

  template sixteen(lane: static int) {.dirty.} =
    eight(0, lane); eight(8, lane)

  template sixteenScheduling() {.dirty.} =
    ## 16 rounds of the low block, with the next 8 schedule steps of both blocks between them.
    eight(0, 0, 0); eight(8, 0, 4)

  template blockStart() {.dirty.} =
    a = state[0]; b = state[1]; c = state[2]; d = state[3]
    e = state[4]; f = state[5]; g = state[6]; h = state[7]
    m1 = b xor c

  template blockEnd() {.dirty.} =
    state[0] += a; state[1] += b; state[2] += c; state[3] += d
    state[4] += e; state[5] += f; state[6] += g; state[7] += h

  proc compressAvx512*(state: var Sha512State, data: ptr UncheckedArray[byte], nblocks: int) {.
      codegenDecl: "__attribute__((target(\"" & avx512Targets & ",bmi,bmi2\"))) $# $#$#".} =
    ## Absorb `nblocks` 128-byte blocks from `data` into `state`.
    if nblocks <= 0: return
    let bswapMask = mm256_set_epi64x(0x08090a0b0c0d0e0f'i64, 0x0001020304050607'i64,
                                     0x08090a0b0c0d0e0f'i64, 0x0001020304050607'i64)
    var frame {.align: 32.}: array[160, uint64]
    var x: array[8, M256i]
    var a, b, c, d, e, f, g, h, m0, m1: uint64
    # the first pair's words 0-15, up front (an odd last block is loaded in both lanes)
    var lo = data
    var hi = if nblocks > 1: cast[ptr UncheckedArray[byte]](data[128].addr) else: data
    loadPair()
    var blk = 0
    while blk < nblocks:
      blockStart()
      for pass in 0 ..< 4:
        let wk = cast[ptr UncheckedArray[uint64]](frame[32 * pass].addr)
        let ahead = cast[ptr UncheckedArray[uint64]](frame[32 * pass + 32].addr)
        let kAhead = cast[ptr UncheckedArray[uint64]](kPairs[32 * pass + 32].addr)
        sixteenScheduling()
      block:
        let wk = cast[ptr UncheckedArray[uint64]](frame[128].addr)
        sixteen(0)
      blockEnd()
      if blk + 1 < nblocks:
        blockStart()
        for pass in 0 ..< 4:
          let wk = cast[ptr UncheckedArray[uint64]](frame[32 * pass].addr)
          sixteen(1)
        if blk + 2 < nblocks:   # the next pair's first words, under the last 16 rounds
          lo = cast[ptr UncheckedArray[byte]](data[128 * (blk + 2)].addr)
          hi = if blk + 3 < nblocks: cast[ptr UncheckedArray[byte]](data[128 * (blk + 3)].addr)
               else: lo
          loadPair()
        let wk = cast[ptr UncheckedArray[uint64]](frame[128].addr)
        sixteen(1)
        blockEnd()
      blk += 2
    wipe(frame); wipe(x)

  {.pop.}
