## SHA-256 compression with the x86 SHA extensions (SHA-NI), one stream or two interleaved.
##
## The SHA-NI unit keeps the state as two registers, ABEF and CDGH (Intel's "SHA extensions"
## white paper, 2013). Each `sha256rnds2` runs two rounds, so four 4-round groups consume one
## message register; `sha256msg1`/`sha256msg2` expand the schedule four words at a time:
##
##   group g (rounds 4g..4g+3) uses W[4g..4g+3] = msg[g mod 4]
##   groups 1..12 : msg[g-1] = mm_sha256msg1_epu32(msg[g-1], msg[g])                (first half of σ0 terms)
##   groups 3..14 : msg[g+1] = mm_sha256msg2_epu32(msg[g+1] + alignr(msg[g], msg[g-1], 4), msg[g])
##
## Properties:
## - every proc carries `shanifn` (target sha,sse4.1,ssse3): the baseline build stays x86-64-v2
## - `compressShaNi2` runs two independent streams in one loop body, so the long
##   `sha256rnds2` latency of one stream is hidden behind the other (used by the batch paths)
## - unaligned loads: `data` needs no alignment

import ../../targets
import ../simd
import ./sha256_generic

template byteSwapMask(): M128i = mm_set_epi64x(0x0c0d0e0f08090a0b'i64, 0x0405060700010203'i64)

template loadState(state: Sha256State, abef, cdgh: untyped) =
  ## state words A..H (little-endian lanes) → ABEF, CDGH register order.
  let dcba = mm_shuffle_epi32(mm_loadu_si128(state[0].unsafeAddr), 0xB1)   # CDAB
  let hgfe = mm_shuffle_epi32(mm_loadu_si128(state[4].unsafeAddr), 0x1B)   # HGFE... as EFGH reversed
  abef = mm_alignr_epi8(dcba, hgfe, 8)
  cdgh = mm_blend_epi16(hgfe, dcba, 0xF0)

template storeState(state: var Sha256State, abef, cdgh: M128i) =
  let feba = mm_shuffle_epi32(abef, 0x1B)
  let dchg = mm_shuffle_epi32(cdgh, 0xB1)
  mm_storeu_si128(state[0].addr, mm_blend_epi16(feba, dchg, 0xF0))
  mm_storeu_si128(state[4].addr, mm_alignr_epi8(dchg, feba, 8))

template group(g: static int, abef, cdgh: untyped, m: untyped) =
  ## Rounds 4g..4g+3 plus this group's share of the message expansion.
  const cur = g mod 4
  const prev = (g + 3) mod 4
  const next = (g + 1) mod 4
  var wk = mm_add_epi32(m[cur], mm_set_epi32(cast[int32](k256[4 * g + 3]), cast[int32](k256[4 * g + 2]),
                                     cast[int32](k256[4 * g + 1]), cast[int32](k256[4 * g])))
  cdgh = mm_sha256rnds2_epu32(cdgh, abef, wk)
  when g >= 3 and g <= 14:
    m[next] = mm_sha256msg2_epu32(mm_add_epi32(m[next], mm_alignr_epi8(m[cur], m[prev], 4)), m[cur])
  wk = mm_shuffle_epi32(wk, 0x0E)
  abef = mm_sha256rnds2_epu32(abef, cdgh, wk)
  when g >= 1 and g <= 12:
    m[prev] = mm_sha256msg1_epu32(m[prev], m[cur])

template blockRounds(abef, cdgh: untyped, m: untyped) =
  group(0, abef, cdgh, m); group(1, abef, cdgh, m); group(2, abef, cdgh, m)
  group(3, abef, cdgh, m); group(4, abef, cdgh, m); group(5, abef, cdgh, m)
  group(6, abef, cdgh, m); group(7, abef, cdgh, m); group(8, abef, cdgh, m)
  group(9, abef, cdgh, m); group(10, abef, cdgh, m); group(11, abef, cdgh, m)
  group(12, abef, cdgh, m); group(13, abef, cdgh, m); group(14, abef, cdgh, m)
  group(15, abef, cdgh, m)

template loadBlock(m: untyped, p: ptr UncheckedArray[byte], mask: M128i) =
  m[0] = mm_shuffle_epi8(mm_loadu_si128(p[0].addr), mask)
  m[1] = mm_shuffle_epi8(mm_loadu_si128(p[16].addr), mask)
  m[2] = mm_shuffle_epi8(mm_loadu_si128(p[32].addr), mask)
  m[3] = mm_shuffle_epi8(mm_loadu_si128(p[48].addr), mask)

proc compressShaNi*(state: var Sha256State, data: ptr UncheckedArray[byte], nblocks: int) {.shanifn.} =
  ## Absorb `nblocks` 64-byte blocks from `data` into `state`.
  let mask = byteSwapMask()
  var abef, cdgh: M128i
  var m: array[4, M128i]
  loadState(state, abef, cdgh)
  for blk in 0 ..< nblocks:
    let saveAbef = abef
    let saveCdgh = cdgh
    loadBlock(m, cast[ptr UncheckedArray[byte]](data[64 * blk].addr), mask)
    blockRounds(abef, cdgh, m)
    abef = mm_add_epi32(abef, saveAbef)
    cdgh = mm_add_epi32(cdgh, saveCdgh)
  storeState(state, abef, cdgh)

proc compressShaNi2*(stateA, stateB: var Sha256State, dataA, dataB: ptr UncheckedArray[byte],
                     nblocks: int) {.shanifn.} =
  ## Two independent streams of `nblocks` blocks each, interleaved group by group.
  let mask = byteSwapMask()
  var abefA, cdghA, abefB, cdghB: M128i
  var mA, mB: array[4, M128i]
  loadState(stateA, abefA, cdghA)
  loadState(stateB, abefB, cdghB)
  for blk in 0 ..< nblocks:
    let (sA0, sA1, sB0, sB1) = (abefA, cdghA, abefB, cdghB)
    loadBlock(mA, cast[ptr UncheckedArray[byte]](dataA[64 * blk].addr), mask)
    loadBlock(mB, cast[ptr UncheckedArray[byte]](dataB[64 * blk].addr), mask)
    template both(g: static int) =
      group(g, abefA, cdghA, mA)
      group(g, abefB, cdghB, mB)
    both(0); both(1); both(2); both(3); both(4); both(5); both(6); both(7)
    both(8); both(9); both(10); both(11); both(12); both(13); both(14); both(15)
    abefA = mm_add_epi32(abefA, sA0); cdghA = mm_add_epi32(cdghA, sA1)
    abefB = mm_add_epi32(abefB, sB0); cdghB = mm_add_epi32(cdghB, sB1)
  storeState(stateA, abefA, cdghA)
  storeState(stateB, abefB, cdghB)
