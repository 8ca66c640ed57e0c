// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {TestBase} from "./base/TestBase.sol";
import {MerkleReference as Ref} from "./base/MerkleReference.sol";
import {AuditLog} from "../src/AuditLog.sol";
import {MerkleProofs} from "../src/MerkleProofs.sol";

/// @dev Exposes the library with calldata arguments, as the contract receives them.
contract MerkleProofsHarness {
    function verifyInclusion(
        uint256 size,
        uint256 index,
        bytes32 leafHash,
        bytes32 root,
        bytes32[] calldata proof
    ) external view returns (bool) {
        return MerkleProofs.verifyInclusion(size, index, leafHash, root, proof);
    }

    function verifyConsistency(
        uint256 first,
        uint256 second,
        bytes32 firstRoot,
        bytes32 secondRoot,
        bytes32[] calldata proof
    ) external view returns (bool) {
        return MerkleProofs.verifyConsistency(first, second, firstRoot, secondRoot, proof);
    }
}

contract AuditLogTest is TestBase {
    AuditLog internal log;
    MerkleProofsHarness internal proofs;
    address internal owner = address(0xA11CE);
    address internal operator = address(0x0B0B);
    bytes32 internal logId;

    function setUp() public {
        log = new AuditLog();
        proofs = new MerkleProofsHarness();
        vm.prank(owner);
        logId = log.createLog(operator);
    }

    function _anchor(uint64 size, bytes32 root, bytes32[] memory proof) internal {
        vm.prank(operator);
        log.anchor(logId, size, root, proof);
    }

    function _none() internal pure returns (bytes32[] memory) {
        return new bytes32[](0);
    }

    // --- createLog / owner functions ---------------------------------------------------------

    function test_createLog_setsOwnerAndOperatorAndEmits() public {
        bytes32 expected = keccak256(abi.encode(block.chainid, address(log), uint256(2)));
        vm.expectEmit();
        emit AuditLog.LogCreated(expected, owner, operator);
        vm.prank(owner);
        bytes32 id = log.createLog(operator);
        vm.assertEq(id, expected, "log id");
        (address o, address op) = log.logInfo(id);
        vm.assertEq(o, owner, "owner");
        vm.assertEq(op, operator, "operator");
    }

    function test_createLog_revertsOnZeroOperator() public {
        vm.expectRevert(AuditLog.ZeroAddress.selector);
        log.createLog(address(0));
    }

    function test_setOperator_rotatesAndEmits() public {
        vm.expectEmit();
        emit AuditLog.OperatorChanged(logId, address(0xC0C0));
        vm.prank(owner);
        log.setOperator(logId, address(0xC0C0));
        (, address op) = log.logInfo(logId);
        vm.assertEq(op, address(0xC0C0), "operator rotated");
        // The old operator lost the right to anchor.
        vm.expectRevert(abi.encodeWithSelector(AuditLog.NotLogOperator.selector, logId, operator));
        _anchor(1, bytes32(uint256(1)), _none());
    }

    function test_setOperator_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(AuditLog.NotLogOwner.selector, logId, operator));
        vm.prank(operator);
        log.setOperator(logId, operator);
    }

    function test_setOperator_revertsForUnknownLog() public {
        vm.expectRevert(abi.encodeWithSelector(AuditLog.UnknownLog.selector, bytes32(uint256(7))));
        log.setOperator(bytes32(uint256(7)), operator);
    }

    function test_setOperator_revertsOnZero() public {
        vm.expectRevert(AuditLog.ZeroAddress.selector);
        vm.prank(owner);
        log.setOperator(logId, address(0));
    }

    function test_setOwner_handsOverAndEmits() public {
        vm.expectEmit();
        emit AuditLog.OwnerChanged(logId, address(0xD00D));
        vm.prank(owner);
        log.setOwner(logId, address(0xD00D));
        (address o,) = log.logInfo(logId);
        vm.assertEq(o, address(0xD00D), "owner");
        vm.expectRevert(abi.encodeWithSelector(AuditLog.NotLogOwner.selector, logId, owner));
        vm.prank(owner);
        log.setOwner(logId, owner);
    }

    function test_setOwner_revertsOnZero() public {
        vm.expectRevert(AuditLog.ZeroAddress.selector);
        vm.prank(owner);
        log.setOwner(logId, address(0));
    }

    // --- anchor -------------------------------------------------------------------------------

    function test_anchor_firstCheckpointNeedsNoProof() public {
        bytes32[] memory leaves = Ref.makeLeaves(1, 5);
        bytes32 root = Ref.root(leaves);
        vm.expectEmit();
        emit AuditLog.Anchored(logId, 5, root);
        _anchor(5, root, _none());
        (uint64 size, bytes32 latestRoot) = log.latest(logId);
        vm.assertEq(size, 5, "size");
        vm.assertEq(latestRoot, root, "root");
        vm.assertEq(log.rootAt(logId, 5), root, "rootAt");
    }

    function test_anchor_revertsForNonOperator() public {
        vm.expectRevert(abi.encodeWithSelector(AuditLog.NotLogOperator.selector, logId, owner));
        vm.prank(owner);
        log.anchor(logId, 1, bytes32(uint256(1)), _none());
    }

    function test_anchor_revertsForUnknownLog() public {
        bytes32 unknown = bytes32(uint256(99));
        vm.expectRevert(abi.encodeWithSelector(AuditLog.UnknownLog.selector, unknown));
        log.anchor(unknown, 1, bytes32(uint256(1)), _none());
    }

    function test_anchor_revertsOnEmptyTreeOrZeroRoot() public {
        vm.expectRevert(AuditLog.EmptyCheckpoint.selector);
        _anchor(0, bytes32(uint256(1)), _none());
        vm.expectRevert(AuditLog.EmptyCheckpoint.selector);
        _anchor(1, bytes32(0), _none());
    }

    function test_anchor_revertsOnFirstCheckpointWithProof() public {
        bytes32[] memory proof = new bytes32[](1);
        vm.expectRevert(abi.encodeWithSelector(AuditLog.InvalidConsistencyProof.selector, 0, 3));
        _anchor(3, bytes32(uint256(1)), proof);
    }

    function test_anchor_acceptsExtensionWithProof() public {
        bytes32[] memory leaves = Ref.makeLeaves(2, 13);
        _anchor(6, Ref.root(leaves, 0, 6), _none());
        _anchor(13, Ref.root(leaves), Ref.consistency(leaves, 6, 13));
        (uint64 size, bytes32 root) = log.latest(logId);
        vm.assertEq(size, 13, "size");
        vm.assertEq(root, Ref.root(leaves), "root");
        vm.assertEq(log.rootAt(logId, 6), Ref.root(leaves, 0, 6), "old root kept");
    }

    function test_anchor_revertsOnSmallerSize() public {
        bytes32[] memory leaves = Ref.makeLeaves(3, 8);
        _anchor(8, Ref.root(leaves), _none());
        bytes32 smaller = Ref.root(leaves, 0, 7); // (sha256 is a call: compute before expecting)
        vm.expectRevert(abi.encodeWithSelector(AuditLog.SizeDecreased.selector, 8, 7));
        _anchor(7, smaller, _none());
    }

    function test_anchor_revertsOnSameSizeOtherRoot() public {
        bytes32[] memory leaves = Ref.makeLeaves(4, 8);
        bytes32 root = Ref.root(leaves);
        _anchor(8, root, _none());
        bytes32 other = bytes32(uint256(root) ^ 1);
        vm.expectRevert(abi.encodeWithSelector(AuditLog.RootMismatch.selector, 8, root, other));
        _anchor(8, other, _none());
    }

    function test_anchor_sameCheckpointAgainIsANoOp() public {
        bytes32[] memory leaves = Ref.makeLeaves(5, 8);
        _anchor(8, Ref.root(leaves), _none());
        _anchor(8, Ref.root(leaves), _none());
        (uint64 size,) = log.latest(logId);
        vm.assertEq(size, 8, "size unchanged");
    }

    function test_anchor_revertsOnForkedHistory() public {
        bytes32[] memory honest = Ref.makeLeaves(6, 16);
        bytes32[] memory forked = Ref.makeLeaves(6, 16);
        forked[3] = Ref.leaf("rewritten");
        _anchor(5, Ref.root(honest, 0, 5), _none());
        // A proof that is internally consistent for the forked tree must not extend the honest one.
        bytes32[] memory proof = Ref.consistency(forked, 5, 16);
        bytes32 forkedRoot = Ref.root(forked);
        vm.expectRevert(abi.encodeWithSelector(AuditLog.InvalidConsistencyProof.selector, 5, 16));
        _anchor(16, forkedRoot, proof);
    }

    function test_anchor_revertsOnProofForOtherSizes() public {
        bytes32[] memory leaves = Ref.makeLeaves(7, 20);
        _anchor(5, Ref.root(leaves, 0, 5), _none());
        bytes32[] memory proof = Ref.consistency(leaves, 6, 20);
        bytes32 root = Ref.root(leaves);
        vm.expectRevert(abi.encodeWithSelector(AuditLog.InvalidConsistencyProof.selector, 5, 20));
        _anchor(20, root, proof);
    }

    // --- verifyInclusion ------------------------------------------------------------------------

    function test_verifyInclusion_againstEveryAnchoredSize() public {
        bytes32[] memory leaves = Ref.makeLeaves(8, 11);
        _anchor(7, Ref.root(leaves, 0, 7), _none());
        _anchor(11, Ref.root(leaves), Ref.consistency(leaves, 7, 11));
        for (uint256 i; i < 7; ++i) {
            vm.assertTrue(
                log.verifyInclusion(logId, 7, uint64(i), leaves[i], Ref.inclusion(leaves, i, 0, 7)),
                "old size"
            );
        }
        for (uint256 i; i < 11; ++i) {
            vm.assertTrue(
                log.verifyInclusion(
                    logId, 11, uint64(i), leaves[i], Ref.inclusion(leaves, i, 0, 11)
                ),
                "new size"
            );
        }
    }

    function test_verifyInclusion_falseForUnanchoredSize() public {
        bytes32[] memory leaves = Ref.makeLeaves(9, 8);
        _anchor(8, Ref.root(leaves), _none());
        bytes32[] memory proof = Ref.inclusion(leaves, 2, 0, 4);
        vm.assertFalse(log.verifyInclusion(logId, 4, 2, leaves[2], proof), "size 4 not anchored");
    }

    // --- shared vectors (written by the Rust crate; pins both languages to the same answers) ---

    function test_vectors_fromRust() public view {
        string memory json =
            vm.readFile(string.concat(vm.projectRoot(), "/test/vectors/merkle.json"));
        uint256 n = vm.parseJsonUint(json, ".inclusion_count");
        for (uint256 i; i < n; ++i) {
            string memory k = string.concat(".inclusion[", vm.toString(i), "]");
            vm.assertTrue(
                proofs.verifyInclusion(
                    vm.parseJsonUint(json, string.concat(k, ".size")),
                    vm.parseJsonUint(json, string.concat(k, ".index")),
                    vm.parseJsonBytes32(json, string.concat(k, ".leaf_hash")),
                    vm.parseJsonBytes32(json, string.concat(k, ".root")),
                    vm.parseJsonBytes32Array(json, string.concat(k, ".proof"))
                ),
                string.concat("inclusion vector ", vm.toString(i))
            );
        }
        n = vm.parseJsonUint(json, ".consistency_count");
        for (uint256 i; i < n; ++i) {
            string memory k = string.concat(".consistency[", vm.toString(i), "]");
            vm.assertTrue(
                proofs.verifyConsistency(
                    vm.parseJsonUint(json, string.concat(k, ".first")),
                    vm.parseJsonUint(json, string.concat(k, ".second")),
                    vm.parseJsonBytes32(json, string.concat(k, ".first_root")),
                    vm.parseJsonBytes32(json, string.concat(k, ".second_root")),
                    vm.parseJsonBytes32Array(json, string.concat(k, ".proof"))
                ),
                string.concat("consistency vector ", vm.toString(i))
            );
        }
    }

    /// @dev The RFC 6962 reference tree: the Solidity reference reproduces its published roots.
    function test_referenceTree_rfc6962Roots() public pure {
        bytes32[] memory leaves = new bytes32[](8);
        leaves[0] = Ref.leaf(hex"");
        leaves[1] = Ref.leaf(hex"00");
        leaves[2] = Ref.leaf(hex"10");
        leaves[3] = Ref.leaf(hex"2021");
        leaves[4] = Ref.leaf(hex"3031");
        leaves[5] = Ref.leaf(hex"40414243");
        leaves[6] = Ref.leaf(hex"5051525354555657");
        leaves[7] = Ref.leaf(hex"606162636465666768696a6b6c6d6e6f");
        vm.assertEq(
            Ref.root(leaves),
            0x5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328,
            "root 8"
        );
        vm.assertEq(
            Ref.root(leaves, 0, 1),
            0x6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d,
            "root 1"
        );
        vm.assertEq(
            Ref.root(leaves, 0, 0),
            0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,
            "empty root"
        );
    }

    // --- fuzz -----------------------------------------------------------------------------------

    function testFuzz_inclusion_validProofVerifiesAndTamperingFails(
        uint256 seed,
        uint256 size,
        uint256 index,
        uint256 flip
    ) public view {
        size = bound(size, 1, 70);
        index = bound(index, 0, size - 1);
        bytes32[] memory leaves = Ref.makeLeaves(seed, size);
        bytes32 root = Ref.root(leaves);
        bytes32[] memory proof = Ref.inclusion(leaves, index, 0, size);
        vm.assertTrue(proofs.verifyInclusion(size, index, leaves[index], root, proof), "valid");

        // Any flipped bit of the leaf fails.
        bytes32 bit = bytes32(uint256(1) << (flip % 256));
        vm.assertFalse(
            proofs.verifyInclusion(size, index, leaves[index] ^ bit, root, proof), "tampered leaf"
        );
        // Any flipped bit of any proof element fails.
        if (proof.length > 0) {
            proof[(flip >> 8) % proof.length] ^= bit;
            vm.assertFalse(
                proofs.verifyInclusion(size, index, leaves[index], root, proof), "tampered proof"
            );
            proof[(flip >> 8) % proof.length] ^= bit;
        }
        // Another index of the same tree fails.
        uint256 other = (index + 1 + (flip % size)) % size;
        if (other != index) {
            vm.assertFalse(
                proofs.verifyInclusion(size, other, leaves[index], root, proof), "other index"
            );
        }
        // An index past the end fails.
        vm.assertFalse(
            proofs.verifyInclusion(size, size, leaves[index], root, proof), "index out of range"
        );
        // A proof one hash longer or shorter fails: the path length is fixed by index and size.
        bytes32[] memory longer = new bytes32[](proof.length + 1);
        for (uint256 i; i < proof.length; ++i) {
            longer[i] = proof[i];
        }
        longer[proof.length] = root;
        vm.assertFalse(proofs.verifyInclusion(size, index, leaves[index], root, longer), "longer");
        if (proof.length > 0) {
            bytes32[] memory shorter = new bytes32[](proof.length - 1);
            for (uint256 i; i < shorter.length; ++i) {
                shorter[i] = proof[i];
            }
            vm.assertFalse(
                proofs.verifyInclusion(size, index, leaves[index], root, shorter), "shorter"
            );
        }
    }

    function testFuzz_consistency_acceptsExtensionsRejectsTheRest(
        uint256 seed,
        uint256 first,
        uint256 second,
        uint256 flip
    ) public view {
        second = bound(second, 1, 70);
        first = bound(first, 1, second);
        bytes32[] memory leaves = Ref.makeLeaves(seed, second);
        bytes32 firstRoot = Ref.root(leaves, 0, first);
        bytes32 secondRoot = Ref.root(leaves);
        bytes32[] memory proof = Ref.consistency(leaves, first, second);
        vm.assertTrue(
            proofs.verifyConsistency(first, second, firstRoot, secondRoot, proof), "valid pair"
        );
        if (first == second) return;

        bytes32 bit = bytes32(uint256(1) << (flip % 256));
        vm.assertFalse(
            proofs.verifyConsistency(first, second, firstRoot ^ bit, secondRoot, proof),
            "tampered first root"
        );
        vm.assertFalse(
            proofs.verifyConsistency(first, second, firstRoot, secondRoot ^ bit, proof),
            "tampered second root"
        );
        proof[(flip >> 8) % proof.length] ^= bit;
        vm.assertFalse(
            proofs.verifyConsistency(first, second, firstRoot, secondRoot, proof), "tampered proof"
        );
        proof[(flip >> 8) % proof.length] ^= bit;
        // Reversed order (m > n) is never accepted.
        vm.assertFalse(
            proofs.verifyConsistency(second, first, secondRoot, firstRoot, proof), "reversed"
        );
        _assertForkRejected(seed, first, second, firstRoot, flip >> 16);
    }

    /// @dev A history that differs in one leaf before `first` is rejected.
    function _assertForkRejected(
        uint256 seed,
        uint256 first,
        uint256 second,
        bytes32 firstRoot,
        uint256 at
    ) private view {
        bytes32[] memory forked = Ref.makeLeaves(seed, second);
        forked[at % first] = Ref.leaf("fork");
        bytes32[] memory proof = Ref.consistency(forked, first, second);
        vm.assertFalse(
            proofs.verifyConsistency(first, second, firstRoot, Ref.root(forked), proof),
            "forked history"
        );
    }
}
