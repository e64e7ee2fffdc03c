## SHA-512 on the AVX2 path: scalar rounds (BMI2 `rorx`) fed by a message schedule computed two
## words at a time in SSE registers, one block ahead.
##
## While the rounds of block i run on the integer ports, the vector ports compute W[0..79] + K
## of block i+1 (four schedule steps after every eight rounds), so the rounds only add one
## precomputed word each. x[k mod 8] holds (W[2k], W[2k+1]); the pair (W[t-15], W[t-14]) and
## (W[t-7], W[t-6]) straddle two registers and come from `palignr`. (The same split as Intel's
## 2012 white paper on fast SHA-512 and OpenSSL's AVX2 code; no shared code.)
##
## ::
##
##   rounds of block i:   | 0-7 | 8-15 | 16-23 | ... | 72-79 |
##   schedule of i+1:     | load 4 | load 4 | steps 8-11 | ... | steps 36-39 |
##
## The rounds are `sha512_avx512.nim`'s (Ch as a sum of disjoint halves, Maj reusing the
## previous round's a xor b: 22 operations, in its measured order; 3-12% faster than T1
## first with a 4-operation Maj, Zen 4 at 1-16 KiB).
##
## Properties:
## - `compressAvx2` carries target("avx2,bmi,bmi2"): only called when `cpu.activeIsa() >= isaAvx2`
##   (which requires BMI2)
## - add/xor/shift/rotate only: constant time; the W+K buffers are wiped before returning

import ../../config
import ./sha512_generic

when x86SimdEnabled:
  import ../simd, ../ct

  {.push raises: [], boundChecks: off, overflowChecks: off, rangeChecks: off.}

  var kTable {.align: 16.}: array[80, uint64] = k512   ## addressable, for vector loads

  template vror(v: M128i, n: static int): M128i =
    mm_or_si128(mm_srli_epi64(v, n), mm_slli_epi64(v, 64 - n))

  template sigma0v(v: M128i): M128i =
    mm_xor_si128(mm_xor_si128(vror(v, 1), vror(v, 8)), mm_srli_epi64(v, 7))
  template sigma1v(v: M128i): M128i =
    mm_xor_si128(mm_xor_si128(vror(v, 19), vror(v, 61)), mm_srli_epi64(v, 6))

  template loadStep(k: static int) {.dirty.} =
    ## x[k] = W[2k], W[2k+1] of the next block (k < 8), byte-swapped; W+K stored.
    x[k] = mm_shuffle_epi8(mm_loadu_si128(nextBlock[16 * k].addr), bswapMask)
    mm_storeu_si128(nextWk[2 * k].addr, mm_add_epi64(x[k], mm_loadu_si128(kTable[2 * k].addr)))

  template schedStep(k: static int) {.dirty.} =
    ## x[k mod 8] = W[2k], W[2k+1] (8 <= k < 40), from the previous eight pairs; W+K stored.
    block:
      let w15 = mm_alignr_epi8(x[(k - 7) and 7], x[(k - 8) and 7], 8)
      let w7 = mm_alignr_epi8(x[(k - 3) and 7], x[(k - 4) and 7], 8)
      let s = mm_add_epi64(mm_add_epi64(x[(k - 8) and 7], sigma0v(w15)),
                           mm_add_epi64(w7, sigma1v(x[(k - 1) and 7])))
      x[k and 7] = s
      mm_storeu_si128(nextWk[2 * k].addr, mm_add_epi64(s, mm_loadu_si128(kTable[2 * k].addr)))

  template roundWk(a, b, c, d, e, f, g, h, abPrev, abNew: untyped, t: static int) {.dirty.} =
    scalarRound(a, b, c, d, e, f, g, h, abPrev, abNew, wk[t])

  template eight(t: static int) {.dirty.} =
    roundWk(a, b, c, d, e, f, g, h, m1, m0, t)
    roundWk(h, a, b, c, d, e, f, g, m0, m1, t + 1)
    roundWk(g, h, a, b, c, d, e, f, m1, m0, t + 2)
    roundWk(f, g, h, a, b, c, d, e, m0, m1, t + 3)
    roundWk(e, f, g, h, a, b, c, d, m1, m0, t + 4)
    roundWk(d, e, f, g, h, a, b, c, m0, m1, t + 5)
    roundWk(c, d, e, f, g, h, a, b, m1, m0, t + 6)
    roundWk(b, c, d, e, f, g, h, a, m0, m1, t + 7)

  template group(gi: static int) {.dirty.} =
    ## Rounds 8·gi .. 8·gi+7 of this block, then four schedule steps of the next.
    eight(8 * gi)
    if more:
      when gi == 0:
        loadStep(0); loadStep(1); loadStep(2); loadStep(3)
      elif gi == 1:
        loadStep(4); loadStep(5); loadStep(6); loadStep(7)
      else:
        schedStep(4 * gi); schedStep(4 * gi + 1); schedStep(4 * gi + 2); schedStep(4 * gi + 3)

  proc compressAvx2*(state: var Sha512State, data: ptr UncheckedArray[byte], nblocks: int) {.
      codegenDecl: "__attribute__((target(\"avx2,bmi,bmi2\"))) $# $#$#".} =
    ## Absorb `nblocks` 128-byte blocks from `data` into `state`.
    if nblocks <= 0: return
    let bswapMask = mm_set_epi64x(0x08090a0b0c0d0e0f'i64, 0x0001020304050607'i64)
    var bufs {.align: 16.}: array[2, array[80, uint64]]
    var x: array[8, M128i]
    var cur = 0
    # the first block's schedule, up front
    var nextBlock = data
    var nextWk = cast[ptr UncheckedArray[uint64]](bufs[0][0].addr)
    var more = true
    loadStep(0); loadStep(1); loadStep(2); loadStep(3)
    loadStep(4); loadStep(5); loadStep(6); loadStep(7)
    schedStep(8); schedStep(9); schedStep(10); schedStep(11); schedStep(12); schedStep(13)
    schedStep(14); schedStep(15); schedStep(16); schedStep(17); schedStep(18); schedStep(19)
    schedStep(20); schedStep(21); schedStep(22); schedStep(23); schedStep(24); schedStep(25)
    schedStep(26); schedStep(27); schedStep(28); schedStep(29); schedStep(30); schedStep(31)
    schedStep(32); schedStep(33); schedStep(34); schedStep(35); schedStep(36); schedStep(37)
    schedStep(38); schedStep(39)
    for blk in 0 ..< nblocks:
      let wk = cast[ptr UncheckedArray[uint64]](bufs[cur][0].addr)
      more = blk + 1 < nblocks
      if more:
        nextBlock = cast[ptr UncheckedArray[byte]](data[128 * (blk + 1)].addr)
        nextWk = cast[ptr UncheckedArray[uint64]](bufs[1 - cur][0].addr)
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
      group(0); group(1); group(2); group(3); group(4)
      group(5); group(6); group(7); group(8); group(9)
      state[0] += a; state[1] += b; state[2] += c; state[3] += d
      state[4] += e; state[5] += f; state[6] += g; state[7] += h
      cur = 1 - cur
    wipe(bufs); wipe(x)

  {.pop.}
