//! `ccp bench proxy`: a read RPC (accounts' GetBusiness) through the gateway
//! (bearer token: authentication, policy table, role facts, forwarding) vs.
//! directly to accounts (internal token + the same access token), same
//! client, same run, closed loop at low concurrency (latency, not saturation).
//! `--out-of-process` runs the services in `ccp up --demo`, a process of
//! their own, and only the load here.

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
use super::outside::{DemoSuite, median, spread};
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

/// One call each first: both paths work (keys fetched, facts cached).
async fn warm(name: &str, paths: [(&Channel, &MetadataMap); 2]) -> anyhow::Result<()> {
    for (channel, metadata) in paths {
        let mut request = tonic::Request::new(GetBusinessRequest {
            name: name.to_owned(),
        });
        *request.metadata_mut() = metadata.clone();
        AccountsClient::new(channel.clone())
            .get_business(request)
            .await?;
    }
    Ok(())
}

/// `ccp bench proxy --out-of-process`: the suite of `ccp up --demo` in a
/// process of its own; Alice (ABC's BAM) reads ABC with GetBusiness directly
/// on accounts (internal token + her access token) and through the gateway
/// (her access token), in interleaved closed-loop rounds from this process.
pub async fn run_out_of_process(args: &BenchArgs) -> anyhow::Result<Report> {
    let suite = DemoSuite::start().await?;
    let result = measure_out_of_process(args, &suite).await;
    suite.stop().await;
    result
}

async fn measure_out_of_process(args: &BenchArgs, suite: &DemoSuite) -> anyhow::Result<Report> {
    let (_, token) = suite.sign_in("alice").await?;
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    let mut through_gateway = MetadataMap::new();
    through_gateway.insert("authorization", bearer);
    let mut direct = through_gateway.clone();
    direct.insert(INTERNAL_TOKEN_HEADER, suite.internal_token()?.parse()?);
    let name = "businesses/123456782".to_owned();
    let n = args.connections();
    let direct_channels = channels(suite.addr("accounts")?, n).await?;
    let gateway_channels = channels(suite.addr("gateway")?, n).await?;
    warm(
        &name,
        [
            (&direct_channels[0], &direct),
            (&gateway_channels[0], &through_gateway),
        ],
    )
    .await?;
    let rounds = if args.quick { 3 } else { 5 };
    let mut direct_rounds: Vec<RunReport> = Vec::new();
    let mut gateway_rounds: Vec<RunReport> = Vec::new();
    for round in 0..rounds {
        let d = || drive(args, direct_channels.clone(), direct.clone(), name.clone());
        let g = || {
            drive(
                args,
                gateway_channels.clone(),
                through_gateway.clone(),
                name.clone(),
            )
        };
        // Alternate which goes first, so neither always gets the cooler machine.
        if round % 2 == 0 {
            direct_rounds.push(d().await);
            gateway_rounds.push(g().await);
        } else {
            gateway_rounds.push(g().await);
            direct_rounds.push(d().await);
        }
    }
    let pick = |rounds: &[RunReport], f: fn(&RunReport) -> f64| -> Vec<f64> {
        rounds.iter().map(f).collect()
    };
    let ratios = |a: &[f64], b: &[f64]| -> Vec<f64> {
        a.iter()
            .zip(b)
            .map(|(a, b)| if *b > 0.0 { a / b } else { 0.0 })
            .collect()
    };
    let (direct_rps, gateway_rps) = (
        pick(&direct_rounds, |r| r.rps),
        pick(&gateway_rounds, |r| r.rps),
    );
    let (direct_p50, gateway_p50) = (
        pick(&direct_rounds, |r| r.p50_ms),
        pick(&gateway_rounds, |r| r.p50_ms),
    );
    let mut p50_ratios = ratios(&gateway_p50, &direct_p50);
    let mut rps_ratios = ratios(&gateway_rps, &direct_rps);
    let (p50_min, p50_max) = spread(&p50_ratios);
    let (rps_min, rps_max) = spread(&rps_ratios);
    let ratio_p50 = median(&mut p50_ratios);
    let ratio_rps = median(&mut rps_ratios);
    let errors: u64 = direct_rounds
        .iter()
        .chain(&gateway_rounds)
        .map(|r| r.errors)
        .sum();
    let json = json!({
        "scenario": "proxy",
        "process": "out-of-process (services: ccp up --demo; load: this process)",
        "quick": args.quick,
        "concurrency": args.concurrency(),
        "connections": n,
        "duration_s": args.duration().as_secs_f64(),
        "rounds": rounds,
        "direct_rps": median(&mut direct_rps.clone()),
        "gateway_rps": median(&mut gateway_rps.clone()),
        "direct_p50_ms": median(&mut direct_p50.clone()),
        "gateway_p50_ms": median(&mut gateway_p50.clone()),
        "direct_rps_rounds": direct_rps,
        "gateway_rps_rounds": gateway_rps,
        "ratio_p50": ratio_p50,
        "ratio_p50_min": p50_min,
        "ratio_p50_max": p50_max,
        "ratio_rps": ratio_rps,
        "ratio_rps_min": rps_min,
        "ratio_rps_max": rps_max,
        "errors": errors,
    });
    let mut rows = Vec::new();
    for (i, (d, g)) in direct_rounds.iter().zip(&gateway_rounds).enumerate() {
        rows.push(row(&format!("round {}: direct to accounts", i + 1), d));
        rows.push(row(&format!("round {}: through the gateway", i + 1), g));
    }
    Ok(Report {
        headers: HEADERS.to_vec(),
        rows,
        notes: vec![format!(
            "out of process: p50 ratio (gateway/direct, median of {rounds}) = {ratio_p50:.2} ({p50_min:.2}–{p50_max:.2}); throughput ratio = {ratio_rps:.2} ({rps_min:.2}–{rps_max:.2}); {errors} errors"
        )],
        json,
    })
}

const HEADERS: [&str; 6] = [
    "GetBusiness",
    "rps",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "errors",
];

fn row(label: &str, r: &RunReport) -> Vec<String> {
    vec![
        label.to_owned(),
        format!("{:.0}", r.rps),
        format!("{:.3}", r.p50_ms),
        format!("{:.3}", r.p99_ms),
        format!("{:.3}", r.p999_ms),
        r.errors.to_string(),
    ]
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
    warm(
        &name,
        [
            (&direct_channels[0], &direct),
            (&gateway_channels[0], &through_gateway),
        ],
    )
    .await?;
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
    Ok(Report {
        headers: HEADERS.to_vec(),
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
