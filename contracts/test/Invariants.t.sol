// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {TestBase} from "./base/TestBase.sol";
import {WalletFixture} from "./base/WalletFixture.sol";
import {MerkleReference as Ref} from "./base/MerkleReference.sol";
import {AgentWallet} from "../src/AgentWallet.sol";
import {AuditLog} from "../src/AuditLog.sol";
import {Vm} from "./base/Vm.sol";
import {Authorizations} from "./base/Authorizations.sol";
import {TestToken} from "../src/devnet/TestToken.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @dev Attacker B: holds both keys and drives a wallet with random payments by every path
///      (native and ERC-20 `execute`, EIP-3009 authorizations through EIP-1271 with random slots,
///      amounts and periods), payments signed by random subsets of the keys, and clock moves.
///      It measures what actually leaves the wallet per token per backstop period.
contract WalletHandler {
    using Authorizations for AgentWallet;

    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    AgentWallet internal immutable wallet;
    TestToken internal immutable token;
    uint256 internal immutable agentKey;
    uint256 internal immutable cosignerKey;
    address public constant RECIPIENT = address(0xBEEF);
    uint256 public constant PERIOD = 1 days;

    uint256 public executedWithoutBothSignatures;
    uint256 public paidWithBothSignatures;
    /// What left the wallet, per token, per period index.
    mapping(address token => mapping(uint256 period => uint256)) public outInPeriod;
    uint256[] public periods;
    mapping(uint256 => bool) internal _periodSeen;

    constructor(AgentWallet wallet_, TestToken token_, uint256 agentKey_, uint256 cosignerKey_) {
        wallet = wallet_;
        token = token_;
        agentKey = agentKey_;
        cosignerKey = cosignerKey_;
    }

    function periodCount() external view returns (uint256) {
        return periods.length;
    }

    function pay(uint256 amount, uint8 signers, uint256 strangerKey) external {
        amount = amount % 15 ether;
        strangerKey = 1 + strangerKey % 1e30;
        // The fuzzer draws constants from the bytecode, the wallet's own keys among them: a
        // "stranger" holding one of them is no stranger.
        if (strangerKey == agentKey || strangerKey == cosignerKey) strangerKey = 1e30 + 1;
        AgentWallet.Call[] memory calls = new AgentWallet.Call[](1);
        calls[0] = AgentWallet.Call(RECIPIENT, amount, "");
        uint256 nonce = wallet.nextNonce(0);
        uint64 validUntil = uint64(block.timestamp + 60);
        bytes32 digest = wallet.executeDigest(calls, nonce, validUntil);
        bool both = signers % 4 == 0;
        bytes memory a = _sign(signers % 4 == 1 ? strangerKey : agentKey, digest);
        bytes memory c = _sign(signers % 4 == 2 ? strangerKey : cosignerKey, digest);
        if (signers % 4 == 3) c = "";
        uint256 before = address(wallet).balance;
        try wallet.execute(calls, nonce, validUntil, a, c) {
            if (both) paidWithBothSignatures += amount;
            else executedWithoutBothSignatures++;
        } catch {}
        _out(address(0), before - address(wallet).balance);
    }

    /// An ERC-20 transfer or approval-then-pull through `execute`, both keys signing.
    function payToken(uint256 amount, bool approve) external {
        amount = amount % 1500e18;
        AgentWallet.Call[] memory calls = new AgentWallet.Call[](1);
        calls[0] = AgentWallet.Call(
            address(token),
            0,
            approve
                ? abi.encodeCall(IERC20.approve, (RECIPIENT, amount))
                : abi.encodeCall(IERC20.transfer, (RECIPIENT, amount))
        );
        uint256 nonce = wallet.nextNonce(0);
        uint64 validUntil = uint64(block.timestamp + 60);
        bytes32 digest = wallet.executeDigest(calls, nonce, validUntil);
        uint256 before = token.balanceOf(address(wallet));
        try wallet.execute(
            calls, nonce, validUntil, _sign(agentKey, digest), _sign(cosignerKey, digest)
        ) {
            if (approve) {
                vm.prank(RECIPIENT);
                token.transferFrom(address(wallet), RECIPIENT, amount);
            }
        } catch {}
        _out(address(token), before - token.balanceOf(address(wallet)));
    }

    /// An EIP-3009 authorization through EIP-1271, both keys signing, with any slot, amount,
    /// period offset and lifetime the attacker likes.
    function payByAuthorization(uint256 amount, uint16 slot, uint8 periodOffset, uint256 lifetime)
        external
    {
        AgentWallet.Authorization memory a =
            wallet.authorization(token, RECIPIENT, amount % 200e18, slot % 6);
        a.nonce = bytes32(uint256(a.nonce) + (uint256(periodOffset % 3) << 192));
        a.validBefore = block.timestamp + 1 + lifetime % 10 days;
        uint256 before = token.balanceOf(address(wallet));
        wallet.pay(a, wallet.sign(a, agentKey, cosignerKey));
        _out(address(token), before - token.balanceOf(address(wallet)));
    }

    function wait(uint256 seconds_) external {
        vm.warp(block.timestamp + seconds_ % 2 days);
    }

    function _out(address t, uint256 amount) internal {
        uint256 p = block.timestamp / PERIOD;
        outInPeriod[t][p] += amount;
        if (!_periodSeen[p]) {
            _periodSeen[p] = true;
            periods.push(p);
        }
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
        vm.prank(owner);
        wallet.setAuthorizationBudget(address(token), 100e18, 3, 0);
        handler = new WalletHandler(wallet, token, AGENT_KEY, COSIGNER_KEY);
        targetContract(address(handler));
    }

    function invariant_noExecutionWithoutBothSignatures() public view {
        vm.assertEq(handler.executedWithoutBothSignatures(), 0, "executed without both");
        vm.assertEq(
            handler.RECIPIENT().balance, handler.paidWithBothSignatures(), "only co-signed pay"
        );
    }

    /// With both keys in the fuzzer's hands, what leaves per token per period, by `execute` and
    /// EIP-1271 together, never exceeds the wallet's period bound.
    function invariant_outPerPeriodNeverExceedsBound() public view {
        uint256 nativeBound = wallet.periodBound(address(0));
        uint256 tokenBound = wallet.periodBound(address(token));
        vm.assertEq(tokenBound, 1000e18 + 300e18, "token bound");
        for (uint256 i; i < handler.periodCount(); ++i) {
            uint256 p = handler.periods(i);
            vm.assertLe(handler.outInPeriod(address(0), p), nativeBound, "native per period");
            vm.assertLe(handler.outInPeriod(address(token), p), tokenBound, "token per period");
        }
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
