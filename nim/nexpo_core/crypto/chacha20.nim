## ChaCha20 (RFC 8439 §2.4): the front file. Picks the widest path the active ISA allows per
## call — AVX-512 (16 blocks at once), AVX2 (8 blocks) or portable (1 block) — for the bulk of
## the message; the tail always goes through the portable block function.
##
## Properties:
## - every path produces the same keystream: tests compare them on each ISA (`NEXPO_ISA`)
## - the counter is 32 bits (RFC 8439): callers keep messages under 2^32 blocks

import ../config, ../cpu
import ./chacha20_generic
when x86SimdEnabled:
  import ./chacha20_avx2, ./chacha20_avx512
export ChaChaInput, chachaInput, chachaBlock, loadLe32, storeLe32

proc chacha20Xor*(isa: Isa, input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], len: int) =
  ## dst[0..len) = src ⊕ keystream from counter input[12]; `src` may equal `dst`.
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
