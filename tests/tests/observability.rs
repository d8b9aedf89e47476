//! Observability of the distributed deployment, each service its own
//! `ccp serve` process: every process serves Prometheus metrics whose RPC,
//! decision, cache, outbox and pool series count a short load, and one call
//! through the gateway is one trace across processes (an in-test OTLP
//! receiver collects the spans), with a CLIENT span per outgoing call and the
//! trace id in the log lines of both processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccp_e2e::World;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

/// The demo's first business (alice's).
const ABC: &str = "123456782";

/// A program account no registry knows (its business number fails the check digit).
const NO_SUCH_PROGRAM: &str = "000000001RM0001";

/// Sums the samples of `name` whose labels contain every `labels` pair.
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|p| rest.contains(p)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

async fn scrape(url: &str) -> String {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_serves_metrics_that_count_a_short_load() {
    let Some(world) = World::distributed_with(1, &[], None).await.unwrap() else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL / CCP_TEST_REDIS_URL not set");
        return;
    };
    // The load: the demo's writes in every service, then decisions.
    world.demo_load().await.unwrap();
    world.login("alice").await;
    for _ in 0..2 {
        world.ok("alice", &["check", "view", ABC]).await;
    }
    world
        .fails(10, "alice", &["check", "view", "888316171"])
        .await;

    let mut scraped = HashMap::new();
    for process in world.processes() {
        let url = process.metrics.clone().expect("metrics endpoint printed");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        scraped.insert(process.service, scrape(&url).await);
    }
    assert_eq!(scraped.len(), 4, "{:?}", scraped.keys());
    for (service, text) in &scraped {
        // Every process served calls (health checks at least) and counts
        // them by method and code.
        assert!(
            sum(
                text,
                "rpc_server_duration_seconds_count",
                &["rpc_system=\"grpc\""]
            ) > 0.0,
            "{service}: {text}"
        );
        assert!(
            text.contains("rpc_server_duration_seconds_bucket{"),
            "{service}: no histogram buckets"
        );
    }
    let gateway = &scraped["gateway"];
    assert!(
        sum(
            gateway,
            "rpc_server_duration_seconds_count",
            &[
                "rpc_service=\"ccp.gateway.v1.Authorization\"",
                "rpc_method=\"Check\"",
                "rpc_grpc_status_code=\"0\""
            ]
        ) >= 3.0,
        "{gateway}"
    );
    // The gateway called the facts services.
    assert!(
        sum(gateway, "rpc_client_duration_seconds_count", &[]) > 0.0,
        "{gateway}"
    );
    assert!(
        sum(
            gateway,
            "ccp_gateway_decisions_total",
            &["decision=\"allow\"", "reason=\"own_role\""]
        ) >= 2.0,
        "{gateway}"
    );
    assert!(
        sum(
            gateway,
            "ccp_gateway_decisions_total",
            &["decision=\"deny\""]
        ) >= 1.0,
        "{gateway}"
    );
    assert!(
        sum(gateway, "ccp_gateway_facts_cache_misses_total", &[]) > 0.0,
        "{gateway}"
    );
    assert!(
        gateway.contains("ccp_gateway_facts_cache_hits_total"),
        "{gateway}"
    );
    assert!(
        sum(
            gateway,
            "ccp_gateway_facts_load_duration_seconds_count",
            &[]
        ) > 0.0,
        "{gateway}"
    );
    assert!(
        sum(
            gateway,
            "ccp_gateway_revocations_synced_timestamp_seconds",
            &[]
        ) > 0.0,
        "{gateway}"
    );
    for service in ["identity", "accounts", "delegation"] {
        let text = &scraped[service];
        assert!(
            sum(text, "ccp_db_pool_max_connections", &[]) > 0.0,
            "{service}: {text}"
        );
        assert!(
            sum(text, "ccp_db_pool_connections", &[]) > 0.0,
            "{service}: {text}"
        );
    }
    // The demo's writes went through the outboxes of accounts and delegation.
    for service in ["accounts", "delegation"] {
        let text = &scraped[service];
        assert!(
            sum(text, "ccp_outbox_relay_lag_seconds_count", &[]) > 0.0,
            "{service}: {text}"
        );
        assert!(text.contains("ccp_outbox_depth{"), "{service}: {text}");
    }
    world.stop().await.unwrap();
}

/// An OTLP trace receiver: keeps every span exported to it, with its
/// process's `service.name`.
#[derive(Debug, Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent: String,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Span {
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_the_gateway_is_one_trace_with_client_spans_and_logged_trace_ids() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let logs = tempfile::tempdir().unwrap();
    let Some(world) = World::distributed_with(
        1,
        &[
            ("CCP_TELEMETRY__OTLP_ENDPOINT", &endpoint),
            ("CCP_TELEMETRY__LOG_FILTER", "info"),
        ],
        Some(logs.path()),
    )
    .await
    .unwrap() else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL / CCP_TEST_REDIS_URL not set");
        server.abort();
        return;
    };
    // Alice (the demo's, with a profile) signs in (identity) and asks
    // accounts, through the gateway, for the registration challenge of a
    // program account that does not exist: accounts refuses it, and both
    // processes log the refusal.
    world.demo_load().await.unwrap();
    world.login("alice").await;
    let refused = world
        .ccp("alice", &["business", "challenge", NO_SUCH_PROGRAM])
        .await
        .unwrap();
    assert_ne!(refused.code, 0, "{refused:?}");
    // Stopping flushes every process's spans to the receiver.
    world.stop().await.unwrap();
    server.abort();

    let spans = receiver.spans.lock().unwrap().clone();
    let accounts_call = spans
        .iter()
        .find(|s| {
            s.service == "ccp-accounts"
                && s.kind == SpanKind::Server as i32
                && s.name == "ccp.accounts.v1.Accounts/GetRegistrationChallenge"
                && spans.iter().any(|c| {
                    c.service == "ccp-gateway"
                        && c.kind == SpanKind::Client as i32
                        && c.span_id == s.parent
                })
        })
        .unwrap_or_else(|| panic!("no accounts call under a gateway CLIENT span: {spans:#?}"));
    let trace: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == accounts_call.trace_id)
        .collect();
    let client = trace
        .iter()
        .find(|s| s.span_id == accounts_call.parent)
        .expect("the CLIENT span");
    assert_eq!(client.name, accounts_call.name, "{trace:#?}");
    // Up from the CLIENT span, through the gateway's own spans, is the
    // gateway's SERVER span of the same call: one trace from the caller's
    // call at the gateway to accounts.
    let mut up = *client;
    for _ in 0..trace.len() {
        match trace.iter().find(|s| s.span_id == up.parent) {
            Some(parent) => {
                assert_eq!(parent.service, "ccp-gateway", "{trace:#?}");
                up = parent;
            }
            None => break,
        }
    }
    assert_eq!(up.kind, SpanKind::Server as i32, "{trace:#?}");
    assert_eq!(up.name, accounts_call.name, "{trace:#?}");
    // Every outgoing call the gateway made in this trace has its CLIENT span.
    for call in trace
        .iter()
        .filter(|s| s.service != "ccp-gateway" && s.kind == SpanKind::Server as i32)
    {
        let parent = trace.iter().find(|s| s.span_id == call.parent);
        assert_eq!(
            parent.map(|p| (p.service.as_str(), p.kind)),
            Some(("ccp-gateway", SpanKind::Client as i32)),
            "{call:?} in {trace:#?}"
        );
    }

    let log_of = |service: &str| {
        std::fs::read_dir(logs.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(service))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect::<String>()
    };
    let id = &accounts_call.trace_id;
    for service in ["gateway", "accounts"] {
        let log = log_of(service);
        let line = log
            .lines()
            .find(|l| l.contains(&format!("trace_id={id}")))
            .unwrap_or_else(|| panic!("{service} logged no line with trace_id={id}:\n{log}"));
        assert!(line.contains("span_id="), "{line}");
    }
}
