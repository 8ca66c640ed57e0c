'use strict';
// @chaperone/sdk: the native classes napi-rs generates (native.js, native.d.ts), with their
// errors turned into the classes of errors.js, and `record` settling at once when the queue
// has room (`recordNow`) instead of through the runtime.
const native = require('./native.js');
const errors = require('./errors.js');

const { fromNative } = errors;
const { Recorder, Wallet, Disclosure, Recorded, agentAddress, readDevnet } = native;

/** Wraps a Promise-returning native method: its rejection (or throw) becomes a typed error. */
function typedAsync(target, name) {
  const original = target[name];
  target[name] = function (...args) {
    try {
      return original.apply(this, args).catch((e) => Promise.reject(fromNative(e)));
    } catch (e) {
      return Promise.reject(fromNative(e));
    }
  };
}

/** Wraps a synchronous native function or method: what it throws becomes a typed error. */
function typedSync(target, name) {
  const original = target[name];
  target[name] = function (...args) {
    try {
      return original.apply(this, args);
    } catch (e) {
      throw fromNative(e);
    }
  };
}

/** JSON with every object's keys sorted (bigints as decimal strings), so the same metadata
 * object always commits to the same bytes. */
function canonicalJson(value) {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value) {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    if (typeof value.toJSON === 'function') return sortKeys(value.toJSON());
    const sorted = {};
    for (const key of Object.keys(value).sort()) {
      if (value[key] !== undefined) sorted[key] = sortKeys(value[key]);
    }
    return sorted;
  }
  return value;
}

function metadataBytes(metadata) {
  if (metadata === undefined || metadata === null) return undefined;
  if (typeof metadata === 'string' || metadata instanceof Uint8Array) return metadata;
  return canonicalJson(metadata);
}

const nativeRecord = Recorder.prototype.record;
const nativeRecordNow = Recorder.prototype.recordNow;

Recorder.prototype.recordNow = function recordNow(model, input, output, metadata) {
  try {
    return nativeRecordNow.call(this, model, input, output, metadataBytes(metadata));
  } catch (e) {
    throw fromNative(e);
  }
};

Recorder.prototype.record = function record(model, input, output, metadata) {
  const bytes = metadataBytes(metadata);
  try {
    const recorded = nativeRecordNow.call(this, model, input, output, bytes);
    if (recorded != null) return Promise.resolve(recorded);
    return nativeRecord
      .call(this, model, input, output, bytes)
      .catch((e) => Promise.reject(fromNative(e)));
  } catch (e) {
    return Promise.reject(fromNative(e));
  }
};

for (const name of ['flush', 'sync', 'receipt', 'records', 'disclose', 'forget', 'close']) {
  typedAsync(Recorder.prototype, name);
}
typedAsync(Recorder, 'open');
for (const name of ['pay', 'execute', 'waitForApproval']) typedAsync(Wallet.prototype, name);
typedAsync(Wallet, 'connect');
typedAsync(Disclosure.prototype, 'verifyOnChain');
typedSync(Disclosure.prototype, 'write');
typedSync(Disclosure, 'read');
typedSync(Disclosure, 'fromJson');

/** The agent `name` of a devnet (`readDevnet()`): its key in `<directory>/<name>.key` (made on
 * first use, mode 0600), its outbox `<directory>/<name>.db`, registered with the devnet's
 * server (again changes nothing). `directory` defaults to the one holding devnet.json. */
async function devnetAgent(devnet, name, directory) {
  const fs = require('node:fs');
  const path = require('node:path');
  const { randomBytes } = require('node:crypto');
  if (!/^[A-Za-z0-9_-]+$/.test(name)) {
    throw new TypeError("an agent's name is letters, digits, '-' and '_'");
  }
  const base = directory ?? path.dirname(devnet.policyFile);
  fs.mkdirSync(base, { recursive: true });
  const keyFile = path.join(base, `${name}.key`);
  let key;
  try {
    key = fs.readFileSync(keyFile, 'utf8').trim();
  } catch {
    key = `0x${randomBytes(32).toString('hex')}`;
    fs.writeFileSync(keyFile, `${key}\n`, { mode: 0o600, flag: 'wx' });
  }
  const address = wrapped.agentAddress(key);
  const response = await fetch(`${devnet.serverUrl}/v1/admin/agents`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${devnet.adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ address }),
  });
  if (!response.ok) {
    throw new errors.Refused(`registering agent ${address}: ${response.status} ${await response.text()}`,
      { status: response.status, code: '', serverMessage: '' });
  }
  return { key, address, dataFile: path.join(base, `${name}.db`) };
}

const wrapped = { agentAddress, readDevnet };
typedSync(wrapped, 'agentAddress');
typedSync(wrapped, 'readDevnet');

module.exports = {
  ...errors,
  Recorder,
  Wallet,
  Disclosure,
  Recorded,
  agentAddress: wrapped.agentAddress,
  readDevnet: wrapped.readDevnet,
  devnetAgent,
};
delete module.exports.fromNative;
