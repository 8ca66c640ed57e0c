//! Server migration 0017 on a database written before it: live tokens sharing a name (in any
//! case) leave the newest live and revoke the others on the record, so the unique index can
//! hold; tokens are numbered in the order they were issued; a request already waiting may be
//! voted on by the tokens created before it, not by one created after.

use chaperone_core::B256;
use chaperone_store::{Actor, Error, Store};
use sqlx::{AnyPool, Executor};

use crate::{postgres_url, sqlite_url};

/// Migrates `url` to 0015 and writes what a deployment of that schema held.
async fn write_before_0017(url: &str) {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url).await.unwrap();
    let mut migrator = if url.starts_with("sqlite:") {
        sqlx::migrate!("../../migrations/sqlite")
    } else {
        sqlx::migrate!("../../migrations/postgres")
    };
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= 15)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    migrator.run(&pool).await.unwrap();
    let wallet = format!("{:#x}", chaperone_core::Address::repeat_byte(0xaa));
    let request = B256::repeat_byte(0x01);
    for sql in [
        format!(
            "INSERT INTO wallets (address, chain_id, agent, created_at) VALUES ('{wallet}', 31337, '{wallet}', 1)"
        ),
        // Two live tokens of one name (a configuration's token changed between restarts).
        format!(
            "INSERT INTO api_tokens (token_hash, name, role, created_at) VALUES ('{}', 'bootstrap', 'admin', 100)",
            B256::repeat_byte(0xb1)
        ),
        format!(
            "INSERT INTO api_tokens (token_hash, name, role, created_at) VALUES ('{}', 'Bootstrap', 'admin', 200)",
            B256::repeat_byte(0xb2)
        ),
        format!(
            "INSERT INTO api_tokens (token_hash, name, role, created_at) VALUES ('{}', 'alice', 'approver', 150)",
            B256::repeat_byte(0xa1)
        ),
        // A request waiting since 160, with a quorum of two.
        format!(
            "INSERT INTO decisions (request_id, wallet, created_at, valid_until, request, outcome, \
             reasons, policy_version, policy_hash) VALUES ('{request}', '{wallet}', 160, 4000000000, \
             '{{}}', 'pending_approval', '[]', 1, '{}')",
            B256::ZERO
        ),
        format!(
            "INSERT INTO approvals (request_id, status, expires_at, required) VALUES ('{request}', 'pending', 4000000000, 2)"
        ),
    ] {
        pool.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    pool.close().await;
}

async fn migrates(url: &str) {
    write_before_0017(url).await;
    let store = Store::connect(url).await.unwrap().with_max_clock_skew(None);
    let tokens: Vec<(String, bool)> = store
        .api_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.revoked_at.is_some()))
        .collect();
    assert_eq!(
        tokens,
        [
            ("bootstrap".to_owned(), true),
            ("alice".to_owned(), false),
            ("Bootstrap".to_owned(), false),
        ]
    );
    let revoked = store.admin_actions(None, 10).await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        (revoked[0].action.as_str(), revoked[0].actor.name.as_str()),
        ("token.revoke", "migration 0017")
    );
    // The unique index holds: no second live token of the name, in any case.
    let taken = store
        .issue_api_token(
            B256::repeat_byte(0xc1),
            "BOOTSTRAP",
            "admin",
            &Actor::new("Bootstrap", "admin"),
            300,
        )
        .await;
    assert!(matches!(taken, Err(Error::NameTaken(_))), "{taken:?}");
    // Alice's token is older than the waiting request; the live admin token is newer.
    let request = B256::repeat_byte(0x01);
    store
        .cast_vote(request, true, &Actor::new("alice", "approver"), None, 400)
        .await
        .unwrap();
    let late = store
        .cast_vote(request, true, &Actor::new("Bootstrap", "admin"), None, 400)
        .await;
    assert!(
        matches!(late, Err(Error::TokenNewerThanRequest(_))),
        "{late:?}"
    );
}

#[tokio::test]
async fn migration_0017_keeps_one_live_token_per_name_and_orders_tokens() {
    migrates(&sqlite_url()).await;
    if let Some(url) = postgres_url().await {
        migrates(&url).await;
    }
}
