#!/usr/bin/env node
// A `solc` executable that forge accepts, backed by solc-js (npm `solc`), because native solc
// binaries cannot be downloaded on our machines. Forge asks for `--version` and then sends
// standard JSON on stdin (`--standard-json`) with `--base-path`/`--include-path`/`--allow-paths`;
// imports it did not inline are read from disk relative to those paths, as native solc would.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);
if (args.includes('--version')) {
  // forge parses "Version: X.Y.Z+commit.HASH"
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
  process.exit(1);
}
function argValues(name) {
  const out = [];
  args.forEach((a, i) => {
    if (a === name && i + 1 < args.length) out.push(...args[i + 1].split(','));
    else if (a.startsWith(name + '=')) out.push(...a.slice(name.length + 1).split(','));
  });
  return out;
}
const roots = ['', ...argValues('--base-path'), ...argValues('--include-path')];
function findImports(importPath) {
  for (const root of roots) {
    const candidate = root ? path.resolve(root, importPath) : path.resolve(importPath);
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
  }
  return { error: `File not found: ${importPath}` };
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  process.stdout.write(solc.compile(Buffer.concat(chunks).toString('utf8'), { import: findImports }));
});
