// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {WalletFixture} from "./base/WalletFixture.sol";
import {AgentWallet} from "../src/AgentWallet.sol";
import {AgentWalletFactory} from "../src/AgentWalletFactory.sol";

/// @notice The factory's addresses as promises, attacked by anyone who can call it: an address
///         an owner predicted (and perhaps funded) must only ever hold the wallet with exactly
///         the settings it was predicted with, whichever entry point the attacker uses.
contract FactoryTest is WalletFixture {
    enum EntryPoint {
        Plain,
        Backstop,
        Payment
    }

    /// @dev Everything one entry point call takes; an entry point ignores the fields it lacks.
    struct Args {
        address owner;
        address agent;
        address cosigner;
        bytes32 salt;
        address token;
        uint256 limit;
        uint32 period;
        uint256 maxValue;
        uint16 slots;
        uint16 permit2Slots;
    }

    /// The attack of the second review: `createPaymentWallet` salted its settings into the
    /// caller's salt, so `createWalletWithBackstop` with that very value as its salt deployed at
    /// the payment wallet's address with the attacker's backstop (2^96-1), ahead of the owner
    /// who had funded it.
    function test_attack_backstopWalletCannotTakeAPaymentWalletsAddress() public {
        Args memory paying = _paymentArgs();
        address predicted = _predict(EntryPoint.Payment, paying);
        token.mint(predicted, 500e18);

        bytes32 collidingSalt = keccak256(
            abi.encode(
                paying.salt,
                AgentWalletFactory.Settings(
                    paying.token,
                    paying.limit,
                    paying.period,
                    paying.maxValue,
                    paying.slots,
                    paying.permit2Slots
                )
            )
        );
        address taken = factory.createWalletWithBackstop(
            owner, agent, cosigner, collidingSalt, address(token), type(uint96).max, 1 days
        );
        vm.assertTrue(taken != predicted, "the attacker's wallet landed on the funded address");
        address plain = factory.createWallet(owner, agent, cosigner, collidingSalt);
        vm.assertTrue(plain != predicted, "a plain wallet landed on the funded address");

        vm.assertEq(_create(EntryPoint.Payment, paying), predicted, "the owner's wallet");
        _assertSettings(predicted, EntryPoint.Payment, paying);
    }

    /// `createWalletWithBackstop` did not bind its token, limit and period: the address
    /// `predict` gave for it could be taken first with any limit.
    function test_attack_backstopLimitIsBoundIntoTheAddress() public {
        Args memory a = _paymentArgs();
        address predicted = _predict(EntryPoint.Backstop, a);
        Args memory greedy = _paymentArgs();
        greedy.limit = type(uint96).max;
        vm.assertTrue(_create(EntryPoint.Backstop, greedy) != predicted, "limit not bound");
        greedy = _paymentArgs();
        greedy.token = address(0);
        vm.assertTrue(_create(EntryPoint.Backstop, greedy) != predicted, "token not bound");
        greedy = _paymentArgs();
        greedy.period = 1;
        vm.assertTrue(_create(EntryPoint.Backstop, greedy) != predicted, "period not bound");
        vm.assertTrue(_create(EntryPoint.Plain, a) != predicted, "a plain wallet took it");
        vm.assertEq(_create(EntryPoint.Backstop, a), predicted, "the owner's wallet");
        _assertSettings(predicted, EntryPoint.Backstop, a);
    }

    /// For every ordered pair of entry points and any arguments, a deployment through one
    /// lands on the address another predicts only when it is the same entry point with the
    /// same (bound) arguments, and then the wallet has exactly the predicted settings.
    function testFuzz_noEntryPointLandsOnAnothersAddress(
        uint8 predictedBy,
        uint8 createdBy,
        Args memory predictedArgs,
        Args memory attackerArgs,
        uint256 sameArguments
    ) public {
        EntryPoint p = EntryPoint(predictedBy % 3);
        EntryPoint c = EntryPoint(createdBy % 3);
        predictedArgs = _valid(predictedArgs);
        // Half the runs, the attacker starts from the owner's arguments and changes one.
        if (sameArguments % 2 == 0) attackerArgs = _oneChanged(predictedArgs, sameArguments);
        attackerArgs = _valid(attackerArgs);

        address predicted = _predict(p, predictedArgs);
        address created = _create(c, attackerArgs);
        vm.assertEq(
            created, _predict(c, attackerArgs), "each entry point deploys where it predicts"
        );
        bool same = p == c && _bound(p, predictedArgs) == _bound(c, attackerArgs);
        vm.assertTrue(
            (created == predicted) == same, "an address is taken only by its own settings"
        );
        if (same) _assertSettings(predicted, p, predictedArgs);
    }

    /// A funded counterfactual wallet, deployed by its ERC-6492 first payment or by anyone
    /// else, keeps exactly the settings the owner predicted.
    function testFuzz_fundedCounterfactualWalletKeepsItsSettings(Args memory a) public {
        a = _valid(a);
        address predicted = _predict(EntryPoint.Payment, a);
        vm.deal(predicted, 1 ether);
        vm.prank(address(0xBAD));
        vm.assertEq(_create(EntryPoint.Payment, a), predicted, "deployed by anyone");
        _assertSettings(predicted, EntryPoint.Payment, a);
        vm.assertEq(predicted.balance, 1 ether, "the funds are still there");
    }

    /// The salt hashed in place is the documented encoding, whatever the memory around it.
    function testFuzz_createSaltIsTheAbiEncoding(
        bytes32 domain,
        address agent_,
        address cosigner_,
        bytes32 salt,
        AgentWalletFactory.Settings memory settings,
        uint8 garbageWords
    ) public {
        SaltHarness harness = new SaltHarness();
        vm.assertEq(
            harness.createSalt(domain, agent_, cosigner_, salt, settings, garbageWords),
            keccak256(abi.encode(domain, agent_, cosigner_, salt, settings)),
            "salt encoding"
        );
    }

    // --- helpers --------------------------------------------------------------------------------

    function _paymentArgs() private view returns (Args memory) {
        return Args(
            owner,
            agent,
            cosigner,
            bytes32(uint256(7)),
            address(token),
            1000e18,
            1 days,
            100e18,
            3,
            3
        );
    }

    /// @dev Arguments every entry point accepts.
    function _valid(Args memory a) private pure returns (Args memory) {
        if (a.owner == address(0)) a.owner = address(1);
        if (a.agent == address(0)) a.agent = address(2);
        if (a.cosigner == address(0)) a.cosigner = address(3);
        // A payment wallet's budget is for a token, not native currency.
        if (a.token == address(0)) a.token = address(4);
        a.limit = bound(a.limit, 0, type(uint96).max);
        a.maxValue = bound(a.maxValue, 0, type(uint96).max);
        if (a.period == 0) a.period = 1;
        if (a.slots == 0 && a.permit2Slots == 0) a.slots = 1;
        // Together they fit the budget's 16 bits.
        a.permit2Slots = uint16(bound(a.permit2Slots, 0, type(uint16).max - a.slots));
        return a;
    }

    function _oneChanged(Args memory a, uint256 which) private pure returns (Args memory b) {
        b = Args(
            a.owner,
            a.agent,
            a.cosigner,
            a.salt,
            a.token,
            a.limit,
            a.period,
            a.maxValue,
            a.slots,
            a.permit2Slots
        );
        uint256 field = (which >> 1) % 11;
        if (field == 1) b.owner = address(uint160(a.owner) ^ 1);
        else if (field == 2) b.agent = address(uint160(a.agent) ^ 1);
        else if (field == 3) b.cosigner = address(uint160(a.cosigner) ^ 1);
        else if (field == 4) b.salt = a.salt ^ bytes32(uint256(1));
        else if (field == 5) b.token = address(uint160(a.token) ^ 1);
        else if (field == 6) b.limit = a.limit ^ 1;
        else if (field == 7) b.period = a.period ^ 1;
        else if (field == 8) b.maxValue = a.maxValue ^ 1;
        else if (field == 9) b.slots = a.slots ^ 1;
        else if (field == 10) b.permit2Slots = a.permit2Slots ^ 1;
        // field 0: the very same arguments (a second entry point, or a replay that reverts below)
    }

    /// @dev What an entry point binds: the arguments it takes, the rest zeroed.
    function _bound(EntryPoint e, Args memory a) private pure returns (bytes32) {
        if (e == EntryPoint.Plain) {
            return keccak256(abi.encode(a.owner, a.agent, a.cosigner, a.salt));
        }
        if (e == EntryPoint.Backstop) {
            return
                keccak256(
                    abi.encode(a.owner, a.agent, a.cosigner, a.salt, a.token, a.limit, a.period)
                );
        }
        return keccak256(abi.encode(a));
    }

    function _predict(EntryPoint e, Args memory a) private view returns (address) {
        if (e == EntryPoint.Plain) return factory.predict(a.owner, a.agent, a.cosigner, a.salt);
        if (e == EntryPoint.Backstop) {
            return factory.predictWalletWithBackstop(
                a.owner, a.agent, a.cosigner, a.salt, a.token, a.limit, a.period
            );
        }
        return factory.predictPaymentWallet(
            a.owner,
            a.agent,
            a.cosigner,
            a.salt,
            a.token,
            a.limit,
            a.period,
            a.maxValue,
            a.slots,
            a.permit2Slots
        );
    }

    function _create(EntryPoint e, Args memory a) private returns (address) {
        if (e == EntryPoint.Plain) {
            return factory.createWallet(a.owner, a.agent, a.cosigner, a.salt);
        }
        if (e == EntryPoint.Backstop) {
            return factory.createWalletWithBackstop(
                a.owner, a.agent, a.cosigner, a.salt, a.token, a.limit, a.period
            );
        }
        return factory.createPaymentWallet(
            a.owner,
            a.agent,
            a.cosigner,
            a.salt,
            a.token,
            a.limit,
            a.period,
            a.maxValue,
            a.slots,
            a.permit2Slots
        );
    }

    /// @dev The wallet at `w` has exactly what entry point `e` promised for `a`.
    function _assertSettings(address w, EntryPoint e, Args memory a) private view {
        AgentWallet wallet_ = AgentWallet(payable(w));
        vm.assertEq(wallet_.owner(), a.owner, "owner");
        vm.assertEq(wallet_.agent(), a.agent, "agent");
        vm.assertEq(wallet_.cosigner(), a.cosigner, "co-signer");
        AgentWallet.Backstop memory b = wallet_.backstop(a.token);
        AgentWallet.AuthorizationBudget memory budget = wallet_.authorizationBudget(a.token);
        if (e == EntryPoint.Plain) {
            vm.assertEq(b.period, 0, "no backstop");
            vm.assertEq(budget.slots, 0, "no budget");
            return;
        }
        vm.assertEq(b.limit, a.limit, "backstop limit");
        vm.assertEq(b.period, a.period, "backstop period");
        vm.assertEq(budget.maxValue, e == EntryPoint.Payment ? a.maxValue : 0, "max value");
        vm.assertEq(budget.slots, e == EntryPoint.Payment ? a.slots : 0, "slots");
        vm.assertEq(
            budget.permit2Slots, e == EntryPoint.Payment ? a.permit2Slots : 0, "Permit2 slots"
        );
    }
}

/// @dev Exposes the factory's internal salt, with dirty memory past the free pointer.
contract SaltHarness is AgentWalletFactory {
    function createSalt(
        bytes32 domain,
        address agent,
        address cosigner,
        bytes32 salt,
        Settings memory settings,
        uint8 garbageWords
    ) external pure returns (bytes32) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            for { let i := 0 } lt(i, garbageWords) { i := add(i, 1) } {
                mstore(add(m, mul(i, 0x20)), not(0))
            }
        }
        return _createSalt(domain, agent, cosigner, salt, settings);
    }
}
