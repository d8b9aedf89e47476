//! `ccp-delegation`: runs the delegation service alone (distributed mode).
//! Usage: `ccp-delegation [--config FILE]` (`--help`, `--version`); see the README for every key.

use ccp_delegation::config::Settings;

use tracing::Instrument as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ccp_platform::config::ServiceArgs::parse_for(
        "ccp-delegation",
        "Runs the CCP delegation service alone (distributed mode).",
    );
    let file = args.config;
    let settings: Settings = ccp_platform::config::load("", file.as_deref())?;
    let _telemetry =
        ccp_platform::telemetry::init(&settings.common.telemetry.for_service("delegation"))?;
    if let Some(metrics) =
        ccp_platform::metrics::serve(&settings.common.telemetry.metrics_listen).await?
    {
        println!("delegation metrics on {}", metrics.url());
    }
    let ctx = ccp_platform::context::ServiceContext::from_settings_with(
        &settings.common,
        ccp_platform::context::RedisAtStart::Optional,
    )
    .await?;
    let span = ccp_platform::telemetry::service_span("delegation");
    let app = ccp_delegation::Application::build(&ctx, &settings.delegation)
        .instrument(span.clone())
        .await?;
    span.in_scope(|| tracing::info!(addr = %app.local_addr(), "delegation serving"));
    app.run_until_stopped(ccp_platform::server::shutdown_signal())
        .instrument(span)
        .await
}
