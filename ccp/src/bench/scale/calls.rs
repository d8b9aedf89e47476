//! The calls of `ccp bench scale`: Check passes over the gateway's internal
//! endpoint, ListAccessible paged to the end, and the sizes it reports.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ccp_platform::auth::INTERNAL_TOKEN_HEADER;
use ccp_proto::common::v1::Action;
use ccp_proto::gateway::v1::authorization_client::AuthorizationClient;
use ccp_proto::gateway::v1::{Decision, ListAccessibleRequest};
use hdrhistogram::Histogram;
use sea_orm_migration::sea_orm::ConnectionTrait as _;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use super::data::{Dbs, Question};

/// Longest a single Check may take (a ListAccessible page: the listing's bound).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// ListAccessible page size (the maximum the API allows).
pub(super) const LIST_PAGE: i32 = 1000;

/// Returns the size of the accounts and delegation databases in MiB.
pub(super) async fn database_mb(dbs: &Dbs) -> Option<f64> {
    use sea_orm_migration::sea_orm::{QueryResult, Statement};
    let mut total = 0.0;
    for db in [&dbs.accounts, &dbs.delegation] {
        let row: QueryResult = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT pg_database_size(current_database())::bigint AS bytes",
            ))
            .await
            .ok()??;
        let bytes: i64 = row.try_get("", "bytes").ok()?;
        total += bytes as f64 / (1024.0 * 1024.0);
    }
    Some(total)
}

/// Returns this process's resident set size in MiB (Linux), if known.
pub(super) fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The gateway as an internal caller sees it.
#[derive(Clone)]
pub(super) struct Caller {
    pub(super) channels: Arc<Vec<Channel>>,
    pub(super) token: MetadataValue<Ascii>,
}

impl Caller {
    pub(super) fn request<T>(&self, body: T) -> tonic::Request<T> {
        internal_request(&self.token, body)
    }
}

/// Returns a request carrying the internal `token`, bounded by [`CALL_TIMEOUT`].
pub(super) fn internal_request<T>(token: &MetadataValue<Ascii>, body: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(body);
    request
        .metadata_mut()
        .insert(INTERNAL_TOKEN_HEADER, token.clone());
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// How many times the warm pass asks each question (the cold pass can ask
/// each only once; the warm one gets more samples for its p99).
pub(super) const WARM_ROUNDS: usize = 5;

/// Returns the questions of a warm pass: the cold pass's, [`WARM_ROUNDS`] times.
pub(super) fn warm(questions: &[Question]) -> Arc<Vec<Question>> {
    Arc::new(
        std::iter::repeat_n(questions, WARM_ROUNDS)
            .flatten()
            .cloned()
            .collect(),
    )
}

/// What one pass over the questions measured.
#[derive(Debug, Clone, Default)]
pub(super) struct Pass {
    pub(super) p50_ms: f64,
    pub(super) p90_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
    pub(super) seconds: f64,
    pub(super) unexpected: u64,
    pub(super) errors: u64,
    pub(super) answered: u64,
    /// Per question kind: (kind, count, p50 ms, p90 ms, max ms), slowest p90 first.
    pub(super) by_kind: Vec<(String, u64, f64, f64, f64)>,
}

/// Asks every question once with `workers` callers; records each latency
/// and compares each answer with the expected decision.
pub(super) async fn pass(caller: &Caller, questions: &Arc<Vec<Question>>, workers: usize) -> Pass {
    let next = Arc::new(AtomicUsize::new(0));
    let unexpected = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    // 1 µs .. 60 s at 3 significant digits: constant, valid bounds.
    let new_hist =
        || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    let hist = Arc::new(Mutex::new((
        new_hist(),
        std::collections::BTreeMap::<String, Histogram<u64>>::new(),
    )));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers.max(1) {
        let (caller, questions, next) = (caller.clone(), questions.clone(), next.clone());
        let (unexpected, errors, hist) = (unexpected.clone(), errors.clone(), hist.clone());
        tasks.push(tokio::spawn(async move {
            let channel = caller.channels[w % caller.channels.len()].clone();
            let mut client = AuthorizationClient::new(channel);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(question) = questions.get(i) else {
                    break;
                };
                let t0 = Instant::now();
                let answer = client.check(caller.request(question.request.clone())).await;
                let took = t0.elapsed();
                match answer {
                    Ok(r) => {
                        let allowed = r.get_ref().decision == Decision::Allow as i32;
                        if allowed != question.allow {
                            let n = unexpected.fetch_add(1, Ordering::Relaxed);
                            if n < 5 {
                                tracing::warn!(question = ?question.request, expected = question.allow, answer = ?r.get_ref(), "unexpected decision");
                            }
                        }
                        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
                        let mut h = hist.lock().await;
                        let _ = h.0.record(micros);
                        let kind = h.1.entry(question.kind.clone()).or_insert_with(|| {
                            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                                .expect("valid histogram bounds")
                        });
                        let _ = kind.record(micros);
                    }
                    Err(status) => {
                        let n = errors.fetch_add(1, Ordering::Relaxed);
                        if n < 5 {
                            tracing::warn!(%status, "check failed");
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let guard = hist.lock().await;
    let (hist, kinds) = (&guard.0, &guard.1);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let mut by_kind: Vec<(String, u64, f64, f64, f64)> = kinds
        .iter()
        .map(|(k, h)| {
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            (
                k.clone(),
                h.len(),
                ms(0.5),
                ms(0.9),
                h.max() as f64 / 1000.0,
            )
        })
        .collect();
    by_kind.sort_by(|a, b| b.3.total_cmp(&a.3));
    Pass {
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: hist.max() as f64 / 1000.0,
        seconds,
        unexpected: unexpected.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        answered: hist.len(),
        by_kind,
    }
}

/// What paging one principal's ListAccessible to the end measured.
#[derive(Debug, Clone, Default)]
pub(super) struct Listing {
    pub(super) ms: f64,
    pub(super) pages: u64,
    pub(super) resources: u64,
    pub(super) distinct: u64,
    pub(super) first_page_ms: f64,
    pub(super) complete: bool,
    /// The status of the page that failed, if one did.
    pub(super) error: Option<String>,
}

impl Listing {
    /// Returns true when it reached the end with exactly the `expected`
    /// distinct resources.
    pub(super) fn ok(&self, expected: u64) -> bool {
        self.complete && self.resources == expected && self.distinct == expected
    }
}

/// Pages ListAccessible (VIEW) for `principal` to the end, bounded in pages
/// and time; a failed page ends the listing and is recorded.
pub(super) async fn list(
    caller: &Caller,
    principal: &str,
    max_pages: u64,
    deadline: Duration,
) -> Listing {
    let mut client = AuthorizationClient::new(caller.channels[0].clone());
    let started = Instant::now();
    let mut token = String::new();
    let mut out = Listing::default();
    // Hashes, not the strings: the listing's own memory stays small (RSS).
    let mut seen: HashSet<u64> = HashSet::new();
    while out.pages < max_pages && started.elapsed() < deadline {
        let page = match client
            .list_accessible({
                // A page may take long (the whole listing is bounded instead).
                let mut request = caller.request(ListAccessibleRequest {
                    principal: principal.to_owned(),
                    action: Action::View as i32,
                    page_size: LIST_PAGE,
                    page_token: token.clone(),
                    revision: String::new(),
                });
                let left = deadline.saturating_sub(started.elapsed());
                request.set_timeout(left.max(CALL_TIMEOUT));
                request
            })
            .await
        {
            Ok(page) => page.into_inner(),
            Err(status) => {
                tracing::warn!(%status, page = out.pages + 1, "ListAccessible failed");
                out.error = Some(format!(
                    "page {}: {:?}: {}",
                    out.pages + 1,
                    status.code(),
                    status.message()
                ));
                break;
            }
        };
        out.pages += 1;
        if out.pages == 1 {
            out.first_page_ms = started.elapsed().as_secs_f64() * 1000.0;
        }
        out.resources += page.resources.len() as u64;
        seen.extend(page.resources.iter().map(|r| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&r.resource, &mut h);
            std::hash::Hasher::finish(&h)
        }));
        if page.next_page_token.is_empty() {
            out.complete = true;
            break;
        }
        token = page.next_page_token;
    }
    out.ms = started.elapsed().as_secs_f64() * 1000.0;
    out.distinct = seen.len() as u64;
    out
}

/// Returns `{kind: {n, p50_ms, p90_ms, max_ms}}` of a pass.
pub(super) fn kinds_json(pass: &Pass) -> serde_json::Value {
    pass.by_kind
        .iter()
        .map(|(k, n, p50, p90, max)| {
            (
                k.clone(),
                json!({"n": n, "p50_ms": p50, "p90_ms": p90, "max_ms": max}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub(super) fn listing_note(who: &str, l: &Listing, expected: u64) -> String {
    let outcome = match &l.error {
        Some(err) => format!("FAILED at {err}"),
        None if !l.complete => "stopped at the page or time bound".to_owned(),
        None => format!("{:.0} ms", l.ms),
    };
    format!(
        "ListAccessible (VIEW, pages of {LIST_PAGE}) for {who}: {outcome}; {} pages, {} resources \
         (expected {expected}), first page {:.0} ms",
        l.pages, l.resources, l.first_page_ms
    )
}
