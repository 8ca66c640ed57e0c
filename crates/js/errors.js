'use strict';
// The SDK's errors as classes under ChaperoneError, one per chaperone_sdk::Error variant
// (src/errors.rs sends each as a native error whose cause holds its kind and details as JSON).

/** Base class of every Chaperone error. */
class ChaperoneError extends Error {
  constructor(message, details) {
    super(message);
    this.name = new.target.name;
    Object.assign(this, details);
  }
}

const kinds = {};
function kind(name, doc) {
  const cls = { [name]: class extends ChaperoneError {} }[name];
  cls.description = doc;
  kinds[name] = cls;
  return cls;
}

const LocalStoreError = kind('LocalStoreError', 'The local SQLite file (outbox and disclosure store) failed.');
const ContentFileError = kind('ContentFileError', 'The local content file (`<data file>-content`) failed.');
const MigrationError = kind('MigrationError', "The local file's schema migration failed.");
const CoreError = kind('CoreError', 'A record, commitment or signature could not be built or checked.');
const Unreachable = kind('Unreachable', 'The server could not be reached or answered garbage; retrying may help.');
const Refused = kind('Refused', 'The server refused the request (a 4xx other than a decision).');
const Denied = kind('Denied', 'The policy denied the payment; `reasons` says why, with exact figures.');
const Pending = kind('Pending', 'A human approver must approve first: pass `requestId` to `Wallet.waitForApproval`.');
const PendingAuthorization = kind('PendingAuthorization', 'A human approver must approve this payment authorization first; ask again once approved.');
const PaymentRefused = kind('PaymentRefused', 'The merchant refused an x402 payment the policy had co-signed.');
const PaymentUnanswered = kind('PaymentUnanswered', 'A request carrying an x402 payment got no answer; a retry presents the same payment.');
const Expired = kind('Expired', "The request's validity (or the approval wait) ran out before it could execute.");
const ChainError = kind('ChainError', 'The chain failed or reverted the transaction.');
const Forgotten = kind('Forgotten', 'The record was forgotten (its salts are deleted), so it can no longer be disclosed.');
const UnknownRecord = kind('UnknownRecord', 'No record with this leaf hash is in the local store.');
const Rejected = kind('Rejected', 'The server rejected a batch for good; later records cannot be delivered either.');
const Invalid = kind('Invalid', 'Invalid input, or a disclosure that does not verify.');
const Closed = kind('Closed', 'The recorder is closed.');

/** The fields of reasons that hold amounts (hex in the API's JSON, bigints here). */
const AMOUNT_FIELDS = new Set(['amount', 'cap', 'spent', 'max', 'threshold']);

/** Why the policy decided as it did: `code`, the rule's figures as fields (amounts are
 * bigints, addresses checksummed), `text` in words and `json` with the exact values. */
class Reason {
  constructor({ fields, text, json }) {
    this.code = fields.code;
    this.text = text;
    this.json = json;
    const figures = {};
    for (const [key, value] of Object.entries(fields)) {
      if (key === 'code') continue;
      figures[key] = AMOUNT_FIELDS.has(key) && typeof value === 'string' ? BigInt(value) : value;
    }
    this.fields = figures;
    Object.assign(this, figures);
  }

  toString() {
    return this.text;
  }
}

/** Turn a detail's JSON into its value (index.js sets `payment`: an X402Payment). */
const revivers = {};

/** The typed error for an error the addon threw (anything else is returned as it is). */
function fromNative(error) {
  if (!(error instanceof Error) || error instanceof ChaperoneError) return error;
  // napi-rs's statuses for an argument of the wrong type or form (src/convert.rs uses
  // InvalidArg too): a TypeError, as from any JavaScript function.
  if (error.code === 'InvalidArg' || /Expected$/.test(error.code ?? '')) {
    return new TypeError(error.message);
  }
  const cause = error.cause;
  if (!cause || typeof cause.message !== 'string' || !cause.message.startsWith('{')) return error;
  let details;
  try {
    details = JSON.parse(cause.message);
  } catch {
    return error;
  }
  const { kind: name, ...rest } = details;
  const cls = kinds[name];
  if (!cls) return error;
  if (Array.isArray(rest.reasons)) rest.reasons = rest.reasons.map((r) => new Reason(r));
  for (const [field, revive] of Object.entries(revivers)) {
    if (typeof rest[field] === 'string') rest[field] = revive(rest[field]);
  }
  return new cls(error.message, rest);
}

module.exports = {
  ChaperoneError, LocalStoreError, ContentFileError, MigrationError, CoreError, Unreachable,
  Refused, Denied, Pending, PendingAuthorization, PaymentRefused, PaymentUnanswered, Expired,
  ChainError, Forgotten, UnknownRecord, Rejected, Invalid, Closed, Reason, fromNative, revivers,
};
