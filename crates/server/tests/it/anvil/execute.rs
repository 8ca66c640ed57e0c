//! Co-signed `execute` calls on a real wallet: within policy they execute (native and ERC-20),
//! over it they are refused and revert, and the indexer settles or releases their reservations.

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    sol_types::SolCall,
};
use chaperone_chain::{AgentWallet, TestToken};
use chaperone_core::{Call, policy::Token};

use super::{ETHER, native, to_contract, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosigned_payments_execute_and_the_rest_is_refused() {
    let w = world().await;
    let contract = AgentWallet::new(w.wallet, &w.provider);
    let recipient = Address::repeat_byte(0x42);

    // Within policy: the service co-signs and the wallet executes.
    let pay = w.execute(vec![native(recipient, ETHER / 2)], 0);
    w.execute_approved(&pay).await;
    assert_eq!(
        w.provider.get_balance(recipient).await.unwrap(),
        U256::from(ETHER / 2)
    );

    // An ERC-20 payment within policy executes too.
    let transfer = TestToken::transferCall {
        to: recipient,
        value: U256::from(40),
    }
    .abi_encode();
    let pay_token = w.execute(
        vec![Call {
            to: w.token,
            value: U256::ZERO,
            data: transfer.into(),
        }],
        1,
    );
    w.execute_approved(&pay_token).await;
    assert_eq!(w.token_balance(recipient).await, U256::from(40));

    // Over the per-request cap: denied, and executing without the co-signature reverts.
    let too_much = w.execute(vec![native(recipient, ETHER + 1)], 2);
    let (status, body) = w.cosign(&too_much).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reasons"][0]["code"], "per_transaction_cap");
    let agent_sig = w.agent_signature(&too_much);
    let err = contract
        .execute(
            to_contract(&too_much.calls),
            too_much.nonce,
            too_much.validUntil,
            agent_sig.clone(),
            agent_sig,
        )
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.as_decoded_interface_error::<AgentWallet::AgentWalletErrors>(),
            Some(AgentWallet::AgentWalletErrors::InvalidCosignerSignature(_))
        ),
        "{err}"
    );

    // The indexer sees both executions and settles their reservations (confirmations 0).
    let mut indexer = w.indexer();
    let report = indexer.tick().await.unwrap();
    assert!(report.events >= 2, "both executions indexed: {report:?}");
    assert_eq!(
        report.unauthorized, 0,
        "co-signed executions reconcile: {report:?}"
    );
    for executed in [&pay, &pay_token] {
        assert_eq!(
            w.store
                .settle_execution(w.wallet, executed.digest(w.chain_id, w.wallet))
                .await
                .unwrap(),
            0,
            "Executed({}) already settled by the indexer",
            executed.nonce
        );
    }
    // The ledger names the transaction and its block's time for each.
    for row in w.ledger().await {
        assert_eq!(row.state, chaperone_store::PaymentState::Settled, "{row:?}");
        let seen = row.settlement.unwrap();
        assert!(seen.tx.is_some() && seen.time.is_some(), "{row:?}");
    }
    let committed = async || w.committed(Token::Native).await;
    let before = committed().await;

    // A co-signed request that is never executed is released only once a confirmed block
    // mined after its validUntil has been indexed, never by the wall clock alone.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut unused = w.execute(vec![native(recipient, ETHER / 4)], 2);
    unused.validUntil = now + 30;
    let (status, body) = w.cosign(&unused).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(committed().await, before + U256::from(ETHER / 4));
    indexer.tick().await.unwrap();
    assert_eq!(
        committed().await,
        before + U256::from(ETHER / 4),
        "no block after validUntil yet"
    );
    w.mine_at(now + 31).await;
    indexer.tick().await.unwrap();
    assert_eq!(
        committed().await,
        before,
        "released after a block past validUntil"
    );
    let newest = w.ledger().await.remove(0);
    assert_eq!(newest.amount, U256::from(ETHER / 4));
    assert_eq!(newest.state, chaperone_store::PaymentState::Expired);
    assert!(
        newest.expired_at.is_some_and(|t| t > now + 30),
        "{newest:?}"
    );

    // An approve beyond the token budget is denied: an approval is spend.
    let approve = TestToken::approveCall {
        spender: recipient,
        value: U256::from(101),
    }
    .abi_encode();
    let (status, body) = w
        .cosign(&w.execute(
            vec![Call {
                to: w.token,
                value: U256::ZERO,
                data: approve.into(),
            }],
            2,
        ))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reasons"][0]["code"], "per_transaction_cap");
}
