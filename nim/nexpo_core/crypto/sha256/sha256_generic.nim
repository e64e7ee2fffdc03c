## Portable SHA-256 compression function (FIPS 180-4 §6.2.2), for any CPU.
##
## Properties:
## - processes whole 64-byte blocks; padding and buffering live in `sha256.nim`
## - big-endian loads are assembled from bytes, so `data` needs no alignment
## - no table lookups indexed by data: safe to use on secrets (HMAC keys)

const k256*: array[64, uint32] = [
  0x428a2f98'u32, 0x71374491'u32, 0xb5c0fbcf'u32, 0xe9b5dba5'u32, 0x3956c25b'u32, 0x59f111f1'u32,
  0x923f82a4'u32, 0xab1c5ed5'u32, 0xd807aa98'u32, 0x12835b01'u32, 0x243185be'u32, 0x550c7dc3'u32,
  0x72be5d74'u32, 0x80deb1fe'u32, 0x9bdc06a7'u32, 0xc19bf174'u32, 0xe49b69c1'u32, 0xefbe4786'u32,
  0x0fc19dc6'u32, 0x240ca1cc'u32, 0x2de92c6f'u32, 0x4a7484aa'u32, 0x5cb0a9dc'u32, 0x76f988da'u32,
  0x983e5152'u32, 0xa831c66d'u32, 0xb00327c8'u32, 0xbf597fc7'u32, 0xc6e00bf3'u32, 0xd5a79147'u32,
  0x06ca6351'u32, 0x14292967'u32, 0x27b70a85'u32, 0x2e1b2138'u32, 0x4d2c6dfc'u32, 0x53380d13'u32,
  0x650a7354'u32, 0x766a0abb'u32, 0x81c2c92e'u32, 0x92722c85'u32, 0xa2bfe8a1'u32, 0xa81a664b'u32,
  0xc24b8b70'u32, 0xc76c51a3'u32, 0xd192e819'u32, 0xd6990624'u32, 0xf40e3585'u32, 0x106aa070'u32,
  0x19a4c116'u32, 0x1e376c08'u32, 0x2748774c'u32, 0x34b0bcb5'u32, 0x391c0cb3'u32, 0x4ed8aa4a'u32,
  0x5b9cca4f'u32, 0x682e6ff3'u32, 0x748f82ee'u32, 0x78a5636f'u32, 0x84c87814'u32, 0x8cc70208'u32,
  0x90befffa'u32, 0xa4506ceb'u32, 0xbef9a3f7'u32, 0xc67178f2'u32]

type Sha256State* = array[8, uint32]

const sha256Iv*: Sha256State = [0x6a09e667'u32, 0xbb67ae85'u32, 0x3c6ef372'u32, 0xa54ff53a'u32,
                                 0x510e527f'u32, 0x9b05688c'u32, 0x1f83d9ab'u32, 0x5be0cd19'u32]

template rotr(x: uint32, n: static int): uint32 = (x shr n) or (x shl (32 - n))

proc loadBe32*(p: ptr UncheckedArray[byte], i: int): uint32 {.inline.} =
  (uint32(p[i]) shl 24) or (uint32(p[i+1]) shl 16) or (uint32(p[i+2]) shl 8) or uint32(p[i+3])

proc storeBe32*(p: ptr UncheckedArray[byte], i: int, v: uint32) {.inline.} =
  p[i] = byte(v shr 24); p[i+1] = byte(v shr 16); p[i+2] = byte(v shr 8); p[i+3] = byte(v)

proc compressGeneric*(state: var Sha256State, data: ptr UncheckedArray[byte], nblocks: int) =
  ## Absorb `nblocks` 64-byte blocks from `data` into `state`.
  var w: array[64, uint32]
  for blk in 0 ..< nblocks:
    let p = cast[ptr UncheckedArray[byte]](data[blk * 64].addr)
    for t in 0 ..< 16: w[t] = loadBe32(p, 4 * t)
    for t in 16 ..< 64:
      let s0 = rotr(w[t-15], 7) xor rotr(w[t-15], 18) xor (w[t-15] shr 3)
      let s1 = rotr(w[t-2], 17) xor rotr(w[t-2], 19) xor (w[t-2] shr 10)
      w[t] = w[t-16] + s0 + w[t-7] + s1
    var
      a = state[0]
      b = state[1]
      c = state[2]
      d = state[3]
      e = state[4]
      f = state[5]
      g = state[6]
      h = state[7]
    for t in 0 ..< 64:
      let s1 = rotr(e, 6) xor rotr(e, 11) xor rotr(e, 25)
      let ch = (e and f) xor ((not e) and g)
      let t1 = h + s1 + ch + k256[t] + w[t]
      let s0 = rotr(a, 2) xor rotr(a, 13) xor rotr(a, 22)
      let maj = (a and b) xor (a and c) xor (b and c)
      let t2 = s0 + maj
      h = g; g = f; f = e; e = d + t1
      d = c; c = b; b = a; a = t1 + t2
    state[0] += a; state[1] += b; state[2] += c; state[3] += d
    state[4] += e; state[5] += f; state[6] += g; state[7] += h

proc padTail*(tail: var array[128, byte], rest: int, total: uint64): int {.inline.} =
  ## Pad the `rest` message bytes already in `tail`; returns the 1 or 2 blocks to compress.
  tail[rest] = 0x80
  result = if rest < 56: 1 else: 2
  let bits = total * 8
  for i in 0 ..< 8: tail[64 * result - 1 - i] = byte(bits shr (8 * i))
