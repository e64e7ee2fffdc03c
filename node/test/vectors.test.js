'use strict';
// The published vectors the Python tests use (tests/vectors/): NIST SHA-256 short and long
// messages, RFC 4231 HMAC-SHA-256, RFC 8439 ChaCha20-Poly1305; each through the sync call, the
// batch call and the Promise variant.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const nexpo = require('..');

const VECTORS = path.resolve(__dirname, '..', '..', 'tests', 'vectors');
const hex = (s) => Buffer.from(s, 'hex');
// RFC 4231's long keys are written "aa*131": one byte repeated.
const key = (s) => (/^[0-9a-f]{2}\*\d+$/.test(s) ? Buffer.alloc(Number(s.slice(3)), s.slice(0, 2), 'hex') : hex(s));

function nistCases(file) {
  const cases = [];
  let len = null;
  let msg = null;
  for (const line of fs.readFileSync(path.join(VECTORS, file), 'utf8').split('\n')) {
    const [key, value] = line.split('=').map((s) => s && s.trim());
    if (key === 'Len') len = Number(value);
    else if (key === 'Msg') msg = hex(value).subarray(0, len / 8);
    else if (key === 'MD') cases.push({ len, msg, md: value });
  }
  return cases;
}

for (const file of ['SHA256ShortMsg.rsp', 'SHA256LongMsg.rsp']) {
  test(`SHA-256 ${file}`, async () => {
    const cases = nistCases(file);
    assert.ok(cases.length >= 64, `${file}: ${cases.length} cases`);
    for (const { len, msg, md } of cases) {
      assert.equal(nexpo.sha256(msg).toString('hex'), md, `Len = ${len}`);
    }
    const many = nexpo.sha256Many(cases.map((c) => c.msg));
    assert.equal(many.length, 32 * cases.length);
    cases.forEach(({ len, md }, i) => assert.equal(many.subarray(32 * i, 32 * i + 32).toString('hex'), md, `batch Len = ${len}`));
    const last = cases[cases.length - 1];
    assert.equal((await nexpo.sha256Async(last.msg)).toString('hex'), last.md);
  });
}

test('HMAC-SHA-256 RFC 4231', async () => {
  const { cases } = JSON.parse(fs.readFileSync(path.join(VECTORS, 'rfc4231_hmac_sha256.json'), 'utf8'));
  assert.equal(cases.length, 7);
  for (const c of cases) {
    const k = key(c.key);
    const data = c.data_text !== undefined ? Buffer.from(c.data_text) : hex(c.data);
    const size = c.truncated_to ?? 32;
    assert.equal(nexpo.hmacSha256(k, data).subarray(0, size).toString('hex'), c.mac, `case ${c.case}`);
    assert.equal(nexpo.hmacSha256Many(k, [data]).subarray(0, size).toString('hex'), c.mac, `batch case ${c.case}`);
    assert.equal((await nexpo.hmacSha256Async(k, data)).subarray(0, size).toString('hex'), c.mac, `async case ${c.case}`);
  }
});

test('ChaCha20-Poly1305 RFC 8439', async () => {
  const { aead } = JSON.parse(fs.readFileSync(path.join(VECTORS, 'rfc8439_aead.json'), 'utf8'));
  assert.equal(aead.length, 2);
  for (const v of aead) {
    const [key, nonce, aad, plain] = [hex(v.key), hex(v.nonce), hex(v.aad), Buffer.from(v.plaintext_text)];
    const sealed = Buffer.concat([hex(v.ciphertext), hex(v.tag)]);
    assert.deepEqual(nexpo.chacha20poly1305Encrypt(key, nonce, plain, aad), sealed, v.name);
    assert.deepEqual(nexpo.chacha20poly1305Decrypt(key, nonce, sealed, aad), plain, v.name);
    assert.deepEqual(await nexpo.chacha20poly1305EncryptAsync(key, nonce, plain, aad), sealed, v.name);
    assert.deepEqual(await nexpo.chacha20poly1305DecryptAsync(key, nonce, sealed, aad), plain, v.name);
  }
});
