//! x402 payments of every method (EIP-3009 transfer and receive, Permit2) co-signed beside
//! `execute`, all spending the same token window.

use axum::http::StatusCode;
use chaperone_api::{Payment, PaymentAuthorization, Permit2Payment};
use chaperone_core::{Address, B256, Call, Execute, U256, policy::Token};
use chaperone_testkit::signed_cosign_json;
use serde_json::json;

use super::{body, cosign, register_wallet};
use crate::{ADMIN, NOW, call, service};

/// x402 pays three ways beside `execute`: EIP-3009 transfer and receive authorizations and
/// Permit2 witness transfers. Each is one more spend of the same token in the same window, so
/// splitting payments across methods buys nothing; a Permit2 message naming another spender
/// (which could send the tokens anywhere) is refused.
#[tokio::test]
async fn x402_payments_of_every_method_share_the_token_window_with_execute() {
    use alloy::sol_types::SolCall;
    use chaperone_core::{
        Eip3009Kind, PERMIT2, PermitWitnessTransferFrom, TokenDomain, TokenPermissions,
        TransferWithAuthorization, Witness, X402_PERMIT2_PROXY,
    };
    let s = service().await;
    register_wallet(&s).await;
    let token = Address::repeat_byte(0x70);
    let policy = json!({
        "version": 1,
        "chains": [31337],
        "limits": [{ "token": token, "per_transaction": "100", "windows": [{ "window": "24h", "max": "250" }] }],
        "typed_data": [
            { "primary_type": "TransferWithAuthorization", "verifying_contract": token },
            { "primary_type": "ReceiveWithAuthorization", "verifying_contract": token },
            { "primary_type": "PermitWitnessTransferFrom", "verifying_contract": PERMIT2 },
        ],
    });
    let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);
    let (status, answer) = call(
        &s.router,
        "PUT",
        &uri,
        Some(ADMIN),
        Some(policy.to_string()),
    )
    .await;
    assert!(status.is_success(), "{answer}");
    let merchant = Address::repeat_byte(0x77);
    let domain = TokenDomain {
        name: "USD Coin".into(),
        version: "2".into(),
        chain_id: 31337,
        verifying_contract: token,
    };
    let eip3009 = |kind: Eip3009Kind, value: u64, nonce: u8| {
        let message = TransferWithAuthorization {
            from: s.wallet,
            to: merchant,
            value: U256::from(value),
            validAfter: U256::ZERO,
            validBefore: U256::from(NOW + 60),
            nonce: B256::repeat_byte(nonce),
        };
        let authorization = PaymentAuthorization {
            primary_type: kind,
            domain: domain.clone(),
            message,
        };
        signed_cosign_json(&s.agent, 31337, s.wallet, Payment::Eip3009(authorization))
    };
    let permit2 = |spender: Address, amount: u64, nonce: u64| {
        let message = PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token,
                amount: U256::from(amount),
            },
            spender,
            nonce: U256::from(nonce),
            deadline: U256::from(NOW + 60),
            witness: Witness {
                to: merchant,
                validAfter: U256::ZERO,
            },
        };
        signed_cosign_json(
            &s.agent,
            31337,
            s.wallet,
            Payment::Permit2(Permit2Payment { message }),
        )
    };
    let transfer = Execute {
        calls: vec![Call {
            to: token,
            value: U256::ZERO,
            data: chaperone_chain::TestToken::transferCall {
                to: merchant,
                value: U256::from(100),
            }
            .abi_encode()
            .into(),
        }],
        nonce: U256::ZERO,
        validUntil: NOW + 60,
    };

    let (status, answer) = cosign(&s, &permit2(Address::repeat_byte(0x66), 10, 1)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another spender: {answer}");
    assert_eq!(
        answer["reasons"][0]["code"], "malformed_typed_data",
        "{answer}"
    );

    for (what, request) in [
        ("execute", body(&s, &transfer)),
        (
            "receive",
            eip3009(Eip3009Kind::ReceiveWithAuthorization, 100, 1),
        ),
        ("permit2", permit2(X402_PERMIT2_PROXY, 50, 2)),
    ] {
        let (status, answer) = cosign(&s, &request).await;
        assert_eq!(status, StatusCode::OK, "{what}: {answer}");
    }
    let (status, answer) = cosign(&s, &eip3009(Eip3009Kind::TransferWithAuthorization, 1, 3)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the window is spent: {answer}"
    );
    assert_eq!(answer["reasons"][0]["code"], "window_cap", "{answer}");
    let committed = s
        .store
        .committed_spend(s.wallet, Token::Erc20(token))
        .await
        .unwrap();
    assert_eq!(committed.0, U256::from(250));
}
