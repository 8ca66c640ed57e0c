// Red-team findings of issue 31's fourth review (the @x402/core scheme's book and the bar on
// sending a payment elsewhere), against local merchants and an X402Client whose chain and
// co-signer are stood in for (`authorize` and `standing` answered here): what is attacked is
// the scheme's own bookkeeping, over more payments than a devnet's slots allow. Each test
// failed against the code before its fix.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, test } from 'node:test';

import { x402Client, x402HTTPClient } from '@x402/core/client';
import { wrapFetchWithPayment as referenceFetch } from '@x402/fetch';

import * as chaperone from '../index.js';
import { ChaperoneExactEvmScheme, withoutPaidRedirects } from '../x402.js';

const CHAIN = 'eip155:31337';
const REQUIREMENT = {
  scheme: 'exact',
  network: CHAIN,
  amount: '10',
  asset: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  payTo: '0xa0Ee7A142d267C1f36714E4a8F75612F20a79720',
  maxTimeoutSeconds: 60,
  extra: { name: 'Test Token', version: '1' },
};

/** An X402Client of the package (it passes the scheme's `instanceof`) whose co-signer and
 * chain are this test's: `authorize` signs a distinct fake payment after `delayMs`, and
 * `standing(payment)` answers `state(payment)`. */
let signed = 0;
function standIn({ delayMs = 0, state = () => 'usable' } = {}) {
  const client = Object.create(chaperone.X402Client.prototype);
  let n = 0;
  client.authorize = async (resource, requiredJson) => {
    await new Promise((done) => setTimeout(done, delayMs));
    const required = JSON.parse(requiredJson);
    const i = n++;
    // Distinct across stand-ins too: two payments with one signature are one payment.
    const nonce = `0x${(signed++).toString(16).padStart(64, '0')}`;
    const header = { x402Version: 2, payload: { authorization: { nonce }, signature: `0x${'ab'.repeat(65)}` }, accepted: required.accepts[0] };
    return { resource, requestId: nonce, payload: Buffer.from(JSON.stringify(header)).toString('base64'), index: i };
  };
  client.standing = async (payment) => ({ state: state(payment), settlement: null });
  return client;
}

/** A merchant asking REQUIREMENT of every unpaid request and answering every paid one 402;
 * it records the payment headers it received, by path. */
async function merchant() {
  const paid = [];
  const server = createServer(async (request, response) => {
    for await (const _ of request) { /* drain */ }
    const payment = request.headers['payment-signature'] ?? null;
    if (payment) paid.push({ path: request.url, payment });
    const body = { x402Version: 2, error: payment ? 'refused' : 'payment required', resource: { url: request.url }, accepts: [REQUIREMENT] };
    response.writeHead(402, { 'Payment-Required': Buffer.from(JSON.stringify(body)).toString('base64') }).end('{}');
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    paid,
    stop: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
  };
}

/** @x402/fetch paying through `scheme`, as the scheme requires it. */
function schemeFetch(scheme) {
  const client = new x402Client().register(CHAIN, scheme);
  client.setSpendControls(false);
  const http = new x402HTTPClient(client).onPaymentRequired(scheme.onPaymentRequired);
  return referenceFetch(withoutPaidRedirects(fetch), http);
}

describe('red team (i31, fourth review)', () => {
  test('red team: a kept payment is sent to no other URL however many payments came after it', async () => {
    // The bar looked the URL up in a process-wide map of the last 1,024 payments: after that
    // many later ones, a payment still kept (still usable) went to any URL.
    const shop = await merchant();
    try {
      // The first payment stays usable (kept); every later one is expired, so the book of 256
      // makes room for the next.
      const scheme = new ChaperoneExactEvmScheme(standIn({ state: (p) => (p.index === 0 ? 'usable' : 'expired') }));
      const pay = schemeFetch(scheme);
      for (let i = 0; i <= 1100; i++) assert.equal((await pay(`${shop.base}/pay?i=${i}`)).status, 402);
      assert.equal(scheme.payments.length, 1101);
      const first = shop.paid.find((r) => r.path === '/pay?i=0').payment;
      const kept = [...scheme.kept.values()].map((entry) => entry.payment.index);
      assert.ok(kept.includes(0), 'the first payment is still kept');
      const elsewhere = `${shop.base}/elsewhere`;
      await assert.rejects(withoutPaidRedirects(fetch)(elsewhere, { headers: { 'payment-signature': first } }),
        (e) => e instanceof chaperone.Invalid && /is not sent to/.test(e.message));
      assert.equal(shop.paid.filter((r) => r.path === '/elsewhere').length, 0, 'the kept payment went elsewhere');
    } finally {
      await shop.stop();
    }
  });

  test('red team: concurrent payments for different requests do not overshoot the book of 256', async () => {
    // Each payment checked the book's size before its first await and added itself after
    // co-signing: 300 at once each saw room, and the book held 300 usable payments.
    const shop = await merchant();
    try {
      const scheme = new ChaperoneExactEvmScheme(standIn({ delayMs: 50 }));
      const pay = schemeFetch(scheme);
      const outcomes = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => pay(`${shop.base}/pay?i=${i}`)));
      const refused = outcomes.filter((o) => o.status === 'rejected');
      assert.ok(scheme.kept.size <= 256, `the book holds ${scheme.kept.size} payments, past its 256`);
      assert.equal(scheme.payments.length, scheme.kept.size, 'every payment made is kept');
      const other = refused.filter(({ reason }) => !/its most/.test(String(reason?.message)));
      assert.deepEqual(other.map(({ reason }) => String(reason?.message)), []);
      assert.equal(refused.length, 300 - scheme.kept.size);
      for (const { reason } of refused) assert.match(String(reason?.message), /its most/);
    } finally {
      await shop.stop();
    }
  });
});
