// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AgentWallet} from "../AgentWallet.sol";
import {WalletStorage} from "./WalletStorage.sol";

/// @title Nonces
/// @notice The 2-D nonces of co-signed executions: a nonce is key (high 192 bits) ‖ sequence
///         (low 64 bits), and each key's sequences are used in order, so requests under
///         different keys never wait on each other.
/// @dev Key 0's sequence lives in `_config` beside the agent, which `execute` reads anyway;
///      the other keys' in `_nonceSequences`.
abstract contract Nonces is WalletStorage {
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
            emit AgentWallet.NoncesInvalidated(key, next);
        }
    }

    /// @notice The next usable nonce for `key` (key in the high 192 bits).
    /// @param key The nonce key.
    /// @return The full nonce to sign next.
    function nextNonce(uint192 key) external view returns (uint256) {
        uint64 sequence = key == 0 ? _config.sequence0 : _nonceSequences[key];
        return (uint256(key) << 64) | sequence;
    }

    function _useNonce(Config memory config, uint256 nonce) internal {
        // forge-lint: disable-next-line(unsafe-typecast) -- the key is the high 192 bits by definition
        uint192 key = uint192(nonce >> 64);
        // forge-lint: disable-next-line(unsafe-typecast) -- the sequence is the low 64 bits by definition
        uint64 sequence = uint64(nonce);
        if (key == 0) {
            if (sequence != config.sequence0) {
                revert AgentWallet.InvalidNonce(nonce, config.sequence0);
            }
            // Rewrites `_config`'s slot from the copy already in memory (agent | frozen |
            // sequence0; frozen is false here) instead of a masked read-modify-write.
            uint256 packed = uint256(uint160(config.agent)) | (uint256(sequence + 1) << 168);
            assembly ("memory-safe") {
                sstore(_config.slot, packed)
            }
        } else {
            uint64 expected = _nonceSequences[key];
            if (sequence != expected) revert AgentWallet.InvalidNonce(nonce, expected);
            _nonceSequences[key] = sequence + 1;
        }
    }
}
