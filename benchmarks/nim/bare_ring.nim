## The channels' byte ring without the channel around it (no close, no wake-ups): one message
## per call through spsc.nim's Lamport templates, for bench_channels.nim's spsc-ring case.

import nexpo_core/runtime/[ring, spsc]

proc spscTryPush*(r: RingView, msg: pointer, len: int, heapCopy: pointer): int {.inline.} =
  ## 1 sent, 0 full.
  lamportPush(r, 1, pos, idx):
    writeMessage(slotAt(r, pos), msg, len, heapCopy)

proc spscPop*(r: RingView, dst: pointer, dstCap, maxLen: int, res: var ReadResult): int {.inline.} =
  ## 1 popped into `res`, 0 empty, -1 the next message is longer than `maxLen` (left in place).
  lamportPop(r, 1, 1, pos, idx, peekLen(slotAt(r, pos)) <= maxLen):
    res = readMessage(slotAt(r, pos), dst, dstCap)
