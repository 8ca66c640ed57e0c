// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {HalmosBase} from "./HalmosBase.sol";
import {AgentWalletFactory} from "../../src/AgentWalletFactory.sol";

/// @notice Distinct settings never share a counterfactual address: for ALL arguments, two
///         `predict…` calls (the same entry point or two different ones) with different (entry
///         point, owner, agent, co-signer, salt, settings) tuples give different CREATE2
///         preimages (0xff ‖ factory ‖ salt ‖ keccak256(init code)).
/// @dev In two steps, because halmos does not model the CREATE2 address itself (it gives each
///      CREATE2 hash expression an opaque id, so comparing predicted addresses would prove
///      nothing, and equal addresses computed two ways do not compare equal):
///      1. `check_distinctTuplesGiveDistinctPreimages` (halmos, for ALL tuples, keccak256
///         modelled as injective): distinct tuples give a distinct (salt, owner) pair, where
///         the salt is `_createSalt(the entry point's domain, agent, cosigner, salt, the
///         settings it deploys, the rest zero)` and the owner is the clone's immutable argument
///         (so part of the init code);
///      2. `testFuzz_…BindsTheProvenSalt` (forge, fuzzed with real keccak256): each `predict…`
///         view is exactly CREATE2 of the clone with `abi.encode(owner)` as argument and that
///         salt, with the domains named below.
///      From a distinct preimage to a distinct address is CREATE2's collision resistance
///      (160-bit truncation of keccak256: ~2^80 work), assumed here as everywhere. That each
///      `create…` deploys at its `predict…` is `FactoryTest` (forge).
contract FactoryAddressesCheck is HalmosBase, AgentWalletFactory {
    /// @dev The entry points' salt domains, as the factory must name them.
    bytes32 private constant WALLET_DOMAIN = keccak256("chaperone.AgentWalletFactory.createWallet");
    bytes32 private constant BACKSTOP_DOMAIN =
        keccak256("chaperone.AgentWalletFactory.createWalletWithBackstop");
    bytes32 private constant PAYMENT_DOMAIN =
        keccak256("chaperone.AgentWalletFactory.createPaymentWallet");

    enum Entry {
        Wallet,
        WalletWithBackstop,
        PaymentWallet
    }

    /// @dev One entry point's arguments; the fields it does not take are zero.
    struct Tuple {
        Entry entry;
        address owner;
        address agent;
        address cosigner;
        bytes32 salt;
        Settings settings;
    }

    function testFuzz_predictBindsTheProvenSalt(
        address owner,
        address agent,
        address cosigner,
        bytes32 salt
    ) external view {
        Settings memory none = Settings(address(0), 0, 0, 0, 0, 0);
        assert(
            this.predict(owner, agent, cosigner, salt)
                == _create2(owner, _createSalt(WALLET_DOMAIN, agent, cosigner, salt, none))
        );
    }

    function testFuzz_predictWalletWithBackstopBindsTheProvenSalt(
        address owner,
        address agent,
        address cosigner,
        bytes32 salt,
        address token,
        uint256 limit,
        uint32 period
    ) external view {
        Settings memory settings = Settings(token, limit, period, 0, 0, 0);
        assert(
            this.predictWalletWithBackstop(owner, agent, cosigner, salt, token, limit, period)
                == _create2(owner, _createSalt(BACKSTOP_DOMAIN, agent, cosigner, salt, settings))
        );
    }

    function testFuzz_predictPaymentWalletBindsTheProvenSalt(
        address owner,
        address agent,
        address cosigner,
        bytes32 salt,
        address token,
        uint256 limit,
        uint32 period,
        uint256 maxValue,
        uint16 slots,
        uint16 permit2Slots
    ) external view {
        Settings memory settings = Settings(token, limit, period, maxValue, slots, permit2Slots);
        assert(
            this.predictPaymentWallet(
                owner, agent, cosigner, salt, token, limit, period, maxValue, slots, permit2Slots
            ) == _create2(owner, _createSalt(PAYMENT_DOMAIN, agent, cosigner, salt, settings))
        );
    }

    function check_distinctTuplesGiveDistinctPreimages() external pure {
        Tuple memory a = _tuple("a");
        Tuple memory b = _tuple("b");
        vm.assume(!_same(a, b));
        assert(a.owner != b.owner || _saltOf(a) != _saltOf(b));
    }

    /// @dev Non-vacuity (scripts/test-contracts-security.sh expects a counterexample): equal
    ///      tuples do share a preimage.
    function witness_equalTuplesShareAPreimage() external pure {
        Tuple memory a = _tuple("a");
        Tuple memory b = _tuple("b");
        vm.assume(_same(a, b));
        assert(a.owner != b.owner || _saltOf(a) != _saltOf(b));
    }

    function _same(Tuple memory a, Tuple memory b) private pure returns (bool) {
        return a.entry == b.entry && a.owner == b.owner && a.agent == b.agent
            && a.cosigner == b.cosigner && a.salt == b.salt && a.settings.token == b.settings.token
            && a.settings.limit == b.settings.limit && a.settings.period == b.settings.period
            && a.settings.maxValue == b.settings.maxValue && a.settings.slots == b.settings.slots
            && a.settings.permit2Slots == b.settings.permit2Slots;
    }

    /// @dev Any tuple of any entry point: symbolic in every argument that entry point takes.
    function _tuple(string memory name) private pure returns (Tuple memory t) {
        uint256 entry = svm.createUint(2, string.concat(name, ".entry"));
        vm.assume(entry < 3);
        t.entry = Entry(entry);
        t.owner = svm.createAddress(string.concat(name, ".owner"));
        t.agent = svm.createAddress(string.concat(name, ".agent"));
        t.cosigner = svm.createAddress(string.concat(name, ".cosigner"));
        t.salt = svm.createBytes32(string.concat(name, ".salt"));
        if (t.entry == Entry.Wallet) return t;
        t.settings.token = svm.createAddress(string.concat(name, ".token"));
        t.settings.limit = svm.createUint256(string.concat(name, ".limit"));
        t.settings.period = uint32(svm.createUint(32, string.concat(name, ".period")));
        if (t.entry == Entry.WalletWithBackstop) return t;
        t.settings.maxValue = svm.createUint256(string.concat(name, ".maxValue"));
        t.settings.slots = uint16(svm.createUint(16, string.concat(name, ".slots")));
        t.settings.permit2Slots = uint16(svm.createUint(16, string.concat(name, ".permit2Slots")));
    }

    function _saltOf(Tuple memory t) private pure returns (bytes32) {
        bytes32 domain = t.entry == Entry.Wallet
            ? WALLET_DOMAIN
            : t.entry == Entry.WalletWithBackstop ? BACKSTOP_DOMAIN : PAYMENT_DOMAIN;
        return _createSalt(domain, t.agent, t.cosigner, t.salt, t.settings);
    }

    function _create2(address owner, bytes32 salt) private view returns (address) {
        return Clones.predictDeterministicAddressWithImmutableArgs(
            implementation, abi.encode(owner), salt, address(this)
        );
    }
}
