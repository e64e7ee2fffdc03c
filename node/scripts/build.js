#!/usr/bin/env node
'use strict';
// Builds build/Release/nexpo.node with the C compiler alone: the C generated from the Nim core
// (native/<cpu>/, put in the package by `npm pack`; from ../nim in a source checkout) plus the
// addon's src/*.c, against node_api.h. No node-gyp: it would download Node's headers, and the
// headers are here already: next to this node binary, in /usr/include/node, or node-api-headers.
// Objects are reused while newer than their source and compiled with the same flags.

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PKG = path.resolve(__dirname, '..');
const REPO = path.resolve(PKG, '..');
// --sanitize: the addon's own C under AddressSanitizer + UBSan (the core's objects are the release
// ones), into build/Sanitize/; load it with NEXPO_NODE_ADDON and LD_PRELOAD of the runtimes.
const SANITIZE = process.argv.includes('--sanitize');
const OUT = path.join(PKG, 'build', SANITIZE ? 'Sanitize' : 'Release');
const SANITIZE_FLAGS = ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined'];
const CPUS = { x64: 'amd64', arm64: 'arm64' };
const ADDON_CFLAGS = [...(SANITIZE ? ['-O1', '-g', '-fno-omit-frame-pointer', ...SANITIZE_FLAGS] : ['-O2']),
  '-fPIC', '-std=c11', '-Wall', '-Wextra', '-Wno-unused-parameter',
  '-fvisibility=hidden', '-DNAPI_VERSION=8'];

function fail(message) {
  console.error(`nexpo: ${message}`);
  process.exit(1);
}

function nodeIncludeDir() {
  const candidates = [
    process.env.NEXPO_NODE_INCLUDE,
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  try {
    candidates.push(path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'include'));
  } catch { /* the optional dependency is absent */ }
  const found = candidates.find((dir) => dir && fs.existsSync(path.join(dir, 'node_api.h')));
  if (!found) fail(`node_api.h not found (looked in ${candidates.filter(Boolean).join(', ')}); install Node's headers or the node-api-headers package`);
  return found;
}

/** The generated C for this CPU: refreshed from the Nim sources in a checkout, else the packed copy. */
function nativeDir() {
  const cpu = CPUS[process.arch];
  if (!cpu) fail(`no generated C for ${process.arch} (the package has ${Object.keys(CPUS).join(', ')})`);
  const dir = path.join(PKG, 'native', cpu);
  const exporter = path.join(REPO, 'nim', 'libnexpo.py');
  if (fs.existsSync(exporter) && fs.existsSync(path.join(REPO, 'nimble.toml'))) {
    const python = process.env.NEXPO_PYTHON || 'python3';
    const run = spawnSync(python, [exporter, 'export-c', '--out', path.join(PKG, 'native'), '--cpu', cpu],
      { stdio: ['ignore', 'ignore', 'inherit'] });
    if (run.status !== 0) fail(`${python} ${exporter} export-c failed (status ${run.status ?? run.error})`);
  }
  if (!fs.existsSync(path.join(dir, 'build.json'))) fail(`${dir} is missing: the package was packed without its generated C`);
  return dir;
}

function compiler() {
  const cc = (process.env.CC || 'cc').split(/\s+/).filter(Boolean);
  const probe = spawnSync(cc[0], ['--version'], { stdio: 'ignore' });
  if (probe.error) fail(`no C compiler found (${cc[0]}); install one (Debian/Ubuntu: apt-get install -y gcc)`);
  return cc;
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stderr) : reject(new Error(`${cmd} ${args.join(' ')}\n${stderr}`))));
  });
}

async function pool(tasks, width) {
  let next = 0;
  const workers = Array.from({ length: Math.min(width, tasks.length) }, async () => {
    while (next < tasks.length) await tasks[next++]();
  });
  await Promise.all(workers);
}

function isFresh(obj, src, flagsFile, flags) {
  try {
    return fs.statSync(obj).mtimeMs >= fs.statSync(src).mtimeMs && fs.readFileSync(flagsFile, 'utf8') === flags;
  } catch {
    return false;
  }
}

async function main() {
  const cc = compiler();
  const gen = nativeDir();
  const meta = JSON.parse(fs.readFileSync(path.join(gen, 'build.json'), 'utf8'));
  const include = nodeIncludeDir();
  const objDir = path.join(PKG, 'build', 'obj');
  fs.mkdirSync(objDir, { recursive: true });
  fs.mkdirSync(OUT, { recursive: true });
  const srcDir = path.join(PKG, 'src');
  const units = [
    ...fs.readdirSync(gen).filter((f) => f.endsWith('.c')).map((f) => [path.join(gen, f), meta.cflags]),
    ...fs.readdirSync(srcDir).filter((f) => f.endsWith('.c')).map((f) => [path.join(srcDir, f), [...ADDON_CFLAGS, `-I${include}`]]),
  ];
  // The addon's C includes its own headers and the core's (native/<cpu>/*.h): newer ones rebuild it.
  const headers = [srcDir, gen].flatMap((dir) => fs.readdirSync(dir).filter((f) => f.endsWith('.h'))
    .map((f) => fs.statSync(path.join(dir, f)).mtimeMs));
  const newestHeader = Math.max(0, ...headers);
  const objects = [];
  let compiled = 0;
  const tasks = units.map(([src, flags]) => {
    const id = crypto.createHash('sha1').update(src).digest('hex').slice(0, 12);
    const dir = SANITIZE && src.startsWith(srcDir) ? `${objDir}-sanitize` : objDir;
    fs.mkdirSync(dir, { recursive: true });
    const obj = path.join(dir, `${path.basename(src, '.c').replace(/[^\w.-]/g, '_').slice(-40)}-${id}.o`);
    objects.push(obj);
    const args = [...cc.slice(1), ...flags, `-I${gen}`, '-c', src, '-o', obj];
    const flagsFile = `${obj}.flags`;
    const key = JSON.stringify([cc[0], args]);
    const addonSource = src.startsWith(srcDir);
    return async () => {
      if (isFresh(obj, src, flagsFile, key) && !(addonSource && fs.statSync(obj).mtimeMs < newestHeader)) return;
      const warnings = await run(cc[0], args);
      if (warnings.trim()) process.stderr.write(warnings);
      fs.writeFileSync(flagsFile, key);
      compiled += 1;
    };
  });
  const width = Number(process.env.NEXPO_BUILD_JOBS) || (os.availableParallelism?.() ?? os.cpus().length);
  await pool(tasks, width);
  const target = path.join(OUT, 'nexpo.node');
  // Only Node's entry points leave the addon (some of the core's procs are declared visible).
  const exportsMap = path.join(PKG, 'build', 'exports.map');
  fs.writeFileSync(exportsMap, '{\n  global: napi_register_module_v1; node_api_module_get_api_version_v1;\n  local: *;\n};\n');
  await run(cc[0], [...cc.slice(1), '-shared', `-Wl,--version-script=${exportsMap}`, '-o', `${target}.tmp`,
    ...objects, ...meta.ldflags, ...(SANITIZE ? SANITIZE_FLAGS : [])]);
  fs.renameSync(`${target}.tmp`, target);
  console.error(`nexpo: built ${path.relative(process.cwd(), target)} (${compiled} of ${units.length} C files compiled, ${meta.cpu})`);
}

main().catch((err) => fail(err.message));
