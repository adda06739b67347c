//! `item-size LINES`: the largest DynamoDB item (upper bound, as the store estimates it before
//! writing) among the daily items of a generated pagetree file: one write unit per daily item
//! holds while it stays at most 1024 bytes.

use anyhow::Context;
use reimport_benches::{write_pagetree, PAGETREE_PROFILE};
use reimport_core::{read_file, ImportOrigin, ImportProfile, ItemOrder, ProfileLimits, ReadOptions, Tenant};
use reimport_store_dynamodb::item::{item_update, MAX_ITEM_BYTES};

fn main() -> anyhow::Result<()> {
    let lines: u64 = std::env::args().nth(1).context("usage: item-size LINES")?.parse()?;
    let mut csv = Vec::new();
    write_pagetree(lines, &mut csv)?;
    let profile = ImportProfile::from_json(PAGETREE_PROFILE, &ProfileLimits::default())?;
    let file = read_file(&profile, csv.as_slice(), &ReadOptions::default())?;
    let origin = ImportOrigin {
        // A realistic tenant and S3 source key, longer than the benchmarks' own.
        tenant: Tenant::new("acme-analytics-eu")?,
        source: "incoming/acme-analytics-eu/matomo/2023/03/pagetree-2023-03.csv".to_string(),
        imported_at: "2026-12-04T16:00:00.000Z".to_string(),
    };
    let (mut largest, mut total, mut count) = (0usize, 0usize, 0usize);
    for item in file.daily_items(ItemOrder::ByLine) {
        let update = item_update(&origin, &item)?;
        largest = largest.max(update.estimated_size);
        total += update.estimated_size;
        count += 1;
    }
    println!(
        "{{\"bench\":\"item-size\",\"daily_items\":{count},\"largest_item_bytes_upper_bound\":{largest},\
         \"mean_item_bytes_upper_bound\":{},\"limit_for_one_write_unit\":{MAX_ITEM_BYTES}}}",
        total / count.max(1)
    );
    Ok(())
}
