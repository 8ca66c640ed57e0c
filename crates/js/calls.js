'use strict';
// The call in progress: which record an x402 payment belongs to. A call (a model call the AI
// SDK middleware records, or any `recordCall`) runs in an AsyncLocalStorage scope; a payment
// made anywhere below it (`wrapFetchWithPayment`, the @x402/core scheme) joins
// that scope. When the call ends, its record commits to the payments (`{"x402": [...]}`
// in its metadata, beside the `gen_ai.*` attributes), and once the record is in the log each
// payment's decision is bound to it (`Wallet.bindToCall`): the policy service's decision then
// names the call it was made in, and an auditor opening the record sees what it paid.
const { AsyncLocalStorage } = require('node:async_hooks');

const { canonicalJson, content } = require('./json.js');

const storage = new AsyncLocalStorage();

/** The payments of one call: each with the client (and so the wallet) that made it. */
class PaidCall {
  constructor() {
    this.entries = [];
    this.ended = false;
  }

  /** Notes `payment`, made through `client` within this call. A payment made after the call
   * ended (by a task it started and left running) is not in its record, which is made: the
   * application has it from the answer (`paymentOf`) or the error. */
  add(payment, client) {
    if (this.ended) return;
    if (!this.entries.some((entry) => entry.payment.requestId === payment.requestId)) {
      this.entries.push({ payment, client });
    }
  }

  /** The payments, in the order they were made. */
  get payments() {
    return this.entries.map((entry) => entry.payment);
  }
}

/** The call in progress here (or undefined): read it before the first `await`. */
function currentCall() {
  return storage.getStore();
}

/** Runs `fn` as a call of its own; resolves to `{ value, error, failed, call }` (a throw is
 * caught, so that the payments made before it are recorded all the same). */
async function runCall(fn) {
  const call = new PaidCall();
  try {
    const value = await storage.run(call, fn);
    return { value, error: undefined, failed: false, call };
  } catch (error) {
    return { value: undefined, error, failed: true, call };
  } finally {
    call.ended = true;
  }
}

/** The metadata for `attributes` and the payments of `call`: the attributes, and the payments
 * under `x402` as `X402Payment.recordMetadata` writes them (so `X402Payment.fromMetadata`,
 * the console and auditors read them). */
function callMetadata(attributes, call) {
  const metadata = { ...attributes };
  if (call && call.entries.length > 0) {
    metadata.x402 = call.entries.map((entry) => JSON.parse(entry.payment.toJson()));
  }
  return metadata;
}

/** Binds each payment of `call` to `recorded` once the record is in the log (the policy
 * service binds a payment only to a logged record of the wallet's agent, received while the
 * co-signature was valid: hence at once, not later). */
async function bindPayments(recorder, recorded, call) {
  if (!call || call.entries.length === 0) return;
  for (const { payment, client } of call.entries) {
    if (client.agent !== recorded.agent) {
      const { Invalid } = require('./errors.js');
      throw new Invalid(`payment ${payment.requestId} was signed by agent ${client.agent}, but ` +
        `the call was recorded by ${recorded.agent}: record with the wallet's agent key to ` +
        'bind its payments', {});
    }
  }
  await recorder.receipt(recorded);
  for (const { payment, client } of call.entries) {
    try {
      await client.bindToCall(payment.requestId, recorded.leafHash);
    } catch (error) {
      // A kept payment presented again (a retry in a later call) is bound to the call that
      // made it; this record commits to it all the same.
      if (error?.code !== 'already_bound') throw error;
    }
  }
}

/** What a failed call's record says it produced. */
function errorOutput(error) {
  return canonicalJson({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
}

function errorType(error) {
  return error instanceof Error ? error.name : typeof error;
}

/**
 * Runs `fn` as one call recorded under `model` with `input`: its value (a string or bytes as
 * they are, anything else as canonical JSON, or `options.output(value)`) is the record's
 * output, `options.metadata` and the x402 payments made within it its metadata, and each
 * payment is bound to the record. A throw is recorded too (its error as the output, `error.type`
 * in the metadata) and thrown again. Resolves to `{ value, recorded, payments }`.
 */
async function recordCall(recorder, model, input, fn, options = {}) {
  const ran = await runCall(fn);
  const attributes = { ...(options.metadata ?? {}) };
  let output;
  if (ran.failed) {
    attributes['error.type'] = errorType(ran.error);
    output = errorOutput(ran.error);
  } else {
    output = options.output ? options.output(ran.value) : content(ran.value ?? null);
  }
  const recorded = await recorder.record(model, content(input), output, callMetadata(attributes, ran.call));
  await bindPayments(recorder, recorded, ran.call);
  if (ran.failed) throw ran.error;
  return { value: ran.value, recorded, payments: ran.call.payments };
}

module.exports = {
  PaidCall, bindPayments, callMetadata, currentCall, errorOutput, errorType, recordCall, runCall,
};
