//! Real exports: every Matomo export the product owner collected decodes, and the fixtures in
//! tests/fixtures/matomo import end to end through the real binary into a real SQLite file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The product owner's samples, beside the repository (read-only).
fn realworld() -> PathBuf {
    let dir = repo().join("../shared/realworld");
    assert!(
        dir.join("MANIFEST.tsv").exists(),
        "the realworld samples are expected at {}",
        dir.display()
    );
    dir
}

#[test]
fn every_matomo_export_decodes_to_its_manifest_record_count() {
    let dir = realworld();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = manifest.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file_col, records_col, delim_col) = (col("file"), col("csv_records_nonempty"), col("delimiter"));
    let mut checked = 0;
    for line in lines {
        let cells: Vec<&str> = line.split('\t').collect();
        let path = dir.join(cells[file_col]);
        let bytes = std::fs::read(&path).unwrap();
        let mut text = String::new();
        reimport_core::decode::decode_text(bytes.as_slice(), None)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            !text.contains('\u{FFFD}'),
            "{}: no replacement character",
            path.display()
        );
        let delimiter = match cells[delim_col] {
            "TAB" => b'\t',
            _ => reimport_core::import::detect_delimiter(text.as_bytes()),
        };
        let records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .filter(|r| r.iter().any(|f| !f.is_empty()))
            .count();
        assert_eq!(records.to_string(), cells[records_col], "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 20, "{checked} files checked");
}

fn import_fixture(name: &str, store: &str) -> Value {
    let csv = repo().join("tests/fixtures/matomo").join(format!("{name}.csv"));
    let report = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reimport"))
        .args(["import", csv.to_str().unwrap(), "--store", store, "--tenant", "matomo"])
        .args(["--report-json", report.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    for (metric, total) in report["totals"].as_object().unwrap() {
        assert_eq!(total["read"], total["written"], "{name} {metric}");
    }
    report
}

fn query(store: &str, kind: &str) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_reimport"))
        .args([
            "query", "--store", store, "--tenant", "matomo", "--kind", kind, "--format", "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn total(items: &[Value], key: &str, metric: &str) -> f64 {
    items
        .iter()
        .filter(|i| i["key"] == key)
        .filter_map(|i| i["metrics"][metric].as_f64())
        .sum()
}

#[test]
fn utf16_export_missing_its_last_byte_imports_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("m.db").display());
    let report = import_fixture("allwebsites-visits-summary", &store);
    assert_eq!(report["encoding"], "utf-16le");
    assert_eq!(report["lines_read"], 3);
    assert_eq!(report["totals"]["visit"]["read"], 5);
    assert_eq!(
        report["totals"]["duration"]["read"], 0,
        "the last cell, whose NUL byte was missing, is 0"
    );
    let items = query(&store, "website");
    assert_eq!(items.len(), 21);
    assert_eq!(total(&items, "3", "dvisitor"), 2.0);
}

#[test]
fn english_content_export_imports_as_pagetree_over_a_leap_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("m.db").display());
    let report = import_fixture("contents-names-en", &store);
    assert_eq!(report["period"]["days"], 3, "28/02 to 01/03/2024 includes the 29th");
    assert_eq!(report["lines_imported"], 6);
    let items = query(&store, "pagetree");
    assert_eq!(total(&items, "Video Ad - movie.mov", "hit"), 4.0);
    let days: Vec<&str> = items
        .iter()
        .filter(|i| i["key"] == "Video Ad - movie.mov")
        .map(|i| i["date"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["2024-02-28", "2024-02-29", "2024-03-01"]);
    let hits: Vec<u64> = items
        .iter()
        .filter(|i| i["key"] == "Video Ad - movie.mov")
        .map(|i| i["metrics"]["hit"].as_u64().unwrap())
        .collect();
    assert_eq!(hits, [2, 1, 1], "4 over 3 days, the remainder on the first day");
}

#[test]
fn german_custom_variables_with_empty_cells_import_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("m.db").display());
    let report = import_fixture("custom-variables-de", &store);
    assert_eq!(report["lines_read"], 17);
    assert!(
        report["warning_count"].as_u64().unwrap() > 0,
        "empty cells are warnings"
    );
    assert_eq!(report["totals"]["scartvalidamount"]["read"], 4000);
    let items = query(&store, "website");
    assert_eq!(total(&items, "Status user - looking at \"profile page\"", "visit"), 1.0);
    assert_eq!(total(&items, "VisitorType", "duration"), 725.0);
    let status_user: Vec<&Value> = items.iter().filter(|i| i["key"] == "Status user").collect();
    assert!(
        status_user.iter().all(|i| i["metrics"].get("visit").is_none()),
        "an empty cell is not written"
    );
}

#[test]
fn pivot_export_with_quoted_header_imports() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("m.db").display());
    let report = import_fixture("keywords-pivot", &store);
    assert_eq!(report["lines_imported"], 6);
    assert_eq!(report["totals"]["visit"]["read"], 4);
    assert_eq!(total(&query(&store, "searchengine"), "search term 1", "visit"), 1.0);
}
