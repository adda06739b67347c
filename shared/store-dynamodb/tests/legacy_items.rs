//! Items written by earlier versions carry `tenant`, `kind` and `key` attributes besides `pk`;
//! the store no longer writes them (they are the parts of `pk`). Such items must still be
//! found by Query and Scan, read back the same, and keep their metrics when updated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use reimport_core::{
    DailyItem, Dimension, DimensionValues, ImportOrigin, ItemQuery, Kind, Metric, MetricValues, Quantity, Store, Tenant,
};
use reimport_store_dynamodb::{DynamoOptions, DynamoStore};
use support::moto::{dynamodb_client, MotoServer};

const TABLE: &str = "reimport-legacy";

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.into())
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 3, d).unwrap()
}

fn query(key: Option<&str>) -> ItemQuery {
    ItemQuery {
        tenant: Tenant::new("acme").unwrap(),
        kind: Kind::Website,
        key: key.map(str::to_string),
        from: None,
        to: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_with_the_old_descriptive_attributes_read_back_and_update_the_same() {
    let moto = MotoServer::start();
    let client = dynamodb_client(&moto.endpoint_url());
    let store = DynamoStore::with_client(client.clone(), TABLE, DynamoOptions::default()).unwrap();
    store.ensure_table().await.unwrap();

    // As the previous version wrote it, and neighbours the Scan must leave out.
    let legacy = |pk: &str, tenant: &str, kind: &str, key: &str| {
        HashMap::from([
            ("pk".to_string(), s(pk)),
            ("day".to_string(), s("2023-03-01")),
            ("tenant".to_string(), s(tenant)),
            ("kind".to_string(), s(kind)),
            ("key".to_string(), s(key)),
            ("website_name".to_string(), s(key)),
            ("visit".to_string(), n("10")),
            ("duration".to_string(), n("300")),
            ("source".to_string(), s("old.csv")),
            ("imported_at".to_string(), s("2026-01-01T00:00:00Z")),
        ])
    };
    for item in [
        legacy("acme#website#old.example", "acme", "website", "old.example"),
        legacy("acme#pagetree#old.example", "acme", "pagetree", "old.example"),
        legacy("acme2#website#old.example", "acme2", "website", "old.example"),
    ] {
        client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    // A new item next to it, written by the store.
    let origin = ImportOrigin {
        tenant: Tenant::new("acme").unwrap(),
        source: "new.csv".into(),
        imported_at: "2026-12-04T12:00:00Z".into(),
    };
    let item = |key, d| {
        let mut dimensions = DimensionValues::default();
        dimensions.set(Dimension::WebsiteName, key);
        let mut metrics = MetricValues::default();
        metrics.set(Metric::Visit, Quantity::whole(20));
        DailyItem {
            kind: Kind::Website,
            key,
            day: day(d),
            dimensions,
            metrics,
        }
    };
    store
        .upsert(&origin, &[item("new.example", 1), item("old.example", 1)])
        .await
        .unwrap();

    let new = client
        .get_item()
        .table_name(TABLE)
        .key("pk", s("acme#website#new.example"))
        .key("day", s("2023-03-01"))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    for part_of_pk in ["tenant", "kind", "key"] {
        assert!(!new.contains_key(part_of_pk), "{part_of_pk} is not written: {new:?}");
    }

    // The Scan finds both shapes, and only the tenant's website items.
    let all = store.query(&query(None)).await.unwrap();
    let keys: Vec<&str> = all.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["new.example", "old.example"]);
    let old = &all[1];
    assert_eq!(
        (old.tenant.as_str(), old.kind, old.day),
        ("acme", Kind::Website, day(1))
    );
    // visit sent now replaced the old one; duration, not sent, stayed.
    assert_eq!(old.metrics[&Metric::Visit], Quantity::whole(20));
    assert_eq!(old.metrics[&Metric::Duration], Quantity::whole(300));
    assert_eq!(old.dimensions[&Dimension::WebsiteName], "old.example");

    // The Query reads the same item.
    assert_eq!(
        store.query(&query(Some("old.example"))).await.unwrap(),
        std::slice::from_ref(old)
    );
}
