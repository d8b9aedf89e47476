//! `ccp notifications failed|retry`: the notices the notifier gave up on (dead letters), listed
//! and sent again through its operator API (`NotificationsAdmin`), with the internal token as
//! `ccp registry import` calls accounts.

use std::time::Duration;

use anyhow::Context as _;
use ccp_proto::notifications::v1 as pb;
use ccp_proto::notifications::v1::notifications_admin_client::NotificationsAdminClient;
use tonic::transport::Channel;

use crate::client::output;
use crate::settings::SuiteSettings;

/// The subject of the internal tokens this command presents.
const SUBJECT: &str = "platform:ccp-notifications";

/// The most pages `failed` reads (each of 1000 notices).
const MAX_PAGES: usize = 100;

/// The operator API of the notifier, each call with a fresh internal token.
struct Admin {
    client: NotificationsAdminClient<Channel>,
    tokens: ccp_platform::auth::InternalTokens,
    endpoint: String,
}

impl Admin {
    fn connect(settings: &SuiteSettings, endpoint: Option<String>) -> anyhow::Result<Self> {
        let tokens = settings.internal_tokens()?;
        let server = &settings.notifications.server;
        let endpoint = endpoint.unwrap_or_else(|| {
            let listen = server
                .listen
                .replace("0.0.0.0:", "127.0.0.1:")
                .replace("[::]:", "127.0.0.1:");
            format!("{}://{listen}", server.scheme())
        });
        let channel = ccp_platform::context::lazy_channel_with(
            &endpoint,
            Duration::from_secs(120),
            &settings.common.upstream,
        )?;
        Ok(Self {
            client: NotificationsAdminClient::new(channel),
            tokens,
            endpoint,
        })
    }

    fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            ccp_platform::auth::INTERNAL_TOKEN_HEADER,
            self.tokens
                .mint(SUBJECT)
                .parse()
                .context("internal token")?,
        );
        Ok(request)
    }

    fn failed_call(&self, rpc: &str, status: &tonic::Status) -> anyhow::Error {
        anyhow::anyhow!(
            "{rpc} at {}: {} ({:?})",
            self.endpoint,
            status.message(),
            status.code()
        )
    }
}

/// Formats a timestamp as RFC 3339 in UTC, seconds (one word: the column never wraps).
fn rfc3339(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

/// Runs `ccp notifications failed`: every failed notice, as a table (the notice's kind and
/// subject are in the JSON) or JSON.
pub async fn failed(
    settings: &SuiteSettings,
    endpoint: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let mut admin = Admin::connect(settings, endpoint)?;
    let mut notices = Vec::new();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let request = admin.request(pb::ListFailedNoticesRequest {
            page_size: 1000,
            page_token: page_token.clone(),
        })?;
        let page = match admin.client.list_failed_notices(request).await {
            Ok(page) => page.into_inner(),
            Err(status) => return Err(admin.failed_call("ListFailedNotices", &status)),
        };
        notices.extend(page.notices);
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    if json {
        output::print_json(&output::to_json_list(&notices));
        return Ok(());
    }
    let mut table = output::Table::new(&["SINCE", "ATTEMPTS", "TO", "MESSAGE-ID", "ERROR"]);
    for n in &notices {
        table.row(vec![
            rfc3339(n.first_failure_time.as_ref()),
            n.attempts.to_string(),
            n.address.clone(),
            n.message_id.clone(),
            n.error.clone(),
        ]);
    }
    table.print();
    Ok(())
}

/// Runs `ccp notifications retry <message-id>` (or `--all` when `message_id` is None).
pub async fn retry(
    settings: &SuiteSettings,
    endpoint: Option<String>,
    message_id: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let mut admin = Admin::connect(settings, endpoint)?;
    let Some(message_id) = message_id else {
        let request = admin.request(pb::RetryAllFailedNoticesRequest {})?;
        let report = match admin.client.retry_all_failed_notices(request).await {
            Ok(report) => report.into_inner(),
            Err(status) => return Err(admin.failed_call("RetryAllFailedNotices", &status)),
        };
        if json {
            output::print_json(&output::to_json(&report));
        } else {
            println!(
                "{} sent, {} already sent before (nothing sent), {} failed again",
                report.sent, report.already_sent, report.failed
            );
        }
        if report.failed > 0 {
            anyhow::bail!(
                "{} notice(s) failed again (still listed by `ccp notifications failed`): {}",
                report.failed,
                report.last_error
            );
        }
        return Ok(());
    };
    let request = admin.request(pb::RetryFailedNoticeRequest { message_id })?;
    let response = match admin.client.retry_failed_notice(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Err(admin.failed_call("RetryFailedNotice", &status)),
    };
    if json {
        output::print_json(&output::to_json(&response));
    } else if response.outcome() == pb::RetryOutcome::AlreadySent {
        println!(
            "{} was already sent: nothing sent, no longer listed",
            response.message_id
        );
    } else {
        println!("{} sent", response.message_id);
    }
    Ok(())
}
