'use strict';
// Channels of byte messages shared with other processes (Python's nexpo.Channel among them):
// the same ring in POSIX shared memory, Buffers in and out. The ring is untrusted input: every
// read of it is checked by the Nim runtime (a ring no nexpo peer could have produced raises an
// error with code ERR_NEXPO_CHANNEL_CORRUPTED, never a crash). This file checks arguments and
// turns timeouts into bounded native waits; node/src/channel*.c are the native half.

const MODES = Object.freeze({ spsc: 0, mpsc: 1, spmc: 2, mpmc: 3 });
const MODE_NAMES = Object.freeze(['spsc', 'mpsc', 'spmc', 'mpmc']);
const MAX_CAPACITY = 1 << 24;
const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024; // as Python's create_shared
const MAX_MESSAGE_SIZE = 1 << 24;
// An async wait blocks one libuv pool thread for one slice at most, then re-queues, so other
// pool work (fs, crypto, the addon's own async calls) gets a turn.
const SLICE_NS = 100_000_000;
const FOREVER = -1;
const INTEREST_RECV = 1;
const INTEREST_SEND = 2;

function typeError(message) {
  const err = new TypeError(message);
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function rangeError(message) {
  const err = new RangeError(message);
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

function timeoutError(op) {
  const err = new Error(`channel ${op} timed out`);
  err.name = 'TimeoutError';
  err.code = 'ETIMEDOUT';
  return err;
}

function checkInt(value, name, lo, hi) {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw typeError(`${name} must be an integer, got ${describe(value)}`);
  }
  if (value < lo || value > hi) throw rangeError(`${name} must be between ${lo} and ${hi}, got ${value}`);
  return value;
}

function describe(value) {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor ? `an instance of ${value.constructor.name}` : 'an object';
  return `${typeof value} ${String(value).slice(0, 40)}`;
}

function checkName(name) {
  if (typeof name !== 'string') throw typeError(`name must be a string, got ${describe(name)}`);
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (!bare || bare.includes('/') || bare.includes('\0') || bare.length > 200) {
    throw rangeError(`name must be 1..200 characters without '/' or NUL, got ${JSON.stringify(name)}`);
  }
  return bare;
}

function checkOptions(options, name) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw typeError(`${name} must be an object, got ${describe(options)}`);
  return options;
}

/** Milliseconds (undefined/null/Infinity: forever) -> nanoseconds, FOREVER for none. */
function timeoutNs(options) {
  const { timeout } = checkOptions(options, 'options');
  if (timeout === undefined || timeout === null || timeout === Infinity) return FOREVER;
  if (typeof timeout !== 'number') {
    throw typeError(`timeout must be a number of milliseconds, got ${describe(timeout)}`);
  }
  if (!(timeout >= 0)) throw rangeError(`timeout must be >= 0 milliseconds, got ${timeout}`);
  return Math.min(Math.round(timeout * 1e6), 2 ** 62);
}

function deadlineOf(ns) {
  return ns === FOREVER ? null : process.hrtime.bigint() + BigInt(ns);
}

/** The next wait's length: a slice at most, 0 once the deadline has passed. */
function nextWait(deadline) {
  if (deadline === null) return SLICE_NS;
  const left = deadline - process.hrtime.bigint();
  return left <= 0n ? 0 : Number(left < BigInt(SLICE_NS) ? left : BigInt(SLICE_NS));
}

/** [block, len0, len1, ...] from the native recvMany -> Buffers viewing the one block. */
function sliceBlock(packed) {
  const out = new Array(Math.max(packed.length - 1, 0));
  const block = packed[0];
  let at = 0;
  for (let i = 1; i < packed.length; i++) {
    out[i - 1] = block.subarray(at, at + packed[i]);
    at += packed[i];
  }
  return out;
}

function channelClass(native) {
  const api = native._channel;

  class Channel {
    #handle;
    #name;

    constructor(handle, name) {
      if (typeof handle !== 'object' || handle === null) {
        throw typeError('use Channel.createShared(name, capacity) or Channel.openShared(name)');
      }
      this.#handle = handle;
      this.#name = name;
    }

    /**
     * Create a channel in POSIX shared memory (/dev/shm/<name>, mode 0600) that other processes
     * open with openShared (Node) or nexpo.Channel.open_shared (Python). Fails when the name
     * exists. close() on the creator unlinks the name.
     */
    static createShared(name, capacity, options) {
      const bare = checkName(name);
      checkInt(capacity, 'capacity', 1, MAX_CAPACITY);
      const opts = checkOptions(options, 'options');
      const mode = opts.mode === undefined ? 'mpmc' : opts.mode;
      if (!Object.hasOwn(MODES, mode)) {
        throw rangeError(`mode must be one of ${MODE_NAMES.join(', ')}, got ${JSON.stringify(mode)}`);
      }
      const maxMessageSize = opts.maxMessageSize === undefined ? DEFAULT_MAX_MESSAGE_SIZE : opts.maxMessageSize;
      checkInt(maxMessageSize, 'maxMessageSize', 0, MAX_MESSAGE_SIZE);
      return new Channel(api.createShared(bare, MODES[mode], capacity, maxMessageSize), name);
    }

    /** Attach to a channel another process (Node or Python) created. */
    static openShared(name) {
      return new Channel(api.openShared(checkName(name)), name);
    }

    #info() {
      return api.info(this.#handle);
    }

    get mode() { return MODE_NAMES[this.#info()[0]]; }
    get capacity() { return this.#info()[1]; }
    get maxMessageSize() { return this.#info()[2]; }
    /** Messages in the ring now (a snapshot). */
    get length() { return this.#info()[3]; }
    get closed() { return this.#info()[4] === 1; }
    get shared() { return this.#info()[5] === 1; }
    get name() { return this.#name; }

    /** Send one message (blocking the thread while the ring is full, up to options.timeout ms). */
    send(msg, options) {
      const ns = timeoutNs(options);
      if (!api.send(this.#handle, msg, ns)) throw timeoutError('send');
    }

    /** Receive one message (blocking the thread up to options.timeout ms while empty). */
    recv(options) {
      const msg = api.recv(this.#handle, timeoutNs(options));
      if (msg === null) throw timeoutError('recv');
      return msg;
    }

    /** Send without waiting: false when the ring is full. */
    trySend(msg) {
      return api.send(this.#handle, msg, 0);
    }

    /** Receive without waiting: null when the ring is empty. */
    tryRecv() {
      return api.recv(this.#handle, 0);
    }

    /**
     * Send the messages in order, waiting up to options.timeout ms for room; returns how many
     * went (all of them unless it timed out or the channel was closed part way).
     */
    sendMany(msgs, options) {
      if (!Array.isArray(msgs)) throw typeError(`msgs must be an Array of Buffers, got ${describe(msgs)}`);
      const deadline = deadlineOf(timeoutNs(options));
      let sent = api.sendMany(this.#handle, msgs, 0);
      while (sent < msgs.length) {
        const wait = nextWait(deadline);
        if (wait === 0) {
          if (sent > 0) return sent;
          throw timeoutError('sendMany');
        }
        // The rest only: what went is not sent twice.
        sent += api.sendMany(this.#handle, sent ? msgs.slice(sent) : msgs, wait);
      }
      return sent;
    }

    /**
     * Receive up to maxN messages that are ready (waiting up to options.timeout ms for one).
     * The Buffers of one call are views of one block (as Buffer.allocUnsafe's pool): keeping
     * one keeps the block alive.
     */
    recvMany(maxN, options) {
      checkInt(maxN, 'maxN', 1, MAX_CAPACITY);
      const deadline = deadlineOf(timeoutNs(options));
      for (;;) {
        const got = sliceBlock(api.recvMany(this.#handle, maxN));
        if (got.length > 0) return got;
        const wait = nextWait(deadline);
        if (wait === 0) throw timeoutError('recvMany');
        const first = api.recv(this.#handle, wait);
        if (first !== null) return maxN > 1 ? [first, ...sliceBlock(api.recvMany(this.#handle, maxN - 1))] : [first];
      }
    }

    /** Receive one message without blocking the event loop (a pool thread waits natively). */
    async recvAsync(options) {
      const deadline = deadlineOf(timeoutNs(options));
      for (;;) {
        const msg = api.recv(this.#handle, 0);
        if (msg !== null) return msg;
        const wait = nextWait(deadline);
        if (wait === 0) throw timeoutError('recv');
        await api.waitAsync(this.#handle, INTEREST_RECV, wait);
      }
    }

    /** Send one message without blocking the event loop. */
    async sendAsync(msg, options) {
      const deadline = deadlineOf(timeoutNs(options));
      for (;;) {
        if (api.send(this.#handle, msg, 0)) return;
        const wait = nextWait(deadline);
        if (wait === 0) throw timeoutError('send');
        await api.waitAsync(this.#handle, INTEREST_SEND, wait);
      }
    }

    /** Receive until the channel is closed and drained. */
    async *[Symbol.asyncIterator]() {
      for (;;) {
        try {
          yield await this.recvAsync();
        } catch (err) {
          if (err.code === 'ERR_NEXPO_CHANNEL_CLOSED') return;
          throw err;
        }
      }
    }

    /** Close for every user (every process); wakes every waiter. Idempotent. */
    close() {
      api.close(this.#handle);
    }

    get [Symbol.toStringTag]() {
      return 'nexpo.Channel';
    }
  }

  return Channel;
}

module.exports = { channelClass, DEFAULT_MAX_MESSAGE_SIZE };
