// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {HalmosBase} from "./HalmosBase.sol";
import {AgentWallet} from "../../src/AgentWallet.sol";
import {AgentWalletFactory} from "../../src/AgentWalletFactory.sol";

/// @notice An EIP-3009 token as `isValidSignature` sees it: only its EIP-712 domain.
contract DomainToken {
    bytes32 public constant DOMAIN_SEPARATOR = keccak256("DomainToken");
}

/// @notice Permit2 as `isValidSignature` sees it, etched at Permit2's canonical address.
contract DomainPermit2 {
    bytes32 public constant DOMAIN_SEPARATOR = keccak256("DomainPermit2");
}

/// @notice Symbolic proof (halmos) of the EIP-1271 budget rules: for ALL hashes, signatures
///         (both keys are the attacker's: ecrecover is uninterpreted), times below 2^64, budgets
///         (maxValue < 2^96, slots and permit2Slots < 2^16, period in [1, 2^32)) and
///         `invalidateAuthorizations` marks, an authorization `isValidSignature` accepts:
///         - is an EIP-3009 `TransferWithAuthorization`/`ReceiveWithAuthorization` or the x402
///           Permit2 `PermitWitnessTransferFrom`, and `hash` is exactly its EIP-712 digest
///           (recomputed here from the standards: the token's domain for EIP-3009; Permit2's
///           with the token and amount in `TokenPermissions` and the x402 proxy as spender), so
///           what pays is this authorization's value, to its payee, under its nonce;
///         - moves at most `maxValue`;
///         - has a nonce `(now / period) << 192 | slot` of the current period, not voided by
///           `invalidateAuthorizations`, with the slot in `[0, slots)` for EIP-3009 and in
///           `[2^16, 2^16 + permit2Slots)` for Permit2;
///         and a token without a budget, or a frozen wallet, has no valid signature at all.
/// @dev The bound follows: the token (EIP-3009) and Permit2 each mark a nonce used when it pays,
///      and the two slot ranges never meet, so per token per period at most
///      `slots + permit2Slots` authorizations pay, each at most `maxValue`. Assumed: the token
///      and Permit2 honour their nonces (each pays once), as the standards require.
contract WalletAuthorizationCheck is HalmosBase {
    /// @dev Storage slots, checked in `setUp`: `_keys` (co-signer | authorizationsValidFrom)
    ///      and the `_authorizationBudgets` mapping.
    uint256 private constant KEYS_SLOT = 3;
    uint256 private constant BUDGETS_SLOT = 6;
    address private constant OWNER = address(0x0A11CE);
    address private constant AGENT = address(0xA9E47);
    address private constant COSIGNER = address(0xC051);
    address private constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
    address private constant X402_PERMIT2_PROXY = 0x402085c248EeA27D92E8b30b2C58ed07f9E20001;
    bytes4 private constant MAGIC = 0x1626ba7e;
    uint256 private constant PERMIT2_SLOTS = 1 << 16;

    bytes32 private constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 private constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 private constant PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH = keccak256(
        "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)"
    );
    bytes32 private constant TOKEN_PERMISSIONS_TYPEHASH =
        keccak256("TokenPermissions(address token,uint256 amount)");
    bytes32 private constant WITNESS_TYPEHASH = keccak256("Witness(address to,uint256 validAfter)");

    struct Budget {
        uint256 maxValue;
        uint256 slots;
        uint256 permit2Slots;
        uint256 period;
        uint256 validFrom;
    }

    AgentWallet private wallet;
    DomainToken private token;

    function setUp() public {
        AgentWalletFactory factory = new AgentWalletFactory();
        wallet = AgentWallet(payable(factory.createWallet(OWNER, AGENT, COSIGNER, bytes32(0))));
        token = new DomainToken();
        vm.prank(OWNER);
        wallet.setBackstop(address(token), 1, 3600);
        vm.prank(OWNER);
        wallet.setAuthorizationBudget(address(token), 5, 2, 0);
        require(
            vm.load(address(wallet), _budgetSlot(address(token)))
                == bytes32(uint256(5) | (uint256(2) << 96) | (uint256(3600) << 128)),
            "AgentWallet storage layout changed: update BUDGETS_SLOT"
        );
        require(
            vm.load(address(wallet), bytes32(KEYS_SLOT)) == bytes32(uint256(uint160(COSIGNER))),
            "AgentWallet storage layout changed: update KEYS_SLOT"
        );
        vm.etch(PERMIT2, address(new DomainPermit2()).code);
    }

    /// @notice The budget rules, for the budgeted token.
    function check_isValidSignature_budgetRules() external {
        (Budget memory budget, AgentWallet.Authorization memory a, bytes32 hash, bool valid) =
            _ask(true, false);
        if (!valid) return;
        bool permit2 = a.typehash == PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH;
        uint256 periodIndex = uint256(a.nonce) >> 192;
        uint256 slot = uint256(a.nonce) & type(uint192).max;
        assert(
            permit2 || a.typehash == TRANSFER_WITH_AUTHORIZATION_TYPEHASH
                || a.typehash == RECEIVE_WITH_AUTHORIZATION_TYPEHASH
        );
        assert(hash == _digest(a));
        assert(a.value <= budget.maxValue);
        assert(periodIndex == block.timestamp / budget.period);
        assert(periodIndex * budget.period >= budget.validFrom);
        if (permit2) {
            assert(slot >= PERMIT2_SLOTS && slot < PERMIT2_SLOTS + budget.permit2Slots);
        } else {
            assert(slot < budget.slots);
        }
    }

    /// @notice A token without a budget has no valid signature.
    function check_isValidSignature_unbudgetedToken() external {
        (,,, bool valid) = _ask(false, false);
        assert(!valid);
    }

    /// @notice A frozen wallet has no valid signature.
    function check_isValidSignature_frozen() external {
        vm.prank(OWNER);
        wallet.freeze();
        (,,, bool valid) = _ask(true, false);
        assert(!valid);
    }

    /// @dev Non-vacuity (scripts/test-contracts-security.sh expects a counterexample): some
    ///      authorization is valid under the symbolic budget.
    function witness_isValidSignature_someAuthorizationIsValid() external {
        (,,, bool valid) = _ask(true, true);
        assert(!valid);
    }

    /// @dev A symbolic budget for `token`, an authorization of the budgeted token (or of any
    ///      other), symbolic signatures and hash; asks the wallet. A witness fixes the time, the
    ///      period and the authorization's type and nonce, so the solver finds one quickly.
    function _ask(bool budgeted, bool witness)
        private
        returns (Budget memory budget, AgentWallet.Authorization memory a, bytes32 hash, bool valid)
    {
        vm.warp(witness ? 1_750_000_000 : svm.createUint(64, "now"));
        budget.maxValue = svm.createUint(96, "maxValue");
        budget.slots = svm.createUint(16, "slots");
        budget.permit2Slots = svm.createUint(16, "permit2Slots");
        budget.period = witness ? 3600 : svm.createUint(32, "period");
        budget.validFrom = witness ? 0 : svm.createUint(64, "authorizationsValidFrom");
        vm.assume(budget.period != 0);
        vm.store(
            address(wallet),
            _budgetSlot(address(token)),
            bytes32(
                budget.maxValue | (budget.slots << 96) | (budget.permit2Slots << 112)
                    | (budget.period << 128)
            )
        );
        vm.store(
            address(wallet),
            bytes32(KEYS_SLOT),
            bytes32(uint256(uint160(COSIGNER)) | (budget.validFrom << 160))
        );

        a.token = svm.createAddress("token");
        if (budgeted) vm.assume(a.token == address(token));
        else vm.assume(a.token != address(token));
        a.typehash = svm.createBytes32("typehash");
        a.to = svm.createAddress("to");
        a.value = svm.createUint256("value");
        a.validAfter = svm.createUint256("validAfter");
        a.validBefore = svm.createUint256("validBefore");
        a.nonce = svm.createBytes32("nonce");
        if (witness) {
            a.typehash = TRANSFER_WITH_AUTHORIZATION_TYPEHASH;
            a.nonce = bytes32((block.timestamp / budget.period) << 192);
        }
        hash = svm.createBytes32("hash");
        bytes memory signature = abi.encodePacked(
            svm.createBytes(65, "agentSignature"),
            svm.createBytes(65, "cosignerSignature"),
            abi.encode(a)
        );
        valid = wallet.isValidSignature(hash, signature) == MAGIC;
    }

    /// @dev The digest the token (EIP-3009) or Permit2 (x402 witness transfer) verifies.
    function _digest(AgentWallet.Authorization memory a) private view returns (bytes32) {
        if (a.typehash == PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH) {
            bytes32 permitted = keccak256(abi.encode(TOKEN_PERMISSIONS_TYPEHASH, a.token, a.value));
            bytes32 witness = keccak256(abi.encode(WITNESS_TYPEHASH, a.to, a.validAfter));
            bytes32 structHash = keccak256(
                abi.encode(
                    a.typehash, permitted, X402_PERMIT2_PROXY, a.nonce, a.validBefore, witness
                )
            );
            return keccak256(
                abi.encodePacked(hex"1901", DomainPermit2(PERMIT2).DOMAIN_SEPARATOR(), structHash)
            );
        }
        bytes32 transferHash = keccak256(
            abi.encode(
                a.typehash, address(wallet), a.to, a.value, a.validAfter, a.validBefore, a.nonce
            )
        );
        return keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), transferHash));
    }

    function _budgetSlot(address asset) private pure returns (bytes32) {
        return keccak256(abi.encode(asset, BUDGETS_SLOT));
    }
}
