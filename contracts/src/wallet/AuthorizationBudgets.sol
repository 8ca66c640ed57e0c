// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AgentWallet} from "../AgentWallet.sol";
import {WalletStorage} from "./WalletStorage.sol";

/// @title AuthorizationBudgets
/// @notice EIP-1271 for x402 payments, within a budget per token the owner sets: what the
///         wallet's signature lets EIP-3009 tokens and Permit2 move without an `execute`.
/// @dev What leaves per token per aligned period, by every path, is at most
///      `periodBound(token)` = the `execute` limit + the EIP-1271 authorization budget
///      (`slots + permit2Slots` authorizations of at most `maxValue` each). See `isValidSignature` for why the
///      EIP-1271 share is a separate, view-checkable budget.
abstract contract AuthorizationBudgets is WalletStorage, IERC1271 {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type hash of the message wrapping an EIP-1271 hash (see `isValidSignature`).
    bytes32 public constant AGENT_MESSAGE_TYPEHASH = keccak256("AgentMessage(bytes32 hash)");
    /// @notice EIP-3009 `TransferWithAuthorization` type hash (what x402 pays with).
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    /// @notice EIP-3009 `ReceiveWithAuthorization` type hash.
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    /// @dev Permit2's x402 payment type: `PermitWitnessTransferFrom` with the x402 exact
    ///      proxy's `Witness(to, validAfter)`, the only Permit2 message the wallet signs. These
    ///      three constants are internal, not public: a public getter is one more selector in
    ///      the dispatch every `execute` walks (about 40 gas for the three).
    bytes32 internal constant PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH = keccak256(
        "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)"
    );
    bytes32 private constant TOKEN_PERMISSIONS_TYPEHASH =
        keccak256("TokenPermissions(address token,uint256 amount)");
    bytes32 private constant WITNESS_TYPEHASH = keccak256("Witness(address to,uint256 validAfter)");
    /// @dev The first Permit2 authorization slot: Permit2 slots are
    ///      `[PERMIT2_SLOTS, PERMIT2_SLOTS + permit2Slots)`, EIP-3009 slots `[0, slots)` (below
    ///      2^16), so no budget ever lets one slot be both. Internal, like the constants above.
    uint256 internal constant PERMIT2_SLOTS = 1 << 16;
    /// @dev Permit2's canonical address (the same on every chain it is deployed on).
    address internal constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
    /// @dev The x402 exact scheme's Permit2 proxy: the only spender a Permit2 payment may
    ///      name, because it pays exactly the signed amount to the signed witness `to`.
    address internal constant X402_PERMIT2_PROXY = 0x402085c248EeA27D92E8b30b2C58ed07f9E20001;

    /// @notice EIP-1271, for x402's "exact" EVM payments only: EIP-3009 authorizations and
    ///         Permit2 witness transfers through the x402 proxy. Valid only when `signature` is
    ///         agentSignature (65) ‖ cosignerSignature (65) ‖ `abi.encode(Authorization)`, both
    ///         signatures over `messageDigest(hash)`, and:
    ///         - `hash` is exactly the EIP-3009 `TransferWithAuthorization` or
    ///           `ReceiveWithAuthorization` digest of that authorization, from this wallet, under
    ///           the token's own `DOMAIN_SEPARATOR()`, or the Permit2
    ///           `PermitWitnessTransferFrom` digest (spender `X402_PERMIT2_PROXY`, x402 witness)
    ///           under Permit2's (anything else, an EIP-2612 `permit`, another Permit2 message,
    ///           any other hash, is refused: the wallet cannot see what it moves);
    ///         - the token has a backstop and an authorization budget, and `value ≤ maxValue`;
    ///         - `nonce` = (period index << 192) | slot, with the period index the current
    ///           backstop period (`block.timestamp / period`) and the period starting no
    ///           earlier than the last `invalidateAuthorizations`; the slot names the method:
    ///           EIP-3009 slots are `[0, slots)`, Permit2 slots
    ///           `[PERMIT2_SLOTS, PERMIT2_SLOTS + permit2Slots)` with `PERMIT2_SLOTS` = 2^16:
    ///           ranges that never meet whatever the budget, so each slot can pay once, by one
    ///           method, with no look at the other method's nonce book (the token and Permit2
    ///           keep separate ones), even when the owner re-sizes them within a period;
    ///         - the wallet is not frozen.
    /// @dev Why this shape. EIP-1271 is a view: the wallet cannot count what a token moves when
    ///      it asks. It can still bound it, because the token marks each (authorizer, nonce)
    ///      used: with nonces confined to `slots + permit2Slots` values per period, each payable
    ///      by one method only, and each authorization to `maxValue`, at most
    ///      `(slots + permit2Slots) × maxValue` leaves per period even with both keys stolen.
    ///      Carrying the typed data (as ERC-7739 does) lets the wallet recompute the hash and see
    ///      token, amount and nonce; binding it to the token's domain separator means a budget
    ///      for one token can never validate a payment of another. The signatures still wrap the
    ///      hash as `AgentMessage(hash)` in this wallet's domain, so a co-signature given under
    ///      one wallet's policy never validates on another wallet that shares the keys.
    /// @param hash The hash the verifying contract asks about.
    /// @param signature agentSignature ‖ cosignerSignature ‖ abi.encode(Authorization).
    /// @return magicValue 0x1626ba7e when valid, 0xffffffff otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signature)
        external
        view
        returns (bytes4 magicValue)
    {
        Config memory config = _config;
        // Hash 0 is what `_authorizationHash` answers when it cannot read a domain separator:
        // never a digest a verifier asks about, so never valid.
        if (config.frozen || hash == 0 || signature.length != 130 + 7 * 32) return 0xffffffff;
        AgentWallet.Authorization memory a =
            abi.decode(signature[130:], (AgentWallet.Authorization));
        if (!_authorizationAllowed(a) || _authorizationHash(a) != hash) return 0xffffffff;
        bytes32 digest = messageDigest(hash);
        if (
            _recover(digest, signature[0:65]) != config.agent
                || _recover(digest, signature[65:130]) != _keys.cosigner
        ) return 0xffffffff;
        return IERC1271.isValidSignature.selector;
    }

    /// @notice The EIP-712 digest both keys sign to approve `hash` for EIP-1271.
    /// @param hash The hash a verifying contract will pass to `isValidSignature`.
    /// @return The digest.
    function messageDigest(bytes32 hash) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(AGENT_MESSAGE_TYPEHASH, hash)));
    }

    /// @notice Sets how much `token` may move through EIP-1271 authorizations per backstop
    ///         period: `slots` EIP-3009 authorizations and `permit2Slots` Permit2 ones, each of
    ///         at most `maxValue` (0 and 0: none). This is on top of the backstop's `execute`
    ///         limit; `periodBound` gives the sum.
    /// @param token The token (with a backstop).
    /// @param maxValue The most one authorization may move.
    /// @param slots How many EIP-3009 authorizations per period (nonce slots `[0, slots)`).
    /// @param permit2Slots How many Permit2 authorizations per period (nonce slots
    ///        `[2^16, 2^16 + permit2Slots)`).
    ///      With Permit2 slots, where Permit2 is deployed, this also gives it an unlimited
    ///      allowance of `token` (none without), which x402's Permit2 payments need. That
    ///      allowance moves nothing by itself: every Permit2 transfer needs this wallet's
    ///      EIP-1271 signature, which honours only budgeted x402 witness transfers, and Permit2's
    ///      own `approve` is a call `execute` refuses unless the owner allowed it.
    function setAuthorizationBudget(
        address token,
        uint256 maxValue,
        uint16 slots,
        uint16 permit2Slots
    ) external {
        _onlyOwner();
        _setAuthorizationBudget(token, maxValue, slots, permit2Slots);
    }

    /// @notice Voids every unused EIP-1271 authorization: those of the current period and
    ///         earlier are refused from now on (new ones work from the next period).
    function invalidateAuthorizations() external {
        _onlyOwner();
        // forge-lint: disable-next-line(unsafe-typecast) -- Unix seconds fit 64 bits
        uint64 validFrom = uint64(block.timestamp) + 1;
        _keys.authorizationsValidFrom = validFrom;
        emit AgentWallet.AuthorizationsInvalidated(validFrom);
    }

    /// @notice A token's EIP-1271 authorization budget per backstop period.
    /// @param token The token.
    /// @return The budget.
    function authorizationBudget(address token)
        external
        view
        returns (AgentWallet.AuthorizationBudget memory)
    {
        return _authorizationBudgets[token];
    }

    /// @notice The most `token` can move per backstop period by every path: the `execute`
    ///         limit plus `(slots + permit2Slots) × maxValue` of EIP-1271 authorizations.
    /// @param token The token, or address(0) for native currency.
    /// @return The bound in base units.
    function periodBound(address token) external view returns (uint256) {
        AgentWallet.AuthorizationBudget memory budget = _authorizationBudgets[token];
        return uint256(_backstops[token].limit) + uint256(budget.maxValue)
            * (uint256(budget.slots) + budget.permit2Slots);
    }

    /// @notice The nonce of authorization slot `slot` in the current backstop period of
    ///         `token` (what an agent puts in an authorization the wallet will honour): EIP-3009
    ///         slots are `[0, slots)`; Permit2 slot `i`'s nonce is this plus 2^16 + `i`.
    /// @param token The token.
    /// @param slot The slot.
    /// @return The nonce.
    function authorizationNonce(address token, uint16 slot) external view returns (bytes32) {
        uint256 period = _backstops[token].period;
        if (period == 0) revert AgentWallet.InvalidAuthorizationBudget();
        return bytes32(((block.timestamp / period) << 192) | slot);
    }

    function _setAuthorizationBudget(
        address token,
        uint256 maxValue,
        uint16 slots,
        uint16 permit2Slots
    ) internal {
        uint32 period = _backstops[token].period;
        if (maxValue > type(uint96).max || period == 0 || token == address(0)) {
            revert AgentWallet.InvalidAuthorizationBudget();
        }
        _authorizationBudgets[token] =
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against type(uint96).max above
        AgentWallet.AuthorizationBudget(uint96(maxValue), slots, permit2Slots, period);
        if (PERMIT2.code.length != 0) {
            IERC20(token).forceApprove(PERMIT2, permit2Slots == 0 ? 0 : type(uint256).max);
        }
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against type(uint96).max above
        emit AgentWallet.AuthorizationBudgetSet(token, uint96(maxValue), slots, permit2Slots);
    }

    /// @dev The budget rules of `isValidSignature` (see there), before any signature is checked.
    function _authorizationAllowed(AgentWallet.Authorization memory a) private view returns (bool) {
        if (
            a.typehash != TRANSFER_WITH_AUTHORIZATION_TYPEHASH
                && a.typehash != RECEIVE_WITH_AUTHORIZATION_TYPEHASH
                && a.typehash != PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH
        ) return false;
        AgentWallet.AuthorizationBudget memory budget = _authorizationBudgets[a.token];
        uint256 period = budget.period;
        if (period == 0 || a.value > budget.maxValue) return false;
        uint256 periodIndex = uint256(a.nonce) >> 192;
        uint256 slot = uint256(a.nonce) & type(uint192).max;
        // The slot names the method, in ranges fixed whatever the budget: each slot pays once,
        // by one method, without reading the other method's nonce book, even when the owner
        // re-sizes either range within a period.
        bool inRange = a.typehash == PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH
            ? slot >= PERMIT2_SLOTS && slot - PERMIT2_SLOTS < budget.permit2Slots
            : slot < budget.slots;
        // forge-lint: disable-next-line(block-timestamp) -- periods are hours or days long
        return inRange && periodIndex == block.timestamp / period
            && periodIndex * period >= _keys.authorizationsValidFrom;
    }

    /// @dev The EIP-712 digest the verifying contract computes for `a`: the token under its
    ///      own domain for EIP-3009, Permit2 under Permit2's.
    function _authorizationHash(AgentWallet.Authorization memory a) private view returns (bytes32) {
        bool permit2 = a.typehash == PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH;
        (bool ok, bytes memory domain) =
            (permit2 ? PERMIT2 : a.token).staticcall(abi.encodeWithSignature("DOMAIN_SEPARATOR()"));
        if (!ok || domain.length != 32) return bytes32(0);
        bytes32 structHash = permit2
            ? keccak256(
                abi.encode(
                    a.typehash,
                    keccak256(abi.encode(TOKEN_PERMISSIONS_TYPEHASH, a.token, a.value)),
                    X402_PERMIT2_PROXY,
                    a.nonce,
                    a.validBefore,
                    keccak256(abi.encode(WITNESS_TYPEHASH, a.to, a.validAfter))
                )
            )
            : keccak256(
                abi.encode(
                    a.typehash, address(this), a.to, a.value, a.validAfter, a.validBefore, a.nonce
                )
            );
        return keccak256(abi.encodePacked(hex"1901", abi.decode(domain, (bytes32)), structHash));
    }
}
