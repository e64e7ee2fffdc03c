# Included by capi.nim: the crypto exports (declared in crypto.h).

import ../crypto/[sha256, hmac, batch, many, many_stream, merkle, aead, ct]

type
  Bytes = ptr UncheckedArray[byte]
  StreamState = object
    ## The layout of a streaming hash's caller-owned state buffer.
    magic: uint32
    ctx: Sha256Ctx

const streamMagic = 0x53484132'u32  # "SHA2": catches a buffer that was never initialised

proc checkOut(output: Bytes, outLen, need: int, name = "out") =
  checkPtr(output, outLen, name)
  check(outLen >= need, name & ": need " & $need & " bytes, got " & $outLen)

proc loadStream(state: Bytes, stateLen: int): StreamState =
  checkPtr(state, stateLen, "state")
  check(stateLen == sizeof(StreamState), "state: need " & $sizeof(StreamState) & " bytes, got " & $stateLen)
  copyMem(result.addr, state, sizeof(StreamState))
  check(result.magic == streamMagic and result.ctx.bufLen in 0 .. 63, "state: not an initialised SHA-256 state")

proc nexpo_sha256*(data: Bytes, len: int, output: Bytes, outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(data, len, "data")
    checkOut(output, outLen, 32)
    sha256(implOf(), data, len, output)
    countCall(kSha256, len)

proc nexpo_sha256_state_size*(): int {.exportc, cdecl.} = sizeof(StreamState)

proc nexpo_sha256_init*(state: Bytes, stateLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(state, stateLen, "state")
    check(stateLen == sizeof(StreamState), "state: need " & $sizeof(StreamState) & " bytes, got " & $stateLen)
    var s = StreamState(magic: streamMagic)
    s.ctx.init()
    copyMem(state, s.addr, sizeof(StreamState))

proc nexpo_sha256_update*(state: Bytes, stateLen: int, data: Bytes, len: int): int32 {.exportc, cdecl.} =
  cabi:
    var s = loadStream(state, stateLen)
    checkPtr(data, len, "data")
    s.ctx.update(implOf(), data, len)
    copyMem(state, s.addr, sizeof(StreamState))
    countCall(kSha256, len)

proc nexpo_sha256_final*(state: Bytes, stateLen: int, output: Bytes, outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    let s = loadStream(state, stateLen)
    checkOut(output, outLen, 32)
    s.ctx.finish(implOf(), output)

proc nexpo_sha256_many*(data: Bytes, len: int, lengths: ptr UncheckedArray[uint64], n: int,
                        output: Bytes, outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    var b = initBatch(data, len, lengths, n, "messages")
    checkOut(output, outLen, 32 * n)
    hashMany(jobSha256, implOf(), b, output)
    countCall(kSha256Many, len)

proc nexpo_sha256_many_ptrs*(ptrs: ptr UncheckedArray[Bytes], lengths: ptr UncheckedArray[uint64],
                             n: int, output: Bytes, outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    var b = initBatchPtrs(ptrs, lengths, n, "messages")
    checkOut(output, outLen, 32 * n)
    hashMany(jobSha256, implOf(), b, output)
    countCall(kSha256Many, b.total)

proc nexpo_sha256_many_stream*(n: int, chunk: int, fill: FillFn, ctx: pointer): int32 {.exportc, cdecl.} =
  var filled = 0'i32
  var total = 0
  result = cabi:
    filled = hashStream(implOf(), n, chunk, fill, ctx, total)
    countCall(kSha256Many, total)
  if result == 0: result = filled

proc nexpo_hmac_sha256_many_ptrs*(key: Bytes, keyLen: int, ptrs: ptr UncheckedArray[Bytes],
                                  lengths: ptr UncheckedArray[uint64], n: int, output: Bytes,
                                  outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(key, keyLen, "key")
    var b = initBatchPtrs(ptrs, lengths, n, "messages")
    checkOut(output, outLen, 32 * n)
    let impl = implOf()
    var k = initHmacKey(impl, key, keyLen)
    hashMany(jobHmac, impl, b, output, k.addr)
    wipe(k)
    countCall(kHmacSha256, b.total)

proc nexpo_hmac_sha256*(key: Bytes, keyLen: int, data: Bytes, len: int, output: Bytes,
                        outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(key, keyLen, "key")
    checkPtr(data, len, "data")
    checkOut(output, outLen, 32)
    let impl = implOf()
    var k = initHmacKey(impl, key, keyLen)
    hmac(impl, k, data, len, output)
    wipe(k)
    countCall(kHmacSha256, len)

proc nexpo_hmac_sha256_many*(key: Bytes, keyLen: int, data: Bytes, len: int,
                             lengths: ptr UncheckedArray[uint64], n: int, output: Bytes,
                             outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(key, keyLen, "key")
    var b = initBatch(data, len, lengths, n, "messages")
    checkOut(output, outLen, 32 * n)
    let impl = implOf()
    var k = initHmacKey(impl, key, keyLen)
    hashMany(jobHmac, impl, b, output, k.addr)
    wipe(k)
    countCall(kHmacSha256, len)

proc nexpo_hmac_sha256_verify*(key: Bytes, keyLen: int, data: Bytes, len: int, tag: Bytes,
                               tagLen: int, ok: ptr int32): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(key, keyLen, "key")
    checkPtr(data, len, "data")
    checkPtr(tag, tagLen, "tag")
    check(ok != nil, "ok: NULL")
    let impl = implOf()
    var k = initHmacKey(impl, key, keyLen)
    var mac: array[32, byte]
    hmac(impl, k, data, len, cast[Bytes](mac[0].addr))
    wipe(k)
    # The tag's length is public; its bytes are compared in constant time.
    ok[] = int32(tagLen == 32 and ctEqual(cast[Bytes](mac[0].addr), tag, 32))
    wipe(mac)
    countCall(kHmacSha256, len)

proc nexpo_merkle_root*(data: Bytes, len: int, lengths: ptr UncheckedArray[uint64], n: int,
                        output: Bytes, outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    var b = initBatch(data, len, lengths, n, "leaves")
    checkOut(output, outLen, 32)
    merkleRoot(implOf(), b, output)
    countCall(kMerkle, len)

proc nexpo_merkle_proof*(data: Bytes, len: int, lengths: ptr UncheckedArray[uint64], n: int,
                         index: uint64, output: Bytes, outLen: int,
                         count: ptr int32): int32 {.exportc, cdecl.} =
  cabi:
    var b = initBatch(data, len, lengths, n, "leaves")
    check(index < uint64(n), "index: " & $index & " is out of range for " & $n & " leaves")
    checkOut(output, outLen, 32 * 64)
    check(count != nil, "count: NULL")
    count[] = int32(merkleProof(implOf(), b, int(index), output))
    countCall(kMerkle, len)

proc nexpo_merkle_verify*(leaf: Bytes, leafLen: int, index, treeSize: uint64, proof: Bytes,
                          proofLen: int, root: Bytes, rootLen: int,
                          ok: ptr int32): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(leaf, leafLen, "leaf")
    checkPtr(proof, proofLen, "proof")
    checkPtr(root, rootLen, "root")
    check(proofLen mod 32 == 0, "proof: " & $proofLen & " bytes is not a whole number of 32-byte nodes")
    check(rootLen == 32, "root: need 32 bytes, got " & $rootLen)
    check(ok != nil, "ok: NULL")
    ok[] = int32(verifyPath(implOf(), leaf, leafLen, index, treeSize, proof, proofLen div 32, root))
    countCall(kMerkle, leafLen + proofLen)

proc checkAead(key: Bytes, keyLen: int, nonce: Bytes, nonceLen: int, data: Bytes, len: int,
               aad: Bytes, aadLen: int) =
  checkPtr(key, keyLen, "key")
  checkPtr(nonce, nonceLen, "nonce")
  checkPtr(data, len, "data")
  checkPtr(aad, aadLen, "aad")
  check(keyLen == aead.keyLen, "key: must be 32 bytes, got " & $keyLen)
  check(nonceLen == aead.nonceLen, "nonce: must be 12 bytes, got " & $nonceLen)

proc nexpo_chacha20poly1305_encrypt*(key: Bytes, keyLen: int, nonce: Bytes, nonceLen: int,
                                     data: Bytes, len: int, aad: Bytes, aadLen: int,
                                     output: Bytes, outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkAead(key, keyLen, nonce, nonceLen, data, len, aad, aadLen)
    check(int64(len) <= maxPlaintext, "data: longer than ChaCha20's 2^32-block limit")
    checkOut(output, outLen, len + tagLen)
    seal(activeIsa(), key, nonce, data, len, aad, aadLen, output)
    countCall(kAead, len)

proc nexpo_chacha20poly1305_decrypt*(key: Bytes, keyLen: int, nonce: Bytes, nonceLen: int,
                                     data: Bytes, len: int, aad: Bytes, aadLen: int,
                                     output: Bytes, outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkAead(key, keyLen, nonce, nonceLen, data, len, aad, aadLen)
    check(len >= tagLen, "data: " & $len & " bytes is shorter than the 16-byte tag")
    check(int64(len - tagLen) <= maxPlaintext, "data: longer than ChaCha20's 2^32-block limit")
    checkOut(output, outLen, len - tagLen)
    countCall(kAead, len)
    if not open(activeIsa(), key, nonce, data, len, aad, aadLen, output):
      fail(stAuth, "authentication failed: the ciphertext, tag, aad, key or nonce was altered")
