// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title MerkleProofs
/// @notice Verification of RFC 9162 Merkle tree proofs (SHA-256; interior node =
///         SHA-256(0x01 ‖ left ‖ right)). These trees are position-bound: a proof fixes the leaf's
///         index and the tree size, unlike the sorted-pair trees of OpenZeppelin's MerkleProof.
library MerkleProofs {
    /// @notice RFC 9162 §2.1.3.2: does `proof` show `leafHash` at `index` in the tree of `size`
    ///         leaves whose root is `root`?
    function verifyInclusion(
        uint256 size,
        uint256 index,
        bytes32 leafHash,
        bytes32 root,
        bytes32[] calldata proof
    ) internal view returns (bool) {
        if (index >= size) return false;
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leafHash;
        for (uint256 i; i < proof.length; ++i) {
            if (sn == 0) return false;
            bytes32 p = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                r = hashNode(p, r);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                r = hashNode(r, p);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == root;
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
    ) internal view returns (bool) {
        if (first == 0 || first > second) return false;
        if (first == second) return proof.length == 0 && firstRoot == secondRoot;
        if (proof.length == 0) return false;

        uint256 fn = first - 1;
        uint256 sn = second - 1;
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        // A power-of-two `first` is a complete subtree: the proof omits its root, which we know.
        bytes32 fr;
        uint256 i;
        if (first & (first - 1) == 0) {
            fr = firstRoot;
        } else {
            fr = proof[0];
            i = 1;
        }
        bytes32 sr = fr;
        for (; i < proof.length; ++i) {
            if (sn == 0) return false;
            bytes32 c = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                fr = hashNode(c, fr);
                sr = hashNode(c, sr);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = hashNode(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr == firstRoot && sr == secondRoot;
    }

    /// @notice SHA-256(0x01 ‖ left ‖ right), through the precompile at address 2.
    /// @dev Written in assembly because it runs up to 2·log2(n) times per proof: it reuses the
    ///      free-memory scratch area instead of allocating `abi.encodePacked` buffers.
    function hashNode(bytes32 left, bytes32 right) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            mstore(add(ptr, 1), left)
            mstore(add(ptr, 33), right)
            if iszero(staticcall(gas(), 2, ptr, 65, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @notice SHA-256(0x00 ‖ data): the RFC 9162 leaf hash.
    function hashLeaf(bytes memory data) internal view returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), data));
    }
}
