// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice RFC 9162 §2.1 written as the RFC's recursive definitions (MTH, PATH, PROOF) over leaf
///         hashes, independent of the iterative verifier in src/: the tests build proofs here
///         and check them there.
library MerkleReference {
    function node(bytes32 l, bytes32 r) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), l, r));
    }

    function leaf(bytes memory data) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), data));
    }

    /// @dev Largest power of two strictly smaller than n (n >= 2).
    function split(uint256 n) internal pure returns (uint256 k) {
        k = 1;
        while (k << 1 < n) k <<= 1;
    }

    /// @dev MTH(D[lo:hi]) for leaf hashes; the empty tree is SHA-256("").
    function root(bytes32[] memory leaves, uint256 lo, uint256 hi) internal pure returns (bytes32) {
        uint256 n = hi - lo;
        if (n == 0) return sha256("");
        if (n == 1) return leaves[lo];
        uint256 k = split(n);
        return node(root(leaves, lo, lo + k), root(leaves, lo + k, hi));
    }

    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        return root(leaves, 0, leaves.length);
    }

    /// @dev PATH(m, D[lo:hi]).
    function inclusion(bytes32[] memory leaves, uint256 m, uint256 lo, uint256 hi)
        internal
        pure
        returns (bytes32[] memory out)
    {
        uint256 n = hi - lo;
        if (n <= 1) return new bytes32[](0);
        uint256 k = split(n);
        bytes32[] memory sub;
        bytes32 sibling;
        if (m < k) {
            sub = inclusion(leaves, m, lo, lo + k);
            sibling = root(leaves, lo + k, hi);
        } else {
            sub = inclusion(leaves, m - k, lo + k, hi);
            sibling = root(leaves, lo, lo + k);
        }
        return append(sub, sibling);
    }

    /// @dev PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true).
    function consistency(bytes32[] memory leaves, uint256 m, uint256 n)
        internal
        pure
        returns (bytes32[] memory)
    {
        return subproof(leaves, m, 0, n, true);
    }

    function subproof(bytes32[] memory leaves, uint256 m, uint256 lo, uint256 hi, bool b)
        private
        pure
        returns (bytes32[] memory)
    {
        uint256 n = hi - lo;
        if (m == n) {
            if (b) return new bytes32[](0);
            bytes32[] memory one = new bytes32[](1);
            one[0] = root(leaves, lo, hi);
            return one;
        }
        uint256 k = split(n);
        if (m <= k) return append(subproof(leaves, m, lo, lo + k, b), root(leaves, lo + k, hi));
        return append(subproof(leaves, m - k, lo + k, hi, false), root(leaves, lo, lo + k));
    }

    function append(bytes32[] memory xs, bytes32 x) private pure returns (bytes32[] memory out) {
        out = new bytes32[](xs.length + 1);
        for (uint256 i; i < xs.length; ++i) {
            out[i] = xs[i];
        }
        out[xs.length] = x;
    }

    /// @dev Deterministic distinct leaves for a seed.
    function makeLeaves(uint256 seed, uint256 n) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            out[i] = leaf(abi.encodePacked(seed, i));
        }
    }
}
