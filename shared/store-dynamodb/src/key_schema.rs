//! The table's key schema: the one definition in code. infra/template.yaml declares the same
//! attributes; a test (`tests/template_key_schema.rs`) fails when the two drift apart.
//!
//! One item per (tenant, kind, key, day): the partition key `pk` is `tenant#kind#key`, the sort
//! key `day` is `YYYY-MM-DD`. One import's writes spread over as many partitions as it has
//! distinct lines; a line's days are one Query away.

/// Partition key attribute name (type S): `tenant#kind#key`.
pub const PARTITION_KEY: &str = "pk";
/// Sort key attribute name (type S): the day, `YYYY-MM-DD`.
pub const SORT_KEY: &str = "day";
