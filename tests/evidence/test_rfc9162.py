"""The Python verifier against trees and proofs built from RFC 9162's definitions (section
2.1.1 MTH, 2.1.3.1 PATH, 2.1.4.1 PROOF/SUBPROOF), here in a few lines each: every proof of
every size up to 40 verifies, and any changed node, index or size fails."""

from __future__ import annotations

import hashlib

from rfc9162 import leaf_hash, node_hash, note_size_and_root, verify_consistency, verify_inclusion


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(leaves[0])
    k = split(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = split(n)
    if m <= k:
        return subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


LEAVES = [f"leaf {i}".encode() for i in range(40)]


def flipped(node: bytes) -> bytes:
    return bytes([node[0] ^ 1]) + node[1:]


def test_every_inclusion_proof_verifies_and_a_changed_one_does_not() -> None:
    for n in range(1, len(LEAVES) + 1):
        tree = LEAVES[:n]
        root = mth(tree)
        for m in range(n):
            proof = path(m, tree)
            leaf = leaf_hash(tree[m])
            assert verify_inclusion(m, n, leaf, proof, root), (m, n)
            assert not verify_inclusion(m, n, flipped(leaf), proof, root)
            assert not verify_inclusion(m, n, leaf, proof, flipped(root))
            assert not verify_inclusion(n, n, leaf, proof, root)
            for i in range(len(proof)):
                changed = proof[:i] + [flipped(proof[i])] + proof[i + 1 :]
                assert not verify_inclusion(m, n, leaf, changed, root), (m, n, i)
            if proof:
                assert not verify_inclusion(m, n, leaf, proof[:-1], root)
                assert not verify_inclusion(m, n, leaf, proof + [root], root)


def test_every_consistency_proof_verifies_and_a_changed_one_does_not() -> None:
    for n in range(1, len(LEAVES) + 1):
        new_root = mth(LEAVES[:n])
        for m in range(1, n + 1):
            old_root = mth(LEAVES[:m])
            proof = subproof(m, LEAVES[:n], True)
            assert verify_consistency(m, n, old_root, new_root, proof), (m, n)
            assert not verify_consistency(m, n, flipped(old_root), new_root, proof)
            assert not verify_consistency(m, n, old_root, flipped(new_root), proof)
            for i in range(len(proof)):
                changed = proof[:i] + [flipped(proof[i])] + proof[i + 1 :]
                assert not verify_consistency(m, n, old_root, new_root, changed), (m, n, i)
            if m < n:
                assert not verify_consistency(n, m, new_root, old_root, proof)
                assert not verify_consistency(m, n, old_root, new_root, [])


def test_a_note_states_its_size_and_root() -> None:
    root = bytes(range(32))
    import base64

    note = f"chaperone.dev/1/0xab/0xcd\n7\n{base64.b64encode(root).decode()}\n\n\u2014 k sig\n"
    assert note_size_and_root(note) == (7, root)
