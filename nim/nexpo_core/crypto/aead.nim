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
## - short messages (up to 960 B on AVX-512, 448 B on AVX2) take the one-time key and all their
##   keystream from one vector step from counter 0, in a wiped stack buffer
## - longer ones on AVX-512 (one thread) make the one-time key block alongside the first
##   kilobyte's keystream (`xorWithKeyBlock`); decryption keeps that kilobyte of plaintext in a
##   wiped stack buffer until the tag is checked
## - long messages (`splitMin` and up, with two or more threads) are split in two at a 64-byte
##   boundary: each half is encrypted and authenticated on its own thread, and the two Poly1305
##   accumulators are joined (h = h_head·r^n_tail + h_tail); decryption authenticates both
##   halves in parallel first, then decrypts in parallel

import ../cpu, ../errors
import ../runtime/scheduler
import ./chacha20, ./poly1305, ./ct

const
  keyLen* = 32
  nonceLen* = 12
  tagLen* = 16
  maxPlaintext* = (int64(high(uint32))) * 64

const splitMin = 256 * 1024   ## below this the two fork-joins cost more than they save
const serialMax = 128 * 1024  ## from here `chacha20Xor` spreads the keystream over the workers

proc lengthsBlock(aadLen, ctLen: int): array[16, byte] =
  for i in 0 ..< 8:
    result[i] = byte(uint64(aadLen) shr (8 * i))
    result[8 + i] = byte(uint64(ctLen) shr (8 * i))

proc computeTag(isa: Isa, otk: ptr UncheckedArray[byte], aad: ptr UncheckedArray[byte], aadLen: int,
                ct: ptr UncheckedArray[byte], ctLen: int, tag: ptr UncheckedArray[byte]) =
  var mac: Poly1305
  mac.init(otk, wide = isa >= isaAvx2)
  mac.update(aad, aadLen, padTo16 = true)
  mac.update(ct, ctLen, padTo16 = true)
  var lens = lengthsBlock(aadLen, ctLen)
  mac.blocks(cast[ptr UncheckedArray[byte]](lens[0].addr), 1)
  mac.finish(tag)

type HalvesJob = object
  ## Two halves of one message, [0, mid) and [mid, len): `encrypting` runs ChaCha20 over each
  ## half before its MAC; the MAC always reads `ct` (the output when encrypting).
  isa: Isa
  encrypting: bool
  key, nonce, src, ct, aad, otk: ptr UncheckedArray[byte]
  aadLen, mid, len: int
  macs: array[2, Poly1305]

proc halfRange(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr HalvesJob](ctx)
  for half in lo ..< hi:
    let first = if half == 0: 0 else: job.mid
    let last = if half == 0: job.mid else: job.len
    if job.encrypting:
      var input = chachaInput(job.key, job.nonce, 1)
      input[12] += uint32(first div 64)
      xorSerial(job.isa, input, cast[ptr UncheckedArray[byte]](job.src[first].addr),
                cast[ptr UncheckedArray[byte]](job.ct[first].addr), last - first)
      wipe(input)
    var mac: Poly1305
    mac.init(job.otk, wide = job.isa >= isaAvx2)
    if half == 0: mac.update(job.aad, job.aadLen, padTo16 = true)
    mac.update(cast[ptr UncheckedArray[byte]](job.ct[first].addr), last - first, padTo16 = true)
    job.macs[half] = mac
    wipe(mac)

proc tagOfHalves(job: var HalvesJob, tag: ptr UncheckedArray[byte]) =
  ## Run both halves on the pool, join their MACs, finish the tag.
  parallelFor(0, 2, 1, halfRange, job.addr)
  job.macs[0].join(job.macs[1], (job.len - job.mid + 15) div 16)
  var lens = lengthsBlock(job.aadLen, job.len)
  job.macs[0].blocks(cast[ptr UncheckedArray[byte]](lens[0].addr), 1)
  job.macs[0].finish(tag)
  wipe(job.macs)

proc splitsAt(len: int): int =
  ## Where to split a long message (a 64-byte boundary: whole ChaCha20 blocks), or 0 for "don't".
  if len < splitMin or numThreads() < 2: 0 else: (len div 2) and not 63

proc oneTimeKey(key, nonce: ptr UncheckedArray[byte], otk: var array[64, byte]) =
  var blk: array[16, uint32]
  chachaBlock(chachaInput(key, nonce, 0), blk)
  for i in 0 ..< 16: storeLe32(cast[ptr UncheckedArray[byte]](otk[0].addr), 4 * i, blk[i])
  wipe(blk)

proc shortWidth(isa: Isa): int =
  ## The keystream one vector step makes (0 on the portable path): a message that fits in it
  ## after the one-time key's block goes through `sealShort` / `openShort`.
  case isa
  of isaAvx512: 1024
  of isaAvx2: 512
  of isaPortable: 0

proc sealShort(isa: Isa, key, nonce, plaintext: ptr UncheckedArray[byte], len: int,
               aad: ptr UncheckedArray[byte], aadLen: int, output: ptr UncheckedArray[byte]) =
  ## One vector step from counter 0 makes the one-time key (block 0 of a zeroed prefix) and
  ## the keystream of the whole message: the portable block function would take one call
  ## for the key and one per 64 bytes.
  var buf {.noinit, align: 64.}: array[1024, byte]
  let width = shortWidth(isa)
  zeroMem(buf[0].addr, 64)
  if len > 0: copyMem(buf[64].addr, plaintext[0].addr, len)
  let b = cast[ptr UncheckedArray[byte]](buf[0].addr)
  var input = chachaInput(key, nonce, 0)
  xorSerial(isa, input, b, b, width)
  if len > 0: copyMem(output[0].addr, buf[64].addr, len)
  computeTag(isa, b, aad, aadLen, output, len, cast[ptr UncheckedArray[byte]](output[len].addr))
  wipe(b, width)   # the key block, the message, keystream past its end
  wipe(input)

proc openShort(isa: Isa, key, nonce, data: ptr UncheckedArray[byte], ctLen: int,
               aad: ptr UncheckedArray[byte], aadLen: int, output: ptr UncheckedArray[byte]): bool =
  ## `sealShort`'s inverse: the plaintext is made on the stack with the key and copied out only
  ## when the tag is authentic.
  var buf {.noinit, align: 64.}: array[1024, byte]
  let width = shortWidth(isa)
  zeroMem(buf[0].addr, 64)
  if ctLen > 0: copyMem(buf[64].addr, data[0].addr, ctLen)
  let b = cast[ptr UncheckedArray[byte]](buf[0].addr)
  var input = chachaInput(key, nonce, 0)
  xorSerial(isa, input, b, b, width)
  var tag: array[16, byte]
  computeTag(isa, b, aad, aadLen, data, ctLen, cast[ptr UncheckedArray[byte]](tag[0].addr))
  result = ctEqual(cast[ptr UncheckedArray[byte]](tag[0].addr),
                   cast[ptr UncheckedArray[byte]](data[ctLen].addr), tagLen)
  if result and ctLen > 0: copyMem(output[0].addr, buf[64].addr, ctLen)
  wipe(b, width)
  wipe(tag)
  wipe(input)

proc seal*(isa: Isa, key, nonce, plaintext: ptr UncheckedArray[byte], len: int,
           aad: ptr UncheckedArray[byte], aadLen: int, output: ptr UncheckedArray[byte]) =
  ## output[0..len) = ciphertext, output[len..len+16) = tag.
  if 64 + len <= shortWidth(isa):
    sealShort(isa, key, nonce, plaintext, len, aad, aadLen, output)
    return
  let mid = splitsAt(len)
  if mid == 0 and (len < serialMax or numThreads() < 2):
    # one thread: the one-time key block rides along with the keystream where the path can
    var input = chachaInput(key, nonce, 1)
    var blk: array[16, uint32]
    if xorWithKeyBlock(isa, input, plaintext, output, len, blk):
      var otk: array[32, byte]
      for i in 0 ..< 8: storeLe32(cast[ptr UncheckedArray[byte]](otk[0].addr), 4 * i, blk[i])
      computeTag(isa, cast[ptr UncheckedArray[byte]](otk[0].addr), aad, aadLen, output, len,
                 cast[ptr UncheckedArray[byte]](output[len].addr))
      wipe(otk); wipe(blk); wipe(input)
      return
    wipe(input)
  var otk: array[64, byte]
  oneTimeKey(key, nonce, otk)
  if mid > 0:
    var job = HalvesJob(isa: isa, encrypting: true, key: key, nonce: nonce, src: plaintext,
                        ct: output, aad: aad, otk: cast[ptr UncheckedArray[byte]](otk[0].addr),
                        aadLen: aadLen, mid: mid, len: len)
    tagOfHalves(job, cast[ptr UncheckedArray[byte]](output[len].addr))
  else:
    var input = chachaInput(key, nonce, 1)
    chacha20Xor(isa, input, plaintext, output, len)
    computeTag(isa, cast[ptr UncheckedArray[byte]](otk[0].addr), aad, aadLen, output, len,
               cast[ptr UncheckedArray[byte]](output[len].addr))
    wipe(input)
  wipe(otk)

proc open*(isa: Isa, key, nonce, data: ptr UncheckedArray[byte], len: int,
           aad: ptr UncheckedArray[byte], aadLen: int, output: ptr UncheckedArray[byte]): bool =
  ## data = ciphertext ‖ tag (len >= 16). Writes len - 16 bytes of plaintext to `output` and
  ## returns true only when the tag is authentic; otherwise `output` is left untouched.
  let ctLen = len - tagLen
  if 64 + ctLen <= shortWidth(isa):
    return openShort(isa, key, nonce, data, ctLen, aad, aadLen, output)
  let mid = splitsAt(ctLen)
  if mid == 0 and ctLen >= 1024 and (ctLen < serialMax or numThreads() < 2):
    # the one-time key block rides along with the first kilobyte's keystream (as in `seal`);
    # that kilobyte of plaintext waits on the stack until the tag is known to be authentic
    var first {.noinit, align: 64.}: array[1024, byte]
    let f = cast[ptr UncheckedArray[byte]](first[0].addr)
    var input = chachaInput(key, nonce, 1)
    var blk: array[16, uint32]
    if xorWithKeyBlock(isa, input, data, f, 1024, blk):
      var otk: array[32, byte]
      var tag: array[16, byte]
      for i in 0 ..< 8: storeLe32(cast[ptr UncheckedArray[byte]](otk[0].addr), 4 * i, blk[i])
      computeTag(isa, cast[ptr UncheckedArray[byte]](otk[0].addr), aad, aadLen, data, ctLen,
                 cast[ptr UncheckedArray[byte]](tag[0].addr))
      result = ctEqual(cast[ptr UncheckedArray[byte]](tag[0].addr),
                       cast[ptr UncheckedArray[byte]](data[ctLen].addr), tagLen)
      if result:
        copyMem(output[0].addr, first[0].addr, 1024)
        xorSerial(isa, input, cast[ptr UncheckedArray[byte]](data[1024].addr),
                  cast[ptr UncheckedArray[byte]](output[1024].addr), ctLen - 1024)
      wipe(first); wipe(otk); wipe(tag); wipe(blk); wipe(input)
      return
    wipe(input)
  var otk: array[64, byte]
  oneTimeKey(key, nonce, otk)
  var tag: array[16, byte]
  if mid > 0:
    var job = HalvesJob(isa: isa, encrypting: false, ct: data, aad: aad,
                        otk: cast[ptr UncheckedArray[byte]](otk[0].addr), aadLen: aadLen,
                        mid: mid, len: ctLen)
    tagOfHalves(job, cast[ptr UncheckedArray[byte]](tag[0].addr))
  else:
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
