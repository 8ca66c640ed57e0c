// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {TestBase} from "./TestBase.sol";
import {TestToken} from "../../src/devnet/TestToken.sol";
import {AgentWallet} from "../../src/AgentWallet.sol";
import {AgentWalletFactory} from "../../src/AgentWalletFactory.sol";

/// @notice A factory, a wallet with native and token backstops, and signing helpers.
abstract contract WalletFixture is TestBase {
    uint256 internal constant AGENT_KEY = 0xA9E47;
    uint256 internal constant COSIGNER_KEY = 0xC051;
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    AgentWalletFactory internal factory;
    AgentWallet internal wallet;
    TestToken internal token;
    address internal owner = address(0x0A11CE);
    address internal agent;
    address internal cosigner;
    address internal recipient = address(0xBEEF);

    function setUp() public virtual {
        vm.warp(1_750_000_000);
        agent = vm.addr(AGENT_KEY);
        cosigner = vm.addr(COSIGNER_KEY);
        factory = new AgentWalletFactory();
        wallet = AgentWallet(payable(factory.createWallet(owner, agent, cosigner, bytes32(0))));
        token = new TestToken();
        vm.deal(address(wallet), 100 ether);
        token.mint(address(wallet), 1_000_000e18);
        vm.startPrank(owner);
        wallet.setBackstop(address(0), 10 ether, 1 days);
        wallet.setBackstop(address(token), 1000e18, 1 days);
        vm.stopPrank();
    }

    function _one(address to, uint256 value, bytes memory data)
        internal
        pure
        returns (AgentWallet.Call[] memory calls)
    {
        calls = new AgentWallet.Call[](1);
        calls[0] = AgentWallet.Call(to, value, data);
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev The same signature with s' = n - s (and v flipped): valid for raw ecrecover.
    function _highS(bytes memory sig) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : 27);
    }

    function _execute(AgentWallet w, AgentWallet.Call[] memory calls, uint256 nonce) internal {
        uint64 validUntil = uint64(block.timestamp + 60);
        bytes32 digest = w.executeDigest(calls, nonce, validUntil);
        w.execute(calls, nonce, validUntil, _sign(AGENT_KEY, digest), _sign(COSIGNER_KEY, digest));
    }
}
