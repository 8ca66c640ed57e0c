// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {AgentWallet} from "../AgentWallet.sol";

/// @title WalletStorage
/// @notice What every part of `AgentWallet` shares: the storage layout (all of it, declared here
///         only), the owner, the keys, and the recovery of their signatures.
/// @dev Storage layout, chosen so a one-transfer `execute` touches three cold slots:
///      - slots 0 and 1: `EIP712`'s name and version fallbacks, never written (both strings
///        are short enough to live in its immutables);
///      - slot 2 `_config`: agent (160) | frozen (8) | sequence of nonce key 0 (64). The common
///        case, nonce key 0, reads and bumps its sequence in the slot `execute` must read anyway.
///      - slot 3 `_keys`: co-signer (160) | authorizationsValidFrom (64).
///      - `_backstops[token]`: limit (96) | spent (96) | period (32) | windowStart (32), one slot per
///        token, so counting a spend is one read and one write.
///      - `_authorizationBudgets[token]`: maxValue (96) | EIP-3009 slots (16) | Permit2 slots (16)
///        | a copy of the backstop's period (32), so `isValidSignature` reads one slot for the
///        budget (`_setBackstop` keeps the copy in step).
///      - `_nonceSequences[key]` for nonce keys other than 0, and
///        `_allowedCalls[target][selector]`, read only off the common path.
///      The owner takes no slot: it is an immutable argument of the clone (see `owner`).
///
///      The structs the ABI shows (`Backstop`, `AuthorizationBudget`) are declared in
///      `AgentWallet`, with the wallet's errors and events: see there for why.
abstract contract WalletStorage is EIP712 {
    /// @dev Packed into one slot; see the contract's storage notes.
    struct Config {
        address agent;
        bool frozen;
        uint64 sequence0;
    }

    /// @dev Slot 3: the co-signer, and the earliest period start at which an EIP-1271
    ///      authorization is still honoured (`invalidateAuthorizations` moves it forward).
    struct Keys {
        address cosigner;
        uint64 authorizationsValidFrom;
    }

    Config internal _config;
    Keys internal _keys;
    mapping(address token => AgentWallet.Backstop) internal _backstops;
    mapping(uint192 key => uint64) internal _nonceSequences;
    mapping(address token => AgentWallet.AuthorizationBudget) internal _authorizationBudgets;
    mapping(address target => mapping(bytes4 selector => bool)) internal _allowedCalls;

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

    function _onlyOwner() internal view {
        if (msg.sender != owner()) revert AgentWallet.NotOwner(msg.sender);
    }

    /// @dev Recovers a 65-byte r ‖ s ‖ v signature, low-s only (EIP-2: s ≤ n/2, so a signature
    ///      cannot be replayed in its malleated form). Returns address(0) for anything malformed
    ///      or invalid, which never equals a configured key. The ecrecover precompile is called
    ///      directly (as Solady's ECDSA does) rather than through OpenZeppelin's `tryRecover`:
    ///      the same checks for ~100 gas less, paid twice on every relayed `execute`.
    function _recover(bytes32 digest, bytes calldata signature)
        internal
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
}
