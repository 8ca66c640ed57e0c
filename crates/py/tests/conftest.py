"""Fixtures: a real devnet (`chaperone up`: Anvil, the contracts, the server on SQLite) in a
temporary directory, started once per session, and fresh agent keys."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaperone import Devnet, Disclosure, Recorder, agent_address

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "crates/py/examples"))
sys.path.insert(0, str(REPO / "tests/pysupport"))

from _common import anchored_disclosure  # noqa: E402  (the examples' helper)
# test_x402 takes chaperone_binary and free_port from here too.
from chaperone_up import admin_call, chaperone_binary, devnet_in, free_port  # noqa: E402

# The console's browser tests share their fixtures (the browser, the demo wallet) and helpers.
pytest_plugins = ["console"]


@dataclass
class Running:
    """A running devnet: its devnet.json, directory and the `chaperone` binary."""

    info: Devnet
    dir: Path
    binary: Path

    @property
    def demo_outbox(self) -> Path:
        """The demo agent's one outbox for the whole session, where `make agent` keeps it: its
        records form one chain, so every test that records as the demo agent (whose calls its
        wallet's payments are bound to) goes on from this file."""
        return self.dir / "agent.db"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Calls the server's admin API with the devnet's admin token."""
        return admin_call(self.info.server_url, self.info.admin_token, method, path, body)

    def logged_sequences(self, agent: str) -> list[int]:
        """Every sequence number the server logged for `agent`, through all pages."""
        output = subprocess.run(
            [self.binary, "export", "--server", self.info.server_url, "--what", "records"]
            + ["--agent", agent, "--format", "jsonl"],
            env={**os.environ, "CHAPERONE_ADMIN_TOKEN": self.info.admin_token},
            capture_output=True,
            text=True,
            check=True,
        )
        return [json.loads(line)["sequence"] for line in output.stdout.splitlines()]


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    binary = chaperone_binary()
    data_dir = tmp_path_factory.mktemp("devnet")
    with devnet_in(binary, data_dir):
        yield Running(Devnet.read(data_dir / "devnet.json"), data_dir, binary)


def status_of(request: urllib.request.Request) -> int:
    """Sends `request`: the answer's HTTP status, an error status included."""
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def disclose(recorder: Recorder, leaf_hash: str, kinds: tuple[str, ...]) -> Disclosure:
    """A disclosure of a record once its checkpoint is anchored."""
    return anchored_disclosure(recorder, leaf_hash, kinds)


@pytest.fixture
def agent_key(devnet: Running) -> str:
    """A fresh agent key, registered with the devnet (only registered agents may append to its
    log): each test's records form their own chain."""
    key = "0x" + secrets.token_hex(32)
    devnet.admin("POST", "/v1/admin/agents", {"address": agent_address(key)})
    return key
