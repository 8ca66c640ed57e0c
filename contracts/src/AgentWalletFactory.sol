// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {AgentWallet} from "./AgentWallet.sol";

/// @title AgentWalletFactory
/// @notice Deploys AgentWallets as ERC-1167 minimal proxies with CREATE2, so a wallet's address is
///         known (`predict`) before it exists and is the same on every chain with the same factory.
/// @dev The owner is an immutable argument in the clone's code; agent and co-signer are part of
///      the CREATE2 salt, so nobody can occupy a predicted address with other keys. A payment
///      wallet's salt binds its backstop and authorization budget too.
contract AgentWalletFactory {
    /// @dev What a new wallet starts with besides its keys.
    struct Settings {
        address token;
        uint256 limit;
        uint32 period;
        uint256 maxValue;
        uint16 slots;
    }

    /// @notice The wallet implementation every clone delegates to.
    address public immutable implementation;

    /// @notice Emitted for each wallet created.
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

    /// @notice Deploys and initialises a wallet at `predict(owner, agent, cosigner, salt)`.
    /// @param owner The wallet's owner (an EOA or a Safe).
    /// @param agent The agent's signing address.
    /// @param cosigner The policy service's signing address.
    /// @param salt Any value; distinct salts give distinct wallets for the same keys.
    /// @return wallet The new wallet.
    function createWallet(address owner, address agent, address cosigner, bytes32 salt)
        external
        returns (address wallet)
    {
        return _create(owner, agent, cosigner, salt, _salt(agent, cosigner, salt), _none());
    }

    /// @notice Deploys and initialises a wallet at `predict(owner, agent, cosigner, salt)` with
    ///         its first backstop, so it is ready to spend in one transaction.
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
            owner,
            agent,
            cosigner,
            salt,
            _salt(agent, cosigner, salt),
            Settings(token, limit, period, 0, 0)
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
    /// @param slots Authorizations per period (non-zero).
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
        uint16 slots
    ) external returns (address wallet) {
        Settings memory settings = Settings(token, limit, period, maxValue, slots);
        if (period == 0 || slots == 0) revert AgentWallet.InvalidAuthorizationBudget();
        return _create(
            owner, agent, cosigner, salt, _paymentSalt(agent, cosigner, salt, settings), settings
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
    /// @param slots Authorizations per period.
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
        uint16 slots
    ) external view returns (address) {
        return Clones.predictDeterministicAddressWithImmutableArgs(
            implementation,
            abi.encode(owner),
            _paymentSalt(agent, cosigner, salt, Settings(token, limit, period, maxValue, slots))
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
        return Clones.predictDeterministicAddressWithImmutableArgs(
            implementation, abi.encode(owner), _salt(agent, cosigner, salt)
        );
    }

    function _create(
        address owner,
        address agent,
        address cosigner,
        bytes32 salt,
        bytes32 createSalt,
        Settings memory settings
    ) private returns (address wallet) {
        if (owner == address(0)) revert AgentWallet.ZeroAddress();
        wallet = Clones.cloneDeterministicWithImmutableArgs(
            implementation, abi.encode(owner), createSalt
        );
        emit WalletCreated(wallet, owner, agent, cosigner, salt);
        AgentWallet(payable(wallet))
            .initialize(
                agent,
                cosigner,
                settings.token,
                settings.limit,
                settings.period,
                settings.maxValue,
                settings.slots
            );
    }

    function _none() private pure returns (Settings memory) {
        return Settings(address(0), 0, 0, 0, 0);
    }

    function _paymentSalt(address agent, address cosigner, bytes32 salt, Settings memory settings)
        private
        pure
        returns (bytes32)
    {
        return _salt(agent, cosigner, keccak256(abi.encode(salt, settings)));
    }

    function _salt(address agent, address cosigner, bytes32 salt) private pure returns (bytes32) {
        return keccak256(abi.encode(agent, cosigner, salt));
    }
}
