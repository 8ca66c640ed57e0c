// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice halmos's symbolic-value cheatcodes (the subset these proofs use), declared here
///         rather than taken from the halmos-cheatcodes git repository, which this project's
///         machines cannot reach. Selectors as in halmos 0.3.3 (`halmos/cheatcodes.py`).
interface SVM {
    function createUint(uint256 bitSize, string calldata name) external pure returns (uint256);
    function createUint256(string calldata name) external pure returns (uint256);
    function createBytes(uint256 byteSize, string calldata name)
        external
        pure
        returns (bytes memory);
    function createBytes32(string calldata name) external pure returns (bytes32);
    function createAddress(string calldata name) external pure returns (address);
    function createBool(string calldata name) external pure returns (bool);
}

/// @notice The Foundry cheatcodes the proofs use (halmos implements them too).
interface HalmosVm {
    function warp(uint256 newTimestamp) external;
    function prank(address msgSender) external;
    function deal(address account, uint256 newBalance) external;
    function etch(address target, bytes calldata newRuntimeBytecode) external;
    function store(address target, bytes32 slot, bytes32 value) external;
    function load(address target, bytes32 slot) external view returns (bytes32);
    function assume(bool condition) external pure;
}

/// @notice The cheatcode handles. `check_` functions are halmos's (forge compiles them but
///         never runs them); scripts/test-contracts-security.sh runs them.
abstract contract HalmosBase {
    SVM internal constant svm = SVM(address(uint160(uint256(keccak256("svm cheat code")))));
    HalmosVm internal constant vm =
        HalmosVm(address(uint160(uint256(keccak256("hevm cheat code")))));
}
