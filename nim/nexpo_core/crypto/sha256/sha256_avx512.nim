## SHA-256 on AVX-512, sixteen independent messages at once ("multi-buffer").
##
## Lane i of every register belongs to message i: the eight state words are eight zmm
## registers, the message schedule sixteen more. Words are fetched with 64-bit-address gathers
## (`vpgatherqd`, two per word) and byte-swapped with `vpshufb`; Σ/σ use `vprord`, and Ch, Maj
## and the three-way XORs are single `vpternlogd` ops. One round costs ~17 vector ops for 16
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

proc compress16*(state: var State16, lanes: Lanes16) {.avx512fn.} =
  ## Absorb one 64-byte block per lane.
  # Gather word t of every lane's block (two 8-lane gathers on 64-bit addresses) and
  # byte-swap it to big-endian order.
  var addrs {.align: 64.}: array[16, int64]
  for i in 0 ..< 16: addrs[i] = cast[int64](lanes[i])
  let lo = mm512_loadu_si512(addrs[0].addr)
  let hi = mm512_loadu_si512(addrs[8].addr)
  let swap = mm512_loadu_si512(bswapMask[0].unsafeAddr)
  var w: array[16, M512i]
  for t in 0 ..< 16:
    let off = mm512_set1_epi64(int64(4 * t))
    let wl = mm512_i64gather_epi32(mm512_add_epi64(lo, off), nil, 1)
    let wh = mm512_i64gather_epi32(mm512_add_epi64(hi, off), nil, 1)
    w[t] = mm512_shuffle_epi8(mm512_inserti64x4(mm512_castsi256_si512(wl), wh, 1), swap)
  var
    a = state[0]
    b = state[1]
    c = state[2]
    d = state[3]
    e = state[4]
    f = state[5]
    g = state[6]
    h = state[7]
  template sched(t: static int) =
    const i = t and 15
    let x15 = w[(t - 15) and 15]
    let x2 = w[(t - 2) and 15]
    let s0 = xor3(mm512_ror_epi32(x15, 7), mm512_ror_epi32(x15, 18), mm512_srli_epi32(x15, 3))
    let s1 = xor3(mm512_ror_epi32(x2, 17), mm512_ror_epi32(x2, 19), mm512_srli_epi32(x2, 10))
    w[i] = mm512_add_epi32(mm512_add_epi32(w[i], s0), mm512_add_epi32(w[(t - 7) and 15], s1))
  template rnd(t: static int, a, b, c, d, e, f, g, h: untyped) =
    let t1 = mm512_add_epi32(mm512_add_epi32(h, xor3(mm512_ror_epi32(e, 6), mm512_ror_epi32(e, 11), mm512_ror_epi32(e, 25))),
                 mm512_add_epi32(ch(e, f, g), mm512_add_epi32(w[t and 15], mm512_set1_epi32(cast[int32](k256[t])))))
    let t2 = mm512_add_epi32(xor3(mm512_ror_epi32(a, 2), mm512_ror_epi32(a, 13), mm512_ror_epi32(a, 22)), maj(a, b, c))
    d = mm512_add_epi32(d, t1)
    h = mm512_add_epi32(t1, t2)
  rnd(0, a, b, c, d, e, f, g, h)
  rnd(1, h, a, b, c, d, e, f, g)
  rnd(2, g, h, a, b, c, d, e, f)
  rnd(3, f, g, h, a, b, c, d, e)
  rnd(4, e, f, g, h, a, b, c, d)
  rnd(5, d, e, f, g, h, a, b, c)
  rnd(6, c, d, e, f, g, h, a, b)
  rnd(7, b, c, d, e, f, g, h, a)
  rnd(8, a, b, c, d, e, f, g, h)
  rnd(9, h, a, b, c, d, e, f, g)
  rnd(10, g, h, a, b, c, d, e, f)
  rnd(11, f, g, h, a, b, c, d, e)
  rnd(12, e, f, g, h, a, b, c, d)
  rnd(13, d, e, f, g, h, a, b, c)
  rnd(14, c, d, e, f, g, h, a, b)
  rnd(15, b, c, d, e, f, g, h, a)
  sched(16); rnd(16, a, b, c, d, e, f, g, h)
  sched(17); rnd(17, h, a, b, c, d, e, f, g)
  sched(18); rnd(18, g, h, a, b, c, d, e, f)
  sched(19); rnd(19, f, g, h, a, b, c, d, e)
  sched(20); rnd(20, e, f, g, h, a, b, c, d)
  sched(21); rnd(21, d, e, f, g, h, a, b, c)
  sched(22); rnd(22, c, d, e, f, g, h, a, b)
  sched(23); rnd(23, b, c, d, e, f, g, h, a)
  sched(24); rnd(24, a, b, c, d, e, f, g, h)
  sched(25); rnd(25, h, a, b, c, d, e, f, g)
  sched(26); rnd(26, g, h, a, b, c, d, e, f)
  sched(27); rnd(27, f, g, h, a, b, c, d, e)
  sched(28); rnd(28, e, f, g, h, a, b, c, d)
  sched(29); rnd(29, d, e, f, g, h, a, b, c)
  sched(30); rnd(30, c, d, e, f, g, h, a, b)
  sched(31); rnd(31, b, c, d, e, f, g, h, a)
  sched(32); rnd(32, a, b, c, d, e, f, g, h)
  sched(33); rnd(33, h, a, b, c, d, e, f, g)
  sched(34); rnd(34, g, h, a, b, c, d, e, f)
  sched(35); rnd(35, f, g, h, a, b, c, d, e)
  sched(36); rnd(36, e, f, g, h, a, b, c, d)
  sched(37); rnd(37, d, e, f, g, h, a, b, c)
  sched(38); rnd(38, c, d, e, f, g, h, a, b)
  sched(39); rnd(39, b, c, d, e, f, g, h, a)
  sched(40); rnd(40, a, b, c, d, e, f, g, h)
  sched(41); rnd(41, h, a, b, c, d, e, f, g)
  sched(42); rnd(42, g, h, a, b, c, d, e, f)
  sched(43); rnd(43, f, g, h, a, b, c, d, e)
  sched(44); rnd(44, e, f, g, h, a, b, c, d)
  sched(45); rnd(45, d, e, f, g, h, a, b, c)
  sched(46); rnd(46, c, d, e, f, g, h, a, b)
  sched(47); rnd(47, b, c, d, e, f, g, h, a)
  sched(48); rnd(48, a, b, c, d, e, f, g, h)
  sched(49); rnd(49, h, a, b, c, d, e, f, g)
  sched(50); rnd(50, g, h, a, b, c, d, e, f)
  sched(51); rnd(51, f, g, h, a, b, c, d, e)
  sched(52); rnd(52, e, f, g, h, a, b, c, d)
  sched(53); rnd(53, d, e, f, g, h, a, b, c)
  sched(54); rnd(54, c, d, e, f, g, h, a, b)
  sched(55); rnd(55, b, c, d, e, f, g, h, a)
  sched(56); rnd(56, a, b, c, d, e, f, g, h)
  sched(57); rnd(57, h, a, b, c, d, e, f, g)
  sched(58); rnd(58, g, h, a, b, c, d, e, f)
  sched(59); rnd(59, f, g, h, a, b, c, d, e)
  sched(60); rnd(60, e, f, g, h, a, b, c, d)
  sched(61); rnd(61, d, e, f, g, h, a, b, c)
  sched(62); rnd(62, c, d, e, f, g, h, a, b)
  sched(63); rnd(63, b, c, d, e, f, g, h, a)
  state[0] = mm512_add_epi32(state[0], a); state[1] = mm512_add_epi32(state[1], b)
  state[2] = mm512_add_epi32(state[2], c); state[3] = mm512_add_epi32(state[3], d)
  state[4] = mm512_add_epi32(state[4], e); state[5] = mm512_add_epi32(state[5], f)
  state[6] = mm512_add_epi32(state[6], g); state[7] = mm512_add_epi32(state[7], h)

proc digests16*(state: State16, outs: Lanes16) {.avx512fn.} =
  ## Write lane i's state as a big-endian digest to outs[i].
  var words {.align: 64.}: array[8, array[16, uint32]]
  for j in 0 ..< 8: mm512_storeu_si512(words[j][0].addr, state[j])
  for i in 0 ..< 16:
    for j in 0 ..< 8: storeBe32(outs[i], 4 * j, words[j][i])

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
    # Every lane's last block is the same pure padding block.
    var pad: array[128, byte]
    discard padTail(pad, 0, total)
    for i in 0 ..< 16: lanes[i] = cast[ptr UncheckedArray[byte]](pad[0].addr)
    compress16(st, lanes)
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
