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
 * co-signature was valid: hence at once, not later). Resolves to the payments it could not
 * bind, each with its error: a binding that fails never loses the call's value, which was paid
 * for (a merchant that answers after the co-signature's validity would otherwise make a served
 * call throw, and the agent pay again). The record commits to every payment all the same. */
async function bindPayments(recorder, recorded, call) {
  const unbound = [];
  if (!call || call.entries.length === 0) return unbound;
  const { Invalid } = require('./errors.js');
  const ours = [];
  for (const entry of call.entries) {
    if (entry.client.agent === recorded.agent) {
      ours.push(entry);
    } else {
      unbound.push({ payment: entry.payment, error: new Invalid(`payment ${entry.payment.requestId} ` +
        `was signed by agent ${entry.client.agent}, but the call was recorded by ${recorded.agent}: ` +
        "record with the wallet's agent key to bind its payments", {}) });
    }
  }
  if (ours.length === 0) return unbound;
  try {
    await recorder.receipt(recorded);
  } catch (error) {
    return unbound.concat(ours.map(({ payment }) => ({ payment, error })));
  }
  for (const { payment, client } of ours) {
    try {
      await client.bindToCall(payment.requestId, recorded.leafHash);
    } catch (error) {
      // A kept payment presented again (a retry in a later call) is bound to the call that
      // made it; this record commits to it all the same.
      if (error?.code !== 'already_bound') unbound.push({ payment, error });
    }
  }
  return unbound;
}

/** Tells the application, as a process warning, of payments `bindPayments` could not bind:
 * for the integrations, whose callers get the model's or the tool's answer, not a result. */
function warnUnbound(recorded, unbound) {
  for (const { payment, error } of unbound) {
    process.emitWarning(`x402 payment ${payment.requestId} is committed to by record ` +
      `${recorded.leafHash} but could not be bound to it: ${error?.message ?? error}`,
    'ChaperoneUnboundPayment');
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
 * in the metadata) and thrown again. Resolves to `{ value, recorded, payments, unbound }`:
 * `unbound`, the payments whose binding failed (each with its error), is empty as a rule.
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
  const unbound = await bindPayments(recorder, recorded, ran.call);
  if (ran.failed) throw ran.error;
  return { value: ran.value, recorded, payments: ran.call.payments, unbound };
}

module.exports = {
  PaidCall, bindPayments, callMetadata, currentCall, errorOutput, errorType, recordCall, runCall,
  warnUnbound,
};
