// Type declarations of the nexpo package (index.js). Digests are 32-byte Buffers; a batch's
// digests are one Buffer of 32 bytes per message, message i's at [32 * i, 32 * i + 32).
/// <reference types="node" />

export { Channel, ChannelMessage, ChannelMode, ChannelCreateOptions, ChannelWaitOptions } from './lib/channel';

/** Any byte sequence the functions read: its bytes, at its offset, for its byte length. */
export type Bytes = Buffer | NodeJS.TypedArray | DataView | ArrayBuffer;
export type FloatArray = Float32Array | Float64Array;
export type Isa = 'portable' | 'avx2' | 'avx512';

export interface Info {
  version: string;
  nimVersion: string;
  buildProfile: string;
  isaAvailable: Isa[];
  isaBest: Isa;
  isaActive: Isa;
  shaNi: boolean;
  shaNiActive: boolean;
  /** AVX512-IFMA (Poly1305), and whether it is in use (only on the AVX-512 path). */
  ifma: boolean;
  ifmaActive: boolean;
  threads: number;
}

export function info(): Info;
/** Worker threads of the native scheduler (1..1024); matmul splits its work across them. */
export function setNumThreads(n: number): void;
export function getNumThreads(): number;

export function sha256(data: Bytes): Buffer;
export function sha256Async(data: Bytes): Promise<Buffer>;
/** SHA-256 of each message, or of each rowSize-byte row of data. */
export function sha256Many(messages: readonly Bytes[]): Buffer;
export function sha256Many(data: Bytes, rowSize: number): Buffer;
export function sha256ManyAsync(messages: readonly Bytes[]): Promise<Buffer>;
export function sha256ManyAsync(data: Bytes, rowSize: number): Promise<Buffer>;

export function hmacSha256(key: Bytes, data: Bytes): Buffer;
export function hmacSha256Async(key: Bytes, data: Bytes): Promise<Buffer>;
export function hmacSha256Many(key: Bytes, messages: readonly Bytes[]): Buffer;
export function hmacSha256Many(key: Bytes, data: Bytes, rowSize: number): Buffer;
export function hmacSha256ManyAsync(key: Bytes, messages: readonly Bytes[]): Promise<Buffer>;
export function hmacSha256ManyAsync(key: Bytes, data: Bytes, rowSize: number): Promise<Buffer>;

/** RFC 9162 Merkle Tree Hash of the leaves. */
export function merkleRoot(leaves: readonly Bytes[]): Buffer;
export function merkleRoot(data: Bytes, rowSize: number): Buffer;
export function merkleRootAsync(leaves: readonly Bytes[]): Promise<Buffer>;
export function merkleRootAsync(data: Bytes, rowSize: number): Promise<Buffer>;

/** RFC 8439: ciphertext || 16-byte tag. key: 32 bytes, nonce: 12 bytes. */
export function chacha20poly1305Encrypt(key: Bytes, nonce: Bytes, data: Bytes, aad?: Bytes | null): Buffer;
export function chacha20poly1305EncryptAsync(key: Bytes, nonce: Bytes, data: Bytes, aad?: Bytes | null): Promise<Buffer>;
/** The plaintext; throws (err.code 'ERR_NEXPO_AUTH') when anything was altered. */
export function chacha20poly1305Decrypt(key: Bytes, nonce: Bytes, data: Bytes, aad?: Bytes | null): Buffer;
export function chacha20poly1305DecryptAsync(key: Bytes, nonce: Bytes, data: Bytes, aad?: Bytes | null): Promise<Buffer>;

/** The m x n product of row-major a (m x k) and b (k x n), in a new array of their type. */
export function matmul<T extends FloatArray>(a: T, m: number, k: number, b: T, n: number): T;
export function matmulAsync<T extends FloatArray>(a: T, m: number, k: number, b: T, n: number): Promise<T>;
