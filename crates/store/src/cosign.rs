//! Co-sign decisions and spend reservations: what a decision records (decided in decide.rs),
//! then settling or releasing each reservation from what the chain shows.

use chaperone_core::{
    Address, B256, U256,
    policy::{Decision, Outcome, Reason, Token},
};
use sqlx::Row;

use crate::{
    Result, Store,
    store::{db_time, hex, parse},
    totals::Ending,
};

/// What the decide callback returns: the engine's decision and, if the service signs, the
/// co-signature (hex), so that the decision, reservation and signature commit together.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The engine's decision.
    pub decision: Decision,
    /// The co-signature, when the decision is to sign.
    pub signature: Option<String>,
}

/// Where a human approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApprovalState {
    Pending,
    Approved,
    Denied,
    /// No longer usable since `at`: the approval's expiry or the request's `validUntil`,
    /// whichever came first.
    Expired {
        at: u64,
    },
}

/// A request as the store records it, besides what the engine decides.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// The wallet.
    pub wallet: Address,
    /// The request's id: its EIP-712 digest.
    pub request_id: B256,
    /// The `Execute` nonce, for matching on-chain executions (none for typed data).
    pub nonce: Option<U256>,
    /// For an EIP-3009 authorization: its token and nonce, for matching the token's
    /// `AuthorizationUsed(wallet, nonce)` (for Permit2: Permit2's address and the nonce).
    pub authorization: Option<(Address, B256)>,
    /// For an x402 authorization: the one transfer its nonce may make, which reconciliation
    /// compares with the token's `Transfer` (the nonce alone carries no amount or recipient).
    pub pays: Option<AuthorizedTransfer>,
    /// The request as received (JSON), for the audit trail.
    pub json: &'a str,
    /// The last second at which the co-signature can be used on chain.
    pub valid_until: u64,
}

/// The one token transfer an approved x402 authorization may make, and from when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorizedTransfer {
    /// The token it moves.
    pub token: Address,
    /// The recipient.
    pub to: Address,
    /// The amount, in the token's base units.
    pub value: U256,
    /// The first second (Unix) at which it may be used on chain (`valid_until` is the last).
    pub valid_from: u64,
}

/// A decision as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    /// The request's id (its EIP-712 digest).
    pub request_id: B256,
    /// The verdict.
    pub outcome: Outcome,
    /// Every reason.
    pub reasons: Vec<Reason>,
    /// The policy version that decided.
    pub policy_version: u32,
    /// The policy's hash.
    pub policy_hash: B256,
    /// The co-signature, if one was given.
    pub signature: Option<String>,
    /// True when this request had been decided before and this is the recorded answer.
    pub replayed: bool,
}

/// Where the chain showed a co-signature used: what the ledger shows as the settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// The transaction, when an event named it (Permit2 emits none).
    pub tx: Option<B256>,
    /// Its block (for Permit2: the confirmed block whose nonce bitmap first showed it used).
    pub block: u64,
    /// That block's time (Unix seconds), when known.
    pub time: Option<u64>,
}

/// How the `authorization_key` column names an EIP-3009 authorization.
pub(crate) fn authorization_key(token: Address, nonce: B256) -> String {
    format!("{}:{nonce}", hex(token))
}

impl Store {
    /// Records `by`'s verdict on a pending request as an approver's vote
    /// ([`Store::cast_vote`]): `by` must name a live token, and a request that needs a quorum
    /// stays pending until enough distinct approvers agree.
    pub async fn resolve_approval(
        &self,
        request_id: B256,
        approve: bool,
        by: &str,
        comment: Option<&str>,
        now: u64,
    ) -> Result<crate::VoteCount> {
        let actor = crate::Actor::new(by, "approver");
        self.cast_vote(request_id, approve, &actor, comment, now)
            .await
    }

    /// Pending approvals that have not expired, and whose co-signature could still be used
    /// (the agent's `validUntil` has not passed): (request id, wallet, expires at).
    pub async fn pending_approvals(&self, now: u64) -> Result<Vec<(B256, Address, u64)>> {
        let rows = sqlx::query(
            "SELECT a.request_id, d.wallet, a.expires_at FROM approvals a \
             JOIN decisions d ON d.request_id = a.request_id \
             WHERE a.status = 'pending' AND a.expires_at >= $1 AND d.valid_until >= $1 \
             ORDER BY a.expires_at",
        )
        .bind(db_time(now))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                let wallet: String = row.try_get(1)?;
                let expires: i64 = row.try_get(2)?;
                Ok((
                    parse(&id, "request id")?,
                    parse(&wallet, "wallet")?,
                    expires as u64,
                ))
            })
            .collect()
    }

    /// Settles the reservations of the co-signed request of `wallet` whose id is `digest`: the
    /// wallet emitted `Executed(nonce, digest)`, which names exactly the calls that ran. A
    /// reservation already released (its expiry was seen first) is settled too: the spend
    /// happened. Another approved request with the same nonce is not: its calls never ran (and
    /// never can), so it is released once it expires.
    pub async fn settle_execution(&self, wallet: Address, digest: B256) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let moved = self
            .settle_where(&mut tx, "request_id", wallet, &digest.to_string(), None)
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Settles the reservation of the EIP-3009 authorization of `token` with `nonce` from
    /// `wallet`: the token emitted `AuthorizationUsed(wallet, nonce)`.
    pub async fn settle_authorization(
        &self,
        wallet: Address,
        token: Address,
        nonce: B256,
    ) -> Result<u64> {
        self.settle_authorization_seen(wallet, token, nonce, None)
            .await
    }

    /// As [`Store::settle_authorization`], recording where the chain showed it used.
    pub async fn settle_authorization_seen(
        &self,
        wallet: Address,
        token: Address,
        nonce: B256,
        seen: Option<Settlement>,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let key = authorization_key(token, nonce);
        let moved = self
            .settle_where(&mut tx, "authorization_key", wallet, &key, seen)
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    pub(crate) async fn settle_where(
        &self,
        conn: &mut sqlx::AnyConnection,
        column: &'static str,
        wallet: Address,
        value: &str,
        seen: Option<Settlement>,
    ) -> Result<u64> {
        let select = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, wallet, token, amount, expires_at, status FROM spend_reservations \
             WHERE request_id IN \
             (SELECT request_id FROM decisions WHERE wallet = $1 AND {column} = $2)"
        )))
        .bind(hex(wallet))
        .bind(value);
        let ending = Ending {
            settlement: seen,
            expired_at: None,
        };
        self.move_reservations(conn, select, "settled", ending)
            .await
    }

    /// The x402 Permit2 payments whose spend is still reserved, as (wallet, nonce). Permit2
    /// emits no event when it uses a nonce, so the indexer looks each one up in Permit2's
    /// nonce bitmap and settles it with [`Store::settle_authorization`] under Permit2's
    /// address.
    pub async fn reserved_permit2(&self) -> Result<Vec<(Address, B256)>> {
        let prefix = format!("{}:", hex(chaperone_core::PERMIT2));
        let rows = sqlx::query(
            "SELECT DISTINCT d.wallet, d.authorization_key FROM spend_reservations r \
             JOIN decisions d ON d.request_id = r.request_id \
             WHERE r.status = 'reserved' AND d.authorization_key LIKE $1",
        )
        .bind(format!("{prefix}%"))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| {
                let key: String = row.try_get(1)?;
                let nonce = key.strip_prefix(&prefix).unwrap_or_default();
                Ok((
                    parse(&row.try_get::<String, _>(0)?, "wallet")?,
                    parse(nonce, "Permit2 nonce")?,
                ))
            })
            .collect()
    }

    /// Marks a request's reservations settled (its execution was confirmed on chain).
    pub async fn settle(&self, request_id: B256) -> Result<u64> {
        self.move_request(request_id, "settled").await
    }

    /// Releases a request's reservations (its execution reverted).
    pub async fn release(&self, request_id: B256) -> Result<u64> {
        self.move_request(request_id, "released").await
    }

    async fn move_request(&self, request_id: B256, status: &'static str) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        // Only a reserved spend is released; a settled one happened.
        let from = if status == "released" {
            "status = 'reserved'"
        } else {
            "TRUE"
        };
        let select = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, wallet, token, amount, expires_at, status FROM spend_reservations \
             WHERE request_id = $1 AND {from}"
        )))
        .bind(request_id.to_string());
        let moved = self
            .move_reservations(&mut tx, select, status, Ending::default())
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Moves on the reservations whose co-signature can no longer be used, given that every
    /// block up to a confirmed block mined at `confirmed_time` has been scanned for
    /// `Executed` and `AuthorizationUsed`: no later block can be older, so a co-signature whose
    /// last usable second is before it either was seen (and settled) or never will be. Those
    /// of `Execute` requests and EIP-3009 authorizations are released; those of other typed
    /// data (e.g. a permit, which no event reports) are settled: whoever held it may have used
    /// it unseen, so its spend keeps counting.
    ///
    /// Never call this with wall-clock time: a transaction mined in the block where
    /// `validUntil` falls may not yet be visible through the RPC.
    pub async fn release_expired(&self, confirmed_time: u64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let moved = self.release_expired_on(&mut tx, confirmed_time).await?;
        tx.commit().await?;
        Ok(moved)
    }

    pub(crate) async fn release_expired_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        confirmed_time: u64,
    ) -> Result<u64> {
        let expired = |events: &str| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT r.id, r.wallet, r.token, r.amount, r.expires_at, r.status \
                 FROM spend_reservations r JOIN decisions d ON d.request_id = r.request_id \
                 WHERE r.status = 'reserved' AND r.expires_at < $1 AND {events}"
            )))
            .bind(db_time(confirmed_time))
        };
        let unseen = "d.nonce IS NULL AND d.authorization_key IS NULL";
        self.move_reservations(conn, expired(unseen), "settled", Ending::default())
            .await?;
        let seen = "(d.nonce IS NOT NULL OR d.authorization_key IS NOT NULL)";
        // The ledger tells an expiry from another release by when it was seen to expire.
        let ending = Ending {
            settlement: None,
            expired_at: Some(confirmed_time),
        };
        self.move_reservations(conn, expired(seen), "released", ending)
            .await
    }

    /// Total reserved or settled amount of `token` for `wallet` (what counts against limits).
    pub async fn committed_spend(
        &self,
        wallet: Address,
        token: Token,
    ) -> Result<chaperone_core::policy::Amount> {
        let rows = sqlx::query(
            "SELECT amount FROM spend_reservations WHERE wallet = $1 AND token = $2 AND status <> 'released'",
        )
        .bind(hex(wallet))
        .bind(token.to_string())
        .fetch_all(&self.reader)
        .await?;
        let mut total = chaperone_core::policy::Amount::default();
        for row in rows {
            let amount: String = row.try_get(0)?;
            total.0 = total.0.saturating_add(parse(&amount, "amount")?);
        }
        Ok(total)
    }
}
