//! Criterion: the core's read of a 10k-line pagetree export (in memory) beside a pure csv-crate
//! parse of the same bytes, in one group so their ratio is measured in one run.
//! `cargo bench -p reimport-benches --bench core`; `-- --test` runs each once (smoke).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reimport_benches::{write_pagetree, PAGETREE_PROFILE};
use reimport_core::{read_file, ImportProfile, ProfileLimits, ReadOptions};

fn read_pagetree(c: &mut Criterion) {
    let mut csv = Vec::new();
    write_pagetree(10_000, &mut csv).expect("generating the file");
    let profile = ImportProfile::from_json(PAGETREE_PROFILE, &ProfileLimits::default()).expect("the profile");
    let mut group = c.benchmark_group("pagetree-10k");
    group.throughput(Throughput::Bytes(csv.len() as u64));
    group.bench_function("csv-count (reference)", |b| {
        b.iter(|| {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(csv.as_slice());
            let mut record = csv::ByteRecord::new();
            let mut n = 0u64;
            while reader.read_byte_record(&mut record).expect("csv") {
                n += 1;
            }
            n
        })
    });
    group.bench_function("read_file", |b| {
        b.iter(|| {
            read_file(&profile, csv.as_slice(), &ReadOptions::default())
                .expect("valid")
                .line_count()
        })
    });
    group.finish();
}

criterion_group!(benches, read_pagetree);
criterion_main!(benches);
