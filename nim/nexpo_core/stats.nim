## Per-kernel call and byte counters, read by Prometheus through `nexpo_kernel_stats`.
##
## Properties:
## - one relaxed atomic add per counter per call: no lock, no allocation
## - each kernel's counters sit on their own cache line, so two threads running different
##   kernels never share a line

import std/atomics
import ./config

type
  Kernel* = enum
    ## Append only: the order is the index the C ABI reports counters in.
    kMatmul = "matmul"
    kLinear = "linear"
    kSha256 = "sha256"
    kSha256Many = "sha256_many"
    kHmacSha256 = "hmac_sha256"
    kMerkle = "merkle"
    kAead = "chacha20poly1305"
    kSha512 = "sha512"
    kAesGcm = "aes256gcm"
    kHmacSha512 = "hmac_sha512"

  Counters = object
    calls {.align: cacheLineSize.}: Atomic[uint64]
    bytes: Atomic[uint64]

var counters: array[Kernel, Counters]

proc countCall*(k: Kernel, bytes: int) {.inline.} =
  ## Record one call of `k` that processed `bytes` bytes of input.
  discard counters[k].calls.fetchAdd(1, moRelaxed)
  discard counters[k].bytes.fetchAdd(uint64(max(bytes, 0)), moRelaxed)

proc callsOf*(k: Kernel): uint64 = counters[k].calls.load(moRelaxed)
proc bytesOf*(k: Kernel): uint64 = counters[k].bytes.load(moRelaxed)
