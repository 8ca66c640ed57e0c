// A real devnet for the tests, as crates/py/tests/conftest.py starts one: `chaperone up`
// (Anvil, the contracts, the server on SQLite) in a temporary directory, free ports, and
// helpers for the admin API and the server's export.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { agentAddress, readDevnet } from '../index.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The `chaperone` binary: CHAPERONE_BIN, or the debug build under CARGO_TARGET_DIR. */
export function chaperoneBinary() {
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
  const binary = process.env.CHAPERONE_BIN ?? join(target, 'debug/chaperone');
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: build it with \`cargo build -p chaperone-cli\` ` +
      '(or point CHAPERONE_BIN at a chaperone binary)');
  }
  return binary;
}

/** A port nobody listens on now. */
export async function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

// Every temporary directory goes when the process does: a benchmark's store alone is ~500 MB.
const temporaries = [];
process.on('exit', () => {
  for (const dir of temporaries) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the process exits. */
export function tempDir(prefix = 'chaperone-js-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporaries.push(dir);
  return dir;
}

/** Starts `chaperone up --json` and resolves once it printed its JSON document. */
export async function startDevnet() {
  const binary = chaperoneBinary();
  const dir = tempDir('chaperone-devnet-');
  const args = ['up', '--json', '--data-dir', dir, '--port', String(await freePort()),
    '--anvil-port', String(await freePort()), '--facilitator-port', String(await freePort())];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((done, fail) => {
    child.once('exit', (code) => fail(new Error(`chaperone up ended (exit ${code}) before its JSON`)));
    lines.on('line', (line) => {
      try {
        done(JSON.parse(line));
      } catch {
        // progress lines before the JSON document
      }
    });
  });
  if (first.error) throw new Error(`chaperone up failed: ${JSON.stringify(first)}`);
  const info = readDevnet(join(dir, 'devnet.json'));
  return {
    info,
    dir,
    binary,
    /** Calls the server's admin API with the devnet's admin token. */
    async admin(method, path, body) {
      const response = await fetch(info.serverUrl + path, {
        method,
        headers: { Authorization: `Bearer ${info.adminToken}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
      const text = await response.text();
      return text ? JSON.parse(text) : null;
    },
    /** Every sequence number the server logged for `agent`, through all pages. */
    loggedSequences(agent) {
      const output = execFileSync(binary, ['export', '--server', info.serverUrl, '--what',
        'records', '--agent', agent, '--format', 'jsonl'], {
        env: { ...process.env, CHAPERONE_ADMIN_TOKEN: info.adminToken },
        encoding: 'utf8',
        maxBuffer: 1 << 30,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      return output.split('\n').filter(Boolean).map((line) => JSON.parse(line).sequence);
    },
    /** A fresh agent key, registered with the devnet (only registered agents may append). */
    async agentKey() {
      const key = `0x${randomBytes(32).toString('hex')}`;
      await this.admin('POST', '/v1/admin/agents', { address: agentAddress(key) });
      return key;
    },
    /** Stops it (SIGINT, as Ctrl-C), killing it if it takes over 30 s. */
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Discloses a record once a checkpoint covers it and is anchored (the devnet checkpoints and
 * anchors every 2 s; until then the server answers 409 `not_checkpointed`). */
export async function anchoredDisclosure(recorder, leafHash, kinds, timeoutMs = 60_000) {
  const { Refused } = await import('../index.js');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const disclosure = await recorder.disclose(leafHash, kinds);
      if (disclosure.anchored || Date.now() > deadline) return disclosure;
    } catch (e) {
      if (!(e instanceof Refused) || e.code !== 'not_checkpointed' || Date.now() > deadline) throw e;
    }
    await new Promise((done) => setTimeout(done, 500));
  }
}
