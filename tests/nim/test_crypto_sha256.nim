## Nim-level tests of SHA-256, HMAC-SHA-256 and the RFC 9162 Merkle tree: known answers, every
## compression path against the others, batches against one-at-a-time, and the C ABI's checks.
## Quick enough to run under ASan+UBSan.

import std/[unittest, random, strutils, sequtils]
import nexpo_core
import nexpo_core/capi
import nexpo_core/crypto/[sha256, hmac, batch, many, merkle, ct]
import nexpo_core/crypto/sha256/sha256_generic
when defined(amd64):
  import nexpo_core/crypto/sha256/sha256_avx512

proc hexOf(p: openArray[byte]): string =
  for b in p: result.add b.toHex(2).toLowerAscii

proc bytesOf(s: string): seq[byte] = s.toSeq.mapIt(byte(it))

proc fromHex(s: string): seq[byte] =
  for i in countup(0, s.len - 2, 2): result.add byte(parseHexInt(s[i .. i + 1]))

template P(s: seq[byte]): ptr UncheckedArray[byte] =
  (if s.len == 0: nil else: cast[ptr UncheckedArray[byte]](s[0].unsafeAddr))

proc digestOf(impl: Sha256Impl, data: seq[byte]): string =
  var d: array[32, byte]
  sha256(impl, P(data), data.len, cast[ptr UncheckedArray[byte]](d[0].addr))
  hexOf(d)

proc implsHere(): seq[Sha256Impl] =
  ## Every path this CPU can run, including 16 lanes without SHA-NI on a CPU that has both.
  result = @[implPortable]
  if hasShaNi(): result.add implShaNi
  when defined(amd64):
    if best() == isaAvx512:
      result.add implLanes16
      if hasShaNi(): result.add implLanes16ShaNi

let impls = implsHere()
var rng = initRand(20261121)

suite "sha256":
  test "FIPS 180-4 examples on every path":
    check nexpo_init() == 0
    for impl in impls:
      check digestOf(impl, bytesOf("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
      check digestOf(impl, bytesOf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
      check digestOf(impl, @[]) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
      check digestOf(impl, newSeqWith(1_000_000, byte('a'))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

  test "SHA-NI and portable agree; chunked updates equal one shot":
    for trial in 0 ..< 200:
      let n = rng.rand(0 .. 700)
      let data = newSeqWith(n, byte(rng.rand(255)))
      let want = digestOf(implPortable, data)
      for impl in impls:
        check digestOf(impl, data) == want
        var ctx: Sha256Ctx
        ctx.init()
        var pos = 0
        while pos < data.len:
          let step = min(data.len - pos, rng.rand(1 .. 130))
          ctx.update(impl, cast[ptr UncheckedArray[byte]](data[pos].unsafeAddr), step)
          pos += step
        var d: array[32, byte]
        ctx.finish(impl, cast[ptr UncheckedArray[byte]](d[0].addr))
        check hexOf(d) == want

  test "two interleaved streams equal two single ones":
    for len in [0, 1, 55, 56, 63, 64, 65, 128, 200, 1000]:
      let a = newSeqWith(len, byte(rng.rand(255)))
      let b = newSeqWith(len, byte(rng.rand(255)))
      for impl in impls:
        var da, db: array[32, byte]
        sha256TwoFrom(impl, sha256Iv, 0, P(a), P(b), len,
                      cast[ptr UncheckedArray[byte]](da[0].addr), cast[ptr UncheckedArray[byte]](db[0].addr))
        check hexOf(da) == digestOf(implPortable, a)
        check hexOf(db) == digestOf(implPortable, b)

  test "the 16-lane AVX-512 path equals the portable one":
    when defined(amd64):
      if best() == isaAvx512:
        for len in [0, 1, 55, 56, 64, 65, 119, 120, 128, 300]:
          var msgs: array[16, seq[byte]]
          var lanes, outs: Lanes16
          var digests: array[16, array[32, byte]]
          for i in 0 ..< 16:
            msgs[i] = newSeqWith(len + 1, byte(rng.rand(255)))
            lanes[i] = cast[ptr UncheckedArray[byte]](msgs[i][0].addr)
            outs[i] = cast[ptr UncheckedArray[byte]](digests[i][0].addr)
          hash16From(sha256Iv, 0, lanes, len, outs)
          for i in 0 ..< 16:
            check hexOf(digests[i]) == digestOf(implPortable, msgs[i][0 ..< len])

  test "batches of mixed and equal lengths":
    for impl in impls:
      var lens: seq[uint64]
      var data: seq[byte]
      for i in 0 ..< 300:
        let n = if i mod 3 == 0: 64 else: rng.rand(0 .. 200)
        lens.add uint64(n)
        for _ in 0 ..< n: data.add byte(rng.rand(255))
      var b = initBatch(P(data), data.len, cast[ptr UncheckedArray[uint64]](lens[0].addr), lens.len, "m")
      var output = newSeq[byte](32 * lens.len)
      hashMany(jobSha256, impl, b, cast[ptr UncheckedArray[byte]](output[0].addr))
      var off = 0
      for i, n in lens:
        check hexOf(output[32 * i ..< 32 * i + 32]) == digestOf(implPortable, data[off ..< off + int(n)])
        off += int(n)

  test "implOf: 16 lanes on AVX-512 with and without SHA-NI":
    # Skylake-SP/Cascade Lake have AVX-512 but no SHA-NI: the 16-lane path must stay on there
    check nexpo_init() == 0
    let before = activeIsa()
    if best() == isaAvx512:
      check setIsa(isaAvx512)
      setShaNi(false)
      check implOf() == implLanes16
      setShaNi(true)
      check implOf() == (if hasShaNi(): implLanes16ShaNi else: implLanes16)
    check setIsa(isaPortable)
    check implOf() == implPortable
    setShaNi(false)
    if isaAvx2 in availableIsas():
      check setIsa(isaAvx2)
      check implOf() == implPortable
    setShaNi(true)
    check setIsa(before)

  test "grainFor averages over the whole batch":
    # an empty first message made the average 0 and every task ~1000 messages of 4 KiB
    var lens = @[0'u64]
    for i in 0 ..< 999: lens.add 4096
    var data = newSeq[byte](999 * 4096)
    let b = initBatch(P(data), data.len, cast[ptr UncheckedArray[uint64]](lens[0].addr), lens.len, "m")
    check grainFor(b) == 64
    let big = @[65536'u64] & newSeq[uint64](999)
    let c = initBatch(P(data), 65536, cast[ptr UncheckedArray[uint64]](big[0].unsafeAddr), big.len, "m")
    check grainFor(c) == 65536 div (65 + 64)   # a 64 KiB first message: not 1 message per task

suite "hmac":
  test "RFC 4231 cases 1, 2 and 6":
    let cases = [
      (newSeqWith(20, 0x0b'u8), bytesOf("Hi There"),
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
      (bytesOf("Jefe"), bytesOf("what do ya want for nothing?"),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
      (newSeqWith(131, 0xaa'u8), bytesOf("Test Using Larger Than Block-Size Key - Hash Key First"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")]
    for (key, data, mac) in cases:
      for impl in impls:
        var k = initHmacKey(impl, P(key), key.len)
        var d: array[32, byte]
        hmac(impl, k, P(data), data.len, cast[ptr UncheckedArray[byte]](d[0].addr))
        check hexOf(d) == mac
        wipe(k)

  test "verify export compares in constant time and rejects other lengths":
    let key = bytesOf("key")
    let data = bytesOf("message")
    var tag: array[32, byte]
    check nexpo_hmac_sha256(P(key), key.len, P(data), data.len,
                            cast[ptr UncheckedArray[byte]](tag[0].addr), 32) == 0
    var ok: int32
    check nexpo_hmac_sha256_verify(P(key), key.len, P(data), data.len,
                                   cast[ptr UncheckedArray[byte]](tag[0].addr), 32, ok.addr) == 0
    check ok == 1
    tag[31] = tag[31] xor 1
    check nexpo_hmac_sha256_verify(P(key), key.len, P(data), data.len,
                                   cast[ptr UncheckedArray[byte]](tag[0].addr), 32, ok.addr) == 0
    check ok == 0
    check nexpo_hmac_sha256_verify(P(key), key.len, P(data), data.len,
                                   cast[ptr UncheckedArray[byte]](tag[0].addr), 31, ok.addr) == 0
    check ok == 0

suite "merkle":
  proc refRoot(leaves: seq[seq[byte]]): string =
    ## RFC 9162 §2.1.1, recursively.
    proc mth(ls: seq[seq[byte]]): seq[byte] =
      if ls.len == 0: return fromHex(digestOf(implPortable, @[]))
      if ls.len == 1: return fromHex(digestOf(implPortable, @[0'u8] & ls[0]))
      var k = 1
      while 2 * k < ls.len: k *= 2
      fromHex(digestOf(implPortable, @[1'u8] & mth(ls[0 ..< k]) & mth(ls[k .. ^1])))
    hexOf(mth(leaves))

  test "roots match the recursive definition; proofs verify and fail when altered":
    for n in 0 .. 40:
      var leaves: seq[seq[byte]]
      var lens: seq[uint64]
      var data: seq[byte]
      for i in 0 ..< n:
        let size = rng.rand(0 .. 40)
        leaves.add newSeqWith(size, byte(rng.rand(255)))
        lens.add uint64(leaves[^1].len)
        data.add leaves[^1]
      let lensPtr = if n == 0: nil else: cast[ptr UncheckedArray[uint64]](lens[0].addr)
      for impl in impls:
        var b = initBatch(P(data), data.len, lensPtr, n, "leaves")
        var root: array[32, byte]
        merkleRoot(impl, b, cast[ptr UncheckedArray[byte]](root[0].addr))
        check hexOf(root) == refRoot(leaves)
        for i in 0 ..< n:
          var path: array[64 * 32, byte]
          let count = merkleProof(impl, b, i, cast[ptr UncheckedArray[byte]](path[0].addr))
          check verifyPath(impl, P(leaves[i]), leaves[i].len, uint64(i), uint64(n),
                           cast[ptr UncheckedArray[byte]](path[0].addr), count,
                           cast[ptr UncheckedArray[byte]](root[0].addr))
          if count > 0:
            let j = rng.rand(count - 1)
            let at = 32 * j + rng.rand(31)
            path[at] = path[at] xor byte(1 shl rng.rand(7))
            check not verifyPath(impl, P(leaves[i]), leaves[i].len, uint64(i), uint64(n),
                                 cast[ptr UncheckedArray[byte]](path[0].addr), count,
                                 cast[ptr UncheckedArray[byte]](root[0].addr))

suite "c abi":
  test "bad arguments are status codes, never crashes":
    var output: array[64, byte]
    let o = cast[ptr UncheckedArray[byte]](output[0].addr)
    check nexpo_sha256(nil, 5, o, 32) == int32(ord(stInvalid))
    check nexpo_sha256(nil, 0, o, 31) == int32(ord(stInvalid))
    check nexpo_sha256(nil, -1, o, 32) == int32(ord(stInvalid))
    check nexpo_sha256_many(nil, 0, nil, 0, nil, 0) == 0
    check nexpo_sha256_many(o, 10, nil, 3, o, 64) == int32(ord(stInvalid))
    var lens = [5'u64, 6]
    check nexpo_sha256_many(o, 10, cast[ptr UncheckedArray[uint64]](lens[0].addr), 2, o, 64) == int32(ord(stInvalid))
    check "add up to" in $nexpo_last_error()
    check nexpo_merkle_proof(o, 10, nil, 2, 2, o, 64, nil) == int32(ord(stInvalid))
    var ok: int32
    check nexpo_merkle_verify(o, 1, 0, 1, o, 31, o, 32, ok.addr) == int32(ord(stInvalid))
    var state: array[256, byte]
    let s = cast[ptr UncheckedArray[byte]](state[0].addr)
    check nexpo_sha256_update(s, nexpo_sha256_state_size(), o, 1) == int32(ord(stInvalid))
    check nexpo_sha256_init(s, nexpo_sha256_state_size()) == 0
    check nexpo_sha256_update(s, nexpo_sha256_state_size(), o, 3) == 0
    check nexpo_sha256_final(s, nexpo_sha256_state_size(), o, 32) == 0

# --- nexpo_sha256_many_stream: a batch handed over chunk by chunk ---------------------------

type StreamFeed = object
  msgs: seq[seq[byte]]
  digests: seq[array[32, byte]]
  calls, failAt: int           # failAt: the fill call that returns stAuth (-1: none)
  nullSlotAt: int              # this message's digest slot is NULL (-1: none)
  lastDone, lastHi: int
  ordered: bool                # every fill starts where the last ended; done never passes it

proc feed(lo, hi, done: csize_t, ptrs: ptr UncheckedArray[ptr UncheckedArray[byte]],
          lens: ptr UncheckedArray[uint64], outs: ptr UncheckedArray[ptr UncheckedArray[byte]],
          ctx: pointer): int32 {.cdecl, gcsafe, raises: [].} =
  let f = cast[ptr StreamFeed](ctx)
  inc f.calls
  if int(lo) != f.lastHi or int(done) < f.lastDone or int(done) > int(lo): f.ordered = false
  f.lastDone = int(done)
  f.lastHi = int(hi)
  if f.calls == f.failAt: return int32(ord(stAuth))
  for i in int(lo) ..< int(hi):
    let len = f.msgs[i].len   # (no `let m = f.msgs[i]`: a copy, freed before the hashing)
    ptrs[i - int(lo)] = if len == 0: nil else: cast[ptr UncheckedArray[byte]](f.msgs[i][0].addr)
    lens[i - int(lo)] = uint64(len)
    outs[i - int(lo)] = if i == f.nullSlotAt: nil else: cast[ptr UncheckedArray[byte]](f.digests[i][0].addr)
  0

proc newFeed(n: int, rng: var Rand): StreamFeed =
  result = StreamFeed(failAt: -1, nullSlotAt: -1, ordered: true)
  for i in 0 ..< n:
    let len = if i mod 5 == 0: rng.rand(0 .. 300) else: 64
    result.msgs.add newSeqWith(len, byte(rng.rand(255)))
  result.digests = newSeq[array[32, byte]](n)

suite "sha256 stream":
  var rng = initRand(7)

  test "chunks of every size give the digests of the one-shot hash, in order":
    check nexpo_init() == 0
    for (n, chunk) in [(0, 0), (1, 0), (100, 1), (1000, 64), (1000, 999), (3000, 0), (700, 17)]:
      var f = newFeed(n, rng)
      check nexpo_sha256_many_stream(n, chunk, feed, f.addr) == 0
      check f.ordered
      check f.calls == (if n == 0: 0 elif chunk == 0: (n + 8191) div 8192 else: (n + chunk - 1) div chunk)
      for i in 0 ..< n:
        check hexOf(f.digests[i]) == digestOf(implPortable, f.msgs[i])

  test "a failing fill stops the batch with its status; a NULL digest slot is invalid":
    var f = newFeed(1000, rng)
    f.failAt = 3
    check nexpo_sha256_many_stream(1000, 100, feed, f.addr) == int32(ord(stAuth))
    check f.calls == 3
    f = newFeed(1000, rng)
    f.nullSlotAt = 450
    check nexpo_sha256_many_stream(1000, 100, feed, f.addr) == int32(ord(stInvalid))
    check "NULL" in $nexpo_last_error()
    check f.calls <= 6
    check nexpo_sha256_many_stream(10, 0, nil, nil) == int32(ord(stInvalid))
