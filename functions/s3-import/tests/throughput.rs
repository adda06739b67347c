//! How fast one invocation imports, measured on the real binary; the numbers in the README come
//! from here. By default a small file against a DynamoDB stand-in that answers every UpdateItem
//! at once (the function's own ceiling: S3 streaming, validation, spreading, request signing);
//! `S3_IMPORT_MEASURE_TARGET=moto` writes to moto instead. Sizes:
//! `S3_IMPORT_MEASURE_LINES` (default 200) and `S3_IMPORT_MEASURE_DAYS` (default 5).
//!
//! ```text
//! S3_IMPORT_MEASURE_LINES=20000 S3_IMPORT_MEASURE_DAYS=31 \
//!   cargo test --release -p s3-import --test throughput -- --nocapture
//! ```

mod support;

use std::sync::atomic::Ordering;

use chrono::{Duration as Days, NaiveDate};
use serde_json::json;
use support::{created_event, Env};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_import_throughput() {
    let lines = setting("S3_IMPORT_MEASURE_LINES", 200);
    let days = setting("S3_IMPORT_MEASURE_DAYS", 5).max(1);
    let target = std::env::var("S3_IMPORT_MEASURE_TARGET").unwrap_or_else(|_| "fast".into());

    let (dynamodb_endpoint, requests) = support::dynamodb_stand_in(200, "{}").await;
    let extra: Vec<(&str, &str)> = if target == "moto" {
        vec![]
    } else {
        vec![("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint.as_str())]
    };
    let env = Env::start_with(&extra).await;

    let from = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    let to = from + Days::days(days as i64 - 1);
    let profile = json!({
        "skipHeader": true,
        "kind": "website",
        "dimensions": [{"idx": 0, "target": "website_name"}],
        "metrics": [{"idx": 1, "target": "visit"}, {"idx": 2, "target": "duration"}],
        "period": {"from": from.format("%d/%m/%Y").to_string(), "to": to.format("%d/%m/%Y").to_string(), "scale": "D"}
    });
    let mut csv = String::from("Nom,Visites,Temps total\n");
    for line in 0..lines {
        csv.push_str(&format!("site-{line:07},{},{}\n", 1000 + line % 977, 31 * line));
    }
    env.put_pair("incoming/acme/big.csv", &csv, &profile.to_string()).await;

    let started = std::time::Instant::now();
    let response = env
        .runtime
        .invoke(created_event(&["incoming/acme/big.csv"]))
        .await
        .response();
    let wall = started.elapsed();
    assert_eq!(response["imported"], json!(["incoming/acme/big.csv"]), "{response}");

    let report = env.report("reports/acme/big.json").await.unwrap();
    let items = lines * days;
    assert_eq!(report["daily_items_written"], items);
    if target != "moto" {
        assert_eq!(requests.load(Ordering::Relaxed), items);
    }
    let duration_ms = report["duration_ms"].as_u64().unwrap().max(1);
    eprintln!(
        "target={target} lines={lines} days={days} items={items} csv_bytes={} import_ms={duration_ms} \
         invocation_ms={} items_per_s={} function_cpu_ms={:?} peak_rss_kib={:?}",
        csv.len(),
        wall.as_millis(),
        items * 1000 / duration_ms,
        env.function.cpu_ms(),
        env.function.peak_rss_kib()
    );
}
