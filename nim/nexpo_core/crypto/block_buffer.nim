## Merkle–Damgård buffering and padding shared by the streaming hashes (SHA-256, SHA-512):
## input arrives in pieces of any length, the compression function takes whole blocks.
##
## A context is any object with `state`, `buf: array[B, byte]`, `bufLen: int` (0 ..< B) and
## `total: uint64` (bytes absorbed); the hash's own `compress(impl, state, blocks, nblocks)` is
## found where `absorb` is used (`mixin`), so each hash keeps its implementation choice.
##
## Properties:
## - whole blocks of the input are compressed in place: only a partial block is copied
## - `bufLen` < B between calls, so `finish` always has room for the 0x80 byte

proc absorb*[Ctx, Impl](ctx: var Ctx, impl: Impl, data: ptr UncheckedArray[byte], len: int)
    {.inline.} =
  mixin compress
  const B = sizeof(ctx.buf)
  var pos = 0
  ctx.total += uint64(len)
  if ctx.bufLen > 0:
    let take = min(len, B - ctx.bufLen)
    if take > 0: copyMem(ctx.buf[ctx.bufLen].addr, data[0].addr, take)
    ctx.bufLen += take
    pos = take
    if ctx.bufLen < B: return
    compress(impl, ctx.state, cast[ptr UncheckedArray[byte]](ctx.buf[0].addr), 1)
    ctx.bufLen = 0
  let full = (len - pos) div B
  if full > 0:
    compress(impl, ctx.state, cast[ptr UncheckedArray[byte]](data[pos].addr), full)
    pos += B * full
  if pos < len:
    copyMem(ctx.buf[0].addr, data[pos].addr, len - pos)
    ctx.bufLen = len - pos

proc padInto*[Ctx, Impl, State](ctx: Ctx, impl: Impl, state: var State) {.inline.} =
  ## `state` = the state after FIPS 180-4's padding of everything absorbed: 0x80, zeros, then the message
  ## length in bits, big-endian, in the last B/8 bytes (8 for SHA-256, 16 for SHA-512; the
  ## length is kept in bytes, so its bits above 2^64 come from `total shr 61`). `ctx` is unchanged.
  mixin compress
  const B = sizeof(ctx.buf)
  const lengthBytes = B div 8
  var tail: array[2 * B, byte]
  state = ctx.state
  let n = ctx.bufLen
  if n > 0: copyMem(tail[0].addr, ctx.buf[0].unsafeAddr, n)
  tail[n] = 0x80
  let blocks = if n < B - lengthBytes: 1 else: 2
  let bits = ctx.total shl 3
  for i in 0 ..< 8: tail[B * blocks - 1 - i] = byte(bits shr (8 * i))
  when lengthBytes == 16:
    let high = ctx.total shr 61
    for i in 0 ..< 8: tail[B * blocks - 9 - i] = byte(high shr (8 * i))
  compress(impl, state, cast[ptr UncheckedArray[byte]](tail[0].addr), blocks)
