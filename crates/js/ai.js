'use strict';
// The Vercel AI SDK (`ai`): a language-model middleware that records every generate and stream
// call as a Chaperone record, for `wrapLanguageModel`:
//
//     const model = wrapLanguageModel({ model: openai('gpt-4o'), middleware: chaperoneMiddleware(recorder) })
//
// Each record commits to the call's input (the prompt, as JSON), its output (the content parts:
// text, reasoning, tool calls, …) and metadata with the OpenTelemetry `gen_ai.*` attributes
// (operation, provider, model, request settings, response id and model, finish reasons, token
// usage). x402 payments made by the call itself (a provider whose `fetch` is
// `wrapFetchWithPayment`'s) are in its metadata too and bound to the record; a tool that pays
// is recorded, with its payments, by `recordTool`. Only salted commitments reach the server.
const {
  callMetadata, bindPayments, errorOutput, errorType, recordCall, runCall, warnUnbound,
} = require('./calls.js');
const { canonicalJson } = require('./json.js');

/** The request settings the OpenTelemetry GenAI conventions name, by the AI SDK's names. */
const REQUEST_SETTINGS = {
  maxOutputTokens: 'gen_ai.request.max_tokens',
  temperature: 'gen_ai.request.temperature',
  topP: 'gen_ai.request.top_p',
  topK: 'gen_ai.request.top_k',
  stopSequences: 'gen_ai.request.stop_sequences',
  seed: 'gen_ai.request.seed',
  frequencyPenalty: 'gen_ai.request.frequency_penalty',
  presencePenalty: 'gen_ai.request.presence_penalty',
};

/** A token count of either specification: a number (v2) or `{ total }` (v3). */
function tokens(count) {
  if (typeof count === 'number') return count;
  if (count && typeof count.total === 'number') return count.total;
  return undefined;
}

/** A finish reason of either specification: a string (v2) or `{ unified, raw }` (v3). */
function finishReason(reason) {
  if (typeof reason === 'string') return reason;
  return reason?.unified;
}

/** The attributes known before the call. */
function requestAttributes(model, params, mode) {
  const attributes = {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': model.provider,
    'gen_ai.request.model': model.modelId,
    'ai_sdk.call': mode,
  };
  for (const [setting, name] of Object.entries(REQUEST_SETTINGS)) {
    if (params[setting] !== undefined) attributes[name] = params[setting];
  }
  // The tools offered, by name (not an OpenTelemetry attribute: under the SDK's own prefix).
  if (Array.isArray(params.tools) && params.tools.length > 0) {
    attributes['ai_sdk.tools'] = params.tools.map((tool) => tool.name ?? tool.id);
  }
  return attributes;
}

/** Adds what the answer says: response id and model, finish reasons, token usage. */
function addResponse(attributes, { response, finishReason: reason, usage }) {
  if (response?.id !== undefined) attributes['gen_ai.response.id'] = response.id;
  if (response?.modelId !== undefined) attributes['gen_ai.response.model'] = response.modelId;
  const finish = finishReason(reason);
  if (finish !== undefined) attributes['gen_ai.response.finish_reasons'] = [finish];
  const input = tokens(usage?.inputTokens);
  const output = tokens(usage?.outputTokens);
  if (input !== undefined) attributes['gen_ai.usage.input_tokens'] = input;
  if (output !== undefined) attributes['gen_ai.usage.output_tokens'] = output;
}

/** The record of one call: input, output and metadata committed, its payments bound. */
async function record(recorder, model, params, output, attributes, call) {
  const recorded = await recorder.record(model.modelId, canonicalJson(params.prompt), output,
    callMetadata(attributes, call));
  // The model call was served and paid for: its answer is not lost to a binding that failed
  // (the record commits to the payment); the application hears of it as a warning.
  warnUnbound(recorded, await bindPayments(recorder, recorded, call));
  return recorded;
}

/** The content parts of a stream, as a generate call returns them: text and reasoning joined
 * by id, tool calls, files and sources as they came. */
class StreamedContent {
  constructor() {
    this.parts = [];
    this.open = new Map();
    this.finish = {};
    this.response = {};
    this.error = undefined;
  }

  add(part) {
    switch (part.type) {
      case 'text-start':
      case 'reasoning-start': {
        const joined = { type: part.type === 'text-start' ? 'text' : 'reasoning', text: '' };
        this.open.set(`${joined.type}:${part.id}`, joined);
        this.parts.push(joined);
        break;
      }
      case 'text-delta':
      case 'reasoning-delta': {
        const type = part.type === 'text-delta' ? 'text' : 'reasoning';
        let joined = this.open.get(`${type}:${part.id}`);
        if (!joined) {
          joined = { type, text: '' };
          this.open.set(`${type}:${part.id}`, joined);
          this.parts.push(joined);
        }
        // v3 names the text `delta`, v2 (`text-delta`) `delta` too; older streams `textDelta`.
        joined.text += part.delta ?? part.textDelta ?? '';
        break;
      }
      case 'tool-call':
      case 'tool-result':
      case 'file':
      case 'source':
        this.parts.push(part);
        break;
      case 'response-metadata':
        this.response = { ...this.response, id: part.id ?? this.response.id, modelId: part.modelId ?? this.response.modelId };
        break;
      case 'finish':
        this.finish = { finishReason: part.finishReason, usage: part.usage };
        break;
      case 'error':
        this.error = part.error;
        break;
      default:
        break;
    }
  }
}

/**
 * A language-model middleware (AI SDK `LanguageModelV3Middleware`) recording every generate and
 * stream call of the wrapped model with `recorder`. A failed call is recorded too (its error as
 * the output, `error.type` in the metadata) and fails as it would have. `onRecorded(recorded)`,
 * if given, is told each record. A stream's record is made when the stream ends.
 */
function chaperoneMiddleware(recorder, options = {}) {
  const onRecorded = options.onRecorded ?? (() => {});
  return {
    specificationVersion: 'v3',

    async wrapGenerate({ doGenerate, params, model }) {
      const attributes = requestAttributes(model, params, 'generate');
      const ran = await runCall(doGenerate);
      let output;
      if (ran.failed) {
        attributes['error.type'] = errorType(ran.error);
        output = errorOutput(ran.error);
      } else {
        addResponse(attributes, ran.value);
        output = canonicalJson(ran.value.content);
      }
      onRecorded(await record(recorder, model, params, output, attributes, ran.call));
      if (ran.failed) throw ran.error;
      return ran.value;
    },

    async wrapStream({ doStream, params, model }) {
      const attributes = requestAttributes(model, params, 'stream');
      const ran = await runCall(doStream);
      if (ran.failed) {
        attributes['error.type'] = errorType(ran.error);
        onRecorded(await record(recorder, model, params, errorOutput(ran.error), attributes, ran.call));
        throw ran.error;
      }
      const streamed = new StreamedContent();
      let done = false;
      const finish = async (cancelled) => {
        if (done) return;
        done = true;
        addResponse(attributes, { ...streamed.finish, response: streamed.response });
        let output = canonicalJson(streamed.parts);
        if (streamed.error !== undefined || cancelled) {
          const error = streamed.error ?? cancelled;
          attributes['error.type'] = streamed.error !== undefined ? errorType(error) : 'cancelled';
          output = canonicalJson({ content: streamed.parts, error: JSON.parse(errorOutput(error)).error });
        }
        onRecorded(await record(recorder, model, params, output, attributes, ran.call));
      };
      const stream = ran.value.stream.pipeThrough(new TransformStream({
        transform(part, controller) {
          streamed.add(part);
          controller.enqueue(part);
        },
        flush: () => finish(undefined),
        cancel: (reason) => finish(reason ?? new Error('the stream was cancelled')),
      }));
      return { ...ran.value, stream };
    },
  };
}

/**
 * An AI SDK tool's `execute` that records each execution as a call (`tool:<name>`, its input and
 * result as JSON, `gen_ai.operation.name` `execute_tool`, `gen_ai.tool.name` and
 * `gen_ai.tool.call.id`), with the x402 payments made within it bound to its record.
 */
function recordTool(recorder, name, execute) {
  return async (input, toolOptions) => {
    const metadata = { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': name };
    if (toolOptions?.toolCallId !== undefined) metadata['gen_ai.tool.call.id'] = toolOptions.toolCallId;
    const { value, recorded, unbound } = await recordCall(recorder, `tool:${name}`,
      canonicalJson(input ?? null), () => execute(input, toolOptions), { metadata });
    warnUnbound(recorded, unbound);
    return value;
  };
}

// One assignment per name, so that ES modules can import them by name (Node's CommonJS lexer).
exports.chaperoneMiddleware = chaperoneMiddleware;
exports.recordTool = recordTool;
