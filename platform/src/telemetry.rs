//! Logs and traces for every CCP service: one global `tracing` subscriber, W3C trace context
//! carried across gRPC calls, and OpenTelemetry export over OTLP/gRPC when an endpoint is set.
//!
//! A service calls [`init`] once at start-up and keeps the returned [`TelemetryGuard`] alive until
//! it stops. Servers add [`TraceContextLayer`] to `Server::builder()`, clients wrap their channel
//! with [`TraceContextInterceptor`], and one trace then spans gateway → service → database. Every
//! call sent through [`crate::balance::BalancedChannel`] also gets a CLIENT span
//! ([`client_span`]) whose context is what the callee continues. A log line written inside a
//! call names its `trace_id` and `span_id`.
//!
//! Trace ids exist even without an OTLP endpoint: the OpenTelemetry layer is always installed
//! (with no exporter), so incoming trace context is continued, forwarded to downstream calls and
//! visible to [`current_trace_id`] for audit rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::Injector;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::{Context, global};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing::Instrument as _;
use tracing::instrument::Instrumented;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// Filter directive that keeps the per-request server span enabled whatever `log_filter` says,
/// so trace context still flows through a service that logs only warnings.
const REQUEST_SPAN_DIRECTIVE: &str = "ccp_platform::telemetry=info";

/// Header carrying the caller's request id, recorded on the server span.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// How long dropping the guard may wait for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Set by the first [`init`] that gets past argument checks; later calls are no-ops.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Set by [`init`] when it installs telemetry with no OTLP endpoint: spans
/// are then never exported, and call spans leave out OpenTelemetry's RPC
/// attributes, which only an exported trace shows (a log line or an audit
/// row needs the trace and span ids only). A subscriber installed by other
/// code (a test's own exporter) gets the full spans.
static UNEXPORTED: AtomicBool = AtomicBool::new(false);

/// Returns whether call spans may be exported (see [`UNEXPORTED`]).
fn exporting() -> bool {
    !UNEXPORTED.load(Ordering::Relaxed)
}

/// Shape of the log lines written to standard output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (`tracing_subscriber::fmt` default format).
    #[default]
    Fmt,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Telemetry section of a service's settings.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// Format of the log lines.
    pub log_format: LogFormat,
    /// `EnvFilter` directive, for example `info` or `info,ccp_accounts=debug`.
    pub log_filter: String,
    /// OTLP/gRPC collector endpoint, for example `http://127.0.0.1:4317`; `None` exports nothing.
    pub otlp_endpoint: Option<String>,
    /// Value of the `service.name` resource attribute on exported spans.
    pub service_name: String,
    /// Socket address of the Prometheus endpoint (`/metrics`), e.g.
    /// `0.0.0.0:9464`; port 0 picks a free port (printed at start), empty
    /// turns metrics off.
    pub metrics_listen: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Fmt,
            // Applying a migration is a detail (`ccp migrate` prints its own summary).
            log_filter: "info,sea_orm_migration=warn,opentelemetry=warn,opentelemetry_sdk=warn"
                .to_owned(),
            otlp_endpoint: None,
            service_name: Self::DEFAULT_SERVICE_NAME.to_owned(),
            metrics_listen: Self::DEFAULT_METRICS_LISTEN.to_owned(),
        }
    }
}

impl TelemetrySettings {
    /// The default `service.name` when a configuration names none of its own.
    pub const DEFAULT_SERVICE_NAME: &'static str = "ccp";

    /// The default metrics address: loopback, a free port (printed at
    /// start), so many processes and test suites run side by side;
    /// deployments set a fixed port (9464, OpenTelemetry's Prometheus port).
    pub const DEFAULT_METRICS_LISTEN: &'static str = "127.0.0.1:0";

    /// Returns these settings for a process running one service: its spans
    /// carry `service.name = "ccp-<service>"` (e.g. `ccp-gateway`) unless
    /// the configuration set a name of its own, so a trace that crosses
    /// processes shows which service each span came from.
    pub fn for_service(&self, service: &str) -> Self {
        let mut settings = self.clone();
        if settings.service_name == Self::DEFAULT_SERVICE_NAME {
            settings.service_name = format!("ccp-{service}");
        }
        settings
    }
}

/// Keeps telemetry running; dropping it flushes pending spans and shuts the tracer provider down.
///
/// Drop it inside a multi-threaded Tokio runtime (for example at the end of `#[tokio::main]`):
/// the OTLP exporter's connection is driven by that runtime, and the flush waits at most a few
/// seconds if the collector is unreachable.
#[must_use = "dropping the guard shuts telemetry down"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Returns a guard that owns nothing, as handed out by repeated [`init`] calls.
    fn noop() -> Self {
        Self { provider: None }
    }

    /// Returns whether this guard owns the installed subscriber's tracer provider, i.e. whether
    /// the [`init`] call that produced it actually installed telemetry.
    pub fn is_active(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        {
            // The subscriber may already be gone at exit; stderr is the only safe place left.
            eprintln!("telemetry shutdown failed: {error}");
        }
    }
}

/// Installs the process-wide `tracing` subscriber and the W3C trace context propagator.
///
/// The subscriber has an `EnvFilter` from `log_filter`, a fmt or JSON layer on stderr and an
/// OpenTelemetry layer; spans go to a batch OTLP/gRPC exporter when `otlp_endpoint` is set. The
/// W3C `TraceContextPropagator` is installed on every call.
///
/// Only the first successful call installs anything; later calls (and calls made after some other
/// code installed a global subscriber) return an inactive guard. With an `otlp_endpoint` it must
/// be called from inside a Tokio runtime.
///
/// # Errors
///
/// Returns an error when `log_filter` is not a valid filter directive, when the OTLP exporter
/// cannot be built, or when an endpoint is set outside a Tokio runtime.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = env_filter(&settings.log_filter)?;
    if settings.otlp_endpoint.is_some() && tokio::runtime::Handle::try_current().is_err() {
        anyhow::bail!("telemetry with an OTLP endpoint must be initialised inside a Tokio runtime");
    }
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(TelemetryGuard::noop());
    }

    let provider = match tracer_provider(settings) {
        Ok(provider) => provider,
        Err(error) => {
            INSTALLED.store(false, Ordering::SeqCst);
            return Err(error);
        }
    };
    let exporting = settings.otlp_endpoint.is_some();
    // What only an exported trace shows (busy/idle times, source locations)
    // is recorded only when there is an exporter; thread attributes never
    // (a call's task moves between threads); and the OpenTelemetry context
    // is not made current on every poll (nothing reads `Context::current`:
    // the ids come from the span itself, [`current_trace_id`]).
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
        .with_tracked_inactivity(exporting)
        .with_location(exporting)
        .with_threads(false)
        .with_context_activation(false)
        .with_filter(exporter_transport_excluded());
    let subscriber = tracing_subscriber::registry()
        .with(fmt_layer_on(
            settings.log_format,
            std::io::stderr,
            // Colours only for a person at a terminal, never in a file or a pipe.
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ))
        .with(otel_layer)
        .with(filter);

    if subscriber.try_init().is_err() {
        // Someone else (typically a test harness) owns the global subscriber: stay out of its way.
        let _ = provider.shutdown();
        return Ok(TelemetryGuard::noop());
    }
    global::set_tracer_provider(provider.clone());
    UNEXPORTED.store(!exporting, Ordering::Relaxed);
    tracing::debug!(
        otlp_endpoint = settings.otlp_endpoint.as_deref(),
        "telemetry initialised"
    );
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// Returns the log-line layer for `format`, writing to `writer` (stderr in [`init`], so a
/// command's own output on stdout stays clean).
///
/// Exposed so tests and tools can build the same log format over their own writer.
pub fn fmt_layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fmt_layer_on(format, writer, false)
}

/// Returns the log-line layer for `format` on `writer`, with ANSI colours when `ansi`.
fn fmt_layer_on<S, W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Fmt => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    }
}

/// Parses the filter directive and keeps the request span enabled.
fn env_filter(directive: &str) -> anyhow::Result<EnvFilter> {
    let filter = EnvFilter::try_new(directive)
        .with_context(|| format!("invalid telemetry log_filter `{directive}`"))?;
    Ok(filter.add_directive(REQUEST_SPAN_DIRECTIVE.parse()?))
}

/// Keeps the exporter's own transport spans out of the traces: with a permissive `log_filter`
/// they would otherwise be exported, causing more export work, and so on.
fn exporter_transport_excluded() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("h2", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
        .with_target("tonic", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
        .with_target(SERVICE_SPAN_TARGET, LevelFilter::OFF)
}

/// Builds the tracer provider: always sampling, exporting only when an endpoint is configured.
fn tracer_provider(settings: &TelemetrySettings) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = match &settings.otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig as _;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .with_context(|| format!("cannot build the OTLP exporter for `{endpoint}`"))?;
            builder.with_batch_exporter(exporter)
        }
        None => builder,
    };
    Ok(builder.build())
}

/// Returns the 32-hex-digit trace id of the current span, or `None` outside a valid trace.
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Adapts gRPC request metadata so an OpenTelemetry propagator can write into it
/// (hand-written: opentelemetry-http's injector takes an `http::HeaderMap`, which a tonic
/// interceptor does not expose).
pub struct MetadataInjector<'a>(pub &'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagators only emit valid ASCII header names and values; anything else is dropped
        // rather than failing the call.
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Client interceptor that writes the current span's trace context (`traceparent`,
/// `tracestate`) into each outgoing request's metadata.
///
/// ```ignore
/// let client = AccountsClient::with_interceptor(channel, TraceContextInterceptor);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let context = tracing::Span::current().context();
        global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MetadataInjector(request.metadata_mut()));
        });
        Ok(request)
    }
}

/// The target of [`service_span`]: log lines show it, traces leave it out.
pub const SERVICE_SPAN_TARGET: &str = "ccp::service";

/// The span a service builds and runs in, so every log line it writes —
/// start-up, each call, background work — names it (`service{service="gateway"}:`),
/// also when several services share one process (`ccp up`). It is a log
/// span only: traces leave it out (it would be one span as long as the
/// process), and calls continue their caller's trace instead.
pub fn service_span(service: &'static str) -> tracing::Span {
    tracing::info_span!(target: SERVICE_SPAN_TARGET, "service", service)
}

/// Server layer that continues the caller's W3C trace in a `grpc.request` span around each call.
///
/// Each call's span is a child of `parent` for log lines (the [`service_span`]
/// of the server, so a call's lines name its service even though the
/// connection tasks that run it were spawned outside that span); its trace
/// parent is the caller's trace context.
///
/// ```ignore
/// Server::builder().layer(TraceContextLayer::new(Span::current())).add_service(svc).serve(addr).await?;
/// ```
#[derive(Debug, Clone)]
pub struct TraceContextLayer {
    parent: tracing::Span,
}

impl Default for TraceContextLayer {
    /// Call spans with no parent in the logs (a server outside any service span).
    fn default() -> Self {
        Self::new(tracing::Span::none())
    }
}

impl TraceContextLayer {
    /// Returns the layer whose call spans are children of `parent` in the logs.
    pub fn new(parent: tracing::Span) -> Self {
        Self { parent }
    }
}

impl<S> tower::Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService {
            inner,
            parent: self.parent.clone(),
        }
    }
}

/// Service made by [`TraceContextLayer`]: extracts the trace context from the request headers and
/// runs the inner service inside a `grpc.request` span parented to it.
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
    parent: tracing::Span,
}

impl<S, B> tower::Service<http::Request<B>> for TraceContextService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = request_span(&self.parent, &request);
        let future = span.in_scope(|| self.inner.call(request));
        future.instrument(span)
    }
}

/// Creates the server span for `request`, parented to the trace context in its headers.
fn request_span<B>(parent: &tracing::Span, request: &http::Request<B>) -> tracing::Span {
    let headers = request.headers();
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok());
    // Named as OpenTelemetry's RPC conventions ask: `package.Service/Method`,
    // with rpc.service and rpc.method apart (only when exported: every field
    // is formatted into the span's log text on every call).
    let path = request.uri().path().trim_start_matches('/');
    let span = if exporting() {
        let (service, method) = path.split_once('/').unwrap_or(("", path));
        tracing::info_span!(
            parent: parent,
            "grpc.request",
            otel.name = path,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            request_id,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        )
    } else {
        // Shown as they are (`display`): a header value's text is visible
        // ASCII, so there is nothing to escape, and `Debug` escapes each char.
        tracing::info_span!(
            parent: parent,
            "grpc.request",
            otel.name = tracing::field::display(path),
            request_id = request_id.map(tracing::field::display),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        )
    };
    let parent: Context =
        global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)));
    // Fails only when the span is disabled or no OpenTelemetry layer is installed; either way
    // there is no trace to continue.
    let _ = span.set_parent(parent);
    record_ids(&span);
    span
}

/// Records the trace and span ids of `span` as its fields, so every log line
/// written inside it names its trace and span.
fn record_ids(span: &tracing::Span) {
    let span_context = span.context().span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", tracing::field::display(span_context.trace_id()));
        span.record("span_id", tracing::field::display(span_context.span_id()));
    }
}

/// Opens the CLIENT span of one outgoing call, named as OpenTelemetry's RPC
/// conventions ask (`package.Service/Method`), and writes its trace context
/// (`traceparent`, `tracestate`) into the request's headers, replacing what
/// an interceptor wrote from the caller's span: the callee's server span is
/// then a child of this one.
pub fn client_span<B>(request: &mut http::Request<B>) -> tracing::Span {
    let path = request.uri().path().trim_start_matches('/');
    let span = if exporting() {
        let (service, method) = path.split_once('/').unwrap_or(("", path));
        tracing::info_span!(
            "grpc.client",
            otel.name = path,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        )
    } else {
        tracing::info_span!(
            "grpc.client",
            otel.name = tracing::field::display(path),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        )
    };
    record_ids(&span);
    let context = span.context();
    if context.span().span_context().is_valid() {
        global::get_text_map_propagator(|propagator| {
            propagator.inject_context(
                &context,
                &mut opentelemetry_http::HeaderInjector(request.headers_mut()),
            );
        });
    }
    span
}
