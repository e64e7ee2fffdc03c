## Batched GEMM (MatMul over leading batch dimensions, numpy broadcasting through zero strides):
## the batches are split across the scheduler's threads. Attention's many small products
## (heads x batch of seq x seq) would otherwise run one after another on one thread; a large
## product still splits its rows inside `gemmStrided` (nested parallelFor is safe).

import std/atomics
import ../errors
import ../runtime/scheduler
import ./common, ./gemm

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

type
  BatchedGemm* = object
    m*, n*, k*, rsa*, csa*, rsb*, csb*, ldc*: int
    act*: Activation
    brank*: int
    bshape*, bsa*, bsb*, bsc*: array[4, int]   ## batch dims and element strides of A, B, C
    a*, b*, c*, bias*: ptr float32
    failed: Atomic[bool]

proc runBatches(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr BatchedGemm](ctx)
  try:
    for t in lo ..< hi:
      var rest = t
      var oa, ob, oc = 0
      for d in countdown(job.brank - 1, 0):  # row-major index of batch t
        let i = rest mod job.bshape[d]
        rest = rest div job.bshape[d]
        oa += i * job.bsa[d]
        ob += i * job.bsb[d]
        oc += i * job.bsc[d]
      gemmStrided[float32](job.m, job.n, job.k,
        Operand[float32](base: job.a +! oa, rs: job.rsa, cs: job.csa),
        Operand[float32](base: job.b +! ob, rs: job.rsb, cs: job.csb),
        job.c +! oc, job.ldc, job.bias, job.act)
  except CatchableError:
    job.failed.store(true, moRelaxed)

proc batchedGemm*(job: var BatchedGemm) =
  ## Every batch's C = act(A·B + bias); raises NexpoError(stNoMem) when a GEMM could not get its
  ## packing buffers.
  var batches = 1
  for d in 0 ..< job.brank: batches *= job.bshape[d]
  if batches == 1 or numThreads() <= 1:
    runBatches(0, batches, job.addr)
  else:
    parallelFor(0, batches, max(1, batches div (4 * numThreads())), runBatches, job.addr)
  if job.failed.load(moRelaxed):
    fail(stNoMem, "matmul: out of memory for the packing buffers")
