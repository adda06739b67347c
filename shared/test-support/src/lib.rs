//! What the integration tests of several crates share (a dev-dependency only): a moto_server
//! (S3 and DynamoDB served locally on one port) of a test's own, killed when it drops.
//!
//! The server is `$REIMPORT_VENV/bin/moto_server`, else `<workspace>/.venv/bin/moto_server`,
//! else `moto_server` on the PATH (the repo's convention: `scripts/test-all.sh` creates that venv
//! with `moto[server]`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto_server on a port of its own.
pub struct MotoServer {
    child: Child,
    pub port: u16,
}

fn moto_binary() -> PathBuf {
    let venv = std::env::var_os("REIMPORT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let in_venv = venv.join("bin/moto_server");
    if in_venv.is_file() {
        in_venv
    } else {
        PathBuf::from("moto_server")
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Whether something on `port` answers HTTP (moto listens a moment before it serves).
fn answers_http(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

impl MotoServer {
    /// Starts one and waits until it answers HTTP (up to 60 s; up to three ports, in case
    /// another process takes the free port first). Blocks the calling thread meanwhile.
    pub fn start() -> MotoServer {
        let binary = moto_binary();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {}: {e} (create the venv: python3 -m venv .venv && .venv/bin/pip install 'moto[server]', \
                         or set REIMPORT_VENV)",
                        binary.display()
                    )
                });
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: most likely the port was taken meanwhile; try another
                }
                if answers_http(port) {
                    return MotoServer { child, port };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{} did not start", binary.display());
    }

    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
