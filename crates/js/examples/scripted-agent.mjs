// A Vercel AI SDK agent whose every model call and tool call is a Chaperone record.
//
// Runs offline: the model is the AI SDK's scripted MockLanguageModelV3 (no API key), the
// Chaperone side is real. Start the devnet first (`make up`), install the package's
// development dependencies (`npm ci` in crates/js), then:
//
//     node crates/js/examples/scripted-agent.mjs
//     chaperone verify .chaperone/ts-agent-disclosure.json --rpc-url http://127.0.0.1:8545
//
// With a real model, only the model line changes (`openai('gpt-4o')` for the scripted one).
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

import { Recorder, Refused, devnetAgent, readDevnet } from '@chaperone/sdk';
import { chaperoneMiddleware, recordTool } from '@chaperone/sdk/ai';
import { generateText, jsonSchema, stepCountIs, streamText, tool, wrapLanguageModel } from 'ai';
import { MockLanguageModelV3, convertArrayToReadableStream } from 'ai/test';

const { values: args } = parseArgs({
  options: {
    devnet: { type: 'string', default: '.chaperone/devnet.json' },
    'data-file': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

const usage = (input, output) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined },
});

/** The scripted model: asks for the exchange rate, answers with it, then streams a summary. */
function scriptedModel() {
  const answers = [
    {
      content: [{ type: 'tool-call', toolCallId: 'call-1', toolName: 'exchange_rate', input: '{"currency":"EUR"}' }],
      finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
      usage: usage(31, 12),
    },
    {
      content: [{ type: 'text', text: '250 EUR is 270.00 USD at 1.08.' }],
      finishReason: { unified: 'stop', raw: 'stop' },
      usage: usage(58, 14),
    },
  ];
  let call = 0;
  return new MockLanguageModelV3({
    provider: 'scripted',
    modelId: 'scripted-model',
    doGenerate: async () => ({ ...answers[Math.min(call++, answers.length - 1)], warnings: [] }),
    doStream: async () => ({
      stream: convertArrayToReadableStream([
        { type: 'stream-start', warnings: [] },
        { type: 'text-start', id: 'summary' },
        { type: 'text-delta', id: 'summary', delta: 'At 1.08 USD per EUR, ' },
        { type: 'text-delta', id: 'summary', delta: '250 EUR buys 270 USD.' },
        { type: 'text-end', id: 'summary' },
        { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(70, 11) },
      ]),
    }),
  });
}

/** Discloses a record once a checkpoint covers it and is anchored (the devnet checkpoints and
 * anchors every 2 s; until then the server answers 409 `not_checkpointed`). */
async function anchoredDisclosure(recorder, leafHash) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const disclosure = await recorder.disclose(leafHash, ['input', 'output', 'metadata']);
      if (disclosure.anchored || Date.now() > deadline) return disclosure;
    } catch (e) {
      if (!(e instanceof Refused) || e.code !== 'not_checkpointed' || Date.now() > deadline) throw e;
    }
    await new Promise((done) => setTimeout(done, 500));
  }
}

const devnet = readDevnet(args.devnet);
const dataFile = args['data-file'] ?? join(dirname(args.devnet), 'ts-agent.db');
// Its own agent (key beside the data file): the demo agent's records are `make agent`'s.
const agent = await devnetAgent(devnet, 'ts-agent', dirname(dataFile));
const recorder = await Recorder.open(devnet.serverUrl, dataFile, agent.key);
const recorded = [];
try {
  const model = wrapLanguageModel({
    model: scriptedModel(),
    middleware: chaperoneMiddleware(recorder, { onRecorded: (r) => recorded.push(r) }),
  });
  const exchangeRate = tool({
    description: 'The demo exchange rate of a currency to USD.',
    inputSchema: jsonSchema({ type: 'object', properties: { currency: { type: 'string' } }, required: ['currency'] }),
    execute: recordTool(recorder, 'exchange_rate', async ({ currency }) => ({ EUR: '1.08', GBP: '1.27' })[currency] ?? 'unknown'),
  });
  const { text } = await generateText({
    model, prompt: 'How much is 250 EUR in USD?', tools: { exchange_rate: exchangeRate }, stopWhen: stepCountIs(3),
  });
  const summary = streamText({ model, prompt: 'Summarise the conversion in one sentence.' });
  const summaryText = await summary.text;

  await recorder.sync();
  const records = await recorder.records();
  const receipt = await recorder.receipt(recorded[0]);
  const out = join(dirname(dataFile), 'ts-agent-disclosure.json');
  (await anchoredDisclosure(recorder, recorded[0].leafHash)).write(out);
  const result = {
    agent: recorder.agent,
    answer: text,
    summary: summaryText,
    records: records.length,
    // This run's calls (a second run goes on with the same agent and outbox).
    models: records.slice(-4).map((r) => r.model),
    leafHash: recorded[0].leafHash,
    index: receipt.index,
    disclosure: out,
  };
  if (args.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(`answer: ${text}\nsummary: ${summaryText}`);
    console.log(`recorded ${result.models.length} calls as agent ${recorder.agent}: ${result.models.join(', ')}`);
    console.log(`the first model call is at index ${receipt.index}; its disclosure: ${out}`);
    console.log(`verify it: chaperone verify ${out} --rpc-url ${devnet.rpcUrl} --server ${devnet.serverUrl}`);
  }
} finally {
  await recorder.close();
}
