#!/usr/bin/env node
'use strict';
// nexpo vs the usual Node.js way, on this machine (goals from the project's issue):
//   sha256Many 100,000 x 64 B      vs a loop of node:crypto createHash    (>= 10x)
//   hmacSha256Many 100,000 x 64 B  vs a loop of node:crypto createHmac    (>= 10x)
//   ChaCha20-Poly1305, 16 KiB      vs node:crypto createCipheriv          (>= 1.0x)
//   matmul n=512 float32           vs ml-matrix's mmul                    (>= 20x)
// Each case runs ROUNDS interleaved rounds (nexpo, baseline, nexpo, ...) and keeps the median.
// Usage: node bench/bench.js [--rounds N] [--out FILE]  (default ../benchmarks/results/node-latest.json)

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const nexpo = require('..');

const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const ROUNDS = Number(option('--rounds', 5));
const OUT = path.resolve(option('--out', path.join(__dirname, '..', '..', 'benchmarks', 'results', 'node-latest.json')));

/** Seconds per call: `reps` calls per sample, median of the samples. */
function timeIt(fn, reps) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) fn();
  return Number(process.hrtime.bigint() - start) / 1e9 / reps;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function compare(name, goal, unit, work, nexpoFn, baselineName, baselineFn, reps) {
  nexpoFn();
  baselineFn();
  const ours = [];
  const theirs = [];
  for (let r = 0; r < ROUNDS; r++) {
    ours.push(timeIt(nexpoFn, reps.nexpo));
    theirs.push(timeIt(baselineFn, reps.baseline));
  }
  const t = median(ours);
  const b = median(theirs);
  return { name, baseline: baselineName, nexpo_s: t, baseline_s: b, speedup: b / t, goal,
    met: b / t >= goal, throughput_unit: unit, nexpo_throughput: work / t, baseline_throughput: work / b };
}

function hashCases() {
  const messages = Array.from({ length: 100_000 }, () => crypto.randomBytes(64));
  const key = crypto.randomBytes(32);
  const loop = (make) => () => {
    const out = Buffer.allocUnsafe(32 * messages.length);
    for (let i = 0; i < messages.length; i++) make().update(messages[i]).digest().copy(out, 32 * i);
    return out;
  };
  return [
    compare('sha256Many 100000 x 64 B', 10, 'msgs/s', messages.length, () => nexpo.sha256Many(messages),
      'node:crypto createHash loop', loop(() => crypto.createHash('sha256')), { nexpo: 3, baseline: 1 }),
    compare('hmacSha256Many 100000 x 64 B', 10, 'msgs/s', messages.length, () => nexpo.hmacSha256Many(key, messages),
      'node:crypto createHmac loop', loop(() => crypto.createHmac('sha256', key)), { nexpo: 3, baseline: 1 }),
  ];
}

function aeadCase() {
  const key = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(12);
  const data = crypto.randomBytes(16384);
  const openssl = () => {
    const c = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    return Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
  };
  return compare('chacha20poly1305Encrypt 16 KiB', 1.0, 'MB/s', data.length / 1e6,
    () => nexpo.chacha20poly1305Encrypt(key, nonce, data), 'node:crypto createCipheriv', openssl, { nexpo: 2000, baseline: 2000 });
}

function matmulCase() {
  const { Matrix } = require('ml-matrix');
  const n = 512;
  const a = Float32Array.from({ length: n * n }, () => Math.random() - 0.5);
  const b = Float32Array.from({ length: n * n }, () => Math.random() - 0.5);
  const rows = (x) => Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * n, i * n + n)));
  const ma = new Matrix(rows(a));
  const mb = new Matrix(rows(b));
  return compare('matmul n=512 float32', 20, 'GFLOP/s', (2 * n ** 3) / 1e9, () => nexpo.matmul(a, n, n, b, n),
    'ml-matrix mmul', () => ma.mmul(mb), { nexpo: 10, baseline: 1 });
}

function main() {
  const results = [...hashCases(), aeadCase(), matmulCase()];
  const info = nexpo.info();
  console.log(`nexpo ${info.version} (Nim ${info.nimVersion}, ${info.isaActive}, SHA-NI ${info.shaNiActive}, ${info.threads} threads), node ${process.version}, ${os.cpus().length} CPUs, median of ${ROUNDS} rounds`);
  console.log(`${'case'.padEnd(32)} ${'nexpo'.padStart(12)} ${'baseline'.padStart(12)} ${'speedup'.padStart(8)} ${'goal'.padStart(6)}  baseline`);
  for (const r of results) {
    const ms = (s) => `${(s * 1e3).toFixed(3)} ms`;
    console.log(`${r.name.padEnd(32)} ${ms(r.nexpo_s).padStart(12)} ${ms(r.baseline_s).padStart(12)} ${`${r.speedup.toFixed(1)}x`.padStart(8)} ${`${r.goal}x`.padStart(6)}  ${r.baseline}${r.met ? '' : '  (goal not met)'}`);
  }
  const report = { datetime: new Date().toISOString(), node: process.version, cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model, rounds: ROUNDS, nexpo: info, results };
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, `${JSON.stringify(report, null, 1)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), OUT)}`);
}

main();
