// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {WalletFixture} from "./base/WalletFixture.sol";
import {AgentWallet} from "../src/AgentWallet.sol";
import {AuditLog} from "../src/AuditLog.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {PlainToken} from "./base/AttackTokens.sol";

/// @notice Execution gas of the calls users pay for, written to snapshots/ by
///         `vm.snapshotGasLastCall` (execution only; total transaction gas, with the 21,000 base
///         and calldata, is measured on Anvil by `cargo run -p chaperone-chain --example gas`).
///         Each scenario runs the second transaction of its kind, as a wallet in use would.
///         ERC-20 rows use a plain OpenZeppelin ERC-20, as the peers' figures do: the devnet
///         `TestToken`'s EIP-3009 and permit functions make its own dispatch dearer.
contract GasTest is WalletFixture {
    PlainToken internal plain;

    function setUp() public override {
        super.setUp();
        plain = new PlainToken();
        plain.mint(address(wallet), 1_000_000e18);
        vm.prank(owner);
        wallet.setBackstop(address(plain), 1000e18, 1 days);
    }

    function test_gas_executeNativeTransfer() public {
        vm.deal(recipient, 1); // an existing account
        _execute(wallet, _one(recipient, 1 ether, ""), 0);
        _execute(wallet, _one(recipient, 1 ether, ""), 1);
        vm.snapshotGasLastCall("AgentWallet.execute native transfer");
    }

    function test_gas_executeErc20Transfer() public {
        bytes memory data = abi.encodeCall(IERC20.transfer, (recipient, 1e18));
        _execute(wallet, _one(address(plain), 0, data), 0);
        _execute(wallet, _one(address(plain), 0, data), 1);
        vm.snapshotGasLastCall("AgentWallet.execute ERC-20 transfer");
    }

    /// @dev The agent sends `execute` itself: no agent signature to recover.
    function test_gas_executeNativeTransferByAgent() public {
        vm.deal(recipient, 1); // an existing account
        _executeAsAgent(_one(recipient, 1 ether, ""), 0);
        _executeAsAgent(_one(recipient, 1 ether, ""), 1);
        vm.snapshotGasLastCall("AgentWallet.execute native transfer, sent by the agent");
    }

    function test_gas_executeErc20TransferByAgent() public {
        bytes memory data = abi.encodeCall(IERC20.transfer, (recipient, 1e18));
        _executeAsAgent(_one(address(plain), 0, data), 0);
        _executeAsAgent(_one(address(plain), 0, data), 1);
        vm.snapshotGasLastCall("AgentWallet.execute ERC-20 transfer, sent by the agent");
    }

    function test_gas_createWalletWithBackstop() public {
        factory.createWalletWithBackstop(
            owner, agent, cosigner, bytes32(uint256(1)), address(0), 1 ether, 1 days
        );
        vm.snapshotGasLastCall("AgentWalletFactory.createWalletWithBackstop");
    }

    function _executeAsAgent(AgentWallet.Call[] memory calls, uint256 nonce) internal {
        uint64 validUntil = uint64(block.timestamp + 60);
        bytes32 digest = wallet.executeDigest(calls, nonce, validUntil);
        bytes memory cosignature = _sign(COSIGNER_KEY, digest);
        vm.prank(agent);
        wallet.executeAsAgent(calls, nonce, validUntil, cosignature);
    }

    function test_gas_createWallet() public {
        factory.createWallet(owner, agent, cosigner, bytes32(uint256(1)));
        vm.snapshotGasLastCall("AgentWalletFactory.createWallet");
    }

    /// @dev The checkpoint pair comes from the Rust vector file: a log of 1,000,000 leaves grown
    ///      by 30,000, and an inclusion proof at depth 20.
    function test_gas_anchorAndVerifyAtOneMillion() public {
        string memory json =
            vm.readFile(string.concat(vm.projectRoot(), "/test/vectors/merkle.json"));
        AuditLog log = new AuditLog();
        bytes32 logId = log.createLog(address(this));
        uint64 first = uint64(vm.parseJsonUint(json, ".gas.first"));
        uint64 second = uint64(vm.parseJsonUint(json, ".gas.second"));
        log.anchor(logId, first, vm.parseJsonBytes32(json, ".gas.first_root"), new bytes32[](0));
        bytes32 secondRoot = vm.parseJsonBytes32(json, ".gas.second_root");
        bytes32[] memory proof = vm.parseJsonBytes32Array(json, ".gas.consistency_proof");
        log.anchor(logId, second, secondRoot, proof);
        vm.snapshotGasLastCall("AuditLog.anchor 1,000,000 -> 1,030,000");

        uint64 index = uint64(vm.parseJsonUint(json, ".gas.inclusion_index"));
        bytes32 leaf = vm.parseJsonBytes32(json, ".gas.inclusion_leaf_hash");
        bytes32[] memory path = vm.parseJsonBytes32Array(json, ".gas.inclusion_proof");
        vm.assertEq(path.length, 20, "depth 20");
        vm.assertTrue(log.verifyInclusion(logId, second, index, leaf, path), "included");
        vm.snapshotGasLastCall("AuditLog.verifyInclusion depth 20");
    }
}
