//! x402 payment authorizations (EIP-3009 and Permit2) against a real wallet: a used Permit2
//! nonce keeps its spend past its deadline, and what the wallet could never honour is refused
//! before anything is reserved.

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::Provider,
};
use chaperone_api::{Payment, PaymentAuthorization, Permit2Payment};
use chaperone_chain::{AgentWallet, TestToken};
use chaperone_core::policy::Policy;
use chaperone_server::Indexer;
use chaperone_testkit::{signed_cosign, signed_cosign_json};
use serde_json::json;

use super::world;

/// Permit2 reports no event when it uses a nonce, so an x402 Permit2 payment's reservation is
/// settled only when the indexer finds the nonce used in Permit2's bitmap. The attack it stops:
/// pay with Permit2, wait past the deadline, and the spend would be released as if never made,
/// freeing the window for more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit2_payment_keeps_counting_after_its_deadline() {
    use chaperone_chain::{install_x402_contracts, x402_proxy};
    use chaperone_core::{
        PERMIT2_SLOTS, PermitWitnessTransferFrom, TokenPermissions, Witness, X402_PERMIT2_PROXY,
        authorization_nonce, policy::Token,
    };

    let w = world().await;
    install_x402_contracts(&w.provider).await.unwrap();
    let contract = AgentWallet::new(w.wallet, &w.provider);
    contract
        .setAuthorizationBudget(w.token, U256::from(100), 5, 5)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let chain_id = w.provider.get_chain_id().await.unwrap();
    let policy = Policy::from_json(
        &json!({
            "version": 2,
            "chains": [chain_id],
            "limits": [{ "token": w.token.to_string(), "per_transaction": "100",
                         "windows": [{ "window": "24h", "max": "1000" }] }],
            "typed_data": [{ "primary_type": "PermitWitnessTransferFrom",
                             "verifying_contract": chaperone_core::PERMIT2.to_string() }],
        })
        .to_string(),
    )
    .unwrap();
    w.store.set_policy(w.wallet, &policy, 1).await.unwrap();
    let period = contract
        .authorizationNonce(w.token, 0)
        .call()
        .await
        .unwrap();
    let period = u64::try_from(U256::from_be_bytes(period.0) >> 192usize).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let merchant = Address::repeat_byte(0x77);
    let permit = |slot: u32, amount: u64| PermitWitnessTransferFrom {
        permitted: TokenPermissions {
            token: w.token,
            amount: U256::from(amount),
        },
        spender: X402_PERMIT2_PROXY,
        nonce: authorization_nonce(period, slot).into(),
        deadline: U256::from(now + 20),
        witness: Witness {
            to: merchant,
            validAfter: U256::ZERO,
        },
    };
    let cosign = async |message: &PermitWitnessTransferFrom| {
        let payment = Payment::Permit2(Permit2Payment {
            message: message.clone(),
        });
        let request = signed_cosign(&w.agent, chain_id, w.wallet, payment);
        let response = alloy::transports::http::reqwest::Client::new()
            .post(format!("{}/v1/cosign", w.url))
            .header("content-type", "application/json")
            .body(serde_json::to_string(&request).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let answer: serde_json::Value = response.json().await.unwrap();
        let cosignature: Bytes = answer["cosigner_signature"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        message.wallet_signature(&request.agent_signature, &cosignature)
    };

    // Paid through the x402 proxy; a second one co-signed and never used (Permit2's slots).
    let paid = permit(PERMIT2_SLOTS, 60);
    let signature = cosign(&paid).await;
    cosign(&permit(PERMIT2_SLOTS + 1, 30)).await;
    x402_proxy::X402ExactPermit2Proxy::new(X402_PERMIT2_PROXY, &w.provider)
        .settle(
            x402_proxy::Permit2::PermitTransferFrom {
                permitted: x402_proxy::Permit2::TokenPermissions {
                    token: w.token,
                    amount: paid.permitted.amount,
                },
                nonce: paid.nonce,
                deadline: paid.deadline,
            },
            w.wallet,
            x402_proxy::X402ExactPermit2Proxy::Witness {
                to: merchant,
                validAfter: U256::ZERO,
            },
            signature,
        )
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let balance = TestToken::new(w.token, &w.provider)
        .balanceOf(merchant)
        .call()
        .await
        .unwrap();
    assert_eq!(balance, U256::from(60), "paid through Permit2");

    let committed = async || {
        w.store
            .committed_spend(w.wallet, Token::Erc20(w.token))
            .await
            .unwrap()
            .0
    };
    assert_eq!(committed().await, U256::from(90), "both reserved");
    // Past both deadlines, with a block to show it.
    let _: String = w
        .provider
        .raw_request("evm_mine".into(), (now + 21,))
        .await
        .unwrap();
    let mut indexer = Indexer::new(w.provider.clone(), w.store.clone(), None, 0, 0);
    let report = indexer.tick().await.unwrap();
    assert_eq!(
        report.unauthorized, 0,
        "a co-signed Permit2 payment reconciles: {report:?}"
    );
    assert_eq!(
        committed().await,
        U256::from(60),
        "the used Permit2 nonce keeps its spend; only the unused one is released"
    );
    // The ledger: the used one settled at the block that showed its nonce used (Permit2
    // names no transaction), the unused one expired.
    let all = chaperone_store::PaymentFilter {
        limit: 10,
        ..Default::default()
    };
    let rows = w.store.payments(&all).await.unwrap();
    let states: Vec<_> = rows.iter().map(|r| (r.amount, r.state)).collect();
    use chaperone_store::PaymentState::{Expired, Settled};
    assert_eq!(
        states,
        [(U256::from(30), Expired), (U256::from(60), Settled)],
        "{rows:?}"
    );
    let seen = rows[1].settlement.unwrap();
    assert!(
        seen.tx.is_none() && seen.block > 0 && seen.time.is_some(),
        "{seen:?}"
    );
}

/// Co-signatures the wallet's EIP-1271 could never honour are refused before anything is
/// reserved: they would hold window spend until they expire, for nothing (the second review
/// had all of these approved). Read from the wallet on a real Anvil.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizations_the_wallet_cannot_honour_are_refused_and_reserve_nothing() {
    use chaperone_core::{
        Eip3009Kind, PERMIT2_SLOTS, PermitWitnessTransferFrom, TokenDomain, TokenPermissions,
        TransferWithAuthorization, Witness, X402_PERMIT2_PROXY, authorization_nonce, policy::Token,
    };

    let w = world().await;
    let chain_id = w.provider.get_chain_id().await.unwrap();
    AgentWallet::new(w.wallet, &w.provider)
        .setAuthorizationBudget(w.token, U256::from(100), 2, 1)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let policy = Policy::from_json(
        &json!({
            "version": 2,
            "chains": [chain_id],
            "limits": [{ "token": w.token.to_string(), "per_transaction": "1000" }],
            "typed_data": [
                { "primary_type": "TransferWithAuthorization", "verifying_contract": w.token.to_string() },
                { "primary_type": "PermitWitnessTransferFrom",
                  "verifying_contract": chaperone_core::PERMIT2.to_string() },
            ],
        })
        .to_string(),
    )
    .unwrap();
    w.store.set_policy(w.wallet, &policy, 1).await.unwrap();
    let block = w
        .provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let (now, period) = (block.header.timestamp, block.header.timestamp / 86_400);
    let domain = TokenDomain {
        name: TestToken::new(w.token, &w.provider)
            .name()
            .call()
            .await
            .unwrap(),
        version: "1".into(),
        chain_id,
        verifying_contract: w.token,
    };
    let merchant = Address::repeat_byte(0x77);
    let eip3009 = |value: u64, period: u64, slot: u32| {
        let message = TransferWithAuthorization {
            from: w.wallet,
            to: merchant,
            value: U256::from(value),
            validAfter: U256::ZERO,
            validBefore: U256::from(now + 60),
            nonce: authorization_nonce(period, slot),
        };
        let authorization = PaymentAuthorization {
            primary_type: Eip3009Kind::TransferWithAuthorization,
            domain: domain.clone(),
            message,
        };
        signed_cosign_json(
            &w.agent,
            chain_id,
            w.wallet,
            Payment::Eip3009(authorization),
        )
    };
    let permit2 = |slot: u32| {
        let message = PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token: w.token,
                amount: U256::from(10),
            },
            spender: X402_PERMIT2_PROXY,
            nonce: authorization_nonce(period, slot).into(),
            deadline: U256::from(now + 60),
            witness: Witness {
                to: merchant,
                validAfter: U256::ZERO,
            },
        };
        signed_cosign_json(
            &w.agent,
            chain_id,
            w.wallet,
            Payment::Permit2(Permit2Payment { message }),
        )
    };
    let cosign = async |body: serde_json::Value| {
        let response = alloy::transports::http::reqwest::Client::new()
            .post(format!("{}/v1/cosign", w.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    for (what, body, code) in [
        (
            "a Permit2 slot for EIP-3009",
            eip3009(10, period, PERMIT2_SLOTS),
            "nonce_outside_slots",
        ),
        (
            "beyond every slot",
            eip3009(10, period, 2),
            "nonce_outside_slots",
        ),
        (
            "an EIP-3009 slot for Permit2",
            permit2(0),
            "nonce_outside_slots",
        ),
        (
            "beyond Permit2's slot",
            permit2(PERMIT2_SLOTS + 1),
            "nonce_outside_slots",
        ),
        ("above maxValue", eip3009(101, period, 0), "over_max_value"),
        (
            "a past period",
            eip3009(10, period - 1, 0),
            "nonce_of_another_period",
        ),
        (
            "a future period",
            eip3009(10, period + 1, 0),
            "nonce_of_another_period",
        ),
    ] {
        let (status, answer) = cosign(body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some(code)),
            "{what}: {answer}"
        );
    }
    let committed = w
        .store
        .committed_spend(w.wallet, Token::Erc20(w.token))
        .await
        .unwrap()
        .0;
    assert_eq!(
        committed,
        U256::ZERO,
        "nothing reserved for what cannot pay"
    );
    // What the wallet can honour is co-signed as before.
    for body in [eip3009(10, period, 1), permit2(PERMIT2_SLOTS)] {
        let (status, answer) = cosign(body).await;
        assert_eq!(status, 200, "{answer}");
    }
}
