// The types of langchain.js: a LangChain.js callback handler (needs @langchain/core).
import { BaseCallbackHandler } from '@langchain/core/callbacks/base'

import type { Recorded, Recorder } from './native'

/** Options of `ChaperoneCallbackHandler`. */
export interface ChaperoneCallbackHandlerOptions {
  /** Record tool runs too (default true). */
  recordTools?: boolean
  /** How many of the latest records `recorded` keeps (default 1,000). */
  keep?: number
}

/** Records each LLM, chat model and tool run as a Chaperone record, with the OpenTelemetry
 * `gen_ai.*` attributes in its metadata. LangChain awaits it; a record that cannot be made
 * fails the run. */
export declare class ChaperoneCallbackHandler extends BaseCallbackHandler {
  constructor(recorder: Recorder, options?: ChaperoneCallbackHandlerOptions)
  name: string
  /** The recorder. */
  readonly recorder: Recorder
  /** The latest records made, oldest first. */
  readonly recorded: Recorded[]
}
