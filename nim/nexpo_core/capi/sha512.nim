# Included by capi.nim: the SHA-512 exports (declared in sha512.h).

import ../crypto/[sha512, hmac_sha512]

type
  Sha512Stream = object
    ## The layout of a streaming SHA-512's caller-owned state buffer.
    magic: uint32
    ctx: Sha512Ctx

const sha512Magic = 0x53484135'u32  # "SHA5": catches a buffer that was never initialised

proc loadSha512(state: ptr UncheckedArray[byte], stateLen: int): Sha512Stream =
  checkPtr(state, stateLen, "state")
  check(stateLen == sizeof(Sha512Stream),
        "state: need " & $sizeof(Sha512Stream) & " bytes, got " & $stateLen)
  copyMem(result.addr, state, sizeof(Sha512Stream))
  check(result.magic == sha512Magic and result.ctx.bufLen in 0 .. 127,
        "state: not an initialised SHA-512 state")

proc nexpo_sha512*(data: ptr UncheckedArray[byte], len: int, output: ptr UncheckedArray[byte],
                   outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(data, len, "data")
    checkPtr(output, outLen, "out")
    check(outLen >= 64, "out: need 64 bytes, got " & $outLen)
    sha512(sha512ImplOf(), data, len, output)
    countCall(kSha512, len)

proc nexpo_sha512_state_size*(): int {.exportc, cdecl.} = sizeof(Sha512Stream)

proc nexpo_sha512_init*(state: ptr UncheckedArray[byte], stateLen: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(state, stateLen, "state")
    check(stateLen == sizeof(Sha512Stream),
          "state: need " & $sizeof(Sha512Stream) & " bytes, got " & $stateLen)
    var s = Sha512Stream(magic: sha512Magic)
    s.ctx.init()
    copyMem(state, s.addr, sizeof(Sha512Stream))

proc nexpo_sha512_update*(state: ptr UncheckedArray[byte], stateLen: int,
                          data: ptr UncheckedArray[byte], len: int): int32 {.exportc, cdecl.} =
  cabi:
    var s = loadSha512(state, stateLen)
    checkPtr(data, len, "data")
    s.ctx.update(sha512ImplOf(), data, len)
    copyMem(state, s.addr, sizeof(Sha512Stream))
    countCall(kSha512, len)

proc nexpo_sha512_final*(state: ptr UncheckedArray[byte], stateLen: int,
                         output: ptr UncheckedArray[byte], outLen: int): int32 {.exportc, cdecl.} =
  cabi:
    let s = loadSha512(state, stateLen)
    checkPtr(output, outLen, "out")
    check(outLen >= 64, "out: need 64 bytes, got " & $outLen)
    s.ctx.finish(sha512ImplOf(), output)

proc nexpo_hmac_sha512*(key: ptr UncheckedArray[byte], keyLen: int, data: ptr UncheckedArray[byte],
                        len: int, output: ptr UncheckedArray[byte], outLen: int): int32 {.
    exportc, cdecl.} =
  cabi:
    checkPtr(key, keyLen, "key")
    checkPtr(data, len, "data")
    checkPtr(output, outLen, "out")
    check(outLen >= 64, "out: need 64 bytes, got " & $outLen)
    let impl = sha512ImplOf()
    var k = initHmac512Key(impl, key, keyLen)
    hmac512(impl, k, data, len, output)
    wipe(k)
    countCall(kHmacSha512, len)

proc nexpo_hmac_sha512_verify*(key: ptr UncheckedArray[byte], keyLen: int,
                               data: ptr UncheckedArray[byte], len: int,
                               tag: ptr UncheckedArray[byte], tagLen: int, ok: ptr int32): int32 {.
    exportc, cdecl.} =
  cabi:
    checkPtr(key, keyLen, "key")
    checkPtr(data, len, "data")
    checkPtr(tag, tagLen, "tag")
    check(ok != nil, "ok: NULL")
    let impl = sha512ImplOf()
    var k = initHmac512Key(impl, key, keyLen)
    var mac: array[64, byte]
    hmac512(impl, k, data, len, cast[ptr UncheckedArray[byte]](mac[0].addr))
    wipe(k)
    # The tag's length is public; its bytes are compared in constant time.
    ok[] = int32(tagLen == 64 and ctEqual(cast[ptr UncheckedArray[byte]](mac[0].addr), tag, 64))
    wipe(mac)
    countCall(kHmacSha512, len)
