//! `ccp health`: asks a service's `grpc.health.v1.Health/Check` whether it is
//! SERVING, as kubelet's native `grpc:` probe does. The image has no shell
//! and no `grpc_health_probe`, so compose health checks and scripts that
//! wait for a service run this.

use std::time::Duration;

use ccp_platform::balance::UpstreamSettings;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long one check may take (kubelet's default probe timeout is 1 s).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Returns the status `endpoint` reports for `service` ("" is the server as
/// a whole); an `https://` endpoint is verified as `upstream` says (`tls_ca`,
/// else the system's roots) and shown `upstream`'s client certificate.
pub async fn check(
    endpoint: &str,
    service: &str,
    upstream: &UpstreamSettings,
) -> anyhow::Result<ServingStatus> {
    let mut channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())?
        .connect_timeout(CHECK_TIMEOUT)
        .timeout(CHECK_TIMEOUT);
    if let Some(tls) = ccp_platform::tls::client_config(upstream, channel.uri())? {
        channel = channel.tls_config(tls)?;
    }
    let channel = channel.connect().await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner();
    Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
}

/// Checks until `endpoint` reports SERVING or `wait` has passed (one check
/// when `wait` is zero); prints the last status and fails unless SERVING.
pub async fn run(
    endpoint: &str,
    service: &str,
    wait: Duration,
    upstream: &UpstreamSettings,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let outcome = check(endpoint, service, upstream).await;
        let serving = matches!(outcome, Ok(ServingStatus::Serving));
        if serving || tokio::time::Instant::now() >= deadline {
            let what = if service.is_empty() {
                "server"
            } else {
                service
            };
            return match outcome {
                Ok(ServingStatus::Serving) => {
                    println!("{endpoint} {what}: SERVING");
                    Ok(())
                }
                Ok(status) => anyhow::bail!("{endpoint} {what}: {}", status.as_str_name()),
                Err(err) => Err(err.context(format!("{endpoint} {what}: no answer"))),
            };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
