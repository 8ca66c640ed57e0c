'use strict';
// LangChain.js: a callback handler that records every model call and tool call as a Chaperone
// record (needs @langchain/core):
//
//     const handler = new ChaperoneCallbackHandler(recorder)
//     await chatModel.invoke('What is 2+2?', { callbacks: [handler] })
//
// Each record commits to the call's input (the messages or prompts, as JSON), its output (the
// generations) and metadata with the OpenTelemetry `gen_ai.*` attributes (operation, provider,
// model, token usage) and the LangChain run ids, as the Python package's handler does. The
// content never leaves the agent: only salted commitments reach the server.
const { BaseCallbackHandler } = require('@langchain/core/callbacks/base');

const { canonicalJson } = require('./json.js');

/** The model's name: LangChain's LangSmith metadata (`ls_model_name`), the invocation
 * parameters, the constructor's arguments, else the class. */
function modelName(serialized, extraParams, metadata) {
  const sources = [
    { model: metadata?.ls_model_name },
    extraParams?.invocation_params ?? {},
    serialized?.kwargs ?? {},
  ];
  for (const source of sources) {
    for (const key of ['model', 'modelName', 'model_name', 'model_id', 'modelId']) {
      if (typeof source[key] === 'string' && source[key]) return source[key];
    }
  }
  const names = serialized?.id ?? [];
  return names.length > 0 ? String(names[names.length - 1]) : 'unknown';
}

/** Token usage from the result (`llmOutput.tokenUsage`) or its messages' `usage_metadata`. */
function usage(output) {
  const found = {};
  const tokenUsage = output?.llmOutput?.tokenUsage ?? output?.llmOutput?.token_usage;
  if (tokenUsage) {
    found['gen_ai.usage.input_tokens'] = Number(tokenUsage.promptTokens ?? tokenUsage.prompt_tokens ?? 0);
    found['gen_ai.usage.output_tokens'] = Number(tokenUsage.completionTokens ?? tokenUsage.completion_tokens ?? 0);
    return found;
  }
  for (const generations of output?.generations ?? []) {
    for (const generation of generations) {
      const counts = generation?.message?.usage_metadata;
      if (!counts) continue;
      found['gen_ai.usage.input_tokens'] = (found['gen_ai.usage.input_tokens'] ?? 0) + Number(counts.input_tokens ?? 0);
      found['gen_ai.usage.output_tokens'] = (found['gen_ai.usage.output_tokens'] ?? 0) + Number(counts.output_tokens ?? 0);
    }
  }
  return found;
}

/** A message as LangChain serialises it for storage (`{ type, data }`), else as it is. */
function messageJson(message) {
  if (message && typeof message.toDict === 'function') return message.toDict();
  if (message && typeof message._getType === 'function') {
    return { type: message._getType(), data: { content: message.content, ...message } };
  }
  return message;
}

/** The generations: each chat generation's message, each text generation's text. */
function generations(output) {
  return (output?.generations ?? []).map((batch) => batch.map((generation) => (
    generation.message ? messageJson(generation.message) : generation.text)));
}

/**
 * Records each LLM, chat model and tool run of the runnables it is passed to. `recorded` holds
 * the latest `keep` records (for receipts or disclosures); a failed run is recorded too, with
 * the error as its output, so the trail shows what was tried. LangChain awaits it
 * (`raiseError`): a record that cannot be made fails the run instead of passing silently.
 */
class ChaperoneCallbackHandler extends BaseCallbackHandler {
  constructor(recorder, options = {}) {
    super({ raiseError: true });
    this.name = 'chaperone';
    this.recorder = recorder;
    this.recordTools = options.recordTools ?? true;
    this.keep = options.keep ?? 1000;
    /** The latest records made, oldest first. */
    this.recorded = [];
    this.runs = new Map();
  }

  /** The handler itself: LangChain copies handlers for child runs, and every run's record
   * belongs in this one's `recorded` (its runs in progress too). */
  copy() {
    return this;
  }

  start(runId, started) {
    this.runs.set(runId, started);
  }

  async finish(runId, output, extra) {
    const started = this.runs.get(runId);
    if (!started) return undefined;
    this.runs.delete(runId);
    const metadata = { ...started.metadata, ...extra };
    const recorded = await this.recorder.record(started.model, started.input, output, metadata);
    this.recorded.push(recorded);
    if (this.recorded.length > this.keep) this.recorded.shift();
    return recorded;
  }

  modelMetadata(operation, model, runId, parentRunId, metadata) {
    const attributes = {
      'gen_ai.operation.name': operation,
      'gen_ai.request.model': model,
      'langchain.run_id': runId,
    };
    if (metadata?.ls_provider) attributes['gen_ai.provider.name'] = String(metadata.ls_provider);
    if (parentRunId) attributes['langchain.parent_run_id'] = parentRunId;
    return attributes;
  }

  async handleChatModelStart(llm, messages, runId, parentRunId, extraParams, tags, metadata) {
    const model = modelName(llm, extraParams, metadata);
    const input = canonicalJson(messages.map((batch) => batch.map(messageJson)));
    this.start(runId, { model, input, metadata: this.modelMetadata('chat', model, runId, parentRunId, metadata) });
  }

  async handleLLMStart(llm, prompts, runId, parentRunId, extraParams, tags, metadata) {
    const model = modelName(llm, extraParams, metadata);
    this.start(runId, {
      model,
      input: canonicalJson(prompts),
      metadata: this.modelMetadata('text_completion', model, runId, parentRunId, metadata),
    });
  }

  async handleLLMEnd(output, runId) {
    await this.finish(runId, canonicalJson({ generations: generations(output) }), usage(output));
  }

  async handleLLMError(error, runId) {
    await this.finish(runId, canonicalJson({ error: String(error) }), { 'error.type': error?.name ?? 'Error' });
  }

  async handleToolStart(tool, input, runId, parentRunId, tags, metadata, runName, toolCallId) {
    if (!this.recordTools) return;
    const name = String(runName ?? tool?.name ?? tool?.id?.at(-1) ?? 'tool');
    const attributes = {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': name,
      'langchain.run_id': runId,
    };
    if (toolCallId) attributes['gen_ai.tool.call.id'] = toolCallId;
    if (parentRunId) attributes['langchain.parent_run_id'] = parentRunId;
    this.start(runId, { model: `tool:${name}`, input, metadata: attributes });
  }

  async handleToolEnd(output, runId) {
    const text = typeof output === 'string' ? output
      : typeof output?.content === 'string' ? output.content
        : canonicalJson(output?.content ?? output ?? null);
    await this.finish(runId, text, {});
  }

  async handleToolError(error, runId) {
    await this.finish(runId, canonicalJson({ error: String(error) }), { 'error.type': error?.name ?? 'Error' });
  }
}

// One assignment per name, so that ES modules can import them by name (Node's CommonJS lexer).
exports.ChaperoneCallbackHandler = ChaperoneCallbackHandler;
