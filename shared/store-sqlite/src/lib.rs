//! The embedded default store: one SQLite file, one row per (tenant, kind, key, day).
//!
//! Schema version 3 (version 1 and 2 files are migrated on open, in one transaction):
//!
//! - `series (id, tenant, kind, key)`: one row per line identity, `id` an integer assigned in the
//!   order lines are first written, so a file's rows are appended in key order.
//! - `origin (id, source, imported_at)`: one row per import (file and time).
//! - `label (id, series, value)`: each distinct attribute text (a page's URL) of a series, once.
//!   A line's 31 days share one label instead of 31 copies of the text (version 2 kept the text
//!   in every row: 60 of a pagetree row's 84 bytes). Labels of a new file are appended in series
//!   order, like its rows.
//! - `daily_item (id, origin, <attributes>, <metrics>)`, a rowid table keyed by
//!   `id = series << 21 | (day + 2^20)`, `day` counting days since 1970-01-01 (years -900 to
//!   4840): `id >> 21` is the series, `(id & 0x1fffff) - 2^20` the day. An integer key makes a
//!   new file's rows true appends (SQLite's quick balance, full pages, no key comparisons). The
//!   value columns have no declared type, so SQLite applies no affinity on a write: values are
//!   stored as bound, attributes as the INTEGER id of their label, amounts (the exact decimal) as
//!   TEXT, counts as INTEGER; a value never sent is NULL.
//! - `daily_item_text`: a view with the version-1 columns (text day, tenant, kind, key, attribute
//!   texts, source, imported_at) for reading the store by hand.
//!
//! An upsert binds only the columns an item carries (one prepared statement per set of columns
//! and run length, cached; one statement writes up to 32 days of a line) and `ON CONFLICT DO
//! UPDATE` sets exactly those: metrics not sent stay. A batch is one transaction; it is sorted by
//! `(series, day)` so inserts are near-appends.
//!
//! A new file gets 16 KiB pages (fewer write calls and WAL frames per row than SQLite's 4 KiB;
//! an existing file keeps its own) and WAL journaling, so readers never wait for a writer.
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
use rusqlite::{
    params_from_iter, types::Value, CachedStatement, Connection, ErrorCode, OptionalExtension, TransactionBehavior,
};

const TABLE: &str = "daily_item";
const SCHEMA_VERSION: i64 = 3;
/// The tables of line identities and of imports (schema versions 2 and 3).
const SERIES_AND_ORIGIN_SQL: &str = "CREATE TABLE series (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, \
     kind TEXT NOT NULL, key TEXT NOT NULL, UNIQUE (tenant, kind, key));
     CREATE TABLE origin (id INTEGER PRIMARY KEY, source TEXT NOT NULL, imported_at TEXT NOT NULL, \
     UNIQUE (source, imported_at));";
/// The labels table (schema version 3): each distinct attribute text of a series, once; daily
/// rows hold its id.
const LABEL_TABLE_SQL: &str = "CREATE TABLE label (id INTEGER PRIMARY KEY, series INTEGER NOT NULL, \
     value TEXT NOT NULL, UNIQUE (series, value));";
/// The page size of a new store file, in bytes.
const PAGE_SIZE: i64 = 16_384;
/// `NaiveDate::num_days_from_ce` of 1970-01-01: `day` columns count from there.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;
/// Bits of a row id holding the day; the series id is above them.
const DAY_BITS: u32 = 21;
/// Added to the day number so days before 1970 stay positive in the id.
const DAY_BIAS: i64 = 1 << (DAY_BITS - 1);

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
    #[error("the day {0} is outside the years the SQLite store can hold (-900 to 4840)")]
    DayOutOfRange(NaiveDate),
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

/// The stored form of a day: days since 1970-01-01.
fn day_number(day: NaiveDate) -> i64 {
    i64::from(day.num_days_from_ce() - EPOCH_DAYS_FROM_CE)
}

/// The row id of `series` on `day`.
fn row_id(series: i64, day: NaiveDate) -> Result<i64, Error> {
    let biased = day_number(day) + DAY_BIAS;
    if !(0..1 << DAY_BITS).contains(&biased) {
        return Err(Error::DayOutOfRange(day));
    }
    Ok(series << DAY_BITS | biased)
}

/// The SQL for the day number of the row id `id`.
fn day_sql(id: &str) -> String {
    format!("(({id} & {}) - {DAY_BIAS})", (1i64 << DAY_BITS) - 1)
}

fn day_from_number(n: i64) -> Option<NaiveDate> {
    let n = i32::try_from(n).ok()?.checked_add(EPOCH_DAYS_FROM_CE)?;
    NaiveDate::from_num_days_from_ce_opt(n)
}

fn sql_error(doing: &'static str) -> impl Fn(rusqlite::Error) -> Error + Copy {
    move |source| Error::Sqlite { doing, source }
}

impl SqliteStore {
    /// Opens (creating if needed, migrating a version-1 file) the store at `path`.
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
            batch_size: 10_000,
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
        let mut conn = self.lock()?;
        let sql = sql_error;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql("setting the busy timeout"))?;
        // A new file gets 16 KiB pages (must precede WAL, which writes the header; an existing file
        // keeps its own): a quarter of the pages, WAL frames and write calls per row of 4 KiB
        // pages, while a commit of a small import still rewrites little (see docs/BENCHMARKS.md).
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(sql("setting the page size"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("enabling WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("setting synchronous"))?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(sql("setting temp_store"))?;
        conn.pragma_update(None, "cache_size", -8_192)
            .map_err(sql("setting cache_size"))?;
        conn.set_prepared_statement_cache_capacity(32);
        if self.schema_version(&conn)? == Some(SCHEMA_VERSION) {
            return Ok(());
        }
        // Create or migrate under the write lock, deciding again once it is held: another
        // process may have done it meanwhile.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("starting the schema transaction"))?;
        match self.schema_version(&tx)? {
            None => {
                tx.execute_batch(&self.schema_sql())
                    .map_err(sql("creating the schema"))?;
            }
            Some(1) => {
                tx.execute_batch(&self.migration_from_v1_sql())
                    .map_err(sql("migrating the schema from version 1"))?;
                tx.execute_batch(&self.migration_from_v2_sql())
                    .map_err(sql("migrating the schema from version 2"))?;
            }
            Some(2) => {
                tx.execute_batch(&self.migration_from_v2_sql())
                    .map_err(sql("migrating the schema from version 2"))?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(Error::SchemaVersion {
                    path: self.path.clone(),
                    found,
                })
            }
        }
        tx.commit().map_err(sql("committing the schema"))
    }

    /// `None` for an empty file, else `PRAGMA user_version`.
    fn schema_version(&self, conn: &Connection) -> Result<Option<i64>, Error> {
        let exists: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type='table' AND name=?1",
                [TABLE],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_error("reading the schema"))?;
        if exists.is_none() {
            return Ok(None);
        }
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .map(Some)
            .map_err(sql_error("reading the schema version"))
    }

    /// The attribute and metric columns of `daily_item`, in order. They have no declared type
    /// (so no affinity to apply on every write): attributes are stored as TEXT, amounts as TEXT
    /// holding the exact decimal, counts as INTEGER, exactly as bound.
    fn value_columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = self.attributes.iter().map(|d| d.to_string()).collect();
        columns.extend(Metric::ALL.iter().map(|m| m.to_string()));
        columns
    }

    fn schema_sql(&self) -> String {
        let names: Vec<String> = self.value_columns();
        format!(
            "{SERIES_AND_ORIGIN_SQL}
             {LABEL_TABLE_SQL}
             CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, origin, {columns});
             {view}
             PRAGMA user_version = {SCHEMA_VERSION};",
            columns = names.join(", "),
            view = self.view_sql(),
        )
    }

    /// `daily_item_text`: one row per daily item with readable columns (the version-1 columns).
    fn view_sql(&self) -> String {
        let attributes: Vec<String> = self
            .attributes
            .iter()
            .enumerate()
            .map(|(i, d)| format!("l{i}.value AS {d}"))
            .collect();
        let metrics: Vec<String> = Metric::ALL.iter().map(|m| format!("d.{m}")).collect();
        format!(
            "CREATE VIEW {TABLE}_text AS SELECT s.tenant, s.kind, s.key, \
                 date({day} * 86400, 'unixepoch') AS day, {attributes}, {metrics}, o.source, o.imported_at \
                 FROM {TABLE} d JOIN series s ON s.id = d.id >> {DAY_BITS} JOIN origin o ON o.id = d.origin{joins};",
            day = day_sql("d.id"),
            attributes = attributes.join(", "),
            metrics = metrics.join(", "),
            joins = self.label_joins(),
        )
    }

    /// `LEFT JOIN`s giving each attribute column of `daily_item` (aliased `d`) its text as
    /// `l<i>.value`.
    fn label_joins(&self) -> String {
        self.attributes
            .iter()
            .enumerate()
            .map(|(i, a)| format!(" LEFT JOIN label l{i} ON l{i}.id = d.{a}"))
            .collect()
    }

    /// Schema version 2, the target of the version-1 migration (version 3 follows from it):
    /// attributes were TEXT in every daily row.
    fn schema_v2_sql(&self) -> String {
        let names: Vec<String> = self.value_columns();
        format!(
            "{SERIES_AND_ORIGIN_SQL}
             CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, origin, {columns});
             CREATE VIEW {TABLE}_text AS SELECT s.tenant, s.kind, s.key, \
                 date({day} * 86400, 'unixepoch') AS day, {d_columns}, o.source, o.imported_at \
                 FROM {TABLE} d JOIN series s ON s.id = d.id >> {DAY_BITS} JOIN origin o ON o.id = d.origin;
             PRAGMA user_version = 2;",
            columns = names.join(", "),
            day = day_sql("d.id"),
            d_columns = names.iter().map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", "),
        )
    }

    /// Version 1 had one table, `daily_item (tenant, kind, key, day TEXT, <the same value
    /// columns>, source, imported_at)` keyed by the four texts. Runs inside one transaction.
    fn migration_from_v1_sql(&self) -> String {
        let names: Vec<String> = self.value_columns();
        format!(
            "ALTER TABLE {TABLE} RENAME TO {TABLE}_v1;
             {schema}
             INSERT INTO series (tenant, kind, key) \
                 SELECT tenant, kind, key FROM {TABLE}_v1 GROUP BY tenant, kind, key ORDER BY tenant, kind, key;
             INSERT INTO origin (source, imported_at) \
                 SELECT DISTINCT source, imported_at FROM {TABLE}_v1 ORDER BY imported_at, source;
             INSERT INTO {TABLE} (id, origin, {columns}) \
                 SELECT s.id << {DAY_BITS} | (unixepoch(v.day) / 86400 + {DAY_BIAS}), o.id, {v_columns} \
                 FROM {TABLE}_v1 v \
                 JOIN series s ON s.tenant = v.tenant AND s.kind = v.kind AND s.key = v.key \
                 JOIN origin o ON o.source = v.source AND o.imported_at = v.imported_at \
                 ORDER BY s.id, v.day;
             DROP TABLE {TABLE}_v1;",
            schema = self.schema_v2_sql(),
            columns = names.join(", "),
            v_columns = names.iter().map(|c| format!("v.{c}")).collect::<Vec<_>>().join(", "),
        )
    }

    /// Version 2 kept attributes as TEXT in every daily row; version 3 keeps each distinct
    /// (series, text) once in `label` and its id in the row. Runs inside one transaction.
    fn migration_from_v2_sql(&self) -> String {
        let names: Vec<String> = self.value_columns();
        // In row order, so in series order: no sort (the rows may not fit in memory), and the
        // unique index takes the labels in order too.
        let labels: Vec<String> = self
            .attributes
            .iter()
            .map(|a| {
                format!(
                    "INSERT OR IGNORE INTO label (series, value) \
                     SELECT id >> {DAY_BITS}, {a} FROM {TABLE}_v2 WHERE {a} IS NOT NULL ORDER BY id;"
                )
            })
            .collect();
        let values: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < self.attributes.len() {
                    format!("(SELECT l.id FROM label l WHERE l.series = v.id >> {DAY_BITS} AND l.value = v.{c})")
                } else {
                    format!("v.{c}")
                }
            })
            .collect();
        format!(
            "DROP VIEW {TABLE}_text;
             ALTER TABLE {TABLE} RENAME TO {TABLE}_v2;
             {LABEL_TABLE_SQL}
             CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, origin, {columns});
             {labels}
             INSERT INTO {TABLE} (id, origin, {columns}) SELECT v.id, v.origin, {values} FROM {TABLE}_v2 v ORDER BY v.id;
             DROP TABLE {TABLE}_v2;
             {view}
             PRAGMA user_version = {SCHEMA_VERSION};",
            columns = names.join(", "),
            labels = labels.join("\n"),
            values = values.join(", "),
            view = self.view_sql(),
        )
    }

    /// The upsert of `rows` days of one series carrying the columns in `mask` (bit i: the i-th
    /// value column, attributes first, then metrics in catalog order). One statement writes a
    /// run of days: SQLite's per-statement work (start, halt, reset) is paid once per run, and
    /// the table cursor stays on the page being appended to. Parameters: ?1 origin, then the
    /// attributes in `mask` (shared by the run), then per row its id and its metrics.
    ///
    /// A [`Shape::Tail`] run is consecutive days whose rows after the first all carry the same
    /// metrics (a period total spread over days: the remainder on the first day, the same share
    /// on every other): after the attributes come the first row's id, the first row's metrics,
    /// then the metrics of every other row, bound once; row k's id is the first id plus k.
    fn upsert_sql(&self, mask: u32, rows: usize, shape: Shape) -> String {
        let present: Vec<String> = self
            .value_columns()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, c)| c)
            .collect();
        let attributes = (mask & ((1 << self.attributes.len()) - 1)).count_ones() as usize;
        let metrics = present.len() - attributes;
        let mut columns = vec!["id".to_string(), "origin".into()];
        columns.extend(present.iter().cloned());
        let tuples: Vec<String> = (0..rows)
            .map(|r| {
                let base = 2 + attributes + r * (1 + metrics);
                let (id, first_metric) = match shape {
                    Shape::Rows => (format!("?{base}"), base + 1),
                    Shape::Tail => {
                        let id = 2 + attributes;
                        let first_metric = if r == 0 { id + 1 } else { id + 1 + metrics };
                        (
                            if r == 0 {
                                format!("?{id}")
                            } else {
                                format!("?{id} + {r}")
                            },
                            first_metric,
                        )
                    }
                };
                let mut values = vec![id, "?1".into()];
                values.extend((0..attributes).map(|a| format!("?{}", 2 + a)));
                values.extend((0..metrics).map(|m| format!("?{}", first_metric + m)));
                format!("({})", values.join(", "))
            })
            .collect();
        let updates: Vec<String> = std::iter::once("origin".to_string())
            .chain(present)
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO {TABLE} ({}) VALUES {} ON CONFLICT (id) DO UPDATE SET {}",
            columns.join(", "),
            tuples.join(", "),
            updates.join(", ")
        )
    }

    /// Which value columns an item carries (see [`SqliteStore::upsert_sql`]).
    fn column_mask(&self, item: &DailyItem<'_>) -> u32 {
        let mut mask = 0;
        for (i, &d) in self.attributes.iter().enumerate() {
            if item.dimensions.get(d).is_some() {
                mask |= 1 << i;
            }
        }
        let first_metric = self.attributes.len();
        for m in Metric::ALL {
            if item.metrics.get(m).is_some() {
                mask |= 1 << (first_metric + m.index());
            }
        }
        mask
    }

    fn upsert_now(&self, origin: &ImportOrigin, items: &[DailyItem<'_>]) -> Result<(), Error> {
        let mut conn = self.lock()?;
        let sql = sql_error;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("starting a transaction"))?;
        let origin_id = origin_id(&tx, origin)?;
        let series = series_ids(&tx, origin, items)?;
        // Rows in key order: appends for a new file, sequential updates for a re-import.
        let mut order: Vec<usize> = (0..items.len()).collect();
        let key = |&i: &usize| (series[i], items[i].day);
        if !order.is_sorted_by_key(key) {
            order.sort_unstable_by_key(key);
        }
        {
            let mut writer = RowWriter::new(self, &tx, origin_id);
            let mut run: Vec<&DailyItem<'_>> = Vec::with_capacity(MAX_RUN);
            let mut start = 0;
            while start < order.len() {
                let first = order[start];
                let mask = self.column_mask(&items[first]);
                let mut previous = first;
                let same_run = |&&i: &&usize| {
                    let same = series[i] == series[first]
                        && (items[i].metrics == items[previous].metrics || self.column_mask(&items[i]) == mask)
                        && self
                            .attributes
                            .iter()
                            .all(|&d| items[i].dimensions.get(d) == items[first].dimensions.get(d));
                    previous = i;
                    same
                };
                let len = order[start..].iter().take(MAX_RUN).take_while(same_run).count();
                run.clear();
                run.extend(order[start..start + len].iter().map(|&i| &items[i]));
                writer.write(series[first], mask, &run)?;
                start += len;
            }
        }
        tx.commit().map_err(sql("committing"))
    }

    fn query_now(&self, query: &ItemQuery) -> Result<Vec<StoredItem>, Error> {
        let conn = self.lock()?;
        let sql_err = sql_error;
        let mut columns: Vec<String> = vec!["s.key".into(), day_sql("d.id")];
        columns.extend((0..self.attributes.len()).map(|i| format!("l{i}.value")));
        columns.extend(Metric::ALL.iter().map(|m| format!("d.{m}")));
        let mut sql = format!(
            "SELECT {} FROM series s JOIN {TABLE} d \
             ON d.id BETWEEN (s.id << {DAY_BITS}) + ?3 AND (s.id << {DAY_BITS}) + ?4{} \
             WHERE s.tenant = ?1 AND s.kind = ?2",
            columns.join(", "),
            self.label_joins(),
        );
        let mut params: Vec<Value> = vec![
            Value::Text(query.tenant.as_str().into()),
            Value::Text(query.kind.as_str().into()),
            Value::Integer(query.from.map_or(0, |d| (day_number(d) + DAY_BIAS).max(0))),
            Value::Integer(query.to.map_or((1 << DAY_BITS) - 1, |d| {
                (day_number(d) + DAY_BIAS).min((1 << DAY_BITS) - 1)
            })),
        ];
        if let Some(key) = &query.key {
            params.push(Value::Text(key.clone()));
            sql.push_str(&format!(" AND s.key = ?{}", params.len()));
        }
        sql.push_str(" ORDER BY s.key, d.id");
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
        let key = match row.next() {
            Some(Value::Text(t)) => t,
            _ => String::new(),
        };
        let day_value = row.next();
        let day_text = format!("{day_value:?}");
        let corrupt = |metric, value: String| Error::Corrupt {
            metric,
            key: key.clone(),
            day: day_text.clone(),
            value,
        };
        let day = match day_value {
            Some(Value::Integer(n)) => day_from_number(n),
            _ => None,
        }
        .ok_or_else(|| corrupt(Metric::Visit, format!("day {day_text}")))?;
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

/// The id of the batch's (source, imported_at), created if new.
fn origin_id(conn: &Connection, origin: &ImportOrigin) -> Result<i64, Error> {
    let params = (origin.source.as_str(), origin.imported_at.as_str());
    conn.prepare_cached("INSERT INTO origin (source, imported_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
        .and_then(|mut s| s.execute(params))
        .map_err(sql_error("recording the import"))?;
    conn.prepare_cached("SELECT id FROM origin WHERE source = ?1 AND imported_at = ?2")
        .and_then(|mut s| s.query_row(params, |r| r.get(0)))
        .map_err(sql_error("reading the import id"))
}

/// Each item's series id, created for keys never seen; one look-up per run of equal keys.
/// After a key that was new, the next key is first tried as an insert (`OR IGNORE`: one index
/// search instead of a look-up and an insert while a new file's keys keep being new); after a
/// key that existed, it is looked up first.
fn series_ids(conn: &Connection, origin: &ImportOrigin, items: &[DailyItem<'_>]) -> Result<Vec<i64>, Error> {
    let sql = sql_error;
    let mut find = conn
        .prepare_cached("SELECT id FROM series WHERE tenant = ?1 AND kind = ?2 AND key = ?3")
        .map_err(sql("preparing the series look-up"))?;
    let mut add = conn
        .prepare_cached("INSERT OR IGNORE INTO series (tenant, kind, key) VALUES (?1, ?2, ?3)")
        .map_err(sql("preparing the series insert"))?;
    let bind = sql("binding a series");
    for stmt in [&mut find, &mut add] {
        stmt.raw_bind_parameter(1, origin.tenant.as_str()).map_err(bind)?;
    }
    let mut ids = Vec::with_capacity(items.len());
    let mut last: Option<(Kind, &str, i64)> = None;
    let mut last_was_new = false;
    for item in items {
        let id = match last {
            Some((kind, key, id)) if kind == item.kind && key == item.key => id,
            _ => {
                let mut find_id = || -> Result<Option<i64>, Error> {
                    find.raw_bind_parameter(2, item.kind.as_str()).map_err(bind)?;
                    find.raw_bind_parameter(3, item.key).map_err(bind)?;
                    let mut rows = find.raw_query();
                    match rows.next().map_err(sql("looking up a series"))? {
                        Some(row) => Ok(Some(row.get::<_, i64>(0).map_err(sql("reading a series id"))?)),
                        None => Ok(None),
                    }
                };
                let found = if last_was_new { None } else { find_id()? };
                match found {
                    Some(id) => {
                        last_was_new = false;
                        id
                    }
                    None => {
                        add.raw_bind_parameter(2, item.kind.as_str()).map_err(bind)?;
                        add.raw_bind_parameter(3, item.key).map_err(bind)?;
                        if add.raw_execute().map_err(sql("adding a series"))? == 1 {
                            last_was_new = true;
                            conn.last_insert_rowid()
                        } else {
                            last_was_new = false;
                            find_id()?.ok_or_else(|| Error::Sqlite {
                                doing: "reading a series just found to exist",
                                source: rusqlite::Error::QueryReturnedNoRows,
                            })?
                        }
                    }
                }
            }
        };
        last = Some((item.kind, item.key, id));
        ids.push(id);
    }
    Ok(ids)
}

/// The id of `text` among the labels of `series`, added if new: an insert first (one index
/// search while a new file's labels keep being new), a look-up when it was there.
fn label_id(conn: &Connection, series: i64, text: &str) -> Result<i64, Error> {
    let added = conn
        .prepare_cached("INSERT OR IGNORE INTO label (series, value) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute((series, text)))
        .map_err(sql_error("adding a label"))?;
    if added == 1 {
        return Ok(conn.last_insert_rowid());
    }
    conn.prepare_cached("SELECT id FROM label WHERE series = ?1 AND value = ?2")
        .and_then(|mut s| s.query_row((series, text), |r| r.get(0)))
        .map_err(sql_error("reading a label id"))
}

/// The most days one upsert statement writes.
const MAX_RUN: usize = 32;

/// How a run's rows are laid out in its statement (see [`SqliteStore::upsert_sql`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Every row its own id and metrics.
    Rows,
    /// Consecutive days, every row after the first carrying the same metrics.
    Tail,
}

/// Writes runs of days through the cached upsert of their column set and length. Parameters
/// stay bound across executions, so a value equal to the one already bound in its slot (most
/// days of a line carry the same share) is not bound again.
struct RowWriter<'c, 'a> {
    store: &'c SqliteStore,
    conn: &'c Connection,
    origin_id: i64,
    statement: Option<((u32, usize, Shape), CachedStatement<'c>)>,
    /// Per attribute, the label id bound in the statement.
    attributes: [Option<i64>; Dimension::COUNT],
    /// Per attribute, the last text looked up (its series and where it lives) and its label id:
    /// the days of a line share one text, looked up once.
    labels: [Option<(i64, &'a str, i64)>; Dimension::COUNT],
    /// Per row of the statement, the row id and metrics bound.
    bound: Vec<(i64, [Option<Quantity>; Metric::COUNT])>,
    amount_text: String,
    /// The row ids of the run being written.
    ids: Vec<i64>,
}

impl<'c, 'a> RowWriter<'c, 'a> {
    fn new(store: &'c SqliteStore, conn: &'c Connection, origin_id: i64) -> Self {
        RowWriter {
            store,
            conn,
            origin_id,
            statement: None,
            attributes: [None; Dimension::COUNT],
            labels: [None; Dimension::COUNT],
            bound: Vec::new(),
            amount_text: String::new(),
            ids: Vec::with_capacity(MAX_RUN),
        }
    }

    /// Upserts `run`: days of the series `series`, all carrying the columns in `mask` and the
    /// same attributes.
    fn write(&mut self, series: i64, mask: u32, run: &[&DailyItem<'a>]) -> Result<(), Error> {
        let bind = sql_error("binding an item");
        self.ids.clear();
        for item in run {
            self.ids.push(row_id(series, item.day)?);
        }
        let ids = &self.ids;
        let tail = run.len() >= 2
            && ids.windows(2).all(|w| w[1] == w[0] + 1)
            && run[2..].iter().all(|item| item.metrics == run[1].metrics);
        let shape = if tail { Shape::Tail } else { Shape::Rows };
        let key = (mask, run.len(), shape);
        if self.statement.as_ref().is_none_or(|(s, _)| *s != key) {
            let mut stmt = self
                .conn
                .prepare_cached(&self.store.upsert_sql(mask, run.len(), shape))
                .map_err(sql_error("preparing the upsert"))?;
            stmt.raw_bind_parameter(1, self.origin_id).map_err(bind)?;
            self.statement = Some((key, stmt));
            self.attributes = [None; Dimension::COUNT];
            self.bound.clear();
            self.bound.resize(run.len(), (i64::MIN, [None; Metric::COUNT]));
        }
        let Some((_, stmt)) = self.statement.as_mut() else {
            unreachable!("a statement was just prepared")
        };
        let mut index = 2;
        for &d in &self.store.attributes {
            let Some(value) = run[0].dimensions.get(d) else {
                continue;
            };
            let label = match self.labels[d.index()] {
                Some((s, text, id)) if s == series && std::ptr::eq(text, value) => id,
                _ => {
                    let id = label_id(self.conn, series, value)?;
                    self.labels[d.index()] = Some((series, value, id));
                    id
                }
            };
            let bound = &mut self.attributes[d.index()];
            if *bound != Some(label) {
                stmt.raw_bind_parameter(index, label).map_err(bind)?;
                *bound = Some(label);
            }
            index += 1;
        }
        // The slots to bind: every row's id and metrics, or for a tail run the first row's id
        // and metrics, then the other rows' metrics.
        let rows = if tail { &run[..2] } else { run };
        for (r, (item, (bound_id, bound_metrics))) in rows.iter().zip(self.bound.iter_mut()).enumerate() {
            if !tail || r == 0 {
                let id = ids[r];
                if *bound_id != id {
                    stmt.raw_bind_parameter(index, id).map_err(bind)?;
                    *bound_id = id;
                }
                index += 1;
            }
            for (m, q) in item.metrics.iter() {
                let bound = &mut bound_metrics[m.index()];
                if *bound != Some(q) {
                    if m.unit() == MetricUnit::Amount {
                        use std::fmt::Write;
                        self.amount_text.clear();
                        let _ = write!(self.amount_text, "{q}");
                        stmt.raw_bind_parameter(index, self.amount_text.as_str())
                    } else {
                        stmt.raw_bind_parameter(index, i64::try_from(q.units()).unwrap_or(i64::MAX))
                    }
                    .map_err(bind)?;
                    *bound = Some(q);
                }
                index += 1;
            }
        }
        stmt.raw_execute().map_err(sql_error("upserting items"))?;
        Ok(())
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
