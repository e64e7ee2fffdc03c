'use strict';
// Bad arguments are JS exceptions whose message names the function and the argument: TypeError
// for a wrong type (err.code ERR_INVALID_ARG_TYPE), RangeError for a wrong size or number
// (ERR_OUT_OF_RANGE), ERR_MISSING_ARGS for too few; never a crash.

const test = require('node:test');
const assert = require('node:assert/strict');
const nexpo = require('..');

const K = Buffer.alloc(32);
const N = Buffer.alloc(12);
const F = new Float32Array(4);

const CASES = [
  ['sha256 of a string', () => nexpo.sha256('abc'), TypeError, /^sha256: data must be a Buffer/],
  ['sha256 of a number', () => nexpo.sha256(5), TypeError, /sha256: data/],
  ['sha256 of nothing', () => nexpo.sha256(), TypeError, /sha256: expected 1 argument, got 0/],
  ['sha256Many of a Buffer without rowSize', () => nexpo.sha256Many(Buffer.alloc(4), 'x'), TypeError, /sha256Many: rowSize must be a number/],
  ['sha256Many of an object', () => nexpo.sha256Many({ length: 1 }), TypeError, /sha256Many: messages must be an array/],
  ['sha256Many with a bad element', () => nexpo.sha256Many([Buffer.alloc(1), 7]), TypeError, /sha256Many: messages\[1\] must be/],
  ['sha256Many with a rowSize that does not divide', () => nexpo.sha256Many(Buffer.alloc(10), 3), RangeError, /rowSize must be positive and divide the data's 10 bytes, got 3/],
  ['sha256Many with rowSize 0', () => nexpo.sha256Many(Buffer.alloc(10), 0), RangeError, /rowSize/],
  ['sha256Many with a negative rowSize', () => nexpo.sha256Many(Buffer.alloc(10), -1), RangeError, /rowSize must be a non-negative integer/],
  ['hmacSha256 with a string key', () => nexpo.hmacSha256('k', Buffer.alloc(1)), TypeError, /hmacSha256: key must be/],
  ['hmacSha256 with one argument', () => nexpo.hmacSha256(K), TypeError, /hmacSha256: expected 2 arguments, got 1/],
  ['hmacSha256Many with a bad message', () => nexpo.hmacSha256Many(K, [null]), TypeError, /hmacSha256Many: messages\[0\] must be/],
  ['merkleRoot of a string', () => nexpo.merkleRoot('ab'), TypeError, /merkleRoot: messages must be an array/],
  ['encrypt with a short key', () => nexpo.chacha20poly1305Encrypt(K.subarray(1), N, K), RangeError, /chacha20poly1305Encrypt: key must be 32 bytes, got 31/],
  ['encrypt with a long nonce', () => nexpo.chacha20poly1305Encrypt(K, K, K), RangeError, /chacha20poly1305Encrypt: nonce must be 12 bytes, got 32/],
  ['encrypt with a string aad', () => nexpo.chacha20poly1305Encrypt(K, N, K, 'aad'), TypeError, /chacha20poly1305Encrypt: aad must be/],
  ['encrypt with no data', () => nexpo.chacha20poly1305Encrypt(K, N), TypeError, /expected 3 arguments, got 2/],
  ['decrypt shorter than a tag', () => nexpo.chacha20poly1305Decrypt(K, N, Buffer.alloc(15)), RangeError, /chacha20poly1305Decrypt: data must hold at least the 16-byte tag, got 15 bytes/],
  ['matmul of an Array', () => nexpo.matmul([1, 2, 3, 4], 2, 2, F, 2), TypeError, /matmul: a must be a Float32Array or Float64Array/],
  ['matmul of an Int32Array', () => nexpo.matmul(F, 2, 2, new Int32Array(4), 2), TypeError, /matmul: b must be a Float32Array or Float64Array/],
  ['matmul of mixed types', () => nexpo.matmul(F, 2, 2, new Float64Array(4), 2), TypeError, /matmul: b must be a Float32Array like a/],
  ['matmul with a wrong a size', () => nexpo.matmul(F, 3, 2, F, 2), RangeError, /matmul: a must have 3 x 2 = 6 elements, got 4/],
  ['matmul with a wrong b size', () => nexpo.matmul(F, 2, 2, F, 3), RangeError, /matmul: b must have 2 x 3 = 6 elements, got 4/],
  ['matmul with a fractional m', () => nexpo.matmul(F, 1.5, 2, F, 2), RangeError, /matmul: m must be a non-negative integer, got 1.5/],
  ['matmul with a NaN k', () => nexpo.matmul(F, 2, NaN, F, 2), RangeError, /matmul: k must be a non-negative integer/],
  ['matmul with a string n', () => nexpo.matmul(F, 2, 2, F, '2'), TypeError, /matmul: n must be a number/],
  ['matmul with huge dimensions', () => nexpo.matmul(F, 2 ** 40, 2 ** 40, F, 2), RangeError, /matmul: a/],
  ['setNumThreads(0)', () => nexpo.setNumThreads(0), RangeError, /setNumThreads: n must be between 1 and 1024, got 0/],
  ['setNumThreads("2")', () => nexpo.setNumThreads('2'), TypeError, /setNumThreads: n must be a number/],
];

for (const [name, call, type, message] of CASES) {
  test(name, () => {
    assert.throws(call, (err) => {
      assert.ok(err instanceof type, `${err.constructor.name}: ${err.message}`);
      assert.match(err.message, message);
      assert.match(err.code, /^ERR_(INVALID_ARG_TYPE|OUT_OF_RANGE|MISSING_ARGS)$/);
      return true;
    });
  });
}

test('the Promise variants reject (not throw) only for core failures; argument errors throw at once', async () => {
  assert.throws(() => nexpo.sha256Async('x'), { name: 'TypeError', message: /sha256Async: data/ });
  assert.throws(() => nexpo.matmulAsync(F, 3, 2, F, 2), { name: 'RangeError', message: /matmulAsync: a must have/ });
  const sealed = nexpo.chacha20poly1305Encrypt(K, N, Buffer.from('x'));
  sealed[0] ^= 1;
  await assert.rejects(nexpo.chacha20poly1305DecryptAsync(K, N, sealed), { code: 'ERR_NEXPO_AUTH', message: /chacha20poly1305DecryptAsync: authentication failed/ });
});

test('info() and the thread count', () => {
  const info = nexpo.info();
  assert.equal(info.version, require('../package.json').version);
  assert.match(info.nimVersion, /^\d+\.\d+\.\d+$/);
  assert.ok(info.isaAvailable.includes('portable') && info.isaAvailable.includes(info.isaActive));
  const before = nexpo.getNumThreads();
  nexpo.setNumThreads(3);
  assert.equal(nexpo.info().threads, 3);
  nexpo.setNumThreads(before);
  assert.equal(nexpo.getNumThreads(), before);
});

test('hostile batches: a sparse huge array, a getter that detaches an element already read', () => {
  assert.throws(() => nexpo.sha256Many(new Array(2 ** 30)), { name: 'TypeError', message: /sha256Many: messages\[0\] must be/ });
  const first = new Uint8Array(64).fill(1);
  const want = nexpo.sha256(first);
  const messages = [first, Buffer.alloc(1)];
  Object.defineProperty(messages, 1, {
    get() {
      structuredClone(first.buffer, { transfer: [first.buffer] }); // detach element 0 mid-gather
      return Buffer.alloc(1);
    },
  });
  const digests = nexpo.sha256Many(messages);
  assert.deepEqual(digests.subarray(0, 32), want); // element 0 was copied before the getter ran
  assert.equal(first.byteLength, 0);
});
