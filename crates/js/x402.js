'use strict';
// Paying x402 (HTTP 402) APIs from TypeScript, within the wallet's policy.
//
// `wrapFetchWithPayment(fetch, payer)` has the shape of @x402/fetch's: a `fetch` that pays. Its
// http(s) requests go through the SDK's `X402Client` (the Rust one, as the Python transports
// do), so the payment logic is the SDK's own: each payable requirement is co-signed before
// anything goes back to the merchant (a denial rejects with `Denied`, every reason, and the
// merchant sees no payment), the payment header goes only to the origin that asked, no redirect
// is followed with it, and a payment sent is kept until the merchant serves the request (a
// retry presents the same one). A payment made within a recorded call (the AI SDK middleware,
// `recordCall`) is committed to by that call's record and bound to it.
//
// `ChaperoneExactEvmScheme` plugs the same co-signed payments into @x402/core's `x402Client`.
const { currentCall } = require('./calls.js');

/** The payment each answer of `wrapFetchWithPayment` was paid with. */
const paid = new WeakMap();

/** The one `X402Client` of each `Wallet` passed as a payer: its book of payments sent is the
 * wallet's, so a retry through another wrapped fetch presents the payment still kept. */
const clients = new WeakMap();

/** An `X402Client` for `payer`: the client itself, or the wallet's own. */
function clientOf(payer) {
  const { X402Client, Wallet } = require('./index.js');
  if (payer instanceof X402Client) return payer;
  if (payer instanceof Wallet) {
    let client = clients.get(payer);
    if (!client) {
      client = new X402Client(payer);
      clients.set(payer, client);
    }
    return client;
  }
  throw new TypeError('pays from a Wallet or an X402Client of @chaperone/sdk');
}

/** Statuses whose response has no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** A fetch `Response` of the client's answer (the payment kept for `paymentOf`). The answer to
 * a paid request must not be lost to a merchant's odd header or status: a header `Headers`
 * refuses is left out, and a status a `Response` cannot hold rejects with `Invalid` carrying
 * the payment. */
function toResponse(answer) {
  const headers = new Headers();
  for (const [name, value] of answer.headers) {
    try {
      headers.append(name, value);
    } catch {
      // A value `Headers` refuses (a control character): the rest of the answer stands.
    }
  }
  if (answer.status < 200 || answer.status > 599) {
    const { Invalid } = require('./errors.js');
    throw new Invalid(`${answer.url} answered with status ${answer.status}, which a fetch Response ` +
      'cannot hold', { status: answer.status, payment: answer.payment ?? null });
  }
  const body = NULL_BODY.has(answer.status) ? null : answer.body;
  const response = new Response(body, { status: answer.status, statusText: answer.statusText, headers });
  // Response.url is the URL that answered, read-only on the prototype: set on this one.
  Object.defineProperty(response, 'url', { value: answer.url, enumerable: true });
  if (answer.payment) paid.set(response, answer.payment);
  return response;
}

/** `promise`, or a rejection with the signal's reason once it aborts (the request itself runs
 * on: a payment it makes is kept by the client, and presented again on a retry). */
function abortable(promise, signal) {
  if (!signal) return promise;
  if (signal.aborted) {
    // Observed all the same: its rejection must not surface as an unhandled one.
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
      (error) => { signal.removeEventListener('abort', onAbort); reject(error); },
    );
  });
}

/** Sends `request` (a fetch `Request`) through `client`, noting a payment in `call`. */
async function send(client, request, call, options) {
  const body = request.body === null ? undefined : new Uint8Array(await request.arrayBuffer());
  // As fetch: a request whose signal has aborted is not sent (nor paid).
  if (request.signal?.aborted) throw request.signal.reason;
  // A payment the merchant received is the call's whatever it answers: a 402 again
  // (`PaymentRefused`) or no answer (`PaymentUnanswered`) carries it, and the merchant may
  // settle it all the same. Noted here even when the caller's signal aborted first.
  const sent = client.send({
    method: request.method,
    url: request.url,
    headers: [...request.headers],
    body,
    timeoutMs: options.timeoutMs,
    maxBodyBytes: options.maxBodyBytes,
  }).then((answer) => {
    if (answer.payment && call) call.add(answer.payment, client);
    return answer;
  }, (error) => {
    if (error?.payment && call) call.add(error.payment, client);
    throw error;
  });
  const answer = await abortable(sent, request.signal);
  return toResponse(answer);
}

/**
 * A `fetch` that pays x402 resources from `payer` (a `Wallet` or an `X402Client`), within the
 * wallet's policy: the shape of @x402/fetch's `wrapFetchWithPayment(fetch, client)`.
 * Every http(s) request goes through the SDK's client (see the module's comment): the answer
 * is read whole, a redirect after payment comes back as it is, and the SDK's errors reject as
 * they are (`Denied`, `PendingAuthorization`, `Refused`, `PaymentRefused`, `PaymentUnanswered`,
 * `Unreachable`). `fetch` serves the other URLs (`data:`, `blob:`), which never pay.
 * `options.timeoutMs` bounds each HTTP exchange (default 300,000, as undici's);
 * `options.maxBodyBytes` the answer's body, which is read whole (default 10 MiB: a merchant
 * controls it; past it the request rejects with `PaymentUnanswered` carrying the payment made,
 * or `Unreachable` when none was).
 */
function wrapFetchWithPayment(fetch, payer, options = {}) {
  if (typeof fetch !== 'function') throw new TypeError('wrapFetchWithPayment(fetch, payer): fetch is a function');
  const client = clientOf(payer);
  const settings = { timeoutMs: options.timeoutMs ?? 300_000, maxBodyBytes: options.maxBodyBytes };
  return async function fetchWithPayment(input, init) {
    const call = currentCall();
    const request = new Request(input, init);
    const { protocol } = new URL(request.url);
    if (protocol !== 'http:' && protocol !== 'https:') return fetch(input, init);
    return send(client, request, call, settings);
  };
}

/** The payment made for `response` (an answer of `wrapFetchWithPayment`), or null. */
function paymentOf(response) {
  return paid.get(response) ?? null;
}

/** The last second (unix time) `header`'s authorization can be used: EIP-3009's
 * `validBefore`, Permit2's `deadline`. */
function usableUntil(header) {
  const payload = header?.payload ?? {};
  return Number(payload.authorization?.validBefore ?? payload.permit2Authorization?.deadline ?? 0);
}

/** A payment kept for presenting again stops being offered this many seconds before its
 * validity ends: the merchant needs time to settle it. */
const KEPT_MARGIN_SECONDS = 5;

/**
 * The "exact" EVM scheme for @x402/core's `x402Client`, paying from a Chaperone wallet:
 *
 *     const scheme = new ChaperoneExactEvmScheme(wallet)
 *     const client = new x402Client().register(`eip155:${wallet.chainId}`, scheme)
 *     const http = new x402HTTPClient(client).onPaymentRequired(scheme.onPaymentRequired)
 *     const pay = wrapFetchWithPayment(withoutPaidRedirects(fetch), http)   // @x402/fetch
 *
 * Why a scheme and not a signer: @x402/evm's `ExactEvmScheme` builds the EIP-3009 or Permit2
 * message itself (a random nonce) and asks its signer only to sign it. An AgentWallet's
 * EIP-1271 `isValidSignature` accepts only the nonces of its authorization budget's slots for
 * the current period, which is what bounds what leaves it even with both keys stolen; a signer
 * cannot change the message it is handed, so the wallet would refuse its signature. This scheme
 * has the SDK pick the requirement's method, nonce and validity and get the co-signature
 * (`X402Client.authorize`), exactly as `X402Client.send` does.
 *
 * The payment record names the URL that asked for payment: @x402/core hands a scheme only the
 * requirement, so the URL comes from `onPaymentRequired` (registered on the `x402HTTPClient`
 * that @x402/fetch uses, which passes it the request's URL) or from `options.resource`. Never
 * from the 402's own `resource.url`, which the merchant writes: without either, nothing is
 * co-signed (`Invalid`).
 *
 * A payment the merchant answered with another 402 may still be settled by it; so, as
 * `X402Client.send` does, the scheme presents that same payment again for the same URL and
 * requirement while it can be used, instead of co-signing a new one, which would take another
 * of the wallet's authorization slots for the period (a merchant that keeps refusing would
 * drain them). A payment is forgotten once a paid answer reports it settled
 * (`PAYMENT-RESPONSE` with `success`, seen by `schemeHooks.onPaymentResponse`; x402 v2 only:
 * a v1 payment is never presented again, as @x402/core reports no v1 answer to a scheme).
 *
 * What @x402/core's client and @x402/fetch do with the payment is theirs: a denial rejects
 * `createPaymentPayload` with `Denied` (every reason) before anything is sent, but @x402/fetch
 * rethrows it as a plain Error with its message; their selector picks one requirement
 * (Chaperone's client tries the payable ones in turn); and @x402/fetch sends the paid retry
 * with `fetch`'s own redirect handling (pass it `withoutPaidRedirects(fetch)`, which stops a
 * paid request's redirects). Use `wrapFetchWithPayment` of this module for all of Chaperone's
 * guarantees.
 *
 * Each payment made is appended to `payments`, and joins the recorded call in progress, if
 * any.
 */
class ChaperoneExactEvmScheme {
  constructor(payer, options = {}) {
    /** x402's scheme name. */
    this.scheme = 'exact';
    this.client = clientOf(payer);
    this.resource = options.resource;
    /** Every payment this scheme made, oldest first. */
    this.payments = [];
    // The URL that got each 402 (by @x402/core's object of it), then each selected
    // requirement's: @x402/core hands the scheme only the requirement object.
    const asked = new WeakMap();
    const resources = new WeakMap();
    this.resources = resources;
    // Payments sent and not yet answered with anything but a 402, by URL and requirement:
    // { payment, result, until, signature }.
    const kept = new Map();
    this.kept = kept;
    /** The hook for @x402/core's `x402HTTPClient.onPaymentRequired`: notes the URL of the
     * request that got the 402 (what the payment record names). Asks for no headers. */
    this.onPaymentRequired = async ({ paymentRequired, requestUrl } = {}) => {
      if (paymentRequired && typeof paymentRequired === 'object' && typeof requestUrl === 'string') {
        asked.set(paymentRequired, requestUrl);
      }
    };
    /** @x402/core's scheme hooks. */
    this.schemeHooks = {
      onBeforePaymentCreation: async (context) => {
        const url = context?.paymentRequired && asked.get(context.paymentRequired);
        if (context?.selectedRequirements && typeof url === 'string') {
          resources.set(context.selectedRequirements, url);
        }
      },
      onPaymentResponse: async (context) => {
        // Only an answer that reports the payment settled ends it (x402 v2 sends
        // PAYMENT-RESPONSE with what it serves): after a 402, a 5xx or no report the merchant
        // may still hold it, and a new one would take another slot.
        if (context?.settleResponse?.success !== true) return;
        const signature = JSON.stringify(context?.paymentPayload?.payload ?? null);
        for (const [key, entry] of kept) {
          if (entry.signature === signature) kept.delete(key);
        }
      },
    };
  }

  /** The payload (`payload`, and `extensions` in x402 v2) for `requirements`, co-signed within
   * the policy; rejects with `Denied` when the policy denies it. */
  async createPaymentPayload(x402Version, requirements, context) {
    const call = currentCall();
    const amount = x402Version === 1 ? requirements.maxAmountRequired : requirements.amount;
    const cap = context?.maxAmountPerPayment;
    const atomic = (value) => /^\d+$/.test(String(value));
    // An amount that is not plain digits cannot be compared, and x402-rs may still read one
    // ("10_000" is 10000 to it): refused under a cap, as @x402/core's own spend controls do.
    if (cap !== undefined && atomic(cap) && (!atomic(amount) || BigInt(amount) > BigInt(cap))) {
      throw new RangeError(`${amount} is over the x402 client's cap of ${cap} per payment`);
    }
    const required = { x402Version, accepts: [requirements] };
    if (x402Version !== 1 && context?.extensions) required.extensions = context.extensions;
    const resource = this.resource ?? this.resources.get(requirements);
    if (typeof resource !== 'string') {
      const { Invalid } = require('./errors.js');
      throw new Invalid('ChaperoneExactEvmScheme does not know the URL that asked for this payment: ' +
        'register scheme.onPaymentRequired on the x402HTTPClient (new x402HTTPClient(client)' +
        '.onPaymentRequired(scheme.onPaymentRequired)) or pass { resource }');
    }
    const key = JSON.stringify([resource, required]);
    const now = Date.now() / 1000;
    for (const [old, entry] of this.kept) {
      if (entry.until - KEPT_MARGIN_SECONDS <= now) this.kept.delete(old);
    }
    const presented = this.kept.get(key);
    if (presented) {
      // Refused before and still usable: the same authorization again, no new slot.
      if (call) call.add(presented.payment, this.client);
      return { ...presented.result };
    }
    const payment = await this.client.authorize(resource, JSON.stringify(required));
    this.payments.push(payment);
    if (call) call.add(payment, this.client);
    const header = JSON.parse(Buffer.from(payment.payload, 'base64').toString('utf8'));
    if (x402Version === 1) return header;
    const result = { x402Version: header.x402Version, payload: header.payload };
    if (header.extensions && Object.keys(header.extensions).length > 0) result.extensions = header.extensions;
    this.kept.set(key, { payment, result, until: usableUntil(header), signature: JSON.stringify(header.payload) });
    return result;
  }
}

/**
 * A `fetch` for @x402/fetch's own `wrapFetchWithPayment` (the @x402/core path): a request that
 * carries a payment (`PAYMENT-SIGNATURE`, or v1's `X-PAYMENT`) is sent with
 * `redirect: 'manual'`, so a merchant's redirect on the paid retry cannot carry the co-signed
 * payment to another origin (fetch's own handling would follow it, headers and all); the
 * redirect comes back as the answer. A 402 reached through a redirect rejects (`Invalid`):
 * @x402/fetch would send the paid retry to the URL it was given, not to the one that asked, so
 * an origin that redirects to a real merchant would be handed a payment to that merchant.
 * Every other request is `fetch`'s as it was.
 */
function withoutPaidRedirects(fetch) {
  return async (input, init) => {
    const request = new Request(input, init);
    const paid = request.headers.has('payment-signature') || request.headers.has('x-payment');
    if (paid) return fetch(new Request(request, { redirect: 'manual' }));
    const response = await fetch(request);
    if (response.status === 402 && response.redirected) {
      await response.body?.cancel();
      const { Invalid } = require('./errors.js');
      throw new Invalid(
        `${request.url} redirected to ${response.url}, which asks for payment: a payment goes ` +
          'only to the URL that asks for it (request that URL itself)',
      );
    }
    return response;
  };
}

// One assignment per name, so that ES modules can import them by name (Node's CommonJS lexer).
exports.withoutPaidRedirects = withoutPaidRedirects;
exports.ChaperoneExactEvmScheme = ChaperoneExactEvmScheme;
exports.paymentOf = paymentOf;
exports.wrapFetchWithPayment = wrapFetchWithPayment;
