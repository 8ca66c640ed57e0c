// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title MerkleProofs
/// @notice Verification of RFC 9162 Merkle tree proofs (SHA-256; interior node =
///         SHA-256(0x01 ‖ left ‖ right)). These trees are position-bound: a proof fixes the leaf's
///         index and the tree size, unlike the sorted-pair trees of OpenZeppelin's MerkleProof.
/// @dev The loops are written in assembly because they run once per tree level: the Solidity
///      version spent ~360 gas per level (bounds-checked calldata reads, a function call per
///      hash) against ~240 here, where the SHA-256 precompile itself costs 196 (call + 96).
///      Each loop is a line-by-line transcription of the RFC's steps, named in the comments, and
///      the fuzz tests compare it with the RFC's recursive definitions in test/base.
library MerkleProofs {
    /// @notice RFC 9162 §2.1.3.2: does `proof` show `leafHash` at `index` in the tree of `size`
    ///         leaves whose root is `root`?
    function verifyInclusion(
        uint256 size,
        uint256 index,
        bytes32 leafHash,
        bytes32 root,
        bytes32[] calldata proof
    ) internal view returns (bool valid) {
        if (index >= size) return false;
        assembly ("memory-safe") {
            // Scratch for 0x01 ‖ left ‖ right, just past the free-memory pointer.
            let buf := mload(0x40)
            mstore8(buf, 0x01)
            let fn := index
            let sn := sub(size, 1)
            let r := leafHash
            let ok := 1
            for { let i := 0 } lt(i, proof.length) { i := add(i, 1) } {
                // "If sn is 0, then stop the iteration and fail the proof verification."
                if iszero(sn) {
                    ok := 0
                    break
                }
                let p := calldataload(add(proof.offset, shl(5, i)))
                switch or(and(fn, 1), eq(fn, sn))
                case 1 {
                    // r = HASH(0x01 ‖ p ‖ r); then, if LSB(fn) is not set, shift fn and sn
                    // until LSB(fn) is set or fn is 0.
                    mstore(add(buf, 1), p)
                    mstore(add(buf, 33), r)
                    for {} and(iszero(and(fn, 1)), iszero(iszero(fn))) {} {
                        fn := shr(1, fn)
                        sn := shr(1, sn)
                    }
                }
                default {
                    // r = HASH(0x01 ‖ r ‖ p)
                    mstore(add(buf, 1), r)
                    mstore(add(buf, 33), p)
                }
                if iszero(staticcall(gas(), 2, buf, 65, 0x00, 0x20)) { revert(0, 0) }
                r := mload(0x00)
                fn := shr(1, fn)
                sn := shr(1, sn)
            }
            // "Compare sn to 0. Compare r against the root hash."
            valid := and(ok, and(iszero(sn), eq(r, root)))
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
