"""How long `Recorder.record` takes from Python: 1 KiB input and 1 KiB output per call, one
Python thread, against a running server (`make up`). Prints p50/p99/p99.9 and records/s.

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

from chaperone import Devnet, Recorder


def percentile(sorted_ns: list[int], p: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * p))] / 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devnet", type=Path, default=Path(".chaperone/devnet.json"))
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    args = parser.parse_args()

    server = Devnet.read(args.devnet).server_url
    payload_in, payload_out = secrets.token_bytes(1024), secrets.token_bytes(1024)
    with tempfile.TemporaryDirectory() as dir:
        key = "0x" + secrets.token_hex(32)
        with Recorder(server, Path(dir) / "bench.db", key) as recorder:
            record = recorder.record
            for _ in range(args.warmup):
                record("bench-model", payload_in, payload_out)
            recorder.sync()
            timings = []
            clock = time.perf_counter_ns
            started = clock()
            for _ in range(args.calls):
                before = clock()
                record("bench-model", payload_in, payload_out)
                timings.append(clock() - before)
            elapsed = (clock() - started) / 1e9
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
                "records_per_s": round(args.calls / elapsed),
                "delivered_per_s": round(args.calls / delivered),
            }
        )
    )


if __name__ == "__main__":
    main()
