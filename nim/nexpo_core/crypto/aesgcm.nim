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

import ../config, ../cpu
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

proc seal*(impl: AesImpl, key: AesGcmKey, nonce, plaintext: Bytes, len: int, aad: Bytes,
           aadLen: int, output: Bytes) =
  ## output[0..len) = ciphertext, output[len..len+16) = tag.
  let tag = cast[Bytes](output[len].addr)
  when x86SimdEnabled:
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
      case impl
      of gcmVaes: openVaes(key, nonce, aad, aadLen, data, output, ctLen, t); break run
      of gcmAesNi: openNi(key, nonce, aad, aadLen, data, output, ctLen, t); break run
      of gcmPortable: discard
    openPortable(key, nonce, aad, aadLen, data, output, ctLen, t)
  result = ctEqual(t, cast[Bytes](data[ctLen].addr), gcmTagLen)
  wipe(tag)
  if not result: wipe(output, ctLen)
