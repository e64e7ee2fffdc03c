## Merkle–Damgård buffering shared by the streaming hashes (SHA-256, SHA-512): input arrives in
## pieces of any length, the compression function takes whole blocks.
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
