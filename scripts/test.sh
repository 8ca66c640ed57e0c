#!/usr/bin/env bash
# Every check and test, in the order that fails fastest. Called by `make test` (which installs
# the pinned toolchain first) and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# The platform's forge binary, not node_modules/.bin/forge: that Node wrapper (bin.mjs of
# @foundry-rs/forge 1.7.1) never passes forge's exit status on, so a failing step would pass.
forge_bins=("$root"/node_modules/@foundry-rs/forge-*/bin/forge)
forge=${forge_bins[0]}
[ -x "$forge" ] || { echo "forge is missing: run 'make toolchain'"; exit 1; }

step() { printf '\n==> %s\n' "$*"; }

# What the working tree holds now (tracked files' changes and untracked files), to prove at the
# end that no step of the run wrote a file that is not ignored.
tree_state() { git status --porcelain=v1 --untracked-files=all; git diff | sha256sum; }
before=$(tree_state)

step "cargo fmt --check"
cargo fmt --all -- --check

step "every wire type is defined once (crates/api)"
./scripts/check-wire-types.sh

step "forge fmt --check"
(cd contracts && "$forge" fmt --check)

step "committed contract artifacts match a fresh compile"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
(cd contracts && "$forge" build --force --out "$fresh/out" --cache-path "$fresh/cache" >/dev/null)
for artifact in AuditLog.sol/AuditLog.json AgentWallet.sol/AgentWallet.json \
    AgentWalletFactory.sol/AgentWalletFactory.json TestToken.sol/TestToken.json \
    Permit2.sol/Permit2.json X402ExactPermit2Proxy.sol/X402ExactPermit2Proxy.json \
    UniversalSigValidator.sol/UniversalSigValidator.json Multicall3.sol/Multicall3.json; do
  if ! cmp -s "$fresh/out/$artifact" "contracts/out/$artifact"; then
    echo "contracts/out/$artifact is stale: run 'make artifacts' and commit it"
    exit 1
  fi
done
echo "artifacts are fresh"

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

# forge test and forge snapshot compile into the same scratch directory as the freshness check
# above (reusing its build): compiling into contracts/out would rewrite committed artifacts with
# a different compilation unit's ids, and no step of a test run may change a committed file.
scratch_build=(--out "$fresh/out" --cache-path "$fresh/cache")

step "forge test (unit, fuzz, invariant)"
(cd contracts && "$forge" test "${scratch_build[@]}")

step "forge gas snapshot is current"
# --check compares .gas-snapshot; the GasTest's own figures (vm.snapshotGas*, written only when
# FORGE_SNAPSHOT_EMIT=true) go to a scratch directory and are compared with contracts/snapshots,
# so no step of a test run writes a committed file.
(cd contracts && FOUNDRY_SNAPSHOTS="$fresh/snapshots" FORGE_SNAPSHOT_EMIT=true \
  "$forge" snapshot "${scratch_build[@]}" --isolate --match-contract GasTest --check)
diff -ru contracts/snapshots "$fresh/snapshots" || {
  echo "contracts/snapshots is stale: run 'make artifacts' and commit the new figures"
  exit 1
}

step "contracts: Slither (medium/high triaged) and halmos proofs (pinned, in target/sec-venv)"
./scripts/test-contracts-security.sh

step "cargo test (core, store on SQLite and PostgreSQL, Anvil end-to-end)"
if [ -n "${CHAPERONE_TEST_PG_URL:-}" ]; then
  echo "PostgreSQL suites run against CHAPERONE_TEST_PG_URL=$CHAPERONE_TEST_PG_URL"
else
  echo "SKIPPING the PostgreSQL suites: CHAPERONE_TEST_PG_URL is not set"
  echo "  (e.g. CHAPERONE_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test make test)"
fi
# The end-to-end tests run the `chaperone` binary and the example agent as a user would:
# build them as programs first (`cargo test` builds examples only as test harnesses).
cargo build --workspace --bins --examples
cargo test --workspace --all-targets
cargo test --workspace --doc

step "Python package and console: pip install ./crates/py, mypy --strict, pytest and headless Chromium against a devnet"
./scripts/test-py.sh

step "MCP gateway: server-everything, a FastMCP server, the Python mcp client, the conformance suite, paid tools against a devnet"
./scripts/test-mcp.sh

step "Node package: npm ci ./crates/js (napi-rs build), tsc --strict and node --test against a devnet"
./scripts/test-js.sh

step "x402 interop: the TypeScript facilitator (@x402/evm) verifies and settles the SDK's payments"
./scripts/test-x402-ts.sh

step "API fuzzing from the OpenAPI document (schemathesis: no 5xx, nothing undocumented)"
./scripts/fuzz-api.sh

step "the run changed no committed file"
after=$(tree_state)
[ "$before" = "$after" ] || {
  echo "the test run changed the working tree (every file a test writes belongs in target/ or a"
  echo "temporary directory):"
  diff <(echo "$before") <(echo "$after") || true
  exit 1
}

step "all checks passed"
