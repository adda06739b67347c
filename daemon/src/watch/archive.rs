//! Where a finished pair goes: beside its report, under `processed/<date>/` or `failed/<date>/`,
//! keeping its folder relative to the drop folder. Nothing is deleted or overwritten: a name
//! already taken gets the first free suffix (`name-1.csv`, ...), the same for the whole pair.
//!
//! The report is written first (created new, so it claims the suffix), then the CSV and the
//! profile are renamed. Renaming needs both folders on one file system, which they are: both
//! are under the drop folder.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use reimport_core::ImportReport;

use super::names::{first_free_number, numbered_name};

#[derive(Debug)]
pub struct Archived {
    pub csv: PathBuf,
    pub profile: PathBuf,
    pub report: PathBuf,
}

/// Moves `csv` and `profile` into `destination` with `report` beside them.
pub fn archive_pair(destination: &Path, csv: &Path, profile: &Path, report: &ImportReport) -> io::Result<Archived> {
    fs::create_dir_all(destination)?;
    let stem = csv.file_stem().unwrap_or(OsStr::new("export")).to_os_string();
    let csv_ext = extension(csv, "csv");
    let profile_ext = extension(profile, "json");
    let json = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
    let mut from = 0;
    loop {
        let n = first_free_number(
            destination,
            &stem,
            &[&csv_ext, &profile_ext, "report.json"],
            100_000,
            |p| p.symlink_metadata().is_ok(),
        )
        .map(|n| n.max(from))
        .ok_or_else(|| {
            io::Error::other(format!(
                "no free name for {} in {}",
                stem.to_string_lossy(),
                destination.display()
            ))
        })?;
        let target = |ext: &str| destination.join(numbered_name(&stem, n, ext));
        let report_path = target("report.json");
        match OpenOptions::new().write(true).create_new(true).open(&report_path) {
            Ok(mut file) => {
                file.write_all(&json)?;
                file.sync_all()?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                from = n + 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        let archived = Archived {
            csv: target(&csv_ext),
            profile: target(&profile_ext),
            report: report_path,
        };
        move_without_overwrite(csv, &archived.csv)?;
        move_without_overwrite(profile, &archived.profile)?;
        return Ok(archived);
    }
}

/// Writes the report of a pair left in place (`--keep-in-place`), replacing the previous one.
pub fn write_report(path: &Path, report: &ImportReport) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let json = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
    let temporary = path.with_extension("json.tmp");
    fs::write(&temporary, json)?;
    fs::rename(&temporary, path)
}

fn extension(path: &Path, default: &str) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| default.to_string())
}

fn move_without_overwrite(from: &Path, to: &Path) -> io::Result<()> {
    if to.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", to.display()),
        ));
    }
    fs::rename(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ImportReport {
        ImportReport::from_error(&reimport_core::Error::Read(io::Error::other("test")))
    }

    #[test]
    fn taken_names_get_a_suffix_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let drop = dir.path().join("drop");
        let dest = dir.path().join("processed/2026-01-01/acme");
        fs::create_dir_all(&drop).unwrap();
        for round in 0..3 {
            fs::write(drop.join("a.csv"), format!("csv {round}")).unwrap();
            fs::write(drop.join("a.json"), format!("json {round}")).unwrap();
            archive_pair(&dest, &drop.join("a.csv"), &drop.join("a.json"), &report()).unwrap();
        }
        fs::write(drop.join("a.csv"), "csv 3").unwrap();
        fs::write(drop.join("a.json"), "json 3").unwrap();
        fs::write(dest.join("a-3.report.json"), "someone else's").unwrap();
        let last = archive_pair(&dest, &drop.join("a.csv"), &drop.join("a.json"), &report()).unwrap();
        assert_eq!(last.csv, dest.join("a-4.csv"));

        assert_eq!(fs::read_to_string(dest.join("a.csv")).unwrap(), "csv 0");
        assert_eq!(fs::read_to_string(dest.join("a-1.json")).unwrap(), "json 1");
        assert_eq!(fs::read_to_string(dest.join("a-2.csv")).unwrap(), "csv 2");
        assert_eq!(
            fs::read_to_string(dest.join("a-3.report.json")).unwrap(),
            "someone else's"
        );
        assert_eq!(fs::read_to_string(dest.join("a-4.csv")).unwrap(), "csv 3");
        assert!(fs::read_to_string(dest.join("a-4.report.json"))
            .unwrap()
            .contains("\"failed\""));
        assert!(fs::read_dir(&drop).unwrap().next().is_none());
    }
}
