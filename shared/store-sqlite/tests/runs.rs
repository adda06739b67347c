//! The shapes a run of days is written in (every row bound, or a first row then a shared tail
//! with ids counted from the first) give the same rows as writing the days one by one: fresh
//! inserts, updates of part of the metrics, gaps in the days, a tail that breaks.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use reimport_core::{
    DailyItem, Dimension, DimensionValues, ImportOrigin, ItemQuery, Kind, Metric, Quantity, Store, Tenant,
};
use reimport_store_sqlite::SqliteStore;

type Model = BTreeMap<(String, NaiveDate), BTreeMap<Metric, Quantity>>;

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 3, 1).unwrap() + chrono::Days::new(u64::from(n))
}

fn item<'a>(key: &'a str, url: &'a str, d: u32, metrics: &[(Metric, Quantity)]) -> DailyItem<'a> {
    let mut dimensions = DimensionValues::default();
    dimensions.set(Kind::PageTree.key_dimension(), key);
    dimensions.set(Dimension::PageInfoUrl, url);
    DailyItem {
        kind: Kind::PageTree,
        key,
        day: day(d),
        dimensions,
        metrics: metrics.iter().copied().collect(),
    }
}

async fn check(store: &SqliteStore, origin: &ImportOrigin, items: &[DailyItem<'_>], model: &mut Model) {
    store.upsert(origin, items).await.unwrap();
    for item in items {
        let stored = model.entry((item.key.to_string(), item.day)).or_default();
        stored.extend(item.metrics.iter());
    }
    let got = store
        .query(&ItemQuery {
            tenant: origin.tenant.clone(),
            kind: Kind::PageTree,
            key: None,
            from: None,
            to: None,
        })
        .await
        .unwrap();
    let got: Model = got.into_iter().map(|s| ((s.key, s.day), s.metrics)).collect();
    assert_eq!(&got, model);
}

#[tokio::test]
async fn every_run_shape_writes_what_single_days_would() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("reimport.db")).unwrap();
    let origin = ImportOrigin {
        tenant: Tenant::new("runs").unwrap(),
        source: "runs.csv".into(),
        imported_at: "2026-01-01T00:00:00Z".into(),
    };
    let q = Quantity::whole;
    let amount = |s: &str| s.parse::<Quantity>().unwrap();
    let mut model = Model::new();
    // A spread total: the first day different, the same share on the 30 others.
    let spread = |key: &'static str, hit: u64, rest: u64| -> Vec<DailyItem<'static>> {
        (0..31)
            .map(|d| {
                let h = if d == 0 { hit } else { rest };
                item(key, "/u", d, &[(Metric::Hit, q(h)), (Metric::Visit, q(h + 1))])
            })
            .collect()
    };
    check(
        &store,
        &origin,
        &[spread("a", 7, 3), spread("b", 0, 0)].concat(),
        &mut model,
    )
    .await;
    // The same keys again, only one metric sent and an amount: the other metric stays.
    let update: Vec<DailyItem<'_>> = (0..31)
        .map(|d| item("a", "/v", d, &[(Metric::Hit, q(if d == 0 { 1 } else { 2 }))]))
        .chain((3..9).map(|d| item("b", "/u", d, &[(Metric::SCartValidAmount, amount("12.50"))])))
        .collect();
    check(&store, &origin, &update, &mut model).await;
    // Gaps in the days (not consecutive ids), a tail broken on the third day, two-day runs,
    // a single day, partly over existing rows.
    let mut mixed = Vec::new();
    for d in [0, 2, 4, 5, 6, 30] {
        mixed.push(item("c", "/c", d, &[(Metric::Hit, q(5))]));
    }
    for d in 0..10 {
        let h = if d == 2 { 9 } else { 4 };
        mixed.push(item(
            "a",
            "/a",
            d,
            &[(Metric::Hit, q(h)), (Metric::VisitIn, q(d.into()))],
        ));
    }
    mixed.push(item("d", "/d", 1, &[(Metric::Hit, q(1))]));
    mixed.push(item("d", "/d", 2, &[(Metric::Hit, q(1))]));
    mixed.push(item("e", "/e", 10, &[(Metric::Hit, q(2))]));
    check(&store, &origin, &mixed, &mut model).await;
    // Re-running a batch changes nothing.
    check(&store, &origin, &mixed, &mut model).await;
    check(&store, &origin, &update, &mut model).await;
}
