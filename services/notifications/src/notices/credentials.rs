//! Identity's events: a machine credential expiring within 30 days, told to its business's
//! managers (who can create its successor before it stops working).

use ccp_proto::common::v1::DomainEvent;

use super::{
    Audience, CREDENTIAL_EXPIRY_REMINDER, Notice, Notifier, NotifyError, Outcome, detail,
    detail_number, expire_date,
};

impl Notifier {
    /// `CREDENTIAL_EXPIRY_REMINDER`: the business's managers, with the credential's name, the
    /// expiry date and the days left.
    pub(super) async fn credential_expiry(
        &self,
        event: &DomainEvent,
        outcome: &mut Outcome,
    ) -> Result<(), NotifyError> {
        let bn = Some(detail(event, "business"))
            .filter(|bn| !bn.is_empty())
            .or_else(|| event.businesses.first().cloned());
        let Some(bn) = bn else {
            tracing::warn!(event = %event.id, "credential expiry reminder without a business");
            return Ok(());
        };
        let (facts, business_name) = self.business(&bn).await?;
        let credential_name = detail(event, "display_name");
        let expire = expire_date(&detail(event, "expire_time"));
        let notice = Notice {
            kind: CREDENTIAL_EXPIRY_REMINDER,
            values: vec![
                ("credential_name", &credential_name),
                ("business", &bn),
                ("business_name", &business_name),
                ("expire_date", &expire),
            ],
            counts: vec![("days", detail_number(event, "days"))],
        };
        let audience = Audience {
            principals: facts.managers,
            about: business_name.clone(),
        };
        self.notify(event, &notice, &[audience], outcome).await
    }
}
