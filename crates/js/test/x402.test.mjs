// x402 from Node against a devnet (`chaperone up` runs x402-rs's facilitator), as the Python
// package's tests (crates/py/tests/test_x402.py) do it: a purchase from `examples/paid_api.rs`
// through `wrapFetchWithPayment` inside a recorded call, settled by the facilitator, checked on
// chain and bound to the call's record; the same through the AI SDK middleware (a scripted model
// whose own request is paid) and through @x402/core's `x402Client` with Chaperone's scheme
// (and @x402/fetch); prices the policy denies, answered by a local merchant that records every
// header it receives, so the test sees that no payment reached it; a refused payment kept and
// presented again; a paid request's redirect not followed; the low-level EIP-3009 signing.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { x402Client, x402HTTPClient } from '@x402/core/client';
import { wrapFetchWithPayment as referenceFetch } from '@x402/fetch';
import { generateText, wrapLanguageModel } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';

import * as chaperone from '../index.js';
import { chaperoneMiddleware } from '../ai.js';
import { ChaperoneExactEvmScheme, paymentOf, withoutPaidRedirects, wrapFetchWithPayment } from '../x402.js';
import { anchoredDisclosure, startDevnet } from './devnet.mjs';
import {
  MERCHANT, PRICE, decision, replay, requirement, startMerchant, startPaidApi, withTokenCap,
} from './merchants.mjs';

const { Recorder, Wallet, X402Client, X402Payment, recordCall } = chaperone;
const DEAD = '0x000000000000000000000000000000000000dEaD';

let devnet;
let wallet;
let recorder;
const apis = [];
before(async () => {
  devnet = await startDevnet();
  const { serverUrl, rpcUrl, wallet: address, agentKey } = devnet.info;
  wallet = await Wallet.connect(serverUrl, rpcUrl, address, agentKey);
  // The demo agent's one outbox: its records form one chain, and its wallet's payments bind
  // only to records it signed.
  recorder = await Recorder.open(serverUrl, join(devnet.dir, 'agent.db'), agentKey);
});
after(async () => {
  for (const api of apis) api.stop();
  await recorder?.close();
  await devnet?.stop();
});

async function paidApi(...args) {
  const api = await startPaidApi(devnet, ...args);
  apis.push(api);
  return api;
}

/** A model that answers `text` after buying the forecast with `pay` (its own paid request). */
function buyingModel(pay, url) {
  return new MockLanguageModelV3({
    modelId: 'scripted-buyer',
    doGenerate: async () => {
      const forecast = await (await pay(url)).json();
      return {
        content: [{ type: 'text', text: `It is ${forecast.forecast} in ${forecast.city}.` }],
        finishReason: { unified: 'stop', raw: 'stop' },
        usage: {
          inputTokens: { total: 12, noCache: 12, cacheRead: undefined, cacheWrite: undefined },
          outputTokens: { total: 7, text: 7, reasoning: undefined },
        },
        warnings: [],
      };
    },
  });
}

describe('x402', () => {
  test('a TypeScript agent buys from the paid API and binds the payment to its call', async () => {
    const { info } = devnet;
    const api = await paidApi('--method', 'eip3009');
    const pay = wrapFetchWithPayment(fetch, wallet);
    const { value: response, recorded, payments } = await recordCall(recorder, 'demo-model',
      'Buy the forecast', () => pay(api.url), { output: () => 'bought' });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).city, 'Lisbon');
    assert.equal(response.url, api.url);
    const payment = paymentOf(response);
    assert.ok(payment instanceof X402Payment);
    assert.deepEqual(payments.map((p) => p.requestId), [payment.requestId]);
    assert.equal(payment.method, 'eip3009');
    assert.equal(payment.amount, PRICE);
    assert.equal(payment.x402Version, 2);
    assert.equal(payment.resource, api.url);
    assert.equal(payment.payTo, MERCHANT);
    assert.equal(payment.asset, info.token);
    assert.equal(payment.network, `eip155:${info.chainId}`);
    const settlement = payment.settlement;
    assert.ok(settlement?.success, JSON.stringify(settlement));
    assert.equal(settlement.payer, info.wallet);
    assert.match(settlement.transaction, /^0x[0-9a-f]{64}$/);
    assert.deepEqual(await api.stats(), [1, 1]);

    // Settled on chain: that transaction used this very authorization, from the agent's wallet.
    const settled = await payment.verifySettlement(info.rpcUrl, info.agent);
    assert.equal(settled.transaction, settlement.transaction);
    assert.deepEqual([settled.payer, settled.agent, settled.cosigner], [info.wallet, info.agent, info.cosigner]);

    // The same header again: the token has marked its nonce used, the merchant asks again.
    assert.equal(await replay(api.url, payment), 402);
    assert.deepEqual(await api.stats(), [2, 1], 'served once');

    // The call's record commits to the payment, and the decision names the call.
    const bound = await decision(devnet, payment.requestId);
    assert.equal(bound.outcome, 'approved');
    assert.equal(bound.call_leaf_hash, recorded.leafHash);
    const disclosure = await anchoredDisclosure(recorder, recorded.leafHash, ['metadata']);
    const metadata = Buffer.from(JSON.parse(disclosure.toJson()).disclosed[0].content.slice(2), 'hex');
    const committed = X402Payment.fromMetadata(metadata);
    assert.equal(committed.length, 1);
    assert.ok(committed[0].equals(payment));
    assert.ok(X402Payment.fromJson(payment.toJson()).equals(payment));
    assert.equal(X402Payment.fromMetadata(X402Payment.recordMetadata([payment]))[0].requestId, payment.requestId);
  });

  test('the AI SDK middleware binds a payment its model call made', async () => {
    const { info } = devnet;
    const api = await paidApi('--method', 'permit2');
    const pay = wrapFetchWithPayment(fetch, new X402Client(wallet));
    const records = [];
    const model = wrapLanguageModel({
      model: buyingModel(pay, api.url),
      middleware: chaperoneMiddleware(recorder, { onRecorded: (r) => records.push(r) }),
    });
    const { text } = await generateText({ model, prompt: 'What is the weather in Lisbon?' });
    assert.equal(text, 'It is sunny in Lisbon.');
    assert.deepEqual(await api.stats(), [1, 1]);
    assert.equal(records.length, 1);
    const disclosure = await anchoredDisclosure(recorder, records[0].leafHash, ['input', 'output', 'metadata']);
    const opened = JSON.parse(disclosure.toJson()).disclosed
      .map((d) => Buffer.from(d.content.slice(2), 'hex').toString());
    assert.match(opened[0], /What is the weather in Lisbon\?/);
    const metadata = JSON.parse(opened[2]);
    assert.equal(metadata['gen_ai.request.model'], 'scripted-buyer');
    assert.equal(metadata['gen_ai.usage.input_tokens'], 12);
    const [payment] = X402Payment.fromMetadata(opened[2]);
    assert.equal(payment.method, 'permit2');
    assert.equal(payment.amount, PRICE);
    assert.equal((await decision(devnet, payment.requestId)).call_leaf_hash, records[0].leafHash);
    const settled = await payment.verifySettlement(info.rpcUrl, info.agent);
    assert.equal(settled.payer, info.wallet);
  });

  test('a price over the cap is denied before the merchant sees a payment', async () => {
    const cap = 50_000_000n;
    // Two requirements, both over the cap: every reason comes back, nothing is sent.
    const shop = await startMerchant([requirement(devnet, 60_000_000n), requirement(devnet, 70_000_000n)]);
    try {
      const denied = await withTokenCap(devnet, cap, async () => {
        const pay = wrapFetchWithPayment(fetch, wallet);
        const error = await pay(shop.url).then(() => assert.fail('paid over the cap'), (e) => e);
        const direct = await new X402Client(wallet).send({ url: shop.url }).then(
          () => assert.fail('paid over the cap'), (e) => e);
        assert.ok(direct instanceof chaperone.Denied);
        return error;
      });
      assert.ok(denied instanceof chaperone.Denied, String(denied));
      assert.equal(shop.seen.length, 2, 'one request each, none with a payment');
      assert.deepEqual(shop.paymentHeaders(), []);
      const caps = denied.reasons.filter((r) => r.code === 'per_transaction_cap');
      assert.deepEqual(caps.map((r) => [r.amount, r.cap]), [[60_000_000n, cap], [70_000_000n, cap]]);
      assert.match(caps[0].text, /over the per-payment cap/);
      assert.match(denied.requestId, /^0x[0-9a-f]{64}$/);
    } finally {
      await shop.stop();
    }
  });

  test('a payee the policy denies, and a price the wallet could never pay', async () => {
    const client = new X402Client(wallet);
    let shop = await startMerchant([requirement(devnet, PRICE, DEAD)]);
    try {
      await assert.rejects(client.send({ url: shop.url }), (e) => e instanceof chaperone.Denied && e.reasons.length > 0);
      assert.deepEqual(shop.paymentHeaders(), []);
    } finally {
      await shop.stop();
    }
    // Above what one authorization of the wallet may move (100 of the token): refused before
    // any decision.
    shop = await startMerchant([requirement(devnet, 200_000_000n)]);
    try {
      await assert.rejects(client.send({ url: shop.url }), (e) => e instanceof chaperone.Refused && e.code === 'over_max_value');
      assert.deepEqual(shop.paymentHeaders(), []);
    } finally {
      await shop.stop();
    }
  });

  test('a refused payment is kept and presented again', async () => {
    const client = new X402Client(wallet);
    const pay = wrapFetchWithPayment(fetch, client);
    const shop = await startMerchant([requirement(devnet, PRICE)]);
    try {
      const refused = await pay(shop.url).then(() => assert.fail('served'), (e) => e);
      assert.ok(refused instanceof chaperone.PaymentRefused, String(refused));
      assert.equal(refused.reason, 'payment refused');
      assert.ok(refused.payment instanceof X402Payment);
      assert.equal(refused.payment.requestId, refused.requestId);
      assert.deepEqual(client.outstanding().map((p) => p.requestId), [refused.requestId]);
      // A retry of the same request presents the same authorization, not a second one.
      const again = await pay(shop.url).then(() => assert.fail('served'), (e) => e);
      assert.equal(again.payment.requestId, refused.requestId);
      assert.deepEqual(shop.paymentHeaders(), [refused.payment.payload, refused.payment.payload]);
      assert.ok(client.release(refused.requestId).equals(refused.payment));
      assert.deepEqual(client.outstanding(), []);
      assert.equal(client.release(refused.requestId), null);
    } finally {
      await shop.stop();
    }
  });

  test("a paid request's redirect elsewhere is not followed", async () => {
    const elsewhere = await startMerchant([]);
    const shop = await startMerchant([requirement(devnet, PRICE)], { paidStatus: 302, paidLocation: elsewhere.url });
    try {
      const client = new X402Client(wallet);
      const pay = wrapFetchWithPayment(fetch, client);
      // The unpaid request's redirect is followed (same origin), the paid one's not.
      const response = await pay(`http://127.0.0.1:${shop.port}/redirect`);
      assert.equal(response.status, 302);
      assert.equal(response.headers.get('location'), elsewhere.url);
      const payment = paymentOf(response);
      assert.equal(payment.resource, shop.url);
      assert.deepEqual(shop.seen.map((s) => s.path), ['/redirect', '/pay', '/pay']);
      assert.deepEqual(shop.paymentHeaders(), [payment.payload]);
      assert.ok(client.release(payment.requestId).equals(payment));
      assert.deepEqual(elsewhere.seen, [], 'the payment went nowhere else');
    } finally {
      await shop.stop();
      await elsewhere.stop();
    }
  });

  test('a paid answer a fetch Response cannot hold rejects with the payment', async () => {
    const shop = await startMerchant([requirement(devnet, PRICE)], { paidStatus: 799 });
    try {
      const client = new X402Client(wallet);
      const odd = await wrapFetchWithPayment(fetch, client)(shop.url).then(() => assert.fail('a Response'), (e) => e);
      assert.ok(odd instanceof chaperone.Invalid, String(odd));
      assert.equal(odd.status, 799);
      assert.ok(odd.payment instanceof X402Payment);
      assert.deepEqual(shop.paymentHeaders(), [odd.payment.payload]);
      assert.ok(client.release(odd.payment.requestId).equals(odd.payment));
    } finally {
      await shop.stop();
    }
  });

  test("@x402/core's client pays through Chaperone's scheme, bound within a recorded call", async () => {
    const { info } = devnet;
    const api = await paidApi('--method', 'eip3009');
    const scheme = new ChaperoneExactEvmScheme(wallet);
    const client = new x402Client().register(`eip155:${info.chainId}`, scheme);
    // x402's own spend controls allow only its list of known tokens; the policy is the limit.
    client.setSpendControls(false);
    // The scheme's hook notes the URL that asked (what the payment record names).
    const pay = referenceFetch(withoutPaidRedirects(fetch),
      new x402HTTPClient(client).onPaymentRequired(scheme.onPaymentRequired));
    // The answer's body read to the end: what counts the request as served.
    const { value: status, recorded } = await recordCall(recorder, 'demo-model', 'Buy it',
      async () => { const answer = await pay(api.url); await answer.arrayBuffer(); return answer.status; });
    assert.equal(status, 200);
    assert.deepEqual(await api.stats(), [1, 1]);
    const [payment] = scheme.payments;
    assert.equal(payment.resource, api.url, 'the URL that asked names it');
    const settled = await payment.findSettlement(info.rpcUrl, info.agent);
    assert.equal(settled?.payer, info.wallet);
    assert.equal((await decision(devnet, payment.requestId)).call_leaf_hash, recorded.leafHash);
    // Bought again: the chain shows the first payment used and the merchant served it, so the
    // scheme forgets it and this is a new purchase (a payment it keeps is presented again only
    // while usable or unserved).
    assert.equal((await pay(api.url)).status, 200);
    assert.equal(scheme.payments.length, 2);
    assert.notEqual(scheme.payments[1].requestId, payment.requestId);
    assert.deepEqual(await api.stats(), [2, 2]);

    // A denial rejects before anything is sent (@x402/fetch rethrows it with its message).
    const shop = await startMerchant([requirement(devnet, PRICE, DEAD)]);
    try {
      await assert.rejects(pay(shop.url), /Failed to create payment payload: .*denied/i);
      assert.deepEqual(shop.paymentHeaders(), []);
      assert.equal(scheme.payments.length, 2);
      const named = new ChaperoneExactEvmScheme(wallet, { resource: shop.url });
      // Called directly (no 402 through withoutPaidRedirects and the hook): nothing co-signed.
      await assert.rejects(
        named.createPaymentPayload(2, requirement(devnet, PRICE, DEAD)),
        (e) => e instanceof chaperone.Invalid && /withoutPaidRedirects/.test(e.message),
      );
      // The x402 client's own cap per payment is kept too, before anything is co-signed.
      await assert.rejects(named.createPaymentPayload(2, requirement(devnet, PRICE), { maxAmountPerPayment: '9999' }),
        RangeError);
      assert.equal(scheme.payments.length, 2);
      assert.equal(named.payments.length, 0);
    } finally {
      await shop.stop();
    }
  });

  test('an EIP-3009 authorization is co-signed (the low-level call)', async () => {
    const { token } = devnet.info;
    const signed = await wallet.signPaymentAuthorization(token, MERCHANT, 10_000_000n,
      { name: 'Test Token', version: '1', validFor: 300 });
    assert.equal(signed.message.from, wallet.address);
    assert.equal(signed.message.to, MERCHANT);
    assert.equal(signed.message.value, 10_000_000n);
    assert.ok(signed.message.validBefore > signed.message.validAfter);
    assert.equal(signed.domain.verifyingContract, token);
    assert.equal(signed.domain.chainId, devnet.info.chainId);
    // agent (65) + co-signer (65) + the ABI-encoded authorization
    assert.ok((signed.signature.length - 2) / 2 > 130);
    await assert.rejects(
      wallet.signPaymentAuthorization(token, MERCHANT, 101_000_000n, { name: 'Test Token', version: '1' }),
      (e) => e instanceof chaperone.Refused && e.status === 422 && e.code === 'over_max_value',
    );
    await assert.rejects(wallet.signPaymentAuthorization(token, MERCHANT, -1n, { name: 'T', version: '1' }), TypeError);
  });

  test('bad requests are refused before anything is sent', async () => {
    const client = new X402Client(wallet);
    await assert.rejects(client.send({ url: 'ftp://127.0.0.1/x' }), TypeError);
    await assert.rejects(client.send({ url: 'not a url' }), TypeError);
    await assert.rejects(client.send({ url: 'http://127.0.0.1:9/', method: 'G E T' }), TypeError);
    await assert.rejects(client.authorize('http://x', '{"not": "x402"}'), chaperone.Invalid);
    assert.throws(() => wrapFetchWithPayment(fetch, {}), TypeError);
    // A URL that cannot pay goes to the fetch given.
    const dataUrl = await wrapFetchWithPayment(fetch, client)('data:text/plain,hello');
    assert.equal(await dataUrl.text(), 'hello');
  });
});
