// The package's types: the native classes' declarations napi-rs generates from src/ (native.d.ts,
// written by the build), the error classes (errors.d.ts) and the one helper written in
// JavaScript (below).
import type { Devnet, Recorded, Recorder, X402Payment } from './native'

export * from './native'
export * from './errors'

/** An agent of a devnet: its key (`0x…`), address and outbox file. */
export interface DevnetAgent {
  key: string
  address: string
  dataFile: string
}

/** The agent `name` of a devnet (`readDevnet()`): its key in `<directory>/<name>.key` (made on
 * first use, mode 0600), its outbox `<directory>/<name>.db`, registered with the devnet's
 * server (again changes nothing). `directory` defaults to the one holding devnet.json. */
export declare function devnetAgent(devnet: Devnet, name: string, directory?: string): Promise<DevnetAgent>

/** Options of `recordCall`. */
export interface RecordCallOptions<T> {
  /** Attributes for the record's metadata (the OpenTelemetry `gen_ai.*` names, say). */
  metadata?: Record<string, unknown>
  /** The record's output for `fn`'s value (default: a string or bytes as they are, anything
   * else as canonical JSON). */
  output?: (value: T) => string | Uint8Array
}

/** A call `recordCall` ran and recorded. */
export interface RecordedCall<T> {
  /** What `fn` returned. */
  value: T
  /** Its record. */
  recorded: Recorded
  /** The x402 payments made within it, each bound to `recorded` unless it is in `unbound`. */
  payments: X402Payment[]
  /** The payments whose binding failed, each with its error (a merchant that answered after
   * the co-signature's validity, a record by another agent): `recorded` commits to them all
   * the same, and the call's value is not lost. Empty as a rule. */
  unbound: { payment: X402Payment, error: unknown }[]
}

/** Runs `fn` as one call recorded under `model` with `input` (a string or bytes, or anything
 * else as canonical JSON): its value is the record's output, and the x402 payments made within
 * it (`wrapFetchWithPayment`, `ChaperoneExactEvmScheme`) are in the record's metadata and bound
 * to it. A throw is recorded too, then thrown again. */
export declare function recordCall<T>(
  recorder: Recorder,
  model: string,
  input: unknown,
  fn: () => T | PromiseLike<T>,
  options?: RecordCallOptions<T>,
): Promise<RecordedCall<Awaited<T>>>
