//! Trace context propagation over a real tonic server and client, plus `init` and log formats.
//!
//! This binary owns the global subscriber: an OpenTelemetry layer over an in-memory exporter,
//! installed once by [`exporter`], so the spans of both sides can be inspected.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ccp_platform::telemetry::{
    self, LogFormat, TelemetrySettings, TraceContextInterceptor, TraceContextLayer,
};
use opentelemetry::trace::{SpanId, TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthService;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Installs the test binary's global subscriber once and returns its span exporter.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("telemetry-test")));
        tracing::subscriber::set_global_default(subscriber).expect("first global subscriber");
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        exporter
    })
}

fn finished_span(exporter: &InMemorySpanExporter, name: &str, trace_id: &str) -> SpanData {
    exporter
        .get_finished_spans()
        .expect("finished spans")
        .into_iter()
        .find(|span| span.name == name && span.span_context.trace_id().to_string() == trace_id)
        .unwrap_or_else(|| panic!("no finished `{name}` span in trace {trace_id}"))
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// Trace ids seen by the health service's server-side interceptor, one per call.
type SeenTraceIds = Arc<Mutex<Vec<Option<String>>>>;

/// Serves grpc.health.v1 behind `TraceContextLayer` on a loopback port; returns a connected
/// channel, the trace ids seen inside the server, and the shutdown trigger.
async fn spawn_health_server() -> (Channel, SeenTraceIds, tokio::sync::oneshot::Sender<()>) {
    let (reporter, _) = tonic_health::server::health_reporter();
    let seen = SeenTraceIds::default();
    let seen_by_server = seen.clone();
    let health = HealthServer::with_interceptor(
        HealthService::from_health_reporter(reporter),
        move |request| {
            seen_by_server
                .lock()
                .expect("trace id list")
                .push(telemetry::current_trace_id());
            Ok(request)
        },
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        Server::builder()
            .layer(TraceContextLayer::default())
            .add_service(health)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );
    let channel = tokio::time::timeout(
        TIMEOUT,
        Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    (channel, seen, stop)
}

#[tokio::test]
async fn server_span_continues_the_client_trace() {
    let exporter = exporter();
    let (channel, seen, stop) = spawn_health_server().await;
    let mut client = HealthClient::with_interceptor(channel, TraceContextInterceptor);

    let client_span = tracing::info_span!("client.call");
    let client_trace_id = client_span
        .in_scope(telemetry::current_trace_id)
        .expect("client span has a trace id");
    let client_span_id = client_span.context().span().span_context().span_id();

    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "req-42".parse().expect("metadata value"));
    let response = tokio::time::timeout(TIMEOUT, client.check(request))
        .instrument(client_span)
        .await
        .expect("check in time")
        .expect("check");
    assert_eq!(response.into_inner().status, 1, "SERVING");
    let _ = stop.send(());

    // The handler saw the caller's trace.
    let seen = seen.lock().expect("trace id list").clone();
    assert_eq!(seen, vec![Some(client_trace_id.clone())]);

    // The exported server span is a remote child of the client span.
    let server_span = finished_span(exporter, "grpc.health.v1.Health/Check", &client_trace_id);
    assert_eq!(server_span.parent_span_id, client_span_id);
    assert!(server_span.parent_span_is_remote);
    assert_eq!(
        server_span.span_kind,
        opentelemetry::trace::SpanKind::Server
    );
    // Named and described as OpenTelemetry's RPC conventions ask.
    assert_eq!(
        attribute(&server_span, "rpc.service").as_deref(),
        Some("grpc.health.v1.Health")
    );
    assert_eq!(
        attribute(&server_span, "rpc.method").as_deref(),
        Some("Check")
    );
    assert_eq!(
        attribute(&server_span, "rpc.system").as_deref(),
        Some("grpc")
    );
    // The call's span carries its trace id, so every log line of the call shows it.
    assert_eq!(
        attribute(&server_span, "trace_id").as_deref(),
        Some(client_trace_id.as_str())
    );
    assert_eq!(
        attribute(&server_span, "request_id").as_deref(),
        Some("req-42")
    );
    let client_span = finished_span(exporter, "client.call", &client_trace_id);
    assert_eq!(client_span.span_context.span_id(), client_span_id);
}

#[tokio::test]
async fn call_without_trace_context_starts_a_new_trace() {
    let exporter = exporter();
    let (channel, seen, stop) = spawn_health_server().await;
    // No interceptor and no span: the server receives no `traceparent`.
    let mut client = HealthClient::new(channel);
    tokio::time::timeout(TIMEOUT, client.check(HealthCheckRequest::default()))
        .await
        .expect("check in time")
        .expect("check");
    let _ = stop.send(());

    let seen = seen.lock().expect("trace id list").clone();
    let [Some(trace_id)] = seen.as_slice() else {
        panic!("expected one server-side trace id, got {seen:?}");
    };
    assert_eq!(trace_id.len(), 32);
    let server_span = finished_span(exporter, "grpc.health.v1.Health/Check", trace_id);
    assert_eq!(server_span.parent_span_id, SpanId::INVALID);
    assert_eq!(attribute(&server_span, "request_id"), None);
    assert_eq!(
        attribute(&server_span, "trace_id").as_deref(),
        Some(trace_id.as_str()),
        "a new trace's id is in the call's log lines too"
    );
}

#[test]
fn current_trace_id_is_none_outside_a_span() {
    exporter();
    assert_eq!(telemetry::current_trace_id(), None);
}

#[test]
fn init_twice_is_a_no_op_when_a_subscriber_exists() {
    exporter();
    let settings = TelemetrySettings::default();
    let first = telemetry::init(&settings).expect("first init");
    let second = telemetry::init(&settings).expect("second init");
    // This binary's own subscriber was installed first, so neither call takes over.
    assert!(!first.is_active());
    assert!(!second.is_active());
}

#[test]
fn init_rejects_bad_settings() {
    exporter();
    let bad_filter = TelemetrySettings {
        log_filter: "ccp=loud".to_owned(),
        ..TelemetrySettings::default()
    };
    assert!(telemetry::init(&bad_filter).is_err());

    let endpoint_without_runtime = TelemetrySettings {
        otlp_endpoint: Some("http://127.0.0.1:4317".to_owned()),
        ..TelemetrySettings::default()
    };
    assert!(telemetry::init(&endpoint_without_runtime).is_err());
}

#[test]
fn settings_deserialize_with_defaults() {
    let settings: TelemetrySettings =
        serde_json::from_str(r#"{"log_format":"json"}"#).expect("settings");
    assert_eq!(settings.log_format, LogFormat::Json);
    assert_eq!(settings.log_filter, TelemetrySettings::default().log_filter);
    assert!(settings.log_filter.starts_with("info"));
    assert_eq!(settings.otlp_endpoint, None);
    assert_eq!(settings.service_name, "ccp");
    assert_eq!(settings.metrics_listen, "127.0.0.1:0");
    assert_eq!(settings.for_service("gateway").service_name, "ccp-gateway");
    let named = TelemetrySettings {
        service_name: "customs-gateway".to_owned(),
        ..TelemetrySettings::default()
    };
    assert_eq!(named.for_service("gateway").service_name, "customs-gateway");
    assert!(serde_json::from_str::<TelemetrySettings>(r#"{"log_format":"xml"}"#).is_err());
}

/// A `MakeWriter` over a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn log_lines(format: LogFormat) -> Vec<String> {
    let buffer = Buffer::default();
    let subscriber =
        tracing_subscriber::registry().with(telemetry::fmt_layer(format, buffer.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("grpc.request", rpc.method = "/a.B/C");
        span.in_scope(|| tracing::info!(bn = "51824753556", "account created"));
        tracing::warn!("second line");
    });
    let text = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
    text.lines().map(str::to_owned).collect()
}

#[test]
fn json_format_writes_one_json_object_per_line() {
    let lines = log_lines(LogFormat::Json);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("json line");
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["fields"]["message"], "account created");
    assert_eq!(first["fields"]["bn"], "51824753556");
    assert_eq!(first["span"]["name"], "grpc.request");
    let second: serde_json::Value = serde_json::from_str(&lines[1]).expect("json line");
    assert_eq!(second["level"], "WARN");
}

#[test]
fn fmt_format_writes_plain_lines() {
    let lines = log_lines(LogFormat::Fmt);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(serde_json::from_str::<serde_json::Value>(&lines[0]).is_err());
    assert!(lines[0].contains("account created"), "{lines:?}");
}
