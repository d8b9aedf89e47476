//! The internal facts: role facts of a principal, facts of a business,
//! facts of an employee group.

use std::collections::BTreeMap;

use ccp_platform::auth::Principal;
use ccp_platform::error::Error;
use ccp_platform::store as pstore;
use ccp_proto::accounts::v1 as pb;

use super::{Core, effective_of, parse_uuid_child, program_roles};
use crate::domain::AccountsError;
use crate::store;

/// A registered business's facts from its (kind, value) rows: `P` program
/// references, `M` BAM principals.
fn registered_facts<'a>(
    bn9: &str,
    rows: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    revision: i64,
    register_time: chrono::DateTime<chrono::Utc>,
    legal_name: &str,
) -> pb::BusinessFacts {
    pb::BusinessFacts {
        business: bn9.to_owned(),
        registered: true,
        program_accounts: rows
            .clone()
            .filter(|(kind, _)| *kind == "P")
            .map(|(_, reference)| format!("{bn9}{reference}"))
            .collect(),
        business_managers: rows
            .filter(|(kind, _)| *kind == "M")
            .map(|(_, principal)| principal.to_owned())
            .collect(),
        revision,
        register_time: Some(pstore::timestamp(register_time)),
        legal_name: legal_name.to_owned(),
    }
}

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
        let facts = rows.iter().map(|r| (r.kind.as_str(), r.value.as_str()));
        match rows.first() {
            Some(first) => Ok(registered_facts(
                bn9,
                facts,
                first.revision,
                first.register_time,
                &first.legal_name,
            )),
            None => Ok(pb::BusinessFacts {
                business: bn9.to_owned(),
                revision: pstore::current_revision(&self.db, bn9).await?,
                ..Default::default()
            }),
        }
    }

    /// GetBusinessFacts for several businesses in the order asked (the
    /// server's limits bound them to 1000), in two queries: the registered
    /// ones' facts, the others' revisions.
    #[tracing::instrument(skip_all, fields(businesses = req.businesses.len()))]
    pub async fn batch_get_business_facts(
        &self,
        req: pb::BatchGetBusinessFactsRequest,
    ) -> Result<pb::BatchGetBusinessFactsResponse, Error> {
        let mut bn9s = Vec::with_capacity(req.businesses.len());
        for (i, text) in req.businesses.iter().enumerate() {
            let bn9 = ccp_types::BusinessRef::parse(text, &format!("businesses[{i}]"))
                .map_err(|v| Error::invalid(vec![v]))?;
            bn9s.push(bn9.as_str().to_owned());
        }
        let mut unique = bn9s.clone();
        unique.sort();
        unique.dedup();
        let rows = store::business_facts_many(&self.db, &unique).await?;
        let mut registered: BTreeMap<&str, Vec<&store::ManyBusinessFactsRow>> = BTreeMap::new();
        for r in &rows {
            registered.entry(r.bn9.as_str()).or_default().push(r);
        }
        let unregistered: Vec<String> = unique
            .iter()
            .filter(|b| !registered.contains_key(b.as_str()))
            .cloned()
            .collect();
        let revisions: BTreeMap<String, i64> = store::revisions_of(&self.db, &unregistered)
            .await?
            .into_iter()
            .collect();
        let businesses = bn9s
            .iter()
            .map(|bn9| match registered.get(bn9.as_str()) {
                Some(rows) => {
                    let first = rows[0];
                    registered_facts(
                        bn9,
                        rows.iter().map(|r| (r.kind.as_str(), r.value.as_str())),
                        first.revision,
                        first.register_time,
                        &first.legal_name,
                    )
                }
                None => pb::BusinessFacts {
                    business: bn9.clone(),
                    revision: revisions.get(bn9).copied().unwrap_or(0),
                    ..Default::default()
                },
            })
            .collect();
        Ok(pb::BatchGetBusinessFactsResponse { businesses })
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
