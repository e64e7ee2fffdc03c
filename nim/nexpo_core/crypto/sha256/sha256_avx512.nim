## SHA-256 on AVX-512, sixteen independent messages at once ("multi-buffer").
##
## Lane i of every register belongs to message i: the eight state words are eight zmm
## registers, the message schedule sixteen more. Each lane's block is loaded as one row,
## byte-swapped with `vpshufb` and the 16×16 words transposed with unpacks and 128-bit lane
## shuffles (gathers, two per word, cost several times more); Σ/σ use `vprord`, and Ch, Maj
## and the three-way XORs are single `vpternlogd` ops. A block every lane shares (the padding
## block of messages that fill whole blocks) has its schedule computed once, in scalar code. One round costs ~17 vector ops for 16
## blocks, against 2 `sha256rnds2` per 4 rounds per block on SHA-NI — about twice the
## throughput when sixteen messages are ready (FIPS 180-4 §6.2.2; the layout follows Intel's
## multi-buffer hashing white paper, Guilford et al., 2012).
##
## ::
##
##   state[j] = | msg0.Hj | msg1.Hj | ... | msg15.Hj |      (j = 0..7, 16 × 32-bit lanes)
##   w[t]     = | msg0.Wt | msg1.Wt | ... | msg15.Wt |      (t mod 16, rolling)
##
## Properties:
## - `avx512fn` procs, used only when `cpu.activeIsa() == isaAvx512`
## - the 64 rounds are fully unrolled with rotating register names: no moves between rounds
## - every lane must have the same number of blocks (callers group equal-length messages)

import ../../targets
import ../simd
import ../ct
import ./sha256_generic

let bswapMask {.align: 64.}: array[64, byte] = block:
  var m: array[64, byte]
  for i in 0 ..< 16:
    for k in 0 ..< 4: m[4 * i + k] = byte(4 * (i mod 4) + 3 - k)
  m

type
  Lanes16* = array[16, ptr UncheckedArray[byte]]   ## one block pointer per lane
  State16* = array[8, M512i]

template xor3(a, b, c: M512i): M512i = mm512_ternarylogic_epi32(a, b, c, 0x96)
template ch(e, f, g: M512i): M512i = mm512_ternarylogic_epi32(e, f, g, 0xCA)     # e ? f : g
template maj(a, b, c: M512i): M512i = mm512_ternarylogic_epi32(a, b, c, 0xE8)    # majority

proc broadcastState*(s: Sha256State): State16 {.avx512fn.} =
  for j in 0 ..< 8: result[j] = mm512_set1_epi32(cast[int32](s[j]))

template rnd16(wk, a, b, c, d, e, f, g, h: untyped) =
  ## One round; `wk` is W[t] + K[t].
  let t1 = mm512_add_epi32(mm512_add_epi32(h, xor3(mm512_ror_epi32(e, 6), mm512_ror_epi32(e, 11), mm512_ror_epi32(e, 25))),
               mm512_add_epi32(ch(e, f, g), wk))
  let t2 = mm512_add_epi32(xor3(mm512_ror_epi32(a, 2), mm512_ror_epi32(a, 13), mm512_ror_epi32(a, 22)), maj(a, b, c))
  d = mm512_add_epi32(d, t1)
  h = mm512_add_epi32(t1, t2)

template rounds16(state: var State16, sched, wkAt: untyped) =
  ## The 64 rounds on all lanes; `wkAt(t)` is W[t] + K[t], `sched(t)` makes W[t] (t >= 16).
  var
    a = state[0]
    b = state[1]
    c = state[2]
    d = state[3]
    e = state[4]
    f = state[5]
    g = state[6]
    h = state[7]
  rnd16(wkAt(0), a, b, c, d, e, f, g, h)
  rnd16(wkAt(1), h, a, b, c, d, e, f, g)
  rnd16(wkAt(2), g, h, a, b, c, d, e, f)
  rnd16(wkAt(3), f, g, h, a, b, c, d, e)
  rnd16(wkAt(4), e, f, g, h, a, b, c, d)
  rnd16(wkAt(5), d, e, f, g, h, a, b, c)
  rnd16(wkAt(6), c, d, e, f, g, h, a, b)
  rnd16(wkAt(7), b, c, d, e, f, g, h, a)
  rnd16(wkAt(8), a, b, c, d, e, f, g, h)
  rnd16(wkAt(9), h, a, b, c, d, e, f, g)
  rnd16(wkAt(10), g, h, a, b, c, d, e, f)
  rnd16(wkAt(11), f, g, h, a, b, c, d, e)
  rnd16(wkAt(12), e, f, g, h, a, b, c, d)
  rnd16(wkAt(13), d, e, f, g, h, a, b, c)
  rnd16(wkAt(14), c, d, e, f, g, h, a, b)
  rnd16(wkAt(15), b, c, d, e, f, g, h, a)
  sched(16); rnd16(wkAt(16), a, b, c, d, e, f, g, h)
  sched(17); rnd16(wkAt(17), h, a, b, c, d, e, f, g)
  sched(18); rnd16(wkAt(18), g, h, a, b, c, d, e, f)
  sched(19); rnd16(wkAt(19), f, g, h, a, b, c, d, e)
  sched(20); rnd16(wkAt(20), e, f, g, h, a, b, c, d)
  sched(21); rnd16(wkAt(21), d, e, f, g, h, a, b, c)
  sched(22); rnd16(wkAt(22), c, d, e, f, g, h, a, b)
  sched(23); rnd16(wkAt(23), b, c, d, e, f, g, h, a)
  sched(24); rnd16(wkAt(24), a, b, c, d, e, f, g, h)
  sched(25); rnd16(wkAt(25), h, a, b, c, d, e, f, g)
  sched(26); rnd16(wkAt(26), g, h, a, b, c, d, e, f)
  sched(27); rnd16(wkAt(27), f, g, h, a, b, c, d, e)
  sched(28); rnd16(wkAt(28), e, f, g, h, a, b, c, d)
  sched(29); rnd16(wkAt(29), d, e, f, g, h, a, b, c)
  sched(30); rnd16(wkAt(30), c, d, e, f, g, h, a, b)
  sched(31); rnd16(wkAt(31), b, c, d, e, f, g, h, a)
  sched(32); rnd16(wkAt(32), a, b, c, d, e, f, g, h)
  sched(33); rnd16(wkAt(33), h, a, b, c, d, e, f, g)
  sched(34); rnd16(wkAt(34), g, h, a, b, c, d, e, f)
  sched(35); rnd16(wkAt(35), f, g, h, a, b, c, d, e)
  sched(36); rnd16(wkAt(36), e, f, g, h, a, b, c, d)
  sched(37); rnd16(wkAt(37), d, e, f, g, h, a, b, c)
  sched(38); rnd16(wkAt(38), c, d, e, f, g, h, a, b)
  sched(39); rnd16(wkAt(39), b, c, d, e, f, g, h, a)
  sched(40); rnd16(wkAt(40), a, b, c, d, e, f, g, h)
  sched(41); rnd16(wkAt(41), h, a, b, c, d, e, f, g)
  sched(42); rnd16(wkAt(42), g, h, a, b, c, d, e, f)
  sched(43); rnd16(wkAt(43), f, g, h, a, b, c, d, e)
  sched(44); rnd16(wkAt(44), e, f, g, h, a, b, c, d)
  sched(45); rnd16(wkAt(45), d, e, f, g, h, a, b, c)
  sched(46); rnd16(wkAt(46), c, d, e, f, g, h, a, b)
  sched(47); rnd16(wkAt(47), b, c, d, e, f, g, h, a)
  sched(48); rnd16(wkAt(48), a, b, c, d, e, f, g, h)
  sched(49); rnd16(wkAt(49), h, a, b, c, d, e, f, g)
  sched(50); rnd16(wkAt(50), g, h, a, b, c, d, e, f)
  sched(51); rnd16(wkAt(51), f, g, h, a, b, c, d, e)
  sched(52); rnd16(wkAt(52), e, f, g, h, a, b, c, d)
  sched(53); rnd16(wkAt(53), d, e, f, g, h, a, b, c)
  sched(54); rnd16(wkAt(54), c, d, e, f, g, h, a, b)
  sched(55); rnd16(wkAt(55), b, c, d, e, f, g, h, a)
  sched(56); rnd16(wkAt(56), a, b, c, d, e, f, g, h)
  sched(57); rnd16(wkAt(57), h, a, b, c, d, e, f, g)
  sched(58); rnd16(wkAt(58), g, h, a, b, c, d, e, f)
  sched(59); rnd16(wkAt(59), f, g, h, a, b, c, d, e)
  sched(60); rnd16(wkAt(60), e, f, g, h, a, b, c, d)
  sched(61); rnd16(wkAt(61), d, e, f, g, h, a, b, c)
  sched(62); rnd16(wkAt(62), c, d, e, f, g, h, a, b)
  sched(63); rnd16(wkAt(63), b, c, d, e, f, g, h, a)
  state[0] = mm512_add_epi32(state[0], a); state[1] = mm512_add_epi32(state[1], b)
  state[2] = mm512_add_epi32(state[2], c); state[3] = mm512_add_epi32(state[3], d)
  state[4] = mm512_add_epi32(state[4], e); state[5] = mm512_add_epi32(state[5], f)
  state[6] = mm512_add_epi32(state[6], g); state[7] = mm512_add_epi32(state[7], h)

template transpose4x4Lanes(w: var array[16, M512i], x0, x1, x2, x3: M512i, c: static int) =
  ## 128-bit lane j of x_m holds word 4j+c of lanes 4m..4m+3: gather lane j of every x_m into
  ## w[4j+c] (a 4×4 transpose of 128-bit lanes).
  let t0 = mm512_shuffle_i32x4(x0, x1, 0x44)
  let t1 = mm512_shuffle_i32x4(x0, x1, 0xEE)
  let t2 = mm512_shuffle_i32x4(x2, x3, 0x44)
  let t3 = mm512_shuffle_i32x4(x2, x3, 0xEE)
  w[c] = mm512_shuffle_i32x4(t0, t2, 0x88)
  w[4 + c] = mm512_shuffle_i32x4(t0, t2, 0xDD)
  w[8 + c] = mm512_shuffle_i32x4(t1, t3, 0x88)
  w[12 + c] = mm512_shuffle_i32x4(t1, t3, 0xDD)

proc compress16*(state: var State16, lanes: Lanes16) {.avx512fn.} =
  ## Absorb one 64-byte block per lane.
  # Load each lane's block as one row (byte-swapped to big-endian words), then transpose the
  # 16×16 words so that w[t] holds word t of every lane: 16 loads and 64 shuffles, where
  # gathers (two per word) cost several times more.
  let swap = mm512_loadu_si512(bswapMask[0].unsafeAddr)
  var r {.noinit.}: array[16, M512i]
  for i in 0 ..< 16: r[i] = mm512_shuffle_epi8(mm512_loadu_si512(lanes[i]), swap)
  var p {.noinit.}: array[16, M512i]   # words 4j+{0,1},{2,3} of lane pairs, per 128-bit lane j
  for k in 0 ..< 8:
    p[2 * k] = mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1])
    p[2 * k + 1] = mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1])
  var q {.noinit.}: array[16, M512i]   # q[4m+c], lane j: word 4j+c of lanes 4m..4m+3
  for m in 0 ..< 4:
    q[4 * m] = mm512_unpacklo_epi64(p[4 * m], p[4 * m + 2])
    q[4 * m + 1] = mm512_unpackhi_epi64(p[4 * m], p[4 * m + 2])
    q[4 * m + 2] = mm512_unpacklo_epi64(p[4 * m + 1], p[4 * m + 3])
    q[4 * m + 3] = mm512_unpackhi_epi64(p[4 * m + 1], p[4 * m + 3])
  var w {.noinit.}: array[16, M512i]
  transpose4x4Lanes(w, q[0], q[4], q[8], q[12], 0)
  transpose4x4Lanes(w, q[1], q[5], q[9], q[13], 1)
  transpose4x4Lanes(w, q[2], q[6], q[10], q[14], 2)
  transpose4x4Lanes(w, q[3], q[7], q[11], q[15], 3)
  template sched(t: static int) =
    const i = t and 15
    let x15 = w[(t - 15) and 15]
    let x2 = w[(t - 2) and 15]
    let s0 = xor3(mm512_ror_epi32(x15, 7), mm512_ror_epi32(x15, 18), mm512_srli_epi32(x15, 3))
    let s1 = xor3(mm512_ror_epi32(x2, 17), mm512_ror_epi32(x2, 19), mm512_srli_epi32(x2, 10))
    w[i] = mm512_add_epi32(mm512_add_epi32(w[i], s0), mm512_add_epi32(w[(t - 7) and 15], s1))
  template wkAt(t: static int): M512i =
    mm512_add_epi32(w[t and 15], mm512_set1_epi32(cast[int32](k256[t])))
  rounds16(state, sched, wkAt)

proc scheduleWk*(blk: ptr UncheckedArray[byte]): array[64, uint32] =
  ## W[t] + K[t] of one block, for a block every lane shares (the padding block).
  var w: array[64, uint32]
  for t in 0 ..< 16: w[t] = loadBe32(blk, 4 * t)
  template rotr(x: uint32, n: static int): uint32 = (x shr n) or (x shl (32 - n))
  for t in 16 ..< 64:
    let s0 = rotr(w[t-15], 7) xor rotr(w[t-15], 18) xor (w[t-15] shr 3)
    let s1 = rotr(w[t-2], 17) xor rotr(w[t-2], 19) xor (w[t-2] shr 10)
    w[t] = w[t-16] + s0 + w[t-7] + s1
  for t in 0 ..< 64: result[t] = w[t] + k256[t]

proc compressShared16*(state: var State16, wk: array[64, uint32]) {.avx512fn.} =
  ## Absorb the same block in every lane, its schedule precomputed (`scheduleWk`): the rounds
  ## only, no loads and no message schedule.
  template noSched(t: static int) = discard
  template wkAt(t: static int): M512i = mm512_set1_epi32(cast[int32](wk[t]))
  rounds16(state, noSched, wkAt)

proc digests16*(state: State16, outs: Lanes16) {.avx512fn.} =
  ## Write lane i's state as a big-endian digest to outs[i].
  var words {.align: 64.}: array[8, array[16, uint32]]
  for j in 0 ..< 8: mm512_storeu_si512(words[j][0].addr, state[j])
  for i in 0 ..< 16:
    for j in 0 ..< 8: storeBe32(outs[i], 4 * j, words[j][i])

var
  padWkFor {.threadvar.}: uint64            ## 1 + the message length `padWk` is for; 0: none
  padWk {.threadvar.}: array[64, uint32]    ## W + K of that length's padding block

proc hash16From*(iv: Sha256State, prior: uint64, msgs: Lanes16, len: int, outs: Lanes16) =
  ## outs[i] = SHA-256 digest of msgs[i][0..len) continuing from `iv` after `prior` bytes (a
  ## multiple of 64); all sixteen messages have the same length.
  var st = broadcastState(iv)
  var lanes: Lanes16
  let full = len div 64
  for k in 0 ..< full:
    for i in 0 ..< 16: lanes[i] = cast[ptr UncheckedArray[byte]](msgs[i][64 * k].addr)
    compress16(st, lanes)
  let rest = len - 64 * full
  let total = prior + uint64(len)
  if rest == 0:
    # Every lane's last block is the same pure padding block: its schedule depends only on
    # the length, and batches repeat lengths, so each thread keeps the last one.
    if padWkFor != total + 1:
      var pad: array[128, byte]
      discard padTail(pad, 0, total)
      padWk = scheduleWk(cast[ptr UncheckedArray[byte]](pad[0].addr))
      padWkFor = total + 1
    compressShared16(st, padWk)
  else:
    var tails {.noinit.}: array[16, array[128, byte]]
    let blocks = if rest < 56: 1 else: 2
    for i in 0 ..< 16:
      copyMem(tails[i][0].addr, msgs[i][64 * full].addr, rest)
      zeroMem(tails[i][rest].addr, 64 * blocks - rest)
      discard padTail(tails[i], rest, total)
    for k in 0 ..< blocks:
      for i in 0 ..< 16: lanes[i] = cast[ptr UncheckedArray[byte]](tails[i][64 * k].addr)
      compress16(st, lanes)
  digests16(st, outs)
  wipe(st)   # `iv` may be an HMAC key's pad state
