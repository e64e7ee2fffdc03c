'use strict';
// What a user installs: `npm pack` ships the C generated from the Nim core (prepack), and the
// tarball installs in a fresh folder, offline, with a C compiler and no Nim (a `nim` and a
// `python3` on PATH that record being called must not be), then works.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PKG = path.resolve(__dirname, '..');


function npm(args, options) {
  return execFileSync('npm', args, { encoding: 'utf8', timeout: 480_000, ...options });
}

test('npm pack -> npm install --offline in a fresh folder without Nim -> require works', { timeout: 900_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nexpo-pack-'));
  try {
    const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], { cwd: PKG, stdio: ['ignore', 'pipe', 'inherit'] }));
    const files = packed[0].files.map((f) => f.path);
    for (const cpu of ['amd64', 'arm64']) {
      assert.ok(files.includes(`native/${cpu}/build.json`), `native/${cpu} packed`);
      assert.ok(files.some((f) => f.startsWith(`native/${cpu}/`) && f.endsWith('capi.nim.c')), `${cpu} C packed`);
    }
    for (const f of ['index.js', 'index.d.ts', 'src/addon.c', 'scripts/build.js', 'lib/channel.js']) assert.ok(files.includes(f), f);
    assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('build/') || f.startsWith('node_modules/')), 'no tests or build output');

    const fakebin = path.join(tmp, 'fakebin');
    const marker = path.join(tmp, 'called');
    fs.mkdirSync(fakebin);
    for (const tool of ['nim', 'python3', 'python', 'node-gyp']) {
      fs.writeFileSync(path.join(fakebin, tool), `#!/bin/sh\necho ${tool} >> "${marker}"\nexit 1\n`, { mode: 0o755 });
    }
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const env = { ...process.env, PATH: `${fakebin}:${process.env.PATH}`, NEXPO_PYTHON: path.join(fakebin, 'python3') };
    npm(['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', path.join(tmp, packed[0].filename)],
      { cwd: app, env, stdio: ['ignore', 'pipe', 'inherit'] });
    assert.ok(!fs.existsSync(marker), `called during install: ${fs.existsSync(marker) && fs.readFileSync(marker, 'utf8')}`);

    const out = execFileSync(process.execPath, ['-e', `
      const nexpo = require('nexpo');
      const c = nexpo.matmul(new Float32Array([1, 2, 3, 4]), 2, 2, new Float32Array([1, 0, 0, 1]), 2);
      console.log(JSON.stringify({ digest: nexpo.sha256(Buffer.from('abc')).toString('hex'), c: Array.from(c),
        version: nexpo.info().version, channel: typeof nexpo.Channel.createShared }));
    `], { cwd: app, encoding: 'utf8', timeout: 60_000 });
    assert.deepEqual(JSON.parse(out), {
      digest: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      c: [1, 2, 3, 4],
      version: require('../package.json').version,
      channel: 'function',
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
