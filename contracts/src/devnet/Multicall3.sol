// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice Multicall3's `aggregate3`, for the devnet, where `chaperone up` installs it at
///         Multicall3's canonical address (0xcA11bde05977b3631167028862bE2a173976CA11): x402
///         facilitators deploy a counterfactual (ERC-6492) wallet and pay from it in one
///         `aggregate3`, and alloy's multicall batches through it. Same ABI and semantics as
///         Multicall3's `aggregate3`; the rest of Multicall3 is left out.
contract Multicall3 {
    /// @notice One call, and whether its failure is tolerated.
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    /// @notice One call's outcome.
    struct Result {
        bool success;
        bytes returnData;
    }

    /// @notice Raised when a call that may not fail fails.
    error CallFailed(uint256 index, bytes returnData);

    /// @notice Makes the calls in order.
    /// @param calls The calls.
    /// @return returnData Each call's outcome.
    function aggregate3(Call3[] calldata calls) external returns (Result[] memory returnData) {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool success, bytes memory data) = calls[i].target.call(calls[i].callData);
            if (!success && !calls[i].allowFailure) revert CallFailed(i, data);
            returnData[i] = Result(success, data);
        }
    }
}
