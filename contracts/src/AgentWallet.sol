// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {AuthorizationBudgets} from "./wallet/AuthorizationBudgets.sol";
import {Execution} from "./wallet/Execution.sol";
import {TokenReceiver} from "./wallet/TokenReceiver.sol";

/// @title AgentWallet
/// @notice A contract wallet for an AI agent. It executes calls only with two EIP-712 signatures:
///         the agent's and the policy service's (the co-signer). The owner (an EOA or a Safe)
///         rotates keys, sets on-chain backstop limits, freezes, and withdraws.
/// @dev Deployed as an ERC-1167 clone by `AgentWalletFactory`; the owner is an immutable argument
///      appended to the clone's code (a Safe owner rotates its own signers, so the wallet never
///      needs to), which saves a storage slot at creation and on every owner call.
///
///      Split by concern, as Safe splits `Safe.sol`, into abstract contracts under `wallet/`:
///      - `WalletStorage`: the storage layout (all of it, and why it is packed as it is), the
///        owner, the keys and their signature recovery;
///      - `Execution`: `execute` and `executeAsAgent`, on top of
///        - `Nonces`: the 2-D nonces of `execute`, and
///        - `Backstops`: the per-token spending limits `execute` counts against, and the
///          default deny on calldata;
///      - `AuthorizationBudgets`: EIP-1271 for x402 payments, bounded per token and period;
///      - `TokenReceiver`: native currency, ERC-721/1155 receiving, ERC-165.
///      This contract keeps initialisation and the owner's keys, freeze and withdraw, and
///      declares the whole wallet's structs, errors and events (the bases name them
///      `AgentWallet.X`; a type declared in a base would be named after the base): so the ABI
///      still calls the structs `AgentWallet.Call` and so on, which the Rust bindings generated
///      from it turn into `AgentWallet::Call`, and the factory and tests name the errors and
///      events `AgentWallet.X`.
contract AgentWallet is Execution, AuthorizationBudgets, TokenReceiver {
    using SafeERC20 for IERC20;

    /// @notice One call made by `execute`.
    struct Call {
        address to;
        uint256 value;
        bytes data;
    }

    /// @notice An on-chain spending limit for one token (address(0) = native).
    struct Backstop {
        uint96 limit;
        uint96 spent;
        uint32 period;
        uint32 windowStart;
    }

    /// @notice How much a token may move by EIP-1271 authorizations per backstop period:
    ///         at most `slots` EIP-3009 authorizations and `permit2Slots` Permit2 ones, each of
    ///         at most `maxValue`. `period` is the backstop's, copied here so the EIP-1271 check
    ///         reads one slot.
    struct AuthorizationBudget {
        uint96 maxValue;
        uint16 slots;
        uint16 permit2Slots;
        uint32 period;
    }

    /// @notice A payment authorization as carried after the two signatures in an EIP-1271
    ///         signature, so the wallet can recompute the hash and see what it pays. For
    ///         EIP-3009 the fields are the message's; for Permit2 (`typehash` =
    ///         `PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH`) `to`/`validAfter` are the witness's,
    ///         `value` the permitted amount, `validBefore` the deadline, and the spender is
    ///         always `X402_PERMIT2_PROXY`.
    struct Authorization {
        address token;
        bytes32 typehash;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// @notice Raised when an owner-only function is called by someone else.
    error NotOwner(address caller);
    /// @notice Raised when `initialize` is called on an initialised wallet.
    error AlreadyInitialized();
    /// @notice Raised when a key would be the zero address.
    error ZeroAddress();
    /// @notice Raised when the wallet is frozen.
    error Frozen();
    /// @notice Raised when `validUntil` has passed.
    error Expired(uint64 validUntil);
    /// @notice Raised when the nonce's sequence is not the next one for its key.
    error InvalidNonce(uint256 nonce, uint64 expectedSequence);
    /// @notice Raised when the agent's signature is malformed or from another key.
    error InvalidAgentSignature();
    /// @notice Raised when the co-signer's signature is malformed or from another key.
    error InvalidCosignerSignature();
    /// @notice Raised when a spend would exceed the token's backstop limit for the period.
    error BackstopExceeded(address token, uint256 amount, uint256 remaining);
    /// @notice Raised when a backstop limit does not fit its 96-bit slot or has no period.
    error InvalidBackstop();
    /// @notice Raised when an executed call reverts; carries its index and revert data.
    error CallFailed(uint256 index, bytes returnData);
    /// @notice Raised when a native withdrawal fails.
    error WithdrawFailed();
    /// @notice Raised when a call with calldata is neither a counted spend of a backstopped
    ///         token nor allowed by the owner.
    error CallNotAllowed(address target, bytes4 selector);
    /// @notice Raised when an authorization budget does not fit its slot or has no backstop.
    error InvalidAuthorizationBudget();

    /// @notice Emitted once, when the factory initialises the wallet.
    event Initialized(address indexed owner, address indexed agent, address indexed cosigner);
    /// @notice Emitted when the agent key changes.
    event AgentChanged(address indexed agent);
    /// @notice Emitted when the co-signer key changes.
    event CosignerChanged(address indexed cosigner);
    /// @notice Emitted when a token's backstop limit or period changes.
    event BackstopSet(address indexed token, uint96 limit, uint32 period);
    /// @notice Emitted when the wallet is frozen (true) or unfrozen (false).
    event FrozenSet(bool frozen);
    /// @notice Emitted for each `execute`: its nonce and the EIP-712 digest both keys signed,
    ///         which names exactly the calls that ran (the co-signed request's id). A watcher
    ///         matches an execution with its approval by the digest, however the transaction
    ///         reached the wallet (directly, or through a relayer, a bundler or a multicall,
    ///         whose calldata is not the wallet's). Not indexed: watchers filter by wallet and
    ///         event, and a topic costs every `execute`.
    event Executed(uint256 nonce, bytes32 digest);
    /// @notice Emitted when a token's EIP-1271 authorization budget changes.
    event AuthorizationBudgetSet(
        address indexed token, uint96 maxValue, uint16 slots, uint16 permit2Slots
    );
    /// @notice Emitted when the owner allows or disallows a (target, selector) for `execute`.
    event CallAllowedSet(address indexed target, bytes4 indexed selector, bool allowed);
    /// @notice Emitted when the owner voids a nonce key's sequences below `nextSequence`.
    event NoncesInvalidated(uint192 indexed key, uint64 nextSequence);
    /// @notice Emitted when the owner voids every EIP-1271 authorization of periods that
    ///         started before `validFrom`.
    event AuthorizationsInvalidated(uint64 validFrom);
    /// @notice Emitted when the owner withdraws.
    event Withdrawn(address indexed token, address indexed to, uint256 amount);
    /// @notice Emitted when the wallet receives native currency.
    event Received(address indexed from, uint256 amount);

    /// @dev The implementation itself can never be initialised or used.
    constructor() EIP712("Chaperone AgentWallet", "1") {
        _config.agent = address(0xdead);
    }

    /// @notice Sets the agent and co-signer, and optionally a first backstop and an EIP-1271
    ///         authorization budget for its token; called once by the factory in the deploying
    ///         transaction (so a wallet is ready in one transaction, and a counterfactual
    ///         wallet can be deployed by its first x402 payment, ERC-6492).
    /// @param initialAgent The agent's signing address.
    /// @param initialCosigner The policy service's signing address.
    /// @param token The token of the first backstop, or address(0) for native currency.
    /// @param limit The first backstop's limit per period.
    /// @param period The first backstop's period in seconds; 0 sets no backstop.
    /// @param authorizationMaxValue The most one authorization of `token` may move.
    /// @param authorizationSlots EIP-3009 authorizations of `token` per period.
    /// @param permit2Slots Permit2 authorizations of `token` per period (both 0: no budget).
    function initialize(
        address initialAgent,
        address initialCosigner,
        address token,
        uint256 limit,
        uint32 period,
        uint256 authorizationMaxValue,
        uint16 authorizationSlots,
        uint16 permit2Slots
    ) external {
        if (_config.agent != address(0)) revert AlreadyInitialized();
        if (initialAgent == address(0) || initialCosigner == address(0)) revert ZeroAddress();
        _config.agent = initialAgent;
        _keys.cosigner = initialCosigner;
        emit Initialized(owner(), initialAgent, initialCosigner);
        if (period != 0) _setBackstop(token, limit, period);
        if (authorizationSlots != 0 || permit2Slots != 0) {
            _setAuthorizationBudget(token, authorizationMaxValue, authorizationSlots, permit2Slots);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Owner
    // ---------------------------------------------------------------------------------------

    /// @notice Rotates the agent key.
    /// @param newAgent The new agent address.
    function setAgent(address newAgent) external {
        _onlyOwner();
        if (newAgent == address(0)) revert ZeroAddress();
        _config.agent = newAgent;
        emit AgentChanged(newAgent);
    }

    /// @notice Rotates the co-signer key (which also voids every outstanding co-signature).
    /// @param newCosigner The new co-signer address.
    function setCosigner(address newCosigner) external {
        _onlyOwner();
        if (newCosigner == address(0)) revert ZeroAddress();
        _keys.cosigner = newCosigner;
        emit CosignerChanged(newCosigner);
    }

    /// @notice Freezes the wallet: `execute` and `isValidSignature` refuse until unfrozen.
    function freeze() external {
        _onlyOwner();
        _config.frozen = true;
        emit FrozenSet(true);
    }

    /// @notice Unfreezes the wallet.
    function unfreeze() external {
        _onlyOwner();
        _config.frozen = false;
        emit FrozenSet(false);
    }

    /// @notice Sends funds to `to`; works while frozen, so the owner can always recover funds.
    /// @param token The token, or address(0) for native currency.
    /// @param to The recipient.
    /// @param amount The amount in base units.
    function withdraw(address token, address to, uint256 amount) external {
        _onlyOwner();
        if (to == address(0)) revert ZeroAddress();
        emit Withdrawn(token, to, amount);
        if (token == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert WithdrawFailed();
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }
}
