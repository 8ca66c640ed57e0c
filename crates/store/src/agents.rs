//! The agents that may append to the log: registered by an admin, or with their wallet.

use chaperone_core::Address;
use sqlx::Row;

use crate::{
    Result, Store,
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

    /// Every registered agent, oldest first.
    pub async fn registered_agents(&self) -> Result<Vec<RegisteredAgent>> {
        let rows = sqlx::query(
            "SELECT address, registered_at, registered_by FROM registered_agents \
             ORDER BY registered_at, address",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RegisteredAgent {
                    address: parse(&row.try_get::<String, _>(0)?, "agent")?,
                    registered_at: to_u64(row.try_get(1)?, "registered at")?,
                    registered_by: row.try_get(2)?,
                })
            })
            .collect()
    }
}
