// x402 merchants for the tests, as crates/py/tests/test_x402.py has them: the paid API of
// `examples/paid_api.rs` (x402-rs's axum paywall, settled by the devnet's facilitator), and a
// local merchant that asks given requirements of every request and records every request's
// headers, so that a test sees whether a payment reached it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';

import { freePort } from './devnet.mjs';

/** 0.01 of the 6-decimal demo token: the paid API's price. */
export const PRICE = 10_000n;
/** The paid API's payee (Anvil's dev account 9). */
export const MERCHANT = '0xa0Ee7A142d267C1f36714E4a8F75612F20a79720';
const PAYMENT_HEADERS = ['payment-signature', 'x-payment'];

/** Starts `examples/paid_api` on the devnet (beside the `chaperone` binary, in examples/). */
export async function startPaidApi(devnet, ...args) {
  const program = join(dirname(devnet.binary), 'examples/paid_api');
  if (!existsSync(program)) {
    throw new Error(`${program} is missing: build it with \`cargo build -p chaperone-cli --examples\``);
  }
  const port = await freePort();
  const child = spawn(program, ['--devnet', join(devnet.dir, 'devnet.json'), '--port', String(port), ...args],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  const api = {
    url: `http://127.0.0.1:${port}/weather`,
    /** [requests that arrived with a payment header, requests served]. */
    async stats() {
      const stats = await (await fetch(`http://127.0.0.1:${port}/stats`)).json();
      return [stats.payment_headers, stats.served];
    },
    stop() {
      child.kill('SIGKILL');
    },
  };
  for (let i = 0; i < 100; i++) {
    try {
      await api.stats();
      return api;
    } catch {
      await new Promise((done) => setTimeout(done, 100));
    }
  }
  api.stop();
  throw new Error(`the paid API did not answer on ${port} within 10 s`);
}

/** An x402 v2 "exact" EIP-3009 requirement for the demo token. */
export function requirement(devnet, amount, payTo = MERCHANT) {
  return {
    scheme: 'exact',
    network: `eip155:${devnet.info.chainId}`,
    amount: String(amount),
    asset: devnet.info.token,
    payTo,
    maxTimeoutSeconds: 60,
    extra: { name: 'Test Token', version: '1' },
  };
}

/**
 * A local merchant that asks `accepts` of every request (`/redirect` first sends the client to
 * `/pay`; a request carrying a payment is answered with `paidStatus` and a `Location` of
 * `paidLocation`) and records every request's path and headers in `seen`.
 */
export async function startMerchant(accepts, { paidStatus = 402, paidLocation = '' } = {}) {
  const seen = [];
  const server = createServer((request, response) => {
    const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]));
    seen.push({ path: request.url, headers });
    if (request.url === '/redirect') {
      response.writeHead(307, { Location: '/pay', 'Content-Length': '0' }).end();
      return;
    }
    const paid = PAYMENT_HEADERS.some((name) => name in headers);
    if (paid && paidStatus !== 402) {
      response.writeHead(paidStatus, { Location: paidLocation, 'Content-Length': '0' }).end();
      return;
    }
    const required = {
      x402Version: 2,
      error: paid ? 'payment refused' : 'payment required',
      resource: { url: shop.url, description: 'a test resource' },
      accepts,
    };
    response.writeHead(402, {
      'Payment-Required': Buffer.from(JSON.stringify(required)).toString('base64'),
      'Content-Type': 'application/json',
    }).end('{}');
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  const shop = {
    port,
    url: `http://127.0.0.1:${port}/pay`,
    seen,
    /** The payment headers every request carried. */
    paymentHeaders() {
      return seen.flatMap(({ headers }) => PAYMENT_HEADERS.filter((n) => n in headers).map((n) => headers[n]));
    },
    stop: () => new Promise((done) => {
      server.closeAllConnections();
      server.close(done);
    }),
  };
  return shop;
}

/** Runs `fn` with the demo wallet's per-payment cap for the demo token lowered to `cap`, then
 * restores the policy. */
export async function withTokenCap(devnet, cap, fn) {
  const path = `/v1/admin/wallets/${devnet.info.wallet}/policy`;
  const original = await devnet.admin('GET', path);
  const capped = structuredClone(original);
  capped.version = original.version + 1;
  const limit = capped.limits.find((l) => String(l.token).toLowerCase() === devnet.info.token.toLowerCase());
  if (!limit) throw new Error(`the demo policy has no limit for the demo token: ${JSON.stringify(original)}`);
  limit.per_transaction = String(cap);
  await devnet.admin('PUT', path, capped);
  try {
    return await fn();
  } finally {
    await devnet.admin('PUT', path, { ...original, version: original.version + 2 });
  }
}

/** The co-sign decision `requestId`, as the compliance API lists it. */
export async function decision(devnet, requestId) {
  const decisions = await devnet.admin('GET', '/v1/decisions?limit=1000');
  const found = decisions.items.find((d) => d.request_id === requestId);
  if (!found) throw new Error(`no decision ${requestId}`);
  return found;
}

/** The same payment header sent again by hand: the status. */
export async function replay(url, payment) {
  const response = await fetch(url, { headers: { [payment.headerName]: payment.payload } });
  await response.arrayBuffer();
  return response.status;
}
