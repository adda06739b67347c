use std::fmt;
use std::io;

use crate::kind::Metric;
use crate::number::Quantity;
use crate::store::StoreError;

/// Everything that can stop an import. Messages carry positions; a user sees the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the profile is not valid JSON: line {line}, column {column}: {message}")]
    ProfileJson {
        line: usize,
        column: usize,
        message: String,
    },

    #[error("the profile is invalid:\n  - {}", problems.join("\n  - "))]
    Profile { problems: Vec<String> },

    #[error("the file cannot be decoded: {message}")]
    Decode { message: String },

    #[error("reading the file failed")]
    Read(#[source] io::Error),

    #[error("{0}")]
    InvalidFile(InvalidFile),

    #[error("tenant \"{name}\" is not valid: {reason}")]
    Tenant { name: String, reason: &'static str },

    #[error("the store failed")]
    Store(#[source] StoreError),

    #[error("written totals do not match the file for {metric}: read {read}, written {written}")]
    TotalsMismatch {
        metric: Metric,
        read: Quantity,
        written: Quantity,
    },
}

impl Error {
    /// Whether the input (profile or file) is at fault: retrying cannot help, nothing was written.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::ProfileJson { .. }
                | Error::Profile { .. }
                | Error::Decode { .. }
                | Error::InvalidFile(_)
                | Error::Tenant { .. }
        )
    }

    /// Whether the failure may pass on its own (throttling, a dropped connection).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_retryable())
    }
}

/// One problem with one cell (or line) of a file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CellIssue {
    /// 1-based line, as an editor shows it.
    pub line: u64,
    /// 0-based column index, as the profile's `idx`; absent for problems with a whole line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idx: Option<usize>,
    /// The raw cell, as read.
    pub value: String,
    pub reason: String,
}

impl fmt::Display for CellIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.idx {
            Some(idx) => write!(
                f,
                "line {}, column {} (idx {idx}), value {:?}: {}",
                self.line,
                idx + 1,
                self.value,
                self.reason
            ),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// A file refused whole: the first problems found, and how many there were in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidFile {
    pub issues: Vec<CellIssue>,
    pub total: u64,
}

impl fmt::Display for InvalidFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the file is invalid ({} problem{}); nothing was written:",
            self.total,
            if self.total == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        let hidden = self.total - self.issues.len() as u64;
        if hidden > 0 {
            write!(f, "\n  … and {hidden} more")?;
        }
        Ok(())
    }
}
