//! The store through a network that fails: a proxy (tests/support/fault_proxy.rs) between the
//! SDK and moto throttles, answers 500 or drops the connection for a share of requests.
//! Imports must still end with exactly the right data, or fail loudly as retryable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use reimport_core::report::error_chain;
use reimport_core::{
    DailyItem, Dimension, DimensionValues, ImportOrigin, ItemQuery, Kind, Metric, MetricValues, Quantity, Store, Tenant,
};
use reimport_store_dynamodb::{DynamoOptions, DynamoStore};
use support::fault_proxy::FaultProxy;
use support::moto::{dynamodb_client, MotoServer};

const TABLE: &str = "reimport-faults";
const KEYS: [&str; 3] = ["alpha", "beta#2", "gamma"];

fn origin() -> ImportOrigin {
    ImportOrigin {
        tenant: Tenant::new("acme").unwrap(),
        source: "incoming/acme/faults.csv".into(),
        imported_at: "2026-12-04T12:00:00Z".into(),
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 3, d).unwrap()
}

/// 3 lines x 10 days: visit = 100 * line + day, scartvalidamount = day * 1.01.
fn thirty_items() -> Vec<DailyItem<'static>> {
    let mut items = Vec::new();
    for d in 1..=10 {
        for (line, key) in KEYS.iter().enumerate() {
            let mut dimensions = DimensionValues::default();
            dimensions.set(Dimension::WebsiteName, key);
            let mut metrics = MetricValues::default();
            metrics.set(Metric::Visit, Quantity::whole(100 * line as u64 + u64::from(d)));
            metrics.set(Metric::SCartValidAmount, Quantity::new(u64::from(d) * 101, 2).unwrap());
            items.push(DailyItem {
                kind: Kind::Website,
                key,
                day: day(d),
                dimensions,
                metrics,
            });
        }
    }
    items
}

fn all_lines() -> ItemQuery {
    ItemQuery {
        tenant: origin().tenant,
        kind: Kind::Website,
        key: None,
        from: None,
        to: None,
    }
}

async fn direct_store(moto: &MotoServer) -> DynamoStore {
    let store =
        DynamoStore::with_client(dynamodb_client(&moto.endpoint_url()), TABLE, DynamoOptions::default()).unwrap();
    store.ensure_table().await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_through_a_faulty_network_ends_with_exactly_the_right_data() {
    let moto = MotoServer::start();
    let direct = direct_store(&moto).await;
    // A metric from an earlier import, which this one does not send: it must stay.
    let mut earlier = thirty_items()[0];
    earlier.metrics = MetricValues::default();
    earlier.metrics.set(Metric::DVisitor, Quantity::whole(7));
    direct.upsert(&origin(), &[earlier]).await.unwrap();

    let proxy = FaultProxy::start(moto.addr(), 3).await;
    let options = DynamoOptions {
        concurrency: 8,
        max_attempts: 10,
        initial_backoff: Duration::from_millis(2),
    };
    let faulty = DynamoStore::with_client(dynamodb_client(&proxy.endpoint_url()), TABLE, options).unwrap();
    let items = thirty_items();
    faulty.upsert(&origin(), &items).await.unwrap();

    let (forwarded, throttled, server_errors, dropped) = proxy.stats().snapshot();
    eprintln!("fault proxy: forwarded {forwarded}, throttled {throttled}, 500 {server_errors}, dropped {dropped}");
    assert!(
        throttled > 0 && server_errors > 0 && dropped > 0,
        "every kind of fault was injected: forwarded {forwarded}, throttled {throttled}, 500 {server_errors}, dropped {dropped}"
    );

    // Read back from moto directly, not through the proxy.
    let stored = direct.query(&all_lines()).await.unwrap();
    assert_eq!(stored.len(), 30, "{stored:#?}");
    let mut want: Vec<(String, NaiveDate, BTreeMap<Metric, String>)> = items
        .iter()
        .map(|i| {
            let mut metrics: BTreeMap<Metric, String> = i.metrics.iter().map(|(m, v)| (m, v.to_string())).collect();
            if i.key == "alpha" && i.day == day(1) {
                metrics.insert(Metric::DVisitor, "7".into());
            }
            (i.key.to_string(), i.day, metrics)
        })
        .collect();
    want.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let got: Vec<(String, NaiveDate, BTreeMap<Metric, String>)> = stored
        .iter()
        .map(|s| {
            let metrics = s.metrics.iter().map(|(m, v)| (*m, v.to_string())).collect();
            (s.key.clone(), s.day, metrics)
        })
        .collect();
    assert_eq!(got, want);

    // Reads retry too: the same answer through the proxy.
    assert_eq!(faulty.query(&all_lines()).await.unwrap(), stored);
    let line = ItemQuery {
        key: Some("beta#2".into()),
        from: Some(day(3)),
        to: Some(day(5)),
        ..all_lines()
    };
    let through_proxy = faulty.query(&line).await.unwrap();
    assert_eq!(through_proxy.len(), 3);
    assert_eq!(through_proxy, direct.query(&line).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_that_always_fails_makes_the_upsert_fail_loudly_as_retryable() {
    let moto = MotoServer::start();
    let direct = direct_store(&moto).await;
    let proxy = FaultProxy::start(moto.addr(), 1).await;
    let options = DynamoOptions {
        concurrency: 4,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
    };
    let faulty = DynamoStore::with_client(dynamodb_client(&proxy.endpoint_url()), TABLE, options).unwrap();

    let started = Instant::now();
    let items = thirty_items();
    let error = faulty.upsert(&origin(), &items[..2]).await.unwrap_err();
    let elapsed = started.elapsed();
    let chain = error_chain(&error);
    eprintln!("failed after {elapsed:?}: {chain}");
    assert!(error.is_retryable(), "{chain}");
    assert!(chain.contains("after 3 attempts"), "{chain}");
    assert!(
        chain.contains("acme#website#alpha on 2023-03-01") || chain.contains("acme#website#beta#2 on 2023-03-01"),
        "the message names the item: {chain}"
    );
    assert!(
        std::error::Error::source(&error).is_some(),
        "the SDK error is kept as source"
    );
    assert!(elapsed < Duration::from_secs(10), "fails quickly: {elapsed:?}");
    let (forwarded, ..) = proxy.stats().snapshot();
    assert_eq!(forwarded, 0);
    assert!(direct.query(&all_lines()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_a_permanent_error() {
    let moto = MotoServer::start();
    let store = DynamoStore::with_client(
        dynamodb_client(&moto.endpoint_url()),
        "no-such-table",
        DynamoOptions::default(),
    )
    .unwrap();
    let error = store.upsert(&origin(), &thirty_items()[..1]).await.unwrap_err();
    let chain = error_chain(&error);
    assert!(!error.is_retryable(), "{chain}");
    assert!(chain.contains("ResourceNotFoundException"), "{chain}");
    let error = store.query(&all_lines()).await.unwrap_err();
    assert!(!error.is_retryable(), "{}", error_chain(&error));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_item_is_refused_and_nothing_of_its_batch_is_written() {
    let moto = MotoServer::start();
    let store = direct_store(&moto).await;
    let long_key = "k".repeat(400);
    let mut items = thirty_items()[..2].to_vec();
    let mut huge = items[0];
    huge.key = &long_key;
    huge.dimensions.set(Dimension::WebsiteName, &long_key);
    items.push(huge);
    let error = store.upsert(&origin(), &items).await.unwrap_err();
    let chain = error_chain(&error);
    assert!(!error.is_retryable(), "{chain}");
    assert!(
        chain.contains(&format!("acme#website#{long_key} on 2023-03-01")),
        "{chain}"
    );
    assert!(chain.contains("1 KB"), "{chain}");
    assert!(store.query(&all_lines()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_table_refuses_a_table_with_another_key_schema() {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let moto = MotoServer::start();
    let client = dynamodb_client(&moto.endpoint_url());
    client
        .create_table()
        .table_name("other-schema")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let store = DynamoStore::with_client(client, "other-schema", DynamoOptions::default()).unwrap();
    let error = store.ensure_table().await.unwrap_err();
    assert!(
        matches!(error, reimport_store_dynamodb::Error::KeySchemaMismatch { .. }),
        "{error}"
    );
}
