"""What the examples share: a disclosure once it is anchored, and their summary."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaperone import Disclosure, Recorded, Recorder, Refused


def anchored_disclosure(
    recorder: Recorder, leaf_hash: str, kinds: tuple[str, ...], timeout: float = 60.0
) -> Disclosure:
    """Discloses a record once a checkpoint covers it and is anchored (the devnet checkpoints
    and anchors every 2 s; until then the server answers 409 `not_checkpointed`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            disclosure = recorder.disclose(leaf_hash, kinds)  # type: ignore[arg-type]
            if disclosure.anchored or time.monotonic() > deadline:
                return disclosure
        except Refused as refused:
            if refused.code != "not_checkpointed" or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def finish(
    recorder: Recorder,
    recorded: Sequence[Recorded],
    out: Path,
    rpc_url: str,
    as_json: bool,
    extra: dict[str, Any],
) -> None:
    """Waits for delivery, writes a full disclosure of the first record to `out` once it is
    anchored, and prints what happened (one JSON line with `as_json`)."""
    recorder.sync()
    first = recorded[0]
    receipt = recorder.receipt(first)
    anchored_disclosure(recorder, first.leaf_hash, ("input", "output", "metadata")).write(out)
    summary = {
        **extra,
        "agent": recorder.agent,
        "records": len(recorded),
        "models": [r.model for r in recorded],
        "leaf_hash": first.leaf_hash,
        "index": receipt.index,
        "disclosure": str(out),
    }
    if as_json:
        print(json.dumps(summary))
        return
    for key, value in extra.items():
        print(f"{key}: {value}")
    print(f"recorded {len(recorded)} calls as agent {recorder.agent}")
    print(f"first call: {first.leaf_hash} at log index {receipt.index}")
    print(f"disclosure written to {out}; check it against the chain with")
    # The command that works here: `chaperone` once `cargo install --path crates/cli` put it on
    # the PATH, else cargo from the repository.
    cli = "chaperone" if shutil.which("chaperone") else "cargo run -p chaperone-cli --"
    print(f"  {cli} verify {out} --rpc-url {rpc_url} --server <the server's URL>")
