//! One import of a CSV + profile pair from local files, shared by `import`, `validate` and the
//! watcher: read the profile, read and check the whole file (on a blocking thread), then, unless
//! it is a dry run, write its daily items. Every outcome is an `ImportReport`.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use reimport_core::{
    Error, ImportOrigin, ImportProfile, ImportReport, ImportStatus, ProfileLimits, ReadOptions, Store, Tenant,
};

/// The profile beside a CSV: same folder, same stem, `.json`.
pub fn profile_beside(csv: &Path) -> PathBuf {
    csv.with_extension("json")
}

pub struct PairImport<'a> {
    pub csv: &'a Path,
    pub profile: &'a Path,
    pub tenant: &'a Tenant,
    pub limits: ProfileLimits,
    /// `None`: validate only.
    pub store: Option<&'a dyn Store>,
}

/// Why an import did not end as imported/validated, for exit codes and logs.
#[derive(Debug)]
pub enum Failure {
    /// The profile or file is at fault; nothing was written.
    Invalid,
    /// I/O or the store; repeating the import is safe.
    Failed,
}

impl PairImport<'_> {
    pub async fn run(&self, progress: &mut (dyn FnMut(u64, u64) + Send)) -> (ImportReport, Option<Failure>) {
        let started = Instant::now();
        let mut report = match self.run_inner(progress).await {
            Ok(report) => report,
            Err(PipelineError::Core(e)) => ImportReport::from_error(&e),
            Err(PipelineError::Io(what, e)) => {
                let mut r = ImportReport::from_error(&Error::Read(e));
                r.message = Some(format!("{what}: {}", r.message.unwrap_or_default()));
                r
            }
        };
        report.tenant = Some(self.tenant.to_string());
        report.source = Some(self.csv.display().to_string());
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let failure = match report.status {
            ImportStatus::Imported | ImportStatus::Validated => None,
            ImportStatus::Invalid => Some(Failure::Invalid),
            ImportStatus::Failed => Some(Failure::Failed),
        };
        (report, failure)
    }

    async fn run_inner(&self, progress: &mut (dyn FnMut(u64, u64) + Send)) -> Result<ImportReport, PipelineError> {
        let profile_text = std::fs::read_to_string(self.profile)
            .map_err(|e| PipelineError::Io(format!("cannot read the profile {}", self.profile.display()), e))?;
        let profile = ImportProfile::from_json(&profile_text, &self.limits).map_err(PipelineError::Core)?;
        let file =
            File::open(self.csv).map_err(|e| PipelineError::Io(format!("cannot open {}", self.csv.display()), e))?;
        let validated = tokio::task::spawn_blocking(move || {
            reimport_core::read_file(
                &profile,
                BufReader::with_capacity(256 * 1024, file),
                &ReadOptions::default(),
            )
        })
        .await
        .map_err(|e| PipelineError::Io("the reading thread stopped".into(), std::io::Error::other(e)))?
        .map_err(PipelineError::Core)?;
        let mut report = ImportReport::validated(&validated);
        if let Some(store) = self.store {
            let origin = ImportOrigin {
                tenant: self.tenant.clone(),
                source: self.csv.display().to_string(),
                imported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            };
            let total = validated.daily_item_count();
            let written = validated
                .write_to(store, &origin, &mut |n| progress(n, total))
                .await
                .map_err(PipelineError::Core)?;
            report.record_written(&written);
        }
        Ok(report)
    }
}

enum PipelineError {
    Core(Error),
    Io(String, std::io::Error),
}

/// The first problem of a report, for a log line: the first cell error, else the message.
pub fn first_problem(report: &ImportReport) -> Option<String> {
    match (report.errors.first(), &report.message) {
        (Some(first), _) => Some(first.to_string()),
        (None, Some(message)) => Some(message.replace('\n', " ")),
        (None, None) => None,
    }
}
