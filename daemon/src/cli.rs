use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::store_url::StoreUrl;

/// Re-import aggregated web-analytics data: validate a CSV export against its JSON import
/// profile, spread each period total over its days, and upsert daily items.
#[derive(Parser, Debug)]
#[command(name = "reimport", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate FILE.csv with its profile and upsert its daily items into the store.
    Import(ImportArgs),
    /// The same checks as import; writes nothing.
    Validate(ValidateArgs),
    /// Print stored daily items.
    ///
    /// With --key, reads one line's days (on DynamoDB, a Query). Without --key, lists every line
    /// of the tenant and kind (on DynamoDB, a Scan of the whole table: slow and costly on big tables).
    Query(QueryArgs),
    /// List the kinds, their key dimension, optional dimensions and metrics.
    Kinds(KindsArgs),
    /// Print the JSON Schema of import profiles (editors can validate profiles with it).
    Schema,
    /// Create the store if missing (DynamoDB: an on-demand table, waiting until it is ACTIVE).
    Setup(SetupArgs),
    /// Watch a drop folder and import every CSV + JSON profile pair dropped into it.
    Watch(crate::watch::WatchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Where daily items live: sqlite:PATH or dynamodb:TABLE.
    #[arg(long, env = "REIMPORT_STORE", default_value = "sqlite:reimport.db")]
    pub store: StoreUrl,
}

#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// The CSV export.
    pub file: PathBuf,
    /// The import profile; default: FILE.json beside FILE.csv (same stem).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// The longest period a profile may cover, in days.
    #[arg(long, default_value_t = 366, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub max_period_days: u32,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub input: ProfileArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Whose lines these are.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Validate and report what would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the import report as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: ProfileArgs,
    /// Also write the report as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[arg(long)]
    pub kind: String,
    /// First day, YYYY-MM-DD, included.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last day, YYYY-MM-DD, included.
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// One line's key (after accents were removed, as stored).
    #[arg(long)]
    pub key: Option<String>,
    #[arg(long, default_value = "default")]
    pub tenant: String,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct KindsArgs {
    #[arg(long, value_enum, default_value_t = KindsFormat::Text)]
    pub format: KindsFormat,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindsFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct SetupArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}
