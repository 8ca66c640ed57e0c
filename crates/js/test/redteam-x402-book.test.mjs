// Red-team findings of issue 31's second review (the @x402/core scheme's book of payments,
// withoutPaidRedirects' 402 bodies, X402Client's default timeout), on a devnet of their own:
// each payment takes one of the wallet's EIP-1271 authorization slots for the period (ten on
// the devnet), and redteam-x402.test.mjs uses most of them. Each test failed against the code
// before its fix (the one that drained slots per retry took them all).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { x402Client, x402HTTPClient } from '@x402/core/client';
import { wrapFetchWithPayment as referenceFetch } from '@x402/fetch';

import * as chaperone from '../index.js';
import { ChaperoneExactEvmScheme, withoutPaidRedirects } from '../x402.js';
import { startDevnet } from './devnet.mjs';
import { PRICE, requirement } from './merchants.mjs';

const { Wallet, X402Client } = chaperone;

let devnet;
let wallet;
before(async () => {
  devnet = await startDevnet();
  const { serverUrl, rpcUrl, wallet: address, agentKey } = devnet.info;
  wallet = await Wallet.connect(serverUrl, rpcUrl, address, agentKey);
});
after(async () => {
  await devnet?.stop();
});

describe('red team (i31, second review)', () => {
  /** @x402/fetch paying through `scheme`, the URL that asked noted by its hook. */
  function schemeFetch(scheme) {
    const client = new x402Client().register(`eip155:${devnet.info.chainId}`, scheme);
    client.setSpendControls(false);
    const http = new x402HTTPClient(client).onPaymentRequired(scheme.onPaymentRequired);
    return referenceFetch(withoutPaidRedirects(fetch), http);
  }

  /** A merchant whose every 402 asks `accepts(n)` (n: the requests it got so far) and whose
   * answer to a paid request is `paid(n)`: `{ status, settled }` (settled: a PAYMENT-RESPONSE
   * reporting success, which it does not make true). It records each request's method, body
   * and payment header. */
  async function flexibleMerchant(accepts, paid = () => ({ status: 402 })) {
    const { createServer } = await import('node:http');
    const seen = [];
    const server = createServer(async (request, response) => {
      const chunks = [];
      for await (const chunk of request) chunks.push(chunk);
      const payment = request.headers['payment-signature'] ?? request.headers['x-payment'] ?? null;
      const n = seen.length;
      seen.push({ method: request.method, body: Buffer.concat(chunks).toString(), payment });
      const headers = { 'Content-Type': 'application/json' };
      const answer = payment ? paid(n) : { status: 402 };
      if (answer.settled) {
        const settled = { success: true, transaction: `0x${'11'.repeat(32)}`, network: `eip155:${devnet.info.chainId}` };
        headers['Payment-Response'] = Buffer.from(JSON.stringify(settled)).toString('base64');
      }
      if (answer.status === 402) {
        const required = { x402Version: 2, error: 'payment required', resource: { url: shop.url }, accepts: accepts(n) };
        headers['Payment-Required'] = Buffer.from(JSON.stringify(required)).toString('base64');
      }
      response.writeHead(answer.status, headers).end('{}');
    });
    await new Promise((done) => server.listen(0, '127.0.0.1', done));
    const shop = {
      url: `http://127.0.0.1:${server.address().port}/pay`,
      seen,
      payments: () => seen.filter((r) => r.payment).map((r) => r.payment),
      stop: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
    };
    return shop;
  }

  /** The authorizations (EIP-3009 payloads) among payment headers. */
  const authorizations = (headers) => new Set(headers.map((h) =>
    JSON.stringify(JSON.parse(Buffer.from(h, 'base64').toString()).payload)));

  test("red team: a merchant varying its 402's extra and maxTimeoutSeconds gets the kept payment, not a new slot", async () => {
    // The kept payment's key held the requirement the merchant writes: a 402 with another
    // `maxTimeoutSeconds` (or one more field in `extra`) each time got a new authorization,
    // each holding one of the period's slots until it expired.
    const accepts = (n) => [{ ...requirement(devnet, PRICE), maxTimeoutSeconds: 60 + n, extra: { name: 'Test Token', version: '1', round: n } }];
    const shop = await flexibleMerchant(accepts);
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const pay = schemeFetch(scheme);
      for (let i = 0; i < 3; i++) assert.equal((await pay(shop.url)).status, 402);
      assert.equal(scheme.payments.length, 1, 'one authorization co-signed');
      assert.equal(shop.payments().length, 3);
      assert.equal(authorizations(shop.payments()).size, 1, 'the merchant saw one authorization three times');
    } finally {
      await shop.stop();
    }
  });

  test('red team: a 402 claiming the payment settled does not free it for a new slot', async () => {
    // A PAYMENT-RESPONSE with `success: true` on a 402 made the scheme forget the payment it
    // kept, so the next retry co-signed a new one: the chain must show it used first.
    const shop = await flexibleMerchant(() => [requirement(devnet, PRICE)], () => ({ status: 402, settled: true }));
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const pay = schemeFetch(scheme);
      for (let i = 0; i < 3; i++) assert.equal((await pay(shop.url)).status, 402);
      assert.equal(scheme.payments.length, 1, 'one authorization co-signed');
      assert.equal(authorizations(shop.payments()).size, 1);
    } finally {
      await shop.stop();
    }
  });

  test('red team: concurrent scheme payments for one request share one authorization', async () => {
    // Each looked for a kept payment before any had been co-signed, so each took a slot.
    const shop = await flexibleMerchant(() => [requirement(devnet, PRICE)]);
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const pay = schemeFetch(scheme);
      const answers = await Promise.all([pay(shop.url), pay(shop.url), pay(shop.url)]);
      assert.deepEqual(answers.map((a) => a.status), [402, 402, 402]);
      assert.equal(scheme.payments.length, 1, 'one authorization co-signed');
      assert.equal(authorizations(shop.payments()).size, 1);
    } finally {
      await shop.stop();
    }
  });

  test("red team: the scheme keeps a payment by the request's method and body, not the URL alone", async () => {
    // The kept payment of one request (a POST of one body) must not be presented for another
    // request to the same URL, and the same request must get it again.
    const shop = await flexibleMerchant(() => [requirement(devnet, PRICE)]);
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const pay = schemeFetch(scheme);
      const post = (body) => pay(shop.url, { method: 'POST', body });
      assert.equal((await post('{"city":"Paris"}')).status, 402);
      assert.equal((await post('{"city":"Paris"}')).status, 402);
      assert.equal(scheme.payments.length, 1, 'the same request: the same payment');
      assert.equal((await post('{"city":"Oslo"}')).status, 402);
      assert.equal(scheme.payments.length, 2, 'another body: another purchase');
      const sent = shop.seen.filter((r) => r.payment);
      assert.deepEqual(sent.map((r) => [r.method, r.body]),
        [['POST', '{"city":"Paris"}'], ['POST', '{"city":"Paris"}'], ['POST', '{"city":"Oslo"}']]);
      assert.equal(authorizations(sent.map((r) => r.payment)).size, 2);
    } finally {
      await shop.stop();
    }
  });

  test("red team: an explicit resource that disagrees with the URL that asked co-signs nothing", async () => {
    // `resource` overrode the URL the hook saw: the payment named (and was kept for) another
    // URL than the one it went to.
    const shop = await flexibleMerchant(() => [requirement(devnet, PRICE)]);
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet, { resource: 'https://api.trusted.example/weather' });
      await assert.rejects(schemeFetch(scheme)(shop.url), /asks for payment, but this scheme was given the resource/);
      assert.equal(scheme.payments.length, 0, 'nothing co-signed');
      assert.deepEqual(shop.payments(), [], 'no payment sent');
      // The same URL as the hook's is no disagreement.
      const same = new ChaperoneExactEvmScheme(wallet, { resource: shop.url });
      assert.equal((await schemeFetch(same)(shop.url)).status, 402);
      assert.equal(same.payments[0].resource, shop.url);
    } finally {
      await shop.stop();
    }
  });

  test("red team: a 402's endless body on the @x402/fetch path is read at most 64 KiB", async () => {
    // @x402/fetch reads a 402's body whole (for v1's requirements) before it pays: a merchant
    // streaming one without end exhausted the agent's memory. This one stops at 256 MiB.
    const { createServer } = await import('node:http');
    const required = { x402Version: 2, error: 'payment required', accepts: [requirement(devnet, PRICE)] };
    let written = 0;
    const server = createServer((request, response) => {
      if ('payment-signature' in request.headers) return response.writeHead(200).end('served');
      response.writeHead(402, { 'Payment-Required': Buffer.from(JSON.stringify(required)).toString('base64') });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (written < 256 * 1024 * 1024) {
          written += chunk.length;
          if (!response.write(chunk)) return;
        }
        response.end();
      };
      response.on('drain', pump);
      response.on('close', () => response.off('drain', pump));
      pump();
    });
    await new Promise((done) => server.listen(0, '127.0.0.1', done));
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const answer = await schemeFetch(scheme)(`http://127.0.0.1:${server.address().port}/pay`);
      assert.equal(answer.status, 200);
      assert.ok(written < 32 * 1024 * 1024, `the merchant wrote ${written} bytes before the agent stopped reading`);
    } finally {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    }
  });

  test("red team: X402Client's default timeout cuts off a merchant that never answers", async () => {
    // `send` had no bound unless the request named one: a merchant that accepts the
    // connection and never answers held the agent's call forever.
    const { createServer } = await import('node:http');
    const server = createServer(() => {});
    await new Promise((done) => server.listen(0, '127.0.0.1', done));
    try {
      const client = new X402Client(wallet, { timeoutMs: 500 });
      const guard = new Promise((done) => setTimeout(() => done('still waiting after 10 s'), 10_000).unref());
      const outcome = await Promise.race([
        client.send({ url: `http://127.0.0.1:${server.address().port}/pay` }).then(() => 'answered', (e) => e),
        guard,
      ]);
      assert.ok(outcome instanceof chaperone.Unreachable, String(outcome));
    } finally {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    }
  });
});
