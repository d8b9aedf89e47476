//! `ccp-notifications`: runs the notifications service alone (distributed mode).
//! Usage: `ccp-notifications [--config FILE]` (`--help`, `--version`); see docs/notifications.md.

use ccp_notifications::config::Settings;

use tracing::Instrument as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ccp_platform::config::ServiceArgs::parse_for(
        "ccp-notifications",
        "Runs the CCP notifications service alone (distributed mode).",
    );
    let file = args.config;
    let settings: Settings = ccp_platform::config::load("", file.as_deref())?;
    let _telemetry =
        ccp_platform::telemetry::init(&settings.common.telemetry.for_service("notifications"))?;
    let ctx = ccp_platform::context::ServiceContext::from_settings_with(
        &settings.common,
        ccp_platform::context::RedisAtStart::Optional,
    )
    .await?;
    let span = ccp_platform::telemetry::service_span("notifications");
    let app = ccp_notifications::Application::build(&ctx, &settings.notifications)
        .instrument(span.clone())
        .await?;
    span.in_scope(|| {
        tracing::info!("notifications consuming delegation's, accounts' and identity's events")
    });
    println!(
        "notifications listening on {}://{}",
        app.scheme(),
        app.local_addr()
    );
    app.run_until_stopped(ccp_platform::server::shutdown_signal())
        .instrument(span)
        .await
}
