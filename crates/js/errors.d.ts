// The error classes index.js builds from the addon's errors (src/errors.rs): one per
// chaperone_sdk::Error variant, all under ChaperoneError. Written by hand: napi-rs generates
// the types of the native classes (native.d.ts), not of these.

import type { X402Payment } from './native'

/** Base class of every Chaperone error. */
export declare class ChaperoneError extends Error {}
/** The local SQLite file (outbox and disclosure store) failed. */
export declare class LocalStoreError extends ChaperoneError {}
/** The local content file (`<data file>-content`) failed. */
export declare class ContentFileError extends ChaperoneError {}
/** The local file's schema migration failed. */
export declare class MigrationError extends ChaperoneError {}
/** A record, commitment or signature could not be built or checked. */
export declare class CoreError extends ChaperoneError {}
/** The server could not be reached or answered garbage; retrying may help. */
export declare class Unreachable extends ChaperoneError {
  readonly url: string
  readonly detail: string
}
/** The server refused the request (a 4xx other than a decision). */
export declare class Refused extends ChaperoneError {
  readonly status: number
  readonly code: string
  /** The API's message (`message` is the whole error's). */
  readonly serverMessage: string
}
/** Why the policy decided as it did. */
export declare class Reason {
  /** The reason's code, e.g. `"per_transaction_cap"`. */
  readonly code: string
  /** The reason in words, amounts in token units (as the server wrote it). */
  readonly text: string
  /** The reason as the API's JSON (exact base-unit values). */
  readonly json: string
  /** The rule's figures (without `code`): amounts as bigints, addresses checksummed. */
  readonly fields: Readonly<Record<string, unknown>>
  readonly amount?: bigint
  readonly cap?: bigint
  readonly spent?: bigint
  readonly max?: bigint
  readonly threshold?: bigint
  readonly token?: string
  readonly [field: string]: unknown
  toString(): string
}
/** The policy denied the payment: every reason, in words and with exact figures. */
export declare class Denied extends ChaperoneError {
  readonly requestId: string
  readonly reasons: Reason[]
}
/** A human approver must approve first: pass `requestId` to `Wallet.waitForApproval`. */
export declare class Pending extends ChaperoneError {
  readonly requestId: string
}
/** A human approver must approve this payment authorization first; ask again once approved. */
export declare class PendingAuthorization extends ChaperoneError {
  readonly requestId: string
}
/** The merchant refused an x402 payment the policy had co-signed. */
export declare class PaymentRefused extends ChaperoneError {
  readonly requestId: string
  readonly reason: string
  /** The payment sent: kept by the client and presented again on a retry. */
  readonly payment: X402Payment
}
/** A request carrying an x402 payment got no answer; a retry presents the same payment. */
export declare class PaymentUnanswered extends ChaperoneError {
  readonly requestId: string
  readonly url: string
  readonly detail: string
  /** The payment sent: kept by the client and presented again on a retry. */
  readonly payment: X402Payment
}
/** The request's validity (or the approval wait) ran out before it could execute. */
export declare class Expired extends ChaperoneError {}
/** The chain failed or reverted the transaction. */
export declare class ChainError extends ChaperoneError {}
/** The record was forgotten (its salts are deleted), so it can no longer be disclosed. */
export declare class Forgotten extends ChaperoneError {
  readonly leafHash: string
}
/** No record with this leaf hash is in the local store. */
export declare class UnknownRecord extends ChaperoneError {
  readonly leafHash: string
}
/** The server rejected a batch for good; later records cannot be delivered either. */
export declare class Rejected extends ChaperoneError {
  readonly batchId: number
  /** The server's reason. */
  readonly serverMessage: string
}
/** Invalid input, or a disclosure that does not verify. */
export declare class Invalid extends ChaperoneError {}
/** The recorder is closed. */
export declare class Closed extends ChaperoneError {}
