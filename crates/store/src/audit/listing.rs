//! Reading the log as compliance officers and auditors do: records in log order, filtered;
//! records by when the server received them, or by leaf hash (the evidence pack); and the
//! agents with their chains.

use chaperone_core::{Address, B256, Record};
use sqlx::Row;

use super::{
    AgentSummary, BATCH_COLUMNS, LoggedRecord, ReceivedFilter, RecordFilter, StoredBatch, Value,
    leaf_prefix, to_i64, to_u64, unpack_encodings,
};
use crate::{
    Error, Result, Store,
    sql_filter::{IN_LIST_PART, SqlFilter, placeholders},
    store::{hex, parse},
};

impl Store {
    /// Records in log order, filtered (the compliance API's query). Reads the matching batches
    /// a few at a time, from the one holding the cursor on, and filters their records.
    pub async fn records(&self, filter: &RecordFilter) -> Result<Vec<LoggedRecord>> {
        const BATCHES_PER_QUERY: u32 = 8;
        let start = filter.after_index.map_or(0, |i| i.saturating_add(1));
        let mut sql = format!(
            "SELECT {BATCH_COLUMNS} FROM record_batches \
             WHERE first_index >= (SELECT COALESCE(MAX(first_index), 0) FROM record_batches \
             WHERE first_index <= $1) AND first_index > $2",
        );
        let mut binds = Vec::new();
        let mut clause = |sql: &mut String, condition: &str, value: Value| {
            binds.push(value);
            sql.push_str(&format!(" AND {condition} ${}", binds.len() + 2));
        };
        if let Some(agent) = filter.agent {
            clause(&mut sql, "agent =", Value::Text(hex(agent)));
        }
        if let Some(from) = filter.from_ms {
            let from = Value::Int(to_i64(from, "from")?);
            clause(&mut sql, "max_timestamp_ms >=", from);
        }
        if let Some(to) = filter.to_ms {
            clause(
                &mut sql,
                "min_timestamp_ms <",
                Value::Int(to_i64(to, "to")?),
            );
        }
        sql.push_str(&format!(" ORDER BY first_index LIMIT {BATCHES_PER_QUERY}"));
        let wanted = |r: &Record| {
            filter.model.as_ref().is_none_or(|m| *m == r.model)
                && filter.from_ms.is_none_or(|from| r.timestamp_ms >= from)
                && filter.to_ms.is_none_or(|to| r.timestamp_ms < to)
        };
        let mut found = Vec::new();
        let mut after_batch = -1i64;
        while found.len() < filter.limit as usize {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(to_i64(start, "cursor")?)
                .bind(after_batch);
            for value in &binds {
                query = value.clone().bind_to(query);
            }
            let rows = query.fetch_all(&self.reader).await?;
            for row in &rows {
                after_batch = row.try_get(0)?;
                let batch = StoredBatch::from_row(row)?;
                let logged = batch.leaves().zip(unpack_encodings(&batch.encodings)?);
                for (position, (leaf_hash, encoding)) in logged.enumerate() {
                    let index = batch.first_index + position as u64;
                    if index < start || found.len() == filter.limit as usize {
                        continue;
                    }
                    let record = Record::decode(encoding)?;
                    if wanted(&record) {
                        found.push(LoggedRecord {
                            index,
                            leaf_hash,
                            record,
                            batch_root: batch.batch_root,
                            received_ms: batch.received_ms,
                        });
                    }
                }
            }
            if rows.len() < BATCHES_PER_QUERY as usize {
                break;
            }
        }
        Ok(found)
    }

    /// The records of the batches the server received in `[from_ms, to_ms)` (of one agent, or
    /// of all), at most `filter.batches` batches by (receive time, log index) after the
    /// cursor; with the cursor of the last batch read, or none when no batch is left. The
    /// agent and the times are conditions of the query, on indexes: a pack for one agent reads
    /// only that agent's batches.
    pub async fn records_received(
        &self,
        filter: &ReceivedFilter,
    ) -> Result<(Vec<LoggedRecord>, Option<(u64, u64)>)> {
        let mut query = SqlFilter::new(&format!("SELECT {BATCH_COLUMNS} FROM record_batches"));
        query.equals("agent", filter.agent.map(|a| Value::Text(hex(a))));
        query.within("received_at", Some(filter.from_ms), Some(filter.to_ms));
        let after = filter
            .after
            .map(|(at, first)| Ok::<_, Error>((at, Value::Int(to_i64(first, "cursor")?))))
            .transpose()?;
        query.past("received_at", "first_index", ">", after);
        let rows = query
            .fetch_all(
                &self.reader,
                &format!(
                    " ORDER BY received_at, first_index LIMIT {}",
                    filter.batches
                ),
            )
            .await?;
        let mut records = Vec::new();
        let mut cursor = None;
        for row in &rows {
            let batch = StoredBatch::from_row(row)?;
            cursor = Some((batch.received_ms, batch.first_index));
            records.extend(batch.records()?);
        }
        let more = rows.len() == filter.batches as usize;
        Ok((records, cursor.filter(|_| more)))
    }

    /// The logged records with these leaf hashes (those the log holds), in log order: the
    /// candidates of each hash by its first 8 bytes (one query per [`IN_LIST_PART`] hashes),
    /// then the batches that hold them, each read once.
    pub async fn records_by_leaf(&self, leaves: &[B256]) -> Result<Vec<LoggedRecord>> {
        let wanted: std::collections::HashSet<B256> = leaves.iter().copied().collect();
        let mut indexes = Vec::new();
        for part in leaves.chunks(IN_LIST_PART) {
            let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT leaf_index FROM leaf_keys WHERE prefix IN ({})",
                placeholders(part.len())
            )));
            for leaf in part {
                query = query.bind(leaf_prefix(*leaf));
            }
            for index in query.fetch_all(&self.reader).await? {
                indexes.push(to_u64(index, "leaf index")?);
            }
        }
        indexes.sort_unstable();
        indexes.dedup();
        let mut found = Vec::new();
        let mut batch: Option<StoredBatch> = None;
        for index in indexes {
            let covers = |b: &StoredBatch| {
                index >= b.first_index && index < b.first_index + (b.leaf_hashes.len() / 32) as u64
            };
            if !batch.as_ref().is_some_and(covers) {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {BATCH_COLUMNS} FROM record_batches WHERE first_index <= $1 \
                     ORDER BY first_index DESC LIMIT 1"
                )))
                .bind(to_i64(index, "leaf index")?)
                .fetch_optional(&self.reader)
                .await?;
                batch = row.as_ref().map(StoredBatch::from_row).transpose()?;
            }
            let Some(b) = batch.as_ref().filter(|b| covers(b)) else {
                continue;
            };
            let position = (index - b.first_index) as usize;
            if let Some(leaf) = b.leaf(position).filter(|l| wanted.contains(l)) {
                let encoding = *unpack_encodings(&b.encodings)?
                    .get(position)
                    .ok_or_else(|| {
                        Error::Corrupt("a batch has fewer encodings than leaves".into())
                    })?;
                found.push(LoggedRecord {
                    index,
                    leaf_hash: leaf,
                    record: Record::decode(encoding)?,
                    batch_root: b.batch_root,
                    received_ms: b.received_ms,
                });
            }
        }
        Ok(found)
    }

    /// Agents in address order, after `after` (the pagination cursor).
    pub async fn agents(&self, after: Option<Address>, limit: u32) -> Result<Vec<AgentSummary>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT address, record_count, next_sequence, last_leaf_hash, first_seen_ms, \
             last_seen_ms FROM agents WHERE address > $1 ORDER BY address LIMIT {limit}"
        )))
        .bind(after.map(hex).unwrap_or_default())
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(AgentSummary {
                    address: parse(&row.try_get::<String, _>(0)?, "agent")?,
                    record_count: to_u64(row.try_get(1)?, "record count")?,
                    next_sequence: to_u64(row.try_get(2)?, "next sequence")?,
                    last_leaf_hash: parse(&row.try_get::<String, _>(3)?, "leaf hash")?,
                    first_seen_ms: to_u64(row.try_get(4)?, "first seen")?,
                    last_seen_ms: to_u64(row.try_get(5)?, "last seen")?,
                })
            })
            .collect()
    }

    /// Where an agent's chain ends: (next sequence, last leaf hash), or (0, zero) if it has none.
    pub async fn agent_head(&self, agent: Address) -> Result<(u64, B256)> {
        let row =
            sqlx::query("SELECT next_sequence, last_leaf_hash FROM agents WHERE address = $1")
                .bind(hex(agent))
                .fetch_optional(&self.reader)
                .await?;
        match row {
            Some(row) => Ok((
                to_u64(row.try_get(0)?, "next sequence")?,
                parse(&row.try_get::<String, _>(1)?, "last leaf hash")?,
            )),
            None => Ok((0, B256::ZERO)),
        }
    }
}
