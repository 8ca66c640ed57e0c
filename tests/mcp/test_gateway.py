"""The gateway in front of real MCP servers nobody here wrote (`server-everything`, and a
FastMCP server from the Python `mcp` package), driven by the Python `mcp` client: what it does
not govern behaves exactly as without it; every tool call is a record whose disclosure
verifies with `chaperone verify`; the tool policy refuses what it must."""

from __future__ import annotations

import asyncio
import difflib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mcp.types as types
from mcp import ClientSession, McpError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.context import RequestContext

from conftest import HERE, Gateway, Process, everything_command, start_http_gateway, stop

RECORD = "chaperone.dev/record"
ALLOW_ALL = 'receipt_timeout_ms = 20000\n[policy]\nallow = "*"\n'


def direct() -> StdioServerParameters:
    command = everything_command()
    return StdioServerParameters(command=command[0], args=command[1:])


def through(gateway: Gateway, upstream: list[str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=str(gateway.devnet.binary),
        args=gateway.stdio_args(upstream if upstream is not None else everything_command()),
        env=gateway.env(),
    )


async def sampling(
    context: RequestContext[ClientSession, Any], params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    """The 'LLM' of the client: answers every sampling request the same way."""
    asked = params.messages[0].content
    text = asked.text if isinstance(asked, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"sampled: {text}"),
        model="test-model",
        stopReason="endTurn",
    )


def without_meta(value: Any) -> Any:
    """A result as JSON, without the `_meta` the gateway adds."""
    data = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.get("_meta", {}).pop(RECORD, None)
    if data.get("_meta") == {}:
        del data["_meta"]
    return data


def connect(server: StdioServerParameters | str) -> Any:
    """The client transport: stdio for a command, Streamable HTTP for a URL."""
    if isinstance(server, str):
        return streamable_http_client(server)
    return stdio_client(server)


async def survey(server: StdioServerParameters | str) -> dict[str, Any]:
    """Everything a client sees of a server: the handshake, every list, a prompt, a resource,
    a completion, tool calls with progress and a sampling request the server makes back."""
    seen: dict[str, Any] = {}
    async with connect(server) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write, sampling_callback=sampling) as session:
            init = await session.initialize()
            seen["initialize"] = without_meta(init)
            seen["tools"] = without_meta(await session.list_tools())
            seen["prompts"] = without_meta(await session.list_prompts())
            seen["resources"] = without_meta(await session.list_resources())
            seen["templates"] = without_meta(await session.list_resource_templates())
            seen["simple-prompt"] = without_meta(await session.get_prompt("simple-prompt"))
            first = (await session.list_resources()).resources[0]
            seen["read"] = without_meta(await session.read_resource(first.uri))
            seen["complete"] = without_meta(
                await session.complete(
                    types.PromptReference(type="ref/prompt", name="completable-prompt"),
                    {"name": "department", "value": "E"},
                )
            )
            seen["echo"] = without_meta(await session.call_tool("echo", {"message": "hi"}))
            seen["sum"] = without_meta(await session.call_tool("get-sum", {"a": 2, "b": 3}))
            seen["structured"] = without_meta(
                await session.call_tool("get-structured-content", {"location": "New York"})
            )
            progress: list[tuple[float, float | None]] = []

            async def on_progress(p: float, total: float | None, message: str | None) -> None:
                progress.append((p, total))

            seen["long"] = without_meta(
                await session.call_tool(
                    "trigger-long-running-operation",
                    {"duration": 0.3, "steps": 3},
                    progress_callback=on_progress,
                )
            )
            seen["progress"] = progress
            seen["sampling"] = without_meta(
                await session.call_tool(
                    "trigger-sampling-request", {"prompt": "ping", "maxTokens": 10}
                )
            )
    return seen


def test_everything_but_tool_calls_passes_through_unchanged(gateway_factory: Any) -> None:
    gateway = gateway_factory(ALLOW_ALL)
    without = asyncio.run(survey(direct()))
    with_gateway = asyncio.run(survey(through(gateway)))
    assert_same(without, with_gateway)


def test_streamable_http_on_both_sides(gateway_factory: Any, everything_http: Process) -> None:
    """The agent reaches the gateway over Streamable HTTP, and the gateway reaches
    server-everything over Streamable HTTP."""
    gateway = gateway_factory(
        ALLOW_ALL + f'[[upstream]]\nname = "everything"\nurl = "{everything_http.url}"\n'
    )
    served = start_http_gateway(gateway)
    try:
        without = asyncio.run(survey(everything_http.url))
        with_gateway = asyncio.run(survey(served.url))
    finally:
        stop(served.process)
    assert_same(without, with_gateway)


def assert_same(without: dict[str, Any], with_gateway: dict[str, Any]) -> None:
    assert without["progress"] == [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)]
    # One deliberate difference: the gateway does not offer the upstream's experimental
    # `tasks` (task-augmented tool calls answer through tasks/result, past the gateway's
    # record of the call), so an agent makes plain tool calls, which it records.
    assert "tasks" in without["initialize"]["capabilities"]
    del without["initialize"]["capabilities"]["tasks"]
    for tool in without["tools"]["tools"]:
        tool.pop("execution", None)  # taskSupport: the same tasks the gateway does not offer
    assert "sampled: " in json.dumps(without["sampling"])
    for key in without:
        assert with_gateway[key] == without[key], f"{key} differs through the gateway:\n" + "\n".join(
            difflib.unified_diff(
                json.dumps(without[key], sort_keys=True, indent=1).splitlines(),
                json.dumps(with_gateway[key], sort_keys=True, indent=1).splitlines(),
                "without", "through the gateway", lineterm="",
            )
        )


async def call(
    params: StdioServerParameters, name: str, arguments: dict[str, Any]
) -> types.CallToolResult:
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await session.call_tool(name, arguments)


def record_of(result: types.CallToolResult) -> dict[str, Any]:
    assert result.meta is not None and RECORD in result.meta, result
    record: dict[str, Any] = result.meta[RECORD]
    return record


def test_each_call_is_a_record_whose_disclosure_verifies(
    gateway_factory: Any, tmp_path: Path
) -> None:
    gateway = gateway_factory(ALLOW_ALL)
    result = asyncio.run(call(through(gateway), "echo", {"message": "audited"}))
    assert not result.isError
    record = record_of(result)
    assert record["model"] == f"mcp:{Path(everything_command()[0]).name}/echo"
    assert record["receipt"]["origin"].startswith("chaperone.dev/")
    assert isinstance(record["index"], int)
    disclosure = tmp_path / "disclosure.json"
    gateway.disclose(record["leaf_hash"], disclosure)
    bundle = json.loads(disclosure.read_text())
    contents = {d["kind"]: d["content"] for d in bundle["disclosed"]}
    assert len(contents) == 3, bundle["disclosed"]
    verified = gateway.verify(disclosure)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The metadata names the tool call as OpenTelemetry does.
    metadata_text = verified.stdout
    for attribute in ["execute_tool", "gen_ai.tool.call.id", "tools/call"]:
        assert attribute in metadata_text or attribute in disclosure.read_text(), attribute
    # A doctored disclosure (one byte of the disclosed arguments changed) is refused.
    doctored = json.loads(disclosure.read_text())
    first = doctored["disclosed"][0]
    first["content"] = first["content"][:-2] + ("00" if first["content"][-2:] != "00" else "01")
    bad = tmp_path / "doctored.json"
    bad.write_text(json.dumps(doctored))
    refused = gateway.verify(bad)
    assert refused.returncode == 2, refused.stdout + refused.stderr


POLICY = """
receipt_timeout_ms = 20000
[policy]
version = 7
[[policy.tool]]
name = "get-env"
action = "deny"
[[policy.tool]]
name = "echo"
[policy.tool.args.message]
pattern = "^[a-z ]+$"
max_length = 20
[[policy.tool]]
name = "get-sum"
rate_limit = { calls = 2, per_seconds = 3600 }
"""


def test_tool_policy_denies_checks_arguments_and_limits_rate(gateway_factory: Any) -> None:
    gateway = gateway_factory(POLICY)

    async def scenario() -> dict[str, types.CallToolResult]:
        out: dict[str, types.CallToolResult] = {}
        async with stdio_client(through(gateway)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                out["denied"] = await session.call_tool("get-env", {})
                out["unnamed"] = await session.call_tool("get-tiny-image", {})
                out["echo ok"] = await session.call_tool("echo", {"message": "fine words"})
                out["echo bad"] = await session.call_tool("echo", {"message": "Rm -rf /"})
                for i in range(3):
                    out[f"sum {i}"] = await session.call_tool("get-sum", {"a": i, "b": 1})
        return out

    out = asyncio.run(scenario())
    refused = ["denied", "unnamed", "echo bad", "sum 2"]
    for name in refused:
        result = out[name]
        assert result.isError, name
        assert result.meta is not None
        decision = result.meta["chaperone.dev/decision"]
        assert decision["outcome"] == "denied", name
        assert decision["policy_version"] == 7
        assert decision["policy_hash"].startswith("0x") and len(decision["policy_hash"]) == 66
        record_of(result)
    assert "default deny" in out["unnamed"].content[0].text  # type: ignore[union-attr]
    assert "pattern" in out["echo bad"].content[0].text  # type: ignore[union-attr]
    assert "rate limit" in out["sum 2"].content[0].text  # type: ignore[union-attr]
    for name in ["echo ok", "sum 0", "sum 1"]:
        assert not out[name].isError, name
        record_of(out[name])


CRASHY = HERE / "servers/crashy.py"


def test_upstream_crash_mid_call_is_a_clear_error_and_recorded(gateway_factory: Any) -> None:
    """A FastMCP server (the Python `mcp` package's) that dies while answering."""
    gateway = gateway_factory(ALLOW_ALL)

    async def scenario() -> tuple[types.CallToolResult, Exception | None]:
        async with stdio_client(through(gateway, [sys.executable, str(CRASHY)])) as (r, w):
            async with ClientSession(r, w) as session:
                await session.initialize()
                fine = await session.call_tool("add", {"a": 1, "b": 2})
                try:
                    await session.call_tool("crash", {})
                except Exception as e:  # noqa: BLE001 (the MCP error is what is tested)
                    return fine, e
                return fine, None

    fine, error = asyncio.run(scenario())
    assert not fine.isError and "3" in fine.content[0].text  # type: ignore[union-attr]
    assert isinstance(error, McpError), f"a crashed upstream must be an MCP error, not {error!r}"
    assert "upstream MCP server closed the connection" in error.error.message
    # The failed call is recorded too: its record travels in the error's data.
    assert isinstance(error.error.data, dict)
    assert error.error.data[RECORD]["model"].endswith("/crash")


def test_malformed_json_rpc_from_the_agent_is_answered_and_the_gateway_keeps_serving(
    gateway_factory: Any,
) -> None:
    gateway = gateway_factory(ALLOW_ALL)
    params = through(gateway)
    process = subprocess.Popen(
        [params.command, *params.args],
        env=params.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None

    def send(line: str) -> None:
        assert process.stdin is not None
        process.stdin.write(line + "\n")
        process.stdin.flush()

    def answer() -> dict[str, Any]:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, "the gateway closed its output"
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    try:
        send(json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "1"}},
        }))
        assert answer()["id"] == 1
        send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        send("{this is not json")
        send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": "oops"}))
        # A tools/call with one field of the wrong type: rmcp cannot type it and takes it for
        # a custom request, which must not be forwarded past the policy and the record.
        send(json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                         "params": {"name": "echo", "arguments": {"message": "smuggled"},
                                    "requestState": 0}}))
        send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                         "params": {"name": "echo", "arguments": {"message": "still here"}}}))
        answers: dict[Any, dict[str, Any]] = {}
        parse_errors = []
        while 3 not in answers or 2 not in answers or 4 not in answers or not parse_errors:
            got = answer()
            if "method" in got:
                continue  # a notification of the upstream's
            if got.get("id") is None:
                parse_errors.append(got)
            else:
                answers[got["id"]] = got
        # Not JSON: a parse error without an id; JSON of the wrong shape: invalid request,
        # with its id; then the gateway goes on serving.
        assert parse_errors[0]["error"]["code"] == -32700, parse_errors
        assert answers[2]["error"]["code"] == -32600, answers
        assert answers[4].get("error", {}).get("code") == -32601, answers[4]
        assert "smuggled" not in json.dumps(answers[4]), answers[4]
        assert "still here" in json.dumps(answers[3]["result"]), answers
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def test_several_upstreams_are_namespaced(gateway_factory: Any) -> None:
    command = everything_command()
    gateway = gateway_factory(
        ALLOW_ALL
        + f'[[upstream]]\nname = "everything"\ncommand = "{command[0]}"\nargs = {json.dumps(command[1:])}\n'
        + f'[[upstream]]\nname = "calc"\ncommand = "{sys.executable}"\nargs = ["{CRASHY}"]\n'
    )

    async def scenario() -> tuple[list[str], types.CallToolResult, types.CallToolResult, types.CallToolResult]:
        async with stdio_client(through(gateway, [])) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = [t.name for t in (await session.list_tools()).tools]
                echo = await session.call_tool("everything__echo", {"message": "hi"})
                add = await session.call_tool("calc__add", {"a": 20, "b": 22})
                unknown = await session.call_tool("nobody__echo", {"message": "hi"})
                return tools, echo, add, unknown

    tools, echo, add, unknown = asyncio.run(scenario())
    assert "everything__echo" in tools and "calc__add" in tools and "calc__crash" in tools
    assert all("__" in name for name in tools)
    assert record_of(echo)["model"] == "mcp:everything/echo"
    assert record_of(add)["model"] == "mcp:calc/add"
    assert "42" in add.content[0].text  # type: ignore[union-attr]
    assert unknown.isError and "no upstream serves" in unknown.content[0].text  # type: ignore[union-attr]


NOISY = HERE / "servers/noisy.py"


def test_malformed_json_rpc_from_the_upstream_is_skipped(gateway_factory: Any) -> None:
    gateway = gateway_factory(ALLOW_ALL)

    async def scenario() -> list[str]:
        async with stdio_client(through(gateway, [sys.executable, str(NOISY)])) as (r, w):
            async with ClientSession(r, w) as session:
                await session.initialize()
                texts = []
                for word in ["one", "two", "three"]:
                    result = await session.call_tool("shout", {"text": word})
                    texts.append(result.content[0].text)  # type: ignore[union-attr]
                    record_of(result)
                return texts

    assert asyncio.run(scenario()) == ["ONE", "TWO", "THREE"]


def test_a_cancelled_call_ends_at_once_and_the_session_goes_on(gateway_factory: Any) -> None:
    """The agent cancels a long call (`notifications/cancelled`): the gateway cancels it
    upstream and answers nothing for it (as the spec asks of a cancelled request), and the
    next call is served at once, not after the long one."""
    gateway = gateway_factory(ALLOW_ALL)
    params = through(gateway)
    process = subprocess.Popen(
        [params.command, *params.args],
        env=params.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None

    def send(message: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()

    def next_answer() -> dict[str, Any]:
        assert process.stdout is not None
        while True:
            line = process.stdout.readline()
            assert line, "the gateway closed its output"
            parsed: dict[str, Any] = json.loads(line)
            if "method" not in parsed:  # not a notification of the upstream's
                return parsed

    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "raw", "version": "1"}}})
        assert next_answer()["id"] == 1
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
              "params": {"name": "trigger-long-running-operation",
                         "arguments": {"duration": 20, "steps": 2}}})
        time.sleep(0.5)
        send({"jsonrpc": "2.0", "method": "notifications/cancelled",
              "params": {"requestId": 5, "reason": "the user gave up"}})
        started = time.monotonic()
        send({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
              "params": {"name": "echo", "arguments": {"message": "after"}}})
        answer = next_answer()
        assert answer["id"] == 6, f"expected the echo, got {answer}"
        assert "after" in json.dumps(answer["result"])
        assert time.monotonic() - started < 5
    finally:
        process.stdin.close()
        process.wait(timeout=30)
