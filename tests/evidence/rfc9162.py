#!/usr/bin/env python3
"""A second, independent check of Chaperone's evidence bundles (`chaperone report --bundle`),
standard library only, written from the text of RFC 9162 (Certificate Transparency 2.0):

- section 2.1.1: leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right);
- section 2.1.3.2: verifying an inclusion proof;
- section 2.1.4.2: verifying a consistency proof.

It checks every record's leaf hash from its leaf data, every inclusion proof against the
checkpoint of its size, every consistency proof between consecutive checkpoints, and that each
checkpoint's signed note (C2SP tlog-checkpoint) states the size and root the bundle gives. A
bundle without a checkpoint or a record proves nothing and is refused. It does not check the
operator's secp256k1 signatures, the anchors on chain or the decisions against their records:
that needs elliptic curves, a chain and the wire types, which `chaperone verify --bundle` does.

Usage: python3 rfc9162.py BUNDLE.json   (exit 0 valid, 2 invalid)
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from typing import Any


class Invalid(Exception):
    """The bundle does not verify; the message says where."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf: bytes, path: list[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2, step by step."""
    # 1. leaf_index must be below tree_size.
    if leaf_index >= tree_size:
        return False
    # 2.
    fn, sn = leaf_index, tree_size - 1
    # 3.
    r = leaf
    # 4.
    for p in path:
        # a.
        if sn == 0:
            return False
        # b.
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        # c.
        fn >>= 1
        sn >>= 1
    # 5.
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2, step by step (for 0 < first <= second)."""
    if first <= 0 or first > second:
        return False
    if first == second:
        # Section 2.1.4.1: the proof between equal sizes is empty; the roots must agree.
        return not path and first_hash == second_hash
    # 1.
    if not path:
        return False
    path = list(path)
    # 2.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3.
    fn, sn = first - 1, second - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        # a.
        if sn == 0:
            return False
        # b.
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        # c.
        fn >>= 1
        sn >>= 1
    # 7.
    return fr == first_hash and sr == second_hash and sn == 0


def hex_bytes(value: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise Invalid(f"{what} is not 0x-prefixed hex")
    try:
        data = bytes.fromhex(value[2:])
    except ValueError as e:
        raise Invalid(f"{what} is not hex: {e}") from None
    if length is not None and len(data) != length:
        raise Invalid(f"{what} is {len(data)} bytes, not {length}")
    return data


def note_size_and_root(note: str) -> tuple[int, bytes]:
    """The size and root a C2SP checkpoint note states (origin, size, base64 root, blank line,
    signature lines)."""
    body, sep, _signatures = note.partition("\n\n")
    lines = body.split("\n")
    if not sep or len(lines) < 3:
        raise Invalid("a checkpoint note is not origin, size, root and signatures")
    try:
        return int(lines[1]), base64.b64decode(lines[2], validate=True)
    except ValueError as e:
        raise Invalid(f"a checkpoint note's size or root does not parse: {e}") from None


def verify_bundle(bundle: dict[str, Any]) -> dict[str, int]:
    """Checks `bundle`; raises `Invalid`, or returns what was checked."""
    if bundle.get("version") not in (1, 2):
        raise Invalid(f"bundle version {bundle.get('version')!r} is not 1 or 2")
    checkpoints = bundle["checkpoints"]
    if not checkpoints or not bundle["records"]:
        raise Invalid("the bundle has no checkpoint or no record: it proves nothing")
    roots: dict[int, bytes] = {}
    previous = -1
    for c in checkpoints:
        size = c["size"]
        if not isinstance(size, int) or size <= previous:
            raise Invalid(f"checkpoints out of order: size {size} after {previous}")
        previous = size
        root = hex_bytes(c["root"], f"checkpoint {size}'s root", 32)
        if note_size_and_root(c["note"]) != (size, root):
            raise Invalid(f"checkpoint {size}: its signed note states another size or root")
        roots[size] = root
    proofs = bundle["consistency"]
    if len(proofs) != max(len(checkpoints) - 1, 0):
        raise Invalid(f"{len(checkpoints)} checkpoints need {len(checkpoints) - 1} proofs")
    for older, newer, proof in zip(checkpoints, checkpoints[1:], proofs):
        if (proof["first"], proof["second"]) != (older["size"], newer["size"]):
            raise Invalid(f"proof {proof['first']}->{proof['second']} joins other checkpoints")
        path = [hex_bytes(p, "a consistency node", 32) for p in proof["path"]]
        if not verify_consistency(
            older["size"], newer["size"], roots[older["size"]], roots[newer["size"]], path
        ):
            raise Invalid(f"consistency {older['size']} -> {newer['size']} does not verify")
    last_index = -1
    for r in bundle["records"]:
        index = r["index"]
        if not isinstance(index, int) or index <= last_index:
            raise Invalid(f"record {index} is out of log order")
        last_index = index
        leaf = leaf_hash(hex_bytes(r["leaf_data"], f"record {index}'s leaf data"))
        if leaf != hex_bytes(r["leaf_hash"], f"record {index}'s leaf hash", 32):
            raise Invalid(f"record {index}: its leaf data does not hash to its leaf hash")
        inclusion = r["inclusion"]
        if inclusion["index"] != index:
            raise Invalid(f"record {index}: its proof is for index {inclusion['index']}")
        root = roots.get(inclusion["size"])
        if root is None:
            raise Invalid(f"record {index}: no checkpoint of size {inclusion['size']}")
        path = [hex_bytes(p, "an inclusion node", 32) for p in inclusion["path"]]
        if not verify_inclusion(index, inclusion["size"], leaf, path, root):
            raise Invalid(f"record {index}: its inclusion proof does not verify")
    return {
        "records": len(bundle["records"]),
        "checkpoints": len(checkpoints),
        "consistency_proofs": len(proofs),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    with open(argv[1], encoding="utf-8") as f:
        bundle = json.load(f)
    try:
        checked = verify_bundle(bundle)
    except (Invalid, KeyError, TypeError) as e:
        print(f"INVALID: {e!r}" if not isinstance(e, Invalid) else f"INVALID: {e}")
        return 2
    print(
        f"VALID: {checked['records']} records, {checked['checkpoints']} checkpoints, "
        f"{checked['consistency_proofs']} consistency proofs (RFC 9162, Python)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
