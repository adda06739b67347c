//! `reimport watch DIR`: the local deployment. Imports every `<name>.csv` + `<name>.json` pair
//! dropped into DIR or its subfolders, with the same pipeline as `reimport import`, and is meant
//! to be left running for months.
//!
//! The parts, and why they are apart:
//! - the `notify` watcher thread only forwards events; [`settle::Settler`], a pure state machine
//!   with an injected clock, decides when a file is complete (closed by its writer, size and
//!   mtime unchanged for `--settle-ms`, or renamed into place) and when a pair is;
//! - a periodic rescan (`--rescan-secs`, and once at start) feeds the same state machine, so files
//!   dropped while the daemon was down, or whose events were lost, are found all the same;
//! - at most `--jobs` imports run at once; each records `started` in the [`ledger`] before
//!   writing and `imported`/`invalid` after, and only then moves the pair to `processed/<date>/`
//!   or `failed/<date>/` ([`archive`]). Upserts are idempotent, so a pair still in place after a
//!   crash is simply imported again. A pair that failed for another reason (the store is down)
//!   stays in place and is retried with a growing delay;
//! - [`names`] says what is input: never hidden or temporary names, never the daemon's own
//!   folders, never a symbolic link (nor anything through one).
//!
//! # Known problems
//!
//! - Network file systems (NFS, SMB, sshfs) deliver no events for changes made by other
//!   machines: run with `--poll SECS`. Polling sees no close, so only the settle time guards
//!   against reading a file still being written: give slow writers a longer `--settle-ms`.
//! - inotify needs one watch per folder, limited by `fs.inotify.max_user_watches`; past it, new
//!   folders are found only by the rescan (a warning says so). Raise the limit with sysctl.
//! - A writer that closes the file between chunks and pauses longer than the settle time looks
//!   finished: write to a temporary name (`*.part`, `*.tmp`) and rename, which is taken at once.
//!   A writer that keeps the file open is waited for, up to 60 settle times without any change.
//! - Editors that save by writing a new file and renaming it over the old one produce a rename
//!   into place: the pair is taken at once, as intended.
//! - A file changed after its import is imported again only with `--keep-in-place`; otherwise it
//!   has been moved away, and a new copy dropped later is a new import.
//! - If the move to `processed/` fails (permissions), the pair is imported again at every
//!   rescan: idempotent, but logged as an error each time.

mod archive;
mod ledger;
mod names;
mod settle;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};
use reimport_core::{ImportReport, ImportStatus, ProfileLimits, Store, Tenant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use self::archive::{archive_pair, write_report};
use self::ledger::{Fingerprint, Ledger, LedgerRecord, Step};
use self::names::{input_relative, role_of, TenantPolicy, FAILED, PROCESSED, STATE_DIR};
use self::settle::{FileState, Observed, ReadyPair, SettleRules, Settler};
use crate::cli::StoreArgs;
use crate::commands::UsageError;
use crate::pipeline::{first_problem, Failure, PairImport};
use crate::EXIT_OK;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The drop folder.
    pub dir: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Whose lines the dropped files are.
    #[arg(long, default_value = "default", conflicts_with = "tenant_from_subfolder")]
    pub tenant: String,
    /// The tenant is the first subfolder under DIR (files directly in DIR are refused).
    #[arg(long)]
    pub tenant_from_subfolder: bool,
    /// How long a file's size and mtime must stay the same before it is read.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub settle_ms: u64,
    /// Leave imported files where they are; a ledger in DIR/.reimport remembers what was done.
    #[arg(long)]
    pub keep_in_place: bool,
    /// Imports running at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Look for missed files this often.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub rescan_secs: u64,
    /// Poll DIR every SECS instead of waiting for events (network file systems).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub poll: Option<u64>,
    /// At SIGINT/SIGTERM, how long imports under way may take to finish before being abandoned.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub stop_timeout_secs: u64,
    /// The longest period a profile may cover, in days.
    #[arg(long, default_value_t = 366, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub max_period_days: u32,
    /// One line of text per event, or one JSON object (level from REIMPORT_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The flags, checked.
#[derive(Debug)]
struct WatchConfig {
    /// Canonical.
    root: PathBuf,
    tenants: TenantPolicy,
    rules: SettleRules,
    keep_in_place: bool,
    jobs: usize,
    rescan: Duration,
    poll: Option<Duration>,
    tick: Duration,
    stop_timeout: Duration,
    max_period_days: u32,
}

impl WatchConfig {
    fn from_args(args: &WatchArgs) -> anyhow::Result<WatchConfig> {
        let root = fs::canonicalize(&args.dir)
            .map_err(|e| UsageError(format!("the drop folder {}: {e}", args.dir.display())))?;
        if !root.is_dir() {
            return Err(UsageError(format!("the drop folder {} is not a folder", args.dir.display())).into());
        }
        let tenants = if args.tenant_from_subfolder {
            TenantPolicy::FromSubfolder
        } else {
            TenantPolicy::Fixed(Tenant::new(&args.tenant).map_err(|e| UsageError(format!("--tenant: {e}")))?)
        };
        let settle = Duration::from_millis(args.settle_ms);
        let rules = SettleRules {
            settle,
            require_close: cfg!(target_os = "linux") && args.poll.is_none(),
            close_timeout: (settle * 60).max(Duration::from_secs(60)),
        };
        Ok(WatchConfig {
            root,
            tenants,
            rules,
            keep_in_place: args.keep_in_place,
            jobs: usize::from(args.jobs),
            rescan: Duration::from_secs(args.rescan_secs),
            poll: args.poll.map(Duration::from_secs),
            tick: (settle / 4).clamp(Duration::from_millis(20), Duration::from_millis(250)),
            stop_timeout: Duration::from_secs(args.stop_timeout_secs),
            max_period_days: args.max_period_days,
        })
    }
}

pub async fn run(args: WatchArgs) -> anyhow::Result<u8> {
    init_logging(args.log_format);
    let stop = StopSignals::install()?;
    let config = Arc::new(WatchConfig::from_args(&args)?);
    let store = args.store.store.open().await?;
    let ledger = Ledger::open(&config.root)
        .with_context(|| format!("opening the ledger in {}", config.root.join(STATE_DIR).display()))?;
    for cut_short in ledger.unfinished() {
        warn!(file = %cut_short.csv, tenant = %cut_short.tenant, "an import was cut short (crash, kill); it is redone if its files are still in place");
    }
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let watcher = start_watcher(&config, events_tx)?;
    let mut daemon = Daemon {
        ctx: Arc::new(ImportContext {
            config: config.clone(),
            store,
            ledger: Mutex::new(ledger),
        }),
        settler: Settler::new(config.rules),
        config,
        watcher: Some(watcher),
        root_watched: false,
        watched: HashSet::new(),
        queue: VecDeque::new(),
        pending: HashSet::new(),
        running: HashMap::new(),
        retries: HashMap::new(),
        refused: HashSet::new(),
        jobs: JoinSet::new(),
    };
    daemon.watch_folders();
    info!(
        dir = %daemon.config.root.display(),
        store = %args.store.store,
        mode = if daemon.config.poll.is_some() { "poll" } else { "events" },
        keep_in_place = daemon.config.keep_in_place,
        "watching"
    );
    daemon.run(events_rx, stop).await
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REIMPORT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second init (tests in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// SIGINT and SIGTERM, installed before anything else so an early signal is not fatal.
struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("installing the SIGTERM handler")?,
        })
    }

    async fn received(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "interrupt"
        }
    }
}

type WatchEvent = notify::Result<Event>;

fn start_watcher(
    config: &WatchConfig,
    events: mpsc::UnboundedSender<WatchEvent>,
) -> anyhow::Result<Box<dyn Watcher + Send>> {
    let handler = move |event: WatchEvent| {
        // Fails only once the daemon is stopping.
        let _ = events.send(event);
    };
    let options = notify::Config::default().with_follow_symlinks(false);
    Ok(match config.poll {
        Some(interval) => {
            Box::new(PollWatcher::new(handler, options.with_poll_interval(interval)).context("starting the poller")?)
        }
        None => Box::new(RecommendedWatcher::new(handler, options).context("starting the file watcher")?),
    })
}

/// What an import needs, shared by the running imports.
struct ImportContext {
    config: Arc<WatchConfig>,
    store: Arc<dyn Store>,
    ledger: Mutex<Ledger>,
}

impl ImportContext {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Imported,
    Invalid,
    /// Already done, gone, or refused: nothing to retry.
    Skipped,
    /// The store or I/O: retried later.
    Failed,
}

struct ImportDone {
    pair: ReadyPair,
    outcome: Outcome,
}

struct Retry {
    pair: ReadyPair,
    attempt: u32,
    not_before: Instant,
}

struct Daemon {
    config: Arc<WatchConfig>,
    ctx: Arc<ImportContext>,
    settler: Settler,
    /// Dropped when stopping: no more events.
    watcher: Option<Box<dyn Watcher + Send>>,
    root_watched: bool,
    /// First-level folders watched recursively (the drop folder itself is watched alone, so
    /// `processed/` and `failed/` are never watched).
    watched: HashSet<PathBuf>,
    queue: VecDeque<ReadyPair>,
    /// CSV paths queued or importing.
    pending: HashSet<PathBuf>,
    running: HashMap<tokio::task::Id, PathBuf>,
    retries: HashMap<PathBuf, Retry>,
    /// Files refused once (logged once).
    refused: HashSet<PathBuf>,
    jobs: JoinSet<ImportDone>,
}

impl Daemon {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<WatchEvent>,
        mut stop: StopSignals,
    ) -> anyhow::Result<u8> {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rescan = tokio::time::interval(self.config.rescan);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first_scan = true;
        loop {
            tokio::select! {
                signal = stop.received() => {
                    info!(signal, "stopping: no new files");
                    break;
                }
                Some(event) = events.recv() => self.on_event(event),
                _ = tick.tick() => self.on_tick(),
                _ = rescan.tick() => {
                    let files = self.rescan();
                    if first_scan {
                        info!(files, "initial scan done");
                        first_scan = false;
                    } else {
                        debug!(files, tracked = self.settler.tracked(), "rescan done");
                    }
                }
                Some(done) = self.jobs.join_next_with_id(), if !self.jobs.is_empty() => self.on_import_done(done),
            }
        }
        self.stop().await
    }

    async fn stop(mut self) -> anyhow::Result<u8> {
        self.watcher = None;
        self.queue.clear();
        if !self.jobs.is_empty() {
            info!(running = self.jobs.len(), "waiting for the imports under way");
        }
        let deadline = tokio::time::sleep(self.config.stop_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                done = self.jobs.join_next() => if done.is_none() { break },
                _ = &mut deadline => {
                    warn!(abandoned = self.jobs.len(), "abandoning the imports under way; they are redone at the next start");
                    // An import cannot be cancelled mid-batch; leaving now is what a crash would
                    // do, which the ledger and idempotent upserts are made for.
                    std::process::exit(i32::from(EXIT_OK));
                }
            }
        }
        info!("stopped");
        Ok(EXIT_OK)
    }

    /// Watches the drop folder alone and each of its input folders recursively.
    fn watch_folders(&mut self) {
        let root = self.config.root.clone();
        let Some(watcher) = self.watcher.as_mut() else { return };
        if !self.root_watched {
            match watcher.watch(&root, RecursiveMode::NonRecursive) {
                Ok(()) => self.root_watched = true,
                Err(e) => warn_watch(&root, &e),
            }
        }
        let mut present = HashSet::new();
        for entry in fs::read_dir(&root).into_iter().flatten().flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir || input_relative(&root, &path).is_none() {
                continue;
            }
            if !self.watched.contains(&path) {
                match watcher.watch(&path, RecursiveMode::Recursive) {
                    Ok(()) => {
                        self.watched.insert(path.clone());
                    }
                    Err(e) => warn_watch(&path, &e),
                }
            }
            present.insert(path);
        }
        for gone in self.watched.iter().filter(|p| !present.contains(*p)) {
            let _ = watcher.unwatch(gone);
        }
        self.watched.retain(|p| present.contains(p));
    }

    /// Feeds every input file to the settler; returns how many were seen.
    fn rescan(&mut self) -> usize {
        self.watch_folders();
        self.settler.retain_existing(|p| p.symlink_metadata().is_ok());
        self.refused.retain(|p| p.symlink_metadata().is_ok());
        let root = self.config.root.clone();
        self.scan(Instant::now(), &root)
    }

    /// Walks `dir` without following symbolic links, one open folder at a time.
    fn scan(&mut self, now: Instant, dir: &Path) -> usize {
        let root = self.config.root.clone();
        let mut folders = vec![dir.to_path_buf()];
        let mut files = 0;
        while let Some(folder) = folders.pop() {
            let Ok(entries) = fs::read_dir(&folder) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if input_relative(&root, &path).is_none() {
                    continue;
                }
                match entry.file_type() {
                    Ok(t) if t.is_dir() => folders.push(path),
                    Ok(t) if t.is_file() && role_of(&path).is_some() => {
                        files += 1;
                        self.observe(now, &path, Observed::Seen);
                    }
                    _ => {}
                }
            }
        }
        files
    }

    fn on_event(&mut self, event: WatchEvent) {
        let now = Instant::now();
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                warn!(error = %e, "file watch error; the next rescan catches up");
                return;
            }
        };
        if event.need_rescan() {
            warn!("the watcher lost events (queue overflow): rescanning");
            self.rescan();
            return;
        }
        let how = match event.kind {
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => Observed::Written,
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Observed::Closed,
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Observed::Placed,
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let [from, to] = event.paths.as_slice() {
                    self.settler.forget(from);
                    self.observe(now, to, Observed::Placed);
                }
                return;
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                for path in &event.paths {
                    self.settler.forget(path);
                }
                return;
            }
            EventKind::Access(_) => return,
            EventKind::Modify(_) | EventKind::Any | EventKind::Other => Observed::Seen,
        };
        for path in &event.paths {
            self.observe(now, path, how);
        }
    }

    fn observe(&mut self, now: Instant, path: &Path, how: Observed) {
        let root = self.config.root.clone();
        let Some(relative) = input_relative(&root, path) else {
            return;
        };
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(_) => {
                self.settler.forget(path);
                return;
            }
        };
        if meta.is_dir() {
            // A folder created or moved in: its files may predate its watch.
            if matches!(how, Observed::Written | Observed::Placed) {
                if path.parent() == Some(root.as_path()) {
                    self.watch_folders();
                }
                self.scan(now, path);
            }
            return;
        }
        if !meta.is_file() || role_of(path).is_none() {
            return;
        }
        if let Err(reason) = self.config.tenants.tenant_for(relative) {
            if self.refused.insert(path.to_path_buf()) {
                warn!(file = %relative.display(), "refused: {reason}");
            }
            return;
        }
        self.settler.observe(now, path, FileState::of(&meta), how);
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let ready = self.settler.due(now, |p| {
            fs::symlink_metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| FileState::of(&m))
        });
        for pair in ready {
            self.enqueue(now, pair);
        }
        let due: Vec<ReadyPair> = self
            .retries
            .values()
            .filter(|r| now >= r.not_before && !self.pending.contains(&r.pair.csv))
            .map(|r| r.pair.clone())
            .collect();
        for pair in due {
            if pair.csv.is_file() && pair.profile.is_file() {
                self.enqueue(now, pair);
            } else {
                self.retries.remove(&pair.csv);
            }
        }
        self.start_imports();
    }

    fn enqueue(&mut self, now: Instant, pair: ReadyPair) {
        if self.watcher.is_none() || self.pending.contains(&pair.csv) {
            return;
        }
        if self.retries.get(&pair.csv).is_some_and(|r| now < r.not_before) {
            return;
        }
        if self.config.keep_in_place && self.done_in_place(&pair) {
            return;
        }
        self.pending.insert(pair.csv.clone());
        self.queue.push_back(pair);
    }

    /// With `--keep-in-place`: the ledger has this pair, unchanged by `stat`.
    fn done_in_place(&self, pair: &ReadyPair) -> bool {
        let root = &self.config.root;
        let (Ok(csv_meta), Ok(profile_meta)) = (fs::metadata(&pair.csv), fs::metadata(&pair.profile)) else {
            return false;
        };
        let (csv, profile) = (relative_text(root, &pair.csv), relative_text(root, &pair.profile));
        self.ctx
            .ledger()
            .finished_with_stat(&csv, &profile, &FileState::of(&csv_meta), &FileState::of(&profile_meta))
            .is_some()
    }

    fn start_imports(&mut self) {
        while self.jobs.len() < self.config.jobs {
            let Some(pair) = self.queue.pop_front() else { break };
            let relative = input_relative(&self.config.root, &pair.csv).unwrap_or(&pair.csv);
            let tenant = match self.config.tenants.tenant_for(relative) {
                Ok(tenant) => tenant,
                Err(reason) => {
                    warn!(file = %relative.display(), "refused: {reason}");
                    self.pending.remove(&pair.csv);
                    continue;
                }
            };
            let csv = pair.csv.clone();
            let ctx = Arc::clone(&self.ctx);
            // Stores may do their work on the calling thread (SQLite does): on a blocking thread
            // of its own, an import never starves the event loop.
            let runtime = tokio::runtime::Handle::current();
            let handle = self.jobs.spawn_blocking(move || {
                let outcome = runtime.block_on(import_pair(&ctx, &pair, &tenant));
                ImportDone { pair, outcome }
            });
            self.running.insert(handle.id(), csv);
        }
    }

    fn on_import_done(&mut self, done: Result<(tokio::task::Id, ImportDone), tokio::task::JoinError>) {
        let done = match done {
            Ok((id, done)) => {
                self.running.remove(&id);
                done
            }
            Err(e) => {
                if let Some(csv) = self.running.remove(&e.id()) {
                    error!(file = %csv.display(), error = %e, "the import stopped abnormally; it is retried at the next rescan");
                    self.pending.remove(&csv);
                }
                return;
            }
        };
        let csv = done.pair.csv.clone();
        self.pending.remove(&csv);
        if done.outcome == Outcome::Failed {
            let attempt = self.retries.get(&csv).map_or(0, |r| r.attempt) + 1;
            let delay = retry_delay(attempt);
            warn!(
                file = %relative_text(&self.config.root, &csv),
                attempt,
                retry_in_secs = delay.as_secs(),
                "left in place, to be retried"
            );
            self.retries.insert(
                csv,
                Retry {
                    pair: done.pair,
                    attempt,
                    not_before: Instant::now() + delay,
                },
            );
        } else {
            self.retries.remove(&csv);
        }
        self.start_imports();
    }
}

/// 5 s, 10 s, 20 s ... up to 5 minutes.
fn retry_delay(attempt: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    Duration::from_secs(secs.min(300))
}

fn warn_watch(path: &Path, error: &notify::Error) {
    warn!(
        folder = %path.display(),
        error = %error,
        "cannot watch this folder: its files are found only by the rescan (on Linux, raise fs.inotify.max_user_watches)"
    );
}

/// `path` relative to the drop folder, as text for logs and the ledger.
fn relative_text(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}

/// Refuses a symbolic link, or a path that resolves outside the drop folder.
fn confined(root: &Path, path: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!("{} is a symbolic link", path.display()));
    }
    let real = fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !real.starts_with(root) {
        return Err(format!(
            "{} resolves to {}, outside the drop folder",
            path.display(),
            real.display()
        ));
    }
    Ok(())
}

async fn import_pair(ctx: &ImportContext, pair: &ReadyPair, tenant: &Tenant) -> Outcome {
    let root = &ctx.config.root;
    let csv_rel = relative_text(root, &pair.csv);
    let profile_rel = relative_text(root, &pair.profile);
    if let Err(reason) = confined(root, &pair.csv).and_then(|()| confined(root, &pair.profile)) {
        warn!(file = %csv_rel, "refused: {reason}");
        return Outcome::Skipped;
    }
    let (csv_path, profile_path) = (pair.csv.clone(), pair.profile.clone());
    let fingerprints = tokio::task::spawn_blocking(move || {
        Ok::<_, std::io::Error>((Fingerprint::of_file(&csv_path)?, Fingerprint::of_file(&profile_path)?))
    })
    .await;
    let (csv_file, profile_file) = match fingerprints {
        Ok(Ok(fingerprints)) => fingerprints,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            debug!(file = %csv_rel, "gone before its import");
            return Outcome::Skipped;
        }
        Ok(Err(e)) => {
            warn!(file = %csv_rel, error = %e, "cannot read the pair");
            return Outcome::Failed;
        }
        Err(e) => {
            error!(file = %csv_rel, error = %e, "the hashing thread stopped");
            return Outcome::Failed;
        }
    };
    let record = |step: Step| LedgerRecord {
        step,
        csv: csv_rel.clone(),
        profile: profile_rel.clone(),
        csv_file: csv_file.clone(),
        profile_file: profile_file.clone(),
        tenant: tenant.to_string(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    if ctx.config.keep_in_place {
        let mut ledger = ctx.ledger();
        let already = ledger
            .finished_with_content(&csv_rel, &profile_rel, &csv_file, &profile_file)
            .map(|r| r.step);
        if let Some(step) = already {
            // Touched, not changed: remember the new mtime so the next look needs no hashing.
            if let Err(e) = ledger.append(record(step)) {
                warn!(error = %e, "cannot write the ledger");
            }
            debug!(file = %csv_rel, "unchanged since its import");
            return Outcome::Skipped;
        }
    }
    if let Err(e) = ctx.ledger().append(record(Step::Started)) {
        error!(file = %csv_rel, error = %e, "cannot write the ledger; not importing");
        return Outcome::Failed;
    }
    info!(file = %csv_rel, tenant = %tenant, "import started");
    let import = PairImport {
        csv: &pair.csv,
        profile: &pair.profile,
        tenant,
        limits: ProfileLimits {
            max_period_days: ctx.config.max_period_days,
        },
        store: Some(ctx.store.as_ref()),
    };
    let (report, failure) = import.run(&mut |_, _| {}).await;
    let (step, outcome, folder) = match failure {
        None => (Step::Imported, Outcome::Imported, PROCESSED),
        Some(Failure::Invalid) => (Step::Invalid, Outcome::Invalid, FAILED),
        Some(Failure::Failed) => {
            log_import(&csv_rel, tenant, &report);
            return Outcome::Failed;
        }
    };
    if let Err(e) = ctx.ledger().append(record(step)) {
        error!(file = %csv_rel, error = %e, "cannot write the ledger");
    }
    set_aside(&ctx.config, pair, folder, &report);
    // Last: when the log says imported, the files are already where they go.
    log_import(&csv_rel, tenant, &report);
    outcome
}

/// Moves the pair under `processed/` or `failed/` with its report, or, with `--keep-in-place`,
/// writes the report under `DIR/.reimport/reports/`.
fn set_aside(config: &WatchConfig, pair: &ReadyPair, folder: &str, report: &ImportReport) {
    let root = &config.root;
    let relative = input_relative(root, &pair.csv).unwrap_or(Path::new(""));
    let csv_rel = relative.display();
    if config.keep_in_place {
        let path = root
            .join(STATE_DIR)
            .join("reports")
            .join(relative)
            .with_extension("report.json");
        if let Err(e) = write_report(&path, report) {
            warn!(file = %csv_rel, error = %e, "cannot write the report {}", path.display());
        }
        return;
    }
    let date = chrono::Local::now().format("%Y-%m-%d").to_string();
    let destination = root
        .join(folder)
        .join(date)
        .join(relative.parent().unwrap_or(Path::new("")));
    match archive_pair(&destination, &pair.csv, &pair.profile, report) {
        Ok(archived) => {
            debug!(file = %csv_rel, to = %archived.csv.display(), report = %archived.report.display(), "moved")
        }
        Err(e) => error!(
            file = %csv_rel,
            error = %e,
            "cannot move the pair to {}; it will be imported again",
            destination.display()
        ),
    }
}

/// The one line per import: file, tenant, lines, items, duration, status.
fn log_import(file: &str, tenant: &Tenant, report: &ImportReport) {
    let summary = first_problem(report).map_or_else(|| "import done".to_string(), |p| format!("import stopped: {p}"));
    let (lines, items, duration_ms) = (report.lines_read, report.daily_items_written, report.duration_ms);
    match report.status {
        ImportStatus::Imported | ImportStatus::Validated => {
            info!(file, tenant = %tenant, lines, items, duration_ms, status = "imported", "{summary}")
        }
        ImportStatus::Invalid => {
            warn!(file, tenant = %tenant, lines, items, duration_ms, status = "invalid", "{summary}")
        }
        ImportStatus::Failed => {
            error!(file, tenant = %tenant, lines, items, duration_ms, status = "failed", "{summary}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_five_minutes() {
        let delays: Vec<u64> = (1..=9).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(retry_delay(u32::MAX).as_secs(), 300);
    }

    #[test]
    fn symlinks_and_paths_outside_the_drop_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap().join("drop");
        let outside = root.parent().unwrap().join("secret.csv");
        fs::create_dir_all(root.join("acme")).unwrap();
        fs::write(&outside, "x").unwrap();
        fs::write(root.join("acme/a.csv"), "x").unwrap();
        assert_eq!(confined(&root, &root.join("acme/a.csv")), Ok(()));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("acme/link.csv")).unwrap();
            std::os::unix::fs::symlink(root.parent().unwrap(), root.join("up")).unwrap();
            assert!(confined(&root, &root.join("acme/link.csv"))
                .unwrap_err()
                .contains("symbolic link"));
            assert!(confined(&root, &root.join("up/secret.csv"))
                .unwrap_err()
                .contains("outside"));
        }
    }
}
