//! What the daemon started and finished, in `DIR/.reimport/ledger.jsonl`: one JSON record a
//! line, appended, so a `kill -9` loses at most a half line (skipped when read back).
//!
//! Every import appends `started` before writing and `imported` or `invalid` after. With
//! `--keep-in-place` the files never move, so the ledger is what tells a pair already done from
//! a new or changed one: a pair is done when a finished record names the same paths with the same
//! size and mtime, or the same size and content hash (a `touch` does not trigger a re-import).
//! Without it, the move to `processed/` says what is done and the ledger is a journal.
//!
//! The ledger stays small over months: when opened, and whenever it holds many more lines than
//! live entries, it is rewritten with only the last record of each file still in place.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::names::STATE_DIR;
use super::settle::FileState;

pub const LEDGER_FILE: &str = "ledger.jsonl";

/// A file as it was imported: path + size + mtime + content hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_ns: u64,
    pub sha256: String,
}

impl Fingerprint {
    /// Reads the whole file once to hash it.
    pub fn of_file(path: &Path) -> io::Result<Fingerprint> {
        let meta = fs::metadata(path)?;
        let mut file = File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 128 * 1024];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let state = FileState::of(&meta);
        Ok(Fingerprint {
            size: state.size,
            mtime_ns: mtime_ns(state.mtime),
            sha256,
        })
    }

    pub fn same_stat(&self, state: &FileState) -> bool {
        self.size == state.size && self.mtime_ns == mtime_ns(state.mtime)
    }

    pub fn same_content(&self, other: &Fingerprint) -> bool {
        self.size == other.size && self.sha256 == other.sha256
    }
}

fn mtime_ns(mtime: SystemTime) -> u64 {
    mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// About to write; without a later record, the import was cut short.
    Started,
    /// Written to the store.
    Imported,
    /// Refused as invalid; nothing written.
    Invalid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRecord {
    pub step: Step,
    /// Paths relative to the drop folder.
    pub csv: String,
    pub profile: String,
    pub csv_file: Fingerprint,
    pub profile_file: Fingerprint,
    pub tenant: String,
    /// RFC 3339.
    pub at: String,
}

#[derive(Debug)]
pub struct Ledger {
    root: PathBuf,
    path: PathBuf,
    file: File,
    /// The last finished record of each CSV (relative path).
    finished: HashMap<String, LedgerRecord>,
    /// Started and not (yet) finished.
    started: HashMap<String, LedgerRecord>,
    lines: usize,
    /// Compact when `lines` passes this.
    compact_at: usize,
}

impl Ledger {
    /// Lines appended beyond twice the live entries before the ledger is compacted.
    const SLACK: usize = 10_000;

    /// Opens (creating) the ledger of the drop folder `root`, and compacts it.
    pub fn open(root: &Path) -> io::Result<Ledger> {
        let dir = root.join(STATE_DIR);
        fs::create_dir_all(&dir)?;
        let path = dir.join(LEDGER_FILE);
        let mut finished = HashMap::new();
        let mut started = HashMap::new();
        match File::open(&path) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let Ok(record) = serde_json::from_str::<LedgerRecord>(&line?) else {
                        continue;
                    };
                    Self::apply(&mut finished, &mut started, record);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut ledger = Ledger {
            root: root.to_path_buf(),
            path,
            file,
            finished,
            started,
            lines: 0,
            compact_at: 0,
        };
        ledger.compact()?;
        Ok(ledger)
    }

    fn apply(
        finished: &mut HashMap<String, LedgerRecord>,
        started: &mut HashMap<String, LedgerRecord>,
        record: LedgerRecord,
    ) {
        match record.step {
            Step::Started => {
                started.insert(record.csv.clone(), record);
            }
            Step::Imported | Step::Invalid => {
                started.remove(&record.csv);
                finished.insert(record.csv.clone(), record);
            }
        }
    }

    /// Imports started and never finished (cut short by a crash or a kill).
    pub fn unfinished(&self) -> impl Iterator<Item = &LedgerRecord> {
        self.started.values()
    }

    /// The finished record of this pair if both files are unchanged by `stat` (no hashing).
    pub fn finished_with_stat(
        &self,
        csv: &str,
        profile: &str,
        csv_state: &FileState,
        profile_state: &FileState,
    ) -> Option<&LedgerRecord> {
        self.finished.get(csv).filter(|r| {
            r.profile == profile && r.csv_file.same_stat(csv_state) && r.profile_file.same_stat(profile_state)
        })
    }

    /// The finished record of this pair if both files have the same content.
    pub fn finished_with_content(
        &self,
        csv: &str,
        profile: &str,
        csv_file: &Fingerprint,
        profile_file: &Fingerprint,
    ) -> Option<&LedgerRecord> {
        self.finished.get(csv).filter(|r| {
            r.profile == profile && r.csv_file.same_content(csv_file) && r.profile_file.same_content(profile_file)
        })
    }

    pub fn append(&mut self, record: LedgerRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.lines += 1;
        Self::apply(&mut self.finished, &mut self.started, record);
        if self.lines > self.compact_at {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the ledger with the live entries of files still in place.
    fn compact(&mut self) -> io::Result<()> {
        let root = self.root.clone();
        let in_place = |rel: &String| root.join(rel).exists();
        self.finished.retain(|csv, _| in_place(csv));
        self.started.retain(|csv, _| in_place(csv));
        let temporary = self.path.with_extension("jsonl.tmp");
        {
            let mut out = io::BufWriter::new(File::create(&temporary)?);
            for record in self.finished.values().chain(self.started.values()) {
                serde_json::to_writer(&mut out, record).map_err(io::Error::other)?;
                out.write_all(b"\n")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        fs::rename(&temporary, &self.path)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.lines = self.finished.len() + self.started.len();
        self.compact_at = Self::SLACK + 2 * self.lines;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: Step, csv: &str, content: &str) -> LedgerRecord {
        let fp = Fingerprint {
            size: content.len() as u64,
            mtime_ns: 1,
            sha256: content.into(),
        };
        LedgerRecord {
            step,
            csv: csv.into(),
            profile: csv.replace(".csv", ".json"),
            csv_file: fp.clone(),
            profile_file: fp,
            tenant: "default".into(),
            at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn remembers_finished_pairs_across_reopen_and_drops_gone_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a.csv"), "x").unwrap();
        fs::write(root.join("b.csv"), "x").unwrap();
        {
            let mut ledger = Ledger::open(root).unwrap();
            ledger.append(record(Step::Started, "a.csv", "v1")).unwrap();
            ledger.append(record(Step::Imported, "a.csv", "v1")).unwrap();
            ledger.append(record(Step::Started, "b.csv", "v1")).unwrap();
            ledger.append(record(Step::Imported, "gone.csv", "v1")).unwrap();
        }
        // A kill -9 mid-append leaves half a line.
        let mut file = OpenOptions::new()
            .append(true)
            .open(root.join(STATE_DIR).join(LEDGER_FILE))
            .unwrap();
        file.write_all(b"{\"step\":\"imp").unwrap();

        let ledger = Ledger::open(root).unwrap();
        let a = record(Step::Imported, "a.csv", "v1");
        assert!(ledger
            .finished_with_content("a.csv", "a.json", &a.csv_file, &a.profile_file)
            .is_some());
        let changed = record(Step::Imported, "a.csv", "v2");
        assert!(ledger
            .finished_with_content("a.csv", "a.json", &changed.csv_file, &a.profile_file)
            .is_none());
        assert!(ledger
            .finished_with_content("a.csv", "other.json", &a.csv_file, &a.profile_file)
            .is_none());
        assert_eq!(
            ledger.unfinished().map(|r| r.csv.as_str()).collect::<Vec<_>>(),
            ["b.csv"]
        );
        assert!(!ledger.finished.contains_key("gone.csv"), "compacted away");
    }

    #[test]
    fn stays_small_when_files_move_away_after_import() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path()).unwrap();
        for i in 0..15_000 {
            ledger
                .append(record(Step::Imported, &format!("moved-{i}.csv"), "v"))
                .unwrap();
        }
        let lines = fs::read_to_string(dir.path().join(STATE_DIR).join(LEDGER_FILE))
            .unwrap()
            .lines()
            .count();
        assert!(lines <= Ledger::SLACK, "{lines} lines");
        assert!(ledger.finished.len() <= Ledger::SLACK);
    }
}
