//! Sixth red-team review of issue 29: a request logged pending before migration 0020 (no
//! `decision_records` row: opened from its `decisions` row) and ended by `expire_approvals` lost
//! the opening of its pending record, which stays in the log: an honest bundle of its period
//! could not open it. And an edited row made the service log a second final record.

use chaperone_core::{B256, policy::Outcome};
use chaperone_store::Store;

use crate::{
    approval_endings::{Waiting, waiting_and_logged},
    decision_records::log_decisions,
    decisions::{NOW, decide},
    postgres_url, sqlite_url,
};

/// Every backend's URL this run can reach.
async fn urls() -> Vec<String> {
    let mut out = vec![sqlite_url()];
    out.extend(postgres_url().await);
    out
}

#[tokio::test]
async fn a_legacy_pending_record_keeps_its_opening_when_the_expiry_task_ends_it() {
    for url in urls().await {
        a_legacy_pending_record_keeps_its_opening_when_the_expiry_task_ends_it_on(&url).await;
    }
}

async fn a_legacy_pending_record_keeps_its_opening_when_the_expiry_task_ends_it_on(url: &str) {
    let store = Store::connect(url).await.unwrap().with_max_clock_skew(None);
    let Waiting {
        key,
        mut chain,
        id,
        pending,
        ..
    } = waiting_and_logged(&store, 1_500_000).await;
    // As logged before migration 0020: no kept opening, the row is its only opening.
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query("DELETE FROM decision_records")
        .execute(&mut admin)
        .await
        .unwrap();
    let before = store.decision_openings(&[id]).await.unwrap();
    assert!(
        before.iter().any(|o| o.leaf_hash == pending),
        "the legacy record is opened from its row"
    );
    // The anchorer's first tick after the upgrade ends it (validUntil NOW + 60 passed).
    assert_eq!(store.expire_approvals(NOW + 61).await.unwrap(), 1);
    let last = log_decisions(&store, &key, &mut chain, (NOW + 61) * 1000).await[0];
    let after: Vec<B256> = store
        .decision_openings(&[id])
        .await
        .unwrap()
        .iter()
        .map(|o| o.leaf_hash)
        .collect();
    eprintln!("pending record {pending}, final record {last}, openings now {after:?}");
    assert!(
        after.contains(&pending),
        "the pending record (still in the log, dated in its period) has no opening any more: \
         an honest bundle of its period is INVALID (a decision record of the period the bundle \
         does not open)"
    );
}

/// An admin who edits one unsigned column (`decisions.outcome` back to `pending_approval`)
/// after a co-signed approval was logged makes the anchorer's expiry task end the request
/// again: the log then holds approved (co-signed) and, after it, denied, and the verifier shows
/// the last (sdk `a_final_record_superseded_by_another_final_record_is_invalid`).
#[tokio::test]
async fn an_edited_row_never_makes_the_service_log_a_second_final_record() {
    for url in urls().await {
        an_edited_row_never_makes_the_service_log_a_second_final_record_on(&url).await;
    }
}

async fn an_edited_row_never_makes_the_service_log_a_second_final_record_on(url: &str) {
    let store = Store::connect(url).await.unwrap().with_max_clock_skew(None);
    let Waiting {
        key,
        mut chain,
        id,
        req,
        ..
    } = waiting_and_logged(&store, 1_000_001).await;
    store
        .resolve_approval(id, true, "alice", None, NOW + 1)
        .await
        .unwrap();
    let approved = decide(&store, id, &crate::people::at(&req, NOW + 2)).await;
    assert_eq!(approved.outcome, Outcome::Approved);
    assert!(approved.signature.is_some());
    let approved_leaf = log_decisions(&store, &key, &mut chain, (NOW + 2) * 1000).await[0];
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query("UPDATE decisions SET outcome = 'pending_approval'")
        .execute(&mut admin)
        .await
        .unwrap();
    let ended = store.expire_approvals(NOW + 61).await.unwrap();
    assert_eq!(
        ended, 0,
        "a request already ended (approved, co-signed) was ended again"
    );
    assert!(
        store.unlogged_decisions(10).await.unwrap().is_empty(),
        "nothing new to log"
    );
    let openings = store.decision_openings(&[id]).await.unwrap();
    let outcomes: Vec<String> = openings
        .iter()
        .map(|o| {
            serde_json::from_str::<serde_json::Value>(&o.decision).unwrap()["outcome"].to_string()
        })
        .collect();
    assert!(
        openings.iter().any(|o| o.leaf_hash == approved_leaf)
            && !outcomes.iter().any(|o| o.contains("denied")),
        "only the pending and the approved records: {outcomes:?}"
    );
}
