// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title MerkleProofs
/// @notice Verification of RFC 9162 Merkle tree proofs (SHA-256; interior node =
///         SHA-256(0x01 ‖ left ‖ right)). These trees are position-bound: a proof fixes the leaf's
///         index and the tree size, unlike the sorted-pair trees of OpenZeppelin's MerkleProof.
/// @dev The loops are written in assembly because they run once per tree level; the SHA-256
///      precompile itself costs 196 gas a level (call + 96). The consistency loop is a
///      line-by-line transcription of the RFC's steps, named in the comments; the inclusion loop
///      is the RFC's, rearranged (see there). The fuzz tests compare both with the RFC's
///      recursive definitions in test/base.
library MerkleProofs {
    /// @notice RFC 9162 §2.1.3.2: does `proof` show `leafHash` at `index` in the tree of `size`
    ///         leaves whose root is `root`?
    /// @dev The RFC's loop, rearranged as transparency-dev's verifier does: the first `inner` =
    ///      bit length of (index XOR (size − 1)) levels lie below the point where the leaf's path
    ///      meets the tree's right edge, and there bit i of `index` says on which side the
    ///      sibling is; every later ("border") level has the sibling on the left, one per set
    ///      bit of `index >> inner`. The proof must have exactly inner + border hashes.
    ///
    ///      Each level is one SHA-256 precompile call over 0x01 ‖ left ‖ right laid out in the
    ///      first 0x60 bytes of memory (0x1f, 0x20, 0x40; the free-memory pointer is restored),
    ///      and the precompile writes its output straight into the slot where the next level
    ///      wants the running hash, so no level copies it or branches on its side. This cut the
    ///      depth-20 verification from ~450 to ~310 gas per level (196 of which is the call).
    function verifyInclusion(
        uint256 size,
        uint256 index,
        bytes32 leafHash,
        bytes32 root,
        bytes32[] calldata proof
    ) internal view returns (bool valid) {
        if (index >= size) return false;
        assembly ("memory-safe") {
            // inner = bit length of index ^ (size - 1) (floor(log2) + 1, branch-free).
            let x := xor(index, sub(size, 1))
            let inner := shl(7, lt(0xffffffffffffffffffffffffffffffff, x))
            inner := or(inner, shl(6, lt(0xffffffffffffffff, shr(inner, x))))
            inner := or(inner, shl(5, lt(0xffffffff, shr(inner, x))))
            inner := or(inner, shl(4, lt(0xffff, shr(inner, x))))
            inner := or(inner, shl(3, lt(0xff, shr(inner, x))))
            inner := or(inner, shl(2, lt(0xf, shr(inner, x))))
            inner := or(inner, shl(1, lt(0x3, shr(inner, x))))
            inner := or(inner, lt(0x1, shr(inner, x)))
            inner := add(inner, iszero(iszero(x)))
            let ok := iszero(gt(inner, proof.length))
            let ptr := proof.offset
            let end := add(ptr, shl(5, proof.length))
            let innerEnd := add(ptr, shl(5, inner))
            let fmp := mload(0x40)
            mstore8(0x1f, 0x01)
            // o: where the running hash is, 0x20 + o (0: left, 0x20: right). Bit set: the
            // sibling is on the left, so the running hash is on the right. Border levels (and
            // a path with no inner level) keep it on the right.
            let fn := index
            let o := shl(5, or(and(fn, 1), iszero(inner)))
            mstore(add(0x20, o), leafHash)
            if ok {
                for {} lt(ptr, innerEnd) {} {
                    mstore(sub(0x40, o), calldataload(ptr))
                    fn := shr(1, fn)
                    ptr := add(ptr, 0x20)
                    o := shl(5, or(and(fn, 1), eq(ptr, innerEnd)))
                    if iszero(staticcall(gas(), 2, 0x1f, 65, add(0x20, o), 0x20)) {
                        revert(0, 0)
                    }
                }
                for {} fn { fn := and(fn, sub(fn, 1)) } {
                    if eq(ptr, end) {
                        ok := 0
                        break
                    }
                    mstore(0x20, calldataload(ptr))
                    ptr := add(ptr, 0x20)
                    if iszero(staticcall(gas(), 2, 0x1f, 65, 0x40, 0x20)) {
                        revert(0, 0)
                    }
                }
            }
            // "Compare r against the root hash", with every hash of the proof used.
            valid := and(ok, and(eq(ptr, end), eq(mload(add(0x20, o)), root)))
            mstore(0x40, fmp)
        }
    }

    /// @notice RFC 9162 §2.1.4.2: does `proof` show that the tree of `second` leaves with root
    ///         `secondRoot` extends the tree of `first` leaves with root `firstRoot`?
    /// @dev `first` must be at least 1: the empty tree has no root to be consistent with.
    function verifyConsistency(
        uint256 first,
        uint256 second,
        bytes32 firstRoot,
        bytes32 secondRoot,
        bytes32[] calldata proof
    ) internal view returns (bool valid) {
        if (first == 0 || first > second) return false;
        if (first == second) return proof.length == 0 && firstRoot == secondRoot;
        // Step 1: an empty path fails.
        if (proof.length == 0) return false;
        assembly ("memory-safe") {
            let buf := mload(0x40)
            mstore8(buf, 0x01)
            // Step 3: fn = first - 1, sn = second - 1.
            let fn := sub(first, 1)
            let sn := sub(second, 1)
            // Step 4: if LSB(fn) is set, shift both until it is not.
            for {} and(fn, 1) {} {
                fn := shr(1, fn)
                sn := shr(1, sn)
            }
            // Steps 2 and 5: a power-of-two `first` is a complete subtree whose root the
            // proof omits (it is prepended); fr and sr start at the path's first value.
            let i := 0
            let fr := firstRoot
            if and(first, sub(first, 1)) {
                fr := calldataload(proof.offset)
                i := 1
            }
            let sr := fr
            let ok := 1
            // Step 6.
            for {} lt(i, proof.length) { i := add(i, 1) } {
                if iszero(sn) {
                    ok := 0
                    break
                }
                let c := calldataload(add(proof.offset, shl(5, i)))
                switch or(and(fn, 1), eq(fn, sn))
                case 1 {
                    // fr = HASH(0x01 ‖ c ‖ fr); sr = HASH(0x01 ‖ c ‖ sr); then shift until
                    // LSB(fn) is set or fn is 0.
                    mstore(add(buf, 1), c)
                    mstore(add(buf, 33), fr)
                    if iszero(staticcall(gas(), 2, buf, 65, 0x00, 0x20)) { revert(0, 0) }
                    fr := mload(0x00)
                    mstore(add(buf, 33), sr)
                    if iszero(staticcall(gas(), 2, buf, 65, 0x00, 0x20)) { revert(0, 0) }
                    sr := mload(0x00)
                    for {} and(iszero(and(fn, 1)), iszero(iszero(fn))) {} {
                        fn := shr(1, fn)
                        sn := shr(1, sn)
                    }
                }
                default {
                    // sr = HASH(0x01 ‖ sr ‖ c)
                    mstore(add(buf, 1), sr)
                    mstore(add(buf, 33), c)
                    if iszero(staticcall(gas(), 2, buf, 65, 0x00, 0x20)) { revert(0, 0) }
                    sr := mload(0x00)
                }
                fn := shr(1, fn)
                sn := shr(1, sn)
            }
            // Step 7: sn is 0, fr is the first root, sr is the second root.
            valid := and(ok, and(iszero(sn), and(eq(fr, firstRoot), eq(sr, secondRoot))))
        }
    }
}
