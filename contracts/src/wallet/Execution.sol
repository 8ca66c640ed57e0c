// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AgentWallet} from "../AgentWallet.sol";
import {Backstops} from "./Backstops.sol";
import {Nonces} from "./Nonces.sol";

/// @title Execution
/// @notice `execute`: calls made only when both the agent and the co-signer signed them, each
///         counted against the owner's backstops before it is made, under a 2-D nonce.
abstract contract Execution is Nonces, Backstops {
    /// @notice EIP-712 type hash of `Call`.
    bytes32 public constant CALL_TYPEHASH = keccak256("Call(address to,uint256 value,bytes data)");
    /// @notice EIP-712 type hash of `Execute`.
    bytes32 public constant EXECUTE_TYPEHASH = keccak256(
        "Execute(Call[] calls,uint256 nonce,uint64 validUntil)Call(address to,uint256 value,bytes data)"
    );

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
        AgentWallet.Call[] calldata calls,
        uint256 nonce,
        uint64 validUntil,
        bytes calldata agentSignature,
        bytes calldata cosignerSignature
    ) external payable {
        Config memory config = _config;
        bytes32 digest = executeDigest(calls, nonce, validUntil);
        if (msg.sender != config.agent && _recover(digest, agentSignature) != config.agent) {
            revert AgentWallet.InvalidAgentSignature();
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
        AgentWallet.Call[] calldata calls,
        uint256 nonce,
        uint64 validUntil,
        bytes calldata cosignerSignature
    ) external payable {
        Config memory config = _config;
        if (msg.sender != config.agent) revert AgentWallet.InvalidAgentSignature();
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
    function executeDigest(AgentWallet.Call[] calldata calls, uint256 nonce, uint64 validUntil)
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

    /// @dev The checks and effects both entry points share, once the agent is established.
    function _execute(
        Config memory config,
        bytes32 digest,
        AgentWallet.Call[] calldata calls,
        uint256 nonce,
        uint64 validUntil,
        bytes calldata cosignerSignature
    ) private {
        if (config.frozen) revert AgentWallet.Frozen();
        // forge-lint: disable-next-line(block-timestamp) -- expiry needs minutes, not seconds, of precision
        if (block.timestamp > validUntil) revert AgentWallet.Expired(validUntil);
        if (_recover(digest, cosignerSignature) != _keys.cosigner) {
            revert AgentWallet.InvalidCosignerSignature();
        }

        _useNonce(config, nonce);
        emit AgentWallet.Executed(nonce, digest);

        // Each call's spend is counted before that call is made; the transaction is atomic, so a
        // later call that exceeds the backstop undoes the earlier ones.
        for (uint256 i; i < calls.length; ++i) {
            AgentWallet.Call calldata c = calls[i];
            _countSpend(c);
            if (!_call(c)) _revertCallFailed(i);
        }
    }

    /// @dev Makes the call without copying its return data (Solidity's `.call` copies it to
    ///      memory even when unused: a few hundred gas per token transfer).
    function _call(AgentWallet.Call calldata c) private returns (bool ok) {
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
        revert AgentWallet.CallFailed(index, returnData);
    }
}
