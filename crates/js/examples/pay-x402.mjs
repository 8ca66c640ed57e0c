// A TypeScript agent that pays an x402 API within its wallet's policy, and whose audit record
// of the call commits to the payment, which the policy service then binds to it.
//
// Runs offline against the devnet: start it (`make up`) and its paid API (`make paid-api`,
// `examples/paid_api.rs`: 0.01 of the demo token per forecast, settled by the devnet's x402
// facilitator), then:
//
//     node crates/js/examples/pay-x402.mjs
//
// The agent is the devnet's demo agent (its wallet's agent: a payment binds only to a record
// its own agent signed), recording from its outbox, `.chaperone/agent.db`.
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

import { Denied, Recorder, Wallet, readDevnet, recordCall } from '@chaperone/sdk';
import { paymentOf, wrapFetchWithPayment } from '@chaperone/sdk/x402';

const { values: args } = parseArgs({
  options: {
    devnet: { type: 'string', default: '.chaperone/devnet.json' },
    url: { type: 'string', default: 'http://127.0.0.1:8403/weather' },
    json: { type: 'boolean', default: false },
  },
});

const devnet = readDevnet(args.devnet);
const wallet = await Wallet.connect(devnet.serverUrl, devnet.rpcUrl, devnet.wallet, devnet.agentKey);
const recorder = await Recorder.open(devnet.serverUrl, join(dirname(args.devnet), 'agent.db'), devnet.agentKey);
const fetchWithPayment = wrapFetchWithPayment(fetch, wallet);
try {
  // The call: its record commits to the payment made within it, and is bound to it.
  const { value: forecast, recorded, payments } = await recordCall(recorder, 'demo-model',
    'What is the weather in Lisbon? Buy the forecast.', async () => {
      const response = await fetchWithPayment(args.url);
      const payment = paymentOf(response);
      return { status: response.status, body: await response.text(), paid: payment?.amount ?? 0n };
    });
  const [payment] = payments;
  const result = {
    status: forecast.status,
    forecast: forecast.body,
    paid: String(forecast.paid),
    requestId: payment?.requestId,
    transaction: payment?.settlement?.transaction,
    leafHash: recorded.leafHash,
  };
  if (args.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(`${args.url} answered ${forecast.status}: ${forecast.body}`);
    console.log(`paid ${forecast.paid} base units in ${result.transaction}; the decision ` +
      `${result.requestId} is bound to the call ${recorded.leafHash}`);
  }
} catch (e) {
  if (!(e instanceof Denied)) throw e;
  console.error(`the policy denied the payment (the merchant saw none): ${e.reasons.map(String).join('; ')}`);
  process.exitCode = 2;
} finally {
  await recorder.close();
}
