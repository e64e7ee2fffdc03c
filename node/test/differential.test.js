'use strict';
// nexpo against node:crypto (OpenSSL) over many sizes, around every block boundary, and every
// tamper position of a sealed message; Merkle roots against an RFC 9162 reference in JS.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const nexpo = require('..');

// Every length up to 300 (block and padding boundaries of SHA-256 and ChaCha20), then larger ones.
const SIZES = [...Array.from({ length: 301 }, (_, i) => i), 511, 512, 513, 1023, 4096, 16384, 65537, 1 << 20];
const sha = (b) => crypto.createHash('sha256').update(b).digest();
const hmac = (k, b) => crypto.createHmac('sha256', k).update(b).digest();

test('sha256, sha256Many and the equal-rows form match node:crypto', () => {
  const data = crypto.randomBytes(1 << 20);
  const messages = SIZES.map((n) => data.subarray(0, n));
  for (const m of messages) assert.deepEqual(nexpo.sha256(m), sha(m), `${m.length} bytes`);
  const many = nexpo.sha256Many(messages);
  messages.forEach((m, i) => assert.deepEqual(many.subarray(32 * i, 32 * i + 32), sha(m), `batch ${m.length} bytes`));
  const rows = nexpo.sha256Many(data.subarray(0, 64 * 1000), 64);
  for (let i = 0; i < 1000; i += 37) assert.deepEqual(rows.subarray(32 * i, 32 * i + 32), sha(data.subarray(64 * i, 64 * i + 64)));
  assert.equal(nexpo.sha256Many([]).length, 0);
});

test('views: an offset Buffer, a Uint16Array, a DataView and an ArrayBuffer hash their bytes', () => {
  const bytes = crypto.randomBytes(200);
  const view = bytes.subarray(3, 103);
  assert.deepEqual(nexpo.sha256(view), sha(view));
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 200);
  assert.deepEqual(nexpo.sha256(ab), sha(bytes));
  assert.deepEqual(nexpo.sha256(new DataView(ab, 10, 50)), sha(bytes.subarray(10, 60)));
  assert.deepEqual(nexpo.sha256(new Uint16Array(ab, 4, 20)), sha(bytes.subarray(4, 44)));
});

test('hmacSha256 and hmacSha256Many match node:crypto for short, block-size and long keys', () => {
  const data = crypto.randomBytes(70000);
  for (const keyLen of [0, 1, 31, 32, 63, 64, 65, 200]) {
    const key = crypto.randomBytes(keyLen);
    const messages = SIZES.filter((n) => n <= 70000).map((n) => data.subarray(0, n));
    const many = nexpo.hmacSha256Many(key, messages);
    messages.forEach((m, i) => {
      const want = hmac(key, m);
      assert.deepEqual(many.subarray(32 * i, 32 * i + 32), want, `key ${keyLen}, ${m.length} bytes`);
      if (i % 7 === 0) assert.deepEqual(nexpo.hmacSha256(key, m), want, `key ${keyLen}, ${m.length} bytes`);
    });
  }
});

function merkleReference(leaves) {
  if (leaves.length === 0) return sha(Buffer.alloc(0));
  if (leaves.length === 1) return sha(Buffer.concat([Buffer.from([0]), leaves[0]]));
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Buffer.concat([Buffer.from([1]), merkleReference(leaves.slice(0, k)), merkleReference(leaves.slice(k))]));
}

test('merkleRoot matches an RFC 9162 reference for 0..40 and 1000 leaves', () => {
  for (const n of [...Array.from({ length: 41 }, (_, i) => i), 1000]) {
    const leaves = Array.from({ length: n }, (_, i) => crypto.randomBytes(i % 50));
    assert.deepEqual(nexpo.merkleRoot(leaves), merkleReference(leaves), `${n} leaves`);
  }
});

function openssl(key, nonce, plain, aad) {
  const c = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  if (aad.length) c.setAAD(aad, { plaintextLength: plain.length });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

test('chacha20poly1305 matches node:crypto over many sizes, with and without aad', () => {
  const data = crypto.randomBytes(1 << 20);
  for (const n of SIZES) {
    const key = crypto.randomBytes(32);
    const nonce = crypto.randomBytes(12);
    const aad = data.subarray(0, n % 40);
    const plain = data.subarray(0, n);
    const sealed = nexpo.chacha20poly1305Encrypt(key, nonce, plain, aad);
    assert.deepEqual(sealed, openssl(key, nonce, plain, aad), `${n} bytes`);
    assert.deepEqual(nexpo.chacha20poly1305Decrypt(key, nonce, sealed, aad), plain, `${n} bytes`);
  }
});

test('chacha20poly1305Decrypt throws at every tamper position of ciphertext, tag, aad, key and nonce', () => {
  const key = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(12);
  const aad = crypto.randomBytes(20);
  const plain = crypto.randomBytes(100);
  const sealed = nexpo.chacha20poly1305Encrypt(key, nonce, plain, aad);
  const inputs = { sealed, aad, key, nonce };
  for (const [name, value] of Object.entries(inputs)) {
    for (let i = 0; i < value.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const altered = Buffer.from(value);
        altered[i] ^= bit;
        const args = { ...inputs, [name]: altered };
        assert.throws(() => nexpo.chacha20poly1305Decrypt(args.key, args.nonce, args.sealed, args.aad),
          { code: 'ERR_NEXPO_AUTH', message: /authentication failed/ }, `${name}[${i}] ^ ${bit}`);
      }
    }
  }
  assert.throws(() => nexpo.chacha20poly1305Decrypt(key, nonce, sealed.subarray(0, 115), aad), { code: 'ERR_NEXPO_AUTH' });
  assert.throws(() => nexpo.chacha20poly1305Decrypt(key, nonce, sealed, undefined), { code: 'ERR_NEXPO_AUTH' });
  assert.deepEqual(nexpo.chacha20poly1305Decrypt(key, nonce, sealed, aad), plain);
});
