//! 500 simultaneous requests against a 100-unit window: exactly 100 are approved, on every
//! backend. Reserve-then-settle inside the wallet-locked transaction is what guarantees it.

use std::sync::Arc;

use chaperone_core::{
    Address, Bytes, Call, U256,
    policy::{Outcome, Token},
};
use chaperone_store::Store;

use crate::{
    decisions::{NOW, decide, pay, registered, request, token, wallet},
    stores,
};

fn erc20(selector: &str, amount: u64) -> Call {
    let mut data = chaperone_core::B256::ZERO.0[..0].to_vec();
    data.extend_from_slice(&alloy_selector(selector));
    data.extend_from_slice(Address::repeat_byte(0xb0).into_word().as_slice());
    data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
    Call {
        to: token(),
        value: U256::ZERO,
        data: Bytes::from(data),
    }
}

fn alloy_selector(signature: &str) -> [u8; 4] {
    let h = chaperone_core::keccak256(signature.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

async fn race(store: Arc<Store>, calls: impl Fn(u64) -> Call) -> Vec<Outcome> {
    let handles: Vec<_> = (0..500u64)
        .map(|i| {
            let store = store.clone();
            let (id, req) = request(vec![calls(i)], i, NOW);
            tokio::spawn(async move { decide(&store, id, &req).await.outcome })
        })
        .collect();
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.await.unwrap());
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_requests_approve_exactly_the_window() {
    for store in stores().await {
        registered(&store, 100).await;
        let store = Arc::new(store);
        let outcomes = race(store.clone(), |_| pay(1)).await;
        let approved = outcomes.iter().filter(|o| **o == Outcome::Approved).count();
        assert_eq!(approved, 100, "{:?}", store.backend());
        assert_eq!(outcomes.len() - approved, 400);
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::from(100)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_tokens_and_approvals_never_overshoot() {
    for store in stores().await {
        registered(&store, 100).await;
        let store = Arc::new(store);
        // A third native payments, a third token transfers, a third token approvals (spend).
        let outcomes = race(store.clone(), |i| match i % 3 {
            0 => pay(1),
            1 => erc20("transfer(address,uint256)", 1),
            _ => erc20("approve(address,uint256)", 1),
        })
        .await;
        let approved = outcomes.iter().filter(|o| **o == Outcome::Approved).count();
        assert_eq!(
            approved, 200,
            "100 native + 100 token (transfers and approvals together)"
        );
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::from(100)
        );
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Erc20(token()))
                .await
                .unwrap()
                .0,
            U256::from(100)
        );
    }
}
