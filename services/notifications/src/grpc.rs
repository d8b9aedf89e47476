//! The operator API (`ccp.notifications.v1.NotificationsAdmin`): the dead letters listed and
//! sent again, over [`Notifier`]'s use cases. Wrapped in the internal-token check by
//! [`crate::Application`].

use ccp_platform::paging::{PageKey, PageScope, page_size};
use ccp_proto::notifications::v1 as pb;
use ccp_proto::notifications::v1::notifications_admin_server::NotificationsAdmin;
use tonic::{Request, Response, Status};

use crate::Notifier;
use crate::dead_letters::{ReplayError, Replayed, subject_of};
use crate::mail::MailError;
use crate::store::DeadLetter;

/// The NotificationsAdmin service.
#[derive(Debug, Clone)]
pub struct AdminApi {
    notifier: Notifier,
    page_key: PageKey,
}

impl AdminApi {
    /// Returns the API over `notifier`, signing page tokens with `page_key`.
    pub fn new(notifier: Notifier, page_key: PageKey) -> Self {
        Self { notifier, page_key }
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn notice_of(letter: DeadLetter) -> pb::FailedNotice {
    pb::FailedNotice {
        subject: subject_of(&letter.message),
        message_id: letter.message_id,
        event_id: letter.event_id,
        recipient: letter.recipient,
        address: letter.address,
        notice: letter.notice,
        error: letter.error,
        attempts: letter.attempts,
        first_failure_time: Some(timestamp(letter.first_failed)),
        last_failure_time: Some(timestamp(letter.last_failed)),
    }
}

fn database(err: sea_orm::DbErr) -> Status {
    tracing::warn!(error = %err, "notifications database");
    Status::unavailable("the notifications database did not answer")
}

/// Returns who calls: the internal token's subject (`platform:ccp-notifications`).
fn subject<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<ccp_platform::auth::InternalClaims>()
        .map(|c| c.sub.clone())
        .unwrap_or_default()
}

#[tonic::async_trait]
impl NotificationsAdmin for AdminApi {
    async fn list_failed_notices(
        &self,
        request: Request<pb::ListFailedNoticesRequest>,
    ) -> Result<Response<pb::ListFailedNoticesResponse>, Status> {
        let scope = PageScope {
            key: self.page_key.clone(),
            rpc: "notifications.ListFailedNotices",
            parent: String::new(),
            filter: String::new(),
            caller: subject(&request),
        };
        let request = request.into_inner();
        let size = page_size(request.page_size, 100, 1000)?;
        let after = scope.decode(&request.page_token)?;
        let rows = self
            .notifier
            .failed_notices(after.as_deref(), size as u64 + 1)
            .await
            .map_err(database)?;
        let (rows, next_page_token) = scope.finish_page(rows, size, DeadLetter::page_key);
        Ok(Response::new(pb::ListFailedNoticesResponse {
            notices: rows.into_iter().map(notice_of).collect(),
            next_page_token,
        }))
    }

    async fn retry_failed_notice(
        &self,
        request: Request<pb::RetryFailedNoticeRequest>,
    ) -> Result<Response<pb::RetryFailedNoticeResponse>, Status> {
        let id = request.into_inner().message_id;
        if id.trim().is_empty() {
            return Err(
                ccp_platform::error::Error::invalid_field("message_id", "is required").into(),
            );
        }
        let id = crate::dead_letters::normalise_message_id(&id);
        let outcome = match self.notifier.retry_failed(&id).await {
            Ok(Replayed::Sent) => pb::RetryOutcome::Sent,
            Ok(Replayed::AlreadySent) => pb::RetryOutcome::AlreadySent,
            Err(err @ ReplayError::NotFound(_)) => return Err(Status::not_found(err.to_string())),
            Err(ReplayError::Mail(err @ (MailError::Refused(_) | MailError::Invalid(_)))) => {
                return Err(Status::failed_precondition(err.to_string()));
            }
            Err(ReplayError::Mail(err)) => return Err(Status::unavailable(err.to_string())),
            Err(ReplayError::Database(err)) => return Err(database(err)),
        };
        Ok(Response::new(pb::RetryFailedNoticeResponse {
            message_id: id,
            outcome: outcome as i32,
        }))
    }

    async fn retry_all_failed_notices(
        &self,
        _request: Request<pb::RetryAllFailedNoticesRequest>,
    ) -> Result<Response<pb::RetryAllFailedNoticesResponse>, Status> {
        let report = self.notifier.retry_all_failed().await.map_err(database)?;
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        Ok(Response::new(pb::RetryAllFailedNoticesResponse {
            sent: n(report.sent),
            already_sent: n(report.already_sent),
            failed: n(report.failed),
            last_error: report.last_error,
        }))
    }
}
