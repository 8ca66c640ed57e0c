# Chaperone's entry points. `make up` and `make test` are the two commands in the README;
# both install the pinned contract toolchain first (idempotent: only when package-lock.json
# changed or node_modules is missing).

# The platform's forge binary, not node_modules/.bin/forge: that Node wrapper drops forge's exit
# status. Expanded when used, after `toolchain` has installed it.
FORGE = $(firstword $(wildcard $(CURDIR)/node_modules/@foundry-rs/forge-*/bin/forge))
TOOLCHAIN_STAMP := node_modules/.chaperone-toolchain

.PHONY: up test toolchain agent paid-api artifacts vectors gas bench fuzz-api

## `chaperone up`: Anvil, the contracts, the server on SQLite and a funded demo agent wallet
## with a demo policy, all in .chaperone/ (Ctrl-C stops; the next `make up` reuses it).
up: toolchain
	cargo run -p chaperone-cli -- up

## The example agent, against a running `make up`: logs model calls, pays, waits up to ten
## minutes for you to approve its 0.07 ETH in the console, buys from `make paid-api` with x402
## (if it runs), discloses a record.
agent:
	cargo run -p chaperone-cli --example agent -- --approval-wait 600 --x402-url http://127.0.0.1:8403/weather

## The x402-paid example API the agent buys from (GET /weather for 0.01 demo token), against
## a running `make up` and its facilitator.
paid-api:
	cargo run -p chaperone-cli --example paid_api

## Run every check and test: formatting, lints, artifact freshness, forge, cargo.
test: toolchain
	./scripts/test.sh

## Fuzz the HTTP API from its OpenAPI document with schemathesis (also part of `make test`);
## FUZZ_EXAMPLES=500 for a longer run.
fuzz-api:
	./scripts/fuzz-api.sh

## Install Foundry 1.7.1, solc 0.8.30 (solc-js) and OpenZeppelin as locked in package-lock.json.
toolchain: $(TOOLCHAIN_STAMP)

# `npm install`, not `npm ci`: the registry mirror these machines reach lacks the other
# platforms' optional Foundry packages, so `npm ci` calls the lock file out of sync. With the
# lock present, `npm install` installs exactly the locked versions; `--no-save` keeps it from
# rewriting the lock without the packages it could not see.
$(TOOLCHAIN_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --no-save
	touch $@

## Rebuild the committed contract artifacts and gas snapshots after changing contracts/src.
## The only command that writes contracts/snapshots (foundry.toml: gas_snapshot_emit = false).
artifacts: toolchain
	cd contracts && $(FORGE) build --force \
		&& FORGE_SNAPSHOT_EMIT=true $(FORGE) snapshot --isolate --match-contract GasTest

## Rewrite contracts/test/vectors/merkle.json from the Rust log.
vectors:
	CHAPERONE_WRITE_VECTORS=1 cargo test -p chaperone-core --test it vectors

## Total transaction gas on Anvil (figures for docs/benchmarks.md).
gas: toolchain
	cargo run --release -p chaperone-chain --example gas

## Criterion benchmarks: the core crate, the SDK's hot path, a store decision (figures for docs/benchmarks.md).
bench:
	cargo bench -p chaperone-core --bench core
	cargo bench -p chaperone-sdk --bench sdk
	cargo bench -p chaperone-store --bench decide
