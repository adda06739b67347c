//! One invocation: every item of the payload is handled, one after the other, and the
//! invocation fails only after all were tried if any hit an infrastructure failure.
//!
//! The CSV is streamed from S3 into the core's blocking reader through a [`SyncIoBridge`] on a
//! blocking thread, so memory does not grow with the size of the object; the profile is small
//! and read whole, up to [`MAX_PROFILE_BYTES`].

use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::LambdaEvent;
use reimport_core::report::error_chain;
use reimport_core::{
    read_file, ImportOrigin, ImportProfile, ImportReport, ImportStatus, ProfileLimits, ReadOptions, Store, Tenant,
};
use reimport_store_dynamodb::{DynamoOptions, DynamoStore};
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio_util::io::SyncIoBridge;
use tracing::{error, info, warn};

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
        self.handle_payload(&event.payload).await
    }

    /// Handles every item of `payload`; fails after the last one if any failed.
    pub async fn handle_payload(&self, payload: &Value) -> Result<InvocationSummary, Error> {
        let items = classify(payload);
        let total = items.len();
        let mut summary = InvocationSummary::default();
        let mut failures: Vec<Error> = Vec::new();
        for item in items {
            let outcome = match item {
                Ok(EventItem::Object(object)) => self.handle_object(&object).await,
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

    async fn handle_object(&self, object: &ObjectEvent) -> Result<Outcome, Error> {
        if !object.created {
            info!(key = %object.key, event = %object.event_name, "not an object creation, skipped");
            return Ok(Outcome::Skipped);
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
                self.finish(&object.bucket, &pair, None, &report, Instant::now())
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
        self.import_pair(&object.bucket, &pair, tenant).await
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

    async fn import_pair(&self, bucket: &str, pair: &DroppedPair, tenant: Tenant) -> Result<Outcome, Error> {
        let started = Instant::now();
        let source = s3_url(bucket, &pair.csv_key);
        let waiting = |key: &str| {
            info!(tenant = %tenant, key = %pair.csv_key, "waiting for {key}");
            Ok(Outcome::Waiting {
                missing: key.to_string(),
            })
        };

        let Some(profile_object) = self.get(bucket, &pair.profile_key).await? else {
            return waiting(&pair.profile_key);
        };
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
                self.finish(bucket, pair, None, &report, started).await?;
                return Ok(Outcome::Invalid {
                    csv_key: pair.csv_key.clone(),
                });
            }
        };

        let Some(csv_object) = self.get(bucket, &pair.csv_key).await? else {
            return waiting(&pair.csv_key);
        };
        let csv_version = CsvVersion {
            version_id: csv_object.version_id().map(str::to_string),
            etag: csv_object.e_tag().map(str::to_string),
        };
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
                self.finish(bucket, pair, Some(&csv_version), &report, started).await?;
                return Ok(Outcome::Invalid {
                    csv_key: pair.csv_key.clone(),
                });
            }
            Err(e) => {
                let report = self.input_report(ImportReport::from_error(&e), &tenant, &source);
                return Err(self.fail(bucket, pair, &csv_version, report, started, e).await);
            }
        };

        let mut report = self.input_report(ImportReport::validated(&file), &tenant, &source);
        let origin = ImportOrigin {
            tenant: tenant.clone(),
            source: source.clone(),
            imported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        let mut progress = |written: u64| tracing::debug!(written, "daily items written");
        match file.write_to(self.store.as_ref(), &origin, &mut progress).await {
            Ok(written) => report.record_written(&written),
            Err(e) => {
                report.status = ImportStatus::Failed;
                report.error_count = 1;
                report.message = Some(error_chain(&e));
                return Err(self.fail(bucket, pair, &csv_version, report, started, e).await);
            }
        }
        self.finish(bucket, pair, Some(&csv_version), &report, started).await?;
        Ok(Outcome::Imported {
            csv_key: pair.csv_key.clone(),
        })
    }

    /// The profile's text, or why it is not one.
    async fn read_profile(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
    ) -> Result<Result<String, reimport_core::Error>, Error> {
        let mut bytes = Vec::new();
        body.into_async_read()
            .take(MAX_PROFILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|source| Error::ReadObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                source,
            })?;
        if bytes.len() as u64 > MAX_PROFILE_BYTES {
            return Ok(Err(reimport_core::Error::Profile {
                problems: vec![format!(
                    "the profile is larger than {} KiB; a profile is a small JSON document",
                    MAX_PROFILE_BYTES / 1024
                )],
            }));
        }
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
        csv_version: &CsvVersion,
        report: ImportReport,
        started: Instant,
        cause: reimport_core::Error,
    ) -> Error {
        if let Err(e) = self.finish(bucket, pair, Some(csv_version), &report, started).await {
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
        csv_version: Option<&CsvVersion>,
        report: &ImportReport,
        started: Instant,
    ) -> Result<(), Error> {
        let mut report = report.clone();
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
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

/// Which upload of the CSV was read.
struct CsvVersion {
    version_id: Option<String>,
    etag: Option<String>,
}

fn s3_url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}
