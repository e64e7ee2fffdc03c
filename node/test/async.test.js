'use strict';
// The *Async variants: same answers as the sync calls, run off the JS thread, and immune to the
// caller changing, detaching or dropping its buffers while the job runs (they own copies).

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const nexpo = require('..');

const sha = (b) => crypto.createHash('sha256').update(b).digest();

test('many concurrent jobs of every kind resolve to the sync answers', async () => {
  const key = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(12);
  const jobs = [];
  for (let i = 0; i < 200; i++) {
    const data = crypto.randomBytes(i * 37);
    const batch = [data, data.subarray(1), Buffer.alloc(0)];
    jobs.push(nexpo.sha256Async(data).then((d) => assert.deepEqual(d, sha(data))));
    jobs.push(nexpo.sha256ManyAsync(batch).then((d) => assert.deepEqual(d, nexpo.sha256Many(batch))));
    jobs.push(nexpo.hmacSha256ManyAsync(key, batch).then((d) => assert.deepEqual(d, nexpo.hmacSha256Many(key, batch))));
    jobs.push(nexpo.merkleRootAsync(batch).then((d) => assert.deepEqual(d, nexpo.merkleRoot(batch))));
    jobs.push(nexpo.chacha20poly1305EncryptAsync(key, nonce, data).then(async (sealed) => {
      assert.deepEqual(await nexpo.chacha20poly1305DecryptAsync(key, nonce, sealed), data);
    }));
  }
  await Promise.all(jobs);
});

test('inputs changed right after the call do not change the answer', async () => {
  const data = crypto.randomBytes(1 << 22);
  const want = sha(data);
  const pending = nexpo.sha256Async(data);
  const many = nexpo.sha256ManyAsync([data.subarray(0, 100)], undefined);
  const wantMany = sha(data.subarray(0, 100));
  data.fill(0);
  assert.deepEqual(await pending, want);
  assert.deepEqual(await many, wantMany);

  const a = new Float32Array([1, 2, 3, 4]);
  const product = nexpo.matmulAsync(a, 2, 2, a, 2);
  a.fill(NaN);
  assert.deepEqual(await product, new Float32Array([7, 10, 15, 22]));
});

test('an input detached (transferred) right after the call does not change the answer', async () => {
  const data = new Uint8Array(crypto.randomBytes(1 << 20));
  const want = sha(data);
  const pending = nexpo.sha256Async(data);
  const moved = structuredClone(data.buffer, { transfer: [data.buffer] });
  assert.equal(data.byteLength, 0); // detached
  new Uint8Array(moved).fill(1);
  assert.deepEqual(await pending, want);
  assert.deepEqual(nexpo.sha256(data), sha(Buffer.alloc(0))); // a detached view is 0 bytes
});

test('the event loop runs while a large hash is computed', async () => {
  const data = Buffer.alloc(64 << 20, 7);
  let ticks = 0;
  const timer = setInterval(() => { ticks += 1; }, 0);
  const immediate = new Promise((resolve) => setImmediate(resolve));
  const digest = nexpo.sha256Async(data);
  await immediate; // a callback ran before the job finished (or at worst right after it)
  const result = await digest;
  clearInterval(timer);
  assert.deepEqual(result, sha(data));
  assert.ok(ticks >= 1, `ticks ${ticks}`);
});

test('results outlive the inputs: jobs whose arguments are garbage by the time they finish', async () => {
  const pending = [];
  for (let i = 0; i < 50; i++) pending.push(nexpo.sha256ManyAsync([crypto.randomBytes(1000), crypto.randomBytes(3)]));
  if (global.gc) global.gc();
  for (const p of pending) assert.equal((await p).length, 64);
});
