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
