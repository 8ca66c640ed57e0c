#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis): a fresh
# `chaperone-server` on a temporary SQLite file, with one registered wallet and policy, is sent
# generated requests for every operation (valid ones and broken ones). It fails on any 5xx, any
# status the document does not list, and any response outside its documented schema or content
# type. Called by `make fuzz-api` and by `make test`. FUZZ_EXAMPLES sets the examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv="$root/target/fuzz-venv"
schemathesis_version=4.32.5

if [ ! -x "$venv/bin/schemathesis" ] ||
    ! "$venv/bin/schemathesis" --version | grep -q "$schemathesis_version"; then
  echo "installing schemathesis $schemathesis_version into $venv (PyPI)"
  python3 -m venv "$venv" ||
    { echo "python3 -m venv failed: install Python 3 with its venv module"; exit 1; }
  "$venv/bin/pip" install --quiet "schemathesis==$schemathesis_version"
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
export CHAPERONE_FUZZ_COSIGNER_KEY=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
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
address = "0x00000000000000000000000000000000000000aa"
agent = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
policy = "$work/policy.toml"
CONFIG
"$root/target/debug/chaperone-server" --config "$work/chaperone.toml" >"$work/server.log" 2>&1 &
server_pid=$!

"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --wait-for-schema 30 \
  --header "Authorization: Bearer $CHAPERONE_FUZZ_ADMIN_TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${FUZZ_EXAMPLES:-50}" \
  --workers 2 \
  --suppress-health-check all \
  --generation-deterministic || {
    status=$?
    echo "--- server log (last 40 lines) ---"
    tail -40 "$work/server.log"
    exit $status
  }
