//! The Store conformance suite: the product's upsert semantics, checked against any store.
//! Every Store implementation runs [`run_all`] in its tests against a real instance (SQLite
//! file, DynamoDB server), so the stores cannot drift apart.
//!
//! Each check works under its own tenant (`<prefix>-<check>`), so one store serves the suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::import::{read_file, ReadOptions};
use crate::kind::{Dimension, Kind, Metric};
use crate::number::Quantity;
use crate::profile::{ImportProfile, ProfileLimits};
use crate::store::{DailyItem, DimensionValues, ImportOrigin, ItemQuery, Store, StoredItem, Tenant};

/// Runs every check, in order, panicking with the check's name on the first failure.
pub async fn run_all(store: &dyn Store, prefix: &str) {
    inserts_new_items(store, prefix).await;
    replaces_existing_value_and_keeps_other_metrics(store, prefix).await;
    repeating_an_upsert_changes_nothing(store, prefix).await;
    zero_replaces_an_older_value(store, prefix).await;
    amounts_stay_exact(store, prefix).await;
    tenants_are_isolated(store, prefix).await;
    kinds_are_isolated(store, prefix).await;
    query_filters_by_key_and_days_and_orders_by_key_then_day(store, prefix).await;
    keys_with_separators_and_quotes_round_trip(store, prefix).await;
    dimensions_are_stored_and_updated(store, prefix).await;
    a_whole_file_imports_and_sums_back(store, prefix).await;
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 3, d).unwrap()
}

fn origin(prefix: &str, check: &str) -> ImportOrigin {
    ImportOrigin {
        tenant: Tenant::new(&format!("{prefix}-{check}")).unwrap(),
        source: format!("conformance/{check}.csv"),
        imported_at: "2026-12-04T00:00:00Z".to_string(),
    }
}

fn item<'a>(kind: Kind, key: &'a str, d: u32, metrics: &[(Metric, Quantity)]) -> DailyItem<'a> {
    let mut dimensions = DimensionValues::default();
    dimensions.set(kind.key_dimension(), key);
    DailyItem {
        kind,
        key,
        day: day(d),
        dimensions,
        metrics: metrics.iter().copied().collect(),
    }
}

fn whole(n: u64) -> Quantity {
    Quantity::whole(n)
}

async fn query(store: &dyn Store, origin: &ImportOrigin, kind: Kind, key: Option<&str>) -> Vec<StoredItem> {
    store
        .query(&ItemQuery {
            tenant: origin.tenant.clone(),
            kind,
            key: key.map(str::to_string),
            from: None,
            to: None,
        })
        .await
        .unwrap_or_else(|e| panic!("query failed: {}", crate::report::error_chain(&e)))
}

async fn upsert(store: &dyn Store, origin: &ImportOrigin, items: &[DailyItem<'_>]) {
    store
        .upsert(origin, items)
        .await
        .unwrap_or_else(|e| panic!("upsert failed: {}", crate::report::error_chain(&e)));
}

fn metrics_of(item: &StoredItem) -> Vec<(Metric, String)> {
    item.metrics.iter().map(|(m, v)| (*m, v.to_string())).collect()
}

pub async fn inserts_new_items(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "insert");
    upsert(
        store,
        &o,
        &[item(
            Kind::Website,
            "example.com",
            1,
            &[(Metric::Visit, whole(15)), (Metric::Duration, whole(300))],
        )],
    )
    .await;
    let got = query(store, &o, Kind::Website, None).await;
    assert_eq!(got.len(), 1, "inserts_new_items: {got:?}");
    let it = &got[0];
    assert_eq!(it.tenant, o.tenant.as_str());
    assert_eq!(
        (it.kind, it.key.as_str(), it.day),
        (Kind::Website, "example.com", day(1))
    );
    assert_eq!(
        it.dimensions,
        BTreeMap::from([(Dimension::WebsiteName, "example.com".to_string())])
    );
    assert_eq!(
        metrics_of(it),
        [(Metric::Visit, "15".into()), (Metric::Duration, "300".into())],
        "inserts_new_items"
    );
}

pub async fn replaces_existing_value_and_keeps_other_metrics(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "replace");
    upsert(
        store,
        &o,
        &[item(
            Kind::Website,
            "site",
            1,
            &[(Metric::Visit, whole(15)), (Metric::DVisitor, whole(4))],
        )],
    )
    .await;
    upsert(
        store,
        &o,
        &[item(
            Kind::Website,
            "site",
            1,
            &[(Metric::Visit, whole(17)), (Metric::Duration, whole(60))],
        )],
    )
    .await;
    let got = query(store, &o, Kind::Website, Some("site")).await;
    assert_eq!(got.len(), 1, "replace: {got:?}");
    assert_eq!(
        metrics_of(&got[0]),
        [
            (Metric::Visit, "17".into()),
            (Metric::Duration, "60".into()),
            (Metric::DVisitor, "4".into())
        ],
        "15 then 17 gives 17; dvisitor, not sent the second time, stays"
    );
}

pub async fn repeating_an_upsert_changes_nothing(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "repeat");
    let batch: Vec<DailyItem<'_>> = (1..=5)
        .map(|d| item(Kind::SearchEngine, "Google", d, &[(Metric::Visit, whole(u64::from(d)))]))
        .collect();
    upsert(store, &o, &batch).await;
    let once = query(store, &o, Kind::SearchEngine, None).await;
    upsert(store, &o, &batch).await;
    let twice = query(store, &o, Kind::SearchEngine, None).await;
    assert_eq!(once.len(), 5);
    assert_eq!(once, twice, "repeating an upsert changes nothing");
}

pub async fn zero_replaces_an_older_value(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "zero");
    upsert(
        store,
        &o,
        &[item(Kind::Website, "site", 2, &[(Metric::Visit, whole(9))])],
    )
    .await;
    upsert(
        store,
        &o,
        &[item(Kind::Website, "site", 2, &[(Metric::Visit, whole(0))])],
    )
    .await;
    let got = query(store, &o, Kind::Website, Some("site")).await;
    assert_eq!(
        metrics_of(&got[0]),
        [(Metric::Visit, "0".into())],
        "a 0 share replaces the older value"
    );
}

pub async fn amounts_stay_exact(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "amount");
    let cases = [
        (1, Quantity::new(3334, 2).unwrap()),
        (2, Quantity::new(5, 3).unwrap()),
        (3, Quantity::new(123_456_789_012, 2).unwrap()),
        (4, Quantity::new(10, 1).unwrap()),
    ];
    let batch: Vec<DailyItem<'_>> = cases
        .iter()
        .map(|&(d, q)| item(Kind::Website, "shop", d, &[(Metric::SCartValidAmount, q)]))
        .collect();
    upsert(store, &o, &batch).await;
    let got = query(store, &o, Kind::Website, Some("shop")).await;
    let values: Vec<String> = got
        .iter()
        .map(|i| i.metrics[&Metric::SCartValidAmount].to_string())
        .collect();
    let json: Vec<String> = got
        .iter()
        .map(|i| serde_json::to_string(&i.metrics[&Metric::SCartValidAmount]).unwrap())
        .collect();
    assert!(
        values
            .iter()
            .zip(cases.iter())
            .all(|(v, (_, q))| v.parse::<Quantity>().map(|p| p.same_value(*q)).unwrap_or(false)),
        "amounts stay exact: {values:?}"
    );
    assert_eq!(json[0], "33.34", "no binary floating point: {json:?}");
    assert_eq!(json[2], "1234567890.12", "no binary floating point: {json:?}");
}

pub async fn tenants_are_isolated(store: &dyn Store, prefix: &str) {
    let a = origin(prefix, "tenant-a");
    let b = origin(prefix, "tenant-b");
    upsert(
        store,
        &a,
        &[item(Kind::Website, "shared.example", 1, &[(Metric::Visit, whole(1))])],
    )
    .await;
    upsert(
        store,
        &b,
        &[item(Kind::Website, "shared.example", 1, &[(Metric::Visit, whole(2))])],
    )
    .await;
    let got_a = query(store, &a, Kind::Website, None).await;
    let got_b = query(store, &b, Kind::Website, None).await;
    assert_eq!(
        metrics_of(&got_a[0]),
        [(Metric::Visit, "1".into())],
        "tenant a keeps its own value"
    );
    assert_eq!(
        metrics_of(&got_b[0]),
        [(Metric::Visit, "2".into())],
        "tenant b keeps its own value"
    );
    assert_eq!((got_a.len(), got_b.len()), (1, 1));
}

pub async fn kinds_are_isolated(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "kinds");
    upsert(
        store,
        &o,
        &[item(Kind::SearchEngine, "Bing", 1, &[(Metric::Visit, whole(3))])],
    )
    .await;
    upsert(
        store,
        &o,
        &[item(Kind::RefererDomain, "Bing", 1, &[(Metric::Visit, whole(4))])],
    )
    .await;
    assert_eq!(
        metrics_of(&query(store, &o, Kind::SearchEngine, None).await[0]),
        [(Metric::Visit, "3".into())]
    );
    assert_eq!(
        metrics_of(&query(store, &o, Kind::RefererDomain, None).await[0]),
        [(Metric::Visit, "4".into())]
    );
    assert!(
        query(store, &o, Kind::Website, None).await.is_empty(),
        "kinds are isolated"
    );
}

pub async fn query_filters_by_key_and_days_and_orders_by_key_then_day(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "query");
    let mut batch = Vec::new();
    for key in ["b", "a", "c"] {
        for d in [3, 1, 2] {
            batch.push(item(
                Kind::RefererDomain,
                key,
                d,
                &[(Metric::Visit, whole(u64::from(d)))],
            ));
        }
    }
    upsert(store, &o, &batch).await;
    let all = query(store, &o, Kind::RefererDomain, None).await;
    let order: Vec<(String, u32)> = all
        .iter()
        .map(|i| (i.key.clone(), chrono::Datelike::day(&i.day)))
        .collect();
    let want: Vec<(String, u32)> = ["a", "b", "c"]
        .iter()
        .flat_map(|k| [1, 2, 3].map(|d| (k.to_string(), d)))
        .collect();
    assert_eq!(order, want, "ordered by key then day");
    let ranged = store
        .query(&ItemQuery {
            tenant: o.tenant.clone(),
            kind: Kind::RefererDomain,
            key: Some("b".into()),
            from: Some(day(2)),
            to: Some(day(3)),
        })
        .await
        .unwrap();
    let got: Vec<(String, u32)> = ranged
        .iter()
        .map(|i| (i.key.clone(), chrono::Datelike::day(&i.day)))
        .collect();
    assert_eq!(
        got,
        [("b".to_string(), 2), ("b".to_string(), 3)],
        "key and inclusive day range"
    );
    let from_only = store
        .query(&ItemQuery {
            tenant: o.tenant.clone(),
            kind: Kind::RefererDomain,
            key: None,
            from: Some(day(3)),
            to: None,
        })
        .await
        .unwrap();
    assert_eq!(from_only.len(), 3, "from only");
}

pub async fn keys_with_separators_and_quotes_round_trip(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "odd-keys");
    let keys = [
        "a#b#c",
        "with/slash",
        "quote \"'",
        "percent %2B + =&",
        "   spaced",
        "Ete a Paris",
    ];
    let batch: Vec<DailyItem<'_>> = keys
        .iter()
        .map(|k| item(Kind::PageTree, k, 1, &[(Metric::Hit, whole(1))]))
        .collect();
    upsert(store, &o, &batch).await;
    for k in keys {
        let got = query(store, &o, Kind::PageTree, Some(k)).await;
        assert_eq!(got.len(), 1, "key {k:?} round-trips");
        assert_eq!(got[0].key, k);
    }
}

fn url_of(stored: &StoredItem) -> Option<&str> {
    stored.dimensions.get(&Dimension::PageInfoUrl).map(String::as_str)
}

pub async fn dimensions_are_stored_and_updated(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "dims");
    let mut first = item(Kind::PageTree, "Home", 1, &[(Metric::Hit, whole(5))]);
    first.dimensions.set(Dimension::PageInfoUrl, "https://example.com/");
    upsert(store, &o, &[first]).await;
    let mut second = item(Kind::PageTree, "Home", 1, &[(Metric::VisitIn, whole(2))]);
    second
        .dimensions
        .set(Dimension::PageInfoUrl, "https://example.com/home");
    upsert(store, &o, &[second]).await;
    let got = query(store, &o, Kind::PageTree, Some("Home")).await;
    assert_eq!(url_of(&got[0]), Some("https://example.com/home"));
    assert_eq!(
        got[0].dimensions.get(&Dimension::PageInfoName).map(String::as_str),
        Some("Home")
    );
    assert_eq!(
        metrics_of(&got[0]),
        [(Metric::Hit, "5".into()), (Metric::VisitIn, "2".into())]
    );

    // An upsert without the attribute keeps the stored one; one text carried by two lines (the
    // same string in memory) and by two days is each line's own.
    let shared = "https://example.com/shared";
    let mut items = vec![item(Kind::PageTree, "Home", 1, &[(Metric::Hit, whole(6))])];
    for (key, d) in [("A", 1), ("B", 1), ("B", 2), ("A", 2)] {
        let mut it = item(Kind::PageTree, key, d, &[(Metric::Hit, whole(u64::from(d)))]);
        it.dimensions.set(Dimension::PageInfoUrl, shared);
        items.push(it);
    }
    upsert(store, &o, &items).await;
    let got = query(store, &o, Kind::PageTree, Some("Home")).await;
    assert_eq!(url_of(&got[0]), Some("https://example.com/home"));
    assert_eq!(
        metrics_of(&got[0]),
        [(Metric::Hit, "6".into()), (Metric::VisitIn, "2".into())]
    );
    for key in ["A", "B"] {
        let got = query(store, &o, Kind::PageTree, Some(key)).await;
        assert_eq!(got.len(), 2, "{key}");
        for stored in &got {
            assert_eq!(url_of(stored), Some(shared), "{key} {}", stored.day);
        }
    }
}

pub async fn a_whole_file_imports_and_sums_back(store: &dyn Store, prefix: &str) {
    let o = origin(prefix, "file");
    let profile = ImportProfile::from_json(
        r#"{"skipHeader":true,"kind":"website","dimensions":[{"idx":0,"target":"website_name"}],
            "metrics":[{"idx":1,"target":"visit"},{"idx":2,"target":"scartvalidamount"}],
            "period":{"from":"01/03/2023","to":"03/03/2023","scale":"D"}}"#,
        &ProfileLimits::default(),
    )
    .unwrap();
    let csv = "Nom,Visites,CA\nÉté,100,\"100,00\"\nEte,2,\"0,01\"\nautre,7,5\n";
    let file = read_file(&profile, csv.as_bytes(), &ReadOptions::default()).unwrap();
    let written = file.write_to(store, &o, &mut |_| {}).await.unwrap();
    assert_eq!(written.items, 6);
    let ete = query(store, &o, Kind::Website, Some("Ete")).await;
    let visits: Vec<String> = ete.iter().map(|i| i.metrics[&Metric::Visit].to_string()).collect();
    let amounts: Vec<String> = ete
        .iter()
        .map(|i| i.metrics[&Metric::SCartValidAmount].to_string())
        .collect();
    assert_eq!(visits, ["34", "34", "34"], "102 over 3 days");
    assert_eq!(
        amounts,
        ["33.35", "33.33", "33.33"],
        "100.01 over 3 days: the remainder on the first day"
    );
    // Re-running the import changes nothing.
    file.write_to(store, &o, &mut |_| {}).await.unwrap();
    assert_eq!(query(store, &o, Kind::Website, Some("Ete")).await, ete);
}
