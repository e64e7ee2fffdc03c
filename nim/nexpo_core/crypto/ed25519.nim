## Ed25519 (RFC 8032, pure EdDSA): the front file. Keys from 32-byte seeds, deterministic
## signatures, cofactorless verification as OpenSSL (and so Python's `cryptography`) does it.
##
## ::
##
##   ed25519.nim ── publicKey, sign, verify; the base tables
##        ├── ed25519/field.nim    GF(2^255-19), radix 2^51
##        ├── ed25519/point.nim    extended twisted Edwards coordinates, encode/decode
##        └── ed25519/scalar.nim   mod L, radix-16 and wNAF recoding
##
## Properties:
## - signing is constant-time: [a]B and [r]B walk every entry of a 32×8 table of multiples of
##   256^i·B (selected by masks, ref10's layout) and the scalars mod L are reduced without
##   branches; the seed's hash, the scalar a and the nonce r are wiped before returning
## - verification is variable-time (all its inputs are public): [S]B - [k]A by a joint
##   width-5 NAF for A (8 odd multiples, built per call) and width-8 for B (64 odd multiples
##   of B, built once)
## - verify accepts exactly what OpenSSL accepts: S < L; A decoded as OpenSSL does (y ≥ p is
##   taken mod p, x = 0 with the sign bit set is accepted); the recomputed R is compared with
##   the signature's 32 bytes, so a non-canonical R never verifies; small-order A and R are
##   not rejected (cofactorless equation, no extra checks)
## - `verifyMany` checks each item on its own (one bad signature fails only its slot), in
##   ranges over the scheduler's workers; every worker writes only its own result bytes. Within
##   a range, neighbours with the same key share its decoding, and 16 items at a time share
##   one inversion for encoding their R
## - the tables are built by the module's initialiser (run once by `nexpo_init`), so worker
##   threads only read them

import ../runtime/scheduler
import ./sha512, ./ct, ./batch
import ./ed25519/[field, point, scalar]

export Scalar

const
  ed25519SeedSize* = 32
  ed25519PublicKeySize* = 32
  ed25519SignatureSize* = 64
  ed25519SigningKeySize* = 96      ## a ‖ prefix ‖ public key: what a signing key object holds
  bWindow = 8                      ## wNAF width for B: 2^(bWindow-2) odd multiples
  aWindow = 5                      ## wNAF width for A, built per verification

var
  baseTable: array[32, array[8, Affine]]                      ## [i][j] = (j+1)·256^i·B
  baseOdd: array[1 shl (bWindow - 2), Affine]                 ## [j] = (2j+1)·B

proc buildTables() =
  var row = basePoint
  for i in 0 ..< 32:
    var p = row
    let c = toCached(row)
    for j in 0 ..< 8:
      baseTable[i][j] = toAffine(p)
      addCached(p, p, c)
    for _ in 0 ..< 8: double(row, row)
  let b2 = block:
    var d: Point
    double(d, basePoint)
    toCached(d)
  var p = basePoint
  for j in 0 ..< baseOdd.len:
    baseOdd[j] = toAffine(p)
    addCached(p, p, b2)

buildTables()

proc select(row: int, digit: int8): Affine {.inline.} =
  ## row's entry for |digit| (the identity for 0), negated when digit < 0, by masks only:
  ## every entry is read, and the one whose mask is all ones is OR-ed into the result.
  let d = cast[uint64](int64(digit))
  let negative = d shr 63                            # sign bit
  let absd = (d xor (0'u64 - negative)) + negative   # |digit| in 0..8
  let isZero = 0'u64 - (((absd or (0'u64 - absd)) shr 63) xor 1)
  result.ypx[0] = isZero and 1                       # the identity (1, 1, 0) when digit == 0
  result.ymx[0] = isZero and 1
  let rw = cast[ptr array[15, uint64]](result.addr)
  for j in 0 ..< 8:
    let diff = absd xor uint64(j + 1)
    let hit = 0'u64 - (((diff - 1) shr 63) and 1)   # all ones exactly when diff == 0
    let ew = cast[ptr array[15, uint64]](baseTable[row][j].addr)
    for i in 0 ..< 15: rw[i] = rw[i] or (ew[i] and hit)
  var negated: Affine
  negated.ypx = result.ymx
  negated.ymx = result.ypx
  neg(negated.xy2d, result.xy2d)
  cmovAffine(result, negated, negative)

proc mulBase*(a: Scalar): Point =
  ## [a]B in constant time, for a < 2^255.
  var e = recode16(a)
  result = identity
  var t: Affine
  for i in countup(1, 63, 2):
    t = select(i div 2, e[i])
    addAffine(result, result, t)
  double(result, result, withT = false)
  double(result, result, withT = false)
  double(result, result, withT = false)
  double(result, result)
  for i in countup(0, 62, 2):
    t = select(i div 2, e[i])
    addAffine(result, result, t)
  wipe(e)
  wipe(t)

type
  KeyTable = object
    ## A public key decoded with its odd multiples A, 3A, ..., 15A, reused while the next
    ## item of a batch has the same key bytes.
    key: array[32, byte]
    filled, valid: bool
    odd: array[1 shl (aWindow - 2), Cached]

proc load(t: var KeyTable, pub: ptr UncheckedArray[byte]) =
  if t.filled and equalMem(t.key[0].addr, pub, 32): return
  copyMem(t.key[0].addr, pub, 32)
  t.filled = true
  var a: Point
  t.valid = decode(a, t.key)
  if not t.valid: return
  var a2: Point
  double(a2, a)
  let a2c = toCached(a2)
  t.odd[0] = toCached(a)
  for j in 1 ..< t.odd.len:
    addCached(a, a, a2c)
    t.odd[j] = toCached(a)

proc doubleScalarMulVartime(k: Scalar, t: KeyTable, s: Scalar): Point =
  ## [s]B - [k]A, variable time (public inputs only).
  let ks = slide(k, aWindow)
  let ss = slide(s, bWindow)
  var i = 255
  while i >= 0 and ks[i] == 0 and ss[i] == 0: dec i
  result = identity
  while i >= 0:
    let (kd, sd) = (ks[i], ss[i])
    double(result, result, withT = kd != 0 or sd != 0)
    if kd > 0: subCached(result, result, t.odd[kd div 2], withT = sd != 0)
    elif kd < 0: addCached(result, result, t.odd[(-kd) div 2], withT = sd != 0)
    if sd > 0: addAffine(result, result, baseOdd[sd div 2], withT = false)
    elif sd < 0: subAffine(result, result, baseOdd[(-sd) div 2], withT = false)
    dec i

type
  ExpandedKey = object
    a: Scalar                 ## the clamped secret scalar
    prefix: array[32, byte]   ## the nonce key

proc expand(seed: ptr UncheckedArray[byte]): ExpandedKey =
  var h: array[64, byte]
  sha512(sha512ImplOf(), seed, 32, cast[ptr UncheckedArray[byte]](h[0].addr))
  copyMem(result.a[0].addr, h[0].addr, 32)
  copyMem(result.prefix[0].addr, h[32].addr, 32)
  wipe(h)
  result.a[0] = result.a[0] and 248
  result.a[31] = (result.a[31] and 127) or 64

proc publicKey*(seed: ptr UncheckedArray[byte], output: ptr UncheckedArray[byte]) =
  ## output[0..32) = the public key of the 32-byte seed.
  var k = expand(seed)
  var pub: array[32, byte]
  encode(pub, mulBase(k.a))
  copyMem(output, pub[0].addr, 32)
  wipe(k)

proc hashToScalar(impl: Sha512Impl, parts: openArray[(ptr UncheckedArray[byte], int)]): Scalar =
  var ctx: Sha512Ctx
  ctx.init()
  for (p, n) in parts:
    if n > 0: ctx.update(impl, p, n)
  var h: array[64, byte]
  ctx.finish(impl, cast[ptr UncheckedArray[byte]](h[0].addr))
  result = reduce(h)
  wipe(h)
  wipe(ctx)

template bytes(x: untyped): ptr UncheckedArray[byte] =
  cast[ptr UncheckedArray[byte]](x[0].addr)

proc finishSignature(impl: Sha512Impl, a: Scalar, r: var Scalar, rEnc, pub: var array[32, byte],
                     msg: ptr UncheckedArray[byte], len: int, output: ptr UncheckedArray[byte]) =
  ## output = R ‖ S with S = r + H(R ‖ A ‖ M)·a mod L; wipes r.
  let h = hashToScalar(impl, [(bytes(rEnc), 32), (bytes(pub), 32), (msg, len)])
  var s = mulAdd(h, a, r)
  copyMem(output, rEnc[0].unsafeAddr, 32)
  copyMem(output[32].addr, s[0].addr, 32)
  wipe(r)
  wipe(s)

proc sign*(seed, msg: ptr UncheckedArray[byte], len: int, output: ptr UncheckedArray[byte]) =
  ## output[0..64) = R ‖ S, the RFC 8032 signature of msg[0..len) by the 32-byte seed.
  let impl = sha512ImplOf()
  var k = expand(seed)
  var r = hashToScalar(impl, [(bytes(k.prefix), 32), (msg, len)])
  var rPoint = mulBase(r)
  var rEnc, pub: array[32, byte]
  encodeTwo(rEnc, rPoint, pub, mulBase(k.a))  # one inversion for both encodings
  finishSignature(impl, k.a, r, rEnc, pub, msg, len, output)
  wipe(k)
  wipe(rPoint)

proc signingKey*(seed: ptr UncheckedArray[byte], output: ptr UncheckedArray[byte]) =
  ## output[0..96) = a ‖ prefix ‖ public key of the 32-byte seed: a signing key object keeps
  ## this so each signature costs one base-point multiplication instead of two.
  var k = expand(seed)
  var pub: array[32, byte]
  encode(pub, mulBase(k.a))
  copyMem(output, k.a[0].addr, 32)
  copyMem(output[32].addr, k.prefix[0].addr, 32)
  copyMem(output[64].addr, pub[0].addr, 32)
  wipe(k)

proc signWithKey*(key, msg: ptr UncheckedArray[byte], len: int, output: ptr UncheckedArray[byte]) =
  ## `sign` with the 96 bytes of `signingKey`: the same signature.
  let impl = sha512ImplOf()
  var a: Scalar
  var pub: array[32, byte]
  copyMem(a[0].addr, key[0].addr, 32)
  copyMem(pub[0].addr, key[64].addr, 32)
  var r = hashToScalar(impl, [(cast[ptr UncheckedArray[byte]](key[32].addr), 32), (msg, len)])
  var rPoint = mulBase(r)
  var rEnc: array[32, byte]
  encode(rEnc, rPoint)
  finishSignature(impl, a, r, rEnc, pub, msg, len, output)
  wipe(a)
  wipe(rPoint)

proc candidateR(t: var KeyTable, pub, msg: ptr UncheckedArray[byte], len: int,
                sig: ptr UncheckedArray[byte], r: var Point): bool =
  ## r = [S]B - [k]A, the point sig's R must encode; false when the signature fails earlier
  ## (S ≥ L, or a key that is not a curve point).
  var s: Scalar
  copyMem(s[0].addr, sig[32].addr, 32)
  if not isReduced(s): return false
  t.load(pub)
  if not t.valid: return false
  let h = hashToScalar(sha512ImplOf(), [(sig, 32), (pub, 32), (msg, len)])
  r = doubleScalarMulVartime(h, t, s)
  true

proc verify*(pub, msg: ptr UncheckedArray[byte], len: int, sig: ptr UncheckedArray[byte]): bool =
  ## Is sig[0..64) a valid signature of msg[0..len) under the 32-byte public key?
  var t: KeyTable
  var r: Point
  if not candidateR(t, pub, msg, len, sig, r): return false
  var rEnc: array[32, byte]
  encode(rEnc, r)
  ctEqual(bytes(rEnc), sig, 32)

type
  VerifyJob = object
    keys, sigs: ptr UncheckedArray[byte]   ## 32 and 64 bytes per item
    batch: ptr MessageBatch
    output: ptr UncheckedArray[byte]       ## one 0/1 byte per item

const chunk = 16  ## items whose R encodings share one inversion (Montgomery's trick)

proc verifyRange(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr VerifyJob](ctx)
  var t: KeyTable
  var points: array[chunk, Point]
  var passed: array[chunk, bool]
  var prefix: array[chunk, Fe]        ## prefix[j] = z_0 · … · z_(j-1)
  var i = lo
  while i < hi:
    let m = min(chunk, hi - i)
    var run = feOne
    for j in 0 ..< m:
      let item = i + j
      passed[j] = candidateR(t, cast[ptr UncheckedArray[byte]](job.keys[32 * item].addr),
                             job.batch[].msgPtr(item), job.batch[].msgLen(item),
                             cast[ptr UncheckedArray[byte]](job.sigs[64 * item].addr), points[j])
      if not passed[j]: points[j].z = feOne
      prefix[j] = run
      run = mul(run, points[j].z)
    var inv = invert(run)             ## 1 / (z_0 · … · z_(j)) going down
    for j in countdown(m - 1, 0):
      let item = i + j
      var ok = false
      if passed[j]:
        var rEnc: array[32, byte]
        encodeWith(rEnc, points[j], mul(inv, prefix[j]))
        ok = ctEqual(bytes(rEnc), cast[ptr UncheckedArray[byte]](job.sigs[64 * item].addr), 32)
      job.output[item] = byte(ok)
      inv = mul(inv, points[j].z)
    i += m

proc verifyMany*(keys: ptr UncheckedArray[byte], b: var MessageBatch,
                 sigs, output: ptr UncheckedArray[byte]) =
  ## output[i] = 1 when sigs[64i ..< 64i+64] signs message i under keys[32i ..< 32i+32], else 0.
  var job = VerifyJob(keys: keys, sigs: sigs, batch: b.addr, output: output)
  parallelFor(0, b.n, chunk, verifyRange, job.addr)   # ~40 µs an item
