// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {AgentWallet} from "./AgentWallet.sol";

/// @title AgentWalletFactory
/// @notice Deploys AgentWallets as ERC-1167 minimal proxies with CREATE2, so a wallet's address is
///         known before it exists (a `predict…` view per entry point) and is the same on every
///         chain with the same factory.
/// @dev A counterfactual address is a promise to whoever funds it: it must only ever hold the
///      wallet with exactly the settings it was predicted with. So the owner is an immutable
///      argument in the clone's code, and the CREATE2 salt binds everything else `initialize`
///      receives (agent, co-signer, the backstop's token/limit/period, the authorization budget)
///      under a domain of its own per entry point: a deployment through one entry point, with any
///      arguments, can never land on an address another entry point (or the same one with other
///      arguments) predicts.
contract AgentWalletFactory {
    /// @dev What a new wallet starts with besides its keys.
    struct Settings {
        address token;
        uint256 limit;
        uint32 period;
        uint256 maxValue;
        uint16 slots;
        uint16 permit2Slots;
    }

    /// @dev The salt domains, one per entry point.
    bytes32 private constant WALLET = keccak256("chaperone.AgentWalletFactory.createWallet");
    bytes32 private constant BACKSTOP_WALLET =
        keccak256("chaperone.AgentWalletFactory.createWalletWithBackstop");
    bytes32 private constant PAYMENT_WALLET =
        keccak256("chaperone.AgentWalletFactory.createPaymentWallet");

    /// @notice The wallet implementation every clone delegates to.
    address public immutable implementation;

    /// @notice Emitted for each wallet created (its settings: `initialize`'s own events).
    event WalletCreated(
        address indexed wallet,
        address indexed owner,
        address indexed agent,
        address cosigner,
        bytes32 salt
    );

    constructor() {
        implementation = address(new AgentWallet());
    }

    /// @notice Deploys and initialises a wallet, with no backstop yet, at
    ///         `predict(owner, agent, cosigner, salt)`.
    /// @param owner The wallet's owner (an EOA or a Safe).
    /// @param agent The agent's signing address.
    /// @param cosigner The policy service's signing address.
    /// @param salt Any value; distinct salts give distinct wallets for the same keys.
    /// @return wallet The new wallet.
    function createWallet(address owner, address agent, address cosigner, bytes32 salt)
        external
        returns (address wallet)
    {
        return _create(WALLET, owner, agent, cosigner, salt, _none());
    }

    /// @notice Deploys and initialises a wallet at
    ///         `predictWalletWithBackstop(owner, agent, cosigner, salt, token, limit, period)`
    ///         with its first backstop, so it is ready to spend in one transaction.
    /// @param owner The wallet's owner (an EOA or a Safe).
    /// @param agent The agent's signing address.
    /// @param cosigner The policy service's signing address.
    /// @param salt Any value; distinct salts give distinct wallets for the same keys.
    /// @param token The backstop's token, or address(0) for native currency.
    /// @param limit The backstop's limit per period.
    /// @param period The backstop's period in seconds (non-zero).
    /// @return wallet The new wallet.
    function createWalletWithBackstop(
        address owner,
        address agent,
        address cosigner,
        bytes32 salt,
        address token,
        uint256 limit,
        uint32 period
    ) external returns (address wallet) {
        if (period == 0) revert AgentWallet.InvalidBackstop();
        return _create(
            BACKSTOP_WALLET, owner, agent, cosigner, salt, Settings(token, limit, period, 0, 0, 0)
        );
    }

    /// @notice Deploys and initialises a wallet ready for x402 payments of `token` from the
    ///         first one: a backstop of `token` and an EIP-1271 authorization budget. Its
    ///         address (`predictPaymentWallet`) binds every argument, so it can be funded and
    ///         paid from before it exists (ERC-6492: the first payment's signature carries this
    ///         call for the verifier to make) and nobody can deploy it there with other settings.
    /// @param owner The wallet's owner (an EOA or a Safe).
    /// @param agent The agent's signing address.
    /// @param cosigner The policy service's signing address.
    /// @param salt Any value; distinct salts give distinct wallets for the same keys.
    /// @param token The token (an EIP-3009 token such as USDC).
    /// @param limit The backstop's `execute` limit per period.
    /// @param period The backstop's period in seconds (non-zero).
    /// @param maxValue The most one authorization may move.
    /// @param slots EIP-3009 authorizations per period.
    /// @param permit2Slots Permit2 authorizations per period (not both zero).
    /// @return wallet The new wallet.
    function createPaymentWallet(
        address owner,
        address agent,
        address cosigner,
        bytes32 salt,
        address token,
        uint256 limit,
        uint32 period,
        uint256 maxValue,
        uint16 slots,
        uint16 permit2Slots
    ) external returns (address wallet) {
        if (period == 0 || (slots == 0 && permit2Slots == 0)) {
            revert AgentWallet.InvalidAuthorizationBudget();
        }
        return _create(
            PAYMENT_WALLET,
            owner,
            agent,
            cosigner,
            salt,
            Settings(token, limit, period, maxValue, slots, permit2Slots)
        );
    }

    /// @notice The address `createWallet` deploys to for these arguments.
    /// @param owner The wallet's owner.
    /// @param agent The agent's signing address.
    /// @param cosigner The policy service's signing address.
    /// @param salt The salt.
    /// @return The wallet's address.
    function predict(address owner, address agent, address cosigner, bytes32 salt)
        external
        view
        returns (address)
    {
        return _predict(WALLET, owner, agent, cosigner, salt, _none());
    }

    /// @notice The address `createWalletWithBackstop` deploys to for these arguments.
    /// @param owner The wallet's owner.
    /// @param agent The agent's signing address.
    /// @param cosigner The policy service's signing address.
    /// @param salt The salt.
    /// @param token The backstop's token.
    /// @param limit The backstop's limit.
    /// @param period The backstop's period.
    /// @return The wallet's address.
    function predictWalletWithBackstop(
        address owner,
        address agent,
        address cosigner,
        bytes32 salt,
        address token,
        uint256 limit,
        uint32 period
    ) external view returns (address) {
        return _predict(
            BACKSTOP_WALLET, owner, agent, cosigner, salt, Settings(token, limit, period, 0, 0, 0)
        );
    }

    /// @notice The address `createPaymentWallet` deploys to for these arguments.
    /// @param owner The wallet's owner.
    /// @param agent The agent's signing address.
    /// @param cosigner The policy service's signing address.
    /// @param salt The salt.
    /// @param token The token.
    /// @param limit The backstop's limit.
    /// @param period The backstop's period.
    /// @param maxValue The most one authorization may move.
    /// @param slots EIP-3009 authorizations per period.
    /// @param permit2Slots Permit2 authorizations per period.
    /// @return The wallet's address.
    function predictPaymentWallet(
        address owner,
        address agent,
        address cosigner,
        bytes32 salt,
        address token,
        uint256 limit,
        uint32 period,
        uint256 maxValue,
        uint16 slots,
        uint16 permit2Slots
    ) external view returns (address) {
        return _predict(
            PAYMENT_WALLET,
            owner,
            agent,
            cosigner,
            salt,
            Settings(token, limit, period, maxValue, slots, permit2Slots)
        );
    }

    function _create(
        bytes32 domain,
        address owner,
        address agent,
        address cosigner,
        bytes32 salt,
        Settings memory settings
    ) private returns (address wallet) {
        if (owner == address(0)) revert AgentWallet.ZeroAddress();
        wallet = Clones.cloneDeterministicWithImmutableArgs(
            implementation, abi.encode(owner), _createSalt(domain, agent, cosigner, salt, settings)
        );
        emit WalletCreated(wallet, owner, agent, cosigner, salt);
        // `initialize(agent, cosigner, token, limit, period, maxValue, slots, permit2Slots)`:
        // a static struct encodes as its fields in order, so the settings go in as they are
        // (eight separate arguments are one too many for the stack). The wallet has code (it
        // was just cloned); its revert, if any, is passed on as it is.
        (bool ok, bytes memory failure) = wallet.call(
            abi.encodeWithSelector(AgentWallet.initialize.selector, agent, cosigner, settings)
        );
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(failure, 0x20), mload(failure))
            }
        }
    }

    function _predict(
        bytes32 domain,
        address owner,
        address agent,
        address cosigner,
        bytes32 salt,
        Settings memory settings
    ) private view returns (address) {
        return Clones.predictDeterministicAddressWithImmutableArgs(
            implementation, abi.encode(owner), _createSalt(domain, agent, cosigner, salt, settings)
        );
    }

    function _none() private pure returns (Settings memory) {
        return Settings(address(0), 0, 0, 0, 0, 0);
    }

    /// @dev The CREATE2 salt: `keccak256(abi.encode(domain, agent, cosigner, salt, settings))`,
    ///      the entry point's domain and every `initialize` argument in one fixed-length
    ///      encoding, so no two argument tuples encode alike. Hashed in place past the free
    ///      memory pointer: `abi.encode` would copy the ten words into a new allocation, which
    ///      cost the ready wallet ~250 gas (over its 150,000 target). Internal, not private, so
    ///      the symbolic proof (contracts/test/halmos) can reach it.
    function _createSalt(
        bytes32 domain,
        address agent,
        address cosigner,
        bytes32 salt,
        Settings memory settings
    ) internal pure returns (bytes32 createSalt) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, domain)
            mstore(add(m, 0x20), agent)
            mstore(add(m, 0x40), cosigner)
            mstore(add(m, 0x60), salt)
            // A static struct in memory is its six words, each already clean.
            mcopy(add(m, 0x80), settings, 0xc0)
            createSalt := keccak256(m, 0x140)
        }
    }
}
