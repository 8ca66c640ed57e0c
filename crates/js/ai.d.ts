// The types of ai.js: a language-model middleware for the Vercel AI SDK's `wrapLanguageModel`
// and a recorded tool `execute`. Written structurally, so that this package does not need
// `ai` to type-check; the middleware is assignable to the AI SDK's `LanguageModelMiddleware`
// (test/types.ts checks it with `tsc --strict`).
import type { Recorded, Recorder } from './native'

/** What the middleware reads of a model. */
export interface LanguageModelLike {
  readonly provider: string
  readonly modelId: string
}

/** What the middleware reads of a call's options: the prompt and the request settings. */
export interface CallOptionsLike {
  prompt: unknown
  [setting: string]: unknown
}

/** Options of `chaperoneMiddleware`. */
export interface ChaperoneMiddlewareOptions {
  /** Told each record made (a stream's when the stream ends). */
  onRecorded?: (recorded: Recorded) => void
}

/** An AI SDK language-model middleware (specification v3). */
export interface ChaperoneMiddleware {
  readonly specificationVersion: 'v3'
  wrapGenerate<R extends { content: unknown }>(options: {
    doGenerate: () => PromiseLike<R>
    params: CallOptionsLike
    model: LanguageModelLike
  }): Promise<R>
  wrapStream<R extends { stream: ReadableStream<any> }>(options: {
    doStream: () => PromiseLike<R>
    params: CallOptionsLike
    model: LanguageModelLike
  }): Promise<R>
}

/** A middleware recording every generate and stream call of the wrapped model with
 * `recorder`: input, output and the OpenTelemetry `gen_ai.*` attributes, and the x402
 * payments the call made (bound to its record). */
export declare function chaperoneMiddleware(recorder: Recorder, options?: ChaperoneMiddlewareOptions): ChaperoneMiddleware

/** A tool `execute` that records each execution (`tool:<name>`), with the x402 payments made
 * within it bound to its record. */
export declare function recordTool<I, O, X = unknown>(
  recorder: Recorder,
  name: string,
  execute: (input: I, options: X) => O | PromiseLike<O>,
): (input: I, options: X) => Promise<O>
