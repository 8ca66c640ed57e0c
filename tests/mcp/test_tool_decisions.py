"""Every decision of the gateway's tool policy is a row of the server's `/v1/decisions`
(`kind=tool`, and `/v1/tool-decisions`), signed by the agent, filterable by tool, and bound to the
call's record by its leaf hash. A call an `approve` rule holds waits while an approver, logged
into the console in a real browser (headless Chromium), approves or denies it."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any, NamedTuple

import mcp.types as types
from mcp import ClientSession
from mcp.client.stdio import stdio_client

from test_gateway import POLICY, record_of, through

from conftest import REPO, Devnet


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
    # The same rows in the one listing of every decision.
    page = gateway.devnet.admin("GET", f"/v1/decisions?kind=all&agent={agent}")
    assert {(r["kind"], r["tool"]) for r in page["items"]} == {("tool", "get-env"), ("tool", "echo")}


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
        # The agent's own key cannot decide: the verdict needs an approver's or admin's token,
        # and names the arguments hash it was shown.
        verdict = await asyncio.to_thread(
            gateway.devnet.admin,
            "POST",
            f"/v1/admin/tool-approvals/{approval_id}/approve",
            {"arguments_hash": pending[0]["arguments_hash"]},
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


# --- An approver in a real browser -------------------------------------------------------------

from collections.abc import Iterator  # noqa: E402 - the browser tests' own imports
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402
from headless_chromium import headless_chromium  # noqa: E402 - tests/pysupport, on the path by conftest
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCREENSHOTS = REPO / "target/console-screenshots"

HOLD = """
receipt_timeout_ms = 20000
[policy]
[[policy.tool]]
name = "get-sum"
action = "approve"
approval_timeout_seconds = 120
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Debian's headless Chromium through chromedriver, as the console's own browser tests."""
    with headless_chromium(SCREENSHOTS) as driver:
        yield driver


def approver_token(devnet: Devnet) -> str:
    """A fresh approver's token, issued by the admin (the approver is a person, not the admin)."""
    name = "approver-" + os.urandom(4).hex()
    issued = devnet.admin("POST", "/v1/admin/tokens", {"name": name, "role": "approver"})
    token: str = issued["token"]
    return token


def expected_arguments_hash(arguments: dict[str, Any]) -> str:
    """keccak-256 of the domain tag and the arguments' compact JSON, by Foundry's `cast` (not
    by the server or the gateway, whose hash this checks)."""
    cast = REPO / "node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
    text = "chaperone tool arguments v1 " + json.dumps(arguments, separators=(",", ":"))
    return subprocess.run(
        [cast, "keccak", text], capture_output=True, text=True, check=True
    ).stdout.strip()


HOSTILE = "<img src=x onerror=alert(1)>"


class Shown(NamedTuple):
    """What the approver's inbox showed of a held call."""

    decision_id: str
    arguments_hash: str
    arguments: str
    images: int


def decide_in_the_browser(
    browser: WebDriver, devnet: Devnet, token: str, tool: str, verdict: str
) -> Shown:
    """Logs in as the approver, waits for the held call of `tool` in the inbox, presses
    `verdict` (approve or deny). Returns what the inbox showed of it."""
    url = devnet.info["server_url"]
    browser.delete_all_cookies()
    browser.get(url + "/approvals")
    assert "/login" in browser.current_url, browser.current_url
    browser.find_element(By.NAME, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(browser, 20).until(lambda d: "/login" not in d.current_url)

    def held_section(d: WebDriver) -> Any:
        for section in d.find_elements(By.CSS_SELECTOR, "section.approval.tool"):
            if f"/{tool}" in section.find_element(By.TAG_NAME, "h2").text:
                return section
        d.refresh()
        return False

    section = WebDriverWait(browser, 30, poll_frequency=0.3).until(held_section)
    decision_id = section.get_attribute("id").removeprefix("tool-")
    shown = Shown(
        decision_id=decision_id,
        arguments_hash=section.find_element(By.CSS_SELECTOR, "dd.arguments code").text,
        arguments=section.find_element(By.CSS_SELECTOR, "pre.arguments").text,
        images=len(section.find_elements(By.TAG_NAME, "img")),
    )
    browser.save_screenshot(str(SCREENSHOTS / f"tool-approval-{verdict}.png"))
    section.find_element(By.CSS_SELECTOR, f"button.{verdict}").click()
    WebDriverWait(browser, 20).until(
        lambda d: not d.find_elements(By.ID, f"tool-{decision_id}")
    )
    return shown


def held_call(
    gateway: Any, browser: WebDriver, verdict: str, arguments: dict[str, Any]
) -> tuple[types.CallToolResult, Shown]:
    """A get-sum call through the gateway that waits while an approver decides in the browser."""
    token = approver_token(gateway.devnet)

    async def scenario() -> tuple[types.CallToolResult, Shown]:
        async with stdio_client(through(gateway)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                call = asyncio.create_task(session.call_tool("get-sum", arguments))
                shown = await asyncio.to_thread(
                    decide_in_the_browser, browser, gateway.devnet, token, "get-sum", verdict
                )
                return await call, shown

    return asyncio.run(scenario())


def test_an_approver_approves_a_held_call_in_the_browser_and_it_completes(
    gateway_factory: Any, browser: WebDriver
) -> None:
    gateway = gateway_factory(HOLD)
    result, seen = held_call(gateway, browser, "approve", {"a": 2, "b": 3})
    decision_id, shown = seen.decision_id, seen.arguments_hash
    # The approver was shown the very arguments the call was held with, and their hash.
    assert json.loads(seen.arguments) == {"a": 2, "b": 3}, seen
    assert shown == expected_arguments_hash({"a": 2, "b": 3}), shown
    assert not result.isError, result
    assert "5" in result.content[0].text  # type: ignore[union-attr]
    record = record_of(result)
    # The listing names who approved what; the open state names nobody.
    rows = listing(gateway, tool="get-sum", outcome="approval_required")
    row = next(r for r in rows if r["id"] == decision_id)
    assert row["approval_status"] == "approved", row
    assert row["approval_by"].startswith("approver-"), row
    assert row["arguments_hash"] == shown
    # The open state says only the state and the expiry (the unsalted hash is for auditors).
    state = gateway.devnet.admin("GET", f"/v1/tool-decisions/{decision_id}/approval")
    assert state == {
        "id": decision_id,
        "status": "approved",
        "expires_at": state["expires_at"],
    }
    # The call that ran is recorded and reported as allowed, naming the approval.
    deadline = time.monotonic() + 20
    while not (done := [r for r in listing(gateway, tool="get-sum", outcome="allowed")
                        if r["leaf_hash"] == record["leaf_hash"]]):
        assert time.monotonic() < deadline, "the approved call's decision never arrived"
        time.sleep(0.2)
    assert any(decision_id in reason for reason in done[0]["reasons"]), done


def test_an_approver_denies_a_held_call_in_the_browser_and_it_never_runs(
    gateway_factory: Any, browser: WebDriver
) -> None:
    gateway = gateway_factory(HOLD)
    result, seen = held_call(gateway, browser, "deny", {"a": 2, "b": 3, "note": HOSTILE})
    decision_id = seen.decision_id
    # A hostile argument is shown as text: no image element, no script ran (an alert would
    # have stopped the browser's next command).
    assert HOSTILE in seen.arguments and seen.images == 0, seen
    assert result.isError, result
    text = result.content[0].text  # type: ignore[union-attr]
    assert f"denied by an approver (approval {decision_id})" in text, text
    record = record_of(result)
    rows = listing(gateway, tool="get-sum", outcome="approval_required")
    row = next(r for r in rows if r["id"] == decision_id)
    assert row["approval_status"] == "denied", row
    # The refusal is recorded and reported: a denied decision on the call's record.
    denied = listing(gateway, tool="get-sum", outcome="denied")
    assert any(r["leaf_hash"] == record["leaf_hash"] for r in denied), denied
