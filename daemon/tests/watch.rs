//! `reimport watch` as it runs in production: the real binary on a real folder with a real
//! SQLite store, driven by files written, renamed and dropped by the test, stopped with SIGTERM
//! or killed with SIGKILL. Conditions are polled with timeouts; nothing sleeps blindly except
//! the pauses of the slow writer.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const PROFILE_2_DAYS: &str = r#"{"skipHeader":true,"kind":"website","dimensions":[{"idx":0,"target":"website_name"}],
  "metrics":[{"idx":1,"target":"visit"},{"idx":2,"target":"duration"}],
  "period":{"from":"01/03/2023","to":"02/03/2023","scale":"D"}}"#;

const PROFILE_31_DAYS: &str = r#"{"skipHeader":true,"kind":"website","dimensions":[{"idx":0,"target":"website_name"}],
  "metrics":[{"idx":1,"target":"visit"},{"idx":2,"target":"duration"}],
  "period":{"from":"01/03/2023","to":"31/03/2023","scale":"D"}}"#;

/// `lines` lines `{prefix}{i},{visits},{duration}` after a header.
fn website_csv(prefix: &str, lines: usize, visits: u64) -> String {
    let mut text = String::from("Nom,Visites,Temps\n");
    for i in 0..lines {
        text.push_str(&format!("{prefix}{i},{visits},{}\n", 2 * visits));
    }
    text
}

fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first file under `dir` whose path ends with `name` (a file name, or `folder/name`).
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.ends_with(name) {
                return Some(path);
            }
        }
    }
    None
}

fn count_files(dir: &Path, extension: &str) -> usize {
    let mut folders = vec![dir.to_path_buf()];
    let mut n = 0;
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.to_string_lossy().ends_with(extension) {
                n += 1;
            }
        }
    }
    n
}

struct Env {
    _temp: tempfile::TempDir,
    drop: PathBuf,
    db: PathBuf,
}

impl Env {
    fn new() -> Env {
        let temp = tempfile::tempdir().unwrap();
        let drop = temp.path().join("drop");
        fs::create_dir(&drop).unwrap();
        let db = temp.path().join("store.db");
        Env { drop, db, _temp: temp }
    }

    fn store(&self) -> String {
        format!("sqlite:{}", self.db.display())
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.drop.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn processed(&self, name: &str) -> Option<PathBuf> {
        find(&self.drop.join("processed"), name)
    }

    fn failed(&self, name: &str) -> Option<PathBuf> {
        find(&self.drop.join("failed"), name)
    }

    /// `reimport query --format json` of one tenant's websites.
    fn query(&self, tenant: &str) -> Vec<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_reimport"))
            .args([
                "query",
                "--kind",
                "website",
                "--format",
                "json",
                "--tenant",
                tenant,
                "--store",
                &self.store(),
            ])
            .env_remove("REIMPORT_STORE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        match serde_json::from_slice(&out.stdout).unwrap() {
            Value::Array(items) => items,
            other => panic!("not an array: {other}"),
        }
    }

    fn sql_count_and_visits(&self) -> (i64, i64) {
        let db = rusqlite::Connection::open(&self.db).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db.query_row("SELECT count(*), coalesce(sum(visit), 0) FROM daily_item", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap_or((0, 0))
    }

    fn start(&self, extra: &[&str]) -> Watcher {
        Watcher::start(&self.drop, &self.store(), extra)
    }
}

fn sum(items: &[Value], metric: &str) -> u64 {
    items.iter().filter_map(|i| i["metrics"][metric].as_u64()).sum()
}

/// A running `reimport watch`, its JSON log lines collected as they come.
struct Watcher {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    fn start(drop: &Path, store: &str, extra: &[&str]) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reimport"))
            .arg("watch")
            .arg(drop)
            .args(["--store", store, "--log-format", "json"])
            .args(extra)
            .env_remove("REIMPORT_STORE")
            .env("REIMPORT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[watch] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let watcher = Watcher { child, log };
        assert!(
            watcher.wait_log("\"watching\"", Duration::from_secs(60)),
            "the watcher did not start"
        );
        watcher
    }

    fn lines_with(&self, needle: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        poll_until(timeout, || self.lines_with(needle) > 0)
    }

    fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LONG: Duration = Duration::from_secs(60);

#[test]
fn a_csv_written_slowly_in_chunks_is_imported_once_and_whole() {
    let env = Env::new();
    let watcher = env.start(&["--settle-ms", "500"]);
    env.write("slow.json", PROFILE_2_DAYS);
    let text = website_csv("site", 300, 10);
    let (header_and_first, rest) = text.split_at(text.find("site100,").unwrap());
    let (second, third) = rest.split_at(rest.find("site200,").unwrap());
    {
        let mut file = fs::File::create(env.drop.join("slow.csv")).unwrap();
        for (i, chunk) in [header_and_first, second, third].into_iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            file.write_all(chunk.as_bytes()).unwrap();
            file.flush().unwrap();
        }
    }
    assert!(
        poll_until(LONG, || env.processed("slow.json").is_some()),
        "never imported"
    );
    let report: Value = serde_json::from_slice(&fs::read(env.processed("slow.report.json").unwrap()).unwrap()).unwrap();
    assert_eq!(report["status"], "imported");
    assert_eq!(report["lines_read"], 300);
    assert_eq!(sum(&env.query("default"), "visit"), 300 * 10);
    assert!(env.processed("slow.csv").is_some() && env.processed("slow.json").is_some());
    assert!(!env.drop.join("slow.csv").exists());
    assert_eq!(watcher.lines_with("import started"), 1);
    assert_eq!(watcher.terminate().code(), Some(0));
}

#[test]
fn renamed_into_place_is_taken_without_waiting_for_the_settle_time() {
    let env = Env::new();
    let _watcher = env.start(&["--settle-ms", "30000"]);
    let started = Instant::now();
    let part = env.write("renamed.csv.part", &website_csv("r", 4, 6));
    let tmp = env.write("renamed.json.tmp", PROFILE_2_DAYS);
    std::thread::sleep(Duration::from_millis(200));
    fs::rename(part, env.drop.join("renamed.csv")).unwrap();
    fs::rename(tmp, env.drop.join("renamed.json")).unwrap();
    assert!(poll_until(LONG, || env.processed("renamed.json").is_some()));
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "waited for the settle time"
    );
    assert_eq!(sum(&env.query("default"), "visit"), 4 * 6);
}

#[test]
fn the_profile_after_the_csv_triggers_the_import() {
    let env = Env::new();
    let watcher = env.start(&["--settle-ms", "200"]);
    env.write("late.csv", &website_csv("late", 3, 4));
    // Long enough for the CSV to settle: alone, it is no pair.
    assert!(!watcher.wait_log("import started", Duration::from_millis(1500)));
    assert!(env.drop.join("late.csv").exists());
    env.write("late.json", PROFILE_2_DAYS);
    assert!(poll_until(LONG, || env.processed("late.json").is_some()));
    assert_eq!(sum(&env.query("default"), "visit"), 12);

    // The same names again (a corrected export): imported, archived beside the first with a suffix.
    env.write("late.json", PROFILE_2_DAYS);
    env.write("late.csv", &website_csv("late", 3, 6));
    assert!(poll_until(LONG, || env.processed("late-1.json").is_some()));
    assert!(env.processed("late-1.csv").is_some() && env.processed("late-1.report.json").is_some());
    assert_eq!(
        fs::read_to_string(env.processed("late.csv").unwrap()).unwrap(),
        website_csv("late", 3, 4)
    );
    assert_eq!(sum(&env.query("default"), "visit"), 18, "values replaced, not added");
}

#[test]
fn an_invalid_pair_goes_to_failed_with_line_and_column() {
    let env = Env::new();
    let _watcher = env.start(&["--settle-ms", "200"]);
    env.write("acme/bad.json", PROFILE_2_DAYS);
    env.write("acme/bad.csv", "Nom,Visites,Temps\nok.fr,10,20\nbad.fr,douze,20\n");
    assert!(poll_until(LONG, || env.failed("bad.json").is_some()));
    let report_path = env.failed("bad.report.json").unwrap();
    assert!(
        report_path.parent().unwrap().ends_with("acme"),
        "keeps the subfolder: {}",
        report_path.display()
    );
    let report: Value = serde_json::from_slice(&fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["status"], "invalid");
    let first = &report["errors"][0];
    assert_eq!(first["line"], 3);
    assert_eq!(first["idx"], 1);
    assert_eq!(first["value"], "douze");
    assert!(first["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(env.failed("bad.csv").is_some() && env.failed("bad.json").is_some());
    assert!(env.query("default").is_empty(), "an invalid file writes nothing");
    assert!(env.processed("bad.csv").is_none());
}

#[test]
fn kill_9_during_an_import_then_restart_gives_the_right_totals() {
    let env = Env::new();
    // Big enough that neither the first import nor its redo can finish before the kill or the
    // one-second stop timeout: 20,000 lines (620,000 items) took under a second once the
    // SQLite store got faster.
    const LINES: usize = 100_000;
    let watcher = env.start(&["--settle-ms", "200"]);
    env.write("big.json", PROFILE_31_DAYS);
    env.write("big.csv", &website_csv("site", LINES, 31));
    assert!(
        poll_until(LONG, || env.sql_count_and_visits().0 > 0),
        "the import never started writing"
    );
    watcher.kill_9();
    let (written, _) = env.sql_count_and_visits();
    let expected_items = (LINES * 31) as i64;
    assert!(
        written < expected_items,
        "killed too late to test anything: {written} items"
    );
    assert!(env.drop.join("big.csv").exists(), "not moved before the write finished");

    // SIGTERM while the redo is under way, with no time to finish: abandoned, exit 0, in place.
    let watcher = env.start(&["--settle-ms", "200", "--stop-timeout-secs", "1"]);
    assert!(
        watcher.lines_with("cut short") > 0,
        "the ledger knew the import was cut short"
    );
    assert!(watcher.wait_log("import started", LONG));
    assert_eq!(watcher.terminate().code(), Some(0));
    assert!(env.drop.join("big.csv").exists(), "an abandoned import stays in place");

    let watcher = env.start(&["--settle-ms", "200"]);
    assert!(poll_until(Duration::from_secs(120), || env
        .processed("big.json")
        .is_some()));
    assert_eq!(env.sql_count_and_visits(), (expected_items, (LINES * 31) as i64));
    assert_eq!(watcher.terminate().code(), Some(0));
}

#[test]
fn polling_finds_pairs_without_events() {
    let env = Env::new();
    let watcher = env.start(&["--settle-ms", "200", "--poll", "1"]);
    assert!(watcher.lines_with("\"mode\":\"poll\"") > 0);
    env.write("nfs/polled.json", PROFILE_2_DAYS);
    env.write("nfs/polled.csv", &website_csv("p", 3, 2));
    assert!(poll_until(LONG, || env.processed("nfs/polled.json").is_some()));
    assert_eq!(sum(&env.query("default"), "visit"), 6);
    assert_eq!(watcher.terminate().code(), Some(0));
}

#[test]
fn pairs_dropped_while_stopped_are_imported_at_start_per_subfolder_tenant() {
    let env = Env::new();
    env.write("acme/2023/march.csv", &website_csv("a", 2, 5));
    env.write("acme/2023/march.json", PROFILE_2_DAYS);
    env.write("globex/march.csv", &website_csv("g", 3, 7));
    env.write("globex/march.json", PROFILE_2_DAYS);
    env.write("loose.csv", &website_csv("l", 1, 1));
    env.write("loose.json", PROFILE_2_DAYS);
    env.write("globex/~$march.csv", "lock file of an office suite");
    // A symbolic link out of the drop folder is never followed.
    let outside = env.drop.parent().unwrap().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret.csv"), website_csv("s", 1, 1000)).unwrap();
    fs::write(outside.join("secret.json"), PROFILE_2_DAYS).unwrap();
    std::os::unix::fs::symlink(&outside, env.drop.join("evil")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.csv"), env.drop.join("acme/linked.csv")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.json"), env.drop.join("acme/linked.json")).unwrap();
    let watcher = env.start(&["--settle-ms", "200", "--tenant-from-subfolder"]);
    // Subfolders are kept under processed/<date>/; the profile is moved last.
    assert!(poll_until(LONG, || ["acme/2023/march.json", "globex/march.json"]
        .iter()
        .all(|f| env.processed(f).is_some())));
    for kept in [
        "acme/2023/march.csv",
        "acme/2023/march.report.json",
        "globex/march.csv",
        "globex/march.report.json",
    ] {
        assert!(env.processed(kept).is_some(), "{kept}");
    }
    assert_eq!(sum(&env.query("acme"), "visit"), 2 * 5);
    assert_eq!(sum(&env.query("globex"), "visit"), 3 * 7);
    assert!(env.query("default").is_empty());
    assert!(
        env.drop.join("loose.csv").exists(),
        "files directly in DIR have no tenant"
    );
    assert!(env.drop.join("globex/~$march.csv").exists());
    assert!(watcher.lines_with("tenant's subfolder") > 0);
    assert_eq!(watcher.terminate().code(), Some(0));
}

#[test]
fn a_thousand_pairs_dropped_at_once_are_all_imported() {
    const PAIRS: usize = 1000;
    let env = Env::new();
    let watcher = env.start(&["--settle-ms", "300", "--jobs", "4"]);
    for i in 0..PAIRS {
        env.write(&format!("bulk/p{i}.json"), PROFILE_2_DAYS);
        env.write(&format!("bulk/p{i}.csv"), &format!("Nom,Visites,Temps\nsite{i},2,4\n"));
    }
    let start = Instant::now();
    assert!(
        // Each pair leaves its profile and its report: 2 JSON files.
        poll_until(Duration::from_secs(150), || count_files(
            &env.drop.join("processed"),
            ".json"
        ) == 2 * PAIRS),
        "imported {} of {PAIRS}",
        count_files(&env.drop.join("processed"), ".report.json")
    );
    eprintln!(
        "{PAIRS} pairs imported {:?} after the last was written",
        start.elapsed()
    );
    let items = env.query("default");
    assert_eq!(items.len(), PAIRS * 2);
    assert_eq!(sum(&items, "visit"), (PAIRS * 2) as u64);
    assert_eq!(count_files(&env.drop.join("bulk"), ".csv"), 0);
    assert_eq!(watcher.lines_with("import started"), PAIRS, "each pair once");
    assert_eq!(watcher.terminate().code(), Some(0));
}

#[test]
fn keep_in_place_imports_once_and_again_when_a_file_changes() {
    let env = Env::new();
    let args = ["--settle-ms", "200", "--keep-in-place"];
    let watcher = env.start(&args);
    env.write("kept.json", PROFILE_2_DAYS);
    let csv = env.write("kept.csv", &website_csv("k", 2, 10));
    let imported = |w: &Watcher, n: usize| poll_until(LONG, || w.lines_with("\"status\":\"imported\"") >= n);
    assert!(imported(&watcher, 1));
    assert!(
        csv.exists() && env.drop.join("kept.json").exists(),
        "files stay in place"
    );
    assert!(!env.drop.join("processed").exists());
    assert!(env.drop.join(".reimport/reports/kept.report.json").exists());
    assert_eq!(sum(&env.query("default"), "visit"), 20);
    assert_eq!(watcher.terminate().code(), Some(0));

    // Restarted: the ledger says the pair is done; touching it does not change that.
    let watcher = env.start(&args);
    assert!(watcher.wait_log("initial scan done", LONG));
    let touched = fs::File::options().append(true).open(&csv).unwrap();
    touched.set_modified(std::time::SystemTime::now()).unwrap();
    drop(touched);
    assert!(
        !watcher.wait_log("import started", Duration::from_secs(2)),
        "re-imported an unchanged pair"
    );

    // Changed: imported again.
    fs::write(&csv, website_csv("k", 2, 30)).unwrap();
    assert!(imported(&watcher, 1));
    assert_eq!(sum(&env.query("default"), "visit"), 60);
    assert_eq!(watcher.terminate().code(), Some(0));
}

#[test]
fn a_pair_the_store_cannot_take_stays_in_place_and_is_retried() {
    let env = Env::new();
    let watcher = env.start(&["--settle-ms", "200"]);
    let db = rusqlite::Connection::open(&env.db).unwrap();
    db.execute_batch("ALTER TABLE daily_item RENAME TO daily_item_away")
        .unwrap();
    env.write("retry.json", PROFILE_2_DAYS);
    env.write("retry.csv", &website_csv("r", 2, 8));
    assert!(watcher.wait_log("to be retried", LONG));
    assert!(env.drop.join("retry.csv").exists() && env.drop.join("retry.json").exists());
    assert!(!env.drop.join("failed").exists(), "a store failure is no invalid file");

    db.execute_batch("ALTER TABLE daily_item_away RENAME TO daily_item")
        .unwrap();
    assert!(poll_until(LONG, || env.processed("retry.json").is_some()));
    assert_eq!(sum(&env.query("default"), "visit"), 16);
    assert_eq!(watcher.terminate().code(), Some(0));
}
