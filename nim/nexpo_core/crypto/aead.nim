## ChaCha20-Poly1305 AEAD (RFC 8439 §2.8).
##
## ::
##
##   otk        = ChaCha20(key, nonce, counter 0)[0..32)           one-time Poly1305 key
##   ciphertext = plaintext ⊕ ChaCha20(key, nonce, counter 1...)
##   tag        = Poly1305(otk, aad ‖ pad16 ‖ ciphertext ‖ pad16 ‖ le64(|aad|) ‖ le64(|ct|))
##
## Properties:
## - decryption checks the tag (in constant time) before it writes any plaintext: on a
##   mismatch the output buffer is never touched
## - the one-time key, the Poly1305 state and the keystream are wiped before returning
## - at most 2^32 - 1 blocks of keystream after the one-time key: 274,877,906,880 bytes

import ../cpu, ../errors
import ./chacha20, ./poly1305, ./ct

const
  keyLen* = 32
  nonceLen* = 12
  tagLen* = 16
  maxPlaintext* = (int64(high(uint32))) * 64

proc computeTag(isa: Isa, otk: ptr UncheckedArray[byte], aad: ptr UncheckedArray[byte], aadLen: int,
                ct: ptr UncheckedArray[byte], ctLen: int, tag: ptr UncheckedArray[byte]) =
  var mac: Poly1305
  mac.init(otk, wide = isa >= isaAvx2)
  mac.update(aad, aadLen, padTo16 = true)
  mac.update(ct, ctLen, padTo16 = true)
  var lens: array[16, byte]
  for i in 0 ..< 8:
    lens[i] = byte(uint64(aadLen) shr (8 * i))
    lens[8 + i] = byte(uint64(ctLen) shr (8 * i))
  mac.blocks(cast[ptr UncheckedArray[byte]](lens[0].addr), 1)
  mac.finish(tag)

proc oneTimeKey(key, nonce: ptr UncheckedArray[byte], otk: var array[64, byte]) =
  var blk: array[16, uint32]
  chachaBlock(chachaInput(key, nonce, 0), blk)
  for i in 0 ..< 16: storeLe32(cast[ptr UncheckedArray[byte]](otk[0].addr), 4 * i, blk[i])
  wipe(blk)

proc seal*(isa: Isa, key, nonce, plaintext: ptr UncheckedArray[byte], len: int,
           aad: ptr UncheckedArray[byte], aadLen: int, output: ptr UncheckedArray[byte]) =
  ## output[0..len) = ciphertext, output[len..len+16) = tag.
  var otk: array[64, byte]
  oneTimeKey(key, nonce, otk)
  var input = chachaInput(key, nonce, 1)
  chacha20Xor(isa, input, plaintext, output, len)
  computeTag(isa, cast[ptr UncheckedArray[byte]](otk[0].addr), aad, aadLen, output, len,
             cast[ptr UncheckedArray[byte]](output[len].addr))
  wipe(otk)
  wipe(input)

proc open*(isa: Isa, key, nonce, data: ptr UncheckedArray[byte], len: int,
           aad: ptr UncheckedArray[byte], aadLen: int, output: ptr UncheckedArray[byte]): bool =
  ## data = ciphertext ‖ tag (len >= 16). Writes len - 16 bytes of plaintext to `output` and
  ## returns true only when the tag is authentic; otherwise `output` is left untouched.
  let ctLen = len - tagLen
  var otk: array[64, byte]
  oneTimeKey(key, nonce, otk)
  var tag: array[16, byte]
  computeTag(isa, cast[ptr UncheckedArray[byte]](otk[0].addr), aad, aadLen, data, ctLen,
             cast[ptr UncheckedArray[byte]](tag[0].addr))
  wipe(otk)
  result = ctEqual(cast[ptr UncheckedArray[byte]](tag[0].addr),
                   cast[ptr UncheckedArray[byte]](data[ctLen].addr), tagLen)
  wipe(tag)
  if result:
    var input = chachaInput(key, nonce, 1)
    chacha20Xor(isa, input, data, output, ctLen)
    wipe(input)
