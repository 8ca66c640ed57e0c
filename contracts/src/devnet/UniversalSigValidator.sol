// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @notice ERC-6492's universal signature validator, after the EIP's reference implementation:
///         it checks an ECDSA, EIP-1271 or ERC-6492 (counterfactual: deploy, then EIP-1271)
///         signature. `chaperone up` installs it at the address x402 facilitators call
///         (0xdAcD51A54883eb67D95FAEb2BBfdC4a9a6BD2a3B), so they verify payments from
///         wallets that are not deployed yet.
contract UniversalSigValidator {
    bytes32 private constant ERC6492_DETECTION_SUFFIX =
        0x6492649264926492649264926492649264926492649264926492649264926492;

    /// @notice The wallet's `isValidSignature` reverted.
    error ERC1271Revert(bytes error);
    /// @notice The factory call that deploys the wallet failed.
    error ERC6492DeployFailed(bytes error);

    /// @notice Checks the signature, deploying a counterfactual wallet (the deployment stays).
    /// @param signer The account that should have signed.
    /// @param hash The signed hash.
    /// @param signature ECDSA, EIP-1271 or ERC-6492-wrapped.
    /// @return Whether it is valid.
    function isValidSigWithSideEffects(address signer, bytes32 hash, bytes calldata signature)
        external
        returns (bool)
    {
        return this.isValidSigImpl(signer, hash, signature, true, false);
    }

    /// @notice Checks the signature without leaving a deployment behind.
    /// @param signer The account that should have signed.
    /// @param hash The signed hash.
    /// @param signature ECDSA, EIP-1271 or ERC-6492-wrapped.
    /// @return Whether it is valid.
    function isValidSig(address signer, bytes32 hash, bytes calldata signature)
        external
        returns (bool)
    {
        try this.isValidSigImpl(signer, hash, signature, false, false) returns (bool valid) {
            return valid;
        } catch (bytes memory err) {
            // A one-byte revert carries the verdict out of a rolled-back deployment.
            if (err.length == 1) return err[0] == 0x01;
            assembly ("memory-safe") {
                revert(add(err, 32), mload(err))
            }
        }
    }

    /// @notice The validation itself (external so `isValidSig` can roll a deployment back).
    /// @param signer The account that should have signed.
    /// @param hash The signed hash.
    /// @param signature ECDSA, EIP-1271 or ERC-6492-wrapped.
    /// @param allowSideEffects Keep a deployment made to validate.
    /// @param tryPrepare Run the factory call even when the wallet has code.
    /// @return Whether it is valid.
    function isValidSigImpl(
        address signer,
        bytes32 hash,
        bytes calldata signature,
        bool allowSideEffects,
        bool tryPrepare
    ) external returns (bool) {
        uint256 codeLength = signer.code.length;
        bytes memory inner;
        bool counterfactual = signature.length >= 32
            && bytes32(signature[signature.length - 32:]) == ERC6492_DETECTION_SUFFIX;
        if (counterfactual) {
            address factory;
            bytes memory factoryCalldata;
            (factory, factoryCalldata, inner) =
                abi.decode(signature[:signature.length - 32], (address, bytes, bytes));
            if (codeLength == 0 || tryPrepare) {
                (bool ok, bytes memory err) = factory.call(factoryCalldata);
                if (!ok) revert ERC6492DeployFailed(err);
            }
        } else {
            inner = signature;
        }
        if (counterfactual || codeLength > 0) {
            try IERC1271(signer).isValidSignature(hash, inner) returns (bytes4 magic) {
                bool valid = magic == IERC1271.isValidSignature.selector;
                if (codeLength == 0 && counterfactual && !allowSideEffects) {
                    assembly ("memory-safe") {
                        mstore(0, valid)
                        revert(31, 1)
                    }
                }
                if (!valid && !tryPrepare && codeLength > 0) {
                    return this.isValidSigImpl(signer, hash, signature, allowSideEffects, true);
                }
                return valid;
            } catch (bytes memory err) {
                if (!tryPrepare && codeLength > 0) {
                    return this.isValidSigImpl(signer, hash, signature, allowSideEffects, true);
                }
                revert ERC1271Revert(err);
            }
        }
        if (signature.length != 65) return false;
        (bytes32 r, bytes32 s) = abi.decode(signature, (bytes32, bytes32));
        uint8 v = uint8(signature[64]);
        if (v != 27 && v != 28) return false;
        return ecrecover(hash, v, r, s) == signer;
    }
}
