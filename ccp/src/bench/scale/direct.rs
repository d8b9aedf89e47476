//! The facts RPCs a cold Check needs, called directly on accounts and
//! delegation (no gateway), about people and pairs never asked before: the
//! yardstick of the cold Check's latency (target: cold p50 ≤ 1.5 × the p50
//! of the slowest of them, BENCHMARKS.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use ccp_proto::accounts::v1::GetRoleFactsRequest;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::delegation::v1::relationship_facts_client::RelationshipFactsClient;
use ccp_proto::delegation::v1::{GetAssignmentFactsRequest, GetPairFactsRequest};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use super::calls::internal_request;
use super::data::{Block, principal};

/// One facts RPC's latency over a pass.
#[derive(Debug, Clone)]
pub(super) struct RpcLatency {
    pub(super) rpc: &'static str,
    pub(super) calls: u64,
    pub(super) errors: u64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
}

impl RpcLatency {
    pub(super) fn json(&self) -> Value {
        json!({
            "rpc": self.rpc, "calls": self.calls, "errors": self.errors,
            "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
        })
    }
}

/// One direct call: which RPC, with which arguments.
#[derive(Debug, Clone)]
enum Call {
    Roles(String),
    /// A principal's assignments to one client.
    Assignments(String, String),
    Pair(String, String),
}

/// Where the facts services listen, and the internal token to call them with.
pub(super) struct FactsEndpoints {
    pub(super) accounts: Channel,
    pub(super) delegation: Channel,
    pub(super) token: MetadataValue<Ascii>,
}

impl FactsEndpoints {
    fn request<T>(&self, body: T) -> tonic::Request<T> {
        internal_request(&self.token, body)
    }
}

/// Calls `GetRoleFacts`, `GetAssignmentFacts` and `GetPairFacts` once each
/// for the people and pairs of `businesses` of `block` (local indexes), one
/// RPC after the other, `workers` calls at a time as the cold Check pass
/// does, and returns each RPC's latency.
pub(super) async fn direct_facts(
    endpoints: &Arc<FactsEndpoints>,
    block: &Block,
    businesses: &[u64],
    workers: usize,
) -> Vec<RpcLatency> {
    let g = |p: u64| block.start + p;
    // The people a cold Check reads roles of, the assigned ones whose
    // assignments it reads, and the pairs (own business, a client) it reads.
    let roles: Vec<Call> = businesses
        .iter()
        .flat_map(|&p| (0..4).map(move |kind| Call::Roles(principal(kind, g(p)))))
        .collect();
    let assignments: Vec<Call> = businesses
        .iter()
        .filter_map(|&p| Some((p, block.client(p, 0)?)))
        .flat_map(|(p, client)| {
            (1..3).map(move |kind| Call::Assignments(principal(kind, g(p)), block.bn(client)))
        })
        .collect();
    let pairs: Vec<Call> = businesses
        .iter()
        .filter_map(|&p| {
            let client = block.client(p, 0)?;
            Some(Call::Pair(block.bn(p), block.bn(client)))
        })
        .collect();
    let mut out = Vec::new();
    for (rpc, calls) in [
        ("GetRoleFacts", roles),
        ("GetAssignmentFacts", assignments),
        ("GetPairFacts", pairs),
    ] {
        out.push(timed(endpoints, rpc, Arc::new(calls), workers).await);
    }
    out
}

/// Makes every call of `calls` with `workers` callers and records each latency.
async fn timed(
    endpoints: &Arc<FactsEndpoints>,
    rpc: &'static str,
    calls: Arc<Vec<Call>>,
    workers: usize,
) -> RpcLatency {
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    // 1 µs .. 60 s at 3 significant digits: constant, valid bounds.
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
    ));
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (endpoints, calls, next) = (endpoints.clone(), calls.clone(), next.clone());
        let (errors, hist) = (errors.clone(), hist.clone());
        tasks.push(tokio::spawn(async move {
            let mut accounts = AccountFactsClient::new(endpoints.accounts.clone())
                .max_decoding_message_size(usize::MAX);
            let mut delegation = RelationshipFactsClient::new(endpoints.delegation.clone())
                .max_decoding_message_size(usize::MAX);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(call) = calls.get(i) else {
                    break;
                };
                let t0 = Instant::now();
                let answer = match call {
                    Call::Roles(principal) => accounts
                        .get_role_facts(endpoints.request(GetRoleFactsRequest {
                            principal: principal.clone(),
                        }))
                        .await
                        .map(drop),
                    Call::Assignments(principal, client) => delegation
                        .get_assignment_facts(endpoints.request(GetAssignmentFactsRequest {
                            principal: principal.clone(),
                            client: client.clone(),
                        }))
                        .await
                        .map(drop),
                    Call::Pair(provider, client) => delegation
                        .get_pair_facts(endpoints.request(GetPairFactsRequest {
                            provider: provider.clone(),
                            client: client.clone(),
                        }))
                        .await
                        .map(drop),
                };
                let micros = u64::try_from(t0.elapsed().as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                match answer {
                    Ok(()) => {
                        let _ = hist.lock().await.record(micros);
                    }
                    Err(status) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            tracing::warn!(rpc, %status, "facts call failed");
                        }
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let hist = hist.lock().await;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    RpcLatency {
        rpc,
        calls: hist.len(),
        errors: errors.load(Ordering::Relaxed),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
    }
}
