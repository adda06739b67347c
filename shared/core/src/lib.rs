//! The reimport import core.
//!
//! A user drops a CSV export and a JSON import profile; the core checks the profile, decodes
//! the file (UTF-8, UTF-16, Windows-1252), reads every cell with the number rules of
//! [`number`], merges lines whose keys collide once accents are removed, and only when the
//! whole file is good generates daily items: each period total spread over its days, the
//! remainder on the first day. Stores upsert those items behind the [`Store`] trait.
//!
//! The core does no I/O beyond `Read`, reads no environment, has no clock and knows no cloud:
//! the binaries (the `reimport` CLI and daemon, the `s3-import` Lambda) bring those.

pub mod decode;
mod error;
pub mod import;
pub mod kind;
mod lines;
pub mod number;
pub mod profile;
mod records;
pub mod report;
pub mod schema;
pub mod store;
mod text;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use decode::TextEncoding;
pub use error::{CellIssue, Error, InvalidFile};
pub use import::{read_file, DailyItems, MergedKey, ReadOptions, ValidatedFile, WrittenTotals};
pub use kind::{Dimension, Kind, Metric, MetricUnit};
pub use number::{spread_over_days, DecimalSeparator, Quantity};
pub use profile::{ImportProfile, Period, ProfileLimits};
pub use report::{ImportReport, ImportStatus};
pub use store::{
    DailyItem, DimensionValues, ImportOrigin, ItemOrder, ItemQuery, MetricValues, Store, StoreError, StoredItem, Tenant,
};
