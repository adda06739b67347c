//! A fault-injecting HTTP/1.1 proxy for tests: it forwards requests to an upstream (moto) and,
//! for a deterministic share of them, answers as a struggling DynamoDB would instead:
//! a throttling error (HTTP 400, `ProvisionedThroughputExceededException`), an HTTP 500, or a
//! connection dropped without an answer. Faulted requests never reach the upstream.
//!
//! Plain HTTP only (the SDK talks http to 127.0.0.1), one request per connection (every answer
//! says `Connection: close`). Self-contained apart from tokio: copy it freely.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does instead of forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    ServerError,
    DropConnection,
}

const FAULT_CYCLE: [Fault; 3] = [Fault::Throttle, Fault::ServerError, Fault::DropConnection];

#[derive(Debug, Default)]
pub struct ProxyStats {
    pub forwarded: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub dropped: AtomicU64,
}

impl ProxyStats {
    /// `(forwarded, throttled, server_errors, dropped)`.
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.forwarded.load(Ordering::SeqCst),
            self.throttled.load(Ordering::SeqCst),
            self.server_errors.load(Ordering::SeqCst),
            self.dropped.load(Ordering::SeqCst),
        )
    }
}

pub struct FaultProxy {
    addr: SocketAddr,
    stats: Arc<ProxyStats>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Every `every`-th request (1 = all of them) gets a fault, cycling through throttling,
    /// HTTP 500 and a dropped connection; the others are forwarded to `upstream`.
    pub async fn start(upstream: SocketAddr, every: u64) -> FaultProxy {
        assert!(every >= 1);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(ProxyStats::default());
        let counter = Arc::new(AtomicU64::new(0));
        let task_stats = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let stats = Arc::clone(&task_stats);
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let _ = serve(client, upstream, every, &counter, &stats).await;
                });
            }
        });
        FaultProxy { addr, stats, task }
    }

    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    every: u64,
    counter: &AtomicU64,
    stats: &ProxyStats,
) -> std::io::Result<()> {
    let Some((head, body)) = read_message(&mut client).await? else {
        return Ok(());
    };
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    if n % every == 0 {
        let fault = FAULT_CYCLE[((n / every) % 3) as usize];
        match fault {
            Fault::Throttle => {
                stats.throttled.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected by the fault proxy"}"#;
                respond(
                    &mut client,
                    "400 Bad Request",
                    Some("ProvisionedThroughputExceededException"),
                    body,
                )
                .await?;
            }
            Fault::ServerError => {
                stats.server_errors.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by the fault proxy"}"#;
                respond(
                    &mut client,
                    "500 Internal Server Error",
                    Some("InternalServerError"),
                    body,
                )
                .await?;
            }
            Fault::DropConnection => {
                stats.dropped.fetch_add(1, Ordering::SeqCst);
                drop(client);
            }
        }
        return Ok(());
    }
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&with_connection_close(&head)).await?;
    server.write_all(&body).await?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    let split = find(&answer, b"\r\n\r\n").map_or(answer.len(), |i| i + 4);
    let (answer_head, answer_body) = answer.split_at(split);
    client.write_all(&with_connection_close(answer_head)).await?;
    client.write_all(answer_body).await?;
    client.shutdown().await?;
    stats.forwarded.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

async fn respond(client: &mut TcpStream, status: &str, error_type: Option<&str>, body: &str) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(error_type) = error_type {
        head.push_str(&format!("x-amzn-ErrorType: {error_type}\r\n"));
    }
    head.push_str("\r\n");
    client.write_all(head.as_bytes()).await?;
    client.write_all(body.as_bytes()).await?;
    client.shutdown().await
}

/// One request (head with its blank line, body by Content-Length), or `None` at end of stream.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buffer, b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = buffer[..head_end].to_vec();
    let length = String::from_utf8_lossy(&head)
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((head, body)))
}

/// The head with its `Connection` header replaced by `Connection: close`.
fn with_connection_close(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
