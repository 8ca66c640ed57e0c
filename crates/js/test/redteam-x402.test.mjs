// Red-team findings (issue 31) for the Node x402 client, the @x402/core scheme and the
// recorded-call binding, on a devnet of their own (each payment takes one of the wallet's
// EIP-1271 authorization slots for the period; x402.test.mjs uses most of them). A finding
// still open would be a `todo` test (it fails, and the suite stays green); a fixed one runs.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { x402Client, x402HTTPClient } from '@x402/core/client';
import { wrapFetchWithPayment as referenceFetch } from '@x402/fetch';
import { generateText, wrapLanguageModel } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';

import * as chaperone from '../index.js';
import { chaperoneMiddleware } from '../ai.js';
import { ChaperoneExactEvmScheme, withoutPaidRedirects, wrapFetchWithPayment } from '../x402.js';
import { anchoredDisclosure, startDevnet } from './devnet.mjs';
import { PRICE, decision, requirement, startMerchant } from './merchants.mjs';

const { Recorder, Wallet, X402Client, X402Payment, recordCall } = chaperone;
const DEAD = '0x000000000000000000000000000000000000dEaD';

let devnet;
let wallet;
let recorder;
before(async () => {
  devnet = await startDevnet();
  const { serverUrl, rpcUrl, wallet: address, agentKey } = devnet.info;
  wallet = await Wallet.connect(serverUrl, rpcUrl, address, agentKey);
  recorder = await Recorder.open(serverUrl, join(devnet.dir, 'agent.db'), agentKey);
});
after(async () => {
  await recorder?.close();
  await devnet?.stop();
});

describe('red team (i31)', () => {
  /** A merchant asking `accepts`, that answers a paid request with `answers.shift()` (a
   * status, after `delayMs`; 402 with its requirements), and 402 once they run out. */
  async function scriptedMerchant(accepts, answers, delayMs = 0, claimed = undefined) {
    const { createServer } = await import('node:http');
    const seen = [];
    const server = createServer((request, response) => {
      const paid = ['payment-signature', 'x-payment'].some((n) => n in request.headers);
      seen.push({ paid });
      // A scripted 402 is a refusal with the requirements again (as a merchant sends it).
      if (paid && answers.length > 0 && answers[0] !== 402) {
        const status = answers.shift();
        const headers = { 'Content-Type': 'application/json' };
        // What it serves, it reports settled (x402 v2's PAYMENT-RESPONSE).
        if (status < 300) {
          const settled = { success: true, transaction: `0x${'00'.repeat(32)}`, network: accepts[0].network };
          headers['Payment-Response'] = Buffer.from(JSON.stringify(settled)).toString('base64');
        }
        setTimeout(() => response.writeHead(status, headers).end(JSON.stringify({ ok: status })), delayMs);
        return;
      }
      if (paid && answers[0] === 402) answers.shift();
      const required = { x402Version: 2, error: 'payment required', resource: { url: claimed ?? shop.url }, accepts };
      response.writeHead(402, {
        'Payment-Required': Buffer.from(JSON.stringify(required)).toString('base64'),
      }).end('{}');
    });
    await new Promise((done) => server.listen(0, '127.0.0.1', done));
    const shop = {
      url: `http://127.0.0.1:${server.address().port}/pay`,
      seen,
      stop: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
    };
    return shop;
  }

  /** The leaf hash of the latest local record under `model`. */
  async function lastRecord(model) {
    await recorder.flush();
    const records = await recorder.records();
    return records.filter((r) => r.model === model).at(-1);
  }

  test('red team: a payment the merchant answers with 402 is still committed to and bound to its call', async () => {
    // The merchant got a co-signed authorization it can settle; it answers 402 to hide it
    // from the call's record.
    const shop = await startMerchant([requirement(devnet, PRICE)]);
    try {
      const client = new X402Client(wallet);
      const pay = wrapFetchWithPayment(fetch, client);
      const refused = await recordCall(recorder, 'rt-refused', 'buy', () => pay(shop.url))
        .then(() => assert.fail('served'), (e) => e);
      assert.ok(refused instanceof chaperone.PaymentRefused, String(refused));
      assert.deepEqual(shop.paymentHeaders(), [refused.payment.payload], 'the merchant holds it');
      client.release(refused.requestId);
      await recorder.sync();
      const record = await lastRecord('rt-refused');
      const disclosure = await anchoredDisclosure(recorder, record.leafHash, ['metadata']);
      const metadata = Buffer.from(JSON.parse(disclosure.toJson()).disclosed[0].content.slice(2), 'hex');
      assert.deepEqual(X402Payment.fromMetadata(metadata).map((p) => p.requestId), [refused.requestId],
        "the call's record commits to the payment it made");
      assert.equal((await decision(devnet, refused.requestId)).call_leaf_hash, record.leafHash);
    } finally {
      await shop.stop();
    }
  });

  test("red team: the scheme's x402 cap holds for an amount written with underscores", async () => {
    // x402-rs reads "10_000" as 10000 (ruint skips '_'): the merchant's amount must not slip
    // past the cap because it is not plain digits.
    const scheme = new ChaperoneExactEvmScheme(wallet);
    const odd = { ...requirement(devnet, PRICE), amount: '10_000' };
    await assert.rejects(scheme.createPaymentPayload(2, odd, { maxAmountPerPayment: '9999' }), RangeError);
    assert.equal(scheme.payments.length, 0, 'nothing co-signed');
  });

  test("red team: the @x402/core scheme's payment does not follow a redirect to another origin", async () => {
    // @x402/fetch follows redirects with fetch's own handling: given withoutPaidRedirects(fetch),
    // the paid retry's redirect comes back as the answer instead.
    const elsewhere = await startMerchant([]);
    const shop = await startMerchant([requirement(devnet, PRICE)], { paidStatus: 307, paidLocation: elsewhere.url });
    try {
      await schemeFetch(new ChaperoneExactEvmScheme(wallet))(shop.url).catch(() => {});
      assert.equal(shop.paymentHeaders().length, 1, 'the merchant got the payment');
      assert.deepEqual(elsewhere.paymentHeaders(), [], 'the payment went nowhere else');
    } finally {
      await shop.stop();
      await elsewhere.stop();
    }
  });

  test('red team: a request whose signal is already aborted sends nothing, and its failure is no unhandled rejection', async () => {
    const unhandled = [];
    const onUnhandled = (reason) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    // A merchant the policy denies: the request, were it sent, would reject (Denied) later.
    const shop = await startMerchant([requirement(devnet, PRICE, DEAD)]);
    try {
      const pay = wrapFetchWithPayment(fetch, wallet);
      const aborted = await pay(shop.url, { signal: AbortSignal.abort() }).then(() => assert.fail('sent'), (e) => e);
      assert.equal(aborted.name, 'AbortError');
      await new Promise((done) => setTimeout(done, 1500));
      assert.deepEqual(unhandled.map(String), []);
      assert.equal(shop.seen.length, 0, 'as fetch: an aborted request is not sent');
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await shop.stop();
    }
  });

  /** @x402/fetch paying through `scheme`, the URL that asked noted by its hook. */
  function schemeFetch(scheme) {
    const client = new x402Client().register(`eip155:${devnet.info.chainId}`, scheme);
    client.setSpendControls(false);
    const http = new x402HTTPClient(client).onPaymentRequired(scheme.onPaymentRequired);
    return referenceFetch(withoutPaidRedirects(fetch), http);
  }

  test('red team: a 402 reached through a redirect is not paid to the origin that redirected', async () => {
    // @x402/fetch notes the URL the 402 came from (after redirects) but sends the paid retry to
    // the URL it was given: an origin that redirects to a real merchant would be handed a
    // payment to that merchant, which it could present itself.
    const shop = await scriptedMerchant([requirement(devnet, PRICE)], [200]);
    const { createServer } = await import('node:http');
    const payments = [];
    const redirector = createServer((request, response) => {
      if ('payment-signature' in request.headers || 'x-payment' in request.headers) payments.push(request.url);
      response.writeHead(302, { Location: shop.url }).end();
    });
    await new Promise((done) => redirector.listen(0, '127.0.0.1', done));
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const url = `http://127.0.0.1:${redirector.address().port}/weather`;
      await assert.rejects(schemeFetch(scheme)(url), /redirect/);
      assert.deepEqual(payments, [], 'the redirecting origin got no payment');
      assert.equal(scheme.payments.length, 0, 'nothing co-signed');
      assert.equal(shop.seen.filter((r) => r.paid).length, 0, 'the merchant got none either');
    } finally {
      redirector.closeAllConnections();
      await new Promise((done) => redirector.close(done));
      await shop.stop();
    }
  });

  test("red team: the scheme's payment record names the URL that asked, not the one the 402 claims", async () => {
    const shop = await scriptedMerchant([requirement(devnet, PRICE)], [200], 0, 'https://api.trusted.example/weather');
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      assert.equal((await schemeFetch(scheme)(shop.url)).status, 200);
      assert.equal(scheme.payments[0].resource, shop.url);
    } finally {
      await shop.stop();
    }
  });

  test('red team: without the request that asked (no hook, no withoutPaidRedirects) the scheme co-signs nothing', async () => {
    const shop = await scriptedMerchant([requirement(devnet, PRICE)], [200], 0, 'https://api.trusted.example/weather');
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const client = new x402Client().register(`eip155:${devnet.info.chainId}`, scheme);
      client.setSpendControls(false);
      await assert.rejects(referenceFetch(fetch, client)(shop.url), /does not know the request that asked/);
      await assert.rejects(scheme.createPaymentPayload(2, requirement(devnet, PRICE)), chaperone.Invalid);
      assert.equal(scheme.payments.length, 0, 'nothing co-signed');
      assert.equal(shop.seen.filter((r) => r.paid).length, 0, 'no payment sent');
    } finally {
      await shop.stop();
    }
  });

  test("red team: a merchant that keeps refusing the scheme's payment gets the same one again, not a new slot", async () => {
    // Each co-signed payment takes one of the wallet's authorization slots for the period
    // until it expires; a merchant answering 402 to every paid request would drain them.
    const shop = await scriptedMerchant([requirement(devnet, PRICE)], [402, 402, 200]);
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const pay = schemeFetch(scheme);
      assert.equal((await pay(shop.url)).status, 402);
      assert.equal((await pay(shop.url)).status, 402);
      assert.equal(scheme.payments.length, 1, 'one authorization co-signed');
      assert.equal((await pay(shop.url)).status, 200, 'served with it');
      assert.equal(scheme.payments.length, 1);
      // Its PAYMENT-RESPONSE is the merchant's word (this one settled nothing): the payment
      // stays kept until the chain shows it used (second review's findings, below).
      assert.equal(scheme.kept.size, 1, 'kept until the chain shows it used');
    } finally {
      await shop.stop();
    }
  });

  test("red team: a paid answer's body past maxBodyBytes is refused, the payment carried", async () => {
    const { createServer } = await import('node:http');
    const requirements = { x402Version: 2, error: 'payment required', accepts: [requirement(devnet, PRICE)] };
    // Paid: a body that never ends; unpaid, on /free: 4 KiB.
    const paymentsSeen = [];
    const server = createServer((request, response) => {
      if (request.url === '/free') return response.writeHead(200).end('x'.repeat(4096));
      if ('payment-signature' in request.headers) paymentsSeen.push(request.headers['payment-signature']);
      if (!('payment-signature' in request.headers)) {
        requirements.resource = { url: `http://127.0.0.1:${server.address().port}${request.url}` };
        return response.writeHead(402, {
          'Payment-Required': Buffer.from(JSON.stringify(requirements)).toString('base64'),
        }).end('{}');
      }
      response.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => { while (response.write(chunk)); };
      response.on('drain', pump);
      pump();
    });
    await new Promise((done) => server.listen(0, '127.0.0.1', done));
    const base = `http://127.0.0.1:${server.address().port}`;
    try {
      const client = new X402Client(wallet);
      const pay = wrapFetchWithPayment(fetch, client, { maxBodyBytes: 1024 * 1024 });
      const big = await pay(`${base}/pay`).then(() => assert.fail('read'), (e) => e);
      assert.ok(big instanceof chaperone.PaymentUnanswered, String(big));
      assert.match(big.message, /larger than the limit of 1048576 bytes/);
      assert.ok(big.payment, 'the payment made is carried');
      // Sent again, the request presents the same payment: the merchant served (and may have
      // settled) the first, and an answer the agent could not read is no reason to pay twice.
      const again = await pay(`${base}/pay`).then(() => assert.fail('read'), (e) => e);
      assert.ok(again instanceof chaperone.PaymentUnanswered, String(again));
      assert.equal(again.payment.requestId, big.payment.requestId, 'the same payment, not a new one');
      assert.equal(paymentsSeen.length, 2);
      assert.equal(paymentsSeen[1], paymentsSeen[0], 'the merchant saw one authorization twice');
      client.release(big.payment.requestId);
      const free = await wrapFetchWithPayment(fetch, client, { maxBodyBytes: 1000 })(`${base}/free`)
        .then(() => assert.fail('read'), (e) => e);
      assert.ok(free instanceof chaperone.Unreachable, String(free));
      assert.equal((await (await wrapFetchWithPayment(fetch, client)(`${base}/free`)).text()).length, 4096,
        'within the limit (10 MiB by default)');
    } finally {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    }
  });

  test("red team: a model answer too deep for canonical JSON still leaves the paid call's record", async () => {
    let deep = {};
    for (let i = 0; i < 20_000; i++) deep = { a: deep };
    const records = [];
    const model = wrapLanguageModel({
      model: new MockLanguageModelV3({
        modelId: 'deep',
        doGenerate: async () => ({
          content: [{ type: 'text', text: 'hi', providerMetadata: { x: deep } }],
          finishReason: { unified: 'stop', raw: 'stop' },
          usage: { inputTokens: { total: 1 }, outputTokens: { total: 1 } },
          warnings: [],
        }),
      }),
      middleware: chaperoneMiddleware(recorder, { onRecorded: (r) => records.push(r) }),
    });
    await generateText({ model, prompt: 'hi' }).catch(() => {});
    assert.equal(records.length, 1, 'the call is recorded');
  });

  test('red team: a retry through another wrapFetchWithPayment of the same wallet presents the same payment', async () => {
    // The README's promise ("a retry presents the same authorization, never a second one")
    // must not depend on the application keeping one wrapped fetch: the merchant that answered
    // 402 to the first may settle it and collect a second.
    const shop = await startMerchant([requirement(devnet, PRICE)]);
    try {
      const first = await wrapFetchWithPayment(fetch, wallet)(shop.url).then(() => assert.fail('served'), (e) => e);
      assert.ok(first instanceof chaperone.PaymentRefused, String(first));
      const again = await wrapFetchWithPayment(fetch, wallet)(shop.url).then(() => assert.fail('served'), (e) => e);
      assert.equal(again.payment?.requestId, first.requestId, 'one authorization, presented again');
      assert.deepEqual(shop.paymentHeaders(), [first.payment.payload, first.payment.payload]);
      new X402Client(wallet).release(first.requestId);
    } finally {
      await shop.stop();
    }
  });

  test('red team: a merchant with a short maxTimeoutSeconds and a slow answer cannot make a served, paid call throw', async () => {
    const shop = await scriptedMerchant([{ ...requirement(devnet, PRICE), maxTimeoutSeconds: 1 }], [200], 2500);
    try {
      const pay = wrapFetchWithPayment(fetch, wallet);
      const { value, payments, unbound } = await recordCall(recorder, 'rt-slow', 'buy', async () => (await pay(shop.url)).status);
      assert.equal(value, 200, 'the served answer is not lost');
      assert.equal(payments.length, 1, 'the record commits to the payment');
      assert.deepEqual(unbound.map((u) => u.payment.requestId), [payments[0].requestId],
        'the binding outside the validity is reported, not thrown');
    } finally {
      await shop.stop();
    }
  });

  test("red team: a retry served with the payment an earlier call made does not fail the retry's call", async () => {
    // The first paid answer is a 500 (the payment stays kept); the retry, in a new call,
    // presents it again and is served.
    const shop = await scriptedMerchant([requirement(devnet, PRICE)], [500, 200]);
    try {
      const pay = wrapFetchWithPayment(fetch, new X402Client(wallet));
      const first = await recordCall(recorder, 'rt-retry', 'buy', async () => (await pay(shop.url)).status);
      assert.equal(first.value, 500);
      const second = await recordCall(recorder, 'rt-retry', 'buy again', async () => (await pay(shop.url)).status);
      assert.equal(second.value, 200);
      assert.equal(second.payments[0].requestId, first.payments[0].requestId, 'presented again, not paid twice');
    } finally {
      await shop.stop();
    }
  });
});
