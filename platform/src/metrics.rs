//! Metrics for every CCP process, as Prometheus text on an admin port of
//! their own (`telemetry.metrics_listen`, path `/metrics`).
//!
//! One global recorder per process (the `metrics` facade with
//! `metrics-exporter-prometheus`), installed by [`serve`] before the services
//! start; with `metrics_listen` empty nothing is installed and every
//! instrument is the facade's no-op. Names follow OpenTelemetry's RPC
//! conventions, Prometheus-ised: `rpc_server_duration_seconds` and
//! `rpc_client_duration_seconds` with `rpc_system`, `rpc_service`,
//! `rpc_method` and `rpc_grpc_status_code` (their `_count` is the call rate
//! and the errors by code). docs/operations.md lists every series.
//!
//! Hot paths record through handles made once ([`RpcInstruments`] keeps one
//! histogram per method and code, made on the first call): a call builds no
//! label strings.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use metrics::{Histogram, Label};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseConnection, DatabaseConnectionType};

/// The histogram buckets of every duration and lag, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// Path the metrics are served on.
pub const METRICS_PATH: &str = "/metrics";

/// How often histograms are compacted between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Most distinct methods per side; the rest are counted under `other` (a
/// caller may name any path, and each would otherwise make series).
const MAX_METHODS: usize = 256;

static ENABLED: AtomicBool = AtomicBool::new(false);
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// Gauges read when scraped (pool sizes), run before each render.
type Collector = Box<dyn Fn() + Send + Sync>;
static COLLECTORS: Mutex<Vec<Collector>> = Mutex::new(Vec::new());

/// Returns true once this process records metrics.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Where a process serves its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsEndpoint {
    /// The bound address (port 0 in the settings picks a free one).
    pub addr: SocketAddr,
}

impl MetricsEndpoint {
    /// Returns the scrape URL, `http://<addr>/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}{METRICS_PATH}", self.addr)
    }
}

/// Installs the recorder and serves `/metrics` on `listen` (a socket address;
/// empty = metrics off, returns None). Call once, inside a Tokio runtime,
/// before the services start; a second call serves the same recorder again.
///
/// # Errors
///
/// When `listen` is not a socket address, cannot be bound, or another
/// recorder is installed already.
pub async fn serve(listen: &str) -> anyhow::Result<Option<MetricsEndpoint>> {
    let listen = listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("telemetry.metrics_listen `{listen}` is not a socket address"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the metrics listener on {addr}"))?;
    let addr = listener.local_addr()?;
    let handle = install()?;
    let render = handle.clone();
    let app = axum::Router::new().route(
        METRICS_PATH,
        axum::routing::get(move || {
            let handle = render.clone();
            async move {
                collect();
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "the metrics endpoint stopped");
        }
    });
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    });
    Ok(Some(MetricsEndpoint { addr }))
}

/// Installs the global recorder once; returns its handle.
fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(DURATION_BUCKETS)
        .context("histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let handle = HANDLE.get_or_init(|| handle).clone();
    ENABLED.store(true, Ordering::Relaxed);
    describe();
    Ok(handle)
}

/// Runs every collector (gauges read at scrape time).
fn collect() {
    if let Ok(collectors) = COLLECTORS.lock() {
        for collector in collectors.iter() {
            collector();
        }
    }
}

/// Adds a gauge reader run before each scrape (nothing when metrics are off).
pub fn on_scrape(collector: impl Fn() + Send + Sync + 'static) {
    if !enabled() {
        return;
    }
    if let Ok(mut collectors) = COLLECTORS.lock() {
        collectors.push(Box::new(collector));
    }
}

/// Exposes the pool of `db` as `ccp_db_pool_connections{pool, state}`
/// (`in_use`, `idle`) and `ccp_db_pool_max_connections{pool}`, read at each scrape.
pub fn watch_pool(pool: &str, max: u32, db: &DatabaseConnection) {
    if !enabled() {
        return;
    }
    let label = pool.to_owned();
    let in_use =
        metrics::gauge!("ccp_db_pool_connections", "pool" => label.clone(), "state" => "in_use");
    let idle =
        metrics::gauge!("ccp_db_pool_connections", "pool" => label.clone(), "state" => "idle");
    metrics::gauge!("ccp_db_pool_max_connections", "pool" => label).set(f64::from(max));
    let db = db.clone();
    on_scrape(move || {
        let (size, free) = match &db.inner {
            DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => return,
        };
        let free = u32::try_from(free).unwrap_or(u32::MAX).min(size);
        in_use.set(f64::from(size - free));
        idle.set(f64::from(free));
    });
}

/// Which end of a call an [`RpcInstruments`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Calls this process served: `rpc_server_duration_seconds`.
    Server,
    /// Calls this process made: `rpc_client_duration_seconds`.
    Client,
}

/// The gRPC status codes as label values (`rpc.grpc.status_code` is the number).
const CODES: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// The duration histograms of one method, one per status code, made on first use.
struct Method {
    service: metrics::SharedString,
    method: metrics::SharedString,
    codes: [OnceLock<Histogram>; 17],
}

/// One side's duration histograms per method and code: the first call of a
/// method and code makes its handle, every later call only reads it.
pub struct RpcInstruments {
    name: &'static str,
    methods: RwLock<HashMap<Box<str>, Method>>,
}

impl std::fmt::Debug for RpcInstruments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcInstruments")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RpcInstruments {
    fn new(side: Side) -> Self {
        Self {
            name: match side {
                Side::Server => "rpc_server_duration_seconds",
                Side::Client => "rpc_client_duration_seconds",
            },
            methods: RwLock::new(HashMap::new()),
        }
    }

    /// Returns the process's instruments of `side`.
    pub fn of(side: Side) -> &'static Self {
        static SERVER: OnceLock<RpcInstruments> = OnceLock::new();
        static CLIENT: OnceLock<RpcInstruments> = OnceLock::new();
        match side {
            Side::Server => SERVER.get_or_init(|| Self::new(Side::Server)),
            Side::Client => CLIENT.get_or_init(|| Self::new(Side::Client)),
        }
    }

    /// Records one call of `path` (`/package.Service/Method`) that ended
    /// with `code` after `elapsed`. Nothing when metrics are off.
    pub fn record(&self, path: &str, code: i32, elapsed: Duration) {
        if !enabled() {
            return;
        }
        let code = usize::try_from(code)
            .ok()
            .filter(|c| *c < CODES.len())
            .unwrap_or(2);
        if let Ok(methods) = self.methods.read()
            && let Some(method) = methods.get(path)
        {
            self.histogram(method, code).record(elapsed);
            return;
        }
        let Ok(mut methods) = self.methods.write() else {
            return;
        };
        let key = if methods.len() >= MAX_METHODS && !methods.contains_key(path) {
            "other"
        } else {
            path
        };
        let method = methods.entry(key.into()).or_insert_with(|| {
            let trimmed = key.trim_start_matches('/');
            let (service, method) = trimmed.split_once('/').unwrap_or(("", trimmed));
            Method {
                service: service.to_owned().into(),
                method: method.to_owned().into(),
                codes: std::array::from_fn(|_| OnceLock::new()),
            }
        });
        self.histogram(method, code).record(elapsed);
    }

    fn histogram<'a>(&self, method: &'a Method, code: usize) -> &'a Histogram {
        method.codes[code].get_or_init(|| {
            metrics::histogram!(
                self.name,
                vec![
                    Label::from_static_parts("rpc_system", "grpc"),
                    Label::new("rpc_service", method.service.clone()),
                    Label::new("rpc_method", method.method.clone()),
                    Label::from_static_parts("rpc_grpc_status_code", CODES[code]),
                ]
            )
        })
    }
}

/// Returns the gRPC status code of a response: its `grpc-status` header (a
/// trailers-only answer, as every error of a unary call is), else OK.
pub fn status_code(headers: &http::HeaderMap) -> i32 {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Describes the series every process may have (HELP lines).
fn describe() {
    use metrics::{Unit, describe_gauge, describe_histogram};
    describe_histogram!(
        "rpc_server_duration_seconds",
        Unit::Seconds,
        "Duration of each gRPC call served, by service, method and status code"
    );
    describe_histogram!(
        "rpc_client_duration_seconds",
        Unit::Seconds,
        "Duration of each gRPC call made to another service, by service, method and status code"
    );
    describe_gauge!(
        "ccp_db_pool_connections",
        "Connections of the database pool, in use or idle"
    );
    describe_gauge!(
        "ccp_db_pool_max_connections",
        "The most connections the database pool opens"
    );
    describe_gauge!(
        "ccp_outbox_depth",
        "Outbox events not yet published to the bus, by stream"
    );
    describe_histogram!(
        "ccp_outbox_relay_lag_seconds",
        Unit::Seconds,
        "Time from an event's commit to its publication on the bus, by stream"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_code_is_the_header_or_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_code(&headers), 0);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(status_code(&headers), 5);
    }

    #[tokio::test]
    async fn an_empty_listen_address_turns_metrics_off() {
        assert_eq!(serve("").await.expect("off"), None);
        assert!(serve("not an address").await.is_err());
    }
}
