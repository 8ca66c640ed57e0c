#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis): a fresh
# `chaperone-server` on a temporary SQLite file, with one registered wallet and policy, is sent
# generated requests for every operation (valid ones and broken ones). It fails on any 5xx, any
# status the document does not list, and any response outside its documented schema or content
# type. Generated co-sign requests are signed by the wallet's agent (scripts/fuzz_hooks.py), so
# the run reaches the decision path; it fails unless it got approved decisions. Called by
# `make fuzz-api` and by `make test`. FUZZ_EXAMPLES sets the examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv="$root/target/fuzz-venv"
schemathesis_version=4.32.5
# Signs the generated co-sign requests (EIP-712), in scripts/fuzz_hooks.py.
eth_account_version=0.14.0

if [ ! -x "$venv/bin/schemathesis" ] ||
    ! "$venv/bin/schemathesis" --version | grep -q "$schemathesis_version" ||
    ! "$venv/bin/pip" show eth-account 2>/dev/null | grep -q "^Version: $eth_account_version$"; then
  echo "installing schemathesis $schemathesis_version and eth-account $eth_account_version into $venv (PyPI)"
  python3 -m venv "$venv" ||
    { echo "python3 -m venv failed: install Python 3 with its venv module"; exit 1; }
  "$venv/bin/pip" install --quiet "schemathesis==$schemathesis_version" \
    "eth-account==$eth_account_version"
fi

cargo build --quiet -p chaperone-server --bin chaperone-server
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CHAPERONE_FUZZ_ADMIN_TOKEN="fuzz-admin-$RANDOM$RANDOM"
# Anvil's well-known test keys #1 (the agent) and #2 (the co-signer): nothing of value.
export CHAPERONE_FUZZ_AGENT_KEY=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
export CHAPERONE_FUZZ_COSIGNER_KEY=0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
export CHAPERONE_FUZZ_WALLET=0x00000000000000000000000000000000000000aa
export CHAPERONE_FUZZ_CHAIN_ID=31337
cat > "$work/policy.toml" <<'POLICY'
version = 1
chains = [31337]
[[limits]]
token = "native"
per_transaction = "1000000000000000000"
windows = [{ window = "1d", max = "5000000000000000000" }]
POLICY
cat > "$work/chaperone.toml" <<CONFIG
database = "sqlite:$work/fuzz.db?mode=rwc"
chain_id = 31337
listen = "127.0.0.1:$port"
admin_token_env = "CHAPERONE_FUZZ_ADMIN_TOKEN"
[cosigner]
env = "CHAPERONE_FUZZ_COSIGNER_KEY"
[[wallets]]
address = "$CHAPERONE_FUZZ_WALLET"
agent = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
policy = "$work/policy.toml"
CONFIG
"${CARGO_TARGET_DIR:-$root/target}/debug/chaperone-server" --config "$work/chaperone.toml" >"$work/server.log" 2>&1 &
server_pid=$!

# One worker: schemathesis's workers are threads sharing Hypothesis's caches, which are not
# thread-safe; with two, CI once failed inside the generator itself (a Hypothesis FlakyFailure
# while drawing a POST /v1/records body), with no request sent and nothing wrong in the server.
PYTHONPATH="$root/scripts" SCHEMATHESIS_HOOKS=fuzz_hooks \
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --wait-for-schema 30 \
  --header "Authorization: Bearer $CHAPERONE_FUZZ_ADMIN_TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${FUZZ_EXAMPLES:-50}" \
  --workers 1 \
  --suppress-health-check all \
  --generation-deterministic || {
    status=$?
    echo "--- server log (last 40 lines) ---"
    tail -40 "$work/server.log"
    exit $status
  }

# The signed requests must have reached the decision path and been approved, not only refused.
# Counted in the database itself: the fuzzer may well have revoked every API token by then.
count_decisions() {
  python3 - "$work/fuzz.db" "$1" <<'PY'
import sqlite3, sys
query = "SELECT count(*) FROM decisions" + (" WHERE outcome = ?" if sys.argv[2] else "")
print(sqlite3.connect(sys.argv[1]).execute(query, [sys.argv[2]] if sys.argv[2] else []).fetchone()[0])
PY
}
decided=$(count_decisions "")
approved=$(count_decisions approved)
echo "co-sign decisions reached by the fuzzer: $decided, of them approved: $approved"
[ "$approved" -gt 0 ] || {
  echo "the fuzzer reached no approved co-sign decision: are the hooks (scripts/fuzz_hooks.py) signing?"
  exit 1
}
