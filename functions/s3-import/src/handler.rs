//! One invocation: every item of the payload is handled, one after the other, and the
//! invocation fails only after all were tried if any hit an infrastructure failure.
//!
//! The CSV is streamed from S3 into the core's blocking reader through a [`SyncIoBridge`] on a
//! blocking thread, so memory does not grow with the size of the object; the profile is small
//! and read whole, up to [`MAX_PROFILE_BYTES`].
//!
//! Daily items are written in line order, a batch of whole lines at a time. When the
//! invocation's deadline minus the margin (`CONTINUE_MARGIN_SECONDS`) has passed, the import
//! stops after the batch in flight and leaves a checkpoint under `continuations/` (see
//! [`crate::checkpoint`]); its S3 event starts the next invocation, which reads and validates
//! the same upload again, checks it is the same, and writes from the checkpoint's line on.

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::LambdaEvent;
use reimport_core::import::{LinesFailed, LinesWritten};
use reimport_core::report::error_chain;
use reimport_core::{
    read_file, ImportOrigin, ImportProfile, ImportReport, ImportStatus, ProfileLimits, ReadOptions, Store, Tenant,
    ValidatedFile, WrittenTotals,
};
use reimport_store_dynamodb::{DynamoOptions, DynamoStore};
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio_util::io::SyncIoBridge;
use tracing::{error, info, warn};

use crate::checkpoint::{Checkpoint, CheckpointKey, ObjectVersion, CONTINUATION_PREFIX, FORMAT, MAX_CHECKPOINT_BYTES};
use crate::config::Config;
use crate::event::{classify, EventItem, ObjectEvent};
use crate::layout::DroppedPair;
use crate::report::ObjectReport;
use crate::Error;

/// Profiles are a few hundred bytes; anything past this is not a profile.
pub const MAX_PROFILE_BYTES: u64 = 1024 * 1024;

/// What an invocation did, returned as the function's response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InvocationSummary {
    /// CSV keys imported.
    pub imported: Vec<String>,
    /// CSV keys refused; their reports say why.
    pub invalid: Vec<String>,
    /// CSV keys whose import ran short of time and continues in another invocation.
    pub continued: Vec<String>,
    /// Keys of files still awaited.
    pub waiting: Vec<String>,
    /// Events about other keys or other operations.
    pub skipped: usize,
    pub test_events: usize,
    pub unrecognized: usize,
}

/// What happened to one object event.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Imported { csv_key: String },
    Invalid { csv_key: String },
    Continued { csv_key: String },
    Waiting { missing: String },
    Skipped,
}

/// The function's state: built once per cold start, borrowed by every invocation.
pub struct S3Import {
    config: Config,
    s3: aws_sdk_s3::Client,
    store: Box<dyn Store>,
}

impl S3Import {
    pub fn new(config: Config, s3: aws_sdk_s3::Client, store: Box<dyn Store>) -> S3Import {
        S3Import { config, s3, store }
    }

    /// Reads the environment, loads the SDK configuration once and builds both clients.
    pub async fn from_env() -> Result<S3Import, Error> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        // Local endpoints (moto, MinIO, LocalStack) do not serve virtual-hosted buckets.
        let custom_endpoint = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(custom_endpoint)
            .build();
        let store = DynamoStore::with_client(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table_name,
            DynamoOptions {
                concurrency: config.write_concurrency,
                ..DynamoOptions::default()
            },
        )
        .map_err(Error::Store)?;
        info!(
            table = %config.table_name,
            report_prefix = %config.report_prefix,
            write_concurrency = config.write_concurrency,
            max_period_days = config.max_period_days,
            "s3-import ready"
        );
        Ok(S3Import::new(
            config,
            aws_sdk_s3::Client::from_conf(s3_config),
            Box::new(store),
        ))
    }

    /// The Lambda handler.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<InvocationSummary, Error> {
        let stop_at = (event.context.deadline > 0).then(|| {
            let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(event.context.deadline);
            let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
            let margin = self.config.margin_for(left);
            info!(
                time_left_ms = left.as_millis() as u64,
                margin_ms = margin.as_millis() as u64,
                "invocation started"
            );
            Instant::now() + left.saturating_sub(margin)
        });
        self.handle_payload_until(&event.payload, stop_at).await
    }

    /// Handles every item of `payload` with no deadline; fails after the last one if any failed.
    pub async fn handle_payload(&self, payload: &Value) -> Result<InvocationSummary, Error> {
        self.handle_payload_until(payload, None).await
    }

    /// Handles every item of `payload`; an import still writing at `stop_at` stops after its
    /// batch and continues in another invocation. Fails after the last item if any failed.
    pub async fn handle_payload_until(
        &self,
        payload: &Value,
        stop_at: Option<Instant>,
    ) -> Result<InvocationSummary, Error> {
        let items = classify(payload);
        let total = items.len();
        let mut summary = InvocationSummary::default();
        let mut failures: Vec<Error> = Vec::new();
        for item in items {
            let outcome = match item {
                Ok(EventItem::Object(object)) => self.handle_object(&object, stop_at).await,
                Ok(EventItem::TestEvent { bucket }) => {
                    info!(bucket = bucket.as_deref().unwrap_or(""), "s3:TestEvent acknowledged");
                    summary.test_events += 1;
                    continue;
                }
                Ok(EventItem::Unrecognized { shape }) => {
                    warn!(%shape, "skipping an event this function does not know");
                    summary.unrecognized += 1;
                    continue;
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(Outcome::Imported { csv_key }) => summary.imported.push(csv_key),
                Ok(Outcome::Invalid { csv_key }) => summary.invalid.push(csv_key),
                Ok(Outcome::Continued { csv_key }) => summary.continued.push(csv_key),
                Ok(Outcome::Waiting { missing }) => summary.waiting.push(missing),
                Ok(Outcome::Skipped) => summary.skipped += 1,
                Err(e) => {
                    error!(error = %error_chain(&e), "event record failed");
                    failures.push(e);
                }
            }
        }
        match failures.len() {
            0 => Ok(summary),
            failed => Err(Error::RecordsFailed {
                failed,
                total,
                first: Box::new(failures.swap_remove(0)),
            }),
        }
    }

    async fn handle_object(&self, object: &ObjectEvent, stop_at: Option<Instant>) -> Result<Outcome, Error> {
        if !object.created {
            info!(key = %object.key, event = %object.event_name, "not an object creation, skipped");
            return Ok(Outcome::Skipped);
        }
        if object.key.starts_with(CONTINUATION_PREFIX) {
            return self.handle_continuation(object, stop_at).await;
        }
        let pair = match DroppedPair::from_key(&object.key) {
            Ok(pair) => pair,
            Err(reason) => {
                info!(bucket = %object.bucket, key = %object.key, %reason, "skipped");
                return Ok(Outcome::Skipped);
            }
        };
        let tenant = match pair.tenant() {
            Ok(tenant) => tenant,
            Err(e) => {
                let mut report = ImportReport::from_error(&e);
                report.tenant = pair.tenant_folder().map(str::to_string);
                report.source = Some(s3_url(&object.bucket, &pair.csv_key));
                self.finish(&object.bucket, &pair, None, &report, Parts::start())
                    .await?;
                return Ok(Outcome::Invalid {
                    csv_key: pair.csv_key.clone(),
                });
            }
        };
        if !self.exists(&object.bucket, pair.other_key()).await? {
            info!(tenant = %tenant, key = %object.key, "waiting for {}", pair.other_key());
            return Ok(Outcome::Waiting {
                missing: pair.other_key().to_string(),
            });
        }
        self.import_pair(&object.bucket, &pair, tenant, None, stop_at).await
    }

    /// A checkpoint arrived: check it, then carry on with the import it describes.
    async fn handle_continuation(&self, object: &ObjectEvent, stop_at: Option<Instant>) -> Result<Outcome, Error> {
        let bucket = &object.bucket;
        let Some(key) = CheckpointKey::parse(&object.key) else {
            info!(%bucket, key = %object.key, "skipped: not a checkpoint key (continuations/<tenant>/<path>.part-<n>.json)");
            return Ok(Outcome::Skipped);
        };
        let pair = key.pair();
        let parts = Parts {
            invocation: key.part,
            prior_ms: 0,
            started: Instant::now(),
        };
        let resume_key = object.key.as_str();
        let tenant = match pair.tenant() {
            Ok(tenant) => tenant,
            Err(e) => {
                let message = format!("the checkpoint {resume_key} is refused: {}", error_chain(&e));
                return self.refuse(bucket, &pair, None, resume_key, parts, message).await;
            }
        };
        let Some(body) = self.get(bucket, resume_key).await? else {
            info!(
                %tenant,
                key = resume_key,
                "the checkpoint is already consumed (a duplicate or late event): nothing to do"
            );
            return Ok(Outcome::Skipped);
        };
        let bytes = self
            .read_bytes(bucket, resume_key, body.body, MAX_CHECKPOINT_BYTES)
            .await?;
        let checkpoint = match bytes {
            None => Err(format!("the checkpoint is larger than {MAX_CHECKPOINT_BYTES} bytes")),
            Some(bytes) => Checkpoint::from_json(&bytes).and_then(|c| c.check_key(&key, bucket).map(|()| c)),
        };
        let checkpoint = match checkpoint {
            Ok(checkpoint) => checkpoint,
            Err(reason) => {
                let message = format!("the checkpoint {resume_key} is refused: {reason}");
                return self
                    .refuse(bucket, &pair, Some(&tenant), resume_key, parts, message)
                    .await;
            }
        };
        let written = checkpoint.written().unwrap_or_default();
        info!(
            %tenant,
            key = %pair.csv_key,
            invocation = checkpoint.invocation,
            next_line = checkpoint.next_line,
            lines = checkpoint.lines,
            items_written = checkpoint.items_written,
            daily_items = checkpoint.daily_items,
            "continuing the import"
        );
        let resume = Resume {
            key: resume_key.to_string(),
            checkpoint,
            written,
        };
        self.import_pair(bucket, &pair, tenant, Some(resume), stop_at).await
    }

    /// Writes an `invalid` report for a continuation that cannot go on and consumes its
    /// checkpoint: the invocation succeeds, since no retry can make it good.
    async fn refuse(
        &self,
        bucket: &str,
        pair: &DroppedPair,
        tenant: Option<&Tenant>,
        resume_key: &str,
        parts: Parts,
        message: String,
    ) -> Result<Outcome, Error> {
        warn!(key = resume_key, %message, "continuation refused");
        let mut report = ImportReport::from_error(&reimport_core::Error::Profile { problems: Vec::new() });
        report.message = Some(message);
        report.error_count = 1;
        report.tenant = tenant
            .map(Tenant::to_string)
            .or(pair.tenant_folder().map(str::to_string));
        report.source = Some(s3_url(bucket, &pair.csv_key));
        self.finish(bucket, pair, None, &report, parts).await?;
        self.consume(bucket, resume_key).await?;
        Ok(Outcome::Invalid {
            csv_key: pair.csv_key.clone(),
        })
    }

    /// Deletes a checkpoint that has been acted on; one already gone is fine.
    async fn consume(&self, bucket: &str, key: &str) -> Result<(), Error> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|source| Error::DeleteObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                source: Box::new(source),
            })?;
        Ok(())
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, Error> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(Error::HeadObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                source: Box::new(e),
            }),
        }
    }

    /// The object, or `None` when it is gone.
    async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, Error> {
        match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(object) => Ok(Some(object)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(Error::GetObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                source: Box::new(e),
            }),
        }
    }

    async fn import_pair(
        &self,
        bucket: &str,
        pair: &DroppedPair,
        tenant: Tenant,
        resume: Option<Resume>,
        stop_at: Option<Instant>,
    ) -> Result<Outcome, Error> {
        let parts = Parts {
            invocation: resume.as_ref().map_or(1, |r| r.checkpoint.invocation),
            prior_ms: resume.as_ref().map_or(0, |r| r.checkpoint.elapsed_ms),
            started: Instant::now(),
        };
        let source = s3_url(bucket, &pair.csv_key);
        let resume_key = resume.as_ref().map(|r| r.key.as_str());
        let waiting = |key: &str| {
            info!(tenant = %tenant, key = %pair.csv_key, "waiting for {key}");
            Ok(Outcome::Waiting {
                missing: key.to_string(),
            })
        };

        let Some(profile_object) = self.get(bucket, &pair.profile_key).await? else {
            if let Some(resume) = &resume {
                let what = format!("{} is gone", pair.profile_key);
                return self.stale(bucket, pair, &tenant, resume, parts, what).await;
            }
            return waiting(&pair.profile_key);
        };
        let profile_version = ObjectVersion::of(&profile_object);
        if let Some(resume) = &resume {
            if let Some(what) = resume
                .checkpoint
                .profile
                .replaced_by(&pair.profile_key, &profile_version)
            {
                return self.stale(bucket, pair, &tenant, resume, parts, what).await;
            }
        }
        let profile = match self
            .read_profile(bucket, &pair.profile_key, profile_object.body)
            .await?
        {
            Ok(text) => ImportProfile::from_json(
                text.strip_prefix('\u{feff}').unwrap_or(&text),
                &ProfileLimits {
                    max_period_days: self.config.max_period_days,
                },
            ),
            Err(refusal) => Err(refusal),
        };
        let profile = match profile {
            Ok(profile) => profile,
            Err(e) => {
                let report = self.input_report(ImportReport::from_error(&e), &tenant, &source);
                self.finish(bucket, pair, None, &report, parts).await?;
                if let Some(key) = resume_key {
                    self.consume(bucket, key).await?;
                }
                return Ok(Outcome::Invalid {
                    csv_key: pair.csv_key.clone(),
                });
            }
        };

        let Some(csv_object) = self.get(bucket, &pair.csv_key).await? else {
            if let Some(resume) = &resume {
                let what = format!("{} is gone", pair.csv_key);
                return self.stale(bucket, pair, &tenant, resume, parts, what).await;
            }
            return waiting(&pair.csv_key);
        };
        let csv_version = ObjectVersion::of(&csv_object);
        if let Some(resume) = &resume {
            if let Some(what) = resume.checkpoint.csv.replaced_by(&pair.csv_key, &csv_version) {
                return self.stale(bucket, pair, &tenant, resume, parts, what).await;
            }
        }
        let reader = csv_object.body.into_async_read();
        let runtime = tokio::runtime::Handle::current();
        let read = tokio::task::spawn_blocking(move || {
            read_file(
                &profile,
                SyncIoBridge::new_with_handle(reader, runtime),
                &ReadOptions::default(),
            )
        })
        .await
        .map_err(|source| Error::ReadTask {
            bucket: bucket.to_string(),
            key: pair.csv_key.clone(),
            source,
        })?;
        let file = match read {
            Ok(file) => file,
            Err(e) if e.is_invalid_input() => {
                let report = self.input_report(ImportReport::from_error(&e), &tenant, &source);
                self.finish(bucket, pair, Some(&csv_version), &report, parts).await?;
                if let Some(key) = resume_key {
                    self.consume(bucket, key).await?;
                }
                return Ok(Outcome::Invalid {
                    csv_key: pair.csv_key.clone(),
                });
            }
            Err(e) => {
                let report = self.input_report(ImportReport::from_error(&e), &tenant, &source);
                return Err(self.fail(bucket, pair, &csv_version, report, parts, e).await);
            }
        };
        if let Some(resume) = &resume {
            let c = &resume.checkpoint;
            if file.line_count() != c.lines || file.daily_item_count() != c.daily_items {
                let what = format!(
                    "{} now reads as {} lines and {} daily items, the checkpoint says {} and {}",
                    pair.csv_key,
                    file.line_count(),
                    file.daily_item_count(),
                    c.lines,
                    c.daily_items
                );
                return self.stale(bucket, pair, &tenant, resume, parts, what).await;
            }
        }

        let mut report = self.input_report(ImportReport::validated(&file), &tenant, &source);
        let origin = ImportOrigin {
            tenant: tenant.clone(),
            source: source.clone(),
            imported_at: match &resume {
                Some(resume) => resume.checkpoint.imported_at.clone(),
                None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            },
        };
        let from_line = resume.as_ref().map_or(0, |r| r.checkpoint.next_line);
        let mut total = resume.as_ref().map(|r| r.written.clone()).unwrap_or_default();
        let batch_items = self.config.write_batch_items.unwrap_or_else(|| self.store.batch_size());
        let mut after_batch = |done: &LinesWritten| {
            tracing::debug!(items = done.written.items, next_line = done.next_line, "batch written");
            stop_at.is_some_and(|at| Instant::now() >= at)
        };
        let files = Files {
            pair,
            tenant: &tenant,
            file: &file,
            csv: &csv_version,
            profile: &profile_version,
            imported_at: &origin.imported_at,
        };
        let part = match file
            .write_lines_to(self.store.as_ref(), &origin, from_line, batch_items, &mut after_batch)
            .await
        {
            Ok(part) => part,
            Err(LinesFailed { done, error }) if done.written.items > 0 => {
                // Progress was made: the next invocation retries from the failed batch on.
                // Every invocation of the chain writes at least one batch, so it ends.
                warn!(
                    tenant = %tenant,
                    key = %pair.csv_key,
                    error = %error_chain(&error),
                    "the store failed after some batches; continuing in another invocation"
                );
                total.add(&done.written);
                return self
                    .continue_import(bucket, &files, resume_key, &done, &total, parts)
                    .await;
            }
            Err(LinesFailed { error, .. }) => {
                report.status = ImportStatus::Failed;
                report.error_count = 1;
                report.message = Some(error_chain(&error));
                return Err(self.fail(bucket, pair, &csv_version, report, parts, error).await);
            }
        };
        total.add(&part.written);
        if part.next_line < file.line_count() {
            return self
                .continue_import(bucket, &files, resume_key, &part, &total, parts)
                .await;
        }
        if let Err(e) = file.check_totals(&total) {
            report.record_written(&total);
            report.status = ImportStatus::Failed;
            report.error_count = 1;
            report.message = Some(error_chain(&e));
            return Err(self.fail(bucket, pair, &csv_version, report, parts, e).await);
        }
        report.record_written(&total);
        self.finish(bucket, pair, Some(&csv_version), &report, parts).await?;
        if let Some(key) = resume_key {
            self.consume(bucket, key).await?;
        }
        Ok(Outcome::Imported {
            csv_key: pair.csv_key.clone(),
        })
    }

    /// A continuation whose files changed or went away stops: a new upload has its own event.
    async fn stale(
        &self,
        bucket: &str,
        pair: &DroppedPair,
        tenant: &Tenant,
        resume: &Resume,
        parts: Parts,
        what: String,
    ) -> Result<Outcome, Error> {
        let message = format!(
            "{what}: the import of the earlier upload stops here, after {} of its {} daily items in {} invocation(s); \
             a new upload is imported by its own event",
            resume.checkpoint.items_written,
            resume.checkpoint.daily_items,
            parts.invocation - 1,
        );
        self.refuse(bucket, pair, Some(tenant), &resume.key, parts, message)
            .await
    }

    /// Leaves the checkpoint that starts the next invocation, then consumes this one's.
    async fn continue_import(
        &self,
        bucket: &str,
        files: &Files<'_>,
        resume_key: Option<&str>,
        done: &LinesWritten,
        total: &WrittenTotals,
        parts: Parts,
    ) -> Result<Outcome, Error> {
        let next = parts.invocation + 1;
        let mut checkpoint = Checkpoint {
            format: FORMAT,
            bucket: bucket.to_string(),
            tenant: files.tenant.to_string(),
            csv_key: files.pair.csv_key.clone(),
            csv: files.csv.clone(),
            profile_key: files.pair.profile_key.clone(),
            profile: files.profile.clone(),
            imported_at: files.imported_at.to_string(),
            invocation: next,
            next_line: done.next_line,
            lines: files.file.line_count(),
            daily_items: files.file.daily_item_count(),
            items_written: 0,
            totals_written: Default::default(),
            elapsed_ms: parts.elapsed_ms(),
        };
        checkpoint.set_written(total);
        let key = CheckpointKey::for_pair(files.pair, next).key();
        // Only one checkpoint per part: if two invocations ran the same part (a duplicated
        // event), the second finds the next one written and leaves the rest to the first.
        let put = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("application/json")
            .if_none_match("*")
            .body(ByteStream::from(checkpoint.to_json()))
            .send()
            .await;
        match put {
            Ok(_) => info!(
                tenant = %files.tenant,
                key = %files.pair.csv_key,
                invocation = parts.invocation,
                next_line = done.next_line,
                lines = checkpoint.lines,
                items_written = checkpoint.items_written,
                daily_items = checkpoint.daily_items,
                checkpoint = %key,
                "import continues in another invocation"
            ),
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                warn!(
                    tenant = %files.tenant,
                    key = %files.pair.csv_key,
                    checkpoint = %key,
                    "the next checkpoint already exists: another invocation ran this part too and continues the import"
                )
            }
            Err(source) => {
                return Err(Error::PutObject {
                    bucket: bucket.to_string(),
                    key,
                    source: Box::new(source),
                })
            }
        }
        if let Some(key) = resume_key {
            self.consume(bucket, key).await?;
        }
        Ok(Outcome::Continued {
            csv_key: files.pair.csv_key.clone(),
        })
    }

    /// A small object's bytes, or `None` past `limit`.
    async fn read_bytes(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut bytes = Vec::new();
        body.into_async_read()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|source| Error::ReadObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                source,
            })?;
        Ok((bytes.len() as u64 <= limit).then_some(bytes))
    }

    /// The profile's text, or why it is not one.
    async fn read_profile(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
    ) -> Result<Result<String, reimport_core::Error>, Error> {
        let Some(bytes) = self.read_bytes(bucket, key, body, MAX_PROFILE_BYTES).await? else {
            return Ok(Err(reimport_core::Error::Profile {
                problems: vec![format!(
                    "the profile is larger than {} KiB; a profile is a small JSON document",
                    MAX_PROFILE_BYTES / 1024
                )],
            }));
        };
        Ok(String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = valid.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            reimport_core::Error::ProfileJson {
                line,
                column,
                message: "the profile is not UTF-8 text".to_string(),
            }
        }))
    }

    fn input_report(&self, mut report: ImportReport, tenant: &Tenant, source: &str) -> ImportReport {
        report.tenant = Some(tenant.to_string());
        report.source = Some(source.to_string());
        report
    }

    /// Writes the report of a failed import if S3 lets us, and gives back the error to return.
    async fn fail(
        &self,
        bucket: &str,
        pair: &DroppedPair,
        csv_version: &ObjectVersion,
        report: ImportReport,
        parts: Parts,
        cause: reimport_core::Error,
    ) -> Error {
        if let Err(e) = self.finish(bucket, pair, Some(csv_version), &report, parts).await {
            warn!(error = %error_chain(&e), "the failure report could not be written");
        }
        Error::Import {
            bucket: bucket.to_string(),
            key: pair.csv_key.clone(),
            source: cause,
        }
    }

    /// Stamps the duration, logs the import and writes its report.
    async fn finish(
        &self,
        bucket: &str,
        pair: &DroppedPair,
        csv_version: Option<&ObjectVersion>,
        report: &ImportReport,
        parts: Parts,
    ) -> Result<(), Error> {
        let mut report = report.clone();
        report.duration_ms = parts.elapsed_ms();
        let status = serde_json::to_value(report.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        info!(
            tenant = report.tenant.as_deref().unwrap_or(""),
            key = %pair.csv_key,
            lines = report.lines_imported,
            items = report.daily_items_written,
            duration_ms = report.duration_ms,
            invocations = parts.invocation,
            status = %status,
            errors = report.error_count,
            "import finished"
        );
        let report_key = pair.report_key(&self.config.report_prefix);
        let body = serde_json::to_vec_pretty(&ObjectReport {
            bucket,
            csv_key: &pair.csv_key,
            profile_key: &pair.profile_key,
            csv_version_id: csv_version.and_then(|v| v.version_id.as_deref()),
            csv_etag: csv_version.and_then(|v| v.etag.as_deref()),
            invocations: parts.invocation,
            import: &report,
        })
        .map_err(|source| Error::ReportJson {
            key: report_key.clone(),
            source,
        })?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(&report_key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|source| Error::PutObject {
                bucket: bucket.to_string(),
                key: report_key,
                source: Box::new(source),
            })?;
        Ok(())
    }
}

/// Which invocation of an import this is, and the time the ones before it took.
#[derive(Clone, Copy, Debug)]
struct Parts {
    invocation: u32,
    prior_ms: u64,
    started: Instant,
}

impl Parts {
    fn start() -> Parts {
        Parts {
            invocation: 1,
            prior_ms: 0,
            started: Instant::now(),
        }
    }

    /// The time of all invocations so far, this one included.
    fn elapsed_ms(&self) -> u64 {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.prior_ms.saturating_add(now)
    }
}

/// A checkpoint being acted on.
struct Resume {
    key: String,
    checkpoint: Checkpoint,
    written: WrittenTotals,
}

/// What a checkpoint records about the import it continues.
struct Files<'a> {
    pair: &'a DroppedPair,
    tenant: &'a Tenant,
    file: &'a ValidatedFile,
    csv: &'a ObjectVersion,
    profile: &'a ObjectVersion,
    imported_at: &'a str,
}

fn s3_url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}
