// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AgentWallet} from "../AgentWallet.sol";
import {WalletStorage} from "./WalletStorage.sol";

/// @title Backstops
/// @notice The owner's on-chain spending limits per token, which every `execute` counts
///         against, and the calls `execute` may make at all.
/// @dev Backstop periods are fixed windows aligned to multiples of the period (Unix time), not
///      rolling windows. A rolling window needs a history of spends per token (a ring buffer,
///      many slots per `execute`); a fixed window needs one slot. The cost is the boundary: at
///      most 2× a period's bound can leave within one period length (end of one window, start of
///      the next). The backstop is a coarse last line that caps a stolen co-signer key; the
///      policy service enforces the precise sliding windows off chain.
///
///      Default deny: a call with calldata goes through only if it is a counted spend
///      (`transfer`, `transferFrom`, `approve`, `increaseAllowance`) of a token with a backstop,
///      or the owner allowed its (target, selector) with `setCallAllowed`. Native value counts
///      against the native backstop whatever the call.
abstract contract Backstops is WalletStorage {
    bytes4 private constant TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 private constant TRANSFER_FROM = 0x23b872dd; // transferFrom(address,address,uint256)
    bytes4 private constant APPROVE = 0x095ea7b3; // approve(address,uint256)
    bytes4 private constant INCREASE_ALLOWANCE = 0x39509351; // increaseAllowance(address,uint256)

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
        AgentWallet.AuthorizationBudget storage budget = _authorizationBudgets[token];
        if (budget.period != 0) budget.period = period;
    }

    /// @notice Allows (or disallows) `execute` to call `selector` on `target` with calldata the
    ///         backstop cannot count. Native value sent along still counts.
    /// @param target The contract.
    /// @param selector The function selector.
    /// @param allowed Whether the call is allowed.
    function setCallAllowed(address target, bytes4 selector, bool allowed) external {
        _onlyOwner();
        _allowedCalls[target][selector] = allowed;
        emit AgentWallet.CallAllowedSet(target, selector, allowed);
    }

    /// @notice A token's backstop configuration and current window.
    /// @param token The token, or address(0) for native currency.
    /// @return The backstop.
    function backstop(address token) external view returns (AgentWallet.Backstop memory) {
        return _backstops[token];
    }

    /// @notice What `token` can still spend now under its backstop.
    /// @param token The token, or address(0) for native currency.
    /// @return The remaining amount in base units.
    function backstopRemaining(address token) external view returns (uint256) {
        AgentWallet.Backstop memory b = _backstops[token];
        // forge-lint: disable-next-line(block-timestamp) -- windows are hours or days long
        if (block.timestamp >= uint256(b.windowStart) + b.period) return b.limit;
        // A limit lowered below what the window already spent leaves nothing, not an underflow.
        return b.spent >= b.limit ? 0 : b.limit - b.spent;
    }

    /// @notice Whether the owner allowed `execute` to call `selector` on `target`.
    /// @param target The contract.
    /// @param selector The function selector.
    /// @return True when allowed.
    function callAllowed(address target, bytes4 selector) external view returns (bool) {
        return _allowedCalls[target][selector];
    }

    /// @dev Counts what a call moves: its native value, and the amount of an ERC-20 `transfer`,
    ///      `transferFrom`, `approve` or `increaseAllowance` (an approval is spend: the spender can
    ///      take it later without another co-signature). Any other calldata needs the owner's
    ///      `setCallAllowed`: default deny, because the backstop cannot count what an unknown
    ///      function moves (ERC-721/1155 transfers, ERC-1363 `transferAndCall`, ERC-777 `send`,
    ///      a token's own `multicall`, ...).
    function _countSpend(AgentWallet.Call calldata c) internal {
        if (c.value != 0) _spend(address(0), c.value);
        if (c.data.length == 0) return;
        if (c.data.length < 4) revert AgentWallet.CallNotAllowed(c.to, bytes4(c.data));
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
            revert AgentWallet.CallNotAllowed(c.to, selector);
        }
    }

    /// @dev Reads and writes the packed `Backstop` word directly: one SLOAD and one SSTORE,
    ///      where the struct copy compiled to several masked loads and stores. A zero amount is
    ///      still checked against a configured backstop: an ERC-721 shares the `approve` and
    ///      `transferFrom` selectors, and token id 0 must not pass.
    function _spend(address token, uint256 amount) private {
        AgentWallet.Backstop storage stored = _backstops[token];
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
                if (period == 0) revert AgentWallet.BackstopExceeded(token, amount, 0);
                // Windows are aligned to multiples of the period, as EIP-1271 budget periods are.
                windowStart = block.timestamp - block.timestamp % period;
                spent = 0;
            }
            // A limit lowered below what the window already spent leaves nothing (no underflow).
            uint256 remaining = spent >= limit ? 0 : limit - spent;
            if (amount > remaining) revert AgentWallet.BackstopExceeded(token, amount, remaining);
            word = limit | ((spent + amount) << 96) | (period << 192) | (windowStart << 224);
        }
        assembly ("memory-safe") {
            sstore(stored.slot, word)
        }
    }

    function _setBackstop(address token, uint256 limit, uint32 period) internal {
        if (limit > type(uint96).max || period == 0) revert AgentWallet.InvalidBackstop();
        AgentWallet.Backstop storage b = _backstops[token];
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against type(uint96).max above
        b.limit = uint96(limit);
        b.period = period;
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against type(uint96).max above
        emit AgentWallet.BackstopSet(token, uint96(limit), period);
    }
}
