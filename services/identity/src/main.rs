//! `ccp-identity`: runs the identity service alone (distributed mode).
//! Usage: `ccp-identity [--config FILE]` (`--help`, `--version`); see the README for every key.

use ccp_identity::config::Settings;

use tracing::Instrument as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ccp_platform::config::ServiceArgs::parse_for(
        "ccp-identity",
        "Runs the CCP identity service alone (distributed mode).",
    );
    let file = args.config;
    let settings: Settings = ccp_platform::config::load("", file.as_deref())?;
    let _telemetry =
        ccp_platform::telemetry::init(&settings.common.telemetry.for_service("identity"))?;
    if let Some(metrics) =
        ccp_platform::metrics::serve(&settings.common.telemetry.metrics_listen).await?
    {
        println!("identity metrics on {}", metrics.url());
    }
    let ctx = ccp_platform::context::ServiceContext::from_settings_with(
        &settings.common,
        ccp_platform::context::RedisAtStart::Optional,
    )
    .await?;
    let span = ccp_platform::telemetry::service_span("identity");
    let app = ccp_identity::Application::build(&ctx, &settings.identity)
        .instrument(span.clone())
        .await?;
    span.in_scope(|| tracing::info!(addr = %app.local_addr(), "identity serving"));
    app.run_until_stopped(ccp_platform::server::shutdown_signal())
        .instrument(span)
        .await
}
