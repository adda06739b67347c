//! `--store` URLs: `sqlite:PATH` (the embedded default) or `dynamodb:TABLE` (region,
//! credentials and endpoint from the standard AWS environment, e.g. AWS_ENDPOINT_URL).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use reimport_core::Store;
use reimport_store_dynamodb::{DynamoOptions, DynamoStore};
use reimport_store_sqlite::SqliteStore;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    DynamoDb(String),
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => Ok(StoreUrl::Sqlite(PathBuf::from(path))),
            Some(("dynamodb", table)) if !table.is_empty() => Ok(StoreUrl::DynamoDb(table.to_string())),
            _ => Err(format!("unknown store {s:?}: use sqlite:PATH or dynamodb:TABLE")),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            StoreUrl::DynamoDb(t) => write!(f, "dynamodb:{t}"),
        }
    }
}

impl StoreUrl {
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            StoreUrl::Sqlite(path) => {
                Arc::new(SqliteStore::open(path).with_context(|| format!("opening the store {self}"))?)
            }
            StoreUrl::DynamoDb(table) => Arc::new(
                DynamoStore::connect(table, dynamo_options()?)
                    .await
                    .with_context(|| format!("opening the store {self}"))?,
            ),
        })
    }

    /// Creates the store if missing.
    pub async fn setup(&self) -> anyhow::Result<()> {
        match self {
            StoreUrl::Sqlite(path) => {
                SqliteStore::open(path).with_context(|| format!("creating the store {self}"))?;
            }
            StoreUrl::DynamoDb(table) => {
                let store = DynamoStore::connect(table, dynamo_options()?)
                    .await
                    .with_context(|| format!("opening {self}"))?;
                store
                    .ensure_table()
                    .await
                    .with_context(|| format!("creating the table of {self}"))?;
            }
        }
        Ok(())
    }
}

/// In-flight writes from REIMPORT_WRITE_CONCURRENCY, else the store's default.
fn dynamo_options() -> anyhow::Result<DynamoOptions> {
    let mut options = DynamoOptions::default();
    if let Ok(text) = std::env::var("REIMPORT_WRITE_CONCURRENCY") {
        options.concurrency = text
            .parse::<usize>()
            .ok()
            .filter(|&n| (1..=4096).contains(&n))
            .with_context(|| format!("REIMPORT_WRITE_CONCURRENCY={text:?} is not a number from 1 to 4096"))?;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_urls() {
        assert_eq!("sqlite:a/b.db".parse(), Ok(StoreUrl::Sqlite("a/b.db".into())));
        assert_eq!("dynamodb:reimport".parse(), Ok(StoreUrl::DynamoDb("reimport".into())));
        assert!("postgres:x".parse::<StoreUrl>().is_err());
        assert!("sqlite:".parse::<StoreUrl>().is_err());
        assert!("reimport.db".parse::<StoreUrl>().is_err());
    }
}
