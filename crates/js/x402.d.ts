// The types of x402.js: a paying `fetch` (the shape of @x402/fetch's `wrapFetchWithPayment`)
// and the "exact" EVM scheme for @x402/core's `x402Client`. Written by hand, structurally: this
// package needs neither @x402/core nor @x402/fetch, and its scheme is assignable to
// @x402/core's `SchemeNetworkClient` (test/types.ts checks it with `tsc --strict`).
import type { Wallet, X402Client, X402Payment } from './native'

/** How `wrapFetchWithPayment`'s requests are sent. */
export interface FetchWithPaymentOptions {
  /** A bound on each HTTP exchange, in ms (default: the client's, 300,000 unless
   * `new X402Client(wallet, { timeoutMs })` says otherwise; `Infinity` for none). */
  timeoutMs?: number
  /** The most bytes of an answer's body read (default 10 MiB); past it the request rejects
   * with `PaymentUnanswered` carrying the payment made (`Unreachable` when none was). */
  maxBodyBytes?: number
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
  /** The URL the payments must be for: when the URL of the request that got the 402 (noted by
   * `onPaymentRequired`) differs, nothing is co-signed (`Invalid`). It never stands in for the
   * hook, which is required. */
  resource?: string
}

/** The "exact" EVM scheme for @x402/core's `x402Client`, paying from a Chaperone wallet: the
 * SDK picks the method, nonce and validity and gets the co-signature (`X402Client.authorize`).
 * A denial rejects `createPaymentPayload` with `Denied`, before anything is sent; so does a 402
 * that did not come through `withoutPaidRedirects(fetch)` and reach `onPaymentRequired`
 * (`Invalid`: both are required). Payments are kept by request (its URL, method and body):
 * asked again for one, the scheme presents the same payment while the chain shows it usable,
 * and forgets it only on the chain's word: expired unused, or used and served (a 2xx whose body
 * was read to the end; never the merchant's `PAYMENT-RESPONSE` claim). See x402.js. */
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
  /** The payments presented again if asked for the same request while the chain shows them
   * usable, by request (`JSON.stringify([url, method, bodySha256])`, body null when none);
   * at most 256 (then nothing more is co-signed until one expires unused or is served).
   * Delete one to pay that request anew. */
  readonly kept: Map<string, { payment: X402Payment; signature: string; resource: string }>
  /** The URL the kept payment with `signature` (its payload as JSON) was made for, or
   * undefined if it is not kept: `withoutPaidRedirects` sends it to no other URL. */
  resourceOf(signature: string): string | undefined
  /** The hook for `x402HTTPClient.onPaymentRequired`: notes the request that got each 402. */
  readonly onPaymentRequired: (context: { paymentRequired: object; requestUrl: string }) => Promise<void>
  /** @x402/core's scheme hooks (the request that asked). */
  readonly schemeHooks: {
    onBeforePaymentCreation(context: {
      paymentRequired: object
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
 * carry the co-signed payment to another origin; a 402 reached through a redirect rejects with
 * `Invalid` (the paid retry would go to the URL that redirected); a 402's body is read at most
 * 64 KiB (not at all when its Payment-Required header holds the requirements), and its
 * requirements carry the request's id for `ChaperoneExactEvmScheme` (which keys payments on the
 * request's URL, method and body); a Payment-Required header @x402/core cannot read rejects with
 * `Invalid`. A paid 2xx counts as served for the scheme once its body was read to the end, and a
 * scheme's payment is sent to no URL but the one it was made for (`Invalid`). Every other
 * request is `fetch`'s as it was. */
export declare function withoutPaidRedirects(fetch: typeof globalThis.fetch): typeof globalThis.fetch
