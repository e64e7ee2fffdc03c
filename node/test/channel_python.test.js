'use strict';
// Node <-> Python through one shared ring: 100,000 messages each way, every one exactly once and
// in order. Python is the repository's .venv (NEXPO_PYTHON overrides); skipped only when no
// Python with nexpo is there (`make test` builds it first).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const { Channel } = require('..');

const COUNT = 100_000;
const PYTHON = process.env.NEXPO_PYTHON || path.resolve(__dirname, '..', '..', '.venv', 'bin', 'python');
const hasPython = fs.existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', 'import nexpo'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
const skip = hasPython ? false : `no Python with nexpo at ${PYTHON} (run make build)`;

// Message i: its index (u64 little-endian) then i % 57 bytes of (i + j) & 0xff: lengths 8..64,
// so a lost, repeated or reordered message, or one cut short, shows.
function message(i) {
  const buf = Buffer.allocUnsafe(8 + (i % 57));
  buf.writeBigUInt64LE(BigInt(i));
  for (let j = 8; j < buf.length; j++) buf[j] = (i + j) & 0xff;
  return buf;
}

const PY_MESSAGE = `
def message(i):
    return i.to_bytes(8, "little") + bytes((i + j) & 0xFF for j in range(8, 8 + i % 57))
`;

/** Runs Python code with the channel's name; resolves with its stdout, rejects on failure. */
function python(code, name, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', code], {
      env: { ...process.env, NEXPO_CHANNEL: name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (status === 0) resolve(out);
      else reject(new Error(`python exited ${status ?? signal}\n${out}\n${err}`));
    });
  });
}

function shmName(tag) {
  return `nexpo-node-py-${tag}-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
}

test('Node -> Python: 100,000 messages, exactly once and in order', { skip, timeout: 180_000 }, async () => {
  const name = shmName('n2p');
  const ch = Channel.createShared(name, 1024, { maxMessageSize: 64 });
  try {
    const receiver = python(`${PY_MESSAGE}
import os
from nexpo import Channel, ChannelClosed
ch = Channel.open_shared(os.environ["NEXPO_CHANNEL"])
n = 0
while True:
    try:
        got = ch.recv(timeout=60)
    except ChannelClosed:
        break
    if got != message(n):
        raise SystemExit(f"message {n}: got {got[:8].hex()}... ({len(got)} bytes)")
    n += 1
print(n)
`, name);
    // Half one by one, waiting asynchronously when the ring is full, half in batches.
    for (let i = 0; i < COUNT / 2; i++) {
      if (!ch.trySend(message(i))) await ch.sendAsync(message(i), { timeout: 60_000 });
    }
    for (let i = COUNT / 2; i < COUNT; i += 500) {
      const batch = Array.from({ length: 500 }, (_, j) => message(i + j));
      assert.equal(ch.sendMany(batch, { timeout: 60_000 }), 500);
    }
    // Python opened the ring long ago (it drained it 100 times over); what is still in the ring
    // is delivered after the close, then Python sees the close.
    ch.close();
    assert.equal(Number((await receiver).trim()), COUNT);
  } finally {
    ch.close();
  }
});

test('Python -> Node: 100,000 messages, exactly once and in order', { skip, timeout: 180_000 }, async () => {
  const name = shmName('p2n');
  const ch = Channel.createShared(name, 1024, { maxMessageSize: 64 });
  try {
    const sender = python(`${PY_MESSAGE}
import os
from nexpo import Channel
ch = Channel.open_shared(os.environ["NEXPO_CHANNEL"])
for i in range(0, ${COUNT} // 2):
    ch.send(message(i), timeout=60)
for i in range(${COUNT} // 2, ${COUNT}, 250):
    batch = [message(j) for j in range(i, i + 250)]
    assert ch.send_many(batch, timeout=60) == 250
ch.close()  # for every process: Node drains, then its iteration ends
print("sent")
`, name);
    let n = 0;
    // Async iteration first (each wait on the pool), then synchronous batches.
    for await (const got of ch) {
      assert.ok(got.equals(message(n)), `message ${n}: got ${got.subarray(0, 8).toString('hex')}`);
      n += 1;
      if (n === COUNT / 2) break;
    }
    for (;;) {
      let batch;
      try {
        batch = ch.recvMany(512, { timeout: 60_000 });
      } catch (err) {
        if (err.code === 'ERR_NEXPO_CHANNEL_CLOSED') break;
        throw err;
      }
      for (const got of batch) {
        assert.ok(got.equals(message(n)), `message ${n}: got ${got.subarray(0, 8).toString('hex')}`);
        n += 1;
      }
    }
    assert.equal(n, COUNT);
    assert.equal((await sender).trim(), 'sent');
  } finally {
    ch.close();
  }
});
