"""What the examples share: their own agent key, and a disclosure once it is anchored."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from chaperone import Disclosure, Recorder, Refused


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
