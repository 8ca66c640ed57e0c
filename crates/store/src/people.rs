//! Who did what: approvers' votes on pending requests (a quorum of distinct names, one denial
//! denies) and the administrative actions that become records of the policy service in the log.

use chaperone_core::{
    B256,
    policy::{Tally, Vote, tally},
};
use sqlx::Row;

use crate::{
    Backend, Error, Result, Store,
    audit::to_u64,
    sql_filter::{IN_LIST_PART, placeholders},
    store::{db_time, parse},
};

/// Who acts: a token's name and role (or `configuration` for what the service's own
/// configuration does at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's name.
    pub name: String,
    /// Its role: `admin`, `approver`, `auditor`, or `configuration`.
    pub role: String,
}

impl Actor {
    /// An actor with this name and role.
    pub fn new(name: impl Into<String>, role: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            role: role.into(),
        }
    }
}

/// An administrative action to record (and log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdminAction<'a> {
    /// What was done: `verdict`, `policy.set`, `token.create`, `token.revoke`, …
    pub action: &'a str,
    /// What it was done to: a request id, a wallet, a token's name.
    pub subject: &'a str,
    /// The details, as JSON (what the log's record commits to, with the actor and time).
    pub detail: serde_json::Value,
}

/// An administrative action as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAction {
    /// Its position in the table (newest highest).
    pub id: u64,
    /// When (Unix seconds).
    pub at: u64,
    /// Who.
    pub actor: Actor,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// The details (JSON).
    pub detail: String,
    /// The leaf hash of its record in the log, once logged.
    pub leaf_hash: Option<B256>,
    /// The salt of its record's input commitment (hex), once logged.
    pub input_salt: Option<String>,
}

impl AdminAction {
    /// The exact bytes the log's record commits to as its input: the action with who did it
    /// and when, as one JSON object (the order of its keys is fixed by the `json!` below).
    pub fn content(&self) -> String {
        serde_json::json!({
            "id": self.id,
            "at": self.at,
            "actor": self.actor.name,
            "actor_role": self.actor.role,
            "action": self.action,
            "subject": self.subject,
            "detail": serde_json::from_str::<serde_json::Value>(&self.detail)
                .unwrap_or(serde_json::Value::Null),
        })
        .to_string()
    }
}

/// One approver's vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CastVote {
    /// The approver's token name.
    pub approver: String,
    /// Approve (true) or deny.
    pub approve: bool,
    /// Their comment.
    pub comment: Option<String>,
    /// When (Unix seconds).
    pub voted_at: u64,
    /// The admin who issued the token the vote was cast with, noted when it was cast; none for
    /// a token of the service's configuration. An admin can mint approvers for made-up people
    /// before a request waits (red team rt29 F8): whoever reads the votes sees who stands
    /// behind each.
    pub issued_by: Option<String>,
}

/// A request's votes and where they leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteCount {
    /// How many distinct approvers the policy asked for.
    pub required: u32,
    /// Every vote, in order.
    pub votes: Vec<CastVote>,
    /// Where the request stands.
    pub tally: Tally,
    /// False when this approver had already voted (the new vote was not counted).
    pub counted: bool,
}

fn to_vote(row: &sqlx::any::AnyRow) -> Result<CastVote> {
    Ok(CastVote {
        approver: row.try_get(0)?,
        approve: row.try_get::<i64, _>(1)? == 1,
        comment: row.try_get(2)?,
        voted_at: to_u64(row.try_get(3)?, "voted at")?,
        issued_by: row.try_get(4)?,
    })
}

const VOTE_COLUMNS: &str = "approver, approve, comment, voted_at, issued_by";

impl Store {
    /// Records `by`'s vote on a pending request, in one transaction: the approval must be
    /// pending and unexpired, `by`'s token live and issued before the request started waiting
    /// (else [`Error::TokenNewerThanRequest`]); a second vote by the same name is not counted.
    /// Once the votes reach the quorum (or one denies) the approval is resolved, and only then
    /// will the request be co-signed. The vote is recorded as an administrative action.
    pub async fn cast_vote(
        &self,
        request_id: B256,
        approve: bool,
        by: &Actor,
        comment: Option<&str>,
        now: u64,
    ) -> Result<VoteCount> {
        let mut tx = self.begin_write().await?;
        let id = request_id.to_string();
        // The approval's row is locked for the vote (SQLite's BEGIN IMMEDIATE already holds
        // the database): two approvers voting at once are counted one after the other, so a
        // denial is never overwritten by an approval tallied without it, and two last votes
        // of a quorum do not each see the other missing.
        let lock = match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE OF a",
        };
        let approval = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT a.required, a.voters_through FROM approvals a \
             JOIN decisions d ON d.request_id = a.request_id \
             WHERE a.request_id = $1 AND a.status = 'pending' AND a.expires_at >= $2 \
             AND d.valid_until >= $2 AND d.outcome = 'pending_approval'{lock}"
        )))
        .bind(&id)
        .bind(db_time(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(approval) = approval else {
            return Err(Error::NoPendingApproval(id));
        };
        let required = u32::try_from(approval.try_get::<i64, _>(0)?).unwrap_or(1);
        let voters_through: i64 = approval.try_get(1)?;
        // A token issued once the request waited (by serial, not by clock: the same second
        // is not "before") does not vote on it: otherwise one admin could mint the rest of
        // the quorum. A name revoked and issued again is a new token, and waits too.
        let (serial, issued_by) = Self::live_token(&mut tx, &by.name).await?;
        if serial > voters_through {
            return Err(Error::TokenNewerThanRequest(by.name.clone()));
        }
        // Who issued the voting token is noted now: read later, a token revoked in the second
        // it voted (whole-second times) would be found by no lookup.
        let counted = sqlx::query(
            "INSERT INTO approval_votes \
             (request_id, approver, role, approve, comment, voted_at, issued_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (request_id, approver) DO NOTHING",
        )
        .bind(&id)
        .bind(&by.name)
        .bind(&by.role)
        .bind(i64::from(approve))
        .bind(comment)
        .bind(db_time(now))
        .bind(issued_by)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let votes = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VOTE_COLUMNS} FROM approval_votes WHERE request_id = $1 \
             ORDER BY voted_at, approver"
        )))
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(to_vote)
        .collect::<Result<Vec<_>>>()?;
        let result = tally(
            required,
            &votes
                .iter()
                .map(|v| Vote {
                    approver: v.approver.clone(),
                    approve: v.approve,
                })
                .collect::<Vec<_>>(),
        );
        let resolved = match &result {
            Tally::Approved { approved_by } => Some(("approved", approved_by.join(", "))),
            Tally::Denied { denied_by } => Some(("denied", denied_by.clone())),
            Tally::Pending { .. } => None,
        };
        if let Some((status, decided_by)) = &resolved {
            let updated = sqlx::query(
                "UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3, \
                 comment = $4 WHERE request_id = $5 AND status = 'pending'",
            )
            .bind(status)
            .bind(decided_by)
            .bind(db_time(now))
            .bind(comment)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // Resolved by another vote meanwhile: the first resolution stands (this vote is
            // rolled back with the transaction).
            if updated != 1 {
                return Err(Error::NoPendingApproval(id));
            }
            // A denial ends the request at once with a final decision to log (fifth red-team
            // review of issue 29); unless the expiry task ended it since the check above, and
            // then this vote is rolled back.
            if *status == "denied"
                && Self::end_waiting(
                    &mut tx,
                    self.backend(),
                    request_id,
                    chaperone_core::policy::Reason::ApprovalDenied,
                )
                .await?
                .is_none()
            {
                return Err(Error::NoPendingApproval(id));
            }
        }
        if counted {
            let detail = serde_json::json!({
                "request_id": id,
                "verdict": if approve { "approve" } else { "deny" },
                "comment": comment,
                "required": required,
                "status": resolved.as_ref().map_or("pending", |(s, _)| s),
            });
            let action = NewAdminAction {
                action: "verdict",
                subject: &id,
                detail,
            };
            Self::record_action_on(&mut tx, by, &action, now).await?;
        }
        tx.commit().await?;
        Ok(VoteCount {
            required,
            votes,
            tally: result,
            counted,
        })
    }

    /// The votes on requests, and how many approvers each needs: one query per
    /// [`IN_LIST_PART`] requests.
    pub async fn votes(
        &self,
        requests: &[B256],
    ) -> Result<std::collections::HashMap<B256, (u32, Vec<CastVote>)>> {
        let mut out = std::collections::HashMap::new();
        for part in requests.chunks(IN_LIST_PART) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT a.request_id, a.required, v.approver, v.approve, v.comment, v.voted_at, \
                 v.issued_by FROM approvals a \
                 LEFT JOIN approval_votes v ON v.request_id = a.request_id \
                 WHERE a.request_id IN ({}) ORDER BY v.voted_at, v.approver",
                placeholders(part.len())
            )));
            for request in part {
                query = query.bind(request.to_string());
            }
            for row in query.fetch_all(&self.reader).await? {
                let request: B256 = parse(&row.try_get::<String, _>(0)?, "request id")?;
                let required = u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(1);
                let entry = out.entry(request).or_insert_with(|| (required, Vec::new()));
                if let Some(approver) = row.try_get::<Option<String>, _>(2)? {
                    entry.1.push(CastVote {
                        approver,
                        approve: row.try_get::<i64, _>(3)? == 1,
                        comment: row.try_get(4)?,
                        voted_at: to_u64(row.try_get(5)?, "voted at")?,
                        issued_by: row.try_get(6)?,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Records an administrative action on its own (one that has no transaction of its own in
    /// the store).
    pub async fn record_action(
        &self,
        by: &Actor,
        action: &NewAdminAction<'_>,
        now: u64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::record_action_on(&mut tx, by, action, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an administrative action in the caller's transaction, so that the change and
    /// its record commit together.
    pub(crate) async fn record_action_on(
        conn: &mut sqlx::AnyConnection,
        by: &Actor,
        action: &NewAdminAction<'_>,
        now: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO admin_actions (at, actor, actor_role, action, subject, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(db_time(now))
        .bind(&by.name)
        .bind(&by.role)
        .bind(action.action)
        .bind(action.subject)
        .bind(action.detail.to_string())
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Administrative actions, newest first, before id `before` (a cursor) if given.
    pub async fn admin_actions(&self, before: Option<u64>, limit: u32) -> Result<Vec<AdminAction>> {
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, at, actor, actor_role, action, subject, detail, logged_leaf, \
             record_salts FROM admin_actions WHERE id < $1 ORDER BY id DESC LIMIT {limit}"
        )))
        .bind(before)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(to_action).collect()
    }

    /// Administrative actions not yet in the log, oldest first.
    pub async fn unlogged_admin_actions(&self, limit: u32) -> Result<Vec<AdminAction>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, at, actor, actor_role, action, subject, detail, logged_leaf, \
             record_salts FROM admin_actions WHERE logged_leaf IS NULL ORDER BY id LIMIT {limit}"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(to_action).collect()
    }
}

fn to_action(row: &sqlx::any::AnyRow) -> Result<AdminAction> {
    Ok(AdminAction {
        id: to_u64(row.try_get(0)?, "action id")?,
        at: to_u64(row.try_get(1)?, "action time")?,
        actor: Actor {
            name: row.try_get(2)?,
            role: row.try_get(3)?,
        },
        action: row.try_get(4)?,
        subject: row.try_get(5)?,
        detail: row.try_get(6)?,
        leaf_hash: row
            .try_get::<Option<String>, _>(7)?
            .map(|leaf| parse(&leaf, "action leaf"))
            .transpose()?,
        // The salts are stored as {"input": hex, "output": hex}; only the input's opens what
        // the action says.
        input_salt: row
            .try_get::<Option<String>, _>(8)?
            .and_then(|salts| serde_json::from_str::<serde_json::Value>(&salts).ok())
            .and_then(|salts| {
                salts
                    .get("input")
                    .and_then(|s| s.as_str())
                    .map(str::to_owned)
            }),
    })
}
