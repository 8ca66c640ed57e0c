// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Vm} from "./Vm.sol";
import {TestToken} from "../../src/devnet/TestToken.sol";
import {AgentWallet} from "../../src/AgentWallet.sol";
import {Permit2} from "../../src/devnet/Permit2.sol";
import {X402ExactPermit2Proxy} from "../../src/devnet/X402ExactPermit2Proxy.sol";

/// @notice Builds EIP-3009 authorizations from a wallet and the wallet's EIP-1271 signature for
///         them, as the SDK does.
library Authorizations {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    /// The wallet's internal constants, as x402 defines them.
    address internal constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
    address internal constant X402_PERMIT2_PROXY = 0x402085c248EeA27D92E8b30b2C58ed07f9E20001;
    bytes32 internal constant PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH = keccak256(
        "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)"
    );

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

    /// @dev Installs the devnet Permit2 and x402 proxy at their canonical addresses, as
    ///      `chaperone up` does.
    function installPermit2(AgentWallet) internal {
        vm.etch(PERMIT2, address(new Permit2()).code);
        vm.etch(X402_PERMIT2_PROXY, address(new X402ExactPermit2Proxy()).code);
    }

    /// The first Permit2 slot (the wallet's `PERMIT2_SLOTS`).
    uint256 internal constant PERMIT2_SLOTS = 1 << 16;

    /// @dev `a` as an x402 Permit2 payment: the same value, recipient and expiry, and slot `i`
    ///      moved to Permit2's slot `i`.
    function asPermit2(AgentWallet, AgentWallet.Authorization memory a)
        internal
        pure
        returns (AgentWallet.Authorization memory)
    {
        a.typehash = PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH;
        a.nonce = bytes32(uint256(a.nonce) + PERMIT2_SLOTS);
        return a;
    }

    /// @dev The verifying contract's EIP-712 digest of `a` (what it passes to
    ///      `isValidSignature`): the token's for EIP-3009, Permit2's for a witness transfer.
    function hash(AgentWallet wallet, AgentWallet.Authorization memory a)
        internal
        view
        returns (bytes32)
    {
        if (a.typehash == PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH) {
            bytes32 permitHash = keccak256(
                abi.encode(
                    a.typehash,
                    keccak256(
                        abi.encode(
                            keccak256("TokenPermissions(address token,uint256 amount)"),
                            a.token,
                            a.value
                        )
                    ),
                    X402_PERMIT2_PROXY,
                    a.nonce,
                    a.validBefore,
                    keccak256(
                        abi.encode(
                            keccak256("Witness(address to,uint256 validAfter)"), a.to, a.validAfter
                        )
                    )
                )
            );
            return
                keccak256(
                    abi.encodePacked(hex"1901", Permit2(PERMIT2).DOMAIN_SEPARATOR(), permitHash)
                );
        }
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

    /// @dev Submits `a` as a facilitator would (EIP-3009 to the token, Permit2 through the x402
    ///      proxy); returns whether the value moved.
    function pay(AgentWallet wallet, AgentWallet.Authorization memory a, bytes memory signature)
        internal
        returns (bool)
    {
        if (a.typehash == PERMIT_WITNESS_TRANSFER_FROM_TYPEHASH) {
            try X402ExactPermit2Proxy(X402_PERMIT2_PROXY)
                .settle(
                    Permit2.PermitTransferFrom({
                    permitted: Permit2.TokenPermissions({token: a.token, amount: a.value}),
                    nonce: uint256(a.nonce),
                    deadline: a.validBefore
                }),
                    address(wallet),
                    X402ExactPermit2Proxy.Witness({to: a.to, validAfter: a.validAfter}),
                    signature
                ) {
                return true;
            } catch {
                return false;
            }
        }
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
