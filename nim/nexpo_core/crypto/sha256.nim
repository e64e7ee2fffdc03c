## SHA-256 (FIPS 180-4): the front file. `implOf()` is the one place the SHA-256 path is chosen
## (from `cpu.activeIsa()` and `cpu.useShaNi()`); everything below takes that choice as an
## argument. Adds buffering, padding and the one-shot and batched hashers on top.
##
## ::
##
##   sha256.nim ── Sha256Impl, implOf(); Sha256Ctx init/update/finish, one-shot
##        │ compress(impl, ...)
##        ├── sha256/sha256_generic.nim    portable C, any CPU
##        ├── sha256/sha256_x86_shani.nim  SHA-NI, 1 stream or 2 interleaved (`shanifn` procs)
##        └── sha256/sha256_avx512.nim     16 messages at once (batches only: many, merkle)
##
##   implOf()          one message   equal-length neighbours in a batch
##   implPortable      portable      one at a time
##   implShaNi         SHA-NI        pairs (interleaved)
##   implLanes16       portable      runs of 16 (AVX-512 active; no SHA-NI, or switched off)
##   implLanes16ShaNi  SHA-NI        runs of 16, then pairs
##
## Properties:
## - `Sha256Ctx` is a plain value (no heap): copying it forks the hash
## - `finish` does not change the context, so a digest can be taken mid-stream
## - `implOf()` is read once per export call; batch paths pass the choice down

import ../config, ../cpu
import ./sha256/sha256_generic, ./ct, ./block_buffer
when x86SimdEnabled:
  import ./sha256/sha256_x86_shani

export Sha256State, sha256Iv, storeBe32, padTail

type
  Sha256Impl* = enum
    implPortable      ## sha256_generic.nim
    implShaNi         ## sha256_x86_shani.nim
    implLanes16       ## AVX-512 16-lane batches, portable compression otherwise
    implLanes16ShaNi  ## AVX-512 16-lane batches, SHA-NI otherwise

  Sha256Ctx* = object
    state*: Sha256State
    buf*: array[64, byte]
    bufLen*: int       ## bytes waiting in `buf`, 0..63
    total*: uint64     ## bytes absorbed so far

  Digest* = array[32, byte]

const digestSize* = 32
const blockSize* = 64

proc usesShaNi*(impl: Sha256Impl): bool {.inline.} = impl in {implShaNi, implLanes16ShaNi}
proc hasLanes16*(impl: Sha256Impl): bool {.inline.} = impl in {implLanes16, implLanes16ShaNi}

proc implOf*(): Sha256Impl {.inline.} =
  ## The SHA-256 path for this call. The 16-lane batches need the AVX-512 path active, SHA-NI
  ## needs the CPU's SHA extensions (not switched off): the two choices are independent.
  when x86SimdEnabled:
    let shaNi = useShaNi()
    if activeIsa() == isaAvx512:
      return if shaNi: implLanes16ShaNi else: implLanes16
    if shaNi: return implShaNi
  implPortable

proc compress*(impl: Sha256Impl, state: var Sha256State, data: ptr UncheckedArray[byte],
               nblocks: int) {.inline.} =
  when x86SimdEnabled:
    if impl.usesShaNi:
      compressShaNi(state, data, nblocks)
      return
  compressGeneric(state, data, nblocks)

proc init*(ctx: var Sha256Ctx) {.inline.} =
  ctx.state = sha256Iv
  ctx.bufLen = 0
  ctx.total = 0

proc update*(ctx: var Sha256Ctx, impl: Sha256Impl, data: ptr UncheckedArray[byte], len: int) =
  absorb(ctx, impl, data, len)

proc update*(ctx: var Sha256Ctx, impl: Sha256Impl, data: openArray[byte]) {.inline.} =
  if data.len > 0: update(ctx, impl, cast[ptr UncheckedArray[byte]](data[0].unsafeAddr), data.len)

proc finish*(ctx: Sha256Ctx, impl: Sha256Impl, output: ptr UncheckedArray[byte]) =
  ## Write the digest of everything absorbed to output[0..32); `ctx` is left as it was.
  var state: Sha256State
  padInto(ctx, impl, state)
  for i in 0 ..< 8: storeBe32(output, 4 * i, state[i])

proc sha256*(impl: Sha256Impl, data: ptr UncheckedArray[byte], len: int,
             output: ptr UncheckedArray[byte]) {.inline.} =
  var ctx: Sha256Ctx
  ctx.init()
  ctx.update(impl, data, len)
  ctx.finish(impl, output)

proc sha256*(data: openArray[byte]): Digest =
  ## Convenience for Nim callers and tests.
  var ctx: Sha256Ctx
  let impl = implOf()
  ctx.init()
  ctx.update(impl, data)
  ctx.finish(impl, cast[ptr UncheckedArray[byte]](result[0].addr))

proc sha256TwoFrom*(impl: Sha256Impl, iv: Sha256State, prior: uint64,
                    a, b: ptr UncheckedArray[byte], len: int, outA, outB: ptr UncheckedArray[byte]) =
  ## Finish two messages of the same length `len`, both continuing from `iv` after `prior`
  ## bytes (a multiple of 64). With SHA-NI the two streams run interleaved.
  when x86SimdEnabled:
    if impl.usesShaNi:
      var sa = iv
      var sb = iv
      let full = len div 64
      if full > 0: compressShaNi2(sa, sb, a, b, full)
      var ta, tb: array[128, byte]
      let rest = len - 64 * full
      if rest > 0:
        copyMem(ta[0].addr, a[64 * full].addr, rest)
        copyMem(tb[0].addr, b[64 * full].addr, rest)
      let blocks = padTail(ta, rest, prior + uint64(len))
      discard padTail(tb, rest, prior + uint64(len))
      compressShaNi2(sa, sb, cast[ptr UncheckedArray[byte]](ta[0].addr),
                     cast[ptr UncheckedArray[byte]](tb[0].addr), blocks)
      for i in 0 ..< 8:
        storeBe32(outA, 4 * i, sa[i])
        storeBe32(outB, 4 * i, sb[i])
      # `iv` may be an HMAC key's pad state: leave no copy of it behind
      wipe(sa); wipe(sb); wipe(ta); wipe(tb)
      return
  var ctx = Sha256Ctx(state: iv, total: prior)
  ctx.update(impl, a, len)
  ctx.finish(impl, outA)
  ctx = Sha256Ctx(state: iv, total: prior)
  ctx.update(impl, b, len)
  ctx.finish(impl, outB)
  wipe(ctx)

proc sha256From*(impl: Sha256Impl, iv: Sha256State, prior: uint64, data: ptr UncheckedArray[byte],
                 len: int, output: ptr UncheckedArray[byte]) {.inline.} =
  var ctx = Sha256Ctx(state: iv, total: prior)
  ctx.update(impl, data, len)
  ctx.finish(impl, output)
  wipe(ctx)   # `iv` may be an HMAC key's pad state
