"""The client the conformance suite's client scenarios run (`conformance client --command ...`,
test_conformance.py): an agent that starts the gateway over stdio with the scenario's server as
its one upstream, and does through the gateway what the scenario asks of a client. What the
scenario's server checks is then the gateway's client side (rmcp's Streamable HTTP client, the
gateway's forwarding of the agent's capabilities and of server-to-client requests).

Usage (the suite appends the scenario server's URL, and names the scenario in
MCP_CONFORMANCE_SCENARIO): python conformance_client.py <spec.json> <url>
where spec.json holds `binary` (chaperone), `devnet` (devnet.json), `config_head` (the agent key
and data file lines of a gateway configuration) and `dir` (where to write the configuration)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.context import RequestContext


def defaults_of(schema: dict[str, Any]) -> dict[str, Any]:
    """The answer of a user who accepts an elicitation's form as offered: each field's default
    (SEP-1034: a client applies the defaults the server states)."""
    return {
        name: field["default"]
        for name, field in schema.get("properties", {}).items()
        if isinstance(field, dict) and "default" in field
    }


async def elicit(
    _context: RequestContext[ClientSession, Any], params: types.ElicitRequestParams
) -> types.ElicitResult:
    schema = getattr(params, "requestedSchema", None) or {}
    return types.ElicitResult(action="accept", content=defaults_of(schema))


async def run(spec: dict[str, Any], url: str, scenario: str) -> None:
    config = Path(spec["dir"]) / f"{scenario.replace('/', '_')}.toml"
    config.write_text(
        spec["config_head"]
        + 'receipt_timeout_ms = 20000\n[policy]\nallow = "*"\n'
        + f'[[upstream]]\nname = "conformance"\nurl = "{url}"\n'
    )
    server = StdioServerParameters(
        command=spec["binary"],
        args=["mcp", "--config", str(config), "--devnet", spec["devnet"]],
        env=dict(os.environ),
    )
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write, elicitation_callback=elicit) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            # Each scenario's server names the tools it wants called; the initialize scenario
            # serves none.
            wanted = {
                "tools_call": ("add_numbers", {"a": 5, "b": 3}),
                "elicitation-sep1034-client-defaults": ("test_client_elicitation_defaults", {}),
                "sse-retry": ("test_reconnection", {}),
            }.get(scenario)
            if wanted is None:
                return
            name, arguments = wanted
            tool = next((t.name for t in tools if t.name.split("__")[-1] == name), None)
            if tool is None:
                sys.exit(f"the gateway lists no {name}: {[t.name for t in tools]}")
            result = await session.call_tool(tool, arguments)
            print(json.dumps(result.model_dump(mode="json")))


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    asyncio.run(run(spec, sys.argv[2], os.environ.get("MCP_CONFORMANCE_SCENARIO", "")))


if __name__ == "__main__":
    main()
