"""Attacks on the gateway from the red-team review of issue 30 (docs/security.md), each run
against a real gateway: a tool name past the log's limits must still make a record, and the
Streamable HTTP endpoint admits only callers with the token, from no foreign web origin, and
never starts beyond loopback without a token."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.error
import urllib.request
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import stdio_client

from conftest import Gateway, Process, everything_command, free_port, stop, wait_for_port
from test_gateway import RECORD, through

DENY_ALL = "receipt_timeout_ms = 20000\n"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "outsider", "version": "1"},
    },
}


def test_a_tool_name_past_the_logs_limit_is_refused_with_a_record(gateway_factory: Any) -> None:
    """`mcp:<upstream>/<name>` over 255 bytes failed the record: the call was neither recorded
    nor reported (and, when allowed, ran first)."""
    gateway = gateway_factory(DENY_ALL)
    name = "n" * 300

    async def scenario() -> Any:
        async with stdio_client(through(gateway)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await session.call_tool(name, {})

    result = asyncio.run(scenario())
    assert result.isError
    assert result.meta is not None and RECORD in result.meta, result
    model = result.meta[RECORD]["model"]
    assert len(model.encode()) <= 255, model
    assert re.fullmatch(r"mcp:[^/]+/n+~[0-9a-f]{16}", model), model
    assert result.meta["chaperone.dev/decision"]["outcome"] == "denied"


def start_http(gateway: Gateway, address: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    args = gateway.stdio_args() + ["--http", address, "--", *everything_command()]
    return subprocess.Popen(
        [str(gateway.devnet.binary), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def post(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url,
        method="POST",
        data=json.dumps(INITIALIZE).encode(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_http_admits_only_the_token_holder_from_no_foreign_origin(gateway_factory: Any) -> None:
    gateway = gateway_factory(DENY_ALL)
    port = free_port()
    env = {**gateway.env(), "CHAPERONE_MCP_TOKEN": "a-long-random-token"}
    process = start_http(gateway, f"127.0.0.1:{port}", env)
    served = Process(process, f"http://127.0.0.1:{port}/mcp")  # type: ignore[arg-type]
    try:
        wait_for_port(port)
        assert post(served.url, {}) == 401, "no token"
        assert post(served.url, {"Authorization": "Bearer guess"}) == 401, "a wrong token"
        token = {"Authorization": "Bearer a-long-random-token"}
        assert post(served.url, {**token, "Origin": "https://evil.example"}) == 403, "a web page"
        assert post(served.url, token) == 200
    finally:
        stop(process)


def test_http_beyond_loopback_needs_a_token(gateway_factory: Any) -> None:
    gateway = gateway_factory(DENY_ALL)
    env = {k: v for k, v in gateway.env().items() if k != "CHAPERONE_MCP_TOKEN"}
    process = start_http(gateway, f"0.0.0.0:{free_port()}", env)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        stop(process)
        raise AssertionError("the gateway served beyond loopback without a token") from None
    assert process.returncode != 0
    assert b"CHAPERONE_MCP_TOKEN" in stderr, stderr
