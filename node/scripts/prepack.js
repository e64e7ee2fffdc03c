#!/usr/bin/env node
'use strict';
// `npm pack` / `npm publish`: copies the C generated from the Nim core, for every CPU the
// package supports, into native/ (nim/libnexpo.py export-c), so installing the tarball needs
// a C compiler and neither Nim nor this repository.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const PKG = path.resolve(__dirname, '..');
const exporter = path.resolve(PKG, '..', 'nim', 'libnexpo.py');
if (!fs.existsSync(exporter)) {
  console.error(`nexpo: ${exporter} not found: pack from the nexpo repository`);
  process.exit(1);
}
const python = process.env.NEXPO_PYTHON || 'python3';
const run = spawnSync(python, [exporter, 'export-c', '--out', path.join(PKG, 'native')], { stdio: ['ignore', 2, 'inherit'] });  // npm pack --json owns stdout
process.exit(run.status ?? 1);
