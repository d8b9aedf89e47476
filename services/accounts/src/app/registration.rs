//! Terms & Conditions, registration (R-AC-2), businesses and their program
//! accounts, the registry import, and the audit list.

use ccp_platform::auth::Caller;
use ccp_platform::error::{Error, FieldViolation};
use ccp_platform::paging::page_size;
use ccp_platform::store::{self as pstore, AuditScope, Change, WriteBy};
use ccp_proto::accounts::v1 as pb;
use ccp_proto::common::v1::{Address as PbAddress, EventType};
use serde_json::json;

use super::{Core, effective_of, page_after, parsed, program_roles, reject, request_id};
use crate::domain::matching::{Address, AnswerFormat, names_match};
use crate::domain::{AccountsError, Bn9, MemberKind, ProgramReference};
use crate::store;

/// (BN9, legal name, BAM, role rows) while folding role facts into MyBusiness.
type MyRow = (String, String, bool, Vec<(String, i32)>);

/// The most records one ImportRegistry call may carry.
pub const MAX_IMPORT: usize = 10_000;

pub(super) fn to_domain_address(a: &PbAddress) -> Address {
    Address {
        line1: a.line1.clone(),
        line2: a.line2.clone(),
        city: a.city.clone(),
        province: a.province.clone(),
        postal_code: a.postal_code.clone(),
        country: a.country.clone(),
    }
}

pub(super) fn to_proto_address(a: &Address) -> PbAddress {
    PbAddress {
        line1: a.line1.clone(),
        line2: a.line2.clone(),
        city: a.city.clone(),
        province: a.province.clone(),
        postal_code: a.postal_code.clone(),
        country: if a.country.is_empty() {
            "CA".to_owned()
        } else {
            a.country.clone()
        },
    }
}

fn format_from_proto(n: i32) -> Option<AnswerFormat> {
    match pb::AnswerFormat::try_from(n).ok()? {
        pb::AnswerFormat::Amount => Some(AnswerFormat::Amount),
        pb::AnswerFormat::Date => Some(AnswerFormat::Date),
        pb::AnswerFormat::Text => Some(AnswerFormat::Text),
        pb::AnswerFormat::Unspecified => None,
    }
}

fn format_to_proto(s: &str) -> i32 {
    match AnswerFormat::parse(s) {
        Some(AnswerFormat::Amount) => pb::AnswerFormat::Amount as i32,
        Some(AnswerFormat::Date) => pb::AnswerFormat::Date as i32,
        Some(AnswerFormat::Text) => pb::AnswerFormat::Text as i32,
        None => pb::AnswerFormat::Unspecified as i32,
    }
}

fn question(f: &store::FactRow) -> pb::KnownFactQuestion {
    pb::KnownFactQuestion {
        id: f.question_id.clone(),
        text_en: f.text_en.clone(),
        text_fr: f.text_fr.clone(),
        format: format_to_proto(&f.format),
    }
}

/// Names each required address line left blank and each line holding a
/// control character (R-IN-1).
fn address_violations(a: &PbAddress, field: &str) -> Vec<FieldViolation> {
    let mut errs = Vec::new();
    for (name, v, required) in [
        ("line1", &a.line1, true),
        ("line2", &a.line2, false),
        ("city", &a.city, true),
        ("province", &a.province, true),
        ("postal_code", &a.postal_code, true),
        ("country", &a.country, false),
    ] {
        let path = format!("{field}.{name}");
        if let Err(violation) = ccp_types::check_line(v, &path) {
            errs.push(violation);
        } else if required && v.trim().is_empty() {
            errs.push(FieldViolation::new(path, "is required"));
        }
    }
    errs
}

/// Names a free-text line holding a control character (R-IN-1).
fn check_line(v: &str, field: &str, errs: &mut Vec<FieldViolation>) {
    if let Err(violation) = ccp_types::check_line(v, field) {
        errs.push(violation);
    }
}

/// The answer to a caller whose registration is locked (R-AC-2):
/// RESOURCE_EXHAUSTED with ErrorInfo `REGISTRATION_LOCKED` and RetryInfo.
fn locked(lock: &store::RegistrationLock, now: chrono::DateTime<chrono::Utc>) -> Error {
    let left = (lock.locked_until - now)
        .to_std()
        .unwrap_or_default()
        .max(std::time::Duration::from_secs(1));
    Error::from(AccountsError::RegistrationLocked {
        until: lock.locked_until,
        retry_after: left,
        all_bns: lock.bn9 == store::ALL_BNS,
    })
}

impl Core {
    /// Returns the current Terms & Conditions.
    pub fn terms(&self) -> pb::TermsAndConditions {
        pb::TermsAndConditions {
            version: self.settings.terms_version.clone(),
            text_en: self.settings.terms_en().to_owned(),
            text_fr: self.settings.terms_fr().to_owned(),
            effective_time: Some(prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 0,
            }),
        }
    }

    /// The `GetRegistrationChallenge` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all)]
    pub async fn get_registration_challenge(
        &self,
        req: pb::GetRegistrationChallengeRequest,
    ) -> Result<pb::RegistrationChallenge, Error> {
        let bn15 = ccp_types::ProgramAccountRef::parse(&req.program_account, "program_account")
            .map_err(|v| Error::invalid(vec![v]))?;
        let bn9 = bn15.bn9().as_str();
        if store::business(&self.db, bn9).await?.is_some() {
            return Err(Error::from(AccountsError::AlreadyRegistered));
        }
        let programs = store::registry_programs(&self.db, bn9).await?;
        if store::registry(&self.db, bn9).await?.is_none()
            || !programs
                .iter()
                .any(|p| p.reference == bn15.reference().as_str())
        {
            return Err(Error::from(AccountsError::NotInRegistry));
        }
        let facts = store::registry_facts(&self.db, bn9).await?;
        Ok(pb::RegistrationChallenge {
            business: bn9.to_owned(),
            questions: facts.iter().map(question).collect(),
            terms_version: self.settings.terms_version.clone(),
        })
    }

    /// The `RegisterBusiness` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(program_account = %req.program_account))]
    pub async fn register_business(
        &self,
        who: &Caller,
        req: pb::RegisterBusinessRequest,
    ) -> Result<pb::RegisterBusinessResponse, Error> {
        const METHOD: &str = "RegisterBusiness";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let bn15 = ccp_types::ProgramAccountRef::parse(&req.program_account, "program_account")
            .map_err(|v| errs.push(v))
            .ok();
        if let Err(violation) = ccp_types::check_line(&req.legal_name, "legal_name") {
            errs.push(violation);
        } else if req.legal_name.trim().is_empty() {
            errs.push(FieldViolation::new("legal_name", "is required"));
        }
        match &req.address {
            None => errs.push(FieldViolation::new("address", "is required")),
            Some(a) => errs.extend(address_violations(a, "address")),
        }
        for (i, answer) in req.answers.iter().enumerate() {
            check_line(
                &answer.question_id,
                &format!("answers[{i}].question_id"),
                &mut errs,
            );
            check_line(&answer.answer, &format!("answers[{i}].answer"), &mut errs);
        }
        if req.accepted_terms_version.is_empty() {
            errs.push(FieldViolation::new("accepted_terms_version", "is required"));
        } else {
            check_line(
                &req.accepted_terms_version,
                "accepted_terms_version",
                &mut errs,
            );
        }
        reject(errs)?;
        let request_id = parsed(request_id, "request_id")?;
        let bn15 = parsed(bn15, "program_account")?;
        who.require_profile()?;
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        if let Some(answer) = self.writer.replayed(&by).await? {
            return Ok(answer);
        }
        let now = self.now();
        let bn9 = bn15.bn9().as_str().to_owned();
        if let Some(lock) = store::locked_until(&self.db, &actor, &bn9, now).await? {
            return Err(locked(&lock, now));
        }
        if store::business(&self.db, &bn9).await?.is_some() {
            return Err(Error::from(AccountsError::AlreadyRegistered));
        }
        let record = store::registry(&self.db, &bn9).await?;
        let programs = store::registry_programs(&self.db, &bn9).await?;
        let Some(record) = record.filter(|_| {
            programs
                .iter()
                .any(|p| p.reference == bn15.reference().as_str())
        }) else {
            return Err(Error::from(AccountsError::NotInRegistry));
        };
        if req.accepted_terms_version != self.settings.terms_version {
            return Err(Error::invalid_field(
                "accepted_terms_version",
                "is not the current Terms & Conditions version",
            ));
        }
        // Match against the registry, naming parts without revealing values.
        let mut mismatches = Vec::new();
        if !names_match(&req.legal_name, &record.legal_name) {
            mismatches.push(FieldViolation::new(
                "legal_name",
                "does not match the registry record",
            ));
        }
        let expected_address = &record.address;
        let given_address = req
            .address
            .as_ref()
            .map(to_domain_address)
            .unwrap_or_default();
        if !given_address.matches(expected_address) {
            mismatches.push(FieldViolation::new(
                "address",
                "does not match the registry record",
            ));
        }
        let facts = store::registry_facts(&self.db, &bn9).await?;
        let mut answered = std::collections::HashSet::new();
        for (i, answer) in req.answers.iter().enumerate() {
            let field = format!("answers[{i}]");
            match facts.iter().find(|f| f.question_id == answer.question_id) {
                None => mismatches.push(FieldViolation::new(
                    field,
                    "answers no question of the challenge",
                )),
                Some(fact) => {
                    if !answered.insert(fact.question_id.clone()) {
                        mismatches.push(FieldViolation::new(field, "answers a question twice"));
                        continue;
                    }
                    let format = AnswerFormat::parse(&fact.format).unwrap_or(AnswerFormat::Text);
                    let ok = match (
                        format.canonical(&answer.answer),
                        format.canonical(&fact.answer),
                    ) {
                        (Some(a), Some(b)) => a == b,
                        _ => false,
                    };
                    if !ok {
                        mismatches.push(FieldViolation::new(
                            field,
                            "does not match the registry record",
                        ));
                    }
                }
            }
        }
        for f in &facts {
            if !answered.contains(&f.question_id)
                && !req.answers.iter().any(|a| a.question_id == f.question_id)
            {
                mismatches.push(FieldViolation::new(
                    "answers",
                    format!("question `{}` is not answered", f.question_id),
                ));
            }
        }
        let mut w = begin!(self, by);
        if !mismatches.is_empty() {
            w.bump_revision(&bn9).await?;
            let since = now - chrono::Duration::hours(24);
            let failures = store::record_failure(w.txn(), &bn9, &actor, now, since).await?;
            let name = format!("businesses/{bn9}");
            w.record(
                Change::audit("accounts.registration.fail", &name)
                    .acting_for(&bn9)
                    .after(json!({
                        "failures_in_24h": failures.on_bn,
                        "failures_in_24h_all_bns": failures.all_bns,
                        "parts": mismatches.iter().map(|m| m.field.clone()).collect::<Vec<_>>(),
                    })),
            )
            .await?;
            // R-AC-2: the lock binds the person who failed, never the business.
            let until =
                now + chrono::Duration::hours(i64::from(self.settings.registration_lock_hours));
            let locks = [
                (
                    bn9.as_str(),
                    failures.on_bn >= i64::from(self.settings.registration_max_failures),
                ),
                (
                    store::ALL_BNS,
                    failures.all_bns
                        >= i64::from(self.settings.registration_max_failures_per_person),
                ),
            ];
            for (scope, reached) in locks {
                if !reached {
                    continue;
                }
                store::lock_registration(w.txn(), &actor, scope, now, until).await?;
                let all_bns = scope == store::ALL_BNS;
                let locked = json!({
                    "principal": actor,
                    "all_business_numbers": all_bns,
                    "locked_until": until.to_rfc3339(),
                });
                w.record(
                    Change::new(
                        EventType::RegistrationLocked,
                        "accounts.registration.lock",
                        &name,
                    )
                    .by("system")
                    .acting_for(&bn9)
                    .after(locked.clone())
                    .details(locked),
                )
                .await?;
                tracing::warn!(
                    bn9 = %bn9,
                    principal = %actor,
                    all_bns,
                    "registration locked for a person after repeated failures"
                );
            }
            w.commit_without_answer().await?;
            return Err(Error::invalid(mismatches));
        }

        let revision = w.bump_revision(&bn9).await?;
        if store::business(w.txn(), &bn9).await?.is_some() {
            return Err(Error::from(AccountsError::AlreadyRegistered));
        }
        let row = store::BusinessRow {
            bn9: bn9.clone(),
            legal_name: record.legal_name.clone(),
            address: record.address.clone(),
            register_time: now,
            terms_version: req.accepted_terms_version.clone(),
            terms_accept_time: now,
        };
        if let Err(err) = store::insert_business(w.txn(), &row, &actor).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::from(AccountsError::AlreadyRegistered));
            }
            return Err(err.into());
        }
        for p in &programs {
            store::link_program(w.txn(), &bn9, &p.reference, &p.display_name, now).await?;
        }
        store::upsert_member(
            w.txn(),
            &store::MemberRow {
                bn9: bn9.clone(),
                principal: actor.clone(),
                kind: MemberKind::Person,
                display_name: String::new(),
                business_manager: true,
                join_time: now,
                version: 1,
            },
        )
        .await?;
        let name = format!("businesses/{bn9}");
        w.record(
            Change::new(EventType::BusinessRegistered, "accounts.business.register", &name)
                .acting_for(&bn9)
                .principals([actor.clone()])
                .after(json!({
                    "bn9": bn9, "legal_name": record.legal_name,
                    "program_accounts": programs.iter().map(|p| format!("{bn9}{}", p.reference)).collect::<Vec<_>>(),
                    "first_bam": actor, "terms_version": req.accepted_terms_version,
                    "terms_accept_time": now.to_rfc3339(),
                })),
        )
        .await?;
        let business = self.business_proto(w.txn(), &bn9).await?;
        let response = pb::RegisterBusinessResponse {
            business: Some(business),
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }

    pub(super) async fn business_proto<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        bn9: &str,
    ) -> Result<pb::Business, Error> {
        let store::BusinessView {
            business: b,
            bams,
            programs,
        } = store::business_view(db, bn9)
            .await?
            .ok_or_else(|| Error::from(AccountsError::NoSuchBusiness))?;
        Ok(pb::Business {
            name: format!("businesses/{bn9}"),
            bn9: bn9.to_owned(),
            legal_name: b.legal_name.clone(),
            address: Some(to_proto_address(&b.address)),
            program_accounts: programs.iter().map(|p| program_proto(bn9, p)).collect(),
            business_manager_count: i32::try_from(bams).unwrap_or(i32::MAX),
            single_business_manager: bams == 1,
            register_time: Some(pstore::timestamp(b.register_time)),
            accepted_terms_version: b.terms_version.clone(),
            terms_accept_time: Some(pstore::timestamp(b.terms_accept_time)),
        })
    }

    /// The `GetBusiness` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all)]
    pub async fn get_business(&self, req: pb::GetBusinessRequest) -> Result<pb::Business, Error> {
        let bn9 = ccp_types::BusinessRef::parse(&req.name, "name")
            .map_err(|v| Error::invalid(vec![v]))?;
        self.business_proto(&self.db, bn9.as_str()).await
    }

    /// The `ListProgramAccounts` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all)]
    pub async fn list_program_accounts(
        &self,
        who: &Caller,
        req: pb::ListProgramAccountsRequest,
    ) -> Result<pb::ListProgramAccountsResponse, Error> {
        let bn9 = ccp_types::BusinessRef::parse(&req.parent, "parent")
            .map_err(|v| Error::invalid(vec![v]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let pages = self.pages(
            "accounts.ListProgramAccounts",
            bn9.as_str(),
            String::new(),
            who,
        );
        let after = page_after(&pages, &req.page_token)?;
        if store::business(&self.db, bn9.as_str()).await?.is_none() {
            return Err(Error::from(AccountsError::NoSuchBusiness));
        }
        let rows = store::programs(&self.db, bn9.as_str(), &after, size as u64 + 1).await?;
        let (rows, next) = pages.finish_page(rows, size, |r| r.reference.clone());
        Ok(pb::ListProgramAccountsResponse {
            program_accounts: rows
                .iter()
                .map(|p| program_proto(bn9.as_str(), p))
                .collect(),
            next_page_token: next,
        })
    }

    /// The `ListMyBusinesses` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all)]
    pub async fn list_my_businesses(
        &self,
        who: &Caller,
        req: pb::ListMyBusinessesRequest,
    ) -> Result<pb::ListMyBusinessesResponse, Error> {
        let size = page_size(req.page_size, 50, 500)?;
        let pages = self.pages("accounts.ListMyBusinesses", "", String::new(), who);
        let after = page_after(&pages, &req.page_token)?;
        let rows = store::role_facts(&self.db, &who.principal.to_string()).await?;
        let mut out: Vec<pb::MyBusiness> = Vec::new();
        let mut current: Option<MyRow> = None;
        let flush = |c: Option<MyRow>, out: &mut Vec<pb::MyBusiness>| {
            if let Some((bn9, legal_name, bam, roles)) = c {
                out.push(pb::MyBusiness {
                    business: format!("businesses/{bn9}"),
                    legal_name,
                    business_manager: bam,
                    effective_roles: program_roles(&bn9, &effective_of(roles)),
                });
            }
        };
        for r in rows.into_iter().filter(|r| r.bn9 > after) {
            if current.as_ref().is_none_or(|c| c.0 != r.bn9) {
                flush(current.take(), &mut out);
                current = Some((
                    r.bn9.clone(),
                    r.legal_name.clone(),
                    r.business_manager,
                    Vec::new(),
                ));
            }
            if let (Some(c), Some(reference), Some(role)) = (current.as_mut(), r.reference, r.role)
            {
                c.3.push((reference, role));
            }
        }
        flush(current.take(), &mut out);
        let (businesses, next) = pages.finish_page(out, size, |b| {
            b.business.trim_start_matches("businesses/").to_owned()
        });
        Ok(pb::ListMyBusinessesResponse {
            businesses,
            next_page_token: next,
        })
    }

    /// The `ListAuditEvents` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all)]
    pub async fn list_audit_events(
        &self,
        who: &Caller,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse, Error> {
        let bn9 = ccp_types::BusinessRef::parse(&req.parent, "parent")
            .map_err(|v| Error::invalid(vec![v]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let filter = format!(
            "start_time={:?}",
            req.start_time.as_ref().map(|t| (t.seconds, t.nanos))
        );
        let pages = self.pages("accounts.ListAuditEvents", bn9.as_str(), filter, who);
        let after = page_after(&pages, &req.page_token)?;
        let after_seq: i64 = if after.is_empty() {
            0
        } else {
            after.parse().map_err(|_| {
                Error::invalid_field("page_token", "is not a token this list returned")
            })?
        };
        let start = req.start_time.as_ref().and_then(pstore::from_timestamp);
        let rows = pstore::list_audit(
            &self.db,
            &AuditScope::Business(bn9.as_str().to_owned()),
            after_seq,
            start,
            size as u64 + 1,
        )
        .await?;
        let (rows, next) = pages.finish_page(rows, size, |r| r.seq.to_string());
        Ok(pb::ListAuditEventsResponse {
            events: rows
                .iter()
                .map(|r| r.to_proto(&bn9.resource_name()))
                .collect(),
            next_page_token: next,
        })
    }

    /// The `ImportRegistry` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(records = req.records.len()))]
    pub async fn import_registry(
        &self,
        subject: &str,
        req: pb::ImportRegistryRequest,
    ) -> Result<pb::ImportRegistryResponse, Error> {
        const METHOD: &str = "ImportRegistry";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        if req.records.len() > MAX_IMPORT {
            errs.push(FieldViolation::new(
                "records",
                format!("at most {MAX_IMPORT} records per call"),
            ));
        }
        reject(errs)?;
        let request_id = parsed(request_id, "request_id")?;
        let mut w = begin!(self, WriteBy::idempotent(subject, METHOD, request_id));
        let mut rejected = Vec::new();
        let mut accepted = Vec::new();
        for (i, rec) in req.records.iter().enumerate() {
            match validate_record(rec) {
                Ok(v) => accepted.push(v),
                Err(reason) => rejected.push(pb::RejectedRecord {
                    index: i32::try_from(i).unwrap_or(i32::MAX),
                    bn9: rec.bn9.clone(),
                    reason,
                }),
            }
        }
        let now = w.now();
        let revision = w.bump_revision("registry").await?;
        let mut linked_all = Vec::new();
        for v in &accepted {
            store::upsert_registry(w.txn(), &v.head, &v.programs, &v.facts, now).await?;
            if store::business(w.txn(), &v.head.bn9).await?.is_some() {
                let mut linked = Vec::new();
                for (reference, name) in &v.programs {
                    if store::link_program(w.txn(), &v.head.bn9, reference, name, now).await? {
                        linked.push(format!("{}{reference}", v.head.bn9));
                    }
                }
                if !linked.is_empty() {
                    let bn9 = v.head.bn9.as_str();
                    w.bump_revision(bn9).await?;
                    let name = format!("businesses/{bn9}");
                    w.record(
                        Change::new(
                            EventType::ProgramAccountsLinked,
                            "accounts.program_accounts.link",
                            &name,
                        )
                        .by("system")
                        .acting_for(bn9)
                        .after(json!({"linked": linked}))
                        .details(json!({"linked": linked})),
                    )
                    .await?;
                    linked_all.extend(linked);
                }
            }
        }
        w.record(
            Change::audit("accounts.registry.import", "registry").after(json!({
                "accepted": accepted.iter().map(|v| v.head.bn9.clone()).collect::<Vec<_>>(),
                "rejected": rejected.len(),
                "linked": linked_all,
            })),
        )
        .await?;
        let response = pb::ImportRegistryResponse {
            accepted: i32::try_from(accepted.len()).unwrap_or(i32::MAX),
            rejected,
            linked_program_accounts: linked_all,
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }
}

pub(super) fn program_proto(bn9: &str, p: &store::LinkedProgramRow) -> pb::ProgramAccount {
    pb::ProgramAccount {
        name: format!("businesses/{bn9}/programAccounts/{}", p.reference),
        bn15: format!("{bn9}{}", p.reference),
        display_name: p.display_name.clone(),
        link_time: Some(pstore::timestamp(p.link_time)),
    }
}

struct ValidRecord {
    head: store::RegistryRow,
    programs: Vec<(String, String)>,
    facts: Vec<store::FactRow>,
}

fn validate_record(rec: &pb::RegistryRecord) -> Result<ValidRecord, String> {
    let bn9 = Bn9::parse(&rec.bn9, "bn9").map_err(|v| v.to_string())?;
    ccp_types::check_line(&rec.legal_name, "legal_name").map_err(|v| v.to_string())?;
    if rec.legal_name.trim().is_empty() {
        return Err("legal_name: is required".to_owned());
    }
    let address = rec
        .address
        .as_ref()
        .ok_or_else(|| "address: is required".to_owned())?;
    if let Some(v) = address_violations(address, "address").first() {
        return Err(v.to_string());
    }
    let mut programs = Vec::new();
    for (i, p) in rec.program_accounts.iter().enumerate() {
        let field = format!("program_accounts[{i}].reference");
        let reference = ProgramReference::parse(&p.reference, &field).map_err(|v| v.to_string())?;
        if programs
            .iter()
            .any(|(r, _): &(String, String)| r == reference.as_str())
        {
            return Err(format!("{field}: is listed more than once"));
        }
        let display = format!("program_accounts[{i}].display_name");
        ccp_types::check_line(&p.display_name, &display).map_err(|v| v.to_string())?;
        if p.display_name.trim().is_empty() {
            return Err(format!("{display}: is required"));
        }
        programs.push((
            reference.as_str().to_owned(),
            p.display_name.trim().to_owned(),
        ));
    }
    if programs.is_empty() {
        return Err("program_accounts: at least one RM program account is required".to_owned());
    }
    let mut facts: Vec<store::FactRow> = Vec::new();
    for (i, f) in rec.known_facts.iter().enumerate() {
        let field = format!("known_facts[{i}]");
        let q = f
            .question
            .as_ref()
            .ok_or_else(|| format!("{field}.question: is required"))?;
        for (part, text) in [
            ("question.id", &q.id),
            ("question.text_en", &q.text_en),
            ("question.text_fr", &q.text_fr),
            ("answer", &f.answer),
        ] {
            ccp_types::check_line(text, &format!("{field}.{part}")).map_err(|v| v.to_string())?;
        }
        if q.id.trim().is_empty() {
            return Err(format!("{field}.question.id: is required"));
        }
        if facts.iter().any(|x| x.question_id == q.id) {
            return Err(format!("{field}.question.id: is listed more than once"));
        }
        if q.text_en.trim().is_empty() || q.text_fr.trim().is_empty() {
            return Err(format!(
                "{field}.question: text_en and text_fr are required"
            ));
        }
        let format = format_from_proto(q.format)
            .ok_or_else(|| format!("{field}.question.format: must be AMOUNT, DATE or TEXT"))?;
        if f.answer.trim().is_empty() || format.canonical(&f.answer).is_none() {
            return Err(format!(
                "{field}.answer: is not a valid {} answer",
                format.as_str()
            ));
        }
        facts.push(store::FactRow {
            question_id: q.id.clone(),
            text_en: q.text_en.clone(),
            text_fr: q.text_fr.clone(),
            format: format.as_str().to_owned(),
            answer: f.answer.clone(),
        });
    }
    let domain_address = to_domain_address(address);
    Ok(ValidRecord {
        head: store::RegistryRow {
            bn9: bn9.as_str().to_owned(),
            legal_name: rec.legal_name.trim().to_owned(),
            address: domain_address,
        },
        programs,
        facts,
    })
}
