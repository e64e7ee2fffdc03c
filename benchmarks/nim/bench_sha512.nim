## SHA-512 compression speed per path, in TSC cycles per byte and GB/s, next to OpenSSL's
## `SHA512_Update` (libcrypto, loaded at run time when present: hashlib's kernel) on the same
## buffer. No Python in the loop; one thread.
##
##   .venv/bin/python benchmarks/nim/run.py sha512                 # 64 KiB and 16 MiB
##   .venv/bin/python benchmarks/nim/run.py sha512 -- reps=15 kib=16
##
## Arguments (key=value): reps (9) rounds per case, kib (64,16384) buffer sizes in KiB,
## comma-separated. Each round hashes the buffer enough times to take ~20 ms; the figure is the
## best round (the least disturbed by the other processes sharing these CPUs), with the median.
## TSC cycles tick at the nominal clock, not the boosted one: compare rows, not with datasheets.

import std/[algorithm, dynlib, json, os, sequtils, strutils, times]
import nexpo_core/cpu
import nexpo_core/crypto/sha512/[sha512_generic, sha512_avx2, sha512_avx512]

proc rdtsc(): uint64 {.importc: "__rdtsc", header: "<x86intrin.h>".}

type
  Compress = proc (state: var Sha512State, data: ptr UncheckedArray[byte], nblocks: int) {.nimcall.}
  OpenSslUpdate = proc (ctx: pointer, data: pointer, len: csize_t): cint {.cdecl, gcsafe.}
  OpenSslInit = proc (ctx: pointer): cint {.cdecl, gcsafe.}

type Case = object
  name: string
  body: proc () {.closure.}
  iters: int
  cpb: seq[float]
  bestNs: float

proc calibrate(c: var Case) =
  ## Iterations for a ~2 ms round: short rounds are more often undisturbed.
  c.iters = 1
  c.bestNs = Inf
  while true:
    let t0 = epochTime()
    for _ in 0 ..< c.iters: c.body()
    if epochTime() - t0 > 0.002: break
    c.iters *= 2

proc round(c: var Case, bytes: int) =
  let t0 = epochTime()
  let c0 = rdtsc()
  for _ in 0 ..< c.iters: c.body()
  let c1 = rdtsc()
  let ns = (epochTime() - t0) * 1e9
  c.cpb.add float(c1 - c0) / float(bytes * c.iters)
  c.bestNs = min(c.bestNs, ns / float(c.iters))

proc report(c: var Case, bytes: int) =
  c.cpb.sort()
  echo $(%*{"case": c.name, "bytes": bytes, "cycles_per_byte": c.cpb[0].formatFloat(ffDecimal, 3),
            "median_cpb": c.cpb[c.cpb.len div 2].formatFloat(ffDecimal, 3),
            "GBps": (float(bytes) / c.bestNs).formatFloat(ffDecimal, 3)})

proc compressing(f: Compress, state: var Sha512State, p: ptr UncheckedArray[byte],
                 nblocks: int): proc () =
  ## A closure of its own per path (closures made in one loop would share the loop's variables).
  let st = state.addr
  result = proc () = f(st[], p, nblocks)

proc main() =
  detect()
  var reps = 31
  var sizes = @[64, 16384]
  for arg in commandLineParams():
    let kv = arg.split('=', 1)
    if kv.len != 2: continue
    case kv[0]
    of "reps": reps = parseInt(kv[1])
    of "kib": sizes = kv[1].split(",").mapIt(parseInt(it))
    else: discard
  var paths: seq[(string, Compress)] = @[("generic", Compress(compressGeneric))]
  if best() >= isaAvx2: paths.add ("avx2", Compress(compressAvx2))
  if best() >= isaAvx512: paths.add ("avx512", Compress(compressAvx512))
  let lib = loadLib("libcrypto.so.3")
  var sslInit: OpenSslInit
  var sslUpdate: OpenSslUpdate
  if lib != nil:
    sslInit = cast[OpenSslInit](lib.symAddr("SHA512_Init"))
    sslUpdate = cast[OpenSslUpdate](lib.symAddr("SHA512_Update"))
  var state = sha512Iv
  var ctx: array[256, byte]   # OpenSSL's SHA512_CTX is 216 bytes
  for kib in sizes:
    let bytes = kib * 1024
    var data = newSeq[byte](bytes)
    for i in 0 ..< bytes: data[i] = byte((i * 131 + 7) and 255)
    let p = cast[ptr UncheckedArray[byte]](data[0].addr)
    var cases: seq[Case]
    for (name, fn) in paths:
      cases.add Case(name: name, body: compressing(fn, state, p, bytes div 128))
    if sslInit != nil and sslUpdate != nil:
      discard sslInit(ctx[0].addr)
      let update = sslUpdate
      cases.add Case(name: "openssl", body: proc () = discard update(ctx[0].addr, p, csize_t(bytes)))
    for c in cases.mitems: calibrate(c)
    for _ in 0 ..< reps:   # interleaved: a disturbance hits every case alike
      for c in cases.mitems: round(c, bytes)
    for c in cases.mitems: report(c, bytes)
  if state[0] == 42 or ctx[0] == 42: echo ""   # keep the work observable

main()
