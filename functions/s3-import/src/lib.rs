//! The `s3-import` Lambda: an object lands under `incoming/<tenant>/`, the function reads the
//! CSV and its JSON profile from S3, has the import core validate the whole file, upserts the
//! daily items into DynamoDB and leaves a JSON report under `reports/`.
//!
//! Everything but wiring lives here so it can be tested without Lambda: [`event`] reads any
//! payload shape, [`key`] decodes keys, [`layout`] maps keys to tenant, pair and report,
//! [`config`] checks the environment, [`handler`] runs imports. `main.rs` only builds tracing
//! and the clients and hands [`handler::S3Import::handle`] to the runtime.
//!
//! Failure policy: a bad file is data (an `invalid` report, nothing written, success, because
//! retrying cannot fix it); an infrastructure failure (S3, DynamoDB after the store's own
//! retries) fails the invocation so Lambda retries and the on-failure destination sees it.
//! Upserts are idempotent, so a retried or duplicated event writes the same values again.
//!
//! # Known problems
//!
//! - The CSV and its profile usually arrive as two events, often in two concurrent invocations:
//!   when both see the pair complete, the pair is imported twice. Harmless (same values), but
//!   twice the writes.
//! - Replacing only the profile re-imports the pair with the new profile; a profile edited
//!   while its CSV is being read is read once, at the start, and the report says which CSV
//!   version was read, not which profile version.
//! - EventBridge keys are used as they come, not form-decoded (unlike notification keys).
//! - Without `s3:ListBucket` on the bucket, S3 answers 403 instead of 404 for a missing file,
//!   and "waiting for the other file" becomes a failed invocation.
//! - An import that runs short of time continues through checkpoints ([`checkpoint`]). A file
//!   replaced while a part is being written is only noticed by the next part: until then the
//!   old part and the new upload's import may write the same items concurrently, and the last
//!   write wins. The refusal report of the stale chain goes to the same report key as the new
//!   upload's, so whichever finishes last is the one left.
//! - Memory grows with the number of distinct lines (the core keeps them to merge keys and
//!   spread totals), not with the size of the file, which is streamed.

pub mod checkpoint;
pub mod config;
pub mod event;
pub mod handler;
pub mod key;
pub mod layout;
pub mod report;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::delete_object::DeleteObjectError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::operation::put_object::PutObjectError;

pub use config::Config;
pub use handler::{InvocationSummary, S3Import};

/// Everything that can go wrong in the function. Input problems of a dropped file are not
/// errors: they end up in its report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("environment variable {name} is required")]
    MissingEnv { name: &'static str },

    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    InvalidEnv {
        name: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error("object key {key:?} is not encoded as S3 encodes keys (byte {position}): {reason}")]
    KeyEncoding {
        key: String,
        position: usize,
        reason: &'static str,
    },

    #[error("unexpected event: {what}")]
    EventShape { what: String },

    #[error("{envelope} {id} does not hold JSON")]
    EnvelopeJson {
        envelope: &'static str,
        id: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("HeadObject s3://{bucket}/{key} failed")]
    HeadObject {
        bucket: String,
        key: String,
        #[source]
        source: Box<SdkError<HeadObjectError>>,
    },

    #[error("GetObject s3://{bucket}/{key} failed")]
    GetObject {
        bucket: String,
        key: String,
        #[source]
        source: Box<SdkError<GetObjectError>>,
    },

    #[error("reading s3://{bucket}/{key} failed")]
    ReadObject {
        bucket: String,
        key: String,
        #[source]
        source: std::io::Error,
    },

    #[error("PutObject s3://{bucket}/{key} failed")]
    PutObject {
        bucket: String,
        key: String,
        #[source]
        source: Box<SdkError<PutObjectError>>,
    },

    #[error("DeleteObject s3://{bucket}/{key} failed")]
    DeleteObject {
        bucket: String,
        key: String,
        #[source]
        source: Box<SdkError<DeleteObjectError>>,
    },

    #[error("the DynamoDB store cannot be set up")]
    Store(#[source] reimport_store_dynamodb::Error),

    #[error("importing s3://{bucket}/{key} failed")]
    Import {
        bucket: String,
        key: String,
        #[source]
        source: reimport_core::Error,
    },

    #[error("the task reading s3://{bucket}/{key} stopped")]
    ReadTask {
        bucket: String,
        key: String,
        #[source]
        source: tokio::task::JoinError,
    },

    #[error("the report for {key} cannot be serialized")]
    ReportJson {
        key: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{failed} of {total} event records failed; the first")]
    RecordsFailed {
        failed: usize,
        total: usize,
        #[source]
        first: Box<Error>,
    },
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "S3ImportError".to_string(),
            error_message: reimport_core::report::error_chain(&error),
        }
    }
}
