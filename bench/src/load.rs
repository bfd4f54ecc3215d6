//! The load generator: HTTP/1.1 over kept-alive connections, written for this benchmark so that
//! it measures the server and not a client framework. Three shapes:
//!
//! - `closed_loop`: a fixed number of connections, each sending its next request as soon as
//!   the last one is answered, for a fixed time (the throughput a server sustains);
//! - `open_loop`: requests sent at a fixed rate whatever the answers, each request's latency
//!   counted from when it was *due* (so a stalled server's queueing is counted: no coordinated
//!   omission);
//! - `batch`: a fixed list of requests over a fixed number of connections, as fast as they go.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request, written out in full (`request` makes one).
pub type Wire = Vec<u8>;

/// An HTTP/1.1 request to `host`, kept alive.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Wire {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    match body {
        Some(body) => text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len())),
        None if method == "POST" || method == "PUT" => text.push_str("Content-Length: 0\r\n\r\n"),
        None => text.push_str("\r\n"),
    }
    text.into_bytes()
}

/// One answered request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// A kept-alive connection; reconnects after the server closes it.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, stream: None, buf: Vec::with_capacity(16 * 1024) }
    }

    /// Sends `wire` and reads the answer (one retry on a fresh connection if the kept-alive one
    /// was closed before anything came back).
    pub async fn send(&mut self, wire: &[u8]) -> std::io::Result<Answer> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                self.stream = Some(stream);
                self.buf.clear();
            }
            match self.exchange(wire).await {
                Ok(answer) => return Ok(answer),
                Err(err) => {
                    self.stream = None;
                    if attempt == 1 || err.kind() != std::io::ErrorKind::UnexpectedEof {
                        return Err(err);
                    }
                }
            }
        }
        Err(std::io::Error::other("unreachable"))
    }

    async fn exchange(&mut self, wire: &[u8]) -> std::io::Result<Answer> {
        let stream = self.stream.as_mut().ok_or_else(|| std::io::Error::other("not connected"))?;
        stream.write_all(wire).await?;
        let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
        // The head.
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            if stream.read_buf(&mut self.buf).await? == 0 {
                return Err(eof());
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(std::io::Error::other)?.to_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| std::io::Error::other("bad status line"))?;
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_ascii_lowercase())
            })
        };
        let close = header("connection").is_some_and(|v| v == "close");
        self.buf.drain(..head_end);
        let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            self.chunked().await?
        } else {
            let length = header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            while self.buf.len() < length {
                let stream = self.stream.as_mut().ok_or_else(|| std::io::Error::other("not connected"))?;
                if stream.read_buf(&mut self.buf).await? == 0 {
                    return Err(eof());
                }
            }
            self.buf.drain(..length).collect()
        };
        if close {
            self.stream = None;
        }
        Ok(Answer { status, head, body })
    }

    async fn chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = self.fill_until(b"\r\n").await?;
            let size_text = std::str::from_utf8(&self.buf[..line_end]).map_err(std::io::Error::other)?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(std::io::Error::other)?;
            self.buf.drain(..line_end + 2);
            if size == 0 {
                let end = self.fill_until(b"\r\n").await?;
                self.buf.drain(..end + 2);
                return Ok(body);
            }
            while self.buf.len() < size + 2 {
                self.read_more().await?;
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }

    async fn fill_until(&mut self, needle: &[u8]) -> std::io::Result<usize> {
        loop {
            if let Some(at) = find(&self.buf, needle) {
                return Ok(at);
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> std::io::Result<()> {
        let stream = self.stream.as_mut().ok_or_else(|| std::io::Error::other("not connected"))?;
        if stream.read_buf(&mut self.buf).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a run measured.
#[derive(Debug, Default, Clone)]
pub struct Run {
    /// Answers by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Latencies (µs) of every answered request.
    pub latencies_us: Vec<u64>,
    /// Requests that got no answer (a connection error).
    pub errors: u64,
    pub elapsed: Duration,
}

impl Run {
    fn merge(&mut self, other: Run) {
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
    }

    fn record(&mut self, result: std::io::Result<Answer>, latency: Duration) {
        match result {
            Ok(answer) => {
                *self.statuses.entry(answer.status).or_default() += 1;
                self.latencies_us.push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
            }
            Err(_) => self.errors += 1,
        }
    }

    /// Adds `later`, a run of the same requests after this one, as if they were one run.
    pub fn then(&mut self, later: Run) {
        self.elapsed += later.elapsed;
        self.merge(later);
    }

    /// The `q` quantile of the latencies, in ms.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        quantile_ms(&mut self.latencies_us, q)
    }

    pub fn answered(&self) -> u64 {
        self.statuses.values().sum()
    }
}

/// The `q` quantile (0..=1) of `samples_us`, in ms (0 without samples).
pub fn quantile_ms(samples_us: &mut [u64], q: f64) -> f64 {
    if samples_us.is_empty() {
        return 0.0;
    }
    samples_us.sort_unstable();
    let rank = ((samples_us.len() - 1) as f64 * q).round() as usize;
    samples_us[rank.min(samples_us.len() - 1)] as f64 / 1000.0
}

/// Makes request number `n` (of connection `conn`).
pub type Plan = Arc<dyn Fn(u64, usize) -> Wire + Send + Sync>;

/// `connections` connections, each sending its next request once the last is answered, for
/// `duration`.
pub async fn closed_loop(addr: SocketAddr, connections: usize, duration: Duration, plan: Plan) -> Run {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::new();
    for conn in 0..connections {
        let (plan, counter) = (plan.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut c = Conn::new(addr);
            while Instant::now() < deadline {
                let wire = plan(counter.fetch_add(1, Ordering::Relaxed), conn);
                let sent = Instant::now();
                let result = c.send(&wire).await;
                run.record(result, sent.elapsed());
            }
            run
        }));
    }
    let mut total = Run::default();
    for worker in workers {
        if let Ok(run) = worker.await {
            total.merge(run);
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// Requests due at `rate` a second for `duration`, sent over `connections` connections; each
/// latency counts from when its request was due.
pub async fn open_loop(addr: SocketAddr, connections: usize, rate: f64, duration: Duration, plan: Plan) -> Run {
    let start = Instant::now();
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for conn in 0..connections {
        let (plan, next) = (plan.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut c = Conn::new(addr);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let wire = plan(n, conn);
                let result = c.send(&wire).await;
                run.record(result, due.elapsed());
            }
            run
        }));
    }
    let mut run = Run::default();
    for worker in workers {
        if let Ok(part) = worker.await {
            run.merge(part);
        }
    }
    run.elapsed = start.elapsed();
    run
}

/// Sends every request of `wires` over `connections` connections, as fast as they go; the
/// answers in the order of `wires` (an error where none came).
pub async fn batch(addr: SocketAddr, connections: usize, wires: Vec<Wire>) -> (Run, Vec<Option<Answer>>) {
    let start = Instant::now();
    let wires = Arc::new(wires);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..connections.max(1) {
        let (wires, next) = (wires.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut answers = Vec::new();
            let mut c = Conn::new(addr);
            loop {
                let n = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                let Some(wire) = wires.get(n) else { break };
                let sent = Instant::now();
                let result = c.send(wire).await;
                answers.push((n, result.as_ref().ok().cloned()));
                run.record(result, sent.elapsed());
            }
            (run, answers)
        }));
    }
    let mut run = Run::default();
    let mut answers = vec![None; wires.len()];
    for worker in workers {
        if let Ok((part, mine)) = worker.await {
            run.merge(part);
            for (n, answer) in mine {
                answers[n] = answer;
            }
        }
    }
    run.elapsed = start.elapsed();
    (run, answers)
}
