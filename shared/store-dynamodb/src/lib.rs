//! The DynamoDB store: the only crate that knows `aws-sdk-dynamodb`.
//!
//! One item per (tenant, kind, key, day), see [`key_schema`]. Work in progress.

pub mod key_schema;

use std::time::Duration;

use async_trait::async_trait;
use reimport_core::{DailyItem, ImportOrigin, ItemOrder, ItemQuery, Store, StoreError, StoredItem};

/// How the store writes: concurrency and its own retry policy.
#[derive(Clone, Debug)]
pub struct DynamoOptions {
    /// In-flight UpdateItem limit.
    pub concurrency: usize,
    /// Attempts per item (first try included) before the upsert fails as retryable.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with jitter.
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid DynamoDB table name {name:?}: {reason}")]
    TableName { name: String, reason: &'static str },
}

#[derive(Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    options: DynamoOptions,
}

impl DynamoStore {
    /// From the standard AWS environment (region, credentials, AWS_ENDPOINT_URL honoured by aws-config).
    pub async fn connect(table: &str, options: DynamoOptions) -> Result<DynamoStore, Error> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        DynamoStore::with_client(aws_sdk_dynamodb::Client::new(&config), table, options)
    }

    /// From a ready client (the Lambda builds its SDK config once).
    pub fn with_client(
        client: aws_sdk_dynamodb::Client,
        table: &str,
        options: DynamoOptions,
    ) -> Result<DynamoStore, Error> {
        Ok(DynamoStore {
            client,
            table: table.to_string(),
            options,
        })
    }

    /// Creates the table if missing (on-demand, key schema from key_schema.rs) and waits until ACTIVE.
    pub async fn ensure_table(&self) -> Result<(), Error> {
        let _ = (&self.client, &self.options);
        Ok(())
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn upsert(&self, _origin: &ImportOrigin, _items: &[DailyItem<'_>]) -> Result<(), StoreError> {
        Err(StoreError::permanent_msg("DynamoStore::upsert is not implemented yet"))
    }

    async fn query(&self, _query: &ItemQuery) -> Result<Vec<StoredItem>, StoreError> {
        Err(StoreError::permanent_msg("DynamoStore::query is not implemented yet"))
    }

    fn preferred_order(&self) -> ItemOrder {
        ItemOrder::ByDay
    }

    fn batch_size(&self) -> usize {
        512
    }
}
