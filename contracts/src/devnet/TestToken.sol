// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @notice A USDC-like token for tests and the devnet: anyone may mint; EIP-2612 `permit` and
///         EIP-3009 `transferWithAuthorization`/`receiveWithAuthorization`/`cancelAuthorization`,
///         each also with a `bytes signature` overload that accepts EIP-1271 contract signatures,
///         as Circle's FiatTokenV2_2 does (x402 pays from contract wallets through them).
/// @dev Modelled on FiatTokenV2_2's EIP-3009 and permit rules: a nonce is per authorizer and
///      used once, by a transfer, a receive or a cancel alike; `receiveWithAuthorization` must be
///      called by the payee. The EIP-712 domain is (name, version "1", chain id, this address): OpenZeppelin's
///      `ERC20Permit` fixes the version (USDC's is "2").
contract TestToken is ERC20Permit {
    /// @notice EIP-3009 type hash of `TransferWithAuthorization`.
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    /// @notice EIP-3009 type hash of `ReceiveWithAuthorization`.
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    /// @notice EIP-3009 type hash of `CancelAuthorization`.
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");
    bytes32 private constant PERMIT_TYPEHASH = keccak256(
        "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
    );

    mapping(address authorizer => mapping(bytes32 nonce => bool)) private _authorizationStates;

    /// @notice Raised when an authorization is used outside its validity window.
    error AuthorizationNotValid();
    /// @notice Raised when an authorization's nonce was used or cancelled.
    error AuthorizationUsedOrCanceled();
    /// @notice Raised when a signature does not verify (ECDSA or EIP-1271).
    error InvalidSignature();
    /// @notice Raised when `receiveWithAuthorization` is not called by the payee.
    error CallerMustBePayee();
    /// @notice Raised when a permit's deadline passed.
    error PermitExpired();

    /// @notice Emitted when an authorization's nonce is used.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    /// @notice Emitted when an authorization is cancelled.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    constructor() ERC20("Test Token", "TEST") ERC20Permit("Test Token") {}

    /// @notice 6 decimals, like USDC (the devnet's policy and amounts assume it).
    /// @return The decimals.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints `amount` to `to`.
    /// @param to The recipient.
    /// @param amount The amount.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Whether `authorizer` has used or cancelled `nonce`.
    /// @param authorizer The authorizer.
    /// @param nonce The nonce.
    /// @return True when used.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationStates[authorizer][nonce];
    }

    /// @notice EIP-3009: moves `value` from `from` to `to` with `from`'s signature (ECDSA or
    ///         EIP-1271), once, between `validAfter` and `validBefore`.
    /// @param from The payer.
    /// @param to The payee.
    /// @param value The amount.
    /// @param validAfter Valid only after this Unix time.
    /// @param validBefore Valid only before this Unix time.
    /// @param nonce The authorizer's unique nonce.
    /// @param signature The payer's signature over the EIP-712 digest.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        _useAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
            from,
            to,
            value,
            validAfter,
            validBefore,
            nonce,
            signature
        );
        _transfer(from, to, value);
    }

    /// @notice EIP-3009: as `transferWithAuthorization`, but only the payee may submit it.
    /// @param from The payer.
    /// @param to The payee (the caller).
    /// @param value The amount.
    /// @param validAfter Valid only after this Unix time.
    /// @param validBefore Valid only before this Unix time.
    /// @param nonce The authorizer's unique nonce.
    /// @param signature The payer's signature over the EIP-712 digest.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        if (to != msg.sender) revert CallerMustBePayee();
        _useAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH,
            from,
            to,
            value,
            validAfter,
            validBefore,
            nonce,
            signature
        );
        _transfer(from, to, value);
    }

    /// @notice EIP-3009: voids an unused nonce with the authorizer's signature.
    /// @param authorizer The authorizer.
    /// @param nonce The nonce.
    /// @param signature The authorizer's signature.
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes calldata signature)
        external
    {
        if (_authorizationStates[authorizer][nonce]) revert AuthorizationUsedOrCanceled();
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce))
        );
        if (!SignatureChecker.isValidSignatureNow(authorizer, digest, signature)) {
            revert InvalidSignature();
        }
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    /// @notice EIP-2612 with a `bytes` signature (ECDSA or EIP-1271), as FiatTokenV2_2 has.
    /// @param owner_ The owner.
    /// @param spender The spender.
    /// @param value The allowance.
    /// @param deadline The deadline.
    /// @param signature The owner's signature.
    function permit(
        address owner_,
        address spender,
        uint256 value,
        uint256 deadline,
        bytes calldata signature
    ) external {
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > deadline) revert PermitExpired();
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(PERMIT_TYPEHASH, owner_, spender, value, _useNonce(owner_), deadline)
            )
        );
        if (!SignatureChecker.isValidSignatureNow(owner_, digest, signature)) {
            revert InvalidSignature();
        }
        _approve(owner_, spender, value);
    }

    function _useAuthorization(
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) private {
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= validAfter || block.timestamp >= validBefore) {
            revert AuthorizationNotValid();
        }
        if (_authorizationStates[from][nonce]) revert AuthorizationUsedOrCanceled();
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce))
        );
        if (!SignatureChecker.isValidSignatureNow(from, digest, signature)) {
            revert InvalidSignature();
        }
        _authorizationStates[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
    }
}
