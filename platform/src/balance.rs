//! Client-side load balancing over an upstream's replicas.
//!
//! An upstream is named by one URL (`http://accounts:50052`, its host resolved
//! to every address it has, as a headless Service's A records are) or by a
//! comma-separated list of URLs. [`BalancedChannel`] keeps
//! [`UpstreamSettings::connections`] lazy connections to each address and
//! sends each call to the next live address in turn.
//!
//! A call that fails on its connection (refused, reset, closed; not a call
//! that ran out of time) marks its address dead at once, so the next calls
//! go to the others; the maintainer then resolves the names again and probes
//! the dead address every [`UpstreamSettings::probe_interval_ms`] until it
//! accepts connections again. Names are also re-resolved every
//! [`UpstreamSettings::resolve_interval_ms`], through a [`Resolver`] (DNS by
//! default; tests supply their own).
//!
//! Hand-written (a round robin over tonic channels) rather than tonic's
//! `balance_channel` (tower's p2c): a replica must leave the rotation on the
//! first call that fails on it, and a retry must reach another replica, so
//! the balancer has to see which replica each call went to, which tonic's
//! balanced channel hides (its endpoints reconnect inside it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Deserialize;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::config::{ConfigError, validate_endpoint};
use crate::context::upstream_endpoint;

/// How every upstream is balanced (`[upstream]` in the configuration).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UpstreamSettings {
    /// Connections kept to each replica of an upstream (HTTP/2 multiplexes
    /// calls on each; more spread a busy upstream over more streams).
    pub connections: usize,
    /// How often each upstream's names are resolved again, in ms.
    pub resolve_interval_ms: u64,
    /// How often a replica marked dead is probed (a TCP connect), in ms.
    pub probe_interval_ms: u64,
    /// PEM CA the servers of `https://` upstreams are verified against;
    /// empty uses the system's roots.
    pub tls_ca: String,
    /// PEM client certificate presented to `https://` upstreams (mutual
    /// TLS); empty presents none.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`; set with it.
    pub tls_key: String,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connections: 1,
            resolve_interval_ms: 5_000,
            probe_interval_ms: 250,
            tls_ca: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

impl UpstreamSettings {
    /// Checks the settings, naming the wrong key under `prefix`.
    pub fn validate_at(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.connections == 0 || self.connections > 64 {
            return Err(ConfigError::new(
                format!("{prefix}.connections"),
                "must be between 1 and 64",
            ));
        }
        if self.resolve_interval_ms < 100 {
            return Err(ConfigError::new(
                format!("{prefix}.resolve_interval_ms"),
                "must be at least 100",
            ));
        }
        if self.probe_interval_ms < 10 {
            return Err(ConfigError::new(
                format!("{prefix}.probe_interval_ms"),
                "must be at least 10",
            ));
        }
        crate::tls::validate_upstream(self, prefix)?;
        Ok(())
    }
}

/// Checks an upstream setting: one URL or a comma-separated list of them,
/// each starting with `http://` or `https://` and naming a host and port.
pub fn validate_upstream(key: &str, value: &str) -> Result<(), ConfigError> {
    for url in value.split(',').map(str::trim) {
        validate_endpoint(key, url)?;
    }
    targets(value).map_err(|err| ConfigError::new(key, err.to_string()))?;
    Ok(())
}

/// Resolves a host name to the addresses of its replicas.
#[async_trait::async_trait]
pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// Returns every address `host` resolves to, each with `port`.
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// Resolves names through the system's resolver (DNS; a headless Service
/// answers with one A record per ready replica).
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsResolver;

#[async_trait::async_trait]
impl Resolver for DnsResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// One URL of an upstream setting.
#[derive(Debug, Clone)]
struct Target {
    url: http::Uri,
    host: String,
    port: u16,
}

fn targets(spec: &str) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    for url in spec.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let uri: http::Uri = url.parse()?;
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("{url} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        out.push(Target {
            url: uri,
            host,
            port,
        });
    }
    if out.is_empty() {
        anyhow::bail!("names no URL");
    }
    Ok(out)
}

/// One replica: its address and the connections to it.
#[derive(Debug)]
struct Replica {
    addr: SocketAddr,
    channels: Vec<Channel>,
    next: AtomicUsize,
    dead: AtomicBool,
}

impl Replica {
    /// Returns the next of its connections in turn.
    fn channel(&self) -> Option<Channel> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len().max(1);
        self.channels.get(i).cloned()
    }
}

#[derive(Debug)]
struct Shared {
    replicas: ArcSwap<Vec<Arc<Replica>>>,
    next: AtomicUsize,
    /// Used until a name resolves (and when it resolves to nothing): the first
    /// URL as given, connected lazily, as an unbalanced channel would be.
    fallback: Channel,
    /// The first URL: its scheme is used for every address and its authority
    /// is kept as the `:authority` of calls sent to an address.
    origin: http::Uri,
    /// The call timeout every connection is made with.
    timeout: Duration,
    /// The client TLS of an `https://` upstream.
    tls: Option<ClientTlsConfig>,
    connections: usize,
    wake: tokio::sync::Notify,
}

impl Shared {
    /// Returns the endpoint of the replica at `addr`.
    fn endpoint(&self, addr: SocketAddr) -> anyhow::Result<Endpoint> {
        let scheme = self.origin.scheme_str().unwrap_or("http");
        with_tls(
            upstream_endpoint(&format!("{scheme}://{addr}"), self.timeout)?
                .origin(self.origin.clone()),
            self.tls.as_ref(),
        )
    }

    fn replica(&self, addr: SocketAddr) -> anyhow::Result<Arc<Replica>> {
        let endpoint = self.endpoint(addr)?;
        Ok(Arc::new(Replica {
            addr,
            channels: (0..self.connections.max(1))
                .map(|_| endpoint.connect_lazy())
                .collect(),
            next: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
        }))
    }

    /// Returns the next live replica in turn (any replica when all are dead).
    fn pick(&self) -> Option<Arc<Replica>> {
        let replicas = self.replicas.load();
        let n = replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| &replicas[(start + k) % n])
            .find(|r| !r.dead.load(Ordering::Relaxed))
            .or_else(|| replicas.get(start % n.max(1)))
            .cloned()
    }

    fn mark_dead(&self, addr: SocketAddr) {
        if let Some(replica) = self.replicas.load().iter().find(|r| r.addr == addr)
            && !replica.dead.swap(true, Ordering::Relaxed)
        {
            tracing::info!(%addr, "an upstream replica failed; calls go to the others until it answers again");
            self.wake.notify_one();
        }
    }
}

/// A channel balancing calls over every replica of one upstream (see the
/// module's documentation). Cloning it is cheap; the maintainer stops when
/// the last clone is dropped.
#[derive(Debug, Clone)]
pub struct BalancedChannel {
    shared: Arc<Shared>,
}

impl BalancedChannel {
    /// Returns a channel balancing over the replicas `spec` names (one URL or
    /// a comma-separated list), each call given `timeout`, names resolved by
    /// `resolver`. Must be called within a Tokio runtime (it spawns the maintainer).
    pub fn new(
        spec: &str,
        timeout: Duration,
        settings: &UpstreamSettings,
        resolver: Arc<dyn Resolver>,
    ) -> anyhow::Result<Self> {
        let targets = targets(spec)?;
        let origin = targets[0].url.clone();
        let tls = crate::tls::client_config(settings, &origin)?;
        let shared = Arc::new(Shared {
            replicas: ArcSwap::from_pointee(Vec::new()),
            next: AtomicUsize::new(0),
            fallback: with_tls(
                upstream_endpoint(&origin.to_string(), timeout)?,
                tls.as_ref(),
            )?
            .connect_lazy(),
            origin,
            timeout,
            tls,
            connections: settings.connections,
            wake: tokio::sync::Notify::new(),
        });
        // Addresses given as IP literals need no resolution: balance at once.
        let literal: Option<Vec<SocketAddr>> = targets
            .iter()
            .map(|t| {
                t.host
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, t.port))
            })
            .collect();
        if let Some(addrs) = literal {
            let replicas = dedup(addrs)
                .into_iter()
                .map(|a| shared.replica(a))
                .collect::<anyhow::Result<Vec<_>>>()?;
            shared.replicas.store(Arc::new(replicas));
        }
        tokio::spawn(maintain(
            Arc::downgrade(&shared),
            targets,
            resolver,
            settings.clone(),
        ));
        Ok(Self { shared })
    }

    /// Returns a channel over one connection already made (no balancing, no
    /// maintainer): a retry's fresh connection.
    fn single(
        channel: Channel,
        origin: http::Uri,
        timeout: Duration,
        tls: Option<ClientTlsConfig>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                replicas: ArcSwap::from_pointee(Vec::new()),
                next: AtomicUsize::new(0),
                fallback: channel,
                origin,
                timeout,
                tls,
                connections: 1,
                wake: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Returns the addresses currently balanced over and whether each is live.
    pub fn replicas(&self) -> Vec<(SocketAddr, bool)> {
        self.shared
            .replicas
            .load()
            .iter()
            .map(|r| (r.addr, !r.dead.load(Ordering::Relaxed)))
            .collect()
    }

    /// Opens a new connection within `within` to a replica, live ones first
    /// (one that refuses is marked dead and the next is tried): a retry that
    /// must not reuse the connection that just failed.
    pub async fn fresh(&self, within: Duration) -> Option<Self> {
        let deadline = Instant::now() + within;
        let shared = &self.shared;
        let replicas = shared.replicas.load_full();
        let n = replicas.len();
        let start = shared.next.fetch_add(1, Ordering::Relaxed);
        let mut order: Vec<SocketAddr> = (0..n).map(|k| replicas[(start + k) % n].addr).collect();
        // Live replicas first; the dead ones last, in case they are back.
        order.sort_by_key(|a| {
            replicas
                .iter()
                .any(|r| r.addr == *a && r.dead.load(Ordering::Relaxed))
        });
        let mut endpoints = Vec::with_capacity(n.max(1));
        for addr in order {
            endpoints.push((Some(addr), shared.endpoint(addr).ok()?));
        }
        if endpoints.is_empty() {
            endpoints.push((
                None,
                with_tls(
                    upstream_endpoint(&shared.origin.to_string(), shared.timeout).ok()?,
                    shared.tls.as_ref(),
                )
                .ok()?,
            ));
        }
        for (addr, endpoint) in endpoints {
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, endpoint.connect()).await {
                Ok(Ok(channel)) => {
                    return Some(Self::single(
                        channel,
                        shared.origin.clone(),
                        shared.timeout,
                        shared.tls.clone(),
                    ));
                }
                Ok(Err(err)) => {
                    tracing::info!(?addr, error = %err, "no fresh connection to this replica");
                    if let Some(addr) = addr {
                        shared.mark_dead(addr);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }
}

/// Returns `endpoint` speaking TLS with `tls`, unchanged without.
fn with_tls(endpoint: Endpoint, tls: Option<&ClientTlsConfig>) -> anyhow::Result<Endpoint> {
    Ok(match tls {
        Some(tls) => endpoint.tls_config(tls.clone())?,
        None => endpoint,
    })
}

fn dedup(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    addrs.sort();
    addrs.dedup();
    addrs
}

/// Whether a call's error says its connection failed (rather than that the
/// call ran out of its own time).
fn connection_failed(err: &tonic::transport::Error) -> bool {
    use std::error::Error as _;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = err.source();
    // A source chain is a few errors deep; 16 bounds the walk.
    for _ in 0..16 {
        match cause {
            Some(e) if e.is::<tonic::TimeoutExpired>() => return false,
            Some(e) => cause = e.source(),
            None => break,
        }
    }
    true
}

/// Resolves the names again every `resolve_interval_ms` and at once after a
/// failure, and probes dead replicas; stops when the channel is dropped.
async fn maintain(
    shared: Weak<Shared>,
    targets: Vec<Target>,
    resolver: Arc<dyn Resolver>,
    settings: UpstreamSettings,
) {
    let resolve_every = Duration::from_millis(settings.resolve_interval_ms);
    let probe_every = Duration::from_millis(settings.probe_interval_ms);
    let mut last_resolved: Option<Instant> = None;
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let woken = tokio::select! {
            () = strong.wake.notified() => true,
            () = tokio::time::sleep(probe_every) => false,
        };
        if woken || last_resolved.is_none_or(|t| t.elapsed() >= resolve_every) {
            resolve(&strong, &targets, resolver.as_ref()).await;
            last_resolved = Some(Instant::now());
        }
        probe(&strong).await;
        drop(strong);
    }
}

/// Replaces the replica set with what the names resolve to now, keeping the
/// replicas already known; keeps the set when resolution fails or finds nothing.
async fn resolve(shared: &Shared, targets: &[Target], resolver: &dyn Resolver) {
    let mut addrs = Vec::new();
    for target in targets {
        match resolver.resolve(&target.host, target.port).await {
            Ok(found) => addrs.extend(found),
            Err(err) => {
                tracing::warn!(host = %target.host, error = %err, "upstream name did not resolve; keeping the replicas known");
                return;
            }
        }
    }
    let addrs = dedup(addrs);
    if addrs.is_empty() {
        return;
    }
    let current = shared.replicas.load_full();
    let known: HashMap<SocketAddr, &Arc<Replica>> = current.iter().map(|r| (r.addr, r)).collect();
    if addrs.len() == current.len() && addrs.iter().all(|a| known.contains_key(a)) {
        return;
    }
    let mut next = Vec::with_capacity(addrs.len());
    for addr in addrs {
        match known.get(&addr) {
            Some(replica) => next.push(Arc::clone(replica)),
            None => match shared.replica(addr) {
                Ok(replica) => next.push(replica),
                Err(err) => {
                    tracing::warn!(%addr, error = %err, "no endpoint for a resolved address")
                }
            },
        }
    }
    tracing::info!(replicas = next.len(), "upstream replicas changed");
    shared.replicas.store(Arc::new(next));
}

/// Probes each dead replica with a TCP connect; one that accepts is replaced
/// by a live replica with new connections.
async fn probe(shared: &Shared) {
    let current = shared.replicas.load_full();
    let mut revived = Vec::new();
    for replica in current.iter().filter(|r| r.dead.load(Ordering::Relaxed)) {
        let connect = tokio::net::TcpStream::connect(replica.addr);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
            revived.push(replica.addr);
        }
    }
    if revived.is_empty() {
        return;
    }
    let mut next = Vec::with_capacity(current.len());
    for replica in current.iter() {
        if revived.contains(&replica.addr) {
            match shared.replica(replica.addr) {
                Ok(fresh) => {
                    tracing::info!(addr = %replica.addr, "an upstream replica answers again");
                    next.push(fresh);
                }
                Err(_) => next.push(Arc::clone(replica)),
            }
        } else {
            next.push(Arc::clone(replica));
        }
    }
    shared.replicas.store(Arc::new(next));
}

type Request = http::Request<tonic::body::Body>;
type Response = http::Response<tonic::body::Body>;

impl tower::Service<Request> for BalancedChannel {
    type Response = Response;
    type Error = tonic::transport::Error;
    type Future = futures::future::BoxFuture<'static, Result<Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // Readiness is awaited on the chosen connection inside the call.
        std::task::Poll::Ready(Ok(()))
    }

    /// Sends the call in a CLIENT span (its trace context in the headers)
    /// and measures it (`rpc_client_duration_seconds`, up to the response
    /// headers; a failed connection counts as UNAVAILABLE).
    fn call(&mut self, mut request: Request) -> Self::Future {
        use tower::ServiceExt as _;
        use tracing::Instrument as _;
        let span = crate::telemetry::client_span(&mut request);
        let started = Instant::now();
        let uri = request.uri().clone();
        let shared = Arc::clone(&self.shared);
        let replica = shared.pick();
        let call = async move {
            let Some((replica, channel)) = replica.and_then(|r| Some((r.addr, r.channel()?)))
            else {
                return shared.fallback.clone().oneshot(request).await;
            };
            let answer = channel.oneshot(request).await;
            if let Err(err) = &answer
                && connection_failed(err)
            {
                shared.mark_dead(replica);
            }
            answer
        };
        Box::pin(
            async move {
                let answer = call.await;
                let code = match &answer {
                    Ok(response) => crate::metrics::status_code(response.headers()),
                    Err(_) => tonic::Code::Unavailable as i32,
                };
                crate::metrics::RpcInstruments::of(crate::metrics::Side::Client).record(
                    uri.path(),
                    code,
                    started.elapsed(),
                );
                answer
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_is_one_url_or_a_list() {
        let one = targets("http://accounts:50052").expect("one URL");
        assert_eq!((one[0].host.as_str(), one[0].port), ("accounts", 50052));
        let list = targets("http://10.0.0.1:1, http://10.0.0.2:2").expect("a list");
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].port, 2);
        assert!(targets("").is_err());
        assert!(validate_upstream("k", "http://a:1,ftp://b:2").is_err());
        assert!(validate_upstream("k", "http://a:1,http://b:2").is_ok());
    }

    #[test]
    fn settings_are_bounded() {
        assert!(UpstreamSettings::default().validate_at("upstream").is_ok());
        let zero = UpstreamSettings {
            connections: 0,
            ..UpstreamSettings::default()
        };
        assert!(zero.validate_at("upstream").is_err());
    }
}
