//! A small SMTP server on a loopback port that records every message it accepts, and can be
//! told to refuse service (an outage) or to refuse a recipient for good (`550` to its `RCPT
//! TO`). Hand-written: a recording sink that can also fail on demand is shorter than adapting a
//! sink crate to do the latter.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `RCPT TO` addresses.
    pub rcpt: Vec<String>,
    /// The message as sent (dot-unstuffed), CRLF line ends.
    pub raw: String,
}

#[derive(Debug, Default)]
struct State {
    received: Vec<Received>,
    refusing: bool,
    refused_connections: usize,
    /// Addresses answered `550` (refused for good).
    rejected: Vec<String>,
    /// Once this many messages are accepted, every later connection is refused (an outage
    /// that begins in the middle of an event's messages).
    accept_at_most: Option<usize>,
}

/// The sink; dropping it stops accepting connections.
#[derive(Debug)]
pub struct Sink {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    /// Starts the sink on 127.0.0.1:0.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Self { port, state, task }
    }

    /// The `smtp://` URL of the sink (plain, loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// From now on, answers every connection `421` (service not available), or serves again.
    pub fn refuse(&self, refusing: bool) {
        let mut s = self.state.lock().unwrap();
        s.refusing = refusing;
        s.accept_at_most = None;
    }

    /// From now on, answers `RCPT TO:<address>` with `550` (no such user), or accepts it again.
    pub fn reject(&self, address: &str, rejecting: bool) {
        let mut s = self.state.lock().unwrap();
        s.rejected.retain(|a| a != address);
        if rejecting {
            s.rejected.push(address.to_owned());
        }
    }

    /// Accepts `n` more messages, then refuses every connection until [`Sink::refuse`]`(false)`.
    pub fn accept_at_most(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        s.accept_at_most = Some(s.received.len() + n);
    }

    /// How many connections were refused.
    pub fn refused_connections(&self) -> usize {
        self.state.lock().unwrap().refused_connections
    }
}

async fn serve(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    {
        let refusing = {
            let mut s = state.lock().unwrap();
            if s.refusing {
                s.refused_connections += 1;
            }
            s.refusing
        };
        if refusing {
            write.write_all(b"421 sink unavailable\r\n").await?;
            return Ok(());
        }
    }
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut rcpt = Vec::new();
    let mut line = String::new();
    // Bounded: one connection carries at most a few hundred commands in these tests.
    for _ in 0..10_000 {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if command.starts_with("MAIL FROM") {
            rcpt.clear();
            b"250 ok\r\n"
        } else if command.starts_with("RCPT TO") {
            let address = line.trim_end()[8..].trim().to_owned();
            let rejected = state
                .lock()
                .unwrap()
                .rejected
                .iter()
                .any(|a| address == format!("<{a}>"));
            if rejected {
                b"550 5.1.1 no such user\r\n"
            } else {
                rcpt.push(address);
                b"250 ok\r\n"
            }
        } else if command == "DATA" {
            write.write_all(b"354 end with .\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                raw.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let mut s = state.lock().unwrap();
            s.received.push(Received {
                rcpt: std::mem::take(&mut rcpt),
                raw,
            });
            if s.accept_at_most.is_some_and(|n| s.received.len() >= n) {
                s.refusing = true;
            }
            b"250 queued\r\n"
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}
