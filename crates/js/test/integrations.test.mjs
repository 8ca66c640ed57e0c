// The AI SDK middleware and the LangChain.js handler record the calls of scripted models
// (the AI SDK's MockLanguageModelV3, LangChain's FakeListChatModel) against a devnet, with the
// OpenTelemetry `gen_ai.*` attributes in the metadata commitment; and the runnable examples
// and the README's TypeScript examples work against it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { tool as langchainTool } from '@langchain/core/tools';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { generateText, jsonSchema, stepCountIs, streamText, tool, wrapLanguageModel } from 'ai';
import { MockLanguageModelV3, convertArrayToReadableStream } from 'ai/test';
import ts from 'typescript';

import { Disclosure, Recorder } from '../index.js';
import { chaperoneMiddleware, recordTool } from '../ai.js';
import { ChaperoneCallbackHandler } from '../langchain.js';
import { anchoredDisclosure, startDevnet, tempDir } from './devnet.mjs';
import { startPaidApi } from './merchants.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const js = resolve(here, '..');
const repo = resolve(js, '../..');

let devnet;
before(async () => {
  devnet = await startDevnet();
});
after(async () => {
  await devnet?.stop();
});

async function openRecorder() {
  return Recorder.open(devnet.info.serverUrl, join(tempDir(), 'agent.db'), await devnet.agentKey());
}

/** The content a full disclosure of a record opens, by commitment kind. */
async function opened(recorder, leafHash) {
  const disclosure = await anchoredDisclosure(recorder, leafHash, ['input', 'output', 'metadata']);
  return Object.fromEntries(JSON.parse(disclosure.toJson()).disclosed.map((d) => [
    d.kind, Buffer.from(d.content.slice(2), 'hex').toString()]));
}

const usage = (input, output) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined },
});

describe('the AI SDK middleware', () => {
  test('records a generate call with the gen_ai attributes', async () => {
    const recorder = await openRecorder();
    const records = [];
    const model = wrapLanguageModel({
      model: new MockLanguageModelV3({
        provider: 'scripted',
        modelId: 'scripted-model',
        doGenerate: {
          content: [{ type: 'text', text: 'four' }],
          finishReason: { unified: 'stop', raw: 'stop' },
          usage: usage(9, 1),
          response: { id: 'resp-1', modelId: 'scripted-model-2026' },
          warnings: [],
        },
      }),
      middleware: chaperoneMiddleware(recorder, { onRecorded: (r) => records.push(r) }),
    });
    const { text } = await generateText({ model, prompt: 'What is 2+2?', temperature: 0.2, maxOutputTokens: 5 });
    assert.equal(text, 'four');
    assert.equal(records.length, 1);
    assert.equal(records[0].model, 'scripted-model');
    await recorder.sync();
    const call = await opened(recorder, records[0].leafHash);
    assert.match(call.input, /What is 2\+2\?/);
    assert.deepEqual(JSON.parse(call.output), [{ text: 'four', type: 'text' }]);
    assert.deepEqual(JSON.parse(call.metadata), {
      'ai_sdk.call': 'generate',
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'scripted',
      'gen_ai.request.max_tokens': 5,
      'gen_ai.request.model': 'scripted-model',
      'gen_ai.request.temperature': 0.2,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.response.id': 'resp-1',
      'gen_ai.response.model': 'scripted-model-2026',
      'gen_ai.usage.input_tokens': 9,
      'gen_ai.usage.output_tokens': 1,
    });
    await recorder.close();
    assert.deepEqual(devnet.loggedSequences(recorder.agent), [0]);
  });

  test('records a stream once it ends, its text joined', async () => {
    const recorder = await openRecorder();
    const records = [];
    const model = wrapLanguageModel({
      model: new MockLanguageModelV3({
        modelId: 'scripted-streamer',
        doStream: {
          stream: convertArrayToReadableStream([
            { type: 'stream-start', warnings: [] },
            { type: 'response-metadata', id: 'resp-2', modelId: 'scripted-streamer' },
            { type: 'text-start', id: 't' },
            { type: 'text-delta', id: 't', delta: 'It is ' },
            { type: 'text-delta', id: 't', delta: 'sunny.' },
            { type: 'text-end', id: 't' },
            { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(5, 3) },
          ]),
        },
      }),
      middleware: chaperoneMiddleware(recorder, { onRecorded: (r) => records.push(r) }),
    });
    const result = streamText({ model, prompt: 'Weather in Lisbon?' });
    assert.equal(await result.text, 'It is sunny.');
    assert.equal(records.length, 1, 'recorded when the stream ended');
    await recorder.sync();
    const call = await opened(recorder, records[0].leafHash);
    assert.deepEqual(JSON.parse(call.output), [{ text: 'It is sunny.', type: 'text' }]);
    const metadata = JSON.parse(call.metadata);
    assert.equal(metadata['ai_sdk.call'], 'stream');
    assert.equal(metadata['gen_ai.response.id'], 'resp-2');
    assert.equal(metadata['gen_ai.usage.output_tokens'], 3);
    await recorder.close();
  });

  test('records tool calls and a failed call, which fails as it would have', async () => {
    const recorder = await openRecorder();
    const records = [];
    let step = 0;
    const model = wrapLanguageModel({
      model: new MockLanguageModelV3({
        modelId: 'scripted-agent',
        doGenerate: async () => (step++ === 0
          ? {
            content: [{ type: 'tool-call', toolCallId: 'call-1', toolName: 'lookup', input: '{"city":"Lisbon"}' }],
            finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
            usage: usage(10, 4),
            warnings: [],
          }
          : {
            content: [{ type: 'text', text: 'It is sunny in Lisbon.' }],
            finishReason: { unified: 'stop', raw: 'stop' },
            usage: usage(20, 8),
            warnings: [],
          }),
      }),
      middleware: chaperoneMiddleware(recorder, { onRecorded: (r) => records.push(r) }),
    });
    const lookup = tool({
      description: 'The weather in a city.',
      inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
      execute: recordTool(recorder, 'lookup', async ({ city }) => `sunny in ${city}`),
    });
    const { text } = await generateText({ model, prompt: 'Weather in Lisbon?', tools: { lookup }, stopWhen: stepCountIs(3) });
    assert.equal(text, 'It is sunny in Lisbon.');
    await recorder.sync();
    const logged = await recorder.records();
    assert.deepEqual(logged.map((r) => r.model), ['scripted-agent', 'tool:lookup', 'scripted-agent']);
    const toolCall = await opened(recorder, logged[1].leafHash);
    assert.deepEqual(JSON.parse(toolCall.input), { city: 'Lisbon' });
    assert.equal(toolCall.output, 'sunny in Lisbon');
    assert.deepEqual(JSON.parse(toolCall.metadata), {
      'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.call.id': 'call-1', 'gen_ai.tool.name': 'lookup',
    });
    const first = await opened(recorder, records[0].leafHash);
    assert.match(first.output, /"toolName":"lookup"/);
    assert.deepEqual(JSON.parse(first.metadata)['ai_sdk.tools'], ['lookup']);

    const failing = wrapLanguageModel({
      model: new MockLanguageModelV3({
        modelId: 'scripted-failure',
        doGenerate: async () => { throw new RangeError('the model is overloaded'); },
      }),
      middleware: chaperoneMiddleware(recorder, { onRecorded: (r) => records.push(r) }),
    });
    await assert.rejects(generateText({ model: failing, prompt: 'Hi', maxRetries: 0 }), /overloaded/);
    await recorder.sync();
    const failed = await opened(recorder, records.at(-1).leafHash);
    assert.equal(JSON.parse(failed.metadata)['error.type'], 'RangeError');
    assert.match(failed.output, /RangeError: the model is overloaded/);
    await recorder.close();
  });
});

describe('the LangChain.js handler', () => {
  test('records model and tool calls with the gen_ai attributes', async () => {
    const recorder = await openRecorder();
    const model = new FakeListChatModel({ responses: ['four', 'eight'] });
    const double = langchainTool(async ({ number }) => String(2 * number), {
      name: 'double',
      description: 'Doubles a number.',
      schema: { type: 'object', properties: { number: { type: 'number' } }, required: ['number'] },
    });
    const handler = new ChaperoneCallbackHandler(recorder);
    const config = { callbacks: [handler] };
    assert.equal((await model.invoke('What is 2+2?', config)).content, 'four');
    assert.equal(await double.invoke({ number: 4 }, config), '8');
    assert.equal((await model.invoke('And doubled?', config)).content, 'eight');
    await recorder.sync();
    assert.deepEqual(handler.recorded.map((r) => r.model), ['FakeListChatModel', 'tool:double', 'FakeListChatModel']);
    const chat = await opened(recorder, handler.recorded[0].leafHash);
    assert.match(chat.input, /What is 2\+2\?/);
    assert.match(chat.output, /four/);
    const metadata = JSON.parse(chat.metadata);
    assert.equal(metadata['gen_ai.operation.name'], 'chat');
    assert.equal(metadata['gen_ai.request.model'], 'FakeListChatModel');
    assert.equal(metadata['gen_ai.provider.name'], 'FakeListChatModel'); // LangChain's ls_provider
    assert.ok(metadata['langchain.run_id']);
    const toolCall = await opened(recorder, handler.recorded[1].leafHash);
    assert.deepEqual(JSON.parse(toolCall.input), { number: 4 });
    assert.equal(toolCall.output, '8');
    assert.equal(JSON.parse(toolCall.metadata)['gen_ai.tool.name'], 'double');
    await recorder.close();
    assert.deepEqual(devnet.loggedSequences(recorder.agent), [0, 1, 2]);
  });
});

describe('the examples', () => {
  test('the scripted agent records, and its disclosure verifies', async () => {
    const dataFile = join(tempDir(), 'ts-agent.db');
    const run = spawnSync(process.execPath, [join(js, 'examples/scripted-agent.mjs'), '--devnet',
      join(devnet.dir, 'devnet.json'), '--data-file', dataFile, '--json'], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(run.status, 0, run.stderr);
    const summary = JSON.parse(run.stdout.trim().split('\n').at(-1));
    assert.deepEqual(summary.models, ['scripted-model', 'tool:exchange_rate', 'scripted-model', 'scripted-model']);
    assert.equal(Disclosure.read(summary.disclosure).leafHash, summary.leafHash);
    const verify = spawnSync(devnet.binary, ['verify', summary.disclosure, '--rpc-url', devnet.info.rpcUrl,
      '--server', devnet.info.serverUrl], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr + verify.stdout);
  });

  test('the x402 example buys from the paid API and binds the payment', async () => {
    const api = await startPaidApi(devnet);
    try {
      const run = spawnSync(process.execPath, [join(js, 'examples/pay-x402.mjs'), '--devnet',
        join(devnet.dir, 'devnet.json'), '--url', api.url, '--json'], { encoding: 'utf8', timeout: 300_000 });
      assert.equal(run.status, 0, run.stderr);
      const summary = JSON.parse(run.stdout.trim().split('\n').at(-1));
      assert.equal(summary.status, 200);
      assert.match(summary.transaction, /^0x[0-9a-f]{64}$/);
      assert.deepEqual(await api.stats(), [1, 1]);
    } finally {
      api.stop();
    }
  });

  test("the README's TypeScript examples type-check and run", async () => {
    // The complete programs (the ones that read the devnet), not the fragments.
    const blocks = [...readFileSync(join(repo, 'README.md'), 'utf8').matchAll(/```ts\n(.*?)```/gs)]
      .map((m) => m[1]).filter((block) => block.includes('readDevnet()'));
    assert.equal(blocks.length, 2, 'README.md shows a TypeScript agent recording and one paying');
    // A project of its own: @chaperone/sdk (this folder) and the devnet as `make up` leaves it.
    const project = tempDir('chaperone-readme-');
    mkdirSync(join(project, 'node_modules/@chaperone'), { recursive: true });
    symlinkSync(js, join(project, 'node_modules/@chaperone/sdk'));
    for (const name of ['ai', '@langchain', '@x402']) symlinkSync(join(js, 'node_modules', name), join(project, 'node_modules', name));
    symlinkSync(devnet.dir, join(project, '.chaperone'));
    const api = await startPaidApi(devnet);
    try {
      for (const [i, block] of blocks.entries()) {
        const source = block.replaceAll('http://127.0.0.1:8403/weather', api.url);
        const file = join(project, `example${i}.mts`);
        writeFileSync(file, source);
        const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
        writeFileSync(join(project, `example${i}.mjs`), out.outputText);
        const run = spawnSync(process.execPath, [`example${i}.mjs`], { cwd: project, encoding: 'utf8', timeout: 300_000 });
        assert.equal(run.status, 0, `README block ${i}:\n${source}\n${run.stderr}`);
      }
      const typecheck = spawnSync(process.execPath, [join(js, 'node_modules/typescript/bin/tsc'), '--strict', '--noEmit',
        '--module', 'node16', '--moduleResolution', 'node16', '--target', 'ES2022', '--types', 'node',
        '--typeRoots', join(js, 'node_modules/@types'), '--skipLibCheck',
        ...readdirSync(project).filter((f) => f.endsWith('.mts')).map((f) => join(project, f))],
      { cwd: project, encoding: 'utf8' });
      assert.equal(typecheck.status, 0, typecheck.stdout + typecheck.stderr);
    } finally {
      api.stop();
    }
  });
});
