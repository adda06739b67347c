//! The real `s3-import` binary against moto (S3 + DynamoDB) and a Runtime API served here:
//! events built like the real samples, keys form-encoded as S3 sends them, results read back
//! from the table with the SDK and from the reports in the bucket.

mod support;

use serde_json::json;
use support::{created_event, created_record, expected_items, form_encode, Env, BUCKET, CSV, PROFILE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_pairs_whose_keys_need_decoding() {
    let env = Env::start().await;
    let keys = [
        ("incoming/acme/2023/Export visites mars", "acme"),
        ("incoming/beta/c++ stats", "beta"),
        ("incoming/gamma/résumé=1&x", "gamma"),
    ];
    for (stem, tenant) in keys {
        let csv = CSV.replace("site-", &format!("{tenant}-site-"));
        env.put_pair(&format!("{stem}.csv"), &csv, PROFILE).await;
    }
    // Each pair announced by one record of a single event; the last with %20 and %2F as some
    // tools send them.
    let event = json!({"Records": [
        created_record(&form_encode("incoming/acme/2023/Export visites mars.csv")),
        created_record(&form_encode("incoming/beta/c++ stats.json")),
        created_record("incoming%2Fgamma%2Fr%C3%A9sum%C3%A9%3D1%26x.csv"),
    ]});
    assert!(event.to_string().contains("Export+visites+mars.csv"));
    assert!(event.to_string().contains("c%2B%2B+stats.json"));

    let response = env.runtime.invoke(event).await.response();
    assert_eq!(
        response["imported"],
        json!([
            "incoming/acme/2023/Export visites mars.csv",
            "incoming/beta/c++ stats.csv",
            "incoming/gamma/résumé=1&x.csv"
        ])
    );

    let mut expected: Vec<String> = Vec::new();
    for (_, tenant) in keys {
        expected.extend(
            expected_items(tenant)
                .into_iter()
                .map(|i| i.replace("/site-", &format!("/{tenant}-site-"))),
        );
    }
    expected.sort();
    assert_eq!(env.items().await, expected);

    let report = env
        .report("reports/beta/c++ stats.json")
        .await
        .expect("report of c++ stats");
    assert_eq!(report["status"], "imported");
    assert_eq!(report["bucket"], BUCKET);
    assert_eq!(report["csv_key"], "incoming/beta/c++ stats.csv");
    assert_eq!(report["profile_key"], "incoming/beta/c++ stats.json");
    assert_eq!(report["tenant"], "beta");
    assert_eq!(report["lines_imported"], 3);
    assert_eq!(report["daily_items_written"], 9);
    assert!(report["csv_etag"].is_string(), "{report}");
    assert!(env.report("reports/acme/2023/Export visites mars.json").await.is_some());
    assert!(env.report("reports/gamma/résumé=1&x.json").await.is_some());

    let logs = env.function.logs_with(&["\"status\":\"imported\"", "\"items\":9"]);
    assert!(
        logs.contains("\"status\":\"imported\"") && logs.contains("\"items\":9"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_the_profile_then_imports_when_it_arrives() {
    let env = Env::start().await;
    env.put("incoming/acme/visits.csv", CSV).await;

    let response = env
        .runtime
        .invoke(created_event(&["incoming/acme/visits.csv"]))
        .await
        .response();
    assert_eq!(response["waiting"], json!(["incoming/acme/visits.json"]));
    assert_eq!(response["imported"], json!([]));
    assert!(env.items().await.is_empty());
    assert!(env.report("reports/acme/visits.json").await.is_none());
    let logs = env.function.logs_with(&["waiting for incoming/acme/visits.json"]);
    assert!(logs.contains("waiting for incoming/acme/visits.json"), "{logs}");

    env.put("incoming/acme/visits.json", PROFILE).await;
    let response = env
        .runtime
        .invoke(created_event(&["incoming/acme/visits.json"]))
        .await
        .response();
    assert_eq!(response["imported"], json!(["incoming/acme/visits.csv"]));
    assert_eq!(env.items().await, expected_items("acme"));
    assert_eq!(
        env.report("reports/acme/visits.json").await.unwrap()["status"],
        "imported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_twice_leaves_the_same_data() {
    let env = Env::start().await;
    env.put_pair("incoming/acme/visits.csv", CSV, PROFILE).await;
    let event = created_event(&["incoming/acme/visits.csv"]);

    env.runtime.invoke(event.clone()).await.response();
    let first = env.stored_items().await;
    env.runtime.invoke(event).await.response();
    let second = env.stored_items().await;

    assert_eq!(env.items().await, expected_items("acme"));
    let sorted = |mut items: Vec<reimport_core::StoredItem>| {
        items.sort_by(|a, b| (&a.key, a.day).cmp(&(&b.key, b.day)));
        items
    };
    assert_eq!(sorted(first), sorted(second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_writes_nothing_and_reports_line_and_column() {
    let env = Env::start().await;
    let bad = "Nom,Visites\nsite-a,30\nsite-b,douze\nsite-c,7\n";
    env.put_pair("incoming/acme/bad.csv", bad, PROFILE).await;
    env.put_pair("incoming/bad tenant!/visits.csv", CSV, PROFILE).await;

    let response = env
        .runtime
        .invoke(created_event(&[
            "incoming/acme/bad.csv",
            "incoming/bad tenant!/visits.json",
        ]))
        .await
        .response();
    assert_eq!(
        response["invalid"],
        json!(["incoming/acme/bad.csv", "incoming/bad tenant!/visits.csv"])
    );
    assert!(env.items().await.is_empty());

    let report = env.report("reports/acme/bad.json").await.expect("report of bad.csv");
    assert_eq!(report["status"], "invalid");
    assert_eq!(report["csv_key"], "incoming/acme/bad.csv");
    assert_eq!(report["error_count"], 1);
    assert_eq!(report["errors"][0]["line"], 3);
    assert_eq!(report["errors"][0]["idx"], 1);
    assert_eq!(report["errors"][0]["value"], "douze");

    let report = env
        .report("reports/bad tenant!/visits.json")
        .await
        .expect("report of bad tenant");
    assert_eq!(report["status"], "invalid");
    assert!(report["message"].as_str().unwrap().contains("bad tenant!"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_touch_another_tenants_lines() {
    let env = Env::start().await;
    env.put_pair("incoming/globex/visits.csv", "Nom,Visites\nglobex,30\n", PROFILE)
        .await;
    env.runtime
        .invoke(created_event(&["incoming/globex/visits.csv"]))
        .await
        .response();

    // acme's file names globex everywhere it can: the path below the tenant and the content.
    env.put_pair("incoming/acme/globex/visits.csv", "Nom,Visites\nglobex,999\n", PROFILE)
        .await;
    let response = env
        .runtime
        .invoke(created_event(&["incoming/acme/globex/visits.csv"]))
        .await
        .response();
    assert_eq!(response["imported"], json!(["incoming/acme/globex/visits.csv"]));

    assert_eq!(
        env.items().await,
        vec![
            "acme/globex/2023-03-01: visit=333",
            "acme/globex/2023-03-02: visit=333",
            "acme/globex/2023-03-03: visit=333",
            "globex/globex/2023-03-01: visit=10",
            "globex/globex/2023-03-02: visit=10",
            "globex/globex/2023-03-03: visit=10",
        ]
    );
    assert_eq!(
        env.report("reports/acme/globex/visits.json").await.unwrap()["tenant"],
        "acme"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_record_fails_the_invocation_after_the_others_are_done() {
    let env = Env::start().await;
    env.put_pair("incoming/acme/visits.csv", CSV, PROFILE).await;
    let event = json!({"Records": [
        created_record("incoming/acme/broken%ZZ.csv"),
        created_record("reports/acme/visits.json"),
        created_record("incoming/acme/visits.csv"),
    ]});

    let error = env.runtime.invoke(event).await.error();
    assert_eq!(error["errorType"], "S3ImportError");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("1 of 3 event records failed") && message.contains("broken%ZZ.csv"),
        "{message}"
    );
    assert_eq!(env.items().await, expected_items("acme"));

    // The function keeps serving: test events and unknown shapes are acknowledged.
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-04T16:00:00.000Z",
                            "Bucket": BUCKET, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR"});
    assert_eq!(env.runtime.invoke(test_event).await.response()["test_events"], 1);
    assert_eq!(
        env.runtime.invoke(json!({"hello": "world"})).await.response()["unrecognized"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_stops_the_cold_start() {
    let runtime = support::RuntimeApi::start().await;
    let mut function = support::Function::start(&runtime, "http://127.0.0.1:9", &[("WRITE_CONCURRENCY", "zero")]);
    let status = function
        .wait_exit(std::time::Duration::from_secs(30))
        .expect("the function kept running");
    assert!(!status.success());
    let logs = function.logs_with(&["WRITE_CONCURRENCY"]);
    assert!(logs.contains("WRITE_CONCURRENCY"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_s3_fails_the_invocation_so_lambda_retries() {
    let runtime = support::RuntimeApi::start().await;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{closed_port}");
    let _function = support::Function::start(&runtime, &endpoint, &[]);
    let error = runtime
        .invoke(created_event(&["incoming/acme/visits.csv"]))
        .await
        .error();
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("HeadObject s3://drop-zone/incoming/acme/visits.json failed"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_throttling_beyond_retries_fails_the_invocation_and_reports_failed() {
    let (dynamodb, requests) = support::dynamodb_stand_in(
        400,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate of requests exceeds the allowed throughput."}"#,
    )
    .await;
    let env = Env::start_with(&[("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.as_str())]).await;
    env.put_pair("incoming/acme/visits.csv", CSV, PROFILE).await;

    let error = env
        .runtime
        .invoke(created_event(&["incoming/acme/visits.csv"]))
        .await
        .error();
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("importing s3://drop-zone/incoming/acme/visits.csv failed"),
        "{message}"
    );
    assert!(
        requests.load(std::sync::atomic::Ordering::Relaxed) > 9,
        "the store did not retry"
    );

    let report = env.report("reports/acme/visits.json").await.expect("failure report");
    assert_eq!(report["status"], "failed");
    assert_eq!(report["lines_imported"], 3);
    assert!(report["message"].as_str().unwrap().contains("store"), "{report}");
}
