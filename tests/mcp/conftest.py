"""Fixtures for the MCP gateway's tests: a real devnet (`chaperone up`), the pinned
`@modelcontextprotocol/server-everything` (npm, tests/mcp/package.json), and gateways started
as an agent would start them, through the Python `mcp` client."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EVERYTHING = HERE / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"
sys.path.insert(0, str(REPO / "tests/pysupport"))

# The tests take free_port and stop from here too.
from chaperone_up import admin_call, chaperone_binary, devnet_in, free_port, stop  # noqa: E402


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is missing: install Node.js 20 or later (Debian: apt-get install nodejs)")
    if not EVERYTHING.exists():
        pytest.fail(f"{EVERYTHING} is missing: run `npm ci` in tests/mcp (scripts/test-mcp.sh does)")
    return found


def everything_command() -> list[str]:
    """server-everything over stdio, as its README starts it."""
    return [node(), str(EVERYTHING), "stdio"]


@dataclass
class Devnet:
    """A running `chaperone up`: its devnet.json, directory and the `chaperone` binary."""

    info: dict[str, Any]
    dir: Path
    binary: Path

    @property
    def file(self) -> Path:
        return self.dir / "devnet.json"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return admin_call(self.info["server_url"], self.info["admin_token"], method, path, body)


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    binary = chaperone_binary()
    data_dir = tmp_path_factory.mktemp("devnet")
    with devnet_in(binary, data_dir):
        yield Devnet(json.loads((data_dir / "devnet.json").read_text()), data_dir, binary)


@dataclass
class Gateway:
    """How to start one gateway: its configuration file, outbox and devnet."""

    devnet: Devnet
    config: Path
    agent_key: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "MCP_TEST_AGENT_KEY": self.agent_key}

    def stdio_args(self, upstream: list[str] | None = None) -> list[str]:
        args = ["mcp", "--config", str(self.config), "--devnet", str(self.devnet.file)]
        return args + (["--", *upstream] if upstream else [])

    def disclose(self, leaf_hash: str, out: Path) -> None:
        subprocess.run(
            [self.devnet.binary, "mcp", "disclose", "--config", str(self.config)]
            + ["--devnet", str(self.devnet.file), leaf_hash, "--out", str(out)],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def verify(self, disclosure: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.devnet.binary, "verify", str(disclosure)]
            + ["--rpc-url", self.devnet.info["rpc_url"], "--server", self.devnet.info["server_url"]],
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def gateway_factory(devnet: Devnet, tmp_path: Path) -> Any:
    """Writes a gateway configuration with `body` (upstreams, policy) for a fresh agent key,
    registered with the devnet, so each test's records form their own chain."""
    counter = iter(range(1000))

    def make(body: str) -> Gateway:
        key = "0x" + os.urandom(32).hex()
        n = next(counter)
        config = tmp_path / f"mcp{n}.toml"
        config.write_text(
            f'agent_key = {{ env = "MCP_TEST_AGENT_KEY" }}\n'
            f'data_file = "{tmp_path / f"mcp{n}.db"}"\n' + body
        )
        gateway = Gateway(devnet, config, key)
        register_agent(gateway)
        return gateway

    return make


def register_agent(gateway: Gateway) -> None:
    """Registers the gateway's agent (only registered agents may append to the log), its
    address computed by the pinned Foundry `cast`."""
    cast = REPO / "node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
    if not cast.exists():
        pytest.fail(f"{cast} is missing: run `npm ci` at the repository's root")
    address = subprocess.run(
        [cast, "wallet", "address", "--private-key", gateway.agent_key],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    gateway.devnet.admin("POST", "/v1/admin/agents", {"address": address})


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Process:
    """A background process and the URL it serves."""

    process: subprocess.Popen[bytes]
    url: str


@pytest.fixture
def everything_http() -> Iterator[Process]:
    """server-everything in Streamable HTTP mode on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [node(), str(EVERYTHING), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield Process(process, f"http://127.0.0.1:{port}/mcp")
    finally:
        stop(process)


def start_http_gateway(gateway: Gateway, upstream: list[str] | None = None) -> Process:
    """`chaperone mcp --http` on a free port."""
    port = free_port()
    args = gateway.stdio_args(upstream) + ["--http", f"127.0.0.1:{port}"]
    # `--http` must come before `--`.
    if upstream:
        cut = args.index("--")
        args = args[:cut] + args[-2:] + args[cut:-2]
    process = subprocess.Popen(
        [str(gateway.devnet.binary), *args], env=gateway.env(), stdout=subprocess.DEVNULL
    )
    wait_for_port(port)
    return Process(process, f"http://127.0.0.1:{port}/mcp")
