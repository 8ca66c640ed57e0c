#!/usr/bin/env bash
# The Node package (crates/js, @chaperone/sdk) as a user installs it: `npm ci` in crates/js
# with its committed lock file (pinned @napi-rs/cli, typescript, @types/node), whose install
# step builds the addon from the Rust SDK; `tsc --strict` over the generated declarations and a
# typed agent (test/types.ts); and `node --test` against a real devnet (`chaperone up`, which
# needs the debug build of the CLI: scripts/test.sh builds it first). Called by
# scripts/test.sh; run it alone after `cargo build -p chaperone-cli`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
[ -x "$target/debug/chaperone" ] || cargo build -p chaperone-cli
cd crates/js
# The dev profile: the tests need no release build of the whole dependency tree (users get
# release: `npm install ./crates/js`; the benchmark, bench/record.mjs, wants it too).
CHAPERONE_JS_PROFILE=dev npm ci --no-audit --no-fund --foreground-scripts
npx --no-install tsc --strict --noEmit -p tsconfig.json
echo "tsc --strict: the generated declarations and test/types.ts type-check"
CHAPERONE_BIN="$target/debug/chaperone" node --test test/sdk.test.mjs
