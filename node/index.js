'use strict';
// nexpo for Node.js: the Nim core through a Node-API addon (src/*.c, built at install time by
// scripts/build.js). The *Async functions return Promises and run on libuv's thread pool; they
// copy their inputs first, so the caller may reuse its buffers at once.

const path = require('node:path');
const { version } = require('./package.json');

// NEXPO_NODE_ADDON loads another build of the addon (a sanitizer build, in the tests).
const native = require(process.env.NEXPO_NODE_ADDON || path.join(__dirname, 'build', 'Release', 'nexpo.node'));
const { channelClass } = require('./lib/channel');

function info() {
  return { version, ...native.info() };
}

module.exports = {
  info,
  setNumThreads: native.setNumThreads,
  getNumThreads: native.getNumThreads,
  sha256: native.sha256,
  sha256Async: native.sha256Async,
  sha256Many: native.sha256Many,
  sha256ManyAsync: native.sha256ManyAsync,
  hmacSha256: native.hmacSha256,
  hmacSha256Async: native.hmacSha256Async,
  hmacSha256Many: native.hmacSha256Many,
  hmacSha256ManyAsync: native.hmacSha256ManyAsync,
  merkleRoot: native.merkleRoot,
  merkleRootAsync: native.merkleRootAsync,
  chacha20poly1305Encrypt: native.chacha20poly1305Encrypt,
  chacha20poly1305EncryptAsync: native.chacha20poly1305EncryptAsync,
  chacha20poly1305Decrypt: native.chacha20poly1305Decrypt,
  chacha20poly1305DecryptAsync: native.chacha20poly1305DecryptAsync,
  matmul: native.matmul,
  matmulAsync: native.matmulAsync,
  Channel: channelClass(native),
};
