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
const { createHash, randomBytes } = require('node:crypto');

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
 * `options.timeoutMs` bounds each HTTP exchange (default: the client's, 300,000 as undici's
 * unless `new X402Client(wallet, { timeoutMs })` says otherwise; `Infinity` for none);
 * `options.maxBodyBytes` the answer's body, which is read whole (default 10 MiB: a merchant
 * controls it; past it the request rejects with `PaymentUnanswered` carrying the payment made,
 * or `Unreachable` when none was).
 */
function wrapFetchWithPayment(fetch, payer, options = {}) {
  if (typeof fetch !== 'function') throw new TypeError('wrapFetchWithPayment(fetch, payer): fetch is a function');
  const client = clientOf(payer);
  const settings = { timeoutMs: options.timeoutMs, maxBodyBytes: options.maxBodyBytes };
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

/** The most payments a `ChaperoneExactEvmScheme` keeps: past it, those the chain shows expired
 * unused (and those served) are dropped, and when none can be, the scheme pays nothing more
 * (a settled payment the merchant did not serve is never dropped: forgetting it would pay the
 * request again). */
const MAX_KEPT = 256;

/** The field `withoutPaidRedirects` writes into a 402's requirements: the random id of the
 * request that got it, so that the scheme keys its payment on that request's URL, method and
 * body (@x402/core hands a scheme only the requirements, and its hook only the URL). */
const ASK_FIELD = 'chaperoneAsk';

/** Requests that got a 402 through `withoutPaidRedirects`, by the id written into it: `{ url,
 * method, body }` (`body`: the SHA-256 of its bytes, or null). At most `MAX_NOTED` are held
 * (the oldest dropped first): a 402 nobody pays leaves its note behind. */
const asks = new Map();

/** The status each paid request got through `withoutPaidRedirects`, by its payment's
 * signature (`JSON.stringify` of the header's `payload`): whether the merchant served it. A
 * 2xx is noted only once its body was read to the end. A signature missing here (never seen,
 * or dropped past `MAX_NOTED`) counts as not served: the safe side. */
const paidStatuses = new Map();

/** The live `ChaperoneExactEvmScheme`s (weakly held): `withoutPaidRedirects` sends a payment
 * one of them keeps to no URL but the one it was made for. Their books are bounded and forget
 * a payment only once the chain shows it can never move funds again (expired unused, or used
 * and served), so a payment still usable is always found; a process-wide map of recent
 * payments would forget one after enough later payments. */
const schemes = new Set();
const forgetScheme = new FinalizationRegistry((ref) => schemes.delete(ref));

/** The URL a live scheme's kept payment with `signature` was made for, or undefined. */
function keptResource(signature) {
  for (const ref of schemes) {
    const scheme = ref.deref();
    const resource = scheme?.resourceOf(signature);
    if (resource !== undefined) return resource;
  }
  return undefined;
}

const MAX_NOTED = 1024;

/** Notes `value` under `key` in `map`, dropping the oldest past `MAX_NOTED`. */
function note(map, key, value) {
  map.delete(key);
  map.set(key, value);
  while (map.size > MAX_NOTED) map.delete(map.keys().next().value);
}

/** `value` (base64) decoded as @x402/core decodes its headers (`atob`, then UTF-8 without a
 * leading BOM), parsed as JSON; null when @x402/core could not read it either. Decoding any other
 * way (Buffer keeps a BOM, and JSON.parse refuses it) would see other requirements than the
 * ones @x402/core pays. */
function decodeAsCore(value) {
  try {
    const binary = globalThis.atob(value);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder('utf-8').decode(bytes));
  } catch {
    return null;
  }
}

/** The payment header's `payload` as the scheme keys it, or null. */
function paymentSignature(headerValue) {
  const header = decodeAsCore(headerValue);
  return header && typeof header === 'object' ? JSON.stringify(header.payload ?? null) : null;
}

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
 * Both `onPaymentRequired` (registered on the `x402HTTPClient` that @x402/fetch uses) and
 * `withoutPaidRedirects(fetch)` (the fetch @x402/fetch sends with) are required: a 402 that
 * did not come through `withoutPaidRedirects` and reach the hook carries no id of the request
 * that got it, and the scheme co-signs nothing for it (`Invalid`). Without that id the scheme
 * could not tell which request a payment was for, nor whether the merchant served it.
 *
 * The payment record names the URL that asked for payment: @x402/core hands a scheme only the
 * requirement, so the URL comes from the hook (the request's URL). Never from the 402's own
 * `resource.url`, which the merchant writes. `options.resource`, if given, must be that URL
 * (`Invalid` otherwise: a payment named for one URL must not be presented to another), and
 * `withoutPaidRedirects` sends a payment header to no URL but the one its payment names.
 *
 * Each co-signed payment holds one of the wallet's authorization slots for the period until
 * it is used or expires, so a merchant that keeps refusing must not get a new one per retry.
 * The scheme keeps each payment by the request it was made for: its URL, method and body.
 * Never by what the merchant writes (its `extra`, `maxTimeoutSeconds`, amount). Asked again
 * for the same request, it presents the same payment while the chain shows it usable, x402 v1
 * and v2 alike; concurrent payments for one request wait for each other and share one
 * authorization. A kept payment is forgotten only on the chain's word: once its validity is
 * over in chain time and it was never used (then a new one is signed), or once it was used
 * and the merchant served the request (a 2xx seen by `withoutPaidRedirects`, its body read to
 * the end: read the answer's body), so that the next purchase is a new one. The merchant's
 * own claim (a `PAYMENT-RESPONSE` reporting success) never counts. A payment the chain shows
 * used for a request the merchant did not serve is not paid again: `createPaymentPayload`
 * rejects with `PaymentRefused` carrying it (delete it from `kept` to pay anew). At most 256
 * payments are kept: past that, those expired unused or served are dropped, and when none
 * can be, nothing more is co-signed (`Invalid`).
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
  /** The end of the queue of payments for each request key: one payment decision at a time
   * per request. */
  #queues = new Map();

  /** The requests co-signing a new payment: each holds its place in `kept` from before its
   * co-signing's first await, so concurrent payments for different requests cannot overshoot
   * `MAX_KEPT`. */
  #reserved = new Set();

  constructor(payer, options = {}) {
    /** x402's scheme name. */
    this.scheme = 'exact';
    this.client = clientOf(payer);
    this.resource = options.resource;
    /** Every payment this scheme made, oldest first. */
    this.payments = [];
    // The request that got each 402 (by @x402/core's object of it), then each selected
    // requirement's: @x402/core hands the scheme only the requirement object.
    const asked = new WeakMap();
    const requests = new WeakMap();
    this.requests = requests;
    // Payments sent and not yet known settled and served, by request:
    // { payment, result, signature }.
    const kept = new Map();
    this.kept = kept;
    /** The hook for @x402/core's `x402HTTPClient.onPaymentRequired`: notes the request that
     * got the 402 (its URL, what the payment record names; its method and body when it came
     * through `withoutPaidRedirects`). Asks for no headers. */
    this.onPaymentRequired = async ({ paymentRequired, requestUrl } = {}) => {
      if (!paymentRequired || typeof paymentRequired !== 'object' || typeof requestUrl !== 'string') return;
      const id = paymentRequired[ASK_FIELD];
      delete paymentRequired[ASK_FIELD];
      const ask = typeof id === 'string' ? asks.get(id) : undefined;
      if (ask) asks.delete(id);
      asked.set(paymentRequired, ask?.url === requestUrl ? ask : { url: requestUrl, method: null, body: null });
    };
    /** @x402/core's scheme hooks. (A merchant's `PAYMENT-RESPONSE` is its word, not the
     * chain's, and not whether it served: the scheme does not read it.) */
    const ref = new WeakRef(this);
    schemes.add(ref);
    forgetScheme.register(this, ref);
    this.schemeHooks = {
      onBeforePaymentCreation: async (context) => {
        const request = context?.paymentRequired && asked.get(context.paymentRequired);
        if (context?.selectedRequirements && request) requests.set(context.selectedRequirements, request);
      },
    };
  }

  /** The payload (`payload`, and `extensions` in x402 v2) for `requirements`, co-signed within
   * the policy; rejects with `Denied` when the policy denies it. */
  createPaymentPayload(x402Version, requirements, context) {
    const call = currentCall();
    const amount = x402Version === 1 ? requirements.maxAmountRequired : requirements.amount;
    const cap = context?.maxAmountPerPayment;
    const atomic = (value) => /^\d+$/.test(String(value));
    // An amount that is not plain digits cannot be compared, and x402-rs may still read one
    // ("10_000" is 10000 to it): refused under a cap, as @x402/core's own spend controls do.
    if (cap !== undefined && atomic(cap) && (!atomic(amount) || BigInt(amount) > BigInt(cap))) {
      return Promise.reject(new RangeError(`${amount} is over the x402 client's cap of ${cap} per payment`));
    }
    const { Invalid } = require('./errors.js');
    const asked = this.requests.get(requirements);
    if (asked && this.resource !== undefined && this.resource !== asked.url) {
      return Promise.reject(new Invalid(`${asked.url} asks for payment, but this scheme was given the resource ` +
        `${this.resource}: a payment names, and goes to, the URL that asked (pass no resource, or that URL)`));
    }
    // The request's id, written into its 402 by withoutPaidRedirects and read by the hook:
    // without it the scheme knows neither the request a payment is for nor whether it was
    // served, and a merchant could have each retry pay again.
    const request = asked?.method != null ? asked : null;
    if (!request) {
      return Promise.reject(new Invalid('ChaperoneExactEvmScheme does not know the request that asked for this ' +
        'payment: send through withoutPaidRedirects(fetch) (wrapFetchWithPayment(withoutPaidRedirects(fetch), ' +
        'http)) and register scheme.onPaymentRequired on the x402HTTPClient (new x402HTTPClient(client)' +
        '.onPaymentRequired(scheme.onPaymentRequired))'));
    }
    const required = { x402Version, accepts: [requirements] };
    if (x402Version !== 1 && context?.extensions) required.extensions = context.extensions;
    const key = JSON.stringify([request.url, request.method, request.body]);
    // Queued before anything is awaited: a concurrent payment for the same request waits,
    // then finds this one kept.
    return this.#serialised(key, () => this.#pay(key, request.url, required, call));
  }

  /** Runs `work` once every earlier payment decision for `key` has ended. */
  async #serialised(key, work) {
    const previous = this.#queues.get(key) ?? Promise.resolve();
    let done;
    const mine = new Promise((resolve) => { done = resolve; });
    const tail = previous.then(() => mine);
    this.#queues.set(key, tail);
    await previous;
    try {
      return await work();
    } finally {
      done();
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    }
  }

  /** Whether the merchant served the request `entry`'s payment was sent for (a 2xx whose body
   * was read to the end, seen by `withoutPaidRedirects`). */
  static #served(entry) {
    const status = paidStatuses.get(entry.signature);
    return status !== undefined && status >= 200 && status < 300;
  }

  /** The URL the kept payment with `signature` was made for, or undefined if it is not kept
   * (`withoutPaidRedirects` sends it nowhere else). */
  resourceOf(signature) {
    for (const entry of this.kept.values()) {
      if (entry.signature === signature) return entry.resource;
    }
    return undefined;
  }

  /** Holds a place in `kept` for request `key`'s new payment: when the book is full, drops the
   * entries the chain shows expired unused, or used and served; rejects (`Invalid`) when none
   * can go. Never by the local clock, and never a settled payment the merchant did not serve.
   * The last check and the reservation run with no await between them. */
  async #reserve(key) {
    if (this.kept.size + this.#reserved.size >= MAX_KEPT) {
      for (const [old, entry] of [...this.kept]) {
        const { state } = await this.client.standing(entry.payment);
        if (this.kept.get(old) !== entry) continue;
        if (state === 'expired' || (state === 'settled' && ChaperoneExactEvmScheme.#served(entry))) this.kept.delete(old);
      }
    }
    if (this.kept.size + this.#reserved.size >= MAX_KEPT) {
      const { Invalid } = require('./errors.js');
      throw new Invalid(`this scheme keeps ${this.kept.size} payments still usable or settled and not served ` +
        `(and co-signs ${this.#reserved.size}), its most: it pays nothing more (delete entries from scheme.kept to ` +
        'pay anew)');
    }
    this.#reserved.add(key);
  }

  /** The payment kept for `key` if the chain shows it usable, else a new one for `required`. */
  async #pay(key, resource, required, call) {
    const presented = this.kept.get(key);
    if (presented) {
      const { state, settlement } = await this.client.standing(presented.payment);
      if (state === 'usable') {
        // The merchant may still settle it: the same authorization again, no new slot.
        if (call) call.add(presented.payment, this.client);
        return structuredClone(presented.result);
      }
      if (state === 'settled') {
        // Only the answer itself says it was served, never the merchant's claim.
        if (!ChaperoneExactEvmScheme.#served(presented)) {
          const { PaymentRefused } = require('./errors.js');
          throw new PaymentRefused(`${resource} asks for payment again, but this request's payment was used in ` +
            `transaction ${settlement?.transaction} and the merchant did not serve it`, {
            requestId: presented.payment.requestId,
            reason: 'paid, and asked for payment again',
            payment: presented.payment,
          });
        }
      }
      // Expired unused, or used and served: the next purchase is a new one.
      this.kept.delete(key);
    }
    await this.#reserve(key);
    try {
      const payment = await this.client.authorize(resource, JSON.stringify(required));
      this.payments.push(payment);
      if (call) call.add(payment, this.client);
      const header = JSON.parse(Buffer.from(payment.payload, 'base64').toString('utf8'));
      let result = header;
      if (required.x402Version !== 1) {
        result = { x402Version: header.x402Version, payload: header.payload };
        if (header.extensions && Object.keys(header.extensions).length > 0) result.extensions = header.extensions;
      }
      const signature = JSON.stringify(header.payload);
      this.kept.set(key, { payment, result: structuredClone(result), signature, resource });
      return result;
    } finally {
      this.#reserved.delete(key);
    }
  }
}

/** The most bytes of a 402's body `withoutPaidRedirects` reads (x402 v1's requirements are a
 * few kilobytes): @x402/fetch reads a 402's body whole, and a merchant streaming one without
 * end would exhaust the agent's memory. */
const MAX_402_BODY_BYTES = 64 * 1024;

/** At most `limit` bytes of `response`'s body as text; null past it (the rest is not read). */
async function readAtMost(response, limit) {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.byteLength;
    if (length > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  // As Response.json() (what @x402/fetch reads it with) decodes it: a leading BOM dropped.
  return new TextDecoder('utf-8').decode(Buffer.concat(chunks));
}

/** The 402 `response` to `request`, its body read at most `MAX_402_BODY_BYTES`, and its
 * requirements (the header's, else v1's body) tagged with the id of `ask` (noted in `asks`). */
async function tagged402(response, request, ask) {
  const { Invalid } = require('./errors.js');
  const id = randomBytes(16).toString('hex');
  const headers = new Headers(response.headers);
  // The body is handed on decoded, and perhaps rewritten.
  headers.delete('content-encoding');
  headers.delete('content-length');
  const header = response.headers.get('payment-required');
  let text;
  if (header !== null) {
    // Decoded as @x402/core decodes it: what this tags is what it pays.
    const decoded = decodeAsCore(header);
    if (!decoded || typeof decoded !== 'object' || Array.isArray(decoded)) {
      await response.body?.cancel().catch(() => {});
      throw new Invalid(`${request.url} answered 402 with a Payment-Required header that is not x402 requirements`);
    }
    decoded[ASK_FIELD] = id;
    headers.set('payment-required', Buffer.from(JSON.stringify(decoded)).toString('base64'));
    note(asks, id, ask);
    // The requirements are the header's: the body is read for nobody.
    await response.body?.cancel().catch(() => {});
    text = '';
  } else if ((text = await readAtMost(response, MAX_402_BODY_BYTES)) === null) {
    throw new Invalid(`${request.url} answered 402 with a body larger than ${MAX_402_BODY_BYTES} bytes and no ` +
      'Payment-Required header');
  } else {
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      // Not x402's: @x402/fetch reports it.
    }
    if (body && typeof body === 'object' && !Array.isArray(body) && body.x402Version === 1) {
      body[ASK_FIELD] = id;
      text = JSON.stringify(body);
      note(asks, id, ask);
    }
  }
  const tagged = new Response(text, { status: response.status, statusText: response.statusText, headers });
  Object.defineProperty(tagged, 'url', { value: response.url || request.url, enumerable: true });
  return tagged;
}

/**
 * A `fetch` for @x402/fetch's own `wrapFetchWithPayment` (the @x402/core path): a request that
 * carries a payment (`PAYMENT-SIGNATURE`, or v1's `X-PAYMENT`) is sent with
 * `redirect: 'manual'`, so a merchant's redirect on the paid retry cannot carry the co-signed
 * payment to another origin (fetch's own handling would follow it, headers and all); the
 * redirect comes back as the answer. A 402 reached through a redirect rejects (`Invalid`):
 * @x402/fetch would send the paid retry to the URL it was given, not to the one that asked, so
 * an origin that redirects to a real merchant would be handed a payment to that merchant.
 * A 402's body is read at most 64 KiB (@x402/fetch would read it whole), and its requirements
 * carry the request's id for `ChaperoneExactEvmScheme`, which keys its payments on the
 * request's URL, method and body (a Payment-Required header @x402/core could not read either
 * rejects with `Invalid`). The status a paid request gets is noted for the scheme: a 2xx only
 * once its body was read to the end (whether the merchant served it). A scheme's payment is
 * sent to no URL but the one it was made for (`Invalid`). Every other request is `fetch`'s as
 * it was.
 */
function withoutPaidRedirects(fetch) {
  return async (input, init) => {
    const request = new Request(input, init);
    const paymentHeader = request.headers.get('payment-signature') ?? request.headers.get('x-payment');
    if (paymentHeader !== null) {
      const signature = paymentSignature(paymentHeader);
      const resource = signature === null ? undefined : keptResource(signature);
      if (resource !== undefined && resource !== request.url) {
        const { Invalid } = require('./errors.js');
        throw new Invalid(`a payment made for ${resource} is not sent to ${request.url}: a payment goes only to ` +
          'the URL that asked for it');
      }
      const response = await fetch(new Request(request, { redirect: 'manual' }));
      if (signature === null) return response;
      const ok = response.status >= 200 && response.status < 300;
      if (!ok || response.body === null) {
        note(paidStatuses, signature, response.status);
        return response;
      }
      // Served only once the whole body came: one that breaks off or stalls served nothing.
      const body = response.body.pipeThrough(new TransformStream({
        flush() { note(paidStatuses, signature, response.status); },
      }));
      const counted = new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
      Object.defineProperty(counted, 'url', { value: response.url || request.url, enumerable: true });
      return counted;
    }
    const body = request.body === null
      ? null
      : createHash('sha256').update(new Uint8Array(await request.clone().arrayBuffer())).digest('hex');
    const response = await fetch(request);
    if (response.status === 402 && response.redirected) {
      await response.body?.cancel();
      const { Invalid } = require('./errors.js');
      throw new Invalid(
        `${request.url} redirected to ${response.url}, which asks for payment: a payment goes ` +
          'only to the URL that asks for it (request that URL itself)',
      );
    }
    if (response.status !== 402) return response;
    return tagged402(response, request, { url: request.url, method: request.method, body });
  };
}

// One assignment per name, so that ES modules can import them by name (Node's CommonJS lexer).
exports.withoutPaidRedirects = withoutPaidRedirects;
exports.ChaperoneExactEvmScheme = ChaperoneExactEvmScheme;
exports.paymentOf = paymentOf;
exports.wrapFetchWithPayment = wrapFetchWithPayment;
