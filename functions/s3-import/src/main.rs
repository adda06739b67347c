//! Lambda entry point: tracing, clients built once, then the runtime loop.

use lambda_runtime::{service_fn, LambdaEvent};
use s3_import::S3Import;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let function = S3Import::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| function.handle(event))).await
}
