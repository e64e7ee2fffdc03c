'use strict';
// Channel in one Node process: messages, timeouts, close, async waits, bad arguments and a
// ring rewritten by a hostile peer. Node<->Python is in channel_python.test.js.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const { Channel } = require('..');

let serial = 0;
function shmName() {
  return `nexpo-node-test-${process.pid}-${++serial}-${Math.random().toString(16).slice(2, 8)}`;
}

/** A created channel and a second handle opened on it, both closed afterwards. */
function pair(t, capacity = 4, options) {
  const name = shmName();
  const creator = Channel.createShared(name, capacity, options);
  const peer = Channel.openShared(name);
  t.after(() => {
    peer.close();
    creator.close();
    fs.rmSync(`/dev/shm/${name}`, { force: true });
  });
  return { name, creator, peer };
}

test('a message goes through, bytes for bytes, from every kind of binary view', (t) => {
  const { creator, peer } = pair(t, 8);
  const f64 = new Float64Array([1.5, -2]);
  const sent = [Buffer.from('hello'), new Uint8Array([0, 255]), f64, new DataView(f64.buffer),
    new ArrayBuffer(3), Buffer.alloc(0)];
  for (const msg of sent) creator.send(msg);
  assert.equal(peer.length, sent.length);
  for (const msg of sent) {
    const got = peer.recv({ timeout: 1000 });
    assert.ok(Buffer.isBuffer(got));
    const bytes = ArrayBuffer.isView(msg) ? Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength) : Buffer.from(msg);
    assert.deepEqual(got, bytes);
  }
  assert.equal(peer.tryRecv(), null);
});

test('properties describe the ring', (t) => {
  const { name, creator, peer } = pair(t, 16, { mode: 'spsc', maxMessageSize: 100 });
  assert.equal(peer.mode, 'spsc');
  assert.equal(peer.capacity, 16);
  assert.equal(peer.maxMessageSize, 100);
  assert.equal(peer.shared, true);
  assert.equal(peer.closed, false);
  assert.equal(creator.name, name);
  assert.equal(Object.prototype.toString.call(peer), '[object nexpo.Channel]');
});

test('trySend reports a full ring and tryRecv an empty one', (t) => {
  const { creator, peer } = pair(t, 2);
  assert.equal(creator.trySend(Buffer.from('a')), true);
  assert.equal(creator.trySend(Buffer.from('b')), true);
  assert.equal(creator.trySend(Buffer.from('c')), false);
  assert.deepEqual(peer.tryRecv(), Buffer.from('a'));
  assert.deepEqual(peer.tryRecv(), Buffer.from('b'));
  assert.equal(peer.tryRecv(), null);
});

test('sendMany and recvMany keep the order', (t) => {
  const { creator, peer } = pair(t, 64);
  const msgs = Array.from({ length: 50 }, (_, i) => Buffer.from(`m${i}`));
  assert.equal(creator.sendMany(msgs), 50);
  const got = [...peer.recvMany(30), ...peer.recvMany(30)];
  assert.deepEqual(got.map(String), msgs.map(String));
  assert.throws(() => peer.recvMany(5, { timeout: 10 }), { code: 'ETIMEDOUT' });
});

test('sendMany into a ring that fills: what went is reported, nothing twice', (t) => {
  const { creator, peer } = pair(t, 4);
  const msgs = Array.from({ length: 6 }, (_, i) => Buffer.from([i]));
  assert.equal(creator.sendMany(msgs, { timeout: 20 }), 4);
  assert.deepEqual(peer.recvMany(10).map((b) => b[0]), [0, 1, 2, 3]);
});

/** Sends until the ring is full (a capacity is rounded up to a power of two, at least 2). */
function fill(ch) {
  let n = 0;
  while (ch.trySend(Buffer.from(String(n)))) n += 1;
  return n;
}

test('a wait with a timeout ends with a TimeoutError', (t) => {
  const { creator, peer } = pair(t, 1);
  assert.throws(() => peer.recv({ timeout: 20 }), { name: 'TimeoutError', code: 'ETIMEDOUT' });
  assert.equal(fill(creator), creator.capacity);
  assert.throws(() => creator.send(Buffer.from('y'), { timeout: 20 }), { code: 'ETIMEDOUT' });
  assert.throws(() => creator.send(Buffer.from('y'), { timeout: 0 }), { code: 'ETIMEDOUT' });
});

test('close: sends fail, receivers drain then fail, for every handle', (t) => {
  const { creator, peer } = pair(t, 4);
  creator.send(Buffer.from('last'));
  peer.close();
  assert.equal(creator.closed, true);
  assert.throws(() => creator.send(Buffer.from('x')), { code: 'ERR_NEXPO_CHANNEL_CLOSED', message: /send on a closed/ });
  assert.deepEqual(creator.recv({ timeout: 100 }), Buffer.from('last'));
  assert.throws(() => creator.recv({ timeout: 100 }), { code: 'ERR_NEXPO_CHANNEL_CLOSED' });
  assert.throws(() => creator.tryRecv(), { code: 'ERR_NEXPO_CHANNEL_CLOSED' });
  creator.close(); // idempotent
});

test('recvAsync waits off the event loop and resolves when a message comes', async (t) => {
  const { creator, peer } = pair(t, 4);
  let ticks = 0;
  const timer = setInterval(() => { ticks += 1; }, 5);
  try {
    const pending = peer.recvAsync({ timeout: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(ticks >= 3, `the event loop ran timers meanwhile (${ticks} ticks)`);
    creator.send(Buffer.from('wake'));
    assert.deepEqual(await pending, Buffer.from('wake'));
  } finally {
    clearInterval(timer);
  }
});

test('sendAsync waits for room', async (t) => {
  const { creator, peer } = pair(t, 2);
  assert.equal(fill(creator), 2);
  const pending = creator.sendAsync(Buffer.from('late'), { timeout: 5000 });
  setTimeout(() => peer.recv(), 30);
  await pending;
  assert.deepEqual(peer.recvMany(4).map(String), ['1', 'late']);
  fill(creator);
  await assert.rejects(creator.sendAsync(Buffer.from('more'), { timeout: 20 }), { code: 'ETIMEDOUT' });
});

test('recvAsync with a timeout rejects with a TimeoutError', async (t) => {
  const { peer } = pair(t, 1);
  const started = Date.now();
  await assert.rejects(peer.recvAsync({ timeout: 50 }), { code: 'ETIMEDOUT' });
  assert.ok(Date.now() - started >= 45);
});

test('closing wakes an async waiter, from either handle', async (t) => {
  const { creator, peer } = pair(t, 1);
  const pending = peer.recvAsync(); // no timeout: only the close ends it
  setTimeout(() => creator.close(), 30);
  await assert.rejects(pending, { code: 'ERR_NEXPO_CHANNEL_CLOSED' });
});

test('async iteration ends when the channel is closed and drained', async (t) => {
  const { creator, peer } = pair(t, 8);
  for (const s of ['a', 'b', 'c']) creator.send(Buffer.from(s));
  creator.close();
  const got = [];
  for await (const msg of peer) got.push(String(msg));
  assert.deepEqual(got, ['a', 'b', 'c']);
});

test('bad arguments throw errors that name the argument', (t) => {
  const { creator } = pair(t, 2, { maxMessageSize: 8 });
  const cases = [
    [() => Channel.createShared(42, 4), TypeError, /name must be a string/],
    [() => Channel.createShared('', 4), RangeError, /name must be 1\.\.200/],
    [() => Channel.createShared('a/b', 4), RangeError, /name/],
    [() => Channel.createShared(shmName(), 0), RangeError, /capacity must be between 1/],
    [() => Channel.createShared(shmName(), 1.5), TypeError, /capacity must be an integer/],
    [() => Channel.createShared(shmName(), '4'), TypeError, /capacity/],
    [() => Channel.createShared(shmName(), 4, { mode: 'fifo' }), RangeError, /mode must be one of/],
    [() => Channel.createShared(shmName(), 4, { maxMessageSize: -1 }), RangeError, /maxMessageSize/],
    [() => Channel.createShared(shmName(), 4, 'x'), TypeError, /options/],
    [() => creator.send('text'), TypeError, /msg must be a Buffer/],
    [() => creator.send(undefined), TypeError, /msg/],
    [() => creator.send(Buffer.alloc(1), { timeout: -1 }), RangeError, /timeout must be >= 0/],
    [() => creator.send(Buffer.alloc(1), { timeout: NaN }), RangeError, /timeout/],
    [() => creator.recv({ timeout: '1' }), TypeError, /timeout must be a number/],
    [() => creator.recvMany(0), RangeError, /maxN/],
    [() => creator.sendMany('ab'), TypeError, /msgs must be an Array/],
    [() => creator.sendMany([Buffer.alloc(1), 7]), TypeError, /msgs\[1\]/],
    [() => new Channel(), TypeError, /createShared/],
  ];
  for (const [call, type, message] of cases) assert.throws(call, (err) => err instanceof type && message.test(err.message), String(message));
  assert.throws(() => creator.send(Buffer.alloc(9)), /max/); // over maxMessageSize: the runtime's message
});

test('names that do not exist or already exist are errors', (t) => {
  const { name } = pair(t, 2);
  assert.throws(() => Channel.createShared(name, 2), Error);
  assert.throws(() => Channel.openShared(shmName()), Error);
});

test('the native calls refuse an object that is not a channel handle', () => {
  const fake = new Channel({}, 'fake'); // reaches native code with a plain object
  assert.throws(() => fake.send(Buffer.alloc(1)), { name: 'TypeError', message: /not a nexpo channel handle/ });
  assert.throws(() => fake.tryRecv(), { name: 'TypeError', message: /not a nexpo channel handle/ });
});

// --- a hostile peer -----------------------------------------------------------------------------
// The layout of tests/ring_peer.py (ring.nim): a 512-byte header, then slots of `stride` bytes,
// each [seq u64 | len u32 | kind u32 | payload].
const HEADER_SPAN = 512;
function pokeU32(name, offset, value) {
  const fd = fs.openSync(`/dev/shm/${name}`, 'r+');
  try {
    const buf = Buffer.alloc(4);
    buf.writeUInt32LE(value);
    fs.writeSync(fd, buf, 0, 4, offset);
  } finally {
    fs.closeSync(fd);
  }
}
function stride(name) {
  const fd = fs.openSync(`/dev/shm/${name}`, 'r');
  try {
    const buf = Buffer.alloc(8);
    fs.readSync(fd, buf, 0, 8, 32);
    return Number(buf.readBigUInt64LE());
  } finally {
    fs.closeSync(fd);
  }
}

for (const mode of ['spsc', 'mpmc']) {
  test(`${mode}: a slot length over the slot is a JS error, and stays one`, async (t) => {
    const { name, creator, peer } = pair(t, 4, { mode, maxMessageSize: 32 });
    creator.send(Buffer.alloc(10, 1));
    pokeU32(name, HEADER_SPAN + 8, 150); // slot 0's len
    assert.throws(() => peer.recv({ timeout: 500 }), { code: 'ERR_NEXPO_CHANNEL_CORRUPTED', message: /length over the slot/ });
    assert.throws(() => peer.send(Buffer.from('y'), { timeout: 500 }), { code: 'ERR_NEXPO_CHANNEL_CORRUPTED' });
    await assert.rejects(peer.recvAsync({ timeout: 500 }), { code: 'ERR_NEXPO_CHANNEL_CORRUPTED' });
    assert.ok(stride(name) >= 32);
  });
}

test('a header a nexpo peer never writes is refused at open', (t) => {
  const { name } = pair(t, 4);
  pokeU32(name, 0, 0xdeadbeef); // magic
  assert.throws(() => Channel.openShared(name), (err) => err instanceof Error && typeof err.code === 'string');
});

test('a ring file truncated under an open channel is corruption, not SIGBUS', () => {
  // In a child process: if this regressed, the child dies of a signal instead of this run.
  const script = `
    const fs = require('node:fs');
    const { Channel } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    const name = 'nexpo-node-trunc-' + process.pid;
    const creator = Channel.createShared(name, 64, { maxMessageSize: 1024 });
    const ch = Channel.openShared(name);
    creator.send(Buffer.alloc(100, 7));
    fs.truncateSync('/dev/shm/' + name, 0);
    try { ch.recv({ timeout: 500 }); console.log('no error'); }
    catch (err) { console.log(err.code); }
    creator.close();`;
  const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(out.signal, null, `the child died of ${out.signal}: ${out.stderr}`);
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stdout, /ERR_NEXPO_CHANNEL_CORRUPTED/);
});
