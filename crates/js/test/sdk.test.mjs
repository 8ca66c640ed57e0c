// @chaperone/sdk against a real devnet (`chaperone up`): records delivered exactly once (the
// server's export says so), a SIGKILLed process's persisted records delivered once on reopen,
// a disclosure verified by `chaperone verify`, and pay / deny / approve through the wallet.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as chaperone from '../index.js';
import { anchoredDisclosure, startDevnet, tempDir } from './devnet.mjs';

const { Recorder, Wallet, Disclosure } = chaperone;
const here = dirname(fileURLToPath(import.meta.url));
const KIB = 'x'.repeat(1024);
const VENDOR = '0x4242424242424242424242424242424242424242';
const ETH = 10n ** 18n;

let devnet;
before(async () => {
  devnet = await startDevnet();
});
after(async () => {
  await devnet?.stop();
});

describe('Recorder', () => {
  test('a thousand records are delivered once each', async () => {
    const key = await devnet.agentKey();
    const recorder = await Recorder.open(devnet.info.serverUrl, join(tempDir(), 'agent.db'), key);
    const recorded = [];
    for (let i = 0; i < 1000; i++) {
      recorded.push(await recorder.record('gpt-4o', KIB, `answer ${i}${KIB}`, { i, 'gen_ai.system': 'openai' }));
    }
    assert.deepEqual(recorded.map((r) => r.sequence), [...Array(1000).keys()]);
    assert.equal(new Set(recorded.map((r) => r.leafHash)).size, 1000);
    assert.equal(recorded[0].agent, recorder.agent);
    await recorder.sync();
    assert.equal(recorder.progress.delivered, 1000);
    // Every record has its own receipt, in the order recorded. Not adjacent: the service logs
    // its own records (decisions, admin actions) into the same log, between the agent's batches.
    const indices = [];
    for (const r of recorded) indices.push((await recorder.receipt(r)).index);
    assert.ok(indices.every((index, i) => i === 0 || index > indices[i - 1]), 'receipts follow the sequence');
    assert.equal((await recorder.records()).length, 1000);
    await recorder.close();
    await recorder.close(); // closing twice is harmless
    await assert.rejects(recorder.record('gpt-4o', 'a', 'b'), chaperone.Closed);
    await assert.rejects(recorder.sync(), chaperone.Closed);
    assert.deepEqual(devnet.loggedSequences(recorder.agent), [...Array(1000).keys()]);
  });

  test('with a tiny queue, record waits for room and every record still arrives once', async () => {
    const key = await devnet.agentKey();
    const recorder = await Recorder.open(devnet.info.serverUrl, join(tempDir(), 'agent.db'), key,
      { queue: 4, maxBatch: 2, lingerMs: 0 });
    const all = await Promise.all([...Array(200).keys()].map((i) => recorder.record('m', `${i}`, 'o')));
    assert.deepEqual(all.map((r) => r.sequence).sort((a, b) => a - b), [...Array(200).keys()]);
    await recorder.sync();
    await recorder.close();
    assert.deepEqual(devnet.loggedSequences(recorder.agent), [...Array(200).keys()]);
  });

  test('a SIGKILLed process loses no persisted record and doubles none', async () => {
    const key = await devnet.agentKey();
    const dataFile = join(tempDir(), 'agent.db');
    const child = spawn(process.execPath, [join(here, 'child.mjs'), devnet.info.serverUrl, dataFile, key],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((done) => child.once('exit', done));
    const firstLine = await new Promise((done) => createInterface({ input: child.stdout }).once('line', done));
    assert.equal(firstLine, 'flushed');
    await new Promise((done) => setTimeout(done, 300)); // mid-stream: batches persisted, deliveries in flight
    child.kill('SIGKILL');
    await exited;

    const recorder = await Recorder.open(devnet.info.serverUrl, dataFile, key);
    const persisted = await recorder.records();
    assert.ok(persisted.length >= 300, 'every flushed record survives the kill');
    assert.deepEqual(persisted.map((r) => r.sequence), [...Array(persisted.length).keys()]);
    await recorder.sync();
    const next = await recorder.record('gpt-4o', 'after', 'restart');
    assert.equal(next.sequence, persisted.length, 'the chain goes on where the outbox ended');
    await recorder.sync();
    await recorder.close();
    assert.deepEqual(devnet.loggedSequences(recorder.agent), [...Array(persisted.length + 1).keys()]);
  });

  test('a disclosure verifies on chain and with `chaperone verify`; a doctored one fails', async () => {
    const key = await devnet.agentKey();
    const recorder = await Recorder.open(devnet.info.serverUrl, join(tempDir(), 'agent.db'), key);
    const recorded = await recorder.record('gpt-4o', 'What is 2+2?', Buffer.from('4'),
      { 'gen_ai.usage.input_tokens': 7, 'gen_ai.request.model': { b: 1n, a: [2] } });
    const receipt = await recorder.receipt(recorded);
    const disclosure = await anchoredDisclosure(recorder, recorded.leafHash, ['input', 'output', 'metadata']);
    assert.ok(disclosure.anchored, 'the checkpoint was never anchored');
    const { rpcUrl, auditLog, logId, serverUrl } = devnet.info;
    const verified = await disclosure.verifyOnChain(rpcUrl, auditLog, logId);
    assert.equal(verified.leafHash, recorded.leafHash);
    assert.equal(disclosure.leafHash, recorded.leafHash);
    assert.equal(verified.index, receipt.index);
    assert.equal(verified.agent, recorder.agent);
    assert.deepEqual(verified.disclosed, ['input', 'output', 'metadata']);
    assert.equal(verified.auditLog, auditLog);

    // The metadata object committed as JSON with sorted keys (bigints as decimal strings).
    const bundle = JSON.parse(disclosure.toJson());
    const opened = bundle.disclosed.map((d) => Buffer.from(d.content.slice(2), 'hex').toString());
    assert.deepEqual(opened, ['What is 2+2?', '4',
      '{"gen_ai.request.model":{"a":[2],"b":"1"},"gen_ai.usage.input_tokens":7}']);

    const path = join(tempDir(), 'disclosure.json');
    disclosure.write(path);
    const ok = spawnSync(devnet.binary, ['verify', path, '--rpc-url', rpcUrl, '--server', serverUrl], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);

    const doctored = JSON.parse(disclosure.toJson());
    doctored.disclosed[0].content = `0x${Buffer.from('What is 2+3?').toString('hex')}`;
    const forged = Disclosure.fromJson(JSON.stringify(doctored));
    await assert.rejects(forged.verifyOnChain(rpcUrl, auditLog, logId), chaperone.ChaperoneError);
    forged.write(path);
    const bad = spawnSync(devnet.binary, ['verify', path, '--rpc-url', rpcUrl, '--server', serverUrl]);
    assert.equal(bad.status, 2);

    await recorder.forget(recorded.leafHash);
    await assert.rejects(recorder.disclose(recorded.leafHash), (e) => {
      assert.ok(e instanceof chaperone.Forgotten);
      assert.equal(e.leafHash, recorded.leafHash);
      return true;
    });
    await recorder.close();
  });

  test('bad input is refused with a precise error before anything is queued', async () => {
    const key = await devnet.agentKey();
    const recorder = await Recorder.open(devnet.info.serverUrl, join(tempDir(), 'agent.db'), key);
    await assert.rejects(recorder.disclose('0x12'), TypeError);
    await assert.rejects(recorder.disclose(`0x${'ab'.repeat(32)}`), chaperone.UnknownRecord);
    await assert.rejects(recorder.disclose(`0x${'ab'.repeat(32)}`, ['inputs']), /not a commitment/);
    await assert.rejects(recorder.record('m', 42, 'o'), TypeError);
    assert.throws(() => chaperone.agentAddress('not a key'), TypeError);
    await assert.rejects(Recorder.open(devnet.info.serverUrl, join(tempDir(), 'a.db'), '0x01'), TypeError);
    assert.equal(recorder.progress.persisted, 0);
    await recorder.close();
  });
});

describe('Wallet', () => {
  let wallet;
  before(async () => {
    const { serverUrl, rpcUrl, wallet: address, agentKey } = devnet.info;
    wallet = await Wallet.connect(serverUrl, rpcUrl, address, agentKey, { approvalPoll: 0.2 });
  });

  test('a payment within the policy executes', async () => {
    const executed = await wallet.pay(VENDOR, ETH / 100n);
    assert.match(executed.txHash, /^0x[0-9a-f]{64}$/);
    assert.ok(executed.blockNumber > 0);
    assert.ok(executed.gasUsed > 21_000);
    assert.equal(wallet.address, devnet.info.wallet);
    assert.equal(wallet.chainId, devnet.info.chainId);
    const paid = await wallet.pay(VENDOR, 5_000_000n, devnet.info.token);
    const both = await wallet.execute([
      { to: VENDOR, value: ETH / 1000n },
      { to: VENDOR, value: ETH / 1000n, data: '0x' },
    ]);
    assert.ok(both.blockNumber >= paid.blockNumber);
    assert.notEqual(both.requestId, paid.requestId);
  });

  test('a payment over the cap is denied with its reasons, in words and exact values', async () => {
    await assert.rejects(wallet.pay(VENDOR, ETH / 2n), (denied) => {
      assert.ok(denied instanceof chaperone.Denied);
      assert.ok(denied instanceof chaperone.ChaperoneError);
      assert.match(denied.requestId, /^0x[0-9a-f]{64}$/);
      const cap = denied.reasons.find((r) => r.code === 'per_transaction_cap');
      assert.ok(cap, 'every violated rule is listed');
      assert.equal(cap.amount, ETH / 2n);
      assert.equal(cap.cap, ETH / 10n);
      assert.equal(cap.token, 'native');
      assert.equal(cap.text, '0.5 ETH is over the per-payment cap of 0.1 ETH');
      assert.equal(String(cap), cap.text);
      assert.match(denied.message, /0\.5 ETH is over the per-payment cap of 0\.1 ETH/);
      assert.ok(cap.json.includes('"cap":"0x16345785d8a0000"'), 'the exact values stay beside');
      return true;
    });
  });

  test('a payment above the threshold waits for a human, who approves it', async () => {
    const pending = await wallet.pay(VENDOR, 7n * ETH / 100n).then(
      () => assert.fail('paid without approval'), (e) => e);
    assert.ok(pending instanceof chaperone.Pending, String(pending));
    const waiting = await devnet.admin('GET', '/v1/admin/approvals');
    assert.ok(JSON.stringify(waiting).includes(pending.requestId), 'the approver sees the request');
    setTimeout(() => devnet.admin('POST', `/v1/admin/approvals/${pending.requestId}/approve`, {}), 500);
    const executed = await wallet.waitForApproval(pending.requestId, 60);
    assert.equal(executed.requestId, pending.requestId);
    assert.ok(executed.blockNumber > 0);
  });

  test('a denied approval rejects with Denied', async () => {
    const pending = await wallet.pay(VENDOR, 6n * ETH / 100n).then(
      () => assert.fail('paid without approval'), (e) => e);
    assert.ok(pending instanceof chaperone.Pending, String(pending));
    await devnet.admin('POST', `/v1/admin/approvals/${pending.requestId}/deny`, {});
    await assert.rejects(wallet.waitForApproval(pending.requestId, 30), chaperone.Denied);
  });

  test('bad arguments are refused before anything is sent', async () => {
    await assert.rejects(wallet.pay('0x42', 1n), /not an address/);
    await assert.rejects(wallet.pay(VENDOR.replace('42', 'Ab'), 1n), /checksum/);
    await assert.rejects(wallet.pay(VENDOR, -1n), /negative/);
    await assert.rejects(wallet.pay(VENDOR, 2n ** 256n), /below 2n \*\* 256n/);
    await assert.rejects(wallet.pay(VENDOR, 1.5), TypeError);
    await assert.rejects(wallet.waitForApproval(`0x${'00'.repeat(32)}`), /no pending payment/);
  });
});
