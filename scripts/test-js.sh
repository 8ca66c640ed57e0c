#!/usr/bin/env bash
# The Node package (crates/js, @chaperone/sdk) as a user installs it: `npm ci` in crates/js
# with its committed lock file (pinned @napi-rs/cli, typescript, @types/node, and for the tests
# the AI SDK, LangChain.js, @x402/core and @x402/fetch), whose install step builds the addon
# from the Rust SDK; `tsc --strict` over the declarations and a typed agent (test/types.ts);
# and `node --test` against real devnets (`chaperone up`, which needs the debug build of the
# CLI, and `examples/paid_api.rs` for x402: scripts/test.sh builds both first). Called by
# scripts/test.sh; run it alone after `cargo build -p chaperone-cli --bins --examples`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
[ -x "$target/debug/chaperone" ] || cargo build -p chaperone-cli
[ -x "$target/debug/examples/paid_api" ] || cargo build -p chaperone-cli --examples
cd crates/js
# The dev profile: the tests need no release build of the whole dependency tree (users get
# release: `npm install ./crates/js`; the benchmark, bench/record.mjs, wants it too).
CHAPERONE_JS_PROFILE=dev npm ci --no-audit --no-fund --foreground-scripts
npx --no-install tsc --strict --noEmit -p tsconfig.json
echo "tsc --strict: the generated declarations and test/types.ts type-check"
# One devnet per file; the files run one after another (two cores: each devnet is a server, an
# Anvil and a facilitator).
CHAPERONE_BIN="$target/debug/chaperone" node --test --test-concurrency=1 \
  test/sdk.test.mjs test/x402.test.mjs test/redteam-x402.test.mjs test/redteam-x402-book.test.mjs test/redteam-x402-third.test.mjs test/redteam-x402-fourth.test.mjs test/integrations.test.mjs
