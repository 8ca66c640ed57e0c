#!/usr/bin/env bash
# The Python package (crates/py), as a user installs it, and the console's browser tests: a virtualenv in target/py-venv with
# the pinned test tools, `pip install ./crates/py`, mypy --strict on the package and its
# examples, and pytest against a real devnet (`chaperone up`, which needs the debug build of
# the CLI: scripts/test.sh builds it first). Called by scripts/test.sh; run it alone after
# `cargo build -p chaperone-cli`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/target/py-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r crates/py/requirements-test.txt
# The console's browser tests drive Debian's headless Chromium through chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "installing Debian's chromium and chromium-driver (the console's browser tests)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# The dev profile, so the wheel reuses what `cargo build` compiled instead of a second,
# release build of the whole dependency tree (users get release: `pip install ./crates/py`).
# maturin's PEP 517 hook runs the `maturin` found on PATH: the virtualenv's pinned one.
PATH="$venv/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/pip" install --quiet \
  --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall ./crates/py
(cd crates/py && "$venv/bin/mypy" --strict python/chaperone examples bench)
# The second, independent RFC 9162 verifier (standard library only) against proofs built from
# the RFC's definitions; crates/py/tests/test_evidence.py runs it on a real bundle.
(cd tests/evidence && "$venv/bin/pytest" -q -p no:cacheprovider)
(cd crates/py && CHAPERONE_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/chaperone" "$venv/bin/pytest" -q)
echo "console screenshots: target/console-screenshots/"
