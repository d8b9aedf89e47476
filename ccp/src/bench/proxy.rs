//! `ccp bench proxy`: a read RPC (accounts' GetBusiness) through the gateway
//! (bearer token: authentication, policy table, role facts, forwarding) vs.
//! directly to accounts (internal token + the same access token), same
//! client, same run, closed loop at low concurrency (latency, not saturation).

use std::sync::Arc;

use ccp_platform::auth::INTERNAL_TOKEN_HEADER;
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_proto::accounts::v1::GetBusinessRequest;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use serde_json::json;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

use super::harness::{Embedded, Seeder, bench_settings, channels};
use super::load::{ClosedLoop, RunReport, closed_loop};
use super::{BenchArgs, Report};

/// Runs the scenario.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let embedded =
        Embedded::start(bench_settings(), ServiceContext::in_memory(Clock::system())).await?;
    let result = measure(args, &embedded).await;
    embedded.stop().await?;
    result
}

async fn drive(
    args: &BenchArgs,
    channels: Vec<Channel>,
    metadata: MetadataMap,
    name: String,
) -> RunReport {
    let channels = Arc::new(channels);
    let metadata = Arc::new(metadata);
    closed_loop(
        ClosedLoop {
            concurrency: args.concurrency(),
            warmup: args.warmup(),
            duration: args.duration(),
            max_requests: args.max_requests(),
        },
        move |worker, _| {
            let channel = channels[worker % channels.len()].clone();
            let mut request = tonic::Request::new(GetBusinessRequest { name: name.clone() });
            *request.metadata_mut() = (*metadata).clone();
            async move {
                AccountsClient::new(channel)
                    .get_business(request)
                    .await
                    .map(|_| ())
            }
        },
    )
    .await
}

async fn measure(args: &BenchArgs, embedded: &Embedded) -> anyhow::Result<Report> {
    let seeder = Seeder::new(embedded).await?;
    let business = seeder.business("proxied").await?;
    let gateway = embedded.gateway().await?;
    let name = format!("businesses/{}", business.bn9);
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", business.bam.token).parse()?;
    let mut through_gateway = MetadataMap::new();
    through_gateway.insert("authorization", bearer.clone());
    let mut direct = through_gateway.clone();
    direct.insert(
        INTERNAL_TOKEN_HEADER,
        seeder.internal().mint("service:bench").parse()?,
    );
    let n = args.connections();
    let accounts = embedded.suite.endpoints().accounts;
    let direct_channels = channels(accounts, n).await?;
    let gateway_channels = channels(gateway.addr, n).await?;
    // One call each first: both paths work (keys fetched, facts cached).
    for (channel, metadata) in [
        (&direct_channels[0], &direct),
        (&gateway_channels[0], &through_gateway),
    ] {
        let mut request = tonic::Request::new(GetBusinessRequest { name: name.clone() });
        *request.metadata_mut() = metadata.clone();
        AccountsClient::new(channel.clone())
            .get_business(request)
            .await?;
    }
    let direct_report = drive(args, direct_channels, direct, name.clone()).await;
    let gateway_report = drive(args, gateway_channels, through_gateway, name).await;
    gateway.stop().await?;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let json = json!({
        "scenario": "proxy",
        "quick": args.quick,
        "concurrency": args.concurrency(),
        "connections": n,
        "duration_s": args.duration().as_secs_f64(),
        "direct_rps": direct_report.rps,
        "gateway_rps": gateway_report.rps,
        "direct_p50_ms": direct_report.p50_ms,
        "gateway_p50_ms": gateway_report.p50_ms,
        "direct_p99_ms": direct_report.p99_ms,
        "gateway_p99_ms": gateway_report.p99_ms,
        "ratio_p50": ratio(gateway_report.p50_ms, direct_report.p50_ms),
        "ratio_p99": ratio(gateway_report.p99_ms, direct_report.p99_ms),
        "errors": direct_report.errors + gateway_report.errors,
    });
    let row = |label: &str, r: &RunReport| {
        vec![
            label.to_owned(),
            format!("{:.0}", r.rps),
            format!("{:.3}", r.p50_ms),
            format!("{:.3}", r.p99_ms),
            format!("{:.3}", r.p999_ms),
            r.errors.to_string(),
        ]
    };
    Ok(Report {
        headers: vec![
            "GetBusiness",
            "rps",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "errors",
        ],
        rows: vec![
            row("direct to accounts", &direct_report),
            row("through the gateway", &gateway_report),
        ],
        notes: vec![format!(
            "p50 ratio (gateway/direct) = {:.2}; concurrency {}",
            ratio(gateway_report.p50_ms, direct_report.p50_ms),
            args.concurrency()
        )],
        json,
    })
}
