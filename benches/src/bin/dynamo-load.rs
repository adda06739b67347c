//! `dynamo-load LINES CONCURRENCY [TABLE]`: writes a generated pagetree file of LINES lines x 31
//! days through `DynamoStore` (the store the Lambda and `--store dynamodb:` use) with
//! CONCURRENCY UpdateItem calls in flight, and prints one JSON line: UpdateItem/s and CPU
//! microseconds per UpdateItem (user + system time of the whole process during the write).
//!
//! Point it at a fake endpoint with AWS_ENDPOINT_URL to measure the client alone.
//!
//! The runtime is the product's: `#[tokio::main]` (multi-threaded, one worker per CPU), as the
//! s3-import Lambda's `main`; the daemon builds the same with `Builder::new_multi_thread()`.
//! The write is polled by `block_on` on the main thread, as in both: the store runs its
//! UpdateItem calls on the worker threads itself.

use std::time::Instant;

use anyhow::Context;
use reimport_benches::{process_cpu_micros, write_pagetree, PAGETREE_PROFILE};
use reimport_core::{read_file, ImportOrigin, ImportProfile, ProfileLimits, ReadOptions, Store, Tenant};
use reimport_store_dynamodb::{DynamoOptions, DynamoStore};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: dynamo-load LINES CONCURRENCY [TABLE]";
    let lines: u64 = args.next().context(usage)?.parse().context(usage)?;
    let concurrency: usize = args.next().context(usage)?.parse().context(usage)?;
    let table = args.next().unwrap_or_else(|| "reimport-bench".to_string());

    let mut csv = Vec::new();
    write_pagetree(lines, &mut csv)?;
    let profile = ImportProfile::from_json(PAGETREE_PROFILE, &ProfileLimits::default())?;
    let file = read_file(&profile, csv.as_slice(), &ReadOptions::default())?;
    drop(csv);

    let options = DynamoOptions {
        concurrency,
        ..DynamoOptions::default()
    };
    let store = DynamoStore::connect(&table, options).await?;
    let origin = ImportOrigin {
        tenant: Tenant::new("bench")?,
        source: "bench/pagetree.csv".to_string(),
        imported_at: "2026-01-01T00:00:00.000Z".to_string(),
    };
    let store: &dyn Store = &store;
    let cpu_before = process_cpu_micros().unwrap_or(0);
    let started = Instant::now();
    let written = file.write_to(store, &origin, &mut |_| {}).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = process_cpu_micros().unwrap_or(0).saturating_sub(cpu_before);
    let items = written.items;
    println!(
        "{{\"bench\":\"dynamodb\",\"lines\":{lines},\"concurrency\":{concurrency},\"update_items\":{items},\
         \"seconds\":{seconds:.3},\"update_items_per_s\":{:.0},\"cpu_us_per_update_item\":{:.1}}}",
        items as f64 / seconds,
        cpu as f64 / items.max(1) as f64
    );
    Ok(())
}
