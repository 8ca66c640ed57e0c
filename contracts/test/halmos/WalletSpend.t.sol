// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {HalmosBase} from "./HalmosBase.sol";
import {MeasuringToken} from "./MeasuringToken.sol";
import {AgentWallet} from "../../src/AgentWallet.sol";
import {AgentWalletFactory} from "../../src/AgentWalletFactory.sol";

/// @notice Symbolic proofs (halmos) that `execute` and `executeAsAgent` never move more per
///         asset per aligned backstop period than the backstop's limit, for attacker B (both
///         keys). docs/security.md ("Static analysis and symbolic proofs") states the theorem
///         and how these lemmas give it.
/// @dev Every check runs one whole transaction through the real entry point, for ALL values of
///      its symbolic inputs: the time (below 2^32: window starts are uint32, so until 2106), the
///      nonce, the expiry, and both signatures (halmos models ecrecover as an uninterpreted
///      function: a signature recovers to whichever key the solver likes, so both keys are the
///      attacker's). If the transaction succeeds, for the backstop window of each asset:
///        1. only the window start and spend change, and a new start is `now - now % period`;
///        2. counted after >= counted before + what actually left (the token measures every
///           unit that leaves the wallet's balance and every unit of allowance it grants;
///           native: the wallet's balance decrease);
///        3. counted after <= max(counted before, limit);
///        4. nothing at all leaves a token without a backstop;
///      where "counted" is the window's spend while the window has not expired at `now`.
///      - The accounting checks (`check_native…`) start from ANY backstop state (limit and spend
///        below 2^96, period in [1, 2^32), window start <= now) and send any value in one call
///        to an account or to the wallet itself, or in two calls to an account.
///      - The decoding checks (`check_token…`) make one call with no value to the backstopped
///        token, a token without backstop, an account, or the wallet itself, with calldata of
///        any content and of every length that decodes differently (none, a bare selector,
///        short of an amount, `transfer`/`approve`/`increaseAllowance`, `transferFrom`, longer
///        than both), against a backstop whose window has expired (any limit and period):
///        `_spend` is one function of (asset, amount), and the accounting checks cover it from
///        every state. The wallet holds an allowance to itself, so `transferFrom` moves funds.
///      A call with both value and calldata is the two at once: `_countSpend` counts the value
///      first, whatever the calldata. Assumed: no owner-allowed calls (`setCallAllowed`: the
///      owner is trusted), and tokens that decode the standard ERC-20 ABI as Solidity does.
contract WalletSpendCheck is HalmosBase {
    /// @dev `_backstops` is slot 4 (after EIP712's two fallback strings, `_config`, `_keys`);
    ///      `setUp` checks it.
    uint256 private constant BACKSTOPS_SLOT = 4;
    address private constant OWNER = address(0x0A11CE);
    address private constant AGENT = address(0xA9E47);
    address private constant COSIGNER = address(0xC051);
    address private constant RECIPIENT = address(0xBEEF);
    address private constant RELAYER = address(0x5E11);

    enum Entry {
        Relayed,
        ExecuteByAgent,
        ExecuteAsAgent
    }

    struct Window {
        uint256 limit;
        uint256 spent;
        uint256 period;
        uint256 start;
    }

    AgentWallet private wallet;
    MeasuringToken private token;
    MeasuringToken private unbacked;

    function setUp() public {
        AgentWalletFactory factory = new AgentWalletFactory();
        wallet = AgentWallet(payable(factory.createWallet(OWNER, AGENT, COSIGNER, bytes32(0))));
        token = new MeasuringToken();
        unbacked = new MeasuringToken();
        token.mint(address(wallet), 1 << 128);
        unbacked.mint(address(wallet), 1 << 128);
        // The wallet may pull its own tokens with `transferFrom` (an allowance to itself from an
        // earlier transaction), so that path moves funds too and its amount must be counted.
        token.setAllowance(address(wallet), address(wallet), 1 << 128);
        unbacked.setAllowance(address(wallet), address(wallet), 1 << 128);
        vm.deal(address(wallet), 1 << 128);
        vm.prank(OWNER);
        wallet.setBackstop(address(token), 7, 3600);
        require(
            vm.load(address(wallet), _slot(address(token)))
                == bytes32(uint256(7) | (uint256(3600) << 192)),
            "AgentWallet storage layout changed: update BACKSTOPS_SLOT"
        );
    }

    // Accounting: any backstop state, any value.

    function check_native_relayed() external {
        _checkNative(Entry.Relayed, 1, false);
    }

    function check_native_executeByAgent() external {
        _checkNative(Entry.ExecuteByAgent, 1, false);
    }

    function check_native_executeAsAgent() external {
        _checkNative(Entry.ExecuteAsAgent, 1, false);
    }

    function check_native_executeAsAgent_twoCalls() external {
        _checkNative(Entry.ExecuteAsAgent, 2, false);
    }

    // Decoding: any calldata.

    function check_token_relayed() external {
        _checkToken(Entry.Relayed, false);
    }

    function check_token_executeByAgent() external {
        _checkToken(Entry.ExecuteByAgent, false);
    }

    function check_token_executeAsAgent() external {
        _checkToken(Entry.ExecuteAsAgent, false);
    }

    // Non-vacuity: scripts/test-contracts-security.sh expects each of these to find a
    // counterexample, a transaction through that entry point that does move funds (so the
    // checks above do not pass merely because every path reverts).

    function witness_native_relayed() external {
        _checkNative(Entry.Relayed, 1, true);
    }

    function witness_native_executeByAgent() external {
        _checkNative(Entry.ExecuteByAgent, 1, true);
    }

    function witness_native_executeAsAgent_twoCalls() external {
        _checkNative(Entry.ExecuteAsAgent, 2, true);
    }

    function witness_token_executeAsAgent() external {
        _checkToken(Entry.ExecuteAsAgent, true);
    }

    function _checkNative(Entry entry, uint256 callCount, bool witness) private {
        vm.warp(svm.createUint(32, "now"));
        Window memory before = _symbolicWindow(address(0));
        AgentWallet.Call[] memory calls = new AgentWallet.Call[](callCount);
        for (uint256 i; i < callCount; ++i) {
            // Two calls accumulate in `_spend` whatever their targets: both go to the account.
            bool toSelf = callCount == 1 && svm.createBool("toSelf");
            calls[i].to = toSelf ? address(wallet) : RECIPIENT;
            calls[i].value = svm.createUint256("value");
        }
        uint256 balance = address(wallet).balance;
        _send(entry, calls);
        uint256 out = balance - address(wallet).balance;
        if (witness) assert(out == 0);
        else assert(_counts(before, _window(address(0)), out) == 1);
    }

    function _checkToken(Entry entry, bool witness) private {
        vm.warp(svm.createUint(32, "now"));
        Window memory before = _expiredWindow(address(token));
        AgentWallet.Call[] memory calls = new AgentWallet.Call[](1);
        calls[0] = _anyCall();
        _send(entry, calls);
        uint256 out = token.given(address(wallet));
        if (witness) {
            assert(out == 0);
            return;
        }
        uint256 ok = _counts(before, _window(address(token)), out);
        uint256 unbackedOut = unbacked.given(address(wallet));
        assembly ("memory-safe") {
            ok := and(ok, iszero(unbackedOut))
        }
        assert(ok == 1);
    }

    /// @dev The transaction, through `entry`, with a symbolic nonce, expiry and signatures.
    function _send(Entry entry, AgentWallet.Call[] memory calls) private {
        uint256 nonce = svm.createUint256("nonce");
        uint64 validUntil = uint64(svm.createUint(64, "validUntil"));
        bytes memory cosignerSignature = svm.createBytes(65, "cosignerSignature");
        if (entry == Entry.Relayed) {
            bytes memory agentSignature = svm.createBytes(65, "agentSignature");
            vm.prank(RELAYER);
            wallet.execute(calls, nonce, validUntil, agentSignature, cosignerSignature);
        } else if (entry == Entry.ExecuteByAgent) {
            vm.prank(AGENT);
            wallet.execute(calls, nonce, validUntil, "", cosignerSignature);
        } else {
            vm.prank(AGENT);
            wallet.executeAsAgent(calls, nonce, validUntil, cosignerSignature);
        }
    }

    /// @dev Any call without value: to the backstopped token, the token without backstop, an
    ///      account or the wallet itself, with calldata of any content and of each length that
    ///      decodes differently.
    function _anyCall() private view returns (AgentWallet.Call memory c) {
        uint256 target = svm.createUint(2, "target");
        if (target == 0) c.to = address(token);
        else if (target == 1) c.to = address(unbacked);
        else if (target == 2) c.to = RECIPIENT;
        else c.to = address(wallet);
        uint256 length = svm.createUint(3, "length");
        vm.assume(length < 6);
        if (length == 0) c.data = "";
        else if (length == 1) c.data = svm.createBytes(4, "data");
        else if (length == 2) c.data = svm.createBytes(36, "data");
        else if (length == 3) c.data = svm.createBytes(68, "data");
        else if (length == 4) c.data = svm.createBytes(100, "data");
        else c.data = svm.createBytes(132, "data");
    }

    /// @dev Any backstop word (limit and spend below 2^96, period in [1, 2^32), a window start
    ///      not in the future), written straight into the wallet's storage.
    function _symbolicWindow(address asset) private returns (Window memory w) {
        w.limit = svm.createUint(96, "limit");
        w.spent = svm.createUint(96, "spent");
        w.period = svm.createUint(32, "period");
        w.start = svm.createUint(32, "windowStart");
        vm.assume(w.start <= block.timestamp);
        _store(asset, w);
    }

    /// @dev A backstop (any limit, any period) whose window has expired: what it counts next
    ///      starts from zero.
    function _expiredWindow(address asset) private returns (Window memory w) {
        w.limit = svm.createUint(96, "limit");
        w.period = svm.createUint(32, "period");
        vm.assume(w.period <= block.timestamp);
        _store(asset, w);
    }

    function _store(address asset, Window memory w) private {
        vm.assume(w.period != 0);
        // Facts of Euclidean division that halmos's abstraction of MOD does not know.
        vm.assume(block.timestamp % w.period < w.period);
        vm.assume(block.timestamp % w.period <= block.timestamp);
        vm.store(
            address(wallet),
            _slot(asset),
            bytes32(w.limit | (w.spent << 96) | (w.period << 192) | (w.start << 224))
        );
    }

    /// @dev Properties 1-3 as 0 or 1, computed without branches: each branch would double
    ///      halmos's paths.
    function _counts(Window memory before, Window memory stored, uint256 out)
        private
        view
        returns (uint256 ok)
    {
        uint256 time = block.timestamp;
        uint256 newStart = time - time % before.period;
        uint256 countedBefore = _counted(before, time);
        uint256 countedAfter = _counted(stored, time);
        assembly ("memory-safe") {
            let limit := mload(before)
            // 1. Only the window moves, and only to the aligned start of the current period.
            ok := and(
                eq(mload(stored), limit),
                eq(mload(add(stored, 0x40)), mload(add(before, 0x40)))
            )
            let start := mload(add(stored, 0x60))
            ok := and(ok, or(eq(start, mload(add(before, 0x60))), eq(start, newStart)))
            // 2. Everything that left is counted.
            ok := and(ok, iszero(lt(countedAfter, countedBefore)))
            ok := and(ok, iszero(lt(sub(countedAfter, countedBefore), out)))
            // 3. The count stays within the limit (or where a lowered limit left it).
            let cap := xor(limit, and(xor(limit, countedBefore), sub(0, gt(countedBefore, limit))))
            ok := and(ok, iszero(gt(countedAfter, cap)))
        }
    }

    /// @dev What a window still counts at `time`: its spend while it has not expired.
    function _counted(Window memory w, uint256 time) private pure returns (uint256 counted) {
        assembly ("memory-safe") {
            let live := lt(time, add(mload(add(w, 0x60)), mload(add(w, 0x40))))
            counted := and(mload(add(w, 0x20)), sub(0, live))
        }
    }

    function _window(address asset) private view returns (Window memory w) {
        uint256 word = uint256(vm.load(address(wallet), _slot(asset)));
        w.limit = uint96(word);
        w.spent = uint96(word >> 96);
        w.period = uint32(word >> 192);
        w.start = word >> 224;
    }

    function _slot(address asset) private pure returns (bytes32) {
        return keccak256(abi.encode(asset, BACKSTOPS_SLOT));
    }
}
