//! Co-sign decisions: decided under the wallets' locks, several in one transaction.
//!
//! A batch costs the same dozen statements whether it holds one request or sixty-four: the
//! locks, the recorded answers, the policies and the running totals are each read in one
//! statement, the requests are decided one after the other in memory (each seeing what the
//! ones before it reserved), and the decisions and reservations are written in one statement
//! each. That is what lets one replica decide thousands of requests a second (docs/benchmarks.md),
//! and a hot wallet's queued requests share one lock hand-off instead of paying one each.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError},
};

use chaperone_core::{
    B256, U256,
    policy::{Outcome, Policy, Reason, SpendHistory, Token},
};
use sqlx::Row;

use crate::{
    Error, Result, Store,
    cosign::{ApprovalState, Decided, RequestRecord, StoredDecision, authorization_key},
    store::{Backend, db_time, hex, outcome_from, outcome_text, parse},
    totals::{self, ROWS_PER_STATEMENT, WalletTotals, placeholders},
};

/// The most requests [`Store::decide_batch`] takes at once.
pub const MAX_BATCH: usize = ROWS_PER_STATEMENT;

/// A first decision, written once the batch is decided.
struct NewDecision<'r, 'a> {
    request: &'r RequestRecord<'a>,
    decision: StoredDecision,
    reasons: String,
}

impl Store {
    /// Decides a request and records the decision, all in one transaction that holds the
    /// wallet's lock: read the clock, read the history, call `evaluate` (the pure engine, plus
    /// signing) with that time, write the decision, reserve an approval's spend or open a
    /// pending approval. A request decided before (same `request_id`) returns the recorded
    /// decision and reserves nothing again.
    ///
    /// The clock is read only once the lock is held: a time read earlier would not see a
    /// reservation made by a request that locked in between, and two requests could take the
    /// same window. It must be within `max_clock_skew` of the database's clock (asked at most
    /// once a second), so replicas with drifting clocks cannot shift each other's windows.
    pub async fn decide(
        &self,
        request: &RequestRecord<'_>,
        clock: impl FnOnce() -> u64,
        evaluate: impl FnOnce(&Policy, &SpendHistory, bool, u64) -> Decided,
    ) -> Result<StoredDecision> {
        let mut evaluate = Some(evaluate);
        let answers = self
            .decide_batch(std::slice::from_ref(request), clock, |_, p, h, a, now| {
                let evaluate = evaluate.take().expect("one request is evaluated once");
                evaluate(p, h, a, now)
            })
            .await?;
        answers.into_iter().next().expect("one answer per request")
    }

    /// Decides up to [`MAX_BATCH`] requests as [`Store::decide`] does one, in one transaction
    /// that holds every named wallet's lock (taken in address order, so batches never
    /// deadlock) and reads the clock once. `evaluate` is called with the request's index, in
    /// order; requests of one wallet see the reservations of those before them, and a request
    /// that appears twice is decided once. The answers are in the requests' order; one that
    /// names an unknown wallet, or one without a policy, is an error of its own, while a
    /// database error or a clock out of bounds fails the whole batch (nothing is written).
    pub async fn decide_batch(
        &self,
        requests: &[RequestRecord<'_>],
        clock: impl FnOnce() -> u64,
        mut evaluate: impl FnMut(usize, &Policy, &SpendHistory, bool, u64) -> Decided,
    ) -> Result<Vec<Result<StoredDecision>>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        if requests.len() > MAX_BATCH {
            return Err(Error::OutOfRange(format!(
                "a batch of {} requests (at most {MAX_BATCH})",
                requests.len()
            )));
        }
        let mut wallets: Vec<String> = requests.iter().map(|r| hex(r.wallet)).collect();
        wallets.sort();
        wallets.dedup();
        // On SQLite the write lock taken at once keeps two deciders from reading the same
        // history; PostgreSQL locks the wallets' rows instead (other wallets proceed).
        let mut tx = self.begin_write().await?;
        let versions = self.lock_wallets(&mut tx, &wallets).await?;
        let now = clock();
        self.check_clock_skew(&mut tx, now).await?;

        let ids: Vec<String> = requests.iter().map(|r| r.request_id.to_string()).collect();
        let recorded = Self::recorded(&mut tx, &ids).await?;
        let policies = self.policies_at(&mut tx, &versions).await?;
        let with_policy: Vec<(&str, &Policy)> =
            policies.iter().map(|(w, p)| (w.as_str(), &**p)).collect();
        let mut totals: HashMap<String, WalletTotals> =
            WalletTotals::current_many(&mut tx, &with_policy, now)
                .await?
                .into_iter()
                .zip(with_policy.iter().map(|(w, _)| w.to_string()))
                .map(|(t, w)| (w, t))
                .collect();
        let mut recent = HashMap::new();
        for (wallet, policy) in &policies {
            recent.insert(
                wallet.clone(),
                Self::recent_requests(&mut tx, wallet, policy, now).await?,
            );
        }

        let mut answers = Vec::with_capacity(requests.len());
        let mut decided: HashMap<B256, StoredDecision> = HashMap::new();
        let mut new_decisions = Vec::new();
        let mut reservations: Vec<(&RequestRecord<'_>, Token, U256)> = Vec::new();
        let mut approvals: Vec<(B256, u64, u32)> = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            let wallet = hex(request.wallet);
            if !versions.contains_key(&wallet) {
                answers.push(Err(Error::UnknownWallet(wallet)));
                continue;
            }
            if let Some(earlier) = decided.get(&request.request_id) {
                answers.push(Ok(StoredDecision {
                    replayed: true,
                    ..earlier.clone()
                }));
                continue;
            }
            let mut human_approved = false;
            if let Some(existing) = recorded.get(&request.request_id) {
                // A pending request that a human approved (and whose approval has not expired)
                // is decided again, now with the approval; one whose approval ended (denied,
                // or expired) is ended now if no other path ended it yet, and the agent is
                // told it is denied, not to keep waiting; anything else is answered as
                // recorded.
                let approval = match existing.outcome {
                    Outcome::PendingApproval => {
                        Self::approval_status(&mut tx, request.request_id, now).await?
                    }
                    _ => None,
                };
                let ending = match approval {
                    Some(ApprovalState::Approved) => None,
                    Some(ApprovalState::Denied) => Some(Reason::ApprovalDenied),
                    Some(ApprovalState::Expired { at }) => {
                        Some(Reason::ApprovalExpired { expired_at: at })
                    }
                    Some(ApprovalState::Pending) | None => {
                        answers.push(Ok(existing.clone()));
                        continue;
                    }
                };
                if let Some(reason) = ending {
                    let ended = match Self::end_waiting(
                        &mut tx,
                        self.backend(),
                        request.request_id,
                        reason,
                    )
                    .await?
                    {
                        Some(ended) => ended,
                        None => Self::current(&mut tx, request.request_id).await?,
                    };
                    decided.insert(request.request_id, ended.clone());
                    answers.push(Ok(ended));
                    continue;
                }
                human_approved = true;
            }
            let (Some(policy), Some(wallet_totals), Some(requests_in_window)) = (
                policies.get(&wallet),
                totals.get_mut(&wallet),
                recent.get_mut(&wallet),
            ) else {
                answers.push(Err(Error::NoPolicy(wallet)));
                continue;
            };
            let history = SpendHistory {
                spends: Vec::new(),
                totals: wallet_totals.for_engine()?,
                requests: requests_in_window.clone(),
            };
            let Decided {
                decision,
                signature,
            } = evaluate(i, policy, &history, human_approved, now);
            let reasons = serde_json::to_string(&decision.reasons)
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            let stored = StoredDecision {
                request_id: request.request_id,
                outcome: decision.outcome,
                reasons: decision.reasons,
                policy_version: decision.policy_version,
                policy_hash: decision.policy_hash,
                signature,
                replayed: false,
            };
            if human_approved {
                // A re-decision after a human approval replaces the pending verdict in place
                // (the approval row refers to it), unless another path ended the request
                // since it was read (PostgreSQL: the expiry task between the read and now):
                // then that ending is the answer, and nothing is reserved.
                if !Self::redecide(&mut tx, &stored, &reasons).await? {
                    let ended = Self::current(&mut tx, request.request_id).await?;
                    decided.insert(request.request_id, ended.clone());
                    answers.push(Ok(ended));
                    continue;
                }
            } else {
                if policy.rate_limit.is_some() {
                    requests_in_window.push(now);
                }
                new_decisions.push(NewDecision {
                    request,
                    decision: stored.clone(),
                    reasons,
                });
            }
            match decision.outcome {
                Outcome::Approved => {
                    for (token, amount) in &decision.spends {
                        wallet_totals.reserve(*token, request.valid_until, *amount)?;
                        reservations.push((request, *token, *amount));
                    }
                }
                Outcome::PendingApproval if !human_approved => {
                    let ttl = policy.approval.as_ref().map_or(0, |a| a.expires_after.0);
                    // A quorum is fixed when the request starts waiting: a later policy cannot
                    // lower the number of approvers a waiting request needs.
                    let required = policy
                        .approval
                        .as_ref()
                        .map_or(1, |a| a.approvers_required(&decision.spends));
                    approvals.push((request.request_id, now.saturating_add(ttl), required));
                }
                Outcome::PendingApproval | Outcome::Denied => {}
            }
            decided.insert(request.request_id, stored.clone());
            answers.push(Ok(stored));
        }

        Self::insert_decisions(&mut tx, &new_decisions, now).await?;
        Self::insert_reservations(&mut tx, &reservations, now).await?;
        for (request_id, expires_at, required) in approvals {
            sqlx::query(
                // The tokens issued so far may vote on it; one issued later may not.
                "INSERT INTO approvals (request_id, status, expires_at, required, voters_through) \
                 VALUES ($1, 'pending', $2, $3, (SELECT COALESCE(MAX(serial), 0) FROM api_tokens))",
            )
            .bind(request_id.to_string())
            .bind(db_time(expires_at))
            .bind(i64::from(required))
            .execute(&mut *tx)
            .await?;
        }
        let totals: Vec<WalletTotals> = totals.into_values().collect();
        totals::write_all(&mut tx, &totals).await?;
        tx.commit().await?;
        Ok(answers)
    }

    /// Locks the wallets (sorted addresses) that are registered, in address order, and
    /// returns them with their current policy's version (`None`: no policy yet).
    async fn lock_wallets(
        &self,
        conn: &mut sqlx::AnyConnection,
        wallets: &[String],
    ) -> Result<HashMap<String, Option<i64>>> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE OF w",
        };
        let sql = format!(
            "SELECT w.address, \
             (SELECT MAX(p.version) FROM policies p WHERE p.wallet = w.address) \
             FROM wallets w WHERE w.address IN ({}) ORDER BY w.address{lock}",
            placeholders(1, wallets.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for wallet in wallets {
            query = query.bind(wallet.as_str());
        }
        query
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Fails when `now` is more than `max_clock_skew` from the database's clock (asked at most
    /// once per second of `now`).
    async fn check_clock_skew(&self, conn: &mut sqlx::AnyConnection, now: u64) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(max) = self.max_clock_skew else {
            return Ok(());
        };
        if self.skew_checked_at.load(Relaxed) == now {
            return Ok(());
        }
        let database = self.database_time(conn).await?;
        if now.abs_diff(database) > max {
            return Err(Error::ClockSkew {
                local: now,
                database,
            });
        }
        self.skew_checked_at.store(now, Relaxed);
        Ok(())
    }

    /// The database server's clock, Unix seconds.
    async fn database_time(&self, conn: &mut sqlx::AnyConnection) -> Result<u64> {
        let query = match self.backend {
            Backend::Sqlite => "SELECT CAST(strftime('%s', 'now') AS BIGINT)",
            Backend::Postgres => "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT)",
        };
        let seconds: i64 = sqlx::query(query).fetch_one(&mut *conn).await?.try_get(0)?;
        u64::try_from(seconds).map_err(|_| Error::Corrupt(format!("database time {seconds}")))
    }

    /// The recorded decisions among `request_ids`, by id.
    async fn recorded(
        conn: &mut sqlx::AnyConnection,
        request_ids: &[String],
    ) -> Result<HashMap<B256, StoredDecision>> {
        let sql = format!(
            "SELECT request_id, outcome, reasons, policy_version, policy_hash, signature \
             FROM decisions WHERE request_id IN ({})",
            placeholders(1, request_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in request_ids {
            query = query.bind(id.as_str());
        }
        let rows = query.fetch_all(&mut *conn).await?;
        rows.into_iter()
            .map(|row| {
                let request_id: B256 = parse(&row.try_get::<String, _>(0)?, "request id")?;
                let outcome: String = row.try_get(1)?;
                let reasons: String = row.try_get(2)?;
                let version: i64 = row.try_get(3)?;
                let hash: String = row.try_get(4)?;
                let decision = StoredDecision {
                    request_id,
                    outcome: outcome_from(&outcome)?,
                    reasons: serde_json::from_str(&reasons)
                        .map_err(|e| Error::Corrupt(e.to_string()))?,
                    policy_version: u32::try_from(version)
                        .map_err(|_| Error::Corrupt("version".into()))?,
                    policy_hash: parse(&hash, "policy hash")?,
                    signature: row.try_get(5)?,
                    replayed: true,
                };
                Ok((request_id, decision))
            })
            .collect()
    }

    /// The policy of each wallet at the version given (a wallet without one has none),
    /// parsed once per (wallet, version) and then taken from the cache.
    async fn policies_at(
        &self,
        conn: &mut sqlx::AnyConnection,
        versions: &HashMap<String, Option<i64>>,
    ) -> Result<HashMap<String, Arc<Policy>>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.policies.lock().unwrap_or_else(PoisonError::into_inner);
            for (wallet, version) in versions {
                let Some(version) = *version else { continue };
                match cache.get(wallet) {
                    Some((cached, policy)) if *cached == version => {
                        found.insert(wallet.clone(), policy.clone());
                    }
                    _ => missing.push((wallet.as_str(), version)),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let sql = (0..missing.len())
            .map(|i| {
                format!(
                    "SELECT wallet, version, document FROM policies \
                     WHERE wallet = ${} AND version = ${}",
                    2 * i + 1,
                    2 * i + 2
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (wallet, version) in &missing {
            query = query.bind(*wallet).bind(*version);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        let mut cache = self.policies.lock().unwrap_or_else(PoisonError::into_inner);
        for row in rows {
            let wallet: String = row.try_get(0)?;
            let version: i64 = row.try_get(1)?;
            let document: String = row.try_get(2)?;
            let policy =
                Arc::new(Policy::from_json(&document).map_err(|e| Error::Corrupt(e.to_string()))?);
            cache.insert(wallet.clone(), (version, policy.clone()));
            found.insert(wallet, policy);
        }
        Ok(found)
    }

    /// The times of the wallet's requests within its rate-limit window: at most as many as
    /// the limit allows, which is all the engine needs to know it is reached.
    async fn recent_requests(
        conn: &mut sqlx::AnyConnection,
        wallet: &str,
        policy: &Policy,
        now: u64,
    ) -> Result<Vec<u64>> {
        let Some(rate) = &policy.rate_limit else {
            return Ok(Vec::new());
        };
        sqlx::query(
            "SELECT created_at FROM decisions WHERE wallet = $1 AND created_at > $2 \
             AND created_at <= $3 LIMIT $4",
        )
        .bind(wallet)
        .bind(db_time(now.saturating_sub(rate.window.0)))
        .bind(db_time(now))
        .bind(i64::from(rate.max_requests))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| Ok(row.try_get::<i64, _>(0)? as u64))
        .collect()
    }

    /// The decision of request `id` as recorded now (in the caller's transaction).
    async fn current(conn: &mut sqlx::AnyConnection, id: B256) -> Result<StoredDecision> {
        Self::recorded(conn, &[id.to_string()])
            .await?
            .remove(&id)
            .ok_or_else(|| Error::Corrupt(format!("decision {id} vanished")))
    }

    /// Writes first decisions, many rows per statement.
    async fn insert_decisions(
        conn: &mut sqlx::AnyConnection,
        decisions: &[NewDecision<'_, '_>],
        now: u64,
    ) -> Result<()> {
        const COLUMNS: usize = 16;
        for chunk in decisions.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO decisions (request_id, wallet, created_at, valid_until, request, \
                 outcome, reasons, policy_version, policy_hash, signature, nonce, \
                 authorization_key, pays_token, pays_to, pays_value, valid_from) VALUES {}",
                rows_of(chunk.len(), COLUMNS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for NewDecision {
                request,
                decision,
                reasons,
            } in chunk
            {
                query = query
                    .bind(request.request_id.to_string())
                    .bind(hex(request.wallet))
                    .bind(db_time(now))
                    .bind(db_time(request.valid_until))
                    .bind(request.json)
                    .bind(outcome_text(decision.outcome))
                    .bind(reasons.as_str())
                    .bind(i64::from(decision.policy_version))
                    .bind(decision.policy_hash.to_string())
                    .bind(decision.signature.clone())
                    .bind(request.nonce.map(|n| n.to_string()))
                    .bind(
                        request
                            .authorization
                            .map(|(token, nonce)| authorization_key(token, nonce)),
                    )
                    .bind(request.pays.map(|p| hex(p.token)))
                    .bind(request.pays.map(|p| hex(p.to)))
                    .bind(request.pays.map(|p| p.value.to_string()))
                    .bind(request.pays.map(|p| db_time(p.valid_from)));
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Reserves approvals' spends, many rows per statement.
    async fn insert_reservations(
        conn: &mut sqlx::AnyConnection,
        reservations: &[(&RequestRecord<'_>, Token, U256)],
        now: u64,
    ) -> Result<()> {
        const COLUMNS: usize = 6;
        for chunk in reservations.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO spend_reservations \
                 (request_id, wallet, token, amount, created_at, expires_at, status) VALUES {}",
                rows_of_with(chunk.len(), COLUMNS, ", 'reserved'")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (request, token, amount) in chunk {
                query = query
                    .bind(request.request_id.to_string())
                    .bind(hex(request.wallet))
                    .bind(token.to_string())
                    .bind(amount.to_string())
                    .bind(db_time(now))
                    .bind(db_time(request.valid_until));
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// `($1, …, $columns), ($columns+1, …), …` for `rows` rows.
fn rows_of(rows: usize, columns: usize) -> String {
    rows_of_with(rows, columns, "")
}

/// As [`rows_of`], each row ending with the literal `tail`.
fn rows_of_with(rows: usize, columns: usize, tail: &str) -> String {
    (0..rows)
        .map(|i| format!("({}{tail})", placeholders(i * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}
