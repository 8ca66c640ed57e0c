// Type-checked with `tsc --strict` (tsconfig.json), never run: the generated declarations
// (native.d.ts) and errors.d.ts describe what a TypeScript agent writes.
import {
  ChaperoneError,
  Denied,
  Pending,
  Recorder,
  Wallet,
  agentAddress,
  readDevnet,
  type Executed,
  type Recorded,
  type RecordReceipt,
} from '../index'

export async function agent(): Promise<void> {
  const devnet = readDevnet('.chaperone/devnet.json')
  const address: string = agentAddress(devnet.agentKey)
  const recorder = await Recorder.open(devnet.serverUrl, 'agent.db', devnet.agentKey, { lingerMs: 20 })
  const recorded: Recorded = await recorder.record('gpt-4o', 'What is 2+2?', '4', { 'gen_ai.usage.input_tokens': 7 })
  const now: Recorded | null = recorder.recordNow('gpt-4o', new Uint8Array([1]), Buffer.from('2'))
  const receipt: RecordReceipt = await recorder.receipt(recorded)
  const index: number = receipt.index
  const disclosure = await recorder.disclose(recorded.leafHash, ['input', 'metadata'])
  const verified = await disclosure.verifyOnChain(devnet.rpcUrl, devnet.auditLog, devnet.logId)
  const disclosed: string[] = verified.disclosed
  await recorder.forget(recorded.leafHash)
  await recorder.sync()
  await recorder.close()

  const wallet = await Wallet.connect(devnet.serverUrl, devnet.rpcUrl, devnet.wallet, devnet.agentKey)
  try {
    const executed: Executed = await wallet.pay('0x4242424242424242424242424242424242424242', 10n ** 16n)
    const tx: string = executed.txHash
    void tx
  } catch (e) {
    if (e instanceof Denied) {
      for (const reason of e.reasons) {
        const cap: bigint | undefined = reason.cap
        const words: string = reason.text
        void cap, words
      }
    } else if (e instanceof Pending) {
      await wallet.waitForApproval(e.requestId, 600)
    } else if (e instanceof ChaperoneError) {
      throw e
    }
  }
  void address, now, index, disclosed
}

// x402, the AI SDK middleware and the LangChain.js handler, checked against the real packages'
// types: the scheme is an @x402/core `SchemeNetworkClient`, the middleware an AI SDK
// `LanguageModelMiddleware`, the handler a LangChain callback handler.
import { X402Client, X402Payment, PaymentRefused, recordCall, type SettledPayment, type SignedAuthorization } from '../index'
import { ChaperoneExactEvmScheme, paymentOf, withoutPaidRedirects, wrapFetchWithPayment } from '../x402'
import { chaperoneMiddleware, recordTool } from '../ai'
import { ChaperoneCallbackHandler } from '../langchain'
import { x402Client, x402HTTPClient } from '@x402/core/client'
import type { SchemeNetworkClient } from '@x402/core/types'
import { wrapFetchWithPayment as referenceFetch } from '@x402/fetch'
import { generateText, jsonSchema, tool, wrapLanguageModel, type LanguageModelMiddleware } from 'ai'
import { MockLanguageModelV3 } from 'ai/test'
import type { BaseCallbackHandler } from '@langchain/core/callbacks/base'

export async function x402Agent(recorder: Recorder, wallet: Wallet): Promise<void> {
  const client = new X402Client(wallet)
  const answer = await client.send({ url: 'https://api.example/forecast', headers: [['accept', 'application/json']] })
  const status: number = answer.status
  const paid: X402Payment | null | undefined = answer.payment
  const amount: bigint | undefined = paid?.amount
  const fetchWithPayment: typeof fetch = wrapFetchWithPayment(fetch, client, { timeoutMs: 10_000 })
  const response = await fetchWithPayment('https://api.example/forecast')
  const payment: X402Payment | null = paymentOf(response)
  if (payment) {
    const settled: SettledPayment = await client.watch(payment)
    const found: SettledPayment | null = await payment.findSettlement('http://127.0.0.1:8545', wallet.agent)
    const standing: 'usable' | 'settled' | 'expired' = (await client.standing(payment)).state
    const bounded = new X402Client(wallet, { timeoutMs: 30_000 })
    void standing, bounded
    const metadata: Buffer = X402Payment.recordMetadata([payment])
    const again: X402Payment[] = X402Payment.fromMetadata(metadata)
    void settled, found, again
  }
  const call = await recordCall(recorder, 'gpt-4o', 'Buy it', async () => (await fetchWithPayment('https://api.example')).text())
  const text: string = call.value
  const bound: X402Payment[] = call.payments
  try {
    await client.send({ url: 'https://api.example/forecast' })
  } catch (e) {
    if (e instanceof PaymentRefused) {
      const kept: X402Payment = e.payment
      client.release(kept.requestId)
    }
  }
  const signed: SignedAuthorization = await wallet.signPaymentAuthorization(
    '0x4242424242424242424242424242424242424242', '0x4242424242424242424242424242424242424242', 10n, { name: 'USD Coin', version: '2' })
  const value: bigint = signed.message.value
  await wallet.bindToCall(signed.requestId, call.recorded.leafHash)

  const scheme_ = new ChaperoneExactEvmScheme(wallet, { resource: 'https://api.example' })
  const scheme: SchemeNetworkClient = scheme_
  const reference = new x402Client().register(`eip155:${wallet.chainId}`, scheme)
  const paying: typeof fetch = referenceFetch(fetch, reference)
  const hooked = new x402HTTPClient(reference).onPaymentRequired(scheme_.onPaymentRequired)
  const payingHooked: typeof fetch = referenceFetch(withoutPaidRedirects(fetch), hooked)
  const capped = wrapFetchWithPayment(fetch, wallet, { maxBodyBytes: 1 << 20 })
  void status, amount, text, bound, value, paying, payingHooked, capped
}

export async function aiAgent(recorder: Recorder): Promise<string> {
  const middleware: LanguageModelMiddleware = chaperoneMiddleware(recorder, { onRecorded: (r: Recorded) => void r })
  const model = wrapLanguageModel({ model: new MockLanguageModelV3(), middleware })
  const lookup = tool({
    inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } } }),
    execute: recordTool(recorder, 'lookup', async ({ city }: { city: string }) => `sunny in ${city}`),
  })
  const { text } = await generateText({ model, prompt: 'Weather?', tools: { lookup } })
  const handler: BaseCallbackHandler = new ChaperoneCallbackHandler(recorder, { recordTools: false })
  void handler
  return text
}
