## Portable ChaCha20 (RFC 8439 §2.3–2.4): one 64-byte block at a time.
##
## State layout (32-bit words):
##
## ::
##
##   cccccccc  cccccccc  cccccccc  cccccccc     c = "expand 32-byte k"
##   kkkkkkkk  kkkkkkkk  kkkkkkkk  kkkkkkkk     k = key (little-endian words)
##   kkkkkkkk  kkkkkkkk  kkkkkkkk  kkkkkkkk
##   bbbbbbbb  nnnnnnnn  nnnnnnnn  nnnnnnnn     b = block counter, n = nonce
##
## Properties:
## - add/rotate/xor only: constant time in the key, nonce and data
## - the keystream block lives on the stack and is wiped before returning

import ../ct

type ChaChaInput* = array[16, uint32]  ## the initial state of block 0 (counter in word 12)

proc loadLe32*(p: ptr UncheckedArray[byte], i: int): uint32 {.inline.} =
  uint32(p[i]) or (uint32(p[i+1]) shl 8) or (uint32(p[i+2]) shl 16) or (uint32(p[i+3]) shl 24)

proc storeLe32*(p: ptr UncheckedArray[byte], i: int, v: uint32) {.inline.} =
  p[i] = byte(v); p[i+1] = byte(v shr 8); p[i+2] = byte(v shr 16); p[i+3] = byte(v shr 24)

proc chachaInput*(key, nonce: ptr UncheckedArray[byte], counter: uint32): ChaChaInput =
  result[0] = 0x61707865'u32
  result[1] = 0x3320646e'u32
  result[2] = 0x79622d32'u32
  result[3] = 0x6b206574'u32
  for i in 0 ..< 8: result[4 + i] = loadLe32(key, 4 * i)
  result[12] = counter
  for i in 0 ..< 3: result[13 + i] = loadLe32(nonce, 4 * i)

template rotl(x: uint32, n: static int): uint32 = (x shl n) or (x shr (32 - n))

template quarterRound(a, b, c, d: untyped) =
  a += b; d = rotl(d xor a, 16)
  c += d; b = rotl(b xor c, 12)
  a += b; d = rotl(d xor a, 8)
  c += d; b = rotl(b xor c, 7)

proc chachaBlock*(input: ChaChaInput, output: var array[16, uint32]) =
  ## output = the 20-round ChaCha block function of `input` (RFC 8439 §2.3). The state lives
  ## in 16 locals so the compiler keeps it in registers.
  var
    x0 = input[0]
    x1 = input[1]
    x2 = input[2]
    x3 = input[3]
    x4 = input[4]
    x5 = input[5]
    x6 = input[6]
    x7 = input[7]
    x8 = input[8]
    x9 = input[9]
    x10 = input[10]
    x11 = input[11]
    x12 = input[12]
    x13 = input[13]
    x14 = input[14]
    x15 = input[15]
  for _ in 0 ..< 10:
    quarterRound(x0, x4, x8, x12)
    quarterRound(x1, x5, x9, x13)
    quarterRound(x2, x6, x10, x14)
    quarterRound(x3, x7, x11, x15)
    quarterRound(x0, x5, x10, x15)
    quarterRound(x1, x6, x11, x12)
    quarterRound(x2, x7, x8, x13)
    quarterRound(x3, x4, x9, x14)
  output = [x0 + input[0], x1 + input[1], x2 + input[2], x3 + input[3], x4 + input[4],
            x5 + input[5], x6 + input[6], x7 + input[7], x8 + input[8], x9 + input[9],
            x10 + input[10], x11 + input[11], x12 + input[12], x13 + input[13],
            x14 + input[14], x15 + input[15]]

proc chachaXorGeneric*(input: var ChaChaInput, src, dst: ptr UncheckedArray[byte], len: int) =
  ## dst = src ⊕ keystream, starting at block counter input[12]; advances the counter.
  ## `src` and `dst` may be the same buffer.
  var ks: array[16, uint32]
  var pos = 0
  while pos < len:
    chachaBlock(input, ks)
    input[12] += 1
    let n = min(64, len - pos)
    if n == 64:
      for i in 0 ..< 16:
        storeLe32(dst, pos + 4 * i, loadLe32(src, pos + 4 * i) xor ks[i])
    else:
      var kb: array[64, byte]
      for i in 0 ..< 16: storeLe32(cast[ptr UncheckedArray[byte]](kb[0].addr), 4 * i, ks[i])
      for i in 0 ..< n: dst[pos + i] = src[pos + i] xor kb[i]
      wipe(kb)
    pos += n
  wipe(ks)
