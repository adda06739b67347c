//! The seam between the import core and where daily items live. Every implementation passes the
//! same conformance suite (`conformance`, behind the feature of that name), so the SQLite and
//! DynamoDB stores cannot drift apart in semantics.

use std::collections::BTreeMap;
use std::error::Error as StdError;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Serialize;

use crate::error::Error;
use crate::kind::{Dimension, Kind, Metric};
use crate::number::Quantity;

/// Who a line belongs to. Comes from where a file was dropped, never from its content.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Tenant(String);

impl Tenant {
    pub const MAX_LEN: usize = 64;

    /// 1 to 64 ASCII letters, digits, `.`, `_` or `-`, not starting with `.`.
    pub fn new(name: &str) -> Result<Tenant, Error> {
        let reason = if name.is_empty() || name.len() > Self::MAX_LEN {
            Some("it must be 1 to 64 characters long")
        } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            Some("use only ASCII letters, digits, '.', '_' and '-'")
        } else if name.starts_with('.') {
            Some("it must not start with '.'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::Tenant {
                name: name.to_string(),
                reason,
            }),
            None => Ok(Tenant(name.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a batch of items comes from; stores record the source and time on every item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOrigin {
    pub tenant: Tenant,
    /// The file or object the items were read from.
    pub source: String,
    /// When the import ran, RFC 3339 (the caller's clock: the core has none).
    pub imported_at: String,
}

/// The values of a fixed set of targets, indexed by the target's catalog position: a value per
/// target (zero where absent) and a bit per target present, two thirds of the size of an
/// `Option` per target (a daily item is copied a few times on its way to a store).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricValues {
    values: [Quantity; Metric::COUNT],
    present: u16,
}

const _: () = assert!(Metric::COUNT <= 16, "one bit of MetricValues::present per metric");

impl MetricValues {
    pub fn get(&self, metric: Metric) -> Option<Quantity> {
        let i = metric.index();
        (self.present & (1 << i) != 0).then(|| self.values[i])
    }

    pub fn set(&mut self, metric: Metric, value: Quantity) {
        let i = metric.index();
        self.values[i] = value;
        self.present |= 1 << i;
    }

    /// The metrics present, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = (Metric, Quantity)> + '_ {
        Metric::ALL.iter().filter_map(|&m| self.get(m).map(|v| (m, v)))
    }

    pub fn is_empty(&self) -> bool {
        self.present == 0
    }
}

/// Values set in order: a metric given twice keeps the last.
impl FromIterator<(Metric, Quantity)> for MetricValues {
    fn from_iter<I: IntoIterator<Item = (Metric, Quantity)>>(pairs: I) -> MetricValues {
        let mut values = MetricValues::default();
        for (metric, value) in pairs {
            values.set(metric, value);
        }
        values
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DimensionValues<'a>([Option<&'a str>; Dimension::COUNT]);

impl<'a> DimensionValues<'a> {
    pub fn get(&self, dimension: Dimension) -> Option<&'a str> {
        self.0[dimension.index()]
    }

    pub fn set(&mut self, dimension: Dimension, value: &'a str) {
        self.0[dimension.index()] = Some(value);
    }

    /// The dimensions present, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = (Dimension, &'a str)> + '_ {
        Dimension::ALL.iter().filter_map(|&d| self.get(d).map(|v| (d, v)))
    }
}

/// One line on one day: the unit every store upserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DailyItem<'a> {
    pub kind: Kind,
    /// The value of the kind's key dimension.
    pub key: &'a str,
    pub day: NaiveDate,
    /// Every dimension of the line, the key included.
    pub dimensions: DimensionValues<'a>,
    /// Only the metrics the file sent: the others stay as stored.
    pub metrics: MetricValues,
}

/// The order in which a store prefers items: by line (locality of a B-tree) or by day
/// (consecutive writes land on different partitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemOrder {
    ByLine,
    ByDay,
}

/// What `reimport query` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemQuery {
    pub tenant: Tenant,
    pub kind: Kind,
    pub key: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl ItemQuery {
    pub fn includes_day(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| day >= f) && self.to.is_none_or(|t| day <= t)
    }
}

/// One stored item, as `query --format json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredItem {
    pub tenant: String,
    pub kind: Kind,
    pub key: String,
    #[serde(rename = "date")]
    pub day: NaiveDate,
    pub dimensions: BTreeMap<Dimension, String>,
    pub metrics: BTreeMap<Metric, Quantity>,
}

/// A store failure, told apart by whether retrying may help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, dropped connections, 5xx: the same call may succeed later.
    #[error("{message} (retryable)")]
    Retryable {
        message: String,
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
    /// Anything retrying cannot fix: a missing table, a refused request, corrupt data.
    #[error("{message}")]
    Permanent {
        message: String,
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

impl StoreError {
    pub fn retryable(message: impl Into<String>, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Retryable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub fn permanent(message: impl Into<String>, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Permanent {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub fn permanent_msg(message: impl Into<String>) -> Self {
        StoreError::Permanent {
            message: message.into(),
            source: None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Retryable { .. })
    }
}

/// Where daily items live.
///
/// `upsert` has the product's semantics: for each item, every metric it carries replaces the
/// stored one, metrics it does not carry stay, dimensions are set, and the source and import
/// time are recorded. Upserting the same batch twice leaves the store as upserting it once.
/// A batch that fails may have been partly applied; repeating it is always safe.
#[async_trait]
pub trait Store: Send + Sync {
    async fn upsert(&self, origin: &ImportOrigin, items: &[DailyItem<'_>]) -> Result<(), StoreError>;

    /// Items of one tenant and kind, ordered by key then day.
    async fn query(&self, query: &ItemQuery) -> Result<Vec<StoredItem>, StoreError>;

    fn preferred_order(&self) -> ItemOrder {
        ItemOrder::ByLine
    }

    /// How many items a call to `upsert` should carry.
    fn batch_size(&self) -> usize {
        1000
    }
}
