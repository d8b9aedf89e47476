//! `ccp-gateway`: runs the gateway alone (distributed mode).
//! Usage: `ccp-gateway [--config FILE]` (`--help`, `--version`); see the README for every key.

use ccp_gateway::config::Settings;

use tracing::Instrument as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ccp_platform::config::ServiceArgs::parse_for(
        "ccp-gateway",
        "Runs the CCP gateway alone (distributed mode).",
    );
    let file = args.config;
    let settings: Settings = ccp_platform::config::load("", file.as_deref())?;
    let _telemetry =
        ccp_platform::telemetry::init(&settings.common.telemetry.for_service("gateway"))?;
    if let Some(metrics) =
        ccp_platform::metrics::serve(&settings.common.telemetry.metrics_listen).await?
    {
        println!("gateway metrics on {}", metrics.url());
    }
    let ctx = ccp_platform::context::ServiceContext::from_settings_with(
        &settings.common,
        ccp_platform::context::RedisAtStart::Optional,
    )
    .await?;
    let span = ccp_platform::telemetry::service_span("gateway");
    let app = ccp_gateway::Application::build(&ctx, &settings.gateway)
        .instrument(span.clone())
        .await?;
    span.in_scope(|| tracing::info!(addr = %app.local_addr(), "gateway serving"));
    app.run_until_stopped(ccp_platform::server::shutdown_signal())
        .instrument(span)
        .await
}
