## Portable SHA-512 compression function (FIPS 180-4 §6.4.2), for any CPU.
##
## The message schedule is a rolling 16-word window (w[t mod 16]), and all 80 rounds are
## unrolled with the working variables' names rotated instead of moved: no index is computed
## at run time (so no bounds checks), and the compiler keeps a..h in registers.
##
## Properties:
## - processes whole 128-byte blocks; padding and buffering live in `../sha512.nim`
## - big-endian loads are an unaligned load + bswap, so `data` needs no alignment
## - no table lookups indexed by data: safe to use on secrets
## - runtime checks off: every index is a literal or `and 15`, every size the caller's whole
##   blocks (and an inner call that cannot raise is not followed by an error-flag check)

{.push raises: [], boundChecks: off, overflowChecks: off, rangeChecks: off.}

const k512*: array[80, uint64] = [
  0x428a2f98d728ae22'u64, 0x7137449123ef65cd'u64, 0xb5c0fbcfec4d3b2f'u64, 0xe9b5dba58189dbbc'u64,
  0x3956c25bf348b538'u64, 0x59f111f1b605d019'u64, 0x923f82a4af194f9b'u64, 0xab1c5ed5da6d8118'u64,
  0xd807aa98a3030242'u64, 0x12835b0145706fbe'u64, 0x243185be4ee4b28c'u64, 0x550c7dc3d5ffb4e2'u64,
  0x72be5d74f27b896f'u64, 0x80deb1fe3b1696b1'u64, 0x9bdc06a725c71235'u64, 0xc19bf174cf692694'u64,
  0xe49b69c19ef14ad2'u64, 0xefbe4786384f25e3'u64, 0x0fc19dc68b8cd5b5'u64, 0x240ca1cc77ac9c65'u64,
  0x2de92c6f592b0275'u64, 0x4a7484aa6ea6e483'u64, 0x5cb0a9dcbd41fbd4'u64, 0x76f988da831153b5'u64,
  0x983e5152ee66dfab'u64, 0xa831c66d2db43210'u64, 0xb00327c898fb213f'u64, 0xbf597fc7beef0ee4'u64,
  0xc6e00bf33da88fc2'u64, 0xd5a79147930aa725'u64, 0x06ca6351e003826f'u64, 0x142929670a0e6e70'u64,
  0x27b70a8546d22ffc'u64, 0x2e1b21385c26c926'u64, 0x4d2c6dfc5ac42aed'u64, 0x53380d139d95b3df'u64,
  0x650a73548baf63de'u64, 0x766a0abb3c77b2a8'u64, 0x81c2c92e47edaee6'u64, 0x92722c851482353b'u64,
  0xa2bfe8a14cf10364'u64, 0xa81a664bbc423001'u64, 0xc24b8b70d0f89791'u64, 0xc76c51a30654be30'u64,
  0xd192e819d6ef5218'u64, 0xd69906245565a910'u64, 0xf40e35855771202a'u64, 0x106aa07032bbd1b8'u64,
  0x19a4c116b8d2d0c8'u64, 0x1e376c085141ab53'u64, 0x2748774cdf8eeb99'u64, 0x34b0bcb5e19b48a8'u64,
  0x391c0cb3c5c95a63'u64, 0x4ed8aa4ae3418acb'u64, 0x5b9cca4f7763e373'u64, 0x682e6ff3d6b2b8a3'u64,
  0x748f82ee5defb2fc'u64, 0x78a5636f43172f60'u64, 0x84c87814a1f0ab72'u64, 0x8cc702081a6439ec'u64,
  0x90befffa23631e28'u64, 0xa4506cebde82bde9'u64, 0xbef9a3f7b2c67915'u64, 0xc67178f2e372532b'u64,
  0xca273eceea26619c'u64, 0xd186b8c721c0c207'u64, 0xeada7dd6cde0eb1e'u64, 0xf57d4f7fee6ed178'u64,
  0x06f067aa72176fba'u64, 0x0a637dc5a2c898a6'u64, 0x113f9804bef90dae'u64, 0x1b710b35131c471b'u64,
  0x28db77f523047d84'u64, 0x32caab7b40c72493'u64, 0x3c9ebe0a15c9bebc'u64, 0x431d67c49c100d4c'u64,
  0x4cc5d4becb3e42b6'u64, 0x597f299cfc657e2a'u64, 0x5fcb6fab3ad6faec'u64, 0x6c44198c4a475817'u64]

type Sha512State* = array[8, uint64]

const sha512Iv*: Sha512State = [
  0x6a09e667f3bcc908'u64, 0xbb67ae8584caa73b'u64, 0x3c6ef372fe94f82b'u64, 0xa54ff53a5f1d36f1'u64,
  0x510e527fade682d1'u64, 0x9b05688c2b3e6c1f'u64, 0x1f83d9abfb41bd6b'u64, 0x5be0cd19137e2179'u64]

template rotr(x: uint64, n: static int): uint64 = (x shr n) or (x shl (64 - n))

proc bswap64(x: uint64): uint64 {.importc: "__builtin_bswap64", nodecl.}

proc loadBe64*(p: ptr UncheckedArray[byte], i: int): uint64 {.inline.} =
  # one unaligned load + bswap: assembled from bytes, GCC's SLP vectoriser turned the 16 loads
  # of a block into slow SSE byte shuffles
  copyMem(result.addr, p[i].addr, 8)
  when cpuEndian == littleEndian: result = bswap64(result)

proc storeBe64*(p: ptr UncheckedArray[byte], i: int, v: uint64) {.inline.} =
  for k in 0 ..< 8: p[i + k] = byte(v shr (56 - 8 * k))

template bigSigma0(x: uint64): uint64 = rotr(x, 28) xor rotr(x, 34) xor rotr(x, 39)
template bigSigma1(x: uint64): uint64 = rotr(x, 14) xor rotr(x, 18) xor rotr(x, 41)
template smallSigma0(x: uint64): uint64 = rotr(x, 1) xor rotr(x, 8) xor (x shr 7)
template smallSigma1(x: uint64): uint64 = rotr(x, 19) xor rotr(x, 61) xor (x shr 6)

template round(w: var array[16, uint64], a, b, c, d, e, f, g, h: untyped, t: static int) =
  ## Round t on word w[t mod 16] (first made W[t] when t >= 16): d and h take the new values,
  ## the caller rotates the names.
  when t >= 16:
    w[t and 15] += smallSigma1(w[(t - 2) and 15]) + w[(t - 7) and 15] + smallSigma0(w[(t - 15) and 15])
  let t1 = h + bigSigma1(e) + (g xor (e and (f xor g))) + k512[t] + w[t and 15]
  d += t1
  h = t1 + bigSigma0(a) + ((a and b) or (c and (a or b)))

template scalarRound*(a, b, c, d, e, f, g, h, abPrev, abNew, wk: untyped) =
  ## The AVX2 path's round: `wk` is W[t]+K[t] from the vector schedule; d and h take the new
  ## values; Maj reuses the previous round's b xor c (abPrev) and leaves a xor b in abNew. The
  ## fewest operations (22 a round, as OpenSSL's); the statement order was measured (GCC
  ## follows it). The new e and a are each 5 operations deep.
  block:
    h += wk
    let sigma1 = bigSigma1(e)
    h += (e and f) + ((not e) and g)
    d += h
    d += sigma1
    h += sigma1
    abNew = a xor b
    h += (abNew and abPrev) xor b
    h += bigSigma0(a)

template scalarRoundShortChain*(a, b, c, d, e, f, g, h, abPrev, abNew, wk: untyped) =
  ## The same round as `scalarRound`, written for latency rather than for the fewest
  ## operations: Maj(a,b,c) becomes (a and (b xor c)) + (b and c) (disjoint bits), so only its
  ## first half waits for a, and each sum adds its latest term last. The new e is 4 operations
  ## deep in e and the new a 4 deep in a, for 24 operations a round. T1 (h + W+K + Ch + Σ1) is
  ## never formed on its own: the new a takes it as new d - old d, i.e. (b and c) - d is
  ## computed off the chain and the new d added to it (one operation where a separate T1 sum
  ## cost two; 25 → 24 operations, both chains unchanged). Measured on Zen 5 (six integer
  ## ALUs), the 25-op form was 5 % faster than `scalarRound` on the AVX-512 path and 6 % slower
  ## on the AVX2 path, whose SSE schedule competes for the same ports; on Zen 4 (four ALUs,
  ## so bound by the operation count) the 24-op form is 4 % faster than the 25-op one.
  block:
    let ch = (e and f) + ((not e) and g)
    let sigma1 = bigSigma1(e)
    let bcd = (b and c) - d
    d = ((d + (h + wk)) + ch) + sigma1
    abNew = a xor b
    h = ((bcd + d) + (a and abPrev)) + bigSigma0(a)

template eightRounds(w: var array[16, uint64], t: static int) =
  round(w, a, b, c, d, e, f, g, h, t)
  round(w, h, a, b, c, d, e, f, g, t + 1)
  round(w, g, h, a, b, c, d, e, f, t + 2)
  round(w, f, g, h, a, b, c, d, e, t + 3)
  round(w, e, f, g, h, a, b, c, d, t + 4)
  round(w, d, e, f, g, h, a, b, c, t + 5)
  round(w, c, d, e, f, g, h, a, b, t + 6)
  round(w, b, c, d, e, f, g, h, a, t + 7)

proc compressGeneric*(state: var Sha512State, data: ptr UncheckedArray[byte], nblocks: int) =
  ## Absorb `nblocks` 128-byte blocks from `data` into `state`.
  var w: array[16, uint64]
  for blk in 0 ..< nblocks:
    let p = cast[ptr UncheckedArray[byte]](data[blk * 128].addr)
    for t in 0 ..< 16: w[t] = loadBe64(p, 8 * t)
    var
      a = state[0]
      b = state[1]
      c = state[2]
      d = state[3]
      e = state[4]
      f = state[5]
      g = state[6]
      h = state[7]
    # literal round numbers: the constants and window slots are resolved at compile time
    eightRounds(w, 0)
    eightRounds(w, 8)
    eightRounds(w, 16)
    eightRounds(w, 24)
    eightRounds(w, 32)
    eightRounds(w, 40)
    eightRounds(w, 48)
    eightRounds(w, 56)
    eightRounds(w, 64)
    eightRounds(w, 72)
    state[0] += a; state[1] += b; state[2] += c; state[3] += d
    state[4] += e; state[5] += f; state[6] += g; state[7] += h

{.pop.}
