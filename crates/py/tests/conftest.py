"""Fixtures: a real devnet (`chaperone up`: Anvil, the contracts, the server on SQLite) in a
temporary directory, started once per session, and fresh agent keys."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaperone import Devnet, Disclosure, Recorder, agent_address

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "crates/py/examples"))

from _common import anchored_disclosure  # noqa: E402  (the examples' helper)


def chaperone_binary() -> Path:
    binary = Path(os.environ.get("CHAPERONE_BIN", REPO / "target/debug/chaperone"))
    if not binary.exists():
        pytest.fail(
            f"{binary} is missing: build it with `cargo build -p chaperone-cli` "
            "(or point CHAPERONE_BIN at a chaperone binary)"
        )
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        request = urllib.request.Request(
            self.info.server_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.info.admin_token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

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
    process = subprocess.Popen(
        [binary, "up", "--json", "--data-dir", data_dir]
        + ["--port", str(free_port()), "--anvil-port", str(free_port())]
        + ["--facilitator-port", str(free_port())],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        try:
            first = json.loads(line)
            break
        except json.JSONDecodeError:
            continue
    else:
        pytest.fail(f"`chaperone up` ended (exit {process.wait()}) before printing its JSON")
    assert "error" not in first, f"chaperone up failed: {first}"
    try:
        yield Running(Devnet.read(data_dir / "devnet.json"), data_dir, binary)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


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
