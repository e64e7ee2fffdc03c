## Nim-level tests of SHA-512: the FIPS 180-4 examples, padding at every boundary of the
## 128-byte block, streaming in pieces equal to one shot, and the C ABI's checks.
## Quick enough to run under ASan+UBSan.

import std/[unittest, random, strutils, sequtils]
import nexpo_core
import nexpo_core/capi
import nexpo_core/crypto/sha512
import nexpo_core/crypto/sha512/sha512_generic
import nexpo_core/crypto/hmac_sha512
when defined(amd64):
  import nexpo_core/cpu
  import nexpo_core/crypto/sha512/[sha512_avx2, sha512_avx512]

proc hexOf(p: openArray[byte]): string =
  for b in p: result.add b.toHex(2).toLowerAscii

proc bytesOf(s: string): seq[byte] = s.toSeq.mapIt(byte(it))

template P(s: seq[byte]): ptr UncheckedArray[byte] =
  (if s.len == 0: nil else: cast[ptr UncheckedArray[byte]](s[0].unsafeAddr))

proc streamed(data: seq[byte], pieces: seq[int]): string =
  ## SHA-512 of `data` fed in pieces of the given sizes (then the rest).
  var ctx: Sha512Ctx
  let impl = sha512ImplOf()
  ctx.init()
  var pos = 0
  for n in pieces:
    let take = min(n, data.len - pos)
    if take > 0: ctx.update(impl, cast[ptr UncheckedArray[byte]](data[pos].unsafeAddr), take)
    pos += take
  if pos < data.len: ctx.update(impl, cast[ptr UncheckedArray[byte]](data[pos].unsafeAddr), data.len - pos)
  var d: Digest512
  ctx.finish(impl, cast[ptr UncheckedArray[byte]](d[0].addr))
  hexOf(d)

var rng = initRand(20261207)

suite "sha512":
  test "FIPS 180-4 examples (abc, the 896-bit message, one million a)":
    check nexpo_init() == 0
    check hexOf(sha512(bytesOf("abc"))) ==
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" &
      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    check hexOf(sha512(bytesOf("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn" &
                               "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"))) ==
      "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018" &
      "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"
    check hexOf(sha512(newSeqWith(1_000_000, byte('a')))) ==
      "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb" &
      "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b"
    check hexOf(sha512(newSeq[byte]())) ==
      "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce" &
      "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"

  test "streaming in pieces equals one shot at every block boundary":
    for len in [0, 1, 111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 257, 1000]:
      let data = newSeqWith(len, byte(rng.rand(255)))
      let whole = hexOf(sha512(data))
      check streamed(data, @[]) == whole
      check streamed(data, @[1, 127, 128]) == whole
      check streamed(data, @[rng.rand(0 .. 200), rng.rand(0 .. 200)]) == whole
      check streamed(data, newSeqWith(len, 1)) == whole

  test "finish leaves the context as it was":
    var ctx: Sha512Ctx
    let impl = sha512ImplOf()
    ctx.init()
    let a = bytesOf("ab")
    ctx.update(impl, P(a), 2)
    var d1, d2: Digest512
    ctx.finish(impl, cast[ptr UncheckedArray[byte]](d1[0].addr))
    let c = bytesOf("c")
    ctx.update(impl, P(c), 1)
    ctx.finish(impl, cast[ptr UncheckedArray[byte]](d2[0].addr))
    check hexOf(d1) == hexOf(sha512(bytesOf("ab")))
    check hexOf(d2) == hexOf(sha512(bytesOf("abc")))

  test "the active ISA picks the path":
    when defined(amd64):
        check sha512ImplOf() == (if activeIsa() >= isaAvx512: sha512ViaAvx512
                                 elif activeIsa() >= isaAvx2: sha512ViaAvx2
                                 else: sha512ViaGeneric)

  test "the AVX2 and AVX-512 paths equal the portable one: 0 to 9 blocks, lengths 0..1000, MiB":
    when defined(amd64):
      var paths: seq[(Sha512Impl, proc (s: var Sha512State, d: ptr UncheckedArray[byte], n: int) {.nimcall.})]
      if best() >= isaAvx2: paths.add (sha512ViaAvx2, compressAvx2)
      if best() >= isaAvx512: paths.add (sha512ViaAvx512, compressAvx512)
      let big = newSeqWith(3 shl 20 + 128 * 5, byte(rng.rand(255)))
      for (impl, compressFn) in paths:
        for nblocks in 0 .. 9:   # odd and even counts: the last pair half-used or full
          let data = newSeqWith(128 * nblocks + 1, byte(rng.rand(255)))
          var a = sha512Iv
          var b = sha512Iv
          compressGeneric(a, P(data), nblocks)
          compressFn(b, P(data), nblocks)
          check a == b
        # unaligned input, and one state carried through calls of 1..5 blocks (each call's
        # pairs start afresh)
        let odd = newSeqWith(128 * 15 + 8, byte(rng.rand(255)))
        for offset in 1 .. 7:
          let p = cast[ptr UncheckedArray[byte]](odd[offset].unsafeAddr)
          var a = sha512Iv
          var b = sha512Iv
          compressGeneric(a, p, 15)
          var done = 0
          for n in [1, 2, 3, 4, 5]:
            compressFn(b, cast[ptr UncheckedArray[byte]](p[128 * done].addr), n)
            done += n
          check a == b
        for len in toSeq(0 .. 1000) & @[1 shl 20, 2 shl 20 + 128, big.len]:
          var ctxG, ctxV: Sha512Ctx
          var dG, dV: Digest512
          ctxG.init(); ctxV.init()
          ctxG.update(sha512ViaGeneric, P(big), len)
          ctxV.update(impl, P(big), len)
          ctxG.finish(sha512ViaGeneric, cast[ptr UncheckedArray[byte]](dG[0].addr))
          ctxV.finish(impl, cast[ptr UncheckedArray[byte]](dV[0].addr))
          check dG == dV

suite "hmac-sha512":
  test "RFC 4231 cases 1, 2 and 6 (a key longer than the block)":
    check hexOf(hmacSha512(newSeqWith(20, 0x0b'u8), bytesOf("Hi There"))) ==
      "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde" &
      "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
    check hexOf(hmacSha512(bytesOf("Jefe"), bytesOf("what do ya want for nothing?"))) ==
      "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554" &
      "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
    check hexOf(hmacSha512(newSeqWith(131, 0xaa'u8),
                           bytesOf("Test Using Larger Than Block-Size Key - Hash Key First"))) ==
      "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352" &
      "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"

  test "the C ABI: verify in constant time, bad arguments are status codes":
    var output: array[64, byte]
    let o = cast[ptr UncheckedArray[byte]](output[0].addr)
    let key = bytesOf("key")
    let msg = bytesOf("The quick brown fox jumps over the lazy dog")
    check nexpo_hmac_sha512(P(key), 3, P(msg), msg.len, o, 64) == 0
    check hexOf(output) == hexOf(hmacSha512(key, msg))
    var ok = 7'i32
    check nexpo_hmac_sha512_verify(P(key), 3, P(msg), msg.len, o, 64, ok.addr) == 0
    check ok == 1
    output[63] = output[63] xor 1
    check nexpo_hmac_sha512_verify(P(key), 3, P(msg), msg.len, o, 64, ok.addr) == 0
    check ok == 0
    check nexpo_hmac_sha512_verify(P(key), 3, P(msg), msg.len, o, 63, ok.addr) == 0
    check ok == 0
    check nexpo_hmac_sha512(P(key), 3, P(msg), msg.len, o, 63) == int32(ord(stInvalid))
    check nexpo_hmac_sha512(nil, 3, P(msg), msg.len, o, 64) == int32(ord(stInvalid))
    check nexpo_hmac_sha512_verify(P(key), 3, P(msg), msg.len, o, 64, nil) == int32(ord(stInvalid))

suite "sha512 c abi":
  test "bad arguments are status codes, never crashes":
    var output: array[64, byte]
    let o = cast[ptr UncheckedArray[byte]](output[0].addr)
    check nexpo_sha512(nil, 5, o, 64) == int32(ord(stInvalid))
    check nexpo_sha512(nil, 0, o, 63) == int32(ord(stInvalid))
    check nexpo_sha512(nil, -1, o, 64) == int32(ord(stInvalid))
    check nexpo_sha512(nil, 0, o, 64) == 0
    check hexOf(output).startsWith("cf83e1357eefb8bd")
    var state: array[512, byte]
    let s = cast[ptr UncheckedArray[byte]](state[0].addr)
    let size = nexpo_sha512_state_size()
    check size <= state.len
    check nexpo_sha512_update(s, size, o, 1) == int32(ord(stInvalid))   # never initialised
    check nexpo_sha512_init(s, size - 1) == int32(ord(stInvalid))
    check nexpo_sha512_init(s, size) == 0
    let abc = bytesOf("abc")
    check nexpo_sha512_update(s, size, P(abc), 3) == 0
    check nexpo_sha512_final(s, size, o, 63) == int32(ord(stInvalid))
    check nexpo_sha512_final(s, size, o, 64) == 0
    check hexOf(output).startsWith("ddaf35a193617aba")
    state[8 + 64 + 128] = 0xff   # bufLen's low byte: out of range
    check nexpo_sha512_update(s, size, P(abc), 3) == int32(ord(stInvalid))
