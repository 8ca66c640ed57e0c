"""What the examples share: their own agent key, and a disclosure once it is anchored."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaperone import Devnet, Disclosure, Recorded, Recorder, Refused, agent_address


def agent_key(path: Path) -> str:
    """The example agent's key, made on first use and kept beside its data file (mode 0600).

    Each example signs as its own agent: an agent's records form one chain, so two programs
    must not log under one key from two data files.
    """
    if path.exists():
        return path.read_text().strip()
    key = "0x" + secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


def register_agent(devnet: Devnet, key: str) -> None:
    """Registers the example's agent with the devnet as its admin would (only registered
    agents may append to the log); registering again changes nothing."""
    request = urllib.request.Request(
        devnet.server_url + "/v1/admin/agents",
        method="POST",
        data=json.dumps({"address": agent_address(key)}).encode(),
        headers={
            "Authorization": f"Bearer {devnet.admin_token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30):
        pass


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
    print(f"  chaperone verify {out} --rpc-url {rpc_url} --server <the server's URL>")
