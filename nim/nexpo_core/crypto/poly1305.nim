## Poly1305 one-time authenticator (RFC 8439 §2.5) with three 44/44/42-bit limbs and 64×64→128
## products (the "donna-64" representation):
##
## ::
##
##   h = h0 + h1·2^44 + h2·2^88        (mod p = 2^130 - 5)
##   r = r0 + r1·2^44 + r2·2^88        s_i = 20·r_i folds 2^132 ≡ 20 back into limb 0
##
## Long runs go through a vector path: 16 blocks per step on AVX-512 IFMA (these same 44-bit
## limbs, `poly1305_ifma.nim`), else 8 (AVX-512) or 4 (AVX2) per step in 26-bit limbs.
##
## Properties:
## - constant time: the final reduction selects h or h - p with masks, never a branch
## - `Poly1305` holds the key (r, s) and accumulator; its owner wipes it (`ct.wipe`) when done
## - the 128-bit products come from C's `unsigned __int128` (GCC/Clang on 64-bit targets)

import ../config
import ./ct
when x86SimdEnabled:
  import ../cpu
  import ./poly1305/poly1305_avx2, ./poly1305/poly1305_avx512, ./poly1305/poly1305_ifma

{.emit: """/*TYPESECTION*/
typedef unsigned __int128 nexpo_u128;
static inline nexpo_u128 nexpo_mul64(unsigned long long a, unsigned long long b) {
  return (nexpo_u128)a * b;
}
""".}

type U128 {.importc: "nexpo_u128", nodecl.} = object

proc mul(a, b: uint64): U128 {.importc: "nexpo_mul64", nodecl.}
proc `+`(a, b: U128): U128 {.importc: "NEXPO_U128_ADD", nodecl.}
proc `+`(a: U128, b: uint64): U128 {.importc: "NEXPO_U128_ADD", nodecl.}
proc lo(a: U128): uint64 {.importc: "(unsigned long long)", nodecl.}
proc shr44(a: U128): uint64 {.importc: "NEXPO_U128_SHR44", nodecl.}
proc shr42(a: U128): uint64 {.importc: "NEXPO_U128_SHR42", nodecl.}
{.emit: """/*TYPESECTION*/
#define NEXPO_U128_ADD(a, b) ((nexpo_u128)(a) + (b))
#define NEXPO_U128_SHR44(a) ((unsigned long long)((a) >> 44))
#define NEXPO_U128_SHR42(a) ((unsigned long long)((a) >> 42))
""".}

const
  mask44 = (1'u64 shl 44) - 1
  mask42 = (1'u64 shl 42) - 1

type Poly1305* = object
  r0, r1, r2, s1, s2: uint64
  h0, h1, h2: uint64
  pad0, pad1: uint64
  wide: bool                          ## use the 4-way AVX2 / 8-way AVX-512 path for long runs
  wider: bool                         ## the active path is AVX-512: 8 blocks per step
  ifma: bool                          ## ... with IFMA: 16 blocks per step in 44-bit limbs
  havePowers: bool
  powers: array[8, array[5, uint64]]  ## r^1 .. r^8 in 26-bit limbs (vector paths)
  ifmaLanes: array[2, array[3, array[8, uint64]]]  ## r^1 .. r^16 in the IFMA path's lane order

proc le64(p: ptr UncheckedArray[byte], i: int): uint64 {.inline.} =
  var v = 0'u64
  for k in countdown(7, 0): v = (v shl 8) or uint64(p[i + k])
  v

proc init*(st: var Poly1305, key: ptr UncheckedArray[byte], wide = false) =
  ## key = r ‖ s (32 bytes); r is clamped as RFC 8439 §2.5 prescribes. `wide` enables the
  ## AVX2 path (the caller checks the CPU).
  let t0 = le64(key, 0)
  let t1 = le64(key, 8)
  st.r0 = t0 and 0xffc0fffffff'u64
  st.r1 = ((t0 shr 44) or (t1 shl 20)) and 0xfffffc0ffff'u64
  st.r2 = (t1 shr 24) and 0x00ffffffc0f'u64
  st.s1 = st.r1 * (5 shl 2)
  st.s2 = st.r2 * (5 shl 2)
  st.h0 = 0; st.h1 = 0; st.h2 = 0
  st.pad0 = le64(key, 16)
  st.pad1 = le64(key, 24)
  st.wide = wide
  when x86SimdEnabled:
    st.wider = wide and activeIsa() == isaAvx512
    st.ifma = st.wider and useIfma()
  st.havePowers = false

proc scalarBlocks(st: var Poly1305, m: ptr UncheckedArray[byte], nblocks: int, hibit: uint64) =
  ## Absorb `nblocks` 16-byte blocks; `hibit` is the 2^128 bit (0 only for a padded final block).
  let (r0, r1, r2, s1, s2) = (st.r0, st.r1, st.r2, st.s1, st.s2)
  var (h0, h1, h2) = (st.h0, st.h1, st.h2)
  for b in 0 ..< nblocks:
    let t0 = le64(m, 16 * b)
    let t1 = le64(m, 16 * b + 8)
    h0 += t0 and mask44
    h1 += ((t0 shr 44) or (t1 shl 20)) and mask44
    h2 += ((t1 shr 24) and mask42) or hibit
    let d0 = mul(h0, r0) + mul(h1, s2) + mul(h2, s1)
    var d1 = mul(h0, r1) + mul(h1, r0) + mul(h2, s2)
    var d2 = mul(h0, r2) + mul(h1, r1) + mul(h2, r0)
    var c = shr44(d0)
    h0 = lo(d0) and mask44
    d1 = d1 + c
    c = shr44(d1)
    h1 = lo(d1) and mask44
    d2 = d2 + c
    c = shr42(d2)
    h2 = lo(d2) and mask42
    h0 += c * 5
    c = h0 shr 44
    h0 = h0 and mask44
    h1 += c
  st.h0 = h0; st.h1 = h1; st.h2 = h2

type Limbs44 = array[3, uint64]

proc fieldMul(a, b: Limbs44): Limbs44 {.inline.} =
  ## a·b mod 2^130 - 5 on loose 44/44/42-bit limbs (each may exceed its width a little).
  let s1 = b[1] * 20
  let s2 = b[2] * 20
  let d0 = mul(a[0], b[0]) + mul(a[1], s2) + mul(a[2], s1)
  var d1 = mul(a[0], b[1]) + mul(a[1], b[0]) + mul(a[2], s2)
  var d2 = mul(a[0], b[2]) + mul(a[1], b[1]) + mul(a[2], b[0])
  var c = shr44(d0)
  result[0] = lo(d0) and mask44
  d1 = d1 + c
  c = shr44(d1)
  result[1] = lo(d1) and mask44
  d2 = d2 + c
  c = shr42(d2)
  result[2] = lo(d2) and mask42
  result[0] += c * 5
  c = result[0] shr 44
  result[0] = result[0] and mask44
  result[1] += c

proc to26(a: Limbs44): array[5, uint64] =
  ## Loose 44-bit limbs → loose 26-bit limbs of the same value (additions, no masking loss).
  result[0] = a[0] and ((1'u64 shl 26) - 1)
  result[1] = (a[0] shr 26) + ((a[1] and 0xff'u64) shl 18)
  result[2] = (a[1] shr 8) and ((1'u64 shl 26) - 1)
  result[3] = (a[1] shr 34) + ((a[2] and 0xffff'u64) shl 10)
  result[4] = a[2] shr 16

proc from26(l: array[5, uint64]): Limbs44 =
  ## Loose 26-bit limbs (each < 2^30) → loose 44-bit limbs, carried.
  var a0 = l[0] + ((l[1] and ((1'u64 shl 18) - 1)) shl 26)
  var a1 = (l[1] shr 18) + (l[2] shl 8) + ((l[3] and 0x3ff'u64) shl 34)
  var a2 = (l[3] shr 10) + (l[4] shl 16)
  a1 += a0 shr 44; a0 = a0 and mask44
  a2 += a1 shr 44; a1 = a1 and mask44
  let c = a2 shr 42; a2 = a2 and mask42
  a0 += c * 5
  a1 += a0 shr 44; a0 = a0 and mask44
  [a0, a1, a2]

when x86SimdEnabled:
  proc ifmaPowers(st: var Poly1305) =
    ## r^1 .. r^16 for the IFMA path: r^2, r^3, r^4, r^8 here (a chain three deep), the rest
    ## as vector products.
    var p: array[5, Limbs44]
    p[0] = [st.r0, st.r1, st.r2]
    p[1] = fieldMul(p[0], p[0])
    p[2] = fieldMul(p[1], p[0])
    p[3] = fieldMul(p[1], p[1])
    p[4] = fieldMul(p[3], p[3])
    ifmaLanesOf(p[0], p[1], p[2], p[3], p[4], st.ifmaLanes)
    wipe(p)

proc blocks*(st: var Poly1305, m: ptr UncheckedArray[byte], nblocks: int, hibit: uint64 = 1'u64 shl 40) =
  ## Absorb `nblocks` 16-byte blocks; `hibit` is the 2^128 bit (0 only for a padded final block).
  ## Long runs of full blocks go through the vector paths when enabled: IFMA (16 blocks per
  ## step), AVX-512 (8) or AVX2 (4).
  var done = 0
  when x86SimdEnabled:
    if st.ifma and hibit != 0 and nblocks >= 16:   # one pair of 8-block groups: the powers are cheap here
      if not st.havePowers:
        st.ifmaPowers()
        st.havePowers = true
      var h: Limbs44 = [st.h0, st.h1, st.h2]
      polyGroupsIfma(h, st.ifmaLanes, m, nblocks div 8)
      done = 8 * (nblocks div 8)
      st.h0 = h[0]; st.h1 = h[1]; st.h2 = h[2]
      wipe(h)
    elif st.wide and hibit != 0 and nblocks >= 32:
      if not st.havePowers:
        let r: Limbs44 = [st.r0, st.r1, st.r2]
        var p = r
        for k in 0 ..< 8:
          st.powers[k] = to26(p)
          p = fieldMul(p, r)
        st.havePowers = true
      var h = to26([st.h0, st.h1, st.h2])
      if st.wider:
        polyGroupsAvx512(h, st.powers, m, nblocks div 8)
        done = 8 * (nblocks div 8)
      else:
        var p4: Powers26
        for k in 0 ..< 4: p4[k] = st.powers[k]
        polyGroupsAvx2(h, p4, m, nblocks div 4)
        wipe(p4)
        done = 4 * (nblocks div 4)
      let back = from26(h)
      st.h0 = back[0]; st.h1 = back[1]; st.h2 = back[2]
      wipe(h)
  if done < nblocks:
    st.scalarBlocks(cast[ptr UncheckedArray[byte]](m[16 * done].addr), nblocks - done, hibit)

proc update*(st: var Poly1305, m: ptr UncheckedArray[byte], len: int, padTo16: bool) =
  ## Absorb `len` bytes. A partial last block is zero-padded to 16 bytes: as a full block
  ## (padTo16, the AEAD's pad16) or with the RFC's 0x01 terminator (a plain Poly1305 message).
  let full = len div 16
  if full > 0: st.blocks(m, full)
  let rest = len - 16 * full
  if rest > 0:
    var t: array[16, byte]
    copyMem(t[0].addr, m[16 * full].addr, rest)
    if padTo16:
      st.blocks(cast[ptr UncheckedArray[byte]](t[0].addr), 1)
    else:
      t[rest] = 1
      st.blocks(cast[ptr UncheckedArray[byte]](t[0].addr), 1, 0)
    wipe(t)

proc finish*(st: var Poly1305, tag: ptr UncheckedArray[byte]) =
  ## tag = (h mod p + s) mod 2^128, little-endian; then wipes the state.
  var (h0, h1, h2) = (st.h0, st.h1, st.h2)
  var c = h1 shr 44; h1 = h1 and mask44
  h2 += c; c = h2 shr 42; h2 = h2 and mask42
  h0 += c * 5; c = h0 shr 44; h0 = h0 and mask44
  h1 += c; c = h1 shr 44; h1 = h1 and mask44
  h2 += c; c = h2 shr 42; h2 = h2 and mask42
  h0 += c * 5; c = h0 shr 44; h0 = h0 and mask44
  h1 += c
  # g = h + 5 - 2^130; keep g when it did not go negative (h >= p), by mask.
  var g0 = h0 + 5; c = g0 shr 44; g0 = g0 and mask44
  var g1 = h1 + c; c = g1 shr 44; g1 = g1 and mask44
  var g2 = h2 + c - (1'u64 shl 42)
  let keepG = (g2 shr 63) - 1   # all ones when g2 >= 0
  g0 = g0 and keepG; g1 = g1 and keepG; g2 = g2 and keepG
  h0 = (h0 and not keepG) or g0
  h1 = (h1 and not keepG) or g1
  h2 = (h2 and not keepG) or g2
  let t0 = st.pad0
  let t1 = st.pad1
  h0 += t0 and mask44; c = h0 shr 44; h0 = h0 and mask44
  h1 += (((t0 shr 44) or (t1 shl 20)) and mask44) + c; c = h1 shr 44; h1 = h1 and mask44
  h2 += ((t1 shr 24) and mask42) + c; h2 = h2 and mask42
  let out0 = h0 or (h1 shl 44)
  let out1 = (h1 shr 20) or (h2 shl 24)
  for i in 0 ..< 8:
    tag[i] = byte(out0 shr (8 * i))
    tag[8 + i] = byte(out1 shr (8 * i))
  wipe(st)

proc join*(st: var Poly1305, tail: Poly1305, tailBlocks: int) =
  ## Poly1305 is a polynomial in r, so a message can be split: `st` absorbed the head, `tail`
  ## (same key, fresh accumulator) the next `tailBlocks` blocks; st.h becomes h·r^tailBlocks +
  ## tail.h, as if `st` had absorbed both. `tailBlocks` is public (a length): the square-and-
  ## multiply branches on it, never on the key.
  let r: Limbs44 = [st.r0, st.r1, st.r2]
  var power: Limbs44 = [1'u64, 0, 0]
  var base = r
  var e = tailBlocks
  while e > 0:
    if (e and 1) == 1: power = fieldMul(power, base)
    base = fieldMul(base, base)
    e = e shr 1
  let h = fieldMul([st.h0, st.h1, st.h2], power)
  st.h0 = h[0] + tail.h0
  st.h1 = h[1] + tail.h1
  st.h2 = h[2] + tail.h2
  wipe(power)
  wipe(base)

proc poly1305Mac*(key, msg: ptr UncheckedArray[byte], len: int, tag: ptr UncheckedArray[byte]) =
  var st: Poly1305
  st.init(key)
  st.update(msg, len, padTo16 = false)
  st.finish(tag)
