// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice Multicall3 for the devnet, where `chaperone up` installs it at Multicall3's canonical
///         address (0xcA11bde05977b3631167028862bE2a173976CA11) with `anvil_setCode`. Every
///         function of the canonical contract, with the same signatures and semantics, written
///         from its interface: x402-rs's facilitator deploys a counterfactual (ERC-6492) wallet
///         and pays from it in one `aggregate3`, x402's TypeScript facilitator (the npm package
///         for EVM chains) simulates and diagnoses payments through `tryAggregate`, and alloy
///         and viem batch reads through it. Stateless (no storage, no immutables), because no
///         constructor runs.
/// @dev Failures revert with the canonical contract's `Error(string)` reasons, not custom
///      errors, so that callers which match on them see what they would see on a real chain.
///      Two canonical quirks are kept on purpose: `tryBlockAndAggregate` and
///      `blockAndAggregate` return `blockhash(block.number)`, which is always zero, and
///      `getCurrentBlockDifficulty` returns `block.prevrandao` (what `DIFFICULTY` became at the
///      merge). Unlike the canonical contract, `aggregate3Value` sums the values with checked
///      arithmetic: a sum that overflows reverts instead of wrapping around to `msg.value`.
contract Multicall3 {
    /// @notice One call that must succeed (`aggregate`, `tryAggregate` and the block variants).
    struct Call {
        address target;
        bytes callData;
    }

    /// @notice One call, and whether its failure is tolerated.
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    /// @notice One call with the ether it sends, and whether its failure is tolerated.
    struct Call3Value {
        address target;
        bool allowFailure;
        uint256 value;
        bytes callData;
    }

    /// @notice One call's outcome.
    struct Result {
        bool success;
        bytes returnData;
    }

    /// @notice Makes the calls in order; any failure reverts the whole batch.
    /// @param calls The calls.
    /// @return blockNumber The current block's number.
    /// @return returnData Each call's return data.
    function aggregate(Call[] calldata calls)
        external
        payable
        returns (uint256 blockNumber, bytes[] memory returnData)
    {
        blockNumber = block.number;
        returnData = new bytes[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool success, bytes memory data) = calls[i].target.call(calls[i].callData);
            require(success, "Multicall3: call failed");
            returnData[i] = data;
        }
    }

    /// @notice Makes the calls in order; with `requireSuccess`, any failure reverts the batch.
    /// @param requireSuccess Whether a failed call reverts the batch.
    /// @param calls The calls.
    /// @return returnData Each call's outcome.
    function tryAggregate(bool requireSuccess, Call[] calldata calls)
        external
        payable
        returns (Result[] memory returnData)
    {
        returnData = _tryAggregate(requireSuccess, calls);
    }

    /// @notice `tryAggregate`, with the current block's number and `blockhash(block.number)`.
    /// @param requireSuccess Whether a failed call reverts the batch.
    /// @param calls The calls.
    /// @return blockNumber The current block's number.
    /// @return blockHash `blockhash(block.number)`: zero, as in the canonical contract.
    /// @return returnData Each call's outcome.
    function tryBlockAndAggregate(bool requireSuccess, Call[] calldata calls)
        external
        payable
        returns (uint256 blockNumber, bytes32 blockHash, Result[] memory returnData)
    {
        blockNumber = block.number;
        blockHash = blockhash(block.number);
        returnData = _tryAggregate(requireSuccess, calls);
    }

    /// @notice `tryBlockAndAggregate` with every call required to succeed.
    /// @param calls The calls.
    /// @return blockNumber The current block's number.
    /// @return blockHash `blockhash(block.number)`: zero, as in the canonical contract.
    /// @return returnData Each call's outcome.
    function blockAndAggregate(Call[] calldata calls)
        external
        payable
        returns (uint256 blockNumber, bytes32 blockHash, Result[] memory returnData)
    {
        blockNumber = block.number;
        blockHash = blockhash(block.number);
        returnData = _tryAggregate(true, calls);
    }

    /// @notice Makes the calls in order; a failed call that may not fail reverts the batch.
    /// @param calls The calls.
    /// @return returnData Each call's outcome.
    function aggregate3(Call3[] calldata calls)
        external
        payable
        returns (Result[] memory returnData)
    {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            Call3 calldata c = calls[i];
            (bool success, bytes memory data) = c.target.call(c.callData);
            require(success || c.allowFailure, "Multicall3: call failed");
            returnData[i] = Result(success, data);
        }
    }

    /// @notice `aggregate3` with ether: each call sends its `value`, and `msg.value` must be
    ///         exactly their sum.
    /// @param calls The calls.
    /// @return returnData Each call's outcome.
    function aggregate3Value(Call3Value[] calldata calls)
        external
        payable
        returns (Result[] memory returnData)
    {
        uint256 total = 0;
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            Call3Value calldata c = calls[i];
            total += c.value;
            (bool success, bytes memory data) = c.target.call{value: c.value}(c.callData);
            require(success || c.allowFailure, "Multicall3: call failed");
            returnData[i] = Result(success, data);
        }
        require(msg.value == total, "Multicall3: value mismatch");
    }

    /// @notice The hash of a block (zero beyond the last 256 and for the current one).
    /// @param blockNumber The block.
    /// @return blockHash Its hash.
    function getBlockHash(uint256 blockNumber) external view returns (bytes32 blockHash) {
        blockHash = blockhash(blockNumber);
    }

    /// @notice The current block's number.
    /// @return blockNumber The number.
    function getBlockNumber() external view returns (uint256 blockNumber) {
        blockNumber = block.number;
    }

    /// @notice The current block's coinbase.
    /// @return coinbase The address.
    function getCurrentBlockCoinbase() external view returns (address coinbase) {
        coinbase = block.coinbase;
    }

    /// @notice The current block's difficulty: since the merge, its `prevrandao`.
    /// @return difficulty The value.
    function getCurrentBlockDifficulty() external view returns (uint256 difficulty) {
        difficulty = block.prevrandao;
    }

    /// @notice The current block's gas limit.
    /// @return gaslimit The limit.
    function getCurrentBlockGasLimit() external view returns (uint256 gaslimit) {
        gaslimit = block.gaslimit;
    }

    /// @notice The current block's timestamp.
    /// @return timestamp The timestamp.
    function getCurrentBlockTimestamp() external view returns (uint256 timestamp) {
        timestamp = block.timestamp;
    }

    /// @notice An address's ether balance.
    /// @param addr The address.
    /// @return balance Its balance in wei.
    function getEthBalance(address addr) external view returns (uint256 balance) {
        balance = addr.balance;
    }

    /// @notice The previous block's hash.
    /// @return blockHash The hash.
    function getLastBlockHash() external view returns (bytes32 blockHash) {
        blockHash = blockhash(block.number - 1);
    }

    /// @notice The current block's base fee.
    /// @return basefee The base fee in wei.
    function getBasefee() external view returns (uint256 basefee) {
        basefee = block.basefee;
    }

    /// @notice The chain id.
    /// @return chainid The id.
    function getChainId() external view returns (uint256 chainid) {
        chainid = block.chainid;
    }

    function _tryAggregate(bool requireSuccess, Call[] calldata calls)
        private
        returns (Result[] memory returnData)
    {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool success, bytes memory data) = calls[i].target.call(calls[i].callData);
            require(success || !requireSuccess, "Multicall3: call failed");
            returnData[i] = Result(success, data);
        }
    }
}
