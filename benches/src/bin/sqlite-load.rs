//! `sqlite-load CSV PROFILE DB`: reads and validates CSV, then writes its daily items into the
//! SQLite store at DB, timing the two phases apart, and prints one JSON line.

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use anyhow::Context;
use reimport_core::{read_file, ImportOrigin, ImportProfile, ProfileLimits, ReadOptions, Store, Tenant};
use reimport_store_sqlite::SqliteStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: sqlite-load CSV PROFILE DB";
    let (csv, profile, db) = (
        args.next().context(usage)?,
        args.next().context(usage)?,
        args.next().context(usage)?,
    );
    let profile_text = std::fs::read_to_string(&profile).with_context(|| format!("reading {profile}"))?;
    let profile = ImportProfile::from_json(&profile_text, &ProfileLimits::default())?;
    let started = Instant::now();
    let input = File::open(&csv).with_context(|| format!("opening {csv}"))?;
    let file = read_file(
        &profile,
        BufReader::with_capacity(256 * 1024, input),
        &ReadOptions::default(),
    )?;
    let read_seconds = started.elapsed().as_secs_f64();

    let store = SqliteStore::open(&db)?;
    let origin = ImportOrigin {
        tenant: Tenant::new("bench")?,
        source: csv.clone(),
        imported_at: "2026-01-01T00:00:00.000Z".to_string(),
    };
    let store: &dyn Store = &store;
    let started = Instant::now();
    let written = file.write_to(store, &origin, &mut |_| {}).await?;
    let write_seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"bench\":\"sqlite\",\"lines\":{},\"daily_items\":{},\"read_seconds\":{read_seconds:.3},\
         \"write_seconds\":{write_seconds:.3},\"daily_items_per_s\":{:.0}}}",
        file.line_count(),
        written.items,
        written.items as f64 / write_seconds
    );
    Ok(())
}
