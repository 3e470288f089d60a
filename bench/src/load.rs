//! Timed load: one GraphQL request to a [`Target`], bursts of concurrent
//! clients, several targets taking turns (request by request for latency,
//! round by round for throughput) so that a change in a shared, noisy
//! machine's load affects every side of a ratio alike, CPU time per request
//! from `/proc`, and percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::child::{ChildServer, process_cpu};

/// One GraphQL request, always the same, sent to one URL.
pub struct Target {
    pub client: reqwest::Client,
    /// The GraphQL endpoint (`.../graphql`).
    pub url: String,
    /// The bearer token sent in `Authorization`.
    pub token: String,
    /// The `x-exchange-purpose` header.
    pub purpose: &'static str,
    /// The JSON body (`{"query": ..., "variables": ...}`).
    pub body: Vec<u8>,
}

impl Target {
    /// One request, timed.
    pub async fn once(&self) -> anyhow::Result<Duration> {
        self.answer().await.map(|(elapsed, _)| elapsed)
    }

    /// One request: how long it took and the answer, or an error when the
    /// status is not a success or the answer carries `errors`.
    pub async fn answer(&self) -> anyhow::Result<(Duration, axum::body::Bytes)> {
        let started = Instant::now();
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("x-exchange-purpose", self.purpose)
            .header("content-type", "application/json")
            .body(self.body.clone())
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let elapsed = started.elapsed();
        if !status.is_success() || bytes.windows(8).any(|w| w == b"\"errors\"") {
            anyhow::bail!(
                "request failed ({status}): {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok((elapsed, bytes))
    }

    /// One request's `data`, or an error as [`Target::answer`] gives, or
    /// when the answer is not JSON with a `data` object.
    pub async fn data(&self) -> anyhow::Result<serde_json::Value> {
        let (_, bytes) = self.answer().await?;
        let answer: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "the answer is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        match answer.get("data") {
            Some(data) if data.is_object() => Ok(data.clone()),
            _ => anyhow::bail!("the answer has no `data`: {answer}"),
        }
    }

    /// Runs `total` requests with `clients` concurrent clients; how many
    /// were sent and how long they took.
    pub async fn burst(
        self: &Arc<Self>,
        clients: usize,
        total: usize,
    ) -> anyhow::Result<(usize, Duration)> {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let target = self.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..total / clients {
                    target.once().await?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok((total / clients * clients, started.elapsed()))
    }

    /// Requests per second with `clients` concurrent clients.
    pub async fn throughput(self: &Arc<Self>, clients: usize, total: usize) -> anyhow::Result<f64> {
        let (sent, took) = self.burst(clients, total).await?;
        Ok(sent as f64 / took.as_secs_f64())
    }
}

/// Sequential latencies of several targets, one request to each in turn
/// (after a warm-up of `n / 10` turns), each list sorted. Taking turns
/// gives every target the same moments of a shared, noisy machine, so their
/// ratios compare like with like; the order rotates so that no target
/// always follows the same one.
pub async fn interleaved_latencies(
    targets: &[&Target],
    n: usize,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    for _ in 0..n / 10 {
        for target in targets {
            target.once().await?;
        }
    }
    let mut out = vec![Vec::with_capacity(n); targets.len()];
    for i in 0..n {
        for j in 0..targets.len() {
            let k = (i + j) % targets.len();
            out[k].push(targets[k].once().await?);
        }
    }
    for latencies in &mut out {
        latencies.sort_unstable();
    }
    Ok(out)
}

/// Requests per second of several targets with `clients` concurrent
/// clients, `total` requests each, measured in `rounds` alternating rounds
/// (each target in turn) for the same reason as [`interleaved_latencies`].
pub async fn interleaved_throughput(
    targets: &[&Arc<Target>],
    clients: usize,
    total: usize,
    rounds: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut sent = vec![0usize; targets.len()];
    let mut took = vec![Duration::ZERO; targets.len()];
    for _ in 0..rounds {
        for (k, target) in targets.iter().enumerate() {
            let (n, t) = target.burst(clients, total / rounds).await?;
            sent[k] += n;
            took[k] += t;
        }
    }
    Ok(sent
        .iter()
        .zip(&took)
        .map(|(n, t)| *n as f64 / t.as_secs_f64())
        .collect())
}

/// CPU time per request, in microseconds, of `n` sequential requests to
/// `target`: the server's (when given) and this process's (the nodes' and
/// the client's).
pub async fn cpu_per_request(
    target: &Target,
    server: Option<&ChildServer>,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let per_request = |cpu: Duration| cpu.as_secs_f64() * 1e6 / n as f64;
    let server_before = server.map(ChildServer::cpu).unwrap_or_default();
    let here_before = process_cpu("/proc/self/stat");
    for _ in 0..n {
        target.once().await?;
    }
    let server_cpu = server
        .map(|g| g.cpu().saturating_sub(server_before))
        .unwrap_or_default();
    let here_cpu = process_cpu("/proc/self/stat").saturating_sub(here_before);
    Ok((per_request(server_cpu), per_request(here_cpu)))
}

/// The `p` percentile (0 to 1) of `sorted`, in milliseconds.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}
