//! When a dropped file may be read, and when a pair is complete: a pure state machine.
//!
//! The watcher thread only reports what it saw (a write, a close after writing, a rename into
//! place, a file found by a scan); the [`Settler`] decides. A file is settled when its writer
//! closed it (on inotify; other backends and scans cannot tell) and its size and mtime stayed
//! the same for the settle time, checked by a fresh `stat` at the deadline. A file renamed into
//! place is settled at once: renaming is how careful writers publish a finished file. A pair is
//! ready when its `.csv` and `.json` are both settled, so whichever arrives second triggers it.
//!
//! The clock (`now`) and the file system (`stat`) are parameters, as in notify's debouncers, so
//! the tests drive hours of file activity without sleeping.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::names::{pair_stem, role_of, Role};

/// What `stat` says about a file: enough to notice it changing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileState {
    pub size: u64,
    pub mtime: SystemTime,
}

impl FileState {
    pub fn of(meta: &Metadata) -> FileState {
        FileState {
            size: meta.len(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }
}

/// What the watcher or a scan saw happen to a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Created or written to: a writer has it open.
    Written,
    /// The writer closed it after writing (inotify `IN_CLOSE_WRITE`).
    Closed,
    /// Renamed into place: complete, taken at once.
    Placed,
    /// Found by a scan, or its metadata changed: no writer known.
    Seen,
}

#[derive(Clone, Copy, Debug)]
pub struct SettleRules {
    /// How long size and mtime must stay the same.
    pub settle: Duration,
    /// Wait for the writer's close before settling (inotify reports it; polling cannot).
    pub require_close: bool,
    /// A written file never reported closed (a writer the watcher missed) settles anyway once
    /// unchanged this long.
    pub close_timeout: Duration,
}

/// A complete pair, both files settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyPair {
    pub csv: PathBuf,
    pub profile: PathBuf,
}

#[derive(Debug)]
struct TrackedFile {
    role: Role,
    state: FileState,
    changed_at: Instant,
    closed: bool,
    settled: bool,
    /// Just settled: look on disk for an untracked partner (one already consumed by an earlier
    /// pair, when only this file changed since).
    find_partner: bool,
}

#[derive(Debug)]
pub struct Settler {
    rules: SettleRules,
    files: BTreeMap<PathBuf, TrackedFile>,
}

impl Settler {
    pub fn new(rules: SettleRules) -> Settler {
        Settler {
            rules,
            files: BTreeMap::new(),
        }
    }

    /// Records what was seen of `path` (now in `state`). Paths that are not a `.csv` or `.json`
    /// input name are ignored.
    pub fn observe(&mut self, now: Instant, path: &Path, state: FileState, how: Observed) {
        let Some(role) = role_of(path) else { return };
        let open_after_write = self.rules.require_close && how == Observed::Written;
        let file = self.files.entry(path.to_path_buf()).or_insert_with(|| TrackedFile {
            role,
            state,
            changed_at: now,
            closed: !open_after_write,
            settled: false,
            find_partner: false,
        });
        match how {
            Observed::Written => {
                file.closed = !open_after_write;
                file.state = state;
                file.changed_at = now;
                file.settled = false;
            }
            Observed::Closed | Observed::Seen => {
                if how == Observed::Closed {
                    file.closed = true;
                }
                if file.state != state {
                    file.state = state;
                    file.changed_at = now;
                    file.settled = false;
                }
            }
            Observed::Placed => {
                file.state = state;
                file.closed = true;
                file.settled = true;
                file.find_partner = true;
            }
        }
    }

    /// The file is gone (removed, renamed away) or no longer ours to watch.
    pub fn forget(&mut self, path: &Path) {
        self.files.remove(path);
    }

    /// Forgets every file `exists` denies (a scan's way to drop files deleted unseen).
    pub fn retain_existing(&mut self, exists: impl Fn(&Path) -> bool) {
        self.files.retain(|path, _| exists(path));
    }

    pub fn tracked(&self) -> usize {
        self.files.len()
    }

    /// Settles the files whose deadline passed and whose fresh `stat` matches what was last
    /// seen, and hands out (and forgets) the pairs now complete.
    pub fn due(&mut self, now: Instant, mut stat: impl FnMut(&Path) -> Option<FileState>) -> Vec<ReadyPair> {
        let rules = self.rules;
        let mut vanished = Vec::new();
        for (path, file) in self.files.iter_mut().filter(|(_, f)| !f.settled) {
            let quiet_for = now.saturating_duration_since(file.changed_at);
            let may_settle = quiet_for >= rules.settle && (file.closed || quiet_for >= rules.close_timeout);
            if !may_settle {
                continue;
            }
            match stat(path) {
                None => vanished.push(path.clone()),
                Some(state) if state == file.state => {
                    file.settled = true;
                    file.find_partner = true;
                }
                Some(state) => {
                    file.state = state;
                    file.changed_at = now;
                }
            }
        }
        for path in vanished {
            self.files.remove(&path);
        }
        let mut partners = Vec::new();
        for (path, file) in self.files.iter_mut().filter(|(_, f)| f.find_partner) {
            file.find_partner = false;
            let extensions = match file.role {
                Role::Csv => ["json", "JSON"],
                Role::Profile => ["csv", "CSV"],
            };
            partners.extend(extensions.iter().map(|ext| path.with_extension(ext)));
        }
        for partner in partners {
            if !self.files.contains_key(&partner) {
                if let Some(state) = stat(&partner) {
                    self.observe(now, &partner, state, Observed::Seen);
                }
            }
        }

        let mut halves: BTreeMap<PathBuf, [Option<&PathBuf>; 2]> = BTreeMap::new();
        for (path, file) in self.files.iter().filter(|(_, f)| f.settled) {
            let slot = match file.role {
                Role::Csv => 0,
                Role::Profile => 1,
            };
            halves.entry(pair_stem(path)).or_default()[slot] = Some(path);
        }
        let ready: Vec<ReadyPair> = halves
            .into_values()
            .filter_map(|[csv, profile]| {
                Some(ReadyPair {
                    csv: csv?.clone(),
                    profile: profile?.clone(),
                })
            })
            .collect();
        for pair in &ready {
            self.files.remove(&pair.csv);
            self.files.remove(&pair.profile);
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SETTLE: Duration = Duration::from_millis(1000);

    fn rules(require_close: bool) -> SettleRules {
        SettleRules {
            settle: SETTLE,
            require_close,
            close_timeout: Duration::from_secs(60),
        }
    }

    fn state(size: u64, mtime_secs: u64) -> FileState {
        FileState {
            size,
            mtime: SystemTime::UNIX_EPOCH + Duration::from_secs(mtime_secs),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A pretend file system: what `stat` answers.
    #[derive(Default)]
    struct Disk(HashMap<PathBuf, FileState>);

    impl Disk {
        fn set(&mut self, path: &str, s: FileState) -> (PathBuf, FileState) {
            self.0.insert(PathBuf::from(path), s);
            (PathBuf::from(path), s)
        }
        fn stat(&self) -> impl FnMut(&Path) -> Option<FileState> + '_ {
            |p| self.0.get(p).copied()
        }
    }

    fn pair(csv: &str, profile: &str) -> ReadyPair {
        ReadyPair {
            csv: csv.into(),
            profile: profile.into(),
        }
    }

    #[test]
    fn profile_after_csv_triggers_the_pair_once() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(false));
        let (csv, s) = disk.set("/d/a.csv", state(10, 1));
        settler.observe(t0, &csv, s, Observed::Seen);
        assert!(
            settler.due(t0 + ms(5000), disk.stat()).is_empty(),
            "a csv alone is no pair"
        );

        let t1 = t0 + ms(7000);
        let (json, s) = disk.set("/d/a.json", state(3, 7));
        settler.observe(t1, &json, s, Observed::Seen);
        assert!(settler.due(t1 + ms(999), disk.stat()).is_empty());
        assert_eq!(
            settler.due(t1 + ms(1000), disk.stat()),
            vec![pair("/d/a.csv", "/d/a.json")]
        );
        assert!(settler.due(t1 + ms(5000), disk.stat()).is_empty());
        assert_eq!(settler.tracked(), 0);
    }

    #[test]
    fn waits_for_the_close_after_writing_even_through_long_pauses() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(true));
        let (json, s) = disk.set("/d/a.json", state(3, 0));
        settler.observe(t0, &json, s, Observed::Placed);

        // Three chunks, a pause of 5 s (five settle times) between them, the file kept open.
        let mut now = t0;
        for chunk in 1..=3 {
            if chunk > 1 {
                now += ms(5000);
            }
            let (csv, s) = disk.set("/d/a.csv", state(chunk * 100, chunk));
            settler.observe(now, &csv, s, Observed::Written);
            assert!(
                settler.due(now + ms(4999), disk.stat()).is_empty(),
                "taken while open after chunk {chunk}"
            );
        }
        let (csv, s) = disk.set("/d/a.csv", state(300, 3));
        settler.observe(now + ms(10), &csv, s, Observed::Closed);
        assert!(
            settler.due(now + ms(500), disk.stat()).is_empty(),
            "closed but not yet quiet"
        );
        assert_eq!(
            settler.due(now + ms(1000), disk.stat()),
            vec![pair("/d/a.csv", "/d/a.json")]
        );
    }

    #[test]
    fn a_change_seen_at_the_deadline_restarts_the_wait() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(false));
        let (json, s) = disk.set("/d/a.json", state(3, 0));
        settler.observe(t0, &json, s, Observed::Placed);
        let (csv, s) = disk.set("/d/a.csv", state(100, 1));
        settler.observe(t0, &csv, s, Observed::Seen);

        // Grew without an event (a missed event, a network share): the deadline's stat notices.
        disk.set("/d/a.csv", state(200, 2));
        assert!(settler.due(t0 + ms(1000), disk.stat()).is_empty());
        assert!(settler.due(t0 + ms(1999), disk.stat()).is_empty());
        assert_eq!(
            settler.due(t0 + ms(2000), disk.stat()),
            vec![pair("/d/a.csv", "/d/a.json")]
        );
    }

    #[test]
    fn without_close_events_quiet_files_settle_after_the_settle_time() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(false));
        for (path, s) in [disk.set("/d/a.csv", state(1, 0)), disk.set("/d/a.json", state(2, 0))] {
            settler.observe(t0, &path, s, Observed::Written);
        }
        let (csv, s) = disk.set("/d/a.csv", state(5, 1));
        settler.observe(t0 + ms(600), &csv, s, Observed::Written);
        assert!(
            settler.due(t0 + ms(1000), disk.stat()).is_empty(),
            "the csv changed at 600 ms"
        );
        assert_eq!(
            settler.due(t0 + ms(1600), disk.stat()),
            vec![pair("/d/a.csv", "/d/a.json")]
        );
    }

    #[test]
    fn a_changed_csv_pairs_again_with_its_unchanged_profile() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(true));
        for (path, s) in [disk.set("/d/a.csv", state(1, 0)), disk.set("/d/a.json", state(2, 0))] {
            settler.observe(t0, &path, s, Observed::Seen);
        }
        assert_eq!(settler.due(t0 + SETTLE, disk.stat()).len(), 1);

        let t1 = t0 + ms(60_000);
        let (csv, s) = disk.set("/d/a.csv", state(5, 60));
        settler.observe(t1, &csv, s, Observed::Written);
        settler.observe(t1, &csv, s, Observed::Closed);
        assert!(
            settler.due(t1 + SETTLE, disk.stat()).is_empty(),
            "the profile is now looked at"
        );
        assert_eq!(
            settler.due(t1 + SETTLE * 2, disk.stat()),
            vec![pair("/d/a.csv", "/d/a.json")]
        );
    }

    #[test]
    fn renamed_into_place_is_taken_at_once() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(true));
        let (json, s) = disk.set("/d/a.json", state(2, 0));
        settler.observe(t0, &json, s, Observed::Placed);
        let (csv, s) = disk.set("/d/a.csv", state(9, 0));
        settler.observe(t0, &csv, s, Observed::Placed);
        assert_eq!(settler.due(t0, disk.stat()), vec![pair("/d/a.csv", "/d/a.json")]);
    }

    #[test]
    fn a_settled_file_written_again_settles_again() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(true));
        let (csv, s) = disk.set("/d/a.csv", state(9, 0));
        settler.observe(t0, &csv, s, Observed::Placed);
        let (csv, s) = disk.set("/d/a.csv", state(12, 1));
        settler.observe(t0 + ms(10), &csv, s, Observed::Written);
        let (json, s) = disk.set("/d/a.json", state(2, 0));
        settler.observe(t0 + ms(20), &json, s, Observed::Placed);
        assert!(
            settler.due(t0 + ms(5000), disk.stat()).is_empty(),
            "the csv is open again"
        );
    }

    #[test]
    fn a_writer_never_seen_closing_is_trusted_after_the_close_timeout() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(true));
        let (json, s) = disk.set("/d/a.json", state(2, 0));
        settler.observe(t0, &json, s, Observed::Placed);
        let (csv, s) = disk.set("/d/a.csv", state(9, 0));
        settler.observe(t0, &csv, s, Observed::Written);
        assert!(settler.due(t0 + Duration::from_secs(59), disk.stat()).is_empty());
        assert_eq!(settler.due(t0 + Duration::from_secs(60), disk.stat()).len(), 1);
    }

    #[test]
    fn scanned_files_need_no_close() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(true));
        for (path, s) in [
            disk.set("/d/x/a.csv", state(1, 0)),
            disk.set("/d/x/a.json", state(2, 0)),
        ] {
            settler.observe(t0, &path, s, Observed::Seen);
        }
        assert_eq!(
            settler.due(t0 + SETTLE, disk.stat()),
            vec![pair("/d/x/a.csv", "/d/x/a.json")]
        );
    }

    #[test]
    fn vanished_and_forgotten_files_make_no_pair() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(false));
        for (path, s) in [
            disk.set("/d/a.csv", state(1, 0)),
            disk.set("/d/a.json", state(2, 0)),
            disk.set("/d/b.csv", state(1, 0)),
            disk.set("/d/b.json", state(2, 0)),
            disk.set("/d/c.csv", state(1, 0)),
        ] {
            settler.observe(t0, &path, s, Observed::Seen);
        }
        disk.0.remove(Path::new("/d/a.json"));
        disk.0.remove(Path::new("/d/b.csv"));
        settler.forget(Path::new("/d/b.csv"));
        settler.observe(t0, Path::new("/d/notes.txt"), state(1, 0), Observed::Seen);
        assert!(settler.due(t0 + SETTLE, disk.stat()).is_empty());
        assert_eq!(settler.tracked(), 3, "a.csv, b.json and c.csv wait for their partners");
        settler.retain_existing(|p| p != Path::new("/d/c.csv"));
        assert_eq!(settler.tracked(), 2);
    }

    #[test]
    fn pairs_need_the_same_folder_and_stem() {
        let t0 = Instant::now();
        let mut disk = Disk::default();
        let mut settler = Settler::new(rules(false));
        for (path, s) in [
            disk.set("/d/a.csv", state(1, 0)),
            disk.set("/d/x/a.json", state(2, 0)),
            disk.set("/d/b.csv", state(1, 0)),
            disk.set("/d/b2.json", state(2, 0)),
        ] {
            settler.observe(t0, &path, s, Observed::Seen);
        }
        assert!(settler.due(t0 + SETTLE, disk.stat()).is_empty());
    }
}
