"""Every decision of the gateway's tool policy is a row of the server's `/v1/tool-decisions`
(the listing beside the wallet's `/v1/decisions`), signed by the agent, filterable by tool, and
bound to the call's record by its leaf hash."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

import mcp.types as types
from mcp import ClientSession
from mcp.client.stdio import stdio_client

from test_gateway import POLICY, record_of, through


def listing(gateway: Any, **filters: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode(filters)
    page = gateway.devnet.admin("GET", f"/v1/tool-decisions?{query}")
    items: list[dict[str, Any]] = page["items"]
    return items


def test_a_denied_tool_call_is_listed_by_tool(gateway_factory: Any) -> None:
    gateway = gateway_factory(POLICY)

    async def scenario() -> tuple[types.CallToolResult, types.CallToolResult]:
        async with stdio_client(through(gateway)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                denied = await session.call_tool("get-env", {})
                allowed = await session.call_tool("echo", {"message": "fine words"})
                return denied, allowed

    denied, allowed = asyncio.run(scenario())
    assert denied.isError
    denied_record = record_of(denied)
    agent = denied_record["agent"]
    # A refused call's decision is on the server before the agent has its answer.
    rows = listing(gateway, tool="get-env", agent=agent)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["outcome"] == "denied"
    assert row["leaf_hash"] == denied_record["leaf_hash"]
    assert row["policy_version"] == 7
    assert row["policy_hash"] == denied.meta["chaperone.dev/decision"]["policy_hash"]  # type: ignore[index]
    assert any("get-env" in r or "deny" in r for r in row["reasons"]), row
    # The allowed call's decision is sent beside the answer: it arrives shortly.
    deadline = time.monotonic() + 20
    while not (echo := listing(gateway, tool="echo", agent=agent)):
        assert time.monotonic() < deadline, "the allowed call's decision never arrived"
        time.sleep(0.2)
    assert echo[0]["outcome"] == "allowed"
    assert echo[0]["leaf_hash"] == record_of(allowed)["leaf_hash"]
    # Filtered by tool: only that tool's.
    assert {r["tool"] for r in listing(gateway, agent=agent)} == {"get-env", "echo"}
    assert listing(gateway, tool="get-env", agent=agent, outcome="allowed") == []


APPROVE = """
receipt_timeout_ms = 20000
[policy]
[[policy.tool]]
name = "get-sum"
action = "approve"
approval_timeout_seconds = 60
[[policy.tool]]
name = "echo"
action = "approve"
approval_timeout_seconds = 1
"""


def test_an_approve_rule_holds_the_call_until_a_human_approves(gateway_factory: Any) -> None:
    gateway = gateway_factory(APPROVE)

    async def approve_when_pending(call: asyncio.Task[Any]) -> str:
        deadline = time.monotonic() + 30
        while True:
            rows = await asyncio.to_thread(
                listing, gateway, tool="get-sum", outcome="approval_required"
            )
            pending = [
                r
                for r in rows
                if gateway.devnet.admin("GET", f"/v1/tool-decisions/{r['id']}/approval")["status"]
                == "pending"
            ]
            if pending:
                break
            assert time.monotonic() < deadline, "no approval was asked for"
            await asyncio.sleep(0.2)
        approval_id: str = pending[0]["id"]
        # The call waits: the upstream has not been asked.
        assert not call.done()
        # The agent's own key cannot decide: the verdict needs an approver's or admin's token.
        verdict = await asyncio.to_thread(
            gateway.devnet.admin, "POST", f"/v1/admin/tool-approvals/{approval_id}/approve"
        )
        assert verdict["status"] == "approved", verdict
        return approval_id

    async def scenario() -> tuple[types.CallToolResult, str, Exception | None]:
        async with stdio_client(through(gateway)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                call = asyncio.create_task(session.call_tool("get-sum", {"a": 2, "b": 3}))
                approval_id = await approve_when_pending(call)
                result = await call
                timed_out: Exception | None = None
                try:
                    await session.call_tool("echo", {"message": "waits"})
                except Exception as e:  # noqa: BLE001 - the MCP error is the assertion
                    timed_out = e
                return result, approval_id, timed_out

    result, approval_id, timed_out = asyncio.run(scenario())
    assert not result.isError, result
    assert "5" in result.content[0].text  # type: ignore[union-attr]
    record_of(result)
    # Nobody decided on echo within its second: an MCP error naming the approval.
    assert timed_out is not None and "approval 0x" in str(timed_out), timed_out
    assert "was not given within 1 s" in str(timed_out)
    assert approval_id.startswith("0x")
