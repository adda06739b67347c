//! The DynamoDB store: the only crate that knows `aws-sdk-dynamodb`.
//!
//! One item per (tenant, kind, key, day) in one table ([`key_schema`]: `pk = tenant#kind#key`,
//! `day = YYYY-MM-DD`), written with one UpdateItem each ([`item`]): a `SET` of the metrics sent,
//! the dimensions, `source` and `imported_at`, so metrics stored by other imports stay. Never
//! PutItem or BatchWriteItem, which replace whole items and would wipe those metrics.
//!
//! Writes of a batch run with bounded concurrency ([`DynamoOptions::concurrency`]); this crate
//! retries throttling, 5xx, timeouts and dropped connections itself ([`retry`]), with the SDK's
//! retries switched off, and a failure that outlives [`DynamoOptions::max_attempts`] fails the
//! whole upsert as [`StoreError::Retryable`]: nothing is dropped. Repeating a batch is safe.
//!
//! Reads are strongly consistent (an import is visible to the `query` that follows it).
//! A query with a key is one DynamoDB Query over the line's days; a query without a key is a
//! **Scan** of the whole table filtered on the `tenant#kind#` prefix of `pk`: it reads (and bills) every item of
//! every tenant, so it is meant for small tables and occasional listing.
//!
//! Known problems:
//! - Items are kept under 1 KB (one write unit); an item whose key, dimensions and source could
//!   make it larger is refused before anything of its batch is written ([`Error::ItemTooLarge`]).
//!   The estimate does not count a dimension an earlier import stored and this one does not send.
//! - DynamoDB Numbers drop trailing zeros: `33.30` reads back as `33.3` (the same value).

pub mod item;
pub mod key_schema;
pub mod retry;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::StalledStreamProtectionConfig;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::describe_table::{DescribeTableError, DescribeTableOutput};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};
use futures::TryStreamExt;
use reimport_core::{DailyItem, ImportOrigin, ItemOrder, ItemQuery, Store, StoreError, StoredItem};

use crate::item::ItemUpdate;
use crate::key_schema::{PARTITION_KEY, SORT_KEY};
use crate::retry::Failure;

/// How the store writes: concurrency and its own retry policy.
#[derive(Clone, Debug)]
pub struct DynamoOptions {
    /// UpdateItem calls in flight at once during an upsert.
    pub concurrency: usize,
    /// Attempts per request, the first included, before the call fails as retryable.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each attempt (capped at 10 s), with jitter.
    pub initial_backoff: Duration,
}

impl Default for DynamoOptions {
    fn default() -> Self {
        DynamoOptions {
            concurrency: 64,
            max_attempts: 8,
            initial_backoff: Duration::from_millis(25),
        }
    }
}

/// How long one attempt may take before it counts as a (retryable) timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `ensure_table` waits for a new table to become ACTIVE.
pub const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid DynamoDB table name {name:?}: {reason}")]
    TableName { name: String, reason: &'static str },
    #[error("no AWS region configured (set AWS_REGION or a profile's region)")]
    NoRegion,
    #[error("cannot describe DynamoDB table {table}")]
    DescribeTable {
        table: String,
        #[source]
        source: Box<SdkError<DescribeTableError, HttpResponse>>,
    },
    #[error("cannot create DynamoDB table {table}")]
    CreateTable {
        table: String,
        #[source]
        source: Box<SdkError<CreateTableError, HttpResponse>>,
    },
    #[error("cannot build the CreateTable request for {table}")]
    BuildRequest {
        table: String,
        #[source]
        source: BuildError,
    },
    #[error("DynamoDB table {table} is still {status} after {waited:?}")]
    TableNotActive {
        table: String,
        status: String,
        waited: Duration,
    },
    #[error("DynamoDB table {table} has key schema {found}, expected pk (HASH, S) and day (RANGE, S)")]
    KeySchemaMismatch { table: String, found: String },
    #[error(
        "item {pk} on {day} could reach {estimated_size} bytes, over DynamoDB's 1 KB write unit: \
         shorten the key, the dimensions or the source name"
    )]
    ItemTooLarge {
        pk: String,
        day: String,
        estimated_size: usize,
    },
    #[error("stored item {pk:?} on {day:?} cannot be read: {reason}")]
    CorruptItem { pk: String, day: String, reason: String },
}

/// The DynamoDB [`Store`]. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: Arc<str>,
    options: DynamoOptions,
}

impl DynamoStore {
    /// From the standard AWS environment (region, credentials, AWS_ENDPOINT_URL honoured by aws-config).
    pub async fn connect(table: &str, options: DynamoOptions) -> Result<DynamoStore, Error> {
        check_table_name(table)?;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        if config.region().is_none() {
            return Err(Error::NoRegion);
        }
        DynamoStore::with_client(aws_sdk_dynamodb::Client::new(&config), table, options)
    }

    /// From a ready client (the Lambda builds its SDK config once).
    ///
    /// The store keeps the client's endpoint, region, credentials and HTTP client, but sets its
    /// own retry and timeout configuration: SDK retries off (the store retries, see [`retry`]),
    /// [`CONNECT_TIMEOUT`] and [`ATTEMPT_TIMEOUT`].
    pub fn with_client(
        client: aws_sdk_dynamodb::Client,
        table: &str,
        options: DynamoOptions,
    ) -> Result<DynamoStore, Error> {
        check_table_name(table)?;
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            // Small JSON bodies sent and read at once: the per-request throughput monitor costs
            // CPU and cannot trigger before ATTEMPT_TIMEOUT does.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .build();
        Ok(DynamoStore {
            client: aws_sdk_dynamodb::Client::from_conf(config),
            table: Arc::from(table),
            options,
        })
    }

    /// Creates the table if missing (on-demand, key schema from key_schema.rs) and waits until ACTIVE.
    /// An existing table must have that key schema.
    pub async fn ensure_table(&self) -> Result<(), Error> {
        match self.describe_table().await? {
            Some(existing) => self.check_key_schema(&existing)?,
            None => self.create_table().await?,
        }
        self.wait_until_active().await
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn options(&self) -> &DynamoOptions {
        &self.options
    }

    async fn describe_table(&self) -> Result<Option<DescribeTableOutput>, Error> {
        match self.client.describe_table().table_name(&*self.table).send().await {
            Ok(output) => Ok(Some(output)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(source) => Err(Error::DescribeTable {
                table: self.table.to_string(),
                source: Box::new(source),
            }),
        }
    }

    fn check_key_schema(&self, existing: &DescribeTableOutput) -> Result<(), Error> {
        let Some(table) = existing.table() else {
            return Ok(());
        };
        let types: HashMap<&str, &ScalarAttributeType> = table
            .attribute_definitions()
            .iter()
            .map(|d| (d.attribute_name(), d.attribute_type()))
            .collect();
        let found: Vec<(&str, &KeyType, Option<&&ScalarAttributeType>)> = table
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type(), types.get(k.attribute_name())))
            .collect();
        let s = ScalarAttributeType::S;
        let expected = [
            (PARTITION_KEY, &KeyType::Hash, Some(&&s)),
            (SORT_KEY, &KeyType::Range, Some(&&s)),
        ];
        if found.as_slice() == expected.as_slice() {
            Ok(())
        } else {
            Err(Error::KeySchemaMismatch {
                table: self.table.to_string(),
                found: format!("{found:?}"),
            })
        }
    }

    async fn create_table(&self) -> Result<(), Error> {
        let build_error = |source| Error::BuildRequest {
            table: self.table.to_string(),
            source,
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(build_error)
        };
        let created = self
            .client
            .create_table()
            .table_name(&*self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(PARTITION_KEY)?)
            .attribute_definitions(attribute(SORT_KEY)?)
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(SORT_KEY, KeyType::Range)?)
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(table = %self.table, "created DynamoDB table");
                Ok(())
            }
            // Another process created it meanwhile.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => Ok(()),
            Err(source) => Err(Error::CreateTable {
                table: self.table.to_string(),
                source: Box::new(source),
            }),
        }
    }

    async fn wait_until_active(&self) -> Result<(), Error> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let status = self
                .describe_table()
                .await?
                .and_then(|o| o.table().and_then(|t| t.table_status().cloned()));
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            if started.elapsed() >= TABLE_ACTIVE_TIMEOUT {
                return Err(Error::TableNotActive {
                    table: self.table.to_string(),
                    status: status.map_or_else(|| "missing".to_string(), |s| s.as_str().to_string()),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// Runs one request with the store's retry policy. `what` names the request for messages.
    async fn with_retries<T, E, F, Fut>(&self, what: impl Fn() -> String, mut call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let max_attempts = self.options.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let error = match call().await {
                Ok(output) => return Ok(output),
                Err(error) => error,
            };
            let failure = Failure::of(&error);
            if !failure.is_retryable() {
                let message = format!("{} failed: {}", what(), failure.describe());
                return Err(StoreError::permanent(message, error));
            }
            if attempt >= max_attempts {
                let message = format!(
                    "{} failed after {attempt} attempts, last: {}",
                    what(),
                    failure.describe()
                );
                return Err(StoreError::retryable(message, error));
            }
            let delay = retry::backoff(self.options.initial_backoff, attempt, fastrand::f64());
            tracing::debug!(request = %what(), attempt, failure = %failure.describe(), ?delay, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn update_item(&self, update: &ItemUpdate) -> Result<(), StoreError> {
        let what = || format!("UpdateItem of {} on {} in table {}", update.pk, update.day, self.table);
        self.with_retries(what, || {
            self.client
                .update_item()
                .table_name(&*self.table)
                .set_key(Some(update.key()))
                .update_expression(update.update_expression())
                .set_expression_attribute_names(Some(update.names()))
                .set_expression_attribute_values(Some(update.values()))
                .send()
        })
        .await
        .map(|_| ())
    }

    /// Every update, [`DynamoOptions::concurrency`] at a time, from one writer task per runtime
    /// worker thread, each taking the next update from a shared cursor and keeping its share of
    /// the concurrency in flight. The SDK's work (building, signing, parsing) so spreads over the
    /// workers, and completions wake a writer on a worker, not the thread polling this future
    /// (under `block_on`, a thread outside the workers). Dropping the JoinSet (the first failure,
    /// or this future dropped) aborts the writers and the calls they have in flight.
    async fn update_all(&self, updates: Vec<ItemUpdate>) -> Result<(), StoreError> {
        let concurrency = self.options.concurrency.max(1);
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        let writers = workers.clamp(1, concurrency);
        let updates: Arc<[ItemUpdate]> = updates.into();
        let next = Arc::new(AtomicUsize::new(0));
        let mut running = tokio::task::JoinSet::new();
        for w in 0..writers {
            // Shares as even as can be: they add up to `concurrency`.
            let share = concurrency / writers + usize::from(w < concurrency % writers);
            let (store, updates, next) = (self.clone(), Arc::clone(&updates), Arc::clone(&next));
            running.spawn(async move {
                let claimed = std::iter::from_fn(|| updates.get(next.fetch_add(1, Ordering::Relaxed)));
                futures::stream::iter(claimed.map(Ok))
                    .try_for_each_concurrent(share, |update| store.update_item(update))
                    .await
            });
        }
        while let Some(done) = running.join_next().await {
            finished(done)?;
        }
        Ok(())
    }

    /// A line's days: one Query on its partition, the days as a key condition.
    async fn query_line(&self, query: &ItemQuery, key: &str) -> Result<Vec<StoredItem>, StoreError> {
        let pk = key_schema::partition_key(query.tenant.as_str(), query.kind.as_str(), key);
        let mut condition = String::from("#pk = :pk");
        let mut names = HashMap::from([("#pk".to_string(), PARTITION_KEY.to_string())]);
        let mut values = HashMap::from([(":pk".to_string(), AttributeValue::S(pk.clone()))]);
        condition.push_str(&day_condition(query, &mut names, &mut values));
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let what = || format!("Query of {pk} in table {}", self.table);
            let page = self
                .with_retries(what, || {
                    self.client
                        .query()
                        .table_name(&*self.table)
                        .key_condition_expression(&condition)
                        .set_expression_attribute_names(Some(names.clone()))
                        .set_expression_attribute_values(Some(values.clone()))
                        .consistent_read(true)
                        .set_exclusive_start_key(start.clone())
                        .send()
                })
                .await?;
            for attributes in page.items() {
                found.push(read_item(attributes)?);
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        Ok(found)
    }

    /// Every line of a tenant and kind: a Scan of the whole table, filtered.
    async fn scan_kind(&self, query: &ItemQuery) -> Result<Vec<StoredItem>, StoreError> {
        // On the partition key, so that it finds items with or without the `tenant` and `kind`
        // attributes earlier versions wrote.
        let mut filter = String::from("begins_with(#pk, :prefix)");
        let prefix = key_schema::partition_key(query.tenant.as_str(), query.kind.as_str(), "");
        let mut values = HashMap::from([(":prefix".to_string(), AttributeValue::S(prefix))]);
        let mut names = HashMap::from([("#pk".to_string(), PARTITION_KEY.to_string())]);
        filter.push_str(&day_condition(query, &mut names, &mut values));
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let what = || {
                format!(
                    "Scan for {} {} in table {}",
                    query.tenant,
                    query.kind.as_str(),
                    self.table
                )
            };
            let page = self
                .with_retries(what, || {
                    self.client
                        .scan()
                        .table_name(&*self.table)
                        .filter_expression(&filter)
                        .set_expression_attribute_names(Some(names.clone()))
                        .set_expression_attribute_values(Some(values.clone()))
                        .consistent_read(true)
                        .set_exclusive_start_key(start.clone())
                        .send()
                })
                .await?;
            for attributes in page.items() {
                let stored = read_item(attributes)?;
                // The prefix ends with the kind's separator, but check the parts anyway.
                if stored.tenant == query.tenant.as_str() && stored.kind == query.kind {
                    found.push(stored);
                }
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        found.sort_by(|a, b| (&a.key, a.day).cmp(&(&b.key, b.day)));
        Ok(found)
    }
}

/// ` AND <day range>` for the query's bounds (empty without bounds), adding the names and values
/// it uses (DynamoDB refuses names and values an expression does not use).
fn day_condition(
    query: &ItemQuery,
    names: &mut HashMap<String, String>,
    values: &mut HashMap<String, AttributeValue>,
) -> String {
    if query.from.is_some() || query.to.is_some() {
        names.insert("#day".to_string(), SORT_KEY.to_string());
    }
    let mut bound = |name: &str, day| {
        values.insert(name.to_string(), AttributeValue::S(key_schema::sort_key(day)));
    };
    match (query.from, query.to) {
        (Some(from), Some(to)) => {
            bound(":from", from);
            bound(":to", to);
            " AND #day BETWEEN :from AND :to".into()
        }
        (Some(from), None) => {
            bound(":from", from);
            " AND #day >= :from".into()
        }
        (None, Some(to)) => {
            bound(":to", to);
            " AND #day <= :to".into()
        }
        (None, None) => String::new(),
    }
}

/// The outcome of a writer task; a panic in it goes on in the caller.
fn finished(done: Result<Result<(), StoreError>, tokio::task::JoinError>) -> Result<(), StoreError> {
    match done {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StoreError::retryable("an UpdateItem task was cancelled", e)),
    }
}

fn read_item(attributes: &HashMap<String, AttributeValue>) -> Result<StoredItem, StoreError> {
    item::stored_item(attributes).map_err(|e| StoreError::permanent("cannot read the DynamoDB table", e))
}

/// 3 to 255 characters among `A-Z a-z 0-9 _ . -`, as DynamoDB requires.
fn check_table_name(name: &str) -> Result<(), Error> {
    let reason = if !(3..=255).contains(&name.len()) {
        Some("it must be 3 to 255 characters long")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        Some("use only ASCII letters, digits, '_', '.' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::TableName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

#[async_trait]
impl Store for DynamoStore {
    /// Checks every item's size first (a refused item writes nothing of the batch), then sends
    /// one UpdateItem per item, [`DynamoOptions::concurrency`] at a time. The first failure
    /// that outlives its retries ends the upsert; items already written stay written.
    async fn upsert(&self, origin: &ImportOrigin, items: &[DailyItem<'_>]) -> Result<(), StoreError> {
        let updates = items
            .iter()
            .map(|i| item::item_update(origin, i))
            .collect::<Result<Vec<ItemUpdate>, Error>>()
            .map_err(|e| StoreError::permanent(format!("refusing to write to table {}", self.table), e))?;
        self.update_all(updates).await
    }

    async fn query(&self, query: &ItemQuery) -> Result<Vec<StoredItem>, StoreError> {
        if let (Some(from), Some(to)) = (query.from, query.to) {
            if from > to {
                return Ok(Vec::new());
            }
        }
        match &query.key {
            Some(key) => self.query_line(query, key).await,
            None => self.scan_kind(query).await,
        }
    }

    /// Consecutive items of one day belong to different lines, so to different partitions.
    fn preferred_order(&self) -> ItemOrder {
        ItemOrder::ByDay
    }

    fn batch_size(&self) -> usize {
        512
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn table_names_follow_dynamodb_rules() {
        for good in ["abc", "reimport-items", "a.b_c-D9", &"x".repeat(255)] {
            assert!(check_table_name(good).is_ok(), "{good}");
        }
        for bad in ["", "ab", "with space", "slash/", "é-accent", &"x".repeat(256)] {
            let err = check_table_name(bad).unwrap_err();
            assert!(matches!(err, Error::TableName { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn day_conditions_cover_each_bound() {
        let d = |day| chrono::NaiveDate::from_ymd_opt(2023, 3, day);
        let query = |from, to| ItemQuery {
            tenant: reimport_core::Tenant::new("acme").unwrap(),
            kind: reimport_core::Kind::Website,
            key: None,
            from,
            to,
        };
        let (mut names, mut values) = (HashMap::new(), HashMap::new());
        assert_eq!(day_condition(&query(None, None), &mut names, &mut values), "");
        assert!(names.is_empty() && values.is_empty(), "no unused names or values");
        assert_eq!(
            day_condition(&query(d(1), d(3)), &mut names, &mut values),
            " AND #day BETWEEN :from AND :to"
        );
        assert_eq!(names["#day"], "day");
        assert_eq!(values[":from"], AttributeValue::S("2023-03-01".into()));
        assert_eq!(values[":to"], AttributeValue::S("2023-03-03".into()));
        let (mut names, mut values) = (HashMap::new(), HashMap::new());
        assert_eq!(
            day_condition(&query(d(2), None), &mut names, &mut values),
            " AND #day >= :from"
        );
        assert_eq!(values.len(), 1);
        let (mut names, mut values) = (HashMap::new(), HashMap::new());
        assert_eq!(
            day_condition(&query(None, d(2)), &mut names, &mut values),
            " AND #day <= :to"
        );
        assert_eq!(values.len(), 1);
    }
}
