//! The audit history (R-AU-1) a business or a person reads.

use ccp_platform::auth::Caller;
use ccp_platform::error::Result;
use ccp_platform::store::{AuditScope, list_audit};
use ccp_proto::identity::v1 as pb;
use chrono::{DateTime, Utc};

use super::Core;

/// A page of audit records to list.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// Whose records.
    pub scope: AuditScope,
    /// The parent as asked (records are named under it).
    pub parent: String,
    /// At most this many.
    pub size: usize,
    /// After this sequence number.
    pub after: i64,
    /// Not before this instant.
    pub start: Option<DateTime<Utc>>,
    /// What its page tokens are bound to.
    pub pages: ccp_platform::paging::PageScope,
}

/// Lists audit records of a business (members with a profile) or of the
/// caller's own actions.
pub async fn list(
    core: &Core,
    caller: &Caller,
    page: AuditPage,
) -> Result<pb::ListAuditEventsResponse> {
    core.check_caller(caller).await?;
    if matches!(page.scope, AuditScope::Business(_)) {
        caller.require_profile()?;
    }
    let rows = list_audit(
        &core.db,
        &page.scope,
        page.after,
        page.start,
        page.size as u64 + 1,
    )
    .await?;
    let (rows, next) = page
        .pages
        .finish_page(rows, page.size, |r| r.seq.to_string());
    Ok(pb::ListAuditEventsResponse {
        events: rows.iter().map(|r| r.to_proto(&page.parent)).collect(),
        next_page_token: next,
    })
}
