//! The `reimport` command line as users and scripts drive it: the real binary, a real SQLite
//! file, exit codes, stdout/stderr, and the JSON contracts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn reimport() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reimport"));
    cmd.env_remove("REIMPORT_STORE");
    cmd
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    reimport().args(args).output().expect("reimport runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn query_json(store: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["query", "--store", store, "--format", "json"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    match serde_json::from_slice(&out.stdout).expect("query prints JSON") {
        Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    }
}

fn sum(items: &[Value], metric: &str) -> u64 {
    items.iter().filter_map(|i| i["metrics"][metric].as_u64()).sum()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const PROFILE_2_DAYS: &str = r#"{"skipHeader":true,"kind":"website","dimensions":[{"idx":0,"target":"website_name"}],
  "metrics":[{"idx":1,"target":"visit"},{"idx":2,"target":"duration"}],
  "period":{"from":"01/03/2023","to":"02/03/2023","scale":"D"}}"#;

#[test]
fn imports_the_examples_and_queries_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("r.db").display());
    let report = dir.path().join("report.json");
    let csv = repo().join("examples/website.csv");
    let out = run(&[
        "import",
        csv.to_str().unwrap(),
        "--store",
        &store,
        "--report-json",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("status: imported"), "{}", stdout(&out));

    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["status"], "imported");
    assert_eq!(report["tenant"], "default");
    assert_eq!(report["lines_read"], 3);
    assert_eq!(report["lines_imported"], 3);
    assert_eq!(report["daily_items_written"], 93);
    for (metric, total) in report["totals"].as_object().unwrap() {
        assert_eq!(total["read"], total["written"], "{metric}");
    }
    assert_eq!(report["totals"]["visit"]["read"], 3231);

    let items = query_json(&store, &["--kind", "website"]);
    assert_eq!(items.len(), 93);
    assert_eq!(sum(&items, "visit"), 3231);
    let one = query_json(
        &store,
        &["--kind", "website", "--key", "boutique-ete.fr", "--from", "2023-03-31"],
    );
    assert_eq!(one.len(), 1);
    assert_eq!(
        one[0],
        serde_json::json!({"tenant":"default","kind":"website","key":"boutique-ete.fr","date":"2023-03-31",
            "dimensions":{"website_name":"boutique-ete.fr"},"metrics":{"visit":100,"duration":6000,"dvisitor":80}})
    );
    let table = run(&[
        "query",
        "--store",
        &store,
        "--kind",
        "website",
        "--key",
        "Cafe Creme",
        "--to",
        "2023-03-01",
    ]);
    assert!(stdout(&table).contains("Cafe Creme"), "{}", stdout(&table));
    let csv_out = run(&[
        "query",
        "--store",
        &store,
        "--kind",
        "website",
        "--format",
        "csv",
        "--to",
        "2023-03-01",
    ]);
    assert!(
        stdout(&csv_out).starts_with("tenant,date,website_name,visit"),
        "{}",
        stdout(&csv_out)
    );
}

#[test]
fn reimporting_the_same_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("r.db").display());
    let csv = repo().join("examples/pagetree.csv");
    assert_eq!(
        run(&["import", csv.to_str().unwrap(), "--store", &store]).status.code(),
        Some(0)
    );
    let once = query_json(&store, &["--kind", "pagetree"]);
    assert_eq!(
        run(&["import", csv.to_str().unwrap(), "--store", &store]).status.code(),
        Some(0)
    );
    assert_eq!(query_json(&store, &["--kind", "pagetree"]), once);
}

#[test]
fn a_later_import_replaces_sent_metrics_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("r.db").display());
    write(dir.path(), "a.json", PROFILE_2_DAYS);
    let a = write(dir.path(), "a.csv", "Nom,Visites,Duree\nsite,30,600\n");
    assert_eq!(
        run(&["import", a.to_str().unwrap(), "--store", &store]).status.code(),
        Some(0)
    );
    let only_visits = write(
        dir.path(),
        "b.json",
        &PROFILE_2_DAYS.replace(r#",{"idx":2,"target":"duration"}"#, ""),
    );
    let b = write(dir.path(), "b.csv", "Nom,Visites\nsite,34\n");
    let out = run(&[
        "import",
        b.to_str().unwrap(),
        "--profile",
        only_visits.to_str().unwrap(),
        "--store",
        &store,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let items = query_json(&store, &["--kind", "website"]);
    let visits: Vec<u64> = items.iter().map(|i| i["metrics"]["visit"].as_u64().unwrap()).collect();
    let durations: Vec<u64> = items
        .iter()
        .map(|i| i["metrics"]["duration"].as_u64().unwrap())
        .collect();
    assert_eq!(visits, [17, 17], "15 then 17 gives 17");
    assert_eq!(durations, [300, 300], "duration was not sent again: it stays");
}

#[test]
fn tenants_do_not_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("r.db").display());
    write(dir.path(), "a.json", PROFILE_2_DAYS);
    let a = write(dir.path(), "a.csv", "Nom,Visites,Duree\nsite,30,600\n");
    assert_eq!(
        run(&["import", a.to_str().unwrap(), "--store", &store, "--tenant", "acme"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(query_json(&store, &["--kind", "website", "--tenant", "acme"]).len(), 2);
    assert!(query_json(&store, &["--kind", "website"]).is_empty());
    let bad = run(&["import", a.to_str().unwrap(), "--store", &store, "--tenant", "a/b"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

#[test]
fn an_invalid_file_writes_nothing_and_exits_3_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let store = format!("sqlite:{}", db.display());
    write(dir.path(), "a.json", PROFILE_2_DAYS);
    let a = write(
        dir.path(),
        "a.csv",
        "Nom,Visites,Duree\nfine,30,600\nbad,trente,600\nworse,1,1:2:3\n",
    );
    let report = dir.path().join("report.json");
    let out = run(&[
        "import",
        a.to_str().unwrap(),
        "--store",
        &store,
        "--report-json",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("line 3, column 2 (idx 1), value \"trente\": not a number for visit"),
        "{err}"
    );
    assert!(err.contains("line 4, column 3 (idx 2), value \"1:2:3\""), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(stdout(&out).is_empty());
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["status"], "invalid");
    assert_eq!(report["error_count"], 2);
    assert_eq!(
        report["errors"][0],
        serde_json::json!({"line":3,"idx":1,"value":"trente","reason":"not a number for visit"})
    );
    assert!(query_json(&store, &["--kind", "website"]).is_empty(), "nothing written");
}

#[test]
fn a_broken_profile_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.json",
        "{\n\"skipHeader\":true,\n\"kind\":\"searchengine\"\n",
    );
    let a = write(dir.path(), "a.csv", "Nom,Visites\nx,1\n");
    let out = run(&["validate", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("line 4, column 0"), "{}", stderr(&out));
    write(dir.path(), "a.json", &PROFILE_2_DAYS.replace("website", "websites"));
    let out = run(&["validate", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("valid kinds are website, searchengine"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_and_dry_run_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let store = format!("sqlite:{}", db.display());
    let csv = repo().join("examples/website.csv");
    let out = run(&["validate", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("valid (nothing written)"), "{}", stdout(&out));
    let out = run(&["import", csv.to_str().unwrap(), "--dry-run", "--store", &store]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!db.exists(), "a dry run does not even create the store");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["import"],
        vec!["frobnicate"],
        vec!["query", "--kind", "planet"],
        vec!["query", "--kind", "website", "--from", "2023-13-01"],
        vec![
            "query",
            "--kind",
            "website",
            "--from",
            "2023-03-02",
            "--to",
            "2023-03-01",
        ],
        vec!["import", "x.csv", "--store", "postgres:db"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty());
    }
}

#[test]
fn missing_files_exit_1_with_the_path() {
    let out = run(&["validate", "/nonexistent/x.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/x.json"), "{}", stderr(&out));
}

#[test]
fn kinds_and_schema_come_from_the_catalog() {
    let out = run(&["kinds"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for needle in [
        "website",
        "key: geoloccountry_isocode",
        "optional dimension: pageinfo_url",
        "visitone",
        "scartvalidamount",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let json: Value = serde_json::from_slice(&run(&["kinds", "--format", "json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 5);
    assert_eq!(json[4]["kind"], "pagetree");
    assert_eq!(json[4]["metrics"][0]["name"], "hit");

    let schema: Value = serde_json::from_slice(&run(&["schema"]).stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    for example in ["examples/website.json", "examples/pagetree.json"] {
        let profile: Value = serde_json::from_slice(&std::fs::read(repo().join(example)).unwrap()).unwrap();
        assert!(validator.is_valid(&profile), "{example} validates against the schema");
    }
    let wrong_metric: Value = serde_json::from_str(&PROFILE_2_DAYS.replace("duration", "hit")).unwrap();
    assert!(!validator.is_valid(&wrong_metric), "hit is not a website metric");
    let no_key: Value = serde_json::from_str(&PROFILE_2_DAYS.replace("website_name", "pageinfo_url")).unwrap();
    assert!(!validator.is_valid(&no_key), "the key dimension is required");
    let unknown: Value = serde_json::from_str(&PROFILE_2_DAYS.replace("\"skipHeader\"", "\"skipheader\"")).unwrap();
    assert!(!validator.is_valid(&unknown), "unknown fields are refused");
}

#[test]
fn the_store_comes_from_the_environment_when_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let csv = repo().join("examples/website.csv");
    let out = reimport()
        .args(["import", csv.to_str().unwrap()])
        .env("REIMPORT_STORE", format!("sqlite:{}", db.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(db.exists());
    let out = reimport()
        .args(["import", csv.to_str().unwrap(), "--dry-run"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!dir.path().join("reimport.db").exists());
}

#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    for args in [&["kinds"][..], &["schema"][..], &["kinds", "--format", "json"][..]] {
        // The reading end is closed before the command starts: every write meets a closed pipe.
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = reimport()
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("reimport runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{args:?}: {}", stderr(&out));
    }
}
