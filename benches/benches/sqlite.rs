//! Criterion: writing a validated 2k-line x 31-day file (62,000 daily items) into a fresh
//! SQLite store. `cargo bench -p reimport-benches --bench sqlite`; `-- --test` runs it once.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reimport_benches::{write_pagetree, PAGETREE_PROFILE};
use reimport_core::{read_file, ImportOrigin, ImportProfile, ProfileLimits, ReadOptions, Store, Tenant};
use reimport_store_sqlite::SqliteStore;

fn write_sqlite(c: &mut Criterion) {
    let mut csv = Vec::new();
    write_pagetree(2_000, &mut csv).expect("generating the file");
    let profile = ImportProfile::from_json(PAGETREE_PROFILE, &ProfileLimits::default()).expect("the profile");
    let file = read_file(&profile, csv.as_slice(), &ReadOptions::default()).expect("valid");
    let origin = ImportOrigin {
        tenant: Tenant::new("bench").expect("tenant"),
        source: "bench.csv".into(),
        imported_at: "2026-01-01T00:00:00.000Z".into(),
    };
    let dir = std::env::temp_dir().join(format!("reimport-criterion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut group = c.benchmark_group("sqlite");
    group.sample_size(10);
    group.throughput(Throughput::Elements(file.daily_item_count()));
    let mut run = 0u32;
    group.bench_function("write 2k lines x 31 days, fresh db", |b| {
        b.iter(|| {
            run += 1;
            let path = dir.join(format!("{run}.db"));
            let store = SqliteStore::open(&path).expect("open");
            let store_ref: &dyn Store = &store;
            let written = runtime
                .block_on(file.write_to(store_ref, &origin, &mut |_| {}))
                .expect("write");
            drop(store);
            let _ = std::fs::remove_file(&path);
            written.items
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, write_sqlite);
criterion_main!(benches);
