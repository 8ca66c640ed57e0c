// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {TestBase} from "./base/TestBase.sol";
import {Multicall3} from "../src/devnet/Multicall3.sol";

/// @dev The cheatcodes this file needs beyond base/Vm.sol's.
interface BlockCheats {
    function roll(uint256 newHeight) external;
    function fee(uint256 newBasefee) external;
    function coinbase(address newCoinbase) external;
    function prevrandao(bytes32 newPrevrandao) external;
}

/// @dev A call target: answers, fails, takes ether, and says who called it.
contract Target {
    error Nope(uint256 code);

    function echo(uint256 x) external pure returns (uint256) {
        return x;
    }

    function fail() external pure {
        revert Nope(7);
    }

    function pay() external payable returns (uint256) {
        return msg.value;
    }

    function caller() external view returns (address) {
        return msg.sender;
    }
}

/// @notice The devnet Multicall3 as `chaperone up` installs it: runtime code put at the
///         canonical address (no constructor), called the way x402 facilitators call it.
contract Multicall3Test is TestBase {
    Multicall3 internal constant MC = Multicall3(0xcA11bde05977b3631167028862bE2a173976CA11);
    BlockCheats internal constant cheats = BlockCheats(address(vm));
    bytes internal constant CALL_FAILED =
        abi.encodeWithSignature("Error(string)", "Multicall3: call failed");
    Target internal target;

    function setUp() public {
        vm.etch(address(MC), type(Multicall3).runtimeCode);
        target = new Target();
        vm.deal(address(this), 10 ether);
    }

    function _calls(bool withFailure) internal view returns (Multicall3.Call[] memory calls) {
        calls = new Multicall3.Call[](3);
        calls[0] = Multicall3.Call(address(target), abi.encodeCall(Target.echo, (42)));
        calls[1] = withFailure
            ? Multicall3.Call(address(target), abi.encodeCall(Target.fail, ()))
            : Multicall3.Call(address(target), abi.encodeCall(Target.echo, (43)));
        calls[2] = Multicall3.Call(address(target), abi.encodeCall(Target.caller, ()));
    }

    function test_tryAggregate_reportsEachOutcomeWithoutReverting() public {
        Multicall3.Result[] memory r = MC.tryAggregate(false, _calls(true));
        vm.assertEq(r.length, 3, "one result per call");
        vm.assertTrue(r[0].success, "the first call succeeds");
        vm.assertEq(abi.decode(r[0].returnData, (uint256)), 42, "its return data");
        vm.assertFalse(r[1].success, "the second call fails");
        vm.assertEq(
            keccak256(r[1].returnData),
            keccak256(abi.encodeWithSelector(Target.Nope.selector, 7)),
            "its revert data"
        );
        vm.assertTrue(r[2].success, "later calls still run");
        vm.assertEq(
            abi.decode(r[2].returnData, (address)), address(MC), "called by Multicall3 itself"
        );
    }

    function test_tryAggregate_requireSuccessRevertsOnAFailure() public {
        vm.expectRevert(CALL_FAILED);
        MC.tryAggregate(true, _calls(true));
        Multicall3.Result[] memory r = MC.tryAggregate(true, _calls(false));
        vm.assertTrue(r[0].success && r[1].success && r[2].success, "nothing failed");
        vm.assertEq(abi.decode(r[1].returnData, (uint256)), 43, "the second call's data");
    }

    function test_tryBlockAndAggregate_returnsTheBlockAndTheOutcomes() public {
        cheats.roll(1234);
        (uint256 number, bytes32 hash, Multicall3.Result[] memory r) =
            MC.tryBlockAndAggregate(false, _calls(true));
        vm.assertEq(number, 1234, "the current block's number");
        vm.assertEq(hash, bytes32(0), "blockhash(block.number) is zero, as on the real one");
        vm.assertTrue(r[0].success, "the first call succeeds");
        vm.assertFalse(r[1].success, "the second fails");
        vm.expectRevert(CALL_FAILED);
        MC.tryBlockAndAggregate(true, _calls(true));
        vm.expectRevert(CALL_FAILED);
        MC.blockAndAggregate(_calls(true));
        (number,, r) = MC.blockAndAggregate(_calls(false));
        vm.assertEq(number, 1234, "blockAndAggregate: the block");
        vm.assertEq(r.length, 3, "blockAndAggregate: the results");
    }

    function test_aggregate_returnsDataAndRevertsOnAnyFailure() public {
        cheats.roll(77);
        (uint256 number, bytes[] memory data) = MC.aggregate(_calls(false));
        vm.assertEq(number, 77, "the block number");
        vm.assertEq(abi.decode(data[0], (uint256)), 42, "the first call's data");
        vm.assertEq(abi.decode(data[1], (uint256)), 43, "the second call's data");
        vm.expectRevert(CALL_FAILED);
        MC.aggregate(_calls(true));
    }

    function test_aggregate3_honoursAllowFailure() public {
        Multicall3.Call3[] memory calls = new Multicall3.Call3[](2);
        calls[0] = Multicall3.Call3(address(target), true, abi.encodeCall(Target.fail, ()));
        calls[1] = Multicall3.Call3(address(target), false, abi.encodeCall(Target.echo, (5)));
        Multicall3.Result[] memory r = MC.aggregate3(calls);
        vm.assertFalse(r[0].success, "a tolerated failure is reported");
        vm.assertEq(abi.decode(r[1].returnData, (uint256)), 5, "and the next call runs");
        calls[0].allowFailure = false;
        vm.expectRevert(CALL_FAILED);
        MC.aggregate3(calls);
    }

    function _valueCalls(bool failureAllowed)
        internal
        view
        returns (Multicall3.Call3Value[] memory calls)
    {
        calls = new Multicall3.Call3Value[](3);
        calls[0] =
            Multicall3.Call3Value(address(target), false, 1 ether, abi.encodeCall(Target.pay, ()));
        // A function that takes no ether: the call fails.
        calls[1] = Multicall3.Call3Value(
            address(target), failureAllowed, 0.5 ether, abi.encodeCall(Target.echo, (1))
        );
        calls[2] = Multicall3.Call3Value(address(target), false, 0, abi.encodeCall(Target.pay, ()));
    }

    function test_aggregate3Value_sendsEachValueAndRequiresTheirSum() public {
        Multicall3.Result[] memory r = MC.aggregate3Value{value: 1.5 ether}(_valueCalls(true));
        vm.assertEq(abi.decode(r[0].returnData, (uint256)), 1 ether, "the first call's value");
        vm.assertFalse(r[1].success, "a non-payable target refuses its value");
        vm.assertTrue(r[2].success, "a call without value");
        vm.assertEq(abi.decode(r[2].returnData, (uint256)), 0, "sends none");
        vm.assertEq(address(target).balance, 1 ether, "only the successful value arrived");
        vm.assertEq(address(MC).balance, 0.5 ether, "the refused value stays, as on the real one");

        vm.expectRevert(abi.encodeWithSignature("Error(string)", "Multicall3: value mismatch"));
        MC.aggregate3Value{value: 2 ether}(_valueCalls(true));
        vm.expectRevert(CALL_FAILED);
        MC.aggregate3Value{value: 1.5 ether}(_valueCalls(false));
    }

    /// @dev The canonical contract sums without overflow checks: values that wrap around to
    ///      `msg.value` would pay out ether left in it. Here the sum is checked.
    function test_aggregate3Value_anOverflowingSumCannotTakeLeftEther() public {
        MC.aggregate3Value{value: 1.5 ether}(_valueCalls(true));
        vm.assertEq(address(MC).balance, 0.5 ether, "ether left behind");
        Multicall3.Call3Value[] memory calls = new Multicall3.Call3Value[](2);
        calls[0] = Multicall3.Call3Value(
            address(target), false, 0.5 ether, abi.encodeCall(Target.pay, ())
        );
        calls[1] = Multicall3.Call3Value(
            address(target), true, type(uint256).max - 0.5 ether + 1, abi.encodeCall(Target.pay, ())
        );
        vm.expectRevert(abi.encodeWithSignature("Panic(uint256)", 0x11));
        MC.aggregate3Value{value: 0}(calls);
        vm.assertEq(address(MC).balance, 0.5 ether, "still there");
    }

    function testFuzz_aggregate3Value_acceptsOnlyTheExactSum(uint96 a, uint96 b, uint96 sent)
        public
    {
        vm.deal(address(this), uint256(a) + b + sent);
        Multicall3.Call3Value[] memory calls = new Multicall3.Call3Value[](2);
        // Failures tolerated: a call short of ether fails quietly, and the sum decides.
        calls[0] = Multicall3.Call3Value(address(target), true, a, abi.encodeCall(Target.pay, ()));
        calls[1] = Multicall3.Call3Value(address(target), true, b, abi.encodeCall(Target.pay, ()));
        uint256 sum = uint256(a) + b;
        if (sent != sum) {
            vm.expectRevert(abi.encodeWithSignature("Error(string)", "Multicall3: value mismatch"));
            MC.aggregate3Value{value: sent}(calls);
        } else {
            MC.aggregate3Value{value: sum}(calls);
            vm.assertEq(address(target).balance, sum, "every value arrived");
        }
    }

    function test_getters_readTheBlockAndTheChain() public {
        cheats.roll(500);
        vm.warp(1_700_000_000);
        cheats.fee(7 gwei);
        cheats.coinbase(address(0xC0FFEE));
        cheats.prevrandao(bytes32(uint256(99)));
        vm.chainId(8453);
        vm.assertEq(MC.getBlockNumber(), 500, "getBlockNumber");
        vm.assertEq(MC.getCurrentBlockTimestamp(), 1_700_000_000, "getCurrentBlockTimestamp");
        vm.assertEq(MC.getBasefee(), 7 gwei, "getBasefee");
        vm.assertEq(MC.getCurrentBlockCoinbase(), address(0xC0FFEE), "getCurrentBlockCoinbase");
        vm.assertEq(MC.getCurrentBlockDifficulty(), 99, "getCurrentBlockDifficulty: prevrandao");
        vm.assertEq(MC.getCurrentBlockGasLimit(), block.gaslimit, "getCurrentBlockGasLimit");
        vm.assertEq(MC.getChainId(), 8453, "getChainId");
        vm.assertEq(MC.getEthBalance(address(target)), 0, "getEthBalance: none");
        vm.assertEq(MC.getEthBalance(address(this)), 10 ether, "getEthBalance");
        vm.assertEq(MC.getBlockHash(500), bytes32(0), "the current block has no hash yet");
        vm.assertEq(MC.getLastBlockHash(), blockhash(499), "getLastBlockHash");
        vm.assertEq(MC.getBlockHash(499), blockhash(499), "getBlockHash");
    }
}
