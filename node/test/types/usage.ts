// Compiled by `tsc -p test/types` (make test-node): index.d.ts describes how the package is used.
import * as nexpo from '../..';
import { Channel } from '../..';

const digest: Buffer = nexpo.sha256(Buffer.from('abc'));
const rows: Buffer = nexpo.sha256Many(new Uint8Array(128), 64);
const many: Promise<Buffer> = nexpo.sha256ManyAsync([digest, new Uint16Array(4), new DataView(new ArrayBuffer(8))]);
const mac: Buffer = nexpo.hmacSha256Many(digest, [digest, digest]);
const root: Promise<Buffer> = nexpo.merkleRootAsync([digest]);
const sealed: Buffer = nexpo.chacha20poly1305Encrypt(digest, new Uint8Array(12), digest);
const opened: Promise<Buffer> = nexpo.chacha20poly1305DecryptAsync(digest, new Uint8Array(12), sealed, null);
const c32: Float32Array = nexpo.matmul(new Float32Array(4), 2, 2, new Float32Array(4), 2);
const c64: Promise<Float64Array> = nexpo.matmulAsync(new Float64Array(1), 1, 1, new Float64Array(1), 1);
const isa: nexpo.Isa = nexpo.info().isaActive;
nexpo.setNumThreads(nexpo.getNumThreads());
const channelType: typeof Channel = nexpo.Channel;

// @ts-expect-error: matmul's inputs share one element type
nexpo.matmul(new Float32Array(1), 1, 1, new Float64Array(1), 1);
// @ts-expect-error: strings are not byte sequences here
nexpo.sha256('abc');

export { rows, many, mac, root, opened, c32, c64, isa, channelType };
