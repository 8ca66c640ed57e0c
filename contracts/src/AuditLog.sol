// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {MerkleProofs} from "./MerkleProofs.sol";

/// @title AuditLog
/// @notice Anchors checkpoints of RFC 9162 Merkle logs (SHA-256, leaf prefix 0x00, node prefix
///         0x01). A new checkpoint is accepted only with a consistency proof from the last one,
///         so the append-only property is enforced on chain, not merely detectable.
/// @dev Storage layout, chosen for `anchor` gas (one call per anchoring interval):
///      - `_logs[logId]` packs operator (160 bits) and the anchored size (64 bits) into one slot,
///        so `anchor` reads and writes a single config slot; the owner lives in its own slot
///        because only the rare owner calls touch it.
///      - `_roots[logId][size]` holds one root per anchored size: one fresh slot per anchor
///        (the unavoidable 22,100 gas), which lets `verifyInclusion` check against any
///        anchored size, not only the latest. The previous root is read from the same mapping.
contract AuditLog {
    /// @dev One slot: operator and latest anchored size.
    struct LogState {
        address operator;
        uint64 size;
    }

    /// @notice Raised when a caller other than the log's owner calls an owner function.
    error NotLogOwner(bytes32 logId, address caller);
    /// @notice Raised when a caller other than the log's operator anchors.
    error NotLogOperator(bytes32 logId, address caller);
    /// @notice Raised for a log id that was never created.
    error UnknownLog(bytes32 logId);
    /// @notice Raised when an operator or owner would be the zero address.
    error ZeroAddress();
    /// @notice Raised when anchoring an empty tree or a zero root.
    error EmptyCheckpoint();
    /// @notice Raised when a checkpoint is smaller than the last anchored one.
    error SizeDecreased(uint64 anchoredSize, uint64 size);
    /// @notice Raised when a checkpoint repeats the anchored size with a different root (a fork).
    error RootMismatch(uint64 size, bytes32 anchoredRoot, bytes32 root);
    /// @notice Raised when the consistency proof does not show the new tree extends the old one.
    error InvalidConsistencyProof(uint64 fromSize, uint64 toSize);

    /// @notice Emitted when a log is created.
    event LogCreated(bytes32 indexed logId, address indexed owner, address indexed operator);
    /// @notice Emitted when a log's operator changes.
    event OperatorChanged(bytes32 indexed logId, address indexed operator);
    /// @notice Emitted when a log's owner changes.
    event OwnerChanged(bytes32 indexed logId, address indexed owner);
    /// @notice Emitted when a checkpoint is anchored.
    event Anchored(bytes32 indexed logId, uint64 size, bytes32 root);

    mapping(bytes32 logId => LogState) private _logs;
    mapping(bytes32 logId => address) private _owners;
    mapping(bytes32 logId => mapping(uint64 size => bytes32 root)) private _roots;
    uint256 private _logCount;

    /// @notice Creates a log owned by the caller and operated by `operator`.
    /// @param operator The address allowed to anchor checkpoints.
    /// @return logId The new log's id, unique to this contract and chain.
    function createLog(address operator) external returns (bytes32 logId) {
        if (operator == address(0)) revert ZeroAddress();
        logId = keccak256(abi.encode(block.chainid, address(this), ++_logCount));
        _logs[logId].operator = operator;
        _owners[logId] = msg.sender;
        emit LogCreated(logId, msg.sender, operator);
    }

    /// @notice Rotates the operator of a log; only its owner may.
    /// @param logId The log.
    /// @param operator The new operator.
    function setOperator(bytes32 logId, address operator) external {
        _onlyOwner(logId);
        if (operator == address(0)) revert ZeroAddress();
        _logs[logId].operator = operator;
        emit OperatorChanged(logId, operator);
    }

    /// @notice Hands a log to a new owner; only its owner may.
    /// @param logId The log.
    /// @param owner The new owner.
    function setOwner(bytes32 logId, address owner) external {
        _onlyOwner(logId);
        if (owner == address(0)) revert ZeroAddress();
        _owners[logId] = owner;
        emit OwnerChanged(logId, owner);
    }

    /// @notice Anchors a checkpoint `(size, root)`. Only the log's operator may. The first anchor
    ///         needs no proof; every later one needs an RFC 9162 §2.1.4 consistency proof from the
    ///         last anchored checkpoint. Re-anchoring the latest checkpoint is a no-op, so a worker
    ///         can safely retry a transaction whose fate it does not know.
    /// @param logId The log.
    /// @param size The tree size of the checkpoint.
    /// @param root The tree's root hash at `size`.
    /// @param consistencyProof Proof that the tree at `size` extends the last anchored tree.
    function anchor(bytes32 logId, uint64 size, bytes32 root, bytes32[] calldata consistencyProof)
        external
    {
        LogState memory log = _logs[logId];
        if (log.operator != msg.sender) {
            if (log.operator == address(0)) revert UnknownLog(logId);
            revert NotLogOperator(logId, msg.sender);
        }
        if (size == 0 || root == bytes32(0)) revert EmptyCheckpoint();

        uint64 oldSize = log.size;
        if (size < oldSize) revert SizeDecreased(oldSize, size);
        if (oldSize != 0) {
            bytes32 oldRoot = _roots[logId][oldSize];
            if (size == oldSize) {
                if (root != oldRoot) revert RootMismatch(size, oldRoot, root);
                return;
            }
            if (!MerkleProofs.verifyConsistency(oldSize, size, oldRoot, root, consistencyProof)) {
                revert InvalidConsistencyProof(oldSize, size);
            }
        } else if (consistencyProof.length != 0) {
            revert InvalidConsistencyProof(0, size);
        }

        _roots[logId][size] = root;
        _logs[logId].size = size;
        emit Anchored(logId, size, root);
    }

    /// @notice Checks an RFC 9162 §2.1.3 inclusion proof against an anchored checkpoint.
    /// @param logId The log.
    /// @param size An anchored tree size.
    /// @param index The leaf's index.
    /// @param leafHash SHA-256(0x00 ‖ leaf data).
    /// @param proof The audit path, bottom to top.
    /// @return True only if `size` was anchored and the proof leads to its root.
    function verifyInclusion(
        bytes32 logId,
        uint64 size,
        uint64 index,
        bytes32 leafHash,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _roots[logId][size];
        if (root == bytes32(0)) return false;
        return MerkleProofs.verifyInclusion(size, index, leafHash, root, proof);
    }

    /// @notice The latest anchored checkpoint of a log; (0, 0) before the first anchor.
    /// @param logId The log.
    /// @return size The anchored tree size.
    /// @return root The anchored root.
    function latest(bytes32 logId) external view returns (uint64 size, bytes32 root) {
        size = _logs[logId].size;
        root = _roots[logId][size];
    }

    /// @notice The root anchored at `size`, or zero if that size was never anchored.
    /// @param logId The log.
    /// @param size A tree size.
    /// @return The anchored root.
    function rootAt(bytes32 logId, uint64 size) external view returns (bytes32) {
        return _roots[logId][size];
    }

    /// @notice The owner and operator of a log.
    /// @param logId The log.
    /// @return owner The log's owner.
    /// @return operator The log's operator.
    function logInfo(bytes32 logId) external view returns (address owner, address operator) {
        return (_owners[logId], _logs[logId].operator);
    }

    function _onlyOwner(bytes32 logId) private view {
        if (_owners[logId] != msg.sender) {
            if (_logs[logId].operator == address(0)) revert UnknownLog(logId);
            revert NotLogOwner(logId, msg.sender);
        }
    }
}
