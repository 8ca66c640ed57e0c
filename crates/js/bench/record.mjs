// How long `Recorder.record` takes from Node: 1 KiB input and 1 KiB output per call, one
// thread, each call awaited and timed with process.hrtime.bigint(). Then the longest
// event-loop stall (perf_hooks.monitorEventLoopDelay) while records are delivered: the agent
// records in small slices between event-loop turns while the SDK's background tasks batch,
// sign, persist and deliver on napi-rs's runtime, then waits for every receipt.
//
//     npm install ./crates/js            # a release build (what users get)
//     node crates/js/bench/record.mjs    # starts its own devnet (`chaperone up`)
//     node crates/js/bench/record.mjs --server http://127.0.0.1:9   # the SDK alone
//
// Last, the stall an agent sees: records at an agent's pace (`--rate` a second, far above a
// real agent's), delivered as they go, in one-second windows that alternate with windows of an
// idle loop (a timer per turn, no records), so that both see the same machine: the machine's own
// stalls show in both, what recording and delivery add only in the first.
//
// The figures go to docs/benchmarks.md (beside the Python package's and the Rust SDK's).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { Recorder } from '../index.js';
import { startDevnet, tempDir } from '../test/devnet.mjs';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    calls: { type: 'string', default: '100000' },
    warmup: { type: 'string', default: '5000' },
    burst: { type: 'string', default: '10000' },
    slice: { type: 'string', default: '50' },
    rate: { type: 'string', default: '1000' },
    windows: { type: 'string', default: '20' },
  },
});
const calls = Number(args.calls);
const warmup = Number(args.warmup);
const burst = Number(args.burst);
const slice = Number(args.slice);
const rate = Number(args.rate);
const windows = Number(args.windows);

const percentile = (sorted, p) => Number(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]) / 1000;
const input = randomBytes(1024);
const output = randomBytes(1024);

/** The event loop's delays while it only waits (a timer per turn): what the machine itself
 * costs a Node process now, the baseline for the stalls measured with records. */
async function idleLoop(ms) {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const end = Date.now() + ms;
  while (Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 0));
  loop.disable();
  return { max_delay_ms: loop.max / 1e6, p99_delay_ms: loop.percentile(99) / 1e6 };
}

const devnet = args.server ? null : await startDevnet();
try {
  const server = args.server ?? devnet.info.serverUrl;
  const key = devnet ? await devnet.agentKey() : `0x${randomBytes(32).toString('hex')}`;
  const recorder = await Recorder.open(server, join(tempDir(), 'bench.db'), key);
  for (let i = 0; i < warmup; i++) await recorder.record('bench-model', input, output);
  await recorder.flush();

  // 1. Each call timed, in bursts that fit the queue (untimed flushes between them), as the
  // Python and Rust figures are.
  const timings = new BigInt64Array(calls);
  const clock = process.hrtime.bigint;
  let recordingNs = 0n;
  for (let done = 0; done < calls;) {
    const end = Math.min(calls, done + burst);
    const started = clock();
    for (; done < end; done++) {
      const before = clock();
      await recorder.record('bench-model', input, output);
      timings[done] = clock() - before;
    }
    recordingNs += clock() - started;
    await recorder.flush();
  }
  timings.sort();

  const idle = await idleLoop(3000);

  // 2. The event loop while records are delivered: record `slice` calls per turn of the
  // loop (setImmediate) for `calls` records, then wait for delivery.
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let sliceMaxNs = 0n;
  const deliveredStart = clock();
  for (let done = 0; done < calls; done += slice) {
    const started = clock();
    for (let i = 0; i < slice; i++) await recorder.record('bench-model', input, output);
    const took = clock() - started;
    if (took > sliceMaxNs) sliceMaxNs = took;
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (devnet) await recorder.sync();
  else await recorder.flush();
  const deliveredS = Number(clock() - deliveredStart) / 1e9;
  loop.disable();

  // 3. Paced: `rate` records a second (one per timer turn of 1000 / rate ms) in one-second
  // windows, alternating with idle one-second windows; one histogram for each kind.
  const paced = monitorEventLoopDelay({ resolution: 1 });
  const idleAlongside = monitorEventLoopDelay({ resolution: 1 });
  const over1ms = { paced: 0, idle: 0 };
  const interval = 1000 / rate;
  const turnGap = async (histogram, key, recording) => {
    const end = Date.now() + 1000;
    let due = performance.now();
    histogram.enable();
    let last = performance.now();
    while (Date.now() < end) {
      if (recording) await recorder.record('bench-model', input, output);
      due += interval;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
      const now = performance.now();
      // A turn that came over 1 ms later than it was due: a stall the agent would feel.
      if (now - Math.max(last, due) > 1) over1ms[key]++;
      last = now;
    }
    histogram.disable();
  };
  let pacedRecords = 0;
  const pacedStart = (await recorder.records()).length;
  for (let w = 0; w < windows; w++) {
    await turnGap(paced, 'paced', true);
    await turnGap(idleAlongside, 'idle', false);
  }
  if (devnet) await recorder.sync();
  pacedRecords = (await recorder.records()).length - pacedStart;
  await recorder.close();
  const delays = (h) => ({
    max_delay_ms: h.max / 1e6,
    p999_delay_ms: h.percentile(99.9) / 1e6,
    p99_delay_ms: h.percentile(99) / 1e6,
    mean_delay_ms: h.mean / 1e6,
  });

  console.log(JSON.stringify({
    regime: devnet ? 'delivering to a devnet (chaperone up, debug build)' : `server ${server}`,
    calls,
    p50_us: percentile(timings, 0.5),
    p99_us: percentile(timings, 0.99),
    p999_us: percentile(timings, 0.999),
    records_per_s: Math.round(calls / (Number(recordingNs) / 1e9)),
    event_loop: {
      records: calls,
      slice,
      longest_slice_ms: Number(sliceMaxNs) / 1e6,
      // monitorEventLoopDelay's delays are over its 1 ms timer: the longest stall of the loop.
      max_delay_ms: loop.max / 1e6,
      p99_delay_ms: loop.percentile(99) / 1e6,
      mean_delay_ms: loop.mean / 1e6,
      seconds: deliveredS,
    },
    idle_event_loop_3s: idle,
    paced: {
      rate_per_s: rate,
      windows,
      records: pacedRecords,
      recording: { ...delays(paced), turns_late_over_1ms: over1ms.paced },
      idle_alongside: { ...delays(idleAlongside), turns_late_over_1ms: over1ms.idle },
    },
  }, null, 2));
} finally {
  await devnet?.stop();
}
