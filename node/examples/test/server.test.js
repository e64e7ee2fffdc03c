'use strict';
// The example server end to end on 127.0.0.1 and a free port: /hash against node:crypto, /infer
// against a plain-JS forward pass of the same file and (when the repository's .venv is there)
// against Python's own model registry, and bad requests as problem+json.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { start } = require('../server');
const { parseSafetensors } = require('../model');

const MODEL = path.resolve(__dirname, '..', '..', '..', 'api', 'models', 'digits.safetensors');
const PYTHON = process.env.NEXPO_PYTHON || path.resolve(__dirname, '..', '..', '..', '.venv', 'bin', 'python');

let server;
let base;
test.before(async () => {
  server = await start({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${server.address().port}`;
});
test.after(() => new Promise((resolve) => server.close(resolve)));

function post(route, body, type = 'application/json') {
  return fetch(`${base}${route}`, { method: 'POST', body, headers: { 'content-type': type }, signal: AbortSignal.timeout(30_000) });
}

// Seeded pixels 0..16 (no Math.random: a failure reproduces).
function images(rows, seed = 1) {
  let state = seed;
  const next = () => { state = (state * 1103515245 + 12345) % 2147483648; return state; };
  return Array.from({ length: rows }, () => Array.from({ length: 64 }, () => next() % 17));
}

/** The forward pass in float64 JS, straight from the file (no addon). */
function referenceForward(inputs) {
  const { tensors, metadata } = parseSafetensors(fs.readFileSync(MODEL), MODEL);
  const activations = JSON.parse(metadata.activations);
  return inputs.map((row) => {
    let x = row;
    activations.forEach((act, i) => {
      const { shape: [inputs_, outputs], data: w } = tensors.get(`layers.${i}.weight`);
      const b = tensors.get(`layers.${i}.bias`).data;
      const y = Array.from({ length: outputs }, (_, j) => {
        let s = b[j];
        for (let k = 0; k < inputs_; k++) s += x[k] * w[k * outputs + j];
        return act === 'relu' ? Math.max(0, s) : s;
      });
      if (act === 'softmax') {
        const m = Math.max(...y);
        const e = y.map((v) => Math.exp(v - m));
        const sum = e.reduce((a, v) => a + v, 0);
        x = e.map((v) => v / sum);
      } else {
        x = y;
      }
    });
    return x;
  });
}

function assertClose(actual, expected, tol) {
  assert.equal(actual.length, expected.length);
  actual.forEach((row, r) => row.forEach((v, j) => {
    assert.ok(Math.abs(v - expected[r][j]) <= tol, `row ${r}, class ${j}: ${v} vs ${expected[r][j]}`);
  }));
}

test('/hash is the SHA-256 of the body, empty and large bodies included', async () => {
  for (const size of [0, 1, 64, 1000, 5 * 1024 * 1024]) {
    const body = crypto.randomBytes(size);
    const res = await post('/hash', body, 'application/octet-stream');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { sha256: crypto.createHash('sha256').update(body).digest('hex'), bytes: size });
  }
});

test('/hash refuses a body over 16 MiB with a 413 problem', async () => {
  const res = await post('/hash', Buffer.alloc(16 * 1024 * 1024 + 1), 'application/octet-stream');
  assert.equal(res.status, 413);
  assert.match(res.headers.get('content-type'), /application\/problem\+json/);
  assert.equal((await res.json()).status, 413);
});

test('/infer runs the digits MLP: the same answer as a plain-JS forward pass', async () => {
  const inputs = images(32);
  const res = await post('/infer', JSON.stringify({ inputs }));
  assert.equal(res.status, 200);
  const out = await res.json();
  assert.equal(out.model, 'digits');
  assertClose(out.probabilities, referenceForward(inputs), 1e-4);
  out.probabilities.forEach((row, r) => {
    assert.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-4);
    assert.equal(out.labels[r], String(row.indexOf(Math.max(...row))));
  });
});

const hasPython = fs.existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', 'import nexpo.api.inference.registry'], { cwd: path.resolve(__dirname, '..', '..', '..'), stdio: 'ignore', timeout: 60_000 }).status === 0;

test('/infer agrees with the Python gateway\'s model registry', { skip: hasPython ? false : `no ${PYTHON} with the api package` }, async () => {
  const inputs = images(16, 7);
  const script = `
import json, sys
from pathlib import Path
import numpy as np
from nexpo.api.inference.registry import load_model
model = load_model(Path(sys.argv[1]))
x = np.asarray(json.load(sys.stdin), dtype=np.float32)
probs = model.forward(x)
print(json.dumps({"labels": model.label_of(probs), "probabilities": probs.tolist()}))
`;
  const py = spawnSync(PYTHON, ['-c', script, MODEL], {
    cwd: path.resolve(__dirname, '..', '..', '..'), input: JSON.stringify(inputs), encoding: 'utf8', timeout: 120_000,
  });
  assert.equal(py.status, 0, py.stderr);
  const expected = JSON.parse(py.stdout);
  const out = await (await post('/infer', JSON.stringify({ inputs }))).json();
  assert.deepEqual(out.labels, expected.labels);
  assertClose(out.probabilities, expected.probabilities, 1e-5);
});

test('bad /infer requests are 4xx problems that say what is wrong', async () => {
  const cases = [
    ['{"inputs": [[1, 2', 400, /JSON|Unexpected|Expected/],
    [JSON.stringify([1, 2]), 422, /JSON object/],
    [JSON.stringify({ inputs: [] }), 422, /1\.\.1024 rows/],
    [JSON.stringify({ inputs: [[1, 2, 3]] }), 422, /inputs\[0\] must be a list of 64/],
    [JSON.stringify({ inputs: [Array(64).fill(0), [...Array(63).fill(0), 'x']] }), 422, /inputs\[1\]\[63\] must be a finite number/],
    [JSON.stringify({ inputs: Array(1025).fill(Array(64).fill(0)) }), 422, /rows/],
  ];
  for (const [body, status, detail] of cases) {
    const res = await post('/infer', body);
    assert.equal(res.status, status, body.slice(0, 40));
    assert.match(res.headers.get('content-type'), /application\/problem\+json/);
    const problem = await res.json();
    assert.equal(problem.status, status);
    assert.match(problem.detail, detail);
  }
  const missing = await fetch(`${base}/nope`, { signal: AbortSignal.timeout(30_000) });
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get('content-type'), /application\/problem\+json/);
});

test('/healthz', async () => {
  const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(30_000) });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).status, 'ok');
});
