//! Imports that run out of time continue in new invocations: the real `s3-import` binary
//! against moto, with the deadline the test Runtime API hands out kept short, and the test
//! playing S3's part by turning each checkpoint the function leaves under `continuations/` into
//! the next invocation's event.
//!
//! `CONTINUE_MARGIN_SECONDS` is set above the deadline given, so every invocation stops after
//! its first batch: the number of invocations is then exact (batches of `WRITE_BATCH_ITEMS`
//! rounded down to whole lines), whatever the speed of moto on the machine.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use reimport_core::{Metric, Quantity};
use serde_json::json;
use support::{created_event, Env};

/// Short enough that the margin below has always passed.
const DEADLINE: Duration = Duration::from_secs(3);
const SETTINGS: &[(&str, &str)] = &[("CONTINUE_MARGIN_SECONDS", "30"), ("WRITE_BATCH_ITEMS", "25")];

/// Five days in March 2023, visits and an amount with cents.
const PROFILE: &str = r#"{
  "skipHeader": true,
  "kind": "website",
  "dimensions": [{"idx": 0, "target": "website_name"}],
  "metrics": [{"idx": 1, "target": "visit"}, {"idx": 2, "target": "scartvalidamount"}],
  "period": {"from": "01/03/2023", "to": "05/03/2023", "scale": "D"}
}"#;

/// `lines` lines: site-NN with odd visits and amounts, so that days get remainders.
fn csv(lines: u64, seed: u64) -> (String, BTreeMap<String, (u64, String)>) {
    let mut text = String::from("Site,Visites,Montant\n");
    let mut expected = BTreeMap::new();
    for i in 0..lines {
        let visits = (i * 7919 + seed) % 1000 + 3;
        let cents = (i * 104_729 + seed) % 100_000;
        let amount = format!("{}.{:02}", cents / 100, cents % 100);
        text.push_str(&format!("site-{i:02},{visits},{amount}\n"));
        expected.insert(format!("site-{i:02}"), (visits, amount));
    }
    (text, expected)
}

/// A line's stored days: day and metrics.
type Days = Vec<(chrono::NaiveDate, BTreeMap<Metric, Quantity>)>;

/// Asserts the table holds exactly the items of `expected` over the 5 days, each line's days
/// summing back to its values with the remainder on the first day.
async fn assert_items(env: &Env, tenant: &str, expected: &BTreeMap<String, (u64, String)>) {
    let items = env.stored_items().await;
    assert_eq!(items.len(), expected.len() * 5, "daily items in the table");
    let mut by_key: BTreeMap<String, Days> = BTreeMap::new();
    for item in items {
        assert_eq!(item.tenant, tenant);
        by_key
            .entry(item.key.clone())
            .or_default()
            .push((item.day, item.metrics));
    }
    assert_eq!(by_key.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (key, (visits, amount)) in expected {
        let mut days = by_key.remove(key).unwrap();
        days.sort_by_key(|(day, _)| *day);
        let amount: Quantity = amount.parse().unwrap();
        let mut visit_sum = Quantity::ZERO;
        let mut amount_sum = Quantity::ZERO;
        for (n, (day, metrics)) in days.iter().enumerate() {
            assert_eq!(day.to_string(), format!("2023-03-0{}", n + 1), "{key}");
            let share = |total: u64| total / 5 + if n == 0 { total % 5 } else { 0 };
            assert_eq!(
                metrics[&Metric::Visit],
                Quantity::whole(share(*visits)),
                "{key} day {n}"
            );
            assert_eq!(
                metrics[&Metric::SCartValidAmount],
                Quantity::new(share(amount.units()), amount.scale()).unwrap(),
                "{key} day {n}"
            );
            visit_sum = visit_sum.checked_add(metrics[&Metric::Visit]).unwrap();
            amount_sum = amount_sum.checked_add(metrics[&Metric::SCartValidAmount]).unwrap();
        }
        assert_eq!(visit_sum, Quantity::whole(*visits), "{key}");
        assert!(amount_sum.same_value(amount), "{key}: {amount_sum} != {amount}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_out_of_time_continues_invocation_after_invocation_until_done() {
    let env = Env::start_with(SETTINGS).await;
    // 28 lines x 5 days = 140 items; 25 items a batch = 5 lines: 6 invocations (5+5+5+5+5+3).
    let (text, expected) = csv(28, 11);
    env.put_pair("incoming/acme/2023/big visits.csv", &text, PROFILE).await;

    let first = env
        .runtime
        .invoke_within(created_event(&["incoming/acme/2023/big visits.csv"]), DEADLINE)
        .await
        .response();
    assert_eq!(first["continued"], json!(["incoming/acme/2023/big visits.csv"]));
    assert_eq!(first["imported"], json!([]));
    assert!(
        env.report("reports/acme/2023/big visits.json").await.is_none(),
        "no report yet"
    );
    let checkpoint_key = "continuations/acme/2023/big visits.part-0002.json";
    assert_eq!(env.checkpoint_keys().await, vec![checkpoint_key.to_string()]);
    let checkpoint: serde_json::Value = serde_json::from_str(&env.text(checkpoint_key).await).unwrap();
    assert_eq!(checkpoint["tenant"], "acme");
    assert_eq!(checkpoint["invocation"], 2);
    assert_eq!(checkpoint["next_line"], 5);
    assert_eq!(checkpoint["lines"], 28);
    assert_eq!(checkpoint["items_written"], 25);
    assert!(checkpoint["totals_written"]["visit"].is_string(), "{checkpoint}");
    assert!(
        checkpoint["totals_written"]["scartvalidamount"].is_string(),
        "{checkpoint}"
    );
    assert!(checkpoint["csv"]["etag"].is_string(), "{checkpoint}");
    assert_eq!(env.stored_items().await.len(), 25);

    // The checkpoint's event delivered twice, the second time after the first consumed it.
    let event = created_event(&[checkpoint_key]);
    let second = env.runtime.invoke_within(event.clone(), DEADLINE).await.response();
    assert_eq!(second["continued"], json!(["incoming/acme/2023/big visits.csv"]));
    let duplicate = env.runtime.invoke_within(event, DEADLINE).await.response();
    assert_eq!(duplicate["skipped"], 1, "{duplicate}");
    assert_eq!(duplicate["continued"], json!([]));
    let logs = env.function.logs_with(&["already consumed"]);
    assert!(logs.contains("already consumed"), "{logs}");
    assert_eq!(
        env.checkpoint_keys().await,
        vec!["continuations/acme/2023/big visits.part-0003.json".to_string()]
    );

    let rest = env
        .run_chain(
            created_event(&["continuations/acme/2023/big visits.part-0003.json"]),
            DEADLINE,
        )
        .await;
    assert_eq!(rest.len(), 4, "invocations 3 to 6: {rest:?}");
    for answer in &rest[..3] {
        assert_eq!(answer["continued"], json!(["incoming/acme/2023/big visits.csv"]));
    }
    assert_eq!(rest[3]["imported"], json!(["incoming/acme/2023/big visits.csv"]));
    assert!(env.checkpoint_keys().await.is_empty(), "checkpoints left behind");

    assert_items(&env, "acme", &expected).await;
    let report = env.report("reports/acme/2023/big visits.json").await.unwrap();
    assert_eq!(report["status"], "imported", "{report}");
    assert_eq!(report["invocations"], 6);
    assert_eq!(report["lines_imported"], 28);
    assert_eq!(report["daily_items"], 140);
    assert_eq!(report["daily_items_written"], 140);
    let visits: u64 = expected.values().map(|(v, _)| v).sum();
    assert_eq!(report["totals"]["visit"]["read"], visits);
    assert_eq!(report["totals"]["visit"]["written"], visits);
    assert_eq!(
        report["totals"]["scartvalidamount"]["read"],
        report["totals"]["scartvalidamount"]["written"]
    );
    let logs = env
        .function
        .logs_with(&["import continues in another invocation", "\"invocations\":6"]);
    assert!(logs.contains("import continues in another invocation"), "{logs}");
    assert!(logs.contains("\"invocations\":6"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_enough_deadline_imports_in_one_invocation() {
    let env = Env::start_with(&[("WRITE_BATCH_ITEMS", "25")]).await;
    let (text, expected) = csv(12, 5);
    env.put_pair("incoming/acme/visits.csv", &text, PROFILE).await;
    let answers = env
        .run_chain(created_event(&["incoming/acme/visits.csv"]), Duration::from_secs(900))
        .await;
    assert_eq!(answers.len(), 1);
    assert_items(&env, "acme", &expected).await;
    let report = env.report("reports/acme/visits.json").await.unwrap();
    assert_eq!(report["status"], "imported");
    assert_eq!(report["invocations"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_malformed_or_misplaced_checkpoints_are_refused_with_a_report() {
    let env = Env::start_with(SETTINGS).await;
    let (text, _) = csv(12, 3);
    env.put_pair("incoming/acme/visits.csv", &text, PROFILE).await;
    env.runtime
        .invoke_within(created_event(&["incoming/acme/visits.csv"]), DEADLINE)
        .await
        .response();
    let checkpoint_key = "continuations/acme/visits.part-0002.json";
    let checkpoint = env.text(checkpoint_key).await;

    // Moved into another tenant's folder: globex cannot continue acme's import.
    let misplaced = "continuations/globex/visits.part-0002.json";
    env.put(misplaced, &checkpoint).await;
    let answer = env
        .runtime
        .invoke_within(created_event(&[misplaced]), DEADLINE)
        .await
        .response();
    assert_eq!(answer["invalid"], json!(["incoming/globex/visits.csv"]));
    let report = env.report("reports/globex/visits.json").await.unwrap();
    assert_eq!(report["status"], "invalid");
    assert_eq!(report["tenant"], "globex");
    assert!(
        report["message"].as_str().unwrap().contains("tenant \"acme\""),
        "{report}"
    );

    // Not a checkpoint at all.
    let garbage = "continuations/acme/other.part-0002.json";
    env.put(garbage, "{\"next_line\": \"soon\"}").await;
    let answer = env
        .runtime
        .invoke_within(created_event(&[garbage]), DEADLINE)
        .await
        .response();
    assert_eq!(answer["invalid"], json!(["incoming/acme/other.csv"]));
    let report = env.report("reports/acme/other.json").await.unwrap();
    assert_eq!(report["status"], "invalid");
    assert!(report["message"].as_str().unwrap().contains("not readable"), "{report}");

    // The CSV replaced while the import was under way: the continuation is refused.
    let items_before = env.stored_items().await;
    let (replaced, _) = csv(12, 999);
    env.put("incoming/acme/visits.csv", &replaced).await;
    let answer = env
        .runtime
        .invoke_within(created_event(&[checkpoint_key]), DEADLINE)
        .await
        .response();
    assert_eq!(answer["invalid"], json!(["incoming/acme/visits.csv"]));
    let report = env.report("reports/acme/visits.json").await.unwrap();
    assert_eq!(report["status"], "invalid", "{report}");
    assert_eq!(report["invocations"], 2);
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains("incoming/acme/visits.csv was replaced since the import started"),
        "{message}"
    );
    assert!(message.contains("after 25 of its 60 daily items"), "{message}");
    assert_eq!(env.stored_items().await, items_before, "nothing written");

    assert!(
        env.checkpoint_keys().await.is_empty(),
        "refused checkpoints are consumed"
    );
}
