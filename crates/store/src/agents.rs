//! The agents that may append to the log: registered by an admin, or with their wallet.

use chaperone_core::Address;
use sqlx::Row;

use crate::{
    Actor, NewAdminAction, Result, Store,
    audit::to_u64,
    store::{db_time, hex, parse},
};

/// An agent allowed to append to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredAgent {
    /// The agent's record-signing address.
    pub address: Address,
    /// When it was registered (Unix seconds).
    pub registered_at: u64,
    /// Who registered it (an admin token's name, or "with its wallet").
    pub registered_by: String,
    /// What people call it (empty when its admin gave no label).
    pub label: String,
    /// The time its last logged record claims (Unix milliseconds), if it logged any.
    pub last_record_ms: Option<u64>,
    /// When a wallet of this agent's last asked for a co-signature (Unix seconds), if ever.
    pub last_decision_at: Option<u64>,
}

impl Store {
    /// Allows `agent` to append to the log. Returns false if it already could (nothing changes).
    pub async fn register_agent(&self, agent: Address, by: &str, now: u64) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO registered_agents (address, registered_at, registered_by) \
             VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING",
        )
        .bind(hex(agent))
        .bind(db_time(now))
        .bind(by)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Gives a registered `agent` the label people know it by. Returns false if it is not
    /// registered (nothing changes).
    pub async fn label_agent(&self, agent: Address, label: &str) -> Result<bool> {
        let updated = sqlx::query("UPDATE registered_agents SET label = $1 WHERE address = $2")
            .bind(label)
            .bind(hex(agent))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(updated == 1)
    }

    /// Allows `agent` to append to the log and gives it `label` (when given), as `by` (an admin's
    /// live token): in one transaction, with what changed on the record: `agent.register` for a
    /// new agent, `agent.relabel` (the old and the new label) for a known one whose label
    /// changes. Returns whether the agent is new.
    pub async fn register_agent_by(
        &self,
        agent: Address,
        label: Option<&str>,
        by: &Actor,
        now: u64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        Self::require_live(&mut tx, &by.name).await?;
        let before: Option<String> =
            sqlx::query_scalar("SELECT label FROM registered_agents WHERE address = $1")
                .bind(hex(agent))
                .fetch_optional(&mut *tx)
                .await?;
        let subject = agent.to_string();
        let action = match &before {
            None => {
                sqlx::query(
                    "INSERT INTO registered_agents (address, registered_at, registered_by, label) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(hex(agent))
                .bind(db_time(now))
                .bind(&by.name)
                .bind(label.unwrap_or_default())
                .execute(&mut *tx)
                .await?;
                Some(NewAdminAction {
                    action: "agent.register",
                    subject: &subject,
                    detail: serde_json::json!({ "agent": agent, "label": label }),
                })
            }
            Some(old) => match label.filter(|new| new != old) {
                Some(new) => {
                    sqlx::query("UPDATE registered_agents SET label = $1 WHERE address = $2")
                        .bind(new)
                        .bind(hex(agent))
                        .execute(&mut *tx)
                        .await?;
                    Some(NewAdminAction {
                        action: "agent.relabel",
                        subject: &subject,
                        detail: serde_json::json!({ "agent": agent, "from": old, "to": new }),
                    })
                }
                None => None,
            },
        };
        if let Some(action) = &action {
            Self::record_action_on(&mut tx, by, action, now).await?;
        }
        tx.commit().await?;
        Ok(before.is_none())
    }

    /// Stops `agent` appending as `by` (an admin's live token), recorded as `agent.unregister`
    /// in the same transaction. Returns false if it was not registered (nothing recorded).
    pub async fn unregister_agent_by(&self, agent: Address, by: &Actor, now: u64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        Self::require_live(&mut tx, &by.name).await?;
        let deleted = sqlx::query("DELETE FROM registered_agents WHERE address = $1")
            .bind(hex(agent))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 1 {
            let action = NewAdminAction {
                action: "agent.unregister",
                subject: &agent.to_string(),
                detail: serde_json::json!({ "agent": agent }),
            };
            Self::record_action_on(&mut tx, by, &action, now).await?;
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// Stops `agent` appending (its records stay in the log). Returns false if it was not
    /// registered.
    pub async fn unregister_agent(&self, agent: Address) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM registered_agents WHERE address = $1")
            .bind(hex(agent))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    /// Whether `agent` may append to the log.
    pub async fn agent_registered(&self, agent: Address) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM registered_agents WHERE address = $1")
                .bind(hex(agent))
                .fetch_optional(&self.reader)
                .await?;
        Ok(found.is_some())
    }

    /// Every registered agent with its last activity, oldest registration first.
    pub async fn registered_agents(&self) -> Result<Vec<RegisteredAgent>> {
        let rows = sqlx::query(
            "SELECT r.address, r.registered_at, r.registered_by, r.label, a.last_seen_ms, \
                 (SELECT MAX(d.created_at) FROM decisions d JOIN wallets w ON w.address = d.wallet \
                  WHERE w.agent = r.address) \
             FROM registered_agents r LEFT JOIN agents a ON a.address = r.address \
             ORDER BY r.registered_at, r.address",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RegisteredAgent {
                    address: parse(&row.try_get::<String, _>(0)?, "agent")?,
                    registered_at: to_u64(row.try_get(1)?, "registered at")?,
                    registered_by: row.try_get(2)?,
                    label: row.try_get(3)?,
                    last_record_ms: row
                        .try_get::<Option<i64>, _>(4)?
                        .map(|ms| to_u64(ms, "last record"))
                        .transpose()?,
                    last_decision_at: row
                        .try_get::<Option<i64>, _>(5)?
                        .map(|at| to_u64(at, "last decision"))
                        .transpose()?,
                })
            })
            .collect()
    }
}
