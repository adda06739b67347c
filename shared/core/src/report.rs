//! The import report: what the CLI prints, what `--report-json` writes, what the Lambda and the
//! daemon leave beside each file. The same structure everywhere, so scripts read one format.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::decode::TextEncoding;
use crate::error::{CellIssue, Error};
use crate::import::{MergedKey, ValidatedFile, WrittenTotals};
use crate::kind::{Kind, Metric};
use crate::number::Quantity;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    /// Written to the store.
    Imported,
    /// Checked and found good; nothing written (validate, --dry-run).
    Validated,
    /// Refused: the profile or the file is at fault. Nothing written.
    Invalid,
    /// Stopped by something else (the store, I/O). Repeating the import is safe.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeriodReport {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub days: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MetricTotal {
    pub read: Quantity,
    pub written: Quantity,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub status: ImportStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<TextEncoding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<PeriodReport>,
    pub lines_read: u64,
    pub lines_imported: u64,
    pub daily_items: u64,
    pub daily_items_written: u64,
    pub totals: BTreeMap<Metric, MetricTotal>,
    pub warning_count: u64,
    pub warnings: Vec<CellIssue>,
    pub merged_key_count: u64,
    pub merged_keys: Vec<MergedKey>,
    pub error_count: u64,
    pub errors: Vec<CellIssue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub duration_ms: u64,
}

impl ImportReport {
    fn empty(status: ImportStatus) -> ImportReport {
        ImportReport {
            status,
            tenant: None,
            source: None,
            kind: None,
            encoding: None,
            delimiter: None,
            period: None,
            lines_read: 0,
            lines_imported: 0,
            daily_items: 0,
            daily_items_written: 0,
            totals: BTreeMap::new(),
            warning_count: 0,
            warnings: Vec::new(),
            merged_key_count: 0,
            merged_keys: Vec::new(),
            error_count: 0,
            errors: Vec::new(),
            message: None,
            duration_ms: 0,
        }
    }

    /// A file that passed every check; nothing written yet.
    pub fn validated(file: &ValidatedFile) -> ImportReport {
        let (warnings, warning_count) = file.warnings();
        let (merged, merged_count) = file.merged_keys();
        let period = file.period();
        ImportReport {
            kind: Some(file.kind()),
            encoding: Some(file.encoding()),
            delimiter: Some(match file.delimiter() {
                b'\t' => "\\t".to_string(),
                d => char::from(d).to_string(),
            }),
            period: Some(PeriodReport {
                from: period.from(),
                to: period.to(),
                days: period.days(),
            }),
            lines_read: file.lines_read(),
            lines_imported: file.line_count(),
            daily_items: file.daily_item_count(),
            totals: file
                .totals_read()
                .iter()
                .map(|(&m, &read)| {
                    (
                        m,
                        MetricTotal {
                            read,
                            written: Quantity::ZERO,
                        },
                    )
                })
                .collect(),
            warning_count,
            warnings: warnings.to_vec(),
            merged_key_count: merged_count,
            merged_keys: merged.to_vec(),
            ..ImportReport::empty(ImportStatus::Validated)
        }
    }

    /// Records what a write put in the store.
    pub fn record_written(&mut self, written: &WrittenTotals) {
        self.status = ImportStatus::Imported;
        self.daily_items_written = written.items;
        for (metric, total) in &mut self.totals {
            total.written = written.totals.get(metric).copied().unwrap_or(Quantity::ZERO);
        }
    }

    /// A refused or failed import: invalid when the input is at fault, failed otherwise.
    pub fn from_error(error: &Error) -> ImportReport {
        let status = if error.is_invalid_input() {
            ImportStatus::Invalid
        } else {
            ImportStatus::Failed
        };
        let mut report = ImportReport::empty(status);
        if let Error::InvalidFile(invalid) = error {
            report.errors = invalid.issues.clone();
            report.error_count = invalid.total;
        } else {
            report.error_count = 1;
        }
        report.message = Some(error_chain(error));
        report
    }
}

/// An error and all its causes, `: `-separated, as `{:#}` would show them.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            ImportStatus::Imported => "imported",
            ImportStatus::Validated => "valid (nothing written)",
            ImportStatus::Invalid => "invalid (nothing written)",
            ImportStatus::Failed => "failed",
        };
        write!(f, "status: {status}")?;
        if let Some(source) = &self.source {
            write!(f, "\nfile: {source}")?;
        }
        if let Some(tenant) = &self.tenant {
            write!(f, "\ntenant: {tenant}")?;
        }
        if let (Some(kind), Some(period)) = (self.kind, &self.period) {
            write!(
                f,
                "\nkind: {kind}, period {} to {} ({} days)",
                period.from, period.to, period.days
            )?;
        }
        if matches!(self.status, ImportStatus::Imported | ImportStatus::Validated) {
            write!(
                f,
                "\nlines read: {}, lines imported: {}, daily items: {}, written: {}",
                self.lines_read, self.lines_imported, self.daily_items, self.daily_items_written
            )?;
            for (metric, total) in &self.totals {
                write!(f, "\n  {metric}: read {}, written {}", total.read, total.written)?;
            }
        }
        if self.warning_count > 0 {
            write!(f, "\nwarnings: {}", self.warning_count)?;
            for w in self.warnings.iter().take(10) {
                write!(f, "\n  {w}")?;
            }
            if self.warning_count > 10 {
                write!(f, "\n  … see the JSON report for the rest")?;
            }
        }
        if self.merged_key_count > 0 {
            write!(f, "\nmerged keys: {}", self.merged_key_count)?;
            for m in self.merged_keys.iter().take(10) {
                write!(f, "\n  {:?} from lines {:?} ({})", m.key, m.lines, m.values.join(" | "))?;
            }
        }
        if let Some(message) = &self.message {
            write!(f, "\n{message}")?;
        }
        write!(f, "\nduration: {} ms", self.duration_ms)
    }
}
