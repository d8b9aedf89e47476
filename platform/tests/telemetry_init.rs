//! `init` on a fresh process: it installs the global subscriber once, later calls are no-ops,
//! and spans carry trace ids whether or not the collector is reachable.

use std::time::{Duration, Instant};

use ccp_platform::telemetry::{self, LogFormat, TelemetrySettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_installs_once_and_shuts_down_in_bounded_time() {
    // Nothing listens on the discard port of loopback, so every export fails fast.
    let settings = TelemetrySettings {
        log_format: LogFormat::Json,
        log_filter: "warn".to_owned(),
        otlp_endpoint: Some("http://127.0.0.1:9".to_owned()),
        service_name: "ccp-test".to_owned(),
        metrics_listen: String::new(),
    };
    let guard = telemetry::init(&settings).expect("first init");
    assert!(guard.is_active());
    let again = telemetry::init(&TelemetrySettings::default()).expect("second init");
    assert!(!again.is_active());
    drop(again);

    // The request span stays enabled under `warn`, so trace context is still available.
    let span = tracing::info_span!(target: "ccp_platform::telemetry", "grpc.request");
    let trace_id = span
        .in_scope(telemetry::current_trace_id)
        .expect("trace id");
    assert_eq!(trace_id.len(), 32);
    assert!(trace_id.chars().all(|c| c.is_ascii_hexdigit()));
    drop(span);

    let started = Instant::now();
    drop(guard);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
