// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {AgentWallet} from "./AgentWallet.sol";

/// @title AgentWalletFactory
/// @notice Deploys AgentWallets as ERC-1167 minimal proxies with CREATE2, so a wallet's address is
///         known (`predict`) before it exists and is the same on every chain with the same factory.
/// @dev The owner is an immutable argument in the clone's code; agent and co-signer are part of
///      the CREATE2 salt, so nobody can occupy a predicted address with other keys.
contract AgentWalletFactory {
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
        return _create(owner, agent, cosigner, salt, address(0), 0, 0);
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
        return _create(owner, agent, cosigner, salt, token, limit, period);
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
        address token,
        uint256 limit,
        uint32 period
    ) private returns (address wallet) {
        if (owner == address(0)) revert AgentWallet.ZeroAddress();
        wallet = Clones.cloneDeterministicWithImmutableArgs(
            implementation, abi.encode(owner), _salt(agent, cosigner, salt)
        );
        emit WalletCreated(wallet, owner, agent, cosigner, salt);
        AgentWallet(payable(wallet)).initialize(agent, cosigner, token, limit, period);
    }

    function _salt(address agent, address cosigner, bytes32 salt) private pure returns (bytes32) {
        return keccak256(abi.encode(agent, cosigner, salt));
    }
}
