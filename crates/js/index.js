'use strict';
// @chaperone/sdk: the native classes napi-rs generates (native.js, native.d.ts), with their
// errors turned into the classes of errors.js, and `record` settling at once when the queue
// has room (`recordNow`) instead of through the runtime.
const native = require('./native.js');
const errors = require('./errors.js');
const json = require('./json.js');
const calls = require('./calls.js');

const { fromNative } = errors;
const { agentAddress, readDevnet } = native;

/** Wraps a Promise-returning native method: its rejection (or throw) becomes a typed error. */
function typedAsync(target, name, source = target) {
  const original = source[name];
  const wrapper = function (...args) {
    try {
      return original.apply(this, args).catch((e) => Promise.reject(fromNative(e)));
    } catch (e) {
      return Promise.reject(fromNative(e));
    }
  };
  Object.defineProperty(target, name, { value: wrapper, writable: true, configurable: true });
}

/** Wraps a synchronous native function or method: what it throws becomes a typed error. */
function typedSync(target, name, source = target) {
  const original = source[name];
  const wrapper = function (...args) {
    try {
      return original.apply(this, args);
    } catch (e) {
      throw fromNative(e);
    }
  };
  Object.defineProperty(target, name, { value: wrapper, writable: true, configurable: true });
}

/** The native class with typed static methods. napi-rs defines a class's static methods as
 * read-only, non-configurable properties, so they are shadowed on a subclass instead; the
 * subclass is the class callers see (`instanceof` still holds for the native instances). */
function withTypedStatics(Native, asyncNames, syncNames = []) {
  const Typed = class extends Native {
    static [Symbol.hasInstance](value) {
      return value instanceof Native;
    }
  };
  Object.defineProperty(Typed, 'name', { value: Native.name });
  for (const name of asyncNames) typedAsync(Typed, name, Native);
  for (const name of syncNames) typedSync(Typed, name, Native);
  return Typed;
}

const Recorder = withTypedStatics(native.Recorder, ['open']);
const Wallet = withTypedStatics(native.Wallet, ['connect']);
const Disclosure = withTypedStatics(native.Disclosure, [], ['read', 'fromJson']);
const X402Client = native.X402Client;
const X402Payment = withTypedStatics(native.X402Payment, [], ['fromJson', 'recordMetadata', 'fromMetadata']);
// A payment an error carries (PaymentRefused, PaymentUnanswered) arrives as its JSON.
errors.revivers.payment = (text) => native.X402Payment.fromJson(text);

function metadataBytes(metadata) {
  if (metadata === undefined || metadata === null) return undefined;
  if (typeof metadata === 'string' || metadata instanceof Uint8Array) return metadata;
  return json.canonicalJson(metadata);
}

const nativeRecord = native.Recorder.prototype.record;
const nativeRecordNow = native.Recorder.prototype.recordNow;

native.Recorder.prototype.recordNow = function recordNow(model, input, output, metadata) {
  try {
    return nativeRecordNow.call(this, model, input, output, metadataBytes(metadata));
  } catch (e) {
    throw fromNative(e);
  }
};

native.Recorder.prototype.record = function record(model, input, output, metadata) {
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
  typedAsync(native.Recorder.prototype, name);
}
for (const name of ['pay', 'execute', 'waitForApproval', 'bindToCall', 'signPaymentAuthorization']) {
  typedAsync(native.Wallet.prototype, name);
}
for (const name of ['send', 'authorize', 'watch', 'standing', 'bindToCall']) typedAsync(native.X402Client.prototype, name);
typedSync(native.X402Client.prototype, 'release');
for (const name of ['verifySettlement', 'findSettlement']) typedAsync(native.X402Payment.prototype, name);
typedAsync(native.Disclosure.prototype, 'verifyOnChain');
typedSync(native.Disclosure.prototype, 'write');

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

// One assignment per name, so that ES modules can import them by name (Node's CommonJS lexer).
exports.ChaperoneError = errors.ChaperoneError;
exports.LocalStoreError = errors.LocalStoreError;
exports.ContentFileError = errors.ContentFileError;
exports.MigrationError = errors.MigrationError;
exports.CoreError = errors.CoreError;
exports.Unreachable = errors.Unreachable;
exports.Refused = errors.Refused;
exports.Denied = errors.Denied;
exports.Pending = errors.Pending;
exports.PendingAuthorization = errors.PendingAuthorization;
exports.PaymentRefused = errors.PaymentRefused;
exports.PaymentUnanswered = errors.PaymentUnanswered;
exports.Expired = errors.Expired;
exports.ChainError = errors.ChainError;
exports.Forgotten = errors.Forgotten;
exports.UnknownRecord = errors.UnknownRecord;
exports.Rejected = errors.Rejected;
exports.Invalid = errors.Invalid;
exports.Closed = errors.Closed;
exports.Reason = errors.Reason;
exports.Recorder = Recorder;
exports.Wallet = Wallet;
exports.Disclosure = Disclosure;
exports.X402Client = X402Client;
exports.X402Payment = X402Payment;
exports.recordCall = calls.recordCall;
exports.agentAddress = wrapped.agentAddress;
exports.readDevnet = wrapped.readDevnet;
exports.devnetAgent = devnetAgent;
