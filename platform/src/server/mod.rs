//! The gRPC server bootstrap every service uses: bind (port 0 in tests),
//! health and reflection, a tower stack (request id, W3C trace context,
//! timeout, concurrency limit, load shedding), and a graceful shutdown that
//! sets NOT_SERVING, keeps answering for the drain delay, then stops accepting
//! and drains the calls in flight. The internal facts services may listen on
//! a port of their own (`server.internal_listen`), with the same stack.
//! With `server.tls_cert` both listeners speak TLS (see [`crate::tls`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderValue;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument as _;

use crate::auth::REQUEST_ID_HEADER;
use crate::config::ServerSettings;
use crate::telemetry::TraceContextLayer;

mod outcome;

pub use outcome::{HTTP2_MAX_HEADER_LIST_BYTES, MAX_METADATA_BYTES, Outcome, OutcomeLayer};

/// A bound gRPC server, ready to have services added and be run.
pub struct GrpcServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The internal listener and its routes, when `internal_listen` is set.
    internal: Option<(TcpListener, SocketAddr, RoutesBuilder)>,
    settings: ServerSettings,
    /// The TLS acceptor of both listeners, when `tls_cert` is set.
    tls: Option<TlsAcceptor>,
    routes: RoutesBuilder,
    health: HealthReporter,
    names: Vec<&'static str>,
    /// Whether the process can serve now (readiness), asked periodically;
    /// health answers NOT_SERVING while it says no.
    ready: Option<(Duration, Probe)>,
    /// Calls served (every request the server took, health checks included).
    served: Arc<AtomicU64>,
}

/// A readiness probe: true while the process has what it needs to serve.
pub type Probe = Box<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("local_addr", &self.local_addr)
            .field("services", &self.names)
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// Binds the listener named by the settings (port 0 picks a free port).
    pub async fn bind(settings: &ServerSettings) -> anyhow::Result<Self> {
        let addr: SocketAddr = settings.listen.parse()?;
        // Certificate files are checked before the port is taken.
        let tls = crate::tls::server_acceptor(settings)?;
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (health, health_service) = tonic_health::server::health_reporter();
        let internal = if settings.internal_listen.is_empty() {
            None
        } else {
            let addr: SocketAddr = settings.internal_listen.parse()?;
            let listener = TcpListener::bind(addr).await?;
            let addr = listener.local_addr()?;
            let mut routes = RoutesBuilder::default();
            routes.add_service(health_service.clone());
            Some((listener, addr, routes))
        };
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        Ok(Self {
            listener,
            local_addr,
            internal,
            settings: settings.clone(),
            tls,
            routes,
            health,
            names: Vec::new(),
            ready: None,
            served: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Returns the count of calls this server has taken (health checks
    /// included): a replica's share of its service's load.
    pub fn served(&self) -> Arc<AtomicU64> {
        self.served.clone()
    }

    /// Returns the bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the scheme callers use: `https` when TLS is on, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Returns the bound port.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Returns the address the internal services are served on: the
    /// internal listener's when `internal_listen` is set, else the public one.
    pub fn internal_addr(&self) -> SocketAddr {
        self.internal
            .as_ref()
            .map_or(self.local_addr, |(_, addr, _)| *addr)
    }

    /// Returns the health reporter (services may report themselves NOT_SERVING).
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Returns the names of the services added so far.
    pub fn service_names(&self) -> &[&'static str] {
        &self.names
    }

    /// Makes health follow `probe`, asked every `every` (readiness: a load
    /// balancer sends nothing to a replica that cannot serve): NOT_SERVING
    /// until it first says yes, again whenever it says no, SERVING when it
    /// says yes. The services answer meanwhile; liveness is the process.
    pub fn readiness<F>(&mut self, every: Duration, probe: F) -> &mut Self
    where
        F: Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync + 'static,
    {
        self.ready = Some((every, Box::new(probe)));
        self
    }

    /// Adds a service; it is reported SERVING and listed by reflection.
    pub fn add_service<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Error = std::convert::Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Adds an internal service (another service's facts API): on the
    /// internal listener when `internal_listen` is set, else as
    /// [`GrpcServer::add_service`] does. It is reported SERVING; reflection
    /// lists only the public services.
    pub fn add_internal_service<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Error = std::convert::Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        match &mut self.internal {
            Some((_, _, routes)) => {
                self.names.push(S::NAME);
                routes.add_service(service);
                self
            }
            None => self.add_service(service),
        }
    }

    /// Serves until `shutdown` completes, then sets every service NOT_SERVING,
    /// keeps answering for the drain delay, stops accepting and waits for the
    /// calls in flight to finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The span the caller runs the server in (its service's): each
        // call's log lines are its children.
        let service_span = tracing::Span::current();
        let Self {
            listener,
            internal,
            settings,
            tls,
            mut routes,
            health,
            names,
            ready,
            served,
            ..
        } = self;
        // Both reflection versions: grpcurl and tonic speak v1, many stock
        // clients (grpcio-reflection, older tools) only v1alpha.
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(ccp_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health");
            for name in &names {
                builder = builder.with_service_name(*name);
            }
            builder
        };
        routes.add_service(reflection().build_v1()?);
        routes.add_service(reflection().build_v1alpha()?);
        // The first answer of the probe is had before serving, so a healthy
        // process is SERVING from its first health check.
        let initial = match &ready {
            Some((_, probe)) if !probe().await => ServingStatus::NotServing,
            _ => ServingStatus::Serving,
        };
        for name in &names {
            health.set_service_status(*name, initial).await;
        }
        health.set_service_status("", initial).await;
        let report_serving = {
            let (health, names) = (health.clone(), names.clone());
            async move {
                let Some((every, probe)) = ready else { return };
                let mut serving = initial == ServingStatus::Serving;
                loop {
                    tokio::time::sleep(every).await;
                    let ok = probe().await;
                    if ok != serving {
                        serving = ok;
                        let status = if ok {
                            tracing::info!("ready: health SERVING");
                            ServingStatus::Serving
                        } else {
                            tracing::warn!("not ready: health NOT_SERVING");
                            ServingStatus::NotServing
                        };
                        for name in &names {
                            health.set_service_status(*name, status).await;
                        }
                        health.set_service_status("", status).await;
                    }
                }
            }
        };
        let ready_task = tokio::spawn(report_serving.in_current_span());

        let drain_delay = Duration::from_millis(settings.drain_delay_ms);
        let signal = async move {
            shutdown.await;
            // Stopped before it reports SERVING, so NOT_SERVING below stays.
            ready_task.abort();
            let _ = ready_task.await;
            tracing::info!("shutting down: health NOT_SERVING, draining calls in flight");
            for name in &names {
                health
                    .set_service_status(*name, ServingStatus::NotServing)
                    .await;
            }
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            tokio::time::sleep(drain_delay).await;
        };

        // Both listeners stop together, after the same drain.
        let signal = futures::FutureExt::shared(Box::pin(signal));
        let public = serve(
            listener,
            routes,
            &settings,
            tls.clone(),
            signal.clone(),
            served.clone(),
            service_span.clone(),
        );
        match internal {
            Some((listener, _, routes)) => {
                let internal = serve(
                    listener,
                    routes,
                    &settings,
                    tls,
                    signal,
                    served,
                    service_span,
                );
                tokio::try_join!(public, internal)?;
            }
            None => public.await?,
        }
        Ok(())
    }
}

/// Serves `routes` on `listener` (over TLS with `tls`) behind the common stack until `signal`
/// completes, then drains the calls in flight; counts each call in `served`
/// and runs it in a span under `service_span`.
async fn serve(
    listener: TcpListener,
    routes: RoutesBuilder,
    settings: &ServerSettings,
    tls: Option<TlsAcceptor>,
    signal: impl Future<Output = ()>,
    served: Arc<AtomicU64>,
    service_span: tracing::Span,
) -> anyhow::Result<()> {
    // Accepted sockets must not wait on Nagle's algorithm: small gRPC
    // responses would otherwise sit up to a delayed-ACK interval.
    let incoming = tokio_stream::StreamExt::map(TcpListenerStream::new(listener), |conn| {
        if let Ok(stream) = &conn
            && let Err(err) = stream.set_nodelay(true)
        {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        conn
    });
    let request_id = http::HeaderName::from_static(REQUEST_ID_HEADER);
    let stack = tower::ServiceBuilder::new()
        .map_request(move |request: http::Request<Body>| {
            served.fetch_add(1, Ordering::Relaxed);
            request
        })
        // Every call has an `x-request-id` (the caller's, else a new one),
        // echoed on its response.
        .layer(SetRequestIdLayer::new(
            request_id.clone(),
            MakeRequestUuidV7,
        ))
        .layer(PropagateRequestIdLayer::new(request_id))
        // The call's span (its service, its trace) wraps the outcome log
        // line, so that line names the service and the trace too.
        .layer(TraceContextLayer::new(service_span))
        .layer(OutcomeLayer)
        .load_shed()
        .concurrency_limit(settings.concurrency_limit)
        .into_inner();
    let router = tonic::transport::Server::builder()
        .http2_max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES)
        .timeout(Duration::from_millis(settings.request_timeout_ms))
        .layer(stack)
        .add_routes(routes.routes());
    match tls {
        Some(acceptor) => {
            router
                .serve_with_incoming_shutdown(crate::tls::accept(incoming, acceptor), signal)
                .await?
        }
        None => {
            router
                .serve_with_incoming_shutdown(incoming, signal)
                .await?
        }
    }
    Ok(())
}

/// Makes the `x-request-id` of a call that came without one: a UUIDv7
/// (time-ordered, so ids sort by arrival in logs and traces).
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeRequestUuidV7;

impl tower_http::request_id::MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(
        &mut self,
        _request: &http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
        let mut id = HeaderValue::from_str(id).ok()?;
        // Never indexed by HPACK: a value used once would only churn the
        // connection's header table (and every response echoes it).
        id.set_sensitive(true);
        Some(tower_http::request_id::RequestId::new(id))
    }
}

/// Returns a future that completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
