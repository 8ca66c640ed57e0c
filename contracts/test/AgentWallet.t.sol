// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {WalletFixture} from "./base/WalletFixture.sol";
import {TestToken} from "../src/devnet/TestToken.sol";
import {AgentWallet} from "../src/AgentWallet.sol";
import {AgentWalletFactory} from "../src/AgentWalletFactory.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @dev A forwarder: passes any call on, as a relayer, a bundler or a multicall would. What the
///      wallet executed through it cannot be read from the transaction's own calldata.
contract Relay {
    function forward(address target, bytes calldata data) external payable {
        (bool ok, bytes memory reason) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(reason, 0x20), mload(reason))
            }
        }
    }
}

/// @dev Always reverts with a recognisable reason.
contract Reverter {
    error Nope(uint256 code);

    fallback() external payable {
        revert Nope(42);
    }
}

contract AgentWalletTest is WalletFixture {
    struct Signed {
        AgentWallet.Call[] calls;
        uint256 nonce;
        uint64 validUntil;
        bytes agentSig;
        bytes cosignerSig;
    }

    function _signed(AgentWallet.Call[] memory calls, uint256 nonce)
        internal
        view
        returns (Signed memory s)
    {
        s.calls = calls;
        s.nonce = nonce;
        s.validUntil = uint64(block.timestamp + 60);
        bytes32 digest = wallet.executeDigest(calls, nonce, s.validUntil);
        s.agentSig = _sign(AGENT_KEY, digest);
        s.cosignerSig = _sign(COSIGNER_KEY, digest);
    }

    function _run(Signed memory s) internal {
        wallet.execute(s.calls, s.nonce, s.validUntil, s.agentSig, s.cosignerSig);
    }

    function _transfer(address to, uint256 amount) internal pure returns (bytes memory) {
        return abi.encodeCall(IERC20.transfer, (to, amount));
    }

    // --- execute: success paths ------------------------------------------------------------

    function test_execute_nativeTransfer() public {
        Signed memory s = _signed(_one(recipient, 1 ether, ""), 0);
        vm.expectEmit();
        emit AgentWallet.Executed(0, wallet.executeDigest(s.calls, 0, s.validUntil));
        _run(s);
        vm.assertEq(recipient.balance, 1 ether, "recipient paid");
        vm.assertEq(wallet.nextNonce(0), 1, "sequence bumped");
        vm.assertEq(wallet.backstopRemaining(address(0)), 9 ether, "native spend counted");
    }

    /// Attacker B hides an `execute` behind a forwarder, so the transaction's calldata is the
    /// relay's, not the wallet's: `Executed` still names the EIP-712 digest of the calls that
    /// ran, which is what the indexer matches with the approved decision (issue 29, H1).
    function test_execute_eventNamesItsDigestThroughARelay() public {
        Signed memory s = _signed(_one(recipient, 1 ether, ""), 0);
        bytes32 digest = wallet.executeDigest(s.calls, s.nonce, s.validUntil);
        Relay relay = new Relay();
        vm.expectEmit();
        emit AgentWallet.Executed(0, digest);
        relay.forward(
            address(wallet),
            abi.encodeCall(
                wallet.execute, (s.calls, s.nonce, s.validUntil, s.agentSig, s.cosignerSig)
            )
        );
        vm.assertEq(recipient.balance, 1 ether, "paid through the relay");
        // executeAsAgent names it too.
        Signed memory t = _signed(_one(recipient, 1, ""), 1);
        digest = wallet.executeDigest(t.calls, 1, t.validUntil);
        vm.expectEmit();
        emit AgentWallet.Executed(1, digest);
        vm.prank(agent);
        wallet.executeAsAgent(t.calls, 1, t.validUntil, t.cosignerSig);
    }

    function test_execute_erc20Transfer() public {
        _run(_signed(_one(address(token), 0, _transfer(recipient, 5e18)), 0));
        vm.assertEq(token.balanceOf(recipient), 5e18, "recipient paid");
        vm.assertEq(wallet.backstopRemaining(address(token)), 995e18, "token spend counted");
    }

    function test_execute_batchIsAllOrNothing() public {
        Reverter r = new Reverter();
        AgentWallet.Call[] memory calls = new AgentWallet.Call[](2);
        calls[0] = AgentWallet.Call(recipient, 1 ether, "");
        calls[1] = AgentWallet.Call(address(r), 1, "");
        Signed memory s = _signed(calls, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                AgentWallet.CallFailed.selector,
                1,
                abi.encodeWithSelector(Reverter.Nope.selector, 42)
            )
        );
        _run(s);
        vm.assertEq(recipient.balance, 0, "first call rolled back");
        vm.assertEq(wallet.nextNonce(0), 0, "nonce not used");
    }

    function test_execute_twoDimensionalNoncesAreIndependent() public {
        uint256 keyed = (uint256(7) << 64) | 0;
        _run(_signed(_one(recipient, 1, ""), keyed));
        vm.assertEq(wallet.nextNonce(7), (uint256(7) << 64) | 1, "key 7 advanced");
        vm.assertEq(wallet.nextNonce(0), 0, "key 0 untouched");
        _run(_signed(_one(recipient, 1, ""), 0));
        Signed memory s = _signed(_one(recipient, 1, ""), (uint256(7) << 64) | 5);
        vm.expectRevert(abi.encodeWithSelector(AgentWallet.InvalidNonce.selector, s.nonce, 1));
        _run(s);
    }

    function test_digest_matchesEip712Spec() public view {
        AgentWallet.Call[] memory calls = _one(recipient, 3, hex"c0ffee");
        bytes32 callHash = keccak256(
            abi.encode(
                keccak256("Call(address to,uint256 value,bytes data)"),
                recipient,
                uint256(3),
                keccak256(hex"c0ffee")
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Execute(Call[] calls,uint256 nonce,uint64 validUntil)Call(address to,uint256 value,bytes data)"
                ),
                keccak256(abi.encodePacked(callHash)),
                uint256(9),
                uint64(1234)
            )
        );
        bytes32 domain = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("Chaperone AgentWallet"),
                keccak256("1"),
                block.chainid,
                address(wallet)
            )
        );
        vm.assertEq(
            wallet.executeDigest(calls, 9, 1234),
            keccak256(abi.encodePacked(hex"1901", domain, structHash)),
            "digest"
        );
    }

    // --- execute: revert paths ---------------------------------------------------------------

    function test_execute_revertsWhenFrozen() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        vm.prank(owner);
        wallet.freeze();
        vm.expectRevert(AgentWallet.Frozen.selector);
        _run(s);
    }

    function test_execute_revertsWhenExpired() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        vm.warp(s.validUntil + 1);
        vm.expectRevert(abi.encodeWithSelector(AgentWallet.Expired.selector, s.validUntil));
        _run(s);
    }

    function test_execute_replaySameNonceReverts() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        _run(s);
        vm.expectRevert(abi.encodeWithSelector(AgentWallet.InvalidNonce.selector, 0, 1));
        _run(s);
    }

    function test_execute_replayOnOtherChainReverts() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        vm.chainId(block.chainid + 1);
        vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
        _run(s);
    }

    function test_execute_replayOnOtherWalletReverts() public {
        AgentWallet other =
            AgentWallet(payable(factory.createWallet(owner, agent, cosigner, bytes32(uint256(1)))));
        vm.deal(address(other), 1 ether);
        vm.prank(owner);
        other.setBackstop(address(0), 1 ether, 1 days);
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
        other.execute(s.calls, s.nonce, s.validUntil, s.agentSig, s.cosignerSig);
    }

    function test_execute_revertsWithoutCosignerSignature() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        s.cosignerSig = "";
        vm.expectRevert(AgentWallet.InvalidCosignerSignature.selector);
        _run(s);
    }

    function test_execute_revertsWithAgentSignatureTwice() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        s.cosignerSig = s.agentSig;
        vm.expectRevert(AgentWallet.InvalidCosignerSignature.selector);
        _run(s);
    }

    function test_execute_revertsWithCosignerSignatureTwice() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        s.agentSig = s.cosignerSig;
        vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
        _run(s);
    }

    function test_execute_revertsOnSignatureOverOtherCalls() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        s.calls[0].value = 2;
        vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
        _run(s);
    }

    function test_execute_revertsOnHighS() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        s.agentSig = _highS(s.agentSig);
        vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
        _run(s);
        s = _signed(_one(recipient, 1, ""), 0);
        s.cosignerSig = _highS(s.cosignerSig);
        vm.expectRevert(AgentWallet.InvalidCosignerSignature.selector);
        _run(s);
    }

    function test_execute_revertsOnInvalidV() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        for (uint8 v; v < 2; ++v) {
            bytes memory bad = s.agentSig;
            bad[64] = bytes1(v == 0 ? 0 : 29);
            vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
            wallet.execute(s.calls, s.nonce, s.validUntil, bad, s.cosignerSig);
        }
    }

    function test_execute_revertsOnMalformedSignatureLength() public {
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        s.agentSig = abi.encodePacked(s.agentSig, bytes1(0));
        vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
        _run(s);
    }

    function test_execute_revertsBeyondNativeBackstop() public {
        _run(_signed(_one(recipient, 6 ether, ""), 0));
        Signed memory s = _signed(_one(recipient, 5 ether, ""), 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                AgentWallet.BackstopExceeded.selector, address(0), 5 ether, 4 ether
            )
        );
        _run(s);
    }

    function test_execute_backstopCountsEveryCallInABatch() public {
        AgentWallet.Call[] memory calls = new AgentWallet.Call[](3);
        for (uint256 i; i < 3; ++i) {
            calls[i] = AgentWallet.Call(recipient, 4 ether, "");
        }
        Signed memory s = _signed(calls, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                AgentWallet.BackstopExceeded.selector, address(0), 4 ether, 2 ether
            )
        );
        _run(s);
    }

    function test_execute_revertsBeyondTokenBackstop_transfer() public {
        Signed memory s = _signed(_one(address(token), 0, _transfer(recipient, 1001e18)), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                AgentWallet.BackstopExceeded.selector, address(token), 1001e18, 1000e18
            )
        );
        _run(s);
    }

    function test_execute_approvalCountsAsSpend() public {
        bytes memory data = abi.encodeCall(IERC20.approve, (recipient, type(uint256).max));
        Signed memory s = _signed(_one(address(token), 0, data), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                AgentWallet.BackstopExceeded.selector, address(token), type(uint256).max, 1000e18
            )
        );
        _run(s);
    }

    function test_execute_approveAndTransferFromAccumulate() public {
        bytes memory approve = abi.encodeCall(IERC20.approve, (recipient, 600e18));
        bytes memory from =
            abi.encodeCall(IERC20.transferFrom, (address(wallet), recipient, 500e18));
        AgentWallet.Call[] memory calls = new AgentWallet.Call[](2);
        calls[0] = AgentWallet.Call(address(token), 0, approve);
        calls[1] = AgentWallet.Call(address(token), 0, from);
        Signed memory s = _signed(calls, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                AgentWallet.BackstopExceeded.selector, address(token), 500e18, 400e18
            )
        );
        _run(s);
    }

    function test_execute_increaseAllowanceCounts() public {
        bytes memory data = abi.encodeWithSelector(0x39509351, recipient, 1001e18);
        Signed memory s = _signed(_one(address(token), 0, data), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                AgentWallet.BackstopExceeded.selector, address(token), 1001e18, 1000e18
            )
        );
        _run(s);
    }

    function test_execute_shortSpendingCalldataCountsAsUnlimited() public {
        bytes memory data =
            abi.encodePacked(IERC20.transfer.selector, bytes32(uint256(uint160(recipient))));
        Signed memory s = _signed(_one(address(token), 0, data), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                AgentWallet.BackstopExceeded.selector, address(token), type(uint256).max, 1000e18
            )
        );
        _run(s);
    }

    function test_execute_unconfiguredTokenIsDenied() public {
        TestToken other = new TestToken();
        other.mint(address(wallet), 10);
        Signed memory s = _signed(_one(address(other), 0, _transfer(recipient, 1)), 0);
        vm.expectRevert(
            abi.encodeWithSelector(AgentWallet.BackstopExceeded.selector, address(other), 1, 0)
        );
        _run(s);
    }

    function test_execute_backstopWindowResetsAfterPeriod() public {
        _run(_signed(_one(recipient, 10 ether, ""), 0));
        // Windows are aligned to multiples of the period: warp to the last second of this one.
        vm.warp(block.timestamp - block.timestamp % 1 days + 1 days - 1);
        Signed memory s = _signed(_one(recipient, 1, ""), 1);
        vm.expectRevert(
            abi.encodeWithSelector(AgentWallet.BackstopExceeded.selector, address(0), 1, 0)
        );
        _run(s);
        vm.warp(block.timestamp + 1);
        _run(_signed(_one(recipient, 10 ether, ""), 1));
        vm.assertEq(recipient.balance, 20 ether, "new window");
    }

    // --- owner ---------------------------------------------------------------------------------

    function test_owner_isImmutableCloneArgument() public view {
        vm.assertEq(wallet.owner(), owner, "owner");
        vm.assertEq(wallet.agent(), agent, "agent");
        vm.assertEq(wallet.cosigner(), cosigner, "cosigner");
    }

    function test_ownerFunctions_revertForOthers() public {
        bytes memory err = abi.encodeWithSelector(AgentWallet.NotOwner.selector, agent);
        vm.startPrank(agent);
        vm.expectRevert(err);
        wallet.setAgent(agent);
        vm.expectRevert(err);
        wallet.setCosigner(agent);
        vm.expectRevert(err);
        wallet.setBackstop(address(0), 1, 1);
        vm.expectRevert(err);
        wallet.freeze();
        vm.expectRevert(err);
        wallet.unfreeze();
        vm.expectRevert(err);
        wallet.withdraw(address(0), agent, 1);
        vm.stopPrank();
    }

    function test_setAgentAndCosigner_rotateKeys() public {
        address newAgent = vm.addr(0x1234);
        vm.startPrank(owner);
        vm.expectEmit();
        emit AgentWallet.AgentChanged(newAgent);
        wallet.setAgent(newAgent);
        vm.expectEmit();
        emit AgentWallet.CosignerChanged(address(0xC0));
        wallet.setCosigner(address(0xC0));
        vm.expectRevert(AgentWallet.ZeroAddress.selector);
        wallet.setAgent(address(0));
        vm.expectRevert(AgentWallet.ZeroAddress.selector);
        wallet.setCosigner(address(0));
        vm.stopPrank();
        // Signatures from the old agent no longer execute.
        Signed memory s = _signed(_one(recipient, 1, ""), 0);
        vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
        _run(s);
    }

    function test_setBackstop_validatesAndEmits() public {
        vm.startPrank(owner);
        vm.expectRevert(AgentWallet.InvalidBackstop.selector);
        wallet.setBackstop(address(0), uint256(type(uint96).max) + 1, 1);
        vm.expectRevert(AgentWallet.InvalidBackstop.selector);
        wallet.setBackstop(address(0), 1, 0);
        vm.expectEmit();
        emit AgentWallet.BackstopSet(address(0), 5, 60);
        wallet.setBackstop(address(0), 5, 60);
        vm.stopPrank();
        AgentWallet.Backstop memory b = wallet.backstop(address(0));
        vm.assertEq(b.limit, 5, "limit");
        vm.assertEq(b.period, 60, "period");
    }

    function test_freezeUnfreeze_emit() public {
        vm.startPrank(owner);
        vm.expectEmit();
        emit AgentWallet.FrozenSet(true);
        wallet.freeze();
        vm.assertTrue(wallet.frozen(), "frozen");
        vm.expectEmit();
        emit AgentWallet.FrozenSet(false);
        wallet.unfreeze();
        vm.assertFalse(wallet.frozen(), "unfrozen");
        vm.stopPrank();
    }

    function test_withdraw_worksWhileFrozen() public {
        address reverter = address(new Reverter());
        vm.startPrank(owner);
        wallet.freeze();
        vm.expectEmit();
        emit AgentWallet.Withdrawn(address(0), owner, 2 ether);
        wallet.withdraw(address(0), owner, 2 ether);
        wallet.withdraw(address(token), owner, 7e18);
        vm.expectRevert(AgentWallet.ZeroAddress.selector);
        wallet.withdraw(address(0), address(0), 1);
        vm.expectRevert(AgentWallet.WithdrawFailed.selector);
        wallet.withdraw(address(0), reverter, 1);
        vm.stopPrank();
        vm.assertEq(owner.balance, 2 ether, "native withdrawn");
        vm.assertEq(token.balanceOf(owner), 7e18, "token withdrawn");
    }

    // --- receiving -----------------------------------------------------------------------------

    function test_receive_acceptsEtherAndEmits() public {
        vm.deal(address(this), 1 ether);
        vm.expectEmit();
        emit AgentWallet.Received(address(this), 1 ether);
        (bool ok,) = address(wallet).call{value: 1 ether}("");
        vm.assertTrue(ok, "received");
    }

    function test_receiverHooksAndInterfaces() public view {
        vm.assertTrue(
            wallet.onERC721Received(address(0), address(0), 0, "") == bytes4(0x150b7a02), "721"
        );
        vm.assertTrue(
            wallet.onERC1155Received(address(0), address(0), 0, 0, "") == bytes4(0xf23a6e61), "1155"
        );
        vm.assertTrue(
            wallet.onERC1155BatchReceived(
                address(0), address(0), new uint256[](0), new uint256[](0), ""
            ) == bytes4(0xbc197c81),
            "1155 batch"
        );
        vm.assertTrue(wallet.supportsInterface(0x01ffc9a7), "165");
        vm.assertTrue(wallet.supportsInterface(0x150b7a02), "721 receiver");
        vm.assertTrue(wallet.supportsInterface(0x4e2312e0), "1155 receiver");
        vm.assertTrue(wallet.supportsInterface(0x1626ba7e), "1271");
        vm.assertFalse(wallet.supportsInterface(0xffffffff), "none");
    }

    // --- factory and initialisation -------------------------------------------------------------

    function test_factory_predictMatchesAndEmits() public {
        bytes32 salt = keccak256("salt");
        address predicted = factory.predict(owner, agent, cosigner, salt);
        vm.assertTrue(predicted.code.length == 0, "not yet deployed");
        vm.expectEmit();
        emit AgentWalletFactory.WalletCreated(predicted, owner, agent, cosigner, salt);
        address created = factory.createWallet(owner, agent, cosigner, salt);
        vm.assertEq(created, predicted, "predicted");
        // Other keys give another address: nobody can occupy a predicted address with their keys.
        vm.assertTrue(factory.predict(owner, agent, address(1), salt) != predicted, "keys in salt");
    }

    function test_factory_sameArgumentsTwiceReverts() public {
        factory.createWallet(owner, agent, cosigner, bytes32(uint256(5)));
        vm.expectRevert();
        factory.createWallet(owner, agent, cosigner, bytes32(uint256(5)));
    }

    function test_factory_rejectsZeroKeys() public {
        vm.expectRevert(AgentWallet.ZeroAddress.selector);
        factory.createWallet(address(0), agent, cosigner, 0);
        vm.expectRevert(AgentWallet.ZeroAddress.selector);
        factory.createWallet(owner, address(0), cosigner, 0);
        vm.expectRevert(AgentWallet.ZeroAddress.selector);
        factory.createWallet(owner, agent, address(0), 0);
    }

    function test_initialize_onlyOnce() public {
        vm.expectRevert(AgentWallet.AlreadyInitialized.selector);
        wallet.initialize(agent, cosigner, address(0), 0, 0, 0, 0, 0);
        AgentWallet implementation = AgentWallet(payable(factory.implementation()));
        vm.expectRevert(AgentWallet.AlreadyInitialized.selector);
        implementation.initialize(agent, cosigner, address(0), 0, 0, 0, 0, 0);
    }

    // --- fuzz ----------------------------------------------------------------------------------

    function testFuzz_backstop_neverExceeded(uint256[5] memory amounts, uint256[5] memory gaps)
        public
    {
        uint256 nonce;
        for (uint256 i; i < 5; ++i) {
            uint256 amount = bound(amounts[i], 0, 12 ether);
            vm.warp(block.timestamp + bound(gaps[i], 0, 2 days));
            uint256 remaining = wallet.backstopRemaining(address(0));
            Signed memory s = _signed(_one(recipient, amount, ""), nonce);
            if (amount > remaining) {
                vm.expectRevert(
                    abi.encodeWithSelector(
                        AgentWallet.BackstopExceeded.selector, address(0), amount, remaining
                    )
                );
                _run(s);
            } else {
                _run(s);
                ++nonce;
            }
            AgentWallet.Backstop memory b = wallet.backstop(address(0));
            vm.assertLe(b.spent, b.limit, "spent within limit");
        }
    }

    function testFuzz_execute_onlyBothKeysExecute(
        bool realAgent,
        bool realCosigner,
        uint256 agentKey,
        uint256 cosignerKey
    ) public {
        agentKey = realAgent ? AGENT_KEY : bound(agentKey, 1, SECP256K1_N - 1);
        cosignerKey = realCosigner ? COSIGNER_KEY : bound(cosignerKey, 1, SECP256K1_N - 1);
        AgentWallet.Call[] memory calls = _one(recipient, 1, "");
        uint64 validUntil = uint64(block.timestamp + 1);
        bytes32 digest = wallet.executeDigest(calls, 0, validUntil);
        bytes memory a = _sign(agentKey, digest);
        bytes memory c = _sign(cosignerKey, digest);
        bool valid = agentKey == AGENT_KEY && cosignerKey == COSIGNER_KEY;
        if (!valid) vm.expectRevert();
        wallet.execute(calls, 0, validUntil, a, c);
        vm.assertEq(recipient.balance, valid ? 1 : 0, "paid only with both keys");
    }

    receive() external payable {}
}
