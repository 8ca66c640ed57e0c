// Red-team findings of issue 31's third review (the @x402/core scheme's book under a merchant
// that settles and does not serve, and the SDK's `send_read`), on a devnet of their own: each
// payment takes one of the wallet's EIP-1271 authorization slots for the period (ten on the
// devnet). Each test failed against the code before its fix (main at ff6489a).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { x402Client, x402HTTPClient } from '@x402/core/client';
import { wrapFetchWithPayment as referenceFetch } from '@x402/fetch';
import { createWalletClient, http, parseAbi } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

import * as chaperone from '../index.js';
import { ChaperoneExactEvmScheme, withoutPaidRedirects, wrapFetchWithPayment } from '../x402.js';
import { startDevnet } from './devnet.mjs';
import { PRICE, requirement } from './merchants.mjs';

const { Wallet } = chaperone;
// Anvil's dev account 0: the merchant's own gas payer.
const ANVIL0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const TOKEN_ABI = parseAbi([
  'function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature)',
]);

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

describe('red team (i31, third review)', () => {
  /** The merchant settles a payment header itself (EIP-3009), as any holder of it can. */
  async function settle(headerValue) {
    const header = JSON.parse(Buffer.from(headerValue, 'base64').toString('utf8'));
    const { authorization: a, signature } = header.payload;
    const client = createWalletClient({ account: privateKeyToAccount(ANVIL0), transport: http(devnet.info.rpcUrl) });
    const chain = { id: Number(devnet.info.chainId), name: 'devnet', nativeCurrency: { name: 'E', symbol: 'E', decimals: 18 }, rpcUrls: { default: { http: [devnet.info.rpcUrl] } } };
    const hash = await client.writeContract({
      chain,
      address: devnet.info.token,
      abi: TOKEN_ABI,
      functionName: 'transferWithAuthorization',
      args: [a.from, a.to, BigInt(a.value), BigInt(a.validAfter), BigInt(a.validBefore), a.nonce, signature],
    });
    return hash;
  }

  /** @x402/fetch paying through `scheme`, as the scheme requires it. */
  function schemeFetch(scheme) {
    const client = new x402Client().register(`eip155:${devnet.info.chainId}`, scheme);
    client.setSpendControls(false);
    const h = new x402HTTPClient(client).onPaymentRequired(scheme.onPaymentRequired);
    return referenceFetch(withoutPaidRedirects(fetch), h);
  }

  /** A merchant: `onUnpaid(n, res)` / `onPaid(n, req, res, paymentHeader)` (n: requests so far). */
  async function merchant(onUnpaid, onPaid) {
    const seen = [];
    const server = createServer(async (request, response) => {
      for await (const _ of request) { /* drain */ }
      const payment = request.headers['payment-signature'] ?? request.headers['x-payment'] ?? null;
      const n = seen.length;
      seen.push({ payment });
      if (payment) return onPaid(n, request, response, payment);
      return onUnpaid(n, response);
    });
    await new Promise((done) => server.listen(0, '127.0.0.1', done));
    return {
      url: `http://127.0.0.1:${server.address().port}/pay`,
      seen,
      /** The distinct authorizations among the payment headers it received. */
      auths: () => new Set(seen.filter((r) => r.payment).map((r) =>
        JSON.stringify(JSON.parse(Buffer.from(r.payment, 'base64').toString()).payload))),
      stop: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
    };
  }

  /** A 402 with x402 v2 requirements in its header (a BOM before the JSON with `bom`). */
  function required402(response, url, bom = false) {
    const body = { x402Version: 2, error: 'payment required', resource: { url }, accepts: [requirement(devnet, PRICE)] };
    const json = (bom ? '\uFEFF' : '') + JSON.stringify(body);
    response.writeHead(402, { 'Payment-Required': Buffer.from(json).toString('base64'), 'Content-Type': 'application/json' }).end('{}');
  }

  test('red team: a BOM before the Payment-Required JSON is tagged as @x402/core reads it: one request, one authorization', async () => {
    // withoutPaidRedirects decoded the header with Buffer (which keeps U+FEFF, so JSON.parse
    // failed and the 402 went on untagged); @x402/core decodes it with atob and TextDecoder
    // (which drop it) and paid it, keyed on the URL alone: a second authorization.
    let shop;
    shop = await merchant((n, res) => required402(res, shop.url, n % 4 === 2), (n, req, res) => required402(res, shop.url));
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const pay = schemeFetch(scheme);
      for (let i = 0; i < 2; i++) assert.equal((await pay(shop.url)).status, 402);
      assert.equal(scheme.payments.length, 1, 'one request, one authorization');
      assert.equal(shop.auths().size, 1);
    } finally {
      await shop.stop();
    }
    // A Payment-Required header @x402/core cannot read either is refused, not passed on.
    const odd = await merchant((n, res) => res.writeHead(402, { 'Payment-Required': '%%%not base64' }).end('{}'), () => {});
    try {
      await assert.rejects(schemeFetch(new ChaperoneExactEvmScheme(wallet))(odd.url), chaperone.Invalid);
      assert.equal(odd.auths().size, 0);
    } finally {
      await odd.stop();
    }
  });

  test("red team: a settled 2xx whose body breaks off is not served: the scheme does not pay the request again", async () => {
    // withoutPaidRedirects noted the 2xx status before anyone read the body, so the scheme
    // forgot the settled payment and the retry co-signed a second one.
    let shop;
    shop = await merchant((n, res) => required402(res, shop.url), async (n, req, res, payment) => {
      await settle(payment);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100000' });
      res.write('{"weather":');
      setTimeout(() => res.destroy(), 50);
    });
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const pay = schemeFetch(scheme);
      const answer = await pay(shop.url);
      assert.equal(answer.status, 200);
      await assert.rejects(answer.text());
      await assert.rejects(pay(shop.url), /did not serve/);
      assert.equal(scheme.payments.length, 1, 'one authorization co-signed');
      assert.equal(shop.auths().size, 1, 'the agent never read an answer: one authorization');
    } finally {
      await shop.stop();
    }
  });

  test("red team: without withoutPaidRedirects the scheme pays nothing (a settled 402's success claim cannot free it)", async () => {
    // Without the request's id, "served" fell back to the merchant's PAYMENT-RESPONSE claim,
    // even on a 402: a merchant that settled each payment and claimed success was paid again
    // on every retry.
    let shop;
    shop = await merchant((n, res) => required402(res, shop.url), async (n, req, res, payment) => {
      await settle(payment);
      const body = { x402Version: 2, error: 'payment required', resource: { url: shop.url }, accepts: [requirement(devnet, PRICE)] };
      const settled = { success: true, transaction: `0x${'11'.repeat(32)}`, network: `eip155:${devnet.info.chainId}` };
      res.writeHead(402, {
        'Payment-Required': Buffer.from(JSON.stringify(body)).toString('base64'),
        'Payment-Response': Buffer.from(JSON.stringify(settled)).toString('base64'),
      }).end('{}');
    });
    try {
      const scheme = new ChaperoneExactEvmScheme(wallet);
      const client = new x402Client().register(`eip155:${devnet.info.chainId}`, scheme);
      client.setSpendControls(false);
      const pay = referenceFetch(fetch, new x402HTTPClient(client).onPaymentRequired(scheme.onPaymentRequired));
      for (let i = 0; i < 3; i++) await assert.rejects(pay(shop.url), /withoutPaidRedirects/);
      assert.equal(scheme.payments.length, 0, 'nothing co-signed');
      assert.equal(shop.auths().size, 0, 'no payment sent');
    } finally {
      await shop.stop();
    }
  });

  test('red team: a settled payment the merchant did not serve is not paid again once its validity is long over', async () => {
    // The book dropped entries whose validity ended over an hour ago by the local clock,
    // settled-and-unserved ones too: the same request then paid again.
    let shop; let scheme;
    shop = await merchant((n, res) => required402(res, shop.url), async (n, req, res, payment) => {
      await settle(payment).catch(() => {});
      required402(res, shop.url);
    });
    const realNow = Date.now;
    try {
      scheme = new ChaperoneExactEvmScheme(wallet);
      const pay = schemeFetch(scheme);
      assert.equal((await pay(shop.url)).status, 402);
      await assert.rejects(pay(shop.url), /did not serve/);
      // Two hours later by the local clock, the agent pays something else...
      Date.now = () => realNow() + 2 * 3600 * 1000;
      await pay(`${shop.url}?other`).catch(() => {});
      // ...and asks for the same resource again.
      await assert.rejects(pay(shop.url), /did not serve/);
      const forUrl = scheme.payments.filter((p) => p.resource === shop.url).length;
      assert.equal(forUrl, 1, `the merchant that kept a payment and never served got ${forUrl}`);
    } finally {
      Date.now = realNow;
      await shop.stop();
    }
  });

  test("red team: one origin's kept payment is never handed to another", async () => {
    // With { resource } and no hook, the scheme keyed the payment on the resource alone and
    // presented origin A's kept payment to origin B.
    let a; let b;
    a = await merchant((n, res) => required402(res, a.url), (n, req, res) => required402(res, a.url));
    b = await merchant((n, res) => required402(res, b.url), (n, req, res) => required402(res, b.url));
    try {
      const named = new ChaperoneExactEvmScheme(wallet, { resource: a.url });
      const client = new x402Client().register(`eip155:${devnet.info.chainId}`, named);
      client.setSpendControls(false);
      const noHook = referenceFetch(withoutPaidRedirects(fetch), new x402HTTPClient(client));
      await assert.rejects(noHook(a.url), /does not know the request that asked/);
      await assert.rejects(noHook(b.url), /does not know the request that asked/);
      assert.equal(named.payments.length, 0);
      // A payment made for A, sent to B through withoutPaidRedirects: refused before it leaves.
      const scheme = new ChaperoneExactEvmScheme(wallet);
      assert.equal((await schemeFetch(scheme)(a.url)).status, 402);
      const [header] = a.seen.filter((r) => r.payment).map((r) => r.payment);
      await assert.rejects(withoutPaidRedirects(fetch)(b.url, { headers: { 'payment-signature': header } }),
        (e) => e instanceof chaperone.Invalid && /is not sent to/.test(e.message));
      const shared = [...a.auths()].filter((x) => b.auths().has(x));
      assert.equal(shared.length, 0, `origin B was handed A's authorization (${shared.length})`);
      assert.equal(b.auths().size, 0);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('red team: a settled 200 whose body stalls is not paid again by a retry while it is read (SDK path)', async () => {
    // The SDK's send_read forgot the payment on the 200's status and released the request's
    // lock before reading the body: the retry of an aborted call signed a second payment.
    let shop;
    const open = [];
    shop = await merchant((n, res) => required402(res, shop.url), async (n, req, res, payment) => {
      await settle(payment).catch(() => {});
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100000' });
      res.write('{"weather":');
      open.push(res);
    });
    try {
      const pay = wrapFetchWithPayment(fetch, new chaperone.X402Client(wallet, { timeoutMs: 20_000 }));
      for (let i = 0; i < 3; i++) {
        await assert.rejects(pay(shop.url, { signal: AbortSignal.timeout(1500) }), { name: 'TimeoutError' });
      }
      assert.equal(shop.auths().size, 1, 'one request, served nothing: one authorization');
    } finally {
      for (const r of open) r.destroy();
      await shop.stop();
    }
  });
});
