//! Reconciliation: every on-chain outflow of a registered wallet is matched with the co-sign
//! decision of exactly what moved, never by a nonce alone (a nonce carries no amount or
//! recipient, and attacker B, holding both keys, can spend an approved nonce on anything):
//!
//! - `Executed(nonce, digest)` needs the approved decision whose request id is `digest`, the
//!   EIP-712 digest of the calls that ran (whatever contract relayed them);
//! - a token's `AuthorizationUsed(wallet, nonce)` (EIP-3009 through EIP-1271) needs an approved
//!   decision naming that token and nonce whose transfer is the token's `Transfer` right after
//!   the event (the token emits the two together), to the approved recipient, of the approved
//!   amount, in a block within the approval's validity;
//! - a Permit2 nonce of the wallet's that Permit2 shows used (it emits no event) needs an
//!   approved Permit2 decision with that nonce whose transfer was seen: a `Transfer` of the
//!   token from the wallet that the x402 Permit2 proxy made (its `Settled` is the very next log
//!   of the transaction: the proxy emits it as Permit2's `transferFrom` returns, and the
//!   wallet signs Permit2 transfers for no other spender), outside the wallet's own executions
//!   and authorizations, to the approved recipient, of the approved amount, within the
//!   validity, not already paired with another, and of the approved nonce when the indexer
//!   read it from the proxy call. A transfer through an allowance (an approved `approve`, a
//!   merchant's subscription) is no Permit2 payment and never pairs (red team rt29 F5).
//!
//! What has none was signed without the service: the co-signer key is out (attacker B), and
//! the owner must freeze the wallet. The matched decision's reservation is settled with the
//! transaction; an approved request whose nonce was spent on something else is not (it never
//! happened): an execute's or an EIP-3009 authorization's is released once it expires, and a
//! Permit2 payment whose used nonce paired with no transfer is shown `misused` in the ledger
//! (its spend keeps counting: the nonce is gone; red team rt29 F3). What is stored, and acknowledged, is in
//! `unauthorized.rs`.

use std::collections::HashSet;

use chaperone_core::{Address, B256, PERMIT2, U256, X402_PERMIT2_PROXY};
use sqlx::Row;

use crate::{
    ChainEvent, Error, Result, Settlement, Store, UnauthorizedSpend,
    cosign::authorization_key,
    store::{db_time, hex, parse},
    unauthorized::{NewSpend, Unauthorized},
};

/// An indexed event that moves the wallet's funds, decoded from its stored fields.
enum Outflow {
    /// The wallet's `Executed(nonce, digest)`.
    Executed {
        wallet: Address,
        nonce: String,
        digest: Option<B256>,
    },
    /// A token's `AuthorizationUsed(wallet, nonce)`.
    AuthorizationUsed {
        token: Address,
        wallet: Address,
        nonce: B256,
    },
    /// A token's `Transfer(from, to, value)`.
    Transfer {
        token: Address,
        from: Address,
        to: Address,
        value: U256,
    },
    /// The x402 Permit2 proxy's `Settled()`: the transfer right before it is a Permit2
    /// payment. The nonce is the proxy call's, when the indexer could read it.
    ProxySettled { nonce: Option<B256> },
}

fn outflow(e: &ChainEvent) -> Option<Outflow> {
    let field = |name: &str| e.fields.get(name).and_then(|v| v.as_str());
    match e.event.as_str() {
        "Executed" => Some(Outflow::Executed {
            wallet: e.contract,
            nonce: field("nonce")?.to_owned(),
            digest: field("digest").and_then(|d| d.parse().ok()),
        }),
        "AuthorizationUsed" => Some(Outflow::AuthorizationUsed {
            token: e.contract,
            wallet: field("authorizer")?.parse().ok()?,
            nonce: field("nonce")?.parse().ok()?,
        }),
        "Settled" if e.contract == X402_PERMIT2_PROXY => Some(Outflow::ProxySettled {
            nonce: field("nonce").and_then(|n| n.parse().ok()),
        }),
        "Transfer" => Some(Outflow::Transfer {
            token: e.contract,
            from: field("from")?.parse().ok()?,
            to: field("to")?.parse().ok()?,
            value: field("value")?.parse().ok()?,
        }),
        _ => None,
    }
}

/// An approved x402 authorization as recorded: its request id, the transfer it may make
/// (none for a decision made before migration 0016) and its validity.
struct Approved {
    request_id: String,
    pays: Option<(Address, Address, U256)>,
    valid_from: u64,
    valid_until: u64,
}

impl Approved {
    /// Whether it was valid at `time` (a block's time; unknown: not judged).
    fn within(&self, time: Option<u64>) -> bool {
        time.is_none_or(|t| self.valid_from <= t && t <= self.valid_until)
    }
}

/// The approved decisions of `wallet` whose `authorization_key` is `key`.
async fn approved_by_key(
    conn: &mut sqlx::AnyConnection,
    wallet: Address,
    key: &str,
) -> Result<Vec<Approved>> {
    let rows = sqlx::query(
        "SELECT request_id, pays_token, pays_to, pays_value, valid_from, valid_until \
         FROM decisions WHERE wallet = $1 AND authorization_key = $2 AND outcome = 'approved' \
         ORDER BY created_at, request_id",
    )
    .bind(hex(wallet))
    .bind(key.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let text = |i: usize| row.try_get::<Option<String>, _>(i);
            let pays = match (text(1)?, text(2)?, text(3)?) {
                (Some(token), Some(to), Some(value)) => Some((
                    parse(&token, "pays_token")?,
                    parse(&to, "pays_to")?,
                    parse(&value, "pays_value")?,
                )),
                _ => None,
            };
            let from: Option<i64> = row.try_get(4)?;
            let until: i64 = row.try_get(5)?;
            Ok(Approved {
                request_id: row.try_get(0)?,
                pays,
                valid_from: from.map_or(0, |t| u64::try_from(t).unwrap_or_default()),
                valid_until: u64::try_from(until).unwrap_or_default(),
            })
        })
        .collect()
}

/// Which of `approved` accounts for a use at `time` that moved `moved` (token, recipient,
/// amount): the request id, or why none does. A decision made before migration 0016 records no
/// transfer and is matched by its nonce, as it was then.
fn account_for(
    approved: &[Approved],
    moved: Option<(Address, Address, U256)>,
    time: Option<u64>,
) -> Result<String, Unauthorized> {
    if let Some(legacy) = approved.iter().find(|a| a.pays.is_none()) {
        return Ok(legacy.request_id.clone());
    }
    let same: Vec<&Approved> = approved.iter().filter(|a| a.pays == moved).collect();
    if let Some(a) = same.iter().find(|a| a.within(time)) {
        return Ok(a.request_id.clone());
    }
    Err(if !same.is_empty() {
        Unauthorized::OutsideValidity
    } else if !approved.is_empty() {
        Unauthorized::OtherPayment
    } else {
        Unauthorized::NoDecision
    })
}

impl Store {
    /// Matches the outflows among `events` (one indexed range, in chain order) with the
    /// decisions, in the indexer's transaction: settles what each matched decision reserved
    /// and stores what none accounts for. Returns the unauthorized spends stored now and not
    /// already acknowledged (a re-run of the same blocks, or a reorganisation's new branch
    /// mining an acknowledged one again, raises nothing).
    pub(crate) async fn reconcile_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        events: &[ChainEvent],
        now: u64,
    ) -> Result<Vec<UnauthorizedSpend>> {
        let budgets = Self::authorization_budgets_on(conn).await?;
        let mut found = Vec::new();
        for tx in events.chunk_by(|a, b| (a.block_number, a.tx_hash) == (b.block_number, b.tx_hash))
        {
            self.reconcile_transaction(conn, tx, &budgets, now, &mut found)
                .await?;
        }
        Ok(found)
    }

    /// Reconciles the outflows of one transaction (its indexed events, in log order).
    async fn reconcile_transaction(
        &self,
        conn: &mut sqlx::AnyConnection,
        events: &[ChainEvent],
        budgets: &HashSet<(Address, Address)>,
        now: u64,
        found: &mut Vec<UnauthorizedSpend>,
    ) -> Result<()> {
        let decoded: Vec<(&ChainEvent, Outflow)> = events
            .iter()
            .filter_map(|e| Some((e, outflow(e)?)))
            .collect();
        // Wallets that ran an `execute` here: a transfer of theirs in this transaction is one of
        // the calls the Executed digest accounts for.
        let executing: HashSet<Address> = decoded
            .iter()
            .filter_map(|(_, o)| match o {
                Outflow::Executed { wallet, .. } => Some(*wallet),
                _ => None,
            })
            .collect();
        // The transfer of each EIP-3009 authorization: the token's Transfer from the wallet in
        // the log right after its AuthorizationUsed (EIP-3009's reference implementation and
        // FiatToken emit the two in that order, in one call, with nothing between). Never the
        // one before: that may be another authorization's, used just before (attacker B using
        // two approved nonces of the same payment, the second to pay itself).
        let transfer_at = |index: u64, token: Address, wallet: Address| {
            decoded.iter().find_map(|(e, o)| match o {
                Outflow::Transfer {
                    token: t,
                    from,
                    to,
                    value,
                } if *t == token && *from == wallet && e.log_index == index + 1 => {
                    Some((e.log_index, (token, *to, *value)))
                }
                _ => None,
            })
        };
        let mut paid_by_authorization = HashSet::new();
        for (e, o) in &decoded {
            let time = e.block_time;
            let seen = Settlement {
                tx: Some(e.tx_hash),
                block: e.block_number,
                time: e.block_time,
            };
            let (wallet, kind, nonce, verdict) = match o {
                Outflow::Executed {
                    wallet,
                    nonce,
                    digest,
                } => {
                    let verdict =
                        Self::account_for_execute(conn, *wallet, nonce, *digest, time).await?;
                    (*wallet, "execute", nonce.clone(), verdict)
                }
                Outflow::AuthorizationUsed {
                    token,
                    wallet,
                    nonce,
                } => {
                    let moved = transfer_at(e.log_index, *token, *wallet);
                    paid_by_authorization.extend(moved.map(|(index, _)| index));
                    let approved =
                        approved_by_key(conn, *wallet, &authorization_key(*token, *nonce)).await?;
                    let verdict = account_for(&approved, moved.map(|(_, m)| m), time);
                    // Anyone can deploy a contract that emits `AuthorizationUsed(wallet, n)`:
                    // only a token the wallet's owner gave an authorization budget can move the
                    // wallet's funds through EIP-1271 (the wallet refuses every other), so only
                    // its events are outflows; an outsider cannot flood the owner's alerts.
                    if verdict.is_err() && !budgets.contains(&(*wallet, *token)) {
                        continue;
                    }
                    (*wallet, "eip3009", nonce.to_string(), verdict)
                }
                Outflow::Transfer { .. } | Outflow::ProxySettled { .. } => continue,
            };
            match verdict {
                Ok(request_id) => {
                    self.settle_where(conn, "request_id", wallet, &request_id, Some(seen))
                        .await?;
                }
                Err(reason) => {
                    let new = NewSpend {
                        wallet,
                        kind,
                        reason,
                        block_number: e.block_number,
                        log_index: e.log_index,
                        tx_hash: Some(e.tx_hash),
                        contract: e.contract,
                        nonce: &nonce,
                    };
                    found.extend(Self::store_spend(conn, &new, now).await?);
                }
            }
        }
        // What is left of the wallets' transfers of budgeted tokens, outside their own
        // executions and authorizations, is pulled through an allowance: Permit2's (an x402
        // Permit2 payment, the proxy's `Settled` right after it) or one an approved `approve`
        // gave (never paired: attacker B could hide a reused Permit2 nonce behind a merchant's
        // pull of the approved amount).
        let proxy_settled_at = |index: u64| {
            decoded.iter().find_map(|(e, o)| match o {
                Outflow::ProxySettled { nonce } if e.log_index == index + 1 => Some(*nonce),
                _ => None,
            })
        };
        for (e, o) in &decoded {
            if let Outflow::Transfer {
                token,
                from,
                to,
                value,
            } = o
                && budgets.contains(&(*from, *token))
                && !executing.contains(from)
                && !paid_by_authorization.contains(&e.log_index)
                && let Some(nonce) = proxy_settled_at(e.log_index)
            {
                self.pair_permit2(conn, e, *from, (*token, *to, *value), nonce)
                    .await?;
            }
        }
        Ok(())
    }

    /// The approved decision an `Executed(nonce, digest)` of `wallet` at `time` executed, or
    /// why there is none.
    async fn account_for_execute(
        conn: &mut sqlx::AnyConnection,
        wallet: Address,
        nonce: &str,
        digest: Option<B256>,
        time: Option<u64>,
    ) -> Result<Result<String, Unauthorized>> {
        if let Some(digest) = digest {
            let row = sqlx::query(
                "SELECT valid_until FROM decisions WHERE wallet = $1 AND request_id = $2 \
                 AND outcome = 'approved'",
            )
            .bind(hex(wallet))
            .bind(digest.to_string())
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = row {
                let until: i64 = row.try_get(0)?;
                // The wallet refuses an expired execute; this holds the decision to it too.
                let until = u64::try_from(until).unwrap_or_default();
                return Ok(if time.is_none_or(|t| t <= until) {
                    Ok(digest.to_string())
                } else {
                    Err(Unauthorized::OutsideValidity)
                });
            }
        }
        let same_nonce = sqlx::query(
            "SELECT 1 FROM decisions WHERE wallet = $1 AND nonce = $2 AND outcome = 'approved' \
             LIMIT 1",
        )
        .bind(hex(wallet))
        .bind(nonce.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        Ok(Err(if same_nonce.is_some() {
            Unauthorized::OtherPayment
        } else {
            Unauthorized::NoDecision
        }))
    }

    /// Pairs a transfer the x402 Permit2 proxy pulled from `wallet` (event `e`, `moved` =
    /// token, recipient, amount) with an approved Permit2 payment of exactly it (of `nonce`,
    /// when the proxy call's is known), valid at its block and not paired yet, and settles that
    /// payment with the transaction. A transfer no Permit2 payment accounts for raises nothing
    /// here: the Permit2 nonce spent on it is found unpaired by [`Store::reconcile_permit2`].
    async fn pair_permit2(
        &self,
        conn: &mut sqlx::AnyConnection,
        e: &ChainEvent,
        wallet: Address,
        moved: (Address, Address, U256),
        nonce: Option<B256>,
    ) -> Result<()> {
        let (block, index) = (db_time(e.block_number), db_time(e.log_index));
        let paired = sqlx::query(
            "SELECT 1 FROM permit2_transfers WHERE block_number = $1 AND log_index = $2",
        )
        .bind(block)
        .bind(index)
        .fetch_optional(&mut *conn)
        .await?;
        if paired.is_some() {
            return Ok(());
        }
        let (token, to, value) = moved;
        // The validity is judged at the block's time (unknown: not judged).
        let (after, before) = e
            .block_time
            .map_or((i64::MAX, 0), |t| (db_time(t), db_time(t)));
        let request = sqlx::query(
            "SELECT d.request_id FROM decisions d WHERE d.wallet = $1 AND d.outcome = 'approved' \
             AND d.authorization_key LIKE $2 AND d.pays_token = $3 AND d.pays_to = $4 \
             AND d.pays_value = $5 AND d.valid_from <= $6 AND d.valid_until >= $7 \
             AND NOT EXISTS (SELECT 1 FROM permit2_transfers p WHERE p.request_id = d.request_id) \
             ORDER BY d.created_at, d.request_id LIMIT 1",
        )
        .bind(hex(wallet))
        // `LIKE` of a whole key (no wildcard) is equality.
        .bind(nonce.map_or_else(
            || format!("{}:%", hex(PERMIT2)),
            |n| authorization_key(PERMIT2, n),
        ))
        .bind(hex(token))
        .bind(hex(to))
        .bind(value.to_string())
        .bind(after)
        .bind(before)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = request else {
            return Ok(());
        };
        let request_id: String = row.try_get(0)?;
        sqlx::query(
            "INSERT INTO permit2_transfers (request_id, block_number, log_index, tx_hash) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(request_id.clone())
        .bind(block)
        .bind(index)
        .bind(e.tx_hash.to_string())
        .execute(&mut *conn)
        .await?;
        // Usually already settled from Permit2's bitmap (at the block the indexer read it):
        // the ledger now names the transaction that paid.
        let seen = Settlement {
            tx: Some(e.tx_hash),
            block: e.block_number,
            time: e.block_time,
        };
        self.settle_where(conn, "request_id", wallet, &request_id, Some(seen))
            .await?;
        sqlx::query(
            "UPDATE spend_reservations SET settled_tx = $1, settled_block = $2, settled_at = $3 \
             WHERE request_id = $4 AND status = 'settled'",
        )
        .bind(e.tx_hash.to_string())
        .bind(block)
        .bind(e.block_time.map(db_time))
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Stores the Permit2 nonces of `wallet` that Permit2 showed used at block `block` and no
    /// approved decision accounts for: none approved the nonce, or the approved payment's
    /// transfer was never seen (the nonce paid something else); returns those stored now.
    pub async fn reconcile_permit2(
        &self,
        wallet: Address,
        used: &[B256],
        block: u64,
        now: u64,
    ) -> Result<Vec<UnauthorizedSpend>> {
        let mut tx = self.begin_write().await?;
        let mut found = Vec::new();
        for nonce in used {
            let approved =
                approved_by_key(&mut tx, wallet, &authorization_key(PERMIT2, *nonce)).await?;
            let mut reason = Some(Unauthorized::NoDecision);
            for a in &approved {
                let paired = sqlx::query("SELECT 1 FROM permit2_transfers WHERE request_id = $1")
                    .bind(a.request_id.clone())
                    .fetch_optional(&mut *tx)
                    .await?;
                // A decision made before migration 0016 records no transfer to pair: matched
                // by its nonce, as it was then.
                if a.pays.is_none() || paired.is_some() {
                    reason = None;
                    break;
                }
                reason = Some(Unauthorized::OtherPayment);
            }
            let Some(reason) = reason else {
                continue;
            };
            let nonce = nonce.to_string();
            let new = NewSpend {
                wallet,
                kind: "permit2",
                reason,
                block_number: block,
                log_index: 0,
                tx_hash: None,
                contract: PERMIT2,
                nonce: &nonce,
            };
            found.extend(Self::store_spend(&mut tx, &new, now).await?);
        }
        tx.commit().await?;
        Ok(found)
    }

    /// Every (wallet, token) the indexed `AuthorizationBudgetSet` events ever gave a budget:
    /// the tokens whose authorizations and transfers are the wallet's outflows.
    async fn authorization_budgets_on(
        conn: &mut sqlx::AnyConnection,
    ) -> Result<HashSet<(Address, Address)>> {
        Ok(Self::budget_events(conn)
            .await?
            .into_iter()
            .map(|(wallet, token, _)| (wallet, token))
            .collect())
    }

    /// The indexed `AuthorizationBudgetSet` events in chain order, as (wallet, token, Permit2
    /// slots).
    async fn budget_events(
        conn: &mut sqlx::AnyConnection,
    ) -> Result<Vec<(Address, Address, Option<u16>)>> {
        let rows = sqlx::query(
            "SELECT contract, fields FROM chain_events WHERE event = 'AuthorizationBudgetSet' \
             ORDER BY block_number, log_index",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut budgets = Vec::new();
        for row in rows {
            let wallet: Address = parse(&row.try_get::<String, _>(0)?, "wallet")?;
            let fields: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>(1)?)
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            let Some(token) = fields["token"].as_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let slots = fields["permit2_slots"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok());
            budgets.push((wallet, token, slots));
        }
        Ok(budgets)
    }

    /// The tokens any registered wallet ever gave an authorization budget: whose `Transfer`s
    /// from the wallets the indexer reads.
    pub async fn budgeted_tokens(&self) -> Result<Vec<Address>> {
        let mut conn = self.reader.acquire().await?;
        let mut tokens: Vec<Address> = Self::budget_events(&mut conn)
            .await?
            .into_iter()
            .map(|(_, token, _)| token)
            .collect();
        tokens.sort_unstable();
        tokens.dedup();
        Ok(tokens)
    }

    /// The Permit2 slots the indexer checks, as (wallet, token, Permit2 slots), those with
    /// slots only: the most any indexed `AuthorizationBudgetSet` ever gave, not the latest. A
    /// nonce used under a larger budget stays used after the owner lowers it (within the same
    /// or the previous period, which the indexer reads): checking only the latest budget's
    /// slots would never look at it (red team rt29). Checking more slots costs a few bitmap
    /// reads, and a used slot with an approved, paired decision raises nothing.
    pub async fn permit2_budgets(&self) -> Result<Vec<(Address, Address, u16)>> {
        let mut conn = self.reader.acquire().await?;
        let mut latest = std::collections::BTreeMap::new();
        for (wallet, token, slots) in Self::budget_events(&mut conn).await? {
            if let Some(slots) = slots {
                let most: &mut u16 = latest.entry((wallet, token)).or_default();
                *most = (*most).max(slots);
            }
        }
        Ok(latest
            .into_iter()
            .filter(|(_, slots)| *slots > 0)
            .map(|((wallet, token), slots)| (wallet, token, slots))
            .collect())
    }
}
