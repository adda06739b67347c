//! A moto_server of a test's own (from the workspace's test-support crate), and a DynamoDB
//! client for it.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
pub use reimport_test_support::MotoServer;

/// A DynamoDB client for a local endpoint: static test credentials, us-east-1.
pub fn dynamodb_client(endpoint_url: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "reimport-tests"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
