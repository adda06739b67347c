//! What the end-to-end tests run against: a moto_server (S3 and DynamoDB on one port, from the
//! workspace's test-support crate), a Lambda Runtime API served by the test itself, and the real
//! `s3-import` binary polling it. Every test starts its own of each and stops them on drop.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use reimport_core::StoredItem;
use reimport_store_dynamodb::{DynamoOptions, DynamoStore};
pub use reimport_test_support::MotoServer;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

pub const BUCKET: &str = "drop-zone";
pub const TABLE: &str = "daily-items";

/// A website profile over 1-3 March 2023: key in column 0, visits in column 1.
pub const PROFILE: &str = r#"{
  "skipHeader": true,
  "kind": "website",
  "dimensions": [{"idx": 0, "target": "website_name"}],
  "metrics": [{"idx": 1, "target": "visit"}],
  "period": {"from": "01/03/2023", "to": "03/03/2023", "scale": "D"}
}"#;

/// Three lines, three days: 30 = 10+10+10, 10 = 4+3+3, 7 = 3+2+2.
pub const CSV: &str = "Nom,Visites\nsite-a,30\nsite-b,10\nsite-c,7\n";

/// The daily items [`CSV`] gives for `tenant`, as [`Env::items`] lists them.
pub fn expected_items(tenant: &str) -> Vec<String> {
    let mut items = Vec::new();
    for (key, days) in [("site-a", [10, 10, 10]), ("site-b", [4, 3, 3]), ("site-c", [3, 2, 2])] {
        for (day, visits) in days.iter().enumerate() {
            items.push(format!("{tenant}/{key}/2023-03-0{}: visit={visits}", day + 1));
        }
    }
    items
}

pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

/// What the function answered to one invocation.
#[derive(Debug)]
pub enum Invocation {
    Response(Value),
    Error(Value),
}

impl Invocation {
    pub fn response(self) -> Value {
        match self {
            Invocation::Response(v) => v,
            Invocation::Error(e) => panic!("the invocation failed: {e}"),
        }
    }

    pub fn error(self) -> Value {
        match self {
            Invocation::Error(e) => e,
            Invocation::Response(v) => panic!("the invocation succeeded: {v}"),
        }
    }
}

struct RuntimeState {
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value, Duration)>>,
    outcomes: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
}

/// The Lambda Runtime API, as much of it as a function uses: `next`, `response`, `error`.
pub struct RuntimeApi {
    pub address: String,
    events: mpsc::UnboundedSender<(String, Value, Duration)>,
    state: Arc<RuntimeState>,
    served: tokio::task::JoinHandle<()>,
    invocations: AtomicU64,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (events, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(RuntimeState {
            events: tokio::sync::Mutex::new(receiver),
            outcomes: Mutex::new(HashMap::new()),
        });
        let served_state = state.clone();
        let served = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = served_state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| route(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            address,
            events,
            state,
            served,
            invocations: AtomicU64::new(0),
        }
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: Value) -> Invocation {
        self.invoke_within(event, Duration::from_secs(900)).await
    }

    /// Hands `event` to the function with a deadline `time` from now (the
    /// `Lambda-Runtime-Deadline-Ms` header) and waits for its answer, however long it takes.
    pub async fn invoke_within(&self, event: Value, time: Duration) -> Invocation {
        let id = format!("request-{}", self.invocations.fetch_add(1, Ordering::SeqCst) + 1);
        let (sender, receiver) = oneshot::channel();
        self.state.outcomes.lock().unwrap().insert(id.clone(), sender);
        self.events.send((id.clone(), event, time)).unwrap();
        tokio::time::timeout(Duration::from_secs(900), receiver)
            .await
            .unwrap_or_else(|_| panic!("{id}: no answer within 900 s, Lambda's limit"))
            .unwrap()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.served.abort();
    }
}

async fn route(req: Request<Incoming>, state: Arc<RuntimeState>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let reply = |status: StatusCode, body: &str| {
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        response
    };
    if req.method() == Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        let next = state.events.lock().await.recv().await;
        let Some((id, event, time)) = next else {
            return Ok(reply(StatusCode::GONE, "{}"));
        };
        let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + time;
        let response = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", &id)
            .header("lambda-runtime-deadline-ms", deadline.as_millis().to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:s3-import",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            )
            .body(Full::new(Bytes::from(event.to_string())))
            .unwrap();
        return Ok(response);
    }
    if req.method() == Method::POST {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if let ["2018-06-01", "runtime", "invocation", id, outcome @ ("response" | "error")] = segments[..] {
            let (id, outcome) = (id.to_string(), outcome.to_string());
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let value: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
            let invocation = if outcome == "response" {
                Invocation::Response(value)
            } else {
                Invocation::Error(value)
            };
            if let Some(sender) = state.outcomes.lock().unwrap().remove(&id) {
                let _ = sender.send(invocation);
            }
            return Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"));
        }
        if path == "/2018-06-01/runtime/init/error" {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            eprintln!("init error: {}", String::from_utf8_lossy(&body));
            return Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"));
        }
    }
    Ok(reply(StatusCode::NOT_FOUND, "{}"))
}

/// A DynamoDB stand-in answering every request with `status` and `body`, counting requests:
/// `200 {}` is an instant DynamoDB, a 400 throttling error a table that never keeps up.
pub async fn dynamodb_stand_in(status: u16, body: &'static str) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU64::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let counted = counted.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let counted = counted.clone();
                    async move {
                        let _ = req.into_body().collect().await;
                        counted.fetch_add(1, Ordering::Relaxed);
                        let response = Response::builder()
                            .status(status)
                            .header("content-type", "application/x-amz-json-1.0")
                            .body(Full::new(Bytes::from_static(body.as_bytes())))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (endpoint, requests)
}

/// The `s3-import` binary, polling a [`RuntimeApi`]; its logs are kept, it is killed on drop.
pub struct Function {
    child: Child,
    logs: Arc<Mutex<String>>,
}

impl Function {
    pub fn start(runtime: &RuntimeApi, endpoint: &str, extra_env: &[(&str, &str)]) -> Function {
        let mut command = Command::new(env!("CARGO_BIN_EXE_s3-import"));
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &runtime.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "s3-import")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/04/[$LATEST]test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/s3-import")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_SESSION_TOKEN", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("TABLE_NAME", TABLE);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start s3-import");
        let logs = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("s3-import: {line}");
                    let mut logs = logs.lock().unwrap();
                    logs.push_str(&line);
                    logs.push('\n');
                }
            });
        }
        Function { child, logs }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// The logs once they hold every one of `needles`, or as they are after 10 s. The function's
    /// stderr is read by another thread: a line the function printed before answering may not
    /// have been read yet when the answer arrives.
    pub fn logs_with(&self, needles: &[&str]) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if needles.iter().all(|n| logs.contains(n)) || std::time::Instant::now() > deadline {
                return logs;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The process's peak resident memory so far, from /proc (Linux only).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time the process used so far (user + system), from /proc (Linux only).
    pub fn cpu_ms(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks * 10)
    }

    /// Waits for the process to end (a failed cold start) and returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test's world: moto with a bucket and a table, the Runtime API and the function.
pub struct Env {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub function: Function,
    pub runtime: RuntimeApi,
    pub moto: MotoServer,
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(&[]).await
    }

    pub async fn start_with(extra_env: &[(&str, &str)]) -> Env {
        let moto = MotoServer::start();
        let sdk = sdk_config(&moto.endpoint_url()).await;
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        DynamoStore::with_client(dynamodb.clone(), TABLE, DynamoOptions::default())
            .unwrap()
            .ensure_table()
            .await
            .unwrap();
        let runtime = RuntimeApi::start().await;
        let function = Function::start(&runtime, &moto.endpoint_url(), extra_env);
        Env {
            s3,
            dynamodb,
            function,
            runtime,
            moto,
        }
    }

    pub async fn put(&self, key: &str, body: &str) {
        self.s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
    }

    /// Uploads a CSV and its profile without telling the function.
    pub async fn put_pair(&self, csv_key: &str, csv: &str, profile: &str) {
        self.put(csv_key, csv).await;
        let profile_key = format!("{}.json", csv_key.strip_suffix(".csv").unwrap());
        self.put(&profile_key, profile).await;
    }

    /// The report at `key`, or `None`.
    pub async fn report(&self, key: &str) -> Option<Value> {
        let object = self.s3.get_object().bucket(BUCKET).key(key).send().await.ok()?;
        let bytes = object.body.collect().await.unwrap().into_bytes();
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    /// Plays S3's part for continuations: after `first` (the event that starts an import), every
    /// checkpoint found under `continuations/` becomes the next invocation's event, until none
    /// is left. Each invocation gets a deadline `time` away. Returns every answer, in order.
    pub async fn run_chain(&self, first: Value, time: Duration) -> Vec<Value> {
        let mut answers = vec![self.runtime.invoke_within(first, time).await.response()];
        loop {
            let checkpoints = self.checkpoint_keys().await;
            let Some(next) = checkpoints.first() else {
                return answers;
            };
            assert_eq!(checkpoints.len(), 1, "one checkpoint at a time: {checkpoints:?}");
            assert!(answers.len() < 100, "the import never ends: {answers:?}");
            answers.push(
                self.runtime
                    .invoke_within(created_event(&[next]), time)
                    .await
                    .response(),
            );
        }
    }

    /// Keys under `continuations/`.
    pub async fn checkpoint_keys(&self) -> Vec<String> {
        self.object_keys()
            .await
            .into_iter()
            .filter(|k| k.starts_with("continuations/"))
            .collect()
    }

    /// The text of the object at `key`.
    pub async fn text(&self, key: &str) -> String {
        let object = self.s3.get_object().bucket(BUCKET).key(key).send().await.unwrap();
        String::from_utf8(object.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
    }

    pub async fn object_keys(&self) -> Vec<String> {
        let listed = self.s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
        let mut keys: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        keys.sort();
        keys
    }

    /// Every item of the table, read with a Scan, as `tenant/key/day: metric=value,...`.
    pub async fn items(&self) -> Vec<String> {
        let mut items: Vec<String> = self
            .stored_items()
            .await
            .iter()
            .map(|item| {
                let metrics: Vec<String> = item.metrics.iter().map(|(m, v)| format!("{m}={v}")).collect();
                format!("{}/{}/{}: {}", item.tenant, item.key, item.day, metrics.join(","))
            })
            .collect();
        items.sort();
        items
    }

    pub async fn stored_items(&self) -> Vec<StoredItem> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(TABLE)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for attributes in page.items() {
                items.push(reimport_store_dynamodb::item::stored_item(attributes).unwrap());
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
    }
}

/// A key as S3 puts it in a notification: form-urlencoded, `/` kept.
pub fn form_encode(key: &str) -> String {
    let mut encoded = String::new();
    for &b in key.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => encoded.push(char::from(b)),
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{b:02X}")),
        }
    }
    encoded
}

/// One record shaped like the real `ObjectCreated:Put` samples; `encoded_key` as S3 sends it.
pub fn created_record(encoded_key: &str) -> Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-04T16:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "reimport-incoming",
            "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": format!("arn:aws:s3:::{BUCKET}")},
            "object": {"key": encoded_key, "size": 42, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}
        }
    })
}

/// An S3 notification for the given (decoded) keys, one record each.
pub fn created_event(keys: &[&str]) -> Value {
    json!({ "Records": keys.iter().map(|k| created_record(&form_encode(k))).collect::<Vec<_>>() })
}
