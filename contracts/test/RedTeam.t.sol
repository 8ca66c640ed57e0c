// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {WalletFixture} from "./base/WalletFixture.sol";
import {Authorizations} from "./base/Authorizations.sol";
import {
    TestNft,
    TestMultiToken,
    TestPayableToken,
    TestMulticallToken,
    TestLegacyToken
} from "./base/AttackTokens.sol";
import {TestToken} from "../src/devnet/TestToken.sol";
import {Permit2} from "../src/devnet/Permit2.sol";
import {UniversalSigValidator} from "../src/devnet/UniversalSigValidator.sol";
import {AgentWallet} from "../src/AgentWallet.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC1155} from "@openzeppelin/contracts/token/ERC1155/IERC1155.sol";
import {IERC1363} from "@openzeppelin/contracts/interfaces/IERC1363.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";

/// @notice The red team: attacker B holds the agent key and the co-signer key and tries to move
///         value past the on-chain backstop by every path the review found. Each test is the
///         attack as the attacker would run it, asserting that it fails (and, where a
///         legitimate path exists, that it still works).
contract RedTeamTest is WalletFixture {
    using Authorizations for AgentWallet;

    address internal constant THIEF = address(0x7111EF);

    /// @dev Both stolen keys sign anything.
    function _steal(AgentWallet.Call[] memory calls, uint256 nonce) internal {
        _execute(wallet, calls, nonce);
    }

    /// @dev `slots` EIP-3009 and as many Permit2 authorizations of at most `maxValue`.
    function _budget(uint256 maxValue, uint16 slots) internal {
        vm.prank(owner);
        wallet.setAuthorizationBudget(address(token), maxValue, slots, slots);
    }

    // --- 1. EIP-1271 ----------------------------------------------------------------------

    /// The review's attack: both keys sign `AgentMessage(hash)` for an EIP-3009 authorization of
    /// the whole balance, in the old 130-byte format. Refused: the wallet cannot see what a bare
    /// hash moves.
    function test_attack1271_bareHashOfWholeBalanceIsRefused() public {
        _budget(100e18, 3);
        AgentWallet.Authorization memory a =
            wallet.authorization(token, THIEF, token.balanceOf(address(wallet)), 0);
        bytes32 digest = wallet.messageDigest(wallet.hash(a));
        bytes memory bare = abi.encodePacked(_sign(AGENT_KEY, digest), _sign(COSIGNER_KEY, digest));
        vm.assertTrue(wallet.isValidSignature(wallet.hash(a), bare) == bytes4(0xffffffff), "bare");
        vm.assertFalse(wallet.pay(a, bare), "token refused the bare signature");
        vm.assertEq(token.balanceOf(THIEF), 0, "nothing left");
    }

    /// The same authorization carried in full but above the per-authorization cap.
    function test_attack1271_overCapIsRefused() public {
        _budget(100e18, 3);
        AgentWallet.Authorization memory a = wallet.authorization(token, THIEF, 100e18 + 1, 0);
        vm.assertFalse(wallet.pay(a, wallet.sign(a, AGENT_KEY, COSIGNER_KEY)), "over cap");
        vm.assertEq(token.balanceOf(THIEF), 0, "nothing left");
    }

    /// A token with a backstop but no authorization budget: EIP-1271 is off by default.
    function test_attack1271_offByDefault() public {
        AgentWallet.Authorization memory a = wallet.authorization(token, THIEF, 1, 0);
        vm.assertFalse(wallet.pay(a, wallet.sign(a, AGENT_KEY, COSIGNER_KEY)), "no budget");
    }

    /// An EIP-2612 permit of everything to the thief, through the token's bytes-signature
    /// overload (as FiatTokenV2_2 has): the wallet cannot read a permit, so it never signs one.
    function test_attack1271_permitIsRefused() public {
        _budget(100e18, 3);
        bytes32 permitHash = keccak256(
            abi.encodePacked(
                hex"1901",
                token.DOMAIN_SEPARATOR(),
                keccak256(
                    abi.encode(
                        keccak256(
                            "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                        ),
                        address(wallet),
                        THIEF,
                        type(uint256).max,
                        uint256(0),
                        block.timestamp + 60
                    )
                )
            )
        );
        bytes32 digest = wallet.messageDigest(permitHash);
        bytes memory sig = abi.encodePacked(_sign(AGENT_KEY, digest), _sign(COSIGNER_KEY, digest));
        // Dressed up as an authorization of 1 unit, the recomputed hash differs from the permit's.
        sig = abi.encodePacked(sig, abi.encode(wallet.authorization(token, THIEF, 1, 0)));
        vm.expectRevert(TestToken.InvalidSignature.selector);
        token.permit(address(wallet), THIEF, type(uint256).max, block.timestamp + 60, sig);
        vm.assertEq(token.allowance(address(wallet), THIEF), 0, "no allowance");
    }

    /// Stockpiling: more authorizations than the period's slots, or for a later period, or
    /// with a nonce outside the structured space, never validate.
    function test_attack1271_slotsBoundEachPeriod() public {
        _budget(100e18, 2);
        for (uint16 slot; slot < 2; ++slot) {
            AgentWallet.Authorization memory ok = wallet.authorization(token, THIEF, 100e18, slot);
            vm.assertTrue(wallet.pay(ok, wallet.sign(ok, AGENT_KEY, COSIGNER_KEY)), "in budget");
        }
        AgentWallet.Authorization memory third = wallet.authorization(token, THIEF, 100e18, 2);
        vm.assertFalse(wallet.pay(third, wallet.sign(third, AGENT_KEY, COSIGNER_KEY)), "slot 2");
        // A nonce with bits between the period index and the slot (a random x402 nonce).
        third.nonce = bytes32(uint256(third.nonce) | (1 << 100));
        third.nonce = bytes32(uint256(third.nonce) & ~uint256(0xffff));
        vm.assertFalse(wallet.pay(third, wallet.sign(third, AGENT_KEY, COSIGNER_KEY)), "random");
        // Signed now for the next period, kept, and used when it comes: refused now, and when it
        // comes only the next period's own slots remain (the same two).
        AgentWallet.Authorization memory later = wallet.authorization(token, THIEF, 100e18, 0);
        later.nonce = bytes32(uint256(later.nonce) + (1 << 192));
        later.validBefore = block.timestamp + 2 days;
        vm.assertFalse(wallet.pay(later, wallet.sign(later, AGENT_KEY, COSIGNER_KEY)), "future");
        vm.assertEq(token.balanceOf(THIEF), 200e18, "exactly slots x maxValue left");
        vm.assertEq(wallet.periodBound(address(token)), 1000e18 + 400e18, "bound");
    }

    /// An authorization signed for one period is dead in the next, whatever its validBefore.
    function test_attack1271_expiresWithItsPeriod() public {
        _budget(100e18, 1);
        AgentWallet.Authorization memory a = wallet.authorization(token, THIEF, 100e18, 0);
        a.validBefore = type(uint256).max;
        bytes memory sig = wallet.sign(a, AGENT_KEY, COSIGNER_KEY);
        vm.warp(block.timestamp - block.timestamp % 1 days + 1 days);
        vm.assertFalse(wallet.pay(a, sig), "kept past its period");
    }

    /// A budget for one token never validates an authorization of another token, even one that
    /// claims to be the budgeted token.
    function test_attack1271_budgetIsBoundToItsToken() public {
        _budget(100e18, 3);
        TestToken other = new TestToken();
        other.mint(address(wallet), 1_000_000e18);
        vm.prank(owner);
        wallet.setBackstop(address(other), 1, 1 days);
        AgentWallet.Authorization memory a = wallet.authorization(token, THIEF, 50e18, 0);
        bytes memory sig = wallet.sign(a, AGENT_KEY, COSIGNER_KEY);
        vm.expectRevert(TestToken.InvalidSignature.selector);
        other.transferWithAuthorization(
            address(wallet), THIEF, 50e18, a.validAfter, a.validBefore, a.nonce, sig
        );
    }

    /// The legitimate x402 path: a receive-with-authorization within budget pays, once.
    function test_1271_receiveWithAuthorizationPaysOnce() public {
        _budget(100e18, 3);
        AgentWallet.Authorization memory a = wallet.authorization(token, recipient, 10e18, 1);
        a.typehash = token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH();
        bytes memory sig = wallet.sign(a, AGENT_KEY, COSIGNER_KEY);
        vm.prank(recipient);
        token.receiveWithAuthorization(
            address(wallet), recipient, 10e18, a.validAfter, a.validBefore, a.nonce, sig
        );
        vm.assertEq(token.balanceOf(recipient), 10e18, "paid");
        vm.prank(recipient);
        vm.expectRevert(TestToken.AuthorizationUsedOrCanceled.selector);
        token.receiveWithAuthorization(
            address(wallet), recipient, 10e18, a.validAfter, a.validBefore, a.nonce, sig
        );
    }

    function test_1271_frozenAndWrongKeysAreRefused() public {
        _budget(100e18, 3);
        AgentWallet.Authorization memory a = wallet.authorization(token, recipient, 1, 0);
        bytes32 h = wallet.hash(a);
        vm.assertTrue(
            wallet.isValidSignature(h, wallet.sign(a, AGENT_KEY, COSIGNER_KEY)) == 0x1626ba7e,
            "valid"
        );
        vm.assertTrue(
            wallet.isValidSignature(h, wallet.sign(a, COSIGNER_KEY, AGENT_KEY)) == 0xffffffff,
            "swapped"
        );
        vm.assertTrue(
            wallet.isValidSignature(h, wallet.sign(a, AGENT_KEY, AGENT_KEY)) == 0xffffffff,
            "agent twice"
        );
        vm.assertTrue(
            wallet.isValidSignature(
                    bytes32(uint256(h) ^ 1), wallet.sign(a, AGENT_KEY, COSIGNER_KEY)
                ) == 0xffffffff,
            "other hash"
        );
        vm.prank(owner);
        wallet.freeze();
        vm.assertTrue(
            wallet.isValidSignature(h, wallet.sign(a, AGENT_KEY, COSIGNER_KEY)) == 0xffffffff,
            "frozen"
        );
    }

    /// The legitimate x402 Permit2 path: a witness transfer through the x402 proxy within
    /// budget pays exactly the signed amount to the signed recipient, once.
    function test_1271_permit2PaysOnceThroughTheX402Proxy() public {
        wallet.installPermit2();
        _budget(100e18, 3);
        vm.assertEq(
            token.allowance(address(wallet), Authorizations.PERMIT2), type(uint256).max, "allowance"
        );
        AgentWallet.Authorization memory a =
            wallet.asPermit2(wallet.authorization(token, recipient, 10e18, 0));
        bytes memory sig = wallet.sign(a, AGENT_KEY, COSIGNER_KEY);
        vm.assertTrue(wallet.pay(a, sig), "paid");
        vm.assertEq(token.balanceOf(recipient), 10e18, "to the witness");
        vm.assertFalse(wallet.pay(a, sig), "replayed");
        // Over the per-authorization cap, as with EIP-3009.
        AgentWallet.Authorization memory big =
            wallet.asPermit2(wallet.authorization(token, THIEF, 100e18 + 1, 1));
        vm.assertFalse(wallet.pay(big, wallet.sign(big, AGENT_KEY, COSIGNER_KEY)), "over cap");
        // No budget, no allowance.
        _budget(100e18, 0);
        vm.assertEq(token.allowance(address(wallet), Authorizations.PERMIT2), 0, "revoked");
    }

    /// Double spending a slot: one period-slot nonce is fresh to the token and to Permit2,
    /// which keep separate nonce books. Each method has its own slots (EIP-3009 `[0, slots)`,
    /// Permit2 `[2^16, 2^16 + permit2Slots)`), so a slot signed the other way is refused and
    /// exactly `(slots + permit2Slots) × maxValue` leaves, whatever both keys sign.
    function test_attack1271_slotPaysOnceAcrossMethods() public {
        wallet.installPermit2();
        vm.prank(owner);
        wallet.setAuthorizationBudget(address(token), 100e18, 2, 1);
        uint16[4] memory slots = [0, 1, 2, uint16(0)];
        for (uint256 i = 0; i < 4; i++) {
            AgentWallet.Authorization memory viaToken =
                wallet.authorization(token, THIEF, 100e18, slots[i]);
            // The same nonce as a Permit2 payment, and Permit2's own slot i.
            AgentWallet.Authorization memory sameNonce =
                wallet.authorization(token, THIEF, 100e18, slots[i]);
            sameNonce.typehash = Authorizations.PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH;
            AgentWallet.Authorization memory viaPermit2 =
                wallet.asPermit2(wallet.authorization(token, THIEF, 100e18, uint16(i)));
            wallet.pay(viaToken, wallet.sign(viaToken, AGENT_KEY, COSIGNER_KEY));
            vm.assertFalse(
                wallet.pay(sameNonce, wallet.sign(sameNonce, AGENT_KEY, COSIGNER_KEY)),
                "an EIP-3009 slot via Permit2"
            );
            wallet.pay(viaPermit2, wallet.sign(viaPermit2, AGENT_KEY, COSIGNER_KEY));
        }
        vm.assertEq(token.balanceOf(THIEF), 300e18, "exactly (slots + permit2Slots) x maxValue");
        vm.assertEq(wallet.periodBound(address(token)), 1000e18 + 300e18, "the bound says so");
    }

    /// The red team's attack on the first layout (Permit2 slots right after the EIP-3009 ones):
    /// the owner re-sizes the budget within a period, and slots one method had spent became the
    /// other's, fresh to its nonce book, and paid again (800 of a 600 bound). With fixed ranges
    /// a re-size reopens nothing: at most the larger of the two budgets leaves.
    function test_attack1271_resizingWithinAPeriodReopensNoSlot() public {
        wallet.installPermit2();
        vm.prank(owner);
        wallet.setAuthorizationBudget(address(token), 100e18, 2, 2);
        _payEverySlot(4, 4);
        vm.assertEq(token.balanceOf(THIEF), 400e18, "the first budget");
        vm.prank(owner);
        wallet.setAuthorizationBudget(address(token), 100e18, 4, 2);
        _payEverySlot(6, 6);
        vm.assertEq(token.balanceOf(THIEF), 600e18, "only the two new EIP-3009 slots");
        vm.prank(owner);
        wallet.setAuthorizationBudget(address(token), 100e18, 1, 5);
        _payEverySlot(6, 6);
        vm.assertEq(token.balanceOf(THIEF), 900e18, "only the three new Permit2 slots");
    }

    /// Both keys sign every slot below `tokenSlots` and every Permit2 slot below `permit2Slots`
    /// (whatever the budget says), and submit them all.
    function _payEverySlot(uint16 tokenSlots, uint16 permit2Slots) internal {
        for (uint16 s = 0; s < tokenSlots; s++) {
            AgentWallet.Authorization memory a = wallet.authorization(token, THIEF, 100e18, s);
            wallet.pay(a, wallet.sign(a, AGENT_KEY, COSIGNER_KEY));
        }
        for (uint16 s = 0; s < permit2Slots; s++) {
            AgentWallet.Authorization memory a =
                wallet.asPermit2(wallet.authorization(token, THIEF, 100e18, s));
            wallet.pay(a, wallet.sign(a, AGENT_KEY, COSIGNER_KEY));
        }
    }

    /// The halmos review's finding: where the wallet cannot read a domain separator (a Permit2
    /// payment on a chain without Permit2), its recomputed hash is 0, so a verifier asking
    /// about hash 0 would have got a yes. Hash 0 is never valid.
    function test_attack1271_hashZeroIsNeverValid() public {
        _budget(100e18, 3);
        AgentWallet.Authorization memory a =
            wallet.asPermit2(wallet.authorization(token, THIEF, 1, 0));
        vm.assertTrue(Authorizations.PERMIT2.code.length == 0, "no Permit2 on this chain");
        bytes32 digest = wallet.messageDigest(bytes32(0));
        bytes memory sig =
            abi.encodePacked(_sign(AGENT_KEY, digest), _sign(COSIGNER_KEY, digest), abi.encode(a));
        vm.assertTrue(wallet.isValidSignature(bytes32(0), sig) == 0xffffffff, "hash 0");
    }

    /// A budget with no Permit2 slots gives Permit2 no allowance and no slot: the method the
    /// owner did not enable is no way out.
    function test_attack1271_permit2WithoutPermit2SlotsIsRefused() public {
        wallet.installPermit2();
        vm.prank(owner);
        wallet.setAuthorizationBudget(address(token), 100e18, 3, 0);
        vm.assertEq(token.allowance(address(wallet), Authorizations.PERMIT2), 0, "no allowance");
        for (uint16 slot = 0; slot < 4; slot++) {
            AgentWallet.Authorization memory a = wallet.authorization(token, THIEF, 1, slot);
            a.typehash = Authorizations.PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH;
            vm.assertTrue(
                wallet.isValidSignature(wallet.hash(a), wallet.sign(a, AGENT_KEY, COSIGNER_KEY))
                    == 0xffffffff,
                "no Permit2 slot"
            );
        }
    }

    /// The budget's copy of the backstop period follows `setBackstop`: authorizations of the
    /// old period's slots are refused once the period changes.
    function test_1271_budgetFollowsTheBackstopPeriod() public {
        _budget(100e18, 3);
        AgentWallet.Authorization memory a = wallet.authorization(token, recipient, 1, 0);
        vm.prank(owner);
        wallet.setBackstop(address(token), 1000e18, 1 hours);
        vm.assertEq(wallet.authorizationBudget(address(token)).period, 1 hours, "copied");
        vm.assertTrue(
            wallet.isValidSignature(wallet.hash(a), wallet.sign(a, AGENT_KEY, COSIGNER_KEY))
                == 0xffffffff,
            "a nonce of the old period"
        );
        a = wallet.authorization(token, recipient, 1, 0);
        vm.assertTrue(wallet.pay(a, wallet.sign(a, AGENT_KEY, COSIGNER_KEY)), "new period");
    }

    /// Permit2 with another spender: both keys sign a plain `PermitTransferFrom` naming the
    /// thief as spender (who would then choose where the tokens go). The wallet signs only the
    /// x402 witness transfer through the x402 proxy, so Permit2 refuses it.
    function test_attack1271_permit2ToAnotherSpenderIsRefused() public {
        wallet.installPermit2();
        _budget(100e18, 3);
        Permit2 permit2 = Permit2(Authorizations.PERMIT2);
        Permit2.PermitTransferFrom memory permit = Permit2.PermitTransferFrom({
            permitted: Permit2.TokenPermissions({token: address(token), amount: 100e18}),
            nonce: uint256(wallet.asPermit2(wallet.authorization(token, THIEF, 100e18, 0)).nonce),
            deadline: block.timestamp + 300
        });
        bytes32 structHash = keccak256(
            abi.encode(
                permit2.PERMIT_TRANSFER_FROM_TYPEHASH(),
                keccak256(abi.encode(permit2.TOKEN_PERMISSIONS_TYPEHASH(), address(token), 100e18)),
                THIEF,
                permit.nonce,
                permit.deadline
            )
        );
        bytes32 hash =
            keccak256(abi.encodePacked(hex"1901", permit2.DOMAIN_SEPARATOR(), structHash));
        // Carry the closest authorization the wallet would accept: same token, value, nonce.
        AgentWallet.Authorization memory a =
            wallet.asPermit2(wallet.authorization(token, THIEF, 100e18, 0));
        bytes32 digest = wallet.messageDigest(hash);
        bytes memory sig =
            abi.encodePacked(_sign(AGENT_KEY, digest), _sign(COSIGNER_KEY, digest), abi.encode(a));
        vm.prank(THIEF);
        vm.expectRevert(Permit2.InvalidContractSignature.selector);
        permit2.permitTransferFrom(
            permit,
            Permit2.SignatureTransferDetails({to: THIEF, requestedAmount: 100e18}),
            address(wallet),
            sig
        );
    }

    /// ERC-6492: a payment wallet paid from before it exists. The verifier x402 facilitators
    /// use deploys it with the factory call the signature carries, and the token pays. Its
    /// address binds its settings: a wallet deployed with the same keys and salt but without
    /// the budget (or with another) lands elsewhere, so nobody can occupy it first.
    function test_6492_counterfactualPaymentWalletDeploysAndPays() public {
        UniversalSigValidator validator = new UniversalSigValidator();
        bytes32 salt = bytes32(uint256(7));
        bytes memory create = abi.encodeCall(
            factory.createPaymentWallet,
            (owner, agent, cosigner, salt, address(token), 1000e18, 1 days, 100e18, 3, 3)
        );
        address predicted = factory.predictPaymentWallet(
            owner, agent, cosigner, salt, address(token), 1000e18, 1 days, 100e18, 3, 3
        );
        vm.assertTrue(predicted.code.length == 0, "not deployed yet");
        vm.assertTrue(factory.predict(owner, agent, cosigner, salt) != predicted, "bound");
        vm.assertTrue(
            factory.predictPaymentWallet(
                owner, agent, cosigner, salt, address(token), 1000e18, 1 days, 200e18, 3, 3
            ) != predicted,
            "another budget, another address"
        );
        token.mint(predicted, 500e18);

        // The authorization as the SDK builds it for a wallet that does not exist yet.
        AgentWallet.Authorization memory a = AgentWallet.Authorization({
            token: address(token),
            typehash: token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
            to: recipient,
            value: 10e18,
            validAfter: 0,
            validBefore: block.timestamp + 300,
            nonce: bytes32(((block.timestamp / 1 days) << 192) | 0)
        });
        bytes32 hash = keccak256(
            abi.encodePacked(
                hex"1901",
                token.DOMAIN_SEPARATOR(),
                keccak256(
                    abi.encode(
                        a.typehash, predicted, a.to, a.value, a.validAfter, a.validBefore, a.nonce
                    )
                )
            )
        );
        bytes32 walletDomain = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("Chaperone AgentWallet"),
                keccak256("1"),
                block.chainid,
                predicted
            )
        );
        bytes32 digest = keccak256(
            abi.encodePacked(
                hex"1901",
                walletDomain,
                keccak256(abi.encode(keccak256("AgentMessage(bytes32 hash)"), hash))
            )
        );
        bytes memory inner =
            abi.encodePacked(_sign(AGENT_KEY, digest), _sign(COSIGNER_KEY, digest), abi.encode(a));
        bytes memory wrapped = abi.encodePacked(
            abi.encode(address(factory), create, inner),
            bytes32(0x6492649264926492649264926492649264926492649264926492649264926492)
        );
        vm.assertTrue(validator.isValidSigWithSideEffects(predicted, hash, wrapped), "6492");
        vm.assertTrue(predicted.code.length != 0, "deployed by the verifier");
        vm.assertEq(AgentWallet(payable(predicted)).periodBound(address(token)), 1600e18, "bound");
        token.transferWithAuthorization(
            predicted, recipient, a.value, a.validAfter, a.validBefore, a.nonce, inner
        );
        vm.assertEq(token.balanceOf(recipient), 10e18, "paid");
    }

    /// A co-signature given under one wallet's policy does not validate on another wallet with
    /// the same keys.
    function test_1271_notValidOnOtherWallet() public {
        _budget(100e18, 3);
        AgentWallet other =
            AgentWallet(payable(factory.createWallet(owner, agent, cosigner, bytes32(uint256(1)))));
        vm.startPrank(owner);
        other.setBackstop(address(token), 1000e18, 1 days);
        other.setAuthorizationBudget(address(token), 100e18, 3, 3);
        vm.stopPrank();
        AgentWallet.Authorization memory a = wallet.authorization(token, recipient, 1, 0);
        bytes memory sig = wallet.sign(a, AGENT_KEY, COSIGNER_KEY);
        vm.assertTrue(other.isValidSignature(other.hash(a), sig) == 0xffffffff, "other wallet");
    }

    // --- 2. Default deny --------------------------------------------------------------------

    function _expectDenied(address target, bytes memory data) internal {
        AgentWallet.Call[] memory calls = _one(target, 0, data);
        vm.expectRevert(
            abi.encodeWithSelector(AgentWallet.CallNotAllowed.selector, target, bytes4(data))
        );
        this.stealExternal(calls);
    }

    function stealExternal(AgentWallet.Call[] memory calls) external {
        _steal(calls, wallet.nextNonce(0));
    }

    function test_attackDefaultDeny_erc721() public {
        TestNft nft = new TestNft();
        nft.mint(address(wallet), 0);
        nft.mint(address(wallet), 1);
        _expectDenied(
            address(nft),
            abi.encodeWithSignature(
                "safeTransferFrom(address,address,uint256)", address(wallet), THIEF, 1
            )
        );
        _expectDenied(address(nft), abi.encodeCall(IERC721.setApprovalForAll, (THIEF, true)));
        // transferFrom and approve share ERC-20 selectors: counted against a backstop the NFT
        // contract does not have, so refused, even for token id 0 ("amount" 0).
        for (uint256 id; id < 2; ++id) {
            AgentWallet.Call[] memory calls = _one(
                address(nft), 0, abi.encodeCall(IERC721.transferFrom, (address(wallet), THIEF, id))
            );
            vm.expectRevert(
                abi.encodeWithSelector(AgentWallet.BackstopExceeded.selector, address(nft), id, 0)
            );
            this.stealExternal(calls);
            calls = _one(address(nft), 0, abi.encodeCall(IERC721.approve, (THIEF, id)));
            vm.expectRevert(
                abi.encodeWithSelector(AgentWallet.BackstopExceeded.selector, address(nft), id, 0)
            );
            this.stealExternal(calls);
        }
        vm.assertEq(nft.balanceOf(THIEF), 0, "no NFT left");
    }

    function test_attackDefaultDeny_erc1155() public {
        TestMultiToken multi = new TestMultiToken();
        multi.mint(address(wallet), 7, 100);
        _expectDenied(
            address(multi),
            abi.encodeCall(IERC1155.safeTransferFrom, (address(wallet), THIEF, 7, 100, ""))
        );
        _expectDenied(address(multi), abi.encodeCall(IERC1155.setApprovalForAll, (THIEF, true)));
    }

    function test_attackDefaultDeny_erc1363TransferAndCall() public {
        TestPayableToken p = new TestPayableToken();
        p.mint(address(wallet), 1000);
        vm.prank(owner);
        wallet.setBackstop(address(p), 10, 1 days); // backstopped, but not through this selector
        _expectDenied(
            address(p), abi.encodeWithSignature("transferAndCall(address,uint256)", THIEF, 1000)
        );
        vm.assertEq(p.balanceOf(THIEF), 0, "nothing left");
    }

    function test_attackDefaultDeny_tokenMulticall() public {
        TestMulticallToken mc = new TestMulticallToken();
        mc.mint(address(wallet), 1000);
        vm.prank(owner);
        wallet.setBackstop(address(mc), 10, 1 days);
        bytes[] memory inner = new bytes[](1);
        inner[0] = abi.encodeCall(IERC20.transfer, (THIEF, 1000));
        _expectDenied(address(mc), abi.encodeCall(Multicall.multicall, (inner)));
        vm.assertEq(mc.balanceOf(THIEF), 0, "nothing left");
    }

    function test_attackDefaultDeny_erc777AndDaiStyle() public {
        TestLegacyToken leg = new TestLegacyToken();
        leg.mint(address(wallet), 1000);
        vm.prank(owner);
        wallet.setBackstop(address(leg), 10, 1 days);
        _expectDenied(address(leg), abi.encodeCall(TestLegacyToken.send, (THIEF, 1000, "")));
        _expectDenied(address(leg), abi.encodeCall(TestLegacyToken.authorizeOperator, (THIEF)));
        _expectDenied(address(leg), abi.encodeCall(TestLegacyToken.push, (THIEF, 1000)));
        _expectDenied(
            address(leg), abi.encodeCall(TestLegacyToken.move, (address(wallet), THIEF, 1000))
        );
        // Any other calldata, even shorter than a selector.
        _expectDenied(address(leg), hex"01");
        vm.assertEq(leg.balanceOf(THIEF), 0, "nothing left");
    }

    /// What the owner allows goes through; its native value still counts.
    function test_defaultDeny_ownerAllowedCallPassesAndValueCounts() public {
        TestLegacyToken leg = new TestLegacyToken();
        leg.mint(address(wallet), 1000);
        vm.prank(owner);
        vm.expectEmit();
        emit AgentWallet.CallAllowedSet(address(leg), TestLegacyToken.push.selector, true);
        wallet.setCallAllowed(address(leg), TestLegacyToken.push.selector, true);
        vm.assertTrue(wallet.callAllowed(address(leg), TestLegacyToken.push.selector), "view");
        _steal(_one(address(leg), 0, abi.encodeCall(TestLegacyToken.push, (recipient, 5))), 0);
        vm.assertEq(leg.balanceOf(recipient), 5, "allowed call ran");
        vm.expectRevert(
            abi.encodeWithSelector(
                AgentWallet.BackstopExceeded.selector, address(0), 11 ether, 10 ether
            )
        );
        this.stealExternal(
            _one(address(leg), 11 ether, abi.encodeCall(TestLegacyToken.push, (recipient, 5)))
        );
    }

    // --- 3. Lowering a backstop below what was spent -----------------------------------------

    function test_lowerBackstopBelowSpentClampsToZero() public {
        _steal(_one(recipient, 6 ether, ""), 0);
        vm.prank(owner);
        wallet.setBackstop(address(0), 5 ether, 1 days);
        vm.assertEq(wallet.backstopRemaining(address(0)), 0, "clamped, no panic");
        AgentWallet.Call[] memory calls = _one(recipient, 1, "");
        vm.expectRevert(
            abi.encodeWithSelector(AgentWallet.BackstopExceeded.selector, address(0), 1, 0)
        );
        this.stealExternal(calls);
    }

    // --- 4. Owner invalidation ----------------------------------------------------------------

    function test_ownerInvalidatesOutstandingExecutions() public {
        uint256 keyed = (uint256(9) << 64) | 3;
        AgentWallet.Call[] memory calls = _one(recipient, 1 ether, "");
        uint64 validUntil = uint64(block.timestamp + 60);
        bytes32 d0 = wallet.executeDigest(calls, 0, validUntil);
        bytes32 d1 = wallet.executeDigest(calls, keyed, validUntil);
        uint256[] memory nonces = new uint256[](2);
        nonces[0] = 0;
        nonces[1] = keyed;
        vm.prank(owner);
        vm.expectEmit();
        emit AgentWallet.NoncesInvalidated(0, 1);
        wallet.invalidateNonces(nonces);
        vm.expectRevert(abi.encodeWithSelector(AgentWallet.InvalidNonce.selector, 0, 1));
        wallet.execute(calls, 0, validUntil, _sign(AGENT_KEY, d0), _sign(COSIGNER_KEY, d0));
        vm.expectRevert(abi.encodeWithSelector(AgentWallet.InvalidNonce.selector, keyed, 4));
        wallet.execute(calls, keyed, validUntil, _sign(AGENT_KEY, d1), _sign(COSIGNER_KEY, d1));
        // Never backwards: invalidating an older nonce again changes nothing.
        vm.prank(owner);
        wallet.invalidateNonces(nonces);
        vm.assertEq(wallet.nextNonce(9), (uint256(9) << 64) | 4, "key 9 at 4");
    }

    function test_ownerInvalidatesOutstandingAuthorizations() public {
        _budget(100e18, 3);
        AgentWallet.Authorization memory a = wallet.authorization(token, THIEF, 100e18, 0);
        bytes memory sig = wallet.sign(a, AGENT_KEY, COSIGNER_KEY);
        vm.prank(owner);
        wallet.invalidateAuthorizations();
        vm.assertFalse(wallet.pay(a, sig), "voided");
        AgentWallet.Authorization memory b = wallet.authorization(token, THIEF, 100e18, 1);
        vm.assertFalse(wallet.pay(b, wallet.sign(b, AGENT_KEY, COSIGNER_KEY)), "this period");
        vm.warp(block.timestamp - block.timestamp % 1 days + 1 days);
        b = wallet.authorization(token, recipient, 1, 0);
        vm.assertTrue(wallet.pay(b, wallet.sign(b, AGENT_KEY, COSIGNER_KEY)), "next period");
    }

    function test_ownerOnlyForNewFunctions() public {
        bytes memory err = abi.encodeWithSelector(AgentWallet.NotOwner.selector, agent);
        vm.startPrank(agent);
        vm.expectRevert(err);
        wallet.setAuthorizationBudget(address(token), 1, 1, 1);
        vm.expectRevert(err);
        wallet.setCallAllowed(address(token), bytes4(0x12345678), true);
        vm.expectRevert(err);
        wallet.invalidateNonces(new uint256[](0));
        vm.expectRevert(err);
        wallet.invalidateAuthorizations();
        vm.stopPrank();
        address unbacked = address(new TestToken());
        vm.startPrank(owner);
        vm.expectRevert(AgentWallet.InvalidAuthorizationBudget.selector);
        wallet.setAuthorizationBudget(unbacked, 1, 1, 1); // no backstop
        vm.expectRevert(AgentWallet.InvalidAuthorizationBudget.selector);
        wallet.setAuthorizationBudget(address(token), uint256(type(uint96).max) + 1, 1, 1);
        vm.stopPrank();
    }

    // --- Gas paths ------------------------------------------------------------------------------

    /// The agent sending `execute` itself needs no agent signature; anyone else does.
    function test_agentSenderSkipsItsSignature() public {
        AgentWallet.Call[] memory calls = _one(recipient, 1, "");
        uint64 validUntil = uint64(block.timestamp + 60);
        bytes memory c = _sign(COSIGNER_KEY, wallet.executeDigest(calls, 0, validUntil));
        vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
        wallet.execute(calls, 0, validUntil, "", c);
        vm.prank(agent);
        wallet.execute(calls, 0, validUntil, "", c);
        vm.assertEq(recipient.balance, 1, "paid");
        // executeAsAgent: only the agent may send it, and the co-signature is still required.
        bytes memory c1 = _sign(COSIGNER_KEY, wallet.executeDigest(calls, 1, validUntil));
        vm.expectRevert(AgentWallet.InvalidAgentSignature.selector);
        wallet.executeAsAgent(calls, 1, validUntil, c1);
        vm.prank(agent);
        vm.expectRevert(AgentWallet.InvalidCosignerSignature.selector);
        wallet.executeAsAgent(calls, 1, validUntil, c);
        vm.prank(agent);
        wallet.executeAsAgent(calls, 1, validUntil, c1);
        vm.assertEq(recipient.balance, 2, "paid by executeAsAgent");
    }

    function test_factoryCreatesAReadyWallet() public {
        address w = factory.createWalletWithBackstop(
            owner, agent, cosigner, bytes32(uint256(2)), address(0), 1 ether, 1 days
        );
        AgentWallet.Backstop memory b = AgentWallet(payable(w)).backstop(address(0));
        vm.assertEq(b.limit, 1 ether, "limit");
        vm.assertEq(b.period, 1 days, "period");
        vm.expectRevert(AgentWallet.InvalidBackstop.selector);
        factory.createWalletWithBackstop(
            owner, agent, cosigner, bytes32(uint256(3)), address(0), 1, 0
        );
    }
}
