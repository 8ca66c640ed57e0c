// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Permit2} from "./Permit2.sol";

/// @notice The x402 "exact" scheme's Permit2 proxy (`x402ExactPermit2Proxy`), for the devnet,
///         where `chaperone up` installs it at its canonical address. It is the `spender` of an
///         x402 Permit2 payment: it moves exactly the permitted amount to the recipient the
///         payer signed in the witness, never before `validAfter`, so a facilitator cannot
///         redirect or split the payment.
/// @dev The `settle` path of the x402 proxy, with its ABI and witness type; the EIP-2612 gas
///      sponsoring path (`settleWithPermit`) is left out. Stateless and constructor-free, as
///      `anvil_setCode` installs it.
contract X402ExactPermit2Proxy {
    /// @notice The payment's witness: the recipient, and the earliest time it may be paid.
    struct Witness {
        address to;
        uint256 validAfter;
    }

    /// @notice Permit2 at its canonical address.
    Permit2 public constant PERMIT2 = Permit2(0x000000000022D473030F116dDEE9F6B43aC78BA3);
    /// @notice EIP-712 type hash of `Witness`.
    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,uint256 validAfter)");
    /// @notice What completes Permit2's `PermitWitnessTransferFrom(…,` stub.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";

    /// @notice Emitted on each settled payment.
    event Settled();

    /// @notice Raised for a zero owner.
    error InvalidOwner();
    /// @notice Raised for a zero recipient.
    error InvalidDestination();
    /// @notice Raised before the witness's `validAfter`.
    error PaymentTooEarly();

    /// @notice Pays `permit.permitted.amount` from `owner` to `witness.to` through Permit2.
    /// @param permit The signed permission (spender: this contract).
    /// @param owner The payer.
    /// @param witness The recipient and earliest time, as signed.
    /// @param signature The payer's signature.
    function settle(
        Permit2.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external {
        if (owner == address(0)) revert InvalidOwner();
        if (witness.to == address(0)) revert InvalidDestination();
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < witness.validAfter) revert PaymentTooEarly();
        PERMIT2.permitWitnessTransferFrom(
            permit,
            Permit2.SignatureTransferDetails({
                to: witness.to, requestedAmount: permit.permitted.amount
            }),
            owner,
            keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.validAfter)),
            WITNESS_TYPE_STRING,
            signature
        );
        emit Settled();
    }
}
