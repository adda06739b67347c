//! The embedded default store: one SQLite file, one row per (tenant, kind, key, day).
//!
//! Every metric of the catalog is a column; an upsert binds NULL for the metrics an item does
//! not carry and `ON CONFLICT DO UPDATE SET m = coalesce(excluded.m, m)` keeps them, so one
//! prepared statement serves every kind and profile. Amounts are TEXT holding the exact
//! decimal; counts are INTEGER. A batch is one transaction.
//!
//! Calls run on the calling thread: SQLite work per batch is short, and this keeps borrowed
//! items borrowable (no copy into a blocking task). Concurrent imports share one connection
//! behind a mutex; other processes wait on SQLite's lock (busy timeout).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use reimport_core::{
    DailyItem, Dimension, ImportOrigin, ItemOrder, ItemQuery, Kind, Metric, MetricUnit, Quantity, Store, StoreError,
    StoredItem,
};
use rusqlite::{params_from_iter, types::Null, types::Value, Connection, ErrorCode, OptionalExtension};

const TABLE: &str = "daily_item";
const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the SQLite store {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the SQLite store {path} has schema version {found}, this reimport knows version {SCHEMA_VERSION}")]
    SchemaVersion { path: PathBuf, found: i64 },
    #[error("SQLite failed while {doing}")]
    Sqlite {
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("stored value {value:?} of {metric} for {key:?} on {day} is not a number")]
    Corrupt {
        metric: Metric,
        key: String,
        day: String,
        value: String,
    },
    #[error("the SQLite connection was poisoned by a panic in another import")]
    Poisoned,
}

impl From<Error> for StoreError {
    fn from(e: Error) -> StoreError {
        let retryable = matches!(
            &e,
            Error::Sqlite { source: rusqlite::Error::SqliteFailure(f, _), .. }
                if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        );
        let message = e.to_string();
        if retryable {
            StoreError::retryable(message, e)
        } else {
            StoreError::permanent(message, e)
        }
    }
}

/// Dimensions that are never a key: they need a column of their own.
fn attribute_dimensions() -> Vec<Dimension> {
    Dimension::ALL
        .into_iter()
        .filter(|d| !Kind::ALL.iter().any(|k| k.key_dimension() == *d))
        .collect()
}

pub struct SqliteStore {
    path: PathBuf,
    connection: Mutex<Connection>,
    attributes: Vec<Dimension>,
    batch_size: usize,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, Error> {
        let path = path.as_ref().to_path_buf();
        let connection = Connection::open(&path).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        let store = SqliteStore {
            path,
            connection: Mutex::new(connection),
            attributes: attribute_dimensions(),
            batch_size: 20_000,
        };
        store.prepare()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, Error> {
        self.connection.lock().map_err(|_| Error::Poisoned)
    }

    fn prepare(&self) -> Result<(), Error> {
        let conn = self.lock()?;
        let sql = |doing| move |source| Error::Sqlite { doing, source };
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql("setting the busy timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("enabling WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("setting synchronous"))?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(sql("setting temp_store"))?;
        conn.pragma_update(None, "cache_size", -32_768)
            .map_err(sql("setting cache_size"))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql("reading the schema version"))?;
        let exists: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type='table' AND name=?1",
                [TABLE],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading the schema"))?;
        match (exists, version) {
            (None, _) => {
                let mut columns = vec![
                    "tenant TEXT NOT NULL".to_string(),
                    "kind TEXT NOT NULL".to_string(),
                    "key TEXT NOT NULL".to_string(),
                    "day TEXT NOT NULL".to_string(),
                ];
                columns.extend(self.attributes.iter().map(|d| format!("{d} TEXT")));
                columns.extend(Metric::ALL.iter().map(|m| {
                    let ty = if m.unit() == MetricUnit::Amount {
                        "TEXT"
                    } else {
                        "INTEGER"
                    };
                    format!("{m} {ty}")
                }));
                columns.push("source TEXT NOT NULL".to_string());
                columns.push("imported_at TEXT NOT NULL".to_string());
                columns.push("PRIMARY KEY (tenant, kind, key, day)".to_string());
                let ddl = format!("CREATE TABLE {TABLE} ({}) WITHOUT ROWID", columns.join(", "));
                conn.execute_batch(&format!(
                    "BEGIN; {ddl}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                ))
                .map_err(sql("creating the schema"))?;
            }
            (Some(_), SCHEMA_VERSION) => {}
            (Some(_), found) => {
                return Err(Error::SchemaVersion {
                    path: self.path.clone(),
                    found,
                })
            }
        }
        Ok(())
    }

    fn upsert_sql(&self) -> String {
        let mut columns: Vec<String> = ["tenant", "kind", "key", "day"].map(String::from).to_vec();
        columns.extend(self.attributes.iter().map(|d| d.to_string()));
        columns.extend(Metric::ALL.iter().map(|m| m.to_string()));
        columns.push("source".into());
        columns.push("imported_at".into());
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let mut updates: Vec<String> = self
            .attributes
            .iter()
            .map(|d| format!("{d} = coalesce(excluded.{d}, {d})"))
            .chain(Metric::ALL.iter().map(|m| format!("{m} = coalesce(excluded.{m}, {m})")))
            .collect();
        updates.push("source = excluded.source".into());
        updates.push("imported_at = excluded.imported_at".into());
        format!(
            "INSERT INTO {TABLE} ({}) VALUES ({}) ON CONFLICT (tenant, kind, key, day) DO UPDATE SET {}",
            columns.join(", "),
            placeholders.join(", "),
            updates.join(", ")
        )
    }

    fn upsert_now(&self, origin: &ImportOrigin, items: &[DailyItem<'_>]) -> Result<(), Error> {
        let mut conn = self.lock()?;
        let sql = |doing| move |source| Error::Sqlite { doing, source };
        let tx = conn.transaction().map_err(sql("starting a transaction"))?;
        {
            let mut stmt = tx
                .prepare_cached(&self.upsert_sql())
                .map_err(sql("preparing the upsert"))?;
            // Bound straight from the item, no `Value` per column: binding and allocating were
            // a fifth of an upsert's instructions (docs/BENCHMARKS.md, SQLite). Bindings stay
            // across executions, so what the whole batch shares is bound once.
            let last = 6 + self.attributes.len() + Metric::COUNT;
            let bind = sql("binding an item");
            stmt.raw_bind_parameter(1, origin.tenant.as_str()).map_err(bind)?;
            stmt.raw_bind_parameter(last - 1, origin.source.as_str())
                .map_err(bind)?;
            stmt.raw_bind_parameter(last, origin.imported_at.as_str())
                .map_err(bind)?;
            let mut day_text = String::with_capacity(10);
            let mut amount_text = String::new();
            for item in items {
                use std::fmt::Write;
                day_text.clear();
                let _ = write!(
                    day_text,
                    "{:04}-{:02}-{:02}",
                    item.day.year(),
                    item.day.month(),
                    item.day.day()
                );
                stmt.raw_bind_parameter(2, item.kind.as_str()).map_err(bind)?;
                stmt.raw_bind_parameter(3, item.key).map_err(bind)?;
                stmt.raw_bind_parameter(4, day_text.as_str()).map_err(bind)?;
                let mut index = 5;
                for &d in &self.attributes {
                    stmt.raw_bind_parameter(index, item.dimensions.get(d)).map_err(bind)?;
                    index += 1;
                }
                for m in Metric::ALL {
                    match item.metrics.get(m) {
                        None => stmt.raw_bind_parameter(index, Null),
                        Some(q) if m.unit() == MetricUnit::Amount => {
                            amount_text.clear();
                            let _ = write!(amount_text, "{q}");
                            stmt.raw_bind_parameter(index, amount_text.as_str())
                        }
                        Some(q) => stmt.raw_bind_parameter(index, i64::try_from(q.units()).unwrap_or(i64::MAX)),
                    }
                    .map_err(bind)?;
                    index += 1;
                }
                debug_assert_eq!(index, last - 1);
                stmt.raw_execute().map_err(sql("upserting an item"))?;
            }
        }
        tx.commit().map_err(sql("committing"))
    }

    fn query_now(&self, query: &ItemQuery) -> Result<Vec<StoredItem>, Error> {
        let conn = self.lock()?;
        let sql_err = |doing| move |source| Error::Sqlite { doing, source };
        let mut columns: Vec<String> = vec!["key".into(), "day".into()];
        columns.extend(self.attributes.iter().map(|d| d.to_string()));
        columns.extend(Metric::ALL.iter().map(|m| m.to_string()));
        let mut sql = format!(
            "SELECT {} FROM {TABLE} WHERE tenant = ?1 AND kind = ?2",
            columns.join(", ")
        );
        let mut params: Vec<Value> = vec![
            Value::Text(query.tenant.as_str().into()),
            Value::Text(query.kind.as_str().into()),
        ];
        if let Some(key) = &query.key {
            params.push(Value::Text(key.clone()));
            sql.push_str(&format!(" AND key = ?{}", params.len()));
        }
        if let Some(from) = query.from {
            params.push(Value::Text(from.format("%Y-%m-%d").to_string()));
            sql.push_str(&format!(" AND day >= ?{}", params.len()));
        }
        if let Some(to) = query.to {
            params.push(Value::Text(to.format("%Y-%m-%d").to_string()));
            sql.push_str(&format!(" AND day <= ?{}", params.len()));
        }
        sql.push_str(" ORDER BY key, day");
        let mut stmt = conn.prepare(&sql).map_err(sql_err("preparing a query"))?;
        let rows = stmt
            .query_map(params_from_iter(params), |row| {
                let mut values = Vec::with_capacity(columns.len());
                for i in 0..columns.len() {
                    values.push(row.get::<_, Value>(i)?);
                }
                Ok(values)
            })
            .map_err(sql_err("querying"))?;
        let mut items = Vec::new();
        for row in rows {
            let row = row.map_err(sql_err("reading a row"))?;
            items.push(self.stored_item(query, row)?);
        }
        Ok(items)
    }

    fn stored_item(&self, query: &ItemQuery, row: Vec<Value>) -> Result<StoredItem, Error> {
        let mut row = row.into_iter();
        let text = |v: Option<Value>| match v {
            Some(Value::Text(t)) => t,
            _ => String::new(),
        };
        let key = text(row.next());
        let day_text = text(row.next());
        let corrupt = |metric, value: String| Error::Corrupt {
            metric,
            key: key.clone(),
            day: day_text.clone(),
            value,
        };
        let day = NaiveDate::parse_from_str(&day_text, "%Y-%m-%d")
            .map_err(|_| corrupt(Metric::Visit, format!("day {day_text}")))?;
        let mut dimensions = BTreeMap::from([(query.kind.key_dimension(), key.clone())]);
        for &d in &self.attributes {
            if let Some(Value::Text(v)) = row.next() {
                dimensions.insert(d, v);
            }
        }
        let mut metrics = BTreeMap::new();
        for m in Metric::ALL {
            let value = match row.next() {
                Some(Value::Integer(i)) => u64::try_from(i)
                    .map(Quantity::whole)
                    .map_err(|_| corrupt(m, i.to_string()))?,
                Some(Value::Text(t)) => t.parse::<Quantity>().map_err(|_| corrupt(m, t.clone()))?,
                Some(Value::Null) | None => continue,
                Some(other) => return Err(corrupt(m, format!("{other:?}"))),
            };
            metrics.insert(m, value);
        }
        Ok(StoredItem {
            tenant: query.tenant.as_str().to_string(),
            kind: query.kind,
            key,
            day,
            dimensions,
            metrics,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert(&self, origin: &ImportOrigin, items: &[DailyItem<'_>]) -> Result<(), StoreError> {
        Ok(self.upsert_now(origin, items)?)
    }

    async fn query(&self, query: &ItemQuery) -> Result<Vec<StoredItem>, StoreError> {
        Ok(self.query_now(query)?)
    }

    fn preferred_order(&self) -> ItemOrder {
        ItemOrder::ByLine
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }
}
