/// <reference types="node" />
// Channels of byte messages shared between processes (Node and Python's nexpo.Channel alike).

/** Anything whose bytes are sent as they are. */
export type ChannelMessage = Buffer | NodeJS.TypedArray | DataView | ArrayBuffer;

export type ChannelMode = 'spsc' | 'mpsc' | 'spmc' | 'mpmc';

export interface ChannelCreateOptions {
  /** Who may send and receive at the same time (default 'mpmc'). */
  mode?: ChannelMode;
  /** Largest message in bytes, 0..2^24 (default 65536, as Python's create_shared). */
  maxMessageSize?: number;
}

export interface ChannelWaitOptions {
  /** Milliseconds to wait; undefined, null or Infinity: until it can proceed or is closed. */
  timeout?: number | null;
}

/**
 * A bounded channel of byte messages in POSIX shared memory. Errors carry a `code`:
 * 'ETIMEDOUT' (a TimeoutError: the wait ran out), 'ERR_NEXPO_CHANNEL_CLOSED' (send on a closed
 * channel, or receive from a closed and drained one), 'ERR_NEXPO_CHANNEL_CORRUPTED' (a peer wrote
 * the ring into a state no nexpo peer produces; this process stops trusting it),
 * 'ERR_INVALID_ARG_TYPE' / 'ERR_OUT_OF_RANGE' (bad arguments, named in the message).
 */
export declare class Channel implements AsyncIterable<Buffer> {
  private constructor();
  /** Create the ring at /dev/shm/<name> (fails if the name exists); close() unlinks it. */
  static createShared(name: string, capacity: number, options?: ChannelCreateOptions): Channel;
  /** Attach to a ring another process (Node or Python) created. */
  static openShared(name: string): Channel;

  readonly mode: ChannelMode;
  /** The slot count (the requested capacity rounded up to a power of two, at least 2). */
  readonly capacity: number;
  readonly maxMessageSize: number;
  /** Messages in the ring now (a snapshot). */
  readonly length: number;
  readonly closed: boolean;
  readonly shared: boolean;
  readonly name: string;

  /** Blocks the thread while the ring is full (up to options.timeout ms). */
  send(msg: ChannelMessage, options?: ChannelWaitOptions): void;
  /** Blocks the thread while the ring is empty (up to options.timeout ms). */
  recv(options?: ChannelWaitOptions): Buffer;
  /** false when the ring is full. */
  trySend(msg: ChannelMessage): boolean;
  /** null when the ring is empty. */
  tryRecv(): Buffer | null;
  /** Sends in order; returns how many went (fewer only on a timeout or a close part way). */
  sendMany(msgs: ChannelMessage[], options?: ChannelWaitOptions): number;
  /** Up to maxN ready messages, waiting (up to options.timeout ms) for the first; the Buffers
   *  of one call view one block (keeping one keeps the block alive). */
  recvMany(maxN: number, options?: ChannelWaitOptions): Buffer[];
  /** Waits on a libuv pool thread, never on the event loop. */
  recvAsync(options?: ChannelWaitOptions): Promise<Buffer>;
  sendAsync(msg: ChannelMessage, options?: ChannelWaitOptions): Promise<void>;
  /** Receives until the channel is closed and drained. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer>;
  /** Closes for every process; wakes every waiter. Idempotent. */
  close(): void;
}
