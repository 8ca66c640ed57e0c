"""Attacks on the gateway from the red-team review of issue 30 (docs/security.md), each run
against a real gateway: a tool name past the log's limits must still make a record, and the
Streamable HTTP endpoint admits only callers with the token, from no foreign web origin, and
never starts beyond loopback without a token; an answer whose record the outbox's disk cannot
take never reaches the agent."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from typing import Any

from mcp import ClientSession, McpError, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import Gateway, Process, everything_command, free_port, stop, wait_for_port
from test_gateway import ALLOW_ALL, RECORD, through

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


def test_an_answer_whose_record_the_disk_refuses_is_withheld_and_logged(
    gateway_factory: Any, tmp_path: Any
) -> None:
    """The outbox's disk fails after the first call (the gateway may write no file past its
    first byte, as on a full disk: each write fails with EFBIG; a read-only folder would not
    stop root). The tool runs; the answer never reaches the agent, which gets a clear error,
    and the gateway logs why without the call's content. Before, the recorder queued the
    record in memory and retried the disk in the background while the answer went out."""
    gateway = gateway_factory(ALLOW_ALL)
    pidfile = tmp_path / "gateway.pid"
    secret = "the-content-of-the-second-call"
    # The shell ignores SIGXFSZ (kept across exec) so that a write past the limit fails
    # instead of killing the gateway, and names its pid: the limit comes after the first call.
    params = StdioServerParameters(
        command="sh",
        args=["-c", f'echo $$ > {pidfile}; trap "" XFSZ; exec "$0" "$@"',
              str(gateway.devnet.binary), *gateway.stdio_args(everything_command())],
        env=gateway.env(),
    )
    # The log goes through a pipe: the limit would stop it in a file.
    read_end, write_end = os.pipe()
    logged: list[bytes] = []
    reader = threading.Thread(
        target=lambda: logged.extend(iter(lambda: os.read(read_end, 65536), b"")), daemon=True
    )
    reader.start()

    def kill_gateway() -> None:
        # Its recorder would wait for ever to write the queued record at exit.
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    async def scenario() -> tuple[Any, str]:
        with os.fdopen(write_end, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    first = await session.call_tool("echo", {"message": "written"})
                    resource.prlimit(int(pidfile.read_text()), resource.RLIMIT_FSIZE, (1, 1))
                    try:
                        second = await session.call_tool("echo", {"message": secret})
                    except McpError as e:
                        return first, e.error.message
                    finally:
                        kill_gateway()
                    raise AssertionError(f"the answer reached the agent unrecorded: {second}")

    try:
        first, refused = asyncio.run(scenario())
    finally:
        kill_gateway()
    reader.join(timeout=10)
    log = b"".join(logged).decode(errors="replace")
    assert first.meta is not None and RECORD in first.meta, first
    assert "withholds the answer" in refused and "the tool ran" in refused, refused
    assert secret not in refused
    # A record that cannot be written is late to the outbox (the recorder retries the disk).
    assert "its answer is withheld from the agent" in log, log
    assert "writing the outbox failed" in log, log
    assert secret not in log, "the log names the call, never its content"
