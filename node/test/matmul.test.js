'use strict';
// matmul against a naive JS triple loop, Float32Array and Float64Array, odd and empty shapes.

const test = require('node:test');
const assert = require('node:assert/strict');
const nexpo = require('..');

function naive(a, m, k, b, n) {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
    }
  }
  return c;
}

function random(Type, length, seed) {
  const out = new Type(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 2147483648 - 0.5;
  }
  return out;
}

const SHAPES = [[1, 1, 1], [2, 3, 4], [7, 5, 3], [17, 33, 9], [64, 64, 64], [65, 130, 31], [128, 1, 128], [3, 300, 2]];

for (const Type of [Float32Array, Float64Array]) {
  test(`matmul ${Type.name} matches a naive loop`, async () => {
    const tol = Type === Float32Array ? 1e-4 : 1e-12;
    for (const [m, k, n] of SHAPES) {
      const a = random(Type, m * k, m + k);
      const b = random(Type, k * n, n * 7 + 1);
      const want = naive(a, m, k, b, n);
      for (const c of [nexpo.matmul(a, m, k, b, n), await nexpo.matmulAsync(a, m, k, b, n)]) {
        assert.ok(c instanceof Type, `${m}x${k}x${n}: ${c.constructor.name}`);
        assert.equal(c.length, m * n);
        for (let i = 0; i < c.length; i++) {
          assert.ok(Math.abs(c[i] - want[i]) <= tol * Math.max(1, k), `${m}x${k}x${n} [${i}]: ${c[i]} vs ${want[i]}`);
        }
      }
    }
  });
}

test('matmul with an empty dimension', () => {
  assert.equal(nexpo.matmul(new Float32Array(0), 0, 3, new Float32Array(6), 2).length, 0);
  assert.deepEqual(nexpo.matmul(new Float64Array(0), 2, 0, new Float64Array(0), 2), new Float64Array(4));
  assert.equal(nexpo.matmul(new Float32Array(6), 2, 3, new Float32Array(0), 0).length, 0);
});

test('matmul reads a subarray view at its offset', () => {
  const backing = new Float32Array([9, 9, 1, 2, 3, 4]);
  const a = backing.subarray(2); // [[1 2] [3 4]]
  assert.deepEqual(nexpo.matmul(a, 2, 2, new Float32Array([1, 0, 0, 1]), 2), new Float32Array([1, 2, 3, 4]));
});
