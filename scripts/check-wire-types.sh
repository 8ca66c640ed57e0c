#!/usr/bin/env bash
# The HTTP contract has one home: every request and response body is defined in crates/api
# (`chaperone-api`), and no other crate defines a serde type of the same name. A copy elsewhere
# is how a client and the server drifted apart before; this makes it a failing check. (Types
# that merely share a name and are never serialised, such as the SDK's `Payment` of a
# transfer, are not wire types.)
set -euo pipefail
cd "$(dirname "$0")/.."

names=$(grep -rhoE '^pub (struct|enum) [A-Z][A-Za-z0-9]*' crates/api/src | awk '{print $3}' | sort -u)
[ -n "$names" ] || { echo "check-wire-types: no types found in crates/api/src"; exit 1; }
found=0
for name in $names; do
  # Definitions only (any visibility) that derive serde, in every other crate's sources and
  # tests: the derive is within the six lines above the definition.
  if hits=$(grep -rnE -B6 "^\s*(pub(\([a-z]+\))? )?(struct|enum) $name\b" crates --include='*.rs' |
      grep -v '^crates/api/' |
      awk -v name="$name" '/^--$/ { serde = 0; next }
        /derive\(.*(Serialize|Deserialize)/ { serde = 1 }
        $0 ~ "(struct|enum) " name "([^A-Za-z0-9_]|$)" { if (serde) print; serde = 0 }'); [ -n "$hits" ]; then
    echo "wire type \`$name\` is defined in crates/api and again here:"
    echo "$hits" | sed 's/^/  /'
    found=1
  fi
done
[ "$found" -eq 0 ] || {
  echo "use the chaperone_api type (or rename the local one if it is not the wire type)"
  exit 1
}
echo "$(echo "$names" | wc -w) wire types, each defined once (crates/api)"
