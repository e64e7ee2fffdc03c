#!/usr/bin/env node
'use strict';
// Node -> Python through one shared channel, 64-byte messages, counted per message (goal: at
// least 1M msgs/s). Node sends each message as its own ring item, one call per message
// (trySend) and in batches (sendMany); Python receives with recv_many and checks the count.
// Usage: node bench/channel.js [messages]   (NEXPO_PYTHON: the Python with nexpo, default
// ../.venv/bin/python). Prints one JSON line per variant.

const path = require('node:path');
const { spawn } = require('node:child_process');
const { Channel } = require('..');

const COUNT = Number(process.argv[2]) || 2_000_000;
const SIZE = 64;
const PYTHON = process.env.NEXPO_PYTHON || path.resolve(__dirname, '..', '..', '.venv', 'bin', 'python');

// Python drains until the channel closes, then prints how many it got.
const RECEIVER = `
import os
from nexpo import Channel, ChannelClosed
ch = Channel.open_shared(os.environ["NEXPO_CHANNEL"])
print("ready", flush=True)
n = 0
while True:
    try:
        got = ch.recv_many(4096, timeout=30)
    except ChannelClosed:
        break
    n += len(got)
print(n, flush=True)
`;

function startReceiver(name) {
  const child = spawn(PYTHON, ['-c', RECEIVER], { env: { ...process.env, NEXPO_CHANNEL: name }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.startsWith('ready\n')) resolve();
    });
    child.on('error', reject);
  });
  const done = new Promise((resolve, reject) => {
    child.on('close', (status) => (status === 0 ? resolve(Number(out.split('\n')[1])) : reject(new Error(`python exited ${status}`))));
  });
  return { ready, done };
}

async function run(variant, send) {
  const name = `nexpo-bench-${process.pid}-${variant}`;
  const ch = Channel.createShared(name, 65536, { maxMessageSize: SIZE });
  try {
    const receiver = startReceiver(name);
    await receiver.ready;
    const msg = Buffer.alloc(SIZE, 0x61);
    const start = process.hrtime.bigint();
    send(ch, msg);
    ch.close(); // what is in the ring is still delivered; then Python sees the close
    const got = await receiver.done;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (got !== COUNT) throw new Error(`${variant}: Python received ${got} of ${COUNT}`);
    console.log(JSON.stringify({ bench: 'channel node->python', variant, messages: COUNT, bytes: SIZE,
      seconds: Number(seconds.toFixed(3)), msgs_per_s: Math.round(COUNT / seconds) }));
  } finally {
    ch.close();
  }
}

function perCall(ch, msg) {
  for (let i = 0; i < COUNT; i++) {
    if (!ch.trySend(msg)) ch.send(msg, { timeout: 30_000 });
  }
}

function batched(ch, msg) {
  const batch = new Array(1024).fill(msg);
  for (let i = 0; i < COUNT; i += batch.length) {
    const n = Math.min(batch.length, COUNT - i);
    if (ch.sendMany(n === batch.length ? batch : batch.slice(0, n), { timeout: 30_000 }) !== n) throw new Error('sendMany timed out');
  }
}

(async () => {
  await run('trySend per message', perCall);
  await run('sendMany of 1024', batched);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
