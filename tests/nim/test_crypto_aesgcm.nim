## Nim-level tests of AES-256-GCM: known answers (the GCM specification's AES-256 cases), every
## variant this CPU has against the portable one (lengths around each variant's batch sizes),
## and tamper handling (plaintext wiped). The NIST CAVP vectors run from Python.

import std/[unittest, random, strutils, sequtils]
import nexpo_core
import nexpo_core/capi
import nexpo_core/cpu
import nexpo_core/crypto/aesgcm

proc hexOf(p: openArray[byte]): string =
  for b in p: result.add b.toHex(2).toLowerAscii

proc fromHex(s: string): seq[byte] =
  for i in countup(0, s.len - 2, 2): result.add byte(parseHexInt(s[i .. i + 1]))

template P(s: seq[byte]): ptr UncheckedArray[byte] =
  (if s.len == 0: nil else: cast[ptr UncheckedArray[byte]](s[0].unsafeAddr))

proc variants(): seq[AesImpl] =
  result = @[gcmPortable]
  if hasAesNi() and best() >= isaAvx2: result.add gcmAesNi
  if hasVaes(): result.add gcmVaes

proc sealWith(impl: AesImpl, key, nonce, pt, aad: seq[byte]): seq[byte] =
  var k: AesGcmKey
  initKey(impl, k, P(key))
  result = newSeq[byte](pt.len + 16)
  seal(impl, k, P(nonce), P(pt), pt.len, P(aad), aad.len, P(result))

var rng = initRand(380)

suite "aes-256-gcm":
  check nexpo_init() == 0

  test "GCM spec test cases 13 and 14 (zero key, zero nonce)":
    let key = newSeq[byte](32)
    let nonce = newSeq[byte](12)
    for impl in variants():
      check hexOf(sealWith(impl, key, nonce, @[], @[])) == "530f8afbc74536b9a963b4f1c4cb738b"
      check hexOf(sealWith(impl, key, nonce, newSeq[byte](16), @[])) ==
        "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"

  test "every variant matches the portable one (sizes around 16, 128 and 256-byte batches)":
    for len in [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 1000, 4099]:
      for aadLen in [0, 1, 16, 20, 300]:
        let key = newSeqWith(32, byte(rng.rand(255)))
        let nonce = newSeqWith(12, byte(rng.rand(255)))
        let pt = newSeqWith(len, byte(rng.rand(255)))
        let aad = newSeqWith(aadLen, byte(rng.rand(255)))
        let want = sealWith(gcmPortable, key, nonce, pt, aad)
        for impl in variants():
          check sealWith(impl, key, nonce, pt, aad) == want
          var k: AesGcmKey
          initKey(impl, k, P(key))
          var back = newSeq[byte](len)
          check open(impl, k, P(nonce), P(want), want.len, P(aad), aad.len, P(back))
          check back == pt

  test "a tampered message is refused and its plaintext wiped":
    let key = newSeqWith(32, 3'u8)
    let nonce = newSeqWith(12, 5'u8)
    let pt = newSeqWith(40, 0xAA'u8)
    for impl in variants():
      var sealed = sealWith(impl, key, nonce, pt, @[])
      sealed[7] = sealed[7] xor 1
      var k: AesGcmKey
      initKey(impl, k, P(key))
      var back = newSeq[byte](40)
      check not open(impl, k, P(nonce), P(sealed), sealed.len, nil, 0, P(back))
      check back == newSeq[byte](40)

  test "a long message split over two threads equals the one-thread result":
    let before = numThreads()
    for len in [256 * 1024, 256 * 1024 + 1, 600_000 + 13, 1 shl 20]:
      let key = newSeqWith(32, byte(rng.rand(255)))
      let nonce = newSeqWith(12, byte(rng.rand(255)))
      let pt = newSeqWith(len, byte(rng.rand(255)))
      let aad = newSeqWith(37, byte(rng.rand(255)))
      setNumThreads(1)
      let want = sealWith(gcmPortable, key, nonce, pt, aad)
      setNumThreads(2)
      for impl in variants():
        check sealWith(impl, key, nonce, pt, aad) == want
        var k: AesGcmKey
        initKey(impl, k, P(key))
        var back = newSeq[byte](len)
        check open(impl, k, P(nonce), P(want), want.len, P(aad), aad.len, P(back))
        check back == pt
    setNumThreads(before)
