"""Paid tools: x402 over MCP. `examples/paid_mcp_tool.rs` charges 0.01 of the demo token per
`weather` call (settled by the devnet's x402-rs facilitator) and more than the demo policy
allows for `gold`. The gateway pays from the demo agent's wallet, co-signed by the policy
service: within the cap the call is paid, settled on Anvil and bound to its record; over the
cap it is refused before the tool server sees any payment."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import Devnet, Gateway

RECORD = "chaperone.dev/record"


def paid_tool_binary(devnet: Devnet) -> Path:
    binary = devnet.binary.parent / "examples/paid_mcp_tool"
    if not binary.exists():
        pytest.fail(
            f"{binary} is missing: build it with `cargo build -p chaperone-cli --example "
            "paid_mcp_tool` (scripts/test-mcp.sh does)"
        )
    return binary


def test_a_paid_tool_within_the_cap_is_paid_settled_and_bound_and_over_it_refused(
    devnet: Devnet, tmp_path: Path
) -> None:
    # The demo agent is the wallet's agent; its one outbox for the session is the devnet's.
    config = tmp_path / "paid.toml"
    config.write_text(
        'agent_key = { env = "MCP_TEST_AGENT_KEY" }\n'
        f'data_file = "{devnet.dir / "agent.db"}"\n'
        "receipt_timeout_ms = 20000\n"
        "[wallet]\n"
        '[policy]\nallow = "*"\n'
    )
    gateway = Gateway(devnet, config, devnet.info["agent_key"])
    upstream = [str(paid_tool_binary(devnet)), "--devnet", str(devnet.file)]
    params = StdioServerParameters(
        command=str(devnet.binary), args=gateway.stdio_args(upstream), env=gateway.env()
    )

    async def scenario() -> dict[str, Any]:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                weather = await session.call_tool("weather", {"city": "Lisbon"})
                after_weather = await session.call_tool("stats", {})
                gold = await session.call_tool("gold", {"city": "Lisbon"})
                after_gold = await session.call_tool("stats", {})
                return {
                    "weather": weather,
                    "after_weather": after_weather.structuredContent,
                    "gold": gold,
                    "after_gold": after_gold.structuredContent,
                }

    out = asyncio.run(scenario())
    weather = out["weather"]
    assert not weather.isError, weather
    assert "sunny" in weather.content[0].text
    settlement = weather.meta["x402/payment-response"]
    assert settlement["success"] is True and settlement["transaction"].startswith("0x")
    record = weather.meta[RECORD]
    assert record["payment_bound"] is True, record
    assert out["after_weather"] == {"payments_seen": 1, "settled": 1}

    # Over the cap: refused with the policy's reasons, and the tool server saw no payment.
    gold = out["gold"]
    assert gold.isError
    assert "refused the payment" in gold.content[0].text, gold.content[0].text
    assert gold.meta["chaperone.dev/decision"]["outcome"] == "denied"
    assert out["after_gold"] == {"payments_seen": 1, "settled": 1}

    # The co-sign decision names the call it was made in.
    decisions = devnet.admin("GET", f"/v1/decisions?wallet={devnet.info['wallet']}&limit=100")
    bound = [d for d in decisions["items"] if d.get("call_leaf_hash") == record["leaf_hash"]]
    assert len(bound) == 1, decisions
    assert bound[0]["request_id"] == record["payment_request_id"]

    # The record commits to the payment; `chaperone verify` checks it against the chain.
    disclosure = tmp_path / "paid.json"
    gateway.disclose(record["leaf_hash"], disclosure)
    verified = gateway.verify(disclosure)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "paid: 10000 base units" in verified.stdout, verified.stdout


def test_a_tools_own_price_cap_refuses_before_paying(devnet: Devnet, tmp_path: Path) -> None:
    """`max_price` on a rule: a cap on top of the wallet policy's, per call of that tool."""
    config = tmp_path / "capped.toml"
    config.write_text(
        'agent_key = { env = "MCP_TEST_AGENT_KEY" }\n'
        f'data_file = "{devnet.dir / "agent.db"}"\n'
        "receipt_timeout_ms = 20000\n"
        "[wallet]\n"
        "[policy]\n"
        '[[policy.tool]]\nname = "weather"\nmax_price = "5000"\n'
        '[[policy.tool]]\nname = "stats"\n'
    )
    gateway = Gateway(devnet, config, devnet.info["agent_key"])
    upstream = [str(paid_tool_binary(devnet)), "--devnet", str(devnet.file)]
    params = StdioServerParameters(
        command=str(devnet.binary), args=gateway.stdio_args(upstream), env=gateway.env()
    )

    async def scenario() -> tuple[Any, Any]:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                weather = await session.call_tool("weather", {"city": "Lisbon"})
                stats = await session.call_tool("stats", {})
                return weather, stats.structuredContent

    weather, stats = asyncio.run(scenario())
    assert weather.isError
    assert "max_price of 5000" in weather.content[0].text, weather.content[0].text
    assert weather.meta[RECORD]["model"].endswith("/weather")
    assert stats == {"payments_seen": 0, "settled": 0}
