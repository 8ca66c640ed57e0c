"""How long `Recorder.record` takes from Python: 1 KiB input and 1 KiB output per call, one
Python thread, against a running server (`make up`). Prints p50/p99/p99.9 and records/s
(of the timed calls, in bursts that fit the queue unless told otherwise).

    pip install ./crates/py          # a release build (what users get)
    python crates/py/bench/record.py --calls 200000

The figures go to docs/benchmarks.md. The recorder's background tasks (batching, signing,
the outbox, delivery) run on the same two cores meanwhile, as they do in an agent.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from chaperone import Devnet, Recorder, devnet_agent


def percentile(sorted_ns: list[int], p: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * p))] / 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devnet", type=Path, default=Path(".chaperone/devnet.json"))
    parser.add_argument(
        "--server",
        help="instead of the devnet's; an unreachable one (http://127.0.0.1:9) measures the "
        "SDK alone: the batcher still signs and persists, nothing is delivered",
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument(
        "--burst",
        type=int,
        default=10_000,
        help="calls between untimed flushes (within the 20,000-record queue, as the Rust "
        "figures are); --burst equal to --calls measures flat out, backpressure included",
    )
    args = parser.parse_args()

    server = args.server or Devnet.read(args.devnet).server_url
    delivering = args.server is None
    payload_in, payload_out = secrets.token_bytes(1024), secrets.token_bytes(1024)
    with tempfile.TemporaryDirectory() as dir:
        # A new agent each run (its key in the temporary directory), registered when delivering.
        if delivering:
            key = devnet_agent(Devnet.read(args.devnet), "bench", dir).key
        else:
            key = "0x" + secrets.token_hex(32)
        with Recorder(server, Path(dir) / "bench.db", key) as recorder:
            record = recorder.record
            for _ in range(args.warmup):
                record("bench-model", payload_in, payload_out)
            recorder.flush()
            timings: list[int] = []
            clock = time.perf_counter_ns
            recording_ns = 0
            started = clock()
            for burst in range(0, args.calls, args.burst):
                burst_started = clock()
                for _ in range(min(args.burst, args.calls - burst)):
                    before = clock()
                    record("bench-model", payload_in, payload_out)
                    timings.append(clock() - before)
                recording_ns += clock() - burst_started
                if args.burst < args.calls:
                    recorder.flush()  # untimed: the next burst starts with an empty queue
            if delivering:
                recorder.sync()
            delivered = (clock() - started) / 1e9
    timings.sort()
    print(
        json.dumps(
            {
                "calls": args.calls,
                "p50_us": round(percentile(timings, 0.50), 2),
                "p99_us": round(percentile(timings, 0.99), 2),
                "p999_us": round(percentile(timings, 0.999), 2),
                "mean_us": round(statistics.fmean(timings) / 1_000, 2),
                "records_per_s": round(args.calls / (recording_ns / 1e9)),
                "delivered_per_s": round(args.calls / delivered) if delivering else None,
            }
        )
    )


if __name__ == "__main__":
    main()
