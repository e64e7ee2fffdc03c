## SHA-512 (FIPS 180-4): the front file. `sha512ImplOf()` picks the compression function (x86
## has no SHA-512 instructions before Arrow Lake's SHA512 extension: the rounds are scalar on
## every path) and the rest adds buffering, padding and the one-shot hasher on top.
##
## ::
##
##   sha512.nim ── Sha512Impl, sha512ImplOf(); Sha512Ctx init/update/finish, one-shot
##        │ compress(impl, ...)
##        ├── sha512/sha512_generic.nim   portable C, any CPU
##        ├── sha512/sha512_avx2.nim      rorx rounds, SSE message schedule one block ahead
##        └── sha512/sha512_avx512.nim    rorx rounds in a 16-round loop, ymm schedule of two
##                                        blocks at once (vprorq, vpternlogq), 16 rounds ahead
##
## Properties:
## - `Sha512Ctx` is a plain value (no heap): copying it forks the hash
## - `finish` does not change the context, so a digest can be taken mid-stream
## - the message length is kept in bytes (uint64): FIPS 180-4's 128-bit bit count is formed
##   from it at the end, so any input a 64-bit process can hold is hashed correctly

import ../config, ../cpu
import ./sha512/[sha512_generic, sha512_avx2, sha512_avx512]
import ./block_buffer

export Sha512State, sha512Iv

type
  Sha512Impl* = enum
    sha512ViaGeneric  ## compressGeneric
    sha512ViaAvx2     ## compressAvx2 (x86, `cpu.activeIsa() == isaAvx2`)
    sha512ViaAvx512   ## compressAvx512 (x86, `cpu.activeIsa() == isaAvx512`)

  Sha512Ctx* = object
    state*: Sha512State
    buf*: array[128, byte]
    bufLen*: int       ## bytes waiting in `buf`, 0..127
    total*: uint64     ## bytes absorbed so far

  Digest512* = array[64, byte]

const sha512DigestSize* = 64
const sha512BlockSize* = 128

proc sha512ImplOf*(): Sha512Impl {.inline.} =
  ## The one place the SHA-512 path is chosen.
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: return sha512ViaAvx512
    of isaAvx2: return sha512ViaAvx2
    of isaPortable: discard
  sha512ViaGeneric

proc compress(impl: Sha512Impl, state: var Sha512State, data: ptr UncheckedArray[byte],
              nblocks: int) {.inline.} =
  when x86SimdEnabled:
    case impl
    of sha512ViaAvx512: compressAvx512(state, data, nblocks); return
    of sha512ViaAvx2: compressAvx2(state, data, nblocks); return
    of sha512ViaGeneric: discard
  compressGeneric(state, data, nblocks)

proc init*(ctx: var Sha512Ctx) {.inline.} =
  ctx.state = sha512Iv
  ctx.bufLen = 0
  ctx.total = 0

proc update*(ctx: var Sha512Ctx, impl: Sha512Impl, data: ptr UncheckedArray[byte], len: int) =
  absorb(ctx, impl, data, len)

proc finish*(ctx: Sha512Ctx, impl: Sha512Impl, output: ptr UncheckedArray[byte]) =
  ## Write the digest of everything absorbed to output[0..64); `ctx` is left as it was.
  var state: Sha512State
  padInto(ctx, impl, state)
  for i in 0 ..< 8: storeBe64(output, 8 * i, state[i])

proc sha512*(impl: Sha512Impl, data: ptr UncheckedArray[byte], len: int,
             output: ptr UncheckedArray[byte]) {.inline.} =
  var ctx: Sha512Ctx
  ctx.init()
  ctx.update(impl, data, len)
  ctx.finish(impl, output)

proc sha512*(data: openArray[byte]): Digest512 =
  ## Convenience for Nim callers and tests.
  var ctx: Sha512Ctx
  let impl = sha512ImplOf()
  ctx.init()
  if data.len > 0: ctx.update(impl, cast[ptr UncheckedArray[byte]](data[0].unsafeAddr), data.len)
  ctx.finish(impl, cast[ptr UncheckedArray[byte]](result[0].addr))
