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
// Last, the stall an agent sees: a record per timer turn (`--rate` turns a second, far above a
// real agent's pace), delivered as they go, in one-second windows that alternate with windows
// of the same timers without records, so that both see the same machine: its own stalls show in
// both, what recording and delivery add only in the first.
//
// The figures go to docs/benchmarks.md (beside the Python package's and the Rust SDK's).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createHistogram, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
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
    rate: { type: 'string', default: '500' },
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

  // 3. Paced: one record per timer turn of `interval` ms (a timer is set, the record made, the
  // timer awaited) in one-second windows, alternating with idle one-second windows (the same
  // timers, no records). A turn's lateness is how long after its timer was due it ran: a stall
  // of the loop as the agent feels it, whatever caused it (the record call, garbage collection,
  // a promise settled from the runtime, or the machine).
  // What the SDK itself holds the loop's thread for, apart from the machine: the longest
  // `record` call (from the call until its promise settled) and the longest garbage
  // collection pause, in each kind of window. On a virtual machine whose idle loop is already
  // late by several milliseconds now and then, these say what recording adds.
  const lateness = { paced: createHistogram(), idle: createHistogram() };
  const over1ms = { paced: 0, idle: 0 };
  const longestRecordMs = { paced: 0, idle: 0 };
  const longestGcMs = { paced: 0, idle: 0 };
  let windowKind = 'idle';
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      longestGcMs[windowKind] = Math.max(longestGcMs[windowKind], entry.duration);
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  const interval = 1000 / rate;
  const window = async (kind, recording) => {
    windowKind = kind;
    const end = performance.now() + 1000;
    while (performance.now() < end) {
      const set = performance.now();
      const timer = new Promise((resolve) => setTimeout(resolve, interval));
      if (recording) {
        const called = performance.now();
        await recorder.record('bench-model', input, output);
        longestRecordMs[kind] = Math.max(longestRecordMs[kind], performance.now() - called);
      }
      await timer;
      const late = performance.now() - set - interval;
      lateness[kind].record(Math.max(1, Math.round(late * 1e6)));
      if (late > 1) over1ms[kind]++;
    }
  };
  await recorder.flush();
  const before = recorder.progress.persisted;
  for (let w = 0; w < windows; w++) {
    await window('paced', true);
    await window('idle', false);
  }
  gc.disconnect();
  if (devnet) await recorder.sync();
  else await recorder.flush();
  const pacedRecords = recorder.progress.persisted - before;
  await recorder.close();
  const delays = (h) => ({
    turns: h.count,
    max_late_ms: h.max / 1e6,
    p999_late_ms: h.percentile(99.9) / 1e6,
    p99_late_ms: h.percentile(99) / 1e6,
    mean_late_ms: h.mean / 1e6,
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
      timer_ms: interval,
      windows,
      records: pacedRecords,
      recording: {
        ...delays(lateness.paced),
        turns_late_over_1ms: over1ms.paced,
        longest_record_call_ms: longestRecordMs.paced,
        longest_gc_pause_ms: longestGcMs.paced,
      },
      idle_alongside: {
        ...delays(lateness.idle),
        turns_late_over_1ms: over1ms.idle,
        longest_gc_pause_ms: longestGcMs.idle,
      },
    },
  }, null, 2));
} finally {
  await devnet?.stop();
}
