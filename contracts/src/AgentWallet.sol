// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {IERC1155Receiver} from "@openzeppelin/contracts/token/ERC1155/IERC1155Receiver.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title AgentWallet
/// @notice A contract wallet for an AI agent. It executes calls only with two EIP-712 signatures:
///         the agent's and the policy service's (the co-signer). The owner (an EOA or a Safe)
///         rotates keys, sets on-chain backstop limits, freezes, and withdraws.
/// @dev Deployed as an ERC-1167 clone by `AgentWalletFactory`; the owner is an immutable argument
///      appended to the clone's code (a Safe owner rotates its own signers, so the wallet never
///      needs to), which saves a storage slot at creation and on every owner call.
///
///      Storage layout, chosen so a one-transfer `execute` touches three cold slots:
///      - slot 0 `_config`: agent (160) | frozen (8) | sequence of nonce key 0 (64). The common
///        case, nonce key 0, reads and bumps its sequence in the slot `execute` must read anyway.
///      - slot 1 `_keys`: co-signer (160) | authorizationsValidFrom (64).
///      - `_backstops[token]`: limit (96) | spent (96) | period (32) | windowStart (32), one slot per
///        token, so counting a spend is one read and one write.
///      - `_authorizationBudgets[token]`: maxValue (96) | EIP-3009 slots (16) | Permit2 slots (16)
///        | a copy of the backstop's period (32), so `isValidSignature` reads one slot for the
///        budget (`_setBackstop` keeps the copy in step).
///      - `_nonceSequences[key]` for nonce keys other than 0, and
///        `_allowedCalls[target][selector]`, read only off the common path.
///
///      Backstop periods are fixed windows aligned to multiples of the period (Unix time), not
///      rolling windows. A rolling window needs a history of spends per token (a ring buffer,
///      many slots per `execute`); a fixed window needs one slot. The cost is the boundary: at
///      most 2× a period's bound can leave within one period length (end of one window, start of
///      the next). The backstop is a coarse last line that caps a stolen co-signer key; the
///      policy service enforces the precise sliding windows off chain.
///
///      What leaves per token per aligned period, by every path, is at most
///      `periodBound(token)` = the `execute` limit + the EIP-1271 authorization budget
///      (`slots + permit2Slots` authorizations of at most `maxValue` each). See `isValidSignature` for why the
///      EIP-1271 share is a separate, view-checkable budget.
///
///      Default deny: a call with calldata goes through only if it is a counted spend
///      (`transfer`, `transferFrom`, `approve`, `increaseAllowance`) of a token with a backstop,
///      or the owner allowed its (target, selector) with `setCallAllowed`. Native value counts
///      against the native backstop whatever the call.
contract AgentWallet is EIP712, IERC1271, IERC721Receiver, IERC1155Receiver {
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

    /// @dev Packed into one slot; see the contract's storage notes.
    struct Config {
        address agent;
        bool frozen;
        uint64 sequence0;
    }

    /// @dev Slot 1: the co-signer, and the earliest period start at which an EIP-1271
    ///      authorization is still honoured (`invalidateAuthorizations` moves it forward).
    struct Keys {
        address cosigner;
        uint64 authorizationsValidFrom;
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

    /// @notice EIP-712 type hash of `Call`.
    bytes32 public constant CALL_TYPEHASH = keccak256("Call(address to,uint256 value,bytes data)");
    /// @notice EIP-712 type hash of `Execute`.
    bytes32 public constant EXECUTE_TYPEHASH = keccak256(
        "Execute(Call[] calls,uint256 nonce,uint64 validUntil)Call(address to,uint256 value,bytes data)"
    );
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

    bytes4 private constant TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 private constant TRANSFER_FROM = 0x23b872dd; // transferFrom(address,address,uint256)
    bytes4 private constant APPROVE = 0x095ea7b3; // approve(address,uint256)
    bytes4 private constant INCREASE_ALLOWANCE = 0x39509351; // increaseAllowance(address,uint256)

    Config private _config;
    Keys private _keys;
    mapping(address token => Backstop) private _backstops;
    mapping(uint192 key => uint64) private _nonceSequences;
    mapping(address token => AuthorizationBudget) private _authorizationBudgets;
    mapping(address target => mapping(bytes4 selector => bool)) private _allowedCalls;

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
    /// @notice Emitted for each `execute`; the nonce identifies the co-signed request. Not
    ///         indexed: watchers filter by wallet and event, and a topic costs every `execute`.
    event Executed(uint256 nonce);
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
    // Execution
    // ---------------------------------------------------------------------------------------

    /// @notice Executes `calls` in order, all or nothing, when both the agent and the co-signer
    ///         signed the EIP-712 `Execute(calls, nonce, validUntil)` for this wallet and chain.
    ///         Anyone may send it (a relayer); when the agent sends it, its transaction signature
    ///         proves it and `agentSignature` may be empty (`executeAsAgent` is cheaper still).
    /// @param calls The calls to make.
    /// @param nonce High 192 bits: key; low 64 bits: sequence, which must be the key's next.
    /// @param validUntil Unix time after which the signatures are void.
    /// @param agentSignature The agent's 65-byte low-s signature (r ‖ s ‖ v); ignored when the
    ///        agent is the sender.
    /// @param cosignerSignature The co-signer's 65-byte low-s signature (r ‖ s ‖ v).
    function execute(
        Call[] calldata calls,
        uint256 nonce,
        uint64 validUntil,
        bytes calldata agentSignature,
        bytes calldata cosignerSignature
    ) external payable {
        Config memory config = _config;
        bytes32 digest = executeDigest(calls, nonce, validUntil);
        if (msg.sender != config.agent && _recover(digest, agentSignature) != config.agent) {
            revert InvalidAgentSignature();
        }
        _execute(config, digest, calls, nonce, validUntil, cosignerSignature);
    }

    /// @notice `execute` sent by the agent itself: its transaction signature is its approval,
    ///         so only the co-signer's signature travels and is checked (one ECDSA recovery and
    ///         65 calldata bytes less).
    /// @param calls The calls to make.
    /// @param nonce High 192 bits: key; low 64 bits: sequence, which must be the key's next.
    /// @param validUntil Unix time after which the signature is void.
    /// @param cosignerSignature The co-signer's 65-byte low-s signature (r ‖ s ‖ v).
    function executeAsAgent(
        Call[] calldata calls,
        uint256 nonce,
        uint64 validUntil,
        bytes calldata cosignerSignature
    ) external payable {
        Config memory config = _config;
        if (msg.sender != config.agent) revert InvalidAgentSignature();
        _execute(
            config,
            executeDigest(calls, nonce, validUntil),
            calls,
            nonce,
            validUntil,
            cosignerSignature
        );
    }

    /// @notice The EIP-712 digest both keys sign for `execute`.
    /// @dev Hashed in assembly because it runs on every `execute`: the Solidity version
    ///      (abi.encode per call plus an array copy) cost about 2,000 gas more. It reads the same
    ///      ABI offsets the Solidity decoder reads when `execute` makes the calls.
    /// @param calls The calls.
    /// @param nonce The 2-D nonce.
    /// @param validUntil The expiry.
    /// @return The digest.
    function executeDigest(Call[] calldata calls, uint256 nonce, uint64 validUntil)
        public
        view
        returns (bytes32)
    {
        bytes32 structHash;
        bytes32 callTypehash = CALL_TYPEHASH;
        bytes32 executeTypehash = EXECUTE_TYPEHASH;
        assembly ("memory-safe") {
            // Scratch beyond the free-memory pointer: [ptr, ptr+0x80) one encoded Call,
            // [hashes, hashes+32n) the call hashes, then each call's data.
            let ptr := mload(0x40)
            let hashes := add(ptr, 0x80)
            let scratch := add(hashes, shl(5, calls.length))
            for { let i := 0 } lt(i, calls.length) { i := add(i, 1) } {
                let c := add(calls.offset, calldataload(add(calls.offset, shl(5, i))))
                let data := add(c, calldataload(add(c, 0x40)))
                let dataLength := calldataload(data)
                calldatacopy(scratch, add(data, 0x20), dataLength)
                mstore(ptr, callTypehash)
                mstore(
                    add(ptr, 0x20),
                    and(calldataload(c), 0xffffffffffffffffffffffffffffffffffffffff)
                )
                mstore(add(ptr, 0x40), calldataload(add(c, 0x20)))
                mstore(add(ptr, 0x60), keccak256(scratch, dataLength))
                mstore(add(hashes, shl(5, i)), keccak256(ptr, 0x80))
            }
            mstore(ptr, executeTypehash)
            mstore(add(ptr, 0x20), keccak256(hashes, shl(5, calls.length)))
            mstore(add(ptr, 0x40), nonce)
            mstore(add(ptr, 0x60), validUntil)
            structHash := keccak256(ptr, 0x80)
        }
        return _hashTypedDataV4(structHash);
    }

    /// @notice The next usable nonce for `key` (key in the high 192 bits).
    /// @param key The nonce key.
    /// @return The full nonce to sign next.
    function nextNonce(uint192 key) external view returns (uint256) {
        uint64 sequence = key == 0 ? _config.sequence0 : _nonceSequences[key];
        return (uint256(key) << 64) | sequence;
    }

    // ---------------------------------------------------------------------------------------
    // EIP-1271
    // ---------------------------------------------------------------------------------------

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
        Authorization memory a = abi.decode(signature[130:], (Authorization));
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

    /// @notice Sets a token's backstop: at most `limit` base units per `period` seconds.
    ///         Amounts already spent in the current window still count.
    /// @param token The token, or address(0) for native currency.
    /// @param limit The limit per period; 0 blocks the token.
    /// @param period The window length in seconds; must be non-zero.
    function setBackstop(address token, uint256 limit, uint32 period) external {
        _onlyOwner();
        _setBackstop(token, limit, period);
        // The budget's copy of the period follows (`isValidSignature` reads one slot). Not in
        // `_setBackstop`: `initialize` sets the backstop before any budget exists, and a ready
        // wallet should not pay for the read.
        AuthorizationBudget storage budget = _authorizationBudgets[token];
        if (budget.period != 0) budget.period = period;
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

    function _setAuthorizationBudget(
        address token,
        uint256 maxValue,
        uint16 slots,
        uint16 permit2Slots
    ) private {
        uint32 period = _backstops[token].period;
        if (maxValue > type(uint96).max || period == 0 || token == address(0)) {
            revert InvalidAuthorizationBudget();
        }
        _authorizationBudgets[token] =
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against type(uint96).max above
        AuthorizationBudget(uint96(maxValue), slots, permit2Slots, period);
        if (PERMIT2.code.length != 0) {
            IERC20(token).forceApprove(PERMIT2, permit2Slots == 0 ? 0 : type(uint256).max);
        }
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against type(uint96).max above
        emit AuthorizationBudgetSet(token, uint96(maxValue), slots, permit2Slots);
    }

    /// @notice Allows (or disallows) `execute` to call `selector` on `target` with calldata the
    ///         backstop cannot count. Native value sent along still counts.
    /// @param target The contract.
    /// @param selector The function selector.
    /// @param allowed Whether the call is allowed.
    function setCallAllowed(address target, bytes4 selector, bool allowed) external {
        _onlyOwner();
        _allowedCalls[target][selector] = allowed;
        emit CallAllowedSet(target, selector, allowed);
    }

    /// @notice Voids outstanding co-signed executions: for each nonce, its key's next sequence
    ///         becomes at least the nonce's sequence + 1 (never moves backwards).
    /// @param nonces Nonces (key << 64 | sequence) whose signatures must never execute.
    function invalidateNonces(uint256[] calldata nonces) external {
        _onlyOwner();
        for (uint256 i; i < nonces.length; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) -- the key is the high 192 bits
            uint192 key = uint192(nonces[i] >> 64);
            // forge-lint: disable-next-line(unsafe-typecast) -- the sequence is the low 64 bits
            uint64 sequence = uint64(nonces[i]);
            if (sequence == type(uint64).max) continue;
            uint64 next = sequence + 1;
            if (key == 0) {
                if (_config.sequence0 >= next) continue;
                _config.sequence0 = next;
            } else {
                if (_nonceSequences[key] >= next) continue;
                _nonceSequences[key] = next;
            }
            emit NoncesInvalidated(key, next);
        }
    }

    /// @notice Voids every unused EIP-1271 authorization: those of the current period and
    ///         earlier are refused from now on (new ones work from the next period).
    function invalidateAuthorizations() external {
        _onlyOwner();
        // forge-lint: disable-next-line(unsafe-typecast) -- Unix seconds fit 64 bits
        uint64 validFrom = uint64(block.timestamp) + 1;
        _keys.authorizationsValidFrom = validFrom;
        emit AuthorizationsInvalidated(validFrom);
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

    // ---------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------

    /// @notice The owner, read from the clone's immutable arguments.
    /// @return The owner address.
    function owner() public view returns (address) {
        return abi.decode(Clones.fetchCloneArgs(address(this)), (address));
    }

    /// @notice The agent key.
    /// @return The agent address.
    function agent() external view returns (address) {
        return _config.agent;
    }

    /// @notice The co-signer key.
    /// @return The co-signer address.
    function cosigner() external view returns (address) {
        return _keys.cosigner;
    }

    /// @notice Whether the wallet is frozen.
    /// @return True when frozen.
    function frozen() external view returns (bool) {
        return _config.frozen;
    }

    /// @notice A token's backstop configuration and current window.
    /// @param token The token, or address(0) for native currency.
    /// @return The backstop.
    function backstop(address token) external view returns (Backstop memory) {
        return _backstops[token];
    }

    /// @notice What `token` can still spend now under its backstop.
    /// @param token The token, or address(0) for native currency.
    /// @return The remaining amount in base units.
    function backstopRemaining(address token) external view returns (uint256) {
        Backstop memory b = _backstops[token];
        // forge-lint: disable-next-line(block-timestamp) -- windows are hours or days long
        if (block.timestamp >= uint256(b.windowStart) + b.period) return b.limit;
        // A limit lowered below what the window already spent leaves nothing, not an underflow.
        return b.spent >= b.limit ? 0 : b.limit - b.spent;
    }

    /// @notice A token's EIP-1271 authorization budget per backstop period.
    /// @param token The token.
    /// @return The budget.
    function authorizationBudget(address token) external view returns (AuthorizationBudget memory) {
        return _authorizationBudgets[token];
    }

    /// @notice The most `token` can move per backstop period by every path: the `execute`
    ///         limit plus `(slots + permit2Slots) × maxValue` of EIP-1271 authorizations.
    /// @param token The token, or address(0) for native currency.
    /// @return The bound in base units.
    function periodBound(address token) external view returns (uint256) {
        AuthorizationBudget memory budget = _authorizationBudgets[token];
        return uint256(_backstops[token].limit) + uint256(budget.maxValue)
            * (uint256(budget.slots) + budget.permit2Slots);
    }

    /// @notice Whether the owner allowed `execute` to call `selector` on `target`.
    /// @param target The contract.
    /// @param selector The function selector.
    /// @return True when allowed.
    function callAllowed(address target, bytes4 selector) external view returns (bool) {
        return _allowedCalls[target][selector];
    }

    /// @notice The nonce of authorization slot `slot` in the current backstop period of
    ///         `token` (what an agent puts in an authorization the wallet will honour): EIP-3009
    ///         slots are `[0, slots)`; Permit2 slot `i`'s nonce is this plus 2^16 + `i`.
    /// @param token The token.
    /// @param slot The slot.
    /// @return The nonce.
    function authorizationNonce(address token, uint16 slot) external view returns (bytes32) {
        uint256 period = _backstops[token].period;
        if (period == 0) revert InvalidAuthorizationBudget();
        return bytes32(((block.timestamp / period) << 192) | slot);
    }

    // ---------------------------------------------------------------------------------------
    // Receiving
    // ---------------------------------------------------------------------------------------

    /// @notice Accepts native currency. Senders must forward more than the 2,300-gas stipend
    ///         (as with any proxy wallet, e.g. Safe): the clone delegates every call.
    receive() external payable {
        emit Received(msg.sender, msg.value);
    }

    /// @inheritdoc IERC721Receiver
    function onERC721Received(address, address, uint256, bytes calldata)
        external
        pure
        returns (bytes4)
    {
        return IERC721Receiver.onERC721Received.selector;
    }

    /// @inheritdoc IERC1155Receiver
    function onERC1155Received(address, address, uint256, uint256, bytes calldata)
        external
        pure
        returns (bytes4)
    {
        return IERC1155Receiver.onERC1155Received.selector;
    }

    /// @inheritdoc IERC1155Receiver
    function onERC1155BatchReceived(
        address,
        address,
        uint256[] calldata,
        uint256[] calldata,
        bytes calldata
    ) external pure returns (bytes4) {
        return IERC1155Receiver.onERC1155BatchReceived.selector;
    }

    /// @inheritdoc IERC165
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC165).interfaceId
            || interfaceId == type(IERC721Receiver).interfaceId
            || interfaceId == type(IERC1155Receiver).interfaceId
            || interfaceId == type(IERC1271).interfaceId;
    }

    // ---------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------

    function _onlyOwner() private view {
        if (msg.sender != owner()) revert NotOwner(msg.sender);
    }

    /// @dev Recovers a 65-byte r ‖ s ‖ v signature, low-s only (EIP-2: s ≤ n/2, so a signature
    ///      cannot be replayed in its malleated form). Returns address(0) for anything malformed
    ///      or invalid, which never equals a configured key. The ecrecover precompile is called
    ///      directly (as Solady's ECDSA does) rather than through OpenZeppelin's `tryRecover`:
    ///      the same checks for ~100 gas less, paid twice on every relayed `execute`.
    function _recover(bytes32 digest, bytes calldata signature)
        private
        view
        returns (address signer)
    {
        if (signature.length != 65) return address(0);
        assembly ("memory-safe") {
            let s := calldataload(add(signature.offset, 0x20))
            if iszero(gt(s, 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0)) {
                let m := mload(0x40)
                // ecrecover(digest, v, r, s) in 0x00..0x80; the precompile answers nothing
                // for an invalid signature (or a v other than 27 and 28).
                mstore(0x00, digest)
                mstore(0x20, byte(0, calldataload(add(signature.offset, 0x40))))
                mstore(0x40, calldataload(signature.offset))
                mstore(0x60, s)
                if staticcall(gas(), 1, 0x00, 0x80, 0x00, 0x20) {
                    if eq(returndatasize(), 0x20) { signer := mload(0x00) }
                }
                // Restore the free-memory pointer and the zero slot.
                mstore(0x40, m)
                mstore(0x60, 0)
            }
        }
    }

    /// @dev The checks and effects both entry points share, once the agent is established.
    function _execute(
        Config memory config,
        bytes32 digest,
        Call[] calldata calls,
        uint256 nonce,
        uint64 validUntil,
        bytes calldata cosignerSignature
    ) private {
        if (config.frozen) revert Frozen();
        // forge-lint: disable-next-line(block-timestamp) -- expiry needs minutes, not seconds, of precision
        if (block.timestamp > validUntil) revert Expired(validUntil);
        if (_recover(digest, cosignerSignature) != _keys.cosigner) {
            revert InvalidCosignerSignature();
        }

        _useNonce(config, nonce);
        emit Executed(nonce);

        // Each call's spend is counted before that call is made; the transaction is atomic, so a
        // later call that exceeds the backstop undoes the earlier ones.
        for (uint256 i; i < calls.length; ++i) {
            Call calldata c = calls[i];
            _countSpend(c);
            if (!_call(c)) _revertCallFailed(i);
        }
    }

    /// @dev Makes the call without copying its return data (Solidity's `.call` copies it to
    ///      memory even when unused: a few hundred gas per token transfer).
    function _call(Call calldata c) private returns (bool ok) {
        address to = c.to;
        uint256 value = c.value;
        bytes calldata data = c.data;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, data.offset, data.length)
            ok := call(gas(), to, value, ptr, data.length, 0, 0)
        }
    }

    /// @dev Copies revert data only on failure: `(bool, bytes memory)` would copy it every time.
    function _revertCallFailed(uint256 index) private pure {
        bytes memory returnData = new bytes(0);
        assembly ("memory-safe") {
            returnData := mload(0x40)
            mstore(returnData, returndatasize())
            returndatacopy(add(returnData, 0x20), 0, returndatasize())
            mstore(0x40, add(add(returnData, 0x20), returndatasize()))
        }
        revert CallFailed(index, returnData);
    }

    function _useNonce(Config memory config, uint256 nonce) private {
        // forge-lint: disable-next-line(unsafe-typecast) -- the key is the high 192 bits by definition
        uint192 key = uint192(nonce >> 64);
        // forge-lint: disable-next-line(unsafe-typecast) -- the sequence is the low 64 bits by definition
        uint64 sequence = uint64(nonce);
        if (key == 0) {
            if (sequence != config.sequence0) revert InvalidNonce(nonce, config.sequence0);
            // Rewrites slot 0 from the copy already in memory (agent | frozen | sequence0; frozen
            // is false here) instead of a masked read-modify-write.
            uint256 packed = uint256(uint160(config.agent)) | (uint256(sequence + 1) << 168);
            assembly ("memory-safe") {
                sstore(_config.slot, packed)
            }
        } else {
            uint64 expected = _nonceSequences[key];
            if (sequence != expected) revert InvalidNonce(nonce, expected);
            _nonceSequences[key] = sequence + 1;
        }
    }

    /// @dev Counts what a call moves: its native value, and the amount of an ERC-20 `transfer`,
    ///      `transferFrom`, `approve` or `increaseAllowance` (an approval is spend: the spender can
    ///      take it later without another co-signature). Any other calldata needs the owner's
    ///      `setCallAllowed`: default deny, because the backstop cannot count what an unknown
    ///      function moves (ERC-721/1155 transfers, ERC-1363 `transferAndCall`, ERC-777 `send`,
    ///      a token's own `multicall`, ...).
    function _countSpend(Call calldata c) private {
        if (c.value != 0) _spend(address(0), c.value);
        if (c.data.length == 0) return;
        if (c.data.length < 4) revert CallNotAllowed(c.to, bytes4(c.data));
        bytes4 selector = bytes4(c.data[0:4]);
        // A short call with a spending selector counts as unlimited: tokens that do not check
        // calldata length would read the missing amount bytes in unknown ways. Longer calldata
        // is decoded at the same offsets, as the token's own decoder reads it.
        if (selector == TRANSFER || selector == APPROVE || selector == INCREASE_ALLOWANCE) {
            _spend(c.to, c.data.length >= 68 ? uint256(bytes32(c.data[36:68])) : type(uint256).max);
        } else if (selector == TRANSFER_FROM) {
            _spend(
                c.to, c.data.length >= 100 ? uint256(bytes32(c.data[68:100])) : type(uint256).max
            );
        } else if (!_allowedCalls[c.to][selector]) {
            revert CallNotAllowed(c.to, selector);
        }
    }

    /// @dev Reads and writes the packed `Backstop` word directly: one SLOAD and one SSTORE,
    ///      where the struct copy compiled to several masked loads and stores. A zero amount is
    ///      still checked against a configured backstop: an ERC-721 shares the `approve` and
    ///      `transferFrom` selectors, and token id 0 must not pass.
    function _spend(address token, uint256 amount) private {
        Backstop storage stored = _backstops[token];
        uint256 word;
        assembly ("memory-safe") {
            word := sload(stored.slot)
        }
        // Unpacking the fields of the word (limit | spent | period | windowStart):
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 limit = uint96(word);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 spent = uint96(word >> 96);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 period = uint32(word >> 192);
        uint256 windowStart = word >> 224;
        // Unchecked: every field is below 2^96, and `spent + amount` is at most `limit`.
        unchecked {
            // forge-lint: disable-next-line(block-timestamp) -- windows are hours or days long
            if (block.timestamp >= windowStart + period) {
                // No backstop (period 0): nothing may be spent (checked off the common path).
                if (period == 0) revert BackstopExceeded(token, amount, 0);
                // Windows are aligned to multiples of the period, as EIP-1271 budget periods are.
                windowStart = block.timestamp - block.timestamp % period;
                spent = 0;
            }
            // A limit lowered below what the window already spent leaves nothing (no underflow).
            uint256 remaining = spent >= limit ? 0 : limit - spent;
            if (amount > remaining) revert BackstopExceeded(token, amount, remaining);
            word = limit | ((spent + amount) << 96) | (period << 192) | (windowStart << 224);
        }
        assembly ("memory-safe") {
            sstore(stored.slot, word)
        }
    }

    function _setBackstop(address token, uint256 limit, uint32 period) private {
        if (limit > type(uint96).max || period == 0) revert InvalidBackstop();
        Backstop storage b = _backstops[token];
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against type(uint96).max above
        b.limit = uint96(limit);
        b.period = period;
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against type(uint96).max above
        emit BackstopSet(token, uint96(limit), period);
    }

    /// @dev The budget rules of `isValidSignature` (see there), before any signature is checked.
    function _authorizationAllowed(Authorization memory a) private view returns (bool) {
        if (
            a.typehash != TRANSFER_WITH_AUTHORIZATION_TYPEHASH
                && a.typehash != RECEIVE_WITH_AUTHORIZATION_TYPEHASH
                && a.typehash != PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH
        ) return false;
        AuthorizationBudget memory budget = _authorizationBudgets[a.token];
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
    function _authorizationHash(Authorization memory a) private view returns (bytes32) {
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
