//! `csv-count FILE`: counts the records of a CSV file with the csv crate and nothing else (no
//! UTF-8 check, no field conversion): the ceiling a validator built on the same parser can reach.
//! The reference when `xsv` is not installed; it does what `xsv count` does without an index.

use std::fs::File;
use std::io::BufReader;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).context("usage: csv-count FILE")?;
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(BufReader::with_capacity(256 * 1024, file));
    let mut record = csv::ByteRecord::new();
    let mut count: u64 = 0;
    while reader
        .read_byte_record(&mut record)
        .with_context(|| format!("reading {path}"))?
    {
        count += 1;
    }
    println!("{count}");
    Ok(())
}
