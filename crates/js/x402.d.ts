// The types of x402.js: a paying `fetch` (the shape of @x402/fetch's `wrapFetchWithPayment`)
// and the "exact" EVM scheme for @x402/core's `x402Client`. Written by hand, structurally: this
// package needs neither @x402/core nor @x402/fetch, and its scheme is assignable to
// @x402/core's `SchemeNetworkClient` (test/types.ts checks it with `tsc --strict`).
import type { Wallet, X402Client, X402Payment } from './native'

/** How `wrapFetchWithPayment`'s requests are sent. */
export interface FetchWithPaymentOptions {
  /** A bound on each HTTP exchange, in ms (default 300,000). */
  timeoutMs?: number
}

/** A `fetch` that pays x402 resources from `payer` within the wallet's policy (see x402.js):
 * denied payments reject with `Denied` before the merchant sees any; payments made within a
 * recorded call are bound to its record. `fetch` serves non-http(s) URLs. */
export declare function wrapFetchWithPayment(
  fetch: typeof globalThis.fetch,
  payer: Wallet | X402Client,
  options?: FetchWithPaymentOptions,
): (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>

/** The payment made for an answer of `wrapFetchWithPayment`, or null if nothing was paid. */
export declare function paymentOf(response: Response): X402Payment | null

/** An x402 payment requirement (v2 `amount`, v1 `maxAmountRequired`), as @x402/core holds it. */
export interface PaymentRequirementsLike {
  scheme: string
  network: string
  asset: string
  payTo: string
  amount?: string
  maxAmountRequired?: string
  maxTimeoutSeconds: number
  extra?: Record<string, unknown>
}

/** What @x402/core's client tells a scheme about the 402. */
export interface PaymentPayloadContextLike {
  extensions?: Record<string, unknown>
  maxAmountPerPayment?: string
}

/** What a scheme returns: the payload, and the extensions it echoes (x402 v2). */
export interface PaymentPayloadResultLike {
  x402Version: number
  payload: Record<string, unknown>
  extensions?: Record<string, unknown>
}

/** Options of `ChaperoneExactEvmScheme`. */
export interface ChaperoneSchemeOptions {
  /** The URL the payment records name (default: the 402's `resource.url`, as the merchant
   * states it). */
  resource?: string
}

/** The "exact" EVM scheme for @x402/core's `x402Client`, paying from a Chaperone wallet: the
 * SDK picks the method, nonce and validity and gets the co-signature (`X402Client.authorize`).
 * A denial rejects `createPaymentPayload` with `Denied`, before anything is sent. */
export declare class ChaperoneExactEvmScheme {
  constructor(payer: Wallet | X402Client, options?: ChaperoneSchemeOptions)
  /** x402's scheme name. */
  readonly scheme: 'exact'
  /** The client that co-signs. */
  readonly client: X402Client
  /** The URL named in the payment records, if fixed. */
  readonly resource: string | undefined
  /** Every payment made, oldest first. */
  readonly payments: X402Payment[]
  /** @x402/core's scheme hooks (the 402's resource URL is read before payment creation). */
  readonly schemeHooks: {
    onBeforePaymentCreation(context: {
      paymentRequired: { resource?: { url?: string } }
      selectedRequirements: object
    }): Promise<void>
  }
  /** The payload for `paymentRequirements`, co-signed within the policy. */
  createPaymentPayload(
    x402Version: number,
    paymentRequirements: PaymentRequirementsLike,
    context?: PaymentPayloadContextLike,
  ): Promise<PaymentPayloadResultLike>
}

/** A `fetch` for @x402/fetch's own `wrapFetchWithPayment`: a request carrying a payment
 * (`PAYMENT-SIGNATURE` or `X-PAYMENT`) is sent with `redirect: 'manual'`, so a redirect cannot
 * carry the co-signed payment to another origin; every other request is `fetch`'s as it was. */
export declare function withoutPaidRedirects(fetch: typeof globalThis.fetch): typeof globalThis.fetch
