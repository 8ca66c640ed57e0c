//! A list query whose conditions depend on which filters were given: the conditions and their
//! bound values are added together, so a placeholder always names the value it was made for.
//! The decisions and the payment ledger build their queries with it. And `IN (…)` lists of
//! any length, read in parts a statement can bind.

use sqlx::any::AnyRow;

use crate::{Result, audit::Value, store::db_time};

/// Values per `IN (…)` list: a statement binds at most 32,766 parameters on SQLite and 65,535
/// on PostgreSQL, so a longer list (every decision of a period, every pending request) is read
/// in parts of this many.
pub(crate) const IN_LIST_PART: usize = 1_000;

/// `$1, $2, …, $n`: the placeholders of an `IN (…)` list of `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SELECT … WHERE` with conditions added one by one, each with its bound values.
pub(crate) struct SqlFilter {
    sql: String,
    binds: Vec<Value>,
}

impl SqlFilter {
    /// A query of `select` (a `SELECT … FROM …` without `WHERE`) matching every row so far.
    pub(crate) fn new(select: &str) -> Self {
        Self {
            sql: format!("{select} WHERE 1 = 1"),
            binds: Vec::new(),
        }
    }

    /// Binds `value` and returns its placeholder, for a condition written by the caller.
    pub(crate) fn param(&mut self, value: Value) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// Adds ` AND {condition}` (its placeholders from [`SqlFilter::param`]).
    pub(crate) fn and(&mut self, condition: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
    }

    /// `column = value`, when a value is given.
    pub(crate) fn equals(&mut self, column: &str, value: Option<Value>) {
        if let Some(value) = value {
            let p = self.param(value);
            self.and(&format!("{column} = {p}"));
        }
    }

    /// `from <= column < to` (Unix seconds), each bound when given.
    pub(crate) fn within(&mut self, column: &str, from: Option<u64>, to: Option<u64>) {
        if let Some(from) = from {
            let p = self.param(Value::Int(db_time(from)));
            self.and(&format!("{column} >= {p}"));
        }
        if let Some(to) = to {
            let p = self.param(Value::Int(db_time(to)));
            self.and(&format!("{column} < {p}"));
        }
    }

    /// Rows past a (time, tie-breaker) cursor in the list's order: `op` is `>` for a list in
    /// ascending order, `<` for a descending one.
    pub(crate) fn past(&mut self, time: &str, tie: &str, op: &str, cursor: Option<(u64, Value)>) {
        if let Some((at, key)) = cursor {
            let (a, b) = (
                self.param(Value::Int(db_time(at))),
                self.param(Value::Int(db_time(at))),
            );
            let c = self.param(key);
            self.and(&format!(
                "({time} {op} {a} OR ({time} = {b} AND {tie} {op} {c}))"
            ));
        }
    }

    /// Runs the query with `tail` (its `ORDER BY … LIMIT …`) appended.
    pub(crate) async fn fetch_all(self, pool: &sqlx::AnyPool, tail: &str) -> Result<Vec<AnyRow>> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("{}{tail}", self.sql)));
        for value in self.binds {
            query = value.bind_to(query);
        }
        Ok(query.fetch_all(pool).await?)
    }
}
