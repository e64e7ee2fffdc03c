## Nim-level tests of ChaCha20, Poly1305 and the RFC 8439 AEAD: known answers (typed in from
## RFC 8439), every ISA path against the portable one, the AVX2 Poly1305 against the scalar
## one, and tamper handling (no plaintext written). Quick enough for ASan+UBSan.

import std/[unittest, random, strutils, sequtils, json, os]
import nexpo_core
import nexpo_core/capi
import nexpo_core/crypto/[chacha20, poly1305, aead]

proc hexOf(p: openArray[byte]): string =
  for b in p: result.add b.toHex(2).toLowerAscii

proc fromHex(s: string): seq[byte] =
  for i in countup(0, s.len - 2, 2): result.add byte(parseHexInt(s[i .. i + 1]))

proc bytesOf(s: string): seq[byte] = s.toSeq.mapIt(byte(it))

template P(s: seq[byte]): ptr UncheckedArray[byte] =
  (if s.len == 0: nil else: cast[ptr UncheckedArray[byte]](s[0].unsafeAddr))

let vectors = parseJson(readFile(currentSourcePath().parentDir.parentDir / "vectors" / "rfc8439_aead.json"))
var rng = initRand(8439)

suite "chacha20":
  test "RFC 8439 A.1 test vector #2 (counter 1, zero key)":
    let zero = newSeq[byte](32)
    var blk: array[16, uint32]
    chachaBlock(chachaInput(P(zero), P(zero), 1), blk)
    var ks: array[64, byte]
    for i in 0 ..< 16: storeLe32(cast[ptr UncheckedArray[byte]](ks[0].addr), 4 * i, blk[i])
    check hexOf(ks) == "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed" &
                       "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"

  test "every ISA path produces the portable keystream":
    check nexpo_init() == 0
    # around every path's chunk (512 B, 1 KiB) and the rests that go through a stack buffer
    for len in [0, 1, 63, 64, 65, 127, 128, 129, 511, 512, 513, 575, 576, 577, 1023, 1024, 1025,
                1087, 1088, 1089, 1983, 3000, 5000]:
      let key = newSeqWith(32, byte(rng.rand(255)))
      let nonce = newSeqWith(12, byte(rng.rand(255)))
      let src = newSeqWith(len, byte(rng.rand(255)))
      var want = newSeq[byte](len)
      var inp = chachaInput(P(key), P(nonce), 7)
      chacha20Xor(isaPortable, inp, P(src), P(want), len)
      for isa in availableIsas():
        var got = newSeq[byte](len)
        var inp2 = chachaInput(P(key), P(nonce), 7)
        chacha20Xor(isa, inp2, P(src), P(got), len)
        check got == want
        check inp2[12] == inp[12]

  test "a long message split over workers equals the serial keystream":
    let key = newSeqWith(32, 7'u8)
    let nonce = newSeqWith(12, 9'u8)
    let len = 300_000 + 17
    let src = newSeq[byte](len)
    var want = newSeq[byte](len)
    var inp = chachaInput(P(key), P(nonce), 1)
    chacha20Xor(isaPortable, inp, P(src), P(want), len)
    let before = numThreads()
    setNumThreads(2)
    for isa in availableIsas():
      var got = newSeq[byte](len)
      var inp2 = chachaInput(P(key), P(nonce), 1)
      chacha20Xor(isa, inp2, P(src), P(got), len)
      check got == want
      check inp2[12] == inp[12]
    setNumThreads(before)

suite "poly1305":
  test "RFC 8439 2.5.2 and A.3 #10/#11":
    for v in vectors["poly1305"]:
      let key = fromHex(v["key"].getStr)
      let msg = if v.hasKey("message_text"): bytesOf(v["message_text"].getStr) else: fromHex(v["message"].getStr)
      var tag: array[16, byte]
      poly1305Mac(P(key), P(msg), msg.len, cast[ptr UncheckedArray[byte]](tag[0].addr))
      check hexOf(tag) == v["tag"].getStr

  test "the 4-way AVX2, 8-way AVX-512 and 16-way IFMA paths equal the scalar one":
    # (isa, IFMA allowed): IFMA runs only under AVX-512, and only where the CPU has it
    var paths: seq[(Isa, bool)]
    for isa in availableIsas():
      if isa != isaPortable: paths.add (isa, false)
    if hasIfma(): paths.add (isaAvx512, true)
    for (isa, ifma) in paths:
      check setIsa(isa)
      setIfma(ifma)
      # 512 B and up take the vector paths: even and odd counts of 8-block groups (IFMA pairs
      # them), with and without a scalar tail
      for len in [255, 256, 257, 300, 383, 384, 511, 512, 513, 600, 640, 1000, 1152, 1280, 4096, 10000, 16384 + 48]:
        let key = newSeqWith(32, byte(rng.rand(255)))
        var msg = newSeqWith(len, byte(rng.rand(255)))
        if len in [1152, 4096]:
          for i in 0 ..< len: msg[i] = 0xff    # limbs at their maxima
        var a, b: Poly1305
        a.init(P(key), wide = false)
        b.init(P(key), wide = true)
        a.update(P(msg), len, padTo16 = true)
        b.update(P(msg), len, padTo16 = true)
        var ta, tb: array[16, byte]
        a.finish(cast[ptr UncheckedArray[byte]](ta[0].addr))
        b.finish(cast[ptr UncheckedArray[byte]](tb[0].addr))
        check ta == tb
    setIfma(true)
    check setIsa(best())

suite "aead":
  test "RFC 8439 2.8.2 and A.5 on every ISA path":
    for v in vectors["aead"]:
      let key = fromHex(v["key"].getStr)
      let nonce = fromHex(v["nonce"].getStr)
      let aad = fromHex(v["aad"].getStr)
      let pt = bytesOf(v["plaintext_text"].getStr)
      let sealedHex = v["ciphertext"].getStr & v["tag"].getStr
      for isa in availableIsas():
        for ifma in [true, false]:
          check setIsa(isa)    # Poly1305 follows the active ISA (and IFMA switch)
          setIfma(ifma)
          var output = newSeq[byte](pt.len + 16)
          seal(isa, P(key), P(nonce), P(pt), pt.len, P(aad), aad.len, P(output))
          check hexOf(output) == sealedHex
          var back = newSeq[byte](pt.len)
          check open(isa, P(key), P(nonce), P(output), output.len, P(aad), aad.len, P(back))
          check back == pt
    setIfma(true)
    check setIsa(best())

  test "every ISA path seals like the portable one, around the short and key-block paths":
    for n in [0, 1, 64, 447, 448, 449, 959, 960, 961, 1023, 1024, 1025, 2047, 4096 + 17, 20000]:
      let key = newSeqWith(32, byte(rng.rand(255)))
      let nonce = newSeqWith(12, byte(rng.rand(255)))
      let pt = newSeqWith(n, byte(rng.rand(255)))
      let aadLen = rng.rand(40)   # (newSeqWith evaluates its length twice)
      let aad = newSeqWith(aadLen, byte(rng.rand(255)))
      checkpoint "length " & $n
      var want = newSeq[byte](n + 16)
      check setIsa(isaPortable)
      seal(isaPortable, P(key), P(nonce), P(pt), n, P(aad), aad.len, P(want))
      for isa in availableIsas():
        check setIsa(isa)
        var got = newSeq[byte](n + 16)
        seal(isa, P(key), P(nonce), P(pt), n, P(aad), aad.len, P(got))
        check got == want
        var back = newSeq[byte](n)
        check open(isa, P(key), P(nonce), P(got), got.len, P(aad), aad.len, P(back))
        check back == pt
        let flip = rng.rand(got.len - 1)
        got[flip] = got[flip] xor 1
        var untouched = newSeqWith(n, 0xee'u8)
        let accepted = open(isa, P(key), P(nonce), P(got), got.len, P(aad), aad.len, P(untouched))
        check not accepted
        check untouched.allIt(it == 0xee)
    check setIsa(best())

  test "tampering fails and writes no plaintext":
    let key = newSeqWith(32, byte(rng.rand(255)))
    let nonce = newSeqWith(12, byte(rng.rand(255)))
    let pt = newSeqWith(300, byte(rng.rand(255)))
    var sealed = newSeq[byte](316)
    seal(best(), P(key), P(nonce), P(pt), pt.len, nil, 0, P(sealed))
    for i in [0, 150, 299, 300, 315]:
      var bad = sealed
      bad[i] = bad[i] xor 4
      var output = newSeqWith(300, 0xee'u8)
      check not open(best(), P(key), P(nonce), P(bad), bad.len, nil, 0, P(output))
      check output.allIt(it == 0xee)
    var output = newSeq[byte](300)
    check nexpo_chacha20poly1305_decrypt(P(key), 32, P(nonce), 12, P(sealed), 316, P(pt), 1,
                                         P(output), 300) == int32(ord(stAuth))
    check nexpo_chacha20poly1305_encrypt(P(key), 31, P(nonce), 12, P(pt), 300, nil, 0,
                                         P(sealed), 316) == int32(ord(stInvalid))
    check nexpo_chacha20poly1305_encrypt(P(key), 32, P(nonce), 12, P(pt), 300, nil, 0,
                                         P(sealed), 315) == int32(ord(stInvalid))
    check nexpo_chacha20poly1305_decrypt(P(key), 32, P(nonce), 12, P(sealed), 15, nil, 0,
                                         P(output), 300) == int32(ord(stInvalid))
