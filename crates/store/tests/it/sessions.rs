//! Console sessions end when they expire, when they are deleted, and when their token is
//! revoked; a revoked token is no token. On SQLite and PostgreSQL.

use chaperone_core::B256;

use crate::stores;

#[tokio::test]
async fn sessions_expire_end_and_die_with_their_token() {
    for store in stores().await {
        let token = B256::repeat_byte(1);
        store
            .add_api_token(token, "erin", "auditor", 10)
            .await
            .unwrap();
        let (a, b) = (B256::repeat_byte(0xa), B256::repeat_byte(0xb));
        store.create_session(a, token, 100, 200).await.unwrap();
        store.create_session(b, token, 100, 300).await.unwrap();
        let erin = Some(("auditor".to_owned(), "erin".to_owned()));
        assert_eq!(store.session(a, 199).await.unwrap(), erin);
        assert_eq!(store.session(a, 200).await.unwrap(), None, "expired");
        assert_eq!(
            store.session(B256::ZERO, 150).await.unwrap(),
            None,
            "unknown"
        );
        store.delete_session(b).await.unwrap();
        assert_eq!(store.session(b, 150).await.unwrap(), None, "logged out");

        let c = B256::repeat_byte(0xc);
        store.create_session(c, token, 100, 300).await.unwrap();
        assert_eq!(store.revoke_api_tokens("erin", 150).await.unwrap(), 1);
        assert_eq!(
            store.session(c, 160).await.unwrap(),
            None,
            "revoked token's session"
        );
        assert_eq!(store.api_token(token).await.unwrap(), None, "revoked token");
        assert!(!store.api_token_named("erin").await.unwrap());
        assert_eq!(store.revoke_api_tokens("erin", 170).await.unwrap(), 0);
        let listed = store.api_tokens().await.unwrap();
        assert_eq!(listed[0].revoked_at, Some(150));
    }
}
