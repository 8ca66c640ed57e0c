// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice The SignatureTransfer half of Uniswap's Permit2, for the devnet, where `chaperone up`
///         installs it at Permit2's canonical address (Permit2's own bytecode is not in any
///         registry these machines reach). Same EIP-712 domain ("Permit2", chain id, this
///         address), type hashes, unordered nonce bitmap and signature rules (ECDSA for an
///         account without code, EIP-1271 for a contract) as Permit2, so a signature valid
///         here is valid on the real contract.
/// @dev The AllowanceTransfer half is left out: nothing here uses it. The domain separator is
///      computed per call (no immutables) because the code is installed with `anvil_setCode`,
///      which runs no constructor.
contract Permit2 {
    using SafeERC20 for IERC20;

    /// @notice A token and the most that may be moved of it.
    struct TokenPermissions {
        address token;
        uint256 amount;
    }

    /// @notice A signed one-time transfer permission.
    struct PermitTransferFrom {
        TokenPermissions permitted;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice Where the spender sends the tokens, and how many.
    struct SignatureTransferDetails {
        address to;
        uint256 requestedAmount;
    }

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("Permit2");
    /// @notice EIP-712 type hash of `TokenPermissions`.
    bytes32 public constant TOKEN_PERMISSIONS_TYPEHASH =
        keccak256("TokenPermissions(address token,uint256 amount)");
    /// @notice EIP-712 type hash of a `PermitTransferFrom` without witness.
    bytes32 public constant PERMIT_TRANSFER_FROM_TYPEHASH = keccak256(
        "PermitTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline)TokenPermissions(address token,uint256 amount)"
    );
    string private constant PERMIT_WITNESS_TRANSFER_FROM_STUB =
        "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,";

    /// @notice Per owner, 256 nonces per word: bit `nonce & 255` of word `nonce >> 8`.
    mapping(address owner => mapping(uint256 word => uint256 bits)) public nonceBitmap;

    /// @notice Raised past the permit's deadline.
    error SignatureExpired(uint256 signatureDeadline);
    /// @notice Raised when more is requested than permitted.
    error InvalidAmount(uint256 maxAmount);
    /// @notice Raised when the nonce was used or invalidated.
    error InvalidNonce();
    /// @notice Raised when an ECDSA signature does not recover to the owner.
    error InvalidSigner();
    /// @notice Raised when a signature is neither 64 nor 65 bytes (ECDSA).
    error InvalidSignatureLength();
    /// @notice Raised when a contract owner's EIP-1271 refuses the signature.
    error InvalidContractSignature();

    /// @notice Emitted when an owner invalidates nonces.
    event UnorderedNonceInvalidation(address indexed owner, uint256 word, uint256 mask);

    /// @notice The EIP-712 domain separator.
    /// @return The separator for this chain and address.
    // forge-lint: disable-next-line(mixed-case-function)
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, block.chainid, address(this)));
    }

    /// @notice Moves tokens with the owner's signature over the permit (spender = the caller).
    /// @param permit The signed permission.
    /// @param transferDetails The recipient and amount.
    /// @param owner The owner who signed.
    /// @param signature The owner's signature.
    function permitTransferFrom(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes calldata signature
    ) external {
        bytes32 structHash = keccak256(
            abi.encode(
                PERMIT_TRANSFER_FROM_TYPEHASH,
                _hashPermissions(permit.permitted),
                msg.sender,
                permit.nonce,
                permit.deadline
            )
        );
        _transfer(permit, transferDetails, owner, structHash, signature);
    }

    /// @notice Moves tokens with the owner's signature over the permit and a witness the
    ///         spender (the caller) vouches for.
    /// @param permit The signed permission.
    /// @param transferDetails The recipient and amount.
    /// @param owner The owner who signed.
    /// @param witness The EIP-712 hash of the witness struct.
    /// @param witnessTypeString The witness's type string, completing the stub.
    /// @param signature The owner's signature.
    function permitWitnessTransferFrom(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes32 witness,
        string calldata witnessTypeString,
        bytes calldata signature
    ) external {
        bytes32 typeHash = keccak256(
            abi.encodePacked(PERMIT_WITNESS_TRANSFER_FROM_STUB, witnessTypeString)
        );
        bytes32 structHash = keccak256(
            abi.encode(
                typeHash,
                _hashPermissions(permit.permitted),
                msg.sender,
                permit.nonce,
                permit.deadline,
                witness
            )
        );
        _transfer(permit, transferDetails, owner, structHash, signature);
    }

    /// @notice Invalidates the nonces of `mask` in word `word` for the caller.
    /// @param word The word position.
    /// @param mask The bits to set.
    function invalidateUnorderedNonces(uint256 word, uint256 mask) external {
        nonceBitmap[msg.sender][word] |= mask;
        emit UnorderedNonceInvalidation(msg.sender, word, mask);
    }

    function _transfer(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes32 structHash,
        bytes calldata signature
    ) private {
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > permit.deadline) revert SignatureExpired(permit.deadline);
        if (transferDetails.requestedAmount > permit.permitted.amount) {
            revert InvalidAmount(permit.permitted.amount);
        }
        _useNonce(owner, permit.nonce);
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR(), structHash));
        _verify(signature, digest, owner);
        IERC20(permit.permitted.token)
            .safeTransferFrom(owner, transferDetails.to, transferDetails.requestedAmount);
    }

    function _useNonce(address owner, uint256 nonce) private {
        uint256 bit = 1 << (nonce & 0xff);
        uint256 flipped = nonceBitmap[owner][nonce >> 8] ^= bit;
        if (flipped & bit == 0) revert InvalidNonce();
    }

    function _hashPermissions(TokenPermissions calldata permitted) private pure returns (bytes32) {
        return keccak256(abi.encode(TOKEN_PERMISSIONS_TYPEHASH, permitted.token, permitted.amount));
    }

    /// @dev Permit2's SignatureVerification: EIP-1271 for contracts, else ECDSA (65 bytes, or
    ///      64 in EIP-2098 compact form).
    function _verify(bytes calldata signature, bytes32 digest, address owner) private view {
        if (owner.code.length != 0) {
            if (
                IERC1271(owner).isValidSignature(digest, signature)
                    != IERC1271.isValidSignature.selector
            ) {
                revert InvalidContractSignature();
            }
            return;
        }
        bytes32 r;
        bytes32 s;
        uint8 v;
        if (signature.length == 65) {
            (r, s) = abi.decode(signature, (bytes32, bytes32));
            v = uint8(signature[64]);
        } else if (signature.length == 64) {
            bytes32 vs;
            (r, vs) = abi.decode(signature, (bytes32, bytes32));
            s = vs & bytes32(uint256(type(uint256).max) >> 1);
            v = uint8(uint256(vs >> 255)) + 27;
        } else {
            revert InvalidSignatureLength();
        }
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0) || signer != owner) revert InvalidSigner();
    }
}
