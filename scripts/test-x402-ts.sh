#!/usr/bin/env bash
# x402 interop with the TypeScript facilitator: @x402/evm (on @x402/core and viem, pinned in
# package.json and package-lock.json) verifies and settles the SDK's AgentWallet payments
# (EIP-3009, Permit2, and an ERC-6492 counterfactual wallet) on a `chaperone up` devnet, and
# refuses their replays (tests/x402-ts/facilitator.test.mjs). Called by scripts/test.sh after
# it builds the binaries; run it alone after `make toolchain` and
# `cargo build -p chaperone-cli --bins --examples`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

command -v node >/dev/null || {
  echo "node is missing: install Node.js 20 or newer (e.g. Debian's nodejs and npm packages)"
  exit 1
}
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || {
  echo "node $(node --version) is too old: install Node.js 20 or newer"
  exit 1
}
for package in @x402/core @x402/evm viem; do
  [ -f "node_modules/$package/package.json" ] || {
    echo "the npm package $package is missing: run 'make toolchain' (npm install, as locked)"
    exit 1
  }
done
bin=${CHAPERONE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/chaperone}
for program in "$bin" "$(dirname "$bin")/examples/agent"; do
  [ -x "$program" ] || {
    echo "$program is missing: build it with 'cargo build -p chaperone-cli --bins --examples'"
    exit 1
  }
done

CHAPERONE_BIN=$bin node --test --test-reporter=spec tests/x402-ts/facilitator.test.mjs
