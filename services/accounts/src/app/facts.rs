//! The internal facts: role facts of a principal, facts of a business,
//! facts of an employee group.

use ccp_platform::auth::Principal;
use ccp_platform::error::Error;
use ccp_platform::store as pstore;
use ccp_proto::accounts::v1 as pb;

use super::{Core, effective_of, parse_uuid_child, program_roles};
use crate::domain::AccountsError;
use crate::store;

impl Core {
    /// Every membership of a principal with effective roles, in one query.
    #[tracing::instrument(skip_all, fields(principal = %req.principal))]
    pub async fn get_role_facts(
        &self,
        req: pb::GetRoleFactsRequest,
    ) -> Result<pb::RoleFacts, Error> {
        let principal: Principal = req.principal.parse().map_err(|_| {
            Error::invalid_field(
                "principal",
                "must be `person:<uuid>` or `credential:<uuid>`",
            )
        })?;
        let principal = principal.to_string();
        let now = self.now();
        let rows = store::role_facts(&self.db, &principal).await?;
        let mut memberships: Vec<pb::Membership> = Vec::new();
        let mut roles: Vec<(String, i32)> = Vec::new();
        let mut current: Option<pb::Membership> = None;
        for r in rows {
            if current.as_ref().is_none_or(|c| c.business != r.bn9) {
                if let Some(mut c) = current.take() {
                    c.roles = program_roles(&c.business, &effective_of(roles.drain(..)));
                    memberships.push(c);
                }
                current = Some(pb::Membership {
                    business: r.bn9.clone(),
                    business_manager: r.business_manager,
                    roles: Vec::new(),
                    revision: r.revision,
                });
            }
            if let (Some(reference), Some(role)) = (r.reference, r.role) {
                roles.push((reference, role));
            }
        }
        if let Some(mut c) = current.take() {
            c.roles = program_roles(&c.business, &effective_of(roles.drain(..)));
            memberships.push(c);
        }
        Ok(pb::RoleFacts {
            principal,
            memberships,
            read_time: Some(pstore::timestamp(now)),
        })
    }

    /// Whether a BN9 is registered, its program accounts and BAMs.
    #[tracing::instrument(skip_all, fields(business = %req.business))]
    pub async fn get_business_facts(
        &self,
        req: pb::GetBusinessFactsRequest,
    ) -> Result<pb::BusinessFacts, Error> {
        let bn9 = ccp_types::BusinessRef::parse(&req.business, "business")
            .map_err(|v| Error::invalid(vec![v]))?;
        let bn9 = bn9.as_str();
        let rows = store::business_facts(&self.db, bn9).await?;
        let Some(first) = rows.first() else {
            let revision = pstore::current_revision(&self.db, bn9).await?;
            return Ok(pb::BusinessFacts {
                business: bn9.to_owned(),
                revision,
                ..Default::default()
            });
        };
        Ok(pb::BusinessFacts {
            business: bn9.to_owned(),
            registered: true,
            program_accounts: rows
                .iter()
                .filter(|r| r.kind == "P")
                .map(|r| format!("{bn9}{}", r.value))
                .collect(),
            business_managers: rows
                .iter()
                .filter(|r| r.kind == "M")
                .map(|r| r.value.clone())
                .collect(),
            revision: first.revision,
            register_time: Some(pstore::timestamp(first.register_time)),
            legal_name: first.legal_name.clone(),
        })
    }

    /// The business, covered programs and deletion state of one employee
    /// group, in one query; NOT_FOUND when no such group lives under the
    /// business its name gives.
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn get_employee_group_facts(
        &self,
        req: pb::GetEmployeeGroupFactsRequest,
    ) -> Result<pb::EmployeeGroupFacts, Error> {
        let (bn9, id) = parse_uuid_child(&req.name, "employeeGroups", "name")
            .map_err(|v| Error::invalid(vec![v]))?;
        let bn9 = bn9.as_str();
        let id = id.to_string();
        let rows = store::group_facts(&self.db, bn9, &id).await?;
        let Some(first) = rows.first() else {
            return Err(Error::from(AccountsError::NoSuchGroup));
        };
        Ok(pb::EmployeeGroupFacts {
            name: format!("businesses/{bn9}/employeeGroups/{id}"),
            business: bn9.to_owned(),
            program_accounts: rows
                .iter()
                .filter_map(|r| r.reference.as_ref())
                .map(|reference| format!("{bn9}{reference}"))
                .collect(),
            deleted: first.delete_time.is_some(),
        })
    }
}
