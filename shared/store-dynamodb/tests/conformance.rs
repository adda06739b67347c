//! The DynamoDB store against the Store conformance suite, on a moto_server of its own,
//! configured the way the CLI is: from the standard AWS environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reimport_store_dynamodb::{DynamoOptions, DynamoStore};
use support::moto::MotoServer;

// The only test of this binary: it may set the process environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_store_passes_the_conformance_suite() {
    let moto = MotoServer::start();
    std::env::set_var("AWS_ENDPOINT_URL", moto.endpoint_url());
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::remove_var("AWS_SESSION_TOKEN");
    std::env::remove_var("AWS_PROFILE");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");

    let store = DynamoStore::connect("reimport-conformance", DynamoOptions::default())
        .await
        .unwrap();
    store.ensure_table().await.unwrap();
    store.ensure_table().await.expect("ensure_table is idempotent");
    reimport_core::conformance::run_all(&store, "ddb").await;
}
