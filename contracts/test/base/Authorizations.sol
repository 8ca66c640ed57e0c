// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Vm} from "./Vm.sol";
import {TestToken} from "../../src/devnet/TestToken.sol";
import {AgentWallet} from "../../src/AgentWallet.sol";

/// @notice Builds EIP-3009 authorizations from a wallet and the wallet's EIP-1271 signature for
///         them, as the SDK does.
library Authorizations {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function authorization(
        AgentWallet wallet,
        TestToken token,
        address to,
        uint256 value,
        uint16 slot
    ) internal view returns (AgentWallet.Authorization memory a) {
        a = AgentWallet.Authorization({
            token: address(token),
            typehash: token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
            to: to,
            value: value,
            validAfter: 0,
            validBefore: block.timestamp + 300,
            nonce: wallet.authorizationNonce(address(token), slot)
        });
    }

    /// @dev The token's EIP-712 digest of `a` (what it passes to `isValidSignature`).
    function hash(AgentWallet wallet, AgentWallet.Authorization memory a)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                a.typehash, address(wallet), a.to, a.value, a.validAfter, a.validBefore, a.nonce
            )
        );
        return
            keccak256(
                abi.encodePacked(hex"1901", TestToken(a.token).DOMAIN_SEPARATOR(), structHash)
            );
    }

    function sign(
        AgentWallet wallet,
        AgentWallet.Authorization memory a,
        uint256 agentKey,
        uint256 cosignerKey
    ) internal view returns (bytes memory) {
        bytes32 digest = wallet.messageDigest(hash(wallet, a));
        return abi.encodePacked(_sign(agentKey, digest), _sign(cosignerKey, digest), abi.encode(a));
    }

    /// @dev Submits `a` as a facilitator would; returns whether the token moved the value.
    function pay(AgentWallet wallet, AgentWallet.Authorization memory a, bytes memory signature)
        internal
        returns (bool)
    {
        try TestToken(a.token)
            .transferWithAuthorization(
                address(wallet), a.to, a.value, a.validAfter, a.validBefore, a.nonce, signature
            ) {
            return true;
        } catch {
            return false;
        }
    }

    function _sign(uint256 key, bytes32 digest) private pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }
}
