## ChaCha20 (RFC 8439 §2.4): the front file. Picks the widest path the active ISA allows per
## call — AVX-512 (16 blocks at once), AVX2 (8 blocks) or portable (1 block) — for the bulk of
## the message; a rest of two blocks or more takes one more vector step (through a stack
## buffer), a last single block the portable block function.
##
## Properties:
## - every path produces the same keystream: tests compare them on each ISA (`NEXPO_ISA`)
## - the counter is 32 bits (RFC 8439): callers keep messages under 2^32 blocks

import ../config, ../cpu
import ../runtime/scheduler
import ./chacha20/chacha20_generic, ./ct
when x86SimdEnabled:
  import ./chacha20/chacha20_avx2, ./chacha20/chacha20_avx512
export ChaChaInput, chachaInput, chachaBlock, loadLe32, storeLe32

proc xorSerial*(isa: Isa, input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], len: int) =
  ## dst[0..len) = src ⊕ keystream from counter input[12]; `src` may equal `dst`. On the
  ## calling thread only (for callers that already split the work).
  when x86SimdEnabled:
    case isa
    of isaAvx512:
      chachaXorAvx512(input, src, dst, len)
      return
    of isaAvx2:
      chachaXorAvx2(input, src, dst, len)
      return
    of isaPortable: discard
  chachaXorGeneric(input, src, dst, len)

proc xorWithKeyBlock*(isa: Isa, input: var ChaChaInput, src, dst: ptr UncheckedArray[byte],
                      len: int, blk0: var array[16, uint32]): bool =
  ## `xorSerial`, and blk0 = the block function at counter input[12] - 1 made alongside, when
  ## the active path can do that for free (AVX-512, len >= 1 KiB); false (nothing done) if not.
  when x86SimdEnabled:
    if isa == isaAvx512 and len >= 1024:
      chachaXorAvx512(input, src, dst, len, blk0.addr)
      return true
  false

const chunkBytes = 64 * 1024  ## keystream per parallel task; a multiple of every path's width

type XorJob = object
  isa: Isa
  input: ChaChaInput
  src, dst: ptr UncheckedArray[byte]
  len: int

proc xorRange(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  ## Chunks [lo, hi): each starts its own counter at input[12] + chunk·(chunkBytes / 64).
  let job = cast[ptr XorJob](ctx)
  var input = job.input
  input[12] += uint32(lo * (chunkBytes div 64))
  let first = lo * chunkBytes
  let last = min(hi * chunkBytes, job.len)
  xorSerial(job.isa, input, cast[ptr UncheckedArray[byte]](job.src[first].addr),
            cast[ptr UncheckedArray[byte]](job.dst[first].addr), last - first)

proc chacha20Xor*(isa: Isa, input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], len: int) =
  ## dst[0..len) = src ⊕ keystream from counter input[12]; `src` may equal `dst`. Long
  ## messages are split into 64 KiB chunks spread over the scheduler's workers.
  if len < 2 * chunkBytes or numThreads() < 2:
    xorSerial(isa, input, src, dst, len)
    return
  var job = XorJob(isa: isa, input: input, src: src, dst: dst, len: len)
  let chunks = (len + chunkBytes - 1) div chunkBytes
  parallelFor(0, chunks, 1, xorRange, job.addr)
  input[12] += uint32((len + 63) div 64)
  wipe(job.input)
