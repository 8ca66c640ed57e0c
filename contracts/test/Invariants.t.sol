// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {TestBase} from "./base/TestBase.sol";
import {WalletFixture} from "./base/WalletFixture.sol";
import {MerkleReference as Ref} from "./base/MerkleReference.sol";
import {AgentWallet} from "../src/AgentWallet.sol";
import {AuditLog} from "../src/AuditLog.sol";
import {Vm} from "./base/Vm.sol";

/// @dev Drives a wallet with random payments signed by random subsets of the right keys, and
///      random clock moves; remembers what should have happened.
contract WalletHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    AgentWallet internal immutable wallet;
    uint256 internal immutable agentKey;
    uint256 internal immutable cosignerKey;
    address public constant RECIPIENT = address(0xBEEF);

    uint256 public executedWithoutBothSignatures;
    uint256 public paidWithBothSignatures;

    constructor(AgentWallet wallet_, uint256 agentKey_, uint256 cosignerKey_) {
        wallet = wallet_;
        agentKey = agentKey_;
        cosignerKey = cosignerKey_;
    }

    function pay(uint256 amount, uint8 signers, uint256 strangerKey) external {
        amount = amount % 15 ether;
        strangerKey = 1 + strangerKey % 1e30;
        AgentWallet.Call[] memory calls = new AgentWallet.Call[](1);
        calls[0] = AgentWallet.Call(RECIPIENT, amount, "");
        uint256 nonce = wallet.nextNonce(0);
        uint64 validUntil = uint64(block.timestamp + 60);
        bytes32 digest = wallet.executeDigest(calls, nonce, validUntil);
        bool both = signers % 4 == 0;
        bytes memory a = _sign(signers % 4 == 1 ? strangerKey : agentKey, digest);
        bytes memory c = _sign(signers % 4 == 2 ? strangerKey : cosignerKey, digest);
        if (signers % 4 == 3) c = "";
        try wallet.execute(calls, nonce, validUntil, a, c) {
            if (both) paidWithBothSignatures += amount;
            else executedWithoutBothSignatures++;
        } catch {}
    }

    function wait(uint256 seconds_) external {
        vm.warp(block.timestamp + seconds_ % 2 days);
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }
}

contract WalletInvariants is WalletFixture {
    WalletHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new WalletHandler(wallet, AGENT_KEY, COSIGNER_KEY);
        targetContract(address(handler));
    }

    function invariant_noExecutionWithoutBothSignatures() public view {
        vm.assertEq(handler.executedWithoutBothSignatures(), 0, "executed without both");
        vm.assertEq(
            handler.RECIPIENT().balance, handler.paidWithBothSignatures(), "only co-signed pay"
        );
    }

    function invariant_spentInPeriodNeverExceedsBackstop() public view {
        AgentWallet.Backstop memory b = wallet.backstop(address(0));
        vm.assertLe(b.spent, b.limit, "spent <= limit");
    }
}

/// @dev Grows an honest tree by random amounts, anchors some sizes, and tries forks and
///      shrinking checkpoints in between.
contract LogHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant MAX_LEAVES = 64;

    AuditLog public immutable log;
    bytes32 public immutable logId;
    bytes32[] internal _leaves;
    uint64[] public anchoredSizes;
    mapping(uint64 => bytes32) public rootWhenAnchored;
    uint64 public maxSeenSize;
    uint256 public forksAccepted;

    constructor() {
        log = new AuditLog();
        logId = log.createLog(address(this));
    }

    function append(uint8 count) external {
        for (uint256 i; i < count % 8 && _leaves.length < MAX_LEAVES; ++i) {
            _leaves.push(Ref.leaf(abi.encodePacked("leaf", _leaves.length)));
        }
    }

    function anchorHonest() external {
        (uint64 size,) = log.latest(logId);
        uint64 n = uint64(_leaves.length);
        if (n == 0 || n < size) return;
        bytes32[] memory proof = size == 0 ? new bytes32[](0) : Ref.consistency(_leaves, size, n);
        log.anchor(logId, n, Ref.root(_leaves), proof);
        if (rootWhenAnchored[n] == bytes32(0)) anchoredSizes.push(n);
        rootWhenAnchored[n] = Ref.root(_leaves);
        _seen();
    }

    function anchorFork(uint256 at, uint8 extra) external {
        (uint64 size,) = log.latest(logId);
        if (size == 0) return;
        uint256 n = size + extra % 8 + 1;
        bytes32[] memory forked = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            forked[i] = i < _leaves.length ? _leaves[i] : Ref.leaf(abi.encodePacked("f", i));
        }
        forked[at % size] = Ref.leaf(abi.encodePacked("forged", at));
        try log.anchor(logId, uint64(n), Ref.root(forked), Ref.consistency(forked, size, n)) {
            forksAccepted++;
        } catch {}
        _seen();
    }

    function anchorSmaller(uint64 by) external {
        (uint64 size,) = log.latest(logId);
        if (size < 2) return;
        uint64 m = size - 1 - by % (size - 1);
        try log.anchor(logId, m, Ref.root(_leaves, 0, m), new bytes32[](0)) {
            forksAccepted++;
        } catch {}
        _seen();
    }

    function anchoredCount() external view returns (uint256) {
        return anchoredSizes.length;
    }

    function _seen() internal {
        (uint64 size,) = log.latest(logId);
        if (size > maxSeenSize) maxSeenSize = size;
    }
}

contract LogInvariants is TestBase {
    LogHandler internal handler;

    function setUp() public {
        handler = new LogHandler();
        targetContract(address(handler));
    }

    function invariant_anchoredSizeNeverShrinks() public view {
        (uint64 size,) = handler.log().latest(handler.logId());
        vm.assertEq(size, handler.maxSeenSize(), "latest is the largest ever anchored");
        vm.assertEq(handler.forksAccepted(), 0, "no fork or shrink accepted");
    }

    function invariant_oldRootsNeverChange() public view {
        for (uint256 i; i < handler.anchoredCount(); ++i) {
            uint64 size = handler.anchoredSizes(i);
            vm.assertEq(
                handler.log().rootAt(handler.logId(), size),
                handler.rootWhenAnchored(size),
                "root at an anchored size is fixed"
            );
        }
    }
}
