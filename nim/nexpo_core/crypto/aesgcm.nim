## AES-256-GCM (NIST SP 800-38D, 96-bit nonces, 128-bit tags): the front file. Picks the
## variant per call from the active ISA path and the CPU's AES extensions:
##
## ==========  ==========================================  ============================
## variant     needs                                       chosen when `activeIsa()` is
## ==========  ==========================================  ============================
## VAES        VAES + VPCLMULQDQ on zmm (AVX-512)          isaAvx512
## AES-NI      AES-NI + PCLMULQDQ                          isaAvx2, or isaAvx512 w/o VAES
## portable    nothing (bitsliced S-box, no tables)        isaPortable, or no AES-NI
## ==========  ==========================================  ============================
##
## so `NEXPO_ISA` forces each variant in turn. Keys are expanded once (`initKey`) into a plain
## `AesGcmKey` that every variant reads the same way; callers wipe it when done.
##
## Properties:
## - `open` writes the plaintext, then compares tags in constant time; on a mismatch it wipes
##   the plaintext it wrote and returns false
## - at most `gcmMaxPlaintext` (2^36 - 32) bytes per message (the 32-bit block counter)
## - on VAES, long messages (`splitMin` and up, two or more threads) run as two halves on two
##   threads: GHASH is a polynomial in H, so the halves' hashes join as y_head·H^n_tail ⊕ y_tail

import ../config, ../cpu
import ../runtime/scheduler
import ./ct
import ./aes/[aes_common, aes_portable]
when x86SimdEnabled:
  import ./aes/[aes_ni, aes_vaes]
export AesGcmKey, gcmMaxPlaintext

const
  aesKeyLen* = 32
  gcmNonceLen* = 12
  gcmTagLen* = 16

type AesImpl* = enum
  gcmPortable = "portable"
  gcmAesNi = "aes-ni"
  gcmVaes = "vaes"

proc aesImplOf*(): AesImpl =
  ## The variant the active ISA path allows on this CPU.
  when x86SimdEnabled:
    let isa = activeIsa()
    if isa == isaAvx512 and hasVaes(): return gcmVaes
    if isa >= isaAvx2 and hasAesNi(): return gcmAesNi
  gcmPortable

proc initKey*(impl: AesImpl, key: var AesGcmKey, secret: Bytes) =
  ## Round keys and GHASH powers of a 32-byte key.
  when x86SimdEnabled:
    if impl != gcmPortable:
      initNi(key, secret)
      return
  initPortable(key, secret)

const splitMin = 256 * 1024   ## below this a fork-join costs more than half the work

when x86SimdEnabled:
  type HalvesJob = object
    key: ptr AesGcmKey
    nonce, src, dst: Bytes
    mid, len: int
    decrypting: bool
    ys: array[2, U128]       ## ys[0] starts as the hash of the AAD; ys[1] from zero

  proc halfRange(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
    let job = cast[ptr HalvesJob](ctx)
    for half in lo ..< hi:
      let first = if half == 0: 0 else: job.mid
      let last = if half == 0: job.mid else: job.len
      job.ys[half] = ctrGhashVaes(job.key[], job.nonce, uint32(2 + first div 16), job.ys[half],
                                  cast[Bytes](job.src[first].addr), cast[Bytes](job.dst[first].addr),
                                  last - first, job.decrypting)

  proc hPower(key: AesGcmKey, n: int): U128 =
    ## H^n (n >= 1) in the key's POLYVAL form; n is public (a length).
    var base = key.hrev[gcmPowers - 1]
    result = base
    var e = n - 1
    while e > 0:
      if (e and 1) == 1: result = dotU128(result, base)
      base = dotU128(base, base)
      e = e shr 1

  proc gcmVaesHalves(key: AesGcmKey, nonce, aad: Bytes, aadLen: int, src, dst: Bytes, len: int,
                     tag: Bytes, decrypting: bool) =
    var job = HalvesJob(key: key.unsafeAddr, nonce: nonce, src: src, dst: dst, len: len,
                        mid: (len div 2) and not 511, decrypting: decrypting)
    job.ys[0] = ghashVaes(key, U128(), aad, aadLen)
    parallelFor(0, 2, 1, halfRange, job.addr)
    let tailBlocks = (len - job.mid + 15) div 16
    let y = dotU128(job.ys[0], hPower(key, tailBlocks)) xor job.ys[1]
    tagVaes(key, nonce, y, aadLen, len, tag)
    wipe(job.ys)

proc splits(impl: AesImpl, len: int): bool {.inline.} =
  impl == gcmVaes and len >= splitMin and numThreads() >= 2

proc seal*(impl: AesImpl, key: AesGcmKey, nonce, plaintext: Bytes, len: int, aad: Bytes,
           aadLen: int, output: Bytes) =
  ## output[0..len) = ciphertext, output[len..len+16) = tag.
  let tag = cast[Bytes](output[len].addr)
  when x86SimdEnabled:
    if splits(impl, len):
      gcmVaesHalves(key, nonce, aad, aadLen, plaintext, output, len, tag, decrypting = false)
      return
    case impl
    of gcmVaes: sealVaes(key, nonce, aad, aadLen, plaintext, output, len, tag); return
    of gcmAesNi: sealNi(key, nonce, aad, aadLen, plaintext, output, len, tag); return
    of gcmPortable: discard
  sealPortable(key, nonce, aad, aadLen, plaintext, output, len, tag)

proc open*(impl: AesImpl, key: AesGcmKey, nonce, data: Bytes, len: int, aad: Bytes,
           aadLen: int, output: Bytes): bool =
  ## data = ciphertext ‖ tag (len >= 16). Writes len - 16 bytes of plaintext to `output` and
  ## returns true only when the tag is authentic; otherwise `output` is wiped.
  let ctLen = len - gcmTagLen
  var tag: array[16, byte]
  let t = cast[Bytes](tag[0].addr)
  block run:
    when x86SimdEnabled:
      if splits(impl, ctLen):
        gcmVaesHalves(key, nonce, aad, aadLen, data, output, ctLen, t, decrypting = true)
        break run
      case impl
      of gcmVaes: openVaes(key, nonce, aad, aadLen, data, output, ctLen, t); break run
      of gcmAesNi: openNi(key, nonce, aad, aadLen, data, output, ctLen, t); break run
      of gcmPortable: discard
    openPortable(key, nonce, aad, aadLen, data, output, ctLen, t)
  result = ctEqual(t, cast[Bytes](data[ctLen].addr), gcmTagLen)
  wipe(tag)
  if not result: wipe(output, ctLen)
