#!/usr/bin/env bash
# The MCP gateway (crates/mcp, `chaperone mcp`) against real MCP servers and clients: the pinned
# `@modelcontextprotocol/server-everything` and conformance suite (tests/mcp/package.json, `npm
# ci`), the Python `mcp` client and a FastMCP server (tests/mcp/requirements.txt, in
# target/mcp-venv), and a devnet (`chaperone up`, which needs the debug build of the CLI:
# scripts/test.sh builds it first). Run it alone after `cargo build -p chaperone-cli`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
command -v node >/dev/null || { echo "node is missing: install Node.js 20 or later" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is missing: install Python 3.10 or later" >&2; exit 1; }
(cd tests/mcp && npm ci --no-audit --no-fund --silent)
# The paid MCP tool the gateway pays for (examples/paid_mcp_tool.rs), beside the CLI's build.
cargo build --quiet -p chaperone-cli --example paid_mcp_tool
venv=$root/target/mcp-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/mcp/requirements.txt
export CHAPERONE_BIN="${CHAPERONE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/chaperone}"
(cd tests/mcp && "$venv/bin/pytest" -q -p no:cacheprovider "$@")
if [ -f target/mcp-conformance.md ]; then
  echo "MCP conformance, server scenarios (target/mcp-conformance.md):"
  cat target/mcp-conformance.md
fi
