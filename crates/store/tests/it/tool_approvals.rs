//! Held tool calls in the store, on SQLite and PostgreSQL: an approval expires at its time and
//! then takes no verdict, an agent's pending approvals are capped (expired ones and other
//! agents' do not count), and an approval must name the arguments hash the call was held with.

use chaperone_core::{Address, B256};
use chaperone_store::{NewToolDecision, ToolDecisionStore, ToolVerdict};

use crate::stores;

fn held(id: u8, agent: Address, expires_at: u64) -> NewToolDecision<'static> {
    NewToolDecision {
        id: B256::repeat_byte(id),
        agent,
        upstream: "everything",
        tool: "transfer",
        outcome: "approval_required",
        reasons: "[]".into(),
        policy_version: 1,
        policy_hash: "0x1",
        leaf_hash: None,
        decided_at_ms: 1,
        body: format!("{{\"id\":{id}}}"),
        arguments_hash: Some(B256::repeat_byte(0xee)),
        approval_expires_at: Some(expires_at),
        arguments: Some(format!("{{\"json\":\"{{\\\"n\\\":{id}}}\"}}")),
    }
}

#[tokio::test]
async fn held_calls_expire_are_capped_and_bind_their_arguments() {
    for store in stores().await {
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let insert = |d: NewToolDecision<'static>, now: u64| {
            let store = store.clone();
            async move { store.insert_tool_decision(&d, now, 2).await.unwrap() }
        };
        assert_eq!(
            insert(held(1, a, 160), 100).await,
            ToolDecisionStore::Inserted
        );
        assert_eq!(
            insert(held(2, a, 400), 100).await,
            ToolDecisionStore::Inserted
        );
        // The cap: a third is refused and not stored; a replay is still a replay.
        assert_eq!(
            insert(held(3, a, 400), 100).await,
            ToolDecisionStore::TooManyPending
        );
        assert_eq!(
            store
                .tool_approval(B256::repeat_byte(3), 100)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            insert(held(1, a, 160), 100).await,
            ToolDecisionStore::Replayed
        );
        // Another agent's count is its own.
        assert_eq!(
            insert(held(4, b, 400), 100).await,
            ToolDecisionStore::Inserted
        );
        // Expiry: at 160 the first reads expired, takes no verdict, and frees its place.
        let first = store
            .tool_approval(B256::repeat_byte(1), 160)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.status, "expired");
        assert_eq!(
            store
                .resolve_tool_approval(B256::repeat_byte(1), None, "alice", 160)
                .await
                .unwrap(),
            ToolVerdict::NotPending
        );
        assert_eq!(
            insert(held(3, a, 400), 160).await,
            ToolDecisionStore::Inserted
        );
        let (pending, total) = store.pending_tool_approvals(160, 10).await.unwrap();
        assert_eq!(total, 3);
        assert!(pending.iter().all(|p| p.id != B256::repeat_byte(1)));
        // Binding: an approval of another hash changes nothing; of the held one, approves.
        let second = B256::repeat_byte(2);
        assert_eq!(
            store
                .resolve_tool_approval(second, Some(B256::repeat_byte(0xdd)), "alice", 170)
                .await
                .unwrap(),
            ToolVerdict::ArgumentsMismatch
        );
        assert_eq!(
            store
                .tool_approval(second, 170)
                .await
                .unwrap()
                .unwrap()
                .status,
            "pending"
        );
        assert_eq!(
            store
                .resolve_tool_approval(second, Some(B256::repeat_byte(0xee)), "alice", 170)
                .await
                .unwrap(),
            ToolVerdict::Given
        );
        let approved = store.tool_approval(second, 170).await.unwrap().unwrap();
        assert_eq!(approved.status, "approved");
        assert_eq!(approved.by.as_deref(), Some("alice"));
        assert_eq!(approved.arguments_hash, Some(B256::repeat_byte(0xee)));
    }
}

/// Red team: the per-agent cap was counted, then inserted, in two statements: reports sent
/// together all passed the count. Now the count and the insert are one step per agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_held_calls_cannot_pass_the_cap() {
    for store in stores().await {
        let agent = Address::repeat_byte(7);
        let reports = (0..40u8).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_tool_decision(&held(i + 1, agent, 1_000), 100, 5)
                    .await
                    .unwrap()
            })
        });
        let mut inserted = 0;
        for report in reports.collect::<Vec<_>>() {
            match report.await.unwrap() {
                ToolDecisionStore::Inserted => inserted += 1,
                ToolDecisionStore::TooManyPending => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(inserted, 5, "{:?}", store.backend());
        let (_, total) = store.pending_tool_approvals(100, 100).await.unwrap();
        assert_eq!(total, 5, "{:?}", store.backend());
    }
}

/// A held call's arguments are raw content: shown while pending, cleared (the hash kept) once
/// the approval is decided, and once it has expired.
#[tokio::test]
async fn held_arguments_are_cleared_once_decided_or_expired() {
    for store in stores().await {
        let agent = Address::repeat_byte(8);
        let (decided, expiring) = (B256::repeat_byte(1), B256::repeat_byte(2));
        store
            .insert_tool_decision(&held(1, agent, 400), 100, 20)
            .await
            .unwrap();
        store
            .insert_tool_decision(&held(2, agent, 160), 100, 20)
            .await
            .unwrap();
        let (pending, _) = store.pending_tool_approvals(100, 10).await.unwrap();
        assert!(pending.iter().all(|p| p.arguments.is_some()), "{pending:?}");
        assert_eq!(
            store
                .resolve_tool_approval(decided, None, "alice", 120)
                .await
                .unwrap(),
            ToolVerdict::Given
        );
        assert_eq!(store.held_arguments(decided).await.unwrap(), None);
        assert!(store.held_arguments(expiring).await.unwrap().is_some());
        // Past its expiry, the next held call's report clears it.
        store
            .insert_tool_decision(&held(3, agent, 900), 170, 20)
            .await
            .unwrap();
        assert_eq!(store.held_arguments(expiring).await.unwrap(), None);
        let state = store.tool_approval(expiring, 170).await.unwrap().unwrap();
        assert_eq!(state.arguments_hash, Some(B256::repeat_byte(0xee)));
        // A sweep clears what expired without a new report.
        store
            .insert_tool_decision(&held(4, agent, 200), 170, 20)
            .await
            .unwrap();
        assert_eq!(store.clear_expired_tool_arguments(300).await.unwrap(), 1);
        assert_eq!(
            store.held_arguments(B256::repeat_byte(4)).await.unwrap(),
            None
        );
    }
}
