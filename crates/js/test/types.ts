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
